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

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::calls::ApiRequest;
use super::client::{RequestBody, SalesforceClient, TextReply};
use super::dlq::ErrorClass;
use super::retry::{classify_job_failure, item_is_retryable, Action, Failure};
use super::source::SourceRecord;
use super::{EngineError, EventKind, Fence, Item, Sync};
use crate::sim::Timestamp;

/// Salesforce's limit per upload is 150 MB base64-encoded (about 100 M characters of CSV).
pub const MAX_UPLOAD_BYTES: usize = 100_000_000;

/// One request of the Bulk API 2.0 ingest flow.
#[derive(Clone, Debug)]
pub enum BulkCall<'a> {
    Create {
        object: &'a str,
        ext_field: &'a str,
        insert: bool,
    },
    Upload {
        job: &'a str,
        csv: &'a str,
    },
    Close {
        job: &'a str,
    },
    Abort {
        job: &'a str,
    },
    Info {
        job: &'a str,
    },
    /// `successfulResults`, `failedResults` or `unprocessedrecords`.
    Results {
        job: &'a str,
        kind: &'static str,
    },
}

impl BulkCall<'_> {
    /// Sends this request (once; the engine decides about retries).
    pub async fn send(&self, client: &mut SalesforceClient) -> Result<TextReply, Failure> {
        let json_accept = "application/json";
        match self {
            BulkCall::Create {
                object,
                ext_field,
                insert,
            } => {
                let mut body = json!({
                    "object": object,
                    "operation": if *insert { "insert" } else { "upsert" },
                    "contentType": "CSV",
                    "columnDelimiter": "COMMA",
                    "lineEnding": "LF",
                });
                if !insert {
                    body["externalIdFieldName"] = json!(ext_field);
                }
                client
                    .call_text(
                        Method::POST,
                        "jobs/ingest",
                        Some(RequestBody::Json(&body)),
                        json_accept,
                    )
                    .await
            }
            BulkCall::Upload { job, csv } => {
                client
                    .call_text(
                        Method::PUT,
                        &format!("jobs/ingest/{job}/batches"),
                        Some(RequestBody::Csv(csv)),
                        json_accept,
                    )
                    .await
            }
            BulkCall::Close { job } | BulkCall::Abort { job } => {
                let state = if matches!(self, BulkCall::Close { .. }) {
                    "UploadComplete"
                } else {
                    "Aborted"
                };
                let body = json!({ "state": state });
                client
                    .call_text(
                        Method::PATCH,
                        &format!("jobs/ingest/{job}"),
                        Some(RequestBody::Json(&body)),
                        json_accept,
                    )
                    .await
            }
            BulkCall::Info { job } => {
                client
                    .call_text(
                        Method::GET,
                        &format!("jobs/ingest/{job}"),
                        None,
                        json_accept,
                    )
                    .await
            }
            BulkCall::Results { job, kind } => {
                client
                    .call_text(
                        Method::GET,
                        &format!("jobs/ingest/{job}/{kind}"),
                        None,
                        "text/csv",
                    )
                    .await
            }
        }
    }
}

/// What a job's info says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    pub id: String,
    pub state: String,
    pub processed: u64,
    pub failed: u64,
    pub error_message: Option<String>,
}

