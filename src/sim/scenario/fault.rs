//! Fault rules: which requests a fault matches (method, path, sObject, time window, calls)
//! and how the org answers them, as scenarios write them in YAML.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::Dur;
use crate::sim::time::format_duration;

/// One fault: which requests it matches and how the org answers them.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub name: String,
    #[serde(default, rename = "match")]
    pub matcher: RequestMatch,
    /// Which of the matching calls the fault applies to (all when absent).
    #[serde(default)]
    pub calls: Option<CallRange>,
    /// Chance that a matching call in range gets the fault, drawn from the seed.
    #[serde(default = "one")]
    pub probability: f64,
    /// Once the rule first fires, it answers every matching request with its fault for this
    /// long (org time), then never again: an outage that lasts a length of time, not a
    /// number of calls (an engine that retries without waiting spends its attempts inside
    /// it). `calls` and `probability` then only choose when it starts.
    #[serde(default)]
    pub lasting: Option<Dur>,
    pub respond: FaultResponse,
    /// The rule may never fire without failing the scenario. By default a rule that injected
    /// no fault fails its scenario (`faults-fired`): the scenario did not test what it says.
    #[serde(default)]
    pub optional: bool,
}

fn one() -> f64 {
    1.0
}

/// Matches a request by method, path (relative to `/services/data/vNN.N`), sObject and
/// time window (since the scenario start).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMatch {
    pub method: Option<String>,
    /// `*` matches one path segment, `**` the rest of the path.
    pub path: Option<String>,
    pub object: Option<String>,
    /// Only requests at or after this long since the start.
    #[serde(default)]
    pub after: Option<Dur>,
    /// Only requests before this long since the start.
    #[serde(default)]
    pub before: Option<Dur>,
}

impl RequestMatch {
    pub fn matches(&self, method: &str, path: &str, object: Option<&str>) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.object.as_deref().is_none_or(|o| object == Some(o))
            && self.path.as_deref().is_none_or(|p| glob_match(p, path))
    }

    /// Whether a request `elapsed` after the scenario start is inside the time window.
    pub fn in_window(&self, elapsed: Duration) -> bool {
        self.after.is_none_or(|a| elapsed >= a.0) && self.before.is_none_or(|b| elapsed < b.0)
    }
}

fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let segs: Vec<&str> = path
        .split('?')
        .next()
        .unwrap_or("")
        .trim_matches('/')
        .split('/')
        .collect();
    let mut i = 0;
    for (pi, p) in pat.iter().enumerate() {
        if *p == "**" {
            return pi == pat.len() - 1 || i < segs.len();
        }
        match segs.get(i) {
            Some(s) if *p == "*" || p.eq_ignore_ascii_case(s) => i += 1,
            _ => return false,
        }
    }
    i == segs.len()
}

/// The 1-based range of matching calls a fault applies to: `first` and `times` in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRange {
    #[serde(default = "first_call")]
    pub first: u64,
    pub times: Option<u64>,
}

fn first_call() -> u64 {
    1
}

impl CallRange {
    pub fn contains(&self, n: u64) -> bool {
        n >= self.first && self.times.is_none_or(|t| n < self.first + t)
    }
}

