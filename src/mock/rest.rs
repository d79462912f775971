//! REST resources of the mock org: sObject CRUD and describe, upsert and read by external
//! ID, conditional updates, sObject Collections, `composite` with references, SOQL
//! `query`/`queryAll` with paging, and `limits`.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::ids;
use super::org::{attributes, Org, Record, UpsertError, API_USER_ID};
use super::routes::{form_pairs, route_api, Answer, Req};
use super::soql::{self, FieldPath, Select};
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
        (&Method::GET, []) => resources(req.api_version),
        (&Method::GET, ["limits"]) => limits(state),
        (&Method::GET, ["sobjects"]) => sobjects_list(state),
        (&Method::GET, ["sobjects", "User", id]) if *id == API_USER_ID => {
            Answer::ok(StatusCode::OK, api_user(req.api_version))
        }
        (&Method::GET, ["sobjects", object]) => object_info(state, &canon(object)),
        (&Method::GET, ["sobjects", object, "describe"]) => describe(state, &canon(object)),
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
        (&Method::POST, ["composite"]) => composite(state, req),
        _ => Answer::not_found(),
    }
}

fn resources(v: &str) -> Answer {
    let base = format!("/services/data/v{v}");
    Answer::ok(
        StatusCode::OK,
        json!({
            "sobjects": format!("{base}/sobjects"),
            "query": format!("{base}/query"),
            "queryAll": format!("{base}/queryAll"),
            "composite": format!("{base}/composite"),
            "limits": format!("{base}/limits"),
            "jobs": format!("{base}/jobs"),
        }),
    )
}

fn api_user(v: &str) -> Value {
    json!({
        "attributes": attributes("User", API_USER_ID, v),
        "Id": API_USER_ID,
        "Username": "integration@syncgate.mock",
        "Name": "Integration User",
        "IsActive": true,
    })
}

