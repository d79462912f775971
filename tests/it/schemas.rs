//! The JSON Schemas for bundle files and scenarios: every example on disk validates, bad
//! input is rejected, and the schemas agree with the crate's own loaders.

use std::path::{Path, PathBuf};

use jsonschema::{Draft, Validator};
use serde_json::{json, Value};
use syncgate::contract::Bundle;
use syncgate::sim::Scenario;

const BUNDLE_SCHEMA: &str = include_str!("../../contracts/schema/bundle-v1.schema.json");
const SCENARIO_SCHEMA: &str = include_str!("../../harness/schema/scenario-v1.schema.json");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compile(name: &str, text: &str) -> Validator {
    let schema: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
    // `validator_for` also checks the schema against its draft's meta-schema.
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"))
}

fn bundle_schema() -> Validator {
    compile("bundle-v1.schema.json", BUNDLE_SCHEMA)
}

fn scenario_schema() -> Validator {
    compile("scenario-v1.schema.json", SCENARIO_SCHEMA)
}

/// Every validation error, with the location in the instance.
fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| {
            let at = e.instance_path.to_string();
            format!("at `{}`: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect()
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Files under `dir` (recursively) whose name is one of `names`, sorted.
fn files_named(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries =
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot read {}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| names.contains(&n))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `*.yaml` and `*.yml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    out.sort();
    out
}

fn toml_to_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("bundle file is readable");
    toml::from_str(&text).unwrap_or_else(|e| panic!("{} is not TOML: {e}", rel(path)))
}

fn yaml_to_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("scenario file is readable");
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", rel(path)))
}

fn bundle_files() -> Vec<PathBuf> {
    files_named(&root().join("contracts"), &["base.toml", "bundle.toml"])
}

fn scenario_files() -> Vec<PathBuf> {
    let harness = root().join("harness");
    let mut files = yaml_files(&harness.join("scenarios"));
    files.extend(yaml_files(&harness.join("broken")));
    files
}

/// Validates each instance and returns one block of errors per file that failed.
fn failures(validator: &Validator, files: &[(PathBuf, Value)]) -> Vec<String> {
    files
        .iter()
        .filter_map(|(path, value)| {
            let errs = errors(validator, value);
            (!errs.is_empty()).then(|| format!("{}:\n  {}", rel(path), errs.join("\n  ")))
        })
        .collect()
}

#[test]
fn schemas_are_draft_2020_12_and_describe_every_property() {
    for (name, text, validator) in [
        ("bundle", BUNDLE_SCHEMA, bundle_schema()),
        ("scenario", SCENARIO_SCHEMA, scenario_schema()),
    ] {
        assert_eq!(validator.draft(), Draft::Draft202012, "{name} schema draft");
        let schema: Value = serde_json::from_str(text).unwrap();
        let mut undescribed = Vec::new();
        find_undescribed(&schema, "#", &mut undescribed);
        assert!(
            undescribed.is_empty(),
            "{name} schema: properties without a description:\n  {}",
            undescribed.join("\n  ")
        );
    }
}

/// Collects the pointer of every entry of a `properties` map that has no `description`.
/// Conditional checks (`if`/`then`/`else`/`not`) only restate declared properties, and a
/// `false` schema (which forbids a property) needs none.
fn find_undescribed(node: &Value, at: &str, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, child) in map {
                if ["if", "then", "else", "not"].contains(&key.as_str()) {
                    continue;
                }
                let here = format!("{at}/{key}");
                if key == "properties" {
                    if let Value::Object(props) = child {
                        for (prop, schema) in props {
                            if schema.is_object() && schema.get("description").is_none() {
                                out.push(format!("{here}/{prop}"));
                            }
                        }
                    }
                }
                find_undescribed(child, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                find_undescribed(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_bundle_file_matches_the_schema() {
    let files = bundle_files();
    let bases = files.iter().filter(|p| p.ends_with("base.toml")).count();
    let tenants = files.len() - bases;
    assert!(
        bases >= 2 && tenants >= 4,
        "expected the example registry (2 partners × 2 tenants), found {bases} base and {tenants} tenant files: {files:?}"
    );
    let values: Vec<(PathBuf, Value)> = files
        .into_iter()
        .map(|p| {
            let v = toml_to_json(&p);
            (p, v)
        })
        .collect();
    let failed = failures(&bundle_schema(), &values);
    assert!(
        failed.is_empty(),
        "bundle files that do not match contracts/schema/bundle-v1.schema.json:\n{}",
        failed.join("\n")
    );
}

#[test]
fn every_scenario_matches_the_schema() {
    let files = scenario_files();
    let broken = files
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("broken")))
        .count();
    assert!(
        files.len() - broken >= 6 && broken >= 2,
        "expected the scenario library and the broken examples, found {files:?}"
    );
    let values: Vec<(PathBuf, Value)> = files
        .into_iter()
        .map(|p| {
            let v = yaml_to_json(&p);
            (p, v)
        })
        .collect();
    let failed = failures(&scenario_schema(), &values);
    assert!(
        failed.is_empty(),
        "scenarios that do not match harness/schema/scenario-v1.schema.json:\n{}",
        failed.join("\n")
    );
}

#[test]
fn every_example_loads_through_the_crate() {
    let tenant_dirs: Vec<PathBuf> = files_named(&root().join("contracts"), &["bundle.toml"])
        .into_iter()
        .map(|p| {
            p.parent()
                .expect("bundle.toml has a directory")
                .to_path_buf()
        })
        .collect();
    assert!(
        tenant_dirs.len() >= 4,
        "tenant directories: {tenant_dirs:?}"
    );
    let mut failed = Vec::new();
    for dir in &tenant_dirs {
        match Bundle::load(dir) {
            Ok(b) => {
                let tenant = dir.file_name().unwrap().to_string_lossy();
                let partner = dir.parent().unwrap().file_name().unwrap().to_string_lossy();
                if b.partner != partner || b.tenant != tenant {
                    failed.push(format!(
                        "{}: declares {}/{}, but lives in {partner}/{tenant}",
                        rel(dir),
                        b.partner,
                        b.tenant
                    ));
                }
                if !b.content_hash().starts_with("sha256:") {
                    failed.push(format!(
                        "{}: odd content hash {}",
                        rel(dir),
                        b.content_hash()
                    ));
                }
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    let scenarios = scenario_files();
    assert!(!scenarios.is_empty());
    for path in &scenarios {
        if let Err(e) = Scenario::load(path) {
            failed.push(e.to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "examples the crate rejects:\n{}",
        failed.join("\n")
    );
}

/// Loads a bundle from a scratch registry: `base` as the partner's base.toml and `tenant`
/// as `<partner>/t/bundle.toml`.
fn load_bundle(base: &str, tenant: &str) -> Result<Bundle, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let partner = dir.path().join("p");
    std::fs::create_dir_all(partner.join("t")).unwrap();
    std::fs::write(partner.join("base.toml"), base).unwrap();
    std::fs::write(partner.join("t").join("bundle.toml"), tenant).unwrap();
    Bundle::load(&partner.join("t")).map_err(|e| e.to_string())
}

fn load_scenario(yaml: &str) -> Result<Scenario, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("case.yaml");
    std::fs::write(&path, yaml).unwrap();
    Scenario::load(&path).map_err(|e| e.to_string())
}

#[test]
fn schema_and_loader_reject_an_unknown_field_type() {
    let dir = root().join("contracts/northwind-outfitters");
    let base = std::fs::read_to_string(dir.join("base.toml")).unwrap();
    let tenant = std::fs::read_to_string(dir.join("production/bundle.toml")).unwrap();
    let good = r#"Name = { type = "string", required = true, max_length = 255"#;
    assert!(
        base.contains(good),
        "the example base changed; update this test"
    );
    let bad = base.replacen(good, &good.replace("\"string\"", "\"strng\""), 1);

    let mut instance: Value = toml::from_str(&bad).unwrap();
    let errs = errors(&bundle_schema(), &instance);
    assert!(
        errs.iter().any(|e| e.contains("/objects/Account/fields/Name/type")),
        "the schema should reject type \"strng\" at objects.Account.fields.Name.type, got: {errs:?}"
    );
    let loaded = load_bundle(&bad, &tenant);
    assert!(
        loaded.as_ref().is_err_and(|e| e.contains("strng")),
        "the crate should reject type \"strng\": {:?}",
        loaded.map(|b| b.version)
    );

    // The same file with the type fixed passes both: the rejection was for the type.
    instance["objects"]["Account"]["fields"]["Name"]["type"] = json!("string");
    assert_eq!(errors(&bundle_schema(), &instance), Vec::<String>::new());
    assert!(load_bundle(&base, &tenant).is_ok());
}

#[test]
fn schema_and_loader_reject_an_unknown_fault_kind() {
    let path = root().join("harness/scenarios/rate-limit-storm.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let good: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(errors(&scenario_schema(), &good), Vec::<String>::new());

    for respond in [
        json!({"rate_limted": {"retry_after": "3600s"}}),
        json!("server_down"),
        json!("rate_limited"),
    ] {
        let mut bad = good.clone();
        bad["faults"][0]["respond"] = respond.clone();
        let errs = errors(&scenario_schema(), &bad);
        assert!(
            errs.iter().any(|e| e.contains("/faults/0/respond")),
            "the schema should reject respond {respond}, got: {errs:?}"
        );
        let yaml = serde_yaml::to_string(&bad).unwrap();
        assert!(
            load_scenario(&yaml).is_err(),
            "the crate should reject respond {respond}:\n{yaml}"
        );
    }
}

/// A complete stand-alone bundle: `object` lines go into `[objects.Account]`, `fields`
/// lines into `[objects.Account.fields]`.
fn standalone_bundle(object: &str, fields: &str) -> String {
    format!(
        r#"format = 1
partner = "p"
tenant = "t"
version = "1.0.0"

[limits]
daily_api_requests = 100
concurrent_long_running = 25

[objects.Account]
external_id = "Ext__c"
source = "accounts"
{object}

[objects.Account.fields]
Ext__c = {{ type = "string", max_length = 32, from = "account_no" }}
Active__c = {{ type = "boolean" }}
{fields}
"#
    )
}

#[test]
fn bundle_schema_agrees_with_the_loader() {
    const HARD: &str = r#"delete = { policy = "hard_delete" }"#;
    // (lines of [objects.Account], lines of its fields table, whether both the schema
    // and the crate accept the file)
    let cases: &[(&str, &str, bool)] = &[
        (HARD, "", true),
        (
            r#"delete = { policy = "archive", field = "Active__c" }"#,
            "",
            true,
        ),
        (
            r#"delete = { policy = "inactive", field = "Ext__c", value = "x" }"#,
            "",
            true,
        ),
        (r#"delete = { policy = "archive" }"#, "", false),
        (
            r#"delete = { policy = "archive", field = "Active__c", value = "x" }"#,
            "",
            false,
        ),
        (
            r#"delete = { policy = "inactive", field = "Ext__c", value = 3 }"#,
            "",
            false,
        ),
        (r#"delete = { policy = "purge" }"#, "", false),
        ("delete = \"hard_delete\"", "", false),
        (
            HARD,
            r#"Tier__c = { type = "picklist", values = ["Gold"], restricted = false }"#,
            true,
        ),
        (HARD, r#"Tier__c = { type = "picklist" }"#, false),
        (
            HARD,
            r#"Tier__c = { type = "picklist", values = [] }"#,
            false,
        ),
        (HARD, r#"Size__c = { type = "int", values = ["1"] }"#, false),
        (HARD, r#"Size__c = { type = "int", max_length = 3 }"#, false),
        (
            HARD,
            r#"Code__c = { type = "string", max_length = -3 }"#,
            false,
        ),
        (
            HARD,
            r#"Note__c = { type = "textarea", max_length = 32000, owner = "crm" }"#,
            true,
        ),
        (
            HARD,
            r#"Note__c = { type = "textarea", owner = "crm", from = "note" }"#,
            false,
        ),
        (
            HARD,
            r#"Note__c = { type = "textarea", owner = "partner" }"#,
            false,
        ),
        (
            HARD,
            r#"Note__c = { type = "textarea", from = "note", colour = "red" }"#,
            false,
        ),
        (HARD, r#"Note__c = { type = "strng" }"#, false),
        (HARD, r#"Note__c = { required = true }"#, false),
        (
            HARD,
            r#"ParentId = { type = "reference", to = "Account", relationship = "Parent", from = "parent_no" }"#,
            true,
        ),
        (
            HARD,
            r#"ParentId = { type = "reference", to = "Account", from = "parent_no" }"#,
            false,
        ),
        (
            HARD,
            r#"ParentId = { type = "reference", relationship = "Parent" }"#,
            false,
        ),
        (HARD, r#"Name = { type = "string", to = "Account" }"#, false),
        (
            "delete = { policy = \"hard_delete\" }\nowner = \"crm\"",
            "",
            false,
        ),
        (
            "delete = { policy = \"hard_delete\" }\nlabel = \"Customer\"",
            "",
            true,
        ),
        (
            "delete = { policy = \"hard_delete\" }\nlabel = \"\"",
            "",
            false,
        ),
        (
            HARD,
            r#"Note__c = { type = "textarea", owner = "crm", label = "Internal Note" }"#,
            true,
        ),
        (
            HARD,
            r#"Note__c = { type = "textarea", label = "  " }"#,
            false,
        ),
        (
            HARD,
            r#"Note__c = { type = "textarea", label = "A label longer than forty characters, no?" }"#,
            false,
        ),
        (HARD, r#"Note__c = { type = "textarea", label = 3 }"#, false),
    ];
    let schema = bundle_schema();
    let mut disagreements = Vec::new();
    for (object, fields, valid) in cases {
        let text = standalone_bundle(object, fields);
        let case = format!("{object} / {fields}");
        let instance: Value = toml::from_str(&text).unwrap();
        let errs = errors(&schema, &instance);
        if errs.is_empty() != *valid {
            disagreements.push(format!(
                "schema {} `{case}`: {errs:?}",
                if *valid { "rejects" } else { "accepts" }
            ));
        }
        let loaded = load_bundle("", &text);
        if loaded.is_ok() != *valid {
            disagreements.push(format!(
                "crate {} `{case}`: {:?}",
                if *valid { "rejects" } else { "accepts" },
                loaded.err()
            ));
        }
    }
    // File-level keys, checked on the file alone.
    for (file, valid) in [
        (json!({"format": 2}), false),
        (json!({"version": "1.4"}), false),
        (json!({"version": "1.4.0-rc.1"}), true),
        (json!({"kind": "hubspot"}), false),
        (json!({"limits": {"daily_api_requests": 1000}}), false),
        (
            json!({"limits": {"daily_api_requests": 1000, "concurrent_long_running": 25}}),
            true,
        ),
        (
            json!({"limits": {"daily_api_requests": 1000, "concurrent_long_running": 25, "burst": 3}}),
            false,
        ),
        (
            json!({"tenant": "sandbox", "objects": {"Account": {"fields": {"X__c": {"type": "int", "from": "x"}}}}}),
            true,
        ),
        (json!({"$schema": "x"}), false),
    ] {
        let errs = errors(&schema, &file);
        if errs.is_empty() != valid {
            disagreements.push(format!(
                "schema {} {file}: {errs:?}",
                if valid { "rejects" } else { "accepts" }
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "bundle schema and loader disagree with the expected verdicts:\n{}",
        disagreements.join("\n")
    );
}

#[test]
fn scenario_schema_agrees_with_the_loader() {
    // (scenario YAML, whether both the schema and the crate accept it)
    let cases: &[(&str, bool)] = &[
        ("purpose: p\n", true),
        ("{}\n", false),
        ("purpose: \"  \"\n", false),
        ("purpose: |\n  two\n  lines\n", false),
        ("purpose: p\ncolour: red\n", false),
        ("purpose: p\nfixtures: default\nstart: 2026-01-05\n", true),
        ("purpose: p\nstart: 2026-01-05T23:59:00-05:00\n", true),
        ("purpose: p\nstart: 2026-01-05T08:00:00\n", false),
        ("purpose: p\nlimits: { daily_api_requests: 10, used_at_start: 9 }\n", true),
        ("purpose: p\nlimits: { used_at_start: -1 }\n", false),
        ("purpose: p\nlimits: { burst: 3 }\n", false),
        ("purpose: p\nengine: { max_attempts: 1, batch_size: 200, bulk_threshold: 10 }\n", true),
        ("purpose: p\nengine: { honour_retry_after: false }\n", false),
        ("purpose: p\nengine: { create_instead_of_upsert: true }\n", false),
        ("purpose: p\nengine_cmd: python3 engine.py\n", true),
        ("purpose: p\nengine: { max_attempts: 0 }\n", false),
        ("purpose: p\nengine: { batch_size: 201 }\n", false),
        ("purpose: p\nengine: { jitter: false }\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: server_unavailable }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: unable_to_lock_row }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: request_limit_exceeded }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: response_lost }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: { server_unavailable: {} } }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: { unable_to_lock_row: ~ } }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: { server_unavailable: { after: 1 } } }]\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: { response_lost: ~ } }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: { response_lost: { mode: connection_reset } } }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: { response_lost: { mode: timeout } } }]\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: { retry_after: 1h } } }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: { retry_after: 250ms, http_date: true } } }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: { retry_after: 3600 } } }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: { retry_after: \"90\" } } }]\n", true),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: { retry_after: soon } } }]\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: { retry_after: 1.5 } } }]\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: { retry_after: 1w } } }]\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: {} } }]\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: ~ } }]\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: { rate_limited: { retry_after: 1h, jitter: 2 } } }]\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: { server_unavailable: ~, unable_to_lock_row: ~ } }]\n", false),
        ("purpose: p\nfaults: [{ name: a, respond: {} }]\n", false),
        ("purpose: p\nfaults: [{ name: a }]\n", false),
        ("purpose: p\nfaults: [{ respond: server_unavailable }]\n", false),
        ("purpose: p\nfaults: [{ name: a, match: { method: patch, path: \"/composite/**\", object: Account }, respond: server_unavailable }]\n", true),
        ("purpose: p\nfaults: [{ name: a, match: { method: FETCH }, respond: server_unavailable }]\n", false),
        ("purpose: p\nfaults: [{ name: a, match: { host: x }, respond: server_unavailable }]\n", false),
        ("purpose: p\nfaults: [{ name: a, calls: { first: 2, times: 3 }, probability: 0.5, respond: server_unavailable }]\n", true),
        ("purpose: p\nfaults: [{ name: a, calls: { times: ~ }, respond: server_unavailable }]\n", true),
        ("purpose: p\nfaults: [{ name: a, calls: { first: 0 }, respond: server_unavailable }]\n", false),
        ("purpose: p\nfaults: [{ name: a, calls: { times: 0 }, respond: server_unavailable }]\n", false),
        ("purpose: p\nfaults: [{ name: a, probability: 1.5, respond: server_unavailable }]\n", false),
    ];
    let schema = scenario_schema();
    let mut disagreements = Vec::new();
    for (yaml, valid) in cases {
        let instance: Value = serde_yaml::from_str(yaml).unwrap();
        let errs = errors(&schema, &instance);
        if errs.is_empty() != *valid {
            disagreements.push(format!(
                "schema {} {yaml:?}: {errs:?}",
                if *valid { "rejects" } else { "accepts" }
            ));
        }
        let loaded = load_scenario(yaml);
        if loaded.is_ok() != *valid {
            disagreements.push(format!(
                "crate {} {yaml:?}: {:?}",
                if *valid { "rejects" } else { "accepts" },
                loaded.err()
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "scenario schema and loader disagree with the expected verdicts:\n{}",
        disagreements.join("\n")
    );
}
