//! Starting from a real org: `syncgate contracts pull` writes a bundle from a live org's
//! describe metadata, and `syncgate contracts check-org` finds where a live org drifted
//! from its bundle. Both run against `syncgate mock serve` as a user would start it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use syncgate::contract::diff::{diff, Rule};
use syncgate::contract::{Bundle, Registry};

use crate::support::served::{root, serve, Served};

fn syncgate(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SYNCGATE_CLIENT_ID")
        .env_remove("SYNCGATE_CLIENT_SECRET")
        .output()
        .expect("syncgate runs")
}

/// `mock serve` of a tenant with no scenario, signing in `app` / `s3cret`.
fn serve_tenant(tenant: &str) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "mock",
            "serve",
            "--bundle",
            tenant,
            "--client-id",
            "app",
            "--client-secret",
            "s3cret",
        ])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mock serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the mock prints its URL");
    let url = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    Served { child, url }
}

/// The parts of a bundle describe does not carry, taken from `from` onto `onto`: the mapping
/// (`source`, each field's `from` and `owner`), delete policies, validation rules, the
/// long-running threshold, the version and the pacts.
fn graft_undescribable(from: &Bundle, onto: &mut Bundle) {
    onto.version = from.version.clone();
    onto.pacts = from.pacts.clone();
    onto.limits.long_running_threshold_secs = from.limits.long_running_threshold_secs;
    for (name, spec) in onto.objects.iter_mut() {
        let Some(theirs) = from.objects.get(name) else {
            continue;
        };
        spec.source = theirs.source.clone();
        spec.delete = theirs.delete.clone();
        spec.validation_rules = theirs.validation_rules.clone();
        for (fname, f) in spec.fields.iter_mut() {
            if let Some(t) = theirs.fields.get(fname) {
                f.from = t.from.clone();
                f.owner = t.owner;
            }
        }
    }
}

