//! HTTP routes of the mock org, behind one dispatcher that applies auth, the daily budget
//! and the fault layer to every API request before the route runs.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

use super::journal::JournalEntry;
use super::org::UpsertError;
use super::{MockOrg, State};
use crate::contract::rules::RecordError;
use crate::sim::scenario::{FaultResponse, LostMode};
use crate::sim::Timestamp;

/// Maximum records in one sObject Collections request.
pub const COLLECTION_LIMIT: usize = 200;

pub(super) fn router(org: MockOrg) -> Router {
    Router::new().fallback(dispatch).with_state(org)
}

/// What a route produced, before headers common to every answer are added.
struct Answer {
    status: StatusCode,
    body: Value,
    records: Option<usize>,
    outcome: Option<(usize, usize)>,
    error_code: Option<String>,
}

impl Answer {
    fn ok(status: StatusCode, body: Value) -> Self {
        Answer {
            status,
            body,
            records: None,
            outcome: None,
            error_code: None,
        }
    }

    fn error(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        fields: &[String],
    ) -> Self {
        let message = message.into();
        Answer {
            status,
            body: json!([{ "message": message, "errorCode": code, "fields": fields }]),
            records: None,
            outcome: None,
            error_code: Some(code.to_string()),
        }
    }

    fn from_record_error(status: StatusCode, e: &RecordError) -> Self {
        Answer::error(status, &e.code, e.message.clone(), &e.fields)
    }
}

