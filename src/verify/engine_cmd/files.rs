//! The files of the engine protocol: the run's source as a fixture directory and as SQLite,
//! and what the engine wrote back (dead letters, its report, CRM changes).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::engine::cdc::{ChangeVia, CrmChange};
use crate::engine::dlq::{DeadLetter, ErrorClass};
use crate::engine::protocol_out::ReportFile;
use crate::engine::source::{SourceRecord, SourceSet};
use crate::engine::SyncReport;
use crate::sim::Timestamp;

pub(super) fn copy_fixtures(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str());
        if path.is_file() && matches!(ext, Some("jsonl") | Some("csv")) {
            if let Some(name) = path.file_name() {
                std::fs::copy(&path, to.join(name))?;
            }
        }
    }
    Ok(())
}

/// The same data as a SQLite database in the layout `sync --source sqlite:` reads: one
/// table per entity, `id`, `updated_at` (ISO 8601), `version`, `deleted`, then the data
/// columns. A change without `updated_at` gets the scenario start plus its version in ms.
pub(super) fn write_sqlite(path: &Path, set: &SourceSet, start: Timestamp) -> Result<(), String> {
    let mut conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    // One transaction: a commit per row would cost a sync to disk each.
    let db = conn.transaction().map_err(|e| e.to_string())?;
    for (entity, records) in &set.entities {
        let columns: BTreeSet<&str> = records
            .iter()
            .flat_map(|r| r.data.keys().map(String::as_str))
            .filter(|c| !matches!(*c, "id" | "updated_at" | "version" | "deleted"))
            .collect();
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut ddl = format!(
            "CREATE TABLE {} (id TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL, deleted INTEGER NOT NULL",
            quote(entity)
        );
        for c in &columns {
            ddl.push_str(&format!(", {}", quote(c)));
        }
        ddl.push(')');
        db.execute(&ddl, []).map_err(|e| e.to_string())?;
        let names: Vec<String> = ["id", "updated_at", "version", "deleted"]
            .iter()
            .map(|s| s.to_string())
            .chain(columns.iter().map(|c| quote(c)))
            .collect();
        let marks = vec!["?"; names.len()].join(", ");
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({marks})",
            quote(entity),
            names.join(", ")
        );
        for r in records {
            let updated = r
                .changed_at
                .unwrap_or_else(|| start.plus(Duration::from_millis(r.version)));
            let mut values: Vec<rusqlite::types::Value> = vec![
                r.id.clone().into(),
                updated.to_iso().into(),
                (r.version as i64).into(),
                i64::from(r.deleted).into(),
            ];
            for c in &columns {
                values.push(sql_value(r, c));
            }
            db.execute(&sql, rusqlite::params_from_iter(values))
                .map_err(|e| e.to_string())?;
        }
    }
    db.commit().map_err(|e| e.to_string())
}

fn sql_value(r: &SourceRecord, column: &str) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match r.data.get(column) {
        None | Some(Value::Null) => V::Null,
        Some(Value::Bool(b)) => V::Integer(i64::from(*b)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => V::Integer(i),
            None => V::Real(n.as_f64().unwrap_or_default()),
        },
        Some(Value::String(s)) => V::Text(s.clone()),
        Some(other) => V::Text(other.to_string()),
    }
}

/// One line of `SYNCGATE_DEAD_LETTERS`.
#[derive(Deserialize)]
struct LetterLine {
    object: String,
    source_id: String,
    #[serde(default)]
    version: Option<u64>,
    code: String,
    #[serde(default)]
    message: String,
    /// `rejected`, `invalid`, `mapping` or `retries_exhausted` (default `rejected`).
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    attempts: Option<u32>,
}

