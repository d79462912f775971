//! Single API calls with the engine's calling discipline: the budget guard, the limiter, one
//! session refresh, waits for the daily window, retries with backoff or `Retry-After`. Used
//! for the calls that are not record batches: conflict-check queries and deletes.

use reqwest::Method;
use serde_json::Value;

use super::client::{Reply, SalesforceClient};
use super::retry::{Action, Failure};
use super::{EngineError, EventKind, Fence, Sync};

impl Sync<'_> {
    /// Sends one call until it succeeds or retrying cannot help. `Ok(Err(failure))` is a call
    /// that failed for good (not retryable, or out of attempts); `Err` stops the run.
    pub(super) async fn call_retrying(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        fence: Option<&dyn Fence>,
    ) -> Result<Result<Reply, Failure>, EngineError> {
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            self.guard_budget(client, object).await?;
            let permit = self.admit(object, fence).await?;
            let outcome = client.call(method.clone(), path, body).await;
            self.requests_sent = client.requests();
            self.usage_read_on = Some(self.clock.now().day_start());
            if let (Some(permit), Some((limiter, _))) = (permit, &self.limiter) {
                limiter.release(&permit).await?;
            }
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
                Action::WaitForWindow if !self.config.fault_retry_on_lockout => {
                    self.wait_for_window(object, &failure.code).await?;
                    attempt -= 1;
                    continue;
                }
                Action::DeadLetter | Action::Refresh => return Ok(Err(failure)),
                Action::Retry | Action::WaitForWindow => {}
            }
            if attempt >= self.config.max_attempts {
                let message = format!(
                    "gave up after {attempt} attempts; last error: {}",
                    failure.message
                );
                return Ok(Err(Failure { message, ..failure }));
            }
            self.report.retries += 1;
            self.event(
                object,
                EventKind::Retry {
                    attempt,
                    records: 0,
                    code: failure.code.clone(),
                },
            );
            let now = self.clock.now();
            let (until, reason) = match failure.not_before {
                Some(nb) if self.config.honour_retry_after => {
                    (nb.max(now), format!("Retry-After after {}", failure.code))
                }
                _ => (
                    now.plus(self.config.backoff.delay(attempt, &mut self.jitter)),
                    format!("backoff after {}", failure.code),
                ),
            };
            self.event(
                object,
                EventKind::Wait {
                    until: until.to_iso(),
                    reason,
                },
            );
            self.clock.sleep_until(until).await;
        }
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
    fn soql_literals_escape_quotes() {
        assert_eq!(soql_string(r"O'Brien \ Co"), r"'O\'Brien \\ Co'");
    }
}
