//! Durable state behind a small set of traits: the registry index (versions, deployments,
//! verification results), dead letters, dedupe keys, checkpoints and work leases.
//!
//! Implementations: in memory (tests and single gate runs), SQLite (the embedded default) and
//! PostgreSQL (`--database-url postgres://…` or `SYNCGATE_DATABASE_URL`, for several workers
//! and CI runners sharing state). One behavioural suite (`tests/it/store_suite.rs`) runs
//! against every backend. Both SQL backends turn rows into these types in one place
//! (`rows`); each has a directory with a file per trait. Backend failures keep their cause
//! ([`StoreError::Backend`]). The shared rate limiter lives in [`limiter`] (per process, or
//! Redis).

pub mod dlq;
mod error;
pub mod limiter;
mod memory;
mod migrations;
mod open;
mod postgres;
mod rows;
mod sqlite;
pub mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use error::{cause_chain, BoxError, StoreError, StoreResult};
pub use memory::MemoryStore;
pub use migrations::newest as newest_schema_version;
pub use open::{
    is_postgres_url, open, open_broker, StoreUrl, DATABASE_URL_ENV, DEFAULT_SQLITE_PATH,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::sim::Timestamp;
pub use dlq::{DeadLetter, ErrorClass};
pub use webhooks::{ExecutionStatus, Webhook, WebhookExecution, WebhookStore};

/// One published bundle version (immutable once published).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedVersion {
    pub partner: String,
    pub tenant: String,
    /// Semantic version of the bundle.
    pub version: String,
    /// `sha256:…` of the resolved bundle.
    pub hash: String,
    pub published_at: Timestamp,
    /// The resolved bundle as JSON, so a diff against it needs no checkout.
    pub content: String,
}

/// What publishing did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    Created,
    /// The same version with the same content was already there (publishing is idempotent).
    Unchanged,
}

/// A bundle version and engine version deployed to an environment for a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub partner: String,
    pub tenant: String,
    pub environment: String,
    pub bundle_version: String,
    pub engine_version: String,
    pub deployed_at: Timestamp,
    /// Set when a later deployment to the same environment and tenant replaced this one.
    pub undeployed_at: Option<Timestamp>,
}

/// The result of verifying an engine version against a bundle version (recorded by the gate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub partner: String,
    pub tenant: String,
    pub bundle_version: String,
    pub bundle_hash: String,
    pub engine_version: String,
    pub success: bool,
    pub seed: u64,
    pub scenarios: Vec<String>,
    pub verified_at: Timestamp,
    /// Who verified: `syncgate gate`, `syncgate preflight`, a Pact verifier, …
    pub verified_by: String,
    /// `sha256:…` of the engine configuration verified (`engine::config_file`); absent in
    /// records made before schema version 5.
    #[serde(default)]
    pub engine_config_hash: Option<String>,
}

