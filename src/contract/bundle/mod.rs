//! The contract bundle, format version 1: what one tenant's org looks like to the engine.
//!
//! A tenant's `bundle.toml` may `extends` its partner's `base.toml`; the *resolved* bundle
//! (base plus tenant, plus the tenant's Pact files) is what is versioned and hashed.
//! `contracts/README.md` documents the format; `contracts/schema/bundle-v1.schema.json`
//! describes each file for editors and is checked against every example by the tests.
//!
//! Layout: this module holds the model (what a resolved bundle is); `load` reads a tenant
//! directory, `inherit` merges a tenant file over its partner's base, `check` enforces the
//! rules a loaded bundle must meet, `error` says where a bundle file is wrong.

mod check;
mod error;
mod inherit;
mod load;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use super::diagnostic::{key_path_at, line_col};
pub use error::BundleError;

/// The bundle format this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// A fully resolved bundle for one partner × tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bundle {
    pub format: u32,
    pub partner: String,
    pub tenant: String,
    pub version: String,
    pub kind: PartnerKind,
    pub api_version: String,
    pub limits: Limits,
    pub objects: BTreeMap<String, ObjectSpec>,
    /// Pact V4 files of the interactions the engine relies on, by file name.
    pub pacts: BTreeMap<String, serde_json::Value>,
    /// Where the tenant's `bundle.toml` lives.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    /// The partner runs a Salesforce org; the mock serves the Salesforce REST API.
    Salesforce,
}

/// The org's limits profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// API requests allowed per 24-hour window (Salesforce: `DailyApiRequests.Max`).
    pub daily_api_requests: u64,
    /// Requests that may run longer than the threshold at once (Salesforce: 25).
    pub concurrent_long_running: u32,
    /// Duration after which a request counts as long-running, in seconds (Salesforce: 20).
    #[serde(default = "default_long_running_secs")]
    pub long_running_threshold_secs: u64,
}

fn default_long_running_secs() -> u64 {
    20
}

/// One synced sObject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectSpec {
    /// The external-ID field the engine upserts by.
    pub external_id: String,
    /// Name of the source entity (fixture file stem, table name) feeding this object.
    pub source: String,
    pub delete: DeletePolicy,
    pub fields: BTreeMap<String, FieldSpec>,
    /// Whether the org refuses a second record with the same external-ID value
    /// (`DUPLICATE_VALUE`); when false, duplicates make upserts answer `300`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique_external_id: bool,
    /// Validation rules the org enforces on every write (`FIELD_CUSTOM_VALIDATION_EXCEPTION`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_rules: Vec<ValidationRule>,
    /// The object's label as the org's describe gives it (`labelPlural` follows it);
    /// derived from the API name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl ObjectSpec {
    /// An object upserted by `external_id`, fed from the source entity `source`, with what
    /// a bundle may leave unsaid at its defaults: external IDs the org does not hold unique,
    /// no validation rules.
    pub fn new(
        external_id: &str,
        source: &str,
        delete: DeletePolicy,
        fields: BTreeMap<String, FieldSpec>,
    ) -> ObjectSpec {
        ObjectSpec {
            external_id: external_id.to_string(),
            source: source.to_string(),
            delete,
            fields,
            unique_external_id: false,
            validation_rules: Vec::new(),
            label: None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A validation rule of the org, as a bundle states it: either `field` must match `regex`
/// (when not blank), or the write fails when `condition` (a SOQL `WHERE` expression over the
/// record after the write) is true, as a Salesforce error-condition formula does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationRule {
    pub name: String,
    /// The field the error is reported on (and that `regex` applies to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The error message users see.
    pub message: String,
}

/// What the engine does in Salesforce when the source deletes a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeletePolicy {
    /// Delete the record (it goes to the recycle bin).
    HardDelete,
    /// Set a boolean field to true.
    Archive { field: String },
    /// Set a picklist or text field to a value.
    Inactive { field: String, value: String },
}

