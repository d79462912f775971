//! Partner mode: the bundle's Pact interactions served as a stateful stub (the active
//! provider states choose which interactions answer), behind the same scenario faults, plus
//! webhooks pushed to a URL, HMAC-SHA256 signed and timestamped, with duplicates and
//! reordering drawn from the seed.
//!
//! Admin (under `/__syncgate/`): `POST provider-states` (`{"states": [...]}`, or Pact's
//! state-change body `{"state", "action": "setup"|"teardown"}`), `GET journal`,
//! `POST webhooks` (`{"url", "secret", "events": [...]}`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;

use super::answer::{broken_response, cut_short, lost_server_error};
use super::fault_answer::{self, Effect};
use super::faults::FaultLayer;
use super::form::form_pairs;
use crate::contract::Bundle;
use crate::sim::scenario::{EventFaults, LostMode};
use crate::sim::{Clock, Rng, Scenario, Seed};

/// One request/response pair from a Pact file.
#[derive(Clone, Debug)]
struct Interaction {
    description: String,
    states: Vec<String>,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
    status: u16,
    headers: Vec<(String, String)>,
    response_body: Option<Value>,
}

fn text_or_json(body: &Value) -> Option<Value> {
    // Pact V4 bodies: {"content": …, "contentType", "encoded"}.
    let content = body.get("content")?;
    match content {
        Value::String(s) => Some(serde_json::from_str(s).unwrap_or_else(|_| content.clone())),
        other => Some(other.clone()),
    }
}

fn interactions(bundle: &Bundle) -> Vec<Interaction> {
    let mut out = Vec::new();
    for pact in bundle.pacts.values() {
        for i in pact["interactions"].as_array().into_iter().flatten() {
            let req = &i["request"];
            let resp = &i["response"];
            let query = match req.get("query") {
                Some(Value::Object(m)) => m
                    .iter()
                    .flat_map(|(k, v)| {
                        let vals: Vec<String> = match v {
                            Value::Array(a) => a
                                .iter()
                                .map(|x| x.as_str().unwrap_or_default().to_string())
                                .collect(),
                            Value::String(s) => vec![s.clone()],
                            _ => vec![],
                        };
                        vals.into_iter().map(move |x| (k.clone(), x))
                    })
                    .collect(),
                Some(Value::String(s)) => form_pairs(s),
                _ => vec![],
            };
            let headers = resp["headers"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::Array(a) => a
                                    .iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            (k.clone(), v)
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Interaction {
                description: i["description"].as_str().unwrap_or_default().to_string(),
                states: i["providerStates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["name"].as_str().map(str::to_string))
                    .collect(),
                method: req["method"].as_str().unwrap_or("GET").to_ascii_uppercase(),
                path: req["path"].as_str().unwrap_or("/").to_string(),
                query,
                body: req.get("body").and_then(text_or_json),
                status: resp["status"].as_u64().unwrap_or(200) as u16,
                headers,
                response_body: resp.get("body").and_then(text_or_json),
            });
        }
    }
    out
}

struct PartnerState {
    interactions: Vec<Interaction>,
    active: Vec<String>,
    faults: FaultLayer,
    journal: Vec<Value>,
    webhook_rng: Rng,
    event_faults: EventFaults,
}

/// A partner's stub: the Pact interactions of one bundle, served statefully.
#[derive(Clone)]
pub struct PartnerMock {
    state: Arc<Mutex<PartnerState>>,
    clock: Clock,
    start: crate::sim::Timestamp,
}

impl PartnerMock {
    pub fn new(bundle: &Bundle, scenario: Option<&Scenario>, seed: Seed, clock: Clock) -> Self {
        let start = scenario.map(|s| s.start).unwrap_or_else(|| clock.now());
        PartnerMock {
            state: Arc::new(Mutex::new(PartnerState {
                interactions: interactions(bundle),
                active: Vec::new(),
                faults: FaultLayer::new(
                    scenario.map(|s| s.faults.clone()).unwrap_or_default(),
                    seed.stream("partner.faults"),
                ),
                journal: Vec::new(),
                webhook_rng: seed.stream("partner.webhooks"),
                event_faults: scenario.map(|s| s.events.clone()).unwrap_or_default(),
            })),
            clock,
            start,
        }
    }

    fn lock(&self) -> MutexGuard<'_, PartnerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes exactly these provider states active.
    pub fn set_states(&self, states: Vec<String>) {
        self.lock().active = states;
    }

    /// Requests answered so far, one JSON object each.
    pub fn journal(&self) -> Vec<Value> {
        self.lock().journal.clone()
    }
}

/// The interaction that answers a request: all its provider states active, same method
/// and path, its query a subset of the request's; among those, one whose body equals the
/// request's wins, then the one with the most provider states.
fn choose<'a>(
    list: &'a [Interaction],
    active: &[String],
    method: &str,
    path: &str,
    query: &[(String, String)],
    body: Option<&Value>,
) -> Option<&'a Interaction> {
    let mut fits: Vec<&Interaction> = list
        .iter()
        .filter(|i| i.states.iter().all(|s| active.contains(s)))
        .filter(|i| {
            i.method == method && i.path.trim_end_matches('/') == path.trim_end_matches('/')
        })
        .filter(|i| i.query.iter().all(|q| query.contains(q)))
        .collect();
    fits.sort_by_key(|i| {
        let same_body = i.body.is_some() && i.body.as_ref() == body;
        (
            std::cmp::Reverse(same_body),
            std::cmp::Reverse(i.states.len()),
        )
    });
    fits.first().copied()
}

