//! The sync engine: source → mapping → plan → client, with retries that honour
//! `Retry-After`, a daily-budget guard and a dead-letter queue. The gate runs this same
//! code against the mock over real HTTP.
//!
//! A run sends two lanes (see [`lanes`]): real-time changes first, then the backfill, each
//! parent-first. An object whose backfill holds more than `EngineConfig::bulk_threshold`
//! records goes through one Bulk API 2.0 job ([`bulk`]), finished before its children
//! start; everything else through sObject Collections of 200. Every call passes a token
//! bucket and a concurrency cap (a local `store::limiter` unless a shared one is given),
//! and a per-tenant circuit breaker ([`breaker`]).

pub mod bounds;
pub mod breaker;
pub mod bulk;
mod calls;
pub mod cdc;
pub mod client;
mod collections;
pub mod command_config;
mod config;
pub mod config_file;
pub mod conflicts;
pub mod deletes;
/// Dead letters are the store's (`crate::store::dlq`); re-exported for the engine's paths.
pub use crate::store::dlq;
pub mod feed;
mod guard;
pub mod lanes;
mod letters;
pub mod mapping;
mod prepare;
pub mod protocol_out;
mod query_text;
pub mod redrive;
mod report;
pub mod retry;
pub mod runner;
pub mod shared;
pub mod stop;
/// Source files are their own module (`crate::source`); re-exported for the engine's paths.
pub use crate::source;
pub mod table_source;

pub use config::EngineConfig;
pub use report::{EngineEvent, EventKind, SyncReport};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use self::breaker::Breaker;
use self::client::{Credentials, SalesforceClient};
use self::lanes::{Lane, RealtimeRule};
use self::source::{SourceRecord, SourceSet};
use crate::contract::Bundle;
use crate::sim::{Clock, Rng, Seed, Timestamp};
use crate::store::limiter::{LimitError, LimitPolicy, Limiter, LocalLimiter};
use crate::store::{DeadLetterStore, DedupeStore, StoreError};

/// Where the engine writes.
#[derive(Clone, Debug)]
pub struct Target {
    /// Login URL (the token endpoint's host); the instance URL comes from the token answer.
    pub login_url: String,
    pub credentials: Credentials,
    /// Record every API request the engine sends here (the gate checks them against the contract).
    pub request_log: Option<client::RequestLog>,
    /// Extra CA certificate(s) to trust, PEM (a mock org served with `--tls`).
    pub ca_pem: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("the daily API budget stayed exhausted through {0} windows; stopping")]
    BudgetExhausted(u32),
    #[error("failed to record a dead letter: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Limiter(#[from] LimitError),
    /// The batch is no longer this engine's to send (a worker's lease was taken over).
    #[error("stopped a batch that is no longer ours: {0}")]
    Fenced(String),
    #[error("unreadable work item: {0}")]
    Work(String),
    /// The run reached one of its bounds (deadline, retry budget, a `Retry-After` too long).
    #[error("{0}")]
    Bounded(bounds::Exceeded),
}

impl From<bounds::Exceeded> for EngineError {
    fn from(e: bounds::Exceeded) -> Self {
        EngineError::Bounded(e)
    }
}

/// How far a run is: records settled so far (applied, skipped as already synced, or
/// dead-lettered) and the object being worked on. Given to a [`ProgressHook`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub object: String,
    pub settled: usize,
}

/// Called as records settle (after each batch), e.g. to draw a progress bar.
pub type ProgressHook = Arc<dyn Fn(&Progress) + Send + std::marker::Sync>;

/// Asked right before each request of a batch: may this engine still send it? A worker
/// answers by renewing its lease on the batch, and refuses once another worker took it.
#[async_trait]
pub trait Fence: Send + std::marker::Sync {
    async fn still_ours(&self) -> Result<(), EngineError>;
}

