//! Org state: records per sObject with IDs, external-ID indexes, audit fields from the clock,
//! and the writes Salesforce accepts or rejects according to the bundle.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::ids;
use crate::contract::rules::{check_write, RecordError, WriteKind};
use crate::contract::{Bundle, FieldType};
use crate::sim::Timestamp;

/// One stored record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: String,
    pub fields: Map<String, Value>,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub deleted: bool,
}

impl Record {
    /// The record as the REST API returns it.
    pub fn to_json(&self, object: &str, api_version: &str) -> Value {
        let mut out = Map::new();
        out.insert(
            "attributes".into(),
            serde_json::json!({"type": object, "url": format!("/services/data/v{api_version}/sobjects/{object}/{}", self.id)}),
        );
        out.insert("Id".into(), Value::String(self.id.clone()));
        for (k, v) in &self.fields {
            out.insert(k.clone(), v.clone());
        }
        out.insert("IsDeleted".into(), Value::Bool(self.deleted));
        out.insert(
            "CreatedDate".into(),
            Value::String(self.created.to_salesforce()),
        );
        out.insert(
            "LastModifiedDate".into(),
            Value::String(self.modified.to_salesforce()),
        );
        out.insert(
            "SystemModstamp".into(),
            Value::String(self.modified.to_salesforce()),
        );
        Value::Object(out)
    }
}

#[derive(Debug, Default)]
struct Table {
    records: Vec<Record>,
    by_id: HashMap<String, usize>,
    by_ext: HashMap<String, Vec<usize>>,
}

/// A write checked against the org and ready to apply.
#[derive(Debug)]
pub struct PreparedUpsert {
    object: String,
    ext_value: String,
    existing: Option<usize>,
    values: Map<String, Value>,
}

/// The result of an applied upsert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upserted {
    pub id: String,
    pub created: bool,
}

/// Why an upsert could not even be attempted for a record.
#[derive(Debug)]
pub enum UpsertError {
    Record(RecordError),
    /// The external-ID value matches several records (HTTP 300).
    Ambiguous(Vec<String>),
}

impl From<RecordError> for UpsertError {
    fn from(e: RecordError) -> Self {
        UpsertError::Record(e)
    }
}

/// The org: every synced object's records.
#[derive(Debug)]
pub struct Org {
    bundle: Bundle,
    tables: BTreeMap<String, Table>,
    next_number: u64,
}