/// Versions, environments, deployments and verification results.
#[async_trait]
pub trait RegistryIndex: Send + Sync {
    /// Publishes a version. The same version with a different hash is a [`StoreError::Conflict`].
    async fn publish(&self, version: &PublishedVersion) -> StoreResult<PublishOutcome>;
    /// Versions of a partner (optionally one tenant), oldest first.
    async fn versions(
        &self,
        partner: &str,
        tenant: Option<&str>,
    ) -> StoreResult<Vec<PublishedVersion>>;
    async fn version(
        &self,
        partner: &str,
        tenant: &str,
        version: &str,
    ) -> StoreResult<Option<PublishedVersion>>;
    async fn add_environment(&self, name: &str) -> StoreResult<()>;
    async fn environments(&self) -> StoreResult<Vec<String>>;
    /// Records a deployment; the tenant's previous deployment in that environment is marked undeployed.
    async fn record_deployment(&self, deployment: &Deployment) -> StoreResult<()>;
    /// Deployments, oldest first, optionally narrowed to a tenant and an environment.
    async fn deployments(
        &self,
        partner: &str,
        tenant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<Deployment>>;
    async fn record_verification(&self, verification: &Verification) -> StoreResult<()>;
    /// Verification results of a tenant, oldest first.
    async fn verifications(&self, partner: &str, tenant: &str) -> StoreResult<Vec<Verification>>;
    /// Partners with at least one published version, sorted.
    async fn partners(&self) -> StoreResult<Vec<String>> {
        Err(unsupported("listing partners"))
    }
}

fn unsupported(what: &str) -> StoreError {
    StoreError::failed(format!("this store backend does not support {what} yet"))
}

/// Publishing `v` over a stored version of other content (every backend refuses it alike).
pub(crate) fn version_conflict(v: &PublishedVersion, stored_hash: &str) -> StoreError {
    StoreError::Conflict(format!(
        "{}/{} {} is already published with {stored_hash} (this content is {})",
        v.partner, v.tenant, v.version, v.hash
    ))
}

/// Publishing `p` over a different pact of the same consumer version and provider.
pub(crate) fn pact_conflict(p: &PactPublication, stored_sha: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a different pact between {} version {} and {} is already published ({stored_sha}, this one is {}); a published pact is immutable: publish it under a new consumer version",
        p.consumer, p.consumer_version, p.provider, p.sha
    ))
}

/// A pact published through the Pact Broker API (`pact broker publish`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PactPublication {
    pub consumer: String,
    pub consumer_version: String,
    pub provider: String,
    pub branch: Option<String>,
    pub tags: Vec<String>,
    /// `sha256:…` of the pact content.
    pub sha: String,
    /// The pact JSON as published.
    pub content: String,
    pub published_at: Timestamp,
}

/// A verification result a Pact verifier posted for one pact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PactVerificationResult {
    /// Assigned by the store.
    pub id: i64,
    pub consumer: String,
    pub provider: String,
    pub pact_sha: String,
    pub provider_version: String,
    pub success: bool,
    /// The result as posted (test results, `verifiedBy`, …), JSON.
    pub body: String,
    pub verified_at: Timestamp,
}

/// A version of any pacticipant, with its branch and tags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacticipantVersion {
    pub pacticipant: String,
    pub version: String,
    pub branch: Option<String>,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
}

/// A pacticipant version deployed to an environment (optionally one application instance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacticipantDeployment {
    /// Assigned by the store.
    pub id: i64,
    pub pacticipant: String,
    pub version: String,
    pub environment: String,
    pub application_instance: Option<String>,
    pub deployed_at: Timestamp,
    pub undeployed_at: Option<Timestamp>,
}

/// A pacticipant version released to an environment (`pact broker record-release`): unlike a
/// deployment it does not replace the versions released before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacticipantRelease {
    /// Assigned by the store.
    pub id: i64,
    pub pacticipant: String,
    pub version: String,
    pub environment: String,
    pub released_at: Timestamp,
    pub support_ended_at: Option<Timestamp>,
}

