//! Redrive: send dead letters again after a fix, at a chosen rate. A letter that succeeds
//! leaves the queue; one that fails again goes back with its history; one whose record has
//! a newer (or the same) version applied already is never sent (it would overwrite newer
//! values) and is retired as superseded.

use std::time::Duration;

use serde_json::Value;

use super::client::SalesforceClient;
use super::dlq::ErrorClass;
use crate::contract::rules::{check_write, WriteKind};
use crate::contract::Bundle;
use crate::sim::Clock;
use crate::store::{
    DeadLetterStore, DedupeStore, DlqFilter, LetterStatus, StoreError, StoredLetter,
};

/// Records per request (an sObject Collections call).
const BATCH: usize = 200;

/// What a redrive did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedriveReport {
    pub sent: usize,
    pub delivered: usize,
    pub failed_again: usize,
    /// Letters without a payload to send (the source value could not be mapped): fix the
    /// source and sync again.
    pub skipped: usize,
    /// Letters not sent because the same or a newer version of their record was applied
    /// already (sending them would overwrite newer values); kept as superseded.
    pub superseded: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    BadRate(String),
}

/// The wait after a full batch at `per_second` records a second, or why the rate is unusable:
/// not a number, not positive, infinite, or so small the wait does not fit a duration.
pub fn batch_wait(per_second: f64) -> Result<Duration, RedriveError> {
    if !per_second.is_finite() || per_second <= 0.0 {
        return Err(RedriveError::BadRate(format!(
            "--rate must be a positive number of records a second, not {per_second:?}"
        )));
    }
    Duration::try_from_secs_f64(BATCH as f64 / per_second).map_err(|_| {
        RedriveError::BadRate(format!(
            "--rate {per_second:?} is too small: the wait between batches of {BATCH} would be longer than any duration"
        ))
    })
}

/// Redrives the letters matching `filter` through `client`, at most `per_second` records a
/// second (waits on `clock` between batches, not after the last). Letters whose record has
/// the same or a newer version applied in `applied` are retired, not sent.
pub async fn redrive(
    bundle: &Bundle,
    client: &mut SalesforceClient,
    dlq: &dyn DeadLetterStore,
    applied: &dyn DedupeStore,
    filter: &DlqFilter,
    per_second: Option<f64>,
    clock: &Clock,
) -> Result<RedriveReport, RedriveError> {
    if let Some(rate) = per_second {
        batch_wait(rate)?;
    }
    let mut report = RedriveReport::default();
    let letters = dlq.dlq_list(filter).await?;
    let mut by_object: std::collections::BTreeMap<String, Vec<StoredLetter>> = Default::default();
    for l in letters {
        if l.status == LetterStatus::Superseded {
            report.superseded += 1;
            continue;
        }
        let d = &l.letter;
        if let Some(newest) = applied
            .applied_version(&d.tenant, &d.object, &d.source_id)
            .await?
            .filter(|v| *v >= d.source_version)
        {
            dlq.dlq_supersede(&d.tenant, &d.object, &d.source_id, newest)
                .await?;
            report.superseded += 1;
            continue;
        }
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
    let mut wait_before_next: Option<Duration> = None;
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
        for batch in valid.chunks(BATCH) {
            if let Some(wait) = wait_before_next.take() {
                clock.sleep(wait).await;
            }
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
            if let Some(rate) = per_second {
                // Checked above; a partial batch waits its share.
                wait_before_next =
                    Some(batch_wait(rate)?.mul_f64(batch.len() as f64 / BATCH as f64));
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
