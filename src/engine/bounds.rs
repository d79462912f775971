//! The bounds of one run, so that no org can hold it forever: a deadline on the clock
//! (`run_deadline`; waits for the daily window do not count, `max_window_waits` bounds
//! those), a budget of retries (`retry_budget`), and a cap on an honoured `Retry-After`
//! (`max_retry_after`, beyond which the batch is dead-lettered or the run stops, as
//! `on_long_retry_after` says). One [`RunBounds`] spans every page of a run (the runner
//! shares it among the engines of its pages); a `--follow` run arms it again each tick. An
//! engine outside a runner (a long-lived worker) has only the `Retry-After` cap.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::sim::time::format_duration;
use crate::sim::Timestamp;

/// What to do with a `Retry-After` longer than `max_retry_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongRetryAfter {
    /// Dead-letter the batch (class `retries_exhausted`: a later run sends it again) and go on.
    DeadLetter,
    /// Stop the run with a message.
    Stop,
}

impl LongRetryAfter {
    pub fn label(self) -> &'static str {
        match self {
            LongRetryAfter::DeadLetter => "dead-letter",
            LongRetryAfter::Stop => "stop",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dead-letter" => Some(LongRetryAfter::DeadLetter),
            "stop" => Some(LongRetryAfter::Stop),
            _ => None,
        }
    }
}

/// The configured bounds (from `[engine]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// How long a run may take on the clock, waits for the daily window not counted.
    pub run_deadline: Duration,
    /// Retries a run may spend in all (every batch and call together).
    pub retry_budget: u32,
    /// The longest `Retry-After` the engine waits for.
    pub max_retry_after: Duration,
    pub on_long_retry_after: LongRetryAfter,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            run_deadline: Duration::from_secs(12 * 3600),
            retry_budget: 200,
            max_retry_after: Duration::from_secs(3600),
            on_long_retry_after: LongRetryAfter::Stop,
        }
    }
}

/// Why a run stopped at one of its bounds (the message says which key to change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded(pub String);

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `Retry-After` the engine will not wait for, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryAfterVerdict {
    Wait,
    /// Dead-letter the batch with this message.
    GiveUp(String),
    /// Stop the run.
    Stop(Exceeded),
}

#[derive(Debug)]
struct State {
    deadline: Timestamp,
    retries: u32,
}

/// The bounds of one run as it goes: its deadline and the retries spent.
#[derive(Debug)]
pub struct RunBounds {
    limits: Limits,
    /// False for an engine that is not a run (a long-lived worker): only the
    /// `Retry-After` cap applies.
    per_run: bool,
    state: Mutex<State>,
}

impl RunBounds {
    /// Bounds armed at `now`.
    pub fn new(limits: Limits, now: Timestamp) -> Self {
        RunBounds {
            limits,
            per_run: true,
            state: Mutex::new(State {
                deadline: now.plus(limits.run_deadline),
                retries: 0,
            }),
        }
    }

    /// No deadline and no retry budget, only the cap on `Retry-After`: an engine outside a
    /// [`super::runner::Runner`] run (a worker taking batches for as long as it lives).
    pub fn retry_after_only(limits: Limits, now: Timestamp) -> Self {
        RunBounds {
            per_run: false,
            ..RunBounds::new(limits, now)
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another engine panicked mid-update of two integers.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts over at `now`: a new deadline, no retries spent (each `--follow` tick).
    pub fn arm(&self, now: Timestamp) {
        let mut s = self.state();
        s.deadline = now.plus(self.limits.run_deadline);
        s.retries = 0;
    }

    pub fn deadline(&self) -> Timestamp {
        self.state().deadline
    }

    /// The deadline a request in flight must not outlast, if this is a run.
    pub fn run_deadline(&self) -> Option<Timestamp> {
        self.per_run.then(|| self.deadline())
    }

    /// The run's deadline, passed while `doing`, as the error that stops it.
    pub fn reached(&self, doing: &str) -> Exceeded {
        self.past_deadline(doing)
    }

    pub fn retries(&self) -> u32 {
        self.state().retries
    }

    /// Before a request or a wait: has the run passed its deadline at `now`?
    pub fn check(&self, now: Timestamp, doing: &str) -> Result<(), Exceeded> {
        if self.per_run && now >= self.deadline() {
            return Err(self.past_deadline(doing));
        }
        Ok(())
    }

    /// Before waiting until `until`: a wait that would end past the deadline stops the run
    /// now rather than at the deadline (nothing could be sent after it anyway).
    pub fn may_wait_until(&self, until: Timestamp, doing: &str) -> Result<(), Exceeded> {
        if self.per_run && until > self.deadline() {
            return Err(self.past_deadline(doing));
        }
        Ok(())
    }

    /// A wait for the daily window does not count against the deadline: it moves out by
    /// the time waited.
    pub fn excuse(&self, waited: Duration) {
        let mut s = self.state();
        s.deadline = s.deadline.plus(waited);
    }

    fn past_deadline(&self, doing: &str) -> Exceeded {
        Exceeded(format!(
            "the run reached its deadline (`run_deadline` = {} in [engine] of syncgate.toml; \
             {} retries spent) while {doing}; what was not applied is sent again by the next run",
            format_duration(self.limits.run_deadline),
            self.retries()
        ))
    }

    /// Spends one retry; an error once the budget is spent.
    pub fn spend_retry(&self, last_error: &str) -> Result<(), Exceeded> {
        let mut s = self.state();
        if self.per_run && s.retries >= self.limits.retry_budget {
            return Err(Exceeded(format!(
                "the run spent its whole retry budget (`retry_budget` = {} in [engine] of \
                 syncgate.toml); last error: {last_error}; what was not applied is sent again by \
                 the next run",
                self.limits.retry_budget
            )));
        }
        s.retries += 1;
        Ok(())
    }

    /// Whether to honour a `Retry-After` that asks for `wait`.
    pub fn judge_retry_after(&self, wait: Duration, code: &str) -> RetryAfterVerdict {
        if wait <= self.limits.max_retry_after {
            return RetryAfterVerdict::Wait;
        }
        let asked = format!(
            "the org asked to wait {} (Retry-After after {code}), longer than `max_retry_after` = {}",
            format_duration(round_to_seconds(wait)),
            format_duration(self.limits.max_retry_after)
        );
        match self.limits.on_long_retry_after {
            LongRetryAfter::DeadLetter => RetryAfterVerdict::GiveUp(format!(
                "{asked}; dead-lettered (`on_long_retry_after` = \"dead-letter\")"
            )),
            LongRetryAfter::Stop => RetryAfterVerdict::Stop(Exceeded(format!(
                "{asked}; stopping (`on_long_retry_after` = \"stop\" in [engine] of syncgate.toml; \
                 \"dead-letter\" dead-letters the batch and goes on)"
            ))),
        }
    }
}

fn round_to_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_millis() >= 500))
}

