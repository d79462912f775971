//! `syncgate contracts pull` (a new bundle from a live org's describe metadata) and
//! `syncgate contracts check-org` (has the live org drifted from the bundle?), signing in
//! as `syncgate sync` does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use reqwest::Method;
use serde::Serialize;

use super::args::ContractsDir;
use super::login::{sign_in, target, ClientArgs};
use super::{print_json, runtime, CliError, CliResult, Context, Outcome};
use crate::contract::describe::{self, DescribedObject};
use crate::contract::diff::{diff, Change, Impact};
use crate::contract::pull::{self, PullInput};
use crate::contract::{Bundle, Limits};
use crate::engine::client::SalesforceClient;
use crate::sim::Clock;

/// Where and how to sign in: the flags and variables `syncgate sync` uses.
#[derive(Debug, Args)]
pub struct OrgLogin {
    /// The org's login URL (e.g. `https://login.salesforce.com`, or a `syncgate mock serve` URL).
    #[arg(long, value_name = "URL")]
    pub org: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub login: OrgLogin,
    /// The objects to pull, comma-separated (e.g. `Account,Contact`); lookups between them
    /// become references.
    #[arg(long, value_delimiter = ',', required = true, value_name = "OBJECTS")]
    pub objects: Vec<String>,
    /// The new tenant, `partner/tenant`: written to `<contracts>/<partner>/<tenant>/bundle.toml`.
    #[arg(value_name = "PARTNER/TENANT")]
    pub tenant: String,
    /// The registry directory to write into.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
    /// The REST API version to read describe with (and to write into the bundle).
    #[arg(long, default_value = "62.0", value_name = "VERSION")]
    pub api_version: String,
    /// The external ID of an object with several (or to pick one), `Object.Field` (repeatable).
    #[arg(long, value_name = "OBJECT.FIELD")]
    pub external_id: Vec<String>,
    /// Overwrite an existing bundle.toml.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CheckOrgArgs {
    #[command(flatten)]
    pub login: OrgLogin,
    /// The tenant: `partner/tenant` under --contracts, or a tenant directory.
    #[arg(value_name = "PARTNER/TENANT|DIR")]
    pub tenant: String,
    #[command(flatten)]
    pub registry: ContractsDir,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

async fn connect(login: &OrgLogin, api_version: &str) -> Result<SalesforceClient, CliError> {
    let target = target("--org", &login.org, &login.client)?;
    sign_in(&target, api_version, &Clock::system(), "describe").await
}

/// One object's describe, or `None` when the org has no such object.
async fn describe_object(
    client: &mut SalesforceClient,
    object: &str,
) -> Result<Option<DescribedObject>, CliError> {
    match client
        .call(Method::GET, &format!("sobjects/{object}/describe"), None)
        .await
    {
        Ok(reply) => describe::parse(object, &reply.body)
            .map(Some)
            .map_err(CliError::internal),
        Err(f) if f.status == Some(404) => Ok(None),
        Err(f) => Err(CliError::internal(format!(
            "describe {object}: HTTP {} {} {}",
            f.status.map_or("-".to_string(), |s| s.to_string()),
            f.code,
            f.message
        ))),
    }
}

/// The org's limits, or `None` when `/limits` does not answer.
async fn org_limits(client: &mut SalesforceClient, fallback: &Limits) -> Option<Limits> {
    let reply = client.call(Method::GET, "limits", None).await.ok()?;
    Some(describe::limits(&reply.body, fallback))
}

pub(super) fn pull(args: PullArgs) -> CliResult {
    runtime()?.block_on(pull_async(args))
}

async fn pull_async(args: PullArgs) -> CliResult {
    let Some((partner, tenant)) = args
        .tenant
        .split_once('/')
        .filter(|(p, t)| !p.is_empty() && !t.is_empty() && !t.contains('/'))
    else {
        return Err(CliError::bad_input(format!(
            "`{}` is not `partner/tenant` (e.g. acme-corp/sandbox)",
            args.tenant
        )));
    };
    let dir = args.contracts.join(partner).join(tenant);
    let path = dir.join("bundle.toml");
    if path.exists() && !args.force {
        return Err(CliError::bad_input(format!(
            "{} exists: pull writes new bundles (give --force to overwrite it, or use `syncgate contracts check-org` to compare)",
            path.display()
        )));
    }
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    for spec in &args.external_id {
        let Some((object, field)) = spec.split_once('.') else {
            return Err(CliError::bad_input(format!(
                "--external-id `{spec}`: write Object.Field (e.g. Account.Account_Key__c)"
            )));
        };
        chosen.insert(object.to_string(), field.to_string());
    }
    let mut objects: Vec<String> = Vec::new();
    for o in args
        .objects
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
    {
        if !objects.iter().any(|x| x == o) {
            objects.push(o.to_string());
        }
    }
    if objects.is_empty() {
        return Err(CliError::bad_input(
            "--objects names no object (e.g. --objects Account,Contact)",
        ));
    }
    let mut client = connect(&args.login, &args.api_version).await?;
    let mut pulled = Vec::new();
    for name in &objects {
        let Some(d) = describe_object(&mut client, name).await? else {
            return Err(CliError::bad_input(format!(
                "the org at {} has no object {name}",
                args.login.org
            )));
        };
        let ext = match chosen.get(name) {
            Some(field) => {
                if !d.external_ids().iter().any(|f| &f.name == field) {
                    return Err(CliError::bad_input(format!(
                        "--external-id {name}.{field}: the org has no writable text external-ID field {field} on {name} (it has: {})",
                        names(&d)
                    )));
                }
                field.clone()
            }
            None => match d.external_ids().as_slice() {
                [one] => one.name.clone(),
                [] => {
                    return Err(CliError::bad_input(format!(
                        "{name} has no writable text external-ID field: the engine upserts by one. Create one in the org (Text, External ID, Unique) and pull again"
                    )))
                }
                _ => {
                    return Err(CliError::bad_input(format!(
                        "{name} has several external-ID fields ({}): pick one with --external-id {name}.FIELD",
                        names(&d)
                    )))
                }
            },
        };
        pulled.push((d, ext));
    }
    let fallback = Limits {
        daily_api_requests: 15_000,
        concurrent_long_running: 25,
        long_running_threshold_secs: 20,
    };
    let from_org = org_limits(&mut client, &fallback).await;
    let (text, counts) = pull::render(&PullInput {
        partner,
        tenant,
        api_version: &args.api_version,
        limits_from_org: from_org.is_some(),
        limits: from_org.unwrap_or(fallback),
        objects: pulled,
        origin: args.login.org.trim_end_matches('/'),
    });
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, &text))
        .context(format_args!("cannot write {}", path.display()))?;
    // What was written must load: if not, that is our bug, and the file says where.
    Bundle::load(&dir).map_err(|e| {
        CliError::internal("the pulled bundle does not load (a syncgate bug; please report it)")
            .because(e)
    })?;
    println!(
        "wrote {} ({} objects, {} fields{}); {} lines marked MAPPING, POLICY or LIMITS to fill in",
        path.display(),
        counts.objects,
        counts.fields,
        if counts.skipped > 0 {
            format!(", {} not carried, listed in comments", counts.skipped)
        } else {
            String::new()
        },
        counts.marked
    );
    println!(
        "next: fix the marked lines, then `syncgate contracts validate {}` and `syncgate contracts pacts {partner}/{tenant}`",
        dir.display()
    );
    Ok(Outcome::Passed)
}

