//! sObject Collections: a lane's items of one object go out as upserts by external ID in
//! batches of `batch_size` (at most 200), or through one Bulk API 2.0 job above
//! `bulk_threshold` ([`super::bulk`]). A batch is an [`Attempt`] of the request driver:
//! each answer settles the records that landed (their idempotency keys are written in one
//! transaction) and those Salesforce refused for good (dead letters), and the records with
//! a retryable per-record error go again.

use std::collections::BTreeMap;

use serde_json::Value;

use super::calls::Attempt;
use super::client::{Reply, SalesforceClient};
use super::dlq::ErrorClass;
use super::lanes::Lane;
use super::letters::Letter;
use super::retry::{item_is_retryable, Action, Failure};
use super::source::SourceRecord;
use super::{EngineError, Fence, Item, Sync};
use crate::sim::Timestamp;

impl Sync<'_> {
    /// Sends mapped items: through Bulk API 2.0 when there are more than `bulk_threshold`
    /// (outside the real-time lane), else in sObject Collections batches.
    pub(super) async fn dispatch(
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

    /// Upserts one batch until every record landed or was dead-lettered.
    pub(super) async fn send_batch(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        batch: &[Item<'_>],
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        let mut attempt = Batch {
            object,
            ext_field,
            remaining: batch.iter().collect(),
            first_failed: BTreeMap::new(),
        };
        let gave_up = match self
            .drive(client, object, fence, &mut attempt, true)
            .await?
        {
            Ok(()) => return Ok(()),
            Err(gave_up) => gave_up,
        };
        let message = gave_up.message();
        for item in &attempt.remaining {
            let first_failed = attempt.first_failed_of(item.record, self.clock.now());
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
            )
            .await?;
        }
        Ok(())
    }
}

/// One collections batch: the records still to land, and when each first failed.
struct Batch<'b, 's> {
    object: &'b str,
    ext_field: &'b str,
    remaining: Vec<&'b Item<'s>>,
    first_failed: BTreeMap<&'s str, Timestamp>,
}

impl<'s> Batch<'_, 's> {
    fn first_failed_of(&self, record: &SourceRecord, now: Timestamp) -> Timestamp {
        self.first_failed
            .get(record.id.as_str())
            .copied()
            .unwrap_or(now)
    }
}

impl Attempt for Batch<'_, '_> {
    type Reply = Reply;
    type Output = ();

    fn records(&self) -> usize {
        self.remaining.len()
    }

    async fn send(&mut self, client: &mut SalesforceClient) -> Result<Reply, Failure> {
        let payloads: Vec<Value> = self.remaining.iter().map(|i| i.payload.clone()).collect();
        client
            .upsert_collection(self.object, self.ext_field, &payloads)
            .await
    }

    /// One result per record, in order: the records that landed are remembered and
    /// counted, those refused for good are dead-lettered, the retryable ones stay.
    async fn settle(
        &mut self,
        engine: &mut Sync<'_>,
        reply: Reply,
        attempt: u32,
    ) -> Result<Result<(), Failure>, EngineError> {
        let Some(results) = reply
            .body
            .as_array()
            .filter(|a| a.len() == self.remaining.len())
        else {
            return Ok(Err(Failure::transport(format!(
                "garbled collections answer: expected {} results",
                self.remaining.len()
            ))));
        };
        let landed = |r: &Value| r.get("success").and_then(Value::as_bool) == Some(true);
        let applied: Vec<&SourceRecord> = self
            .remaining
            .iter()
            .zip(results)
            .filter(|(_, r)| landed(r))
            .map(|(item, _)| item.record)
            .collect();
        engine.remember_applied(self.object, &applied).await?;
        let now = engine.clock.now();
        let mut retry = Vec::new();
        let mut retry_code = String::new();
        for (item, result) in self.remaining.iter().zip(results) {
            if landed(result) {
                if result.get("created").and_then(Value::as_bool) == Some(true) {
                    engine.report.created += 1;
                } else {
                    engine.report.updated += 1;
                }
                continue;
            }
            let err = result.pointer("/errors/0");
            let field = |name: &str| err.and_then(|e| e.get(name)).and_then(Value::as_str);
            let code = field("statusCode").unwrap_or("UNKNOWN_ERROR").to_string();
            if item_is_retryable(&code) {
                self.first_failed
                    .entry(item.record.id.as_str())
                    .or_insert(now);
                retry_code = code;
                retry.push(*item);
                continue;
            }
            let first_failed = self.first_failed_of(item.record, now);
            engine
                .dead_letter(
                    self.object,
                    Letter {
                        record: item.record,
                        payload: item.payload.clone(),
                        class: ErrorClass::Rejected,
                        code: &code,
                        message: field("message").unwrap_or(""),
                        attempts: attempt,
                        correlation_id: Some(reply.correlation_id.clone()),
                        first_failed,
                    },
                )
                .await?;
        }
        self.remaining = retry;
        if self.remaining.is_empty() {
            return Ok(Ok(()));
        }
        Ok(Err(Failure {
            action: Action::Retry,
            status: Some(200),
            code: retry_code,
            message: "per-record retryable error".into(),
            not_before: None,
        }))
    }

    fn failed(&mut self, at: Timestamp) {
        for item in &self.remaining {
            self.first_failed
                .entry(item.record.id.as_str())
                .or_insert(at);
        }
    }
}
