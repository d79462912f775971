//! The invariants a run must satisfy, checked over the source's expectations, the final
//! org state, the dead-letter queue and the mock's request journal. Every broken invariant
//! is reported with the records or requests that broke it, not just the first.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::oracle::{Expectations, Expected};
use crate::contract::{Bundle, FieldType};
use crate::engine::client::SentRequest;
use crate::engine::dlq::DeadLetter;
use crate::engine::source::SourceSet;
use crate::engine::SyncReport;
use crate::mock::{JournalEntry, Record};
use crate::sim::time::format_duration;

/// Names of the invariants, as reports show them.
pub mod names {
    pub const EXACTLY_ONCE: &str = "record-present-exactly-once";
    pub const VALUES: &str = "field-values-match-source";
    pub const DEAD_LETTERED: &str = "invalid-record-dead-lettered";
    pub const NOTHING_ELSE: &str = "nothing-else-created";
    pub const RETRY_AFTER: &str = "retry-after-honoured";
    pub const DAILY_BUDGET: &str = "daily-budget-respected";
    pub const ENGINE_COMPLETED: &str = "engine-completed";
    pub const CRM_OWNED: &str = "crm-owned-fields-untouched";
    pub const CONFORMANCE: &str = "requests-match-contract";
    pub const NO_CALL_FOR_INVALID: &str = "invalid-record-never-sent";
    pub const DELETES: &str = "deletes-follow-policy";
    pub const COLUMNS: &str = "new-columns-routed-or-reported";

    /// Every invariant, in the order reports list them.
    pub const ALL: [&str; 12] = [
        ENGINE_COMPLETED,
        EXACTLY_ONCE,
        VALUES,
        DEAD_LETTERED,
        NO_CALL_FOR_INVALID,
        DELETES,
        NOTHING_ELSE,
        CRM_OWNED,
        COLUMNS,
        CONFORMANCE,
        RETRY_AFTER,
        DAILY_BUDGET,
    ];
}

/// One broken invariant with the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: &'static str,
    pub details: Vec<String>,
}

/// How many examples a violation lists before summarising the rest.
const MAX_DETAILS: usize = 8;

/// What a finished run left behind.
pub struct Evidence<'a> {
    pub bundle: &'a Bundle,
    pub expectations: &'a Expectations,
    /// Live records per object.
    pub org: &'a BTreeMap<String, Vec<Record>>,
    pub dead_letters: &'a [DeadLetter],
    pub journal: &'a [JournalEntry],
    /// Every request the engine sent, with its body.
    pub sent: &'a [SentRequest],
    pub source: &'a SourceSet,
    /// The engine's own report, when the run completed.
    pub report: Option<&'a SyncReport>,
}

pub fn check(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut add = |name: &'static str, detail: String| found.entry(name).or_default().push(detail);
    check_records(ev, &mut add);
    check_never_sent(ev, &mut add);
    check_columns(ev, &mut add);
    check_waits(ev, &mut add);
    found
        .into_iter()
        .map(|(invariant, mut details)| {
            let total = details.len();
            if total > MAX_DETAILS {
                details.truncate(MAX_DETAILS);
                details.push(format!("… and {} more", total - MAX_DETAILS));
            }
            Violation { invariant, details }
        })
        .collect()
}

