//! Validation rules: compiled once per object from the bundle (an anchored regex on a field,
//! or a SOQL condition whose field paths are made canonical), and judged against a record as
//! it would be after a write, parent paths read from the org.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Org, Record, SYSTEM_FIELDS};
use crate::contract::rules::RecordError;
use crate::contract::Bundle;
use crate::mock::soql::{self, Expr, FieldPath, SoqlError};
use crate::sim::Timestamp;

#[derive(Clone, Debug)]
enum Check {
    Regex(regex::Regex),
    Condition(Expr),
}

#[derive(Clone, Debug)]
pub(super) struct CompiledRule {
    field: Option<String>,
    message: String,
    check: Check,
}

/// Every object's validation rules, compiled.
pub(super) fn compile(bundle: &Bundle) -> BTreeMap<String, Vec<CompiledRule>> {
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
                        *f = canonical_path(bundle, name, f).ok()?;
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
    rules
}

impl Org {
    /// The first validation rule a new record with `fields` would break (the oracle's
    /// prediction; parent paths read this org's records, so a fresh org sees none).
    pub fn rule_violation(&self, object: &str, fields: &Map<String, Value>) -> Option<RecordError> {
        self.broken_rule(object, None, fields, Timestamp::from_millis(0))
    }

    /// The first validation rule of `object` broken by a record whose fields are `fields`
    /// (`record`: the stored one, for an update), judged at `now`.
    pub(super) fn broken_rule(
        &self,
        object: &str,
        record: Option<&Record>,
        fields: &Map<String, Value>,
        now: Timestamp,
    ) -> Option<RecordError> {
        let rules = self.rules.get(object)?;
        rules.iter().find_map(|rule| {
            let failed = match &rule.check {
                Check::Regex(re) => match rule.field.as_ref().and_then(|f| fields.get(f)) {
                    Some(Value::String(s)) if !s.is_empty() => !re.is_match(s),
                    Some(Value::Number(n)) => !re.is_match(&n.to_string()),
                    _ => false,
                },
                Check::Condition(e) => soql::eval(e, now, &|p: &FieldPath| {
                    self.path_value(object, record, fields, p)
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
}

pub(super) fn canonical_path(
    bundle: &Bundle,
    object: &str,
    path: &FieldPath,
) -> Result<FieldPath, SoqlError> {
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
