//! HTTP front of the mock org: one dispatcher that applies auth, the daily budget, the
//! long-running concurrency limit and the fault layer to every API request, journals it,
//! adds `Sforce-Limit-Info`, and hands the work to the REST, Bulk and event routes.
//! A fault's answer comes from [`super::fault_answer`], shared with the partner stub.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

use super::answer::{
    body_refused, broken_response, cut_short, lost_server_error, Answer, Payload, Req,
    JSON_CONTENT_TYPE,
};
use super::fault_answer::{self, Effect, Refusal};
use super::flight::InFlightGuard;
use super::form::{form_pairs, percent_decode};
use super::journal::JournalEntry;
use super::{admin, bulk, events, oauth, rest, MockOrg, State};
use crate::sim::scenario::LostMode;
use crate::sim::Timestamp;

pub(super) fn router(org: MockOrg) -> Router {
    // Bulk API 2.0 takes uploads of up to 150 MB; axum's default limit is 2 MB.
    Router::new()
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::max(150 * 1024 * 1024))
        .with_state(org)
}

/// What the admission step decided for an API request.
struct Ticket {
    entry: JournalEntry,
    version: String,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    /// What a fault does with the request, when one chose it (and did not answer it at once).
    effect: Option<Effect>,
    origin: String,
}

impl Ticket {
    /// How long the request is held inside the org before it is answered (or dropped).
    fn delay(&self) -> Option<Duration> {
        match self.effect {
            Some(Effect::Delay(d) | Effect::Hang(d)) => Some(d),
            _ => None,
        }
    }
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
    let (flight, in_flight) = if uri.path().starts_with("/services/data/") {
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
        let arrived = (flight.as_ref(), in_flight);
        match admit(&org, &mut state, &method, &uri, &headers, &body, arrived) {
            Admission::Done(resp) => return resp,
            Admission::Go(t) if t.delay().is_none() => {
                return execute(&org, &mut state, t, method, &headers, &body)
            }
            Admission::Go(t) => t,
        }
    };
    if let Some(delay) = ticket.delay() {
        org.clock().sleep(delay).await;
    }
    let mut state = org.lock();
    // Released under the lock, so no request admitted meanwhile counts this one as running.
    if let Some(f) = &flight {
        f.release();
    }
    execute(&org, &mut state, ticket, method, &headers, &body)
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
    if matches!(ticket.effect, Some(Effect::Hang(_))) {
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
    let too_heavy = match (ticket.effect.as_ref(), ticket.entry.object.as_deref()) {
        (Some(Effect::TriggerLimit(above)), Some(object)) => {
            fault_answer::trigger_cpu_limit(*above, body, object)
        }
        _ => None,
    };
    let answer = match (too_heavy, ticket.effect.as_ref()) {
        (Some(rolled_back), _) => rolled_back,
        (None, Some(Effect::LockRecords(every))) => {
            super::record_locks::locked_write(*every, state, &req, route_api).unwrap_or_else(|| {
                // A Bulk job's close: its rows are locked when it is processed.
                if req.method == Method::PATCH {
                    bulk::lock_rows_on_close(state, &req.seg, *every);
                }
                route_api(state, &req)
            })
        }
        (None, _) => route_api(state, &req),
    };
    events::publish_changes(state, &ticket.origin, now);
    let Ticket {
        mut entry, effect, ..
    } = *ticket;
    match effect {
        Some(Effect::Truncate) => {
            entry.records = answer.records;
            entry.outcome = answer.outcome;
            entry.status = answer.status.as_u16();
            record(state, entry);
            let text = match &answer.body {
                Payload::Json(v) => v.to_string(),
                Payload::Csv(s) | Payload::Html(s) => s.clone(),
                Payload::Empty => "{".into(),
            };
            let mut resp = (answer.status, cut_short(&text).to_string()).into_response();
            resp.headers_mut()
                .insert("content-type", HeaderValue::from_static(JSON_CONTENT_TYPE));
            add_limit_info(state, &mut resp);
            resp
        }
        Some(Effect::Lose(mode)) => {
            // The work above is committed; the client never learns it.
            entry.records = answer.records;
            entry.outcome = answer.outcome;
            match mode {
                LostMode::ServerError => {
                    entry.status = 500;
                    record(state, entry);
                    lost_server_error()
                }
                LostMode::ConnectionReset => {
                    entry.status = answer.status.as_u16();
                    record(state, entry);
                    broken_response(answer.status)
                }
            }
        }
        _ => finish(state, entry, answer),
    }
}

fn admit(
    org: &MockOrg,
    state: &mut State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    (flight, in_flight): (Option<&InFlightGuard<'_>>, usize),
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
        body_digest: (!body.is_empty() && !super::journal::holds_credentials(&path))
            .then(|| super::journal::digest(body)),
        record_outcomes: None,
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
    // A collections upsert: its records, to learn what the answer says of each.
    if let [c, s, _, field] = segments.as_slice() {
        if *method == Method::PATCH && c == "composite" && s == "sobjects" {
            entry.record_outcomes = super::journal::upsert_records(body, field);
        }
    }

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
        entry.fault = Some("daily_budget_exhausted".into());
        let refusal = Refusal::daily_limit(org.clock(), now);
        entry.not_before = refusal.not_before;
        return Admission::Done(finish(state, entry, refusal.answer()));
    }
    // Real in-flight accounting: requests that have run for the threshold or longer.
    let threshold = Duration::from_secs(state.org.bundle().limits.long_running_threshold_secs);
    let long_running = state.in_flight.long_running(now, threshold);
    if long_running >= state.org.bundle().limits.concurrent_long_running as usize {
        entry.fault = Some("concurrent_long_running_limit".into());
        let answer = Refusal::concurrent_limit().answer();
        return Admission::Done(finish(state, entry, answer));
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
        effect: None,
        origin: change_origin(&api_version, client.as_deref()),
    };
    if let Some(f) = fault {
        ticket.entry.fault = Some(format!("{}: {}", f.rule, f.response.label()));
        match fault_answer::effect(&f.response, org.clock(), now, &mut state.faults) {
            Effect::Refuse(refusal) => {
                if refusal.ends_session {
                    if let Some(t) = &token {
                        state.tokens.retain(|x| x != t);
                    }
                }
                ticket.entry.not_before = refusal.not_before;
                return Admission::Done(finish(state, ticket.entry, refusal.answer()));
            }
            Effect::Reset => {
                ticket.entry.status = 0;
                record(state, ticket.entry);
                return Admission::Done(broken_response(StatusCode::OK));
            }
            effect => ticket.effect = Some(effect),
        }
    }
    if let (Some(_), Some(f)) = (ticket.delay(), flight) {
        f.hold(now);
    }
    Admission::Go(Box::new(ticket))
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
    // With at most the last call left, say when the daily window reopens, in the client's
    // seconds (a client that cannot see the org's clock could not know).
    if state.budget.used.saturating_add(1) >= state.budget.max {
        let secs = fault_answer::window_wait(&state.clock, state.clock.now());
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(WINDOW_RESET_HEADER, v);
        }
    }
}