fn check_records(ev: &Evidence<'_>, add: &mut impl FnMut(&'static str, String)) {
    for (object, expected) in ev.expectations {
        let Some(spec) = ev.bundle.object(object) else {
            continue;
        };
        let records = ev.org.get(object).map(Vec::as_slice).unwrap_or_default();
        let mut by_ext: HashMap<&str, Vec<&Record>> = HashMap::new();
        for r in records {
            if let Some(v) = r.fields.get(&spec.external_id).and_then(Value::as_str) {
                by_ext.entry(v).or_default().push(r);
            }
        }
        let letters: HashMap<&str, &DeadLetter> = ev
            .dead_letters
            .iter()
            .filter(|d| d.object == *object)
            .map(|d| (d.source_id.as_str(), d))
            .collect();
        for (id, exp) in expected {
            let in_org = by_ext
                .get(id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            match exp {
                Expected::Present { values } => match in_org.len() {
                    1 => {
                        for diff in value_diffs(ev, object, values, in_org[0]) {
                            add(names::VALUES, format!("{object} {id}: {diff}"));
                        }
                    }
                    0 => {
                        let why = match letters.get(id.as_str()) {
                            Some(d) => format!(
                                "dead-lettered instead ({} {}: {})",
                                d.class.as_str(),
                                d.error_code,
                                d.message
                            ),
                            None => "neither in the org nor in the dead-letter queue (lost)".into(),
                        };
                        add(
                            names::EXACTLY_ONCE,
                            format!("{object} {id}: valid record missing from the org; {why}"),
                        );
                    }
                    n => add(
                        names::EXACTLY_ONCE,
                        format!(
                            "{object} {id}: {n} records carry this external ID (duplicate create)"
                        ),
                    ),
                },
                Expected::Absent => {
                    if let Some(r) = in_org.first() {
                        add(
                            names::DELETES,
                            format!(
                                "{object} {id}: deleted in the source (policy hard_delete) but still live in the org as {}",
                                r.id
                            ),
                        );
                    }
                }
                Expected::DeadLetter { code, why, .. } => {
                    if !in_org.is_empty() {
                        add(names::DEAD_LETTERED, format!("{object} {id}: expected rejection {code} ({why}) but the record is in the org"));
                    }
                    match letters.get(id.as_str()) {
                        Some(d) if d.error_code == *code => {}
                        Some(d) => add(names::DEAD_LETTERED, format!("{object} {id}: dead-lettered with {} but Salesforce's error is {code} ({why})", d.error_code)),
                        None => add(names::DEAD_LETTERED, format!("{object} {id}: expected in the dead-letter queue with {code} ({why}), not there")),
                    }
                }
            }
        }
        // The org starts empty and nobody else writes in these runs: any value in a
        // CRM-owned field came from the engine.
        for r in records {
            for (field, f) in &spec.fields {
                if f.owner != crate::contract::Owner::Crm {
                    continue;
                }
                if let Some(v) = r.fields.get(field).filter(|v| !v.is_null()) {
                    let ext = r
                        .fields
                        .get(&spec.external_id)
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    add(
                        names::CRM_OWNED,
                        format!("{object} {ext}: CRM-owned {field} was written by the sync ({v})"),
                    );
                }
            }
        }
        let known: std::collections::HashSet<&str> =
            expected.iter().map(|(id, _)| id.as_str()).collect();
        for r in records {
            let ext = r.fields.get(&spec.external_id).and_then(Value::as_str);
            if !ext.is_some_and(|e| known.contains(e)) {
                add(
                    names::NOTHING_ELSE,
                    format!(
                        "{object} {} (external ID {}) matches no source record",
                        r.id,
                        ext.unwrap_or("none")
                    ),
                );
            }
        }
    }
}

/// Records the contract rejects must cost no API call: no request may carry them.
fn check_never_sent(ev: &Evidence<'_>, add: &mut impl FnMut(&'static str, String)) {
    for (object, expected) in ev.expectations {
        let Some(spec) = ev.bundle.object(object) else {
            continue;
        };
        let invalid: std::collections::HashSet<&str> = expected
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    Expected::DeadLetter {
                        before_call: true,
                        ..
                    }
                )
            })
            .map(|(id, _)| id.as_str())
            .collect();
        if invalid.is_empty() {
            continue;
        }
        for (n, req) in ev.sent.iter().enumerate() {
            let records = req
                .body
                .as_ref()
                .and_then(|b| b.get("records"))
                .and_then(Value::as_array);
            for r in records.into_iter().flatten() {
                let is_object =
                    r.pointer("/attributes/type").and_then(Value::as_str) == Some(object);
                let ext = r.get(&spec.external_id).and_then(Value::as_str);
                if let (true, Some(ext)) = (is_object, ext) {
                    if invalid.contains(ext) {
                        add(
                            names::NO_CALL_FOR_INVALID,
                            format!(
                                "{object} {ext}: the contract rejects this record, yet request {} ({} {}) carried it",
                                n + 1,
                                req.method,
                                req.path
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// Every source column no field reads must be routed to a same-named field or reported.
fn check_columns(ev: &Evidence<'_>, add: &mut impl FnMut(&'static str, String)) {
    let Some(report) = ev.report else { return };
    for spec in ev.bundle.objects.values() {
        let read: std::collections::BTreeSet<&str> = spec
            .fields
            .values()
            .filter_map(|f| f.from.as_deref())
            .collect();
        let mut columns: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for r in ev.source.latest(&spec.source) {
            columns.extend(r.data.keys().map(String::as_str));
        }
        let routed = report.routed_columns.get(&spec.source);
        let reported = report.unmapped_columns.get(&spec.source);
        for column in columns.into_iter().filter(|c| !read.contains(c)) {
            let seen = routed.is_some_and(|m| m.contains_key(column))
                || reported.is_some_and(|s| s.contains(column));
            if !seen {
                add(
                    names::COLUMNS,
                    format!(
                        "{}: column `{column}` is read by no field, routed to none and missing from the engine's report (silently dropped)",
                        spec.source
                    ),
                );
            }
        }
    }
}

fn value_diffs(
    ev: &Evidence<'_>,
    object: &str,
    expected: &serde_json::Map<String, Value>,
    record: &Record,
) -> Vec<String> {
    let spec = &ev.bundle.objects[object];
    let mut diffs = Vec::new();
    for (key, want) in expected {
        // A relationship names the parent by external ID; the org stores the parent's ID.
        if let Some((field, f)) = spec
            .fields
            .iter()
            .find(|(_, f)| f.ty == FieldType::Reference && f.relationship.as_deref() == Some(key))
        {
            let parent = f.to.as_deref().unwrap_or_default();
            let want_id = want
                .as_object()
                .and_then(|m| m.values().next())
                .and_then(Value::as_str)
                .and_then(|ext| {
                    let pext = &ev.bundle.objects[parent].external_id;
                    ev.org
                        .get(parent)?
                        .iter()
                        .find(|p| p.fields.get(pext).and_then(Value::as_str) == Some(ext))
                })
                .map(|p| Value::String(p.id.clone()))
                .unwrap_or(Value::Null);
            let got = record.fields.get(field).cloned().unwrap_or(Value::Null);
            if got != want_id {
                diffs.push(format!(
                    "{field} is {got}, expected the ID of {parent} {want}"
                ));
            }
            continue;
        }
        let got = record.fields.get(key).unwrap_or(&Value::Null);
        if !same_value(want, got) {
            diffs.push(format!("{key} is {got}, source says {want}"));
        }
    }
    diffs
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn check_waits(ev: &Evidence<'_>, add: &mut impl FnMut(&'static str, String)) {
    for (i, entry) in ev.journal.iter().enumerate() {
        let Some(not_before) = entry.not_before else {
            continue;
        };
        let early: Vec<&JournalEntry> = ev.journal[i + 1..]
            .iter()
            .take_while(|later| later.at < not_before)
            .collect();
        let Some(first) = early.first() else { continue };
        let budget = entry.status == 403;
        let more = match early.len() - 1 {
            0 => String::new(),
            n => format!("; {n} more request(s) followed before then"),
        };
        let gap = format_duration(not_before.since(first.at));
        let detail = if budget {
            format!(
                "request #{} {} {} at {} came {gap} before the daily window reopened at {} (#{} was refused with REQUEST_LIMIT_EXCEEDED){more}",
                first.seq, first.method, first.path, first.at, not_before, entry.seq
            )
        } else {
            format!(
                "request #{} {} {} at {} came {gap} before Retry-After allowed ({}), set by #{} ({}){more}",
                first.seq,
                first.method,
                first.path,
                first.at,
                not_before,
                entry.seq,
                entry.fault.as_deref().unwrap_or("429")
            )
        };
        add(
            if budget {
                names::DAILY_BUDGET
            } else {
                names::RETRY_AFTER
            },
            detail,
        );
    }
}
