//! Fixture sets generated from a tenant's contract, for tenants that have no hand-written
//! ones: valid records that exercise every field's type and edges, one record per rule the
//! contract must reject, and the second-day sets of the scenarios that run twice.
//!
//! Everything is drawn from the run's seed through `sim`'s streams (one per object), so the
//! same bundle, seed and record count give byte-identical files. The sets are written as
//! JSON lines (the one format that tells an absent column from an explicit null), with a
//! `_generated.json` manifest listing each record that must be rejected and why.
//! `harness/README.md` documents what each set holds.

mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::contract::{Bundle, FieldSpec, FieldType, ObjectSpec, Owner};
use crate::sim::{Seed, Timestamp};

pub use values::{sample_match, text_of_len};

/// Valid records per object when `--records` is not given: above one 200-record
/// collection call, so every object takes at least two calls (scenarios count calls).
pub const DEFAULT_RECORDS: usize = 250;

/// The fixture sets the generator knows, by the name scenarios use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    /// Valid records and one record per rule to reject.
    Default,
    /// `Default` plus more spellings of each rejected value.
    Poison,
    /// `Default` with new source columns: for custom fields nothing feeds, and unknown ones.
    SchemaDrift,
    /// The next day: deletes of existing and never-synced records, and a few updates.
    DeletesDay2,
    /// The next day: updates of the first records (those scenarios' manual edits name),
    /// stamped half an hour and an hour after the start.
    ManualEditsDay2,
}

impl SetKind {
    pub const ALL: [SetKind; 5] = [
        SetKind::Default,
        SetKind::Poison,
        SetKind::SchemaDrift,
        SetKind::DeletesDay2,
        SetKind::ManualEditsDay2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SetKind::Default => "default",
            SetKind::Poison => "poison",
            SetKind::SchemaDrift => "schema-drift",
            SetKind::DeletesDay2 => "deletes-day2",
            SetKind::ManualEditsDay2 => "manual-edits-day2",
        }
    }

    pub fn from_name(name: &str) -> Option<SetKind> {
        SetKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// `default, poison, …` for messages.
    pub fn names() -> String {
        SetKind::ALL.map(SetKind::name).join(", ")
    }
}

/// What to generate from.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: Seed,
    /// Valid records per object.
    pub records: usize,
    /// The scenario start: second-day changes are stamped after it.
    pub start: Timestamp,
    /// External IDs scenarios name (manual edits), per object: the first valid records
    /// get them, so those edits meet records.
    pub named: BTreeMap<String, Vec<String>>,
}

/// Why a generated record is in the set.
#[derive(Clone, Debug, PartialEq)]
pub enum Purpose {
    Valid,
    /// Breaks one rule: `code` is the Salesforce error it must be dead-lettered with.
    Reject {
        field: String,
        rule: String,
        code: &'static str,
    },
    Update,
    Delete,
}

/// One generated source record.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub object: String,
    pub id: String,
    pub version: u64,
    pub data: Map<String, Value>,
    pub updated_at: Option<Timestamp>,
    pub deleted: bool,
    pub purpose: Purpose,
}

impl Generated {
    /// The record as one JSONL line (keys in the fixture format's order).
    pub fn to_line(&self) -> String {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("version".into(), json!(self.version));
        if let Some(at) = self.updated_at {
            m.insert("updated_at".into(), json!(at.to_iso()));
        }
        if self.deleted {
            m.insert("deleted".into(), json!(true));
        }
        m.insert("data".into(), Value::Object(self.data.clone()));
        Value::Object(m).to_string()
    }
}

/// A generated fixture set: records per source entity, in file order.
#[derive(Clone, Debug, Default)]
pub struct GeneratedSet {
    pub kind: Option<SetKind>,
    pub entities: BTreeMap<String, Vec<Generated>>,
}

impl GeneratedSet {
    /// Every record that must be rejected.
    pub fn rejects(&self) -> impl Iterator<Item = &Generated> {
        self.entities
            .values()
            .flatten()
            .filter(|g| matches!(g.purpose, Purpose::Reject { .. }))
    }