async fn dispatch(
    axum::extract::State(org): axum::extract::State<MockOrg>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // API requests (what an org's concurrency limit counts; not sign-ins) from arrival to
    // answer, across every connection; the guard also ends a request whose client hung up.
    let (_in_flight, in_flight) = if uri.path().starts_with("/services/data/") {
        let (guard, n) = org.shared.in_flight.enter();
        (Some(guard), n)
    } else {
        (None, 0)
    };
    let hold = org.shared.hold_us.load(std::sync::atomic::Ordering::SeqCst);
    if hold > 0 {
        tokio::time::sleep(std::time::Duration::from_micros(hold)).await;
    }
    let now = org.clock().now();
    let path = uri.path().to_string();
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let mut state = org.lock();
    let seq = state.journal.len() as u64 + 1;
    let mut entry = JournalEntry {
        seq,
        at: now,
        method: method.to_string(),
        path: path_and_query,
        object: None,
        status: 0,
        records: None,
        outcome: None,
        fault: None,
        not_before: None,
        error_code: None,
        correlation_id: header(&headers, "x-correlation-id"),
        client: header(&headers, "sforce-call-options").and_then(|v| {
            v.split(',')
                .find_map(|kv| kv.trim().strip_prefix("client=").map(str::to_string))
        }),
        api_usage: None,
        created: None,
        in_flight,
    };

    if path == "/services/oauth2/token" && method == Method::POST {
        let answer = token(&mut state, &body, now);
        return finish(&mut state, entry, answer, None, now);
    }
    let Some(rest) = path.strip_prefix("/services/data") else {
        let answer = Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            &[],
        );
        return finish(&mut state, entry, answer, None, now);
    };
    if rest.is_empty() || rest == "/" {
        let v = &org.shared.api_version;
        let answer = Answer::ok(
            StatusCode::OK,
            json!([{"label": "Winter '25", "url": format!("/services/data/v{v}"), "version": v}]),
        );
        return finish(&mut state, entry, answer, None, now);
    }
    // `/vNN.N/…` → the route path relative to the version.
    let (version, route) = match rest.trim_start_matches('/').split_once('/') {
        Some((v, r)) => (v.to_string(), format!("/{}", r.trim_end_matches('/'))),
        None => (rest.trim_start_matches('/').to_string(), "/".to_string()),
    };
    if !is_api_version(&version) {
        let answer = Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            &[],
        );
        return finish(&mut state, entry, answer, None, now);
    }
    let segments: Vec<String> = route
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    entry.object = object_of(&segments);

    let authorized = header(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string))
        .is_some_and(|t| state.tokens.contains(&t));
    if !authorized {
        let answer = Answer::error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
            &[],
        );
        return finish(&mut state, entry, answer, None, now);
    }

    state.budget.roll(now);
    if state.budget.used >= state.budget.max {
        entry.not_before = Some(now.next_day_start());
        entry.fault = Some("daily_budget_exhausted".into());
        let answer = Answer::error(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
            &[],
        );
        return finish(&mut state, entry, answer, None, now);
    }
    state.budget.used += 1;

    let fault = state
        .faults
        .decide(method.as_str(), &route, entry.object.as_deref());
    let mut lost = None;
    if let Some(f) = fault {
        entry.fault = Some(format!("{}: {}", f.rule, f.response.label()));
        let answer = match f.response {
            FaultResponse::RateLimited {
                retry_after,
                http_date,
            } => {
                let until = now.plus(retry_after.0);
                entry.not_before = Some(until);
                let value = if http_date {
                    until.to_http_date()
                } else {
                    retry_after.0.as_secs().max(1).to_string()
                };
                let secs = retry_after.0.as_secs();
                let answer = Answer::error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "REQUEST_LIMIT_EXCEEDED",
                    format!("Too many requests; retry after {secs} seconds"),
                    &[],
                );
                return finish(&mut state, entry, answer, Some(("retry-after", value)), now);
            }
            FaultResponse::ServerUnavailable => Some(Answer::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Server is temporarily unavailable; please try again",
                &[],
            )),
            FaultResponse::UnableToLockRow => Some(Answer::error(
                StatusCode::BAD_REQUEST,
                "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access to this record or 1 records",
                &[],
            )),
            FaultResponse::RequestLimitExceeded => {
                entry.not_before = Some(now.next_day_start());
                Some(Answer::error(
                    StatusCode::FORBIDDEN,
                    "REQUEST_LIMIT_EXCEEDED",
                    "TotalRequests Limit exceeded.",
                    &[],
                ))
            }
            FaultResponse::ResponseLost { mode } => {
                lost = Some(mode);
                None
            }
        };
        if let Some(answer) = answer {
            return finish(&mut state, entry, answer, None, now);
        }
    }

    let answer = route_api(
        &mut state,
        &org.shared.api_version,
        &method,
        &segments,
        &body,
        now,
    );
    match lost {
        None => finish(&mut state, entry, answer, None, now),
        Some(mode) => {
            // The work above is committed; the client never learns it.
            entry.records = answer.records;
            entry.outcome = answer.outcome;
            match mode {
                LostMode::ServerError => {
                    entry.status = 500;
                    record(&mut state, entry);
                    let mut resp = (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "<html><body>An internal server error has occurred</body></html>",
                    )
                        .into_response();
                    resp.headers_mut()
                        .insert("content-type", HeaderValue::from_static("text/html"));
                    resp
                }
                LostMode::ConnectionReset => {
                    entry.status = answer.status.as_u16();
                    record(&mut state, entry);
                    let stream = futures_util::stream::once(async {
                        Err::<Bytes, std::io::Error>(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "connection reset by the mock",
                        ))
                    });
                    let mut resp = Response::new(Body::from_stream(stream));
                    *resp.status_mut() = answer.status;
                    resp.headers_mut()
                        .insert("content-type", HeaderValue::from_static("application/json"));
                    resp
                }
            }
        }
    }
}

fn record(state: &mut State, mut entry: JournalEntry) {
    entry.api_usage = Some(state.budget.used);
    entry.created = state.created_by_last.take();
    state.journal.push(entry);
}

