//! Bulk API 2.0 ingest: jobs created, fed CSV, closed with `UploadComplete`, processed on
//! the clock (`UploadComplete → InProgress → JobComplete`, timed by [`bulk_timing`]), with
//! successful, failed and unprocessed results as CSV. Paths are matched
//! case-insensitively, as clients vary.
//!
//! [`bulk_timing`]: super::bulk_timing

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::answer::{Answer, Req};
use super::bulk_timing::{RowCost, Schedule};
use super::ids;
use super::org::{UpsertError, API_USER_ID};
use super::{events, State};
use crate::contract::rules::RecordError;
use crate::sim::{Rng, Timestamp};
use csv_cells::{row_values, sf_error};

mod csv_cells;
mod rows;
pub use rows::{CellsDigest, ProcessedRow};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Insert,
    Update,
    Upsert,
    Delete,
    HardDelete,
}

impl Operation {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "insert" => Operation::Insert,
            "update" => Operation::Update,
            "upsert" => Operation::Upsert,
            "delete" => Operation::Delete,
            "hardDelete" => Operation::HardDelete,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
            Operation::HardDelete => "hardDelete",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JobState {
    Open,
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Open => "Open",
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
        }
    }
}

#[derive(Debug)]
struct Job {
    id: String,
    object: String,
    operation: Operation,
    external_id: Option<String>,
    delimiter: u8,
    delimiter_name: String,
    line_ending: String,
    state: JobState,
    created: Timestamp,
    modstamp: Timestamp,
    closed_at: Option<Timestamp>,
    /// Header of the first upload, then rows of every upload.
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    succeeded: Vec<(String, bool, Vec<String>)>,
    failed: Vec<(String, String, Vec<String>)>,
    origin: String,
    error_message: Option<String>,
    processing_ms: u64,
    /// Rows processed so far while `InProgress` (Salesforce reports the count growing).
    in_progress: u64,
    /// When the job starts and its internal batches finish, planned when it is closed.
    schedule: Option<Schedule>,
    /// Every `n`-th row (from the first) fails `UNABLE_TO_LOCK_ROW` when processed: other
    /// jobs hold those rows (a `records_locked` fault on the job's close).
    locked_every: Option<usize>,
}

/// Every ingest job of the org.
#[derive(Debug)]
pub(crate) struct Jobs {
    jobs: Vec<Job>,
    /// Draws each closed job's queue and batch times.
    timing: Rng,
    next: u64,
    batches: u64,
    /// Bulk 2.0 query jobs (`super::bulk_query`).
    pub(super) queries: Vec<super::bulk_query::QueryJob>,
    pub(super) next_query: u64,
}

impl Jobs {
    /// No jobs yet; processing times drawn from `timing`.
    pub fn new(timing: Rng) -> Jobs {
        Jobs {
            jobs: Vec::new(),
            timing,
            next: 0,
            batches: 0,
            queries: Vec::new(),
            next_query: 0,
        }
    }

    /// Uploads accepted so far (for `limits`).
    pub fn batches_today(&self) -> u64 {
        self.batches
    }
}

fn job_error(status: StatusCode, code: &str, message: impl Into<String>) -> Answer {
    Answer::error(status, code, message, &[])
}

fn info(job: &Job, v: &str) -> Value {
    let mut out = json!({
        "id": job.id,
        "operation": job.operation.as_str(),
        "object": job.object,
        "createdById": API_USER_ID,
        "createdDate": job.created.to_salesforce(),
        "systemModstamp": job.modstamp.to_salesforce(),
        "state": job.state.as_str(),
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": v.parse::<f64>().unwrap_or(62.0),
        "jobType": "V2Ingest",
        "contentUrl": format!("services/data/v{v}/jobs/ingest/{}/batches", job.id),
        "lineEnding": job.line_ending,
        "columnDelimiter": job.delimiter_name,
        "numberRecordsProcessed": match job.state {
            JobState::InProgress => job.in_progress,
            _ => (job.succeeded.len() + job.failed.len()) as u64,
        },
        "numberRecordsFailed": job.failed.len(),
        "retries": 0,
        "totalProcessingTime": job.processing_ms,
        "apiActiveProcessingTime": job.processing_ms,
        "apexProcessingTime": 0,
    });
    if let Some(ext) = &job.external_id {
        out["externalIdFieldName"] = json!(ext);
    }
    if let Some(msg) = &job.error_message {
        out["errorMessage"] = json!(msg);
    }
    out
}

