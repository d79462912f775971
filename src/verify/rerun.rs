//! The second run of a scenario over changes the first already settled must send nothing:
//! dedupe, cursors and idempotency keys are what stop an at-least-once source from costing
//! calls (and overwriting newer values) twice.

use std::collections::BTreeSet;

use super::invariants::{names, Violation};
use crate::mock::JournalEntry;
use crate::source::SourceSet;

/// Whether every change of `later` is one `first` already held (same record, same version,
/// same delete flag): a second run over it has nothing to do.
pub fn adds_nothing(first: &SourceSet, later: &SourceSet) -> bool {
    let seen: BTreeSet<(&str, &str, u64, bool)> = first
        .entities
        .values()
        .flatten()
        .map(|r| (r.entity.as_str(), r.id.as_str(), r.version, r.deleted))
        .collect();
    later
        .entities
        .values()
        .flatten()
        .all(|r| seen.contains(&(r.entity.as_str(), r.id.as_str(), r.version, r.deleted)))
}

/// A request that writes to the org (records, Bulk jobs), as opposed to sign-ins, reads and
/// the mock's own admin paths.
fn is_write(e: &JournalEntry) -> bool {
    matches!(e.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
        && !e.path.contains("/oauth2/")
        && !e.path.contains("/__syncgate/")
        && !e.path.contains("/query")
}

/// The invariant over the second run's requests (`journal[from..]`).
pub fn check(journal: &[JournalEntry], from: usize) -> Option<Violation> {
    let writes: Vec<&JournalEntry> = journal.iter().skip(from).filter(|e| is_write(e)).collect();
    if writes.is_empty() {
        return None;
    }
    let mut details = vec![format!(
        "the second run had nothing new to sync, yet sent {} write request(s):",
        writes.len()
    )];
    details.extend(writes.iter().take(5).map(|e| {
        format!(
            "request #{} {} {}{}",
            e.seq,
            e.method,
            e.path,
            e.records
                .map(|n| format!(" ({n} record(s))"))
                .unwrap_or_default()
        )
    }));
    if writes.len() > 5 {
        details.push(format!("… and {} more", writes.len() - 5));
    }
    Some(Violation {
        invariant: names::RERUN,
        details,
    })
}
