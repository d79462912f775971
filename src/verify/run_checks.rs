//! Checks every run gets, whichever engine ran (in process or an engine command): the
//! scenario's fault rules fired, a second run over settled changes sent nothing, no
//! dead letter stands for a record that landed, and no Bulk row was processed twice.

use std::collections::{BTreeMap, HashMap};

use super::invariants::{names, Violation};
use super::oracle::Expectations;
use crate::contract::Bundle;
use crate::mock::{JournalEntry, Record};
use crate::sim::Scenario;
use crate::source::SourceSet;
use crate::store::DeadLetter;

/// What those checks read.
pub struct RunEvidence<'a> {
    pub scenario: &'a Scenario,
    pub journal: &'a [JournalEntry],
    /// Where the second run's requests start, when it had nothing new to sync.
    pub rerun_from: Option<usize>,
    /// The org as it really is.
    pub bundle: &'a Bundle,
    pub expected: &'a Expectations,
    pub org: &'a BTreeMap<String, Vec<Record>>,
    /// Dead letters still queued (not superseded).
    pub queued: &'a [DeadLetter],
    pub source: &'a SourceSet,
    /// The rows finished Bulk jobs processed.
    pub bulk_rows: &'a [crate::mock::bulk::ProcessedRow],
}

pub fn check(ev: &RunEvidence<'_>) -> Vec<Violation> {
    let mut violations = Vec::new();
    if let Some(from) = ev.rerun_from {
        violations.extend(super::rerun::check(ev.journal, from));
    }
    // The latest version of every source record, indexed once (not per letter).
    let latest: HashMap<(&str, &str), u64> = ev
        .source
        .entities
        .keys()
        .flat_map(|entity| {
            super::model::latest_versions(ev.source, entity)
                .into_iter()
                .map(move |r| ((entity.as_str(), r.id.as_str()), r.version))
        })
        .collect();
    violations.extend(super::letters::check(
        ev.bundle,
        ev.expected,
        ev.org,
        ev.queued,
        |entity, id| latest.get(&(entity, id)).copied(),
    ));
    // Writes of a later run may carry a newer version of a record a job of the first run
    // processed: only the first run's writes are held against its jobs.
    let run_ends = ev
        .scenario
        .next_run
        .as_ref()
        .map(|n| ev.scenario.start.plus(n.after.0));
    violations.extend(super::bulk_rows::check(ev.bulk_rows, ev.journal, run_ends));
    violations.extend(faults_fired(ev.scenario, ev.journal));
    violations
}

/// Every fault rule not marked `optional` injected its fault at least once: a scenario
/// that did not exercise what it states must not read `ok`.
fn faults_fired(scenario: &Scenario, journal: &[JournalEntry]) -> Option<Violation> {
    let unfired: Vec<String> = scenario
        .faults
        .iter()
        .filter(|rule| !rule.optional)
        .filter(|rule| {
            let fired = format!("{}: ", rule.name);
            !journal
                .iter()
                .any(|e| e.fault.as_deref().is_some_and(|f| f.starts_with(&fired)))
        })
        .map(|rule| {
            format!(
                "fault rule `{}` of {} never fired: no request it matched got its fault, so the scenario did not exercise it (fix its `match`/`calls`, or mark it `optional: true` if firing depends on chance)",
                rule.name,
                // The file name, not the path: a run's output does not depend on where the
                // scenario directory is (a replay file lays it out elsewhere).
                scenario
                    .path
                    .file_name()
                    .map_or_else(|| scenario.name.clone(), |n| n.to_string_lossy().into_owned())
            )
        })
        .collect();
    (!unfired.is_empty()).then_some(Violation {
        invariant: names::FAULTS_FIRED,
        details: unfired,
    })
}
