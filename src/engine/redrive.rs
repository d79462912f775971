//! Redrive: send dead letters again after a fix, at a chosen rate. A letter that succeeds
//! leaves the queue; one that fails again goes back with its history.

use std::time::Duration;

use serde_json::Value;

use super::client::SalesforceClient;
use super::dlq::ErrorClass;
use crate::contract::rules::{check_write, WriteKind};
use crate::contract::Bundle;
use crate::sim::Clock;
use crate::store::{DeadLetterStore, DlqFilter, StoreError, StoredLetter};

/// What a redrive did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedriveReport {
    pub sent: usize,
    pub delivered: usize,
    pub failed_again: usize,
    /// Letters without a payload to send (the source value could not be mapped): fix the
    /// source and sync again.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Redrives the letters matching `filter` through `client`, at most `per_second` records a
/// second (waits on `clock` between batches).
pub async fn redrive(
    bundle: &Bundle,
    client: &mut SalesforceClient,
    dlq: &dyn DeadLetterStore,
    filter: &DlqFilter,
    per_second: Option<f64>,
    clock: &Clock,
) -> Result<RedriveReport, RedriveError> {
    let mut report = RedriveReport::default();
    let letters = dlq.dlq_list(filter).await?;
    let mut by_object: std::collections::BTreeMap<String, Vec<StoredLetter>> = Default::default();
    for l in letters {
        if l.letter.payload.is_null() || l.letter.class == ErrorClass::Mapping {
            report.skipped += 1;
            continue;
        }
        by_object
            .entry(l.letter.object.clone())
            .or_default()
            .push(l);
    }
    // Parents first, as a sync would.
    for (object, spec) in bundle.objects_parent_first() {
        let Some(letters) = by_object.remove(object) else {
            continue;
        };
        // A letter the (fixed or not) contract still rejects is not worth a call.
        let mut valid = Vec::new();
        for l in letters {
            let payload = l.letter.payload.as_object().cloned().unwrap_or_default();
            match check_write(object, spec, &payload, WriteKind::Update) {
                Ok(()) => valid.push(l),
                Err(e) => {
                    again(dlq, &l, &e.code, &e.message, None, clock.now()).await?;
                    report.failed_again += 1;
                }
            }
        }
        for batch in valid.chunks(200) {
            let payloads: Vec<Value> = batch.iter().map(|l| l.letter.payload.clone()).collect();
            report.sent += batch.len();
            let now = clock.now();
            match client
                .upsert_collection(object, &spec.external_id, &payloads)
                .await
            {
                Ok(reply) => {
                    let results = reply.body.as_array().cloned().unwrap_or_default();
                    for (i, l) in batch.iter().enumerate() {
                        let r = results.get(i);
                        if r.and_then(|r| r.get("success")).and_then(Value::as_bool) == Some(true) {
                            dlq.dlq_take(l.id).await?;
                            report.delivered += 1;
                        } else {
                            let err = r.and_then(|r| r.pointer("/errors/0"));
                            let code = err
                                .and_then(|e| e.get("statusCode"))
                                .and_then(Value::as_str)
                                .unwrap_or("UNKNOWN_ERROR");
                            let message = err
                                .and_then(|e| e.get("message"))
                                .and_then(Value::as_str)
                                .unwrap_or("no result for this record");
                            again(
                                dlq,
                                l,
                                code,
                                message,
                                Some(reply.correlation_id.clone()),
                                now,
                            )
                            .await?;
                            report.failed_again += 1;
                        }
                    }
                }
                Err(f) => {
                    for l in batch {
                        again(dlq, l, &f.code, &f.message, None, now).await?;
                        report.failed_again += 1;
                    }
                }
            }
            if let Some(rate) = per_second.filter(|r| *r > 0.0) {
                clock
                    .sleep(Duration::from_secs_f64(batch.len() as f64 / rate))
                    .await;
            }
        }
    }
    Ok(report)
}

async fn again(
    dlq: &dyn DeadLetterStore,
    stored: &StoredLetter,
    code: &str,
    message: &str,
    correlation_id: Option<String>,
    now: crate::sim::Timestamp,
) -> Result<(), StoreError> {
    let mut letter = stored.letter.clone();
    letter.error_code = code.to_string();
    letter.message = message.to_string();
    letter.attempts += 1;
    letter.correlation_id = correlation_id.or(letter.correlation_id);
    letter.last_failed_at = now;
    // Same tenant, object and source ID: the store keeps the earlier failure in the history.
    dlq.dlq_append(&letter).await.map(|_| ())
}
