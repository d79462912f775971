//! The rules a loaded bundle must meet beyond its syntax: the format, a semantic version,
//! limits, external IDs, field kinds, references, validation rules and delete policies.

use std::path::Path;

use super::{
    Bundle, BundleError, DeletePolicy, FieldType, ObjectSpec, Owner, ValidationRule, FORMAT_VERSION,
};

impl Bundle {
    pub(super) fn check(&self, path: &Path) -> Result<(), BundleError> {
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
            check_label(path, &at("label"), obj.label.as_deref())?;
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
                check_label(path, &format!("{fat}.label"), f.label.as_deref())?;
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
            crate::contract::soql::parse_condition(cond).map_err(|e| {
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

/// Longest label Salesforce accepts for an object or a field.
const MAX_LABEL: usize = 40;

/// A label, when given, is what a user sees: not blank, at most [`MAX_LABEL`] characters.
fn check_label(path: &Path, at: &str, label: Option<&str>) -> Result<(), BundleError> {
    match label {
        Some(l) if l.trim().is_empty() => Err(BundleError::at(path, at, "a label cannot be blank")
            .help("give the label users see, or leave `label` out to derive it from the API name")),
        Some(l) if l.chars().count() > MAX_LABEL => Err(BundleError::at(
            path,
            at,
            format!(
                "the label has {} characters; Salesforce allows at most {MAX_LABEL}",
                l.chars().count()
            ),
        )),
        _ => Ok(()),
    }
}

fn is_semver(v: &str) -> bool {
    crate::contract::publish::parse_version(v).is_some()
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
}