fn limits(state: &State) -> Answer {
    let b = &state.budget;
    let long = state.org.bundle().limits.concurrent_long_running;
    let in_flight = state.in_flight.len() as u32;
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

fn sobjects_list(state: &State) -> Answer {
    let objs: Vec<Value> = state
        .org
        .bundle()
        .objects
        .keys()
        .map(|name| object_summary(name))
        .collect();
    Answer::ok(
        StatusCode::OK,
        json!({"encoding": "UTF-8", "maxBatchSize": COLLECTION_LIMIT, "sobjects": objs}),
    )
}

fn object_summary(name: &str) -> Value {
    json!({"name": name, "label": name, "keyPrefix": ids::key_prefix(name), "createable": true,
        "updateable": true, "deletable": true, "queryable": true, "custom": name.ends_with("__c"),
        "urls": {"sobject": format!("/services/data/v62.0/sobjects/{name}"), "describe": format!("/services/data/v62.0/sobjects/{name}/describe")}})
}

fn object_info(state: &State, object: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    Answer::ok(
        StatusCode::OK,
        json!({"objectDescribe": object_summary(object), "recentItems": []}),
    )
}

fn describe(state: &State, object: &str) -> Answer {
    let Some(spec) = state.org.bundle().object(object) else {
        return unknown_object(object);
    };
    let system = |name: &str, ty: &str| {
        json!({"name": name, "type": ty, "length": if ty == "id" || ty == "reference" { 18 } else { 0 },
            "nillable": false, "createable": false, "updateable": false, "externalId": false,
            "unique": false, "custom": false, "picklistValues": []})
    };
    let mut fields = vec![
        system("Id", "id"),
        system("IsDeleted", "boolean"),
        system("CreatedDate", "datetime"),
        system("CreatedById", "reference"),
        system("LastModifiedDate", "datetime"),
        system("LastModifiedById", "reference"),
        system("SystemModstamp", "datetime"),
    ];
    for (name, f) in &spec.fields {
        let is_ext = *name == spec.external_id;
        fields.push(json!({
            "name": name,
            "label": name,
            "type": f.ty.describe_name(),
            "length": f.max_length.unwrap_or(0),
            "nillable": !f.required,
            "createable": true,
            "updateable": true,
            "externalId": is_ext,
            "unique": is_ext && spec.unique_external_id,
            "idLookup": is_ext,
            "custom": name.ends_with("__c"),
            "relationshipName": f.relationship,
            "referenceTo": f.to.iter().collect::<Vec<_>>(),
            "restrictedPicklist": f.ty == crate::contract::FieldType::Picklist && f.restricted,
            "picklistValues": f.values.iter().flatten().map(|v| json!({"value": v, "label": v, "active": true, "defaultValue": false})).collect::<Vec<_>>(),
        }));
    }
    Answer::ok(
        StatusCode::OK,
        json!({"name": object, "label": object, "keyPrefix": ids::key_prefix(object),
            "createable": true, "updateable": true, "deletable": true, "queryable": true,
            "custom": object.ends_with("__c"), "fields": fields}),
    )
}

fn record_answer(state: &State, req: &Req<'_>, object: &str, rec: &Record) -> Answer {
    let spec = state.org.bundle().object(object);
    let mut body = rec.to_json_with(object, req.api_version, spec);
    // `?fields=A,B` narrows the answer.
    if let (Some(list), Value::Object(map)) = (req.param("fields"), &mut body) {
        let wanted: Vec<String> = list.split(',').map(|f| f.trim().to_lowercase()).collect();
        map.retain(|k, _| k == "attributes" || wanted.contains(&k.to_lowercase()));
    }
    Answer::ok(StatusCode::OK, body)
        .with_header("etag", rec.etag())
        .with_header("last-modified", rec.modified.to_http_date())
}

fn read_by_id(state: &State, req: &Req<'_>, object: &str, id: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    match state.org.get(object, id) {
        Some(r) => {
            let since = req
                .header("if-modified-since")
                .and_then(Timestamp::parse_http_date);
            if since.is_some_and(|s| truncate_secs(r.modified) <= s) {
                return Answer::empty(StatusCode::NOT_MODIFIED);
            }
            record_answer(state, req, object, r)
        }
        None => Answer::not_found(),
    }
}

fn truncate_secs(t: Timestamp) -> Timestamp {
    Timestamp::from_millis(t.as_millis().div_euclid(1000) * 1000)
}

/// The one live record with `field = value`, or the answer explaining why there is none.
fn external_match(state: &State, object: &str, field: &str, value: &str) -> Result<String, Answer> {
    let Some(spec) = state.org.bundle().object(object) else {
        return Err(unknown_object(object));
    };
    if field != spec.external_id && field != "Id" {
        return Err(Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {field}"),
            &[],
        ));
    }
    if field == "Id" {
        return Ok(value.to_string());
    }
    let found = state.org.find_by_external_id(object, value);
    match found.as_slice() {
        [] => Err(Answer::not_found()),
        [one] => Ok(one.id.clone()),
        many => Err(Answer::ok(
            StatusCode::MULTIPLE_CHOICES,
            json!(many
                .iter()
                .map(|r| format!(
                    "/services/data/v{}/sobjects/{object}/{}",
                    state.org.bundle().api_version,
                    r.id
                ))
                .collect::<Vec<_>>()),
        )),
    }
}

fn read_by_external_id(
    state: &State,
    req: &Req<'_>,
    object: &str,
    field: &str,
    value: &str,
) -> Answer {
    match external_match(state, object, field, value) {
        Err(a) => a,
        Ok(id) => match state.org.get(object, &id) {
            Some(r) => record_answer(state, req, object, r),
            None => Answer::not_found(),
        },
    }
}

fn create_one(state: &mut State, req: &Req<'_>, object: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    let values = match body_object(req.body) {
        Ok(m) => m,
        Err(a) => return a,
    };
    match state.org.create(object, values, req.now) {
        Ok(id) => Answer::ok(
            StatusCode::CREATED,
            json!({"id": id, "success": true, "errors": []}),
        )
        .with_header(
            "location",
            format!("/services/data/v{}/sobjects/{object}/{id}", req.api_version),
        ),
        Err(e) => Answer::from_record_error(&e),
    }
}

