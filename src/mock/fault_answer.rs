//! What a scenario fault does with one request, stated once for every server that fakes
//! faults: the org mock ([`super::routes`]) and the partner stub ([`super::partner`]). Both
//! answer a fault alike: the status, `errorCode` and message Salesforce sends (so the engine
//! classifies them the same way), `Retry-After` in whole seconds of the client's clock
//! rounded up (a client that waits exactly what it was told is never early), and whether the
//! work is done before the answer is lost or cut short.

use std::time::Duration;

use axum::http::StatusCode;

use super::answer::Answer;
use super::faults::FaultLayer;
use crate::sim::scenario::{FaultResponse, LostMode};
use crate::sim::{Clock, Timestamp};

/// What a fault does with one request.
#[derive(Debug, PartialEq)]
pub(super) enum Effect {
    /// Answered at once with an error; the work is not done.
    Refuse(Refusal),
    /// The connection is reset before the work is done.
    Reset,
    /// Held this long on the org's clock, then answered as usual.
    Delay(Duration),
    /// Held this long on the org's clock, then the connection closes without the work done.
    Hang(Duration),
    /// The work is done, then the answer is lost.
    Lose(LostMode),
    /// The work is done and the answer's body is cut short.
    Truncate,
    /// An org-side trigger that cannot take a collections write of more than this many
    /// records: every record of such a write fails ([`trigger_cpu_limit`]), nothing is
    /// written; a smaller write is done as usual.
    TriggerLimit(usize),
    /// Every this-many-th record of a collections write is locked by another job and
    /// fails `UNABLE_TO_LOCK_ROW` in a `200` answer; the others are written
    /// ([`super::record_locks`]). Any other request is done as usual.
    LockRecords(usize),
}

/// An error answered in place of the work.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The `Retry-After` header, when the answer carries one.
    pub retry_after: Option<String>,
    /// The earliest org time a retry can succeed (the journal keeps it for the judges).
    pub not_before: Option<Timestamp>,
    /// The session used is over: its token stops working.
    pub ends_session: bool,
    /// Who answers: Salesforce itself (its JSON error array) or the edge before it.
    pub from_edge: Option<EdgeBody>,
}

/// The body Salesforce's edge (its load balancers and proxies) sends with a gateway error
/// instead of the API's JSON error array: a client that parses every error body as JSON
/// chokes on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EdgeBody {
    /// An HTML error page (`text/html`).
    Html,
    /// No body at all.
    Empty,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
            retry_after: None,
            not_before: None,
            ends_session: false,
            from_edge: None,
        }
    }

    /// `403 REQUEST_LIMIT_EXCEEDED` "TotalRequests Limit exceeded.": the daily budget is
    /// spent until the next window (the engine waits for it rather than retrying).
    /// `Retry-After` says when the window reopens in the client's seconds (a client on the
    /// wall clock of a scaled org could not know), whether the budget is spent or a
    /// `request_limit_exceeded` rule says so.
    pub fn daily_limit(clock: &Clock, now: Timestamp) -> Self {
        Refusal {
            retry_after: Some(window_wait(clock, now).to_string()),
            not_before: Some(now.next_day_start()),
            ..Refusal::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            )
        }
    }

    /// `403 REQUEST_LIMIT_EXCEEDED` "ConcurrentPerOrgLongTxn Limit exceeded.": too many
    /// long-running requests at once (the engine backs off and retries).
    pub fn concurrent_limit() -> Self {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        )
    }

    /// The answer as Salesforce sends it: an array of one error, and `Retry-After` (or the
    /// edge's page, which names no error code).
    pub fn answer(&self) -> Answer {
        let answer = match self.from_edge {
            None => Answer::error(self.status, self.code, self.message.clone(), &[]),
            Some(EdgeBody::Html) => Answer::html(self.status, edge_page(self.status)),
            Some(EdgeBody::Empty) => Answer::empty(self.status),
        };
        // The journal names the edge's error, though its body carries no code.
        let answer = Answer {
            error_code: Some(self.code.to_string()),
            ..answer
        };
        match &self.retry_after {
            Some(value) => answer.with_header("retry-after", value.clone()),
            None => answer,
        }
    }
}

/// Whole wall seconds, rounded up, until the daily window after `now` opens.
pub(super) fn window_wait(clock: &Clock, now: Timestamp) -> u64 {
    let wall = clock.wall_duration(now.next_day_start().since(now));
    wall.as_millis().div_ceil(1000).max(1) as u64
}

