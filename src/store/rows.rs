//! Rows into domain types, once for both SQL backends: each mapping reads a [`Columns`] view
//! of a row (SQLite's and PostgreSQL's rows both give one), and the merges both backends do
//! in Rust rather than in SQL (a dead letter's history, a pacticipant version's tags) live
//! here too.
//!
//! Each `*_COLUMNS` constant is the select list its mapping reads, in that order: a query
//! names the constant rather than spelling the columns again.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::webhooks::{ExecutionStatus, Webhook, WebhookExecution};
use super::{
    version_from_sql, Deployment, Lease, LetterStatus, PactPublication, PactVerificationResult,
    PacticipantDeployment, PacticipantRelease, PacticipantVersion, PublishedVersion, StoreError,
    StoreResult, StoredLetter, Verification,
};
use crate::sim::Timestamp;

/// The values of one result row, as the few SQL types the schema uses; column `i` counts
/// from 0. The mappings take it as `&dyn Columns`: a SQLite row borrows its statement, and
/// one function over both backends' rows is simplest without that lifetime in its type.
pub(crate) trait Columns {
    fn text(&self, i: usize) -> StoreResult<String>;
    fn text_opt(&self, i: usize) -> StoreResult<Option<String>>;
    /// Any integer column, widened to `i64`.
    fn int_opt(&self, i: usize) -> StoreResult<Option<i64>>;
    fn flag(&self, i: usize) -> StoreResult<bool>;

    fn int(&self, i: usize) -> StoreResult<i64> {
        self.int_opt(i)?
            .ok_or_else(|| StoreError::failed(format!("column {i} of a stored row is NULL")))
    }

    /// Milliseconds since the epoch, as every timestamp is stored.
    fn at(&self, i: usize) -> StoreResult<Timestamp> {
        self.int(i).map(Timestamp::from_millis)
    }

    fn at_opt(&self, i: usize) -> StoreResult<Option<Timestamp>> {
        Ok(self.int_opt(i)?.map(Timestamp::from_millis))
    }
}

/// A column holding JSON.
pub(crate) fn json<T: DeserializeOwned>(r: &dyn Columns, i: usize) -> StoreResult<T> {
    from_json(&r.text(i)?)
}

/// An integer column narrowed to the type the domain keeps (`stage`, `attempt`, a status
/// code); a value out of range is a damaged row, not something to wrap around.
fn narrow<T: TryFrom<i64>>(value: i64, column: &str) -> StoreResult<T> {
    T::try_from(value)
        .map_err(|_| StoreError::failed(format!("a stored {column} is out of range: {value}")))
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::backend("a value cannot be written as JSON", e))
}

pub(crate) fn from_json<T: DeserializeOwned>(json: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|e| StoreError::backend("stored JSON is unreadable", e))
}

pub(crate) const VERSION_COLUMNS: &str = "partner, tenant, version, hash, published_at, content";

pub(crate) fn published_version(r: &dyn Columns) -> StoreResult<PublishedVersion> {
    Ok(PublishedVersion {
        partner: r.text(0)?,
        tenant: r.text(1)?,
        version: r.text(2)?,
        hash: r.text(3)?,
        published_at: r.at(4)?,
        content: r.text(5)?,
    })
}

pub(crate) const DEPLOYMENT_COLUMNS: &str =
    "partner, tenant, environment, bundle_version, engine_version, deployed_at, undeployed_at";

pub(crate) fn deployment(r: &dyn Columns) -> StoreResult<Deployment> {
    Ok(Deployment {
        partner: r.text(0)?,
        tenant: r.text(1)?,
        environment: r.text(2)?,
        bundle_version: r.text(3)?,
        engine_version: r.text(4)?,
        deployed_at: r.at(5)?,
        undeployed_at: r.at_opt(6)?,
    })
}

pub(crate) const VERIFICATION_COLUMNS: &str = "partner, tenant, bundle_version, bundle_hash, engine_version, success, seed, scenarios, verified_at, verified_by, engine_config_hash";

pub(crate) fn verification(r: &dyn Columns) -> StoreResult<Verification> {
    Ok(Verification {
        partner: r.text(0)?,
        tenant: r.text(1)?,
        bundle_version: r.text(2)?,
        bundle_hash: r.text(3)?,
        engine_version: r.text(4)?,
        success: r.flag(5)?,
        // Seeds are u64, stored bit for bit in a BIGINT.
        seed: r.int(6)? as u64,
        scenarios: json(r, 7)?,
        verified_at: r.at(8)?,
        verified_by: r.text(9)?,
        engine_config_hash: r.text_opt(10)?,
    })
}

pub(crate) const LETTER_COLUMNS: &str = "id, letter, history, status, superseded_by";

pub(crate) fn stored_letter(r: &dyn Columns) -> StoreResult<StoredLetter> {
    Ok(StoredLetter {
        id: r.int(0)?,
        letter: json(r, 1)?,
        history: json(r, 2)?,
        status: LetterStatus::parse(&r.text(3)?)?,
        superseded_by: r.int_opt(4)?.map(version_from_sql),
    })
}

/// A dead letter's history (JSON) once `previous`, the letter an append replaces, has joined
/// it. Both are kept as JSON values, so a letter an older build wrote stays as it was.
pub(crate) fn history_with(history: &str, previous: &str) -> StoreResult<String> {
    let mut history: Vec<serde_json::Value> = from_json(history)?;
    history.push(from_json(previous)?);
    to_json(&history)
}

pub(crate) const PACT_COLUMNS: &str =
    "consumer, consumer_version, provider, branch, tags, sha, content, published_at";

