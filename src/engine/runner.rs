//! The one orchestration every front door runs: `syncgate sync` (once and `--follow`) and
//! the gate's in-process engine. A run pulls the feed page by page; each page goes through
//! the engine's lanes (real-time first, then the backfill, parents first, Bulk API 2.0
//! above the threshold) with dedupe on, and its cursor is committed only after the engine
//! settled it; then the change-event consumer reads what Salesforce changed. A stop asked
//! for (SIGINT/SIGTERM in `sync`) lets the batch in flight finish and leaves the page
//! uncommitted.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::bounds::RunBounds;
use super::cdc::{
    pubsub, CdcConfig, CdcConsumer, CdcError, CdcReport, CrmChangeSink, PubSubStream,
};
use super::client::SalesforceClient;
use super::feed::Feed;
use super::shared::{SharedReport, SharedWork};
use super::{EngineConfig, EngineError, Fence, Progress, Sync, SyncReport, Target};
use crate::contract::Bundle;
use crate::sim::{Clock, Seed};
use crate::store::limiter::{LimitPolicy, Limiter, LocalLimiter};
use crate::store::{CheckpointStore, DeadLetterStore, DedupeStore, Store};

/// How long an applied record version's idempotency key lives: a re-run (or a restart after
/// a crash) within a week skips what was applied.
pub const DEDUPE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub use super::stop::Stop;

/// Refuses the next request once a stop was asked for: the batch in flight finishes, and
/// its records are recorded as applied; the rest waits for the next start.
struct StopFence(Stop);

#[async_trait]
impl Fence for StopFence {
    async fn still_ours(&self) -> Result<(), EngineError> {
        if self.0.requested() {
            Err(EngineError::Fenced("a stop was requested".into()))
        } else {
            Ok(())
        }
    }
}

/// Told how a run is going (a progress bar on a terminal).
pub trait Watch: Send + std::marker::Sync {
    /// A page of `total` records starts.
    fn page_started(&self, total: usize);
    /// Records settled so far in this page.
    fn settled(&self, progress: &Progress);
    /// The page is done (or failed).
    fn page_finished(&self);
    /// Something a person watching should read now (a long wait for the daily window).
    fn notice(&self, _message: &str) {}
}

/// Salesforce → source: the change-event consumer the runner drains after each tick.
pub struct CrmSide<'a> {
    pub config: CdcConfig,
    pub sink: &'a dyn CrmChangeSink,
}

impl<'a> CrmSide<'a> {
    /// Reads `target`'s change events as `client_name` (so the engine's own writes are echoes)
    /// over the Pub/Sub API: Salesforce's endpoint for a real org, the login host for a mock
    /// (see [`pubsub::default_endpoint`]; [`CrmSide::with_pubsub_url`] sets another).
    pub fn for_target(target: &Target, client_name: &str, sink: &'a dyn CrmChangeSink) -> Self {
        let mut config = CdcConfig::new(
            format!(
                "{}/__syncgate/events",
                target.login_url.trim_end_matches('/')
            ),
            client_name,
        );
        config.pubsub_url = Some(pubsub::default_endpoint(&target.login_url));
        CrmSide { config, sink }
    }

    /// Reads the Pub/Sub API at `url` instead of the default endpoint (when given).
    pub fn with_pubsub_url(mut self, url: Option<String>) -> Self {
        if let Some(url) = url {
            self.config.pubsub_url = Some(url);
        }
        self
    }
}

/// What a run did, summed over its pages and ticks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    #[serde(flatten)]
    pub report: SyncReport,
    /// Engine runs (pages or ticks with changes).
    pub runs: u32,
    /// Stopped by a stop request before the source was drained.
    pub interrupted: bool,
    /// `--follow` ticks that failed and were tried again on the next tick.
    pub tick_failures: u32,
    /// Why the engine stopped, when it failed (the counts are what it did before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Salesforce → source: what the change-event consumer did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crm_changes: Option<CdcReport>,
    /// With shared work: the units this process completed and those it lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedReport>,
}

impl RunSummary {
    fn add(&mut self, r: SyncReport, keep_timeline: bool) {
        let r = if keep_timeline {
            r
        } else {
            SyncReport {
                events: Vec::new(),
                ..r
            }
        };
        // One client serves every page: its request count is cumulative, so events need
        // no offset.
        self.report.absorb(r, 0);
        self.runs += 1;
    }
}

/// Why a run stopped short.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The source could not be read or committed.
    #[error("{0}")]
    Source(String),
    #[error("the engine stopped: {0}")]
    Engine(EngineError),
    /// The change-event consumer failed (the engine's part is done).
    #[error("reading change events failed: {0}")]
    Changes(String),
}

