//! An org's describe metadata (`GET …/sobjects/{Object}/describe`) read into bundle terms:
//! what `syncgate contracts pull` writes as a new bundle and what `syncgate contracts
//! check-org` compares with a committed one.
//!
//! Describe carries the org's side of a contract: field types, lengths, required fields,
//! picklist values and whether they are restricted, lookups and their relationship names,
//! external IDs and their uniqueness. It carries nothing of the mapping (which source entity
//! and column feed a field, who owns a field, the delete policy), of validation rules (they
//! are Apex metadata, not describe), of the Pact files or of the long-running threshold:
//! a pulled bundle marks those for people to fill, and `org_view` keeps the contract's.

use std::collections::BTreeMap;

use serde_json::Value;

use super::bundle::{Bundle, FieldSpec, FieldType, Limits, Owner};

/// One field as describe states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedField {
    pub name: String,
    /// Salesforce's type name (`string`, `picklist`, `multipicklist`, …).
    pub sf_type: String,
    /// Text length; `None` when describe says 0 (not a text field).
    pub length: Option<u32>,
    /// Required on create: not nillable, createable, and not defaulted by the org.
    pub required: bool,
    pub createable: bool,
    pub external_id: bool,
    pub unique: bool,
    pub relationship_name: Option<String>,
    pub reference_to: Vec<String>,
    pub restricted_picklist: bool,
    /// Active picklist values, in the org's order.
    pub picklist_values: Vec<String>,
}

/// One object as describe states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedObject {
    pub name: String,
    pub fields: Vec<DescribedField>,
}

impl DescribedObject {
    pub fn field(&self, name: &str) -> Option<&DescribedField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Fields the org lets an integration write (system and formula fields are not
    /// createable).
    pub fn writable(&self) -> impl Iterator<Item = &DescribedField> {
        self.fields.iter().filter(|f| f.createable)
    }

    /// Writable text fields flagged as external IDs, by name.
    pub fn external_ids(&self) -> Vec<&DescribedField> {
        self.writable()
            .filter(|f| f.external_id && field_type(&f.sf_type) == Some(FieldType::String))
            .collect()
    }
}

/// The bundle type of a describe type, or `None` for types bundles do not carry
/// (`multipicklist`, `time`, `address`, `base64`, `id`, …).
pub fn field_type(sf_type: &str) -> Option<FieldType> {
    Some(match sf_type {
        "string" | "encryptedstring" | "combobox" => FieldType::String,
        "textarea" => FieldType::Textarea,
        "email" => FieldType::Email,
        "phone" => FieldType::Phone,
        "url" => FieldType::Url,
        "picklist" => FieldType::Picklist,
        "boolean" => FieldType::Boolean,
        "int" | "long" => FieldType::Int,
        "double" => FieldType::Double,
        "currency" => FieldType::Currency,
        "percent" => FieldType::Percent,
        "date" => FieldType::Date,
        "datetime" => FieldType::Datetime,
        "reference" => FieldType::Reference,
        _ => return None,
    })
}

/// Reads one describe answer; the error names what is missing.
pub fn parse(object: &str, json: &Value) -> Result<DescribedObject, String> {
    let name = json
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(object)
        .to_string();
    let fields = json
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{object}: the describe answer has no `fields` array"))?;
    let mut out = Vec::with_capacity(fields.len());
    for (i, f) in fields.iter().enumerate() {
        let text = |key: &str| f.get(key).and_then(Value::as_str).map(str::to_string);
        let flag = |key: &str| f.get(key).and_then(Value::as_bool).unwrap_or(false);
        let fname =
            text("name").ok_or_else(|| format!("{object}: describe field #{i} has no `name`"))?;
        let sf_type =
            text("type").ok_or_else(|| format!("{object}.{fname}: describe gives no `type`"))?;
        let length = f
            .get("length")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let nillable = f.get("nillable").and_then(Value::as_bool).unwrap_or(true);
        let createable = flag("createable");
        let required = !nillable && createable && !flag("defaultedOnCreate");
        let picklist_values = f
            .get("picklistValues")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("active").and_then(Value::as_bool).unwrap_or(true))
                    .filter_map(|v| v.get("value").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let reference_to = f
            .get("referenceTo")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.push(DescribedField {
            name: fname,
            sf_type,
            length,
            required,
            createable,
            external_id: flag("externalId"),
            unique: flag("unique"),
            relationship_name: text("relationshipName"),
            reference_to,
            restricted_picklist: flag("restrictedPicklist"),
            picklist_values,
        });
    }
    Ok(DescribedObject { name, fields: out })
}

/// The field spec describe gives for `f`, or why it cannot be one: a type bundles do not
/// carry, or a lookup to an object outside `synced` (or to several).
pub fn field_spec(f: &DescribedField, synced: &[&str]) -> Result<FieldSpec, String> {
    let ty = field_type(&f.sf_type)
        .ok_or_else(|| format!("type `{}` is not one bundles carry", f.sf_type))?;
    let (to, relationship) = if ty == FieldType::Reference {
        match f.reference_to.as_slice() {
            [parent] if synced.contains(&parent.as_str()) => {
                (Some(parent.clone()), f.relationship_name.clone())
            }
            [parent] => {
                return Err(format!(
                    "a lookup to {parent}, which is not pulled (add it to --objects to sync it)"
                ))
            }
            [] => return Err("a lookup describe names no parent for".into()),
            several => {
                return Err(format!(
                    "a lookup to any of {} (bundles carry lookups to one object)",
                    several.join(", ")
                ))
            }
        }
    } else {
        (None, None)
    };
    let picklist = ty == FieldType::Picklist;
    Ok(FieldSpec {
        ty,
        required: f.required,
        max_length: if ty.is_text() && !picklist {
            f.length
        } else {
            None
        },
        values: picklist.then(|| f.picklist_values.clone()),
        restricted: !picklist || f.restricted_picklist,
        owner: Owner::Source,
        from: None,
        to,
        relationship,
        label: None,
    })
}

/// Limits from the org's `/limits` answer (`DailyApiRequests.Max`, and
/// `ConcurrentPerOrgLongTxn.Max` when the org states it), over `fallback`.
pub fn limits(json: &Value, fallback: &Limits) -> Limits {
    let max = |key: &str| json.pointer(&format!("/{key}/Max")).and_then(Value::as_u64);
    Limits {
        daily_api_requests: max("DailyApiRequests").unwrap_or(fallback.daily_api_requests),
        concurrent_long_running: max("ConcurrentPerOrgLongTxn")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(fallback.concurrent_long_running),
        long_running_threshold_secs: fallback.long_running_threshold_secs,
    }
}

/// A field the org states in a way the registry's rules cannot compare (a type bundles do
/// not carry): always a drift.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// `objects.Account.fields.Region__c`.
    pub at: String,
    pub reason: String,
}