impl DeletePolicy {
    /// The policy's name as bundles write it.
    pub fn label(&self) -> &'static str {
        match self {
            DeletePolicy::HardDelete => "hard_delete",
            DeletePolicy::Archive { .. } => "archive",
            DeletePolicy::Inactive { .. } => "inactive",
        }
    }
}

/// One field of an object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Allowed values of a picklist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// A restricted picklist rejects values outside `values` (Salesforce's default for new picklists).
    #[serde(default = "yes")]
    pub restricted: bool,
    /// Who writes the field: the source system, or people and automation in the CRM.
    #[serde(default)]
    pub owner: Owner,
    /// Source column that fills the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// For `reference` fields: the parent object, matched by its external ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For `reference` fields: the relationship name used in upserts (`Account` for `AccountId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// The field's label as the org's describe gives it; derived from the API name when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl FieldSpec {
    /// A field of type `ty` as a bundle states it with only its `type`: optional, no length
    /// limit, no picklist values (restricted, should it become a picklist), owned by the
    /// source and filled from no column, no reference, the derived label.
    pub fn of(ty: FieldType) -> FieldSpec {
        FieldSpec {
            ty,
            required: false,
            max_length: None,
            values: None,
            restricted: yes(),
            owner: Owner::default(),
            from: None,
            to: None,
            relationship: None,
            label: None,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Textarea,
    Email,
    Phone,
    Url,
    Picklist,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    Datetime,
    Reference,
}

impl FieldType {
    pub const ALL: [&'static str; 14] = [
        "string",
        "textarea",
        "email",
        "phone",
        "url",
        "picklist",
        "boolean",
        "int",
        "double",
        "currency",
        "percent",
        "date",
        "datetime",
        "reference",
    ];

    /// Whether values are JSON strings with a length.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::Textarea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
                | FieldType::Picklist
        )
    }

    pub fn is_number(self) -> bool {
        matches!(
            self,
            FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent
        )
    }

    /// Salesforce's describe name for the type.
    pub fn describe_name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Picklist => "picklist",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Reference => "reference",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    #[default]
    Source,
    Crm,
}

impl Bundle {
    /// Content hash of the resolved bundle (objects, limits, pacts): `sha256:` and 64 hex digits.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("bundle serializes");
        format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
    }

    /// The resolved bundle as JSON: what the registry stores for a published version.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("bundle serializes")
    }

    /// A resolved bundle read back from [`Bundle::to_json`] (a published version in the store).
    pub fn from_json(json: &str) -> Result<Bundle, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The first 12 hex digits of the content hash, for summaries.
    pub fn short_hash(&self) -> String {
        let full = self.content_hash();
        full["sha256:".len().."sha256:".len() + 12].to_string()
    }

    pub fn object(&self, name: &str) -> Option<&ObjectSpec> {
        self.objects.get(name)
    }

    /// Objects with parents first (an object referenced by another comes before it).
    pub fn objects_parent_first(&self) -> Vec<(&String, &ObjectSpec)> {
        let mut done: Vec<&String> = Vec::new();
        let mut pending: Vec<(&String, &ObjectSpec)> = self.objects.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|(name, spec)| {
                let ready = spec
                    .fields
                    .values()
                    .filter_map(|f| f.to.as_ref())
                    .all(|parent| {
                        parent == *name
                            || done.contains(&parent)
                            || !self.objects.contains_key(parent)
                    });
                if ready {
                    done.push(name);
                }
                !ready
            });
            if pending.len() == before {
                // A reference cycle: keep name order for the rest (checked at load time).
                done.extend(pending.drain(..).map(|(n, _)| n));
            }
        }
        done.into_iter().map(|n| (n, &self.objects[n])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_bundle_read_back_from_json_has_the_same_hash() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/northwind-outfitters/production");
        let b = Bundle::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let back = Bundle::from_json(&b.to_json()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.content_hash(), b.content_hash());
        assert_eq!(back.objects, b.objects);
        assert!(Bundle::from_json("{\"format\": 1}").is_err());
    }
}