/// What the Pact Broker-compatible API keeps: pacts, their verification results, pacticipant
/// versions and deployments. Backends without it answer with an error.
#[async_trait]
pub trait PactIndex: Send + Sync {
    /// Publishes pacts all or nothing: if one is a different pact under the same consumer
    /// version and provider, nothing is written and the result is [`StoreError::Conflict`].
    async fn pacts_publish(&self, pacts: &[PactPublication]) -> StoreResult<Vec<PublishOutcome>> {
        let _ = pacts;
        Err(unsupported("Pact publications"))
    }
    /// Publications, oldest first, optionally narrowed to a provider and a consumer.
    async fn pacts(
        &self,
        provider: Option<&str>,
        consumer: Option<&str>,
    ) -> StoreResult<Vec<PactPublication>> {
        let _ = (provider, consumer);
        Err(unsupported("Pact publications"))
    }
    /// Records a verification result and returns its id.
    async fn pact_verification_record(&self, result: &PactVerificationResult) -> StoreResult<i64> {
        let _ = result;
        Err(unsupported("Pact verification results"))
    }
    /// Verification results of a provider, oldest first, optionally of one consumer's pacts.
    async fn pact_verifications(
        &self,
        provider: &str,
        consumer: Option<&str>,
    ) -> StoreResult<Vec<PactVerificationResult>> {
        let _ = (provider, consumer);
        Err(unsupported("Pact verification results"))
    }
    /// Creates the version if needed and adds a branch or tag to it.
    async fn pacticipant_version_upsert(
        &self,
        pacticipant: &str,
        version: &str,
        branch: Option<&str>,
        tag: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<PacticipantVersion> {
        let _ = (pacticipant, version, branch, tag, now);
        Err(unsupported("pacticipant versions"))
    }
    /// Versions of a pacticipant, oldest first.
    async fn pacticipant_versions(
        &self,
        pacticipant: &str,
    ) -> StoreResult<Vec<PacticipantVersion>> {
        let _ = pacticipant;
        Err(unsupported("pacticipant versions"))
    }
    /// Records a deployment; the previous one of that pacticipant in the same environment and
    /// application instance is marked undeployed. Returns the new deployment's id.
    async fn pacticipant_deploy(&self, deployment: &PacticipantDeployment) -> StoreResult<i64> {
        let _ = deployment;
        Err(unsupported("pacticipant deployments"))
    }
    /// Deployments, oldest first, optionally narrowed to a pacticipant and an environment.
    async fn pacticipant_deployments(
        &self,
        pacticipant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<PacticipantDeployment>> {
        let _ = (pacticipant, environment);
        Err(unsupported("pacticipant deployments"))
    }
    /// Records a release; releasing a version already released (and supported) there answers
    /// the existing record's id. Earlier releases stay.
    async fn pacticipant_release(&self, release: &PacticipantRelease) -> StoreResult<i64> {
        let _ = release;
        Err(unsupported("pacticipant releases"))
    }
    /// Releases, oldest first, optionally narrowed to a pacticipant and an environment.
    async fn pacticipant_releases(
        &self,
        pacticipant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<PacticipantRelease>> {
        let _ = (pacticipant, environment);
        Err(unsupported("pacticipant releases"))
    }
}

/// A dead letter as stored, with its identity and the failures it has been through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredLetter {
    pub id: i64,
    pub letter: DeadLetter,
    /// Earlier failures of the same record (from redrives), oldest first.
    pub history: Vec<DeadLetter>,
    /// Queued for a redrive, or retired because the record's version was overtaken.
    #[serde(default)]
    pub status: LetterStatus,
    /// For a superseded letter: the record version already applied that retired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<u64>,
}

/// Where a dead letter stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LetterStatus {
    /// Waiting for a redrive.
    #[default]
    Queued,
    /// The same or a newer version of its record was applied since: kept for history, never
    /// redriven (sending it would overwrite newer values).
    Superseded,
}

impl LetterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LetterStatus::Queued => "queued",
            LetterStatus::Superseded => "superseded",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "queued" => Ok(LetterStatus::Queued),
            "superseded" => Ok(LetterStatus::Superseded),
            other => Err(StoreError::failed(format!(
                "a stored dead letter has an unknown status `{other}`"
            ))),
        }
    }
}

/// One record version the engine applied in Salesforce, with its idempotency key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppliedVersion<'a> {
    /// `tenant|object|source ID|operation|version`.
    pub key: &'a str,
    /// `partner/tenant`.
    pub tenant: &'a str,
    pub object: &'a str,
    pub source_id: &'a str,
    pub version: u64,
}

/// Whether a letter of `letter_version` is overtaken by an applied `applied` version.
pub(crate) fn overtaken(letter_version: u64, applied: Option<u64>) -> bool {
    applied.is_some_and(|a| a >= letter_version)
}

