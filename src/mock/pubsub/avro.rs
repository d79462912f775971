//! Change events as the Pub/Sub API carries them: one Avro schema per object's change event
//! (`AccountChangeEvent`, …) with the `ChangeEventHeader` record first and the object's fields
//! after it as nullable unions, each schema named by an ID derived from its text; and the
//! encoding of one event (as the change-event log renders it) into an Avro datum, with
//! `changedFields`, `nulledFields` and `diffFields` as bitmaps over the schema's field
//! positions, as Salesforce's "Event Deserialization Considerations" describe.

use std::collections::BTreeMap;
use std::sync::Arc;

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::contract::bundle::FieldType;
use crate::contract::Bundle;
use crate::sim::Timestamp;

/// The header's change types, in the order of the schema's enum.
const CHANGE_TYPES: [&str; 10] = [
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
];

/// One object's change-event schema.
#[derive(Debug)]
pub(crate) struct EventSchema {
    pub object: String,
    pub id: String,
    pub json: String,
    schema: Schema,
    /// The top-level fields after the header, in schema order, with their types.
    fields: Vec<(String, FieldType)>,
}

/// Every object's schema, by object and by schema ID.
#[derive(Debug, Default)]
pub(crate) struct Schemas {
    by_object: BTreeMap<String, Arc<EventSchema>>,
}

impl Schemas {
    /// The schemas of `bundle`'s objects.
    pub fn of(bundle: &Bundle) -> Result<Self, String> {
        let mut by_object = BTreeMap::new();
        for (object, spec) in &bundle.objects {
            let fields: Vec<(String, FieldType)> = spec
                .fields
                .iter()
                .map(|(name, f)| (name.clone(), f.ty))
                .collect();
            let schema = EventSchema::new(object, fields)?;
            by_object.insert(object.clone(), Arc::new(schema));
        }
        Ok(Schemas { by_object })
    }

    pub fn for_object(&self, object: &str) -> Option<&Arc<EventSchema>> {
        self.by_object.get(object)
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<EventSchema>> {
        self.by_object.values().find(|s| s.id == id)
    }

    pub fn objects(&self) -> impl Iterator<Item = &str> {
        self.by_object.keys().map(String::as_str)
    }
}

/// The Avro type of a field's value (before the union with null). Numbers are doubles, as
/// Salesforce gives number, currency and percent fields; dates and datetimes are the logical
/// types Salesforce uses.
fn avro_type(ty: FieldType) -> Value {
    match ty {
        FieldType::Boolean => json!("boolean"),
        FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
            json!("double")
        }
        FieldType::Date => json!({"type": "int", "logicalType": "date"}),
        FieldType::Datetime => json!({"type": "long", "logicalType": "timestamp-millis"}),
        _ => json!("string"),
    }
}

/// An event's name: `AccountChangeEvent`, `Invoice__ChangeEvent` for `Invoice__c`.
pub(crate) fn event_name(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(base) => format!("{base}__ChangeEvent"),
        None => format!("{object}ChangeEvent"),
    }
}

impl EventSchema {
    fn new(object: &str, fields: Vec<(String, FieldType)>) -> Result<Self, String> {
        let list = |name: &str| json!({"name": name, "type": {"type": "array", "items": "string"}});
        let header = json!({
            "type": "record",
            "name": "ChangeEventHeader",
            "fields": [
                {"name": "entityName", "type": "string"},
                list("recordIds"),
                {"name": "changeType", "type": {
                    "type": "enum", "name": "ChangeType",
                    "namespace": "com.salesforce.eventbus", "symbols": CHANGE_TYPES,
                }},
                {"name": "changeOrigin", "type": "string"},
                {"name": "transactionKey", "type": "string"},
                {"name": "sequenceNumber", "type": "int"},
                {"name": "commitTimestamp", "type": "long"},
                {"name": "commitNumber", "type": "long"},
                {"name": "commitUser", "type": "string"},
                list("nulledFields"),
                list("diffFields"),
                list("changedFields"),
            ],
        });
        let mut all = vec![json!({"name": "ChangeEventHeader", "type": header})];
        for (name, ty) in &fields {
            all.push(json!({"name": name, "type": ["null", avro_type(*ty)], "default": null}));
        }
        let text = json!({
            "type": "record",
            "name": event_name(object),
            "namespace": "com.sforce.eventbus",
            "fields": all,
        })
        .to_string();
        let schema = Schema::parse_str(&text)
            .map_err(|e| format!("the change-event schema of {object} does not parse: {e}"))?;
        // Like Salesforce's, the ID names the schema's content: it changes when a field does.
        let digest = Sha256::digest(text.as_bytes());
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
        Ok(EventSchema {
            object: object.to_string(),
            id,
            json: text,
            schema,
            fields,
        })
    }