impl JobInfo {
    /// Reads a job-info answer; `None` when it is not one.
    pub fn parse(text: &str) -> Option<JobInfo> {
        let v: Value = serde_json::from_str(text).ok()?;
        let num = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        Some(JobInfo {
            id: v.get("id")?.as_str()?.to_string(),
            state: v.get("state")?.as_str()?.to_string(),
            processed: num("numberRecordsProcessed"),
            failed: num("numberRecordsFailed"),
            error_message: v
                .get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

/// How long to wait before the next status poll of a job of `n` records that reports
/// `processed` of them done `elapsed` after it was closed: the time the rest takes at the
/// rate observed so far; while the job reports no progress, what is left of the time
/// `bulk_records_per_sec` gives it, else an interval doubling up to `bulk_poll_cap`.
/// Never less than [`MIN_POLL_WAIT`] nor more than `bulk_poll_cap`.
pub fn next_poll(
    n: u64,
    processed: u64,
    elapsed: Duration,
    interval: &mut Duration,
    config: &super::EngineConfig,
) -> Duration {
    let expected = if processed > 0 && processed < n {
        elapsed.mul_f64((n - processed) as f64 / processed as f64)
    } else {
        Duration::from_secs_f64(n as f64 / config.bulk_records_per_sec.max(1.0))
            .saturating_sub(elapsed)
    };
    let wait = if expected.is_zero() {
        let w = *interval;
        *interval = (*interval * 2).min(config.bulk_poll_cap);
        w
    } else {
        expected
    };
    wait.clamp(
        MIN_POLL_WAIT.min(config.bulk_poll_cap),
        config.bulk_poll_cap,
    )
}

/// The shortest wait between two status polls of one job.
pub const MIN_POLL_WAIT: Duration = Duration::from_millis(100);

/// A payload value as a Bulk CSV cell: null (and an empty string, which Salesforce stores
/// as null) is `#N/A`, since an empty cell leaves the field unchanged.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "#N/A".into(),
        Value::String(s) if s.is_empty() => "#N/A".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A payload's CSV columns: `{"Account": {"Ext__c": "X"}}` becomes `Account.Ext__c = X`.
fn columns(payload: &Map<String, Value>) -> Vec<(String, String)> {
    payload
        .iter()
        .map(|(k, v)| match v {
            Value::Object(m) if m.len() == 1 => {
                let (key, inner) = m.iter().next().expect("one entry");
                (format!("{k}.{key}"), cell(inner))
            }
            _ => (k.clone(), cell(v)),
        })
        .collect()
}

/// The CSV uploads for `payloads`: one header (the external ID first, then every column
/// any payload has, sorted), a row per payload (an absent column is an empty cell), cut
/// into uploads of at most `max_bytes` (a single row over it gets an upload of its own).
/// Returns each upload with the payload range it holds.
pub fn encode_uploads(
    ext_field: &str,
    payloads: &[&Map<String, Value>],
    max_bytes: usize,
) -> Result<Vec<(std::ops::Range<usize>, String)>, String> {
    let rows: Vec<Vec<(String, String)>> = payloads.iter().map(|p| columns(p)).collect();
    let mut others: BTreeSet<&str> = BTreeSet::new();
    for row in &rows {
        for (c, _) in row {
            if c != ext_field {
                others.insert(c);
            }
        }
    }
    let header: Vec<&str> = std::iter::once(ext_field).chain(others).collect();
    let line = |fields: &[&str]| -> Result<String, String> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(fields).map_err(|e| e.to_string())?;
        let bytes = w.into_inner().map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|e| e.to_string())
    };
    let head = line(&header)?;
    let mut uploads = Vec::new();
    let mut current = head.clone();
    let mut start = 0;
    for (i, row) in rows.iter().enumerate() {
        let by_name: HashMap<&str, &str> =
            row.iter().map(|(c, v)| (c.as_str(), v.as_str())).collect();
        let cells: Vec<&str> = header
            .iter()
            .map(|h| by_name.get(h).copied().unwrap_or(""))
            .collect();
        let text = line(&cells)?;
        // A row too large on its own still goes alone: the org's 413 dead-letters it.
        if current.len() + text.len() > max_bytes && i > start {
            uploads.push((start..i, std::mem::replace(&mut current, head.clone())));
            start = i;
        }
        current.push_str(&text);
    }
    if payloads.len() > start {
        uploads.push((start..payloads.len(), current));
    }
    Ok(uploads)
}

/// Reads a result CSV: the header and its rows.
pub fn parse_csv(text: &str) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = r
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut rows = Vec::new();
    for row in r.records() {
        rows.push(
            row.map_err(|e| e.to_string())?
                .iter()
                .map(str::to_string)
                .collect(),
        );
    }
    Ok((header, rows))
}

/// `sf__Error` reads `CODE:message:fields --`: the code, and the message.
pub fn parse_sf_error(e: &str) -> (String, String) {
    let e = e.trim().trim_end_matches("--").trim_end();
    let (code, rest) = e.split_once(':').unwrap_or((e, ""));
    let message = match rest.rsplit_once(':') {
        // The last part names fields (comma-separated, no spaces).
        Some((m, fields)) if !fields.contains(' ') => m,
        _ => rest,
    };
    let code = if code.trim().is_empty() {
        "UNKNOWN_ERROR"
    } else {
        code.trim()
    };
    (code.to_string(), message.trim().to_string())
}

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
        let mut attempt = 0u32;
        loop {
            attempt += 1;
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
            let give_up = match failure.action {
                Action::DeadLetter | Action::Refresh | Action::WaitForWindow => {
                    Some(ErrorClass::Rejected)
                }
                Action::Retry if attempt >= self.config.max_attempts => {
                    Some(ErrorClass::RetriesExhausted)
                }
                Action::Retry => None,
            };
            if let Some(class) = give_up {
                let now = self.clock.now();
                for item in items {
                    self.dead_letter(
                        object,
                        item.record,
                        item.payload.clone(),
                        class,
                        &failure.code,
                        &failure.message,
                        attempt,
                        None,
                        first,
                        now,
                    )
                    .await?;
                }
                return Ok(Sent::Done);
            }
            if let super::calls::Retried::GaveUp(message) = self
                .retry_wait(object, attempt, items.len(), &failure)
                .await?
            {
                let now = self.clock.now();
                for item in items {
                    self.dead_letter(
                        object,
                        item.record,
                        item.payload.clone(),
                        ErrorClass::RetriesExhausted,
                        &failure.code,
                        &message,
                        attempt,
                        None,
                        first,
                        now,
                    )
                    .await?;
                }
                return Ok(Sent::Done);
            }
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
        match self
            .call_retrying(client, object, fence, &ApiRequest::Bulk(&close), n, true)
            .await?
        {
            Ok(_) => {}
            // Already closed: the answer to an earlier close was lost. Polling tells.
            Err(f) if f.status == Some(409) => {}
            Err(f) => {
                self.abort_quietly(client, object, fence, &id).await?;
                return Ok(JobEnd::Failed(f));
            }
        }
        let info = match self.poll_job(client, object, fence, &id, n).await? {
            Ok(info) => info,
            Err(f) => return Ok(JobEnd::Failed(f)),
        };
        self.read_results(client, object, ext_field, fence, items, &info)
            .await
    }

