//! `syncgate sync` and `syncgate dlq …`: the engine against a real (or mock) org, and the
//! dead-letter queue it leaves.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{error, exit, metrics_http, runtime};
use crate::contract::Bundle;
use crate::engine::cdc::JsonlOutbox;
use crate::engine::client::{Credentials, SalesforceClient, Secret};
use crate::engine::feed::Feed;
use crate::engine::runner::{CrmSide, RunError, RunSummary, Runner, Stop, Watch};
use crate::engine::shared::{SharedWork, WorkerConfig};
use crate::engine::table_source::{TableDb, TableSource};
use crate::engine::{redrive, EngineError, Progress, Target};
use crate::sim::time::parse_duration;
use crate::sim::{Clock, Seed};
use crate::store::limiter::RedisLimiter;
use crate::store::{self, DlqFilter, LetterStatus};

/// Where and how to sign in.
#[derive(Debug, Args)]
pub struct OrgArgs {
    /// The tenant's bundle: a directory holding `bundle.toml`, or `partner/tenant` in
    /// `--contracts` (under the engine protocol: `SYNCGATE_TENANT`).
    #[arg(long, env = "SYNCGATE_TENANT", value_name = "DIR|PARTNER/TENANT")]
    pub bundle: String,
    /// The registry `partner/tenant` is looked up in (under the engine protocol:
    /// `SYNCGATE_CONTRACTS`).
    #[arg(
        long,
        env = "SYNCGATE_CONTRACTS",
        default_value = "contracts",
        value_name = "DIR"
    )]
    pub contracts: PathBuf,
    /// The org's login URL (e.g. `https://login.salesforce.com`, or a `syncgate mock serve`
    /// URL; under the engine protocol: `SYNCGATE_TARGET_URL`).
    #[arg(long, env = "SYNCGATE_TARGET_URL", value_name = "URL")]
    pub target: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The connected app to sign in as: shared by every command that talks to an org.
#[derive(Debug, Args)]
pub struct ClientArgs {
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
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_poll, requires = "follow")]
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
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_poll, requires = "shared")]
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
}

fn parse_poll(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "`{s}` is not a positive duration (e.g. 500ms, 5s, 1m)"
        )),
    }
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
    if let Err(why) = check_target_url(&org.target) {
        error(format_args!("--target `{}`: {why}", org.target));
        return Err(exit::BAD_INPUT);
    }
    let ca_pem = match &org.client.ca_file {
        None => None,
        Some(p) => Some(read_ca_file(p).map_err(|why| {
            error(format_args!("--ca-file {}: {why}", p.display()));
            exit::BAD_INPUT
        })?),
    };
    Ok(Target {
        login_url: org.target.clone(),
        credentials: Credentials {
            client_id: org.client.client_id.clone(),
            client_secret: Secret::new(org.client.client_secret.clone()),
        },
        request_log: None,
        ca_pem,
    })
}

/// Why `url` cannot be an org's login URL: it must be `http://` or `https://` with a host.
pub(super) fn check_target_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("not a URL ({e}); e.g. https://login.salesforce.com"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not `{}`",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// A CA file's PEM, or why it is unusable: unreadable, empty, or holding no certificate.
pub(super) fn read_ca_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    if pem.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty (expected a PEM certificate)".into());
    }
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err("no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)".into());
    }
    // Parsing alone accepts some garbage; building a client with it checks the certificate.
    let unusable =
        |e: reqwest::Error| format!("not a usable PEM certificate: {}", store::cause_chain(&e));
    let cert = reqwest::Certificate::from_pem(&pem).map_err(unusable)?;
    reqwest::Client::builder()
        .add_root_certificate(cert)
        .build()
        .map_err(unusable)?;
    Ok(pem)
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

/// What `syncgate sync` prints at the end.
pub type SyncSummary = RunSummary;

/// A progress bar on stderr (indicatif redraws at most a few times a second).
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Arc<Bar> {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} records  {msg}")
        {
            bar.set_style(style.progress_chars("#-"));
        }
        Arc::new(Bar(bar))
    }
}

impl Watch for Bar {
    fn page_started(&self, total: usize) {
        self.0.reset();
        self.0.set_length(total as u64);
    }