/// Where a letter of `letter_version` stands when it is appended, with `applied` the newest
/// version of its record applied so far: superseded (by that version) if it is overtaken
/// already, queued otherwise. Every backend appends by this rule.
pub(crate) fn status_on_append(
    letter_version: u64,
    applied: Option<u64>,
) -> (LetterStatus, Option<u64>) {
    if overtaken(letter_version, applied) {
        (LetterStatus::Superseded, applied)
    } else {
        (LetterStatus::Queued, None)
    }
}

/// Versions are `u64` in the engine and `BIGINT` in SQL: stored bit for bit.
pub(crate) fn version_to_sql(v: u64) -> i64 {
    v as i64
}

pub(crate) fn version_from_sql(v: i64) -> u64 {
    v as u64
}

/// Which dead letters to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DlqFilter {
    pub tenant: Option<String>,
    pub object: Option<String>,
    pub error_code: Option<String>,
}

impl DlqFilter {
    pub fn tenant(tenant: &str) -> Self {
        DlqFilter {
            tenant: Some(tenant.to_string()),
            ..Default::default()
        }
    }

    pub fn matches(&self, l: &DeadLetter) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == l.tenant)
            && self.object.as_deref().is_none_or(|o| o == l.object)
            && self.error_code.as_deref().is_none_or(|c| c == l.error_code)
    }
}

/// Records the engine could not deliver.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Adds a letter; a letter for a record already in the queue (same tenant, object and
    /// source ID) replaces it and keeps the earlier one in its history.
    async fn dlq_append(&self, letter: &DeadLetter) -> StoreResult<i64> {
        let ids = self.dlq_append_all(std::slice::from_ref(letter)).await?;
        ids.first().copied().ok_or_else(|| {
            StoreError::failed(format!(
                "queueing the letter of {} answered nothing",
                letter.source_id
            ))
        })
    }
    /// [`DeadLetterStore::dlq_append`] for every letter of a batch, in one transaction where
    /// the store has them (a batch's 200 rejections are one commit, not 200); the row IDs in
    /// order. Each backend implements this one; a single letter is a batch of one.
    async fn dlq_append_all(&self, letters: &[DeadLetter]) -> StoreResult<Vec<i64>>;
    /// Letters matching the filter, in the order they were first added.
    async fn dlq_list(&self, filter: &DlqFilter) -> StoreResult<Vec<StoredLetter>>;
    /// Takes a letter out of the queue (for a redrive); `None` if it is gone.
    async fn dlq_take(&self, id: i64) -> StoreResult<Option<StoredLetter>>;
    /// Retires the record's queued letter if its version is `applied` or older (status
    /// [`LetterStatus::Superseded`], kept for history); returns whether one was retired.
    async fn dlq_supersede(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
        applied: u64,
    ) -> StoreResult<bool>;
}