    /// Position of `field` among the schema's top-level fields (the header is 0).
    fn position(&self, field: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|(n, _)| n == field)
            .map(|p| p + 1)
    }

    /// `names` as a bitmap field: `["0x…"]` with bit N set for the field at position N, or
    /// empty when no name is a field of the schema.
    fn bitmap(&self, names: &[Value]) -> Vec<Avro> {
        let positions: Vec<usize> = names
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|n| self.position(n))
            .collect();
        let Some(top) = positions.iter().max() else {
            return Vec::new();
        };
        let mut bytes = vec![0u8; top / 8 + 1];
        for p in positions {
            bytes[p / 8] |= 1 << (p % 8);
        }
        // Most significant byte first, as a hexadecimal number.
        bytes.reverse();
        vec![Avro::String(format!("0x{}", hex::encode_upper(bytes)))]
    }

    /// The Avro datum of `payload` (`{"ChangeEventHeader": {…}, "<Field>": value, …}`).
    pub fn encode(&self, payload: &Value) -> Result<Vec<u8>, String> {
        let header = payload.get("ChangeEventHeader").unwrap_or(&Value::Null);
        let text = |k: &str| {
            Avro::String(
                header
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        let number = |k: &str| header.get(k).and_then(Value::as_i64).unwrap_or(0);
        let names = |k: &str| {
            header
                .get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let change_type = header
            .get("changeType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let symbol = CHANGE_TYPES
            .iter()
            .position(|t| *t == change_type)
            .ok_or_else(|| format!("{}: unknown change type `{change_type}`", self.object))?;
        let ids = names("recordIds")
            .iter()
            .filter_map(Value::as_str)
            .map(|s| Avro::String(s.to_string()))
            .collect();
        let sequence = i32::try_from(number("sequenceNumber"))
            .map_err(|_| format!("{}: sequenceNumber out of range", self.object))?;
        let header = Avro::Record(vec![
            ("entityName".into(), text("entityName")),
            ("recordIds".into(), Avro::Array(ids)),
            (
                "changeType".into(),
                Avro::Enum(symbol as u32, change_type.to_string()),
            ),
            ("changeOrigin".into(), text("changeOrigin")),
            ("transactionKey".into(), text("transactionKey")),
            ("sequenceNumber".into(), Avro::Int(sequence)),
            (
                "commitTimestamp".into(),
                Avro::Long(number("commitTimestamp")),
            ),
            ("commitNumber".into(), Avro::Long(number("commitNumber"))),
            ("commitUser".into(), text("commitUser")),
            (
                "nulledFields".into(),
                Avro::Array(self.bitmap(&names("nulledFields"))),
            ),
            (
                "diffFields".into(),
                Avro::Array(self.bitmap(&names("diffFields"))),
            ),
            (
                "changedFields".into(),
                Avro::Array(self.bitmap(&names("changedFields"))),
            ),
        ]);
        let mut record = vec![("ChangeEventHeader".to_string(), header)];
        for (name, ty) in &self.fields {
            let value = match payload.get(name) {
                None | Some(Value::Null) => Avro::Union(0, Box::new(Avro::Null)),
                Some(v) => Avro::Union(
                    1,
                    Box::new(field_value(*ty, v).ok_or_else(|| {
                        format!(
                            "{}.{name}: the value {v} is not a {} for Avro",
                            self.object,
                            avro_type(*ty)
                        )
                    })?),
                ),
            };
            record.push((name.clone(), value));
        }
        apache_avro::to_avro_datum(&self.schema, Avro::Record(record))
            .map_err(|e| format!("{}: the change event does not encode: {e}", self.object))
    }
}

/// A field's JSON value as the Avro value of its type.
fn field_value(ty: FieldType, v: &Value) -> Option<Avro> {
    Some(match ty {
        FieldType::Boolean => Avro::Boolean(v.as_bool()?),
        FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
            Avro::Double(match v {
                Value::String(s) => s.parse().ok()?,
                other => other.as_f64()?,
            })
        }
        FieldType::Date => {
            let days = Timestamp::parse(v.as_str()?)?
                .as_millis()
                .div_euclid(86_400_000);
            Avro::Date(i32::try_from(days).ok()?)
        }
        FieldType::Datetime => Avro::TimestampMillis(Timestamp::parse(v.as_str()?)?.as_millis()),
        _ => Avro::String(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> EventSchema {
        EventSchema::new(
            "Account",
            vec![
                ("Name".into(), FieldType::String),
                ("Do_Not_Call__c".into(), FieldType::Boolean),
                ("Founded__c".into(), FieldType::Date),
            ],
        )
        .unwrap()
    }

    #[test]
    fn bitmaps_set_the_bit_of_each_fields_schema_position() {
        let s = schema();
        // Name is at position 1, Founded__c at 3 (the header is 0).
        assert_eq!(
            s.bitmap(&[json!("Name"), json!("Founded__c")]),
            vec![Avro::String("0x0A".into())]
        );
        assert!(s.bitmap(&[json!("NotAField")]).is_empty());
    }

    #[test]
    fn an_event_round_trips_through_its_schema() {
        let s = schema();
        let payload = json!({
            "ChangeEventHeader": {
                "entityName": "Account", "recordIds": ["001A"], "changeType": "UPDATE",
                "changeOrigin": "com/salesforce/api/rest/62.0;client=crm-ui",
                "transactionKey": "00ab", "sequenceNumber": 1, "commitTimestamp": 1_767_600_000_000_i64,
                "commitNumber": 7, "commitUser": "005A", "changedFields": ["Do_Not_Call__c"],
                "nulledFields": [], "diffFields": [],
            },
            "Do_Not_Call__c": true, "Founded__c": "2001-02-03",
        });
        let bytes = s.encode(&payload).unwrap();
        let back = apache_avro::from_avro_datum(&s.schema, &mut bytes.as_slice(), None).unwrap();
        let Avro::Record(fields) = back else {
            panic!("{back:?}")
        };
        assert_eq!(fields[2].1, Avro::Union(1, Box::new(Avro::Boolean(true))));
        assert_eq!(fields[1].1, Avro::Union(0, Box::new(Avro::Null)));
        let Avro::Record(header) = &fields[0].1 else {
            panic!()
        };
        assert_eq!(header[2].1, Avro::Enum(1, "UPDATE".into()));
        assert_eq!(header[11].1, Avro::Array(vec![Avro::String("0x04".into())]));
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_field() {
        let s = schema();
        let payload = json!({
            "ChangeEventHeader": {"changeType": "CREATE"},
            "Do_Not_Call__c": "yes",
        });
        let e = s.encode(&payload).unwrap_err();
        assert!(e.contains("Account.Do_Not_Call__c"), "{e}");
    }
}
