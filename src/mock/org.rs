//! Org state: records per sObject with IDs, external-ID indexes, audit fields from the clock,
//! the recycle bin, and the writes Salesforce accepts or rejects according to the bundle
//! (field rules, unique external IDs, validation rules). Every committed change is also
//! queued as a [`Change`] for the change-event log.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::ids;
use super::soql::{self, Expr, FieldPath, SoqlError};
use crate::contract::rules::{check_write, RecordError, WriteKind};
use crate::contract::{Bundle, FieldType, ObjectSpec};
use crate::sim::Timestamp;

/// The API user every token acts as.
pub const API_USER_ID: &str = "0058d0000000001AAA";
/// The simulated sales rep whose manual edits a scenario injects.
pub const REP_USER_ID: &str = "0058d0000000002AAA";
/// The org's ID.
pub const ORG_ID: &str = "00D8d0000000001EAA";

/// Fields every record has besides the bundle's.
pub const SYSTEM_FIELDS: [&str; 7] = [
    "Id",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
];

/// One stored record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: String,
    pub fields: Map<String, Value>,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub modified_by: String,
    /// In the recycle bin: hidden from reads and `query`, visible to `queryAll`.
    pub deleted: bool,
    /// Hard-deleted: gone even from `queryAll`.
    pub purged: bool,
}

impl Record {
    /// A system field's value, or a bundle field's (null when never set).
    pub fn value(&self, field: &str) -> Value {
        match field {
            "Id" => Value::String(self.id.clone()),
            "IsDeleted" => Value::Bool(self.deleted),
            "CreatedDate" => Value::String(self.created.to_salesforce()),
            "CreatedById" => Value::String(API_USER_ID.into()),
            "LastModifiedDate" | "SystemModstamp" => Value::String(self.modified.to_salesforce()),
            "LastModifiedById" => Value::String(self.modified_by.clone()),
            _ => self.fields.get(field).cloned().unwrap_or(Value::Null),
        }
    }

    /// The record as the REST API returns it: attributes, system fields, then every field
    /// of the object (null when never set).
    pub fn to_json(&self, object: &str, api_version: &str) -> Value {
        self.to_json_with(object, api_version, None)
    }

    pub(crate) fn to_json_with(
        &self,
        object: &str,
        api_version: &str,
        spec: Option<&ObjectSpec>,
    ) -> Value {
        let mut out = Map::new();
        out.insert(
            "attributes".into(),
            attributes(object, &self.id, api_version),
        );
        for f in SYSTEM_FIELDS {
            out.insert(f.into(), self.value(f));
        }
        match spec {
            Some(spec) => {
                for name in spec.fields.keys() {
                    out.insert(name.clone(), self.value(name));
                }
            }
            None => {
                for (k, v) in &self.fields {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        Value::Object(out)
    }

    /// A quoted-string ETag that changes with every write.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id, self.modified.as_millis())
    }
}

/// `{"type", "url"}` of a record.
pub fn attributes(object: &str, id: &str, api_version: &str) -> Value {
    serde_json::json!({"type": object, "url": format!("/services/data/v{api_version}/sobjects/{object}/{id}")})
}

/// What kind of change a [`Change`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "CREATE",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
        }
    }
}

/// One committed change, waiting to be published as a change event.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub object: String,
    pub id: String,
    pub kind: ChangeKind,
    /// Fields whose value changed (set to non-null).
    pub changed: Vec<String>,
    /// Fields set to null.
    pub nulled: Vec<String>,
    /// New values of the changed fields.
    pub values: Map<String, Value>,
    pub at: Timestamp,
    pub user: String,
}

#[derive(Clone, Debug, Default)]
struct Table {
    records: Vec<Record>,
    by_id: HashMap<String, usize>,
    by_ext: HashMap<String, Vec<usize>>,
    /// The same index, keyed by the lower-cased value (SOQL compares text case-insensitively).
    by_ext_ci: HashMap<String, Vec<usize>>,
}

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