    /// Polls the job until it ends: first after the time the job should take (at the
    /// configured records-per-second estimate), then on a doubling interval.
    async fn poll_job(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        fence: Option<&dyn Fence>,
        id: &str,
        n: usize,
    ) -> Result<Result<JobInfo, Failure>, EngineError> {
        let started = self.clock.now();
        // The first poll is a probe; later ones follow the progress the job reports.
        let mut wait = self.config.bulk_poll_interval;
        let mut interval = self.config.bulk_poll_interval;
        let mut state = "UploadComplete".to_string();
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
                        if item_is_retryable(&code) {
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
        let now = self.clock.now();
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
                items[i].record,
                items[i].payload.clone(),
                ErrorClass::Rejected,
                &code,
                &message,
                attempt,
                Some(correlation),
                first,
                now,
            )
            .await?;
        }
        if outcome.again.is_empty() {
            return Ok(());
        }
        let again: Vec<Item> = outcome.again.iter().map(|&i| items[i].clone()).collect();
        self.report.retries += 1;
        self.event(
            object,
            EventKind::Retry {
                attempt,
                records: again.len(),
                code: "BULK_UNPROCESSED".into(),
            },
        );
        for batch in again.chunks(self.config.batch_size.clamp(1, 200)) {
            self.send_batch(client, object, ext_field, batch, fence)
                .await?;
        }
        Ok(())
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
mod tests {
    use super::*;