/// How the org answers a faulted request. Written in YAML as a name (`server_unavailable`)
/// or a one-key map (`rate_limited: { retry_after: 1h }`).
#[derive(Clone, Debug, PartialEq)]
pub enum FaultResponse {
    /// `429` with `Retry-After` (seconds, or an HTTP-date when `http_date` is set).
    RateLimited { retry_after: Dur, http_date: bool },
    /// `503 SERVER_UNAVAILABLE`.
    ServerUnavailable,
    /// `400 UNABLE_TO_LOCK_ROW`.
    UnableToLockRow,
    /// `403 REQUEST_LIMIT_EXCEEDED` regardless of the budget (the budget itself is always
    /// enforced; lower `limits.daily_api_requests` to exhaust it for real).
    RequestLimitExceeded,
    /// The write is committed, then the answer is lost.
    ResponseLost { mode: LostMode },
    /// The answer comes `delay` later (on the clock); `delay` is fixed or drawn uniformly
    /// between `min` and `max` from the seed.
    Latency { min: Dur, max: Dur },
    /// No answer: the org holds the request for `after`, then closes the connection
    /// without doing the work.
    Timeout { after: Dur },
    /// The connection is reset before the work is done.
    ConnectionReset,
    /// The work is done and the answer's JSON body is cut short.
    MalformedBody,
    /// `401 INVALID_SESSION_ID`; the token used is revoked.
    SessionExpired,
    /// `403 REQUEST_LIMIT_EXCEEDED` "ConcurrentPerOrgLongTxn Limit exceeded." (the real
    /// in-flight accounting also answers it when long-running requests pile up).
    ConcurrentLimit,
    /// An org-side trigger whose cost grows with the batch: a collections write of more
    /// than `above` records runs past the Apex CPU time limit, so the whole transaction
    /// rolls back and every record answers `CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY`
    /// (`System.LimitException: Apex CPU time limit exceeded`); smaller writes succeed.
    TriggerCpuLimit { above: usize },
    /// `502 Bad Gateway` from Salesforce's edge, with an HTML page for a body (not JSON);
    /// the work is not done.
    BadGateway,
    /// `504 Gateway Timeout` from Salesforce's edge, with an empty body; the work is not done.
    GatewayTimeout,
    /// A collections write answers `200` with every `every`-th record (the 1st, the
    /// `every+1`-th, …) failed `UNABLE_TO_LOCK_ROW`, as when other jobs hold those rows;
    /// the other records are written.
    RecordsLocked { every: usize },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencySpec {
    #[serde(default)]
    fixed: Option<Dur>,
    #[serde(default)]
    min: Option<Dur>,
    #[serde(default)]
    max: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutSpec {
    #[serde(default = "two_minutes")]
    after: Dur,
}

fn two_minutes() -> Dur {
    Dur(Duration::from_secs(120))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitedSpec {
    retry_after: Dur,
    #[serde(default)]
    http_date: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerCpuLimitSpec {
    above: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsLockedSpec {
    #[serde(default = "every_other")]
    every: usize,
}

fn every_other() -> usize {
    2
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResponseLostSpec {
    #[serde(default)]
    mode: LostMode,
}

const FAULT_KINDS: &str = "rate_limited, server_unavailable, unable_to_lock_row, request_limit_exceeded, response_lost, latency, timeout, connection_reset, malformed_body, session_expired, concurrent_limit, trigger_cpu_limit, bad_gateway, gateway_timeout, records_locked";

impl<'de> Deserialize<'de> for FaultResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_yaml::Value::deserialize(d)?;
        let (kind, args) = match value {
            serde_yaml::Value::String(s) => (s, serde_yaml::Value::Null),
            serde_yaml::Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.into_iter().next().expect("one entry");
                match k {
                    serde_yaml::Value::String(k) => (k, v),
                    _ => {
                        return Err(D::Error::custom(format!(
                            "a fault kind must be one of: {FAULT_KINDS}"
                        )))
                    }
                }
            }
            _ => {
                return Err(D::Error::custom(format!(
                    "`respond` must be a fault kind or a one-key map (one of: {FAULT_KINDS})"
                )))
            }
        };
        let args_of = |args: serde_yaml::Value| {
            if args.is_null() {
                serde_yaml::Value::Mapping(Default::default())
            } else {
                args
            }
        };
        let unit = |r: FaultResponse, args: &serde_yaml::Value| {
            if args.is_null() || args.as_mapping().is_some_and(|m| m.is_empty()) {
                Ok(r)
            } else {
                Err(D::Error::custom(format!("`{kind}` takes no settings")))
            }
        };
        match kind.as_str() {
            "rate_limited" => {
                let spec: RateLimitedSpec = serde_yaml::from_value(args_of(args))
                    .map_err(|e| D::Error::custom(format!("rate_limited: {e}")))?;
                Ok(FaultResponse::RateLimited {
                    retry_after: spec.retry_after,
                    http_date: spec.http_date,
                })
            }
            "trigger_cpu_limit" => {
                let spec: TriggerCpuLimitSpec = serde_yaml::from_value(args_of(args))
                    .map_err(|e| D::Error::custom(format!("trigger_cpu_limit: {e}")))?;
                if spec.above == 0 {
                    return Err(D::Error::custom(
                        "trigger_cpu_limit: `above` must be at least 1 (records per write the trigger takes)",
                    ));
                }
                Ok(FaultResponse::TriggerCpuLimit { above: spec.above })
            }
            "records_locked" => {
                let spec: RecordsLockedSpec = serde_yaml::from_value(args_of(args))
                    .map_err(|e| D::Error::custom(format!("records_locked: {e}")))?;
                if spec.every == 0 {
                    return Err(D::Error::custom(
                        "records_locked: `every` must be at least 1 (1: every record is locked)",
                    ));
                }
                Ok(FaultResponse::RecordsLocked { every: spec.every })
            }
            "bad_gateway" => unit(FaultResponse::BadGateway, &args),
            "gateway_timeout" => unit(FaultResponse::GatewayTimeout, &args),
            "response_lost" => {
                let spec: ResponseLostSpec = serde_yaml::from_value(args_of(args))
                    .map_err(|e| D::Error::custom(format!("response_lost: {e}")))?;
                Ok(FaultResponse::ResponseLost { mode: spec.mode })
            }
            "latency" => {
                let spec: LatencySpec = serde_yaml::from_value(args_of(args))
                    .map_err(|e| D::Error::custom(format!("latency: {e}")))?;
                match (spec.fixed, spec.min, spec.max) {
                    (Some(f), None, None) => Ok(FaultResponse::Latency { min: f, max: f }),
                    (None, Some(min), Some(max)) if min.0 <= max.0 => {
                        Ok(FaultResponse::Latency { min, max })
                    }
                    _ => Err(D::Error::custom(
                        "latency: give `fixed`, or `min` and `max` with min ≤ max",
                    )),
                }
            }
            "timeout" => {
                let spec: TimeoutSpec = serde_yaml::from_value(args_of(args))
                    .map_err(|e| D::Error::custom(format!("timeout: {e}")))?;
                Ok(FaultResponse::Timeout { after: spec.after })
            }
            "connection_reset" => unit(FaultResponse::ConnectionReset, &args),
            "malformed_body" => unit(FaultResponse::MalformedBody, &args),
            "session_expired" => unit(FaultResponse::SessionExpired, &args),
            "concurrent_limit" => unit(FaultResponse::ConcurrentLimit, &args),
            "server_unavailable" => unit(FaultResponse::ServerUnavailable, &args),
            "unable_to_lock_row" => unit(FaultResponse::UnableToLockRow, &args),
            "request_limit_exceeded" => unit(FaultResponse::RequestLimitExceeded, &args),
            other => Err(D::Error::custom(format!(
                "unknown fault kind `{other}` (known: {FAULT_KINDS})"
            ))),
        }
    }
}

impl FaultResponse {
    /// Short label for journals and timelines.
    pub fn label(&self) -> String {
        match self {
            FaultResponse::RateLimited {
                retry_after,
                http_date,
            } => format!(
                "rate_limited(retry_after={}{})",
                format_duration(retry_after.0),
                if *http_date { ", http-date" } else { "" }
            ),
            FaultResponse::ServerUnavailable => "server_unavailable".into(),
            FaultResponse::UnableToLockRow => "unable_to_lock_row".into(),
            FaultResponse::RequestLimitExceeded => "request_limit_exceeded".into(),
            FaultResponse::ResponseLost { mode } => format!("response_lost({mode})"),
            FaultResponse::Latency { min, max } if min == max => {
                format!("latency({})", format_duration(min.0))
            }
            FaultResponse::Latency { min, max } => format!(
                "latency({}..{})",
                format_duration(min.0),
                format_duration(max.0)
            ),
            FaultResponse::Timeout { after } => format!("timeout({})", format_duration(after.0)),
            FaultResponse::ConnectionReset => "connection_reset".into(),
            FaultResponse::MalformedBody => "malformed_body".into(),
            FaultResponse::SessionExpired => "session_expired".into(),
            FaultResponse::ConcurrentLimit => "concurrent_limit".into(),
            FaultResponse::TriggerCpuLimit { above } => {
                format!("trigger_cpu_limit(above={above})")
            }
            FaultResponse::BadGateway => "bad_gateway".into(),
            FaultResponse::GatewayTimeout => "gateway_timeout".into(),
            FaultResponse::RecordsLocked { every } => format!("records_locked(every={every})"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LostMode {
    /// Answer `500` with an HTML error page instead of the result.
    #[default]
    ServerError,
    /// Send the status line, then reset the connection before the body.
    ConnectionReset,
}

impl fmt::Display for LostMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LostMode::ServerError => "server_error",
            LostMode::ConnectionReset => "connection_reset",
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Scenario;

    #[test]
    fn globs() {
        assert!(glob_match(
            "/composite/sobjects/*/*",
            "/composite/sobjects/Account/Ext__c"
        ));
        assert!(glob_match(
            "/composite/**",
            "/composite/sobjects/Account/Ext__c"
        ));
        assert!(!glob_match(
            "/composite/sobjects/*",
            "/composite/sobjects/Account/Ext__c"
        ));
        assert!(glob_match("/limits", "/limits?x=1"));
    }

    #[test]
    fn call_ranges() {
        let r = CallRange {
            first: 2,
            times: Some(3),
        };
        assert!(!r.contains(1));
        assert!(r.contains(2) && r.contains(4));
        assert!(!r.contains(5));
        assert!(CallRange {
            first: 3,
            times: None
        }
        .contains(1000));
    }

    #[test]
    fn parses_fault_responses() {
        let yaml = "purpose: p\nfaults:\n  - name: a\n    respond: server_unavailable\n  - name: b\n    respond: { rate_limited: { retry_after: 1h } }\n  - name: c\n    respond: { response_lost: { mode: connection_reset } }\n";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, yaml).unwrap();
        let s = Scenario::load(&p).unwrap();
        assert_eq!(s.faults[0].respond, FaultResponse::ServerUnavailable);
        assert_eq!(s.faults[1].respond.label(), "rate_limited(retry_after=1h)");
        assert_eq!(
            s.faults[2].respond,
            FaultResponse::ResponseLost {
                mode: LostMode::ConnectionReset
            }
        );
    }
}
