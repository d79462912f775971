//! The reference model the oracle predicts with: what the bundle (`contracts/README.md`) and
//! the fixture format (`harness/README.md`) say a source record becomes in Salesforce.
//! Written for clarity, not speed, from those documents alone; it shares no code with
//! `src/engine/`, so an engine bug in mapping, coercion, version choice or delete policy is a
//! disagreement the gate sees, never a prediction it shares.
//!
//! Each rule is stated once:
//! - [`latest_versions`]: which version of a record is synced;
//! - [`write_for`]: the field values one record version writes (mapping, nulls, drift);
//! - [`coerce::to_field_value`]: what a source value becomes in a field of a given type;
//! - [`delete_outcome`]: what a source delete does under the object's policy.

pub mod calendar;
pub mod coerce;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::contract::{Bundle, DeletePolicy, FieldType, ObjectSpec, Owner};
use crate::source::{SourceRecord, SourceSet};

/// The version of each record that is synced, in the order record IDs first appear: the
/// highest `version`; among equal versions the one that arrived first (a later arrival with
/// the same version is a redelivery, stale). `updated_at` plays no part in the choice.
pub fn latest_versions<'s>(source: &'s SourceSet, entity: &str) -> Vec<&'s SourceRecord> {
    let records = source
        .entities
        .get(entity)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // One pass with an index by ID (linear in records): each ID keeps its place of first
    // appearance and its highest version, the first of equal versions.
    let mut at: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(records.len());
    let mut chosen: Vec<&SourceRecord> = Vec::new();
    for r in records {
        match at.get(r.id.as_str()) {
            Some(&i) => {
                if r.version > chosen[i].version {
                    chosen[i] = r;
                }
            }
            None => {
                at.insert(&r.id, chosen.len());
                chosen.push(r);
            }
        }
    }
    chosen
}

/// Every version of one record, in arrival order.
pub fn versions_of<'s>(source: &'s SourceSet, entity: &str, id: &str) -> Vec<&'s SourceRecord> {
    source
        .entities
        .get(entity)
        .into_iter()
        .flatten()
        .filter(|r| r.id == id)
        .collect()
}

/// A source value no field type can take: the engine must dead-letter it (`JSON_PARSER_ERROR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadValue {
    pub field: String,
    pub column: String,
    pub value: String,
    pub expected: &'static str,
}

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: column `{}` holds {}, which is not {}",
            self.field, self.column, self.value, self.expected
        )
    }
}

/// What one record version writes: field values by API name (a reference as
/// `"<relationship>": {"<parent external ID field>": "<parent source id>"}`), and where its
/// columns went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Write {
    pub values: Map<String, Value>,
    /// Columns no field reads that went to a same-named custom field: column → field.
    pub routed: BTreeMap<String, String>,
    /// Columns no field reads and none took: the engine must report them.
    pub unmapped: BTreeSet<String>,
}

/// Ignoring case, underscores and a `__c` suffix, `segment`, `Segment__c` and `SEG_MENT` are
/// one name.
fn loose_name(s: &str) -> String {
    s.strip_suffix("__c")
        .unwrap_or(s)
        .chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The field a delete policy flags, if it flags one.
fn policy_field(spec: &ObjectSpec) -> Option<&str> {
    match &spec.delete {
        DeletePolicy::HardDelete => None,
        DeletePolicy::Archive { field } | DeletePolicy::Inactive { field, .. } => Some(field),
    }
}

/// The field values `record` writes to `spec` (an object of `bundle`):
/// - the external ID is the record's `id`;
/// - each source-owned field with `from` takes its column's value, coerced to its type: a
///   column **absent** from the record writes nothing (the org keeps its value), an explicit
///   `null` writes null (it clears the field); CRM-owned fields are never written;
/// - a column no field reads goes to a source-owned custom field of the same loose name that
///   no column feeds (not a reference, not the external ID, not the delete policy's flag),
///   else it is unmapped. Once a column took such a field, it is fed: a second column of
///   the same loose name is unmapped.
pub fn write_for(
    bundle: &Bundle,
    spec: &ObjectSpec,
    record: &SourceRecord,
) -> Result<Write, BadValue> {
    let mut write = Write::default();
    write
        .values
        .insert(spec.external_id.clone(), Value::String(record.id.clone()));
    let convert = |field: &str, column: &str, raw: &Value| {
        let ty = spec.fields[field].ty;
        coerce::to_field_value(ty, raw).map_err(|e| BadValue {
            field: field.to_string(),
            column: column.to_string(),
            value: raw.to_string(),
            expected: e.expected,
        })
    };
    for (name, field) in &spec.fields {
        let Some(column) = &field.from else { continue };
        if field.owner == Owner::Crm || *name == spec.external_id {
            continue;
        }
        let Some(raw) = record.data.get(column) else {
            continue;
        };
        let value = convert(name, column, raw)?;
        if field.ty == FieldType::Reference {
            let relationship = field.relationship.clone().unwrap_or_else(|| name.clone());
            let parent_key = field
                .to
                .as_deref()
                .and_then(|p| bundle.object(p))
                .map(|p| p.external_id.clone());
            let linked = match (value, parent_key) {
                (Value::Null, _) => Value::Null,
                (id, Some(key)) => Value::Object(Map::from_iter([(key, id)])),
                (id, None) => id,
            };
            write.values.insert(relationship, linked);
        } else {
            write.values.insert(name.clone(), value);
        }
    }
    let read: BTreeSet<&str> = spec
        .fields
        .values()
        .filter_map(|f| f.from.as_deref())
        .collect();
    let mut fed: BTreeSet<&str> = BTreeSet::new();
    for (column, raw) in &record.data {
        if read.contains(column.as_str()) {
            continue;
        }
        let target = spec.fields.iter().find(|(name, f)| {
            name.ends_with("__c")
                && f.owner == Owner::Source
                && f.from.is_none()
                && f.ty != FieldType::Reference
                && **name != spec.external_id
                && Some(name.as_str()) != policy_field(spec)
                && !fed.contains(name.as_str())
                && loose_name(name) == loose_name(column)
        });
        match target {
            Some((name, _)) => {
                let value = convert(name, column, raw)?;
                write.values.insert(name.clone(), value);
                write.routed.insert(column.clone(), name.clone());
                fed.insert(name);
            }
            None => {
                write.unmapped.insert(column.clone());
            }
        }
    }
    Ok(write)
}

/// What a source delete must leave in the org, by the object's policy.
#[derive(Clone, Debug, PartialEq)]
pub enum DeleteOutcome {
    /// `hard_delete`: no live record.
    Gone,
    /// `archive` / `inactive`: the record stays, with this field set to this value.
    Flagged { field: String, value: Value },
}

/// `hard_delete` removes the record; `archive` sets its boolean field to `true`; `inactive`
/// sets its field to the policy's value. The flag wins over a value the delete's own data
/// gives the same field.
pub fn delete_outcome(spec: &ObjectSpec) -> DeleteOutcome {
    match &spec.delete {
        DeletePolicy::HardDelete => DeleteOutcome::Gone,
        DeletePolicy::Archive { field } => DeleteOutcome::Flagged {
            field: field.clone(),
            value: Value::Bool(true),
        },
        DeletePolicy::Inactive { field, value } => DeleteOutcome::Flagged {
            field: field.clone(),
            value: Value::String(value.clone()),
        },
    }
}

#[cfg(test)]
mod tests;
