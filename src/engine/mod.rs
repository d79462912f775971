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
pub mod command_config;
mod config;
pub mod config_file;
pub mod conflicts;
pub mod deletes;
/// Dead letters are the store's (`crate::store::dlq`); re-exported for the engine's paths.
pub use crate::store::dlq;
pub mod feed;
pub mod lanes;
pub mod mapping;
pub mod protocol_out;
pub mod redrive;
mod report;
pub mod retry;
pub mod runner;
pub mod shared;
/// Source files are their own module (`crate::source`); re-exported for the engine's paths.
pub use crate::source;
pub mod table_source;

pub use config::EngineConfig;
pub use report::{EngineEvent, EventKind, SyncReport};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use self::breaker::{counts_as_outage, Breaker};
use self::client::{Credentials, SalesforceClient};
use self::dlq::{DeadLetter, ErrorClass};
use self::lanes::{Lane, RealtimeRule};
use self::mapping::map_record;
use self::retry::{item_is_retryable, Action, Failure};
use self::source::{SourceRecord, SourceSet};
use crate::contract::rules::{check_write, RegexRules, WriteKind};
use crate::contract::Bundle;
use crate::sim::{Clock, Rng, Seed, Timestamp};
use crate::store::limiter::{
    Admission, LimitError, LimitPolicy, Limiter, LocalLimiter, Permit, WaitReason,
};
use crate::store::{AppliedVersion, DeadLetterStore, DedupeStore, StoreError};

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

    /// Waits until `until` within the run's deadline (a wait that would end past it stops
    /// the run now), or less when a stop is requested.
    async fn wait_until(&self, until: Timestamp, doing: &str) -> Result<(), EngineError> {
        self.bounds.may_wait_until(until, doing)?;
        self.pause_until(until).await;
        Ok(())
    }

    /// Waits until `until`, or less when a stop is requested: every request passes a fence
    /// first, so cutting a wait short never sends anything early.
    async fn pause_until(&self, until: Timestamp) {
        match &self.stop {
            Some(stop) => {
                tokio::select! {
                    _ = self.clock.sleep_until(until) => {}
                    _ = stop.requested_now() => {}
                }
            }
            None => self.clock.sleep_until(until).await,
        }
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

    /// The idempotency key of one record version: tenant, object, source ID, operation, version.
    fn idempotency_key(&self, object: &str, record: &SourceRecord) -> String {
        let op = if record.deleted { "delete" } else { "upsert" };
        format!(
            "{}|{object}|{}|{op}|{}",
            self.tenant, record.id, record.version
        )
    }

    /// The key that marks one record version as rejected for good (not sent again by a
    /// later run; `dlq redrive` sends it explicitly).
    fn rejection_key(&self, object: &str, record: &SourceRecord) -> String {
        format!(
            "{}|{object}|{}|rejected|{}",
            self.tenant, record.id, record.version
        )
    }

    /// Records that these versions were applied (their keys live for the TTL), in one
    /// store transaction.
    async fn remember_applied(
        &mut self,
        object: &str,
        records: &[&SourceRecord],
    ) -> Result<(), EngineError> {
        if let (Some((store, ttl)), false) = (self.dedupe, records.is_empty()) {
            let keys: Vec<String> = records
                .iter()
                .map(|r| self.idempotency_key(object, r))
                .collect();
            let applied: Vec<AppliedVersion<'_>> = records
                .iter()
                .zip(&keys)
                .map(|(r, key)| self.applied(key, object, r))
                .collect();
            store
                .mark_applied_all(&applied, self.clock.now(), ttl)
                .await?;
        }
        Ok(())
    }

    /// What the store records for an applied version (its key, and the version that retires
    /// the record's older dead letters).
    fn applied<'k>(
        &'k self,
        key: &'k str,
        object: &'k str,
        record: &'k SourceRecord,
    ) -> AppliedVersion<'k> {
        AppliedVersion {
            key,
            tenant: &self.tenant,
            object,
            source_id: &record.id,
            version: record.version,
        }
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
        let mut items = Vec::new();
        let mut hard_deletes = Vec::new();
        let regex_rules = RegexRules::compile(spec);
        for &record in records {
            self.report.records += 1;
            if let Some((store, _)) = self.dedupe {
                let now = self.clock.now();
                if store
                    .is_live(&self.idempotency_key(object, record), now)
                    .await?
                {
                    self.report.already_synced += 1;
                    continue;
                }
                // Salesforce (or the contract) already said no to this very version: sending
                // it again spends a call for the same answer. It waits in the DLQ for a redrive.
                if store
                    .is_live(&self.rejection_key(object, record), now)
                    .await?
                {
                    self.report.already_dead_lettered += 1;
                    continue;
                }
            }
            let deleted = record.deleted;
            if deleted && deletes::policy_payload(spec).is_none() {
                self.event(
                    object,
                    EventKind::Delete {
                        source_id: record.id.clone(),
                        policy: spec.delete.label().into(),
                    },
                );
                hard_deletes.push(record);
                continue;
            }
            let parent_ext =
                |parent: &str| self.bundle.object(parent).map(|o| o.external_id.clone());
            let mut mapped = match map_record(spec, record, parent_ext) {
                Ok(mapped) => mapped,
                Err(e) => {
                    let now = self.clock.now();
                    self.dead_letter(
                        object,
                        record,
                        Value::Null,
                        ErrorClass::Mapping,
                        "INVALID_TYPE",
                        &e.to_string(),
                        0,
                        None,
                        now,
                        now,
                    )
                    .await?;
                    continue;
                }
            };
            if deleted {
                deletes::apply_policy(spec, &mut mapped.payload);
                self.event(
                    object,
                    EventKind::Delete {
                        source_id: record.id.clone(),
                        policy: spec.delete.label().into(),
                    },
                );
            }
            if !mapped.unmapped.is_empty() {
                self.report
                    .unmapped_columns
                    .entry(spec.source.clone())
                    .or_default()
                    .extend(mapped.unmapped);
            }
            if !mapped.routed.is_empty() {
                self.report
                    .routed_columns
                    .entry(spec.source.clone())
                    .or_default()
                    .extend(mapped.routed);
            }
            // A record the contract itself rejects would only spend an API call to be
            // rejected by Salesforce: it goes to the dead-letter queue now. Checked as an
            // update (a required field the source leaves out may already be set in the org).
            let verdict = check_write(object, spec, &mapped.payload, WriteKind::Update)
                .and_then(|()| regex_rules.check(&mapped.payload));
            if let Err(e) = verdict {
                self.report.rejected_before_sending += 1;
                let now = self.clock.now();
                self.dead_letter(
                    object,
                    record,
                    Value::Object(mapped.payload),
                    ErrorClass::Invalid,
                    &e.code,
                    &e.message,
                    0,
                    None,
                    now,
                    now,
                )
                .await?;
                continue;
            }
            items.push(Item {
                record,
                payload: Value::Object(mapped.payload),
            });
        }
        self.resolve_conflicts(client, object, spec, &mut items, fence)
            .await?;
        self.dispatch(client, object, &spec.external_id, &items, fence)
            .await?;
        self.hard_delete(client, object, spec, &hard_deletes, fence)
            .await
    }

    /// Sends mapped items: through Bulk API 2.0 when there are more than `bulk_threshold`
    /// (outside the real-time lane), else in sObject Collections batches.
    async fn dispatch(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        items: &[Item<'_>],
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        // Records counted so far and not waiting to be sent are settled.
        let mut settled = self.report.records - items.len();
        self.report_progress(object, settled);
        if self.lane != Some(Lane::RealTime) && items.len() > self.config.bulk_threshold {
            self.send_bulk(client, object, ext_field, items, fence)
                .await?;
            self.report_progress(object, settled + items.len());
            return Ok(());
        }
        for batch in items.chunks(self.config.batch_size.clamp(1, 200)) {
            self.send_batch(client, object, ext_field, batch, fence)
                .await?;
            settled += batch.len();
            self.report_progress(object, settled);
        }
        Ok(())
    }

    /// Waits until the limiter lets one request go (and, with a fence, the work is still
    /// ours); `None` when there is no limiter.
    async fn admit(
        &mut self,
        object: &str,
        fence: Option<&dyn Fence>,
    ) -> Result<Option<Permit>, EngineError> {
        self.bounds
            .check(self.clock.now(), &format!("sending {object}"))?;
        self.wait_for_breaker(object).await?;
        let Some((limiter, policy)) = self.limiter.clone() else {
            if let Some(f) = fence {
                f.still_ours().await?;
            }
            return Ok(None);
        };
        loop {
            // A stop ends the limiter's waits at once: without this the loop would ask
            // again and again for a token that is not there yet.
            if self.stop.as_ref().is_some_and(runner::Stop::requested) {
                return Err(EngineError::Fenced("a stop was requested".into()));
            }
            match limiter
                .acquire(&self.tenant, &policy, self.clock.now())
                .await?
            {
                Admission::Granted(permit) => {
                    // Checked after the wait, right before sending: the lease may have
                    // been taken over while this engine waited.
                    if let Some(f) = fence {
                        if let Err(e) = f.still_ours().await {
                            limiter.release(&permit).await?;
                            return Err(e);
                        }
                    }
                    return Ok(Some(permit));
                }
                Admission::Wait {
                    reason: WaitReason::DailyBudget,
                    until,
                } => {
                    self.wait_for_window_until(object, WaitReason::DailyBudget.label(), until)
                        .await?
                }
                // A token refills at a known time: an exact wait.
                Admission::Wait {
                    reason: WaitReason::Rate,
                    until,
                } => {
                    self.wait_until(until, &format!("waiting for the rate limiter ({object})"))
                        .await?
                }
                // The day's budget is spent and other workers' last requests are landing:
                // part of the wait for the daily window, which the deadline does not count.
                Admission::Wait {
                    reason: WaitReason::Draining,
                    until,
                } => {
                    let before = self.clock.now();
                    self.clock.poll_until(until).await;
                    self.bounds.excuse(self.clock.now().since(before));
                }
                // A slot frees when other workers progress: a poll. Short and frequent, so
                // no timeline event for each.
                Admission::Wait { until, .. } => self.clock.poll_until(until).await,
            }
        }
    }

    async fn send_batch(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        batch: &[Item<'_>],
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        let mut remaining: Vec<&Item> = batch.iter().collect();
        let mut first_failed: BTreeMap<&str, Timestamp> = BTreeMap::new();
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            self.guard_budget(client, object).await?;
            let payloads: Vec<Value> = remaining.iter().map(|i| i.payload.clone()).collect();
            let permit = self.admit(object, fence).await?;
            let outcome = client.upsert_collection(object, ext_field, &payloads).await;
            self.requests_sent = client.requests();
            self.after_call(permit, outcome.as_ref().err()).await?;
            let now = self.clock.now();
            let failure = match outcome {
                Ok(reply) => {
                    let results = reply.body.as_array().filter(|a| a.len() == remaining.len());
                    match results {
                        None => Failure::transport(format!(
                            "garbled collections answer: expected {} results",
                            remaining.len()
                        )),
                        Some(results) => {
                            let mut retry = Vec::new();
                            let mut retry_code = String::new();
                            let applied: Vec<&SourceRecord> = remaining
                                .iter()
                                .zip(results)
                                .filter(|(_, r)| {
                                    r.get("success").and_then(Value::as_bool) == Some(true)
                                })
                                .map(|(item, _)| item.record)
                                .collect();
                            self.remember_applied(object, &applied).await?;
                            for (item, result) in remaining.iter().zip(results) {
                                if result.get("success").and_then(Value::as_bool) == Some(true) {
                                    if result
                                        .get("created")
                                        .and_then(Value::as_bool)
                                        .unwrap_or(false)
                                    {
                                        self.report.created += 1;
                                    } else {
                                        self.report.updated += 1;
                                    }
                                    continue;
                                }
                                let err = result.pointer("/errors/0");
                                let code = err
                                    .and_then(|e| e.get("statusCode"))
                                    .and_then(Value::as_str)
                                    .unwrap_or("UNKNOWN_ERROR")
                                    .to_string();
                                let message = err
                                    .and_then(|e| e.get("message"))
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string();
                                if item_is_retryable(&code) {
                                    first_failed.entry(item.record.id.as_str()).or_insert(now);
                                    retry_code = code;
                                    retry.push(*item);
                                } else {
                                    let first = first_failed
                                        .get(item.record.id.as_str())
                                        .copied()
                                        .unwrap_or(now);
                                    self.dead_letter(
                                        object,
                                        item.record,
                                        item.payload.clone(),
                                        ErrorClass::Rejected,
                                        &code,
                                        &message,
                                        attempt,
                                        Some(reply.correlation_id.clone()),
                                        first,
                                        now,
                                    )
                                    .await?;
                                }
                            }
                            if retry.is_empty() {
                                return Ok(());
                            }
                            remaining = retry;
                            Failure {
                                action: Action::Retry,
                                status: Some(200),
                                code: retry_code,
                                message: "per-record retryable error".into(),
                                not_before: None,
                            }
                        }
                    }
                }
                Err(f) => f,
            };
            for item in &remaining {
                first_failed.entry(item.record.id.as_str()).or_insert(now);
            }
            match failure.action {
                Action::Refresh if !refreshed => {
                    refreshed = true;
                    attempt -= 1;
                    client.authenticate().await?;
                    self.requests_sent = client.requests();
                    continue;
                }
                Action::WaitForWindow => {
                    self.wait_for_lockout(object, &failure).await?;
                    attempt -= 1;
                    continue;
                }
                Action::DeadLetter | Action::Refresh => {
                    for item in &remaining {
                        let first = first_failed
                            .get(item.record.id.as_str())
                            .copied()
                            .unwrap_or(now);
                        self.dead_letter(
                            object,
                            item.record,
                            item.payload.clone(),
                            ErrorClass::Rejected,
                            &failure.code,
                            &failure.message,
                            attempt,
                            None,
                            first,
                            now,
                        )
                        .await?;
                    }
                    return Ok(());
                }
                Action::Retry => {}
            }
            if attempt >= self.config.max_attempts {
                let message = format!(
                    "gave up after {attempt} attempts; last error: {}",
                    failure.message
                );
                self.give_up(
                    object,
                    &remaining,
                    &failure,
                    &message,
                    attempt,
                    &first_failed,
                )
                .await?;
                return Ok(());
            }
            if let calls::Retried::GaveUp(message) = self
                .retry_wait(object, attempt, remaining.len(), &failure)
                .await?
            {
                self.give_up(
                    object,
                    &remaining,
                    &failure,
                    &message,
                    attempt,
                    &first_failed,
                )
                .await?;
                return Ok(());
            }
        }
    }

    /// After every API call: gives the permit back and tells the breaker how it went.
    async fn after_call(
        &mut self,
        permit: Option<Permit>,
        failure: Option<&Failure>,
    ) -> Result<(), EngineError> {
        self.usage_read_on = Some(self.clock.now().day_start());
        if let (Some(permit), Some((limiter, _))) = (permit, &self.limiter) {
            limiter.release(&permit).await?;
        }
        match failure {
            Some(f) if counts_as_outage(f.status) => {
                self.breaker.failure(self.clock.now());
            }
            _ => self.breaker.success(),
        }
        Ok(())
    }

    /// Holds the call while the circuit breaker is open (the cooldown shows in the timeline).
    async fn wait_for_breaker(&mut self, object: &str) -> Result<(), EngineError> {
        if let Some(until) = self.breaker.check(self.clock.now()) {
            let reason = format!(
                "circuit breaker open after {} consecutive transport/5xx failures; then one probe",
                self.breaker.threshold
            );
            self.event(
                object,
                EventKind::Wait {
                    until: until.to_iso(),
                    reason,
                },
            );
            self.wait_until(
                until,
                &format!("waiting for the circuit breaker's cooldown ({object})"),
            )
            .await?;
            self.breaker.check(self.clock.now());
        }
        Ok(())
    }

    /// Stops before the daily budget is spent, and waits for the next window.
    async fn guard_budget(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
    ) -> Result<(), EngineError> {
        if let Some(u) = client.usage {
            // Usage read in an earlier daily window says nothing about this one: another
            // worker (or a long wait) may have moved the clock past midnight since.
            let stale = self
                .usage_read_on
                .is_some_and(|day| day < self.clock.now().day_start());
            if stale {
                client.usage = None;
            } else if u.used >= u.max {
                match client.window_opens.take() {
                    Some(until) => {
                        self.wait_for_window_until(object, "daily budget guard", until)
                            .await?
                    }
                    None => self.wait_for_window(object, "daily budget guard").await?,
                }
                client.usage = None;
            }
        }
        Ok(())
    }

    /// After a `REQUEST_LIMIT_EXCEEDED` lockout: the window the answer's `Retry-After`
    /// states, else the next UTC day.
    async fn wait_for_lockout(
        &mut self,
        object: &str,
        failure: &Failure,
    ) -> Result<(), EngineError> {
        match failure.not_before {
            Some(until) if until > self.clock.now() => {
                self.wait_for_window_until(object, &failure.code, until)
                    .await
            }
            _ => self.wait_for_window(object, &failure.code).await,
        }
    }

    async fn wait_for_window(&mut self, object: &str, reason: &str) -> Result<(), EngineError> {
        let until = self.clock.now().next_day_start();
        self.wait_for_window_until(object, reason, until).await
    }

    /// Waits for the window that opens at `until`. A shared limiter names it: by the time
    /// this engine waits, another worker may already have moved the clock into it, and
    /// "the next window from now" would then skip a whole day.
    async fn wait_for_window_until(
        &mut self,
        object: &str,
        reason: &str,
        until: Timestamp,
    ) -> Result<(), EngineError> {
        self.window_waits += 1;
        if self.window_waits > self.config.max_window_waits {
            return Err(EngineError::BudgetExhausted(self.config.max_window_waits));
        }
        let before = self.clock.now();
        let wait = until.since(before);
        let message = format!(
            "{reason}: waiting {} for the next daily window (opens {}; wait {} of at most {})",
            bounds::human(wait),
            until.to_iso(),
            self.window_waits,
            self.config.max_window_waits
        );
        if let Some(hook) = &self.notices {
            hook(&format!("{}/{object}: {message}", self.tenant));
        }
        self.event(
            object,
            EventKind::Wait {
                until: until.to_iso(),
                reason: message,
            },
        );
        self.pause_until(until).await;
        // The deadline bounds the engine's own work, not the org's window.
        self.bounds.excuse(self.clock.now().since(before));
        Ok(())
    }

    fn event(&mut self, object: &str, kind: EventKind) {
        self.report.events.push(EngineEvent {
            at: self.clock.now(),
            after_request: self.requests_sent,
            object: object.to_string(),
            kind,
        });
    }

    #[allow(clippy::too_many_arguments)]
    async fn dead_letter(
        &mut self,
        object: &str,
        record: &SourceRecord,
        payload: Value,
        class: ErrorClass,
        code: &str,
        message: &str,
        attempts: u32,
        correlation_id: Option<String>,
        first: Timestamp,
        last: Timestamp,
    ) -> Result<(), EngineError> {
        self.report.dead_lettered += 1;
        if class != ErrorClass::RetriesExhausted {
            if let Some((store, ttl)) = self.dedupe {
                store
                    .check_and_set(&self.rejection_key(object, record), self.clock.now(), ttl)
                    .await?;
            }
        }
        self.event(
            object,
            EventKind::DeadLetter {
                source_id: record.id.clone(),
                code: code.to_string(),
            },
        );
        let mut headers_sent = BTreeMap::new();
        if attempts > 0 {
            headers_sent.insert(
                "Sforce-Call-Options".to_string(),
                format!("client={}", self.config.client_name),
            );
            headers_sent.insert("Accept".to_string(), "application/json".to_string());
            if let Some(id) = &correlation_id {
                headers_sent.insert("X-Correlation-Id".to_string(), id.clone());
            }
        }
        self.dlq
            .dlq_append(&DeadLetter {
                tenant: self.tenant.clone(),
                object: object.to_string(),
                source_id: record.id.clone(),
                source_version: record.version,
                payload,
                class,
                error_code: code.to_string(),
                message: message.to_string(),
                attempts,
                correlation_id,
                first_failed_at: first,
                last_failed_at: last,
                idempotency_key: self.idempotency_key(object, record),
                headers_sent,
            })
            .await?;
        Ok(())
    }
}