pub(super) fn route(state: &mut State, req: &Req<'_>, seg: &[&str]) -> Answer {
    let lower: Vec<String> = seg.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let v = req.api_version;
    match (&req.method, lower.as_slice()) {
        (_, ["jobs", "query", ..]) => super::bulk_query::route(state, req, seg),
        (&Method::POST, ["jobs", "ingest"]) => create(state, req),
        (&Method::GET, ["jobs", "ingest"]) => {
            let records: Vec<Value> = state.bulk.jobs.iter().map(|j| info(j, v)).collect();
            Answer::ok(
                StatusCode::OK,
                json!({"done": true, "records": records, "nextRecordsUrl": null}),
            )
        }
        (method, ["jobs", "ingest", _, rest @ ..]) => {
            let id = seg[2];
            let Some(job) = state.bulk.jobs.iter_mut().find(|j| j.id == id) else {
                return job_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("Job {id} was not found"),
                );
            };
            match (method, rest) {
                (&Method::GET, []) => Answer::ok(StatusCode::OK, info(job, v)),
                (&Method::PUT, ["batches"]) => {
                    if job.state != JobState::Open {
                        return job_error(
                            StatusCode::CONFLICT,
                            "INVALIDJOBSTATE",
                            format!("Job {id} is not open for uploads"),
                        );
                    }
                    match upload(job, req.body) {
                        Ok(()) => {
                            state.bulk.batches += 1;
                            Answer::empty(StatusCode::CREATED)
                        }
                        Err(a) => a,
                    }
                }
                (&Method::PATCH, []) => {
                    let wanted = serde_json::from_slice::<Value>(req.body)
                        .ok()
                        .and_then(|b| b.get("state").and_then(Value::as_str).map(str::to_string));
                    match (wanted.as_deref(), job.state) {
                        (Some("UploadComplete"), JobState::Open) => {
                            job.state = JobState::UploadComplete;
                            job.closed_at = Some(req.now);
                            job.modstamp = req.now;
                            let cost = row_cost(&state.org, job);
                            job.schedule =
                                Some(Schedule::plan(job.rows.len(), cost, &mut state.bulk.timing));
                        }
                        (
                            Some("Aborted"),
                            JobState::Open | JobState::UploadComplete | JobState::InProgress,
                        ) => {
                            job.state = JobState::Aborted;
                            job.modstamp = req.now;
                        }
                        (Some(s), current) => {
                            return job_error(
                                StatusCode::CONFLICT,
                                "INVALIDJOBSTATE",
                                format!(
                                    "Cannot change the state of job {id} from {} to {s}",
                                    current.as_str()
                                ),
                            )
                        }
                        (None, _) => {
                            return job_error(
                                StatusCode::BAD_REQUEST,
                                "INVALIDJOB",
                                "Give the new `state`",
                            )
                        }
                    }
                    Answer::ok(StatusCode::OK, info(job, v))
                }
                (&Method::DELETE, []) => {
                    if matches!(job.state, JobState::Open | JobState::InProgress) {
                        return job_error(
                            StatusCode::CONFLICT,
                            "INVALIDJOBSTATE",
                            format!("Job {id} cannot be deleted while {}", job.state.as_str()),
                        );
                    }
                    state.bulk.jobs.retain(|j| j.id != id);
                    Answer::empty(StatusCode::NO_CONTENT)
                }
                (&Method::GET, ["successfulresults"]) => {
                    let mut header = vec!["sf__Id".to_string(), "sf__Created".to_string()];
                    header.extend(job.header.iter().cloned());
                    let rows = job.succeeded.iter().map(|(id, created, row)| {
                        let mut r = vec![id.clone(), created.to_string()];
                        r.extend(row.iter().cloned());
                        r
                    });
                    csv_answer(&header, rows)
                }
                (&Method::GET, ["failedresults"]) => {
                    let mut header = vec!["sf__Id".to_string(), "sf__Error".to_string()];
                    header.extend(job.header.iter().cloned());
                    let rows = job.failed.iter().map(|(id, err, row)| {
                        let mut r = vec![id.clone(), err.clone()];
                        r.extend(row.iter().cloned());
                        r
                    });
                    csv_answer(&header, rows)
                }
                (&Method::GET, ["unprocessedrecords"]) => {
                    let rows: Vec<Vec<String>> = if job.state == JobState::JobComplete {
                        Vec::new()
                    } else {
                        job.rows.clone()
                    };
                    csv_answer(&job.header, rows.into_iter())
                }
                _ => Answer::not_found(),
            }
        }
        _ => Answer::not_found(),
    }
}

