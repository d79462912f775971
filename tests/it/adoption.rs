//! Usable from any team's repository with the binary alone: the built-in scenario library,
//! fixtures generated from the contract, `scenarios list|show`, `init`. Every test runs
//! the `syncgate` binary in a fresh directory that holds no `harness/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use syncgate::contract::{Bundle, FieldType, Owner};
use syncgate::sim::library::BUILTIN;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary in `dir` with its own store there.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env(
            "SYNCGATE_DATABASE_URL",
            format!("sqlite:{}", dir.join("state.sqlite").display()),
        )
        .output()
        .expect("syncgate runs")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A fresh repository holding only a copy of `contracts/`.
fn contracts_only() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&root().join("contracts"), &dir.path().join("contracts"));
    dir
}

/// Every file under `dir`, by relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn a_repository_with_only_contracts_passes_the_builtin_library_on_generated_fixtures() {
    let repo = contracts_only();
    let started = std::time::Instant::now();
    let gate = run_in(
        repo.path(),
        &[
            "gate",
            "--partner",
            "northwind-outfitters",
            "--tenant",
            "sandbox",
            "--json",
            "report.json",
        ],
    );
    eprintln!(
        "gate in a contracts-only repository: {:?}",
        started.elapsed()
    );
    assert_eq!(gate.status.code(), Some(0), "{}{}", out(&gate), err(&gate));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.path().join("report.json")).unwrap())
            .unwrap();
    let runs = report["tenants"][0]["runs"].as_array().unwrap();
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    let builtin: Vec<&str> = BUILTIN.iter().map(|b| b.name).collect();
    assert_eq!(names, builtin, "every built-in scenario ran");
    assert!(
        err(&gate).contains("fixtures generated from the contract"),
        "{}",
        err(&gate)
    );
    let generated = repo
        .path()
        .join(".syncgate/fixtures/northwind-outfitters/sandbox");
    for set in [
        "default",
        "poison",
        "schema-drift",
        "deletes-day2",
        "manual-edits-day2",
    ] {
        assert!(
            generated.join(set).join("accounts.jsonl").is_file(),
            "{set} was not written"
        );
    }
    // Every record the manifest says must be rejected was dead-lettered, and nothing else.
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(generated.join("default/_generated.json")).unwrap(),
    )
    .unwrap();
    let baseline = runs.iter().find(|r| r["scenario"] == "baseline").unwrap();
    assert_eq!(
        baseline["dead_lettered"].as_u64(),
        Some(manifest["rejects"].as_array().unwrap().len() as u64),
        "{baseline}"
    );
    // The pacts on disk were verified, not skipped.
    assert!(
        out(&gate).contains("ok   pact-verification"),
        "{}",
        out(&gate)
    );
}