fn finish(
    state: &mut State,
    mut entry: JournalEntry,
    answer: Answer,
    extra: Option<(&'static str, String)>,
    _now: Timestamp,
) -> Response {
    entry.status = answer.status.as_u16();
    entry.records = answer.records;
    entry.outcome = answer.outcome;
    entry.error_code = answer.error_code.clone();
    let is_api = entry.path.starts_with("/services/data/v");
    record(state, entry);
    let mut resp = (answer.status, axum::Json(answer.body)).into_response();
    if is_api {
        let info = format!("api-usage={}/{}", state.budget.used, state.budget.max);
        if let Ok(v) = HeaderValue::from_str(&info) {
            resp.headers_mut().insert("sforce-limit-info", v);
        }
    }
    if let Some((name, value)) = extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn is_api_version(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|n| n.split_once('.'))
        .is_some_and(|(a, b)| !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b == "0")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn object_of(segments: &[String]) -> Option<String> {
    match segments {
        [s, o, ..] if s == "sobjects" => Some(o.clone()),
        [c, s, o, ..] if c == "composite" && s == "sobjects" => Some(o.clone()),
        _ => None,
    }
}

fn token(state: &mut State, body: &[u8], now: Timestamp) -> Answer {
    let form: Vec<(String, String)> = serde_urlencoded_pairs(body);
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let client_ok = |state: &State| {
        let id = get("client_id");
        let secret = get("client_secret");
        state.clients.iter().any(|c| {
            Some(&c.client_id) == id.as_ref()
                && (secret.is_none() || Some(&c.client_secret) == secret.as_ref())
        })
    };
    let ok = match get("grant_type").as_deref() {
        Some("client_credentials") => client_ok(state) && get("client_secret").is_some(),
        Some("password") => {
            client_ok(state) && get("username").is_some() && get("password").is_some()
        }
        Some("refresh_token") => client_ok(state) && get("refresh_token").is_some(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            get("assertion").is_some_and(|a| a.split('.').count() == 3)
        }
        Some(_) => {
            return Answer {
                status: StatusCode::BAD_REQUEST,
                body: json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"}),
                records: None,
                outcome: None,
                error_code: Some("unsupported_grant_type".into()),
            }
        }
        None => false,
    };
    if !ok {
        return Answer {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": "invalid_grant", "error_description": "authentication failure"}),
            records: None,
            outcome: None,
            error_code: Some("invalid_grant".into()),
        };
    }
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let token = format!("00D8d0000000001!{}", state.token_rng.token(96, ALNUM));
    let signature = state.token_rng.token(43, ALNUM) + "=";
    state.tokens.push(token.clone());
    let base = state.base_url.clone();
    Answer::ok(
        StatusCode::OK,
        json!({
            "access_token": token,
            "instance_url": base,
            "id": format!("{base}/id/00D8d0000000001EAA/0058d0000000001AAA"),
            "token_type": "Bearer",
            "issued_at": now.as_millis().to_string(),
            "signature": signature,
        }),
    )
}

fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| percent_decode(&s.replace('+', " "));
            (dec(k), dec(v))
        })
        .collect()
}

fn route_api(
    state: &mut State,
    api_version: &str,
    method: &Method,
    seg: &[String],
    body: &[u8],
    now: Timestamp,
) -> Answer {
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    match (method, seg.as_slice()) {
        (&Method::GET, ["limits"]) => limits(state),
        (&Method::GET, ["sobjects"]) => sobjects_list(state),
        (&Method::GET, ["sobjects", object, "describe"]) => describe(state, object),
        (&Method::GET, ["sobjects", object, id]) => read_by_id(state, api_version, object, id),
        (&Method::GET, ["sobjects", object, field, value]) => {
            read_by_external_id(state, api_version, object, field, value)
        }
        (&Method::PATCH, ["sobjects", object, field, value]) => {
            upsert_one(state, object, field, value, body, now)
        }
        (&Method::PATCH, ["composite", "sobjects", object, field]) => {
            upsert_collection(state, object, field, body, now)
        }
        _ => Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            &[],
        ),
    }
}

fn limits(state: &State) -> Answer {
    let b = &state.budget;
    Answer::ok(
        StatusCode::OK,
        json!({
            "DailyApiRequests": {"Max": b.max, "Remaining": b.max.saturating_sub(b.used)},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "ConcurrentPerOrgLongTxn": {"Max": state.org.bundle().limits.concurrent_long_running, "Remaining": state.org.bundle().limits.concurrent_long_running},
        }),
    )
}