/// `412` when `If-Unmodified-Since` or `If-Match` says the record changed since the client
/// read it.
fn precondition(req: &Req<'_>, rec: &Record) -> Option<Answer> {
    let stale_date = req
        .header("if-unmodified-since")
        .and_then(Timestamp::parse_http_date)
        .is_some_and(|since| truncate_secs(rec.modified) > since);
    let stale_tag = req
        .header("if-match")
        .is_some_and(|tags| tags.trim() != "*" && !tags.split(',').any(|t| t.trim() == rec.etag()));
    (stale_date || stale_tag).then(|| {
        Answer::error(
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
            "The requested record has been modified since the date or version you specified",
            &[],
        )
    })
}

fn update_one(state: &mut State, req: &Req<'_>, object: &str, id: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    let values = match body_object(req.body) {
        Ok(m) => m,
        Err(a) => return a,
    };
    if let Some(rec) = state.org.get(object, id) {
        if let Some(a) = precondition(req, rec) {
            return a;
        }
    }
    match state.org.update(object, id, values, req.now) {
        Ok(()) => Answer::empty(StatusCode::NO_CONTENT),
        Err(e) => Answer::from_record_error(&e),
    }
}

fn upsert_one(state: &mut State, req: &Req<'_>, object: &str, field: &str, value: &str) -> Answer {
    let values = match body_object(req.body) {
        Ok(m) => m,
        Err(a) => return a,
    };
    if field == "Id" {
        return update_one(state, req, object, value);
    }
    for rec in state.org.find_by_external_id(object, value) {
        if let Some(a) = precondition(req, rec) {
            return a;
        }
    }
    match state.org.prepare_upsert(object, field, value, values) {
        Ok(p) => {
            let done = state.org.apply(p, req.now);
            let status = if done.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Answer::ok(
                status,
                json!({"id": done.id, "success": true, "errors": [], "created": done.created}),
            )
        }
        Err(UpsertError::Ambiguous(ids)) => {
            let urls: Vec<String> = ids
                .iter()
                .map(|id| {
                    format!(
                        "/services/data/v{}/sobjects/{object}/{id}",
                        state.org.bundle().api_version
                    )
                })
                .collect();
            Answer::ok(StatusCode::MULTIPLE_CHOICES, json!(urls))
        }
        Err(UpsertError::Record(e)) => Answer::from_record_error(&e),
    }
}

fn item_error(e: &RecordError) -> Value {
    json!({"success": false, "errors": [{"statusCode": e.code, "message": e.message, "fields": e.fields}]})
}

fn rolled_back() -> RecordError {
    RecordError::new(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
        vec![],
    )
}

fn collection_body(req: &Req<'_>) -> Result<(bool, Vec<Value>), Answer> {
    let body = body_object(req.body)?;
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return Err(bad_json("Expected a `records` array"));
    };
    if records.len() > COLLECTION_LIMIT {
        return Err(Answer::error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            format!("Maximum number of records is {COLLECTION_LIMIT}"),
            &[],
        ));
    }
    Ok((all_or_none, records.clone()))
}

/// Runs `items` one by one; with `all_or_none`, one failure restores the org as it was and
/// every other item reports `ALL_OR_NONE_OPERATION_ROLLED_BACK`.
fn run_items<T>(
    org: &mut Org,
    all_or_none: bool,
    items: Vec<T>,
    mut one: impl FnMut(&mut Org, T) -> Result<Value, RecordError>,
) -> (Vec<Value>, usize) {
    let snapshot = all_or_none.then(|| org.clone());
    let outcomes: Vec<Result<Value, RecordError>> =
        items.into_iter().map(|item| one(org, item)).collect();
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    if let (Some(snapshot), true) = (snapshot, failed > 0) {
        *org = snapshot;
        let results = outcomes
            .iter()
            .map(|o| match o {
                Ok(_) => item_error(&rolled_back()),
                Err(e) => item_error(e),
            })
            .collect();
        return (results, outcomes.len());
    }
    let results = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|e| item_error(&e)))
        .collect();
    (results, failed)
}

