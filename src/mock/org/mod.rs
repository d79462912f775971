//! Org state: records per sObject with IDs, external-ID indexes, audit fields from the clock,
//! the recycle bin, and the writes Salesforce accepts or rejects according to the bundle
//! (field rules, unique external IDs, validation rules). Every committed change is also
//! queued as a [`Change`] for the change-event log.
//!
//! Inside: `record` (a record and the changes writes queue), `write` (checked creates,
//! updates, upserts and deletes), `rules` (validation rules, compiled and judged).

mod record;
mod rules;
mod write;

use std::collections::{BTreeMap, HashMap};

use super::ids;
use super::soql::{FieldPath, SoqlError};
use crate::contract::rules::RecordError;
use crate::contract::Bundle;
pub use record::{attributes, Change, ChangeKind, ChangeValues, Record, SYSTEM_FIELDS};
use rules::{canonical_path, CompiledRule};
pub use write::{PreparedUpsert, UpsertError, Upserted};

/// The API user every token acts as.
pub const API_USER_ID: &str = "0058d0000000001AAA";
/// The simulated sales rep whose manual edits a scenario injects.
pub const REP_USER_ID: &str = "0058d0000000002AAA";
/// The org's ID.
pub const ORG_ID: &str = "00D8d0000000001EAA";

#[derive(Clone, Debug, Default)]
struct Table {
    records: Vec<Record>,
    by_id: HashMap<String, usize>,
    by_ext: HashMap<String, Vec<usize>>,
    /// The same index, keyed by the lower-cased value (SOQL compares text case-insensitively).
    by_ext_ci: HashMap<String, Vec<usize>>,
}

impl Table {
    /// Indexes record `i` under its external ID `ext`, as given and lower-cased.
    fn index_ext(&mut self, ext: String, i: usize) {
        self.by_ext_ci
            .entry(ext.to_lowercase())
            .or_default()
            .push(i);
        self.by_ext.entry(ext).or_default().push(i);
    }
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
        let rules = rules::compile(&bundle);
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

    /// Moves the live records of an object out of the org (in creation order), leaving its
    /// table empty: for the judges once a run is over, without a copy of every record.
    pub fn take_records(&mut self, object: &str) -> Vec<Record> {
        let Some(t) = self.tables.get_mut(object) else {
            return Vec::new();
        };
        let taken = std::mem::take(t);
        taken
            .records
            .into_iter()
            .filter(|r| !r.deleted && !r.purged)
            .collect()
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
