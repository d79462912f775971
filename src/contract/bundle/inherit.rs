//! Inheritance: a tenant's `bundle.toml` over its partner's `base.toml`. Each file is read
//! with every key optional; the tenant's keys win, and its fields add to the base's.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{DeletePolicy, FieldSpec, Limits, PartnerKind, ValidationRule};

/// One file as written: every key optional so a tenant can extend its partner's base.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BundleFile {
    pub(super) format: Option<u32>,
    pub(super) extends: Option<String>,
    pub(super) partner: Option<String>,
    pub(super) tenant: Option<String>,
    pub(super) version: Option<String>,
    pub(super) kind: Option<PartnerKind>,
    pub(super) api_version: Option<String>,
    pub(super) limits: Option<Limits>,
    #[serde(default)]
    pub(super) objects: BTreeMap<String, ObjectFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ObjectFile {
    pub(super) external_id: Option<String>,
    pub(super) source: Option<String>,
    pub(super) delete: Option<DeletePolicy>,
    #[serde(default)]
    pub(super) fields: BTreeMap<String, FieldSpec>,
    pub(super) unique_external_id: Option<bool>,
    pub(super) validation_rules: Option<Vec<ValidationRule>>,
    pub(super) label: Option<String>,
}

pub(super) fn merge(into: &mut BundleFile, file: BundleFile) {
    macro_rules! take {
        ($($f:ident),*) => { $( if file.$f.is_some() { into.$f = file.$f; } )* };
    }
    take!(
        format,
        extends,
        partner,
        tenant,
        version,
        kind,
        api_version,
        limits
    );
    for (name, obj) in file.objects {
        let target = into.objects.entry(name).or_default();
        if obj.external_id.is_some() {
            target.external_id = obj.external_id;
        }
        if obj.source.is_some() {
            target.source = obj.source;
        }
        if obj.delete.is_some() {
            target.delete = obj.delete;
        }
        if obj.unique_external_id.is_some() {
            target.unique_external_id = obj.unique_external_id;
        }
        if obj.validation_rules.is_some() {
            target.validation_rules = obj.validation_rules;
        }
        if obj.label.is_some() {
            target.label = obj.label;
        }
        target.fields.extend(obj.fields);
    }
}
