//! `syncgate sync` and `syncgate dlq …`: the engine against a real (or mock) org, and the
//! dead-letter queue it leaves.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{error, exit, runtime};
use crate::contract::Bundle;
use crate::engine::client::{Credentials, SalesforceClient, Secret};
use crate::engine::source::SourceSet;
use crate::engine::{redrive, EngineConfig, Sync, Target};
use crate::sim::{Clock, Seed};
use crate::store::{self, DlqFilter};

/// Where and how to sign in.
#[derive(Debug, Args)]
pub struct OrgArgs {
    /// The tenant's bundle: a directory holding `bundle.toml`, or `partner/tenant` in `--contracts`.
    #[arg(long, value_name = "DIR|PARTNER/TENANT")]
    pub bundle: String,
    /// The registry `partner/tenant` is looked up in.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
    /// The org's login URL (e.g. `https://login.salesforce.com`, or a `syncgate mock serve` URL).
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// OAuth client ID (client-credentials flow).
    #[arg(long, env = "SYNCGATE_CLIENT_ID", value_name = "ID")]
    pub client_id: String,
    /// OAuth client secret.
    #[arg(
        long,
        env = "SYNCGATE_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub client_secret: String,
    /// Also trust this CA certificate (PEM), e.g. the one `syncgate mock serve --tls` writes.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub org: OrgArgs,
    /// Source records: a directory of `<entity>.jsonl` / `<entity>.csv` change files.
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters (newest failure last).
    List(DlqListArgs),
    /// Show one dead letter with its payload and history.
    Show {
        /// The letter's ID (from `dlq list`).
        id: i64,
    },
    /// Send matching dead letters again after a fix; letters that fail again return with history.
    Redrive(DlqRedriveArgs),
}

#[derive(Debug, Args)]
pub struct DlqFilterArgs {
    /// Only this object, e.g. `Contact`.
    #[arg(long)]
    pub object: Option<String>,
    /// Only letters with this error code, e.g. `INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`.
    #[arg(long)]
    pub code: Option<String>,
}

