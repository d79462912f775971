//! What a run did ([`SyncReport`]) and what a timeline shows of it ([`EngineEvent`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{client, conflicts};
use crate::sim::Timestamp;

/// Something the engine did that a timeline should show.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EngineEvent {
    #[serde(serialize_with = "iso")]
    pub at: Timestamp,
    /// HTTP requests the engine had sent when this happened (orders events among requests).
    pub after_request: u64,
    pub object: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

fn iso<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_iso())
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// Waiting before a retry or for the budget window.
    Wait {
        until: String,
        reason: String,
    },
    /// A batch (or its retryable remainder) failed and will be sent again.
    Retry {
        attempt: u32,
        records: usize,
        code: String,
    },
    DeadLetter {
        source_id: String,
        code: String,
    },
    /// A field left out of a write because Salesforce's value is newer than the source's.
    Conflict {
        source_id: String,
        field: String,
    },
    /// A source delete applied with the object's policy.
    Delete {
        source_id: String,
        policy: String,
    },
    /// Anything else worth a line in the timeline.
    Note {
        message: String,
    },
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub records: usize,
    pub created: usize,
    pub updated: usize,
    pub dead_lettered: usize,
    pub retries: usize,
    pub api_calls: u64,
    /// Records skipped because this version was already applied (its idempotency key is live).
    pub already_synced: usize,
    /// Records skipped because this version was rejected for good by an earlier run (it
    /// waits in the dead-letter queue for `dlq redrive`).
    pub already_dead_lettered: usize,
    /// The org's daily API usage after the run, from the last `Sforce-Limit-Info`.
    pub api_usage: Option<client::ApiUsage>,
    /// Records the contract rejects, dead-lettered without an API call.
    pub rejected_before_sending: usize,
    /// Source deletes applied (hard deletes; archive and inactive count as updates too).
    pub deleted: usize,
    /// Bulk API 2.0 jobs that ran to the end, and the status polls they took.
    pub bulk_jobs: usize,
    pub bulk_polls: usize,
    /// Times the circuit breaker opened.
    pub breaker_opened: u32,
    /// Source columns no bundle field reads, per source entity.
    pub unmapped_columns: BTreeMap<String, BTreeSet<String>>,
    /// New source columns routed to a same-named custom field, per entity: column → field.
    pub routed_columns: BTreeMap<String, BTreeMap<String, String>>,
    /// Field values not written because Salesforce's were newer.
    pub conflicts: Vec<conflicts::Conflict>,
    /// What happened, in order (the replay timeline shows these).
    #[serde(skip)]
    pub events: Vec<EngineEvent>,
}

impl SyncReport {
    /// Adds a later run's report to this one; its events are placed after `requests_before`
    /// requests (the later run's client counts its own from zero).
    pub fn absorb(&mut self, later: SyncReport, requests_before: u64) {
        self.records += later.records;
        self.created += later.created;
        self.updated += later.updated;
        self.dead_lettered += later.dead_lettered;
        self.retries += later.retries;
        self.api_calls += later.api_calls;
        self.already_synced += later.already_synced;
        self.already_dead_lettered += later.already_dead_lettered;
        self.rejected_before_sending += later.rejected_before_sending;
        self.deleted += later.deleted;
        self.bulk_jobs += later.bulk_jobs;
        self.bulk_polls += later.bulk_polls;
        self.breaker_opened += later.breaker_opened;
        if later.api_usage.is_some() {
            self.api_usage = later.api_usage;
        }
        for (entity, columns) in later.unmapped_columns {
            self.unmapped_columns
                .entry(entity)
                .or_default()
                .extend(columns);
        }
        for (entity, routed) in later.routed_columns {
            self.routed_columns
                .entry(entity)
                .or_default()
                .extend(routed);
        }
        self.conflicts.extend(later.conflicts);
        self.events.extend(later.events.into_iter().map(|mut e| {
            e.after_request += requests_before;
            e
        }));
    }
}
