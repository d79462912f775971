//! The contract bundle, format version 1: what one tenant's org looks like to the engine.
//!
//! A tenant's `bundle.toml` may `extends` its partner's `base.toml`; the *resolved* bundle
//! (base plus tenant, plus the tenant's Pact files) is what is versioned and hashed.
//! `contracts/README.md` documents the format; `contracts/schema/bundle-v1.schema.json`
//! describes each file for editors and is checked against every example by the tests.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::diagnostic::{parse_toml, TomlDiagnostic};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

/// A bundle that could not be loaded, with the file, position and field involved.
#[derive(Debug, thiserror::Error)]
pub struct BundleError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the offending key, e.g. `objects.Account.fields.Name.type`.
    pub field: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "`{field}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl BundleError {
    fn at(path: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        BundleError {
            path: path.to_path_buf(),
            line: None,
            column: None,
            field: Some(field.into()),
            message: message.into(),
            help: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    fn from_toml(path: &Path, d: TomlDiagnostic) -> Self {
        let help = if let Some(s) = d.suggestion {
            Some(s)
        } else if d.message.contains("unknown variant") && d.message.contains("string") {
            Some(format!("field types are: {}", FieldType::ALL.join(", ")))
        } else if d.message.contains("unknown field") {
            Some("see contracts/README.md for the keys a bundle may hold".to_string())
        } else {
            None
        };
        BundleError {
            path: path.to_path_buf(),
            line: d.line,
            column: d.column,
            field: d.field,
            message: d.message,
            help,
        }
    }
}

pub use super::diagnostic::{key_path_at, line_col};

/// One file as written: every key optional so a tenant can extend its partner's base.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    format: Option<u32>,
    extends: Option<String>,
    partner: Option<String>,
    tenant: Option<String>,
    version: Option<String>,
    kind: Option<PartnerKind>,
    api_version: Option<String>,
    limits: Option<Limits>,
    #[serde(default)]
    objects: BTreeMap<String, ObjectFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectFile {
    external_id: Option<String>,
    source: Option<String>,
    delete: Option<DeletePolicy>,
    #[serde(default)]
    fields: BTreeMap<String, FieldSpec>,
    unique_external_id: Option<bool>,
    validation_rules: Option<Vec<ValidationRule>>,
}

fn read_file(path: &Path) -> Result<BundleFile, BundleError> {
    let text = std::fs::read_to_string(path).map_err(|e| BundleError {
        path: path.to_path_buf(),
        line: None,
        column: None,
        field: None,
        message: format!("cannot read bundle file: {e}"),
        help: None,
    })?;
    parse_toml(&text).map_err(|d| BundleError::from_toml(path, d))
}

impl Bundle {
    /// Loads and resolves the bundle in `dir` (a tenant directory holding `bundle.toml`).
    pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
        Self::load_with(dir, true)
    }

    /// [`Bundle::load`] without the tenant's pact files: what the pacts are generated from,
    /// so a broken or stale pact file never stops its own regeneration.
    pub fn load_without_pacts(dir: &Path) -> Result<Bundle, BundleError> {
        Self::load_with(dir, false)
    }

    fn load_with(dir: &Path, with_pacts: bool) -> Result<Bundle, BundleError> {
        let path = dir.join("bundle.toml");
        let tenant_file = read_file(&path)?;
        let mut merged = BundleFile::default();
        if let Some(base) = &tenant_file.extends {
            let base_path = dir.join(base);
            if !base_path.is_file() {
                return Err(BundleError::at(
                    &path,
                    "extends",
                    format!("base bundle `{base}` not found"),
                )
                .help(format!("expected a file at {}", base_path.display())));
            }
            let base_file = read_file(&base_path)?;
            if base_file.extends.is_some() {
                return Err(BundleError::at(
                    &base_path,
                    "extends",
                    "a base bundle cannot extend another",
                )
                .help("keep one level: partner base.toml, tenant bundle.toml"));
            }
            merge(&mut merged, base_file);
        }
        merge(&mut merged, tenant_file);
        let bundle = resolve(&path, dir, merged, with_pacts)?;
        bundle.check(&path)?;
        Ok(bundle)
    }

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

    fn check(&self, path: &Path) -> Result<(), BundleError> {
        if self.format != FORMAT_VERSION {
            return Err(BundleError::at(
                path,
                "format",
                format!("unsupported bundle format {}", self.format),
            )
            .help(format!(
                "this build of syncgate reads format {FORMAT_VERSION}"
            )));
        }
        if !is_semver(&self.version) {
            return Err(BundleError::at(
                path,
                "version",
                format!("`{}` is not a semantic version", self.version),
            )
            .help("write MAJOR.MINOR.PATCH, e.g. 1.4.0"));
        }
        if self.limits.daily_api_requests == 0 || self.limits.concurrent_long_running == 0 {
            return Err(BundleError::at(
                path,
                "limits",
                "limits must be greater than zero",
            ));
        }
        if self.objects.is_empty() {
            return Err(BundleError::at(
                path,
                "objects",
                "a bundle must sync at least one object",
            ));
        }
        for (name, obj) in &self.objects {
            let at = |key: &str| format!("objects.{name}.{key}");
            let Some(ext) = obj.fields.get(&obj.external_id) else {
                return Err(BundleError::at(
                    path,
                    at("external_id"),
                    format!(
                        "external-ID field `{}` is not among the object's fields",
                        obj.external_id
                    ),
                )
                .help(format!("declare it under [objects.{name}.fields]")));
            };
            if !matches!(ext.ty, FieldType::String) || ext.from.is_none() {
                return Err(BundleError::at(
                    path,
                    at(&format!("fields.{}", obj.external_id)),
                    "the external-ID field must be a `string` filled `from` a source column",
                ));
            }
            for (fname, f) in &obj.fields {
                let fat = at(&format!("fields.{fname}"));
                if f.ty == FieldType::Picklist && f.values.as_ref().is_none_or(|v| v.is_empty()) {
                    return Err(BundleError::at(path, fat, "a picklist needs `values`"));
                }
                if f.ty != FieldType::Picklist && f.values.is_some() {
                    return Err(BundleError::at(path, fat, "`values` is only for picklists"));
                }
                if f.max_length.is_some() && !f.ty.is_text() {
                    return Err(BundleError::at(
                        path,
                        fat,
                        format!(
                            "`max_length` does not apply to `{}` fields",
                            f.ty.describe_name()
                        ),
                    ));
                }
                if f.ty == FieldType::Reference {
                    match &f.to {
                        Some(parent) if self.objects.contains_key(parent) => {}
                        Some(parent) => {
                            return Err(BundleError::at(
                                path,
                                fat,
                                format!("references `{parent}`, which the bundle does not sync"),
                            ))
                        }
                        None => {
                            return Err(BundleError::at(
                                path,
                                fat,
                                "a reference needs `to` (the parent object)",
                            ))
                        }
                    }
                    if f.relationship.is_none() {
                        return Err(BundleError::at(
                            path,
                            fat,
                            "a reference needs `relationship` (e.g. `Account` for `AccountId`)",
                        ));
                    }
                } else if f.to.is_some() || f.relationship.is_some() {
                    return Err(BundleError::at(
                        path,
                        fat,
                        "`to` and `relationship` are only for references",
                    ));
                }
                if f.owner == Owner::Crm && f.from.is_some() {
                    return Err(BundleError::at(
                        path,
                        fat,
                        "a CRM-owned field cannot be filled from the source",
                    )
                    .help("drop `from`, or set `owner = \"source\"`"));
                }
            }
            for (i, rule) in obj.validation_rules.iter().enumerate() {
                check_rule(path, &at(&format!("validation_rules[{i}]")), obj, rule)?;
            }
            match &obj.delete {
                DeletePolicy::HardDelete => {}
                DeletePolicy::Archive { field } => match obj.fields.get(field) {
                    Some(f) if f.ty == FieldType::Boolean => {}
                    _ => {
                        return Err(BundleError::at(
                            path,
                            at("delete.field"),
                            format!("archive flag `{field}` must be a boolean field of the object"),
                        ))
                    }
                },
                DeletePolicy::Inactive { field, .. } => {
                    if !obj.fields.contains_key(field) {
                        return Err(BundleError::at(
                            path,
                            at("delete.field"),
                            format!("status field `{field}` is not a field of the object"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_rule(
    path: &Path,
    at: &str,
    obj: &ObjectSpec,
    rule: &ValidationRule,
) -> Result<(), BundleError> {
    if let Some(field) = &rule.field {
        if !obj.fields.contains_key(field) {
            return Err(BundleError::at(
                path,
                format!("{at}.field"),
                format!("`{field}` is not a field of the object"),
            ));
        }
    }
    match (&rule.regex, &rule.condition) {
        (Some(re), None) => {
            if rule.field.is_none() {
                return Err(BundleError::at(
                    path,
                    at,
                    "a `regex` rule needs the `field` it applies to",
                ));
            }
            regex::Regex::new(re).map_err(|e| {
                BundleError::at(path, format!("{at}.regex"), format!("invalid regex: {e}"))
            })?;
        }
        (None, Some(cond)) => {
            super::soql::parse_condition(cond).map_err(|e| {
                BundleError::at(path, format!("{at}.condition"), e.message)
                    .help("write a SOQL WHERE expression, e.g. `Amount__c < 0 AND StageName = 'Closed Won'`")
            })?;
        }
        _ => {
            return Err(BundleError::at(
                path,
                at,
                "a validation rule needs exactly one of `regex` or `condition`",
            ))
        }
    }
    if rule.message.trim().is_empty() {
        return Err(BundleError::at(
            path,
            format!("{at}.message"),
            "a validation rule needs the message users see",
        ));
    }
    Ok(())
}

fn is_semver(v: &str) -> bool {
    super::publish::parse_version(v).is_some()
}

fn merge(into: &mut BundleFile, file: BundleFile) {
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
        target.fields.extend(obj.fields);
    }
}

fn resolve(
    path: &Path,
    dir: &Path,
    file: BundleFile,
    with_pacts: bool,
) -> Result<Bundle, BundleError> {
    let missing =
        |key: &str| BundleError::at(path, key, "missing (in the tenant bundle and its base)");
    let mut objects = BTreeMap::new();
    for (name, obj) in file.objects {
        let at = |key: &str| format!("objects.{name}.{key}");
        objects.insert(
            name.clone(),
            ObjectSpec {
                external_id: obj.external_id.ok_or_else(|| missing(&at("external_id")))?,
                source: obj.source.ok_or_else(|| missing(&at("source")))?,
                delete: obj.delete.ok_or_else(|| {
                    missing(&at("delete")).help(
                        "a delete policy is required, e.g. `delete = { policy = \"hard_delete\" }`, `delete = { policy = \"archive\", field = \"Archived__c\" }` or `delete = { policy = \"inactive\", field = \"Status__c\", value = \"Inactive\" }`",
                    )
                })?,
                fields: obj.fields,
                unique_external_id: obj.unique_external_id.unwrap_or(false),
                validation_rules: obj.validation_rules.unwrap_or_default(),
            },
        );
    }
    Ok(Bundle {
        format: file.format.ok_or_else(|| missing("format"))?,
        partner: file.partner.ok_or_else(|| missing("partner"))?,
        tenant: file.tenant.ok_or_else(|| missing("tenant"))?,
        version: file.version.ok_or_else(|| missing("version"))?,
        kind: file.kind.unwrap_or(PartnerKind::Salesforce),
        api_version: file.api_version.unwrap_or_else(|| "62.0".into()),
        limits: file.limits.ok_or_else(|| missing("limits"))?,
        objects,
        pacts: if with_pacts {
            load_pacts(dir)?
        } else {
            BTreeMap::new()
        },
        dir: dir.to_path_buf(),
    })
}

fn load_pacts(dir: &Path) -> Result<BTreeMap<String, serde_json::Value>, BundleError> {
    let mut pacts = BTreeMap::new();
    let pact_dir = dir.join("pacts");
    let Ok(entries) = std::fs::read_dir(&pact_dir) else {
        return Ok(pacts);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| BundleError {
            path: p.clone(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read pact file: {e}"),
            help: None,
        })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| BundleError {
            path: p.clone(),
            line: Some(e.line()),
            column: Some(e.column()),
            field: None,
            message: format!("invalid JSON: {e}"),
            help: Some(
                "pact files are generated: run `syncgate contracts pacts PARTNER/TENANT`".into(),
            ),
        })?;
        let spec = json
            .pointer("/metadata/pactSpecification/version")
            .and_then(|v| v.as_str());
        if spec != Some("4.0") || !json.get("interactions").is_some_and(|i| i.is_array()) {
            return Err(BundleError::at(
                &p,
                "metadata.pactSpecification.version",
                "not a Pact V4 file with `interactions`",
            ));
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        pacts.insert(name, json);
    }
    Ok(pacts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        assert!(is_semver("1.4.0"));
        assert!(is_semver("1.4.0-rc.1"));
        assert!(!is_semver("1.4"));
        assert!(!is_semver("01.4.0"));
        assert!(!is_semver("v1.4.0"));
    }

    #[test]
    fn key_path_names_header_key_and_inline_key() {
        let text =
            "version = 1\n[objects.Account.fields]\nName = { type = \"strin\", required = true }\n";
        let at = text.find("\"strin").unwrap_or(0);
        assert_eq!(
            key_path_at(text, at).as_deref(),
            Some("objects.Account.fields.Name.type")
        );
        assert_eq!(key_path_at(text, 10).as_deref(), Some("version"));
        let at = text.find("true").unwrap_or(0);
        assert_eq!(
            key_path_at(text, at).as_deref(),
            Some("objects.Account.fields.Name.required")
        );
    }

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

    /// A misspelt key is named at its own dotted path (not at the inline table's first key),
    /// on the right line, with the key it probably meant.
    #[test]
    fn a_misspelt_key_is_named_at_its_path_with_a_suggestion() {
        let dir = tempfile::tempdir().unwrap();
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/northwind-outfitters");
        let text = std::fs::read_to_string(base.join("production/bundle.toml")).unwrap();
        let tenant = dir.path().join("acme/production");
        std::fs::create_dir_all(&tenant).unwrap();
        std::fs::copy(base.join("base.toml"), dir.path().join("acme/base.toml")).unwrap();
        let typo = "[objects.Account.fields]\nTypo_Ext__c = { type = \"string\", from = \"typo\", max_lenght = 40 }\n";
        std::fs::write(tenant.join("bundle.toml"), format!("{text}\n{typo}")).unwrap();
        let e = Bundle::load(&tenant).unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("objects.Account.fields.Typo_Ext__c.max_lenght")
        );
        let shown = e
            .to_string()
            .replace(&dir.path().display().to_string(), "[dir]");
        insta::assert_snapshot!(shown);

        let d = parse_toml::<BundleFile>("[objects.Account]\nextrnal_id = \"X\"\n").unwrap_err();
        assert_eq!(
            d.field.as_deref(),
            Some("objects.Account.extrnal_id"),
            "{d:?}"
        );
        assert_eq!(d.suggestion.as_deref(), Some("did you mean `external_id`?"));
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
