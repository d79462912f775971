//! `syncgate sync` and `syncgate dlq …`: the engine against a real (or mock) org, and the
//! dead-letter queue it leaves.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::{Args, Subcommand};
use serde::Serialize;
use tokio::sync::Notify;

use super::{error, exit, runtime};
use crate::contract::Bundle;
use crate::engine::cdc::{CdcConfig, CdcConsumer, CdcReport, JsonlOutbox};
use crate::engine::client::{Credentials, SalesforceClient, Secret};
use crate::engine::source::SourceSet;
use crate::engine::table_source::{Pull, TableDb, TableSource};
use crate::engine::{
    redrive, EngineConfig, EngineError, Fence, Progress, Sync, SyncReport, Target,
};
use crate::sim::time::parse_duration;
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
    /// Where source records come from: a directory of `<entity>.jsonl` / `<entity>.csv`
    /// change files; a SQLite database (`sqlite:PATH`, or a path ending in `.db`, `.sqlite`
    /// or `.sqlite3`); or a PostgreSQL URL (`postgres://…`). A database has one table per
    /// source entity with `id` and `updated_at` columns, read incrementally from a cursor
    /// kept in the state store (`--database-url`).
    #[arg(long, value_name = "DIR|sqlite:PATH|postgres://…")]
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
    /// restart resumes where it stopped. Reads the change-event stream a `syncgate mock
    /// serve` org publishes (`/__syncgate/events`).
    #[arg(long, value_name = "FILE")]
    pub crm_outbox: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// The engine configuration: a TOML file with an `[engine]` table (keys: README.md), the
    /// same file the gate verifies. Default: `syncgate.toml` beside the --contracts directory
    /// when present, else the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub engine_config: Option<PathBuf>,
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

/// A source as the sync loop reads it: changes since the last commit, then a commit once
/// the engine has applied (or dead-lettered) them.
enum Feed {
    /// Re-read on every tick; only versions above the highest settled earlier in this
    /// process are sent (across restarts, the dedupe store skips applied ones). A stale
    /// version appended late never overwrites a newer one.
    Dir {
        path: PathBuf,
        settled: HashMap<(String, String), u64>,
    },
    Tables(TableSource),
}

/// Records pulled from a [`Feed`], not committed yet.
struct Pulled {
    set: SourceSet,
    /// Table cursors to store on commit.
    tables: Option<Pull>,
    more: bool,
}

impl Feed {
    async fn pull(
        &mut self,
        bundle: &Bundle,
        cursors: &dyn store::CheckpointStore,
        page: usize,
    ) -> Result<Pulled, String> {
        match self {
            Feed::Dir { path, settled } => {
                let mut set = SourceSet::load_dir(path).map_err(|e| e.to_string())?;
                for records in set.entities.values_mut() {
                    records.retain(|r| {
                        settled
                            .get(&(r.entity.clone(), r.id.clone()))
                            .is_none_or(|&done| r.version > done)
                    });
                }
                set.entities.retain(|_, records| !records.is_empty());
                Ok(Pulled {
                    set,
                    tables: None,
                    more: false,
                })
            }
            Feed::Tables(tables) => {
                let names: Vec<&str> = bundle
                    .objects_parent_first()
                    .into_iter()
                    .map(|(_, spec)| spec.source.as_str())
                    .collect();
                let mut pull = tables
                    .pull(&names, cursors, page)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Pulled {
                    set: std::mem::take(&mut pull.set),
                    more: pull.more,
                    tables: Some(pull),
                })
            }
        }
    }

    async fn commit(
        &mut self,
        pulled: &Pulled,
        cursors: &dyn store::CheckpointStore,
    ) -> Result<(), String> {
        match self {
            Feed::Dir { settled, .. } => {
                for r in pulled.set.entities.values().flatten() {
                    let done = settled.entry((r.entity.clone(), r.id.clone())).or_default();
                    *done = (*done).max(r.version);
                }
                Ok(())
            }
            Feed::Tables(tables) => match &pulled.tables {
                Some(pull) => tables
                    .commit(pull, cursors)
                    .await
                    .map_err(|e| e.to_string()),
                None => Ok(()),
            },
        }
    }
}

