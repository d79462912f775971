//! The org's requests in flight, counted once. Every API request counts from arrival to
//! answer (how many overlap at the mock, and the most that ever did: the journal's
//! `in_flight` and [`super::MockOrg::max_in_flight`]); those held inside the org by latency
//! or a timeout also carry when their hold began on the org's clock (what the long-running
//! concurrency limit and `/limits` count). A request leaves when it is answered, or when the
//! server drops it because its client hung up: then its work is never done, so it no
//! longer runs in the org either.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::sim::Timestamp;

/// Requests being answered right now, and the most there ever were at once.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    pub(super) now: AtomicUsize,
    pub(super) max: AtomicUsize,
    next: AtomicU64,
    /// Requests held inside the org: when (org time) each hold began, by request.
    held: Mutex<BTreeMap<u64, Timestamp>>,
}

impl InFlight {
    /// Counts a request in until the returned guard drops; also returns the count with it.
    pub fn enter(&self) -> (InFlightGuard<'_>, usize) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        (InFlightGuard { flight: self, id }, n)
    }

    /// Requests held inside the org right now.
    pub fn held(&self) -> usize {
        self.held_map().len()
    }

    /// Held requests that have run for `threshold` or longer at `now`.
    pub fn long_running(&self, now: Timestamp, threshold: Duration) -> usize {
        self.held_map()
            .values()
            .filter(|since| now.since(**since) >= threshold)
            .count()
    }

    fn held_map(&self) -> MutexGuard<'_, BTreeMap<u64, Timestamp>> {
        // Nothing panics while holding it; a poisoned map is still the best count.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One request in flight (see [`InFlight::enter`]).
pub(crate) struct InFlightGuard<'a> {
    flight: &'a InFlight,
    id: u64,
}

impl InFlightGuard<'_> {
    /// Counts the request as held inside the org from `since` (org time).
    pub fn hold(&self, since: Timestamp) {
        self.flight.held_map().insert(self.id, since);
    }

    /// Ends the hold: the request is answered now.
    pub fn release(&self) {
        self.flight.held_map().remove(&self.id);
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.release();
        self.flight.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_until_it_leaves_and_a_hold_until_it_is_released() {
        let flight = InFlight::default();
        let t0 = Timestamp::from_millis(0);
        let at = |s| t0.plus(Duration::from_secs(s));
        let (a, n) = flight.enter();
        let (b, m) = flight.enter();
        assert_eq!((n, m), (1, 2));
        a.hold(t0);
        b.hold(at(15));
        assert_eq!(flight.held(), 2);
        assert_eq!(flight.long_running(at(20), Duration::from_secs(20)), 1);
        a.release();
        assert_eq!(flight.long_running(at(40), Duration::from_secs(20)), 1);
        // A request dropped while held (its client hung up) leaves both counts.
        drop(b);
        assert_eq!(flight.held(), 0);
        drop(a);
        let (_c, n) = flight.enter();
        assert_eq!(n, 1);
        assert_eq!(flight.max.load(Ordering::SeqCst), 2);
    }
}
