//! REST resources of the mock org: the router, the resource list and `limits`; the work is
//! in `describe` (global and object describe), `sobjects` (CRUD, upsert and read by external
//! ID, conditional updates), `collections` (sObject Collections), `composite` (composite
//! with references), `query` (SOQL `query`/`queryAll` with paging, aggregates and child
//! subqueries) and `search` (SOSL `search` and `parameterizedSearch`).

mod collections;
mod composite;
mod describe;
mod query;
mod search;
mod sobjects;

use collections::*;
use composite::*;
use describe::*;
pub(super) use query::{query, run_query, Ran};
use search::{parameterized_search, search};
use sobjects::*;

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::answer::{Answer, Req};
use super::form::form_pairs;
use super::ids;
use super::org::{attributes, Org, Record, UpsertError, API_USER_ID};
use super::routes::route_api;
use super::soql::{self, FieldPath, Func, Item, Operand, Query, Select};
use super::State;
use crate::contract::rules::RecordError;
use crate::sim::Timestamp;

/// Maximum records in one sObject Collections request.
pub const COLLECTION_LIMIT: usize = 200;
/// Maximum subrequests in one `composite` request.
pub const COMPOSITE_LIMIT: usize = 25;
/// Records per query page unless `Sforce-Query-Options: batchSize=` asks for fewer.
pub const QUERY_PAGE: usize = 2000;

/// A query whose later pages are fetched with `query/{locator}-{offset}`.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub records: Vec<Value>,
    pub batch: usize,
    pub all: bool,
}

fn unknown_object(object: &str) -> Answer {
    Answer::error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("The requested resource does not exist: {object}"),
        &[],
    )
}

fn bad_json(message: impl Into<String>) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", message, &[])
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, Answer> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad_json("The request body must be a JSON object")),
        Err(e) => Err(bad_json(format!(
            "Unexpected character in request body: {e}"
        ))),
    }
}

pub(super) fn route(state: &mut State, req: &Req<'_>, seg: &[&str]) -> Answer {
    // Object names are case-insensitive in URLs.
    let canon = |name: &str| {
        state
            .org
            .object_name(name)
            .map(str::to_string)
            .unwrap_or_else(|| name.to_string())
    };
    match (&req.method, seg) {
        (&Method::GET, []) => resources(state, req.api_version),
        (&Method::GET, ["limits"]) => limits(state),
        (&Method::GET, ["sobjects"]) => sobjects_list(state, req.api_version),
        (&Method::GET, ["sobjects", user, id])
            if user.eq_ignore_ascii_case("User") && !id.eq_ignore_ascii_case("describe") =>
        {
            match user_record(id, req.api_version) {
                Some(u) => Answer::ok(StatusCode::OK, u),
                None => Answer::not_found(),
            }
        }
        (_, ["sobjects", user, ..])
            if user.eq_ignore_ascii_case("User") && req.method != Method::GET =>
        {
            Answer::error(
                StatusCode::BAD_REQUEST,
                "INSUFFICIENT_ACCESS_OR_READONLY",
                "insufficient access rights on object id",
                &[],
            )
        }
        (&Method::GET, ["sobjects", object]) => object_info(state, &canon(object), req.api_version),
        (&Method::GET, ["sobjects", object, "describe"]) => {
            describe(state, &canon(object), req.api_version)
        }
        (&Method::GET, ["sobjects", object, "updated"]) => {
            changed_since(state, req, &canon(object), false)
        }
        (&Method::GET, ["sobjects", object, "deleted"]) => {
            changed_since(state, req, &canon(object), true)
        }
        (&Method::POST, ["sobjects", object]) => create_one(state, req, &canon(object)),
        (&Method::GET, ["sobjects", object, id]) => read_by_id(state, req, &canon(object), id),
        (&Method::PATCH, ["sobjects", object, id]) => update_one(state, req, &canon(object), id),
        (&Method::DELETE, ["sobjects", object, id]) => {
            let object = canon(object);
            if !state.org.has_object(&object) {
                return unknown_object(&object);
            }
            match state.org.delete(&object, id, req.now, false) {
                Ok(()) => Answer::empty(StatusCode::NO_CONTENT),
                Err(e) => Answer::from_record_error(&e),
            }
        }
        (&Method::GET, ["sobjects", object, field, value]) => {
            read_by_external_id(state, req, &canon(object), field, value)
        }
        (&Method::PATCH, ["sobjects", object, field, value]) => {
            upsert_one(state, req, &canon(object), field, value)
        }
        (&Method::DELETE, ["sobjects", object, field, value]) => {
            let object = canon(object);
            match external_match(state, &object, field, value) {
                Err(a) => a,
                Ok(id) => match state.org.delete(&object, &id, req.now, false) {
                    Ok(()) => Answer::empty(StatusCode::NO_CONTENT),
                    Err(e) => Answer::from_record_error(&e),
                },
            }
        }
        (&Method::POST, ["composite", "sobjects"]) => collection_write(state, req, false),
        (&Method::PATCH, ["composite", "sobjects"]) => collection_write(state, req, true),
        (&Method::DELETE, ["composite", "sobjects"]) => collection_delete(state, req),
        (&Method::GET, ["composite", "sobjects", object]) => {
            collection_read(state, req, &canon(object))
        }
        (&Method::PATCH, ["composite", "sobjects", object, field]) => {
            upsert_collection(state, req, &canon(object), field)
        }
        (&Method::POST, ["composite", "sobjects", object]) => {
            collection_read(state, req, &canon(object))
        }
        (&Method::GET, [s]) if s.eq_ignore_ascii_case("search") => search(state, req),
        (&Method::GET | &Method::POST, [s]) if s.eq_ignore_ascii_case("parameterizedSearch") => {
            parameterized_search(state, req)
        }
        (&Method::POST, ["composite"]) => composite(state, req),
        (&Method::POST, ["composite", "batch"]) => composite_batch(state, req),
        (&Method::POST, ["composite", "tree", object]) => {
            composite_tree(state, req, &canon(object))
        }
        _ => Answer::not_found(),
    }
}

fn resources(state: &State, v: &str) -> Answer {
    let base = format!("/services/data/v{v}");
    Answer::ok(
        StatusCode::OK,
        json!({
            "identity": format!("{}/id/{}/{API_USER_ID}", state.base_url, super::org::ORG_ID),
            "search": format!("{base}/search"),
            "parameterizedSearch": format!("{base}/parameterizedSearch"),
            "sobjects": format!("{base}/sobjects"),
            "query": format!("{base}/query"),
            "queryAll": format!("{base}/queryAll"),
            "composite": format!("{base}/composite"),
            "limits": format!("{base}/limits"),
            "jobs": format!("{base}/jobs"),
        }),
    )
}

fn limits(state: &State) -> Answer {
    let b = &state.budget;
    let long = state.org.bundle().limits.concurrent_long_running;
    let in_flight = state.in_flight.held() as u32;
    Answer::ok(
        StatusCode::OK,
        json!({
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "ConcurrentPerOrgLongTxn": {"Max": long, "Remaining": long.saturating_sub(in_flight)},
            "DailyApiRequests": {"Max": b.max, "Remaining": b.max.saturating_sub(b.used)},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000u64.saturating_sub(state.bulk.batches_today())},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DailyStreamingApiEvents": {"Max": 1000000, "Remaining": 1000000u64.saturating_sub(state.events.delivered())},
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            "HourlyPublishedStandardVolumePlatformEvents": {"Max": 250000, "Remaining": 250000},
        }),
    )
}