fn collection_write(state: &mut State, req: &Req<'_>, update: bool) -> Answer {
    let (all_or_none, records) = match collection_body(req) {
        Ok(b) => b,
        Err(a) => return a,
    };
    let n = records.len();
    let now = req.now;
    let (results, failed) = run_items(&mut state.org, all_or_none, records, |org, r| {
        let Value::Object(mut values) = r else {
            return Err(RecordError::new(
                "JSON_PARSER_ERROR",
                "Each record must be a JSON object",
                vec![],
            ));
        };
        let ty = values
            .get("attributes")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str)
            .and_then(|t| org.object_name(t))
            .map(str::to_string);
        if update {
            let Some(id) = values.remove("Id").or_else(|| values.remove("id")) else {
                return Err(RecordError::new(
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                    vec![],
                ));
            };
            let id = id.as_str().unwrap_or_default().to_string();
            let object = ty
                .or_else(|| org.object_of_id(&id).map(str::to_string))
                .ok_or_else(|| {
                    RecordError::new(
                        "INVALID_CROSS_REFERENCE_KEY",
                        format!("invalid cross reference id: {id}"),
                        vec![],
                    )
                })?;
            org.update(&object, &id, values, now)?;
            Ok(json!({"id": id, "success": true, "errors": []}))
        } else {
            let object = ty.ok_or_else(|| {
                RecordError::new(
                    "INVALID_TYPE",
                    "Each record needs attributes.type naming a known sObject",
                    vec![],
                )
            })?;
            let id = org.create(&object, values, now)?;
            Ok(json!({"id": id, "success": true, "errors": []}))
        }
    });
    let mut answer = Answer::ok(StatusCode::OK, Value::Array(results));
    answer.records = Some(n);
    answer.outcome = Some((n - failed, failed));
    answer
}

fn collection_delete(state: &mut State, req: &Req<'_>) -> Answer {
    let ids: Vec<String> = req
        .param("ids")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.len() > COLLECTION_LIMIT {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            format!("Maximum number of records is {COLLECTION_LIMIT}"),
            &[],
        );
    }
    let all_or_none = req.param("allOrNone") == Some("true");
    let n = ids.len();
    let now = req.now;
    let (results, failed) = run_items(&mut state.org, all_or_none, ids, |org, id| {
        let object = org.object_of_id(&id).map(str::to_string).ok_or_else(|| {
            RecordError::new(
                "INVALID_CROSS_REFERENCE_KEY",
                format!("invalid cross reference id: {id}"),
                vec![],
            )
        })?;
        org.delete(&object, &id, now, false)?;
        Ok(json!({"id": id, "success": true, "errors": []}))
    });
    let mut answer = Answer::ok(StatusCode::OK, Value::Array(results));
    answer.records = Some(n);
    answer.outcome = Some((n - failed, failed));
    answer
}

fn collection_read(state: &State, req: &Req<'_>, object: &str) -> Answer {
    if !state.org.has_object(object) {
        return unknown_object(object);
    }
    let spec = state.org.bundle().object(object);
    let records: Vec<Value> = req
        .param("ids")
        .unwrap_or_default()
        .split(',')
        .map(|id| match state.org.get(object, id.trim()) {
            Some(r) => {
                let mut v = r.to_json_with(object, req.api_version, spec);
                if let (Some(list), Value::Object(map)) = (req.param("fields"), &mut v) {
                    let wanted: Vec<String> =
                        list.split(',').map(|f| f.trim().to_lowercase()).collect();
                    map.retain(|k, _| k == "attributes" || wanted.contains(&k.to_lowercase()));
                }
                v
            }
            None => Value::Null,
        })
        .collect();
    Answer::ok(StatusCode::OK, Value::Array(records))
}

