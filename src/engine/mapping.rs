//! Mapping: a source record becomes the Salesforce payload the bundle describes, with
//! per-field coercion. Absent columns are left out (the org keeps its value); an explicit
//! null clears the field.
//!
//! Schema drift: a source column no field reads is routed to a same-named custom field the
//! bundle has but no column feeds (`loyalty_tier` → `Loyalty_Tier__c`); any other new column
//! is reported as unmapped, never silently dropped.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Number, Value};

use super::source::SourceRecord;
use crate::contract::{FieldSpec, FieldType, ObjectSpec, Owner};
use crate::sim::Timestamp;

/// A payload ready to upsert, and what could not be mapped.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    pub payload: Map<String, Value>,
    /// Source columns no field of the bundle reads (reported, never silently dropped).
    pub unmapped: BTreeSet<String>,
    /// New source columns routed to a same-named custom field: column → field.
    pub routed: BTreeMap<String, String>,
}

/// A value the engine could not coerce to its field's type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: cannot read {value} from column `{column}` as {expected}")]
pub struct MappingError {
    pub field: String,
    pub column: String,
    pub value: String,
    pub expected: String,
}

/// Maps `record` onto `object` of the bundle. `parents` gives each referenced object's
/// external-ID field name.
pub fn map_record(
    object: &ObjectSpec,
    record: &SourceRecord,
    parent_external_id: impl Fn(&str) -> Option<String>,
) -> Result<Mapped, MappingError> {
    let mut payload = Map::new();
    payload.insert(object.external_id.clone(), Value::String(record.id.clone()));
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for (name, field) in &object.fields {
        if field.owner == Owner::Crm || *name == object.external_id {
            continue;
        }
        let Some(column) = &field.from else { continue };
        used.insert(column);
        let Some(raw) = record.data.get(column) else {
            continue;
        };
        let value = coerce(name, column, field, raw)?;
        if field.ty == FieldType::Reference {
            let rel = field.relationship.clone().unwrap_or_else(|| name.clone());
            let parent = field.to.as_deref().unwrap_or_default();
            let value = match (value, parent_external_id(parent)) {
                (Value::Null, _) => Value::Null,
                (v, Some(ext)) => {
                    let mut m = Map::new();
                    m.insert(ext, v);
                    Value::Object(m)
                }
                (v, None) => v,
            };
            payload.insert(rel, value);
        } else {
            payload.insert(name.clone(), value);
        }
    }
    let mut unmapped = BTreeSet::new();
    let mut routed = BTreeMap::new();
    for (column, raw) in record
        .data
        .iter()
        .filter(|(k, _)| !used.contains(k.as_str()))
    {
        // A field one new column took is fed: a second column of the same name is unmapped.
        match drift_target(object, column).filter(|name| !routed.values().any(|f| f == name)) {
            Some(name) => {
                let value = coerce(name, column, &object.fields[name], raw)?;
                payload.insert(name.to_string(), value);
                routed.insert(column.clone(), name.to_string());
            }
            None => {
                unmapped.insert(column.clone());
            }
        }
    }
    Ok(Mapped {
        payload,
        unmapped,
        routed,
    })
}

/// The field a new source column is routed to: a custom field of the same name (ignoring
/// case, underscores and the `__c` suffix) that the source owns and no column feeds yet.
/// CRM-owned fields, the external ID and the delete policy's flag are never drift targets.
pub fn drift_target<'o>(object: &'o ObjectSpec, column: &str) -> Option<&'o str> {
    let norm = |s: &str| {
        s.trim_end_matches("__c")
            .replace('_', "")
            .to_ascii_lowercase()
    };
    let policy_field = match &object.delete {
        crate::contract::DeletePolicy::HardDelete => None,
        crate::contract::DeletePolicy::Archive { field }
        | crate::contract::DeletePolicy::Inactive { field, .. } => Some(field.as_str()),
    };
    object
        .fields
        .iter()
        .find(|(name, f)| {
            name.ends_with("__c")
                && f.owner == Owner::Source
                && f.from.is_none()
                && f.ty != FieldType::Reference
                && **name != object.external_id
                && Some(name.as_str()) != policy_field
                && norm(name) == norm(column)
        })
        .map(|(name, _)| name.as_str())
}