/// "3h 12m 5s" for a human reading how long a wait is.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, _) => format!("{m}m {sec}s"),
        _ => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        Timestamp::parse("2026-01-05T08:00:00Z").unwrap()
    }

    fn limits() -> Limits {
        Limits {
            run_deadline: Duration::from_secs(60),
            retry_budget: 2,
            max_retry_after: Duration::from_secs(600),
            on_long_retry_after: LongRetryAfter::Stop,
        }
    }

    #[test]
    fn the_deadline_stops_waits_that_end_after_it_and_window_waits_move_it() {
        let b = RunBounds::new(limits(), t0());
        assert!(b.check(t0().plus(Duration::from_secs(59)), "x").is_ok());
        let e = b
            .check(t0().plus(Duration::from_secs(60)), "sending")
            .unwrap_err();
        assert!(e.0.contains("`run_deadline` = 1m"), "{e}");
        assert!(e.0.contains("while sending"), "{e}");
        assert!(b
            .may_wait_until(t0().plus(Duration::from_secs(61)), "x")
            .is_err());
        b.excuse(Duration::from_secs(3600));
        assert!(b
            .may_wait_until(t0().plus(Duration::from_secs(61)), "x")
            .is_ok());
        b.arm(t0());
        assert_eq!(b.deadline(), t0().plus(Duration::from_secs(60)));
    }

    #[test]
    fn the_retry_budget_is_spent_once() {
        let b = RunBounds::new(limits(), t0());
        assert!(b.spend_retry("HTTP_500").is_ok());
        assert!(b.spend_retry("HTTP_500").is_ok());
        let e = b.spend_retry("HTTP_500").unwrap_err();
        assert!(e.0.contains("`retry_budget` = 2"), "{e}");
        assert!(e.0.contains("last error: HTTP_500"), "{e}");
        b.arm(t0());
        assert_eq!(b.retries(), 0);
        // Outside a run (a worker): neither a deadline nor a budget.
        let w = RunBounds::retry_after_only(limits(), t0());
        for _ in 0..10 {
            assert!(w.spend_retry("HTTP_500").is_ok());
        }
        assert!(w.check(t0().plus(Duration::from_secs(86_400)), "x").is_ok());
        assert!(matches!(
            w.judge_retry_after(Duration::from_secs(31_536_000), "X"),
            RetryAfterVerdict::Stop(_)
        ));
    }

    #[test]
    fn a_long_retry_after_stops_or_dead_letters_by_configuration() {
        let b = RunBounds::new(limits(), t0());
        assert_eq!(
            b.judge_retry_after(Duration::from_secs(600), "X"),
            RetryAfterVerdict::Wait
        );
        let year = Duration::from_secs(31_536_000);
        match b.judge_retry_after(year, "REQUEST_LIMIT_EXCEEDED") {
            RetryAfterVerdict::Stop(e) => {
                assert!(e.0.contains("wait 8760h"), "{e}");
                assert!(e.0.contains("`max_retry_after` = 10m"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let b = RunBounds::new(
            Limits {
                on_long_retry_after: LongRetryAfter::DeadLetter,
                ..limits()
            },
            t0(),
        );
        assert!(matches!(
            b.judge_retry_after(year, "X"),
            RetryAfterVerdict::GiveUp(m) if m.contains("dead-lettered")
        ));
        assert_eq!(human(Duration::from_secs(3 * 3600 + 12 * 60 + 5)), "3h 12m");
        assert_eq!(human(Duration::from_secs(65)), "1m 5s");
    }
}
