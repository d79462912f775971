//! A stored record (system fields, the REST API's JSON, its ETag) and the changes a write
//! queues for the change-event log.

use serde_json::{Map, Value};

use super::API_USER_ID;
use crate::contract::ObjectSpec;
use crate::sim::Timestamp;

/// Fields every record has besides the bundle's.
pub const SYSTEM_FIELDS: [&str; 7] = [
    "Id",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
];

/// One stored record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: String,
    pub fields: Map<String, Value>,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub modified_by: String,
    /// In the recycle bin: hidden from reads and `query`, visible to `queryAll`.
    pub deleted: bool,
    /// Hard-deleted: gone even from `queryAll`.
    pub purged: bool,
}

impl Record {
    /// A system field's value, or a bundle field's (null when never set).
    pub fn value(&self, field: &str) -> Value {
        match field {
            "Id" => Value::String(self.id.clone()),
            "IsDeleted" => Value::Bool(self.deleted),
            "CreatedDate" => Value::String(self.created.to_salesforce()),
            "CreatedById" => Value::String(API_USER_ID.into()),
            "LastModifiedDate" | "SystemModstamp" => Value::String(self.modified.to_salesforce()),
            "LastModifiedById" => Value::String(self.modified_by.clone()),
            _ => self.fields.get(field).cloned().unwrap_or(Value::Null),
        }
    }

    /// The record as the REST API returns it: attributes, system fields, then every field
    /// of the object (null when never set).
    pub fn to_json(&self, object: &str, api_version: &str) -> Value {
        self.to_json_with(object, api_version, None)
    }

    pub(crate) fn to_json_with(
        &self,
        object: &str,
        api_version: &str,
        spec: Option<&ObjectSpec>,
    ) -> Value {
        let mut out = Map::new();
        out.insert(
            "attributes".into(),
            attributes(object, &self.id, api_version),
        );
        for f in SYSTEM_FIELDS {
            out.insert(f.into(), self.value(f));
        }
        match spec {
            Some(spec) => {
                for name in spec.fields.keys() {
                    out.insert(name.clone(), self.value(name));
                }
            }
            None => {
                for (k, v) in &self.fields {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        Value::Object(out)
    }

    /// A quoted-string ETag that changes with every write.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id, self.modified.as_millis())
    }
}

/// `{"type", "url"}` of a record.
pub fn attributes(object: &str, id: &str, api_version: &str) -> Value {
    serde_json::json!({"type": object, "url": format!("/services/data/v{api_version}/sobjects/{object}/{id}")})
}

/// What kind of change a [`Change`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "CREATE",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
        }
    }
}

/// One committed change, waiting to be published as a change event.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub object: String,
    pub id: String,
    pub kind: ChangeKind,
    /// New values of the fields the change set, null for those it cleared.
    pub values: ChangeValues,
    pub at: Timestamp,
    pub user: String,
}

/// The fields a change set, with their new values (null: cleared), in the order written —
/// kept as the JSON text of an object. A change event holds them for 72 hours of org time;
/// as a map of owned keys and values they were most of an event's memory (and a bulk load
/// publishes an event per record), as text they take a fraction of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeValues(Box<str>);

impl ChangeValues {
    /// The values of `fields`, in their order, written straight to text (no copy of them).
    pub fn of<'a>(fields: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Self {
        let mut out = Vec::from(&b"{"[..]);
        for (i, (k, v)) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Strings and JSON values always serialize into a Vec.
            let _ = serde_json::to_writer(&mut out, k);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, v);
        }
        out.push(b'}');
        ChangeValues(String::from_utf8(out).unwrap_or_default().into())
    }

    /// The fields and values, as a map in the order written (null: the field was cleared).
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}
