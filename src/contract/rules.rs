//! Field rules a Salesforce org enforces on every write, with Salesforce's error codes.
//!
//! The mock org answers with these errors; the verifier uses the same rules as its oracle
//! for which source records must end in the dead-letter queue; the engine pre-validates
//! each record with them (and with the bundle's regex validation rules, [`RegexRules`]) so a
//! record Salesforce would reject costs no API call. Everything the contract does not say
//! (rules on other records, org changes behind the contract's back) the engine still learns
//! from the org's answers, which is what the gate tests.

use serde_json::{Map, Value};

use super::bundle::{FieldSpec, FieldType, ObjectSpec};
use crate::sim::Timestamp;

/// One error as Salesforce reports it (`errorCode`/`statusCode`, `message`, `fields`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl RecordError {
    pub fn new(code: &str, message: impl Into<String>, fields: Vec<String>) -> Self {
        RecordError {
            code: code.to_string(),
            message: message.into(),
            fields,
        }
    }
}

/// Whether the write creates a record (required fields must be present) or updates one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Update,
}

/// Checks the values of a write against the object's fields. `values` uses Salesforce
/// field names; relationship keys (`Account: {Ext__c: …}`) are accepted here and
/// resolved by the caller. Reports the first error, in a fixed order: unknown fields,
/// then field values in field-name order, then missing required fields.
pub fn check_write(
    object: &str,
    spec: &ObjectSpec,
    values: &Map<String, Value>,
    kind: WriteKind,
) -> Result<(), RecordError> {
    for key in values.keys() {
        if key == "attributes" || spec.fields.contains_key(key) || is_relationship(spec, key) {
            continue;
        }
        return Err(RecordError::new(
            "INVALID_FIELD",
            format!("No such column '{key}' on sobject of type {object}"),
            vec![key.clone()],
        ));
    }
    for (name, field) in &spec.fields {
        if let Some(value) = values.get(name) {
            check_value(name, field, value)?;
        }
        if let (Some(rel), FieldType::Reference) = (&field.relationship, field.ty) {
            if let Some(value) = values.get(rel) {
                if !value.is_object() && !value.is_null() {
                    return Err(RecordError::new(
                        "INVALID_TYPE",
                        format!("{rel}: a relationship must be an object naming the parent's external ID"),
                        vec![name.clone()],
                    ));
                }
            }
        }
    }
    let mut missing = Vec::new();
    for (name, field) in &spec.fields {
        if !field.required {
            continue;
        }
        let given = values
            .get(name)
            .or_else(|| field.relationship.as_ref().and_then(|r| values.get(r)));
        let absent = match given {
            None => kind == WriteKind::Create,
            Some(v) => v.is_null(),
        };
        if absent {
            missing.push(name.clone());
        }
    }
    if !missing.is_empty() {
        return Err(RecordError::new(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            missing,
        ));
    }
    Ok(())
}

fn is_relationship(spec: &ObjectSpec, key: &str) -> bool {
    spec.fields
        .values()
        .any(|f| f.ty == FieldType::Reference && f.relationship.as_deref() == Some(key))
}

