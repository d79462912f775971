//! Change events in: a Change Data Capture consumer for one tenant that carries changes to
//! CRM-owned fields from Salesforce back to the source. It resumes from a stored replay ID,
//! drops duplicates (by `EventUuid`), the engine's own echoes (`changeOrigin` names its
//! client) and changes older than one already delivered, re-reads records behind gap
//! events, re-syncs an object on overflow or an expired replay ID, and hands the changes
//! to a [`CrmChangeSink`] before it moves the stored replay ID (at least once + dedupe).
//! Events come through a [`ChangeStream`] (`stream`: the mock's long-poll subscription;
//! `pubsub`: Salesforce's Pub/Sub API, used against real orgs and the mock alike); sinks are
//! in `sinks`.

pub mod pubsub;
mod sinks;
mod stream;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::client::SalesforceClient;
use super::retry::{Action, Backoff, Failure};
use crate::contract::{Bundle, Owner};
use crate::sim::{Clock, Rng, Seed, Timestamp};
use crate::store::{CheckpointStore, DedupeStore, StoreError};

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
        }
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
        let (events, latest) = match self.stream.poll(&from, &mut self.client).await? {
            Polled::Events { events, latest } => (events, latest),
            Polled::InvalidReplay => return self.recover_from_expired_replay().await,
        };
        self.report.polls += 1;
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
                let list = chunk
                    .iter()
                    .map(|id| format!("'{}'", id.replace('\'', "")))
                    .collect::<Vec<_>>()
                    .join(", ");
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
        self.commit(changes, &batch.uuids).await?;
        if let Some(latest) = latest {
            if from != latest {
                self.checkpoints.set_checkpoint(&scope, &latest).await?;
            }
        }
        Ok(events.len())
    }

    /// The stored replay ID expired (or was never issued): note where the bus is now,
    /// read every object with CRM-owned fields back, then resume from that point.
    async fn recover_from_expired_replay(&mut self) -> Result<usize, CdcError> {
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
        self.commit(changes, &[]).await?;
        let scope = self.checkpoint_scope();
        let next = mark.unwrap_or_else(|| "LATEST".into());
        self.checkpoints.set_checkpoint(&scope, &next).await?;
        // Not zero: the caller polls again from the new point.
        Ok(1)
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

    /// Splits one poll's events into field changes, records to read back and objects to
    /// re-sync, dropping duplicates and echoes.
    async fn sort(&mut self, events: &[Value]) -> Result<Batch, CdcError> {
        let mut batch = Batch::default();
        let mut seen: HashSet<String> = HashSet::new();
        let now = self.clock.now();
        let echo_tag = format!("client={}", self.config.client_name);
        for event in events {
            self.report.events_seen += 1;
            let uuid = event
                .get("EventUuid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let replay_id = event.get("replayId").and_then(Value::as_u64).unwrap_or(0);
            if !uuid.is_empty() {
                let again = !seen.insert(uuid.clone())
                    || self.dedupe.is_live(&self.dedupe_key(&uuid), now).await?;
                if again {
                    self.report.duplicates_skipped += 1;
                    continue;
                }
            }
            batch.uuids.push(uuid.clone());
            let payload = event.get("payload").cloned().unwrap_or(Value::Null);
            let header = payload
                .get("ChangeEventHeader")
                .cloned()
                .unwrap_or(Value::Null);
            let text = |k: &str| header.get(k).and_then(Value::as_str).unwrap_or_default();
            let object = text("entityName").to_string();
            let change_type = text("changeType").to_string();
            let ids: Vec<String> = header
                .get("recordIds")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let Some(spec) = self.bundle.object(&object) else {
                continue;
            };
            // Whatever the event is, a value of the external ID it carries is a fact worth keeping.
            if let (Some(ext), [id]) = (
                payload.get(&spec.external_id).and_then(Value::as_str),
                ids.as_slice(),
            ) {
                self.external_ids
                    .insert((object.clone(), id.clone()), ext.to_string());
            }
            let origin = text("changeOrigin");
            if origin.split(';').any(|part| part.trim() == echo_tag) {
                self.report.echoes_skipped += 1;
                continue;
            }
            let crm: Vec<&String> = spec
                .fields
                .iter()
                .filter(|(_, f)| f.owner == Owner::Crm)
                .map(|(n, _)| n)
                .collect();
            if crm.is_empty() {
                continue;
            }
            if change_type == "GAP_OVERFLOW" {
                batch.resync.insert(object);
                continue;
            }
            if change_type.starts_with("GAP_") {
                if change_type != "GAP_DELETE" {
                    batch.reread.entry(object).or_default().extend(ids);
                }
                continue;
            }
            if change_type == "DELETE" {
                continue;
            }
            let listed = |k: &str| -> Vec<String> {
                header
                    .get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let changed = listed("changedFields");
            let nulled = listed("nulledFields");
            let version = Version {
                at_ms: header
                    .get("commitTimestamp")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                commit: header
                    .get("commitNumber")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                sequence: header
                    .get("sequenceNumber")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            };
            for field in crm {
                let value = if nulled.contains(field) {
                    Value::Null
                } else if changed.contains(field) {
                    payload.get(field.as_str()).cloned().unwrap_or(Value::Null)
                } else {
                    continue;
                };
                for id in &ids {
                    batch.candidates.push(Candidate {
                        object: object.clone(),
                        record_id: id.clone(),
                        field: field.clone(),
                        value: value.clone(),
                        version,
                        replay_id,
                        uuid: uuid.clone(),
                    });
                }
            }
        }
        Ok(batch)
    }

    /// Gives each candidate its record's external ID, looking unknown ones up in batches.
    async fn resolve(&mut self, candidates: Vec<Candidate>) -> Result<Vec<Staged>, CdcError> {
        let mut unknown: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for c in &candidates {
            if !self
                .external_ids
                .contains_key(&(c.object.clone(), c.record_id.clone()))
            {
                unknown
                    .entry(c.object.clone())
                    .or_default()
                    .insert(c.record_id.clone());
            }
        }
        for (object, ids) in unknown {
            let Some(ext_field) = self.bundle.object(&object).map(|s| s.external_id.clone()) else {
                continue;
            };
            let ids: Vec<String> = ids.into_iter().collect();
            for chunk in ids.chunks(IDS_PER_QUERY) {
                let list = chunk
                    .iter()
                    .map(|id| format!("'{}'", id.replace('\'', "")))
                    .collect::<Vec<_>>()
                    .join(", ");
                let soql = format!("SELECT Id, {ext_field} FROM {object} WHERE Id IN ({list})");
                for row in self.query(&object, &soql).await? {
                    if let (Some(id), Some(ext)) = (
                        row.get("Id").and_then(Value::as_str),
                        row.get(&ext_field).and_then(Value::as_str),
                    ) {
                        self.external_ids
                            .insert((object.clone(), id.to_string()), ext.to_string());
                    }
                }
            }
        }
        let mut out = Vec::new();
        for c in candidates {
            let Some(ext) = self
                .external_ids
                .get(&(c.object.clone(), c.record_id.clone()))
            else {
                self.report.unresolved += 1;
                continue;
            };
            out.push(Staged {
                version: c.version,
                change: CrmChange {
                    object: c.object,
                    source_id: ext.clone(),
                    record_id: c.record_id,
                    field: c.field,
                    value: c.value,
                    changed_at: Timestamp::from_millis(c.version.at_ms),
                    replay_id: Some(c.replay_id),
                    event_uuid: Some(c.uuid),
                    via: ChangeVia::Event,
                },
            });
        }
        Ok(out)
    }

    /// Drops changes older than one already delivered (or staged earlier in this batch)
    /// for the same record and field: reordered delivery must not roll a value back.
    async fn fresh_only(&mut self, staged: Vec<Staged>) -> Result<Vec<Staged>, CdcError> {
        let mut newest: HashMap<FieldKey, Version> = HashMap::new();
        let mut out = Vec::new();
        for s in staged {
            let key = s.key();
            let known = match newest.get(&key) {
                Some(v) => Some(*v),
                None => self.watermark(&key).await?,
            };
            // Strictly older only: the same version twice is a redelivery, which is the
            // EventUuid dedupe's business.
            if known.is_some_and(|k| s.version < k) {
                self.report.stale_skipped += 1;
                continue;
            }
            newest.insert(key, s.version);
            out.push(s);
        }
        Ok(out)
    }

    /// Reads the CRM-owned fields of `object` back from the org (all records, or those
    /// `filter` selects), paged, keeping the values newer than what was delivered.
    async fn read_back(
        &mut self,
        object: &str,
        filter: Option<&str>,
        via: ChangeVia,
    ) -> Result<Vec<Staged>, CdcError> {
        let Some(spec) = self.bundle.object(object) else {
            return Ok(Vec::new());
        };
        let crm: Vec<String> = spec
            .fields
            .iter()
            .filter(|(_, f)| f.owner == Owner::Crm)
            .map(|(n, _)| n.clone())
            .collect();
        let ext_field = spec.external_id.clone();
        let mut soql = format!(
            "SELECT Id, {ext_field}, LastModifiedDate, {} FROM {object}",
            crm.join(", ")
        );
        if let Some(f) = filter {
            soql.push_str(" WHERE ");
            soql.push_str(f);
        }
        soql.push_str(" ORDER BY Id");
        let rows = self.query(object, &soql).await?;
        let mut out = Vec::new();
        for row in rows {
            let (Some(id), Some(ext)) = (
                row.get("Id").and_then(Value::as_str),
                row.get(&ext_field).and_then(Value::as_str),
            ) else {
                continue;
            };
            self.external_ids
                .insert((object.to_string(), id.to_string()), ext.to_string());
            let Some(modified) = row
                .get("LastModifiedDate")
                .and_then(Value::as_str)
                .and_then(Timestamp::parse)
            else {
                continue;
            };
            let version = Version::read_back(modified);
            for field in &crm {
                let key = (object.to_string(), id.to_string(), field.clone());
                // A read-back value equal to (or older than) what was delivered adds nothing.
                if self.watermark(&key).await?.is_some_and(|w| w >= version) {
                    continue;
                }
                out.push(Staged {
                    version,
                    change: CrmChange {
                        object: object.to_string(),
                        source_id: ext.to_string(),
                        record_id: id.to_string(),
                        field: field.clone(),
                        value: row.get(field).cloned().unwrap_or(Value::Null),
                        changed_at: modified,
                        replay_id: None,
                        event_uuid: None,
                        via,
                    },
                });
            }
        }
        Ok(out)
    }

    /// Runs a SOQL query and follows `nextRecordsUrl` to the last page.
    async fn query(&mut self, object: &str, soql: &str) -> Result<Vec<Value>, CdcError> {
        let mut url = reqwest::Url::parse("http://localhost/query").expect("a fixed URL parses");
        url.query_pairs_mut().append_pair("q", soql);
        let mut path = format!("query?{}", url.query().unwrap_or_default());
        let mut rows = Vec::new();
        loop {
            let body = self.call(object, &path).await?;
            if let Some(records) = body.get("records").and_then(Value::as_array) {
                rows.extend(records.iter().cloned());
            }
            match body.get("nextRecordsUrl").and_then(Value::as_str) {
                // `/services/data/vNN.N/query/<locator>`: the client adds the prefix.
                Some(next) => match next.find("/query/") {
                    Some(at) => path = next[at + 1..].to_string(),
                    None => break,
                },
                None => break,
            }
        }
        Ok(rows)
    }

    /// One GET with retries: a new session once on 401, `Retry-After` honoured, backoff
    /// otherwise, the next daily window when the budget is spent.
    async fn call(&mut self, object: &str, path: &str) -> Result<Value, CdcError> {
        // Signed in once (by this call or by the stream), renewed on 401 below.
        if self.client.session().is_none() {
            self.client.authenticate().await?;
        }
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure: Failure = match self.client.call(Method::GET, path, None).await {
                Ok(reply) => return Ok(reply.body),
                Err(f) => f,
            };
            let give_up = |f: &Failure| CdcError::Query {
                object: object.to_string(),
                code: f.code.clone(),
                message: f.message.clone(),
            };
            let now = self.clock.now();
            match failure.action {
                Action::Refresh if !refreshed => {
                    refreshed = true;
                    attempt -= 1;
                    self.client.authenticate().await?;
                    continue;
                }
                Action::Refresh | Action::DeadLetter => return Err(give_up(&failure)),
                _ if attempt >= self.config.max_attempts => return Err(give_up(&failure)),
                Action::WaitForWindow => self.clock.sleep_until(now.next_day_start()).await,
                Action::Retry => {
                    let until = failure.not_before.unwrap_or_else(|| {
                        now.plus(self.config.backoff.delay(attempt, &mut self.jitter))
                    });
                    self.clock.sleep_until(until.max(now)).await;
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_order_by_time_then_commit_then_sequence() {
        let v = |at_ms, commit, sequence| Version {
            at_ms,
            commit,
            sequence,
        };
        assert!(v(1, 9, 9) < v(2, 0, 0));
        assert!(v(2, 1, 9) < v(2, 2, 0));
        assert!(v(2, 2, 1) < v(2, 2, 2));
        // A value read back at time 2 supersedes every event committed at time 2.
        assert!(v(2, 7, 3) < Version::read_back(Timestamp::from_millis(2)));
        assert!(Version::read_back(Timestamp::from_millis(2)) < v(3, 0, 0));
        let r = Version::read_back(Timestamp::from_millis(5));
        assert_eq!(Version::decode(&r.encode()), Some(r));
        assert_eq!(Version::decode("1:2"), None);
        assert_eq!(Version::decode("1:2:3:4"), None);
    }

    #[test]
    fn final_values_keep_the_last_delivery() {
        let change = |value: &str| CrmChange {
            object: "Account".into(),
            source_id: "CUST-1".into(),
            record_id: "001".into(),
            field: "Account_Manager__c".into(),
            value: json!(value),
            changed_at: Timestamp::from_millis(0),
            replay_id: None,
            event_uuid: None,
            via: ChangeVia::Event,
        };
        let finals = final_values(&[change("a"), change("b")]);
        assert_eq!(
            finals[&(
                "Account".to_string(),
                "CUST-1".to_string(),
                "Account_Manager__c".to_string()
            )],
            json!("b")
        );
    }
}