async fn dispatch(
    axum::extract::State(mock): axum::extract::State<PartnerMock>,
    method: Method,
    uri: Uri,
    _headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if let Some(admin) = path.strip_prefix(super::admin::PREFIX) {
        return admin_call(&mock, &method, admin, &body).await;
    }
    let query = uri.query().map(form_pairs).unwrap_or_default();
    let now = mock.clock.now();
    let body_json: Option<Value> = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        )
    };
    let (fault, effect) = {
        let mut s = mock.lock();
        let fault = s
            .faults
            .decide(method.as_str(), &path, None, now.since(mock.start));
        let effect = fault
            .as_ref()
            .map(|f| fault_answer::effect(&f.response, &mock.clock, now, &mut s.faults));
        (fault, effect)
    };
    if let Some(Effect::Delay(d) | Effect::Hang(d)) = effect {
        mock.clock.sleep(d).await;
    }
    let mut s = mock.lock();
    let mut entry = json!({"at": now.to_iso(), "method": method.as_str(), "path": uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")});
    if let Some(f) = &fault {
        entry["fault"] = json!(format!("{}: {}", f.rule, f.response.label()));
    }
    match &effect {
        Some(Effect::Refuse(refusal)) => {
            entry["status"] = json!(refusal.status.as_u16());
            s.journal.push(entry);
            return refusal.answer().into_response();
        }
        // As the org: the connection drops before the work, and the journal says 0.
        Some(Effect::Reset | Effect::Hang(_)) => {
            entry["status"] = json!(0);
            s.journal.push(entry);
            return broken_response(StatusCode::OK);
        }
        _ => {}
    }
    let chosen = choose(
        &s.interactions,
        &s.active,
        method.as_str(),
        &path,
        &query,
        body_json.as_ref(),
    )
    .cloned();
    let Some(i) = chosen else {
        entry["status"] = json!(500);
        s.journal.push(entry);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "no interaction matches this request in the active provider states", "activeStates": s.active, "method": method.as_str(), "path": path})),
        )
            .into_response();
    };
    // A server error after the work is what the client (and so the journal) sees.
    let lost_to_error = matches!(effect, Some(Effect::Lose(LostMode::ServerError)));
    entry["status"] = json!(if lost_to_error { 500 } else { i.status });
    entry["interaction"] = json!(i.description);
    s.journal.push(entry);
    let status = StatusCode::from_u16(i.status).unwrap_or(StatusCode::OK);
    let text = match &i.response_body {
        None => String::new(),
        Some(Value::String(t)) => t.clone(),
        Some(v) => v.to_string(),
    };
    let text = match effect {
        Some(Effect::Truncate) => cut_short(&text).to_string(),
        // The answer is lost after the interaction was chosen (the stub's work).
        Some(Effect::Lose(LostMode::ServerError)) => return lost_server_error(),
        Some(Effect::Lose(LostMode::ConnectionReset)) => return broken_response(status),
        _ => text,
    };
    let mut resp = (status, text).into_response();
    for (k, v) in &i.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