fn upsert_collection(state: &mut State, req: &Req<'_>, object: &str, field: &str) -> Answer {
    let (all_or_none, records) = match collection_body(req) {
        Ok(b) => b,
        Err(a) => return a,
    };
    match state.org.bundle().object(object) {
        Some(spec) if spec.external_id == field => {}
        Some(_) => {
            return Answer::error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
                &[],
            )
        }
        None => return unknown_object(object),
    }
    let n = records.len();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &records {
        if let Some(ext) = r.get(field).and_then(Value::as_str) {
            *seen.entry(ext.to_string()).or_insert(0) += 1;
        }
    }
    let now = req.now;
    let (results, failed) = run_items(&mut state.org, all_or_none, records, |org, r| {
        let Value::Object(values) = r else {
            return Err(RecordError::new(
                "JSON_PARSER_ERROR",
                "Each record must be a JSON object",
                vec![],
            ));
        };
        let Some(ext) = values
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(RecordError::new(
                "MISSING_ARGUMENT",
                format!("{field} not specified"),
                vec![field.to_string()],
            ));
        };
        if seen.get(&ext).copied().unwrap_or(0) > 1 {
            return Err(RecordError::new(
                "DUPLICATE_EXTERNAL_ID",
                format!("Duplicate external id specified: {ext}"),
                vec![],
            ));
        }
        match org.prepare_upsert(object, field, &ext, values) {
            Ok(p) => {
                let done = org.apply(p, now);
                Ok(json!({"id": done.id, "success": true, "errors": [], "created": done.created}))
            }
            Err(UpsertError::Record(e)) => Err(e),
            Err(UpsertError::Ambiguous(_)) => Err(RecordError::new(
                "DUPLICATE_EXTERNAL_ID",
                format!("Foreign key external ID: {ext} matches more than one record"),
                vec![],
            )),
        }
    });
    // Counted for the journal: a duplicate create shows up as more creates than records.
    state.created_by_last = Some(
        results
            .iter()
            .filter(|r| r.get("created").and_then(Value::as_bool) == Some(true))
            .count(),
    );
    let mut answer = Answer::ok(StatusCode::OK, Value::Array(results));
    answer.records = Some(n);
    answer.outcome = Some((n - failed, failed));
    answer
}

