//! HTTP front of the mock org: one dispatcher that applies auth, the daily budget, the
//! long-running concurrency limit and the fault layer to every API request, journals it,
//! adds `Sforce-Limit-Info`, and hands the work to the REST, Bulk and event routes.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::journal::JournalEntry;
use super::{admin, bulk, events, oauth, rest, MockOrg, State};
use crate::contract::rules::RecordError;
use crate::sim::scenario::{FaultResponse, LostMode};
use crate::sim::Timestamp;

pub(super) fn router(org: MockOrg) -> Router {
    // Bulk API 2.0 takes uploads of up to 150 MB; axum's default limit is 2 MB.
    Router::new()
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::max(150 * 1024 * 1024))
        .with_state(org)
}

/// The body of an answer.
pub(super) enum Payload {
    Json(Value),
    Csv(String),
    Empty,
}

/// What a route produced, before headers common to every answer are added.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Payload,
    pub headers: Vec<(&'static str, String)>,
    pub records: Option<usize>,
    pub outcome: Option<(usize, usize)>,
    pub error_code: Option<String>,
}

impl Answer {
    pub fn ok(status: StatusCode, body: Value) -> Self {
        Answer {
            status,
            body: Payload::Json(body),
            headers: Vec::new(),
            records: None,
            outcome: None,
            error_code: None,
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Answer {
            body: Payload::Empty,
            ..Answer::ok(status, Value::Null)
        }
    }

    pub fn csv(text: String) -> Self {
        Answer {
            body: Payload::Csv(text),
            ..Answer::ok(StatusCode::OK, Value::Null)
        }
    }

    pub fn error(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        fields: &[String],
    ) -> Self {
        let message = message.into();
        Answer {
            error_code: Some(code.to_string()),
            ..Answer::ok(
                status,
                json!([{ "message": message, "errorCode": code, "fields": fields }]),
            )
        }
    }

    pub fn not_found() -> Self {
        Answer::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            &[],
        )
    }

    pub fn from_record_error(e: &RecordError) -> Self {
        let status = match e.code.as_str() {
            "NOT_FOUND" | "ENTITY_IS_DELETED" => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        Answer::error(status, &e.code, e.message.clone(), &e.fields)
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The JSON body, if any (composite subrequests read it).
    pub fn json(&self) -> Value {
        match &self.body {
            Payload::Json(v) => v.clone(),
            Payload::Csv(s) => Value::String(s.clone()),
            Payload::Empty => Value::Null,
        }
    }
}

/// One API request, relative to `/services/data/vNN.N`.
pub(super) struct Req<'a> {
    pub method: Method,
    pub seg: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: Timestamp,
    pub api_version: &'a str,
}

impl Req<'_> {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the admission step decided for an API request.
struct Ticket {
    entry: JournalEntry,
    version: String,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    delay: Option<Duration>,
    timeout: bool,
    lost: Option<LostMode>,
    malformed: bool,
    flight: u64,
    origin: String,
}

enum Admission {
    Done(Response),
    Go(Box<Ticket>),
}

async fn dispatch(
    axum::extract::State(org): axum::extract::State<MockOrg>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_refused(&rejection),
    };
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
    // A paused (scaled) clock runs from the engine's first request on.
    org.clock().resume();
    let path = uri.path().to_string();
    org.capture(&method, &uri, &headers, &body);
    if let Some(rest) = path.strip_prefix(admin::PREFIX) {
        return admin::handle(&org, &method, rest, uri.query(), &body).await;
    }
    // The common case takes the lock once; a request held by latency lets go meanwhile.
    let ticket = {
        let mut state = org.lock();
        match admit(&org, &mut state, &method, &uri, &headers, &body, in_flight) {
            Admission::Done(resp) => return resp,
            Admission::Go(t) if t.delay.is_none() => {
                return execute(&org, &mut state, t, method, &headers, &body)
            }
            Admission::Go(t) => t,
        }
    };
    if let Some(delay) = ticket.delay {
        org.clock().sleep(delay).await;
    }
    let mut state = org.lock();
    state.in_flight.retain(|(id, _)| *id != ticket.flight);
    execute(&org, &mut state, ticket, method, &headers, &body)
}

/// A body that could not be read (over the 150 MB limit, or cut off), answered the way
/// Salesforce answers errors: a JSON array of `{message, errorCode}` with the status.
fn body_refused(rejection: &axum::extract::rejection::BytesRejection) -> Response {
    let status = rejection.status();
    let (code, message) = if status == StatusCode::PAYLOAD_TOO_LARGE {
        (
            "REQUEST_ENTITY_TOO_LARGE",
            "The request body exceeds the limit of 150 MB".to_string(),
        )
    } else {
        (
            "JSON_PARSER_ERROR",
            format!(
                "The request body could not be read: {}",
                rejection.body_text()
            ),
        )
    };
    json_response(status, &json!([{"message": message, "errorCode": code}]))
}

