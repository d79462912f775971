//! What `syncgate sync` leaves for a gate that runs it as an engine command
//! (docs/engine-protocol.md): the dead-letters file (`SYNCGATE_DEAD_LETTERS`), the report
//! file (`SYNCGATE_REPORT`) and the CRM outbox's existence (`SYNCGATE_CRM_OUTBOX`), so the
//! gate can check every invariant on the shipped binary run as a foreign process, as it does
//! in process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::SyncReport;
use crate::store::{LetterStatus, StoredLetter};

/// Writes the tenant's letters still queued (the queue as it stands after this start: a
/// letter a newer applied version retired is no longer given up on), one JSON line each.
/// The file is rewritten, so a restart that re-reads the queue lists each letter once.
pub fn write_dead_letters(path: &Path, letters: &[StoredLetter]) -> std::io::Result<()> {
    let mut text = String::new();
    for l in letters.iter().filter(|l| l.status == LetterStatus::Queued) {
        let d = &l.letter;
        let line = json!({
            "object": d.object,
            "source_id": d.source_id,
            "version": d.source_version,
            "code": d.error_code,
            "message": d.message,
            "class": d.class.as_str(),
            "attempts": d.attempts,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    write_atomically(path, &text)
}

/// The report file of the protocol (`SYNCGATE_REPORT`), as engines write it and the gate
/// reads it: source columns not mapped, columns routed to same-named fields, counters.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportFile {
    #[serde(default)]
    pub unmapped_columns: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    pub routed_columns: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
}

/// Adds this start's report to the file: unmapped and routed columns (a restart skips the
/// versions an earlier start applied, so it sees their columns no more) and the counters.
pub fn write_report(path: &Path, r: &SyncReport) -> std::io::Result<()> {
    let mut file: ReportFile = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| std::io::Error::other(format!("the report file holds no report: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ReportFile::default(),
        Err(e) => return Err(e),
    };
    for (entity, columns) in &r.unmapped_columns {
        file.unmapped_columns
            .entry(entity.clone())
            .or_default()
            .extend(columns.iter().cloned());
    }
    for (entity, routes) in &r.routed_columns {
        file.routed_columns
            .entry(entity.clone())
            .or_default()
            .extend(routes.clone());
    }
    let counters = [
        ("records", r.records as u64),
        ("created", r.created as u64),
        ("updated", r.updated as u64),
        ("dead_lettered", r.dead_lettered as u64),
        ("retries", r.retries as u64),
        ("api_calls", r.api_calls),
        ("deleted", r.deleted as u64),
        ("rejected_before_sending", r.rejected_before_sending as u64),
        ("already_synced", r.already_synced as u64),
        ("already_dead_lettered", r.already_dead_lettered as u64),
        ("bulk_jobs", r.bulk_jobs as u64),
    ];
    for (name, n) in counters {
        *file.counters.entry(name.to_string()).or_default() += n;
    }
    let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
    write_atomically(path, &text)
}

/// Creates the CRM outbox if it does not exist yet: an empty outbox says the consumer ran
/// and found nothing to carry back, where a missing one says no consumer ran.
pub fn touch_outbox(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
}

/// A reader never sees half a file: write beside it, then rename over it.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Timestamp;
    use crate::store::{DeadLetter, ErrorClass};

    fn stored(id: i64, source_id: &str, status: LetterStatus) -> StoredLetter {
        StoredLetter {
            id,
            letter: DeadLetter {
                tenant: "p/t".into(),
                object: "Account".into(),
                source_id: source_id.into(),
                source_version: 3,
                payload: serde_json::Value::Null,
                class: ErrorClass::Invalid,
                error_code: "STRING_TOO_LONG".into(),
                message: "Name: data value too large".into(),
                attempts: 0,
                correlation_id: None,
                first_failed_at: Timestamp::from_millis(0),
                last_failed_at: Timestamp::from_millis(0),
                idempotency_key: String::new(),
                headers_sent: Default::default(),
            },
            history: Vec::new(),
            status,
            superseded_by: None,
        }
    }

    #[test]
    fn queued_letters_and_the_report_are_written_in_the_protocol_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead-letters.jsonl");
        let letters = [
            stored(1, "A-1", LetterStatus::Queued),
            stored(2, "A-2", LetterStatus::Superseded),
        ];
        write_dead_letters(&path, &letters).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["source_id"], "A-1");
        assert_eq!(lines[0]["class"], "invalid");
        assert_eq!(lines[0]["code"], "STRING_TOO_LONG");
        assert_eq!(lines[0]["version"], 3);

        let mut r = SyncReport {
            created: 4,
            ..SyncReport::default()
        };
        r.unmapped_columns
            .entry("accounts".into())
            .or_default()
            .insert("fleet_size".into());
        let rp = dir.path().join("report.json");
        write_report(&rp, &r).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&rp).unwrap()).unwrap();
        assert_eq!(v["counters"]["created"], 4);
        assert_eq!(v["unmapped_columns"]["accounts"][0], "fleet_size");
        // A restart adds to it: its columns join, its counters add up.
        let mut second = SyncReport {
            created: 1,
            ..SyncReport::default()
        };
        second
            .unmapped_columns
            .entry("contacts".into())
            .or_default()
            .insert("phone".into());
        write_report(&rp, &second).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&rp).unwrap()).unwrap();
        assert_eq!(v["counters"]["created"], 5);
        assert_eq!(v["unmapped_columns"]["accounts"][0], "fleet_size");
        assert_eq!(v["unmapped_columns"]["contacts"][0], "phone");
        std::fs::write(&rp, "not json").unwrap();
        assert!(write_report(&rp, &second).is_err());
    }
}