/// Replaces `@{ref.path}` in `text` with values from earlier subrequest bodies; the first
/// reference that cannot be resolved is returned as the error.
fn substitute(text: &str, bodies: &HashMap<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let reference = &after[..end];
        let (name, path) = reference.split_once('.').unwrap_or((reference, ""));
        let mut v = bodies.get(name).ok_or_else(|| reference.to_string())?;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (key, index) = match part.split_once('[') {
                Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            v = v.get(key).ok_or_else(|| reference.to_string())?;
            if let Some(i) = index {
                v = v.get(i).ok_or_else(|| reference.to_string())?;
            }
        }
        match v {
            Value::String(s) => out.push_str(s),
            Value::Null => return Err(reference.to_string()),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn halted(message: &str) -> Value {
    json!([{"errorCode": "PROCESSING_HALTED", "message": message}])
}

fn composite(state: &mut State, req: &Req<'_>) -> Answer {
    let body = match body_object(req.body) {
        Ok(b) => b,
        Err(a) => return a,
    };
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(subs) = body.get("compositeRequest").and_then(Value::as_array) else {
        return bad_json("Expected a `compositeRequest` array");
    };
    if subs.len() > COMPOSITE_LIMIT {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "LIMIT_EXCEEDED",
            format!("Maximum number of subrequests is {COMPOSITE_LIMIT}"),
            &[],
        );
    }
    let snapshot = all_or_none.then(|| state.org.clone());
    let mut bodies: HashMap<String, Value> = HashMap::new();
    let mut responses: Vec<Value> = Vec::new();
    let mut failed_at = None;
    for (i, sub) in subs.iter().enumerate() {
        let reference = sub
            .get("referenceId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let respond = |status: u16, body: Value| json!({"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": reference});
        let method = sub
            .get("method")
            .and_then(Value::as_str)
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok());
        let url = sub.get("url").and_then(Value::as_str);
        let (Some(method), Some(url)) = (method, url) else {
            responses.push(respond(
                400,
                json!([{"errorCode": "INVALID_INPUT", "message": "Each subrequest needs a method and a url"}]),
            ));
            failed_at.get_or_insert(i);
            continue;
        };
        let url = match substitute(url, &bodies) {
            Ok(u) => u,
            Err(r) => {
                responses.push(respond(400, halted(&format!("Invalid reference specified. No value for {r} found in {reference}. Provided referenceId ({reference}) must start with a letter and contain only alphanumeric or underscore characters."))));
                failed_at.get_or_insert(i);
                continue;
            }
        };
        let sub_body = match sub.get("body") {
            None => String::new(),
            Some(b) => match substitute(&b.to_string(), &bodies) {
                Ok(t) => t,
                Err(r) => {
                    responses.push(respond(
                        400,
                        halted(&format!("Invalid reference specified. No value for {r}")),
                    ));
                    failed_at.get_or_insert(i);
                    continue;
                }
            },
        };
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let relative = path
            .trim_start_matches("/services/data/")
            .split_once('/')
            .map(|(_, r)| r)
            .unwrap_or("");
        let seg: Vec<String> = relative
            .split('/')
            .filter(|s| !s.is_empty())
            .map(super::routes::percent_decode)
            .collect();
        if seg.first().is_some_and(|s| s == "composite") && seg.len() == 1 {
            responses.push(respond(
                400,
                json!([{"errorCode": "INVALID_INPUT", "message": "composite cannot be nested"}]),
            ));
            failed_at.get_or_insert(i);
            continue;
        }
        let sub_req = Req {
            method,
            seg,
            query: form_pairs(query),
            headers: req.headers,
            body: sub_body.as_bytes(),
            now: req.now,
            api_version: req.api_version,
        };
        let answer = route_api(state, &sub_req);
        let out = answer.json();
        if answer.status.as_u16() >= 400 {
            failed_at.get_or_insert(i);
        } else {
            bodies.insert(reference.clone(), out.clone());
        }
        let mut r = respond(answer.status.as_u16(), out);
        if let Some((_, loc)) = answer.headers.iter().find(|(h, _)| *h == "location") {
            r["httpHeaders"] = json!({"Location": loc});
        }
        responses.push(r);
    }
    if let (Some(snapshot), Some(failed)) = (snapshot, failed_at) {
        state.org = snapshot;
        for (i, r) in responses.iter_mut().enumerate() {
            if i != failed {
                r["httpStatusCode"] = json!(400);
                r["body"] = halted(
                    "The transaction was rolled back since another operation in the same transaction failed.",
                );
                r["httpHeaders"] = json!({});
            }
        }
    }
    Answer::ok(StatusCode::OK, json!({"compositeResponse": responses}))
}

/// `GET query?q=…`, `GET queryAll?q=…` and `GET query/{locator}`.
pub(super) fn query(state: &mut State, req: &Req<'_>, seg: &[&str]) -> Answer {
    if req.method != Method::GET {
        return Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{}' not allowed. Allowed are GET", req.method),
            &[],
        );
    }
    let all = seg
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("queryAll"));
    match seg {
        [_] => {
            let Some(q) = req.param("q") else {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_QUERY",
                    "A query string has to be specified",
                    &[],
                );
            };
            let batch = req
                .header("sforce-query-options")
                .and_then(|v| {
                    v.split(',')
                        .find_map(|kv| kv.trim().strip_prefix("batchSize="))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                })
                .map(|n| n.clamp(200, QUERY_PAGE))
                .unwrap_or(QUERY_PAGE);
            match run_query(&state.org, q, all, req.now, req.api_version) {
                Err(a) => a,
                Ok(Ran::Count(n)) => Answer::ok(
                    StatusCode::OK,
                    json!({"totalSize": n, "done": true, "records": []}),
                ),
                Ok(Ran::Rows(rows)) => {
                    state.next_cursor += 1;
                    let locator = ids::numbered("01g", state.next_cursor);
                    let answer = page(&rows, 0, batch, &locator, all, req.api_version);
                    if rows.len() > batch {
                        state.cursors.insert(
                            locator,
                            Cursor {
                                records: rows,
                                batch,
                                all,
                            },
                        );
                    }
                    answer
                }
            }
        }
        [_, locator] => {
            let (id, offset) = match locator.rsplit_once('-') {
                Some((id, n)) => (id, n.parse::<usize>().ok()),
                None => (*locator, None),
            };
            let Some(offset) = offset else {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_QUERY_LOCATOR",
                    "invalid query locator",
                    &[],
                );
            };
            match state.cursors.get(id) {
                Some(c) if offset < c.records.len() => {
                    page(&c.records, offset, c.batch, id, c.all, req.api_version)
                }
                _ => Answer::error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_QUERY_LOCATOR",
                    "invalid query locator",
                    &[],
                ),
            }
        }
        _ => Answer::not_found(),
    }
}

