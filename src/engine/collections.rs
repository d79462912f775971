//! sObject Collections: a lane's items of one object go out as upserts by external ID in
//! batches of `batch_size` (at most 200), or through one Bulk API 2.0 job above
//! `bulk_threshold` ([`super::bulk`]). A batch is an [`Attempt`] of the request driver:
//! each answer settles the records that landed (their idempotency keys are written in one
//! transaction) and those Salesforce refused for good (dead letters), and the records with
//! a retryable per-record error go again.
//!
//! The batch size adapts to the org's triggers: when a batch's transaction hits a governor
//! limit (an Apex CPU time limit: [`super::retry::item_needs_smaller_batch`]), its records go
//! again in batches half the size (down to one record, which is then dead-lettered like
//! any permanent error); after [`GROW_AFTER`] batches in a row that land, the size doubles
//! back towards `batch_size`. The size reached is kept per object for the rest of the run.

use std::collections::VecDeque;

use std::collections::BTreeMap;

use serde_json::Value;

use super::calls::Attempt;
use super::client::{Reply, SalesforceClient};
use super::dlq::ErrorClass;
use super::lanes::Lane;
use super::letters::Letter;
use super::retry::{item_is_retryable, item_needs_smaller_batch, Action, Failure};
use super::source::SourceRecord;
use super::EventKind;
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
        let items: Vec<&Item> = items.iter().collect();
        self.send_in_batches(client, object, ext_field, items, fence, |engine, n| {
            settled += n;
            engine.report_progress(object, settled);
        })
        .await
    }

    /// Sends `items` in collections batches of the object's current size, adapting it to
    /// the org's trigger limits (see the module's doc); after each batch, `on_settled` is
    /// told how many of its records landed or were dead-lettered.
    pub(super) async fn send_in_batches(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        items: Vec<&Item<'_>>,
        fence: Option<&dyn Fence>,
        mut on_settled: impl FnMut(&Self, usize),
    ) -> Result<(), EngineError> {
        let configured = self.config.batch_size.clamp(1, 200);
        let mut size = self
            .batch_sizes
            .get(object)
            .copied()
            .unwrap_or(configured)
            .min(configured);
        let mut landed_in_a_row = 0;
        let mut queue: VecDeque<&Item> = items.into();
        while !queue.is_empty() {
            let batch: Vec<&Item> = queue.drain(..size.min(queue.len())).collect();
            let too_heavy = self
                .send_batch(client, object, ext_field, &batch, fence)
                .await?;
            on_settled(self, batch.len() - too_heavy.len());
            if too_heavy.is_empty() {
                landed_in_a_row += 1;
                if landed_in_a_row >= GROW_AFTER && size < configured {
                    let grown = (size * 2).min(configured);
                    self.note_batch_size(object, size, grown, "batches land again");
                    size = grown;
                    landed_in_a_row = 0;
                }
                continue;
            }
            landed_in_a_row = 0;
            let halved = (batch.len() / 2).max(1);
            self.note_batch_size(
                object,
                size,
                halved,
                "the org's triggers hit a governor limit (Apex CPU time)",
            );
            size = halved;
            for item in too_heavy.into_iter().rev() {
                queue.push_front(item);
            }
        }
        self.batch_sizes.insert(object.to_string(), size);
        Ok(())
    }

    fn note_batch_size(&mut self, object: &str, from: usize, to: usize, why: &str) {
        self.event(
            object,
            EventKind::Note {
                message: format!("batch size {from} → {to}: {why}"),
            },
        );
    }

    /// Upserts one batch until every record landed, was dead-lettered, or was too heavy
    /// for the org's triggers in a batch this size (returned, to go again in a smaller one).
    async fn send_batch<'b, 's>(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        batch: &[&'b Item<'s>],
        fence: Option<&dyn Fence>,
    ) -> Result<Vec<&'b Item<'s>>, EngineError> {
        let mut attempt = Batch {
            object,
            ext_field,
            remaining: batch.to_vec(),
            too_heavy: Vec::new(),
            first_failed: BTreeMap::new(),
        };
        let gave_up = match self
            .drive(client, object, fence, &mut attempt, true)
            .await?
        {
            Ok(()) => return Ok(attempt.too_heavy),
            Err(gave_up) => gave_up,
        };
        let now = self.clock.now();
        let letters: Vec<_> = attempt
            .remaining
            .iter()
            .map(|item| (*item, attempt.first_failed_of(item.record, now)))
            .collect();
        self.dead_letter_given_up(object, &letters, &gave_up)
            .await?;
        Ok(attempt.too_heavy)
    }
}

/// Batches in a row that must land before the size doubles back.
pub const GROW_AFTER: usize = 2;

/// One collections batch: the records still to land, those too heavy for a batch this
/// size, and when each first failed.
struct Batch<'a, 'b, 's> {
    object: &'a str,
    ext_field: &'a str,
    remaining: Vec<&'b Item<'s>>,
    too_heavy: Vec<&'b Item<'s>>,
    first_failed: BTreeMap<&'s str, Timestamp>,
}

impl<'s> Batch<'_, '_, 's> {
    fn first_failed_of(&self, record: &SourceRecord, now: Timestamp) -> Timestamp {
        self.first_failed
            .get(record.id.as_str())
            .copied()
            .unwrap_or(now)
    }
}

impl Attempt for Batch<'_, '_, '_> {
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
            let message = field("message").unwrap_or("");
            // Too heavy together; alone, the record itself is what the trigger cannot take.
            if item_needs_smaller_batch(&code, message) && self.remaining.len() > 1 {
                self.too_heavy.push(*item);
                continue;
            }
            if item_is_retryable(&code) {
                self.first_failed
                    .entry(item.record.id.as_str())
                    .or_insert(now);
                retry_code = code;
                retry.push(*item);
                continue;
            }
            let first_failed = self.first_failed_of(item.record, now);
            engine.dead_letter(
                self.object,
                Letter {
                    record: item.record,
                    payload: item.payload.clone(),
                    class: ErrorClass::Rejected,
                    code: &code,
                    message,
                    attempts: attempt,
                    correlation_id: Some(reply.correlation_id.clone()),
                    first_failed,
                },
            );
        }
        // The batch's rejections, in one transaction.
        engine.flush_letters().await?;
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
