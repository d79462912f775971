//! The oracle: what the org and the dead-letter queue must hold after a run, worked out
//! from the source and the bundle alone, without looking at what the engine did.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::contract::rules::{check_write, WriteKind};
use crate::contract::{Bundle, FieldType};
use crate::engine::mapping::map_record;
use crate::engine::source::SourceSet;

/// The fate a source record must meet.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// In the org exactly once, with these field values (relationships as parent external IDs).
    Present { values: Map<String, Value> },
    /// In the dead-letter queue with this Salesforce error code.
    DeadLetter { code: String, why: String },
}

/// Expectations per object, per source ID, in source order.
pub type Expectations = BTreeMap<String, Vec<(String, Expected)>>;

/// Works out the expected outcome of every latest source record, parents first (a child
/// whose parent cannot exist is rejected by Salesforce with `INVALID_FIELD`).
/// `bundle` is the engine's contract (how source records map); `org` is the org as it really
/// is (which writes it accepts) — the same bundle unless a scenario changed the org.
pub fn expectations(bundle: &Bundle, org: &Bundle, source: &SourceSet) -> Expectations {
    let mut out: Expectations = BTreeMap::new();
    let mut present: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (object, spec) in bundle.objects_parent_first() {
        let mut list = Vec::new();
        for record in source.latest(&spec.source) {
            let parent_ext = |p: &str| bundle.object(p).map(|o| o.external_id.clone());
            let expected = match map_record(spec, record, parent_ext) {
                Err(e) => Expected::DeadLetter {
                    code: "INVALID_TYPE".into(),
                    why: e.to_string(),
                },
                Ok(mapped) => match check_write(
                    object,
                    org.object(object).unwrap_or(spec),
                    &mapped.payload,
                    WriteKind::Create,
                ) {
                    Err(e) => Expected::DeadLetter {
                        code: e.code,
                        why: e.message,
                    },
                    Ok(()) => match missing_parent(bundle, object, &mapped.payload, &present) {
                        Some(why) => Expected::DeadLetter {
                            code: "INVALID_FIELD".into(),
                            why,
                        },
                        None => Expected::Present {
                            values: mapped.payload,
                        },
                    },
                },
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