fn coerce(name: &str, column: &str, field: &FieldSpec, raw: &Value) -> Result<Value, MappingError> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let fail = |expected: &str| MappingError {
        field: name.to_string(),
        column: column.to_string(),
        value: raw.to_string(),
        expected: expected.to_string(),
    };
    let text = match raw {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match field.ty {
        t if t.is_text() => match raw {
            Value::String(s) => Ok(Value::String(s.clone())),
            Value::Number(_) | Value::Bool(_) => Ok(Value::String(text.unwrap_or_default())),
            _ => Err(fail("text")),
        },
        FieldType::Reference => match raw {
            Value::String(_) | Value::Number(_) => Ok(Value::String(text.unwrap_or_default())),
            _ => Err(fail("a parent ID")),
        },
        FieldType::Boolean => match raw {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            _ => match text.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("true" | "t" | "yes" | "y" | "1") => Ok(Value::Bool(true)),
                Some("false" | "f" | "no" | "n" | "0") => Ok(Value::Bool(false)),
                _ => Err(fail("a boolean")),
            },
        },
        FieldType::Int => {
            // A whole number written as one is taken exactly (a double rounds past 2^53).
            let exact = match raw {
                Value::Number(n) => n.as_i64(),
                Value::String(_) => text
                    .as_deref()
                    .and_then(|t| t.replace(',', "").parse().ok()),
                _ => None,
            };
            if let Some(i) = exact {
                return Ok(Value::Number(Number::from(i)));
            }
            let n = number(raw, text.as_deref()).ok_or_else(|| fail("an integer"))?;
            // `as i64` would saturate: a value past the range is not an integer we can send.
            if n.fract() != 0.0 || n.abs() >= i64::MAX as f64 {
                return Err(fail("an integer"));
            }
            Ok(Value::Number(Number::from(n as i64)))
        }
        t if t.is_number() => {
            let n = number(raw, text.as_deref()).ok_or_else(|| fail("a number"))?;
            Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| fail("a finite number"))
        }
        FieldType::Date => {
            let s = text.ok_or_else(|| fail("a date"))?;
            if crate::sim::time::is_date(&s) {
                Ok(Value::String(s))
            } else if s.len() > 10 {
                // A datetime with a zone: keep its UTC date.
                Timestamp::parse(&s)
                    .map(|t| Value::String(t.to_date()))
                    .ok_or_else(|| fail("a date (YYYY-MM-DD)"))
            } else {
                Err(fail("a date (YYYY-MM-DD)"))
            }
        }
        FieldType::Datetime => {
            let s = text.ok_or_else(|| fail("a datetime"))?;
            match Timestamp::parse(&s) {
                Some(t) if s.len() > 10 => Ok(Value::String(t.to_salesforce())),
                _ => Err(fail("a datetime with a time zone")),
            }
        }
        _ => Ok(raw.clone()),
    }
}

