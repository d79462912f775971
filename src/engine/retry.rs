//! The retry rules, stated once: how each answer Salesforce gives is classified
//! ([`classify`]), what follows a failed attempt ([`Attempts::after`]: sign in again once,
//! wait for the daily window, retry with backoff or `Retry-After` up to `max_attempts`, or
//! give up), and the backoff itself. Every call path executes these rules: the request
//! driver (`Sync::drive`, for collections batches, Bulk job steps, conflict queries,
//! deletes and redrives), the Bulk job loop and the change-event consumer.

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

impl Failure {
    /// When the daily window this lockout names opens: the answer's `Retry-After` when it
    /// lies ahead, else the next UTC day.
    pub fn window_opens(&self, now: Timestamp) -> Timestamp {
        match self.not_before {
            Some(until) if until > now => until,
            _ => now.next_day_start(),
        }
    }
}

/// Why a request was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Retrying cannot help (a permanent error, a second 401, or a call not to be retried).
    Rejected,
    /// Retryable failures outlasted `max_attempts`.
    Exhausted,
    /// The server asked for a wait above `max_retry_after`, and the configuration says to
    /// give the batch up rather than stop the run.
    RetryAfterTooLong,
}

/// What follows a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Sign in again, then send again (not counted as an attempt).
    Refresh,
    /// Wait for the daily window ([`Failure::window_opens`]), then send again (not counted).
    WaitForWindow,
    /// Wait for `Retry-After` or a backoff, then send again.
    Retry,
    /// Stop trying.
    GiveUp(End),
}

/// The attempts of one request (or one Bulk job) and the rules that decide the next step.
#[derive(Clone, Debug)]
pub struct Attempts {
    count: u32,
    max: u32,
    refreshed: bool,
    /// A Bulk job as a whole: its steps already signed in again and waited for the window
    /// (each step goes through the request driver), so at the job level only a retryable
    /// failure is tried again.
    whole_job: bool,
}

impl Attempts {
    /// Attempts of one request, at most `max` (a refresh or a window wait does not count).
    pub fn new(max: u32) -> Self {
        Attempts {
            count: 0,
            max,
            refreshed: false,
            whole_job: false,
        }
    }

    /// Attempts of a whole Bulk job, at most `max` new jobs.
    pub fn whole_job(max: u32) -> Self {
        Attempts {
            whole_job: true,
            ..Attempts::new(max)
        }
    }

    /// Starts the next attempt and returns its number (from 1).
    pub fn start(&mut self) -> u32 {
        self.count += 1;
        self.count
    }

    /// Attempts counted so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The rules. After `failure`: a 401 signs in again once (a second 401 gives up); a
    /// daily-budget lockout waits for the window; a permanent error gives up; a retryable
    /// one is retried (when `may_retry`) until `max` attempts were made.
    pub fn after(&mut self, failure: &Failure, may_retry: bool) -> Next {
        match failure.action {
            Action::Refresh if !self.refreshed && !self.whole_job => {
                self.refreshed = true;
                self.count = self.count.saturating_sub(1);
                Next::Refresh
            }
            Action::WaitForWindow if !self.whole_job => {
                self.count = self.count.saturating_sub(1);
                Next::WaitForWindow
            }
            Action::Refresh | Action::WaitForWindow | Action::DeadLetter => {
                Next::GiveUp(End::Rejected)
            }
            Action::Retry if !may_retry => Next::GiveUp(End::Rejected),
            Action::Retry if self.count >= self.max => Next::GiveUp(End::Exhausted),
            Action::Retry => Next::Retry,
        }
    }
}

/// A request the driver stopped trying, with why and after how many attempts.
#[derive(Clone, Debug, PartialEq)]
pub struct GaveUp {
    pub failure: Failure,
    pub end: End,
    pub attempts: u32,
}

impl GaveUp {
    /// What a dead letter says of it.
    pub fn message(&self) -> String {
        match self.end {
            End::Rejected | End::RetryAfterTooLong => self.failure.message.clone(),
            End::Exhausted => format!(
                "gave up after {} attempt(s); last error: {}",
                self.attempts, self.failure.message
            ),
        }
    }

    /// The dead-letter class of the records it carried: a later run sends exhausted ones
    /// again; rejected ones wait for a redrive.
    pub fn class(&self) -> crate::store::dlq::ErrorClass {
        match self.end {
            End::Rejected => crate::store::dlq::ErrorClass::Rejected,
            End::Exhausted | End::RetryAfterTooLong => {
                crate::store::dlq::ErrorClass::RetriesExhausted
            }
        }
    }

    /// The failure as one value, its message saying why it was given up.
    pub fn into_failure(self) -> Failure {
        let message = self.message();
        let action = match self.end {
            End::RetryAfterTooLong => Action::DeadLetter,
            End::Rejected | End::Exhausted => self.failure.action,
        };
        Failure {
            action,
            message,
            ..self.failure
        }
    }
}