/// One engine, its settings and its state, over one feed.
pub struct Runner<'a> {
    pub bundle: &'a Bundle,
    pub config: EngineConfig,
    pub clock: Clock,
    /// Dead letters, idempotency keys, cursors and the consumer's replay ID.
    pub state: &'a dyn Store,
    /// Seed of the first engine run; each later page or tick adds one.
    pub seed: Seed,
    /// Records per table per page (table feeds).
    pub page: usize,
    /// Keep going, polling the feed this often, until a stop.
    pub follow: Option<Duration>,
    pub stop: Stop,
    pub watch: Option<Arc<dyn Watch>>,
    pub crm: Option<CrmSide<'a>>,
    /// Keep the engine's events (the replay timeline) in the summary.
    pub keep_timeline: bool,
    /// Split each page with the tenant's other processes by leases ([`super::shared`]).
    pub shared: Option<SharedWork>,
    /// Budget, rate and concurrency for every page of the run: one per-process limiter
    /// from the configuration by default, or one shared by every process (Redis).
    pub limiter: (Arc<dyn Limiter>, LimitPolicy),
    /// Called with the summary so far after each tick (`sync --metrics-addr`).
    pub on_tick: Option<TickHook>,
    /// The run's deadline and retry budget, armed as each pass over the feed starts.
    bounds: Arc<RunBounds>,
}

/// What [`Runner::on_tick`] calls.
pub type TickHook = Arc<dyn Fn(&RunSummary) + Send + std::marker::Sync>;

impl<'a> Runner<'a> {
    /// A runner with the defaults: one pass, pages of 5,000, no consumer, no timeline.
    pub fn new(
        bundle: &'a Bundle,
        config: EngineConfig,
        clock: Clock,
        state: &'a dyn Store,
        seed: Seed,
    ) -> Self {
        Runner {
            bundle,
            bounds: Arc::new(RunBounds::new(config.limits, clock.now())),
            clock,
            state,
            seed,
            page: 5_000,
            follow: None,
            stop: Stop::new(),
            watch: None,
            crm: None,
            keep_timeline: false,
            shared: None,
            limiter: (Arc::new(LocalLimiter::new()), config.local_policy()),
            config,
            on_tick: None,
        }
    }

    /// Runs until the feed is drained (or, following, until a stop). `summary` holds what
    /// was done, also when it fails.
    pub async fn run(
        &self,
        feed: &mut Feed,
        target: &Target,
        summary: &mut RunSummary,
    ) -> Result<(), RunError> {
        // Signed in once: one session for every tick (the engine refreshes it if it expires).
        let mut client = self
            .engine(0)
            .connect(target)
            .await
            .map_err(RunError::Engine)?;
        let mut consumer = self.consumer(target)?;
        let result = self.ticks(feed, &mut client, &mut consumer, summary).await;
        summary.report.api_calls = client.calls();
        summary.report.api_usage = client.usage;
        result
    }