#[derive(Clone, Debug)]
enum Check {
    Regex(regex::Regex),
    Condition(Expr),
}

#[derive(Clone, Debug)]
struct CompiledRule {
    field: Option<String>,
    message: String,
    check: Check,
}

/// The org: every synced object's records.
#[derive(Clone, Debug)]
pub struct Org {
    bundle: Bundle,
    tables: BTreeMap<String, Table>,
    next_number: u64,
    rules: BTreeMap<String, Vec<CompiledRule>>,
    changes: Vec<Change>,
    /// Who the writes being made are attributed to.
    acting_user: String,
}

fn not_found(object: &str) -> RecordError {
    RecordError::new(
        "NOT_FOUND",
        format!("The requested resource does not exist: {object}"),
        vec![],
    )
}

impl Org {
    pub fn new(bundle: Bundle) -> Self {
        let tables = bundle
            .objects
            .keys()
            .map(|k| (k.clone(), Table::default()))
            .collect();
        let mut rules = BTreeMap::new();
        for (name, spec) in &bundle.objects {
            let mut compiled = Vec::new();
            for rule in &spec.validation_rules {
                // Rules are checked when the bundle loads; one that still does not compile
                // (a bundle built in code) is left out rather than failing every write.
                let check = match (&rule.regex, &rule.condition) {
                    (Some(re), _) => regex::Regex::new(&format!("^(?:{re})$"))
                        .ok()
                        .map(Check::Regex),
                    (None, Some(c)) => soql::parse_condition(c).ok().and_then(|mut e| {
                        for f in e.fields_mut() {
                            *f = canonical_path(&bundle, name, f).ok()?;
                        }
                        Some(Check::Condition(e))
                    }),
                    (None, None) => None,
                };
                if let Some(check) = check {
                    compiled.push(CompiledRule {
                        field: rule.field.clone(),
                        message: rule.message.clone(),
                        check,
                    });
                }
            }
            rules.insert(name.clone(), compiled);
        }
        Org {
            bundle,
            tables,
            next_number: 1,
            rules,
            changes: Vec::new(),
            acting_user: API_USER_ID.into(),
        }
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    pub fn has_object(&self, object: &str) -> bool {
        self.tables.contains_key(object)
    }

    /// The bundle's name for an object, matched case-insensitively.
    pub fn object_name(&self, object: &str) -> Option<&str> {
        self.tables
            .keys()
            .find(|k| k.eq_ignore_ascii_case(object))
            .map(String::as_str)
    }

    /// Live (not deleted) records of an object, in creation order.
    pub fn records(&self, object: &str) -> impl Iterator<Item = &Record> {
        self.all_records(object).filter(|r| !r.deleted)
    }

    /// Live and recycle-bin records of an object, in creation order.
    pub fn all_records(&self, object: &str) -> impl Iterator<Item = &Record> {
        self.tables
            .get(object)
            .into_iter()
            .flat_map(|t| t.records.iter().filter(|r| !r.purged))
    }

    pub fn get(&self, object: &str, id: &str) -> Option<&Record> {
        self.get_any(object, id).filter(|r| !r.deleted)
    }

    /// A record, live or in the recycle bin.
    pub fn get_any(&self, object: &str, id: &str) -> Option<&Record> {
        let t = self.tables.get(object)?;
        t.by_id
            .get(&full_id(id))
            .map(|i| &t.records[*i])
            .filter(|r| !r.purged)
    }

    /// The object a record ID belongs to, by looking it up.
    pub fn object_of_id(&self, id: &str) -> Option<&str> {
        let id = full_id(id);
        self.tables
            .iter()
            .find(|(_, t)| t.by_id.contains_key(&id))
            .map(|(k, _)| k.as_str())
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

    /// Records whose external ID equals `value` ignoring case, in creation order; with
    /// `deleted`, recycle-bin records too (the query planner's index lookup).
    pub fn ext_candidates(&self, object: &str, value: &str, deleted: bool) -> Vec<&Record> {
        let Some(t) = self.tables.get(object) else {
            return Vec::new();
        };
        let mut ix: Vec<usize> = t
            .by_ext_ci
            .get(&value.to_lowercase())
            .cloned()
            .unwrap_or_default();
        ix.sort_unstable();
        ix.dedup();
        ix.into_iter()
            .map(|i| &t.records[i])
            .filter(|r| !r.purged && (deleted || !r.deleted))
            .collect()
    }

    /// Changes committed since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Attributes the writes that follow to `user` (the API user unless a scenario's sales
    /// rep is editing).
    pub fn act_as(&mut self, user: &str) {
        self.acting_user = user.to_string();
    }

    /// The first validation rule a new record with `fields` would break (the oracle's
    /// prediction; parent paths read this org's records, so a fresh org sees none).
    pub fn rule_violation(&self, object: &str, fields: &Map<String, Value>) -> Option<RecordError> {
        let rules = self.rules.get(object)?;
        let now = Timestamp::from_millis(0);
        rules.iter().find_map(|rule| {
            let failed = match &rule.check {
                Check::Regex(re) => match rule.field.as_ref().and_then(|f| fields.get(f)) {
                    Some(Value::String(s)) if !s.is_empty() => !re.is_match(s),
                    Some(Value::Number(n)) => !re.is_match(&n.to_string()),
                    _ => false,
                },
                Check::Condition(e) => soql::eval(e, now, &|p: &FieldPath| {
                    self.path_value(object, None, fields, p)
                }),
            };
            failed.then(|| {
                RecordError::new(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    rule.message.clone(),
                    rule.field.iter().cloned().collect(),
                )
            })
        })
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
        check_write(object, spec, &values, kind)?;
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
                // Null, or anything else (already refused by `check_write`).
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
        let rules = self.rules.get(object).map(Vec::as_slice).unwrap_or(&[]);
        if !rules.is_empty() {
            let mut merged = current.map(|r| r.fields.clone()).unwrap_or_default();
            for (k, v) in &values {
                merged.insert(k.clone(), v.clone());
            }
            let now = current
                .map(|r| r.modified)
                .unwrap_or(Timestamp::from_millis(0));
            for rule in rules {
                let failed = match &rule.check {
                    Check::Regex(re) => match rule.field.as_ref().and_then(|f| merged.get(f)) {
                        Some(Value::String(s)) if !s.is_empty() => !re.is_match(s),
                        Some(Value::Number(n)) => !re.is_match(&n.to_string()),
                        _ => false,
                    },
                    Check::Condition(e) => soql::eval(e, now, &|p: &FieldPath| {
                        self.path_value(object, current, &merged, p)
                    }),
                };
                if failed {
                    return Err(RecordError::new(
                        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        rule.message.clone(),
                        rule.field.iter().cloned().collect(),
                    ));
                }
            }
        }
        Ok(values)
    }

    /// The value of a checked field path for a record whose own fields are `fields`.
    pub(crate) fn path_value(
        &self,
        object: &str,
        record: Option<&Record>,
        fields: &Map<String, Value>,
        path: &FieldPath,
    ) -> Value {
        match path.parts.as_slice() {
            [one] => match (one.as_str(), record) {
                (f, Some(r)) if SYSTEM_FIELDS.contains(&f) => r.value(f),
                (f, None) if SYSTEM_FIELDS.contains(&f) => Value::Null,
                (f, _) => fields.get(f).cloned().unwrap_or(Value::Null),
            },
            [rel, rest @ ..] => {
                let Some(spec) = self.bundle.object(object) else {
                    return Value::Null;
                };
                let Some((fk, parent)) = spec.fields.iter().find_map(|(n, f)| {
                    (f.relationship.as_deref() == Some(rel.as_str()))
                        .then(|| (n, f.to.clone()))
                        .and_then(|(n, p)| p.map(|p| (n, p)))
                }) else {
                    return Value::Null;
                };
                let Some(pid) = fields.get(fk).and_then(Value::as_str) else {
                    return Value::Null;
                };
                let Some(parent_rec) = self.get_any(&parent, pid) else {
                    return Value::Null;
                };
                let sub = FieldPath {
                    parts: rest.to_vec(),
                    column: path.column,
                };
                self.path_value(&parent, Some(parent_rec), &parent_rec.fields, &sub)
            }
            [] => Value::Null,
        }
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
        let changed: Vec<String> = values
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.clone())
            .collect();
        let change_values: Map<String, Value> = values
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
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
            table
                .by_ext_ci
                .entry(ext.to_lowercase())
                .or_default()
                .push(i);
            table.by_ext.entry(ext).or_default().push(i);
        }
        self.changes.push(Change {
            object: object.to_string(),
            id: id.clone(),
            kind: ChangeKind::Create,
            changed,
            nulled: vec![],
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
        let mut changed = Vec::new();
        let mut nulled = Vec::new();
        let mut change_values = Map::new();
        for (k, v) in values {
            if rec.fields.get(&k) == Some(&v) || (v.is_null() && !rec.fields.contains_key(&k)) {
                continue;
            }
            if v.is_null() {
                nulled.push(k.clone());
            } else {
                changed.push(k.clone());
            }
            change_values.insert(k.clone(), v.clone());
            rec.fields.insert(k, v);
        }
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
                table
                    .by_ext_ci
                    .entry(new.to_lowercase())
                    .or_default()
                    .push(i);
                table.by_ext.entry(new).or_default().push(i);
            }
        }
        self.changes.push(Change {
            object: object.to_string(),
            id,
            kind: ChangeKind::Update,
            changed,
            nulled,
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
            changed: vec![],
            nulled: vec![],
            values: Map::new(),
            at: now,
            user,
        });
        Ok(())
    }