#[test]
fn a_bundle_pulled_from_a_mock_org_validates_and_diffs_as_unchanged_where_describe_can_say() {
    let registry = Registry::open(&root().join("contracts")).expect("contracts/ opens");
    let tenants = registry.tenants().expect("tenants");
    assert!(!tenants.is_empty());
    for t in tenants {
        let original = registry.load(&t).expect("the example bundle loads");
        let served = serve_tenant(&t.label());
        let out_dir = tempfile::tempdir().expect("temp dir");
        let contracts = out_dir.path().join("contracts");
        let objects: Vec<&str> = original.objects.keys().map(String::as_str).collect();
        let target = format!("{}/{}", original.partner, original.tenant);
        let out = syncgate(
            &[
                "contracts",
                "pull",
                "--org",
                &served.url,
                "--client-id",
                "app",
                "--client-secret",
                "s3cret",
                "--objects",
                &objects.join(","),
                "--api-version",
                &original.api_version,
                "--contracts",
                contracts.to_str().expect("utf-8 path"),
                &target,
            ],
            out_dir.path(),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{target}: {stdout}{stderr}");
        assert!(
            stdout.contains("marked MAPPING, POLICY or LIMITS"),
            "{stdout}"
        );
        let dir = contracts.join(&original.partner).join(&original.tenant);
        let text = std::fs::read_to_string(dir.join("bundle.toml")).expect("bundle.toml written");
        assert!(text.contains("# MAPPING"), "{text}");
        // The mock answers /limits: the limits are the org's, not placeholders.
        assert!(!text.contains("# LIMITS"), "{text}");
        assert!(
            !text.contains("s3cret"),
            "the secret leaked into the bundle"
        );

        // It validates, as the CLI checks it.
        let out = syncgate(
            &["contracts", "validate", dir.to_str().expect("utf-8")],
            out_dir.path(),
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pulled = Bundle::load(&dir).expect("the pulled bundle loads");

        // Before grafting: what differs is only what describe cannot carry.
        let describe_blind = [
            Rule::MappingChanged,
            Rule::DeletePolicyChanged,
            Rule::InteractionRemoved,
            Rule::LimitLowered,
            Rule::LimitRaised,
        ];
        let raw = diff(&original, &pulled);
        for c in &raw.changes {
            assert!(
                describe_blind.contains(&c.rule),
                "{target}: describe-side change {:?} at {}: {}",
                c.rule,
                c.at,
                c.reason
            );
            if matches!(c.rule, Rule::LimitLowered | Rule::LimitRaised) {
                assert_eq!(
                    c.at, "limits.long_running_threshold_secs",
                    "{target}: {}",
                    c.reason
                );
            }
        }

        // With the undescribable parts taken from the original: no change at all.
        graft_undescribable(&original, &mut pulled);
        let grafted = diff(&original, &pulled);
        assert!(
            grafted.changes.is_empty(),
            "{target}:\n{}",
            grafted.explain()
        );
        assert_eq!(pulled.objects, original.objects, "{target}");
        assert_eq!(pulled.limits, original.limits, "{target}");
        drop(served);
    }
}

#[test]
fn pull_refuses_to_overwrite_and_names_a_missing_object() {
    let served = serve_tenant("bluepeak-logistics/sandbox");
    let out_dir = tempfile::tempdir().expect("temp dir");
    let dir = out_dir.path().join("contracts/acme/trial");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bundle.toml"), "# mine\n").unwrap();
    let run_as = |secret: &str, extra: &[&str]| {
        let mut args: Vec<&str> = vec![
            "contracts",
            "pull",
            "--org",
            served.url.as_str(),
            "--client-id",
            "app",
            "--client-secret",
            secret,
        ];
        args.extend_from_slice(extra);
        syncgate(&args, out_dir.path())
    };
    let run = |extra: &[&str]| run_as("s3cret", extra);
    let out = run(&["--objects", "Account", "acme/trial"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
    assert_eq!(
        std::fs::read_to_string(dir.join("bundle.toml")).unwrap(),
        "# mine\n"
    );

    let out = run(&["--objects", "Account,Invoice__c", "acme/other"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no object Invoice__c"), "{stderr}");

    // Contact alone: its lookup to Account is not pulled, and says so in a comment.
    let out = run(&["--objects", "Contact", "acme/contacts"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(out_dir.path().join("contracts/acme/contacts/bundle.toml"))
        .unwrap();
    assert!(
        text.contains("AccountId: a lookup to Account, which is not pulled"),
        "{text}"
    );

    let out = run_as("wrong-secret", &["--objects", "Account", "acme/x"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to sign in"), "{stderr}");
    assert!(
        !stderr.contains("wrong-secret"),
        "the secret is printed: {stderr}"
    );
}

fn check_org(url: &str, tenant: &str) -> (Option<i32>, String) {
    let out = syncgate(
        &[
            "contracts",
            "check-org",
            "--org",
            url,
            "--client-id",
            "app",
            "--client-secret",
            "s3cret",
            tenant,
        ],
        &root(),
    );
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_org_passes_an_unchanged_org_and_names_each_field_a_partner_changed() {
    let scenarios = root().join("harness/scenarios");
    // The org as the contract says (`serve` runs Northwind production).
    let clean = serve(&scenarios.join("baseline.yaml"));
    let (code, out) = check_org(&clean.url, "northwind-outfitters/production");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no drift"), "{out}");
    drop(clean);

    // The partner turned BillingCity into a numeric code.
    let changed = serve(&scenarios.join("partner-changes-field-type.yaml"));
    let (code, out) = check_org(&changed.url, "northwind-outfitters/production");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("BREAKING type-changed"), "{out}");
    assert!(
        out.contains("objects.Account.fields.BillingCity.type"),
        "{out}"
    );
    assert!(out.contains("1 breaking"), "{out}");
    drop(changed);

    // The partner made a new field required.
    let required = serve(&scenarios.join("partner-adds-required-field.yaml"));
    let (code, out) = check_org(&required.url, "northwind-outfitters/production");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("required-field-added"), "{out}");
    assert!(out.contains("objects.Account.fields.Region__c"), "{out}");
}
