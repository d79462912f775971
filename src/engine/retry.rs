//! Error classification and backoff: what the engine does with each answer Salesforce gives.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::sim::{Rng, Timestamp};

/// What to do after a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Try again after a backoff (or the server's `Retry-After`).
    Retry,
    /// Get a new session, then retry once.
    Refresh,
    /// The daily API budget is spent: wait for the next window.
    WaitForWindow,
    /// Retrying cannot help: dead-letter the records.
    DeadLetter,
}

/// A failed call, classified.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub action: Action,
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
    /// Earliest time the server allows the next request (from `Retry-After`).
    pub not_before: Option<Timestamp>,
}

impl Failure {
    pub fn transport(message: impl Into<String>) -> Self {
        Failure {
            action: Action::Retry,
            status: None,
            code: "TRANSPORT_ERROR".into(),
            message: message.into(),
            not_before: None,
        }
    }
}

/// Codes of per-record errors that a retry can fix.
pub fn item_is_retryable(code: &str) -> bool {
    matches!(
        code,
        "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE" | "REQUEST_RUNNING_TOO_LONG"
    )
}

/// Classifies a non-2xx answer per Salesforce's documented errors.
pub fn classify(status: u16, headers: &HeaderMap, body: &Value, now: Timestamp) -> Failure {
    let first = body.as_array().and_then(|a| a.first());
    let code = first
        .and_then(|e| e.get("errorCode").or_else(|| e.get("statusCode")))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let message = first
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    let not_before = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let action = match (status, code.as_str()) {
        (401, _) => Action::Refresh,
        (403, "REQUEST_LIMIT_EXCEEDED") if message.contains("TotalRequests") => {
            Action::WaitForWindow
        }
        (403, "REQUEST_LIMIT_EXCEEDED") => Action::Retry, // ConcurrentPerOrgLongTxn: back off.
        (429 | 408 | 420, _) => Action::Retry,
        (s, _) if s >= 500 => Action::Retry,
        (400, c) if item_is_retryable(c) => Action::Retry,
        _ => Action::DeadLetter,
    };
    let code = if code.is_empty() {
        format!("HTTP_{status}")
    } else {
        code
    };
    Failure {
        action,
        status: Some(status),
        code,
        message,
        not_before,
    }
}

/// Classifies a Bulk API 2.0 job that ended `Failed` or `Aborted` (its `errorMessage`):
/// an aborted job, or one that failed for a reason the org can get over (a lock, a
/// timeout, an internal error), is sent again as a new job; a job Salesforce refused for
/// its content (bad CSV, unknown field or object, no data) would fail again, so its
/// records are dead-lettered.
pub fn classify_job_failure(state: &str, error_message: &str) -> Action {
    if state.eq_ignore_ascii_case("Aborted") {
        return Action::Retry;
    }
    let m = error_message.to_ascii_lowercase();
    let permanent = [
        "invalidbatch",
        "invalidjob",
        "invalid_field",
        "invalid_type",
        "no data",
        "not found",
        "unable to find",
        "malformed",
    ];
    if permanent.iter().any(|p| m.contains(p)) {
        Action::DeadLetter
    } else {
        Action::Retry
    }
}

/// `Retry-After` as seconds or an HTTP-date, turned into an absolute time.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Timestamp> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(now.plus(Duration::from_secs(secs)));
    }
    Timestamp::parse_http_date(v)
}

/// Exponential backoff with full jitter: a uniform draw in `[0, min(cap, base·2^(attempt-1))]`.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub fn delay(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let exp = self
            .base
            .as_millis()
            .saturating_mul(1u128 << attempt.saturating_sub(1).min(30));
        let ceiling = exp.min(self.cap.as_millis()) as u64;
        Duration::from_millis(rng.up_to(ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Seed;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-05T08:00:00Z").unwrap()
    }

    #[test]
    fn classifies_salesforce_errors() {
        let h = HeaderMap::new();
        let err = |code: &str, msg: &str| json!([{"errorCode": code, "message": msg}]);
        assert_eq!(
            classify(
                403,
                &h,
                &err("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
                now()
            )
            .action,
            Action::WaitForWindow
        );
        assert_eq!(
            classify(
                403,
                &h,
                &err(
                    "REQUEST_LIMIT_EXCEEDED",
                    "ConcurrentPerOrgLongTxn Limit exceeded."
                ),
                now()
            )
            .action,
            Action::Retry
        );
        assert_eq!(
            classify(
                401,
                &h,
                &err("INVALID_SESSION_ID", "Session expired or invalid"),
                now()
            )
            .action,
            Action::Refresh
        );
        assert_eq!(
            classify(503, &h, &err("SERVER_UNAVAILABLE", ""), now()).action,
            Action::Retry
        );
        assert_eq!(
            classify(400, &h, &err("UNABLE_TO_LOCK_ROW", ""), now()).action,
            Action::Retry
        );
        assert_eq!(
            classify(400, &h, &err("REQUIRED_FIELD_MISSING", ""), now()).action,
            Action::DeadLetter
        );
        assert_eq!(classify(500, &h, &Value::Null, now()).code, "HTTP_500");
    }

    #[test]
    fn failed_bulk_jobs_are_classified_by_their_message() {
        assert_eq!(classify_job_failure("Aborted", ""), Action::Retry);
        assert_eq!(
            classify_job_failure("Failed", "InternalServerError : retry later"),
            Action::Retry
        );
        assert_eq!(
            classify_job_failure("Failed", "UNABLE_TO_LOCK_ROW: unable to obtain lock"),
            Action::Retry
        );
        assert_eq!(
            classify_job_failure("Failed", "InvalidBatch : Field name not found : Foo__c"),
            Action::DeadLetter
        );
        assert_eq!(
            classify_job_failure("Failed", "No data was uploaded for this job"),
            Action::DeadLetter
        );
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3600".parse().unwrap());
        let f = classify(429, &h, &Value::Null, now());
        assert_eq!(f.not_before, Some(now().plus(Duration::from_secs(3600))));
        assert_eq!(
            parse_retry_after("Mon, 05 Jan 2026 09:00:00 GMT", now()),
            Some(now().plus(Duration::from_secs(3600)))
        );
        assert_eq!(parse_retry_after("soon", now()), None);
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_ceiling() {
        let b = Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        };
        let mut rng = Seed(9).stream("t");
        for attempt in 1..12 {
            let ceiling = (500u64 << (attempt - 1)).min(30_000);
            for _ in 0..50 {
                assert!(b.delay(attempt, &mut rng).as_millis() as u64 <= ceiling);
            }
        }
    }
}
