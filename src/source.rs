//! Source connectors: change records from our own system, read from JSONL or CSV fixtures.
//!
//! A fixture set is a directory with one file per source entity (`accounts.jsonl`,
//! `contacts.csv`, …). Each record has an `id` (becomes the external ID), a `version`
//! (monotonic per id; the latest wins) and its `data` columns; optionally `updated_at` (when
//! the source changed it, ISO 8601: conflicts with manual edits in the org are judged by it)
//! and `deleted` (`true` when the change is a delete; the bundle's delete policy applies).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::sim::Timestamp;

pub mod generate;

/// One change from the source system.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRecord {
    pub entity: String,
    pub id: String,
    pub version: u64,
    pub data: Map<String, Value>,
    /// When the source made this change, if it says (compared with the org's edits).
    pub changed_at: Option<Timestamp>,
    /// This change deletes the record in the source.
    pub deleted: bool,
    /// Where the record came from, for error messages (`file:line`).
    pub origin: String,
}

/// All records of a fixture set, by entity, in file order.
#[derive(Clone, Debug, Default)]
pub struct SourceSet {
    pub entities: BTreeMap<String, Vec<SourceRecord>>,
}

#[derive(Debug, thiserror::Error)]
pub struct SourceError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl SourceError {
    /// An error in the file or directory at `path`, on `line` (counted from 1) when known.
    fn at(path: &Path, line: Option<usize>, message: String) -> SourceError {
        SourceError {
            path: path.to_path_buf(),
            line,
            message,
        }
    }
}

impl SourceSet {
    /// Reads every `*.jsonl` and `*.csv` file in `dir`.
    pub fn load_dir(dir: &Path) -> Result<SourceSet, SourceError> {
        let err = |message: String| SourceError::at(dir, None, message);
        let entries = std::fs::read_dir(dir)
            .map_err(|e| err(format!("cannot read fixture directory: {e}")))?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let mut set = SourceSet::default();
        for path in paths {
            let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
                continue;
            };
            let entity = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let records = match ext {
                "jsonl" => read_jsonl(&path, &entity)?,
                "csv" => read_csv(&path, &entity)?,
                _ => continue,
            };
            if set.entities.insert(entity.clone(), records).is_some() {
                return Err(SourceError::at(
                    &path,
                    None,
                    format!("entity `{entity}` is given twice (as .jsonl and .csv)"),
                ));
            }
        }
        Ok(set)
    }

    /// This set followed by the changes of `later` (what the source held by a later run).
    pub fn followed_by(&self, later: &SourceSet) -> SourceSet {
        let mut out = self.clone();
        for (entity, records) in &later.entities {
            out.entities
                .entry(entity.clone())
                .or_default()
                .extend(records.iter().cloned());
        }
        out
    }

    /// The first version seen of each record of `entity`, in order of first appearance
    /// (what a sync that ignores versions would end with; the gate uses it to prove it
    /// notices stale data).
    pub fn earliest(&self, entity: &str) -> Vec<&SourceRecord> {
        let mut seen = std::collections::BTreeSet::new();
        self.entities
            .get(entity)
            .into_iter()
            .flatten()
            .filter(|r| seen.insert(r.id.as_str()))
            .collect()
    }

    /// The latest version of each record of `entity`, in order of first appearance.
    /// A lower version arriving after a higher one is stale and ignored.
    pub fn latest(&self, entity: &str) -> Vec<&SourceRecord> {
        let mut order: Vec<&str> = Vec::new();
        let mut best: BTreeMap<&str, &SourceRecord> = BTreeMap::new();
        for r in self.entities.get(entity).into_iter().flatten() {
            match best.get(r.id.as_str()) {
                None => {
                    order.push(&r.id);
                    best.insert(&r.id, r);
                }
                Some(prev) if r.version > prev.version => {
                    best.insert(&r.id, r);
                }
                Some(_) => {}
            }
        }
        order.into_iter().map(|id| best[id]).collect()
    }
}