/// Refuses the next request once a stop was asked for: the batch in flight finishes, and
/// its records are recorded as applied; the rest waits for the next start.
struct StopFence(Arc<AtomicBool>);

#[async_trait]
impl Fence for StopFence {
    async fn still_ours(&self) -> Result<(), EngineError> {
        if self.0.load(Ordering::SeqCst) {
            Err(EngineError::Fenced("a stop was requested".into()))
        } else {
            Ok(())
        }
    }
}

/// What `syncgate sync` prints at the end.
#[derive(Debug, Default, Serialize)]
pub struct SyncSummary {
    #[serde(flatten)]
    pub report: SyncReport,
    /// Engine runs (pages or ticks with changes).
    pub runs: u32,
    /// Stopped by SIGINT/SIGTERM before the source was drained.
    pub interrupted: bool,
    /// `--follow` ticks that failed and were tried again on the next tick.
    pub tick_failures: u32,
    /// Why the engine stopped, when it failed (the counts are what it did before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Salesforce → source: what the change-event consumer did (with `--crm-outbox`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crm_changes: Option<CdcReport>,
}

impl SyncSummary {
    fn add(&mut self, r: SyncReport) {
        // The summary keeps counts, not the timeline.
        self.report.absorb(
            SyncReport {
                events: Vec::new(),
                ..r
            },
            0,
        );
        self.runs += 1;
    }
}

/// A progress bar on stderr, redrawn at most ten times a second.
struct Bar {
    state: Mutex<BarState>,
}

struct BarState {
    total: usize,
    drawn_at: Option<Instant>,
}

impl Bar {
    fn new() -> Arc<Bar> {
        Arc::new(Bar {
            state: Mutex::new(BarState {
                total: 0,
                drawn_at: None,
            }),
        })
    }

    fn start(&self, total: usize) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.total = total;
        s.drawn_at = None;
    }

    fn draw(&self, p: &Progress) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let done = p.settled >= s.total;
        if !done
            && s.drawn_at
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        s.drawn_at = Some(Instant::now());
        const WIDTH: usize = 30;
        let filled = (p.settled * WIDTH)
            .checked_div(s.total)
            .unwrap_or(WIDTH)
            .min(WIDTH);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K[{}{}] {}/{} records  {}",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            p.settled.min(s.total),
            s.total,
            p.object
        );
        let _ = err.flush();
    }

    fn clear(&self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

/// Sets `stop` on the first SIGINT or SIGTERM (and wakes `wake`); a second one exits at once.
fn watch_signals(stop: Arc<AtomicBool>, wake: Arc<Notify>) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        stop.store(true, Ordering::SeqCst);
        wake.notify_one();
        eprintln!("\nstopping after the batch in flight (signal again to quit at once)");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(130);
    });
    Ok(())
}

/// Settings of one `syncgate sync` loop.
struct Loop<'a> {
    bundle: &'a Bundle,
    /// The engine's settings (`--engine-config`).
    config: EngineConfig,
    state: &'a dyn store::Store,
    seed: Seed,
    page: usize,
    follow: bool,
    poll: Duration,
    bar: Option<Arc<Bar>>,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    /// Where Salesforce's changes to CRM-owned fields go (`--crm-outbox`).
    crm_outbox: Option<PathBuf>,
}

#[derive(Debug)]
enum LoopError {
    Source(String),
    Engine(EngineError),
}

impl std::fmt::Display for LoopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoopError::Source(e) => write!(f, "{e}"),
            LoopError::Engine(e) => write!(f, "the engine stopped: {e}"),
        }
    }
}

