//! The engine's calling discipline around every request: the run's bounds and the circuit
//! breaker, the limiter's admission (rate, concurrency, a shared daily budget), the
//! daily-budget guard, and the waits for the next daily window — each wait interruptible by
//! a stop.

use super::breaker::counts_as_outage;
use super::client::SalesforceClient;
use super::retry::Failure;
use super::{bounds, runner, EngineError, EventKind, Fence, Sync};
use crate::sim::Timestamp;
use crate::store::limiter::{Admission, Permit, WaitReason};

impl Sync<'_> {
    /// Awaits `request` (one send) but not past the run's deadline: a call the org holds
    /// for its whole timeout must not carry a run beyond its bound. On the virtual clock
    /// the org's delays are themselves on the clock (and a virtual sleep returns at once),
    /// so only real runs race the deadline.
    pub(super) async fn within_deadline<T>(
        &self,
        object: &str,
        request: impl std::future::Future<Output = T>,
    ) -> Result<T, EngineError> {
        let deadline = match self.bounds.run_deadline() {
            Some(deadline) if !self.clock.is_virtual() => deadline,
            _ => return Ok(request.await),
        };
        tokio::select! {
            out = request => Ok(out),
            _ = self.clock.sleep_until(deadline) => Err(self
                .bounds
                .reached(&format!("waiting for the org to answer a request for {object}"))
                .into()),
        }
    }

    /// Waits until `until` within the run's deadline (a wait that would end past it stops
    /// the run now), or less when a stop is requested.
    pub(super) async fn wait_until(
        &self,
        until: Timestamp,
        doing: &str,
    ) -> Result<(), EngineError> {
        self.bounds.may_wait_until(until, doing)?;
        self.pause_until(until).await;
        Ok(())
    }

    /// Waits until `until`, or less when a stop is requested: every request passes a fence
    /// first, so cutting a wait short never sends anything early.
    pub(super) async fn pause_until(&self, until: Timestamp) {
        match &self.stop {
            Some(stop) => {
                tokio::select! {
                    _ = self.clock.sleep_until(until) => {}
                    _ = stop.requested_now() => {}
                }
            }
            None => self.clock.sleep_until(until).await,
        }
    }

    /// Waits until the limiter lets one request go (and, with a fence, the work is still
    /// ours); `None` when there is no limiter.
    pub(super) async fn admit(
        &mut self,
        object: &str,
        fence: Option<&dyn Fence>,
    ) -> Result<Option<Permit>, EngineError> {
        self.bounds
            .check(self.clock.now(), &format!("sending {object}"))?;
        self.wait_for_breaker(object).await?;
        let Some((limiter, policy)) = self.limiter.clone() else {
            if let Some(f) = fence {
                f.still_ours().await?;
            }
            return Ok(None);
        };
        loop {
            // A stop ends the limiter's waits at once: without this the loop would ask
            // again and again for a token that is not there yet.
            if self.stop.as_ref().is_some_and(runner::Stop::requested) {
                return Err(EngineError::Fenced("a stop was requested".into()));
            }
            match limiter
                .acquire(&self.tenant, &policy, self.clock.now())
                .await?
            {
                Admission::Granted(permit) => {
                    // Checked after the wait, right before sending: the lease may have
                    // been taken over while this engine waited.
                    if let Some(f) = fence {
                        if let Err(e) = f.still_ours().await {
                            limiter.release(&permit).await?;
                            return Err(e);
                        }
                    }
                    return Ok(Some(permit));
                }
                Admission::Wait {
                    reason: WaitReason::DailyBudget,
                    until,
                } => {
                    self.wait_for_window_until(object, WaitReason::DailyBudget.label(), until)
                        .await?
                }
                // A token refills at a known time: an exact wait.
                Admission::Wait {
                    reason: WaitReason::Rate,
                    until,
                } => {
                    self.wait_until(until, &format!("waiting for the rate limiter ({object})"))
                        .await?
                }
                // The day's budget is spent and other workers' last requests are landing:
                // part of the wait for the daily window, which the deadline does not count.
                Admission::Wait {
                    reason: WaitReason::Draining,
                    until,
                } => {
                    let before = self.clock.now();
                    self.clock.poll_until(until).await;
                    self.bounds.excuse(self.clock.now().since(before));
                }
                // A slot frees when other workers progress: a poll. Short and frequent, so
                // no timeline event for each.
                Admission::Wait { until, .. } => self.clock.poll_until(until).await,
            }
        }
    }

    /// After every API call: gives the permit back and tells the breaker how it went.
    pub(super) async fn after_call(
        &mut self,
        permit: Option<Permit>,
        failure: Option<&Failure>,
    ) -> Result<(), EngineError> {
        self.usage_read_on = Some(self.clock.now().day_start());
        self.release(permit).await?;
        match failure {
            Some(f) if counts_as_outage(f.status) => {
                self.breaker.failure(self.clock.now());
            }
            _ => self.breaker.success(),
        }
        Ok(())
    }

    /// Gives a limiter permit back (a request answered, or abandoned at the deadline).
    pub(super) async fn release(&self, permit: Option<Permit>) -> Result<(), EngineError> {
        if let (Some(permit), Some((limiter, _))) = (permit, &self.limiter) {
            limiter.release(&permit).await?;
        }
        Ok(())
    }

    /// Holds the call while the circuit breaker is open (the cooldown shows in the timeline).
    pub(super) async fn wait_for_breaker(&mut self, object: &str) -> Result<(), EngineError> {
        if let Some(until) = self.breaker.check(self.clock.now()) {
            let reason = format!(
                "circuit breaker open after {} consecutive transport/5xx failures; then one probe",
                self.breaker.threshold
            );
            self.event(
                object,
                EventKind::Wait {
                    until: until.to_iso(),
                    reason,
                },
            );
            self.wait_until(
                until,
                &format!("waiting for the circuit breaker's cooldown ({object})"),
            )
            .await?;
            self.breaker.check(self.clock.now());
        }
        Ok(())
    }

    /// Stops with the window's last call left unspent, and waits for the next window.
    pub(super) async fn guard_budget(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
    ) -> Result<(), EngineError> {
        if let Some(u) = client.usage {
            // Usage read in an earlier daily window says nothing about this one: another
            // worker (or a long wait) may have moved the clock past midnight since.
            let stale = self
                .usage_read_on
                .is_some_and(|day| day < self.clock.now().day_start());
            if stale {
                client.usage = None;
            } else if u.used.saturating_add(1) >= u.max {
                // The margin: the window's last call stays unspent (for the org's people
                // and other tools; the lockout never comes from this engine).
                match client.window_opens.take() {
                    Some(until) => {
                        self.wait_for_window_until(object, "daily budget guard", until)
                            .await?
                    }
                    None => self.wait_for_window(object, "daily budget guard").await?,
                }
                client.usage = None;
            }
        }
        Ok(())
    }

    /// After a `REQUEST_LIMIT_EXCEEDED` lockout: waits for the window it names
    /// ([`Failure::window_opens`]).
    pub(super) async fn wait_for_lockout(
        &mut self,
        object: &str,
        failure: &Failure,
    ) -> Result<(), EngineError> {
        let until = failure.window_opens(self.clock.now());
        self.wait_for_window_until(object, &failure.code, until)
            .await
    }

    /// Waits for the next UTC day's window.
    pub(super) async fn wait_for_window(
        &mut self,
        object: &str,
        reason: &str,
    ) -> Result<(), EngineError> {
        let until = self.clock.now().next_day_start();
        self.wait_for_window_until(object, reason, until).await
    }

    /// Waits for the window that opens at `until`. A shared limiter names it: by the time
    /// this engine waits, another worker may already have moved the clock into it, and
    /// "the next window from now" would then skip a whole day.
    pub(super) async fn wait_for_window_until(
        &mut self,
        object: &str,
        reason: &str,
        until: Timestamp,
    ) -> Result<(), EngineError> {
        self.window_waits += 1;
        if self.window_waits > self.config.max_window_waits {
            return Err(EngineError::BudgetExhausted(self.config.max_window_waits));
        }
        let before = self.clock.now();
        let wait = until.since(before);
        let message = format!(
            "{reason}: waiting {} for the next daily window (opens {}; wait {} of at most {})",
            bounds::human(wait),
            until.to_iso(),
            self.window_waits,
            self.config.max_window_waits
        );
        if let Some(hook) = &self.notices {
            hook(&format!("{}/{object}: {message}", self.tenant));
        }
        self.event(
            object,
            EventKind::Wait {
                until: until.to_iso(),
                reason: message,
            },
        );
        self.pause_until(until).await;
        // The deadline bounds the engine's own work, not the org's window.
        self.bounds.excuse(self.clock.now().since(before));
        Ok(())
    }
}