fn read_jsonl(path: &Path, entity: &str) -> Result<Vec<SourceRecord>, SourceError> {
    let bytes = std::fs::read(path)
        .map_err(|e| SourceError::at(path, None, format!("cannot read: {e}")))?;
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let line = std::str::from_utf8(raw).map_err(|e| {
            SourceError::at(
                path,
                Some(n),
                format!(
                    "not UTF-8 (invalid byte at column {}); JSONL files must be UTF-8",
                    e.valid_up_to() + 1
                ),
            )
        })?;
        if let Some(record) = parse_jsonl_line(path, entity, n, line)? {
            out.push(record);
        }
    }
    Ok(out)
}

/// One line of a JSONL change file (`n` counts from 1); `None` for a blank line.
pub fn parse_jsonl_line(
    path: &Path,
    entity: &str,
    n: usize,
    line: &str,
) -> Result<Option<SourceRecord>, SourceError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let err = |message: String| SourceError::at(path, Some(n), message);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(line).map_err(|e| err(format!("invalid JSON: {e}")))?;
    let id = match v.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(err(
                "`id` is missing or empty; every source record needs its ID".into(),
            ))
        }
    };
    let version = v
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| err("`version` must be a non-negative integer".into()))?;
    let deleted = match v.get("deleted") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => return Err(err(format!("`deleted` must be true or false, not {other}"))),
    };
    let data = match v.get("data") {
        Some(Value::Object(m)) => m.clone(),
        None if deleted => Map::new(),
        _ => return Err(err("`data` must be an object of source columns".into())),
    };
    let changed_at = match v.get("updated_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_changed_at(s).map_err(err)?),
        Some(other) => {
            return Err(err(format!(
                "`updated_at` must be an ISO 8601 date-time string, not {other}"
            )))
        }
    };
    if let Some(extra) = v.as_object().and_then(|o| {
        o.keys()
            .find(|k| !["id", "version", "data", "updated_at", "deleted"].contains(&k.as_str()))
    }) {
        return Err(err(format!(
                "unknown key `{extra}` (a record has id, version, data and optionally updated_at and deleted)"
            )));
    }
    Ok(Some(SourceRecord {
        entity: entity.to_string(),
        id,
        version,
        data,
        changed_at,
        deleted,
        origin: format!("{}:{n}", path.display()),
    }))
}

fn read_csv(path: &Path, entity: &str) -> Result<Vec<SourceRecord>, SourceError> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| SourceError::at(path, None, format!("cannot read: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| SourceError::at(path, Some(1), format!("bad CSV header: {e}")))?
        .clone();
    for required in ["id", "version"] {
        if !headers.iter().any(|h| h == required) {
            return Err(SourceError::at(
                path,
                Some(1),
                format!("missing column `{required}`"),
            ));
        }
    }
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let n = i + 2;
        let err = |message: String| SourceError::at(path, Some(n), message);
        let row = row.map_err(|e| err(format!("bad CSV row: {e}")))?;
        let mut id = String::new();
        let mut version = None;
        let mut data = Map::new();
        let mut changed_at = None;
        let mut deleted = false;
        for (h, v) in headers.iter().zip(row.iter()) {
            match h {
                "id" => id = v.to_string(),
                "version" => version = v.parse::<u64>().ok(),
                "updated_at" if v.is_empty() => {}
                "updated_at" => changed_at = Some(parse_changed_at(v).map_err(err)?),
                "deleted" => {
                    deleted = match v {
                        "" | "false" => false,
                        "true" => true,
                        other => {
                            return Err(err(format!(
                                "`deleted` must be true, false or empty, not `{other}`"
                            )))
                        }
                    }
                }
                // An empty CSV cell is an explicit null: the column exists for this record.
                _ => {
                    data.insert(
                        h.to_string(),
                        if v.is_empty() {
                            Value::Null
                        } else {
                            Value::String(v.to_string())
                        },
                    );
                }
            }
        }
        if id.trim().is_empty() {
            return Err(err("`id` is empty".into()));
        }
        let version =
            version.ok_or_else(|| err("`version` must be a non-negative integer".into()))?;
        out.push(SourceRecord {
            entity: entity.to_string(),
            id,
            version,
            data,
            changed_at,
            deleted,
            origin: format!("{}:{n}", path.display()),
        });
    }
    Ok(out)
}