async fn admin_call(mock: &PartnerMock, method: &Method, path: &str, body: &[u8]) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match (method, path.trim_end_matches('/')) {
        (&Method::POST, "/provider-states") => {
            if let Some(list) = body["states"].as_array() {
                mock.set_states(
                    list.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect(),
                );
            } else if let Some(state) = body["state"].as_str() {
                let mut s = mock.lock();
                s.active.retain(|x| x != state);
                if body["action"].as_str() != Some("teardown") {
                    s.active.push(state.to_string());
                }
            }
            let active = mock.lock().active.clone();
            axum::Json(json!({"active": active})).into_response()
        }
        (&Method::GET, "/journal") => axum::Json(Value::Array(mock.journal())).into_response(),
        (&Method::POST, "/webhooks") => {
            let (Some(url), Some(secret), Some(events)) = (
                body["url"].as_str(),
                body["secret"].as_str(),
                body["events"].as_array(),
            ) else {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "give url, secret and events"})),
                )
                    .into_response();
            };
            let deliveries = mock.push_webhooks(url, secret, events.clone()).await;
            axum::Json(json!({"deliveries": deliveries})).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "unknown admin resource"})),
        )
            .into_response(),
    }
}

/// HMAC-SHA256 (RFC 2104), by the `hmac` crate.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|e| unreachable!("HMAC takes any key length: {e}"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The `X-Syncgate-Signature` of a webhook body sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mac = hmac_sha256(secret.as_bytes(), format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac))
}

impl PartnerMock {
    /// Delivery order after the scenario's event faults: each event may be sent twice or
    /// swapped with the one before it, drawn from the seed.
    fn plan(&self, events: Vec<Value>) -> Vec<Value> {
        let mut s = self.lock();
        let faults = s.event_faults.clone();
        let mut out: Vec<Value> = Vec::new();
        for e in events {
            let twice = faults.duplicate > 0.0 && s.webhook_rng.chance(faults.duplicate);
            out.push(e.clone());
            if twice {
                out.push(e);
            }
            if faults.out_of_order > 0.0
                && out.len() >= 2
                && s.webhook_rng.chance(faults.out_of_order)
            {
                let n = out.len();
                out.swap(n - 1, n - 2);
            }
        }
        out
    }

    /// Posts `events` to `url`, signed; returns each delivery's status (0: not delivered).
    pub async fn push_webhooks(&self, url: &str, secret: &str, events: Vec<Value>) -> Vec<Value> {
        let client = crate::http::client();
        let mut results = Vec::new();
        for (seq, event) in self.plan(events).into_iter().enumerate() {
            let body = event.to_string();
            let ts = self.clock.now().as_millis().div_euclid(1000);
            let signature = sign(secret, ts, &body);
            let status = client
                .post(url)
                .header("content-type", "application/json")
                .header("x-syncgate-timestamp", ts.to_string())
                .header("x-syncgate-signature", &signature)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            results.push(json!({"seq": seq + 1, "status": status, "signature": signature}));
        }
        results
    }
}

/// Serves the partner stub on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    mock: PartnerMock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().fallback(dispatch).with_state(mock);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Starts the partner stub on `127.0.0.1:port` in the background; returns its address and
/// a sender that stops it.
pub async fn spawn(
    mock: PartnerMock,
    port: u16,
) -> std::io::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, mock, async {
        let _ = rx.await;
    }));
    Ok((addr, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signature_binds_time_and_body() {
        let a = sign("s3cret", 1_767_600_000, "{\"a\":1}");
        assert!(a.starts_with("t=1767600000,v1="));
        assert_ne!(a, sign("s3cret", 1_767_600_001, "{\"a\":1}"));
        assert_ne!(a, sign("s3cret", 1_767_600_000, "{\"a\":2}"));
        assert_ne!(a, sign("other", 1_767_600_000, "{\"a\":1}"));
    }

    fn interaction(desc: &str, states: &[&str], body: Option<Value>) -> Interaction {
        Interaction {
            description: desc.into(),
            states: states.iter().map(|s| s.to_string()).collect(),
            method: "PATCH".into(),
            path: "/x".into(),
            query: vec![],
            body,
            status: 200,
            headers: vec![],
            response_body: None,
        }
    }

    #[test]
    fn provider_states_pick_the_interaction() {
        let list = vec![
            interaction("plain", &[], None),
            interaction("limited", &["rate limiting"], None),
            interaction("exact body", &[], Some(json!({"a": 1}))),
        ];
        let pick = |active: &[&str], body: Option<Value>| {
            let active: Vec<String> = active.iter().map(|s| s.to_string()).collect();
            choose(&list, &active, "PATCH", "/x", &[], body.as_ref()).map(|i| i.description.clone())
        };
        assert_eq!(pick(&[], None).as_deref(), Some("plain"));
        assert_eq!(pick(&["rate limiting"], None).as_deref(), Some("limited"));
        assert_eq!(
            pick(&[], Some(json!({"a": 1}))).as_deref(),
            Some("exact body")
        );
        assert!(choose(&list, &[], "GET", "/x", &[], None).is_none());
    }
}