    fn settled(&self, p: &Progress) {
        self.0.set_position(p.settled as u64);
        self.0.set_message(p.object.clone());
    }

    fn page_finished(&self) {
        self.0.finish_and_clear();
    }

    fn notice(&self, message: &str) {
        self.0.suspend(|| eprintln!("{message}"));
    }
}

/// No bar (stderr is not a terminal, or `--no-progress`): notices still go to stderr.
struct Notices;

impl Watch for Notices {
    fn page_started(&self, _total: usize) {}
    fn settled(&self, _progress: &Progress) {}
    fn page_finished(&self) {}
    fn notice(&self, message: &str) {
        eprintln!("{message}");
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

/// `syncgate sync`: 0 when every record landed, 1 when some were dead-lettered.
pub fn sync(args: SyncArgs, db: Option<&str>) -> i32 {
    let bundle = match load_bundle(&args.org) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let engine = match crate::engine::config_file::EngineSettings::resolve(
        args.engine_config.as_deref(),
        &args.org.contracts,
    ) {
        Ok(e) => e,
        Err(e) => {
            error(e);
            return exit::BAD_INPUT;
        }
    };
    let spec = match SourceSpec::parse(&args.source) {
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
    let state = match store::open(db.or(protocol_store.as_deref())) {
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
    let seed = args
        .seed
        .unwrap_or_else(|| Seed(Clock::system().now().as_millis() as u64));
    let tenant = format!("{}/{}", bundle.partner, bundle.tenant);
    if let Some(Err(e)) = args.metrics_addr.as_ref().map(metrics_http::check_addr) {
        error(e);
        return exit::BAD_INPUT;
    }
    let counters = Arc::new(std::sync::Mutex::new(metrics_http::Counters::default()));
    let show_bar = !args.no_progress && std::io::stderr().is_terminal();
    if let Some(path) = &args.crm_outbox {
        if let Err(e) = crate::engine::protocol_out::touch_outbox(path) {
            error(format_args!("--crm-outbox {}: {e}", path.display()));
            return exit::BAD_INPUT;
        }
    }
    let outbox = args.crm_outbox.as_ref().map(JsonlOutbox::new);
    let bar = show_bar.then(Bar::new);
    let mut runner = Runner::new(&bundle, engine.config, Clock::system(), &*state, seed);
    runner.page = args.page_size as usize;
    runner.follow = args.follow.then_some(args.poll);
    runner.watch = Some(match bar {
        Some(b) => b as Arc<dyn Watch>,
        None => Arc::new(Notices),
    });
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
        match rt.block_on(RedisLimiter::connect(url, &args.redis_prefix)) {
            Ok(limiter) => runner.limiter = (Arc::new(limiter), runner.config.local_policy()),
            Err(e) => {
                error(format_args!("--redis-url: cannot reach the limiter: {e}"));
                return exit::INTERNAL;
            }
        }
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
    let mut summary = SyncSummary::default();
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
    if let Err(e) = rt.block_on(write_protocol_files(&args, &*state, &tenant, &summary)) {
        error(e);
        return exit::INTERNAL;
    }
    match outcome {
        Ok(()) => {}
        Err(RunError::Source(e)) => {
            error(e);
            return exit::BAD_INPUT;
        }
        Err(e @ (RunError::Engine(_) | RunError::Changes(_))) => {
            // A run that reached its deadline or retry budget ended as configured: it
            // failed (exit 1), the tool did not.
            let bounded = matches!(e, RunError::Engine(EngineError::Bounded(_)));
            // What got done before the failure still counts (and is recorded as applied).
            summary.error = Some(e.to_string());
            // Nothing to show when it failed before doing anything (an unreachable org).
            if summary.runs > 0 {
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&summary).expect("summary serializes")
                    );
                } else {
                    print_summary(&summary, &tenant, &args.org.target);
                }
            }
            error(format_args!("the sync stopped: {e}"));
            return if bounded {
                exit::FAILED
            } else {
                exit::INTERNAL
            };
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serializes")
        );
    } else {
        print_summary(&summary, &tenant, &args.org.target);
    }
    if summary.report.dead_lettered + summary.report.already_dead_lettered > 0 {
        exit::FAILED
    } else {
        exit::PASSED
    }
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
    summary: &SyncSummary,
) -> Result<(), String> {
    use crate::engine::protocol_out::{write_dead_letters, write_report};
    if let Some(path) = &args.dead_letters {
        let letters = state
            .dlq_list(&DlqFilter::tenant(tenant))
            .await
            .map_err(|e| format!("cannot read the dead-letter queue: {e}"))?;
        write_dead_letters(path, &letters)
            .map_err(|e| format!("--dead-letters {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.report {
        write_report(path, &summary.report)
            .map_err(|e| format!("--report {}: {e}", path.display()))?;
    }
    Ok(())
}

fn print_summary(summary: &SyncSummary, tenant: &str, target: &str) {
    let report = &summary.report;
    println!(
        "synced {tenant} into {target}{}",
        if summary.interrupted {
            " (stopped early: the rest resumes on the next start)"
        } else {
            ""
        }
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
    if report.already_dead_lettered > 0 {
        println!(
            "  still rejected: {} (versions Salesforce refused before; `syncgate dlq redrive` sends them)",
            report.already_dead_lettered
        );
    }
    println!("  retries:        {}", report.retries);
    match report.api_usage {
        Some(u) => println!(
            "  API calls:      {} (org budget now {}/{} today)",
            report.api_calls, u.used, u.max
        ),
        None => println!("  API calls:      {}", report.api_calls),
    }
    if report.rejected_before_sending > 0 {
        println!(
            "  rejected:       {} before sending (the bundle rejects them; in the dead-letter queue, no API call spent)",
            report.rejected_before_sending
        );
    }
    if report.deleted > 0 {
        println!("  deleted:        {} (hard_delete policy)", report.deleted);
    }
    for (entity, routed) in &report.routed_columns {
        let pairs: Vec<String> = routed.iter().map(|(c, f)| format!("{c} -> {f}")).collect();
        println!(
            "  new columns:    {entity}: {} (routed to same-named fields)",
            pairs.join(", ")
        );
    }
    for (entity, cols) in &report.unmapped_columns {
        println!(
            "  unmapped:       {entity}: {} (no field of the bundle reads them)",
            cols.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if !report.conflicts.is_empty() {
        println!(
            "  conflicts:      {} field value(s) kept as Salesforce has them (edited there after the source's change):",
            report.conflicts.len()
        );
        for c in report.conflicts.iter().take(10) {
            println!(
                "                  {} {}.{}: kept {}, source wanted {} (Salesforce {} by {}, source {})",
                c.object, c.source_id, c.field, c.crm_value, c.source_value,
                c.crm_modified_at, c.crm_modified_by, c.source_changed_at
            );
        }
        if report.conflicts.len() > 10 {
            println!(
                "                  … and {} more (`--json` lists them all)",
                report.conflicts.len() - 10
            );
        }
    }
    if let Some(c) = &summary.crm_changes {
        println!(
            "  CRM changes:    {} delivered to the source ({} events, {} duplicates and {} own echoes skipped, {} gaps re-read, {} re-syncs)",
            c.changes_delivered, c.events_seen, c.duplicates_skipped, c.echoes_skipped, c.gaps_reread, c.resyncs
        );
    }
    if let Some(w) = &summary.shared {
        println!(
            "  shared work:    {} batch(es) sent by this process, {} taken over by another",
            w.completed.len(),
            w.lost.len()
        );
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
            let mut letters = match rt.block_on(state.dlq_list(&filter)) {
                Ok(l) => l,
                Err(e) => {
                    error(e);
                    return exit::INTERNAL;
                }
            };
            let before = letters.len();
            if !a.all {
                letters.retain(|l| l.status == LetterStatus::Queued);
            }
            let hidden = before - letters.len();
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&letters).expect("letters serialize")
                );
            } else {
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
                redrive::redrive(
                    &bundle,
                    &mut client,
                    &*state,
                    &*state,
                    &filter,
                    a.rate,
                    &clock,
                )
                .await
                .map_err(|e| e.to_string())
            });
            match result {
                Ok(r) => {
                    if a.json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&r).expect("report serializes")
                        );
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