    /// The change-event consumer over `target`, when the runner has a CRM side: a fresh one,
    /// with nothing in memory, resuming from the replay ID stored in `state`.
    fn consumer(&self, target: &Target) -> Result<Option<CdcConsumer<'a>>, RunError> {
        Ok(match &self.crm {
            Some(crm) => {
                let mut cdc_client = SalesforceClient::new(
                    &target.login_url,
                    &self.bundle.api_version,
                    target.credentials.clone(),
                    self.clock.clone(),
                    &self.config.client_name,
                    "cdc",
                );
                if let Some(pem) = &target.ca_pem {
                    cdc_client
                        .trust_ca(pem)
                        .map_err(|e| RunError::Engine(e.into()))?;
                }
                let consumer = CdcConsumer::new(
                    self.bundle,
                    crm.config.clone(),
                    self.clock.clone(),
                    self.seed,
                    cdc_client,
                    self.state,
                    self.state,
                    crm.sink,
                );
                // Its read-back queries spend from the engine's own calling limits.
                let consumer = consumer
                    .with_stop(self.stop.clone())
                    .with_limiter(self.limiter.0.clone(), self.limiter.1.clone());
                Some(match &crm.config.pubsub_url {
                    Some(url) => consumer.with_stream(Box::new(PubSubStream::new(
                        &crm.config,
                        url,
                        self.clock.clone(),
                        self.seed,
                        target.ca_pem.clone(),
                    ))),
                    None => consumer,
                })
            }
            None => None,
        })
    }

    /// Starts the change-event consumer again, as a restarted process would (a fresh
    /// consumer on the same state store, from the stored replay ID), and drains it: what it
    /// did, or why it failed. `None`: the runner has no CRM side.
    pub async fn restart_consumer(
        &self,
        target: &Target,
    ) -> Result<Option<CdcReport>, (CdcReport, RunError)> {
        let Some(mut consumer) = self
            .consumer(target)
            .map_err(|e| (CdcReport::default(), e))?
        else {
            return Ok(None);
        };
        match consumer.drain().await {
            Ok(r) => Ok(Some(r)),
            Err(e) => Err((consumer.report(), RunError::Changes(e.to_string()))),
        }
    }

    async fn ticks(
        &self,
        feed: &mut Feed,
        client: &mut SalesforceClient,
        consumer: &mut Option<CdcConsumer<'_>>,
        summary: &mut RunSummary,
    ) -> Result<(), RunError> {
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
                Err(e) if self.follow.is_some() && !first => {
                    summary.tick_failures += 1;
                    eprintln!("warning: this tick failed, trying again next tick: {e}");
                }
                Err(e) => return Err(e),
            }
            // Step 2: Salesforce change events → source (CRM-owned fields), everything on the
            // bus since the stored replay ID, which is committed after the sink took it.
            if let Some(c) = consumer.as_mut() {
                match c.drain().await {
                    Ok(r) => summary.crm_changes = Some(r),
                    // A stop during the consumer's reads or waits: what it read is not
                    // committed, and the next start reads it again.
                    Err(CdcError::Stopped) => {
                        summary.crm_changes = Some(c.report());
                        summary.interrupted = true;
                        return Ok(());
                    }
                    Err(e) if self.follow.is_some() && !first => {
                        summary.tick_failures += 1;
                        eprintln!(
                            "warning: reading change events failed, trying again next tick: {e}"
                        );
                    }
                    Err(e) => {
                        summary.crm_changes = Some(c.report());
                        return Err(RunError::Changes(e.to_string()));
                    }
                }
            }
            first = false;
            if let Some(hook) = &self.on_tick {
                summary.report.api_calls = client.calls();
                summary.report.api_usage = client.usage;
                hook(summary);
            }
            let Some(poll) = self.follow else {
                return Ok(());
            };
            if self.stop.requested() {
                summary.interrupted = true;
                return Ok(());
            }
            tokio::select! {
                _ = self.clock.sleep(poll) => {}
                _ = self.stop.requested_now() => {}
            }
            if self.stop.requested() {
                summary.interrupted = true;
                return Ok(());
            }
        }
    }

    /// The engine of run number `run` (its jitter seeded apart from the others').
    fn engine(&self, run: u32) -> Sync<'_> {
        let dlq: &dyn DeadLetterStore = self.state;
        let dedupe: &dyn DedupeStore = self.state;
        let mut engine = Sync::new(
            self.bundle,
            self.config.clone(),
            self.clock.clone(),
            Seed(self.seed.0.wrapping_add(u64::from(run))),
            dlq,
        )
        .with_dedupe(dedupe, DEDUPE_TTL)
        .with_stop(self.stop.clone())
        .with_bounds(self.bounds.clone())
        .with_limiter(self.limiter.0.clone(), self.limiter.1.clone());
        if let Some(watch) = &self.watch {
            let w = watch.clone();
            engine = engine.with_progress(Arc::new(move |p: &Progress| w.settled(p)));
            let w = watch.clone();
            engine = engine.with_notices(Arc::new(move |m: &str| w.notice(m)));
        }
        engine
    }

    /// Syncs every change the feed has now; false when a stop cut it short.
    async fn sync_changes(
        &self,
        feed: &mut Feed,
        client: &mut SalesforceClient,
        summary: &mut RunSummary,
    ) -> Result<bool, RunError> {
        let cursors: &dyn CheckpointStore = self.state;
        self.bounds.arm(self.clock.now());
        loop {
            if self.stop.requested() {
                return Ok(false);
            }
            let pulled = feed
                .pull(self.bundle, cursors, self.page)
                .await
                .map_err(RunError::Source)?;
            if pulled.set.entities.values().all(Vec::is_empty) {
                return Ok(true);
            }
            if let Some(watch) = &self.watch {
                let total = self
                    .bundle
                    .objects_parent_first()
                    .iter()
                    .map(|(_, spec)| pulled.set.latest(&spec.source).len())
                    .sum();
                watch.page_started(total);
            }
            let mut engine = self.engine(summary.runs);
            let outcome = match &self.shared {
                Some(shared) => {
                    let done = summary.shared.get_or_insert_with(SharedReport::default);
                    super::shared::run_page(
                        shared,
                        &mut engine,
                        client,
                        &pulled.set,
                        &self.stop,
                        done,
                    )
                    .await
                }
                None => {
                    let fence = StopFence(self.stop.clone());
                    engine
                        .run_lanes(client, &pulled.set, Some(&fence))
                        .await
                        .map(|()| true)
                }
            };
            if let Some(watch) = &self.watch {
                watch.page_finished();
            }
            summary.add(engine.finish(client), self.keep_timeline);
            match outcome {
                Ok(true) => {}
                // Not committed: the next start reads this page again, and the dedupe
                // store skips what this run applied.
                Ok(false) => return Ok(false),
                Err(EngineError::Fenced(_)) if self.stop.requested() => return Ok(false),
                Err(e) => return Err(RunError::Engine(e)),
            }
            feed.commit(&pulled, cursors)
                .await
                .map_err(RunError::Source)?;
            if !pulled.more {
                return Ok(true);
            }
        }
    }
}
