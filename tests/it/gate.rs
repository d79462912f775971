//! `syncgate gate` end to end: the binary on the example registry, the broken examples,
//! determinism, virtual time and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use syncgate::contract::Registry;
use syncgate::sim::{Scenario, Seed};
use syncgate::verify::gate::run_scenario;

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Org times and durations of a run on the scaled wall clock (an engine command) vary from
/// run to run: `[time]` and `[span]` in snapshots.
fn redact_times(s: &str) -> String {
    let times = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").unwrap();
    let spans = regex::Regex::new(r"\b\d+(\.\d+)?(ms|s|m|h)\b( before| virtual)").unwrap();
    let s = times.replace_all(s, "[time]");
    spans.replace_all(&s, "[span]$3").into_owned()
}

#[test]
fn default_gate_passes_every_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = syncgate(&["gate", "--seed", "42", "--junit", junit.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    for tenant in [
        "bluepeak-logistics/production",
        "bluepeak-logistics/sandbox",
        "northwind-outfitters/production",
        "northwind-outfitters/sandbox",
    ] {
        assert!(
            text.contains(&format!("PASS {tenant}")),
            "no verdict for {tenant}:\n{text}"
        );
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    // One case per scenario, one for pact verification and one for the contract check, per
    // tenant.
    let cases = std::fs::read_dir(root().join("harness/scenarios"))
        .unwrap()
        .count()
        + 2;
    assert!(
        xml.contains(&format!("tests=\"{}\" failures=\"0\"", 4 * cases)),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 4 * cases);
    assert_eq!(xml.matches("name=\"pact-verification\"").count(), 4);
}

#[test]
fn broken_examples_fail_with_the_invariant_named() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = syncgate(&[
        "gate",
        "--scenarios",
        "harness/broken",
        "--no-builtin-scenarios",
        "--partner",
        "northwind-outfitters",
        "--tenant",
        "production",
        "--seed",
        "42",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL northwind-outfitters/production"),
        "{text}"
    );
    assert!(text.contains("x retry-after-honoured"), "{text}");
    assert!(text.contains("x record-present-exactly-once"), "{text}");
    assert!(text.contains("x crm-owned-fields-untouched"), "{text}");
    assert!(text.contains("reproduce: syncgate replay ignores-retry-after --scenarios harness/broken --partner northwind-outfitters --tenant production --seed 42"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let broken = std::fs::read_dir(root().join("harness/broken"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        })
        .count();
    assert!(xml.contains(&format!("failures=\"{broken}\"")), "{xml}");
    assert!(
        xml.contains("message=\"broken: retry-after-honoured\""),
        "{xml}"
    );
}

/// The red report a CI user sees, pinned (bundle hashes redacted: they change with the
/// contracts; times too: the broken engine is a child process on the scaled wall clock).
#[test]
fn red_report_snapshot() {
    let out = syncgate(&[
        "gate",
        "--scenarios",
        "harness/broken",
        "--no-builtin-scenarios",
        "--scenario",
        "ignores-retry-after",
        "--partner",
        "northwind-outfitters",
        "--tenant",
        "production",
        "--seed",
        "42",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let redacted: String = text
        .split_inclusive('\n')
        .map(|line| {
            line.split(' ')
                .map(|w| match w.strip_suffix('\n') {
                    _ if !w.starts_with("sha256:") => w,
                    Some(_) => "sha256:[hash]\n",
                    None => "sha256:[hash]",
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    insta::assert_snapshot!("red_report_ignores_retry_after", redact_times(&redacted));
}

#[test]
fn same_seed_gives_identical_output_and_journals() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let run = |dir: &Path| {
        syncgate(&[
            "gate",
            "--seed",
            "1234",
            "--journal-dir",
            dir.to_str().unwrap(),
        ])
    };
    let (x, y) = (run(a.path()), run(b.path()));
    assert_eq!(x.status.code(), Some(0));
    assert_eq!(stdout(&x), stdout(&y));
    let journals = files(a.path());
    assert_eq!(
        journals.len(),
        4 * std::fs::read_dir(root().join("harness/scenarios"))
            .unwrap()
            .count()
    );
    for rel in journals {
        let ja = std::fs::read(a.path().join(&rel)).unwrap();
        let jb = std::fs::read(b.path().join(&rel)).unwrap();
        assert!(!ja.is_empty(), "{rel:?} is empty");
        assert_eq!(
            ja, jb,
            "journal {rel:?} differs between runs with the same seed"
        );
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn retry_after_of_an_hour_costs_no_wall_time() {
    let registry = Registry::open(&root().join("contracts")).unwrap();
    let tenant = registry.tenants().unwrap().into_iter().next().unwrap();
    let bundle = registry.load(&tenant).unwrap();
    let scenario = Scenario::load(&root().join("harness/scenarios/rate-limit-storm.yaml")).unwrap();
    let fixtures = syncgate::verify::gate::load_fixtures(
        std::slice::from_ref(&scenario),
        &root().join("harness/fixtures"),
    )
    .unwrap();
    let wall = Instant::now();
    let run = run_scenario(&bundle, &scenario, &fixtures, Seed(5), false)
        .await
        .unwrap();
    assert!(run.passed(), "{:?}", run.violations);
    // Three 1-hour Retry-Afters and one 15-minute one were all waited out, on the virtual clock.
    assert!(
        run.virtual_secs >= 3 * 3600 + 15 * 60,
        "virtual time {}s",
        run.virtual_secs
    );
    assert!(
        wall.elapsed() < Duration::from_secs(30),
        "a virtual wait slept for real: {:?}",
        wall.elapsed()
    );
    let waits_honoured = run
        .journal
        .windows(2)
        .filter(|w| w[0].status == 429)
        .all(|w| Some(w[1].at) >= w[0].not_before);
    assert!(waits_honoured);
}

#[test]
fn malformed_scenario_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("oops.yaml"),
        "purpose: broken file\nfaults:\n  - name: x\n    respond: { rate_limited: { retry_after: whenever } }\n",
    )
    .unwrap();
    let out = syncgate(&["gate", "--scenarios", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("oops.yaml:3:"), "{err}");
    assert!(err.contains("faults[0]: rate_limited"), "{err}");
    assert!(err.contains("not a duration"), "{err}");
    assert!(stdout(&out).is_empty(), "no verdict on bad input");
}

#[test]
fn malformed_bundle_is_reported_with_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = dir.path().join("acme/sandbox");
    std::fs::create_dir_all(&tenant).unwrap();
    std::fs::write(
        tenant.join("bundle.toml"),
        "format = 1\npartner = \"acme\"\ntenant = \"sandbox\"\nversion = \"1.0.0\"\n[limits]\ndaily_api_requests = 100\nconcurrent_long_running = 25\n[objects.Account]\nexternal_id = \"Ext__c\"\nsource = \"accounts\"\ndelete = { policy = \"hard_delete\" }\n[objects.Account.fields]\nExt__c = { type = \"string\", from = \"account_no\" }\nName = { type = \"strng\", from = \"company_name\" }\n",
    )
    .unwrap();
    let out = syncgate(&["gate", "--contracts", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bundle.toml:14:"), "{err}");
    assert!(err.contains("strng"), "{err}");
    assert!(err.contains("objects.Account.fields.Name.type"), "{err}");
    assert!(err.contains("help: did you mean `string`?"), "{err}");

    let out = syncgate(&["contracts", "validate", tenant.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_validation_condition_nested_3000_levels_deep_is_bad_input_naming_file_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = dir.path().join("acme/sandbox");
    std::fs::create_dir_all(&tenant).unwrap();
    let condition = format!("{}Name = 'x'{}", "(".repeat(3000), ")".repeat(3000));
    std::fs::write(
        tenant.join("bundle.toml"),
        format!("format = 1\npartner = \"acme\"\ntenant = \"sandbox\"\nversion = \"1.0.0\"\n[limits]\ndaily_api_requests = 100\nconcurrent_long_running = 25\n[objects.Account]\nexternal_id = \"Ext__c\"\nsource = \"accounts\"\ndelete = {{ policy = \"hard_delete\" }}\n[objects.Account.fields]\nExt__c = {{ type = \"string\", from = \"account_no\" }}\nName = {{ type = \"string\", from = \"company_name\" }}\n[[objects.Account.validation_rules]]\nname = \"deep\"\ncondition = \"{condition}\"\nmessage = \"too deep\"\n"),
    )
    .unwrap();
    let out = syncgate(&["contracts", "validate", tenant.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bundle.toml"), "{err}");
    assert!(err.contains("validation_rules[0].condition"), "{err}");
    assert!(err.contains("levels deep"), "{err}");
}

#[test]
fn unknown_tenant_filter_is_bad_usage() {
    let out = syncgate(&["gate", "--partner", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("known: bluepeak-logistics/production"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn replay_prints_the_same_timeline_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let trace = |name: &str| dir.path().join(name);
    let run = |name: &str| {
        syncgate(&[
            "replay",
            "rate-limit-storm",
            "--partner",
            "bluepeak-logistics",
            "--tenant",
            "sandbox",
            "--seed",
            "9",
            "--trace",
            trace(name).to_str().unwrap(),
        ])
    };
    let (a, b) = (run("a.jsonl"), run("b.jsonl"));
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    assert_eq!(
        std::fs::read(trace("a.jsonl")).unwrap(),
        std::fs::read(trace("b.jsonl")).unwrap()
    );
    let text = stdout(&a);
    // The timeline shows the fault, the engine's wait, and the retry an hour later.
    assert!(text.contains("-> 429 "), "{text}");
    assert!(
        text.contains("engine Account: wait until 2026-01-05T09:00:00.000Z"),
        "{text}"
    );
    assert!(text.contains("2026-01-05T09:00:00.000Z  #3 "), "{text}");
    assert!(text.contains("check retry-after-honoured: ok"), "{text}");
    assert!(text.ends_with("verdict: PASS\n\n"), "{text}");
    // The whole timeline as QA reads it (virtual clock: nothing to redact).
    let hash = regex::Regex::new("sha256:[0-9a-f]{64}").unwrap();
    insta::assert_snapshot!(
        "replay_timeline_rate_limit_storm",
        hash.replace_all(&text, "sha256:[hash]")
    );
    let lines = std::fs::read_to_string(trace("a.jsonl")).unwrap();
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            ["request", "engine", "check"].contains(&v["kind"].as_str().unwrap()),
            "{line}"
        );
    }
}

#[test]
fn replay_of_a_broken_scenario_file_fails_and_names_the_check() {
    let out = syncgate(&[
        "replay",
        "harness/broken/ignores-retry-after.yaml",
        "--partner",
        "bluepeak-logistics",
        "--tenant",
        "production",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("check retry-after-honoured: FAILED"),
        "{text}"
    );
    assert!(text.contains("verdict: FAIL"), "{text}");
}

#[test]
fn shards_split_the_runs_without_overlap_and_jobs_do_not_change_the_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for k in 1..=3 {
        let path = dir.path().join(format!("shard{k}.json"));
        let out = syncgate(&[
            "gate",
            "--shard",
            &format!("{k}/3"),
            "--json",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(report["shard"], format!("{k}/3"));
        // The pacts are verified once: shard 1 verifies every tenant's, the others none.
        let tenants = report["tenants"].as_array().unwrap();
        let verified = tenants.iter().filter(|t| t["pacts"].is_object()).count();
        assert_eq!(verified, if k == 1 { 4 } else { 0 }, "shard {k}/3");
        if k > 1 {
            assert!(
                stderr(&out).contains("pacts: verified by shard 1/3"),
                "{}",
                stderr(&out)
            );
        }
        for t in report["tenants"].as_array().unwrap() {
            for r in t["runs"].as_array().unwrap() {
                seen.push(format!(
                    "{}/{}:{}",
                    t["partner"], t["tenant"], r["scenario"]
                ));
            }
        }
    }
    let total = 4 * std::fs::read_dir(root().join("harness/scenarios"))
        .unwrap()
        .count();
    assert_eq!(seen.len(), total, "every run in exactly one shard");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "no run in two shards");

    let sequential = syncgate(&["gate", "--seed", "3"]);
    let parallel = syncgate(&["gate", "--seed", "3", "--jobs", "4"]);
    assert_eq!(stdout(&sequential), stdout(&parallel));
    assert_eq!(syncgate(&["gate", "--shard", "4/3"]).status.code(), Some(2));
}

#[test]
fn json_junit_and_markdown_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let md = dir.path().join("r.md");
    let junit = dir.path().join("r.xml");
    let out = syncgate(&[
        "gate",
        "--scenarios",
        "harness/broken",
        "--no-builtin-scenarios",
        "--partner",
        "northwind-outfitters",
        "--tenant",
        "sandbox",
        "--scenario",
        "gives-up-too-soon",
        "--scenario",
        "ignores-retry-after",
        "--scenario",
        "overwrites-crm-owned-fields",
        "--seed",
        "42",
        "--json",
        json.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let redact = |s: String| {
        s.split_inclusive(['"', '`', ' '])
            .map(|w| {
                if w.starts_with("sha256:") {
                    format!(
                        "sha256:[hash]{}",
                        w.chars()
                            .last()
                            .filter(|c| !c.is_alphanumeric())
                            .map(String::from)
                            .unwrap_or_default()
                    )
                } else {
                    w.to_string()
                }
            })
            .collect::<String>()
            .replace(env!("CARGO_PKG_VERSION"), "[version]")
    };
    let redact = |s: String| redact_times(&redact(s));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["passed"], false);
    let runs = report["tenants"][0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r["reproduce"]
        .as_str()
        .unwrap()
        .starts_with("syncgate replay ")));
    insta::assert_snapshot!(
        "markdown_report",
        redact(std::fs::read_to_string(&md).unwrap())
    );
    // The whole JSON report and the JUnit file, as CI consumers read them (hashes, the
    // version and wall times redacted).
    // Latencies and the run's length are measured on the engine command's scaled wall
    // clock: they vary from run to run, so they are left out.
    let mut stable = report.clone();
    for run in stable["tenants"][0]["runs"].as_array_mut().unwrap() {
        run.as_object_mut().unwrap().shift_remove("virtual_seconds");
        run["metrics"]
            .as_object_mut()
            .unwrap()
            .shift_remove("latency_ms");
    }
    insta::assert_snapshot!(
        "json_report",
        redact(serde_json::to_string_pretty(&stable).unwrap())
    );
    insta::assert_snapshot!(
        "junit_report",
        redact(std::fs::read_to_string(&junit).unwrap())
    );
}

/// Copies one partner's contracts into a temporary registry so a test can change them.
fn copy_partner(partner: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(root().join("contracts").join(partner))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

#[test]
fn a_pact_the_org_does_not_honour_fails_the_gate() {
    let dir = copy_partner("northwind-outfitters");
    let pact_path = dir.path().join("northwind-outfitters/sandbox/pacts/syncgate-engine-northwind-outfitters-salesforce-sandbox.json");
    let mut pact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pact_path).unwrap()).unwrap();
    let limits = pact["interactions"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["description"] == "a request for the org's limits")
        .unwrap();
    // The contract now claims the org answers `limits` with 201: Salesforce (and the mock) do not.
    limits["response"]["status"] = serde_json::json!(201);
    std::fs::write(&pact_path, serde_json::to_string_pretty(&pact).unwrap()).unwrap();
    let junit = dir.path().join("junit.xml");
    let out = syncgate(&[
        "gate",
        "--contracts",
        dir.path().to_str().unwrap(),
        "--tenant",
        "sandbox",
        "--scenario",
        "baseline",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL pact-verification"), "{text}");
    assert!(text.contains("x a request for the org's limits"), "{text}");
    assert!(text.contains("expected 201 but was 200"), "{text}");
    assert!(
        text.contains("ok   baseline"),
        "scenarios still run: {text}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("name=\"pact-verification\">"), "{xml}");
    assert!(xml.contains("type=\"pact\""), "{xml}");

    let skipped = syncgate(&[
        "gate",
        "--contracts",
        dir.path().to_str().unwrap(),
        "--tenant",
        "sandbox",
        "--scenario",
        "baseline",
        "--no-pacts",
    ]);
    assert_eq!(skipped.status.code(), Some(0), "{}", stdout(&skipped));
}

#[test]
fn a_provider_state_the_mock_cannot_set_is_named() {
    let dir = copy_partner("northwind-outfitters");
    let pact_path = dir.path().join("northwind-outfitters/production/pacts/syncgate-engine-northwind-outfitters-salesforce-production.json");
    let text = std::fs::read_to_string(&pact_path)
        .unwrap()
        .replace("the org is rate limiting", "the org is on fire");
    std::fs::write(&pact_path, text).unwrap();
    let out = syncgate(&[
        "gate",
        "--contracts",
        dir.path().to_str().unwrap(),
        "--tenant",
        "production",
        "--scenario",
        "baseline",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("x an Account upsert while the org is on fire"),
        "{text}"
    );
    assert!(
        text.contains("provider state `the org is on fire`: unknown provider state"),
        "{text}"
    );
}

/// The JUnit report read by a real JUnit consumer (`junitparser`, as CI installs it): the
/// counts it sees match the gate's verdicts.
#[test]
fn junit_report_is_read_by_a_real_junit_consumer() {
    let probe = Command::new("python3")
        .args(["-c", "import junitparser"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must install junitparser (see .ci/run)"
        );
        println!("SKIPPED: junit_report_is_read_by_a_real_junit_consumer needs python3 with junitparser (pip install junitparser)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    // A store of its own: nothing deployed or published, so each tenant's contract check
    // is one skipped case whatever the repository's `.syncgate/` holds.
    let out = syncgate_with_db(
        &dir.path().join("state.sqlite"),
        &[
            "gate",
            "--scenarios",
            "harness/broken",
            "--no-builtin-scenarios",
            "--partner",
            "northwind-outfitters",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let script = r#"
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
cases = failures = 0
for suite in xml:
    for case in suite:
        cases += 1
        failures += sum(1 for r in case.result if isinstance(r, Failure))
print(cases, failures, xml.tests, xml.failures)
"#;
    let parsed = Command::new("python3")
        .args(["-c", script, junit.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let counts = String::from_utf8_lossy(&parsed.stdout).trim().to_string();
    let broken = std::fs::read_dir(root().join("harness/broken"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        })
        .count();
    // Two tenants: every broken scenario fails, pact verification passes, the contract
    // check is a skipped case (nothing deployed or published in this store).
    let cases = 2 * (broken + 2);
    assert_eq!(
        counts,
        format!("{cases} {} {cases} {}", 2 * broken, 2 * broken)
    );
}

/// Each invariant has a deliberately faulty engine configuration under `harness/broken/`
/// that the gate fails, naming that invariant.
#[test]
fn every_invariant_is_caught_by_a_broken_engine() {
    let cases = [
        ("gives-up-too-soon", "record-present-exactly-once"),
        ("stale-version-wins", "field-values-match-source"),
        ("gives-up-too-soon", "invalid-record-dead-lettered"),
        ("wrong-external-id", "nothing-else-created"),
        ("overwrites-crm-owned-fields", "crm-owned-fields-untouched"),
        ("overwrites-crm-owned-fields", "requests-match-contract"),
        ("creates-instead-of-upserting", "requests-match-contract"),
        (
            "creates-instead-of-upserting",
            "record-present-exactly-once",
        ),
        ("ignores-retry-after", "retry-after-honoured"),
        ("hammers-after-lockout", "daily-budget-respected"),
        ("gives-up-on-lockout", "engine-completed"),
        ("sends-poison-records", "invalid-record-never-sent"),
        ("ignores-deletes", "deletes-follow-policy"),
        ("drops-new-columns", "new-columns-routed-or-reported"),
        ("overwrites-manual-edits", "field-values-match-source"),
        ("delivers-duplicate-events", "crm-changes-reach-source"),
        ("resends-settled-versions", "rerun-sends-nothing"),
        ("dead-letters-what-landed", "dead-letters-not-landed"),
        ("keeps-batch-size", "trigger-limits-adapted"),
        ("keeps-batch-size", "record-present-exactly-once"),
        ("gives-up-on-gateway-errors", "record-present-exactly-once"),
        ("resends-bulk-uploads", "bulk-rows-processed-once"),
        ("skips-its-limiter", "rate-and-concurrency-within-limits"),
        ("spends-last-call", "last-daily-call-spared"),
        (
            "retries-permanent-rejections",
            "retries-follow-retryable-answers",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = syncgate(&[
        "gate",
        "--scenarios",
        "harness/broken",
        "--no-builtin-scenarios",
        "--partner",
        "northwind-outfitters",
        "--tenant",
        "production",
        "--no-pacts",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = report["tenants"][0]["runs"].as_array().unwrap();
    for (scenario, invariant) in cases {
        let run = runs
            .iter()
            .find(|r| r["scenario"] == scenario)
            .unwrap_or_else(|| panic!("no run of {scenario}"));
        let broken: Vec<&str> = run["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["invariant"].as_str().unwrap())
            .collect();
        assert!(
            broken.contains(&invariant),
            "{scenario} should break {invariant}, broke {broken:?}"
        );
    }
    let covered: std::collections::BTreeSet<&str> = cases.iter().map(|(_, i)| *i).collect();
    // `faults-fired` judges the scenario, not the engine (its own test:
    // `a_fault_rule_that_never_fired_fails_its_scenario`).
    let all: std::collections::BTreeSet<&str> = syncgate::verify::invariants::names::ALL
        .into_iter()
        .filter(|&i| i != syncgate::verify::invariants::names::FAULTS_FIRED)
        .collect();
    assert_eq!(
        covered, all,
        "every invariant has a broken engine that trips it"
    );
}

/// Check (1) of the gate: the bundle on disk against the version deployed in the target
/// environment, from the store. A breaking change fails the gate and is named; none passes.
#[test]
fn a_breaking_change_since_the_deployed_version_fails_the_gate() {
    let dir = copy_partner("bluepeak-logistics");
    let contracts = dir.path().to_str().unwrap().to_string();
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_syncgate"))
            .args(args)
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env("SYNCGATE_DATABASE_URL", &db)
            .output()
            .unwrap()
    };
    let published = run(&[
        "contracts",
        "publish",
        "--contracts",
        &contracts,
        "bluepeak-logistics/sandbox",
    ]);
    assert_eq!(
        published.status.code(),
        Some(0),
        "{}{}",
        stdout(&published),
        stderr(&published)
    );
    let deployed = run(&[
        "contracts",
        "record-deployment",
        "--partner",
        "bluepeak-logistics",
        "--tenant",
        "sandbox",
        "--environment",
        "production",
        "--bundle-version",
        "2.1.0",
        "--engine-version",
        "0.1.0",
    ]);
    assert_eq!(deployed.status.code(), Some(0), "{}", stderr(&deployed));
    let gate = |label: &str| {
        let out = run(&[
            "gate",
            "--contracts",
            &contracts,
            "--tenant",
            "sandbox",
            "--scenario",
            "baseline",
            "--no-pacts",
        ]);
        (out.status.code(), format!("{label}:\n{}", stdout(&out)))
    };

    // Unchanged: the check runs and passes.
    let (code, text) = gate("unchanged");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok   contract-check               0 change(s), 0 breaking, since 2.1.0 deployed in production"), "{text}");

    // The partner drops Phone from Account on disk: breaking.
    let bundle = dir.path().join("bluepeak-logistics/base.toml");
    let toml = std::fs::read_to_string(&bundle).unwrap();
    let without_phone: String = toml
        .lines()
        .filter(|l| !l.starts_with("Phone = "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(toml, without_phone);
    std::fs::write(&bundle, without_phone).unwrap();
    let (code, text) = gate("field removed");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL contract-check"), "{text}");
    assert!(text.contains("objects.Account.fields.Phone"), "{text}");
}

/// Runs the binary with its state store in `db` (a SQLite path).
fn syncgate_with_db(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("SYNCGATE_DATABASE_URL", format!("sqlite:{}", db.display()))
        .output()
        .expect("syncgate runs")
}

/// Selections that select nothing are bad usage (exit 2), never `PASS all 0 tenant(s)`.
#[test]
fn a_selection_that_selects_nothing_is_bad_usage() {
    let empty = tempfile::tempdir().unwrap();
    let out = syncgate(&[
        "gate",
        "--scenarios",
        empty.path().to_str().unwrap(),
        "--no-builtin-scenarios",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("no scenarios in"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("PASS"), "{}", stdout(&out));

    // One tenant x one scenario is one run: shard 2 of 2 has none.
    let out = syncgate(&[
        "gate",
        "--partner",
        "bluepeak-logistics",
        "--tenant",
        "sandbox",
        "--scenario",
        "baseline",
        "--no-pacts",
        "--shard",
        "2/2",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("shard 2/2 of 1 run(s) selects none"),
        "{}",
        stderr(&out)
    );

    let out = syncgate(&["gate", "--jobs", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("--jobs"), "{}", stderr(&out));
}

/// A fault rule that never fired fails its scenario (`faults-fired`), unless it is optional.
#[test]
fn a_fault_rule_that_never_fired_fails_its_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = |optional: bool| {
        format!(
            "purpose: Salesforce is busy on a path the engine never calls.\nfaults:\n  - name: never-called\n    match: {{ method: DELETE, path: \"/no/such/route\" }}\n    respond: server_unavailable\n{}",
            if optional { "    optional: true\n" } else { "" }
        )
    };
    std::fs::write(dir.path().join("unfired.yaml"), scenario(false)).unwrap();
    let gate = || {
        syncgate(&[
            "gate",
            "--scenarios",
            dir.path().to_str().unwrap(),
            "--no-builtin-scenarios",
            "--partner",
            "bluepeak-logistics",
            "--tenant",
            "sandbox",
            "--no-pacts",
        ])
    };
    let out = gate();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("x faults-fired"), "{text}");
    assert!(
        text.contains("fault rule `never-called` of") && text.contains("never fired"),
        "{text}"
    );
    std::fs::write(dir.path().join("unfired.yaml"), scenario(true)).unwrap();
    let out = gate();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// A sink refusal a scenario names that never happened (nothing was delivered to refuse)
/// fails the scenario; an engine command, whose outbox the gate cannot refuse, is told
/// `not-checked` for the CRM-change invariant, never a silent pass.
#[test]
fn a_sink_refusal_that_never_happened_fails_and_engine_commands_are_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("refuses-nothing.yaml"),
        "purpose: The source refuses deliveries, but no rep edits anything.\nevents:\n  sink_refuses: 1\nfaults: []\n",
    )
    .unwrap();
    let gate = |extra: &[&str]| {
        let mut args = vec![
            "gate",
            "--scenarios",
            dir.path().to_str().unwrap(),
            "--no-builtin-scenarios",
            "--partner",
            "northwind-outfitters",
            "--tenant",
            "production",
            "--no-pacts",
        ];
        args.extend_from_slice(extra);
        syncgate(&args)
    };
    let out = gate(&[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("x crm-changes-reach-source"), "{text}");
    assert!(
        text.contains("the sink refused only 0 of the 1 deliveries"),
        "{text}"
    );
    let out = gate(&["--engine-cmd", "python3 examples/engines/collections.py"]);
    let text = stdout(&out);
    assert!(
        text.contains("crm-changes-reach-source not-checked: the scenario's sink refuses"),
        "{text}{}",
        stderr(&out)
    );
}

/// An unreachable store fails the gate (exit 3) with the cause, never a warning and a pass.
#[test]
fn an_unreachable_store_fails_the_gate_with_its_cause() {
    for partial in [false, true] {
        let mut args = vec![
            "--database-url",
            "postgres://postgres@127.0.0.1:1/test",
            "gate",
            "--tenant",
            "sandbox",
            "--partner",
            "bluepeak-logistics",
        ];
        if partial {
            args.extend(["--scenario", "baseline", "--no-pacts"]);
        }
        let out = syncgate(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{}{err}", stdout(&out));
        assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
        assert!(err.to_lowercase().contains("connection refused"), "{err}");
        assert!(!stdout(&out).contains("PASS"), "{}", stdout(&out));
    }
}

/// With nothing deployed and nothing published, every report says the contract check did
/// not run.
#[test]
fn an_unchecked_contract_is_stated_in_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite");
    let (json, junit, md) = (
        dir.path().join("r.json"),
        dir.path().join("r.xml"),
        dir.path().join("r.md"),
    );
    let out = syncgate_with_db(
        &db,
        &[
            "gate",
            "--partner",
            "bluepeak-logistics",
            "--tenant",
            "sandbox",
            "--scenario",
            "baseline",
            "--no-pacts",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let note = "not checked: nothing deployed in production and nothing published";
    assert!(
        text.contains(&format!("--   contract-check               {note}")),
        "{text}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let contract = &report["tenants"][0]["contract"];
    assert_eq!(contract["against"], "none", "{contract}");
    assert_eq!(contract["note"], note, "{contract}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!(
            "name=\"contract-check\">\n      <skipped message=\"{note}\"/>"
        )),
        "{xml}"
    );
    assert!(xml.contains("skipped=\"1\""), "{xml}");
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown.contains(&format!(
            "bluepeak-logistics/sandbox contract-check: {note}"
        )),
        "{markdown}"
    );
}

/// With nothing deployed, the bundle is checked against the latest published version below
/// it: the five kinds of breaking change that used to pass silently fail the gate, and a
/// changed bundle under a published version number fails with both hashes.
#[test]
fn with_nothing_deployed_the_latest_published_version_is_the_baseline() {
    let dir = copy_partner("bluepeak-logistics");
    let contracts = dir.path().to_str().unwrap().to_string();
    let db = dir.path().join("state.sqlite");
    let base = dir.path().join("bluepeak-logistics/base.toml");
    let sandbox = dir.path().join("bluepeak-logistics/sandbox/bundle.toml");
    let original = std::fs::read_to_string(&base).unwrap();
    // Published 2.1.0: Status__c an unrestricted picklist.
    let published = original.replace(
        "Status__c = { type = \"picklist\", values = [\"Active\", \"Inactive\"], from = \"status\" }",
        "Status__c = { type = \"picklist\", values = [\"Active\", \"Inactive\"], restricted = false, from = \"status\" }",
    );
    assert_ne!(published, original);
    std::fs::write(&base, &published).unwrap();
    let out = syncgate_with_db(
        &db,
        &[
            "contracts",
            "publish",
            "--contracts",
            &contracts,
            "bluepeak-logistics/sandbox",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let gate = || {
        let out = syncgate_with_db(
            &db,
            &[
                "gate",
                "--contracts",
                &contracts,
                "--partner",
                "bluepeak-logistics",
                "--tenant",
                "sandbox",
                "--scenario",
                "baseline",
                "--no-pacts",
            ],
        );
        (out.status.code(), stdout(&out))
    };
    let (code, text) = gate();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok   contract-check               0 change(s), 0 breaking, since 2.1.0, the latest published (nothing deployed in production)"), "{text}");

    // 2.2.0 on disk, with five breaking changes.
    let changed = published
        .replace(
            "BillingCity = { type = \"string\", max_length = 40,",
            "BillingCity = { type = \"string\", required = true, max_length = 40,",
        )
        .replace(
            "\"Transportation\", \"Wholesale\"]",
            "\"Transportation\"]",
        )
        .replace("restricted = false, ", "")
        .replace(
            "source = \"opportunities\"\ndelete = { policy = \"hard_delete\" }",
            "source = \"opportunities\"\ndelete = { policy = \"inactive\", field = \"StageName\", value = \"Closed Lost\" }",
        );
    std::fs::write(&base, &changed).unwrap();
    let bundle = std::fs::read_to_string(&sandbox).unwrap();
    std::fs::write(
        &sandbox,
        bundle
            .replace("version = \"2.1.0\"", "version = \"2.2.0\"")
            .replace("daily_api_requests = 15000", "daily_api_requests = 14000"),
    )
    .unwrap();
    let (code, text) = gate();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL contract-check"), "{text}");
    assert!(text.contains("since 2.1.0, the latest published"), "{text}");
    for rule in [
        "became-required",
        "picklist-value-removed",
        "picklist-restricted",
        "delete-policy-changed",
        "limit-lowered",
    ] {
        assert!(
            text.contains(&format!("x {rule} ")),
            "{rule} not failed:\n{text}"
        );
    }

    // Back at 2.1.0 with other content: the version was not bumped.
    std::fs::write(&sandbox, &bundle).unwrap();
    std::fs::write(&base, &original).unwrap();
    let (code, text) = gate();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("x version-not-bumped version"), "{text}");
    assert!(text.contains("bump the version"), "{text}");
    assert!(text.matches("sha256:").count() >= 3, "{text}");
}

/// `--engine-config` with `batch_size = 50`: the baseline scenario sends ⌈records / 50⌉
/// collection calls per object, and the reports carry the configuration's hash.
#[test]
fn the_engine_configuration_file_sets_the_batch_size_and_its_hash_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("engine.toml");
    std::fs::write(&config, "[engine]\nbatch_size = 50\n").unwrap();
    let run = |config: Option<&Path>, name: &str| {
        let json = dir.path().join(format!("{name}.json"));
        let journals = dir.path().join(name);
        let mut args = vec![
            "gate".to_string(),
            "--partner".into(),
            "bluepeak-logistics".into(),
            "--tenant".into(),
            "sandbox".into(),
            "--scenario".into(),
            "baseline".into(),
            "--no-pacts".into(),
            "--json".into(),
            json.display().to_string(),
            "--journal-dir".into(),
            journals.display().to_string(),
        ];
        if let Some(c) = config {
            args.extend(["--engine-config".into(), c.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = syncgate(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let journal =
            std::fs::read_to_string(journals.join("bluepeak-logistics/sandbox/baseline.jsonl"))
                .unwrap();
        // Per object: collection calls, and the records they carried.
        let mut calls: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for line in journal.lines() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            if e["method"] == "PATCH"
                && e["path"].as_str().unwrap().contains("/composite/sobjects/")
            {
                let slot = calls
                    .entry(e["object"].as_str().unwrap().to_string())
                    .or_default();
                slot.0 += 1;
                slot.1 += e["records"].as_u64().unwrap() as usize;
            }
        }
        (report, stdout(&out), calls)
    };
    let (default_report, _, default_calls) = run(None, "defaults");
    let (report, text, calls) = run(Some(&config), "fifty");
    assert_eq!(calls.len(), 3, "{calls:?}");
    for (object, (n, records)) in &calls {
        assert!(
            *records > 50,
            "{object}: {records} records is too few to tell"
        );
        assert_eq!(*n, records.div_ceil(50), "{object}: {calls:?}");
        assert_eq!(
            default_calls[object].1, *records,
            "{object}: same records sent"
        );
        assert_eq!(default_calls[object].0, records.div_ceil(200), "{object}");
    }
    let hash = report["engine_config_hash"].as_str().unwrap();
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
    assert_ne!(
        report["engine_config_hash"],
        default_report["engine_config_hash"]
    );
    assert_eq!(report["engine_config_source"], config.display().to_string());
    assert!(
        text.contains(&format!("engine configuration: {}", config.display())),
        "{text}"
    );

    // A bad value names the file, line and key (exit 2).
    std::fs::write(&config, "[engine]\nbatch_size = 50\nburst = 0\n").unwrap();
    let out = syncgate(&["gate", "--engine-config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{}:3:9: `engine.burst`: must be at least 1",
            config.display()
        )),
        "{}",
        stderr(&out)
    );
}

/// The engine command (docs/engine-protocol.md): every variable the protocol names is set
/// in the child's environment, and an engine that writes no dead-letters or report file
/// is shown as not checked for those invariants, never as passed.
#[test]
fn an_engine_command_gets_every_protocol_variable() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "gate",
            "--partner",
            "bluepeak-logistics",
            "--tenant",
            "production",
            "--scenario",
            "baseline",
            "--no-pacts",
            "--json",
            json.to_str().unwrap(),
            "--engine-cmd",
            "env > \"$DUMP_DIR/env.txt\"",
        ])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("DUMP_DIR", dir.path())
        .env("SYNCGATE_LEAK_CHECK", "from-the-gate")
        .output()
        .unwrap();
    let text = stdout(&out);
    // The engine did nothing: the records are missing, so the gate fails.
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    let env = std::fs::read_to_string(dir.path().join("env.txt")).unwrap();
    let doc = std::fs::read_to_string(root().join("docs/engine-protocol.md")).unwrap();
    let named: std::collections::BTreeSet<&str> = doc
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("SYNCGATE_") && w.len() > "SYNCGATE_".len())
        .collect();
    assert!(named.len() >= 15, "{named:?}");
    for var in &named {
        assert!(
            env.lines().any(|l| l.starts_with(&format!("{var}="))),
            "{var} is named in docs/engine-protocol.md but not set for the engine:\n{env}"
        );
    }
    assert!(env.contains("SYNCGATE_PROTOCOL=1\n"), "{env}");
    assert!(
        env.contains("SYNCGATE_TENANT=bluepeak-logistics/production\n"),
        "{env}"
    );
    assert!(
        !env.contains("SYNCGATE_LEAK_CHECK"),
        "the gate's own variables leaked"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &report["tenants"][0]["runs"][0];
    let broken: Vec<&str> = run["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["invariant"].as_str().unwrap())
        .collect();
    assert!(
        broken.contains(&"record-present-exactly-once"),
        "{broken:?}"
    );
    assert!(
        !broken.contains(&"invalid-record-dead-lettered"),
        "{broken:?}"
    );
    let unchecked: Vec<(&str, &str)> = run["not_checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["invariant"].as_str().unwrap(),
                u["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        unchecked.contains(&("invalid-record-dead-lettered", "not-checked")),
        "{unchecked:?}"
    );
    assert!(
        unchecked.contains(&("new-columns-routed-or-reported", "not-checked")),
        "{unchecked:?}"
    );
    assert!(
        unchecked.contains(&("crm-changes-reach-source", "not-applicable")),
        "{unchecked:?}"
    );
    assert!(
        text.contains("? invalid-record-dead-lettered not-checked"),
        "{text}"
    );
}

#[test]
fn an_engine_command_that_is_not_found_is_exit_2_naming_it() {
    let out = syncgate(&[
        "gate",
        "--no-pacts",
        "--engine-cmd",
        "no-such-sync-engine --fast",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("`no-such-sync-engine`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_hanging_engine_is_killed_at_its_limit() {
    let started = Instant::now();
    let out = syncgate(&[
        "gate",
        "--partner",
        "bluepeak-logistics",
        "--tenant",
        "production",
        "--scenario",
        "baseline",
        "--no-pacts",
        "--engine-timeout",
        "1s",
        "--engine-cmd",
        "sleep 60 & sleep 60",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(text.contains("x engine-completed"), "{text}");
    assert!(
        text.contains("killed after the 1s wall-clock limit"),
        "{text}"
    );
}

/// The reference Python engine (examples/engines/collections.py), run as a foreign process
/// on the scaled clock, passes the default library for a tenant.
#[test]
fn the_reference_python_engine_passes_the_default_library() {
    let out = syncgate(&[
        "gate",
        "--partner",
        "northwind-outfitters",
        "--tenant",
        "production",
        "--no-pacts",
        "--jobs",
        "4",
        "--engine-cmd",
        "python3 examples/engines/collections.py",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("PASS all 1 tenant(s)"), "{text}");
}