fn csv_answer(header: &[String], rows: impl Iterator<Item = Vec<String>>) -> Answer {
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    let write = || -> Result<(), csv::Error> {
        w.write_record(header)?;
        for r in rows {
            w.write_record(&r)?;
        }
        w.flush()?;
        Ok(())
    };
    match write()
        .map_err(|e| e.to_string())
        .and_then(|()| w.into_inner().map_err(|e| e.to_string()))
    {
        Ok(bytes) => Answer::csv(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => job_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        ),
    }
}

fn create(state: &mut State, req: &Req<'_>) -> Answer {
    let body: Value = match serde_json::from_slice(req.body) {
        Ok(b) => b,
        Err(e) => return job_error(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", e.to_string()),
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let Some(object) = text("object").and_then(|o| state.org.object_name(&o).map(str::to_string))
    else {
        return job_error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOB",
            format!(
                "Unable to find object: {}",
                text("object").unwrap_or_default()
            ),
        );
    };
    let Some(operation) = text("operation").as_deref().and_then(Operation::parse) else {
        return job_error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOB",
            "operation must be insert, update, upsert, delete or hardDelete",
        );
    };
    let external_id = text("externalIdFieldName");
    if operation == Operation::Upsert {
        let expected = &state.org.bundle().objects[&object].external_id;
        if external_id.as_deref() != Some(expected.as_str()) {
            return job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!(
                    "The externalIdFieldName must be an external ID field of {object}: {expected}"
                ),
            );
        }
    }
    let delimiter_name = text("columnDelimiter").unwrap_or_else(|| "COMMA".into());
    let delimiter = match delimiter_name.as_str() {
        "COMMA" => b',',
        "TAB" => b'\t',
        "PIPE" => b'|',
        "SEMICOLON" => b';',
        "CARET" => b'^',
        "BACKQUOTE" => b'`',
        other => {
            return job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!("Unknown columnDelimiter {other}"),
            )
        }
    };
    state.bulk.next += 1;
    let origin = match req.header("sforce-call-options").and_then(|v| {
        v.split(',')
            .find_map(|kv| kv.trim().strip_prefix("client="))
    }) {
        Some(c) => format!("com/salesforce/api/bulk/{};client={c}", req.api_version),
        None => format!("com/salesforce/api/bulk/{}", req.api_version),
    };
    let job = Job {
        id: ids::numbered("750", state.bulk.next),
        object,
        operation,
        external_id: (operation == Operation::Upsert)
            .then_some(external_id)
            .flatten(),
        delimiter,
        delimiter_name,
        line_ending: text("lineEnding").unwrap_or_else(|| "LF".into()),
        state: JobState::Open,
        created: req.now,
        modstamp: req.now,
        closed_at: None,
        header: Vec::new(),
        rows: Vec::new(),
        succeeded: Vec::new(),
        failed: Vec::new(),
        origin,
        error_message: None,
        processing_ms: 0,
        in_progress: 0,
        schedule: None,
        locked_every: None,
    };
    let answer = Answer::ok(StatusCode::OK, info(&job, req.api_version));
    state.bulk.jobs.push(job);
    answer
}