/// One engine run for one tenant.
pub struct Sync<'a> {
    bundle: &'a Bundle,
    config: EngineConfig,
    clock: Clock,
    jitter: Rng,
    dlq: &'a dyn DeadLetterStore,
    tenant: String,
    report: SyncReport,
    window_waits: u32,
    requests_sent: u64,
    /// Idempotency keys of applied record versions, and how long they live.
    dedupe: Option<(&'a dyn DedupeStore, Duration)>,
    limiter: Option<(Arc<dyn Limiter>, LimitPolicy)>,
    /// The daily window of the last answer (and so of `client.usage`).
    usage_read_on: Option<Timestamp>,
    progress: Option<ProgressHook>,
    breaker: Breaker,
    /// The lane `run` is sending; the real-time lane never uses Bulk.
    lane: Option<Lane>,
    realtime: Option<RealtimeRule>,
    /// A stop ends every wait early (the next request's fence then ends the run).
    stop: Option<runner::Stop>,
    /// The run's deadline and retry budget (shared by the engines of a run's pages).
    bounds: Arc<bounds::RunBounds>,
    /// Told what a person watching should know now (a long wait for the daily window).
    notices: Option<NoticeHook>,
    /// Per object, the collections batch size the org's triggers took last (see
    /// [`collections`]).
    batch_sizes: std::collections::HashMap<String, usize>,
    /// Dead letters decided and not yet stored, with the rejection key each sets: written
    /// together, in one store transaction per batch ([`Sync::flush_letters`]).
    letters: Vec<(crate::store::DeadLetter, Option<String>)>,
    /// How fast the org processed this run's Bulk jobs (when to poll the next one).
    bulk_pace: bulk::Pace,
}

/// Called with a line a person watching the run should read now (`sync` prints it on stderr).
pub type NoticeHook = Arc<dyn Fn(&str) + Send + std::marker::Sync>;

#[derive(Clone)]
struct Item<'s> {
    record: &'s SourceRecord,
    payload: Value,
}

impl<'a> Sync<'a> {
    pub fn new(
        bundle: &'a Bundle,
        config: EngineConfig,
        clock: Clock,
        seed: Seed,
        dlq: &'a dyn DeadLetterStore,
    ) -> Self {
        // A run's deadline and budget come from its runner ([`Sync::with_bounds`]).
        let bounds = Arc::new(bounds::RunBounds::retry_after_only(
            config.limits,
            clock.now(),
        ));
        Sync {
            bundle,
            clock,
            jitter: seed.stream("engine.jitter"),
            dlq,
            tenant: format!("{}/{}", bundle.partner, bundle.tenant),
            report: SyncReport::default(),
            window_waits: 0,
            requests_sent: 0,
            dedupe: None,
            limiter: Some((Arc::new(LocalLimiter::new()), config.local_policy())),
            usage_read_on: None,
            progress: None,
            breaker: Breaker::new(config.breaker_threshold, config.breaker_cooldown),
            lane: None,
            realtime: None,
            stop: None,
            bounds,
            notices: None,
            batch_sizes: Default::default(),
            letters: Vec::new(),
            bulk_pace: bulk::Pace::new(&config),
            config,
        }
    }

    /// Shares `bounds` (armed by the caller) with this engine: a run of many pages has one
    /// deadline and one retry budget.
    pub fn with_bounds(mut self, bounds: Arc<bounds::RunBounds>) -> Self {
        self.bounds = bounds;
        self
    }

    /// Sends notices (a wait for the daily window: how long, until when) to `hook`.
    pub fn with_notices(mut self, hook: NoticeHook) -> Self {
        self.notices = Some(hook);
        self
    }

    /// Ends every wait early once `stop` is requested: a `Retry-After` of a year or the
    /// next daily window does not hold a process that was asked to stop.
    pub fn with_stop(mut self, stop: runner::Stop) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Reports progress to `hook` as records settle.
    pub fn with_progress(mut self, hook: ProgressHook) -> Self {
        self.progress = Some(hook);
        self
    }

    fn report_progress(&self, object: &str, settled: usize) {
        if let Some(hook) = &self.progress {
            hook(&Progress {
                object: object.to_string(),
                settled,
            });
        }
    }

    /// Skips record versions already applied (their idempotency key is live in `store`) and
    /// records each version it applies, for `ttl`.
    pub fn with_dedupe(mut self, store: &'a dyn DedupeStore, ttl: Duration) -> Self {
        self.dedupe = Some((store, ttl));
        self
    }

    /// Asks `limiter` before every request (budget, rate, concurrency shared with other
    /// workers) and returns the permit after the answer.
    pub fn with_limiter(mut self, limiter: Arc<dyn Limiter>, policy: LimitPolicy) -> Self {
        self.limiter = Some((limiter, policy));
        self
    }

    /// Also puts the records `rule` marks in the real-time lane, whatever their change time.
    pub fn with_realtime(mut self, rule: RealtimeRule) -> Self {
        self.realtime = Some(rule);
        self
    }