/// What `response` does with a request that arrived at `now` on `clock` (a latency is drawn
/// from `faults`, the stream the fault itself came from).
pub(super) fn effect(
    response: &FaultResponse,
    clock: &Clock,
    now: Timestamp,
    faults: &mut FaultLayer,
) -> Effect {
    match response {
        FaultResponse::RateLimited {
            retry_after,
            http_date,
        } => Effect::Refuse(rate_limited(retry_after.0, *http_date, clock, now)),
        FaultResponse::ServerUnavailable => Effect::Refuse(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVER_UNAVAILABLE",
            "Server is temporarily unavailable; please try again",
        )),
        FaultResponse::UnableToLockRow => Effect::Refuse(Refusal::new(
            StatusCode::BAD_REQUEST,
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access to this record or 1 records",
        )),
        FaultResponse::RequestLimitExceeded => Effect::Refuse(Refusal::daily_limit(clock, now)),
        FaultResponse::ConcurrentLimit => Effect::Refuse(Refusal::concurrent_limit()),
        FaultResponse::SessionExpired => Effect::Refuse(Refusal {
            ends_session: true,
            ..Refusal::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            )
        }),
        FaultResponse::ConnectionReset => Effect::Reset,
        FaultResponse::ResponseLost { mode } => Effect::Lose(*mode),
        FaultResponse::MalformedBody => Effect::Truncate,
        FaultResponse::Latency { min, max } => Effect::Delay(faults.draw(min.0, max.0)),
        FaultResponse::Timeout { after } => Effect::Hang(after.0),
        FaultResponse::TriggerCpuLimit { above } => Effect::TriggerLimit(*above),
        FaultResponse::BadGateway => Effect::Refuse(edge_error(
            StatusCode::BAD_GATEWAY,
            "BAD_GATEWAY",
            EdgeBody::Html,
        )),
        FaultResponse::GatewayTimeout => Effect::Refuse(edge_error(
            StatusCode::GATEWAY_TIMEOUT,
            "GATEWAY_TIMEOUT",
            EdgeBody::Empty,
        )),
        FaultResponse::RecordsLocked { every } => Effect::LockRecords(*every),
    }
}

/// A gateway error from the edge: the request never reached the org, so nothing is done;
/// `code` names it in the journal only (the body carries none).
fn edge_error(status: StatusCode, code: &'static str, body: EdgeBody) -> Refusal {
    Refusal {
        from_edge: Some(body),
        ..Refusal::new(status, code, status.to_string())
    }
}

/// The HTML page the edge answers a gateway error with.
fn edge_page(status: StatusCode) -> String {
    let reason = status.canonical_reason().unwrap_or("Error");
    format!(
        "<html><head><title>{} {reason}</title></head><body><h1>{reason}</h1><p>The server did not answer in time. Please try again.</p></body></html>",
        status.as_u16()
    )
}

/// The answer to a collections write of `records` records whose trigger ran past the Apex
/// CPU time limit: `200`, every record failed with `CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY`
/// and the `LimitException`, as Salesforce reports a transaction its trigger rolled back
/// (`None` when the write is small enough for the trigger, or not a collections write).
pub(super) fn trigger_cpu_limit(above: usize, body: &[u8], object: &str) -> Option<Answer> {
    let parsed: serde_json::Value = serde_json::from_slice(body).ok()?;
    let records = parsed.get("records")?.as_array()?.len();
    if records <= above {
        return None;
    }
    let message = format!(
        "{object}Trigger: execution of BeforeUpdate caused by: System.LimitException: \
         Apex CPU time limit exceeded"
    );
    let failed = serde_json::json!({
        "success": false,
        "errors": [{
            "statusCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
            "message": message,
            "fields": [],
        }],
    });
    let mut answer = Answer::ok(
        StatusCode::OK,
        serde_json::Value::Array(vec![failed; records]),
    );
    answer.records = Some(records);
    answer.outcome = Some((0, records));
    Some(answer)
}

