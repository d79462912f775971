//! The one clock: the wall clock for real runs, a virtual clock for the gate and replay,
//! and a scaled wall clock for engines the gate runs as child processes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::time::Timestamp;

/// Source of "now" and of every wait in syncgate.
///
/// The virtual clock is a *logical* clock rather than tokio's paused time: a sleep moves
/// the shared time forward to the sleeper's deadline (never backwards) and returns at once.
/// The gate drives one engine against one mock with a single request in flight, so this
/// gives a total order of events without the paused-time trap where loopback socket I/O
/// looks idle and lets auto-advance fire a timeout while a response is on its way. Waits
/// that overlap (several tasks sleeping at once) still never end before their deadline.
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
enum Inner {
    System,
    Virtual {
        now_ms: AtomicI64,
    },
    /// The wall clock plus an offset that only grows: real sleeps, but time can be moved
    /// forward (the mock's admin API does, to expire events or roll the daily window).
    Shifted {
        offset_ms: AtomicI64,
    },
    /// Org time for a process the gate cannot pause: `start + wall_elapsed × scale` (plus
    /// an offset that only grows); a sleep of `d` sleeps `d / scale` of wall time.
    Scaled {
        start_ms: i64,
        /// Wall time (as the system clock, which engines read too) at `start_ms`.
        wall_start_ms: i64,
        scale: f64,
        offset_ms: AtomicI64,
        /// Org time while paused ([`Clock::pause`]), `i64::MIN` while running.
        paused_at: AtomicI64,
    },
}

/// A scaled clock's mapping at one moment: org time `org_origin_ms` (its start plus the
/// offset so far) at wall time `wall_origin_ms`, then `scale` org milliseconds per wall
/// millisecond.
#[derive(Clone, Copy, Debug)]
struct Scaling {
    org_origin_ms: i64,
    wall_origin_ms: i64,
    scale: f64,
}

impl Clock {
    /// The wall clock; sleeps really sleep.
    pub fn system() -> Self {
        Clock {
            inner: Arc::new(Inner::System),
        }
    }

    /// The wall clock, movable forward with [`Clock::advance`].
    pub fn shifted() -> Self {
        Clock {
            inner: Arc::new(Inner::Shifted {
                offset_ms: AtomicI64::new(0),
            }),
        }
    }

    /// Org time that starts at `start` and runs `scale` times faster than the wall clock
    /// (`scale` below 1 is taken as 1).
    pub fn scaled_at(start: Timestamp, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale >= 1.0 {
            scale
        } else {
            1.0
        };
        Clock {
            inner: Arc::new(Inner::Scaled {
                start_ms: start.as_millis(),
                wall_start_ms: Timestamp::from_system_time(std::time::SystemTime::now())
                    .as_millis(),
                scale,
                offset_ms: AtomicI64::new(0),
                paused_at: AtomicI64::new(i64::MIN),
            }),
        }
    }