/// Wall seconds until the next daily window, with the budget spent (see `docs/engine-protocol.md`).
pub const WINDOW_RESET_HEADER: &str = "x-syncgate-limit-reset";

fn finish(state: &mut State, mut entry: JournalEntry, answer: Answer) -> Response {
    entry.status = answer.status.as_u16();
    entry.records = answer.records;
    entry.outcome = answer.outcome;
    entry.error_code = answer.error_code.clone();
    // The answer reaches the client as it is: its per-record results are what it learns.
    if let (Some(outcomes), Payload::Json(body)) = (entry.record_outcomes.as_mut(), &answer.body) {
        super::journal::read_record_results(outcomes, body);
    }
    if !super::journal::holds_credentials(&entry.path) {
        entry.response_body = match &answer.body {
            Payload::Json(v) => super::journal::kept_body(&v.to_string()),
            Payload::Csv(text) | Payload::Html(text) => super::journal::kept_body(text),
            Payload::Empty => None,
        };
    }
    let is_api = entry.path.starts_with("/services/data/v");
    record(state, entry);
    let mut resp = answer.into_response();
    if is_api {
        add_limit_info(state, &mut resp);
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

fn object_of(segments: &[String]) -> Option<String> {
    match segments {
        [s, o, ..] if s == "sobjects" => Some(o.clone()),
        [c, s, o, ..] if c == "composite" && s == "sobjects" => Some(o.clone()),
        _ => None,
    }
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

    #[tokio::test]
    async fn a_held_request_whose_client_hangs_up_leaves_the_org() {
        use crate::contract::Registry;
        use crate::mock::{spawn, MockConfig};
        use crate::sim::scenario::{Dur, FaultResponse, FaultRule};
        use crate::sim::{Clock, Scenario, Seed};

        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts");
        let registry = Registry::open(&root).unwrap_or_else(|e| panic!("{e}"));
        let tenants = registry
            .select(&["northwind-outfitters".into()], &["sandbox".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let bundle = registry.load(&tenants[0]).unwrap_or_else(|e| panic!("{e}"));
        let mut scenario =
            Scenario::from_yaml(std::path::Path::new("hang-up.yaml"), "purpose: p\n")
                .unwrap_or_else(|e| panic!("{e}"));
        let minute = Dur(Duration::from_secs(60));
        scenario.faults = vec![FaultRule {
            name: "slow".into(),
            matcher: Default::default(),
            calls: None,
            probability: 1.0,
            lasting: None,
            respond: FaultResponse::Latency {
                min: minute,
                max: minute,
            },
            optional: false,
        }];
        // The wall clock: the request really waits, so the client can give up meanwhile.
        let org = MockOrg::new(MockConfig {
            bundle,
            scenario: Some(scenario),
            seed: Seed(1),
            clock: Clock::system(),
            clients: vec![],
        });
        let token = org.issue_token();
        let running = spawn(org.clone(), 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let client = crate::http::client_builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!("{}/services/data/v62.0/limits", running.base_url());
        let sent = client.get(url).bearer_auth(token).send().await;
        assert!(sent.is_err(), "the client gave up waiting");
        // The server drops the request once it sees the connection closed: wait for that
        // (not for a length of time), then the org holds nothing.
        let counted = || {
            org.shared
                .in_flight
                .now
                .load(std::sync::atomic::Ordering::SeqCst)
        };
        for _ in 0..200 {
            if counted() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counted(), 0, "the server never dropped the request");
        assert!(
            org.lock().in_flight.held() == 0,
            "a request the server dropped still counts as running in the org"
        );
        running.stop().await;
    }
}
