//! The request driver: every API request the engine sends goes through [`Sync::drive`],
//! which wraps each attempt in the engine's calling discipline (the budget guard, the
//! limiter and breaker of [`super::guard`]) and follows the retry rules of
//! [`super::retry::Attempts`] (sign in again once, wait for the daily window, retry with
//! backoff or `Retry-After` up to `max_attempts`). Collections batches
//! ([`super::collections`]) and single requests ([`ApiRequest`]: Bulk job steps,
//! conflict-check queries, deletes) are both [`Attempt`]s.

use reqwest::Method;
use serde_json::Value;

use super::bounds::RetryAfterVerdict;
use super::bulk::BulkCall;
use super::client::{RequestBody, SalesforceClient, TextReply};
use super::retry::{Attempts, End, Failure, GaveUp, Next};
use super::{EngineError, EventKind, Fence, Sync};
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

/// What the driver sends, attempt after attempt, and how it reads each answer.
pub(super) trait Attempt {
    /// The client's answer to one send.
    type Reply;
    /// What a finished attempt yields.
    type Output;
    /// How many records ride on the request (the timeline's retry events).
    fn records(&self) -> usize;
    /// Sends the request once.
    async fn send(&mut self, client: &mut SalesforceClient) -> Result<Self::Reply, Failure>;
    /// Reads a 2xx answer: done, or a failure to handle by the rules (a collections batch
    /// settles the records that landed or failed for good and retries the rest).
    async fn settle(
        &mut self,
        engine: &mut Sync<'_>,
        reply: Self::Reply,
        attempt: u32,
    ) -> Result<Result<Self::Output, Failure>, EngineError>;
    /// Told when an attempt failed (a batch notes when its records first failed).
    fn failed(&mut self, _at: Timestamp) {}
}

impl ApiRequest<'_> {
    async fn send_once(&self, client: &mut SalesforceClient) -> Result<TextReply, Failure> {
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

/// A single request carrying `records` records, done at its first 2xx answer.
struct Single<'r> {
    request: &'r ApiRequest<'r>,
    records: usize,
}

impl Attempt for Single<'_> {
    type Reply = TextReply;
    type Output = TextReply;

    fn records(&self) -> usize {
        self.records
    }

    async fn send(&mut self, client: &mut SalesforceClient) -> Result<TextReply, Failure> {
        self.request.send_once(client).await
    }

    async fn settle(
        &mut self,
        _engine: &mut Sync<'_>,
        reply: TextReply,
        _attempt: u32,
    ) -> Result<Result<TextReply, Failure>, EngineError> {
        Ok(Ok(reply))
    }
}

impl Sync<'_> {
    /// Sends `attempt` until it is done or given up, by the rules of [`Attempts`]: each
    /// try passes the budget guard, the limiter and the breaker (and, with a `fence`, checks
    /// the work is still ours); an expired session signs in again once; a lockout waits for
    /// the daily window; a retryable failure waits for `Retry-After` or a backoff (when
    /// `may_retry`) up to `max_attempts`. `Ok(Err(gave_up))` is a request given up;
    /// `Err` stops the run (bounds, budget exhausted, fenced, store failure).
    pub(super) async fn drive<A: Attempt>(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        fence: Option<&dyn Fence>,
        attempt: &mut A,
        may_retry: bool,
    ) -> Result<Result<A::Output, GaveUp>, EngineError> {
        let mut attempts = Attempts::new(self.config.max_attempts);
        loop {
            let number = attempts.start();
            self.guard_budget(client, object).await?;
            let permit = self.admit(object, fence).await?;
            let outcome = self.within_deadline(object, attempt.send(client)).await;
            self.requests_sent = client.requests();
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(stop) => {
                    // The permit goes back: the request is abandoned, not answered.
                    self.release(permit).await?;
                    return Err(stop);
                }
            };
            self.after_call(permit, outcome.as_ref().err()).await?;
            let failure = match outcome {
                Ok(reply) => match attempt.settle(self, reply, number).await? {
                    Ok(done) => return Ok(Ok(done)),
                    Err(failure) => failure,
                },
                Err(failure) => failure,
            };
            attempt.failed(self.clock.now());
            let give_up = |failure: Failure, end: End| {
                Ok(Err(GaveUp {
                    failure,
                    end,
                    attempts: number,
                }))
            };
            match attempts.after(&failure, may_retry) {
                Next::Refresh => {
                    client.authenticate().await?;
                    self.requests_sent = client.requests();
                }
                Next::WaitForWindow => self.wait_for_lockout(object, &failure).await?,
                Next::GiveUp(end) => return give_up(failure, end),
                Next::Retry => {
                    let waited = self
                        .retry_wait(object, number, attempt.records(), &failure)
                        .await?;
                    if let Retried::GaveUp(message) = waited {
                        let failure = Failure { message, ..failure };
                        return give_up(failure, End::RetryAfterTooLong);
                    }
                }
            }
        }
    }

    /// [`Sync::drive`] for one request carrying `records` records.
    pub(super) async fn drive_request(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        fence: Option<&dyn Fence>,
        request: &ApiRequest<'_>,
        records: usize,
        may_retry: bool,
    ) -> Result<Result<TextReply, GaveUp>, EngineError> {
        let mut single = Single { request, records };
        self.drive(client, object, fence, &mut single, may_retry)
            .await
    }

    /// [`Sync::drive_request`] with a given-up request as one [`Failure`] whose message
    /// says why (for callers that only need to know it failed for good).
    pub(super) async fn call_retrying(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        fence: Option<&dyn Fence>,
        request: &ApiRequest<'_>,
        records: usize,
        may_retry: bool,
    ) -> Result<Result<TextReply, Failure>, EngineError> {
        let driven = self
            .drive_request(client, object, fence, request, records, may_retry)
            .await?;
        Ok(driven.map_err(GaveUp::into_failure))
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
