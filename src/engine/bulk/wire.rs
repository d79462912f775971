//! The Bulk API 2.0 ingest flow on the wire: the requests of a job, its info answers,
//! the CSV the engine uploads (split to stay under the upload limit) and the result CSVs
//! it reads back (when to poll is [`super::pace`]).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::engine::client::{RequestBody, SalesforceClient, TextReply};
use crate::engine::retry::Failure;
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
        let (method, path, json_body) = match self {
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
                (Method::POST, "jobs/ingest".to_string(), Some(body))
            }
            BulkCall::Upload { job, .. } => {
                (Method::PUT, format!("jobs/ingest/{job}/batches"), None)
            }
            BulkCall::Close { job } => (
                Method::PATCH,
                format!("jobs/ingest/{job}"),
                Some(json!({ "state": "UploadComplete" })),
            ),
            BulkCall::Abort { job } => (
                Method::PATCH,
                format!("jobs/ingest/{job}"),
                Some(json!({ "state": "Aborted" })),
            ),
            BulkCall::Info { job } => (Method::GET, format!("jobs/ingest/{job}"), None),
            BulkCall::Results { job, kind } => {
                (Method::GET, format!("jobs/ingest/{job}/{kind}"), None)
            }
        };
        let body = match (self, &json_body) {
            (BulkCall::Upload { csv, .. }, _) => Some(RequestBody::Csv(csv)),
            (_, Some(json)) => Some(RequestBody::Json(json)),
            (_, None) => None,
        };
        let accept = match self {
            BulkCall::Results { .. } => "text/csv",
            _ => "application/json",
        };
        client.call_text(method, &path, body, accept).await
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
    /// `systemModstamp`: when the job last changed state (org time).
    pub modstamp: Option<Timestamp>,
    /// `totalProcessingTime`, once the org reports it.
    pub processing: Option<Duration>,
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
            modstamp: v
                .get("systemModstamp")
                .and_then(Value::as_str)
                .and_then(Timestamp::parse),
            processing: v
                .get("totalProcessingTime")
                .and_then(Value::as_u64)
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
        })
    }
}

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
