//! Scenarios: the faults a mock org injects and the conditions a run starts from.
//!
//! A scenario is a YAML file under `harness/scenarios/`; it is read and checked once, here,
//! and the rest of the crate only sees a checked [`Scenario`]. The format is documented in
//! `harness/README.md`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::time::{format_duration, parse_duration, Timestamp};

/// The default virtual start of a run: a Monday morning, so the daily window has 16 hours left.
pub const DEFAULT_START: &str = "2026-01-05T08:00:00Z";

/// A checked scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// File stem, e.g. `rate-limit-storm`.
    pub name: String,
    pub path: PathBuf,
    /// One line saying what the scenario proves.
    pub purpose: String,
    /// Fixture set under `harness/fixtures/`.
    pub fixtures: String,
    pub start: Timestamp,
    pub limits: LimitOverrides,
    pub engine: EngineOverrides,
    pub faults: Vec<FaultRule>,
    /// Fields the partner changed in the org without telling anyone (`Object.Field` → spec):
    /// the mock org is built with them, the engine keeps its contract.
    pub org_fields: std::collections::BTreeMap<String, crate::contract::FieldSpec>,
    /// Edits a simulated sales rep makes in the org between the engine's calls.
    pub manual_edits: Vec<ManualEdit>,
    /// How the change-event stream misbehaves.
    pub events: EventFaults,
    /// A second engine run later on (the next sync, with the source's newer changes).
    pub next_run: Option<NextRun>,
    /// The engine this scenario judges, as a command under the engine protocol (the
    /// deliberately broken engines of `harness/broken/` name theirs); `None`: the gate's.
    pub engine_cmd: Option<String>,
}

/// The engine runs again `after` the scenario start, on a further fixture set: the source's
/// changes since the first run (records edited by hand in between meet them there).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextRun {
    pub after: Dur,
    pub fixtures: String,
}

/// A change a sales rep makes by hand, applied before the request that reaches `after_calls`
/// API calls or the first request at or after `after` (since the scenario start).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualEdit {
    pub name: String,
    pub object: String,
    /// The record, by the object's external-ID value.
    pub external_id: String,
    #[serde(default)]
    pub after_calls: Option<u64>,
    #[serde(default)]
    pub after: Option<Dur>,
    /// Field values to set (`null` clears a field).
    pub set: serde_json::Map<String, serde_json::Value>,
}

/// Delivery faults of the change-event stream, each drawn from the seed per event.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFaults {
    /// Chance an event is delivered twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Chance an event is delivered after the one that follows it.
    #[serde(default)]
    pub out_of_order: f64,
    /// Chance an event is replaced by a gap event (`GAP_CREATE`, `GAP_UPDATE`, …) without values.
    #[serde(default)]
    pub gap: f64,
    /// A transaction changing more records than this publishes one `GAP_OVERFLOW` event per
    /// object instead of one event per record.
    #[serde(default)]
    pub overflow_after: Option<usize>,
}

/// Changes to the org's limits profile for this scenario.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    pub daily_api_requests: Option<u64>,
    /// API requests already spent in the current window when the run starts.
    #[serde(default)]
    pub used_at_start: u64,
}

/// Engine settings a scenario may change: genuine settings of the shipped engine, never
/// faults (the deliberately broken engines of `harness/broken/` are engine commands).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineOverrides {
    pub max_attempts: Option<u32>,
    pub batch_size: Option<usize>,
    /// Daily windows the engine waits for before giving up (default 2).
    pub max_window_waits: Option<u32>,
    /// Objects with more records than this go through Bulk API 2.0 (library scenarios use
    /// it to exercise the Bulk path on small fixtures).
    pub bulk_threshold: Option<usize>,
}

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResponseLostSpec {
    #[serde(default)]
    mode: LostMode,
}

const FAULT_KINDS: &str = "rate_limited, server_unavailable, unable_to_lock_row, request_limit_exceeded, response_lost, latency, timeout, connection_reset, malformed_body, session_expired, concurrent_limit";

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

/// A duration written as `3600s`, `1h`, `250ms` or a bare number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t).map(Dur).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a duration (write 250ms, 30s, 15m, 2h or 1d)"
                ))
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    purpose: String,
    #[serde(default)]
    fixtures: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    limits: LimitOverrides,
    #[serde(default)]
    engine: EngineOverrides,
    #[serde(default)]
    faults: Vec<FaultRule>,
    #[serde(default)]
    manual_edits: Vec<ManualEdit>,
    #[serde(default)]
    events: EventFaults,
    #[serde(default)]
    org_fields: std::collections::BTreeMap<String, crate::contract::FieldSpec>,
    #[serde(default)]
    next_run: Option<NextRun>,
    #[serde(default)]
    engine_cmd: Option<String>,
}