    /// The set's files: `<entity>.jsonl` and the `_generated.json` manifest.
    pub fn files(&self, bundle: &Bundle, opts: &Options) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (entity, records) in &self.entities {
            let mut text = String::new();
            for r in records {
                text.push_str(&r.to_line());
                text.push('\n');
            }
            out.insert(format!("{entity}.jsonl"), text);
        }
        let rejects: Vec<Value> = self
            .rejects()
            .map(|g| match &g.purpose {
                Purpose::Reject { field, rule, code } => json!({
                    "object": g.object, "id": g.id, "field": field, "rule": rule, "code": code,
                }),
                _ => Value::Null,
            })
            .collect();
        let manifest = json!({
            "generated_by": format!("syncgate {}", env!("CARGO_PKG_VERSION")),
            "set": self.kind.map(SetKind::name),
            "partner": bundle.partner,
            "tenant": bundle.tenant,
            "bundle_version": bundle.version,
            "bundle_hash": bundle.content_hash(),
            "seed": opts.seed.0,
            "records_per_object": opts.records,
            "start": opts.start.to_iso(),
            "rejects": rejects,
        });
        let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
        out.insert("_generated.json".into(), text);
        out
    }

    /// Writes the set's files into `dir` (created; files of the same name replaced).
    pub fn write_to(&self, dir: &Path, bundle: &Bundle, opts: &Options) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in self.files(bundle, opts) {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }
}

/// Generates fixture set `kind` for `bundle`.
pub fn generate(bundle: &Bundle, kind: SetKind, opts: &Options) -> GeneratedSet {
    let day_one = day_one(bundle, opts, kind);
    let mut set = GeneratedSet {
        kind: Some(kind),
        entities: BTreeMap::new(),
    };
    for (object, spec) in bundle.objects_parent_first() {
        let Some(records) = day_one.get(object) else {
            continue;
        };
        let out = match kind {
            SetKind::Default | SetKind::Poison | SetKind::SchemaDrift => {
                let mut all = records.valid.clone();
                all.extend(records.rejects.iter().cloned());
                all
            }
            SetKind::DeletesDay2 => deletes(bundle, object, spec, records, &day_one, opts),
            SetKind::ManualEditsDay2 => updates(object, spec, records, opts, 4),
        };
        set.entities
            .entry(spec.source.clone())
            .or_default()
            .extend(out);
    }
    set
}

/// The first day's records of one object.
#[derive(Clone, Debug, Default)]
struct DayOne {
    valid: Vec<Generated>,
    rejects: Vec<Generated>,
}

/// Whether the engine writes `field` from a source column.
fn fed(spec: &ObjectSpec, name: &str, field: &FieldSpec) -> bool {
    field.from.is_some() && field.owner == Owner::Source && name != spec.external_id
}

/// The validation pattern on `field`, compiled as the org applies it (whole value).
fn pattern(spec: &ObjectSpec, field: &str) -> Option<regex::Regex> {
    spec.validation_rules
        .iter()
        .find(|r| r.field.as_deref() == Some(field) && r.regex.is_some())
        .and_then(|r| regex::Regex::new(&format!("^(?:{})$", r.regex.as_deref()?)).ok())
}

/// `ACC` for `accounts`: the ID prefix of an entity's records.
fn prefix(entity: &str) -> String {
    let p: String = entity
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(3)
        .collect::<String>()
        .to_ascii_uppercase();
    if p.is_empty() {
        "REC".into()
    } else {
        p
    }
}

/// An ID that fits the external-ID field: `PREFIX-TAG`, or the tag alone when too long.
fn id_for(spec: &ObjectSpec, tag: &str) -> String {
    let full = format!("{}-{tag}", prefix(&spec.source));
    let max = spec
        .fields
        .get(&spec.external_id)
        .and_then(|f| f.max_length);
    match max {
        Some(m) if full.chars().count() > m as usize => tag.to_string(),
        _ => full,
    }
}

