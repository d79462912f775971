//! `syncgate dlq list|show|redrive`: the dead-letter queue `syncgate sync` leaves, read
//! from the store and sent again after a fix.

use clap::{Args, Subcommand};

use super::login::{sign_in, OrgArgs};
use super::{open_store, print_json, runtime, CliError, CliResult, Outcome};
use crate::engine::redrive;
use crate::sim::Clock;
use crate::store::{DlqFilter, LetterStatus};

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
    Redrive(Box<DlqRedriveArgs>),
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
    /// Also list superseded letters (retired because a newer version of their record was
    /// applied; kept for history, never redriven).
    #[arg(long)]
    pub all: bool,
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
    /// At most this many records a second (a positive number).
    #[arg(long, value_name = "N", value_parser = parse_rate, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of records a second"))?;
    redrive::batch_wait(rate).map_err(|e| e.to_string())?;
    Ok(rate)
}

pub(super) fn dlq(cmd: DlqCommand, db: Option<&str>) -> CliResult {
    let state = open_store(db)?;
    let rt = runtime()?;
    match cmd {
        DlqCommand::List(a) => {
            let filter = DlqFilter {
                tenant: a.tenant,
                object: a.filter.object,
                error_code: a.filter.code,
            };
            let mut letters = rt.block_on(state.dlq_list(&filter))?;
            let before = letters.len();
            if !a.all {
                letters.retain(|l| l.status == LetterStatus::Queued);
            }
            let hidden = before - letters.len();
            if a.json {
                print_json(&letters)?;
                return Ok(Outcome::Passed);
            }
            if letters.is_empty() {
                println!("no dead letters match");
            }
            for l in &letters {
                let d = &l.letter;
                let status = match l.superseded_by {
                    Some(v) if l.status == LetterStatus::Superseded => {
                        format!(" [superseded: version {v} applied]")
                    }
                    _ if l.status == LetterStatus::Superseded => " [superseded]".into(),
                    _ => String::new(),
                };
                println!(
                    "#{:<5} {} {} {} v{} {}{status} ({} attempt(s), {} earlier failure(s)) {}",
                    l.id,
                    d.tenant,
                    d.object,
                    d.source_id,
                    d.source_version,
                    d.error_code,
                    d.attempts,
                    l.history.len(),
                    d.message
                );
            }
            if hidden > 0 {
                println!("({hidden} superseded letter(s) not shown: a newer version of their record was applied; `--all` lists them)");
            }
            Ok(Outcome::Passed)
        }
        DlqCommand::Show { id } => {
            let letters = rt.block_on(state.dlq_list(&DlqFilter::default()))?;
            let Some(l) = letters.into_iter().find(|l| l.id == id) else {
                return Err(CliError::bad_input(format!(
                    "no dead letter #{id} (see `syncgate dlq list`)"
                )));
            };
            print_json(&l)?;
            Ok(Outcome::Passed)
        }
        DlqCommand::Redrive(a) => {
            let bundle = a.org.bundle()?;
            let target = a.org.target()?;
            let filter = DlqFilter {
                tenant: Some(format!("{}/{}", bundle.partner, bundle.tenant)),
                object: a.filter.object,
                error_code: a.filter.code,
            };
            let clock = Clock::system();
            let r = rt
                .block_on(async {
                    let mut client =
                        sign_in(&target, &bundle.api_version, &clock, "redrive").await?;
                    let report = redrive::redrive(
                        &bundle,
                        &mut client,
                        &*state,
                        &*state,
                        &filter,
                        a.rate,
                        &clock,
                    )
                    .await?;
                    Ok::<_, CliError>(report)
                })
                .map_err(|e| e.context("redrive stopped"))?;
            if a.json {
                print_json(&r)?;
            } else {
                println!(
                    "redrove {} letter(s): {} delivered, {} failed again (back in the queue with their history), {} skipped (no payload: fix the source and sync again)",
                    r.sent, r.delivered, r.failed_again, r.skipped
                );
                if r.superseded > 0 {
                    println!(
                        "not sent: {} superseded letter(s): the same or a newer version of their record is already applied, so sending them would overwrite newer values (kept as superseded; `dlq list --all` shows them)",
                        r.superseded
                    );
                }
            }
            Ok(Outcome::of(r.failed_again == 0))
        }
    }
}
