//! How long the mock org takes to process a Bulk API 2.0 ingest job, modelled on how
//! Salesforce describes it: after `UploadComplete` the job waits in a queue, then its rows
//! are cut into internal batches of 10,000 records that are processed in parallel by a
//! few workers; a batch's time grows with its records and with what each record costs the
//! org (columns to write, relationships to resolve by external ID, validation rules to
//! run). `numberRecordsProcessed` grows as batches finish, not smoothly. Queue time and
//! every batch's time vary by a seeded draw, so a client cannot know a job's time from
//! its size alone: it has to follow what the org reports.

use std::time::Duration;

use crate::sim::Rng;

/// Salesforce creates a separate internal batch for every 10,000 records of a job.
pub const BATCH_RECORDS: usize = 10_000;
/// Internal batches of one job processed at the same time.
pub const WORKERS: usize = 2;
/// Queue time after `UploadComplete` before the job shows `InProgress`: this plus up to
/// [`QUEUE_JITTER_MS`].
const QUEUE_BASE: Duration = Duration::from_millis(150);
const QUEUE_JITTER_MS: u64 = 80;
/// Fixed cost of an internal batch (its transaction set-up and commit).
const BATCH_OVERHEAD: Duration = Duration::from_millis(100);
/// Cost of a record: a base, per column written, per relationship resolved, per
/// validation rule run (microseconds).
const RECORD_BASE_US: f64 = 40.0;
const PER_COLUMN_US: f64 = 6.0;
const PER_RELATIONSHIP_US: f64 = 25.0;
const PER_RULE_US: f64 = 10.0;
/// A batch takes between 0.9 and 1.15 times its nominal time.
const BATCH_JITTER: (f64, f64) = (0.9, 1.15);

/// What a job's rows cost the org, from its CSV header and the object's rules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowCost {
    pub columns: usize,
    pub relationships: usize,
    pub rules: usize,
}

impl RowCost {
    fn per_record(self) -> f64 {
        (RECORD_BASE_US
            + PER_COLUMN_US * self.columns as f64
            + PER_RELATIONSHIP_US * self.relationships as f64
            + PER_RULE_US * self.rules as f64)
            * 1e-6
    }
}

/// When a closed job starts and when each of its internal batches finishes, counted
/// from `UploadComplete`.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// From `UploadComplete` to `InProgress`.
    pub queue: Duration,
    /// Per internal batch in row order: its records and when it is done (from close).
    pub batches: Vec<(usize, Duration)>,
    /// The sum of the batches' processing times (`totalProcessingTime`).
    pub processing: Duration,
}

impl Schedule {
    /// Plans a job of `rows` rows costing `cost` each, drawing its variation from `rng`.
    pub fn plan(rows: usize, cost: RowCost, rng: &mut Rng) -> Schedule {
        let queue = QUEUE_BASE + Duration::from_millis(rng.up_to(QUEUE_JITTER_MS));
        let mut free = [queue; WORKERS];
        let mut batches = Vec::new();
        let mut processing = Duration::ZERO;
        let mut left = rows;
        // A job with no rows still runs its (empty) parent batch.
        loop {
            let size = left.min(BATCH_RECORDS);
            let factor = BATCH_JITTER.0 + (BATCH_JITTER.1 - BATCH_JITTER.0) * rng.next_f64();
            let took =
                BATCH_OVERHEAD + Duration::from_secs_f64(size as f64 * cost.per_record() * factor);
            // The worker free first takes the next batch.
            let w = (0..WORKERS).min_by_key(|&w| free[w]).unwrap_or(0);
            free[w] += took;
            processing += took;
            batches.push((size, free[w]));
            left -= size;
            if left == 0 {
                break;
            }
        }
        Schedule {
            queue,
            batches,
            processing,
        }
    }

    /// From `UploadComplete` until every batch is done.
    pub fn total(&self) -> Duration {
        self.batches
            .iter()
            .map(|&(_, done)| done)
            .max()
            .unwrap_or(self.queue)
    }

    /// Records of the batches finished `elapsed` after `UploadComplete`.
    pub fn processed_at(&self, elapsed: Duration) -> u64 {
        self.batches
            .iter()
            .filter(|&&(_, done)| done <= elapsed)
            .map(|&(n, _)| n as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Seed;

    const ACCOUNT: RowCost = RowCost {
        columns: 8,
        relationships: 0,
        rules: 1,
    };

    #[test]
    fn rows_are_cut_into_batches_of_ten_thousand_run_two_at_a_time() {
        let mut rng = Seed(1).stream("t");
        let s = Schedule::plan(42_000, ACCOUNT, &mut rng);
        let sizes: Vec<usize> = s.batches.iter().map(|b| b.0).collect();
        assert_eq!(sizes, vec![10_000, 10_000, 10_000, 10_000, 2_000]);
        assert!(s.queue >= QUEUE_BASE && s.queue <= QUEUE_BASE + Duration::from_millis(80));
        // 98 µs a record: a 10,000-record batch takes 0.98 s (× 0.9–1.15) plus 0.1 s.
        for &(n, _) in &s.batches[..4] {
            assert_eq!(n, 10_000);
        }
        let total = s.total().as_secs_f64();
        assert!((2.2..3.1).contains(&total), "{total}");
        // Two run at once: the sum of the batches' times is well over the job's time.
        assert!(s.processing.as_secs_f64() > 1.7 * (total - s.queue.as_secs_f64()));
        // Progress comes in steps of whole batches.
        assert_eq!(s.processed_at(s.queue), 0);
        let first_two = s.batches[0].1.max(s.batches[1].1);
        assert_eq!(s.processed_at(first_two), 20_000);
        assert_eq!(s.processed_at(s.total()), 42_000);
    }

    #[test]
    fn the_time_varies_by_seed_and_grows_with_what_a_record_costs() {
        let totals: Vec<Duration> = (0..8)
            .map(|seed| Schedule::plan(42_000, ACCOUNT, &mut Seed(seed).stream("t")).total())
            .collect();
        let (lo, hi) = (totals.iter().min().unwrap(), totals.iter().max().unwrap());
        assert!(*hi > *lo + Duration::from_millis(100), "{totals:?}");
        let heavy = RowCost {
            relationships: 2,
            ..ACCOUNT
        };
        let mut a = Seed(3).stream("t");
        let mut b = Seed(3).stream("t");
        assert!(
            Schedule::plan(42_000, heavy, &mut a).total()
                > Schedule::plan(42_000, ACCOUNT, &mut b).total()
        );
        // A small job is done in well under a second.
        let small = Schedule::plan(3, ACCOUNT, &mut Seed(1).stream("t"));
        assert!(small.total() < Duration::from_millis(400), "{small:?}");
        assert_eq!(small.batches.len(), 1);
    }
}
