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
use super::json_value;

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
/// then values the JSON reader cannot turn into their field's type (`JSON_PARSER_ERROR`,
/// see [`super::json_value`]), then field values in field-name order, then missing required
/// fields.
pub fn check_write(
    object: &str,
    spec: &ObjectSpec,
    values: &Map<String, Value>,
    kind: WriteKind,
) -> Result<(), RecordError> {
    coerce_write(object, spec, values, kind).map(|_| ())
}

/// [`check_write`], returning the values as the org stores them: each field's value converted
/// to its type as Salesforce converts it (`"42"` for an int field is `42`, `42` for a text
/// field is `"42"`); keys that are not fields (relationships, `attributes`) as given.
pub fn coerce_write(
    object: &str,
    spec: &ObjectSpec,
    values: &Map<String, Value>,
    kind: WriteKind,
) -> Result<Map<String, Value>, RecordError> {
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
    let mut out = values.clone();
    // The JSON reader first: a value it cannot read fails the record before any field rule.
    for (name, field) in &spec.fields {
        if let Some(value) = values.get(name) {
            let read = json_value::read(field.ty, value)
                .map_err(|m| RecordError::new(json_value::PARSER_ERROR, m, vec![name.clone()]))?;
            out.insert(name.clone(), read);
        }
        if let (Some(rel), FieldType::Reference) = (&field.relationship, field.ty) {
            if let Some(value) = values.get(rel) {
                if !value.is_object() && !value.is_null() {
                    let parent = field.to.as_deref().unwrap_or(rel);
                    return Err(RecordError::new(
                        json_value::PARSER_ERROR,
                        json_value::parser_message(parent, value),
                        vec![name.clone()],
                    ));
                }
            }
        }
    }
    for (name, field) in &spec.fields {
        if let Some(value) = out.get(name) {
            check_value(name, field, value)?;
        }
    }
    let mut missing = Vec::new();
    for (name, field) in &spec.fields {
        if !field.required {
            continue;
        }
        let given = out
            .get(name)
            .or_else(|| field.relationship.as_ref().and_then(|r| out.get(r)));
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
    Ok(out)
}

fn is_relationship(spec: &ObjectSpec, key: &str) -> bool {
    spec.fields
        .values()
        .any(|f| f.ty == FieldType::Reference && f.relationship.as_deref() == Some(key))
}

/// Checks one value against its field: first whether the JSON reader takes it for the
/// field's type (`JSON_PARSER_ERROR`), then the field's rules on the value as read. Null is
/// always well-typed (required is checked apart).
pub fn check_value(name: &str, field: &FieldSpec, value: &Value) -> Result<(), RecordError> {
    let read = json_value::read(field.ty, value)
        .map_err(|m| RecordError::new(json_value::PARSER_ERROR, m, vec![name.to_string()]))?;
    match (field.ty, &read) {
        (t, Value::String(s)) if t.is_text() => {
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
        // An ID of the wrong shape is refused after reading, naming the field's label.
        (FieldType::Reference, Value::String(s)) if s.len() != 15 && s.len() != 18 => {
            Err(RecordError::new(
                "MALFORMED_ID",
                format!("{name}: id value of incorrect type: {s}"),
                vec![name.to_string()],
            ))
        }
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
        fields.insert("Active__c".into(), field(FieldType::Boolean));
        fields.insert("Revenue".into(), field(FieldType::Currency));
        fields.insert("Share__c".into(), field(FieldType::Percent));
        fields.insert("Score__c".into(), field(FieldType::Double));
        fields.insert("Phone".into(), field(FieldType::Phone));
        fields.insert("Notes__c".into(), field(FieldType::Textarea));
        fields.insert("Site__c".into(), field(FieldType::Url));
        fields.insert(
            "ParentId".into(),
            FieldSpec {
                to: Some("Account".into()),
                relationship: Some("Parent".into()),
                ..field(FieldType::Reference)
            },
        );
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
            Some("JSON_PARSER_ERROR")
        );
        assert_eq!(
            code(json!({"Employees": 1.5}), WriteKind::Update).as_deref(),
            Some("JSON_PARSER_ERROR")
        );
        assert_eq!(
            code(json!({"Since__c": "2021-02-29"}), WriteKind::Update).as_deref(),
            Some("JSON_PARSER_ERROR")
        );
        assert_eq!(
            code(json!({"ParentId": "not-an-id"}), WriteKind::Update).as_deref(),
            Some("MALFORMED_ID")
        );
        assert_eq!(
            code(json!({"Parent": "A-1"}), WriteKind::Update).as_deref(),
            Some("JSON_PARSER_ERROR")
        );
        assert_eq!(
            code(json!({"Loyalty_Tier__c": "Gold"}), WriteKind::Update).as_deref(),
            Some("INVALID_FIELD")
        );
    }

    fn coerced(values: Value) -> Map<String, Value> {
        let map = values.as_object().unwrap().clone();
        coerce_write("Account", &account(), &map, WriteKind::Update)
            .unwrap_or_else(|e| panic!("{values}: {e:?}"))
    }

    fn refusal(values: Value) -> RecordError {
        let map = values.as_object().unwrap().clone();
        match coerce_write("Account", &account(), &map, WriteKind::Update) {
            Ok(got) => panic!("{values} should be refused, stored {got:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn numbers_sent_as_text_are_stored_as_numbers() {
        assert_eq!(coerced(json!({"Employees": "42"}))["Employees"], json!(42));
        assert_eq!(
            coerced(json!({"Employees": " 42 "}))["Employees"],
            json!(42)
        );
        assert_eq!(coerced(json!({"Employees": "-3"}))["Employees"], json!(-3));
        assert_eq!(coerced(json!({"Employees": 7.0}))["Employees"], json!(7));
        assert_eq!(coerced(json!({"Score__c": "42"}))["Score__c"], json!(42.0));
        assert_eq!(
            coerced(json!({"Revenue": "1234.5"}))["Revenue"],
            json!(1234.5)
        );
        assert_eq!(
            coerced(json!({"Share__c": "12.5"}))["Share__c"],
            json!(12.5)
        );
    }

    #[test]
    fn numbers_and_booleans_sent_for_text_are_stored_as_text() {
        assert_eq!(coerced(json!({"Name": 42}))["Name"], json!("42"));
        assert_eq!(
            coerced(json!({"Phone": 5035550100_i64}))["Phone"],
            json!("5035550100")
        );
        assert_eq!(
            coerced(json!({"Notes__c": 1.25}))["Notes__c"],
            json!("1.25")
        );
        assert_eq!(coerced(json!({"Site__c": 7}))["Site__c"], json!("7"));
        assert_eq!(
            coerced(json!({"Notes__c": false}))["Notes__c"],
            json!("false")
        );
        // A picklist reads the text too, then judges it against its values.
        assert_eq!(
            refusal(json!({"Industry": false})).code,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        );
        // Text rules judge the text the number became.
        assert_eq!(
            refusal(json!({"Name": 12345678901_i64})).code,
            "STRING_TOO_LONG"
        );
        assert_eq!(
            refusal(json!({"Email__c": 42})).code,
            "INVALID_EMAIL_ADDRESS"
        );
    }

    #[test]
    fn checkboxes_take_true_and_false_as_text() {
        assert_eq!(
            coerced(json!({"Active__c": "true"}))["Active__c"],
            json!(true)
        );
        assert_eq!(
            coerced(json!({"Active__c": "False"}))["Active__c"],
            json!(false)
        );
        for bad in [json!("yes"), json!("1"), json!(1)] {
            assert_eq!(refusal(json!({"Active__c": bad})).code, "JSON_PARSER_ERROR");
        }
    }

    #[test]
    fn values_no_type_reads_are_json_parser_errors_like_salesforce() {
        let e = refusal(json!({"Employees": "many"}));
        assert_eq!(e.code, "JSON_PARSER_ERROR");
        assert_eq!(
            e.message,
            "Cannot deserialize instance of int from VALUE_STRING value many or request may be missing a required field"
        );
        assert_eq!(e.fields, vec!["Employees".to_string()]);
        for (field, bad) in [
            ("Employees", json!(1.5)),
            ("Employees", json!("1,200")),
            ("Employees", json!(true)),
            ("Revenue", json!("n/a")),
            ("Revenue", json!("NaN")),
            ("Share__c", json!([1])),
            ("Since__c", json!("abc")),
            ("Since__c", json!(20200229)),
            ("Name", json!({"a": 1})),
        ] {
            let e = refusal(json!({ field: bad }));
            assert_eq!(e.code, "JSON_PARSER_ERROR", "{field}: {bad}");
        }
        // The reader fails the record before the field rules of any other field.
        let e = refusal(json!({"Name": "much too long a name", "Since__c": "abc"}));
        assert_eq!(e.code, "JSON_PARSER_ERROR");
        // No value error is INVALID_TYPE any more: that code names an unknown sObject type.
        for bad in [json!("x"), json!(2.5), json!(false), json!([]), json!({})] {
            for field in ["Employees", "Since__c", "Active__c", "Revenue", "ParentId"] {
                let map = json!({ field: bad.clone() }).as_object().unwrap().clone();
                if let Err(e) = check_write("Account", &account(), &map, WriteKind::Update) {
                    assert_ne!(e.code, "INVALID_TYPE", "{field}: {bad}");
                }
            }
        }
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
