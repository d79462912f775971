//! `syncgate sync`: its flags, and the run of the engine they describe against a real (or
//! mock) org, once or `--follow`; what it shows while running ([`progress`]) and when it
//! ends ([`summary`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::args::parse_positive_duration;
use super::login::OrgArgs;
use super::{metrics_http, open_store, runtime, CliError, CliResult, Context, Outcome};
use crate::engine::cdc::JsonlOutbox;
use crate::engine::feed::Feed;
use crate::engine::runner::{CrmSide, RunError, RunSummary, Runner, Stop};
use crate::engine::shared::{SharedWork, WorkerConfig};
use crate::engine::table_source::{TableDb, TableSource};
use crate::sim::{Clock, Seed};
use crate::store::limiter::RedisLimiter;
use crate::store::{self, DlqFilter};

mod progress;
mod summary;

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub org: OrgArgs,
    /// Where source records come from: a directory of `<entity>.jsonl` / `<entity>.csv`
    /// change files; a SQLite database (`sqlite:PATH`, or a path ending in `.db`, `.sqlite`
    /// or `.sqlite3`); or a PostgreSQL URL (`postgres://…`). A database has one table per
    /// source entity with `id` and `updated_at` columns, read incrementally from a cursor
    /// kept in the state store (`--database-url`). Under the engine protocol:
    /// `SYNCGATE_SOURCE`.
    #[arg(
        long,
        env = "SYNCGATE_SOURCE",
        value_name = "DIR|sqlite:PATH|postgres://…"
    )]
    pub source: String,
    /// Keep going: every `--poll` interval, sync what changed since the last tick. Stops
    /// after the batch in flight on SIGINT or SIGTERM, then prints the summary.
    #[arg(long)]
    pub follow: bool,
    /// How long `--follow` waits between ticks (`500ms`, `5s`, `1m`).
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_positive_duration, requires = "follow")]
    pub poll: Duration,
    /// Most table rows read per engine run; the cursor is committed after each one.
    #[arg(long, default_value_t = 5000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
    /// Seed of the retry jitter, for a reproducible run (default: from the clock).
    #[arg(long, value_name = "N")]
    pub seed: Option<Seed>,
    /// No progress bar (there is none anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Also carry Salesforce's changes to CRM-owned fields back to the source: read the org's
    /// change events after each run (each tick with `--follow`) and append one JSON line per
    /// changed field to FILE. The replay ID and event dedupe live in the state store, so a
    /// restart resumes where it stopped. Reads the events over Salesforce's Pub/Sub API (see
    /// `--pubsub-url`). Under the engine protocol: `SYNCGATE_CRM_OUTBOX`.
    #[arg(long, env = "SYNCGATE_CRM_OUTBOX", value_name = "FILE")]
    pub crm_outbox: Option<PathBuf>,
    /// The Pub/Sub API endpoint `--crm-outbox` reads change events from. Default:
    /// https://api.pubsub.salesforce.com:7443 for a *.salesforce.com login URL, else the
    /// login URL itself (a `syncgate mock serve` org serves the API beside REST).
    #[arg(long, env = "SYNCGATE_PUBSUB_URL", value_name = "URL")]
    pub pubsub_url: Option<String>,
    /// After each start, write the tenant's queued dead letters here, one JSON line each (the
    /// engine protocol's dead-letters file; set by the gate as `SYNCGATE_DEAD_LETTERS`).
    #[arg(long, env = "SYNCGATE_DEAD_LETTERS", value_name = "FILE")]
    pub dead_letters: Option<PathBuf>,
    /// After each start, add the run's report to this JSON file: unmapped and routed
    /// columns, counters (the engine protocol's report file, set by the gate as
    /// `SYNCGATE_REPORT`; a restart adds to what the earlier start wrote).
    #[arg(long, env = "SYNCGATE_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Share the tenant's work with the other `sync` processes on the same store (a
    /// PostgreSQL `--database-url`, or one SQLite file): each page is split into leased
    /// batches any of them may claim; a process that dies leaves its batch to the others
    /// once its lease expires. Pair with `--redis-url` to share rate, concurrency and the
    /// daily budget.
    #[arg(long)]
    pub shared: bool,
    /// This process's name in leases (default: host name and process ID).
    #[arg(long, value_name = "ID", requires = "shared")]
    pub worker_id: Option<String>,
    /// A lease not renewed for this long is taken over by another process.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_positive_duration, requires = "shared")]
    pub lease_ttl: Duration,
    /// Share the limiter (token bucket, concurrency cap, `daily_budget`) with every process
    /// on this Redis (`redis://…`) instead of limiting this process alone.
    #[arg(long, env = "SYNCGATE_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
    /// Key prefix of the shared limiter in Redis: processes that share a budget use the
    /// same prefix (two environments on one Redis use two).
    #[arg(
        long,
        default_value = "syncgate",
        value_name = "PREFIX",
        requires = "redis_url"
    )]
    pub redis_prefix: String,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// The engine configuration: a TOML file with an `[engine]` table (keys: README.md), the
    /// same file the gate verifies. Default: `syncgate.toml` beside the --contracts directory
    /// when present, else the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub engine_config: Option<PathBuf>,
    /// With --follow: serve the follower's metrics in the Prometheus text format at
    /// `http://ADDR/metrics`, on loopback only (port 0 picks one; the address is printed on
    /// stderr). Metric names: README.md.
    #[arg(long, value_name = "127.0.0.1:PORT", requires = "follow")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Under the engine protocol: the calling limits the gate holds this run to
    /// (`SYNCGATE_ENGINE_LIMITS`, JSON; the rate per org second), replacing the file's.
    #[arg(long, env = "SYNCGATE_ENGINE_LIMITS", hide = true)]
    pub engine_limits: Option<String>,
    /// Under the engine protocol: org seconds per wall second (`SYNCGATE_TIME_SCALE`).
    #[arg(long, env = "SYNCGATE_TIME_SCALE", hide = true, default_value_t = 1.0)]
    pub time_scale: f64,
}

