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
    /// Fields whose value changed (set to non-null).
    pub changed: Vec<String>,
    /// Fields set to null.
    pub nulled: Vec<String>,
    /// New values of the changed fields.
    pub values: Map<String, Value>,
    pub at: Timestamp,
    pub user: String,
}