/// Idempotency keys with a time to live.
#[async_trait]
pub trait DedupeStore: Send + Sync {
    /// Sets `key` if it is absent or expired and returns true; returns false if it is live.
    async fn check_and_set(&self, key: &str, now: Timestamp, ttl: Duration) -> StoreResult<bool>;
    /// [`DedupeStore::check_and_set`] for every key, in one transaction where the store
    /// has them; what each would return, in order.
    async fn check_and_set_all(
        &self,
        keys: &[String],
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<bool>> {
        let mut set = Vec::with_capacity(keys.len());
        for key in keys {
            set.push(self.check_and_set(key, now, ttl).await?);
        }
        Ok(set)
    }
    /// Whether `key` is set and not expired at `now` (sets nothing).
    async fn is_live(&self, key: &str, now: Timestamp) -> StoreResult<bool>;
    /// Records that a record version was applied, in one step: sets its key like
    /// [`DedupeStore::check_and_set`] (and returns the same), raises the record's newest
    /// applied version (kept without expiry), and retires the record's queued dead letter of
    /// that version or older (see [`DeadLetterStore::dlq_supersede`]), so no redrive sends a
    /// stale payload over newer values.
    async fn mark_applied(
        &self,
        applied: &AppliedVersion<'_>,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let set = self
            .mark_applied_all(std::slice::from_ref(applied), now, ttl)
            .await?;
        set.first().copied().ok_or_else(|| {
            StoreError::failed(format!("marking {} applied answered nothing", applied.key))
        })
    }
    /// [`DedupeStore::mark_applied`] for every version of a batch, in one transaction
    /// where the store has them (a batch of 200 keys is one commit, not 200). Returns what
    /// `mark_applied` would for each, in order. Each backend implements this one; a single
    /// version is a batch of one.
    async fn mark_applied_all(
        &self,
        applied: &[AppliedVersion<'_>],
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<bool>>;
    /// The newest version of a record applied so far, if any.
    async fn applied_version(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
    ) -> StoreResult<Option<u64>>;
}

/// Resume points: source cursors, replay IDs.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    async fn checkpoint(&self, scope: &str) -> StoreResult<Option<String>>;
    async fn set_checkpoint(&self, scope: &str, value: &str) -> StoreResult<()>;
}

/// One unit of engine work to enqueue: a batch of source records, say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Unique per tenant: enqueueing the same key again is a no-op, so a restarted planner
    /// does not duplicate work.
    pub key: String,
    /// Items of a stage are offered only once every item of earlier stages is done (parents
    /// before children).
    pub stage: i32,
    pub payload: String,
}

/// A claimed work item, held by one worker until it completes it, or until the lease
/// expires and another worker claims it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: i64,
    pub tenant: String,
    pub key: String,
    pub stage: i32,
    pub payload: String,
    pub worker: String,
    /// Fencing token: incremented by every claim, so a worker whose lease was taken over
    /// can no longer renew or complete it.
    pub token: i64,
    pub expires_at: Timestamp,
}

/// Work split between engine workers by leases with a time to live.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Queues items for a tenant; keys already queued (done or not) are skipped. Returns how
    /// many were new.
    async fn lease_enqueue(&self, tenant: &str, items: &[WorkItem]) -> StoreResult<usize>;
    /// Claims up to `max` open items of the earliest open stage for `worker`: items nobody
    /// holds, or whose lease expired at `now`. Several workers claiming at once never get the
    /// same item. Oldest first.
    async fn lease_claim(
        &self,
        tenant: &str,
        worker: &str,
        max: usize,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<Lease>>;
    /// Extends a lease that is still held and returns its new expiry; a lease another worker
    /// claimed since, or that is done, is a [`StoreError::Conflict`].
    async fn lease_renew(
        &self,
        lease: &Lease,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Timestamp>;
    /// Marks the item done; a [`StoreError::Conflict`] if the lease is no longer held.
    async fn lease_complete(&self, lease: &Lease) -> StoreResult<()>;
    /// Items of the tenant not done yet (held or not).
    async fn lease_open(&self, tenant: &str) -> StoreResult<usize>;
}

pub(crate) fn lost_lease(lease: &Lease) -> StoreError {
    StoreError::Conflict(format!(
        "worker {} no longer holds the lease on {} (claimed again by another worker, or done)",
        lease.worker, lease.key
    ))
}

/// A renewal or completion that updated `updated` rows: one while the worker holds the lease,
/// none once another worker claimed it or it is done.
pub(crate) fn still_held(updated: u64, lease: &Lease) -> StoreResult<()> {
    if updated == 1 {
        Ok(())
    } else {
        Err(lost_lease(lease))
    }
}

/// Everything durable, from one backend.
pub trait Store:
    RegistryIndex + DeadLetterStore + DedupeStore + CheckpointStore + LeaseStore
{
}

impl<T: RegistryIndex + DeadLetterStore + DedupeStore + CheckpointStore + LeaseStore> Store for T {}

/// A store that also keeps what the Pact Broker-compatible API serves, webhooks included.
pub trait BrokerStore: Store + PactIndex + WebhookStore {}

impl<T: Store + PactIndex + WebhookStore> BrokerStore for T {}
