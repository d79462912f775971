//! Change events in: a Change Data Capture consumer for one tenant that carries changes to
//! CRM-owned fields from Salesforce back to the source. It resumes from a stored replay ID,
//! drops duplicates (by `EventUuid`), the engine's own echoes (`changeOrigin` names its
//! client) and changes older than one already delivered, re-reads records behind gap
//! events, re-syncs an object on overflow or an expired replay ID, and hands the changes
//! to a [`CrmChangeSink`] before it moves the stored replay ID (at least once + dedupe).
//! Events come through a [`ChangeStream`] (`stream`: the mock's long-poll subscription;
//! `pubsub`: Salesforce's Pub/Sub API, used against real orgs and the mock alike); sinks are
//! in `sinks`.

mod event;
mod ordering;
pub mod pubsub;
mod read_back;
mod sinks;
mod stream;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::client::SalesforceClient;
use super::retry::Backoff;
use super::stop::Stop;
use crate::contract::{Bundle, Owner};
use crate::sim::{Clock, Rng, Seed, Timestamp};
use crate::store::limiter::{LimitPolicy, Limiter};
use crate::store::{CheckpointStore, DedupeStore, StoreError};

pub use self::event::{ChangeEvent, EventPage};
pub use self::pubsub::PubSubStream;
pub use self::sinks::{final_values, CrmChangeSink, JsonlOutbox, MemorySink, SinkError};
pub use self::stream::{ChangeStream, LongPollStream, Polled};

/// How long an `EventUuid` is remembered: at least as long as the bus keeps events (72 h),
/// so a redelivered event is always recognised.
pub const DEDUPE_TTL: Duration = Duration::from_secs(96 * 3600);
/// The topic carrying every object's change events.
pub const ALL_CHANGES: &str = "/data/ChangeEvents";
/// Record IDs per `WHERE Id IN (…)` lookup (keeps the SOQL well under its length limit).
const IDS_PER_QUERY: usize = 200;

/// Settings of one consumer.
#[derive(Clone, Debug)]
pub struct CdcConfig {
    /// The long-poll subscription endpoint (the mock's `…/__syncgate/events`).
    pub events_url: String,
    /// Salesforce's Pub/Sub API (`https://api.pubsub.salesforce.com:7443` for a real org,
    /// the mock's own URL for a mock): the runner reads change events there when it is set,
    /// from `events_url` otherwise.
    pub pubsub_url: Option<String>,
    /// How long a Pub/Sub poll waits for the next answer before it takes the stream as caught
    /// up (wall time). A mock answers at once with an empty batch; a real org sends one
    /// within 270 seconds, so without events a poll costs this long.
    pub pubsub_idle: Duration,
    pub topic: String,
    /// How long one poll may be held waiting for an event (0: answer at once).
    pub wait: Duration,
    /// Most events per poll (the endpoint allows up to 1,000).
    pub max_events: usize,
    /// The engine's client name (`Sforce-Call-Options: client=…`): events whose
    /// `changeOrigin` carries it are the engine's own writes coming back.
    pub client_name: String,
    pub dedupe_ttl: Duration,
    /// Attempts per call (poll or query), the first included.
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl CdcConfig {
    /// Defaults for a consumer polling `events_url` as the engine client `client_name`.
    pub fn new(events_url: impl Into<String>, client_name: impl Into<String>) -> Self {
        CdcConfig {
            events_url: events_url.into(),
            pubsub_url: None,
            pubsub_idle: Duration::from_secs(5),
            topic: ALL_CHANGES.into(),
            wait: Duration::ZERO,
            max_events: 1000,
            client_name: client_name.into(),
            dedupe_ttl: DEDUPE_TTL,
            max_attempts: 6,
            backoff: Backoff {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(60),
            },
        }
    }
}

/// How a change was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeVia {
    /// A change event carried the value.
    Event,
    /// A gap event named the record; the value was read back from the org.
    Reread,
    /// The whole object was read back (overflow, expired replay ID).
    Resync,
}

/// One CRM-owned field value to carry to the source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrmChange {
    pub object: String,
    /// The record's external-ID value: the source record's ID.
    pub source_id: String,
    /// The Salesforce record ID.
    pub record_id: String,
    pub field: String,
    pub value: Value,
    #[serde(serialize_with = "iso")]
    pub changed_at: Timestamp,
    /// The event's replay ID (absent for values read back from the org).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_uuid: Option<String>,
    pub via: ChangeVia,
}