fn names(d: &DescribedObject) -> String {
    let list: Vec<&str> = d.external_ids().iter().map(|f| f.name.as_str()).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// `check-org`'s verdict.
#[derive(Debug, Serialize)]
struct Drift {
    tenant: String,
    version: String,
    org: String,
    breaking: usize,
    changes: Vec<Change>,
}

pub(super) fn check_org(args: CheckOrgArgs) -> CliResult {
    runtime()?.block_on(check_org_async(args))
}

async fn check_org_async(args: CheckOrgArgs) -> CliResult {
    let contract = Bundle::load(&args.registry.tenant_dir(&args.tenant))?;
    let mut client = connect(&args.login, &contract.api_version).await?;
    let mut described = BTreeMap::new();
    for name in contract.objects.keys() {
        if let Some(d) = describe_object(&mut client, name).await? {
            described.insert(name.clone(), d);
        }
    }
    let limits = org_limits(&mut client, &contract.limits).await;
    let (org, unreadable) = describe::org_view(&contract, &described, limits.as_ref());
    let mut changes = diff(&contract, &org).changes;
    changes.extend(unreadable.into_iter().map(|u| Change {
        rule: crate::contract::diff::Rule::TypeChanged,
        impact: Impact::Breaking,
        at: u.at,
        reason: u.reason,
    }));
    changes.sort_by(|a, b| (a.impact, &a.at, a.rule).cmp(&(b.impact, &b.at, b.rule)));
    let breaking = changes
        .iter()
        .filter(|c| c.impact == Impact::Breaking)
        .count();
    let drift = Drift {
        tenant: format!("{}/{}", contract.partner, contract.tenant),
        version: contract.version.clone(),
        org: args.login.org.clone(),
        breaking,
        changes,
    };
    if args.json {
        print_json(&drift)?;
    } else {
        print!("{}", explain(&drift));
    }
    Ok(Outcome::of(breaking == 0))
}

fn explain(d: &Drift) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "check-org {} {} against {}",
        d.tenant, d.version, d.org
    );
    if d.changes.is_empty() {
        out.push_str("no drift: the org matches the bundle (types, lengths, required, picklists, lookups, external IDs, limits)\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{} breaking, {} safe",
        d.breaking,
        d.changes.len() - d.breaking
    );
    crate::contract::diff::write_changes(&mut out, &d.changes);
    out
}
