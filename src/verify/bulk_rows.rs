//! `bulk-rows-processed-once`: no Bulk API 2.0 row was processed twice. An engine that
//! sends an upload again after its answer was lost (the rows were taken: they go in the
//! job twice), or sends a job again that had in fact finished, leaves the org's records
//! right, since an upsert of the same values changes nothing, but runs every trigger,
//! workflow and change event of those records twice and spends the org's Bulk limits.
//! Judged on the rows finished jobs processed successfully: the same row (every column
//! equal) twice, in one job or across jobs; and a record a finished job wrote (or rejected
//! with an error that sending again cannot change) sent again by an sObject Collections
//! request of the same run, unless the engine asked for the job's `successfulResults`
//! (`failedResults`) and never got them (then it could not know, and sending again is the
//! safe choice). An engine that does not read the results it is owed sends those rows again.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::invariants::{names, Violation};
use crate::mock::bulk::{CellsDigest, ProcessedRow};
use crate::mock::JournalEntry;
use crate::sim::Timestamp;

/// Rows a violation names before it counts the rest.
const MAX_DETAILS: usize = 8;

/// The rows processed more than once, with the jobs that processed them. `journal` is the
/// org's request log; collections writes at or after `run_ends` (a later run's, which may
/// carry a newer source version) are not held against the jobs before it.
pub fn check(
    rows: &[ProcessedRow],
    journal: &[JournalEntry],
    run_ends: Option<Timestamp>,
) -> Option<Violation> {
    let mut jobs_of: BTreeMap<(&str, &str, CellsDigest), Vec<&str>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.rejected.is_none()) {
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
    details.extend(written_again(rows, journal, run_ends));
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

/// Records a finished job settled (written, or rejected for good) that a collections
/// request of the same run sent again, one line per job and kind.
fn written_again(
    rows: &[ProcessedRow],
    journal: &[JournalEntry],
    run_ends: Option<Timestamp>,
) -> Vec<String> {
    // The first job that settled each record, and how: written, or rejected with a code
    // that sending again cannot change (a row lock or a trigger's limit can).
    let mut settled: HashMap<(&str, &str), (&str, Settled<'_>)> = HashMap::new();
    for row in rows {
        let how = match &row.rejected {
            None => Settled::Written,
            Some((code, message))
                if !super::discipline::wasted::record_retryable(code, message) =>
            {
                Settled::Rejected(code)
            }
            Some(_) => continue,
        };
        settled
            .entry((&row.object, &row.key))
            .or_insert((&row.job, how));
    }
    if settled.is_empty() {
        return Vec::new();
    }
    // Per job and kind of result: whether the engine asked for them, and got them.
    let mut asked: HashMap<(&str, &str), bool> = HashMap::new();
    for e in journal {
        let Some((job, kind)) = e.path.split_once("/jobs/ingest/").and_then(|(_, rest)| {
            let rest = rest.split('?').next().unwrap_or(rest);
            rest.split_once('/')
        }) else {
            continue;
        };
        if kind != "successfulResults" && kind != "failedResults" {
            continue;
        }
        let received = (200..300).contains(&e.status)
            && !e.fault.as_deref().is_some_and(|f| f.contains("lost"));
        let got = asked.entry((job, kind)).or_insert(false);
        *got = *got || received;
    }
    let mut again: BTreeMap<(&str, Settled<'_>), SentAgain<'_>> = BTreeMap::new();
    for e in journal {
        if run_ends.is_some_and(|end| e.at >= end) {
            continue;
        }
        let (Some(object), Some(outcomes)) = (e.object.as_deref(), &e.record_outcomes) else {
            continue;
        };
        for o in outcomes {
            let Some(&(job, how)) = settled.get(&(object, o.external_id.as_str())) else {
                continue;
            };
            // Asked and never answered: the engine could not know how the row had ended.
            if asked.get(&(job, how.results())) == Some(&false) {
                continue;
            }
            let (n, keys, seqs) = again.entry((job, how)).or_default();
            *n += 1;
            keys.insert(o.external_id.as_str());
            if !seqs.contains(&e.seq) {
                seqs.push(e.seq);
            }
        }
    }
    again
        .into_iter()
        .map(|((job, how), (n, keys, seqs))| {
            let kind = how.results();
            let read = if asked.contains_key(&(job, kind)) {
                format!("after reading them in its {kind}")
            } else {
                format!("without reading the job's {kind}")
            };
            let shown: Vec<String> = seqs.iter().take(3).map(|s| format!("#{s}")).collect();
            format!(
                "{n} record(s) ({} distinct) job {job} had {} were sent again by collections request(s) {}{} {read}",
                keys.len(),
                how.describe(),
                shown.join(", "),
                if seqs.len() > 3 { ", …" } else { "" }
            )
        })
        .collect()
}

/// Per job and what it did with them: records sent again, the distinct ones among them,
/// and the requests that carried them.
type SentAgain<'a> = (usize, HashSet<&'a str>, Vec<u64>);

/// How a finished job left a record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Settled<'a> {
    Written,
    Rejected(&'a str),
}

impl Settled<'_> {
    /// The job's result set that says so.
    fn results(self) -> &'static str {
        match self {
            Settled::Written => "successfulResults",
            Settled::Rejected(_) => "failedResults",
        }
    }

    fn describe(self) -> String {
        match self {
            Settled::Written => "written successfully".into(),
            Settled::Rejected(code) => format!("rejected for good ({code})"),
        }
    }
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
            rejected: None,
        }
    }

    #[test]
    fn a_row_twice_in_one_job_or_across_jobs_is_named_a_changed_row_is_not() {
        assert!(check(
            &[row("750A", "C-1", "x=1"), row("750B", "C-2", "x=1")],
            &[],
            None
        )
        .is_none());
        // A later version of the record (other values) is a new send, not a repeat.
        assert!(check(
            &[row("750A", "C-1", "x=1"), row("750B", "C-1", "x=2")],
            &[],
            None
        )
        .is_none());
        // Cells that concatenate alike are still different rows.
        assert!(check(
            &[row("750A", "C-1", "x=1,y=2"), row("750B", "C-1", "x=1y,=2")],
            &[],
            None
        )
        .is_none());
        assert!(check(
            &[row("750A", "C-1", "x=1,y="), row("750B", "C-1", "x=1")],
            &[],
            None
        )
        .is_none());
        let twice = check(
            &[row("750A", "C-1", "x=1"), row("750A", "C-1", "x=1")],
            &[],
            None,
        )
        .unwrap();
        assert_eq!(twice.invariant, names::BULK_ROWS_ONCE);
        assert!(
            twice.details[0].contains("processed 2 times in job 750A"),
            "{twice:?}"
        );
        let across = check(
            &[row("750A", "C-1", "x=1"), row("750B", "C-1", "x=1")],
            &[],
            None,
        )
        .unwrap();
        assert!(
            across.details[0].contains("in jobs 750A, 750B"),
            "{across:?}"
        );
    }

    #[test]
    fn a_processed_record_written_again_by_collections_is_named_unless_its_results_were_lost() {
        use crate::mock::journal::{RecordOutcome, RecordResult};
        use crate::verify::discipline::testing::entry;
        let rows = [row("750A", "C-1", "x=1"), row("750A", "C-2", "x=2")];
        let results = |status: u16, fault: Option<&str>| {
            let mut e = entry(1, 0, 10);
            e.method = "GET".into();
            e.path = "/services/data/v62.0/jobs/ingest/750A/successfulResults".into();
            e.status = status;
            e.fault = fault.map(str::to_string);
            e
        };
        let mut upsert = entry(2, 1_000, 10);
        upsert.record_outcomes = Some(vec![RecordOutcome {
            external_id: "C-2".into(),
            digest: 7,
            result: RecordResult::Applied,
        }]);
        // Read and then sent again: named, with the request.
        let found = check(&rows, &[results(200, None), upsert.clone()], None).unwrap();
        assert_eq!(found.invariant, names::BULK_ROWS_ONCE);
        assert!(
            found.details[0].starts_with("1 record(s) (1 distinct) job 750A had written successfully were sent again by collections request(s) #2 after reading them in its successfulResults"),
            "{found:?}"
        );
        // Never read: named as such.
        let found = check(&rows, std::slice::from_ref(&upsert), None).unwrap();
        assert!(
            found.details[0].ends_with("without reading the job's successfulResults"),
            "{found:?}"
        );
        // A row rejected for good and sent again; one rejected for a row lock may be.
        let mut rejected = rows.clone();
        rejected[1].rejected = Some((
            "STRING_TOO_LONG".into(),
            "Title: data value too large".into(),
        ));
        let found = check(&rejected, std::slice::from_ref(&upsert), None).unwrap();
        assert!(
            found.details[0].starts_with("1 record(s) (1 distinct) job 750A had rejected for good (STRING_TOO_LONG) were sent again")
                && found.details[0].ends_with("without reading the job's failedResults"),
            "{found:?}"
        );
        rejected[1].rejected = Some((
            "UNABLE_TO_LOCK_ROW".into(),
            "unable to obtain exclusive access".into(),
        ));
        assert!(check(&rejected, std::slice::from_ref(&upsert), None).is_none());
        // Asked, and the answer was lost: sending again was the safe choice.
        let lost = results(500, Some("response_lost"));
        assert!(check(&rows, &[lost, upsert.clone()], None).is_none());
        // A later run's write may carry a newer version.
        let later = Timestamp::parse("2026-01-05T08:00:01Z");
        assert!(check(&rows, &[results(200, None), upsert], later).is_none());
    }
}
