//! The invariants a run must satisfy, checked over the source's expectations, the final
//! org state, the dead-letter queue and the mock's request journal. Every broken invariant
//! is reported with the records or requests that broke it, not just the first.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::evidence::{last_delivered, same_stored_value as same_value, DeliveredChange};
use super::evidence::{DeadLetter, EngineOutput};
use super::oracle::{Expectations, Expected};
use crate::contract::{Bundle, FieldType};
use crate::mock::{JournalEntry, Record};
use crate::sim::scenario::ManualEdit;
use crate::sim::time::format_duration;
use crate::source::SourceSet;

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
    pub const CRM_CHANGES: &str = "crm-changes-reach-source";
    pub const RERUN: &str = "rerun-sends-nothing";
    pub const LETTERS_REAL: &str = "dead-letters-not-landed";
    pub const TRIGGER_LIMITS: &str = "trigger-limits-adapted";
    pub const BULK_ROWS_ONCE: &str = "bulk-rows-processed-once";
    /// The calling discipline ([`crate::verify::discipline`]), judged from the journal.
    pub const RATE_AND_CONCURRENCY: &str = "rate-and-concurrency-within-limits";
    pub const BUDGET_MARGIN: &str = "last-daily-call-spared";
    pub const WASTED_CALLS: &str = "retries-follow-retryable-answers";
    /// A check on the scenario rather than the engine: every fault rule not marked
    /// `optional` injected its fault at least once.
    pub const FAULTS_FIRED: &str = "faults-fired";

    /// Every invariant, in the order reports list them.
    pub const ALL: [&str; 21] = [
        FAULTS_FIRED,
        ENGINE_COMPLETED,
        EXACTLY_ONCE,
        VALUES,
        DEAD_LETTERED,
        LETTERS_REAL,
        TRIGGER_LIMITS,
        BULK_ROWS_ONCE,
        NO_CALL_FOR_INVALID,
        DELETES,
        NOTHING_ELSE,
        CRM_OWNED,
        COLUMNS,
        CRM_CHANGES,
        RERUN,
        CONFORMANCE,
        RETRY_AFTER,
        DAILY_BUDGET,
        BUDGET_MARGIN,
        RATE_AND_CONCURRENCY,
        WASTED_CALLS,
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
    pub journal: &'a [JournalEntry],
    pub source: &'a SourceSet,
    /// What the engine left: its requests, dead letters and (when it completed) its report.
    pub engine: &'a EngineOutput,
    /// The scenario's manual edits: a CRM-owned value a sales rep set is not the sync's doing.
    pub manual_edits: &'a [ManualEdit],
}

pub fn check(ev: &Evidence<'_>) -> Vec<Violation> {
    let mut found: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut add = |name: &'static str, detail: String| found.entry(name).or_default().push(detail);
    check_records(ev, &mut add);
    check_never_sent(ev, &mut add);
    check_columns(ev, &mut add);
    check_waits(ev, &mut add);
    check_trigger_limits(ev, &mut add);
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

/// The first live record of each external ID, per object: parent lookups in one step
/// instead of a scan over every parent (the check stays linear in records).
struct ExtIndex<'a>(HashMap<&'a str, HashMap<&'a str, &'a Record>>);

impl<'a> ExtIndex<'a> {
    fn new(bundle: &Bundle, org: &'a BTreeMap<String, Vec<Record>>) -> Self {
        let mut index = HashMap::new();
        for (object, records) in org {
            let Some(spec) = bundle.object(object) else {
                continue;
            };
            let mut by_ext: HashMap<&str, &Record> = HashMap::with_capacity(records.len());
            for r in records {
                if let Some(ext) = r.fields.get(&spec.external_id).and_then(Value::as_str) {
                    by_ext.entry(ext).or_insert(r);
                }
            }
            index.insert(object.as_str(), by_ext);
        }
        ExtIndex(index)
    }

    fn get(&self, object: &str, ext: &str) -> Option<&'a Record> {
        self.0.get(object)?.get(ext).copied()
    }
}