fn page(rows: &[Value], offset: usize, batch: usize, locator: &str, all: bool, v: &str) -> Answer {
    let end = (offset + batch).min(rows.len());
    let done = end >= rows.len();
    let mut body = json!({"totalSize": rows.len(), "done": done, "records": &rows[offset..end]});
    if !done {
        let resource = if all { "queryAll" } else { "query" };
        body["nextRecordsUrl"] = json!(format!("/services/data/v{v}/{resource}/{locator}-{end}"));
    }
    Answer::ok(StatusCode::OK, body)
}

enum Ran {
    Count(usize),
    Rows(Vec<Value>),
}

fn soql_error(e: soql::SoqlError) -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, e.code, e.message, &[])
}

fn run_query(org: &Org, text: &str, all: bool, now: Timestamp, v: &str) -> Result<Ran, Answer> {
    let mut q = soql::parse(text).map_err(soql_error)?;
    let Some(object) = org.object_name(&q.object).map(str::to_string) else {
        return Err(Answer::error(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            format!("\n{text}\nsObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", q.object),
            &[],
        ));
    };
    if let Select::Fields(fields) = &mut q.select {
        for f in fields.iter_mut() {
            *f = org.check_path(&object, f).map_err(soql_error)?;
        }
    }
    if let Some(filter) = &mut q.filter {
        for f in filter.fields_mut() {
            *f = org.check_path(&object, f).map_err(soql_error)?;
        }
    }
    for o in &mut q.order {
        o.field = org.check_path(&object, &o.field).map_err(soql_error)?;
    }
    // An equality on the external ID (anywhere in a chain of ANDs) reads the index; the
    // whole filter still runs on what it finds.
    let ext_field = org.bundle().objects[&object].external_id.clone();
    let source: Vec<&Record> = match q.filter.as_ref().and_then(|f| indexed_value(f, &ext_field)) {
        Some(v) => org.ext_candidates(&object, v, all),
        None if all => org.all_records(&object).collect(),
        None => org.records(&object).collect(),
    };
    let get = |r: &Record, p: &FieldPath| org.path_value(&object, Some(r), &r.fields, p);
    let mut matched: Vec<&Record> = match &q.filter {
        None => source,
        Some(f) => source
            .into_iter()
            .filter(|r| soql::eval(f, now, &|p: &FieldPath| get(r, p)))
            .collect(),
    };
    if !q.order.is_empty() {
        matched.sort_by(|a, b| {
            for o in &q.order {
                let (x, y) = (get(a, &o.field), get(b, &o.field));
                let ord = match (x.is_null(), y.is_null()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) if o.nulls_last => std::cmp::Ordering::Greater,
                    (true, false) => std::cmp::Ordering::Less,
                    (false, true) if o.nulls_last => std::cmp::Ordering::Less,
                    (false, true) => std::cmp::Ordering::Greater,
                    (false, false) => {
                        let ord = soql::order_values(&x, &y);
                        if o.descending {
                            ord.reverse()
                        } else {
                            ord
                        }
                    }
                };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(usize::MAX);
    let rows = matched.into_iter().skip(offset).take(limit);
    let Select::Fields(fields) = &q.select else {
        return Ok(Ran::Count(rows.count()));
    };
    let rows = rows
        .map(|r| {
            let mut out = Map::new();
            out.insert("attributes".into(), attributes(&object, &r.id, v));
            for f in fields {
                match f.parts.as_slice() {
                    [one] => {
                        out.insert(one.clone(), get(r, f));
                    }
                    [rel, ..] => {
                        let parent_id = parent_of(org, &object, r, rel);
                        let entry = out.entry(rel.clone()).or_insert_with(|| match &parent_id {
                            Some((p, id)) => {
                                let mut m = Map::new();
                                m.insert("attributes".into(), attributes(p, id, v));
                                Value::Object(m)
                            }
                            None => Value::Null,
                        });
                        if let Value::Object(m) = entry {
                            m.insert(f.parts[1..].join("."), get(r, f));
                        }
                    }
                    [] => {}
                }
            }
            Value::Object(out)
        })
        .collect();
    Ok(Ran::Rows(rows))
}

/// The value of an `ext_field = 'value'` term that every match must satisfy.
fn indexed_value<'e>(e: &'e soql::Expr, ext_field: &str) -> Option<&'e str> {
    match e {
        soql::Expr::Cmp(f, soql::Op::Eq, soql::Literal::Text(v))
            if f.parts.len() == 1 && f.parts[0] == ext_field =>
        {
            Some(v)
        }
        soql::Expr::And(a, b) => {
            indexed_value(a, ext_field).or_else(|| indexed_value(b, ext_field))
        }
        _ => None,
    }
}

fn parent_of(org: &Org, object: &str, r: &Record, rel: &str) -> Option<(String, String)> {
    let spec = org.bundle().object(object)?;
    let (fk, parent) =
        spec.fields
            .iter()
            .find_map(|(n, f)| match (f.relationship.as_deref(), &f.to) {
                (Some(x), Some(p)) if x == rel => Some((n.clone(), p.clone())),
                _ => None,
            })?;
    let id = r.fields.get(&fk)?.as_str()?.to_string();
    Some((parent, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_from_earlier_bodies() {
        let mut bodies = HashMap::new();
        bodies.insert(
            "acct".to_string(),
            json!({"id": "001X", "records": [{"Id": "003Y"}]}),
        );
        assert_eq!(
            substitute("/sobjects/Account/@{acct.id}", &bodies).unwrap(),
            "/sobjects/Account/001X"
        );
        assert_eq!(
            substitute("{\"AccountId\":\"@{acct.records[0].Id}\"}", &bodies).unwrap(),
            "{\"AccountId\":\"003Y\"}"
        );
        assert_eq!(
            substitute("@{nope.id}", &bodies).unwrap_err(),
            "nope.id".to_string()
        );
    }

    #[test]
    fn pages_link_to_the_next_offset() {
        let rows: Vec<Value> = (0..5).map(|i| json!({"n": i})).collect();
        let a = page(&rows, 0, 2, "01gX", false, "62.0").json();
        assert_eq!(a["nextRecordsUrl"], "/services/data/v62.0/query/01gX-2");
        assert_eq!(a["done"], false);
        let last = page(&rows, 4, 2, "01gX", false, "62.0").json();
        assert_eq!(last["done"], true);
        assert!(last.get("nextRecordsUrl").is_none());
        assert_eq!(last["records"], json!([{"n": 4}]));
    }
}