#[derive(Debug, Args)]
pub struct DlqListArgs {
    /// Only this tenant, `partner/tenant`.
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub filter: DlqFilterArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DlqRedriveArgs {
    #[command(flatten)]
    pub org: OrgArgs,
    #[command(flatten)]
    pub filter: DlqFilterArgs,
    /// At most this many records a second.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
}

fn load_bundle(org: &OrgArgs) -> Result<Bundle, i32> {
    let as_dir = PathBuf::from(&org.bundle);
    let dir = if as_dir.join("bundle.toml").is_file() {
        as_dir
    } else {
        org.contracts.join(&org.bundle)
    };
    Bundle::load(&dir).map_err(|e| {
        error(e);
        exit::BAD_INPUT
    })
}

fn target(org: &OrgArgs) -> Result<Target, i32> {
    let ca_pem = match &org.ca_file {
        None => None,
        Some(p) => Some(std::fs::read(p).map_err(|e| {
            error(format_args!("cannot read the CA file {}: {e}", p.display()));
            exit::BAD_INPUT
        })?),
    };
    Ok(Target {
        login_url: org.target.clone(),
        credentials: Credentials {
            client_id: org.client_id.clone(),
            client_secret: Secret::new(org.client_secret.clone()),
        },
        request_log: None,
        ca_pem,
    })
}

/// `syncgate sync`: 0 when every record landed, 1 when some were dead-lettered.
pub fn sync(args: SyncArgs, db: Option<&str>) -> i32 {
    let bundle = match load_bundle(&args.org) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let source = match SourceSet::load_dir(&args.source) {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return exit::BAD_INPUT;
        }
    };
    let target = match target(&args.org) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let state = match store::open(db) {
        Ok(s) => s,
        Err(e) => {
            error(format_args!("cannot open the store: {e}"));
            return exit::INTERNAL;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let seed = Seed(rt.block_on(async { Clock::system().now().as_millis() as u64 }));
    let dlq: &dyn store::DeadLetterStore = &*state;
    let dedupe: &dyn store::DedupeStore = &*state;
    // A version applied in the last week is not sent again (a re-run after a crash resumes).
    let engine = Sync::new(&bundle, EngineConfig::default(), Clock::system(), seed, dlq)
        .with_dedupe(dedupe, std::time::Duration::from_secs(7 * 24 * 3600));
    let outcome = rt.block_on(engine.run(&source, &target));
    let report = match outcome {
        Ok(r) => r,
        Err(e) => {
            error(format_args!("the sync stopped: {e}"));
            return exit::INTERNAL;
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        println!(
            "synced {}/{} into {}",
            bundle.partner, bundle.tenant, args.org.target
        );
        println!("  records:        {}", report.records);
        println!("  created:        {}", report.created);
        println!("  updated:        {}", report.updated);
        println!(
            "  already synced: {} (same version applied before)",
            report.already_synced
        );
        println!(
            "  dead-lettered:  {}{}",
            report.dead_lettered,
            if report.dead_lettered > 0 {
                " (see `syncgate dlq list`)"
            } else {
                ""
            }
        );
        println!("  retries:        {}", report.retries);
        match report.api_usage {
            Some(u) => println!(
                "  API calls:      {} (org budget now {}/{} today)",
                report.api_calls, u.used, u.max
            ),
            None => println!("  API calls:      {}", report.api_calls),
        }
        for (entity, cols) in &report.unmapped_columns {
            println!(
                "  unmapped:       {entity}: {} (no field of the bundle reads them)",
                cols.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    if report.dead_lettered > 0 {
        exit::FAILED
    } else {
        exit::PASSED
    }
}

pub fn dlq(cmd: DlqCommand, db: Option<&str>) -> i32 {
    let state = match store::open(db) {
        Ok(s) => s,
        Err(e) => {
            error(format_args!("cannot open the store: {e}"));
            return exit::INTERNAL;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match cmd {
        DlqCommand::List(a) => {
            let filter = DlqFilter {
                tenant: a.tenant,
                object: a.filter.object,
                error_code: a.filter.code,
            };
            let letters = match rt.block_on(state.dlq_list(&filter)) {
                Ok(l) => l,
                Err(e) => {
                    error(e);
                    return exit::INTERNAL;
                }
            };
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&letters).expect("letters serialize")
                );
            } else if letters.is_empty() {
                println!("no dead letters match");
            } else {
                for l in &letters {
                    let d = &l.letter;
                    println!(
                        "#{:<5} {} {} {} {} ({} attempt(s), {} earlier failure(s)) {}",
                        l.id,
                        d.tenant,
                        d.object,
                        d.source_id,
                        d.error_code,
                        d.attempts,
                        l.history.len(),
                        d.message
                    );
                }
            }
            exit::PASSED
        }
        DlqCommand::Show { id } => {
            let letters = match rt.block_on(state.dlq_list(&DlqFilter::default())) {
                Ok(l) => l,
                Err(e) => {
                    error(e);
                    return exit::INTERNAL;
                }
            };
            match letters.into_iter().find(|l| l.id == id) {
                Some(l) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&l).expect("letter serializes")
                    );
                    exit::PASSED
                }
                None => {
                    error(format_args!(
                        "no dead letter #{id} (see `syncgate dlq list`)"
                    ));
                    exit::BAD_INPUT
                }
            }
        }
        DlqCommand::Redrive(a) => {
            let bundle = match load_bundle(&a.org) {
                Ok(b) => b,
                Err(code) => return code,
            };
            let target = match target(&a.org) {
                Ok(t) => t,
                Err(code) => return code,
            };
            let filter = DlqFilter {
                tenant: Some(format!("{}/{}", bundle.partner, bundle.tenant)),
                object: a.filter.object,
                error_code: a.filter.code,
            };
            let clock = Clock::system();
            let result = rt.block_on(async {
                let mut client = SalesforceClient::new(
                    &target.login_url,
                    &bundle.api_version,
                    target.credentials.clone(),
                    clock.clone(),
                    "syncgate",
                    "redrive",
                );
                if let Some(pem) = &target.ca_pem {
                    client.trust_ca(pem).map_err(|e| e.to_string())?;
                }
                client.authenticate().await.map_err(|e| e.to_string())?;
                redrive::redrive(&bundle, &mut client, &*state, &filter, a.rate, &clock)
                    .await
                    .map_err(|e| e.to_string())
            });
            match result {
                Ok(r) => {
                    println!(
                        "redrove {} letter(s): {} delivered, {} failed again (back in the queue with their history), {} skipped (no payload: fix the source and sync again)",
                        r.sent, r.delivered, r.failed_again, r.skipped
                    );
                    if r.failed_again > 0 {
                        exit::FAILED
                    } else {
                        exit::PASSED
                    }
                }
                Err(e) => {
                    error(format_args!("redrive stopped: {e}"));
                    exit::INTERNAL
                }
            }
        }
    }
}