/// Reads a source change time: an ISO 8601 date-time with a zone (`2026-11-20T09:00:00Z`).
pub fn parse_changed_at(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).ok_or_else(|| {
        format!("`updated_at` `{s}` is not an ISO 8601 date-time with a zone (e.g. 2026-11-20T09:00:00Z)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads a fixture set of `files` (name and text) from a fresh directory.
    fn load(files: &[(&str, &str)]) -> Result<SourceSet, SourceError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        SourceSet::load_dir(dir.path())
    }

    #[test]
    fn latest_version_wins_and_stale_is_ignored() {
        let set = load(&[(
            "accounts.jsonl",
            "{\"id\":\"A\",\"version\":1,\"data\":{\"n\":\"one\"}}\n{\"id\":\"B\",\"version\":1,\"data\":{}}\n{\"id\":\"A\",\"version\":3,\"data\":{\"n\":\"three\"}}\n{\"id\":\"A\",\"version\":2,\"data\":{\"n\":\"two\"}}\n",
        )])
        .unwrap();
        let latest = set.latest("accounts");
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[0].id, "A");
        assert_eq!(latest[0].data["n"], "three");
    }

    #[test]
    fn csv_empty_cell_is_null() {
        let set = load(&[("contacts.csv", "id,version,email\nC-1,1,\n")]).unwrap();
        assert_eq!(set.latest("contacts")[0].data["email"], Value::Null);
    }

    #[test]
    fn bad_line_is_named() {
        let e = load(&[(
            "accounts.jsonl",
            "{\"id\":\"A\",\"version\":1,\"data\":{}}\n{\"id\":\"B\",\"data\":{}}\n",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("accounts.jsonl:2: `version` must be a non-negative integer"),
            "{e}"
        );
    }

    #[test]
    fn deletes_and_change_times_are_read_from_both_formats() {
        let set = load(&[
            (
                "accounts.jsonl",
                "{\"id\":\"A\",\"version\":2,\"updated_at\":\"2026-01-05T09:00:00+01:00\",\"deleted\":true}\n",
            ),
            (
                "contacts.csv",
                "id,version,updated_at,deleted,last_name\nC-1,1,2026-01-05T08:00:00Z,,Baptiste\nC-2,2,,true,\n",
            ),
        ])
        .unwrap();
        let a = set.latest("accounts")[0];
        assert!(a.deleted && a.data.is_empty());
        assert_eq!(a.changed_at.unwrap().to_iso(), "2026-01-05T08:00:00.000Z");
        let c = set.latest("contacts");
        assert_eq!((c[0].deleted, c[1].deleted), (false, true));
        assert!(c[0].changed_at.is_some() && c[1].changed_at.is_none());
        assert!(!c[0].data.contains_key("updated_at") && !c[0].data.contains_key("deleted"));
    }

    #[test]
    fn a_bad_change_time_or_delete_flag_is_named_with_its_line() {
        let e = load(&[(
            "accounts.jsonl",
            "{\"id\":\"A\",\"version\":1,\"data\":{},\"updated_at\":\"2026-01-05 09:00\"}\n",
        )])
        .unwrap_err()
        .to_string();
        assert!(e.contains("accounts.jsonl:1: `updated_at` `2026-01-05 09:00` is not an ISO 8601 date-time with a zone"), "{e}");
        let e = load(&[("contacts.csv", "id,version,deleted\nC-1,1,yes\n")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("contacts.csv:2: `deleted` must be true, false or empty, not `yes`"),
            "{e}"
        );
    }
}
