//! `syncgate preflight`: a partner certifies a field before enabling it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn syncgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("syncgate runs")
}

#[test]
fn enabling_a_field_piloted_in_the_sandbox_is_certified() {
    let dir = tempfile::tempdir().unwrap();
    let out = syncgate(&[
        "preflight",
        "--partner",
        "northwind-outfitters",
        "--tenant",
        "production",
        "--enable-field",
        "Account.Loyalty_Tier__c",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("# syncgate preflight: CERTIFIED"),
        "{text}"
    );
    assert!(
        text.contains("safe `optional-field-added` objects.Account.fields.Loyalty_Tier__c"),
        "{text}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("preflight.json")).unwrap())
            .unwrap();
    assert_eq!(report["certified"], true);
    assert_eq!(
        report["enabled_fields"],
        serde_json::json!(["Account.Loyalty_Tier__c"])
    );
    assert!(report["proposed_hash"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_ne!(report["proposed_hash"], report["current_hash"]);
    assert_eq!(report["seed"], 1);
    assert!(dir.path().join("preflight.md").is_file());
}

#[test]
fn a_required_field_the_mapping_does_not_fill_is_not_certified() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("field.toml");
    std::fs::write(&spec, "[objects.Account.fields]\nRegion__c = { type = \"picklist\", required = true, values = [\"West\", \"East\"] }\n").unwrap();
    let out = syncgate(&[
        "preflight",
        "--partner",
        "bluepeak-logistics",
        "--tenant",
        "production",
        "--field-spec",
        spec.to_str().unwrap(),
        "--report-dir",
        dir.path().to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("# syncgate preflight: NOT CERTIFIED"),
        "{text}"
    );
    assert!(text.contains("**breaking**"), "{text}");
    assert!(text.contains("Region__c"), "{text}");
}

#[test]
fn a_field_no_tenant_has_needs_a_spec() {
    let out = syncgate(&[
        "preflight",
        "--partner",
        "northwind-outfitters",
        "--tenant",
        "production",
        "--enable-field",
        "Account.Nope__c",
        "--report-dir",
        "/tmp/unused-preflight",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("give its spec with --field-spec FILE"),
        "{err}"
    );
}
