//! The oracle: what the org and the dead-letter queue must hold after a run, worked out
//! from the source and the bundle alone, without looking at what the engine did or using its
//! code (the record-level rules are the reference model's, [`super::model`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::model::{self, DeleteOutcome};
use crate::contract::json_value::PARSER_ERROR;
use crate::contract::rules::{check_write, coerce_write, RegexRules, WriteKind};
use crate::contract::{Bundle, FieldType};
use crate::source::SourceSet;

/// The fate a source record must meet.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// In the org exactly once, with these field values (relationships as parent external IDs).
    Present { values: Map<String, Value> },
    /// In the dead-letter queue with this Salesforce error code. `before_call`: the contract
    /// itself rejects the record, so no request may carry it.
    DeadLetter {
        code: String,
        why: String,
        before_call: bool,
    },
    /// Deleted in the source under a `hard_delete` policy: not live in the org.
    Absent,
}

/// Expectations per object, per source ID, in source order.
pub type Expectations = BTreeMap<String, Vec<(String, Expected)>>;

/// Works out the expected outcome of every latest source record, parents first (a child
/// whose parent cannot exist is rejected by Salesforce with `INVALID_FIELD`).
/// `bundle` is the engine's contract (how source records map); `org` is the org as it really
/// is (which writes it accepts) — the same bundle unless a scenario changed the org.
/// Mapping, coercion, version choice and delete policies come from [`super::model`].
pub fn expectations(bundle: &Bundle, org: &Bundle, source: &SourceSet) -> Expectations {
    let mut out: Expectations = BTreeMap::new();
    // The org's validation rules, evaluated as the mock org does for a new record.
    let org_rules = crate::mock::org::Org::new(org.clone());
    let mut present: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (object, spec) in bundle.objects_parent_first() {
        let regex_rules = RegexRules::compile(spec);
        let mut list = Vec::new();
        for record in model::latest_versions(source, &spec.source) {
            let flag = match (record.deleted, model::delete_outcome(spec)) {
                (false, _) => None,
                (true, DeleteOutcome::Gone) => {
                    list.push((record.id.clone(), Expected::Absent));
                    continue;
                }
                (true, DeleteOutcome::Flagged { field, value }) => Some((field, value)),
            };
            let expected = match model::write_for(bundle, spec, record) {
                // Sent as it is, Salesforce's JSON reader would refuse it.
                Err(e) => Expected::DeadLetter {
                    code: PARSER_ERROR.into(),
                    why: e.to_string(),
                    before_call: true,
                },
                Ok(write) => {
                    let mut payload = write.values;
                    if let Some((field, value)) = flag {
                        payload.insert(field, value);
                    }
                    // The engine checks the record against its own contract first (as an
                    // update), then the org checks it against what it really is.
                    let own = check_write(object, spec, &payload, WriteKind::Update)
                        .and_then(|()| regex_rules.check(&payload));
                    // The org stores the values as it reads them into its own field types.
                    let org_check = || {
                        let stored = coerce_write(
                            object,
                            org.object(object).unwrap_or(spec),
                            &payload,
                            WriteKind::Create,
                        )?;
                        match org_rules.rule_violation(object, &stored) {
                            Some(e) => Err(e),
                            None => Ok(stored),
                        }
                    };
                    match (own, org_check()) {
                        (Err(e), _) => Expected::DeadLetter {
                            code: e.code,
                            why: e.message,
                            before_call: true,
                        },
                        (Ok(()), Err(e)) => Expected::DeadLetter {
                            code: e.code,
                            why: e.message,
                            before_call: false,
                        },
                        (Ok(()), Ok(stored)) => {
                            match missing_parent(bundle, object, &stored, &present) {
                                Some(why) => Expected::DeadLetter {
                                    code: "INVALID_FIELD".into(),
                                    why,
                                    before_call: false,
                                },
                                None => Expected::Present { values: stored },
                            }
                        }
                    }
                }
            };
            if matches!(expected, Expected::Present { .. }) {
                present
                    .entry(object.clone())
                    .or_default()
                    .insert(record.id.clone());
            }
            list.push((record.id.clone(), expected));
        }
        out.insert(object.clone(), list);
    }
    out
}

fn missing_parent(
    bundle: &Bundle,
    object: &str,
    payload: &Map<String, Value>,
    present: &BTreeMap<String, BTreeSet<String>>,
) -> Option<String> {
    let spec = bundle.object(object)?;
    for field in spec
        .fields
        .values()
        .filter(|f| f.ty == FieldType::Reference)
    {
        let (Some(rel), Some(parent)) = (&field.relationship, &field.to) else {
            continue;
        };
        let Some(Value::Object(m)) = payload.get(rel) else {
            continue;
        };
        let Some(value) = m.values().next().and_then(Value::as_str) else {
            continue;
        };
        if !present.get(parent).is_some_and(|ids| ids.contains(value)) {
            return Some(format!("parent {parent} {value} will not exist in the org"));
        }
    }
    None
}

/// A manual edit the org made during the run, and when.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedEdit {
    pub object: String,
    pub external_id: String,
    pub set: Map<String, Value>,
    pub at: crate::sim::Timestamp,
}

/// Adjusts `expected` for edits a sales rep made in the org during the run. A record edited
/// after the source's change keeps what Salesforce holds: the engine compares by record
/// (`LastModifiedDate`), so every field whose value differs keeps the org's value — the
/// previous source version's, with the edit on top. A record edited before the source's change
/// gets the source's values. Where the source change has no `updated_at`, either outcome is
/// right, so the edited fields are not checked.
pub fn apply_manual_edits(
    expected: &mut Expectations,
    bundle: &Bundle,
    source: &SourceSet,
    edits: &[AppliedEdit],
) {
    for edit in edits {
        let Some(spec) = bundle.object(&edit.object) else {
            continue;
        };
        // The synced version, and the last live version before it (what the org held).
        let versions = model::versions_of(source, &spec.source, &edit.external_id);
        let Some(latest) = model::latest_versions(source, &spec.source)
            .into_iter()
            .find(|r| r.id == edit.external_id)
        else {
            continue;
        };
        let previous = versions
            .iter()
            .filter(|r| r.version < latest.version && !r.deleted)
            .fold(
                None,
                |best: Option<&&crate::source::SourceRecord>, r| match best {
                    Some(b) if b.version >= r.version => Some(b),
                    _ => Some(r),
                },
            )
            .and_then(|r| model::write_for(bundle, spec, r).ok());
        let Some(Expected::Present { values }) = expected
            .get_mut(&edit.object)
            .and_then(|list| list.iter_mut().find(|(id, _)| *id == edit.external_id))
            .map(|(_, e)| e)
        else {
            continue;
        };
        let source_owned = |field: &str| {
            spec.fields.get(field).is_some_and(|f| {
                f.owner == crate::contract::Owner::Source && f.ty != FieldType::Reference
            })
        };
        match latest.changed_at {
            Some(t) if t < edit.at => {
                let keys: Vec<String> = values
                    .keys()
                    .filter(|k| **k != spec.external_id && source_owned(k))
                    .cloned()
                    .collect();
                for key in keys {
                    let org_value = edit
                        .set
                        .get(&key)
                        .or_else(|| previous.as_ref().and_then(|p| p.values.get(&key)))
                        .cloned()
                        .unwrap_or(Value::Null);
                    values.insert(key, org_value);
                }
            }
            Some(_) => {}
            None => {
                for field in edit.set.keys().filter(|f| source_owned(f)) {
                    values.remove(field);
                }
            }
        }
    }
}