/// `Content-Type` of Salesforce's JSON answers (the charset parameter included).
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// A JSON answer with Salesforce's `Content-Type`.
pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
    resp
}

/// Does the work of an admitted request and answers it (or loses the answer).
fn execute(
    org: &MockOrg,
    state: &mut State,
    mut ticket: Box<Ticket>,
    method: Method,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let now = org.clock().now();
    if ticket.timeout {
        ticket.entry.status = 0;
        record(state, ticket.entry);
        return broken_response(StatusCode::OK);
    }
    let req = Req {
        method,
        seg: std::mem::take(&mut ticket.segments),
        query: std::mem::take(&mut ticket.query),
        headers,
        body,
        now,
        api_version: &ticket.version,
    };
    let answer = route_api(state, &req);
    events::publish_changes(state, &ticket.origin, now);
    let Ticket {
        mut entry,
        lost,
        malformed,
        ..
    } = *ticket;
    match lost {
        None if malformed => {
            entry.records = answer.records;
            entry.outcome = answer.outcome;
            entry.status = answer.status.as_u16();
            record(state, entry);
            let text = match &answer.body {
                Payload::Json(v) => v.to_string(),
                Payload::Csv(s) => s.clone(),
                Payload::Empty => "{".into(),
            };
            let cut = text.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            let mut resp = (answer.status, text[..cut].to_string()).into_response();
            resp.headers_mut()
                .insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
            add_limit_info(state, &mut resp);
            resp
        }
        None => finish(state, entry, answer),
        Some(mode) => {
            // The work above is committed; the client never learns it.
            entry.records = answer.records;
            entry.outcome = answer.outcome;
            match mode {
                LostMode::ServerError => {
                    entry.status = 500;
                    record(state, entry);
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
                    record(state, entry);
                    broken_response(answer.status)
                }
            }
        }
    }
}

/// A response whose body fails mid-stream: the client sees the connection drop.
fn broken_response(status: StatusCode) -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by the mock",
        ))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
    resp
}

