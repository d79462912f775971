//! `syncgate contracts validate|list|show|publish|diff|can-i-deploy|record-deployment`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::args::ContractsDir;
use super::{open_store, print_json, runtime, CliError, CliResult, Outcome};
use crate::contract::diff::diff as diff_bundles;
use crate::contract::matrix::{can_i_deploy as decide, DeployQuery};
use crate::contract::publish::{compare_versions, publish as publish_bundle};
use crate::contract::{publish as published, Bundle};
use crate::sim::{Clock, Timestamp};
use crate::store::Deployment;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this partner.
    #[arg(long, value_name = "PARTNER")]
    pub partner: Option<String>,
    /// Only this tenant.
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A tenant directory holding `bundle.toml`, `partner/tenant` (on disk under --contracts,
    /// else the latest published) or `partner/tenant@version` from the registry.
    #[arg(value_name = "BUNDLE")]
    pub bundle: String,
    #[command(flatten)]
    pub registry: ContractsDir,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A tenant directory holding `bundle.toml`, or `partner/tenant` under --contracts.
    #[arg(value_name = "DIR|PARTNER/TENANT")]
    pub bundle: String,
    #[command(flatten)]
    pub registry: ContractsDir,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old side: a tenant directory, `partner/tenant` on disk, or `partner/tenant@version`.
    #[arg(value_name = "A")]
    pub from: String,
    /// The new side, written like A.
    #[arg(value_name = "B")]
    pub to: String,
    #[command(flatten)]
    pub registry: ContractsDir,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CanIDeployArgs {
    /// The partner, e.g. `bluepeak-logistics`.
    #[arg(long, value_name = "PARTNER")]
    pub partner: String,
    /// The tenant, e.g. `sandbox`.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// The engine version to deploy.
    #[arg(long, value_name = "VERSION")]
    pub engine_version: String,
    /// The target environment (`sandbox`, `production` or your own).
    #[arg(long, value_name = "ENV")]
    pub to: String,
    /// Check against this bundle version (default: the one deployed there, else the latest).
    #[arg(long, value_name = "VERSION")]
    pub bundle_version: Option<String>,
    /// The engine configuration to deploy (TOML, `[engine]` table): only a verification with
    /// the same configuration counts. Default: `syncgate.toml` beside the --contracts
    /// directory when present, else the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub engine_config: Option<PathBuf>,
    /// The registry directory whose neighbouring `syncgate.toml` is the default configuration.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RecordDeploymentArgs {
    /// The partner, e.g. `bluepeak-logistics`.
    #[arg(long, value_name = "PARTNER")]
    pub partner: String,
    /// The tenant, e.g. `sandbox`.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// The environment (`sandbox`, `production` or your own).
    #[arg(long, value_name = "ENV")]
    pub environment: String,
    /// The published bundle version now deployed.
    #[arg(long, value_name = "VERSION")]
    pub bundle_version: String,
    /// The engine version now deployed.
    #[arg(long, value_name = "VERSION")]
    pub engine_version: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs one command on the one-thread runtime.
fn run(f: impl std::future::Future<Output = CliResult>) -> CliResult {
    runtime()?.block_on(f)
}

fn now() -> Timestamp {
    Clock::system().now()
}

/// Where a bundle named on the command line comes from.
enum BundleRef {
    Dir(PathBuf),
    Published {
        partner: String,
        tenant: String,
        version: Option<String>,
    },
}

fn parse_ref(spec: &str, contracts: &Path) -> Result<BundleRef, CliError> {
    let as_dir = PathBuf::from(spec);
    if as_dir.join("bundle.toml").is_file() {
        return Ok(BundleRef::Dir(as_dir));
    }
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (spec, None),
    };
    let Some((partner, tenant)) = name
        .split_once('/')
        .filter(|(p, t)| !p.is_empty() && !t.is_empty() && !t.contains('/'))
    else {
        return Err(CliError::bad_input(format!(
            "`{spec}` is neither a tenant directory holding bundle.toml nor `partner/tenant[@version]`"
        )));
    };
    if version.is_none() && contracts.join(name).join("bundle.toml").is_file() {
        return Ok(BundleRef::Dir(contracts.join(name)));
    }
    Ok(BundleRef::Published {
        partner: partner.to_string(),
        tenant: tenant.to_string(),
        version,
    })
}

async fn resolve(
    spec: &str,
    contracts: &Path,
    db: Option<&str>,
) -> Result<(Bundle, &'static str), CliError> {
    match parse_ref(spec, contracts)? {
        BundleRef::Dir(dir) => Ok((Bundle::load(&dir)?, "disk")),
        BundleRef::Published {
            partner,
            tenant,
            version,
        } => {
            let store = open_store(db)?;
            let found = match &version {
                Some(v) => store.version(&partner, &tenant, v).await?,
                None => published::latest(store.as_ref(), &partner, &tenant).await?,
            };
            let Some(found) = found else {
                let known: Vec<String> = store
                    .versions(&partner, Some(&tenant))
                    .await?
                    .into_iter()
                    .map(|v| v.version)
                    .collect();
                return Err(CliError::bad_input(format!(
                    "{partner}/{tenant}@{} is not published (published versions: {})",
                    version.as_deref().unwrap_or("latest"),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            let bundle = published::published_bundle(&found)?;
            Ok((bundle, "registry"))
        }
    }
}

pub(super) fn list(args: ListArgs, db: Option<&str>) -> CliResult {
    run(async move {
        let store = open_store(db)?;
        let partners = match &args.partner {
            Some(p) => vec![p.clone()],
            None => store.partners().await?,
        };
        #[derive(Serialize)]
        struct Row {
            partner: String,
            tenant: String,
            version: String,
            hash: String,
            published_at: Timestamp,
            /// Environments where this version is deployed now, with the engine version.
            deployed: Vec<DeployedIn>,
        }
        #[derive(Serialize)]
        struct DeployedIn {
            environment: String,
            engine_version: String,
        }
        let mut rows = Vec::new();
        for partner in &partners {
            let mut versions = store.versions(partner, args.tenant.as_deref()).await?;
            versions.sort_by(|a, b| {
                a.tenant
                    .cmp(&b.tenant)
                    .then_with(|| compare_versions(&a.version, &b.version))
            });
            let deployments = store
                .deployments(partner, args.tenant.as_deref(), None)
                .await?;
            for v in versions {
                let deployed = deployments
                    .iter()
                    .filter(|d| {
                        d.undeployed_at.is_none()
                            && d.tenant == v.tenant
                            && d.bundle_version == v.version
                    })
                    .map(|d| DeployedIn {
                        environment: d.environment.clone(),
                        engine_version: d.engine_version.clone(),
                    })
                    .collect();
                rows.push(Row {
                    partner: v.partner,
                    tenant: v.tenant,
                    version: v.version,
                    hash: v.hash,
                    published_at: v.published_at,
                    deployed,
                });
            }
        }
        if args.json {
            print_json(&rows)?;
            return Ok(Outcome::Passed);
        }
        if rows.is_empty() {
            println!("no published bundles (publish one with `syncgate contracts publish DIR`)");
        }
        let mut last = String::new();
        for r in &rows {
            let label = format!("{}/{}", r.partner, r.tenant);
            if label != last {
                println!("{label}");
                last = label;
            }
            let deployed = r
                .deployed
                .iter()
                .map(|d| format!("{} (engine {})", d.environment, d.engine_version))
                .collect::<Vec<_>>()
                .join(", ");
            let deployed = if deployed.is_empty() {
                String::new()
            } else {
                format!("  deployed: {deployed}")
            };
            println!(
                "  {:<12} {}  published {}{deployed}",
                r.version,
                r.hash,
                r.published_at.to_iso()
            );
        }
        Ok(Outcome::Passed)
    })
}

pub(super) fn show(args: ShowArgs, db: Option<&str>) -> CliResult {
    run(async move {
        let (bundle, source) = resolve(&args.bundle, &args.registry.contracts, db).await?;
        if args.json {
            #[derive(Serialize)]
            struct Shown<'a> {
                source: &'a str,
                hash: String,
                bundle: &'a Bundle,
            }
            print_json(&Shown {
                source,
                hash: bundle.content_hash(),
                bundle: &bundle,
            })?;
            return Ok(Outcome::Passed);
        }
        println!(
            "{}/{} {} {} (from {source})",
            bundle.partner,
            bundle.tenant,
            bundle.version,
            bundle.content_hash()
        );
        println!(
            "api {}  limits: {} requests/day, {} long-running at once (>{}s)",
            bundle.api_version,
            bundle.limits.daily_api_requests,
            bundle.limits.concurrent_long_running,
            bundle.limits.long_running_threshold_secs
        );
        for (name, o) in &bundle.objects {
            println!(
                "{name}  external ID {}, from `{}`, {} field(s)",
                o.external_id,
                o.source,
                o.fields.len()
            );
            for (fname, f) in &o.fields {
                let mut notes = vec![f.ty.describe_name().to_string()];
                if f.required {
                    notes.push("required".into());
                }
                if let Some(n) = f.max_length {
                    notes.push(format!("max {n}"));
                }
                if let Some(v) = &f.values {
                    notes.push(format!("values: {}", v.join(" | ")));
                }
                match (&f.from, f.owner) {
                    (Some(col), _) => notes.push(format!("from `{col}`")),
                    (None, crate::contract::Owner::Crm) => notes.push("CRM-owned".into()),
                    _ => {}
                }
                println!("  {fname:<24} {}", notes.join(", "));
            }
        }
        for name in bundle.pacts.keys() {
            println!("pact {name}");
        }
        Ok(Outcome::Passed)
    })
}

pub(super) fn publish(args: PublishArgs, db: Option<&str>) -> CliResult {
    run(async move {
        let dir = match parse_ref(&args.bundle, &args.registry.contracts)? {
            BundleRef::Dir(d) => d,
            BundleRef::Published { .. } => {
                return Err(CliError::bad_input(format!(
                    "no bundle at `{}`: publish takes a tenant directory holding bundle.toml or `partner/tenant` under {}",
                    args.bundle,
                    args.registry.contracts.display()
                )))
            }
        };
        // The whole bundle is loaded and checked before the store is touched: a malformed
        // bundle publishes nothing.
        let bundle = Bundle::load(&dir)?;
        let store = open_store(db)?;
        // Refused as immutable or breaking is a "no" (exit 1): see `From<PublishError>`.
        let report = publish_bundle(store.as_ref(), &bundle, now()).await?;
        if args.json {
            print_json(&report)?;
            return Ok(Outcome::Passed);
        }
        let verb = if report.outcome == "created" {
            "published"
        } else {
            "already published (same content, nothing to do)"
        };
        println!(
            "{verb} {}/{} {} {}",
            report.partner, report.tenant, report.version, report.hash
        );
        if let Some(d) = &report.diff {
            print!("{}", d.explain());
        }
        Ok(Outcome::Passed)
    })
}

pub(super) fn diff(args: DiffArgs, db: Option<&str>) -> CliResult {
    run(async move {
        let (old, _) = resolve(&args.from, &args.registry.contracts, db).await?;
        let (new, _) = resolve(&args.to, &args.registry.contracts, db).await?;
        let d = diff_bundles(&old, &new);
        if args.json {
            print_json(&d)?;
        } else {
            print!("{}", d.explain());
        }
        Ok(Outcome::of(!d.is_breaking()))
    })
}

pub(super) fn can_i_deploy(args: CanIDeployArgs, db: Option<&str>) -> CliResult {
    run(async move {
        let engine = crate::engine::config_file::EngineSettings::resolve(
            args.engine_config.as_deref(),
            &args.contracts,
        )?;
        let store = open_store(db)?;
        let decision = decide(
            store.as_ref(),
            &DeployQuery {
                partner: args.partner,
                tenant: args.tenant,
                engine_version: args.engine_version,
                environment: args.to,
                bundle_version: args.bundle_version,
                engine_config_hash: Some(engine.hash),
            },
        )
        .await?;
        if args.json {
            print_json(&decision)?;
        } else {
            println!(
                "{} engine {} to {}/{} in {}: {}",
                if decision.deployable { "yes" } else { "no" },
                decision.engine_version,
                decision.partner,
                decision.tenant,
                decision.environment,
                decision.reason
            );
        }
        Ok(Outcome::of(decision.deployable))
    })
}

pub(super) fn record_deployment(args: RecordDeploymentArgs, db: Option<&str>) -> CliResult {
    run(async move {
        let store = open_store(db)?;
        let label = format!("{}/{}", args.partner, args.tenant);
        if store
            .version(&args.partner, &args.tenant, &args.bundle_version)
            .await?
            .is_none()
        {
            return Err(CliError::bad_input(format!(
                "bundle {label} {} is not published; publish it before recording a deployment",
                args.bundle_version
            )));
        }
        let previous = store
            .deployments(&args.partner, Some(&args.tenant), Some(&args.environment))
            .await?
            .into_iter()
            .rev()
            .find(|d| d.undeployed_at.is_none());
        let deployment = Deployment {
            partner: args.partner.clone(),
            tenant: args.tenant.clone(),
            environment: args.environment.clone(),
            bundle_version: args.bundle_version.clone(),
            engine_version: args.engine_version.clone(),
            deployed_at: now(),
            undeployed_at: None,
        };
        store.record_deployment(&deployment).await?;
        if args.json {
            #[derive(Serialize)]
            struct Recorded {
                deployment: Deployment,
                replaced: Option<Deployment>,
            }
            print_json(&Recorded {
                deployment,
                replaced: previous,
            })?;
            return Ok(Outcome::Passed);
        }
        let replaced = previous.map_or(String::new(), |p| {
            format!(
                " (replaces bundle {} with engine {})",
                p.bundle_version, p.engine_version
            )
        });
        println!(
            "recorded: {label} in {} runs bundle {} with engine {}{replaced}",
            args.environment, args.bundle_version, args.engine_version
        );
        Ok(Outcome::Passed)
    })
}

/// `syncgate contracts validate DIR`: loads the bundle and prints what it resolved to.
pub(super) fn validate(dir: &Path) -> CliResult {
    let b = Bundle::load(dir)?;
    let fields: usize = b.objects.values().map(|o| o.fields.len()).sum();
    println!(
        "ok {}/{} {} {} ({} objects, {} fields, {} pact files)",
        b.partner,
        b.tenant,
        b.version,
        b.content_hash(),
        b.objects.len(),
        fields,
        b.pacts.len()
    );
    Ok(Outcome::Passed)
}