/// A per-record error that says the whole transaction was too heavy for the org's
/// triggers (an Apex CPU time limit, or another governor limit, hit while the batch's
/// triggers ran): the same records land in smaller batches. Salesforce answers it as
/// `CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY` naming the trigger and the `LimitException`.
pub fn item_needs_smaller_batch(code: &str, message: &str) -> bool {
    code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
        && (message.contains("CPU time limit") || message.contains("LimitException"))
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
        // A value Salesforce's JSON reader refuses is refused again on every retry.
        let parser = classify(
            400,
            &h,
            &err(
                "JSON_PARSER_ERROR",
                "Cannot deserialize instance of int from VALUE_STRING value many or request may be missing a required field",
            ),
            now(),
        );
        assert_eq!(parser.action, Action::DeadLetter);
        assert_eq!(parser.code, "JSON_PARSER_ERROR");
        assert!(!item_is_retryable("JSON_PARSER_ERROR"));
        assert_eq!(classify(500, &h, &Value::Null, now()).code, "HTTP_500");
    }

    fn failure(action: Action) -> Failure {
        Failure {
            action,
            status: None,
            code: "X".into(),
            message: "m".into(),
            not_before: None,
        }
    }

    #[test]
    fn a_401_signs_in_again_once_and_does_not_count() {
        let mut a = Attempts::new(3);
        assert_eq!(a.start(), 1);
        assert_eq!(a.after(&failure(Action::Refresh), true), Next::Refresh);
        assert_eq!(a.start(), 1, "a refresh is not an attempt");
        assert_eq!(
            a.after(&failure(Action::Refresh), true),
            Next::GiveUp(End::Rejected)
        );
    }

    #[test]
    fn retries_stop_at_max_attempts_and_window_waits_do_not_count() {
        let mut a = Attempts::new(2);
        a.start();
        assert_eq!(a.after(&failure(Action::Retry), true), Next::Retry);
        a.start();
        assert_eq!(
            a.after(&failure(Action::WaitForWindow), true),
            Next::WaitForWindow
        );
        assert_eq!(a.start(), 2);
        assert_eq!(
            a.after(&failure(Action::Retry), true),
            Next::GiveUp(End::Exhausted)
        );
        let mut once = Attempts::new(5);
        once.start();
        assert_eq!(
            once.after(&failure(Action::Retry), false),
            Next::GiveUp(End::Rejected)
        );
        assert_eq!(
            once.after(&failure(Action::DeadLetter), true),
            Next::GiveUp(End::Rejected)
        );
    }

    #[test]
    fn a_whole_job_retries_only_retryable_failures() {
        let mut a = Attempts::whole_job(3);
        a.start();
        assert_eq!(
            a.after(&failure(Action::Refresh), true),
            Next::GiveUp(End::Rejected)
        );
        assert_eq!(
            a.after(&failure(Action::WaitForWindow), true),
            Next::GiveUp(End::Rejected)
        );
        assert_eq!(a.after(&failure(Action::Retry), true), Next::Retry);
    }

    #[test]
    fn a_lockout_waits_for_the_window_it_names_or_the_next_day() {
        let mut f = failure(Action::WaitForWindow);
        assert_eq!(
            f.window_opens(now()),
            Timestamp::parse("2026-01-06T00:00:00Z").unwrap()
        );
        f.not_before = Some(now().plus(Duration::from_secs(60)));
        assert_eq!(f.window_opens(now()), now().plus(Duration::from_secs(60)));
        f.not_before = Some(now());
        assert_eq!(
            f.window_opens(now()),
            Timestamp::parse("2026-01-06T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn given_up_requests_say_why_in_their_letters() {
        let g = GaveUp {
            failure: failure(Action::Retry),
            end: End::Exhausted,
            attempts: 8,
        };
        assert_eq!(g.message(), "gave up after 8 attempt(s); last error: m");
        assert_eq!(g.class(), crate::store::dlq::ErrorClass::RetriesExhausted);
        let r = GaveUp {
            end: End::Rejected,
            ..g.clone()
        };
        assert_eq!(r.class(), crate::store::dlq::ErrorClass::Rejected);
        assert_eq!(r.into_failure().message, "m");
    }

    #[test]
    fn a_trigger_over_its_cpu_limit_asks_for_a_smaller_batch() {
        let cpu = "AccountTrigger: execution of BeforeUpdate caused by: System.LimitException: Apex CPU time limit exceeded";
        assert!(item_needs_smaller_batch(
            "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
            cpu
        ));
        assert!(!item_needs_smaller_batch(
            "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
            "AccountTrigger: execution of BeforeUpdate caused by: System.NullPointerException"
        ));
        assert!(!item_needs_smaller_batch(
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            cpu
        ));
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
