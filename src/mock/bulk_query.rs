//! Bulk API 2.0 query jobs: `POST jobs/query` runs the SOQL (the same subset as `query`),
//! `GET jobs/query/{id}` reports it `JobComplete`, and `GET jobs/query/{id}/results` hands
//! the rows out as CSV pages with `Sforce-Locator` and `Sforce-NumberOfRecords`, as jsforce's
//! `bulk2.query` and simple-salesforce's `bulk2` read them.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::answer::{Answer, Req};
use super::ids;
use super::org::API_USER_ID;
use super::rest::{run_query, Ran};
use super::soql::{self, Item};
use super::State;
use crate::sim::Timestamp;

/// Rows per results page unless `maxRecords` asks for fewer.
const RESULTS_PAGE: usize = 10_000;

/// One query job and its rows, ready as CSV cells.
#[derive(Debug)]
pub(crate) struct QueryJob {
    id: String,
    object: String,
    query: String,
    all: bool,
    created: Timestamp,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    aborted: bool,
}

fn info(job: &QueryJob, v: &str) -> Value {
    json!({
        "id": job.id,
        "operation": if job.all { "queryAll" } else { "query" },
        "object": job.object,
        "createdById": API_USER_ID,
        "createdDate": job.created.to_salesforce(),
        "systemModstamp": job.created.to_salesforce(),
        "state": if job.aborted { "Aborted" } else { "JobComplete" },
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": v.parse::<f64>().unwrap_or(0.0),
        "jobType": "V2Query",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
        "numberRecordsProcessed": job.rows.len(),
        "retries": 0,
        "totalProcessingTime": 0,
        "query": job.query,
    })
}

pub(super) fn route(state: &mut State, req: &Req<'_>, seg: &[&str]) -> Answer {
    let v = req.api_version;
    match (&req.method, seg) {
        (&Method::POST, [_, _]) => create(state, req),
        (&Method::GET, [_, _]) => {
            let records: Vec<Value> = state.bulk.queries.iter().map(|j| info(j, v)).collect();
            Answer::ok(
                StatusCode::OK,
                json!({"done": true, "records": records, "nextRecordsUrl": null}),
            )
        }
        (method, [_, _, id, rest @ ..]) => {
            let Some(i) = state.bulk.queries.iter().position(|j| j.id == *id) else {
                return Answer::error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("Job {id} was not found"),
                    &[],
                );
            };
            let rest: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
            match (
                method,
                rest.iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .as_slice(),
            ) {
                (&Method::GET, []) => Answer::ok(StatusCode::OK, info(&state.bulk.queries[i], v)),
                (&Method::PATCH, []) => {
                    state.bulk.queries[i].aborted = true;
                    Answer::ok(StatusCode::OK, info(&state.bulk.queries[i], v))
                }
                (&Method::DELETE, []) => {
                    state.bulk.queries.remove(i);
                    Answer::empty(StatusCode::NO_CONTENT)
                }
                (&Method::GET, ["results"]) => results(&state.bulk.queries[i], req),
                _ => Answer::not_found(),
            }
        }
        _ => Answer::not_found(),
    }
}

fn create(state: &mut State, req: &Req<'_>) -> Answer {
    let body: Value = match serde_json::from_slice(req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                "The request body must be a JSON object with `operation` and `query`",
                &[],
            )
        }
    };
    let all = match body.get("operation").and_then(Value::as_str) {
        Some("query") => false,
        Some("queryAll") => true,
        other => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOB",
                format!("operation must be query or queryAll, not {other:?}"),
                &[],
            )
        }
    };
    let Some(text) = body.get("query").and_then(Value::as_str) else {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOB",
            "a query job needs `query`",
            &[],
        );
    };
    let unsupported = |what: &str| {
        Answer::error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOB",
            format!("{what} not supported by Bulk API 2.0 query jobs"),
            &[],
        )
    };
    let rows = match run_query(&state.org, text, all, req.now, req.api_version) {
        Ok(Ran::Rows(rows)) => rows,
        Ok(Ran::Count(_)) => return unsupported("COUNT() is"),
        Ok(Ran::Aggregates(_)) => return unsupported("aggregate functions and GROUP BY are"),
        Err(a) => return a,
    };
    // The query ran, so it parses and its fields exist: their canonical names head the CSV.
    let Ok(q) = soql::parse(text) else {
        return Answer::not_found();
    };
    if q.items().iter().any(|i| matches!(i, Item::Child(_))) {
        return unsupported("nested (child relationship) queries are");
    }
    let object = state
        .org
        .object_name(&q.object)
        .unwrap_or(&q.object)
        .to_string();
    let columns: Vec<String> = q
        .items()
        .iter()
        .filter_map(|i| match i {
            Item::Field { path, .. } => state.org.check_path(&object, path).ok(),
            _ => None,
        })
        .map(|f| f.parts.join("."))
        .collect();
    let cells = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| {
                    let v = match c.split_once('.') {
                        None => r.get(c),
                        Some((rel, rest)) => r.get(rel).and_then(|p| p.get(rest)),
                    };
                    match v {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    }
                })
                .collect()
        })
        .collect();
    state.bulk.next_query += 1;
    let job = QueryJob {
        id: ids::numbered("750", 5000 + state.bulk.next_query),
        object,
        query: text.to_string(),
        all,
        created: req.now,
        columns,
        rows: cells,
        aborted: false,
    };
    // A new job reports UploadComplete; it has finished by the first poll.
    let mut body = info(&job, req.api_version);
    body["state"] = json!("UploadComplete");
    let answer = Answer::ok(StatusCode::OK, body);
    state.bulk.queries.push(job);
    answer
}

/// One page of results: CSV with every cell quoted, `Sforce-Locator` for the next page
/// (`null` on the last), `Sforce-NumberOfRecords` for this one.
fn results(job: &QueryJob, req: &Req<'_>) -> Answer {
    let offset = req
        .param("locator")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(0);
    let max = req
        .param("maxRecords")
        .and_then(|m| m.parse::<usize>().ok())
        .filter(|m| *m > 0)
        .unwrap_or(RESULTS_PAGE);
    let end = (offset + max).min(job.rows.len());
    let page = job.rows.get(offset..end).unwrap_or(&[]);
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = w.write_record(&job.columns);
    for row in page {
        let _ = w.write_record(row);
    }
    let text = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
    let locator = if end < job.rows.len() {
        end.to_string()
    } else {
        "null".to_string()
    };
    let mut answer = Answer::csv(text)
        .with_header("sforce-locator", locator)
        .with_header("sforce-numberofrecords", page.len().to_string());
    answer.records = Some(page.len());
    answer
}
