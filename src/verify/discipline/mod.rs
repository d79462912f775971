//! The engine's calling discipline, judged from the mock's request journal alone: requests
//! within the configured token bucket and concurrency and under the org's long-running
//! limit ([`rate`]), the daily budget's last call left alone ([`budget`]), and no call spent
//! again on what Salesforce rejected for good ([`wasted`]). Written for clarity, sharing
//! no code with the engine: the journal is what the org saw, whichever engine ran.

pub mod budget;
pub mod rate;
pub mod wasted;

use serde::Serialize;

use super::gate::Unchecked;
use super::invariants::Violation;
use crate::mock::JournalEntry;

/// The calling limits an engine is configured with (`syncgate.toml`'s `[engine]` table, a
/// scenario's `engine:` block on top): its token bucket, its cap on requests in flight and,
/// when set, its own daily budget. Engine commands receive them as `SYNCGATE_ENGINE_LIMITS`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CallLimits {
    pub rate_per_sec: f64,
    pub burst: u32,
    pub max_concurrent: u32,
    /// API requests per UTC day of the org's clock; absent: the org's limit alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_budget: Option<u64>,
}

/// What the org allows, whatever the engine's configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrgLimits {
    /// API requests per UTC day (the scenario's `limits.daily_api_requests`, else the bundle's).
    pub daily_api_requests: u64,
    /// Requests that may run for `long_running_threshold` or longer at once.
    pub concurrent_long_running: u32,
    pub long_running_threshold: std::time::Duration,
}

/// What the discipline checks read.
pub struct CallEvidence<'a> {
    pub journal: &'a [JournalEntry],
    pub limits: CallLimits,
    pub org: OrgLimits,
    /// How early a request may arrive by the org's clock and still count as on time: the
    /// clock's own resolution (1 ms on the virtual clock), more for an engine on the wall
    /// clock, whose requests reach the org a little later or sooner than it decided.
    pub slack: std::time::Duration,
}

/// How many examples a violation lists before summarising the rest.
const MAX_DETAILS: usize = 8;

/// Every discipline invariant over one run: what broke, and what could not be judged.
pub fn check(ev: &CallEvidence<'_>) -> (Vec<Violation>, Vec<Unchecked>) {
    let mut violations = Vec::new();
    let mut unchecked = Vec::new();
    let mut add = |invariant: &'static str, mut details: Vec<String>| {
        if details.is_empty() {
            return;
        }
        let total = details.len();
        if total > MAX_DETAILS {
            details.truncate(MAX_DETAILS);
            details.push(format!("… and {} more", total - MAX_DETAILS));
        }
        violations.push(Violation { invariant, details });
    };
    add(
        super::invariants::names::RATE_AND_CONCURRENCY,
        rate::check(ev.journal, &ev.limits, &ev.org, ev.slack),
    );
    add(
        super::invariants::names::BUDGET_MARGIN,
        budget::check(ev.journal, ev.org.daily_api_requests),
    );
    let (wasted, note) = wasted::check(ev.journal);
    add(super::invariants::names::WASTED_CALLS, wasted);
    unchecked.extend(note);
    (violations, unchecked)
}

/// An API request (under `/services/data/`), not a sign-in or the harness's own endpoints.
pub(crate) fn is_api(e: &JournalEntry) -> bool {
    e.path.starts_with("/services/data/")
}

/// Whether the client received `earlier`'s answer before it sent `later`: `earlier` was
/// recorded (at its answer) before `later` arrived. `index` is `earlier`'s place in the
/// journal (0-based); a request's `seq` is one more than the entries recorded before it.
pub(crate) fn answered_before(index: usize, later: &JournalEntry) -> bool {
    (index as u64) + 2 <= later.seq
}

/// `#seq METHOD path` of a request, its query cut (SOQL is long).
pub(crate) fn label(e: &JournalEntry) -> String {
    format!("#{} {}", e.seq, request(e))
}

/// `METHOD path` of a request, its query cut: for requests in flight together, whose
/// `seq` (one more than the answers recorded before them) they may share.
pub(crate) fn request(e: &JournalEntry) -> String {
    let path = e.path.split('?').next().unwrap_or(&e.path);
    format!("{} {}", e.method, path)
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::mock::JournalEntry;
    use crate::sim::Timestamp;

    /// An API request arriving `at_ms` after the start, answered `took_ms` later, with 200.
    pub fn entry(seq: u64, at_ms: i64, took_ms: i64) -> JournalEntry {
        let t0 = Timestamp::parse("2026-01-05T08:00:00Z")
            .unwrap()
            .as_millis();
        JournalEntry {
            seq,
            at: Timestamp::from_millis(t0 + at_ms),
            method: "PATCH".into(),
            path: "/services/data/v62.0/composite/sobjects/Account/Ext__c".into(),
            object: Some("Account".into()),
            status: 200,
            records: None,
            outcome: None,
            fault: None,
            not_before: None,
            error_code: None,
            correlation_id: None,
            client: None,
            api_usage: None,
            created: None,
            in_flight: 1,
            request_body: None,
            response_body: None,
            answered_at: Some(Timestamp::from_millis(t0 + at_ms + took_ms)),
            body_digest: None,
            record_outcomes: None,
        }
    }
}