fn admit(
    org: &MockOrg,
    state: &mut State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    in_flight: usize,
) -> Admission {
    let now = org.clock().now();
    let path = uri.path().to_string();
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let client = header(headers, "sforce-call-options").and_then(|v| {
        v.split(',')
            .find_map(|kv| kv.trim().strip_prefix("client=").map(str::to_string))
    });
    let seq = state.journal.total() + 1;
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
        correlation_id: header(headers, "x-correlation-id"),
        client: client.clone(),
        api_usage: None,
        created: None,
        in_flight,
        request_body: if super::journal::holds_credentials(&path) {
            None
        } else {
            super::journal::kept_body(&String::from_utf8_lossy(body))
        },
        response_body: None,
        answered_at: None,
    };
    state.tick(now);

    let trimmed = path.trim_end_matches('/');
    let api_version = org.shared.api_version.clone();
    if let Some(answer) = oauth_route(
        state,
        method,
        uri,
        trimmed,
        headers,
        body,
        now,
        &api_version,
    ) {
        return Admission::Done(finish(state, entry, answer));
    }
    let Some(rest) = path.strip_prefix("/services/data") else {
        return Admission::Done(finish(state, entry, Answer::not_found()));
    };
    if rest.is_empty() || rest == "/" {
        let answer = Answer::ok(
            StatusCode::OK,
            json!([{"label": "Winter '25", "url": format!("/services/data/v{api_version}"), "version": api_version}]),
        );
        return Admission::Done(finish(state, entry, answer));
    }
    // `/vNN.N/…` → the route path relative to the version.
    let (version, route) = match rest.trim_start_matches('/').split_once('/') {
        Some((v, r)) => (v.to_string(), format!("/{}", r.trim_end_matches('/'))),
        None => (rest.trim_start_matches('/').to_string(), "/".to_string()),
    };
    if !is_api_version(&version) {
        return Admission::Done(finish(state, entry, Answer::not_found()));
    }
    let segments: Vec<String> = route
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    entry.object = object_of(&segments);

    let token = bearer(headers);
    let authorized = token.as_ref().is_some_and(|t| state.tokens.contains(t));
    if !authorized {
        let answer = Answer::error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
            &[],
        );
        return Admission::Done(finish(state, entry, answer));
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
        )
        .with_header("retry-after", window_wait(org.clock(), now).to_string());
        return Admission::Done(finish(state, entry, answer));
    }
    // Real in-flight accounting: requests that have run for the threshold or longer.
    let threshold = Duration::from_secs(state.org.bundle().limits.long_running_threshold_secs);
    let long_running = state
        .in_flight
        .iter()
        .filter(|(_, started)| now.since(*started) >= threshold)
        .count();
    if long_running >= state.org.bundle().limits.concurrent_long_running as usize {
        entry.fault = Some("concurrent_long_running_limit".into());
        return Admission::Done(finish(state, entry, concurrent_limit()));
    }
    state.budget.used += 1;
    state.api_calls += 1;

    let elapsed = now.since(state.start);
    let fault = state
        .faults
        .decide(method.as_str(), &route, entry.object.as_deref(), elapsed);
    let mut ticket = Ticket {
        entry,
        version: version.trim_start_matches('v').to_string(),
        segments,
        query: uri.query().map(form_pairs).unwrap_or_default(),
        delay: None,
        timeout: false,
        lost: None,
        malformed: false,
        flight: 0,
        origin: change_origin(&api_version, client.as_deref()),
    };
    if let Some(f) = fault {
        ticket.entry.fault = Some(format!("{}: {}", f.rule, f.response.label()));
        let answer = match f.response {
            FaultResponse::RateLimited {
                retry_after,
                http_date,
            } => {
                // The header carries whole seconds of the client's (wall) clock: round up,
                // so a client that waits exactly what it was told is never early. On a
                // scaled clock the org's duration is stated in wall time.
                let clock = org.clock();
                let secs = clock
                    .wall_duration(retry_after.0)
                    .as_millis()
                    .div_ceil(1000)
                    .max(1) as u64;
                let (until, value) = if http_date {
                    let exact = clock.wall_time_of(now.plus(retry_after.0)).as_millis();
                    let wall = Timestamp::from_millis(
                        exact.div_euclid(1000) * 1000 + if exact % 1000 == 0 { 0 } else { 1000 },
                    );
                    (clock.org_time_of(wall), wall.to_http_date())
                } else {
                    let waited = clock.org_duration(std::time::Duration::from_secs(secs));
                    (now.plus(waited), secs.to_string())
                };
                ticket.entry.not_before = Some(until);
                Some(
                    Answer::error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "TOO_MANY_REQUESTS",
                        format!("Too many requests; retry after {secs} seconds"),
                        &[],
                    )
                    .with_header("retry-after", value),
                )
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
                ticket.entry.not_before = Some(now.next_day_start());
                Some(Answer::error(
                    StatusCode::FORBIDDEN,
                    "REQUEST_LIMIT_EXCEEDED",
                    "TotalRequests Limit exceeded.",
                    &[],
                ))
            }
            FaultResponse::ConcurrentLimit => Some(concurrent_limit()),
            FaultResponse::SessionExpired => {
                if let Some(t) = &token {
                    state.tokens.retain(|x| x != t);
                }
                Some(Answer::error(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_SESSION_ID",
                    "Session expired or invalid",
                    &[],
                ))
            }
            FaultResponse::ConnectionReset => {
                ticket.entry.status = 0;
                record(state, ticket.entry);
                return Admission::Done(broken_response(StatusCode::OK));
            }
            FaultResponse::ResponseLost { mode } => {
                ticket.lost = Some(mode);
                None
            }
            FaultResponse::MalformedBody => {
                ticket.malformed = true;
                None
            }
            FaultResponse::Latency { min, max } => {
                ticket.delay = Some(state.faults.draw(min.0, max.0));
                None
            }
            FaultResponse::Timeout { after } => {
                ticket.delay = Some(after.0);
                ticket.timeout = true;
                None
            }
        };
        if let Some(answer) = answer {
            return Admission::Done(finish(state, ticket.entry, answer));
        }
    }
    if ticket.delay.is_some() {
        state.next_flight += 1;
        ticket.flight = state.next_flight;
        state.in_flight.push((ticket.flight, now));
    }
    Admission::Go(Box::new(ticket))
}

fn concurrent_limit() -> Answer {
    Answer::error(
        StatusCode::FORBIDDEN,
        "REQUEST_LIMIT_EXCEEDED",
        "ConcurrentPerOrgLongTxn Limit exceeded.",
        &[],
    )
}

/// `changeOrigin` of the change events a request causes.
fn change_origin(api_version: &str, client: Option<&str>) -> String {
    match client {
        Some(c) => format!("com/salesforce/api/rest/{api_version};client={c}"),
        None => format!("com/salesforce/api/rest/{api_version}"),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    header(headers, "authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("OAuth "))
            .map(str::to_string)
    })
}

pub(super) fn record(state: &mut State, mut entry: JournalEntry) {
    entry.answered_at = Some(state.clock.now());
    entry.api_usage = Some(state.budget.used);
    entry.created = state.created_by_last.take();
    state.journal.push(entry);
}