fn check_records(ev: &Evidence<'_>, add: &mut impl FnMut(&'static str, String)) {
    let index = ExtIndex::new(ev.bundle, ev.org);
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
            .engine
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
                        for diff in value_diffs(ev, &index, object, values, in_org[0]) {
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
        // The org starts empty and only the scenario's sales rep writes besides the sync:
        // any other value in a CRM-owned field came from the engine.
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
                    let by_rep = ev.manual_edits.iter().any(|e| {
                        e.object == *object && e.external_id == ext && e.set.get(field) == Some(v)
                    });
                    if by_rep {
                        continue;
                    }
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
/// A record dead-lettered because its batch's transaction ran an org-side trigger past a
/// governor limit (`CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY` … `LimitException`, e.g. the Apex
/// CPU time limit) would have landed in a smaller batch: the engine must shrink its batches,
/// not give the records up. Written out here, not shared with the engine's classifier.
fn check_trigger_limits(ev: &Evidence<'_>, add: &mut impl FnMut(&'static str, String)) {
    for letter in &ev.engine.dead_letters {
        let governor =
            letter.message.contains("LimitException") || letter.message.contains("CPU time limit");
        if letter.error_code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY" && governor {
            add(
                names::TRIGGER_LIMITS,
                format!(
                    "{} {} v{} dead-lettered for a trigger's governor limit ({}): a smaller \
                     batch lands it",
                    letter.object, letter.source_id, letter.source_version, letter.message
                ),
            );
        }
    }
}

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
        for (n, req) in ev.engine.sent.iter().enumerate() {
            let records = req
                .body
                .as_ref()
                .and_then(|b| b.get("records"))
                .and_then(Value::as_array);
            for r in records.into_iter().flatten() {
                // `get` twice, not `pointer`: this runs for every record of every request.
                let is_object = r
                    .get("attributes")
                    .and_then(|a| a.get("type"))
                    .and_then(Value::as_str)
                    == Some(object);
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
    let Some(report) = &ev.engine.columns else {
        return;
    };
    for spec in ev.bundle.objects.values() {
        let read: std::collections::BTreeSet<&str> = spec
            .fields
            .values()
            .filter_map(|f| f.from.as_deref())
            .collect();
        let mut columns: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for r in super::model::latest_versions(ev.source, &spec.source) {
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
    index: &ExtIndex<'_>,
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
                .and_then(|ext| index.get(parent, ext))
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

/// What the change-event consumer delivered after a run, with what it must be checked against.
pub struct CrmChangeEvidence<'a> {
    pub bundle: &'a Bundle,
    /// Live records per object, at the end.
    pub org: &'a BTreeMap<String, Vec<Record>>,
    /// The scenario's manual edits: the only writes to CRM-owned fields besides the sync's.
    pub manual_edits: &'a [ManualEdit],
    /// Every change the consumer delivered, in order.
    pub delivered: &'a [DeliveredChange],
    /// The consumer's error, if it stopped.
    pub consumer_error: Option<String>,
}

/// `crm-changes-reach-source`: every CRM-owned field a sales rep changed reaches the source
/// with the org's final value; nothing only the sync wrote comes back; no event is
/// delivered twice.
pub fn check_crm_changes(ev: &CrmChangeEvidence<'_>) -> Option<Violation> {
    use crate::contract::Owner;
    let mut details = Vec::new();
    if let Some(e) = &ev.consumer_error {
        details.push(format!("the change-event consumer stopped: {e}"));
    }
    let finals = last_delivered(ev.delivered);
    // (object, external ID, field) a rep edited.
    let mut by_rep: std::collections::BTreeSet<(&str, &str, &str)> = Default::default();
    for e in ev.manual_edits {
        let Some(spec) = ev.bundle.object(&e.object) else {
            continue;
        };
        for field in e.set.keys() {
            if spec
                .fields
                .get(field)
                .is_some_and(|f| f.owner == Owner::Crm)
            {
                by_rep.insert((&e.object, &e.external_id, field));
            }
        }
    }
    let index = ExtIndex::new(ev.bundle, ev.org);
    for &(object, ext, field) in &by_rep {
        let Some(record) = index.get(object, ext) else {
            continue;
        };
        let in_org = record.fields.get(field).cloned().unwrap_or(Value::Null);
        let key = (object.to_string(), ext.to_string(), field.to_string());
        match finals.get(&key) {
            Some(got) if same_value(got, &in_org) => {}
            Some(got) => details.push(format!(
                "{object} {ext}: {field} is {in_org} in the org but the source ended with {got}"
            )),
            None if in_org.is_null() => {}
            None => details.push(format!(
                "{object} {ext}: {field} was set to {in_org} in the org and never reached the source"
            )),
        }
    }
    for ((object, ext, field), value) in &finals {
        if value.is_null() || by_rep.contains(&(object.as_str(), ext.as_str(), field.as_str())) {
            continue;
        }
        details.push(format!(
            "{object} {ext}: {field} = {value} reached the source, but nobody but the sync wrote it (its own echo)"
        ));
    }
    let mut times: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for c in ev.delivered {
        if let Some(uuid) = &c.event_uuid {
            *times
                .entry((uuid.as_str(), c.record_id.as_str(), c.field.as_str()))
                .or_default() += 1;
        }
    }
    for c in ev.delivered {
        let Some(uuid) = &c.event_uuid else { continue };
        if let Some(n) = times.remove(&(uuid.as_str(), c.record_id.as_str(), c.field.as_str())) {
            if n > 1 {
                details.push(format!(
                    "{} {}: the change of {} in event {uuid} (replay {}) was delivered {n} times",
                    c.object,
                    c.source_id,
                    c.field,
                    c.replay_id.unwrap_or(0)
                ));
            }
        }
    }
    if details.is_empty() {
        return None;
    }
    let total = details.len();
    if total > MAX_DETAILS {
        details.truncate(MAX_DETAILS);
        details.push(format!("… and {} more", total - MAX_DETAILS));
    }
    Some(Violation {
        invariant: names::CRM_CHANGES,
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Registry;
    use crate::sim::Timestamp;
    use serde_json::json;

    fn bundle() -> Bundle {
        let registry =
            Registry::open(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts"))
                .unwrap();
        let t = registry
            .select(&["northwind-outfitters".into()], &["production".into()])
            .unwrap();
        registry.load(&t[0]).unwrap()
    }

    fn account(ext: &str, manager: Value) -> Record {
        let mut fields = serde_json::Map::new();
        fields.insert("NW_Customer_Id__c".into(), json!(ext));
        fields.insert("Account_Manager__c".into(), manager);
        Record {
            id: format!("001{ext}"),
            fields,
            created: Timestamp::from_millis(0),
            modified: Timestamp::from_millis(0),
            modified_by: String::new(),
            deleted: false,
            purged: false,
        }
    }

    fn edit(ext: &str, manager: &str) -> ManualEdit {
        let mut set = serde_json::Map::new();
        set.insert("Account_Manager__c".into(), json!(manager));
        ManualEdit {
            name: format!("edit-{ext}"),
            object: "Account".into(),
            external_id: ext.into(),
            after_calls: Some(1),
            after: None,
            set,
        }
    }

    fn delivered(ext: &str, value: &str, uuid: &str) -> DeliveredChange {
        DeliveredChange {
            object: "Account".into(),
            source_id: ext.into(),
            record_id: format!("001{ext}"),
            field: "Account_Manager__c".into(),
            value: json!(value),
            replay_id: Some(1),
            event_uuid: Some(uuid.into()),
        }
    }

    fn check(org: Vec<Record>, edits: &[ManualEdit], got: &[DeliveredChange]) -> Vec<String> {
        let bundle = bundle();
        let org: BTreeMap<String, Vec<Record>> = [("Account".to_string(), org)].into();
        check_crm_changes(&CrmChangeEvidence {
            bundle: &bundle,
            org: &org,
            manual_edits: edits,
            delivered: got,
            consumer_error: None,
        })
        .map(|v| {
            assert_eq!(v.invariant, names::CRM_CHANGES);
            v.details
        })
        .unwrap_or_default()
    }

    #[test]
    fn the_source_in_step_with_the_org_passes() {
        let org = vec![account("A", json!("Jonas")), account("B", Value::Null)];
        let edits = [edit("A", "Priya"), edit("A", "Jonas")];
        let got = [delivered("A", "Priya", "u1"), delivered("A", "Jonas", "u2")];
        assert!(check(org, &edits, &got).is_empty());
    }

    #[test]
    fn a_stale_value_a_lost_edit_an_echo_and_a_double_delivery_are_named() {
        let org = vec![
            account("A", json!("Jonas")),
            account("B", json!("Lena")),
            account("C", json!("Sync Wrote This")),
        ];
        let edits = [edit("A", "Priya"), edit("A", "Jonas"), edit("B", "Lena")];
        // A's older edit delivered last; B's never; C's (the sync's own) came back; u2 twice.
        let got = [
            delivered("A", "Jonas", "u2"),
            delivered("A", "Jonas", "u2"),
            delivered("A", "Priya", "u1"),
            delivered("C", "Sync Wrote This", "u3"),
        ];
        let details = check(org, &edits, &got);
        assert_eq!(details.len(), 4, "{details:#?}");
        assert!(details[0].contains("Account A: Account_Manager__c is \"Jonas\" in the org but the source ended with \"Priya\""), "{details:#?}");
        assert!(
            details[1].contains("Account B") && details[1].contains("never reached the source"),
            "{details:#?}"
        );
        assert!(
            details[2].contains("Account C") && details[2].contains("own echo"),
            "{details:#?}"
        );
        assert!(
            details[3].contains("event u2") && details[3].contains("delivered 2 times"),
            "{details:#?}"
        );
    }

    #[test]
    fn a_rep_value_is_not_the_syncs_write() {
        let bundle = bundle();
        let org: BTreeMap<String, Vec<Record>> = [(
            "Account".to_string(),
            vec![account("A", json!("Priya")), account("B", json!("Pushed"))],
        )]
        .into();
        let edits = [edit("A", "Priya")];
        let mut expectations = Expectations::new();
        expectations.insert("Account".into(), vec![]);
        let found = super::check(&Evidence {
            bundle: &bundle,
            expectations: &expectations,
            org: &org,
            journal: &[],
            source: &SourceSet::default(),
            engine: &EngineOutput::default(),
            manual_edits: &edits,
        });
        let crm: Vec<&Violation> = found
            .iter()
            .filter(|v| v.invariant == names::CRM_OWNED)
            .collect();
        assert_eq!(crm.len(), 1, "{found:#?}");
        assert_eq!(crm[0].details.len(), 1, "{found:#?}");
        assert!(crm[0].details[0].contains("Account B"), "{found:#?}");
    }
}