fn upload(job: &mut Job, body: &[u8]) -> Result<(), Answer> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(job.delimiter)
        .has_headers(true)
        .from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| {
            job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDBATCH",
                format!("Invalid CSV: {e}"),
            )
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    if job.header.is_empty() {
        job.header = header;
    } else if job.header != header {
        return Err(job_error(
            StatusCode::BAD_REQUEST,
            "INVALIDBATCH",
            "Every upload of a job must have the same header",
        ));
    }
    for row in reader.records() {
        let row = row.map_err(|e| {
            job_error(
                StatusCode::BAD_REQUEST,
                "INVALIDBATCH",
                format!("Invalid CSV: {e}"),
            )
        })?;
        job.rows.push(row.iter().map(str::to_string).collect());
    }
    Ok(())
}

/// Moves every closed job along on the clock; a job due to finish is processed here, and
/// its changes are published with the job's origin.
/// How far a job a provider state sets up has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum JobStage {
    /// Created, nothing uploaded.
    Open,
    /// `csv` uploaded, not closed.
    Uploaded,
    /// Uploaded, closed and processed.
    Complete,
}

/// Sets up an upsert job of `object` by `ext_field` as a provider state needs it, as if a
/// client had created (uploaded, closed) it; returns the job's ID.
pub(super) fn stage_job(
    state: &mut State,
    object: &str,
    ext_field: &str,
    csv: &str,
    stage: JobStage,
    now: Timestamp,
) -> Result<String, String> {
    state.bulk.next += 1;
    let mut job = Job {
        id: ids::numbered("750", state.bulk.next),
        object: object.to_string(),
        operation: Operation::Upsert,
        external_id: Some(ext_field.to_string()),
        delimiter: b',',
        delimiter_name: "COMMA".into(),
        line_ending: "LF".into(),
        state: JobState::Open,
        created: now,
        modstamp: now,
        closed_at: None,
        header: Vec::new(),
        rows: Vec::new(),
        succeeded: Vec::new(),
        failed: Vec::new(),
        origin: "com/salesforce/api/bulk".into(),
        error_message: None,
        processing_ms: 0,
        in_progress: 0,
        schedule: None,
        locked_every: None,
    };
    if stage >= JobStage::Uploaded {
        upload(&mut job, csv.as_bytes())
            .map_err(|_| format!("the example CSV for {object} does not upload"))?;
    }
    let id = job.id.clone();
    state.bulk.jobs.push(job);
    if stage == JobStage::Complete {
        let i = state.bulk.jobs.len() - 1;
        state.bulk.jobs[i].closed_at = Some(now);
        process(state, i, now);
        let job = &mut state.bulk.jobs[i];
        job.state = JobState::JobComplete;
        job.modstamp = now;
    }
    Ok(id)
}

pub(super) fn tick(state: &mut State, now: Timestamp) {
    for i in 0..state.bulk.jobs.len() {
        let (closed, schedule) = {
            let j = &state.bulk.jobs[i];
            match (j.state, j.closed_at, &j.schedule) {
                (JobState::UploadComplete | JobState::InProgress, Some(c), Some(s)) => {
                    (c, s.clone())
                }
                _ => continue,
            }
        };
        let started = closed.plus(schedule.queue);
        if state.bulk.jobs[i].state == JobState::UploadComplete && now >= started {
            state.bulk.jobs[i].state = JobState::InProgress;
            state.bulk.jobs[i].modstamp = started;
        }
        if state.bulk.jobs[i].state != JobState::InProgress {
            continue;
        }
        // Rows are counted as their internal batches finish.
        state.bulk.jobs[i].in_progress = schedule.processed_at(now.since(closed));
        let done_at = closed.plus(schedule.total());
        if now >= done_at {
            process(state, i, done_at);
            let job = &mut state.bulk.jobs[i];
            job.state = if job.rows.is_empty() && job.header.is_empty() {
                job.error_message = Some("No data was uploaded for this job".into());
                JobState::Failed
            } else {
                JobState::JobComplete
            };
            job.modstamp = done_at;
            job.processing_ms = schedule.processing.as_millis() as u64;
            let origin = job.origin.clone();
            events::publish_changes(state, &origin, done_at);
        }
    }
}