/// `429 TOO_MANY_REQUESTS` with `Retry-After`. The header carries whole seconds of the
/// client's (wall) clock, rounded up; on a scaled clock the org's duration is stated in wall
/// time. An HTTP-date is rounded up to the next whole second the same way.
fn rate_limited(retry_after: Duration, http_date: bool, clock: &Clock, now: Timestamp) -> Refusal {
    let secs = clock
        .wall_duration(retry_after)
        .as_millis()
        .div_ceil(1000)
        .max(1) as u64;
    let (until, value) = if http_date {
        let exact = clock.wall_time_of(now.plus(retry_after)).as_millis();
        let wall = Timestamp::from_millis(
            exact.div_euclid(1000) * 1000 + if exact % 1000 == 0 { 0 } else { 1000 },
        );
        (clock.org_time_of(wall), wall.to_http_date())
    } else {
        let waited = clock.org_duration(Duration::from_secs(secs));
        (now.plus(waited), secs.to_string())
    };
    Refusal {
        retry_after: Some(value),
        not_before: Some(until),
        ..Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            format!("Too many requests; retry after {secs} seconds"),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    use super::*;
    use crate::contract::{Bundle, Registry};
    use crate::mock::partner::{self, PartnerMock};
    use crate::mock::{spawn, MockConfig, MockOrg};
    use crate::sim::scenario::{Dur, FaultRule};
    use crate::sim::{Scenario, Seed};

    /// Every kind of fault. The match fails to compile when a kind is added, until it is
    /// listed here too.
    fn every_kind() -> Vec<FaultResponse> {
        let ms = |n| Dur(Duration::from_millis(n));
        let kinds = vec![
            FaultResponse::RateLimited {
                retry_after: ms(1500),
                http_date: false,
            },
            FaultResponse::RateLimited {
                retry_after: ms(1500),
                http_date: true,
            },
            FaultResponse::ServerUnavailable,
            FaultResponse::UnableToLockRow,
            FaultResponse::RequestLimitExceeded,
            FaultResponse::ResponseLost {
                mode: LostMode::ServerError,
            },
            FaultResponse::ResponseLost {
                mode: LostMode::ConnectionReset,
            },
            FaultResponse::Latency {
                min: ms(2000),
                max: ms(2000),
            },
            FaultResponse::Timeout { after: ms(5000) },
            FaultResponse::ConnectionReset,
            FaultResponse::MalformedBody,
            FaultResponse::SessionExpired,
            FaultResponse::ConcurrentLimit,
            FaultResponse::TriggerCpuLimit { above: 1 },
            FaultResponse::BadGateway,
            FaultResponse::GatewayTimeout,
            FaultResponse::RecordsLocked { every: 2 },
        ];
        for k in &kinds {
            match k {
                FaultResponse::RateLimited { .. }
                | FaultResponse::ServerUnavailable
                | FaultResponse::UnableToLockRow
                | FaultResponse::RequestLimitExceeded
                | FaultResponse::ResponseLost { .. }
                | FaultResponse::Latency { .. }
                | FaultResponse::Timeout { .. }
                | FaultResponse::ConnectionReset
                | FaultResponse::MalformedBody
                | FaultResponse::SessionExpired
                | FaultResponse::ConcurrentLimit
                | FaultResponse::TriggerCpuLimit { .. }
                | FaultResponse::BadGateway
                | FaultResponse::GatewayTimeout
                | FaultResponse::RecordsLocked { .. } => {}
            }
        }
        kinds
    }

    fn bundle() -> Bundle {
        let registry = Registry::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts"))
            .unwrap_or_else(|e| panic!("{e}"));
        let tenants = registry
            .select(&["northwind-outfitters".into()], &["sandbox".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        registry.load(&tenants[0]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A scenario whose one rule answers every request with `kind`.
    fn scenario(kind: &FaultResponse) -> Scenario {
        let mut s = Scenario::from_yaml(Path::new("agree.yaml"), "purpose: p\n")
            .unwrap_or_else(|e| panic!("{e}"));
        s.faults = vec![FaultRule {
            name: "f".into(),
            matcher: Default::default(),
            calls: None,
            probability: 1.0,
            lasting: None,
            respond: kind.clone(),
            optional: false,
        }];
        s
    }

    /// What a client sees of an answer.
    #[derive(Debug, PartialEq)]
    enum Seen {
        /// The connection dropped before a whole answer came.
        Dropped,
        Answered {
            status: u16,
            error_code: Option<String>,
            message: Option<String>,
            retry_after: Option<String>,
            json: bool,
        },
    }

    async fn observe(request: reqwest::RequestBuilder) -> Seen {
        let Ok(resp) = request.send().await else {
            return Seen::Dropped;
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let Ok(body) = resp.bytes().await else {
            return Seen::Dropped;
        };
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let first = |key: &str| {
            json.as_ref()
                .and_then(|j| j.get(0)?.get(key)?.as_str().map(str::to_string))
        };
        Seen::Answered {
            status,
            error_code: first("errorCode"),
            message: first("message"),
            retry_after,
            json: json.is_some(),
        }
    }

    /// Both servers start at the same virtual time, so HTTP-dates agree to the second.
    fn start() -> Timestamp {
        Timestamp::parse("2026-01-05T08:00:00Z").expect("an RFC 3339 time")
    }

    const LIMITS: &str = "/services/data/v62.0/limits";

    /// What the org mock answers `GET /limits` under `kind`.
    async fn org_answer(bundle: &Bundle, kind: &FaultResponse) -> Seen {
        let org = MockOrg::new(MockConfig {
            bundle: bundle.clone(),
            scenario: Some(scenario(kind)),
            seed: Seed(1),
            clock: Clock::virtual_at(start()),
            clients: vec![],
        });
        let token = org.issue_token();
        let running = spawn(org, 0).await.unwrap_or_else(|e| panic!("{e}"));
        let request = crate::http::client()
            .get(format!("{}{LIMITS}", running.base_url()))
            .bearer_auth(token);
        let seen = observe(request).await;
        running.stop().await;
        seen
    }

    /// What the partner stub answers `GET /limits` under `kind`.
    async fn partner_answer(bundle: &Bundle, kind: &FaultResponse) -> Seen {
        let stub = PartnerMock::new(
            bundle,
            Some(&scenario(kind)),
            Seed(1),
            Clock::virtual_at(start()),
        );
        let (addr, stop) = partner::spawn(stub, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let seen = observe(crate::http::client().get(format!("http://{addr}{LIMITS}"))).await;
        let _ = stop.send(());
        seen
    }

    #[tokio::test]
    async fn the_org_and_the_partner_stub_answer_every_fault_alike() {
        let bundle = bundle();
        let mut differ = Vec::new();
        for kind in every_kind() {
            let org = org_answer(&bundle, &kind).await;
            let partner = partner_answer(&bundle, &kind).await;
            if org != partner {
                differ.push(format!(
                    "{}:\n  org:     {org:?}\n  partner: {partner:?}",
                    kind.label()
                ));
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    }

    #[tokio::test]
    async fn retry_after_rounds_up_and_a_lockout_waits_for_the_window() {
        let bundle = bundle();
        let rate_limited = FaultResponse::RateLimited {
            retry_after: Dur(Duration::from_millis(1500)),
            http_date: false,
        };
        let Seen::Answered {
            status,
            error_code,
            retry_after,
            ..
        } = partner_answer(&bundle, &rate_limited).await
        else {
            panic!("the partner stub dropped a rate-limited request");
        };
        assert_eq!(
            (status, error_code.as_deref(), retry_after.as_deref()),
            (429, Some("TOO_MANY_REQUESTS"), Some("2"))
        );
        let Seen::Answered {
            status, message, ..
        } = partner_answer(&bundle, &FaultResponse::RequestLimitExceeded).await
        else {
            panic!("the partner stub dropped a locked-out request");
        };
        assert_eq!(status, 403);
        // The engine waits for the daily window on "TotalRequests", and retries otherwise.
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("TotalRequests")),
            "{message:?}"
        );
        let Seen::Answered { status, .. } =
            partner_answer(&bundle, &FaultResponse::UnableToLockRow).await
        else {
            panic!("the partner stub dropped a row-lock answer");
        };
        assert_eq!(status, 400);
    }

    /// A gateway error comes from the edge: `502` with an HTML page, `504` with no body;
    /// neither is JSON nor names a Salesforce error code (on the org and the stub alike).
    #[tokio::test]
    async fn gateway_errors_come_from_the_edge_without_json() {
        let bundle = bundle();
        for (kind, want) in [
            (FaultResponse::BadGateway, 502),
            (FaultResponse::GatewayTimeout, 504),
        ] {
            let Seen::Answered {
                status,
                error_code,
                json,
                ..
            } = org_answer(&bundle, &kind).await
            else {
                panic!("the org dropped a {}", kind.label());
            };
            assert_eq!((status, error_code, json), (want, None, false));
        }
    }
}
