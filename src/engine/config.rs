//! The engine's settings ([`EngineConfig`]): batch sizes, retries and backoff, Bulk API
//! 2.0 thresholds and polling, lanes, the rate limiter, the breaker and the run's bounds.
//! `syncgate.toml`'s `[engine]` table sets them ([`super::config_file`]).

use std::time::Duration;

use super::retry::Backoff;
use super::{bounds, bulk};
use crate::store::limiter::LimitPolicy;

/// Settings of one engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Records per sObject Collections call (Salesforce allows 200).
    pub batch_size: usize,
    /// Attempts per batch, the first included, before its records are dead-lettered.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// Sent as `Sforce-Call-Options: client=…`, so change events show the engine's own writes.
    pub client_name: String,
    /// How many daily windows the engine will wait for before giving up on a run.
    pub max_window_waits: u32,
    /// An object whose backfill holds more records than this goes through Bulk API 2.0.
    pub bulk_threshold: usize,
    /// Largest CSV upload per Bulk job; more records make more jobs.
    pub bulk_max_upload_bytes: usize,
    /// Records per second one internal batch of a Bulk job is expected to process, until
    /// the org has shown its own pace (see [`bulk::Pace`]).
    pub bulk_records_per_sec: f64,
    /// Status polls of a job past its expected time that reports no progress start at
    /// this interval and double (see [`bulk::next_poll`]).
    pub bulk_poll_interval: Duration,
    pub bulk_poll_cap: Duration,
    /// A job not done this long after closing is aborted and sent again.
    pub bulk_job_timeout: Duration,
    /// A record changed this recently (by the clock) goes in the real-time lane.
    pub realtime_window: Duration,
    /// Per-tenant token bucket of a single engine (workers bring a shared limiter).
    pub rate_per_sec: f64,
    pub burst: u32,
    /// Requests in flight at once, below the org's 25 concurrent long-running requests.
    pub max_concurrent: u32,
    /// Consecutive transport/5xx failures that open the circuit breaker (0: never).
    pub breaker_threshold: u32,
    /// How long the open breaker holds every call.
    pub breaker_cooldown: Duration,
    /// The run's deadline, retry budget and `Retry-After` cap ([`bounds`]).
    pub limits: bounds::Limits,
    /// Requests the engine may spend per UTC day across every process sharing its limiter
    /// (`sync --redis-url`); `None` leaves the budget to the org's own count
    /// (`Sforce-Limit-Info`).
    pub daily_budget: Option<u64>,
}

impl EngineConfig {
    /// The limiter policy of the engine: its token bucket, concurrency cap and, when set,
    /// daily budget (otherwise left to the `Sforce-Limit-Info` guard: the org's own count).
    pub fn local_policy(&self) -> LimitPolicy {
        LimitPolicy {
            rate_per_sec: self.rate_per_sec,
            burst: self.burst,
            daily_budget: self.daily_budget.unwrap_or(u64::MAX),
            max_concurrent: self.max_concurrent,
            ..LimitPolicy::default()
        }
    }
}

impl EngineConfig {
    /// Takes the calling limits the engine protocol states (`SYNCGATE_ENGINE_LIMITS`:
    /// `{"rate_per_sec", "burst", "max_concurrent"}`, the rate per org second) for a run on
    /// this process's clock, where one wall second is `time_scale` org seconds.
    pub fn apply_protocol_limits(&mut self, json: &str, time_scale: f64) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Limits {
            rate_per_sec: f64,
            burst: u32,
            max_concurrent: u32,
        }
        let l: Limits = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let scale = if time_scale.is_finite() && time_scale >= 1.0 {
            time_scale
        } else {
            return Err(format!(
                "time scale {time_scale} is not a number of at least 1"
            ));
        };
        if !(l.rate_per_sec.is_finite() && l.rate_per_sec > 0.0) || l.burst == 0 {
            return Err("rate_per_sec must be above 0 and burst at least 1".into());
        }
        if l.max_concurrent == 0 {
            return Err("max_concurrent must be at least 1".into());
        }
        self.rate_per_sec = l.rate_per_sec * scale;
        self.burst = l.burst;
        self.max_concurrent = l.max_concurrent;
        Ok(())
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch_size: 200,
            max_attempts: 8,
            backoff: Backoff {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(60),
            },
            client_name: "syncgate".into(),
            max_window_waits: 2,
            bulk_threshold: 2_000,
            bulk_max_upload_bytes: bulk::MAX_UPLOAD_BYTES,
            bulk_records_per_sec: 10_000.0,
            bulk_poll_interval: Duration::from_secs(2),
            bulk_poll_cap: Duration::from_secs(30),
            bulk_job_timeout: Duration::from_secs(2 * 3600),
            realtime_window: Duration::from_secs(15 * 60),
            rate_per_sec: 25.0,
            burst: 25,
            max_concurrent: 10,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            limits: bounds::Limits::default(),
            daily_budget: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_limits_are_taken_with_the_rate_scaled_to_the_wall_clock() {
        let mut c = EngineConfig::default();
        c.apply_protocol_limits(
            r#"{"rate_per_sec": 0.02, "burst": 2, "max_concurrent": 3}"#,
            3600.0,
        )
        .unwrap();
        assert!((c.rate_per_sec - 72.0).abs() < 1e-9);
        assert_eq!((c.burst, c.max_concurrent), (2, 3));
        let e = c
            .apply_protocol_limits(
                r#"{"rate_per_sec": 0, "burst": 2, "max_concurrent": 3}"#,
                1.0,
            )
            .unwrap_err();
        assert!(e.contains("rate_per_sec"), "{e}");
        assert!(c.apply_protocol_limits("{}", 1.0).is_err());
    }
}