/// A `records_locked` fault on `PATCH jobs/ingest/{id}` (the close): when that job is
/// processed, every `every`-th row fails `UNABLE_TO_LOCK_ROW`, the error Salesforce marks
/// retryable. False when the request is no job's close (it is then done as usual).
pub(super) fn lock_rows_on_close(state: &mut State, seg: &[String], every: usize) -> bool {
    let [jobs, ingest, id] = seg else {
        return false;
    };
    if !(jobs.eq_ignore_ascii_case("jobs") && ingest.eq_ignore_ascii_case("ingest")) {
        return false;
    }
    match state.bulk.jobs.iter_mut().find(|j| j.id == *id) {
        Some(job) => {
            job.locked_every = Some(every);
            true
        }
        None => false,
    }
}

/// What the rows of `job` cost the org to write (see [`RowCost`]).
fn row_cost(org: &super::org::Org, job: &Job) -> RowCost {
    RowCost {
        columns: job.header.len(),
        relationships: job.header.iter().filter(|h| h.contains('.')).count(),
        rules: org
            .bundle()
            .object(&job.object)
            .map_or(0, |o| o.validation_rules.len()),
    }
}

fn process(state: &mut State, i: usize, now: Timestamp) {
    let (object, operation, ext, header, rows) = {
        let j = &mut state.bulk.jobs[i];
        (
            j.object.clone(),
            j.operation,
            j.external_id.clone(),
            j.header.clone(),
            std::mem::take(&mut j.rows),
        )
    };
    let id_col = header.iter().position(|h| h.eq_ignore_ascii_case("Id"));
    let locked_every = state.bulk.jobs[i].locked_every;
    let mut succeeded = Vec::new();
    let mut failed = Vec::new();
    for (n, row) in rows.into_iter().enumerate() {
        let row_id = id_col.and_then(|c| row.get(c)).cloned().unwrap_or_default();
        if locked_every.is_some_and(|every| n % every.max(1) == 0) {
            let locked = RecordError::new(
                "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access to this record or 1 records",
                vec![],
            );
            failed.push((row_id, sf_error(&locked), row));
            continue;
        }
        let values = row_values(state, &object, &header, &row);
        let outcome: Result<(String, bool), RecordError> = match operation {
            Operation::Insert => state.org.create(&object, values, now).map(|id| (id, true)),
            Operation::Update => {
                let mut values = values;
                values.retain(|k, _| !k.eq_ignore_ascii_case("Id"));
                state
                    .org
                    .update(&object, &row_id, values, now)
                    .map(|()| (row_id.clone(), false))
            }
            Operation::Upsert => {
                let field = ext.clone().unwrap_or_default();
                let value = values
                    .get(&field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                match state.org.prepare_upsert(&object, &field, &value, values) {
                    Ok(p) => {
                        let done = state.org.apply(p, now);
                        Ok((done.id, done.created))
                    }
                    Err(UpsertError::Record(e)) => Err(e),
                    Err(UpsertError::Ambiguous(_)) => Err(RecordError::new(
                        "DUPLICATE_EXTERNAL_ID",
                        format!("Duplicate external id specified: {value}"),
                        vec![field],
                    )),
                }
            }
            Operation::Delete | Operation::HardDelete => state
                .org
                .delete(&object, &row_id, now, operation == Operation::HardDelete)
                .map(|()| (row_id.clone(), false)),
        };
        match outcome {
            Ok((id, created)) => succeeded.push((id, created, row)),
            Err(e) => failed.push((row_id, sf_error(&e), row)),
        }
    }
    let j = &mut state.bulk.jobs[i];
    j.succeeded = succeeded;
    j.failed = failed;
}
