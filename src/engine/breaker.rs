//! The per-tenant circuit breaker: after a run of consecutive transport errors or 5xx
//! answers it opens and stops every call for a cooldown on the clock, then lets one probe
//! through (half-open); a success closes it, a failure opens it for another cooldown.

use std::time::Duration;

use crate::sim::Timestamp;

/// The breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; `failures` consecutive ones have failed so far.
    Closed { failures: u32 },
    /// No call goes out before `until`.
    Open { until: Timestamp },
    /// The cooldown is over: the next call is a probe.
    HalfOpen,
}

/// Counts consecutive transport/5xx failures of one tenant's calls.
#[derive(Clone, Debug)]
pub struct Breaker {
    /// Consecutive failures that open the breaker (0 turns it off).
    pub threshold: u32,
    /// How long it stays open.
    pub cooldown: Duration,
    state: BreakerState,
    /// Times it opened.
    opened: u32,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold,
            cooldown,
            state: BreakerState::Closed { failures: 0 },
            opened: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Times the breaker opened so far.
    pub fn times_opened(&self) -> u32 {
        self.opened
    }

    /// Before a call at `now`: `Some(until)` when the call must wait for the cooldown to
    /// end. Once the cooldown is over the breaker turns half-open and lets the call probe.
    pub fn check(&mut self, now: Timestamp) -> Option<Timestamp> {
        match self.state {
            BreakerState::Open { until } if now < until => Some(until),
            BreakerState::Open { .. } => {
                self.state = BreakerState::HalfOpen;
                None
            }
            _ => None,
        }
    }

    /// After a call that reached the server and got a non-5xx answer (a 4xx says the
    /// org is up): closes the breaker.
    pub fn success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    /// After a transport error or a 5xx at `now`. Returns `Some(until)` when this failure
    /// opened the breaker.
    pub fn failure(&mut self, now: Timestamp) -> Option<Timestamp> {
        if self.threshold == 0 {
            return None;
        }
        let failures = match self.state {
            BreakerState::Closed { failures } => failures + 1,
            // A failed probe (or a failure that raced the cooldown) opens it again at once.
            BreakerState::HalfOpen | BreakerState::Open { .. } => self.threshold,
        };
        if failures >= self.threshold {
            let until = now.plus(self.cooldown);
            self.state = BreakerState::Open { until };
            self.opened += 1;
            Some(until)
        } else {
            self.state = BreakerState::Closed { failures };
            None
        }
    }
}

/// Whether a failed call counts against the breaker: the org (or the way to it) is down,
/// not the request wrong. `None` status means the request never got an answer.
pub fn counts_as_outage(status: Option<u16>) -> bool {
    status.is_none_or(|s| s >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        Timestamp::parse("2026-01-05T08:00:00Z").unwrap()
    }

    #[test]
    fn opens_after_threshold_and_closes_after_a_good_probe() {
        let mut b = Breaker::new(3, Duration::from_secs(30));
        assert_eq!(b.failure(t0()), None);
        assert_eq!(b.failure(t0()), None);
        let until = t0().plus(Duration::from_secs(30));
        assert_eq!(b.failure(t0()), Some(until));
        assert_eq!(b.check(t0().plus(Duration::from_secs(10))), Some(until));
        assert_eq!(b.check(until), None);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.success();
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        assert_eq!(b.times_opened(), 1);
    }

    #[test]
    fn a_failed_probe_reopens_at_once() {
        let mut b = Breaker::new(2, Duration::from_secs(5));
        b.failure(t0());
        b.failure(t0());
        let later = t0().plus(Duration::from_secs(5));
        assert_eq!(b.check(later), None);
        assert_eq!(
            b.failure(later),
            Some(later.plus(Duration::from_secs(5))),
            "one failed probe is enough"
        );
        assert_eq!(b.times_opened(), 2);
    }

    #[test]
    fn a_success_resets_the_count_and_zero_turns_it_off() {
        let mut b = Breaker::new(2, Duration::from_secs(5));
        b.failure(t0());
        b.success();
        assert_eq!(b.failure(t0()), None);
        let mut off = Breaker::new(0, Duration::from_secs(5));
        for _ in 0..10 {
            assert_eq!(off.failure(t0()), None);
        }
        assert!(counts_as_outage(None));
        assert!(counts_as_outage(Some(503)));
        assert!(!counts_as_outage(Some(429)));
        assert!(!counts_as_outage(Some(400)));
    }
}