/// Checks one value against its field. Null is always well-typed (required is checked apart).
pub fn check_value(name: &str, field: &FieldSpec, value: &Value) -> Result<(), RecordError> {
    if value.is_null() {
        return Ok(());
    }
    let bad_type = |expected: &str| {
        RecordError::new(
            "INVALID_TYPE",
            format!("{name}: value {value} is not a valid {expected}"),
            vec![name.to_string()],
        )
    };
    match field.ty {
        t if t.is_text() => {
            let Some(s) = value.as_str() else {
                return Err(bad_type(t.describe_name()));
            };
            if let Some(max) = field.max_length {
                if s.chars().count() > max as usize {
                    return Err(RecordError::new(
                        "STRING_TOO_LONG",
                        format!(
                            "{name}: data value too large: {} (max length={max})",
                            truncate(s, 40)
                        ),
                        vec![name.to_string()],
                    ));
                }
            }
            if t == FieldType::Email && !is_email(s) {
                return Err(RecordError::new(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{name}: invalid email address: {s}"),
                    vec![name.to_string()],
                ));
            }
            if t == FieldType::Picklist && field.restricted {
                let allowed = field.values.as_deref().unwrap_or_default();
                if !allowed.iter().any(|v| v == s) {
                    return Err(RecordError::new(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        format!("{name}: bad value for restricted picklist field: {s}"),
                        vec![name.to_string()],
                    ));
                }
            }
            Ok(())
        }
        FieldType::Boolean => value
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| bad_type("boolean")),
        FieldType::Int => {
            if value.as_i64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0) {
                Ok(())
            } else {
                Err(bad_type("int"))
            }
        }
        t if t.is_number() => value
            .as_f64()
            .map(|_| ())
            .ok_or_else(|| bad_type(t.describe_name())),
        FieldType::Date => match value.as_str() {
            Some(s) if crate::sim::time::is_date(s) => Ok(()),
            _ => Err(bad_type("date (YYYY-MM-DD)")),
        },
        FieldType::Datetime => match value.as_str().and_then(Timestamp::parse) {
            Some(_) if value.as_str().is_some_and(|s| s.len() > 10) => Ok(()),
            _ => Err(bad_type("datetime with a time zone")),
        },
        FieldType::Reference => match value.as_str() {
            Some(s) if s.len() == 15 || s.len() == 18 => Ok(()),
            _ => Err(bad_type("record ID")),
        },
        _ => Ok(()),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::DeletePolicy;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn field(ty: FieldType) -> FieldSpec {
        FieldSpec {
            from: Some("x".into()),
            ..FieldSpec::of(ty)
        }
    }

    fn account() -> ObjectSpec {
        let mut fields = BTreeMap::new();
        fields.insert("Ext__c".into(), field(FieldType::String));
        fields.insert(
            "Name".into(),
            FieldSpec {
                required: true,
                max_length: Some(10),
                ..field(FieldType::String)
            },
        );
        fields.insert(
            "Industry".into(),
            FieldSpec {
                values: Some(vec!["Retail".into()]),
                ..field(FieldType::Picklist)
            },
        );
        fields.insert("Email__c".into(), field(FieldType::Email));
        fields.insert("Employees".into(), field(FieldType::Int));
        fields.insert("Since__c".into(), field(FieldType::Date));
        ObjectSpec::new("Ext__c", "accounts", DeletePolicy::HardDelete, fields)
    }

    fn code(values: Value, kind: WriteKind) -> Option<String> {
        let map = values.as_object().unwrap().clone();
        check_write("Account", &account(), &map, kind)
            .err()
            .map(|e| e.code)
    }

    #[test]
    fn accepts_a_valid_record() {
        assert_eq!(
            code(
                json!({"Ext__c": "A-1", "Name": "Acme", "Industry": "Retail", "Employees": 12, "Since__c": "2020-02-29"}),
                WriteKind::Create
            ),
            None
        );
    }

    #[test]
    fn reports_salesforce_codes() {
        assert_eq!(
            code(json!({"Ext__c": "A-1"}), WriteKind::Create).as_deref(),
            Some("REQUIRED_FIELD_MISSING")
        );
        assert_eq!(code(json!({"Ext__c": "A-1"}), WriteKind::Update), None);
        assert_eq!(
            code(json!({"Name": null}), WriteKind::Update).as_deref(),
            Some("REQUIRED_FIELD_MISSING")
        );
        assert_eq!(
            code(json!({"Name": "much too long a name"}), WriteKind::Update).as_deref(),
            Some("STRING_TOO_LONG")
        );
        assert_eq!(
            code(json!({"Industry": "Mining"}), WriteKind::Update).as_deref(),
            Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
        );
        assert_eq!(
            code(json!({"Email__c": "not-an-email"}), WriteKind::Update).as_deref(),
            Some("INVALID_EMAIL_ADDRESS")
        );
        assert_eq!(
            code(json!({"Employees": "twelve"}), WriteKind::Update).as_deref(),
            Some("INVALID_TYPE")
        );
        assert_eq!(
            code(json!({"Employees": 1.5}), WriteKind::Update).as_deref(),
            Some("INVALID_TYPE")
        );
        assert_eq!(
            code(json!({"Since__c": "2021-02-29"}), WriteKind::Update).as_deref(),
            Some("INVALID_TYPE")
        );
        assert_eq!(
            code(json!({"Loyalty_Tier__c": "Gold"}), WriteKind::Update).as_deref(),
            Some("INVALID_FIELD")
        );
    }

    #[test]
    fn required_message_lists_fields() {
        let map = json!({"Ext__c": "A-1"}).as_object().unwrap().clone();
        let err = check_write("Account", &account(), &map, WriteKind::Create).unwrap_err();
        assert_eq!(err.message, "Required fields are missing: [Name]");
        assert_eq!(err.fields, vec!["Name".to_string()]);
    }
}

/// The bundle's `regex` validation rules of one object, compiled: a field's non-blank value
/// must match the whole pattern, as the org checks it (`FIELD_CUSTOM_VALIDATION_EXCEPTION`).
/// Condition rules need the record as the org holds it and are left to the org.
#[derive(Clone, Debug, Default)]
pub struct RegexRules {
    rules: Vec<(String, regex::Regex, String)>,
}

impl RegexRules {
    pub fn compile(spec: &ObjectSpec) -> Self {
        let rules = spec
            .validation_rules
            .iter()
            .filter_map(|r| {
                let field = r.field.clone()?;
                // Rules are checked when the bundle loads; one that does not compile here
                // (a bundle built in code) is left to the org.
                let re = regex::Regex::new(&format!("^(?:{})$", r.regex.as_deref()?)).ok()?;
                Some((field, re, r.message.clone()))
            })
            .collect();
        RegexRules { rules }
    }

    /// The first rule `values` break, as the org would report it.
    pub fn check(&self, values: &Map<String, Value>) -> Result<(), RecordError> {
        for (field, re, message) in &self.rules {
            let text = match values.get(field) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            if !re.is_match(&text) {
                return Err(RecordError::new(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    message.clone(),
                    vec![field.clone()],
                ));
            }
        }
        Ok(())
    }
}