/// What `--source` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// A directory of JSONL / CSV change files.
    Dir(PathBuf),
    /// Source tables in a database.
    Tables(TableDb),
}

impl SourceSpec {
    pub fn parse(spec: &str) -> Result<SourceSpec, String> {
        if store::is_postgres_url(spec) {
            return Ok(SourceSpec::Tables(TableDb::Postgres(spec.to_string())));
        }
        if let Some(path) = spec
            .strip_prefix("sqlite://")
            .or_else(|| spec.strip_prefix("sqlite:"))
        {
            return Ok(SourceSpec::Tables(TableDb::Sqlite(PathBuf::from(path))));
        }
        let path = PathBuf::from(spec);
        if path.is_dir() {
            return Ok(SourceSpec::Dir(path));
        }
        let db_ext = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["db", "sqlite", "sqlite3"].contains(&e));
        if db_ext {
            return Ok(SourceSpec::Tables(TableDb::Sqlite(path)));
        }
        Err(format!(
            "--source `{spec}` is neither a directory, a SQLite database (`sqlite:PATH`, or a file ending in .db, .sqlite or .sqlite3) nor a `postgres://` URL"
        ))
    }
}

/// Sets `stop` on the first SIGINT or SIGTERM (and wakes `wake`); a second one exits at once.
fn watch_signals(stop: Stop) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        stop.request();
        eprintln!(
            "\nstopping after the request in flight; waits end now (signal again to quit at once)"
        );
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(130);
    });
    Ok(())
}