#[test]
fn init_writes_a_skeleton_the_gate_passes_at_once_and_refuses_a_non_empty_directory() {
    let parent = tempfile::tempdir().unwrap();
    let init = run_in(parent.path(), &["init", "my-contracts"]);
    assert_eq!(init.status.code(), Some(0), "{}{}", out(&init), err(&init));
    let repo = parent.path().join("my-contracts");
    for f in [
        "syncgate.toml",
        "README.md",
        "ci/gate.sh",
        "contracts/example-partner/sandbox/bundle.toml",
    ] {
        assert!(repo.join(f).is_file(), "{f}");
    }
    let gate = run_in(&repo, &["gate"]);
    let text = out(&gate);
    assert_eq!(gate.status.code(), Some(0), "{text}{}", err(&gate));
    assert!(text.contains("PASS example-partner/sandbox"), "{text}");
    assert!(
        text.contains(&format!("{}/{} scenarios", BUILTIN.len(), BUILTIN.len())),
        "{text}"
    );
    // No pacts yet: said, not passed off as verified, and nothing recorded for can-i-deploy.
    let pact_line = text
        .lines()
        .find(|l| l.contains("pact-verification"))
        .unwrap_or_default();
    assert!(pact_line.contains("not checked"), "{text}");
    assert!(
        err(&gate).contains("verification result not recorded for example-partner/sandbox"),
        "{}",
        err(&gate)
    );
    assert!(text.contains("engine configuration: "), "{text}");

    let again = run_in(parent.path(), &["init", "my-contracts"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(err(&again).contains("not empty"), "{}", err(&again));
}

#[test]
fn scenarios_list_and_show_print_the_builtin_library() {
    let empty = tempfile::tempdir().unwrap();
    let list = run_in(empty.path(), &["scenarios", "list"]);
    assert_eq!(list.status.code(), Some(0), "{}", err(&list));
    let text = out(&list);
    assert_eq!(text.lines().count(), BUILTIN.len(), "{text}");
    let delete = text
        .lines()
        .find(|l| l.starts_with("delete-policies "))
        .unwrap();
    assert!(delete.contains("default, deletes-day2"), "{delete}");
    assert!(delete.contains("each object's policy applies"), "{delete}");

    let show = run_in(empty.path(), &["scenarios", "show", "rate-limit-storm"]);
    assert_eq!(show.status.code(), Some(0));
    assert_eq!(
        out(&show),
        std::fs::read_to_string(root().join("harness/scenarios/rate-limit-storm.yaml")).unwrap()
    );
    let missing = run_in(empty.path(), &["scenarios", "show", "no-such-scenario"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        err(&missing).contains("known: baseline"),
        "{}",
        err(&missing)
    );
}

#[test]
fn a_file_named_like_a_builtin_scenario_replaces_it() {
    let repo = contracts_only();
    let own = repo.path().join("scenarios");
    std::fs::create_dir_all(&own).unwrap();
    // Our baseline: a fault rule on a route the engine never calls, so it must fail
    // `faults-fired` — which only our file can make it do.
    std::fs::write(
        own.join("baseline.yaml"),
        "purpose: Our own baseline, with a rule that never fires.\nfaults:\n  - name: never\n    match: { method: DELETE, path: \"/no/such/route\" }\n    respond: server_unavailable\n",
    )
    .unwrap();
    let list = run_in(
        repo.path(),
        &["scenarios", "list", "--scenarios", "scenarios"],
    );
    let line = out(&list)
        .lines()
        .find(|l| l.starts_with("baseline "))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("Our own baseline") && line.contains("[scenarios/baseline.yaml]"),
        "{line}"
    );
    let gate = run_in(
        repo.path(),
        &[
            "gate",
            "--scenarios",
            "scenarios",
            "--scenario",
            "baseline",
            "--partner",
            "bluepeak-logistics",
            "--tenant",
            "sandbox",
            "--no-pacts",
        ],
    );
    assert_eq!(gate.status.code(), Some(1), "{}{}", out(&gate), err(&gate));
    assert!(out(&gate).contains("x faults-fired"), "{}", out(&gate));
    let show = run_in(
        repo.path(),
        &["scenarios", "show", "baseline", "--scenarios", "scenarios"],
    );
    assert!(out(&show).starts_with("purpose: Our own baseline"));
}

/// The generated default set for one tenant, baseline only, into `out`.
fn generate_into(repo: &Path, out_dir: &str, seed: &str, records: &str) -> Output {
    generate_for(repo, "baseline", out_dir, seed, records)
}

/// The fixture sets `scenario` reads, for one tenant, into `out`.
fn generate_for(repo: &Path, scenario: &str, out_dir: &str, seed: &str, records: &str) -> Output {
    run_in(
        repo,
        &[
            "gate",
            "--scenario",
            scenario,
            "--partner",
            "bluepeak-logistics",
            "--tenant",
            "production",
            "--no-pacts",
            "--seed",
            seed,
            "--records",
            records,
            "--fixtures-out",
            out_dir,
        ],
    )
}

#[test]
fn generated_fixtures_are_deterministic_and_hold_a_record_per_rule_to_reject() {
    let repo = contracts_only();
    let a = generate_into(repo.path(), "a", "11", "60");
    assert_eq!(a.status.code(), Some(0), "{}{}", out(&a), err(&a));
    let b = generate_into(repo.path(), "b", "11", "60");
    assert_eq!(b.status.code(), Some(0));
    let c = generate_into(repo.path(), "c", "12", "60");
    let (ta, tb, tc) = (
        tree(&repo.path().join("a")),
        tree(&repo.path().join("b")),
        tree(&repo.path().join("c")),
    );
    assert!(!ta.is_empty());
    assert_eq!(ta, tb, "the same seed gives byte-identical files");
    assert_ne!(ta, tc, "another seed gives other records");
    assert_eq!(c.status.code(), Some(0));
    // Which scenario runs does not change the set: a replay of one run gets the same files.
    let d = generate_for(repo.path(), "rerun-same-source", "d", "11", "60");
    assert_eq!(d.status.code(), Some(0), "{}", out(&d));
    assert_eq!(tree(&repo.path().join("d")), ta);

    let set = repo.path().join("a/bluepeak-logistics/production/default");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(set.join("_generated.json")).unwrap())
            .unwrap();
    let rejects: Vec<(String, String, String)> = manifest["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["object"].as_str().unwrap().to_string(),
                r["field"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |o: &str, f: &str, rule: &str| {
        rejects
            .iter()
            .any(|(ro, rf, rr)| ro == o && rf == f && rr == rule)
    };
    let bundle =
        Bundle::load(&repo.path().join("contracts/bluepeak-logistics/production")).unwrap();
    let mut rules = 0;
    for (object, spec) in &bundle.objects {
        for (name, f) in &spec.fields {
            if f.from.is_none() || f.owner == Owner::Crm || *name == spec.external_id {
                continue;
            }
            let mut want = Vec::new();
            if f.required {
                want.push("required");
            }
            if f.max_length.is_some() {
                want.push("max_length");
            }
            if f.ty == FieldType::Picklist && f.restricted {
                want.push("restricted_picklist");
            }
            if f.ty.is_number()
                || matches!(
                    f.ty,
                    FieldType::Boolean | FieldType::Date | FieldType::Datetime
                )
            {
                want.push("type");
            }
            if f.ty == FieldType::Email {
                want.push("email");
            }
            for rule in want {
                assert!(
                    has(object, name, rule),
                    "no record breaks {object}.{name} {rule}"
                );
                rules += 1;
            }
        }
    }
    assert!(rules >= 15, "only {rules} rules in the bundle?");
    // Every reject's ID is in the entity's file.
    let accounts = std::fs::read_to_string(set.join("accounts.jsonl")).unwrap();
    for r in manifest["rejects"].as_array().unwrap() {
        if r["object"] == "Account" {
            let id = r["id"].as_str().unwrap();
            assert!(accounts.contains(&format!("\"id\":\"{id}\"")), "{id}");
        }
    }
    // The gate judged them: the baseline run dead-lettered at least one per rule.
    assert!(
        out(&a).contains("PASS bluepeak-logistics/production"),
        "{}",
        out(&a)
    );
}

#[test]
fn records_scale_the_valid_records() {
    let repo = contracts_only();
    let started = std::time::Instant::now();
    let gate = generate_into(repo.path(), "big", "1", "5000");
    eprintln!("baseline with --records 5000: {:?}", started.elapsed());
    assert_eq!(gate.status.code(), Some(0), "{}{}", out(&gate), err(&gate));
    let set = repo
        .path()
        .join("big/bluepeak-logistics/production/default");
    for entity in ["accounts", "contacts", "opportunities"] {
        let text = std::fs::read_to_string(set.join(format!("{entity}.jsonl"))).unwrap();
        let valid = text
            .lines()
            .filter(|l| !l.contains("-REJ-") && !l.contains("\"LLLL"))
            .count();
        assert_eq!(valid, 5000, "{entity}");
    }
    let text = out(&gate);
    assert!(text.contains("records"), "{text}");
}

/// A tenant written from scratch, syncing none of the objects the built-in scenarios name:
/// the gate passes, and says which parts of the library did not apply to it.
#[test]
fn a_tenant_with_other_objects_runs_the_library_and_is_told_what_did_not_apply() {
    let repo = tempfile::tempdir().unwrap();
    let tenant = repo.path().join("contracts/acme/prod");
    std::fs::create_dir_all(&tenant).unwrap();
    std::fs::write(
        tenant.join("bundle.toml"),
        r#"format = 1
partner = "acme"
tenant = "prod"
version = "1.0.0"

[limits]
daily_api_requests = 15000
concurrent_long_running = 25

[objects.Depot__c]
external_id = "Depot_Key__c"
source = "depots"
delete = { policy = "hard_delete" }

[objects.Depot__c.fields]
Depot_Key__c = { type = "string", max_length = 20, from = "depot_key" }
Name = { type = "string", required = true, max_length = 80, from = "name" }
Region__c = { type = "picklist", values = ["North", "South"], from = "region" }

[objects.Parcel__c]
external_id = "Parcel_Key__c"
source = "parcels"
delete = { policy = "archive", field = "Gone__c" }

[objects.Parcel__c.fields]
Parcel_Key__c = { type = "string", max_length = 30, from = "parcel_key" }
Depot__c = { type = "reference", to = "Depot__c", relationship = "Depot__r", required = true, from = "depot_key" }
State__c = { type = "picklist", required = true, values = ["Booked", "Sorted", "Delivered"], from = "state" }
Weight__c = { type = "double", from = "weight" }
Gone__c = { type = "boolean" }
"#,
    )
    .unwrap();
    let gate = run_in(repo.path(), &["gate", "--json", "report.json"]);
    let text = out(&gate);
    assert_eq!(gate.status.code(), Some(0), "{text}{}", err(&gate));
    assert!(
        text.contains("faults-fired not-applicable: fault rule `lost-as-reset` matches Contact, which acme/prod does not sync"),
        "{text}"
    );
    assert!(text.contains("org-fields not-applicable"), "{text}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.path().join("report.json")).unwrap())
            .unwrap();
    let runs = report["tenants"][0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), BUILTIN.len());
    let baseline = runs.iter().find(|r| r["scenario"] == "baseline").unwrap();
    assert_eq!(baseline["not_checked"].as_array().map_or(0, Vec::len), 0);
    // Both objects were synced from generated fixtures.
    let depots = repo
        .path()
        .join(".syncgate/fixtures/acme/prod/default/depots.jsonl");
    assert!(std::fs::read_to_string(depots).unwrap().lines().count() > 250);
}
