//! A Bulk ingest job's CSV rows as the org reads them: cells typed by the object's fields
//! (empty = leave unchanged, `#N/A` = null, `Parent.ExtId__c` = a relationship), and a
//! record error as the `sf__Error` cell of `failedResults`.

use serde_json::{json, Map, Value};

use super::State;
use crate::contract::rules::RecordError;
use crate::contract::FieldType;

pub(super) fn sf_error(e: &RecordError) -> String {
    format!("{}:{}:{} --", e.code, e.message, e.fields.join(","))
}

/// Turns one CSV row into field values: empty cells are left out, `#N/A` is null, numbers
/// and booleans are typed by the field, `Parent.ExtId__c` columns become relationships.
pub(super) fn row_values(
    state: &State,
    object: &str,
    header: &[String],
    row: &[String],
) -> Map<String, Value> {
    let spec = state.org.bundle().object(object);
    let mut values = Map::new();
    for (name, cell) in header.iter().zip(row) {
        if cell.is_empty() {
            continue;
        }
        let value = if cell == "#N/A" {
            Value::Null
        } else {
            let ty = spec.and_then(|s| s.fields.get(name)).map(|f| f.ty);
            typed(ty, cell)
        };
        match name.split_once('.') {
            Some((rel, key)) => {
                values.insert(rel.to_string(), json!({ key: value }));
            }
            None => {
                values.insert(name.clone(), value);
            }
        }
    }
    values
}

fn typed(ty: Option<FieldType>, cell: &str) -> Value {
    match ty {
        Some(FieldType::Boolean) => match cell.to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => Value::String(cell.to_string()),
        },
        Some(FieldType::Int) => cell
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(cell.to_string())),
        Some(t) if t.is_number() => cell
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(cell.to_string())),
        _ => Value::String(cell.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_typed_by_field() {
        assert_eq!(typed(Some(FieldType::Int), "12"), json!(12));
        assert_eq!(typed(Some(FieldType::Int), "twelve"), json!("twelve"));
        assert_eq!(typed(Some(FieldType::Currency), "1.5"), json!(1.5));
        assert_eq!(typed(Some(FieldType::Boolean), "TRUE"), json!(true));
        assert_eq!(typed(Some(FieldType::String), "007"), json!("007"));
        assert_eq!(typed(None, "x"), json!("x"));
    }

    #[test]
    fn errors_read_code_message_fields() {
        let e = RecordError::new(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [Name]",
            vec!["Name".into()],
        );
        assert_eq!(
            sf_error(&e),
            "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
        );
    }
}