/// A scenario file that could not be read, with the position and what to do.
#[derive(Debug, thiserror::Error)]
pub struct ScenarioError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// serde_yaml appends " at line N column M"; the position is already in the prefix.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

impl Scenario {
    /// The fixture sets the scenario's runs read, in run order.
    pub fn fixture_sets(&self) -> Vec<&str> {
        let mut sets = vec![self.fixtures.as_str()];
        sets.extend(self.next_run.iter().map(|n| n.fixtures.as_str()));
        sets
    }
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let err = |line: Option<usize>, column: Option<usize>, message: String| ScenarioError {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(None, None, format!("cannot read scenario: {e}")))?;
        Scenario::from_yaml(path, &text)
    }

    /// Parses and checks scenario text; `path` names it in errors (and gives its name).
    pub fn from_yaml(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let err = |line: Option<usize>, column: Option<usize>, message: String| ScenarioError {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let file: ScenarioFile = serde_yaml::from_str(text).map_err(|e| {
            let loc = e.location();
            err(
                loc.as_ref().map(|l| l.line()),
                loc.as_ref().map(|l| l.column()),
                format!(
                    "{}; see harness/README.md for the scenario format",
                    strip_location(&e.to_string())
                ),
            )
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let start = match &file.start {
            None => Timestamp::parse(DEFAULT_START).expect("default start parses"),
            Some(s) => Timestamp::parse(s).ok_or_else(|| {
                err(
                    None,
                    None,
                    format!(
                        "`start`: `{s}` is not a datetime with a time zone (e.g. {DEFAULT_START})"
                    ),
                )
            })?,
        };
        if file.purpose.trim().is_empty() || file.purpose.contains('\n') {
            return Err(err(
                None,
                None,
                "`purpose` must be one line saying what the scenario proves".into(),
            ));
        }
        for (i, rule) in file.faults.iter().enumerate() {
            let at = format!("faults[{i}] ({})", rule.name);
            if !(0.0..=1.0).contains(&rule.probability) {
                return Err(err(
                    None,
                    None,
                    format!("{at}: `probability` must be between 0 and 1"),
                ));
            }
            if let Some(calls) = rule.calls {
                if calls.first == 0 || calls.times == Some(0) {
                    return Err(err(
                        None,
                        None,
                        format!("{at}: `calls.first` and `calls.times` count from 1"),
                    ));
                }
            }
            if let Some(m) = &rule.matcher.method {
                if !["GET", "POST", "PATCH", "PUT", "DELETE"]
                    .contains(&m.to_ascii_uppercase().as_str())
                {
                    return Err(err(None, None, format!("{at}: unknown method `{m}`")));
                }
            }
        }
        for (name, p) in [
            ("duplicate", file.events.duplicate),
            ("out_of_order", file.events.out_of_order),
            ("gap", file.events.gap),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(err(
                    None,
                    None,
                    format!("events.{name}: a chance must be between 0 and 1"),
                ));
            }
        }
        for (i, edit) in file.manual_edits.iter().enumerate() {
            if edit.after_calls.is_none() == edit.after.is_none() {
                return Err(err(
                    None,
                    None,
                    format!(
                        "manual_edits[{i}] ({}): give exactly one of `after_calls` or `after`",
                        edit.name
                    ),
                ));
            }
        }
        if file.engine.max_attempts == Some(0)
            || file.engine.batch_size.is_some_and(|b| b == 0 || b > 200)
        {
            return Err(err(
                None,
                None,
                "`engine`: max_attempts must be ≥ 1 and batch_size 1..=200".into(),
            ));
        }
        if let Some(bad) = file.org_fields.keys().find(|k| {
            k.split_once('.')
                .is_none_or(|(o, f)| o.is_empty() || f.is_empty())
        }) {
            return Err(err(
                None,
                None,
                format!("`org_fields`: `{bad}` is not Object.Field (e.g. Account.Region__c)"),
            ));
        }
        Ok(Scenario {
            name,
            path: path.to_path_buf(),
            purpose: file.purpose.trim().to_string(),
            fixtures: file.fixtures.unwrap_or_else(|| "default".into()),
            start,
            limits: file.limits,
            engine: file.engine,
            faults: file.faults,
            manual_edits: file.manual_edits,
            events: file.events,
            org_fields: file.org_fields,
            next_run: file.next_run,
            engine_cmd: file.engine_cmd.filter(|c| !c.trim().is_empty()),
        })
    }

    /// Every `*.yaml` scenario in `dir`, sorted by name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
        let entries = std::fs::read_dir(dir).map_err(|e| ScenarioError {
            path: dir.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read scenario directory: {e}"),
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Scenario::load(p)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn bad_scenario_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, "purpose: p\nfaults:\n  - name: a\n    respond: { rate_limited: { retry_after: soon } }\n").unwrap();
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(e.contains("s.yaml:3:5: faults[0]: rate_limited:"), "{e}");
        assert!(e.contains("not a duration"), "{e}");
    }
}