    /// Checks and canonicalises a field path of `object` (case-insensitive names,
    /// relationship paths): `INVALID_FIELD` when it does not exist.
    pub fn check_path(&self, object: &str, path: &FieldPath) -> Result<FieldPath, SoqlError> {
        canonical_path(&self.bundle, object, path)
    }
}

/// Accepts 15-character IDs for 18-character ones.
fn full_id(id: &str) -> String {
    if id.len() == 15 {
        ids::with_suffix(id)
    } else {
        id.to_string()
    }
}

fn canonical_path(bundle: &Bundle, object: &str, path: &FieldPath) -> Result<FieldPath, SoqlError> {
    let invalid = |name: &str, entity: &str| {
        SoqlError {
        code: "INVALID_FIELD",
        message: format!(
            "\nERROR at Row:1:Column:{}\nNo such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            path.column
        ),
    }
    };
    let mut out = Vec::new();
    let mut current = object.to_string();
    for (i, part) in path.parts.iter().enumerate() {
        let spec = bundle
            .object(&current)
            .ok_or_else(|| invalid(part, &current))?;
        let last = i + 1 == path.parts.len();
        if last {
            let name = SYSTEM_FIELDS
                .iter()
                .map(|s| s.to_string())
                .chain(spec.fields.keys().cloned())
                .find(|f| f.eq_ignore_ascii_case(part))
                .ok_or_else(|| invalid(part, &current))?;
            out.push(name);
        } else {
            let (rel, parent) = spec
                .fields
                .values()
                .find_map(|f| match (&f.relationship, &f.to) {
                    (Some(r), Some(p)) if r.eq_ignore_ascii_case(part) => {
                        Some((r.clone(), p.clone()))
                    }
                    _ => None,
                })
                .ok_or_else(|| SoqlError {
                    code: "INVALID_FIELD",
                    message: format!(
                        "\nERROR at Row:1:Column:{}\nDidn't understand relationship '{part}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
                        path.column
                    ),
                })?;
            out.push(rel);
            current = parent;
        }
    }
    Ok(FieldPath {
        parts: out,
        column: path.column,
    })
}
