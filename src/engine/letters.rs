//! What the engine remembers of each record version: the idempotency key of a version it
//! applied (so a later run skips it), the rejection key of a version Salesforce refused for
//! good (so a later run does not spend a call on the same answer), and the dead letter of
//! a version it could not deliver.

use std::collections::BTreeMap;

use serde_json::Value;

use super::dlq::{DeadLetter, ErrorClass};
use super::retry::GaveUp;
use super::source::SourceRecord;
use super::{EngineError, EventKind, Item, Sync};
use crate::sim::Timestamp;
use crate::store::AppliedVersion;

/// One record version the engine could not deliver, and why.
pub(super) struct Letter<'r> {
    pub record: &'r SourceRecord,
    /// What was (or would have been) sent; `Null` when it never mapped.
    pub payload: Value,
    pub class: ErrorClass,
    pub code: &'r str,
    pub message: &'r str,
    /// Requests that carried it (0: never sent).
    pub attempts: u32,
    pub correlation_id: Option<String>,
    pub first_failed: Timestamp,
}

impl Sync<'_> {
    /// Dead-letters the items a given-up request carried, each with when it first failed.
    pub(super) async fn dead_letter_given_up(
        &mut self,
        object: &str,
        items: &[(&Item<'_>, Timestamp)],
        gave_up: &GaveUp,
    ) -> Result<(), EngineError> {
        let message = gave_up.message();
        for &(item, first_failed) in items {
            self.dead_letter(
                object,
                Letter {
                    record: item.record,
                    payload: item.payload.clone(),
                    class: gave_up.class(),
                    code: &gave_up.failure.code,
                    message: &message,
                    attempts: gave_up.attempts,
                    correlation_id: None,
                    first_failed,
                },
            );
        }
        self.flush_letters().await
    }

    /// The idempotency key of one record version: tenant, object, source ID, operation, version.
    pub(super) fn idempotency_key(&self, object: &str, record: &SourceRecord) -> String {
        let op = if record.deleted { "delete" } else { "upsert" };
        format!(
            "{}|{object}|{}|{op}|{}",
            self.tenant, record.id, record.version
        )
    }

    /// The key that marks one record version as rejected for good (not sent again by a
    /// later run; `dlq redrive` sends it explicitly).
    pub(super) fn rejection_key(&self, object: &str, record: &SourceRecord) -> String {
        format!(
            "{}|{object}|{}|rejected|{}",
            self.tenant, record.id, record.version
        )
    }

    /// Records that these versions were applied (their keys live for the TTL, and they
    /// retire the records' older dead letters), in one store transaction.
    pub(super) async fn remember_applied(
        &mut self,
        object: &str,
        records: &[&SourceRecord],
    ) -> Result<(), EngineError> {
        let Some((store, ttl)) = self.dedupe else {
            return Ok(());
        };
        if records.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = records
            .iter()
            .map(|r| self.idempotency_key(object, r))
            .collect();
        let applied: Vec<AppliedVersion<'_>> = records
            .iter()
            .zip(&keys)
            .map(|(r, key)| AppliedVersion {
                key,
                tenant: &self.tenant,
                object,
                source_id: &r.id,
                version: r.version,
            })
            .collect();
        store
            .mark_applied_all(&applied, self.clock.now(), ttl)
            .await?;
        Ok(())
    }

    /// Decides `letter` for the dead-letter queue (and, unless a later run may send it
    /// again, the version's rejection key); stored by the next [`Sync::flush_letters`],
    /// which every batch ends with.
    pub(super) fn dead_letter(&mut self, object: &str, letter: Letter<'_>) {
        let Letter {
            record,
            payload,
            class,
            code,
            message,
            attempts,
            correlation_id,
            first_failed,
        } = letter;
        self.report.dead_lettered += 1;
        let rejection_key = (class != ErrorClass::RetriesExhausted && self.dedupe.is_some())
            .then(|| self.rejection_key(object, record));
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
        let letter = DeadLetter {
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
            first_failed_at: first_failed,
            last_failed_at: self.clock.now(),
            idempotency_key: self.idempotency_key(object, record),
            headers_sent,
        };
        self.letters.push((letter, rejection_key));
    }

    /// Stores the letters decided so far and their rejection keys, one transaction for
    /// each (what is decided within a batch is one commit, not one per record).
    pub(super) async fn flush_letters(&mut self) -> Result<(), EngineError> {
        if self.letters.is_empty() {
            return Ok(());
        }
        let (letters, keys): (Vec<DeadLetter>, Vec<Option<String>>) =
            std::mem::take(&mut self.letters).into_iter().unzip();
        let keys: Vec<String> = keys.into_iter().flatten().collect();
        if let (Some((store, ttl)), false) = (self.dedupe, keys.is_empty()) {
            store
                .check_and_set_all(&keys, self.clock.now(), ttl)
                .await?;
        }
        self.dlq.dlq_append_all(&letters).await?;
        Ok(())
    }
}