/// The dead letters the engine appended (`None` when it wrote no file).
pub(super) fn read_dead_letters(
    path: &Path,
    tenant: &str,
    at: Timestamp,
) -> Result<Option<Vec<DeadLetter>>, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let mut letters = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: LetterLine = serde_json::from_str(line).map_err(|e| {
            format!(
                "SYNCGATE_DEAD_LETTERS line {}: not a dead letter: {e}",
                n + 1
            )
        })?;
        let class = match l.class.as_deref() {
            None | Some("rejected") => ErrorClass::Rejected,
            Some("invalid") => ErrorClass::Invalid,
            Some("mapping") => ErrorClass::Mapping,
            Some("retries_exhausted") => ErrorClass::RetriesExhausted,
            Some(other) => {
                return Err(format!(
                    "SYNCGATE_DEAD_LETTERS line {}: field `class`: `{other}` is not one of rejected, invalid, mapping, retries_exhausted",
                    n + 1
                ))
            }
        };
        let version = l.version.unwrap_or(0);
        letters.push(DeadLetter {
            tenant: tenant.to_string(),
            idempotency_key: format!("{tenant}|{}|{}|upsert|{version}", l.object, l.source_id),
            object: l.object,
            source_id: l.source_id,
            source_version: version,
            payload: Value::Null,
            class,
            error_code: l.code,
            message: l.message,
            attempts: l.attempts.unwrap_or(0),
            correlation_id: None,
            first_failed_at: at,
            last_failed_at: at,
            headers_sent: BTreeMap::new(),
        });
    }
    Ok(Some(letters))
}

pub(super) fn read_report(path: &Path) -> Result<Option<SyncReport>, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let r: ReportFile =
        serde_json::from_str(&text).map_err(|e| format!("SYNCGATE_REPORT is not a report: {e}"))?;
    let count = |k: &str| r.counters.get(k).copied().unwrap_or(0) as usize;
    Ok(Some(SyncReport {
        records: count("records"),
        created: count("created"),
        updated: count("updated"),
        dead_lettered: count("dead_lettered"),
        retries: count("retries"),
        api_calls: r.counters.get("api_calls").copied().unwrap_or(0),
        deleted: count("deleted"),
        rejected_before_sending: count("rejected_before_sending"),
        unmapped_columns: r.unmapped_columns,
        routed_columns: r.routed_columns,
        ..SyncReport::default()
    }))
}

/// One line of `SYNCGATE_CRM_OUTBOX`.
#[derive(Deserialize)]
struct OutboxLine {
    object: String,
    source_id: String,
    #[serde(default)]
    record_id: String,
    field: String,
    value: Value,
    #[serde(default)]
    changed_at: Option<String>,
    #[serde(default)]
    replay_id: Option<u64>,
    #[serde(default)]
    event_uuid: Option<String>,
}

pub(super) fn read_outbox(path: &Path) -> Result<Option<Vec<CrmChange>>, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let mut changes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let c: OutboxLine = serde_json::from_str(line)
            .map_err(|e| format!("SYNCGATE_CRM_OUTBOX line {}: not a change: {e}", n + 1))?;
        changes.push(CrmChange {
            object: c.object,
            source_id: c.source_id,
            record_id: c.record_id,
            field: c.field,
            value: c.value,
            changed_at: c
                .changed_at
                .as_deref()
                .and_then(Timestamp::parse)
                .unwrap_or(Timestamp::from_millis(0)),
            replay_id: c.replay_id,
            via: if c.event_uuid.is_some() {
                ChangeVia::Event
            } else {
                ChangeVia::Reread
            },
            event_uuid: c.event_uuid,
        });
    }
    Ok(Some(changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_and_reports_parse_or_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dl.jsonl");
        assert!(read_dead_letters(&p, "p/t", Timestamp::from_millis(0))
            .unwrap()
            .is_none());
        std::fs::write(
            &p,
            "{\"object\":\"Account\",\"source_id\":\"A-1\",\"version\":2,\"code\":\"STRING_TOO_LONG\",\"message\":\"x\"}\n\nnot json\n",
        )
        .unwrap();
        let e = read_dead_letters(&p, "p/t", Timestamp::from_millis(0)).unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        std::fs::write(
            &p,
            "{\"object\":\"Account\",\"source_id\":\"A-1\",\"version\":2,\"code\":\"STRING_TOO_LONG\",\"class\":\"invalid\"}\n",
        )
        .unwrap();
        let l = read_dead_letters(&p, "p/t", Timestamp::from_millis(0))
            .unwrap()
            .unwrap();
        assert_eq!(l[0].error_code, "STRING_TOO_LONG");
        assert_eq!(l[0].class, ErrorClass::Invalid);
        let r = dir.path().join("report.json");
        std::fs::write(
            &r,
            r#"{"unmapped_columns":{"accounts":["segment"]},"counters":{"created":3}}"#,
        )
        .unwrap();
        let rep = read_report(&r).unwrap().unwrap();
        assert!(rep.unmapped_columns["accounts"].contains("segment"));
        assert_eq!(rep.created, 3);
        std::fs::write(&r, r#"{"unmaped":{}}"#).unwrap();
        assert!(read_report(&r).is_err());
    }
}