fn sobjects_list(state: &State) -> Answer {
    let objs: Vec<Value> = state
        .org
        .bundle()
        .objects
        .keys()
        .map(|name| json!({"name": name, "label": name, "keyPrefix": super::ids::key_prefix(name), "createable": true, "updateable": true, "queryable": true, "custom": name.ends_with("__c")}))
        .collect();
    Answer::ok(
        StatusCode::OK,
        json!({"encoding": "UTF-8", "maxBatchSize": COLLECTION_LIMIT, "sobjects": objs}),
    )
}

fn describe(state: &State, object: &str) -> Answer {
    let Some(spec) = state.org.bundle().object(object) else {
        return Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("The requested resource does not exist: {object}"),
            &[],
        );
    };
    let mut fields = vec![
        json!({"name": "Id", "type": "id", "length": 18, "nillable": false, "createable": false, "updateable": false, "externalId": false, "picklistValues": []}),
    ];
    for (name, f) in &spec.fields {
        fields.push(json!({
            "name": name,
            "type": f.ty.describe_name(),
            "length": f.max_length.unwrap_or(0),
            "nillable": !f.required,
            "createable": true,
            "updateable": true,
            "externalId": *name == spec.external_id,
            "custom": name.ends_with("__c"),
            "relationshipName": f.relationship,
            "referenceTo": f.to.iter().collect::<Vec<_>>(),
            "restrictedPicklist": f.ty == crate::contract::FieldType::Picklist && f.restricted,
            "picklistValues": f.values.iter().flatten().map(|v| json!({"value": v, "label": v, "active": true, "defaultValue": false})).collect::<Vec<_>>(),
        }));
    }
    Answer::ok(
        StatusCode::OK,
        json!({"name": object, "label": object, "keyPrefix": super::ids::key_prefix(object), "fields": fields}),
    )
}

fn read_by_id(state: &State, api_version: &str, object: &str, id: &str) -> Answer {
    if !state.org.has_object(object) {
        return Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("The requested resource does not exist: {object}"),
            &[],
        );
    }
    match state.org.get(object, id) {
        Some(r) => Answer::ok(StatusCode::OK, r.to_json(object, api_version)),
        None => Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            &[],
        ),
    }
}

fn read_by_external_id(
    state: &State,
    api_version: &str,
    object: &str,
    field: &str,
    value: &str,
) -> Answer {
    let Some(spec) = state.org.bundle().object(object) else {
        return Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("The requested resource does not exist: {object}"),
            &[],
        );
    };
    if field != spec.external_id {
        return Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {field}"),
            &[],
        );
    }
    let found = state.org.find_by_external_id(object, value);
    match found.as_slice() {
        [] => Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            &[],
        ),
        [one] => Answer::ok(StatusCode::OK, one.to_json(object, api_version)),
        many => Answer::ok(
            StatusCode::MULTIPLE_CHOICES,
            json!(many
                .iter()
                .map(|r| format!("/services/data/v{api_version}/sobjects/{object}/{}", r.id))
                .collect::<Vec<_>>()),
        ),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, Answer> {
    serde_json::from_slice(body).map_err(|e| {
        Answer::error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            format!("Unexpected character in request body: {e}"),
            &[],
        )
    })
}

fn upsert_one(
    state: &mut State,
    object: &str,
    field: &str,
    value: &str,
    body: &[u8],
    now: Timestamp,
) -> Answer {
    let values = match parse_body(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                "The request body must be a JSON object",
                &[],
            )
        }
        Err(a) => return a,
    };
    match state.org.prepare_upsert(object, field, value, values) {
        Ok(p) => {
            let done = state.org.apply(p, now);
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
        Err(UpsertError::Record(e)) => {
            let status = if e.code == "NOT_FOUND" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            Answer::from_record_error(status, &e)
        }
    }
}