fn add_limit_info(state: &State, resp: &mut Response) {
    let info = format!("api-usage={}/{}", state.budget.used, state.budget.max);
    if let Ok(v) = HeaderValue::from_str(&info) {
        resp.headers_mut().insert("sforce-limit-info", v);
    }
    // With the budget spent, say when the daily window reopens, in the client's seconds
    // (a client that cannot see the org's clock could not know).
    if state.budget.used >= state.budget.max {
        let secs = window_wait(&state.clock, state.clock.now());
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(WINDOW_RESET_HEADER, v);
        }
    }
}

/// Wall seconds until the next daily window, with the budget spent (see `docs/engine-protocol.md`).
pub const WINDOW_RESET_HEADER: &str = "x-syncgate-limit-reset";

/// Whole wall seconds, rounded up, until the daily window after `now` opens.
fn window_wait(clock: &crate::sim::Clock, now: Timestamp) -> u64 {
    let wall = clock.wall_duration(now.next_day_start().since(now));
    wall.as_millis().div_ceil(1000).max(1) as u64
}

fn finish(state: &mut State, mut entry: JournalEntry, answer: Answer) -> Response {
    entry.status = answer.status.as_u16();
    entry.records = answer.records;
    entry.outcome = answer.outcome;
    entry.error_code = answer.error_code.clone();
    if !super::journal::holds_credentials(&entry.path) {
        entry.response_body = match &answer.body {
            Payload::Json(v) => super::journal::kept_body(&v.to_string()),
            Payload::Csv(text) => super::journal::kept_body(text),
            Payload::Empty => None,
        };
    }
    let is_api = entry.path.starts_with("/services/data/v");
    record(state, entry);
    let mut resp = match answer.body {
        Payload::Json(v) => json_response(answer.status, &v),
        Payload::Csv(text) => {
            let mut r = (answer.status, text).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("text/csv"));
            r
        }
        Payload::Empty => answer.status.into_response(),
    };
    if is_api {
        add_limit_info(state, &mut resp);
    }
    for (name, value) in answer.headers {
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

pub(super) fn percent_decode(s: &str) -> String {
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

/// `application/x-www-form-urlencoded` pairs (also query strings).
pub(super) fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| percent_decode(&s.replace('+', " "));
            (dec(k), dec(v))
        })
        .collect()
}

/// The OAuth endpoints and the identity URL, or `None` for any other path.
#[allow(clippy::too_many_arguments)]
fn oauth_route(
    state: &mut State,
    method: &Method,
    uri: &Uri,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
    api_version: &str,
) -> Option<Answer> {
    match path {
        "/services/oauth2/token" if method == Method::POST => {
            Some(oauth::token(state, headers, body, now))
        }
        "/services/oauth2/revoke" => Some(oauth::revoke(state, uri.query(), body)),
        "/services/oauth2/introspect" if method == Method::POST => {
            Some(oauth::introspect(state, headers, body))
        }
        _ if path == "/services/oauth2/userinfo" || path.starts_with("/id/") => {
            let token = bearer(headers).filter(|t| state.tokens.contains(t));
            Some(match token {
                Some(t) if path.starts_with("/id/") => oauth::identity(state, &t, api_version),
                Some(t) => oauth::userinfo(state, &t, api_version),
                None => Answer::error(
                    StatusCode::FORBIDDEN,
                    "Bad_OAuth_Token",
                    "Bad_OAuth_Token",
                    &[],
                ),
            })
        }
        _ => None,
    }
}

/// Routes one API request (also a composite subrequest) to its handler.
pub(super) fn route_api(state: &mut State, req: &Req<'_>) -> Answer {
    let seg: Vec<&str> = req.seg.iter().map(String::as_str).collect();
    let lower: Vec<String> = seg.iter().map(|s| s.to_ascii_lowercase()).collect();
    let first = lower.first().map(String::as_str);
    match first {
        Some("jobs") => bulk::route(state, req, &seg),
        Some("query") | Some("queryall") => rest::query(state, req, &seg),
        _ => rest::route(state, req, &seg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_and_paths() {
        assert_eq!(
            form_pairs("q=SELECT+Id+FROM+Account&x=%27a%27&flag"),
            vec![
                ("q".to_string(), "SELECT Id FROM Account".to_string()),
                ("x".to_string(), "'a'".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
        assert_eq!(percent_decode("A%2F1%"), "A/1%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn api_versions() {
        assert!(is_api_version("v62.0"));
        assert!(!is_api_version("v62"));
        assert!(!is_api_version("62.0"));
    }

    #[test]
    fn origin_names_the_client() {
        assert_eq!(
            change_origin("62.0", Some("syncgate")),
            "com/salesforce/api/rest/62.0;client=syncgate"
        );
    }
}