impl Org {
    pub fn new(bundle: Bundle) -> Self {
        let tables = bundle
            .objects
            .keys()
            .map(|k| (k.clone(), Table::default()))
            .collect();
        Org {
            bundle,
            tables,
            next_number: 1,
        }
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    pub fn has_object(&self, object: &str) -> bool {
        self.tables.contains_key(object)
    }

    /// Live (not deleted) records of an object, in creation order.
    pub fn records(&self, object: &str) -> impl Iterator<Item = &Record> {
        self.tables
            .get(object)
            .into_iter()
            .flat_map(|t| t.records.iter().filter(|r| !r.deleted))
    }

    pub fn get(&self, object: &str, id: &str) -> Option<&Record> {
        let t = self.tables.get(object)?;
        t.by_id
            .get(id)
            .map(|i| &t.records[*i])
            .filter(|r| !r.deleted)
    }

    pub fn find_by_external_id(&self, object: &str, value: &str) -> Vec<&Record> {
        let Some(t) = self.tables.get(object) else {
            return Vec::new();
        };
        t.by_ext
            .get(value)
            .map(|ix| {
                ix.iter()
                    .map(|i| &t.records[*i])
                    .filter(|r| !r.deleted)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks an upsert of `values` into `object` keyed by `ext_field = ext_value`, resolving
    /// parent relationships given by external ID. Nothing changes until [`Org::apply`].
    pub fn prepare_upsert(
        &self,
        object: &str,
        ext_field: &str,
        ext_value: &str,
        mut values: Map<String, Value>,
    ) -> Result<PreparedUpsert, UpsertError> {
        let spec = self.bundle.object(object).ok_or_else(|| {
            RecordError::new(
                "NOT_FOUND",
                format!("The requested resource does not exist: {object}"),
                vec![],
            )
        })?;
        if ext_field != spec.external_id {
            return Err(RecordError::new(
                "NOT_FOUND",
                format!(
                    "Provided external ID field does not exist or is not accessible: {ext_field}"
                ),
                vec![],
            )
            .into());
        }
        values.remove("attributes");
        match values.get(ext_field) {
            Some(Value::String(v)) if v != ext_value => {
                return Err(RecordError::new(
                    "INVALID_FIELD",
                    format!(
                    "External ID in the body ({v}) does not match the one in the URL ({ext_value})"
                ),
                    vec![ext_field.to_string()],
                )
                .into())
            }
            _ => {}
        }
        if ext_value.is_empty() {
            return Err(RecordError::new(
                "MISSING_ARGUMENT",
                format!("{ext_field} not specified"),
                vec![ext_field.to_string()],
            )
            .into());
        }
        let matches = self.find_by_external_id(object, ext_value);
        if matches.len() > 1 {
            return Err(UpsertError::Ambiguous(
                matches.iter().map(|r| r.id.clone()).collect(),
            ));
        }
        let existing = matches.first().map(|r| self.tables[object].by_id[&r.id]);
        let kind = if existing.is_some() {
            WriteKind::Update
        } else {
            WriteKind::Create
        };
        values.insert(ext_field.to_string(), Value::String(ext_value.to_string()));
        check_write(object, spec, &values, kind)?;
        // Resolve `Account: {Ext__c: "A-1"}` to `AccountId: "001…"`.
        for (name, field) in &spec.fields {
            let (FieldType::Reference, Some(rel), Some(parent)) =
                (field.ty, &field.relationship, &field.to)
            else {
                continue;
            };
            let Some(reference) = values.remove(rel) else {
                continue;
            };
            let resolved = match reference {
                Value::Null => Value::Null,
                Value::Object(map) => {
                    let parent_ext = &self.bundle.objects[parent].external_id;
                    let (key, val) =
                        map.iter()
                            .find(|(k, _)| *k != "attributes")
                            .ok_or_else(|| {
                                RecordError::new(
                                    "INVALID_FIELD",
                                    format!("{rel}: no external ID given for the parent"),
                                    vec![name.clone()],
                                )
                            })?;
                    if key != parent_ext {
                        return Err(RecordError::new(
                            "INVALID_FIELD",
                            format!("Provided external ID field does not exist or is not accessible: {key}"),
                            vec![name.clone()],
                        )
                        .into());
                    }
                    let val = val.as_str().unwrap_or_default();
                    let found = self.find_by_external_id(parent, val);
                    match found.as_slice() {
                        [one] => Value::String(one.id.clone()),
                        [] => {
                            return Err(RecordError::new(
                                "INVALID_FIELD",
                                format!("Foreign key external ID: {val} not found for field {key} in entity {parent}"),
                                vec![],
                            )
                            .into())
                        }
                        _ => {
                            return Err(RecordError::new(
                                "INVALID_FIELD",
                                format!("Foreign key external ID: {val} matches more than one record for field {key} in entity {parent}"),
                                vec![],
                            )
                            .into())
                        }
                    }
                }
                _ => unreachable!("checked by check_write"),
            };
            values.insert(name.clone(), resolved);
        }
        Ok(PreparedUpsert {
            object: object.to_string(),
            ext_value: ext_value.to_string(),
            existing,
            values,
        })
    }

    /// Applies a prepared upsert at `now`.
    pub fn apply(&mut self, p: PreparedUpsert, now: Timestamp) -> Upserted {
        let number = self.next_number;
        let table = self
            .tables
            .get_mut(&p.object)
            .expect("prepared for a known object");
        match p.existing {
            Some(i) => {
                let rec = &mut table.records[i];
                for (k, v) in p.values {
                    rec.fields.insert(k, v);
                }
                rec.modified = now;
                Upserted {
                    id: rec.id.clone(),
                    created: false,
                }
            }
            None => {
                self.next_number += 1;
                let id = ids::record_id(&p.object, number);
                let i = table.records.len();
                table.records.push(Record {
                    id: id.clone(),
                    fields: p.values,
                    created: now,
                    modified: now,
                    deleted: false,
                });
                table.by_id.insert(id.clone(), i);
                table.by_ext.entry(p.ext_value).or_default().push(i);
                Upserted { id, created: true }
            }
        }
    }
}
