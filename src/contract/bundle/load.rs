//! Loading: a tenant directory's `bundle.toml` (and the base it extends) and its Pact files
//! into a resolved [`Bundle`], checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::inherit::{merge, BundleFile};
use super::{Bundle, BundleError, ObjectSpec, PartnerKind};
use crate::contract::diagnostic::parse_toml;

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
                label: obj.label,
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
}
