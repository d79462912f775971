//! When to poll a Bulk API 2.0 job's status, so that a job is usually polled once, soon
//! after it completes.
//!
//! Salesforce cuts a job into internal batches of 10,000 records and processes several at
//! once; a job's time from `UploadComplete` is its queue time plus the time of its batches
//! spread over the parallel workers (but never less than one full batch). [`Pace`] keeps
//! that model's three numbers — seconds per record, batches at once, queue time — starting
//! from priors (the configured `bulk_records_per_sec`, [`ASSUMED_PARALLEL`],
//! [`ASSUMED_QUEUE`]) and replacing them with what the org reports about the jobs of this
//! run: the `systemModstamp` of the close answer, of the first `InProgress` answer and of
//! the `JobComplete` answer (org time, so the engine's own latency does not count), and
//! `totalProcessingTime` (the batches' summed processing time). Per object first, else
//! from any object of the run.
//!
//! The first poll comes at the expected time plus a margin ([`MARGIN`], [`MARGIN_KNOWN`]);
//! a job still running then is
//! polled again when the rest should be done at the rate its `numberRecordsProcessed`
//! shows ([`next_poll`]), else on a doubling interval, as Salesforce's guidance asks.

use std::collections::HashMap;
use std::time::Duration;

use crate::engine::EngineConfig;

/// Salesforce creates a separate internal batch for every 10,000 records of a job.
pub const BATCH_RECORDS: u64 = 10_000;
/// Batches processed at once before the org has said otherwise (Salesforce processes a
/// job's batches in parallel without documenting how many).
pub const ASSUMED_PARALLEL: f64 = 2.0;
/// Queue time before the org has said otherwise.
pub const ASSUMED_QUEUE: Duration = Duration::from_millis(500);
/// The first poll waits this much longer than the job is expected to take: an early poll
/// costs an API call, a late one only its share of the wait. Once a job of the same object
/// completed in this run its pace differs only by the org's own variation ([`MARGIN_KNOWN`]);
/// from priors or another object's pace it may differ more.
pub const MARGIN: f64 = 1.25;
pub const MARGIN_KNOWN: f64 = 1.1;
/// The shortest wait between two status polls of one job.
pub const MIN_POLL_WAIT: Duration = Duration::from_millis(100);

/// What the org showed of its Bulk processing speed.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Speed {
    /// Processing seconds per record (batch set-up included).
    per_record: f64,
    /// Batches at once.
    parallel: f64,
    /// From `UploadComplete` to `InProgress`.
    queue: Duration,
}

/// One job's times as the org reported them, for [`Pace::learn`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observed {
    pub records: u64,
    /// From `UploadComplete` to `JobComplete` (org time).
    pub took: Duration,
    /// From `UploadComplete` to `InProgress`, when a poll saw the job in progress.
    pub queue: Option<Duration>,
    /// `totalProcessingTime`, when the org reports it.
    pub processing: Option<Duration>,
}

/// The run's model of how fast the org processes Bulk jobs.
#[derive(Clone, Debug)]
pub struct Pace {
    prior: Speed,
    /// The last job's speed, per object, and of any object.
    by_object: HashMap<String, Speed>,
    last: Option<Speed>,
}

impl Pace {
    pub fn new(config: &EngineConfig) -> Pace {
        Pace {
            prior: Speed {
                per_record: 1.0 / config.bulk_records_per_sec.max(1e-3),
                parallel: ASSUMED_PARALLEL,
                queue: ASSUMED_QUEUE,
            },
            by_object: HashMap::new(),
            last: None,
        }
    }

    fn speed(&self, object: &str) -> Speed {
        self.by_object
            .get(object)
            .or(self.last.as_ref())
            .copied()
            .unwrap_or(self.prior)
    }

    /// How long a job of `n` records of `object` should take from `UploadComplete`.
    pub fn expected(&self, object: &str, n: u64) -> Duration {
        let s = self.speed(object);
        let batches = n.div_ceil(BATCH_RECORDS).max(1) as f64;
        let one_batch = n.min(BATCH_RECORDS) as f64 * s.per_record;
        let spread = n as f64 * s.per_record / s.parallel.clamp(1.0, batches);
        s.queue + Duration::from_secs_f64(one_batch.max(spread))
    }

    /// The wait from `UploadComplete` to the first status poll.
    pub fn first_wait(&self, object: &str, n: u64, config: &EngineConfig) -> Duration {
        let margin = if self.by_object.contains_key(object) {
            MARGIN_KNOWN
        } else {
            MARGIN
        };
        self.expected(object, n).mul_f64(margin).clamp(
            MIN_POLL_WAIT.min(config.bulk_poll_cap),
            config.bulk_poll_cap,
        )
    }

    /// Takes the speed a completed job of `object` showed.
    pub fn learn(&mut self, object: &str, job: Observed) {
        if job.records == 0 || job.took.is_zero() {
            return;
        }
        let old = self.speed(object);
        let batches = job.records.div_ceil(BATCH_RECORDS) as f64;
        let processing = job.processing.filter(|p| !p.is_zero());
        // The queue time: seen (the `InProgress` answer's time), else what is left of the
        // job's time after its batches at the parallelism believed so far, else as before.
        let queue = match (job.queue, processing) {
            (Some(q), _) => q,
            (None, Some(p)) => {
                let longest =
                    p.as_secs_f64() * job.records.min(BATCH_RECORDS) as f64 / job.records as f64;
                let running = longest.max(p.as_secs_f64() / old.parallel.clamp(1.0, batches));
                job.took.saturating_sub(Duration::from_secs_f64(running))
            }
            (None, None) => old.queue,
        }
        .min(job.took);
        let running = job.took.saturating_sub(queue).as_secs_f64().max(1e-3);
        let speed = match processing {
            // The org's summed batch time: per record, and how many ran at once.
            Some(p) => Speed {
                per_record: p.as_secs_f64() / job.records as f64,
                parallel: if batches > 1.0 {
                    (p.as_secs_f64() / running).clamp(1.0, batches)
                } else {
                    old.parallel
                },
                queue,
            },
            // Only the elapsed time: read through the model of [`Pace::expected`] with
            // the parallelism believed so far.
            None => {
                let at_once = old.parallel.clamp(1.0, batches);
                let long =
                    (job.records.min(BATCH_RECORDS) as f64).max(job.records as f64 / at_once);
                Speed {
                    per_record: running / long,
                    parallel: old.parallel,
                    queue,
                }
            }
        };
        self.by_object.insert(object.to_string(), speed);
        self.last = Some(speed);
    }
}

/// How long to wait before the next status poll of a job of `n` records that reports
/// `processed` of them done `elapsed` after it was closed: the time the rest takes at the
/// rate observed so far; while the job reports no progress, what is left of the time
/// `expected` gives it, else an interval doubling up to `bulk_poll_cap`.
/// Never less than [`MIN_POLL_WAIT`] nor more than `bulk_poll_cap`.
pub fn next_poll(
    n: u64,
    processed: u64,
    elapsed: Duration,
    expected: Duration,
    interval: &mut Duration,
    config: &EngineConfig,
) -> Duration {
    let rest = if processed > 0 && processed < n {
        elapsed.mul_f64((n - processed) as f64 / processed as f64)
    } else {
        expected.saturating_sub(elapsed)
    };
    let wait = if rest.is_zero() {
        let w = *interval;
        *interval = (*interval * 2).min(config.bulk_poll_cap);
        w
    } else {
        rest
    };
    wait.clamp(
        MIN_POLL_WAIT.min(config.bulk_poll_cap),
        config.bulk_poll_cap,
    )
}