impl Loop<'_> {
    /// Runs until the source is drained (or, with `--follow`, until a stop).
    async fn run(
        &self,
        feed: &mut Feed,
        target: &Target,
        summary: &mut SyncSummary,
    ) -> Result<(), LoopError> {
        let clock = Clock::system();
        // Signed in once: one session for every tick (the engine refreshes it if it expires).
        let mut client = self
            .engine(0)
            .connect(target)
            .await
            .map_err(LoopError::Engine)?;
        let outbox = self.crm_outbox.as_ref().map(JsonlOutbox::new);
        let mut consumer = match &outbox {
            Some(sink) => {
                let mut cdc_client = SalesforceClient::new(
                    &target.login_url,
                    &self.bundle.api_version,
                    target.credentials.clone(),
                    clock.clone(),
                    "syncgate",
                    "cdc",
                );
                if let Some(pem) = &target.ca_pem {
                    cdc_client
                        .trust_ca(pem)
                        .map_err(|e| LoopError::Engine(e.into()))?;
                }
                let config = CdcConfig::new(
                    format!(
                        "{}/__syncgate/events",
                        target.login_url.trim_end_matches('/')
                    ),
                    "syncgate",
                );
                Some(CdcConsumer::new(
                    self.bundle,
                    config,
                    clock.clone(),
                    self.seed,
                    cdc_client,
                    self.state,
                    self.state,
                    sink,
                ))
            }
            None => None,
        };
        let result = self
            .ticks(feed, &mut client, &mut consumer, &clock, summary)
            .await;
        summary.report.api_calls = client.calls();
        summary.report.api_usage = client.usage;
        result
    }

    async fn ticks(
        &self,
        feed: &mut Feed,
        client: &mut SalesforceClient,
        consumer: &mut Option<CdcConsumer<'_>>,
        clock: &Clock,
        summary: &mut SyncSummary,
    ) -> Result<(), LoopError> {
        let mut first = true;
        loop {
            // Step 1: source → org, page by page, each page's cursor committed after it.
            match self.sync_changes(feed, client, summary).await {
                Ok(true) => {}
                Ok(false) => {
                    summary.interrupted = true;
                    return Ok(());
                }
                // A failure on the first tick is a configuration problem: stop. Later, a
                // source half-written or an org briefly away must not end a follower: the
                // page was not committed, so the next tick tries it again.
                Err(e) if self.follow && !first => {
                    summary.tick_failures += 1;
                    eprintln!("warning: this tick failed, trying again next tick: {e}");
                }
                Err(e) => return Err(e),
            }
            // Step 2: Salesforce change events → source (CRM-owned fields), everything on the
            // bus since the stored replay ID, which is committed after the outbox took it.
            if let Some(c) = consumer.as_mut() {
                match c.drain().await {
                    Ok(r) => summary.crm_changes = Some(r),
                    Err(e) if self.follow && !first => {
                        summary.tick_failures += 1;
                        eprintln!(
                            "warning: reading change events failed, trying again next tick: {e}"
                        );
                    }
                    Err(e) => return Err(LoopError::Source(e.to_string())),
                }
            }
            first = false;
            if !self.follow {
                return Ok(());
            }
            if self.stop.load(Ordering::SeqCst) {
                summary.interrupted = true;
                return Ok(());
            }
            tokio::select! {
                _ = clock.sleep(self.poll) => {}
                _ = self.wake.notified() => {}
            }
            if self.stop.load(Ordering::SeqCst) {
                summary.interrupted = true;
                return Ok(());
            }
        }
    }

    fn engine(&self, run: u32) -> Sync<'_> {
        let dlq: &dyn store::DeadLetterStore = self.state;
        let dedupe: &dyn store::DedupeStore = self.state;
        // A version applied in the last week is not sent again (a re-run after a crash resumes).
        let mut engine = Sync::new(
            self.bundle,
            self.config.clone(),
            Clock::system(),
            Seed(self.seed.0.wrapping_add(u64::from(run))),
            dlq,
        )
        .with_dedupe(dedupe, Duration::from_secs(7 * 24 * 3600));
        if let Some(bar) = &self.bar {
            let bar = bar.clone();
            engine = engine.with_progress(Arc::new(move |p: &Progress| bar.draw(p)));
        }
        engine
    }

    /// Syncs every change the feed has now; false when a stop cut it short.
    async fn sync_changes(
        &self,
        feed: &mut Feed,
        client: &mut SalesforceClient,
        summary: &mut SyncSummary,
    ) -> Result<bool, LoopError> {
        let cursors: &dyn store::CheckpointStore = self.state;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let pulled = feed
                .pull(self.bundle, cursors, self.page)
                .await
                .map_err(LoopError::Source)?;
            if pulled.set.entities.values().all(Vec::is_empty) {
                return Ok(true);
            }
            let objects = self.bundle.objects_parent_first();
            if let Some(bar) = &self.bar {
                let total = objects
                    .iter()
                    .map(|(_, spec)| pulled.set.latest(&spec.source).len())
                    .sum();
                bar.start(total);
            }
            let mut engine = self.engine(summary.runs + 1);
            let fence = StopFence(self.stop.clone());
            let mut stopped = false;
            for (object, spec) in objects {
                let records = pulled.set.latest(&spec.source);
                match engine
                    .send_records(client, object, &records, Some(&fence))
                    .await
                {
                    Ok(()) => {}
                    Err(EngineError::Fenced(_)) if self.stop.load(Ordering::SeqCst) => {
                        stopped = true;
                        break;
                    }
                    Err(e) => {
                        if let Some(bar) = &self.bar {
                            bar.clear();
                        }
                        summary.add(engine.finish(client));
                        return Err(LoopError::Engine(e));
                    }
                }
            }
            if let Some(bar) = &self.bar {
                bar.clear();
            }
            summary.add(engine.finish(client));
            if stopped {
                // Not committed: the next start reads this page again, and the dedupe
                // store skips what this run applied.
                return Ok(false);
            }
            feed.commit(&pulled, cursors)
                .await
                .map_err(LoopError::Source)?;
            if !pulled.more {
                return Ok(true);
            }
        }
    }
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
    let seed = args
        .seed
        .unwrap_or_else(|| Seed(Clock::system().now().as_millis() as u64));
    let tenant = format!("{}/{}", bundle.partner, bundle.tenant);
    let show_bar = !args.no_progress && std::io::stderr().is_terminal();
    let sync_loop = Loop {
        bundle: &bundle,
        config: engine.config,
        state: &*state,
        seed,
        page: args.page_size as usize,
        follow: args.follow,
        poll: args.poll,
        bar: show_bar.then(Bar::new),
        stop: Arc::new(AtomicBool::new(false)),
        wake: Arc::new(Notify::new()),
        crm_outbox: args.crm_outbox.clone(),
    };
    let mut summary = SyncSummary::default();
    let outcome = rt.block_on(async {
        let mut feed = match &spec {
            SourceSpec::Dir(path) => Feed::Dir {
                path: path.clone(),
                settled: HashMap::new(),
            },
            SourceSpec::Tables(db) => Feed::Tables(
                TableSource::open(db, &tenant)
                    .await
                    .map_err(|e| LoopError::Source(e.to_string()))?,
            ),
        };
        watch_signals(sync_loop.stop.clone(), sync_loop.wake.clone())
            .map_err(|e| LoopError::Source(format!("cannot watch for signals: {e}")))?;
        sync_loop.run(&mut feed, &target, &mut summary).await
    });
    match outcome {
        Ok(()) => {}
        Err(LoopError::Source(e)) => {
            error(e);
            return exit::BAD_INPUT;
        }
        Err(LoopError::Engine(e)) => {
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
            return exit::INTERNAL;
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
    if summary.report.dead_lettered > 0 {
        exit::FAILED
    } else {
        exit::PASSED
    }
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