    /// Syncs every object of the bundle from `source` into `target`: the real-time lane,
    /// then the backfill lane, each parents first (see [`lanes`]). One pass with no dedupe
    /// and no cursors: what deploys goes through [`runner::Runner`], which calls
    /// [`Sync::run_lanes`] per page.
    pub async fn run(
        mut self,
        source: &SourceSet,
        target: &Target,
    ) -> Result<SyncReport, EngineError> {
        let mut client = self.connect(target).await?;
        self.run_lanes(&mut client, source, None).await?;
        Ok(self.finish(&client))
    }

    /// Sends every object's latest versions in `source` through `client`: the real-time
    /// lane, then the backfill lane, each parents first (see [`lanes`]). With a `fence`,
    /// every request first checks the work is still ours.
    pub async fn run_lanes(
        &mut self,
        client: &mut SalesforceClient,
        source: &SourceSet,
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        for (lane, object, records) in self.lane_plan(source) {
            self.send_in_lane(lane, client, &object, &records, fence)
                .await?;
        }
        Ok(())
    }

    /// What [`Sync::run_lanes`] sends, in its order: per lane (real-time first), per object
    /// (parents first), the object's latest versions in `source`. Objects with nothing to
    /// send are left out.
    pub fn lane_plan<'s>(
        &self,
        source: &'s SourceSet,
    ) -> Vec<(Lane, String, Vec<&'s SourceRecord>)> {
        let (now, window, rule) = (
            self.clock.now(),
            self.config.realtime_window,
            self.realtime.clone(),
        );
        lanes::in_order(self.bundle, source, |r| {
            lanes::is_recent(r, now, window) || rule.as_ref().is_some_and(|f| f(r))
        })
    }

    /// [`Sync::send_records`] in `lane` (the real-time lane never uses Bulk).
    pub async fn send_in_lane(
        &mut self,
        lane: Lane,
        client: &mut SalesforceClient,
        object: &str,
        records: &[&SourceRecord],
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        self.lane = Some(lane);
        let sent = self.send_records(client, object, records, fence).await;
        self.lane = None;
        sent
    }

    /// Whether `records` of one object in `lane` would go through Bulk API 2.0 (then they
    /// are one unit of work: a job, not batches).
    pub fn uses_bulk(&self, lane: Lane, records: usize) -> bool {
        lane != Lane::RealTime && records > self.config.bulk_threshold
    }

    /// A client for `target`, signed in.
    pub async fn connect(&self, target: &Target) -> Result<SalesforceClient, EngineError> {
        let mut client = SalesforceClient::new(
            &target.login_url,
            &self.bundle.api_version,
            target.credentials.clone(),
            self.clock.clone(),
            &self.config.client_name,
            "sg",
        );
        if let Some(log) = &target.request_log {
            client.record_to(log.clone());
        }
        if let Some(pem) = &target.ca_pem {
            client.trust_ca(pem)?;
        }
        client.authenticate().await?;
        Ok(client)
    }

    /// What this engine did so far, with the calls `client` made.
    pub fn finish(mut self, client: &SalesforceClient) -> SyncReport {
        self.report.api_calls = client.calls();
        self.report.api_usage = client.usage;
        self.report.breaker_opened = self.breaker.times_opened();
        self.report
    }

    /// Maps `records` of `object` and sends them in batches; records that do not map are
    /// dead-lettered. With a `fence`, every request first checks the work is still ours.
    pub async fn send_records(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        records: &[&SourceRecord],
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        let bundle = self.bundle;
        let Some(spec) = bundle.object(object) else {
            return Err(EngineError::Work(format!(
                "the bundle has no object {object}"
            )));
        };
        self.requests_sent = client.requests();
        let sent = self
            .send_prepared(client, object, spec, records, fence)
            .await;
        // Letters decided before a failure are stored all the same.
        let stored = self.flush_letters().await;
        sent.and(stored)
    }

    async fn send_prepared(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        spec: &crate::contract::ObjectSpec,
        records: &[&SourceRecord],
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        let prepare::Prepared {
            mut items,
            hard_deletes,
        } = self.prepare(object, spec, records).await?;
        // The records the contract rejects, in one transaction.
        self.flush_letters().await?;
        self.resolve_conflicts(client, object, spec, &mut items, fence)
            .await?;
        self.dispatch(client, object, &spec.external_id, &items, fence)
            .await?;
        self.hard_delete(client, object, spec, &hard_deletes, fence)
            .await
    }

    fn event(&mut self, object: &str, kind: EventKind) {
        self.report.events.push(EngineEvent {
            at: self.clock.now(),
            after_request: self.requests_sent,
            object: object.to_string(),
            kind,
        });
    }
}