fn day_one(bundle: &Bundle, opts: &Options, kind: SetKind) -> BTreeMap<String, DayOne> {
    let mut out: BTreeMap<String, DayOne> = BTreeMap::new();
    for (object, spec) in bundle.objects_parent_first() {
        let mut rng = opts.seed.stream(&format!(
            "fixtures/{}/{}/{object}",
            bundle.partner, bundle.tenant
        ));
        let patterns: BTreeMap<&str, regex::Regex> = spec
            .fields
            .keys()
            .filter_map(|f| pattern(spec, f).map(|p| (f.as_str(), p)))
            .collect();
        let edges: BTreeMap<&str, Vec<Value>> = spec
            .fields
            .iter()
            .filter(|(n, f)| fed(spec, n, f) && f.ty != FieldType::Reference)
            .map(|(n, f)| (n.as_str(), values::edges(f, patterns.get(n.as_str()))))
            .collect();
        let parents: BTreeMap<&str, Vec<String>> = spec
            .fields
            .iter()
            .filter(|(n, f)| fed(spec, n, f) && f.ty == FieldType::Reference)
            .filter_map(|(n, f)| {
                let to = f.to.as_deref()?;
                let ids = out
                    .get(to)
                    .map(|d| d.valid.iter().map(|g| g.id.clone()).collect())
                    .unwrap_or_default();
                Some((n.as_str(), ids))
            })
            .collect();
        let named = opts.named.get(object).cloned().unwrap_or_default();
        let ext_max = spec
            .fields
            .get(&spec.external_id)
            .and_then(|f| f.max_length)
            .map(|m| m as usize);
        let mut day = DayOne::default();
        let mut used: BTreeSet<String> = BTreeSet::new();
        let total = opts.records.max(named.len());
        for i in 0..total {
            let id = match named.get(i) {
                Some(n) => n.clone(),
                // The longest external ID the field takes.
                None if i == 2 && ext_max.is_some_and(|m| m > 12) => {
                    let head = id_for(spec, &format!("{:06}-", i + 1));
                    let m = ext_max.unwrap_or(0);
                    format!("{head}{}", text_of_len("X", m.saturating_sub(head.len())))
                }
                None => id_for(spec, &format!("{:06}", i + 1)),
            };
            if !used.insert(id.clone()) {
                continue;
            }
            let mut data = Map::new();
            for (name, field) in spec.fields.iter().filter(|(n, f)| fed(spec, n, f)) {
                let column = field.from.clone().unwrap_or_default();
                let value = if field.ty == FieldType::Reference {
                    let self_ref = field.to.as_deref() == Some(object.as_str());
                    // Earlier records of the object itself, or the parent's valid records.
                    let pool_len = if self_ref {
                        day.valid.len()
                    } else {
                        parents.get(name.as_str()).map_or(0, Vec::len)
                    };
                    // One child with an explicit null where the link is optional.
                    if (i == 1 && !field.required) || pool_len == 0 {
                        Value::Null
                    } else {
                        let k = rng.up_to(pool_len as u64 - 1) as usize;
                        match self_ref {
                            true => json!(day.valid[k].id),
                            false => json!(parents[name.as_str()][k]),
                        }
                    }
                } else {
                    match edges.get(name.as_str()).and_then(|e| e.get(i)) {
                        Some(edge) => edge.clone(),
                        None => values::typical(field, i, &mut rng, patterns.get(name.as_str()))
                            .unwrap_or(Value::Null),
                    }
                };
                data.insert(column, value);
            }
            // Absent is not null: the last record leaves every optional column out.
            if i + 1 == total && total > 2 {
                let optional: Vec<String> = spec
                    .fields
                    .iter()
                    .filter(|(n, f)| fed(spec, n, f) && !f.required)
                    .filter_map(|(_, f)| f.from.clone())
                    .collect();
                for c in optional {
                    data.remove(&c);
                }
            }
            day.valid.push(Generated {
                object: object.clone(),
                id,
                version: 1,
                data,
                updated_at: None,
                deleted: false,
                purpose: Purpose::Valid,
            });
        }
        if kind == SetKind::SchemaDrift {
            add_drift_columns(spec, &mut day.valid, &mut rng);
        }
        day.rejects = rejects(spec, &day, kind);
        out.insert(object.clone(), day);
    }
    out
}

