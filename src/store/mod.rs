//! Durable state behind a small set of traits: the registry index (versions, deployments,
//! verification results), dead letters, dedupe keys, checkpoints and work leases.
//!
//! Implementations: in memory (tests and single gate runs), SQLite (the embedded default) and
//! PostgreSQL (`--database-url postgres://…` or `SYNCGATE_DATABASE_URL`, for several workers
//! and CI runners sharing state). One behavioural suite (`tests/store_suite.rs`) runs against
//! every backend. The shared rate limiter lives in [`limiter`] (per process, or Redis).

pub mod dlq;
pub mod limiter;
mod memory;
mod migrations;
mod postgres;
mod sqlite;
pub mod webhooks;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
pub use migrations::newest as newest_schema_version;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::sim::Timestamp;
pub use dlq::{DeadLetter, ErrorClass};
pub use webhooks::{ExecutionStatus, Webhook, WebhookExecution, WebhookStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unreachable or failed: {0}")]
    Backend(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The store URL names no store this build can open (bad input, not a failure).
    #[error("{0}")]
    BadUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

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

/// An error with every cause under it (`error connecting to server: Connection refused`), so
/// a refused connection, a TLS failure and a timeout read differently. The engine's client
/// uses it for transport errors too.
pub fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

fn unsupported(what: &str) -> StoreError {
    StoreError::Backend(format!("this store backend does not support {what} yet"))
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
            other => Err(StoreError::Backend(format!(
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
    async fn dlq_append(&self, letter: &DeadLetter) -> StoreResult<i64>;
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
    ) -> StoreResult<bool>;
    /// [`DedupeStore::mark_applied`] for every version of a batch, in one transaction
    /// where the store has them (a batch of 200 keys is one commit, not 200). Returns what
    /// `mark_applied` would for each.
    async fn mark_applied_all(
        &self,
        applied: &[AppliedVersion<'_>],
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<bool>> {
        let mut set = Vec::with_capacity(applied.len());
        for a in applied {
            set.push(self.mark_applied(a, now, ttl).await?);
        }
        Ok(set)
    }
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

/// Everything durable, from one backend.
pub trait Store:
    RegistryIndex + DeadLetterStore + DedupeStore + CheckpointStore + LeaseStore
{
}

impl<T: RegistryIndex + DeadLetterStore + DedupeStore + CheckpointStore + LeaseStore> Store for T {}

/// The environment variable naming the store when no `--database-url` is given.
pub const DATABASE_URL_ENV: &str = "SYNCGATE_DATABASE_URL";

/// A store that also keeps what the Pact Broker-compatible API serves, webhooks included.
pub trait BrokerStore: Store + PactIndex + WebhookStore {}

impl<T: Store + PactIndex + WebhookStore> BrokerStore for T {}

/// Where state lives when no URL is given: an embedded SQLite file under the working directory.
pub const DEFAULT_SQLITE_PATH: &str = ".syncgate/state.sqlite";

/// What a store URL names, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// A private SQLite database in memory.
    SqliteMemory,
    /// A SQLite file (its directory must exist, except the default `.syncgate/`).
    SqliteFile(std::path::PathBuf),
    Postgres(String),
}

impl StoreUrl {
    /// Resolves `url` (`None`: [`DEFAULT_SQLITE_PATH`]), refusing an empty URL, an unknown
    /// scheme (`mysql://…`) and a SQLite file in a directory that does not exist: each would
    /// otherwise open a new, empty store where the user expects their state.
    pub fn parse(url: Option<&str>) -> StoreResult<StoreUrl> {
        let Some(url) = url else {
            return Ok(StoreUrl::SqliteFile(DEFAULT_SQLITE_PATH.into()));
        };
        let bad = |why: String| StoreError::BadUrl(format!("--database-url `{url}`: {why}"));
        if url.trim().is_empty() {
            return Err(StoreError::BadUrl(
                "--database-url is empty: give a SQLite path, sqlite:PATH, sqlite::memory: or postgres://… (or leave it out for .syncgate/state.sqlite)".into(),
            ));
        }
        if url == "sqlite::memory:" {
            return Ok(StoreUrl::SqliteMemory);
        }
        if is_postgres_url(url) {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        let path = match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Some(p) => p,
            None => {
                if let Some((scheme, _)) = url.split_once("://") {
                    return Err(bad(format!(
                        "unknown store scheme `{scheme}` (syncgate keeps state in SQLite or PostgreSQL: a path, sqlite:PATH, sqlite::memory: or postgres://…)"
                    )));
                }
                url
            }
        };
        if path.is_empty() {
            return Err(bad("no SQLite file path after `sqlite:`".into()));
        }
        let path = std::path::PathBuf::from(path);
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            let default_dir = Path::new(DEFAULT_SQLITE_PATH).parent();
            if !dir.is_dir() && Some(dir) != default_dir {
                return Err(bad(format!(
                    "the directory {} does not exist (create it first; only the default .syncgate/ is created for you)",
                    dir.display()
                )));
            }
        }
        Ok(StoreUrl::SqliteFile(path))
    }
}

/// Opens the store for `syncgate registry serve`: like [`open`], for backends that keep Pact
/// publications (SQLite and PostgreSQL; several registry processes may share one database).
pub fn open_broker(url: Option<&str>) -> StoreResult<Arc<dyn BrokerStore>> {
    match StoreUrl::parse(url)? {
        StoreUrl::SqliteMemory => Ok(Arc::new(SqliteStore::in_memory()?)),
        StoreUrl::SqliteFile(path) => Ok(Arc::new(SqliteStore::open(&path)?)),
        StoreUrl::Postgres(u) => Ok(Arc::new(PgStore::open_blocking(&u, None)?)),
    }
}

/// Opens the store a URL names: `postgres://…` or `postgresql://…` (migrated on open, under
/// an advisory lock), `sqlite:PATH`, `sqlite::memory:`, or a plain file path; no URL means
/// [`DEFAULT_SQLITE_PATH`], created on first use. The CLI passes `--database-url`, falling
/// back to [`DATABASE_URL_ENV`]. A URL [`StoreUrl::parse`] refuses is a
/// [`StoreError::BadUrl`].
///
/// Blocks while connecting; callable from inside or outside a tokio runtime.
pub fn open(url: Option<&str>) -> StoreResult<Arc<dyn Store>> {
    match StoreUrl::parse(url)? {
        StoreUrl::SqliteMemory => Ok(Arc::new(SqliteStore::in_memory()?)),
        StoreUrl::SqliteFile(path) => Ok(Arc::new(SqliteStore::open(&path)?)),
        StoreUrl::Postgres(u) => Ok(Arc::new(PgStore::open_blocking(&u, None)?)),
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