fn number(raw: &Value, text: Option<&str>) -> Option<f64> {
    match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(_) => text?
            .replace(',', "")
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::DeletePolicy;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn spec() -> ObjectSpec {
        let f = |ty, from: &str| FieldSpec {
            ty,
            required: false,
            max_length: None,
            values: None,
            restricted: true,
            owner: Owner::Source,
            from: Some(from.into()),
            to: None,
            relationship: None,
            label: None,
        };
        let mut fields = BTreeMap::new();
        fields.insert("Ext__c".into(), f(FieldType::String, "id"));
        fields.insert("Employees".into(), f(FieldType::Int, "employees"));
        fields.insert("Revenue".into(), f(FieldType::Currency, "revenue"));
        fields.insert("Active__c".into(), f(FieldType::Boolean, "active"));
        fields.insert("Closed__c".into(), f(FieldType::Datetime, "closed_at"));
        fields.insert("Since__c".into(), f(FieldType::Date, "since"));
        fields.insert(
            "Owner__c".into(),
            FieldSpec {
                owner: Owner::Crm,
                from: None,
                ..f(FieldType::String, "x")
            },
        );
        fields.insert(
            "AccountId".into(),
            FieldSpec {
                to: Some("Account".into()),
                relationship: Some("Account".into()),
                ..f(FieldType::Reference, "account_id")
            },
        );
        ObjectSpec {
            external_id: "Ext__c".into(),
            source: "accounts".into(),
            delete: DeletePolicy::HardDelete,
            fields,
            unique_external_id: false,
            validation_rules: vec![],
            label: None,
        }
    }

    fn rec(data: Value) -> SourceRecord {
        SourceRecord {
            entity: "accounts".into(),
            id: "A-1".into(),
            version: 1,
            data: data.as_object().unwrap().clone(),
            changed_at: None,
            deleted: false,
            origin: "t".into(),
        }
    }

    #[test]
    fn coerces_types_and_builds_relationships() {
        let m = map_record(&spec(), &rec(json!({"employees": "1,200", "revenue": 12.5, "active": "yes", "closed_at": "2026-01-05T10:00:00+02:00", "since": "2020-01-01", "account_id": "P-9", "shoe_size": 44})), |_| Some("Ext__c".into())).unwrap();
        assert_eq!(m.payload["Employees"], json!(1200));
        assert_eq!(m.payload["Active__c"], json!(true));
        assert_eq!(
            m.payload["Closed__c"],
            json!("2026-01-05T08:00:00.000+0000")
        );
        assert_eq!(m.payload["Account"], json!({"Ext__c": "P-9"}));
        assert_eq!(m.payload["Ext__c"], json!("A-1"));
        assert!(!m.payload.contains_key("Owner__c"));
        assert_eq!(
            m.unmapped.into_iter().collect::<Vec<_>>(),
            vec!["shoe_size".to_string()]
        );
    }

    #[test]
    fn null_and_absent_differ() {
        let m = map_record(&spec(), &rec(json!({"revenue": null})), |_| None).unwrap();
        assert_eq!(m.payload.get("Revenue"), Some(&Value::Null));
        assert!(!m.payload.contains_key("Employees"));
    }

    #[test]
    fn rejects_uncoercible_values() {
        let e = map_record(
            &spec(),
            &rec(json!({"closed_at": "2026-01-05T10:00:00"})),
            |_| None,
        )
        .unwrap_err();
        assert_eq!(e.field, "Closed__c");
        assert!(map_record(&spec(), &rec(json!({"employees": 1.5})), |_| None).is_err());
        assert!(map_record(&spec(), &rec(json!({"active": "maybe"})), |_| None).is_err());
        assert!(map_record(&spec(), &rec(json!({"employees": "1e30"})), |_| None).is_err());
    }

    #[test]
    fn large_integers_are_exact_and_a_drift_target_takes_one_column() {
        let m = map_record(
            &spec(),
            &rec(json!({"employees": "9007199254740993"})),
            |_| None,
        )
        .unwrap();
        assert_eq!(m.payload["Employees"], json!(9007199254740993_i64));
        let mut spec = spec();
        spec.fields.insert(
            "Segment__c".into(),
            FieldSpec {
                from: None,
                ..spec.fields["Employees"].clone()
            },
        );
        let m = map_record(&spec, &rec(json!({"segment": 1, "SEGMENT": 2})), |_| None).unwrap();
        assert_eq!(m.payload["Segment__c"], json!(1));
        assert_eq!(m.routed.len(), 1);
        assert!(m.unmapped.contains("SEGMENT"), "{m:?}");
    }
}
