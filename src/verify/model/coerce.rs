//! What a source value becomes in a Salesforce field of a given type, by the table "Field
//! types" of `contracts/README.md`: the value the org must end up holding, or why the source
//! value cannot be one (the engine must then dead-letter it, unsent, with the
//! `JSON_PARSER_ERROR` Salesforce would answer the value as it is).

use serde_json::{Number, Value};

use super::calendar::{Date, Instant};
use crate::contract::FieldType;

/// A source value the field's type cannot hold; `expected` says what would have fitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotConvertible {
    pub expected: &'static str,
}

fn refuse(expected: &'static str) -> Result<Value, NotConvertible> {
    Err(NotConvertible { expected })
}

/// The text a scalar source value stands for: strings as they are, numbers as JSON writes
/// them, booleans as `true`/`false`. Arrays and objects have none.
fn scalar_text(raw: &Value) -> Option<String> {
    match raw {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A number written in decimal: an optional sign, digits with an optional fraction, an
/// optional exponent. `,` group separators are dropped first; surrounding blanks ignored.
/// Returns the digits without the point and the power of ten they are scaled by
/// (`-1,234.50` → `(-123450, -2)`), exactly, so no float rounding decides anything.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let cleaned: String = text.trim().chars().filter(|c| *c != ',').collect();
    let (negative, rest) = match cleaned.as_bytes().first()? {
        b'-' => (true, &cleaned[1..]),
        b'+' => (false, &cleaned[1..]),
        _ => (false, &cleaned[..]),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => {
            let exp = &rest[at + 1..];
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&rest[..at], exp.parse::<i64>().ok()?)
        }
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let scale = exponent.checked_sub(fraction.len() as i64)?;
    Some((negative, format!("{whole}{fraction}"), scale))
}

/// A whole number, exactly: `1,200`, `1.2e3` and `1200.0` are 1200; `1.5` is not whole.
fn whole_number(text: &str) -> Option<i64> {
    let (negative, digits, scale) = decimal(text)?;
    let mut digits = digits.trim_start_matches('0').to_string();
    if scale >= 0 {
        if digits.is_empty() {
            return Some(0);
        }
        digits.push_str(&"0".repeat(usize::try_from(scale).ok().filter(|s| *s <= 18)?));
    } else {
        // Every digit past the point must be zero.
        let cut = usize::try_from(-scale).ok()?;
        let keep = digits.len().saturating_sub(cut);
        if !digits[keep..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits.truncate(keep);
        if digits.is_empty() {
            return Some(0);
        }
    }
    let magnitude: i64 = digits.parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Any finite number, as the nearest double (what the org's JSON holds).
fn real_number(text: &str) -> Option<f64> {
    let (negative, digits, scale) = decimal(text)?;
    let written = format!("{}{}e{scale}", if negative { "-" } else { "" }, digits);
    written.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// The value the org must hold for `raw` in a field of type `ty`. `null` stays `null` for
/// every type (it clears the field; only `required` refuses it, which is not coercion).
pub fn to_field_value(ty: FieldType, raw: &Value) -> Result<Value, NotConvertible> {
    use FieldType as T;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        // Text: strings exactly as they are (blanks kept); numbers and booleans as text.
        T::String | T::Textarea | T::Email | T::Phone | T::Url | T::Picklist => {
            match scalar_text(raw) {
                Some(text) => Ok(Value::String(text)),
                None => refuse("text"),
            }
        }
        T::Boolean => {
            if let Value::Bool(b) = raw {
                return Ok(Value::Bool(*b));
            }
            let word = scalar_text(raw).map(|t| t.trim().to_lowercase());
            match word.as_deref() {
                Some("true" | "t" | "yes" | "y" | "1") => Ok(Value::Bool(true)),
                Some("false" | "f" | "no" | "n" | "0") => Ok(Value::Bool(false)),
                _ => refuse("a boolean"),
            }
        }
        T::Int => {
            let text = match raw {
                Value::Number(_) | Value::String(_) => scalar_text(raw),
                _ => None,
            };
            match text.as_deref().and_then(whole_number) {
                Some(n) => Ok(Value::Number(Number::from(n))),
                None => refuse("an integer"),
            }
        }
        // The bundle declares no scale, so the org keeps every decimal it is sent.
        T::Double | T::Currency | T::Percent => {
            let number = match raw {
                Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
                Value::String(s) => real_number(s),
                _ => None,
            };
            match number.and_then(Number::from_f64) {
                Some(n) => Ok(Value::Number(n)),
                None => refuse("a number"),
            }
        }
        T::Date => {
            let Value::String(s) = raw else {
                return refuse("a date");
            };
            let s = s.trim();
            if let Some(date) = Date::parse(s) {
                return Ok(Value::String(date.to_text()));
            }
            // A date-time with a zone names an instant; the date is the one in UTC.
            match Instant::parse(s) {
                Some(at) => Ok(Value::String(at.utc_date().to_text())),
                None => refuse("a date (YYYY-MM-DD)"),
            }
        }
        T::Datetime => {
            let Value::String(s) = raw else {
                return refuse("a datetime");
            };
            match Instant::parse(s.trim()) {
                Some(at) => Ok(Value::String(at.to_salesforce())),
                None => refuse("a datetime with a time zone"),
            }
        }
        // The parent's source ID, as text (blanks around it are not part of the ID).
        T::Reference => match raw {
            Value::String(s) => Ok(Value::String(s.trim().to_string())),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            _ => refuse("a parent ID"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(ty: FieldType, raw: Value) -> Value {
        to_field_value(ty, &raw).unwrap_or_else(|e| panic!("{raw} as {ty:?}: {e:?}"))
    }

    fn fails(ty: FieldType, raw: Value) -> &'static str {
        match to_field_value(ty, &raw) {
            Ok(v) => panic!("{raw} as {ty:?} should fail, got {v}"),
            Err(e) => e.expected,
        }
    }

    #[test]
    fn null_clears_every_type() {
        for ty in [
            FieldType::String,
            FieldType::Email,
            FieldType::Boolean,
            FieldType::Int,
            FieldType::Currency,
            FieldType::Date,
            FieldType::Datetime,
            FieldType::Reference,
        ] {
            assert_eq!(ok(ty, Value::Null), Value::Null, "{ty:?}");
        }
    }

    #[test]
    fn text_keeps_strings_as_they_are_and_writes_scalars_as_text() {
        assert_eq!(
            ok(FieldType::String, json!("  padded ")),
            json!("  padded ")
        );
        assert_eq!(
            ok(FieldType::String, json!("")),
            json!(""),
            "empty text is a value, not null"
        );
        assert_eq!(ok(FieldType::Phone, json!(5551234)), json!("5551234"));
        assert_eq!(ok(FieldType::Picklist, json!(true)), json!("true"));
        assert_eq!(ok(FieldType::Textarea, json!(12.5)), json!("12.5"));
        assert_eq!(fails(FieldType::String, json!(["a"])), "text");
        assert_eq!(fails(FieldType::Url, json!({"a": 1})), "text");
    }

    #[test]
    fn booleans_from_words_and_digits_in_any_case() {
        for t in ["true", "T", "Yes", " y ", "1"] {
            assert_eq!(ok(FieldType::Boolean, json!(t)), json!(true), "{t}");
        }
        for f in ["FALSE", "f", "no", "N", "0"] {
            assert_eq!(ok(FieldType::Boolean, json!(f)), json!(false), "{f}");
        }
        assert_eq!(ok(FieldType::Boolean, json!(1)), json!(true));
        assert_eq!(ok(FieldType::Boolean, json!(0)), json!(false));
        for bad in [json!("maybe"), json!(""), json!(2), json!(1.0), json!("on")] {
            assert_eq!(fails(FieldType::Boolean, bad), "a boolean");
        }
    }

    #[test]
    fn integers_are_exact_and_whole() {
        assert_eq!(ok(FieldType::Int, json!("1,200")), json!(1200));
        assert_eq!(ok(FieldType::Int, json!(" -42 ")), json!(-42));
        assert_eq!(ok(FieldType::Int, json!("+7")), json!(7));
        assert_eq!(ok(FieldType::Int, json!(805)), json!(805));
        assert_eq!(
            ok(FieldType::Int, json!(5.0)),
            json!(5),
            "a whole value written with a point"
        );
        assert_eq!(ok(FieldType::Int, json!("1.2e3")), json!(1200));
        assert_eq!(ok(FieldType::Int, json!("0.000")), json!(0));
        // Past 2^53 a double cannot tell these apart; an integer field must.
        assert_eq!(
            ok(FieldType::Int, json!("9007199254740993")),
            json!(9007199254740993_i64)
        );
        for bad in [
            json!(1.5),
            json!("1.5"),
            json!("twelve"),
            json!(""),
            json!(true),
            json!("1e"),
            json!("."),
            json!("1-2"),
        ] {
            assert_eq!(fails(FieldType::Int, bad), "an integer");
        }
    }

    #[test]
    fn currency_keeps_its_decimals() {
        assert_eq!(
            ok(FieldType::Currency, json!("169552.48")),
            json!(169552.48)
        );
        assert_eq!(
            ok(FieldType::Currency, json!("1,234,567.891")),
            json!(1234567.891)
        );
        assert_eq!(
            ok(FieldType::Currency, json!(12.345)),
            json!(12.345),
            "no scale: not rounded"
        );
        assert_eq!(ok(FieldType::Currency, json!("-0.01")), json!(-0.01));
        assert_eq!(ok(FieldType::Percent, json!("7.5e-1")), json!(0.75));
        assert_eq!(ok(FieldType::Double, json!(50753000)), json!(50753000.0));
        for bad in [
            json!("12,5 EUR"),
            json!("$12"),
            json!("NaN"),
            json!("inf"),
            json!(""),
            json!(false),
        ] {
            assert_eq!(fails(FieldType::Currency, bad), "a number");
        }
        // 0.1 as text and as a JSON number land on the same double.
        assert_eq!(
            ok(FieldType::Currency, json!("0.1")),
            ok(FieldType::Currency, json!(0.1))
        );
    }

    #[test]
    fn dates_and_datetimes_with_zones() {
        assert_eq!(
            ok(FieldType::Date, json!("2020-01-01")),
            json!("2020-01-01")
        );
        assert_eq!(
            ok(FieldType::Date, json!("2026-01-05T23:30:00-05:00")),
            json!("2026-01-06")
        );
        assert_eq!(
            ok(FieldType::Datetime, json!("2026-01-05T10:00:00+02:00")),
            json!("2026-01-05T08:00:00.000+0000")
        );
        assert_eq!(
            ok(FieldType::Datetime, json!("2026-03-08T03:30:00-04:00")),
            json!("2026-03-08T07:30:00.000+0000")
        );
        assert_eq!(
            fails(FieldType::Date, json!("2026-02-30")),
            "a date (YYYY-MM-DD)"
        );
        assert_eq!(
            fails(FieldType::Date, json!("2026-01-05T10:00:00")),
            "a date (YYYY-MM-DD)"
        );
        assert_eq!(fails(FieldType::Date, json!(20260105)), "a date");
        assert_eq!(
            fails(FieldType::Datetime, json!("2026-01-05")),
            "a datetime with a time zone"
        );
        assert_eq!(
            fails(FieldType::Datetime, json!("2026-01-05T10:00:00")),
            "a datetime with a time zone"
        );
        assert_eq!(
            fails(FieldType::Datetime, json!("")),
            "a datetime with a time zone"
        );
    }

    #[test]
    fn references_are_the_parents_source_id() {
        assert_eq!(ok(FieldType::Reference, json!(" CUST-1 ")), json!("CUST-1"));
        assert_eq!(ok(FieldType::Reference, json!(10042)), json!("10042"));
        assert_eq!(fails(FieldType::Reference, json!(true)), "a parent ID");
    }
}
