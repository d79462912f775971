//! Bulk API 2.0 upserts, the client side: one ingest job per object (more when the CSV
//! passes Salesforce's upload limit). Create the job, upload the records as CSV, close it
//! (`UploadComplete`), poll its state on the clock, then read `successfulResults`,
//! `failedResults` and `unprocessedrecords` and map every row back to its source record.
//!
//! Every call goes through the engine's usual guards (daily budget, token bucket and
//! concurrency cap, circuit breaker, `Retry-After`, session refresh). Successes count as
//! created/updated and set the record version's idempotency key; rejected rows go to the
//! dead-letter queue with Salesforce's error; unprocessed rows (and rows failed with a
//! retryable code) are sent again through sObject Collections. A job that ends `Failed` or
//! `Aborted` is classified (`retry::classify_job_failure`) and sent again as a new job, or
//! dead-lettered with the job's error message.
//!
//! API calls of a job that goes well: create, one upload per job, close, the status polls,
//! `successfulResults`; `failedResults` only when the job reports failed rows and
//! `unprocessedrecords` only when it processed fewer rows than were uploaded.

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};

use super::calls::{ApiRequest, Retried};
use super::client::SalesforceClient;
use super::dlq::ErrorClass;
use super::letters::Letter;
use super::retry::{
    classify_job_failure, item_is_retryable, item_needs_smaller_batch, Action, Attempts, End,
    Failure, GaveUp, Next,
};
use super::source::SourceRecord;
use super::{EngineError, EventKind, Fence, Item, Sync};
use crate::sim::Timestamp;

mod pace;
mod wire;
pub use pace::*;
pub use wire::*;

/// What became of a job's records.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// Each landed or was dead-lettered.
    Done,
    /// The upload was refused as too large (413): none were sent.
    TooLarge,
}

/// How one job ended.
enum JobEnd {
    /// Processed: per item, what became of it.
    Done(Outcome),
    /// The job (or one of its calls) failed as a whole.
    Failed(Failure),
}

#[derive(Default)]
struct Outcome {
    /// Item index, created.
    succeeded: Vec<(usize, bool)>,
    /// Item index, code, message, correlation ID of the `failedResults` call.
    rejected: Vec<(usize, String, String, String)>,
    /// Items to send again (unprocessed, retryable failures, rows no result named).
    again: Vec<usize>,
}

