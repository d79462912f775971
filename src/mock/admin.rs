//! The admin API under the reserved prefix `/__syncgate/`: the journal (no `Authorization`
//! is ever recorded), an org state dump, reset, loading a scenario, moving the clock, and
//! the change-event subscription, and Pact provider states (`POST provider-states`, see
//! [`super::states`]). Admin calls are not journaled and cost no API budget.

use std::path::Path;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::form::form_pairs;
use super::states::{self, StateChange};
use super::{events, journal, MockOrg};
use crate::sim::time::parse_duration;
use crate::sim::Scenario;

/// Every admin path starts with this.
pub const PREFIX: &str = "/__syncgate";

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

pub(super) async fn handle(
    org: &MockOrg,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response {
    let path = path.trim_end_matches('/');
    match (method, path) {
        (&Method::GET, "/journal") => {
            let text = journal::to_json_lines(&org.journal());
            let mut resp = text.into_response();
            resp.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/x-ndjson"),
            );
            resp
        }
        (&Method::GET, "/state") => axum::Json(dump(org)).into_response(),
        (&Method::POST, "/reset") => {
            org.reset();
            axum::Json(json!({"reset": true, "clock": org.clock().now().to_iso()})).into_response()
        }
        (&Method::POST | &Method::PUT, "/scenario") => {
            let text = String::from_utf8_lossy(body);
            match Scenario::from_yaml(Path::new("admin-scenario.yaml"), &text) {
                Ok(s) => {
                    let faults = s.faults.len();
                    org.load_scenario(s);
                    axum::Json(json!({"loaded": true, "faults": faults})).into_response()
                }
                Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
            }
        }
        (&Method::POST, "/clock") => {
            let params = query.map(form_pairs).unwrap_or_default();
            let by = params
                .iter()
                .find(|(k, _)| k == "advance")
                .map(|(_, v)| v.clone())
                .or_else(|| {
                    serde_json::from_slice::<Value>(body)
                        .ok()
                        .and_then(|b| b.get("advance").and_then(Value::as_str).map(str::to_string))
                });
            let Some(d) = by.as_deref().and_then(parse_duration) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "give `advance` as a duration, e.g. ?advance=90s or {\"advance\": \"2h\"}",
                );
            };
            org.clock().advance(d);
            let now = org.clock().now();
            org.lock().tick(now);
            axum::Json(json!({"clock": now.to_iso()})).into_response()
        }
        (&Method::GET, "/clock") => {
            axum::Json(json!({"clock": org.clock().now().to_iso()})).into_response()
        }
        (&Method::GET, "/events") => events::subscribe(org, query).await,
        (&Method::POST, "/provider-states") => {
            let params = query.map(form_pairs).unwrap_or_default();
            let change = match StateChange::parse(&params, body) {
                Ok(c) => c,
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            };
            if !change.setup {
                states::teardown(org);
                return axum::Json(json!({})).into_response();
            }
            match states::setup(org, &change.state, &change.params) {
                Ok(()) => axum::Json(json!({})).into_response(),
                Err(e) => error(StatusCode::BAD_REQUEST, e),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "unknown admin resource; see docs/mock.md",
        ),
    }
}

fn dump(org: &MockOrg) -> Value {
    let state = org.lock();
    let v = state.org.bundle().api_version.clone();
    let mut objects = serde_json::Map::new();
    for (name, spec) in &state.org.bundle().objects {
        let records: Vec<Value> = state
            .org
            .all_records(name)
            .map(|r| r.to_json_with(name, &v, Some(spec)))
            .collect();
        objects.insert(name.clone(), Value::Array(records));
    }
    json!({
        "clock": org.clock().now().to_iso(),
        "apiUsage": {"used": state.budget.used, "max": state.budget.max},
        "requests": state.journal.total(),
        "journal": {"kept": state.journal.total() - state.journal.dropped(), "dropped": state.journal.dropped()},
        "objects": objects,
        "manualEdits": state.edits.iter().map(|e| json!({"name": e.edit.name, "done": e.done})).collect::<Vec<_>>(),
        "events": state.events.len(),
        "eventLog": {
            "published": state.events.totals().0,
            "kept": state.events.len(),
            "expired": state.events.totals().1,
            "dropped": state.events.totals().2,
        },
    })
}