    /// Stops a scaled clock where it is (no-op on other clocks): org time does not pass
    /// while no engine is running, e.g. while a child process starts up.
    pub fn pause(&self) {
        if let Inner::Scaled { paused_at, .. } = &*self.inner {
            let now = self.now();
            let _ = paused_at.compare_exchange(
                i64::MIN,
                now.as_millis(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    /// Lets a paused scaled clock run again from where it stopped (no-op otherwise).
    pub fn resume(&self) {
        if let Inner::Scaled {
            paused_at,
            offset_ms,
            ..
        } = &*self.inner
        {
            let at = paused_at.load(Ordering::SeqCst);
            if at == i64::MIN {
                return;
            }
            let running =
                self.org_time_of(Timestamp::from_system_time(std::time::SystemTime::now()));
            offset_ms.fetch_add(at - running.as_millis(), Ordering::SeqCst);
            paused_at.store(i64::MIN, Ordering::SeqCst);
        }
    }

    /// Org seconds per wall second: `Some` only for a scaled clock.
    pub fn time_scale(&self) -> Option<f64> {
        match &*self.inner {
            Inner::Scaled { scale, .. } => Some(*scale),
            _ => None,
        }
    }

    /// How long a client on the wall clock must wait for `org` time to pass (the same on
    /// every clock but a scaled one). Rounded up to the millisecond.
    pub fn wall_duration(&self, org: Duration) -> Duration {
        match self.time_scale() {
            Some(scale) => Duration::from_millis((org.as_millis() as f64 / scale).ceil() as u64),
            None => org,
        }
    }

    /// The org time that passes while a client waits `wall` (inverse of [`Clock::wall_duration`]).
    pub fn org_duration(&self, wall: Duration) -> Duration {
        match self.time_scale() {
            Some(scale) => Duration::from_millis((wall.as_millis() as f64 * scale) as u64),
            None => wall,
        }
    }

    /// The wall time at which org time reaches `t` (identity but on a scaled clock), so an
    /// HTTP-date stated to a client on the wall clock means `t`.
    pub fn wall_time_of(&self, t: Timestamp) -> Timestamp {
        match self.scaling() {
            Some(s) => {
                let org_elapsed = t.as_millis() - s.org_origin_ms;
                Timestamp::from_millis(
                    s.wall_origin_ms + (org_elapsed as f64 / s.scale).ceil() as i64,
                )
            }
            None => t,
        }
    }

    /// The org time at wall time `wall` (inverse of [`Clock::wall_time_of`]).
    pub fn org_time_of(&self, wall: Timestamp) -> Timestamp {
        match self.scaling() {
            Some(s) => {
                let wall_elapsed = (wall.as_millis() - s.wall_origin_ms) as f64;
                Timestamp::from_millis(s.org_origin_ms + (wall_elapsed * s.scale) as i64)
            }
            None => wall,
        }
    }

    /// How a scaled clock maps wall time to org time now; `None` on other clocks.
    fn scaling(&self) -> Option<Scaling> {
        match &*self.inner {
            Inner::Scaled {
                start_ms,
                wall_start_ms,
                scale,
                offset_ms,
                ..
            } => Some(Scaling {
                org_origin_ms: start_ms + offset_ms.load(Ordering::SeqCst),
                wall_origin_ms: *wall_start_ms,
                scale: *scale,
            }),
            _ => None,
        }
    }

    /// A virtual clock that starts at `start`.
    pub fn virtual_at(start: Timestamp) -> Self {
        Clock {
            inner: Arc::new(Inner::Virtual {
                now_ms: AtomicI64::new(start.as_millis()),
            }),
        }
    }

    pub fn is_virtual(&self) -> bool {
        matches!(*self.inner, Inner::Virtual { .. })
    }

    pub fn now(&self) -> Timestamp {
        match &*self.inner {
            Inner::System => Timestamp::from_system_time(std::time::SystemTime::now()),
            Inner::Virtual { now_ms } => Timestamp::from_millis(now_ms.load(Ordering::SeqCst)),
            Inner::Shifted { offset_ms } => {
                let wall = Timestamp::from_system_time(std::time::SystemTime::now());
                Timestamp::from_millis(wall.as_millis() + offset_ms.load(Ordering::SeqCst))
            }
            Inner::Scaled { paused_at, .. } => match paused_at.load(Ordering::SeqCst) {
                i64::MIN => {
                    self.org_time_of(Timestamp::from_system_time(std::time::SystemTime::now()))
                }
                at => Timestamp::from_millis(at),
            },
        }
    }

    /// Waits for `duration`.
    pub async fn sleep(&self, duration: Duration) {
        let deadline = self.now().plus(duration);
        self.sleep_until(deadline).await;
    }

    /// Waits until `deadline` (returns at once if it has passed).
    pub async fn sleep_until(&self, deadline: Timestamp) {
        match &*self.inner {
            Inner::System | Inner::Shifted { .. } => {
                let now = self.now();
                if deadline > now {
                    tokio::time::sleep(deadline.since(now)).await;
                }
            }
            Inner::Scaled { .. } => {
                let now = self.now();
                if deadline > now {
                    tokio::time::sleep(self.wall_duration(deadline.since(now))).await;
                }
            }
            Inner::Virtual { now_ms } => {
                now_ms.fetch_max(deadline.as_millis(), Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        }
    }

    /// Waits until `deadline` as one round of a loop polling for another task's progress
    /// (a free concurrency slot, an expired lease). On the wall clock this is
    /// [`Clock::sleep_until`]. On the virtual clock time moves to `deadline` as usual, and
    /// the caller also yields a millisecond of real time: otherwise a poller spins virtual
    /// time forward at CPU speed, and a request that is merely slow on the wire (or a
    /// worker waiting for a database lock) looks hours late and has its slot or lease
    /// taken from under it.
    pub async fn poll_until(&self, deadline: Timestamp) {
        self.sleep_until(deadline).await;
        if self.is_virtual() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Moves virtual time forward without waiting (used by the mock to model latency).
    /// On the plain wall clock this is a no-op: real latency is modelled by a real sleep.
    pub fn advance(&self, duration: Duration) {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        match &*self.inner {
            Inner::Virtual { now_ms } => {
                now_ms.fetch_add(ms, Ordering::SeqCst);
            }
            Inner::Shifted { offset_ms } => {
                offset_ms.fetch_add(ms, Ordering::SeqCst);
            }
            Inner::Scaled {
                offset_ms,
                paused_at,
                ..
            } => {
                offset_ms.fetch_add(ms, Ordering::SeqCst);
                let _ = paused_at.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                    (p != i64::MIN).then_some(p + ms)
                });
            }
            Inner::System => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_sleep_moves_time_without_waiting() {
        let start = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
        let clock = Clock::virtual_at(start);
        let wall = std::time::Instant::now();
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), start.plus(Duration::from_secs(3600)));
        assert!(wall.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn shifted_clock_moves_forward_on_advance() {
        let clock = Clock::shifted();
        let before = clock.now();
        clock.advance(Duration::from_secs(72 * 3600));
        let moved = clock.now().since(before);
        assert!(moved >= Duration::from_secs(72 * 3600), "{moved:?}");
        assert!(moved < Duration::from_secs(72 * 3600 + 60), "{moved:?}");
        assert!(!clock.is_virtual());
    }

    #[tokio::test]
    async fn a_virtual_poll_moves_time_and_yields_real_time() {
        let start = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
        let clock = Clock::virtual_at(start);
        let wall = std::time::Instant::now();
        for _ in 0..20 {
            let next = clock.now().plus(Duration::from_millis(100));
            clock.poll_until(next).await;
        }
        assert_eq!(clock.now(), start.plus(Duration::from_secs(2)));
        assert!(
            wall.elapsed() >= Duration::from_millis(20),
            "twenty polls gave others at least 20ms of real time"
        );
    }

    #[tokio::test]
    async fn a_scaled_clock_runs_fast_and_states_wall_times() {
        let start = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
        let clock = Clock::scaled_at(start, 3600.0);
        assert_eq!(clock.time_scale(), Some(3600.0));
        let wall = std::time::Instant::now();
        clock.sleep(Duration::from_secs(360)).await;
        let took = wall.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        assert!(clock.now().since(start) >= Duration::from_secs(360));
        assert_eq!(
            clock.wall_duration(Duration::from_secs(3600)),
            Duration::from_secs(1)
        );
        assert_eq!(
            clock.wall_duration(Duration::from_secs(1)),
            Duration::from_millis(1),
            "rounded up, never down to zero"
        );
        let later = clock.now().plus(Duration::from_secs(7200));
        let wall_then = clock.wall_time_of(later);
        let back = clock.org_time_of(wall_then);
        assert!(back >= later, "{back:?} < {later:?}");
        assert!(back.since(later) <= Duration::from_secs(4), "{back:?}");
        // Paused, org time stands still; resumed, it runs on from there.
        clock.pause();
        let paused = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now(), paused);
        clock.advance(Duration::from_secs(60));
        assert_eq!(clock.now(), paused.plus(Duration::from_secs(60)));
        clock.resume();
        let resumed = clock.now();
        assert!(
            resumed >= paused.plus(Duration::from_secs(60)),
            "{resumed:?}"
        );
        assert!(
            resumed.since(paused) < Duration::from_secs(60 + 36),
            "{resumed:?}"
        );
        // Other clocks state org time as it is.
        let v = Clock::virtual_at(start);
        assert_eq!(v.wall_time_of(later), later);
        assert_eq!(
            v.wall_duration(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }

    #[tokio::test]
    async fn virtual_time_never_goes_backwards() {
        let start = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
        let clock = Clock::virtual_at(start);
        clock.sleep(Duration::from_secs(10)).await;
        clock.sleep_until(start.plus(Duration::from_secs(5))).await;
        assert_eq!(clock.now(), start.plus(Duration::from_secs(10)));
    }
}