fn iso<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_iso())
}

/// What a consumer did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CdcReport {
    pub polls: u64,
    pub events_seen: u64,
    pub duplicates_skipped: u64,
    pub echoes_skipped: u64,
    /// Changes older than one already delivered for the same record and field.
    pub stale_skipped: u64,
    /// Records read back after gap events.
    pub gaps_reread: u64,
    /// Objects read back in full (overflow, expired replay ID).
    pub resyncs: u64,
    pub changes_delivered: u64,
    /// Changes whose record could not be found any more (deleted since).
    pub unresolved: u64,
    pub api_calls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CdcError {
    #[error("failed to read change events from {url}: {message}")]
    Poll { url: String, message: String },
    #[error("failed to read {object} records back: {code}: {message}")]
    Query {
        object: String,
        code: String,
        message: String,
    },
    #[error(transparent)]
    Client(#[from] super::client::ClientError),
    #[error("the state store failed: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Limiter(#[from] crate::store::limiter::LimitError),
    /// A stop was asked for while the consumer read or waited; nothing of that poll was
    /// delivered or committed, so the next start reads it again.
    #[error("stopped while reading change events")]
    Stopped,
}

/// Orders changes to one field of one record: commit time, then commit number, then the
/// change's place in its transaction. A value read back from the org ranks after every
/// event committed at or before its `LastModifiedDate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    at_ms: i64,
    commit: u64,
    sequence: u64,
}

impl Version {
    fn read_back(modified: Timestamp) -> Self {
        Version {
            at_ms: modified.as_millis(),
            commit: u64::MAX,
            sequence: u64::MAX,
        }
    }

    fn encode(self) -> String {
        format!("{}:{}:{}", self.at_ms, self.commit, self.sequence)
    }

    fn decode(s: &str) -> Option<Self> {
        let mut parts = s.split(':');
        let v = Version {
            at_ms: parts.next()?.parse().ok()?,
            commit: parts.next()?.parse().ok()?,
            sequence: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(v)
    }
}

/// (object, record ID, field).
type FieldKey = (String, String, String);

/// A change event's value for one CRM-owned field, before its record's external ID is known.
struct Candidate {
    object: String,
    record_id: String,
    field: String,
    value: Value,
    version: Version,
    replay_id: u64,
    uuid: String,
}

/// What one poll returned, split by what to do with it.
#[derive(Default)]
struct Batch {
    candidates: Vec<Candidate>,
    /// Record IDs to read back, per object (gap events).
    reread: BTreeMap<String, BTreeSet<String>>,
    /// Objects to read back in full (overflow).
    resync: BTreeSet<String>,
    uuids: Vec<String>,
}

/// A change-event consumer for one tenant.
pub struct CdcConsumer<'a> {
    bundle: &'a Bundle,
    config: CdcConfig,
    clock: Clock,
    client: SalesforceClient,
    checkpoints: &'a dyn CheckpointStore,
    dedupe: &'a dyn DedupeStore,
    sink: &'a dyn CrmChangeSink,
    stream: Box<dyn ChangeStream + 'a>,
    jitter: Rng,
    tenant: String,
    /// Salesforce ID → external-ID value, per object, learnt from events and lookups.
    external_ids: HashMap<(String, String), String>,
    /// The newest version delivered per field (a cache of the stored watermarks).
    delivered: HashMap<FieldKey, Version>,
    report: CdcReport,
    /// Ends the consumer's reads and waits (a backoff, `Retry-After`, the daily window) at
    /// once; deliveries to the sink and commits are never cut short.
    stop: Option<Stop>,
    /// The engine's limiter: the consumer's API calls (read-back queries) spend from the
    /// same token bucket, concurrency cap and daily budget as the engine's writes.
    limiter: Option<(Arc<dyn Limiter>, LimitPolicy)>,
}

/// Runs `read` unless a stop is asked for first. Only reading is ever abandoned: it
/// delivers and commits nothing, so dropping it half-way loses nothing.
async fn unless_stopped<T>(
    stop: Option<&Stop>,
    read: impl std::future::Future<Output = Result<T, CdcError>>,
) -> Result<T, CdcError> {
    match stop {
        Some(stop) => tokio::select! {
            biased;
            _ = stop.requested_now() => Err(CdcError::Stopped),
            r = read => r,
        },
        None => read.await,
    }
}