/// One record per rule the object's contract must reject, each a valid record (the first
/// one's values) with one value broken.
fn rejects(spec: &ObjectSpec, day: &DayOne, kind: SetKind) -> Vec<Generated> {
    let Some(base) = day
        .valid
        .iter()
        .find(|g| g.data.values().all(|v| !v.is_null()))
        .or(day.valid.first())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut add = |field: &str, column: Option<&str>, rule: String, code, value: Option<Value>| {
        let n = out.len() + 1;
        let mut data = base.data.clone();
        if let Some(c) = column {
            match value {
                Some(v) => data.insert(c.to_string(), v),
                None => data.remove(c),
            };
        }
        out.push(Generated {
            object: base.object.clone(),
            id: id_for(spec, &format!("REJ-{n:03}")),
            version: 1,
            data,
            updated_at: None,
            deleted: false,
            purpose: Purpose::Reject {
                field: field.to_string(),
                rule,
                code,
            },
        });
    };
    for (name, field) in spec.fields.iter().filter(|(n, f)| fed(spec, n, f)) {
        let column = field.from.as_deref();
        if field.required {
            add(
                name,
                column,
                "required".into(),
                "REQUIRED_FIELD_MISSING",
                Some(Value::Null),
            );
            if kind == SetKind::Poison {
                // Left out on a create: the org, not the contract check, refuses it.
                add(
                    name,
                    column,
                    "required_absent".into(),
                    "REQUIRED_FIELD_MISSING",
                    None,
                );
            }
        }
        let mut breaches = values::breaches(field);
        if kind == SetKind::Poison {
            breaches.extend(values::poison_breaches(field));
        }
        for b in breaches {
            add(name, column, b.rule.into(), b.code, Some(b.value));
        }
        if let Some(re) = pattern(spec, name) {
            if let Some(bad) = values::sample_mismatch(field, &re) {
                let rule = spec
                    .validation_rules
                    .iter()
                    .find(|r| r.field.as_deref() == Some(name.as_str()) && r.regex.is_some())
                    .map_or("regex".into(), |r| format!("validation_rule:{}", r.name));
                add(
                    name,
                    column,
                    rule,
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    Some(json!(bad)),
                );
            }
        }
    }
    // An external ID one character too long for its field.
    if let Some(max) = spec
        .fields
        .get(&spec.external_id)
        .and_then(|f| f.max_length)
    {
        out.push(Generated {
            object: base.object.clone(),
            id: text_of_len("L", max as usize + 1),
            version: 1,
            data: base.data.clone(),
            updated_at: None,
            deleted: false,
            purpose: Purpose::Reject {
                field: spec.external_id.clone(),
                rule: "max_length".into(),
                code: "STRING_TOO_LONG",
            },
        });
    }
    out
}

/// New columns for `schema-drift`: one per custom field the source could feed but no
/// column does (the engine must route it there), and two no field takes (it must report
/// them).
fn add_drift_columns(spec: &ObjectSpec, records: &mut [Generated], rng: &mut crate::sim::Rng) {
    let flag = match &spec.delete {
        crate::contract::DeletePolicy::HardDelete => None,
        crate::contract::DeletePolicy::Archive { field }
        | crate::contract::DeletePolicy::Inactive { field, .. } => Some(field.as_str()),
    };
    let routable: Vec<(String, &FieldSpec)> = spec
        .fields
        .iter()
        .filter(|(n, f)| {
            n.ends_with("__c")
                && f.owner == Owner::Source
                && f.from.is_none()
                && f.ty != FieldType::Reference
                && **n != spec.external_id
                && Some(n.as_str()) != flag
        })
        .map(|(n, f)| (n.trim_end_matches("__c").to_ascii_lowercase(), f))
        .collect();
    for (i, r) in records.iter_mut().enumerate() {
        for (column, field) in &routable {
            let v = values::typical(field, i, rng, None).unwrap_or(Value::Null);
            r.data.insert(column.clone(), v);
        }
        r.data
            .insert("drift_note".into(), json!(format!("note {}", i + 1)));
        r.data
            .insert("credit_score_band".into(), json!(["A", "B", "C"][i % 3]));
    }
}

