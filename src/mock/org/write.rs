//! Writes: creates, updates, upserts by external ID and deletes, each checked against the
//! bundle (field rules, parent references by external ID, unique external IDs, validation
//! rules) before anything changes, then applied with audit fields and a queued [`Change`].

use serde_json::{Map, Value};

use super::{
    full_id, ids, not_found, Change, ChangeKind, ChangeValues, Org, Record, SYSTEM_FIELDS,
};
use crate::contract::rules::{coerce_write, RecordError, WriteKind};
use crate::contract::{FieldType, ObjectSpec};
use crate::sim::Timestamp;

/// A write checked against the org and ready to apply.
#[derive(Debug)]
pub struct PreparedUpsert {
    object: String,
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

impl Org {
    /// Checks an upsert of `values` into `object` keyed by `ext_field = ext_value`, resolving
    /// parent relationships given by external ID. Nothing changes until [`Org::apply`].
    pub fn prepare_upsert(
        &self,
        object: &str,
        ext_field: &str,
        ext_value: &str,
        mut values: Map<String, Value>,
    ) -> Result<PreparedUpsert, UpsertError> {
        let spec = self
            .bundle
            .object(object)
            .ok_or_else(|| not_found(object))?;
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
        values.insert(ext_field.to_string(), Value::String(ext_value.to_string()));
        let values = self.prepare_write(object, spec, existing, values)?;
        Ok(PreparedUpsert {
            object: object.to_string(),
            existing,
            values,
        })
    }