pub(crate) fn pact_publication(r: &dyn Columns) -> StoreResult<PactPublication> {
    Ok(PactPublication {
        consumer: r.text(0)?,
        consumer_version: r.text(1)?,
        provider: r.text(2)?,
        branch: r.text_opt(3)?,
        tags: json(r, 4)?,
        sha: r.text(5)?,
        content: r.text(6)?,
        published_at: r.at(7)?,
    })
}

pub(crate) const PACT_VERIFICATION_COLUMNS: &str =
    "id, consumer, provider, pact_sha, provider_version, success, body, verified_at";

pub(crate) fn pact_verification(r: &dyn Columns) -> StoreResult<PactVerificationResult> {
    Ok(PactVerificationResult {
        id: r.int(0)?,
        consumer: r.text(1)?,
        provider: r.text(2)?,
        pact_sha: r.text(3)?,
        provider_version: r.text(4)?,
        success: r.flag(5)?,
        body: r.text(6)?,
        verified_at: r.at(7)?,
    })
}

pub(crate) const PACTICIPANT_VERSION_COLUMNS: &str =
    "pacticipant, version, branch, tags, created_at";

pub(crate) fn pacticipant_version(r: &dyn Columns) -> StoreResult<PacticipantVersion> {
    Ok(PacticipantVersion {
        pacticipant: r.text(0)?,
        version: r.text(1)?,
        branch: r.text_opt(2)?,
        tags: json(r, 3)?,
        created_at: r.at(4)?,
    })
}

/// What `pacticipant_version_upsert` writes back and answers: the stored version (its
/// `branch`, `tags` JSON and `created_at`) with `branch` replacing the old one when given and
/// `tag` added once.
pub(crate) fn version_tagged(
    pacticipant: &str,
    version: &str,
    stored: (Option<String>, &str, i64),
    branch: Option<&str>,
    tag: Option<&str>,
) -> StoreResult<PacticipantVersion> {
    let (old_branch, tags, created) = stored;
    let mut tags: Vec<String> = from_json(tags)?;
    if let Some(t) = tag {
        if !tags.iter().any(|x| x == t) {
            tags.push(t.to_string());
        }
    }
    Ok(PacticipantVersion {
        pacticipant: pacticipant.to_string(),
        version: version.to_string(),
        branch: branch.map(str::to_string).or(old_branch),
        tags,
        created_at: Timestamp::from_millis(created),
    })
}

pub(crate) const PACTICIPANT_DEPLOYMENT_COLUMNS: &str =
    "id, pacticipant, version, environment, application_instance, deployed_at, undeployed_at";

pub(crate) fn pacticipant_deployment(r: &dyn Columns) -> StoreResult<PacticipantDeployment> {
    Ok(PacticipantDeployment {
        id: r.int(0)?,
        pacticipant: r.text(1)?,
        version: r.text(2)?,
        environment: r.text(3)?,
        application_instance: r.text_opt(4)?,
        deployed_at: r.at(5)?,
        undeployed_at: r.at_opt(6)?,
    })
}

pub(crate) const RELEASE_COLUMNS: &str =
    "id, pacticipant, version, environment, released_at, support_ended_at";

pub(crate) fn pacticipant_release(r: &dyn Columns) -> StoreResult<PacticipantRelease> {
    Ok(PacticipantRelease {
        id: r.int(0)?,
        pacticipant: r.text(1)?,
        version: r.text(2)?,
        environment: r.text(3)?,
        released_at: r.at(4)?,
        support_ended_at: r.at_opt(5)?,
    })
}

/// A lease claimed by `worker` from a row of `id, key, stage, payload, token, expires_at`
/// (the claim's `RETURNING` list on both backends).
pub(crate) fn lease(tenant: &str, worker: &str, r: &dyn Columns) -> StoreResult<Lease> {
    Ok(Lease {
        id: r.int(0)?,
        tenant: tenant.to_string(),
        key: r.text(1)?,
        stage: narrow(r.int(2)?, "work item stage")?,
        payload: r.text(3)?,
        worker: worker.to_string(),
        token: r.int(4)?,
        expires_at: r.at(5)?,
    })
}

pub(crate) const WEBHOOK_COLUMNS: &str =
    "uuid, description, consumer, provider, events, request, enabled, created_at, updated_at";

pub(crate) fn webhook(r: &dyn Columns) -> StoreResult<Webhook> {
    Ok(Webhook {
        uuid: r.text(0)?,
        description: r.text(1)?,
        consumer: r.text_opt(2)?,
        provider: r.text_opt(3)?,
        events: json(r, 4)?,
        request: r.text(5)?,
        enabled: r.flag(6)?,
        created_at: r.at(7)?,
        updated_at: r.at(8)?,
    })
}

pub(crate) const EXECUTION_COLUMNS: &str = "id, webhook_uuid, delivery, event, consumer, provider, attempt, status, response_code, error, executed_at";

pub(crate) fn webhook_execution(r: &dyn Columns) -> StoreResult<WebhookExecution> {
    Ok(WebhookExecution {
        id: r.int(0)?,
        webhook_uuid: r.text(1)?,
        delivery: r.text(2)?,
        event: r.text(3)?,
        consumer: r.text(4)?,
        provider: r.text(5)?,
        attempt: narrow(r.int(6)?, "webhook attempt number")?,
        status: ExecutionStatus::parse(&r.text(7)?)?,
        response_code: r
            .int_opt(8)?
            .map(|c| narrow(c, "webhook response code"))
            .transpose()?,
        error: r.text_opt(9)?,
        executed_at: r.at(10)?,
    })
}
