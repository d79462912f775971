//! Single API calls with the engine's calling discipline: the budget guard, the limiter and
//! breaker, one session refresh, waits for the daily window, retries with backoff or
//! `Retry-After`. Used for every call that is not a collections batch: Bulk job steps,
//! conflict-check queries and deletes.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::Value;

use super::bounds::RetryAfterVerdict;
use super::bulk::BulkCall;
use super::client::{RequestBody, SalesforceClient, TextReply};
use super::dlq::ErrorClass;
use super::retry::{Action, Failure};
use super::{EngineError, EventKind, Fence, Item, Sync};
use crate::sim::Timestamp;

/// One API request the engine may have to send more than once.
pub(super) enum ApiRequest<'a> {
    /// A REST call under `/services/data/vNN.N/` with an optional JSON body.
    Rest {
        method: Method,
        path: &'a str,
        body: Option<&'a Value>,
    },
    /// A step of a Bulk API 2.0 job.
    Bulk(&'a BulkCall<'a>),
}

/// How a retry's wait ended.
pub(super) enum Retried {
    /// Waited: send again.
    Waited,
    /// Not waited for (a `Retry-After` above `max_retry_after`): give the batch up with
    /// this message.
    GaveUp(String),
}

impl ApiRequest<'_> {
    async fn send(&self, client: &mut SalesforceClient) -> Result<TextReply, Failure> {
        match self {
            ApiRequest::Rest { method, path, body } => {
                client
                    .call_text(
                        method.clone(),
                        path,
                        body.map(RequestBody::Json),
                        "application/json",
                    )
                    .await
            }
            ApiRequest::Bulk(call) => call.send(client).await,
        }
    }
}

impl Sync<'_> {
    /// Sends one request under every guard of the engine (budget guard, limiter, breaker),
    /// signing in again once on an expired session, waiting for the daily window on a
    /// lockout and, when `retry`, retrying on backoff or `Retry-After` up to `max_attempts`.
    /// `Ok(Err(failure))` is a request that failed for good; `Err` stops the run (budget
    /// exhausted, fenced, store failure). `records` is how many records ride on it (timeline).
    pub(super) async fn call_retrying(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        fence: Option<&dyn Fence>,
        request: &ApiRequest<'_>,
        records: usize,
        retry: bool,
    ) -> Result<Result<TextReply, Failure>, EngineError> {
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            self.guard_budget(client, object).await?;
            let permit = self.admit(object, fence).await?;
            let outcome = request.send(client).await;
            self.requests_sent = client.requests();
            self.after_call(permit, outcome.as_ref().err()).await?;
            let failure = match outcome {
                Ok(reply) => return Ok(Ok(reply)),
                Err(f) => f,
            };
            match failure.action {
                Action::Refresh if !refreshed => {
                    refreshed = true;
                    attempt -= 1;
                    client.authenticate().await?;
                    self.requests_sent = client.requests();
                    continue;
                }
                Action::WaitForWindow => {
                    self.wait_for_lockout(object, &failure).await?;
                    attempt -= 1;
                    continue;
                }
                Action::DeadLetter | Action::Refresh => return Ok(Err(failure)),
                Action::Retry => {}
            }
            if !retry {
                return Ok(Err(failure));
            }
            if attempt >= self.config.max_attempts {
                let message = format!(
                    "gave up after {attempt} attempt(s); last error: {}",
                    failure.message
                );
                return Ok(Err(Failure { message, ..failure }));
            }
            if let Retried::GaveUp(message) =
                self.retry_wait(object, attempt, records, &failure).await?
            {
                return Ok(Err(Failure {
                    action: Action::DeadLetter,
                    message,
                    ..failure
                }));
            }
        }
    }

    /// Dead-letters what is left of a batch whose retries ended (class `retries_exhausted`:
    /// a later run sends it again), each record with the time it first failed.
    pub(super) async fn give_up(
        &mut self,
        object: &str,
        remaining: &[&Item<'_>],
        failure: &Failure,
        message: &str,
        attempt: u32,
        first_failed: &BTreeMap<&str, Timestamp>,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        for item in remaining {
            let first = first_failed
                .get(item.record.id.as_str())
                .copied()
                .unwrap_or(now);
            self.dead_letter(
                object,
                item.record,
                item.payload.clone(),
                ErrorClass::RetriesExhausted,
                &failure.code,
                message,
                attempt,
                None,
                first,
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// Counts a retry and waits for `Retry-After` (when honoured) or a jittered backoff,
    /// within the run's bounds: a retry past the budget or a wait past the deadline stops
    /// the run (`Err`); a `Retry-After` above `max_retry_after` stops it or, as configured,
    /// gives the batch up (`GaveUp`: the caller dead-letters it).
    pub(super) async fn retry_wait(
        &mut self,
        object: &str,
        attempt: u32,
        records: usize,
        failure: &Failure,
    ) -> Result<Retried, EngineError> {
        let now = self.clock.now();
        if let Some(nb) = failure.not_before {
            match self.bounds.judge_retry_after(nb.since(now), &failure.code) {
                RetryAfterVerdict::Wait => {}
                RetryAfterVerdict::GiveUp(message) => return Ok(Retried::GaveUp(message)),
                RetryAfterVerdict::Stop(e) => return Err(e.into()),
            }
        }
        self.bounds
            .spend_retry(&format!("{} {}", failure.code, failure.message))?;
        self.report.retries += 1;
        self.event(
            object,
            EventKind::Retry {
                attempt,
                records,
                code: failure.code.clone(),
            },
        );
        let jitter = self.config.backoff.delay(attempt, &mut self.jitter);
        let (until, reason) = match failure.not_before {
            Some(nb) => (nb.max(now), format!("Retry-After after {}", failure.code)),
            _ => (now.plus(jitter), format!("backoff after {}", failure.code)),
        };
        self.event(
            object,
            EventKind::Wait {
                until: until.to_iso(),
                reason: reason.clone(),
            },
        );
        self.wait_until(until, &format!("waiting ({reason}) to send {object} again"))
            .await?;
        Ok(Retried::Waited)
    }
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters pass through).
pub(super) fn encode_query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A SOQL datetime literal, to the second (rounded down: the query may return a little more).
pub(super) fn soql_datetime(t: crate::sim::Timestamp) -> String {
    let iso = t.to_iso();
    format!("{}Z", iso.get(..19).unwrap_or(&iso))
}

/// A SOQL string literal: quotes and backslashes escaped.
pub(super) fn soql_string(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value("SELECT Id FROM A WHERE X IN ('a b')"),
            "SELECT%20Id%20FROM%20A%20WHERE%20X%20IN%20%28%27a%20b%27%29"
        );
    }

    #[test]
    fn soql_datetimes_are_to_the_second() {
        let t = crate::sim::Timestamp::parse("2026-01-05T08:30:15.250+01:00").unwrap();
        assert_eq!(soql_datetime(t), "2026-01-05T07:30:15Z");
    }

    #[test]
    fn soql_literals_escape_quotes() {
        assert_eq!(soql_string(r"O'Brien \ Co"), r"'O\'Brien \\ Co'");
    }
}
