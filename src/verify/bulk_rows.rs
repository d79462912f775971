//! `bulk-rows-processed-once`: no Bulk API 2.0 row was processed twice. An engine that
//! sends an upload again after its answer was lost (the rows were taken: they go in the
//! job twice), or sends a job again that had in fact finished, leaves the org's records
//! right, since an upsert of the same values changes nothing, but runs every trigger,
//! workflow and change event of those records twice and spends the org's Bulk limits.
//! Judged on the rows finished jobs processed successfully: the same row (every column
//! equal) twice, in one job or across jobs.

use std::collections::BTreeMap;

use super::invariants::{names, Violation};
use crate::mock::bulk::{CellsDigest, ProcessedRow};

/// Rows a violation names before it counts the rest.
const MAX_DETAILS: usize = 8;

/// The rows processed more than once, with the jobs that processed them.
pub fn check(rows: &[ProcessedRow]) -> Option<Violation> {
    let mut jobs_of: BTreeMap<(&str, &str, CellsDigest), Vec<&str>> = BTreeMap::new();
    for row in rows {
        jobs_of
            .entry((&row.object, &row.key, row.cells))
            .or_default()
            .push(&row.job);
    }
    let mut details: Vec<String> = jobs_of
        .into_iter()
        .filter(|(_, jobs)| jobs.len() > 1)
        .map(|((object, key, _), jobs)| {
            let mut distinct = jobs.clone();
            distinct.dedup();
            let place = if distinct.len() == 1 {
                format!("in job {}", distinct[0])
            } else {
                format!("in jobs {}", distinct.join(", "))
            };
            format!(
                "{object} {key}: the same row was processed {} times {place} (an upload or a job sent again after it had landed)",
                jobs.len()
            )
        })
        .collect();
    let total = details.len();
    if total > MAX_DETAILS {
        details.truncate(MAX_DETAILS);
        details.push(format!("… and {} more", total - MAX_DETAILS));
    }
    (!details.is_empty()).then_some(Violation {
        invariant: names::BULK_ROWS_ONCE,
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(job: &str, key: &str, cells: &str) -> ProcessedRow {
        ProcessedRow {
            object: "Account".into(),
            job: job.into(),
            key: key.into(),
            cells: CellsDigest::of(cells.split(',').filter_map(|p| p.split_once('='))),
        }
    }

    #[test]
    fn a_row_twice_in_one_job_or_across_jobs_is_named_a_changed_row_is_not() {
        assert!(check(&[row("750A", "C-1", "x=1"), row("750B", "C-2", "x=1")]).is_none());
        // A later version of the record (other values) is a new send, not a repeat.
        assert!(check(&[row("750A", "C-1", "x=1"), row("750B", "C-1", "x=2")]).is_none());
        // Cells that concatenate alike are still different rows.
        assert!(check(&[row("750A", "C-1", "x=1,y=2"), row("750B", "C-1", "x=1y,=2")]).is_none());
        assert!(check(&[row("750A", "C-1", "x=1,y="), row("750B", "C-1", "x=1")]).is_none());
        let twice = check(&[row("750A", "C-1", "x=1"), row("750A", "C-1", "x=1")]).unwrap();
        assert_eq!(twice.invariant, names::BULK_ROWS_ONCE);
        assert!(
            twice.details[0].contains("processed 2 times in job 750A"),
            "{twice:?}"
        );
        let across = check(&[row("750A", "C-1", "x=1"), row("750B", "C-1", "x=1")]).unwrap();
        assert!(
            across.details[0].contains("in jobs 750A, 750B"),
            "{across:?}"
        );
    }
}