/// The contract as the live org has it: `contract` with every org-side fact describe
/// carries replaced by the org's (field types, lengths, required, picklists, lookups,
/// external-ID uniqueness, fields gone, new required fields, limits), and everything
/// describe does not carry (mapping, owners, delete policies, validation rules, pacts)
/// kept. Diffing `contract` against it with the registry's rules finds the drift.
///
/// `described` holds the describe of every object the contract syncs that the org has; an
/// object missing from it is gone from the org.
pub fn org_view(
    contract: &Bundle,
    described: &BTreeMap<String, DescribedObject>,
    org_limits: Option<&Limits>,
) -> (Bundle, Vec<Unreadable>) {
    let mut org = contract.clone();
    let mut unreadable = Vec::new();
    if let Some(l) = org_limits {
        org.limits = l.clone();
    }
    let synced: Vec<&str> = contract.objects.keys().map(String::as_str).collect();
    org.objects.retain(|name, _| described.contains_key(name));
    for (name, spec) in org.objects.iter_mut() {
        let d = &described[name];
        if let Some(ext) = d.field(&spec.external_id) {
            spec.unique_external_id = ext.unique;
        }
        let mut fields = BTreeMap::new();
        for (fname, mine) in &spec.fields {
            let Some(df) = d.field(fname) else {
                continue; // gone from the org: FieldRemoved
            };
            match field_spec(df, &synced) {
                Ok(theirs) => {
                    // The mapping is the contract's: describe does not carry it. Labels are
                    // not part of what the engine relies on: the contract's stays.
                    let merged = FieldSpec {
                        owner: mine.owner,
                        from: mine.from.clone(),
                        label: mine.label.clone(),
                        ..theirs
                    };
                    fields.insert(fname.clone(), merged);
                }
                Err(why) if field_type(&df.sf_type).is_none() => {
                    unreadable.push(Unreadable {
                        at: format!("objects.{name}.fields.{fname}.type"),
                        reason: format!(
                            "{name}.{fname} changed from {} to {}: {why}; values the engine sends as {} may be rejected",
                            mine.ty.describe_name(),
                            df.sf_type,
                            mine.ty.describe_name()
                        ),
                    });
                    fields.insert(fname.clone(), mine.clone());
                }
                Err(why) => {
                    unreadable.push(Unreadable {
                        at: format!("objects.{name}.fields.{fname}.to"),
                        reason: format!("{name}.{fname} is now {why}"),
                    });
                    fields.insert(fname.clone(), mine.clone());
                }
            }
        }
        // A field the org now requires that the contract does not know: nothing fills it.
        for df in d.writable().filter(|f| f.required) {
            if spec.fields.contains_key(&df.name) {
                continue;
            }
            let theirs = field_spec(df, &synced).unwrap_or(FieldSpec {
                required: true,
                max_length: df.length,
                ..FieldSpec::of(FieldType::String)
            });
            fields.insert(df.name.clone(), theirs);
        }
        spec.fields = fields;
    }
    (org, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describe_types_and_flags_read_into_field_specs() {
        let d = parse(
            "Shipment__c",
            &json!({"name": "Shipment__c", "fields": [
                {"name": "Id", "type": "id", "length": 18, "nillable": false, "createable": false},
                {"name": "Key__c", "type": "string", "length": 30, "nillable": true, "createable": true, "externalId": true, "unique": true},
                {"name": "State__c", "type": "picklist", "length": 255, "nillable": false, "createable": true,
                 "restrictedPicklist": true, "picklistValues": [
                    {"value": "Open", "active": true}, {"value": "Old", "active": false}, {"value": "Void", "active": true}]},
                {"name": "OwnerId", "type": "reference", "length": 18, "nillable": false, "createable": true, "defaultedOnCreate": true, "referenceTo": ["User"], "relationshipName": "Owner"},
                {"name": "Depot__c", "type": "reference", "length": 18, "nillable": true, "createable": true, "referenceTo": ["Depot__c"], "relationshipName": "Depot__r"},
                {"name": "Tags__c", "type": "multipicklist", "nillable": true, "createable": true},
            ]}),
        )
        .unwrap();
        assert_eq!(d.writable().count(), 5);
        assert_eq!(d.external_ids().len(), 1);
        let state = field_spec(d.field("State__c").unwrap(), &[]).unwrap();
        assert!(state.required && state.restricted);
        assert_eq!(
            state.values,
            Some(vec!["Open".to_string(), "Void".to_string()])
        );
        assert_eq!(state.max_length, None);
        let key = field_spec(d.field("Key__c").unwrap(), &[]).unwrap();
        assert_eq!(
            (key.ty, key.max_length, key.required),
            (FieldType::String, Some(30), false)
        );
        // Defaulted on create: not required, and a lookup to an object not pulled.
        assert!(!d.field("OwnerId").unwrap().required);
        let owner = field_spec(d.field("OwnerId").unwrap(), &["Depot__c"]).unwrap_err();
        assert!(owner.contains("User"), "{owner}");
        let depot = field_spec(d.field("Depot__c").unwrap(), &["Depot__c"]).unwrap();
        assert_eq!(depot.to.as_deref(), Some("Depot__c"));
        assert_eq!(depot.relationship.as_deref(), Some("Depot__r"));
        assert!(field_spec(d.field("Tags__c").unwrap(), &[]).is_err());
    }

    #[test]
    fn limits_come_from_the_limits_answer_over_the_fallback() {
        let fallback = Limits {
            daily_api_requests: 1,
            concurrent_long_running: 2,
            long_running_threshold_secs: 30,
        };
        let l = limits(
            &json!({"DailyApiRequests": {"Max": 15000, "Remaining": 10}}),
            &fallback,
        );
        assert_eq!(
            (
                l.daily_api_requests,
                l.concurrent_long_running,
                l.long_running_threshold_secs
            ),
            (15000, 2, 30)
        );
    }
}
