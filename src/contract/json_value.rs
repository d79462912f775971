//! How an org reads one JSON value of a REST write into a field of a given type, as
//! Salesforce's JSON deserializer does: what it converts (a number sent as text for a number
//! field, a scalar for a text field, `"true"`/`"false"` for a checkbox) and what it refuses
//! with `JSON_PARSER_ERROR` ("Cannot deserialize instance of int from VALUE_STRING value
//! many or request may be missing a required field").
//!
//! Only the JSON type is decided here; the field's rules on the converted value (length,
//! e-mail, picklist, record ID format) are [`super::rules`]'. The choices where Salesforce's
//! documentation is silent, made conservatively (refusing rather than silently changing
//! data): a number with a fraction for an `int` field (`1.5`) is refused, a whole number
//! written with a point (`5.0`) is read as `5`; numbers are refused for checkboxes; text for
//! an `int` field must be digits with an optional sign (`"1,200"` and `"1.0"` are refused).

use serde_json::{Number, Value};

use super::bundle::FieldType;
use crate::sim::Timestamp;

/// The error code Salesforce answers a value its JSON reader cannot turn into the field's type.
pub const PARSER_ERROR: &str = "JSON_PARSER_ERROR";

/// The Java type Salesforce's parser names in its message.
fn java_type(ty: FieldType) -> &'static str {
    match ty {
        t if t.is_text() => "string",
        FieldType::Boolean => "boolean",
        FieldType::Int => "int",
        FieldType::Double | FieldType::Currency | FieldType::Percent => "double",
        FieldType::Date => "date",
        FieldType::Datetime => "datetime",
        _ => "id",
    }
}

/// The JSON token a value starts with, as the parser names it.
fn token(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

/// Salesforce's message for a value that does not deserialize as `java` (`int`, `string`, …
/// or, for a relationship, the parent's object name).
pub fn parser_message(java: &str, value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!(
        "Cannot deserialize instance of {java} from {} value {text} or request may be missing a required field",
        token(value)
    )
}

/// `value` as a field of type `ty` holds it, or the parser's message refusing it. Null stays
/// null (required fields are checked apart).
pub fn read(ty: FieldType, value: &Value) -> Result<Value, String> {
    let refuse = || Err(parser_message(java_type(ty), value));
    if value.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        // Text (and record IDs, whose format is checked on the text): any scalar as its text.
        t if t.is_text() || t == FieldType::Reference => match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => refuse(),
        },
        FieldType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => refuse(),
        },
        FieldType::Int => match value {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(_), _) => Ok(value.clone()),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
                    Ok(Value::from(f as i64))
                }
                _ => refuse(),
            },
            Value::String(s) => match integer_text(s.trim()) {
                Some(i) => Ok(Value::from(i)),
                None => refuse(),
            },
            _ => refuse(),
        },
        FieldType::Double | FieldType::Currency | FieldType::Percent => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => match decimal_text(s.trim()).and_then(Number::from_f64) {
                Some(n) => Ok(Value::Number(n)),
                None => refuse(),
            },
            _ => refuse(),
        },
        FieldType::Date => match value.as_str() {
            Some(s) if crate::sim::time::is_date(s) => Ok(value.clone()),
            _ => refuse(),
        },
        FieldType::Datetime => match value.as_str() {
            Some(s) if s.len() > 10 && Timestamp::parse(s).is_some() => Ok(value.clone()),
            _ => refuse(),
        },
        _ => refuse(),
    }
}

/// An optional sign and decimal digits (what a Java `Integer.parseInt`-style reader takes).
fn integer_text(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A finite decimal number in plain or exponent notation (`42`, `-0.5`, `1e3`); not `NaN`,
/// `Infinity` or group separators.
fn decimal_text(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let ok = !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(ty: FieldType, v: Value) -> Value {
        read(ty, &v).unwrap_or_else(|e| panic!("{v} as {ty:?}: {e}"))
    }

    fn refused(ty: FieldType, v: Value) -> String {
        match read(ty, &v) {
            Ok(got) => panic!("{v} as {ty:?} should be refused, got {got}"),
            Err(message) => message,
        }
    }

    #[test]
    fn numbers_sent_as_text_become_numbers() {
        assert_eq!(ok(FieldType::Int, json!("42")), json!(42));
        assert_eq!(ok(FieldType::Int, json!(" -7 ")), json!(-7));
        assert_eq!(ok(FieldType::Int, json!(5.0)), json!(5));
        assert_eq!(ok(FieldType::Double, json!("42")), json!(42.0));
        assert_eq!(ok(FieldType::Currency, json!("1234.56")), json!(1234.56));
        assert_eq!(ok(FieldType::Percent, json!("7.5e-1")), json!(0.75));
        assert_eq!(ok(FieldType::Currency, json!(12)), json!(12));
    }

    #[test]
    fn scalars_sent_for_text_become_text() {
        assert_eq!(ok(FieldType::String, json!(42)), json!("42"));
        assert_eq!(
            ok(FieldType::Phone, json!(5035550100_i64)),
            json!("5035550100")
        );
        assert_eq!(ok(FieldType::Textarea, json!(1.5)), json!("1.5"));
        assert_eq!(ok(FieldType::Picklist, json!(true)), json!("true"));
        assert_eq!(
            ok(FieldType::Reference, json!("001000000000001AAA")),
            json!("001000000000001AAA")
        );
    }

    #[test]
    fn checkbox_text_true_and_false() {
        assert_eq!(ok(FieldType::Boolean, json!("true")), json!(true));
        assert_eq!(ok(FieldType::Boolean, json!("FALSE")), json!(false));
        assert_eq!(ok(FieldType::Boolean, json!(false)), json!(false));
    }

    #[test]
    fn values_the_type_cannot_read_are_refused_with_the_parsers_message() {
        assert_eq!(
            refused(FieldType::Int, json!("many")),
            "Cannot deserialize instance of int from VALUE_STRING value many or request may be missing a required field"
        );
        assert_eq!(
            refused(FieldType::Int, json!(1.5)),
            "Cannot deserialize instance of int from VALUE_NUMBER_FLOAT value 1.5 or request may be missing a required field"
        );
        for bad in [
            json!("1,200"),
            json!("1.0"),
            json!(""),
            json!(true),
            json!([1]),
        ] {
            refused(FieldType::Int, bad);
        }
        for bad in [
            json!("n/a"),
            json!("NaN"),
            json!("inf"),
            json!("1,234.56"),
            json!(false),
        ] {
            assert!(refused(FieldType::Currency, bad).contains("instance of double"));
        }
        for bad in [json!("yes"), json!("1"), json!(1), json!("maybe")] {
            assert!(refused(FieldType::Boolean, bad).contains("instance of boolean"));
        }
        assert!(refused(FieldType::Date, json!("abc"))
            .contains("instance of date from VALUE_STRING value abc"));
        refused(FieldType::Date, json!("2026-02-30"));
        refused(FieldType::Date, json!(20260105));
        refused(FieldType::Datetime, json!("2026-01-05"));
        assert!(refused(FieldType::String, json!({"a": 1})).contains("START_OBJECT"));
        assert!(
            refused(FieldType::Email, json!(["a"])).contains("instance of string from START_ARRAY")
        );
    }

    #[test]
    fn null_is_null_for_every_type() {
        for ty in [
            FieldType::Int,
            FieldType::String,
            FieldType::Boolean,
            FieldType::Date,
        ] {
            assert_eq!(ok(ty, Value::Null), Value::Null);
        }
    }
}