/// `syncgate sync`: passed when every record landed, failed when some were dead-lettered.
pub(super) fn sync(args: SyncArgs, db: Option<&str>) -> CliResult {
    let bundle = args.org.bundle()?;
    let mut engine = crate::engine::config_file::EngineSettings::resolve(
        args.engine_config.as_deref(),
        &args.org.contracts,
    )?;
    if let Some(limits) = &args.engine_limits {
        engine
            .config
            .apply_protocol_limits(limits, args.time_scale)
            .map_err(|e| CliError::bad_input(format!("SYNCGATE_ENGINE_LIMITS: {e}")))?;
    }
    let spec = SourceSpec::parse(&args.source).map_err(CliError::bad_input)?;
    let target = args.org.target()?;
    // Under the engine protocol, state (cursors, dedupe keys, letters) lives in the
    // directory the gate keeps between the starts of one scenario run.
    let protocol_store = std::env::var_os("SYNCGATE_STATE_DIR")
        .filter(|_| db.is_none())
        .map(|dir| {
            format!(
                "sqlite:{}",
                PathBuf::from(dir).join("state.sqlite").display()
            )
        });
    let state = open_store(db.or(protocol_store.as_deref()))?;
    let rt = runtime()?;
    let seed = args
        .seed
        .unwrap_or_else(|| Seed(Clock::system().now().as_millis() as u64));
    let tenant = format!("{}/{}", bundle.partner, bundle.tenant);
    if let Some(addr) = &args.metrics_addr {
        metrics_http::check_addr(addr).map_err(CliError::bad_input)?;
    }
    let counters = Arc::new(std::sync::Mutex::new(metrics_http::Counters::default()));
    let show_bar = !args.no_progress && std::io::stderr().is_terminal();
    if let Some(path) = &args.crm_outbox {
        crate::engine::protocol_out::touch_outbox(path).map_err(|e| {
            CliError::bad_input(format!("--crm-outbox {}", path.display())).because(e)
        })?;
    }
    let outbox = args.crm_outbox.as_ref().map(JsonlOutbox::new);
    let mut runner = Runner::new(&bundle, engine.config, Clock::system(), &*state, seed);
    runner.page = args.page_size as usize;
    runner.follow = args.follow.then_some(args.poll);
    runner.watch = Some(progress::watch(show_bar));
    runner.crm = outbox.as_ref().map(|sink| {
        CrmSide::for_target(&target, &runner.config.client_name, sink)
            .with_pubsub_url(args.pubsub_url.clone())
    });
    if args.shared {
        let id = args.worker_id.clone().unwrap_or_else(default_worker_id);
        runner.shared = Some(SharedWork {
            leases: state.clone(),
            worker: WorkerConfig {
                lease_ttl: args.lease_ttl,
                ..WorkerConfig::new(id)
            },
        });
    }
    if let Some(url) = &args.redis_url {
        let limiter = rt
            .block_on(RedisLimiter::connect(url, &args.redis_prefix))
            .context("--redis-url: cannot reach the limiter")?;
        runner.limiter = (Arc::new(limiter), runner.config.local_policy());
    }
    let metrics = args.metrics_addr.map(|addr| {
        runner.on_tick = Some(metrics_http::tick_hook(counters.clone()));
        (
            addr,
            metrics_http::Metrics {
                tenant: tenant.clone(),
                counters: counters.clone(),
                store: state.clone(),
            },
        )
    });
    let mut summary = RunSummary::default();
    let outcome = rt.block_on(async {
        if let Some((addr, m)) = metrics {
            metrics_http::start(addr, m)
                .await
                .map_err(RunError::Source)?;
        }
        let mut feed = match &spec {
            SourceSpec::Dir(path) => Feed::dir(path.clone()),
            SourceSpec::Tables(db) => Feed::Tables(
                TableSource::open(db, &tenant)
                    .await
                    .map_err(|e| RunError::Source(e.to_string()))?,
            ),
        };
        watch_signals(runner.stop.clone())
            .map_err(|e| RunError::Source(format!("cannot watch for signals: {e}")))?;
        runner.run(&mut feed, &target, &mut summary).await
    });
    rt.block_on(write_protocol_files(&args, &*state, &tenant, &summary))?;
    match outcome {
        Ok(()) => {}
        Err(e @ RunError::Source(_)) => return Err(e.into()),
        Err(e) => {
            // What got done before the failure still counts (and is recorded as applied).
            summary.error = Some(e.to_string());
            // Nothing to show when it failed before doing anything (an unreachable org).
            if summary.runs > 0 {
                summary::print(&summary, args.json, &tenant, &args.org.target)?;
            }
            // Exit 1 when the run reached its deadline or retry budget (it ended as
            // configured), else 3: see `From<RunError>`.
            return Err(CliError::from(e).context("the sync stopped"));
        }
    }
    summary::print(&summary, args.json, &tenant, &args.org.target)?;
    Ok(Outcome::of(
        summary.report.dead_lettered + summary.report.already_dead_lettered == 0,
    ))
}

/// `host-pid`: unique among the processes of one machine, readable in leases.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}-{}", std::process::id())
}

/// The engine protocol's output files, when asked for (`--dead-letters`, `--report`).
async fn write_protocol_files(
    args: &SyncArgs,
    state: &dyn store::Store,
    tenant: &str,
    summary: &RunSummary,
) -> Result<(), CliError> {
    use crate::engine::protocol_out::{write_dead_letters, write_report};
    if let Some(path) = &args.dead_letters {
        let letters = state
            .dlq_list(&DlqFilter::tenant(tenant))
            .await
            .context("cannot read the dead-letter queue")?;
        write_dead_letters(path, &letters)
            .context(format_args!("--dead-letters {}", path.display()))?;
    }
    if let Some(path) = &args.report {
        write_report(path, &summary.report).context(format_args!("--report {}", path.display()))?;
    }
    Ok(())
}