/// The second day of `deletes-day2`: up to three existing records no child points at are
/// deleted (the object's policy applies), one record the org never had is deleted (a hard
/// delete of nothing is done; a flag policy creates it flagged), two records are updated.
fn deletes(
    bundle: &Bundle,
    object: &str,
    spec: &ObjectSpec,
    records: &DayOne,
    day_one: &BTreeMap<String, DayOne>,
    opts: &Options,
) -> Vec<Generated> {
    let referenced: BTreeSet<&str> = bundle
        .objects
        .iter()
        .flat_map(|(child, cspec)| {
            cspec
                .fields
                .values()
                .filter(|f| f.ty == FieldType::Reference && f.to.as_deref() == Some(object))
                .filter_map(|f| f.from.as_deref())
                .flat_map(move |col| {
                    day_one
                        .get(child)
                        .into_iter()
                        .flat_map(|d| d.valid.iter())
                        .filter_map(move |g| g.data.get(col).and_then(Value::as_str))
                })
        })
        .collect();
    let at = opts.start.plus(Duration::from_secs(3600));
    let mut out = Vec::new();
    let free: Vec<&Generated> = records
        .valid
        .iter()
        .filter(|g| !referenced.contains(g.id.as_str()))
        .collect();
    for g in free.iter().rev().take(3) {
        out.push(Generated {
            version: g.version + 1,
            updated_at: Some(at),
            deleted: true,
            purpose: Purpose::Delete,
            ..(*g).clone()
        });
    }
    if let Some(base) = records.valid.first() {
        out.push(Generated {
            id: id_for(spec, "GONE-001"),
            version: 1,
            updated_at: Some(at),
            deleted: true,
            purpose: Purpose::Delete,
            ..base.clone()
        });
    }
    let deleted: BTreeSet<String> = out.iter().map(|g| g.id.clone()).collect();
    let rest = DayOne {
        valid: records
            .valid
            .iter()
            .filter(|g| !deleted.contains(&g.id))
            .cloned()
            .collect(),
        rejects: Vec::new(),
    };
    out.extend(updates(object, spec, &rest, opts, 2));
    out
}

/// Updates of the first `n` valid records: a new version changing the first two optional
/// plain fields, stamped alternately half an hour and an hour after the start.
fn updates(
    object: &str,
    spec: &ObjectSpec,
    records: &DayOne,
    opts: &Options,
    n: usize,
) -> Vec<Generated> {
    let mut rng = opts.seed.stream(&format!("fixtures/day2/{object}"));
    let changeable: Vec<(&String, &FieldSpec)> = spec
        .fields
        .iter()
        .filter(|(name, f)| {
            fed(spec, name, f)
                && f.ty != FieldType::Reference
                && pattern(spec, name).is_none()
                && !f.required
        })
        .take(2)
        .collect();
    records
        .valid
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, g)| {
            let mut data = g.data.clone();
            for (_, field) in &changeable {
                let column = field.from.clone().unwrap_or_default();
                let v = values::typical(field, 1000 + i, &mut rng, None).unwrap_or(Value::Null);
                data.insert(column, v);
            }
            Generated {
                version: g.version + 1,
                data,
                updated_at: Some(
                    opts.start
                        .plus(Duration::from_secs(1800 * (1 + i as u64 % 2))),
                ),
                purpose: Purpose::Update,
                ..g.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