    /// Checks the values of a create (`existing` none) or an update and resolves parent
    /// relationships; returns the values to store.
    fn prepare_write(
        &self,
        object: &str,
        spec: &ObjectSpec,
        existing: Option<usize>,
        mut values: Map<String, Value>,
    ) -> Result<Map<String, Value>, RecordError> {
        values.remove("attributes");
        for key in ["Id", "id"] {
            values.remove(key);
        }
        if let Some(sys) = values.keys().find(|k| SYSTEM_FIELDS.contains(&k.as_str())) {
            return Err(RecordError::new(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!("Unable to create/update fields: {sys}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."),
                vec![sys.clone()],
            ));
        }
        let kind = if existing.is_some() {
            WriteKind::Update
        } else {
            WriteKind::Create
        };
        // Values are stored as Salesforce converts them ("42" for an int field is 42).
        let mut values = coerce_write(object, spec, &values, kind)?;
        // Resolve `Account: {Ext__c: "A-1"}` to `AccountId: "001…"`.
        for (name, field) in &spec.fields {
            let (FieldType::Reference, Some(rel), Some(parent)) =
                (field.ty, &field.relationship, &field.to)
            else {
                continue;
            };
            if let Some(Value::String(id)) = values.get(name) {
                if self.get(parent, id).is_none() {
                    return Err(RecordError::new(
                        "INVALID_CROSS_REFERENCE_KEY",
                        format!("invalid cross reference id: {id}"),
                        vec![name.clone()],
                    ));
                }
            }
            let Some(reference) = values.remove(rel) else {
                continue;
            };
            let resolved = match reference {
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
                        ));
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
                            ))
                        }
                        _ => {
                            return Err(RecordError::new(
                                "INVALID_FIELD",
                                format!("Foreign key external ID: {val} matches more than one record for field {key} in entity {parent}"),
                                vec![],
                            ))
                        }
                    }
                }
                // Null, or anything else (already refused by `coerce_write`).
                _ => Value::Null,
            };
            values.insert(name.clone(), resolved);
        }
        let table = &self.tables[object];
        let current = existing.map(|i| &table.records[i]);
        // Unique external IDs.
        if spec.unique_external_id {
            if let Some(Value::String(ext)) = values.get(&spec.external_id) {
                let clash = self
                    .find_by_external_id(object, ext)
                    .into_iter()
                    .find(|r| current.is_none_or(|c| c.id != r.id));
                if let Some(other) = clash {
                    return Err(RecordError::new(
                        "DUPLICATE_VALUE",
                        format!(
                            "duplicate value found: {} duplicates value on record with id: {}",
                            spec.external_id, other.id
                        ),
                        vec![spec.external_id.clone()],
                    ));
                }
            }
        }
        // Validation rules see the record as it would be after the write.
        if self.rules.get(object).is_some_and(|r| !r.is_empty()) {
            let mut merged = current.map(|r| r.fields.clone()).unwrap_or_default();
            for (k, v) in &values {
                merged.insert(k.clone(), v.clone());
            }
            let now = current
                .map(|r| r.modified)
                .unwrap_or(Timestamp::from_millis(0));
            if let Some(broken) = self.broken_rule(object, current, &merged, now) {
                return Err(broken);
            }
        }
        Ok(values)
    }

    /// Applies a prepared upsert at `now`.
    pub fn apply(&mut self, p: PreparedUpsert, now: Timestamp) -> Upserted {
        match p.existing {
            Some(i) => {
                let id = self.tables[&p.object].records[i].id.clone();
                self.write(&p.object, i, p.values, now);
                Upserted { id, created: false }
            }
            None => {
                let id = self.insert(&p.object, p.values, now);
                Upserted { id, created: true }
            }
        }
    }

    fn insert(&mut self, object: &str, values: Map<String, Value>, now: Timestamp) -> String {
        let number = self.next_number;
        self.next_number += 1;
        let ext_field = self.bundle.objects[object].external_id.clone();
        let id = ids::record_id(object, number);
        let table = self.tables.get_mut(object).expect("checked object");
        let i = table.records.len();
        let ext = values
            .get(&ext_field)
            .and_then(Value::as_str)
            .map(str::to_string);
        let change_values = ChangeValues::of(values.iter().filter(|(_, v)| !v.is_null()));
        table.records.push(Record {
            id: id.clone(),
            fields: values,
            created: now,
            modified: now,
            modified_by: self.acting_user.clone(),
            deleted: false,
            purged: false,
        });
        table.by_id.insert(id.clone(), i);
        if let Some(ext) = ext {
            table.index_ext(ext, i);
        }
        self.changes.push(Change {
            object: object.to_string(),
            id: id.clone(),
            kind: ChangeKind::Create,
            values: change_values,
            at: now,
            user: self.acting_user.clone(),
        });
        id
    }

    fn write(&mut self, object: &str, i: usize, values: Map<String, Value>, now: Timestamp) {
        let ext_field = self.bundle.objects[object].external_id.clone();
        let user = self.acting_user.clone();
        let table = self.tables.get_mut(object).expect("checked object");
        let rec = &mut table.records[i];
        let old_ext = rec
            .fields
            .get(&ext_field)
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut changed: Vec<String> = Vec::new();
        for (k, v) in values {
            if rec.fields.get(&k) == Some(&v) || (v.is_null() && !rec.fields.contains_key(&k)) {
                continue;
            }
            changed.push(k.clone());
            rec.fields.insert(k, v);
        }
        // The new values, read back from the record (a cleared field holds null there).
        let change_values =
            ChangeValues::of(changed.iter().filter_map(|k| rec.fields.get_key_value(k)));
        rec.modified = now;
        rec.modified_by = user.clone();
        let id = rec.id.clone();
        let new_ext = rec
            .fields
            .get(&ext_field)
            .and_then(Value::as_str)
            .map(str::to_string);
        if old_ext != new_ext {
            if let Some(old) = old_ext {
                if let Some(v) = table.by_ext.get_mut(&old) {
                    v.retain(|x| *x != i);
                }
                if let Some(v) = table.by_ext_ci.get_mut(&old.to_lowercase()) {
                    v.retain(|x| *x != i);
                }
            }
            if let Some(new) = new_ext {
                table.index_ext(new, i);
            }
        }
        self.changes.push(Change {
            object: object.to_string(),
            id,
            kind: ChangeKind::Update,
            values: change_values,
            at: now,
            user,
        });
    }

    fn index_of(&self, object: &str, id: &str) -> Result<usize, RecordError> {
        let t = self.tables.get(object).ok_or_else(|| not_found(object))?;
        let i = *t.by_id.get(&full_id(id)).ok_or_else(|| {
            RecordError::new("NOT_FOUND", "The requested resource does not exist", vec![])
        })?;
        let rec = &t.records[i];
        if rec.purged {
            return Err(RecordError::new(
                "NOT_FOUND",
                "The requested resource does not exist",
                vec![],
            ));
        }
        if rec.deleted {
            return Err(RecordError::new(
                "ENTITY_IS_DELETED",
                "entity is deleted",
                vec![],
            ));
        }
        Ok(i)
    }

    /// Creates a record (`POST sobjects/{Object}`); returns its ID.
    pub fn create(
        &mut self,
        object: &str,
        values: Map<String, Value>,
        now: Timestamp,
    ) -> Result<String, RecordError> {
        let spec = self
            .bundle
            .object(object)
            .ok_or_else(|| not_found(object))?;
        let values = self.prepare_write(object, spec, None, values)?;
        Ok(self.insert(object, values, now))
    }

    /// Checks a create without committing it.
    pub fn check_create(
        &self,
        object: &str,
        values: Map<String, Value>,
    ) -> Result<Map<String, Value>, RecordError> {
        let spec = self
            .bundle
            .object(object)
            .ok_or_else(|| not_found(object))?;
        self.prepare_write(object, spec, None, values)
    }

    /// Updates a live record (`PATCH sobjects/{Object}/{Id}`).
    pub fn update(
        &mut self,
        object: &str,
        id: &str,
        values: Map<String, Value>,
        now: Timestamp,
    ) -> Result<(), RecordError> {
        let i = self.index_of(object, id)?;
        let spec = self
            .bundle
            .object(object)
            .ok_or_else(|| not_found(object))?;
        let values = self.prepare_write(object, spec, Some(i), values)?;
        self.write(object, i, values, now);
        Ok(())
    }

    /// Moves a live record to the recycle bin (`DELETE sobjects/{Object}/{Id}`); with
    /// `hard`, removes it for good.
    pub fn delete(
        &mut self,
        object: &str,
        id: &str,
        now: Timestamp,
        hard: bool,
    ) -> Result<(), RecordError> {
        let i = self.index_of(object, id)?;
        let user = self.acting_user.clone();
        let table = self.tables.get_mut(object).expect("checked object");
        let rec = &mut table.records[i];
        rec.deleted = true;
        rec.purged = hard;
        rec.modified = now;
        rec.modified_by = user.clone();
        let id = rec.id.clone();
        self.changes.push(Change {
            object: object.to_string(),
            id,
            kind: ChangeKind::Delete,
            values: ChangeValues::default(),
            at: now,
            user,
        });
        Ok(())
    }
}