impl<'a> Sync<'a> {
    /// Sends `items` of `object` through Bulk API 2.0 (one job per upload-sized part, each
    /// finished before the next starts, so a caller that waits for this call has every
    /// record landed or dead-lettered).
    pub(super) async fn send_bulk(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        items: &[Item<'_>],
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        let payloads: Vec<&Map<String, Value>> = items
            .iter()
            .map(|i| i.payload.as_object())
            .collect::<Option<_>>()
            .ok_or_else(|| EngineError::Work(format!("a payload of {object} is not an object")))?;
        let mut max_bytes = self.config.bulk_max_upload_bytes;
        let mut pending = Some(0..items.len());
        while let Some(range) = pending.take() {
            let uploads =
                encode_uploads(ext_field, &payloads[range.clone()], max_bytes).map_err(|e| {
                    EngineError::Work(format!("{object}: cannot build the Bulk CSV: {e}"))
                })?;
            for (part, csv) in uploads {
                let part = range.start + part.start..range.start + part.end;
                let sent = self
                    .bulk_job(client, object, ext_field, &items[part.clone()], &csv, fence)
                    .await?;
                if sent == Sent::TooLarge {
                    // The org (or a proxy before it) takes less than we thought: halve the
                    // upload size and send the rest again from this part on.
                    max_bytes = csv.len() / 2;
                    pending = Some(part.start..range.end);
                    break;
                }
            }
        }
        Ok(())
    }

    /// One job, sent again as a new job while it fails retryably.
    async fn bulk_job(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        items: &[Item<'_>],
        csv: &str,
        fence: Option<&dyn Fence>,
    ) -> Result<Sent, EngineError> {
        let first = self.clock.now();
        let mut attempts = Attempts::whole_job(self.config.max_attempts);
        loop {
            let attempt = attempts.start();
            let failure = match self
                .run_job(client, object, ext_field, items, csv, fence)
                .await?
            {
                JobEnd::Done(outcome) => {
                    self.report.bulk_jobs += 1;
                    self.apply_outcome(
                        client, object, ext_field, items, outcome, attempt, first, fence,
                    )
                    .await?;
                    return Ok(Sent::Done);
                }
                JobEnd::Failed(f) if f.status == Some(413) && items.len() > 1 => {
                    self.event(
                        object,
                        EventKind::Retry {
                            attempt,
                            records: items.len(),
                            code: f.code,
                        },
                    );
                    return Ok(Sent::TooLarge);
                }
                JobEnd::Failed(f) => f,
            };
            let gave_up = match attempts.after(&failure, true) {
                Next::GiveUp(end) => GaveUp {
                    failure,
                    end,
                    attempts: attempt,
                },
                // A whole job is only tried again after a retryable failure.
                Next::Refresh | Next::WaitForWindow | Next::Retry => {
                    match self
                        .retry_wait(object, attempt, items.len(), &failure)
                        .await?
                    {
                        Retried::Waited => continue,
                        Retried::GaveUp(message) => GaveUp {
                            failure: Failure { message, ..failure },
                            end: End::RetryAfterTooLong,
                            attempts: attempt,
                        },
                    }
                }
            };
            let letters: Vec<_> = items.iter().map(|item| (item, first)).collect();
            self.dead_letter_given_up(object, &letters, &gave_up)
                .await?;
            return Ok(Sent::Done);
        }
    }

    /// Creates, fills, closes and polls one job, then reads its results.
    async fn run_job(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        items: &[Item<'_>],
        csv: &str,
        fence: Option<&dyn Fence>,
    ) -> Result<JobEnd, EngineError> {
        let n = items.len();
        let create = BulkCall::Create {
            object,
            ext_field,
            insert: false,
        };
        let reply = match self
            .call_retrying(client, object, fence, &ApiRequest::Bulk(&create), n, true)
            .await?
        {
            Ok(r) => r,
            Err(f) => return Ok(JobEnd::Failed(f)),
        };
        let Some(job) = JobInfo::parse(&reply.text) else {
            return Ok(JobEnd::Failed(Failure::transport(
                "garbled Bulk job answer: no job id and state",
            )));
        };
        let id = job.id;
        // Not retried in place: an upload whose answer was lost may have landed, and a
        // second one would add its rows twice. The whole job is sent again instead.
        let upload = BulkCall::Upload { job: &id, csv };
        if let Err(f) = self
            .call_retrying(client, object, fence, &ApiRequest::Bulk(&upload), n, false)
            .await?
        {
            self.abort_quietly(client, object, fence, &id).await?;
            return Ok(JobEnd::Failed(f));
        }
        let close = BulkCall::Close { job: &id };
        // When the org says it closed the job (its own clock), for the poll schedule.
        let mut closed_at = None;
        match self
            .call_retrying(client, object, fence, &ApiRequest::Bulk(&close), n, true)
            .await?
        {
            Ok(reply) => closed_at = JobInfo::parse(&reply.text).and_then(|i| i.modstamp),
            // Already closed: the answer to an earlier close was lost. Polling tells.
            Err(f) if f.status == Some(409) => {}
            Err(f) => {
                self.abort_quietly(client, object, fence, &id).await?;
                return Ok(JobEnd::Failed(f));
            }
        }
        let info = match self
            .poll_job(client, object, fence, &id, n, closed_at)
            .await?
        {
            Ok(info) => info,
            Err(f) => return Ok(JobEnd::Failed(f)),
        };
        self.read_results(client, object, ext_field, fence, items, &info)
            .await
    }

    /// Polls the job until it ends: first when a job of its size should be done at the
    /// pace the org showed so far ([`Pace`]), then as its reported progress says
    /// ([`next_poll`]). A completed job's reported times teach the pace for the next.
    async fn poll_job(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        fence: Option<&dyn Fence>,
        id: &str,
        n: usize,
        closed_at: Option<Timestamp>,
    ) -> Result<Result<JobInfo, Failure>, EngineError> {
        let started = self.clock.now();
        let expected = self.bulk_pace.expected(object, n as u64);
        let mut wait = self.bulk_pace.first_wait(object, n as u64, &self.config);
        let mut interval = self.config.bulk_poll_interval;
        let mut state = "UploadComplete".to_string();
        // When the org first reported the job in progress.
        let mut running_since: Option<Timestamp> = None;
        loop {
            let until = self.clock.now().plus(wait);
            if until.since(started) > self.config.bulk_job_timeout {
                self.abort_quietly(client, object, fence, id).await?;
                return Ok(Err(Failure {
                    action: Action::Retry,
                    status: None,
                    code: "BULK_JOB_TIMEOUT".into(),
                    message: format!(
                        "Bulk job {id} for {object} was still {state} after {}s; aborted",
                        self.config.bulk_job_timeout.as_secs()
                    ),
                    not_before: None,
                }));
            }
            self.event(
                object,
                EventKind::Wait {
                    until: until.to_iso(),
                    reason: format!("Bulk job {id} {state}: next status poll"),
                },
            );
            self.wait_until(until, &format!("waiting for Bulk job {id} ({object})"))
                .await?;
            self.report.bulk_polls += 1;
            let reply = match self
                .call_retrying(
                    client,
                    object,
                    fence,
                    &ApiRequest::Bulk(&BulkCall::Info { job: id }),
                    n,
                    true,
                )
                .await?
            {
                Ok(r) => r,
                Err(f) => return Ok(Err(f)),
            };
            let Some(info) = JobInfo::parse(&reply.text) else {
                return Ok(Err(Failure::transport(format!(
                    "garbled answer polling Bulk job {id}"
                ))));
            };
            if info.state == "InProgress" && running_since.is_none() {
                running_since = info.modstamp;
            }
            if info.state == "JobComplete" {
                // The org's own times (close to complete, close to in progress); without
                // them, the engine's clock from close to this poll, an upper bound.
                let (took, queue) = match (closed_at, info.modstamp) {
                    (Some(c), Some(done)) => (done.since(c), running_since.map(|t| t.since(c))),
                    _ => (self.clock.now().since(started), None),
                };
                self.bulk_pace.learn(
                    object,
                    Observed {
                        records: n as u64,
                        took,
                        queue,
                        processing: info.processing,
                    },
                );
            }
            match info.state.as_str() {
                "JobComplete" => return Ok(Ok(info)),
                "Failed" | "Aborted" => {
                    let why = info.error_message.clone().unwrap_or_default();
                    return Ok(Err(Failure {
                        action: classify_job_failure(&info.state, &why),
                        status: None,
                        code: format!("BULK_JOB_{}", info.state.to_ascii_uppercase()),
                        message: format!(
                            "Bulk job {id} for {object} ended {}: {}",
                            info.state,
                            if why.is_empty() {
                                "no reason given"
                            } else {
                                &why
                            }
                        ),
                        not_before: None,
                    }));
                }
                _ => {}
            }
            state = info.state;
            wait = next_poll(
                n as u64,
                info.processed,
                self.clock.now().since(started),
                expected,
                &mut interval,
                &self.config,
            );
        }
    }

    /// Reads the results the job info says exist and maps each row to its item.
    async fn read_results(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        fence: Option<&dyn Fence>,
        items: &[Item<'_>],
        info: &JobInfo,
    ) -> Result<JobEnd, EngineError> {
        let n = items.len();
        let mut by_key: HashMap<String, VecDeque<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let key = item.payload.get(ext_field).map(cell).unwrap_or_default();
            by_key.entry(key).or_default().push_back(i);
        }
        let mut outcome = Outcome::default();
        let mut seen = vec![false; n];
        let wanted = [
            ("successfulResults", info.processed > info.failed),
            ("failedResults", info.failed > 0),
            ("unprocessedrecords", (info.processed as usize) < n),
        ];
        for (kind, needed) in wanted {
            if !needed {
                continue;
            }
            let call = BulkCall::Results {
                job: &info.id,
                kind,
            };
            let reply = match self
                .call_retrying(client, object, fence, &ApiRequest::Bulk(&call), n, true)
                .await?
            {
                Ok(r) => r,
                Err(f) => return Ok(JobEnd::Failed(f)),
            };
            let (header, rows) = match parse_csv(&reply.text) {
                Ok(x) => x,
                Err(e) => {
                    return Ok(JobEnd::Failed(Failure::transport(format!(
                        "garbled {kind} CSV of Bulk job {}: {e}",
                        info.id
                    ))))
                }
            };
            let col = |name: &str| header.iter().position(|h| h == name);
            let Some(key_col) = col(ext_field) else {
                return Ok(JobEnd::Failed(Failure::transport(format!(
                    "{kind} of Bulk job {} has no {ext_field} column",
                    info.id
                ))));
            };
            let created_col = col("sf__Created");
            let error_col = col("sf__Error");
            for row in rows {
                let key = row.get(key_col).cloned().unwrap_or_default();
                let Some(i) = by_key.get_mut(&key).and_then(VecDeque::pop_front) else {
                    continue;
                };
                seen[i] = true;
                match kind {
                    "successfulResults" => {
                        let created = created_col
                            .and_then(|c| row.get(c))
                            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                        outcome.succeeded.push((i, created));
                    }
                    "failedResults" => {
                        let raw = error_col
                            .and_then(|c| row.get(c))
                            .cloned()
                            .unwrap_or_default();
                        let (code, message) = parse_sf_error(&raw);
                        // A trigger over its limits: the rows go again in smaller
                        // collections batches.
                        if item_is_retryable(&code) || item_needs_smaller_batch(&code, &message) {
                            outcome.again.push(i);
                        } else {
                            outcome
                                .rejected
                                .push((i, code, message, reply.correlation_id.clone()));
                        }
                    }
                    _ => outcome.again.push(i),
                }
            }
        }
        // A row no result named was not confirmed: sending it again is safe (an upsert).
        outcome.again.extend(
            seen.iter()
                .enumerate()
                .filter(|(_, s)| !**s)
                .map(|(i, _)| i),
        );
        Ok(JobEnd::Done(outcome))
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_outcome(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        ext_field: &str,
        items: &[Item<'_>],
        outcome: Outcome,
        attempt: u32,
        first: Timestamp,
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        let applied: Vec<&SourceRecord> = outcome
            .succeeded
            .iter()
            .map(|&(i, _)| items[i].record)
            .collect();
        self.remember_applied(object, &applied).await?;
        for (_, created) in outcome.succeeded {
            if created {
                self.report.created += 1;
            } else {
                self.report.updated += 1;
            }
        }
        for (i, code, message, correlation) in outcome.rejected {
            self.dead_letter(
                object,
                Letter {
                    record: items[i].record,
                    payload: items[i].payload.clone(),
                    class: ErrorClass::Rejected,
                    code: &code,
                    message: &message,
                    attempts: attempt,
                    correlation_id: Some(correlation),
                    first_failed: first,
                },
            );
        }
        // The job's rejections, in one transaction.
        self.flush_letters().await?;
        if outcome.again.is_empty() {
            return Ok(());
        }
        let again: Vec<&Item> = outcome.again.iter().map(|&i| &items[i]).collect();
        self.report.retries += 1;
        self.event(
            object,
            EventKind::Retry {
                attempt,
                records: again.len(),
                code: "BULK_UNPROCESSED".into(),
            },
        );
        self.send_in_batches(client, object, ext_field, again, fence, |_, _| {})
            .await
    }

    /// Best effort: a job given up on is aborted so it never writes later.
    async fn abort_quietly(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        fence: Option<&dyn Fence>,
        id: &str,
    ) -> Result<(), EngineError> {
        let _ = self
            .call_retrying(
                client,
                object,
                fence,
                &ApiRequest::Bulk(&BulkCall::Abort { job: id }),
                0,
                false,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