    #[test]
    fn status_polls_follow_the_progress_the_job_reports() {
        let config = crate::engine::EngineConfig::default();
        let secs = Duration::from_secs;
        let mut interval = config.bulk_poll_interval;
        // 18,000 of 25,000 done 2 s after closing: the rest takes 0.78 s at that rate.
        let w = next_poll(25_000, 18_000, secs(2), &mut interval, &config);
        assert_eq!(w.as_millis(), 777);
        assert_eq!(interval, config.bulk_poll_interval, "no doubling");
        // Nothing reported yet: what is left of 25 s at 1,000 records a second.
        assert_eq!(
            next_poll(25_000, 0, secs(2), &mut interval, &config),
            secs(23)
        );
        // Past that guess with still no progress: 2 s, 4 s, 8 s, … up to the cap.
        let waits: Vec<u64> = (0..6)
            .map(|_| next_poll(100, 0, secs(60), &mut interval, &config).as_secs())
            .collect();
        assert_eq!(waits, vec![2, 4, 8, 16, 30, 30]);
        // Nearly done: never less than the floor; a slow job: never more than the cap.
        let mut interval = config.bulk_poll_interval;
        assert_eq!(
            next_poll(
                1_000,
                999,
                Duration::from_millis(10),
                &mut interval,
                &config
            ),
            MIN_POLL_WAIT
        );
        assert_eq!(
            next_poll(1_000_000, 1, secs(60), &mut interval, &config),
            config.bulk_poll_cap
        );
    }

    #[test]
    fn cells_write_nulls_as_na_and_relationships_as_dotted_columns() {
        let p = json!({"Ext__c": "A-1", "Name": "Acme, \"Inc\"", "Phone": null, "Website": "",
                       "Active__c": true, "Amount": 12.5, "Account": {"Cust__c": "C-9"}});
        let ups = encode_uploads("Ext__c", &[p.as_object().unwrap()], MAX_UPLOAD_BYTES).unwrap();
        assert_eq!(ups.len(), 1);
        assert_eq!(
            ups[0].1,
            "Ext__c,Account.Cust__c,Active__c,Amount,Name,Phone,Website\n\
             A-1,C-9,true,12.5,\"Acme, \"\"Inc\"\"\",#N/A,#N/A\n"
        );
    }

    #[test]
    fn absent_columns_are_empty_cells() {
        let a = json!({"Ext__c": "1", "Name": "A"});
        let b = json!({"Ext__c": "2", "Phone": "555"});
        let ups = encode_uploads(
            "Ext__c",
            &[a.as_object().unwrap(), b.as_object().unwrap()],
            MAX_UPLOAD_BYTES,
        )
        .unwrap();
        assert_eq!(ups[0].1, "Ext__c,Name,Phone\n1,A,\n2,,555\n");
    }

    #[test]
    fn uploads_split_at_the_size_limit_with_the_header_repeated() {
        let ps: Vec<Value> = (0..10)
            .map(|i| json!({"Ext__c": format!("K{i}"), "Name": "xxxxxxxx"}))
            .collect();
        let refs: Vec<&Map<String, Value>> = ps.iter().map(|p| p.as_object().unwrap()).collect();
        // Header "Ext__c,Name\n" is 12 bytes, each row "K0,xxxxxxxx\n" 12 bytes.
        let ups = encode_uploads("Ext__c", &refs, 12 + 3 * 12).unwrap();
        let ranges: Vec<_> = ups.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(ranges, vec![0..3, 3..6, 6..9, 9..10]);
        for (_, text) in &ups {
            assert!(text.starts_with("Ext__c,Name\n"));
            assert!(text.len() <= 48);
        }
        let alone = encode_uploads("Ext__c", &refs, 20).unwrap();
        assert_eq!(
            alone.len(),
            10,
            "a row over the limit goes in an upload of its own"
        );
    }

    #[test]
    fn sf_errors_split_into_code_and_message() {
        assert_eq!(
            parse_sf_error("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Zeppelins:Industry --"),
            (
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST".to_string(),
                "bad value for restricted picklist field: Zeppelins".to_string()
            )
        );
        assert_eq!(
            parse_sf_error("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"),
            (
                "REQUIRED_FIELD_MISSING".to_string(),
                "Required fields are missing: [Name]".to_string()
            )
        );
        assert_eq!(parse_sf_error("").0, "UNKNOWN_ERROR");
    }

    #[test]
    fn job_info_reads_state_and_counts() {
        let info = JobInfo::parse(
            r#"{"id":"7500000000001","state":"Failed","numberRecordsProcessed":3,"numberRecordsFailed":1,"errorMessage":"boom"}"#,
        )
        .unwrap();
        assert_eq!(info.state, "Failed");
        assert_eq!((info.processed, info.failed), (3, 1));
        assert_eq!(info.error_message.as_deref(), Some("boom"));
        assert_eq!(JobInfo::parse("not json"), None);
    }
}