/// What one poll read, ready to deliver.
struct Gathered {
    events: usize,
    changes: Vec<Staged>,
    uuids: Vec<String>,
    latest: Option<String>,
}

impl<'a> CdcConsumer<'a> {
    /// A consumer reading through `client` (signed in on first use).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bundle: &'a Bundle,
        config: CdcConfig,
        clock: Clock,
        seed: Seed,
        client: SalesforceClient,
        checkpoints: &'a dyn CheckpointStore,
        dedupe: &'a dyn DedupeStore,
        sink: &'a dyn CrmChangeSink,
    ) -> Self {
        let stream = Box::new(LongPollStream::new(&config, clock.clone(), seed));
        CdcConsumer {
            tenant: format!("{}/{}", bundle.partner, bundle.tenant),
            bundle,
            config,
            clock,
            client,
            checkpoints,
            dedupe,
            sink,
            stream,
            jitter: seed.stream("engine.cdc"),
            external_ids: HashMap::new(),
            delivered: HashMap::new(),
            report: CdcReport::default(),
            stop: None,
            limiter: None,
        }
    }

    /// Sends every API call through `limiter` under `policy` (the engine's own), so reading
    /// records back never goes past the engine's configured calling limits.
    pub fn with_limiter(mut self, limiter: Arc<dyn Limiter>, policy: LimitPolicy) -> Self {
        self.limiter = Some((limiter, policy));
        self
    }

    /// Ends reads and waits when `stop` is asked for (with [`CdcError::Stopped`]).
    pub fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Reads change events from `stream` instead of the long-poll subscription
    /// (`config.events_url`).
    pub fn with_stream(mut self, stream: Box<dyn ChangeStream + 'a>) -> Self {
        self.stream = stream;
        self
    }

    /// Where the replay ID is stored.
    pub fn checkpoint_scope(&self) -> String {
        format!("cdc|{}|{}", self.tenant, self.config.topic)
    }

    fn watermark_scope(&self, key: &FieldKey) -> String {
        format!("cdc|{}|wm|{}|{}|{}", self.tenant, key.0, key.1, key.2)
    }

    fn dedupe_key(&self, uuid: &str) -> String {
        format!("cdc|{}|{uuid}", self.tenant)
    }

    /// What the consumer did so far.
    pub fn report(&self) -> CdcReport {
        let mut r = self.report.clone();
        r.api_calls = self.client.calls();
        r
    }

    /// Polls until a poll brings nothing new (everything on the bus is handled).
    pub async fn drain(&mut self) -> Result<CdcReport, CdcError> {
        while self.poll_once().await? > 0 {}
        Ok(self.report())
    }

    /// One poll from the stored replay ID: handles its events, delivers the changes and
    /// then stores the new replay ID. Returns how many events the poll brought.
    pub async fn poll_once(&mut self) -> Result<usize, CdcError> {
        let scope = self.checkpoint_scope();
        let from = self
            .checkpoints
            .checkpoint(&scope)
            .await?
            .unwrap_or_else(|| "EARLIEST".into());
        let stop = self.stop.clone();
        let Some(read) = unless_stopped(stop.as_ref(), self.gather(&from)).await? else {
            return self.recover_from_expired_replay().await;
        };
        self.commit(read.changes, &read.uuids).await?;
        if let Some(latest) = read.latest {
            if from != latest {
                self.checkpoints.set_checkpoint(&scope, &latest).await?;
            }
        }
        Ok(read.events)
    }

    /// Reads the events after `from` and turns them into changes to deliver (re-reading
    /// what gap and overflow events name); `None` when the stream no longer knows `from`.
    async fn gather(&mut self, from: &str) -> Result<Option<Gathered>, CdcError> {
        let (page, latest) = match self.stream.poll(from, &mut self.client).await? {
            Polled::Events { events, latest } => (events, latest),
            Polled::InvalidReplay => return Ok(None),
        };
        self.report.polls += 1;
        let events = page.read().map_err(|message| CdcError::Poll {
            url: self.config.events_url.clone(),
            message,
        })?;
        let batch = self.sort(&events).await?;
        let changes = self.resolve(batch.candidates).await?;
        let mut changes = self.fresh_only(changes).await?;
        for (object, ids) in &batch.reread {
            if batch.resync.contains(object) {
                continue;
            }
            self.report.gaps_reread += ids.len() as u64;
            let ids: Vec<String> = ids.iter().cloned().collect();
            for chunk in ids.chunks(IDS_PER_QUERY) {
                let list = soql_id_list(chunk);
                let read = self
                    .read_back(object, Some(&format!("Id IN ({list})")), ChangeVia::Reread)
                    .await?;
                changes.extend(read);
            }
        }
        for object in &batch.resync {
            self.report.resyncs += 1;
            let read = self.read_back(object, None, ChangeVia::Resync).await?;
            changes.extend(read);
        }
        Ok(Some(Gathered {
            events: events.len(),
            changes,
            uuids: batch.uuids,
            latest,
        }))
    }

    /// The stored replay ID expired (or was never issued): note where the bus is now,
    /// read every object with CRM-owned fields back, then resume from that point.
    async fn recover_from_expired_replay(&mut self) -> Result<usize, CdcError> {
        let stop = self.stop.clone();
        let (mark, changes) = unless_stopped(stop.as_ref(), self.read_everything()).await?;
        self.commit(changes, &[]).await?;
        let scope = self.checkpoint_scope();
        let next = mark.unwrap_or_else(|| "LATEST".into());
        self.checkpoints.set_checkpoint(&scope, &next).await?;
        // Not zero: the caller polls again from the new point.
        Ok(1)
    }

    /// Where the bus is now, and every object with CRM-owned fields read back.
    async fn read_everything(&mut self) -> Result<(Option<String>, Vec<Staged>), CdcError> {
        let mark = match self.stream.poll("LATEST", &mut self.client).await? {
            Polled::Events { latest, .. } => latest,
            Polled::InvalidReplay => None,
        };
        let mut changes = Vec::new();
        let objects: Vec<String> = self
            .bundle
            .objects
            .iter()
            .filter(|(_, spec)| spec.fields.values().any(|f| f.owner == Owner::Crm))
            .map(|(name, _)| name.clone())
            .collect();
        for object in &objects {
            self.report.resyncs += 1;
            changes.extend(self.read_back(object, None, ChangeVia::Resync).await?);
        }
        Ok((mark, changes))
    }

    /// Hands `changes` to the sink, then records what it accepted: the event IDs (dedupe)
    /// and the newest version per field. Nothing is recorded when the sink refuses.
    async fn commit(&mut self, changes: Vec<Staged>, uuids: &[String]) -> Result<(), CdcError> {
        let out: Vec<CrmChange> = changes.iter().map(|s| s.change.clone()).collect();
        if !out.is_empty() {
            self.sink.apply(&out).await?;
        }
        self.report.changes_delivered += out.len() as u64;
        let now = self.clock.now();
        for uuid in uuids {
            self.dedupe
                .check_and_set(&self.dedupe_key(uuid), now, self.config.dedupe_ttl)
                .await?;
        }
        let mut newest: BTreeMap<FieldKey, Version> = BTreeMap::new();
        for s in changes {
            let key = (s.change.object, s.change.record_id, s.change.field);
            let v = newest.entry(key).or_insert(s.version);
            *v = (*v).max(s.version);
        }
        for (key, version) in newest {
            self.checkpoints
                .set_checkpoint(&self.watermark_scope(&key), &version.encode())
                .await?;
            self.delivered.insert(key, version);
        }
        Ok(())
    }

    /// The newest version delivered for `key`, from memory or the store.
    async fn watermark(&mut self, key: &FieldKey) -> Result<Option<Version>, CdcError> {
        if let Some(v) = self.delivered.get(key) {
            return Ok(Some(*v));
        }
        let stored = self
            .checkpoints
            .checkpoint(&self.watermark_scope(key))
            .await?
            .and_then(|s| Version::decode(&s));
        if let Some(v) = stored {
            self.delivered.insert(key.clone(), v);
        }
        Ok(stored)
    }
}

/// A change with its version, on its way to the sink.
struct Staged {
    version: Version,
    change: CrmChange,
}

impl Staged {
    fn key(&self) -> FieldKey {
        (
            self.change.object.clone(),
            self.change.record_id.clone(),
            self.change.field.clone(),
        )
    }
}

/// Salesforce IDs as a SOQL `IN` list: `'001…', '001…'` (an ID holds no quote; any is
/// dropped rather than trusted).
fn soql_id_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{}'", id.replace('\'', "")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