fn upsert_collection(
    state: &mut State,
    object: &str,
    field: &str,
    body: &[u8],
    now: Timestamp,
) -> Answer {
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(a) => return a,
    };
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "Expected a `records` array",
            &[],
        );
    };
    if records.len() > COLLECTION_LIMIT {
        return Answer::error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            format!("Maximum number of records is {COLLECTION_LIMIT}"),
            &[],
        );
    }
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
        None => {
            return Answer::error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("The requested resource does not exist: {object}"),
                &[],
            )
        }
    }
    let n = records.len();
    // Each item: Ok(values) to upsert, or the error to report.
    let mut items: Vec<ParsedItem> = Vec::with_capacity(n);
    let mut seen = std::collections::HashMap::new();
    for r in records {
        let item = match r.as_object() {
            None => Err(RecordError::new(
                "JSON_PARSER_ERROR",
                "Each record must be a JSON object",
                vec![],
            )),
            Some(m) => match m.get(field).and_then(Value::as_str) {
                None => Err(RecordError::new(
                    "MISSING_ARGUMENT",
                    format!("{field} not specified"),
                    vec![field.to_string()],
                )),
                Some(ext) => {
                    *seen.entry(ext.to_string()).or_insert(0usize) += 1;
                    Ok((ext.to_string(), m.clone()))
                }
            },
        };
        items.push(item);
    }
    let mut results: Vec<Value> = Vec::with_capacity(n);
    let mut failed = 0;
    let item_error = |e: &RecordError| json!({"success": false, "errors": [{"statusCode": e.code, "message": e.message, "fields": e.fields}]});
    if all_or_none {
        let mut prepared = Vec::new();
        let mut errors: Vec<Option<RecordError>> = Vec::new();
        for item in &items {
            let outcome = match item {
                Err(e) => Err(e.clone()),
                Ok((ext, _)) if seen[ext] > 1 => Err(duplicate_ext(ext)),
                Ok((ext, values)) => {
                    match state.org.prepare_upsert(object, field, ext, values.clone()) {
                        Ok(p) => Ok(p),
                        Err(UpsertError::Record(e)) => Err(e),
                        Err(UpsertError::Ambiguous(_)) => Err(ambiguous(ext)),
                    }
                }
            };
            match outcome {
                Ok(p) => {
                    prepared.push(p);
                    errors.push(None);
                }
                Err(e) => errors.push(Some(e)),
            }
        }
        if errors.iter().any(Option::is_some) {
            for e in &errors {
                failed += 1;
                results.push(match e {
                    Some(e) => item_error(e),
                    None => item_error(&RecordError::new(
                        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "Record rolled back because not all records were valid and the request was using AllOrNone header",
                        vec![],
                    )),
                });
            }
        } else {
            for p in prepared {
                let done = state.org.apply(p, now);
                results.push(
                    json!({"id": done.id, "success": true, "errors": [], "created": done.created}),
                );
            }
        }
    } else {
        for item in items {
            let outcome = match item {
                Err(e) => Err(e),
                Ok((ext, _)) if seen[&ext] > 1 => Err(duplicate_ext(&ext)),
                Ok((ext, values)) => match state.org.prepare_upsert(object, field, &ext, values) {
                    Ok(p) => Ok(state.org.apply(p, now)),
                    Err(UpsertError::Record(e)) => Err(e),
                    Err(UpsertError::Ambiguous(_)) => Err(ambiguous(&ext)),
                },
            };
            results.push(match outcome {
                Ok(done) => {
                    json!({"id": done.id, "success": true, "errors": [], "created": done.created})
                }
                Err(e) => {
                    failed += 1;
                    item_error(&e)
                }
            });
        }
    }
    let created = results
        .iter()
        .filter(|r| r.get("created").and_then(Value::as_bool) == Some(true))
        .count();
    let mut answer = Answer::ok(StatusCode::OK, Value::Array(results));
    answer.records = Some(n);
    answer.outcome = Some((n - failed, failed));
    state.created_by_last = Some(created);
    answer
}

/// One record of a collections request: its external ID and values, or why it is unusable.
type ParsedItem = Result<(String, Map<String, Value>), RecordError>;

fn duplicate_ext(ext: &str) -> RecordError {
    RecordError::new(
        "DUPLICATE_EXTERNAL_ID",
        format!("Duplicate external id specified: {ext}"),
        vec![],
    )
}

fn ambiguous(ext: &str) -> RecordError {
    RecordError::new(
        "DUPLICATE_EXTERNAL_ID",
        format!("Foreign key external ID: {ext} matches more than one record"),
        vec![],
    )
}
