//! Replay from the artefact alone: `syncgate gate --artefacts DIR` writes a self-contained
//! replay file per failing run, and `syncgate replay --from FILE` reproduces the run byte
//! for byte in an empty directory; a replay file whose inputs were changed says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn syncgate(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("SYNCGATE_DATABASE_URL")
        .output()
        .expect("syncgate runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The manual-edits scenario (two days, four rep edits) with one fault rule that never
/// fires: a failing run (`faults-fired`) of the in-process engine, whose trace holds
/// requests, engine events and manual edits.
fn failing_scenario(dir: &Path) -> PathBuf {
    let base =
        std::fs::read_to_string(root().join("harness/scenarios/manual-edits-during-sync.yaml"))
            .expect("the library scenario");
    let text = base.replace(
        "faults: []",
        "faults:\n  - name: never-called\n    match: { method: DELETE, path: \"/no/such/route\" }\n    respond: server_unavailable\n",
    );
    assert_ne!(text, base, "the scenario's `faults: []` line moved");
    let path = dir.join("edits-and-an-unfired-rule.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_failing_runs_replay_file_reproduces_it_byte_for_byte_from_an_empty_directory() {
    let work = tempfile::tempdir().unwrap();
    let scenarios = work.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    failing_scenario(&scenarios);
    let artefacts = work.path().join("artefacts");
    let out = syncgate(
        &[
            "--database-url",
            "sqlite::memory:",
            "gate",
            "--scenarios",
            scenarios.to_str().unwrap(),
            "--partner",
            "bluepeak-logistics",
            "--tenant",
            "sandbox",
            "--no-pacts",
            "--seed",
            "11",
            "--artefacts",
            artefacts.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let file = artefacts.join("replay-bluepeak-logistics-sandbox-edits-and-an-unfired-rule.json");
    assert!(file.is_file(), "{}", text(&out));
    assert!(text(&out).contains("replay file: "), "{}", text(&out));
    let replay: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(replay["format"], "syncgate-replay/1");
    assert_eq!(replay["seed"], 11);
    assert_eq!(replay["recorded"]["verdict"], "FAIL");
    assert_eq!(
        replay["recorded"]["failed"],
        serde_json::json!(["faults-fired"])
    );
    assert!(replay["fixtures"]["default"]["files"]["accounts.jsonl"].is_string());
    assert!(replay["fixtures"]["manual-edits-day2"]["files"].is_object());
    assert!(replay["bundle"]["resolved"]["objects"]["Account"].is_object());
    assert!(replay["engine_config"]["hash"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let recorded = replay["recorded"]["trace"].as_str().unwrap().to_string();
    assert!(recorded.contains("\"kind\":\"manual_edit\""), "{recorded}");

    // The same run replayed from the repository gives the recorded trace.
    let from_repo = work.path().join("from-repo.jsonl");
    let out = syncgate(
        &[
            "replay",
            scenarios
                .join("edits-and-an-unfired-rule.yaml")
                .to_str()
                .unwrap(),
            "--partner",
            "bluepeak-logistics",
            "--tenant",
            "sandbox",
            "--seed",
            "11",
            "--trace",
            from_repo.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&from_repo).unwrap(), recorded);

    // From the file alone, in an empty directory.
    let empty = tempfile::tempdir().unwrap();
    let copy = empty.path().join("failure.json");
    std::fs::copy(&file, &copy).unwrap();
    let out = syncgate(
        &[
            "replay",
            "--from",
            "failure.json",
            "--trace",
            "again.jsonl",
            "--bodies",
        ],
        empty.path(),
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("reproduced: the trace is byte for byte the recorded one"),
        "{shown}"
    );
    assert!(!shown.contains("DIFFERS"), "{shown}");
    assert!(shown.contains("check faults-fired: FAILED"), "{shown}");
    // The timeline shows the reps' edits and, with --bodies, what went over the wire.
    assert!(
        shown.contains("manual edit `rep-edits-account-after-the-source-changed`: Account CUST-10004 set {\"Phone\":\"+1 555-0199\"}"),
        "{shown}"
    );
    assert!(shown.contains("        > {\"allOrNone\":false"), "{shown}");
    assert!(shown.contains("        < [{"), "{shown}");
    assert!(
        !shown.contains("client_secret"),
        "credentials in the timeline: {shown}"
    );
    assert_eq!(
        std::fs::read_to_string(empty.path().join("again.jsonl")).unwrap(),
        recorded
    );

    // A replay file whose inputs were changed says so, and what no longer matches.
    let mut tampered = replay.clone();
    let accounts = tampered["fixtures"]["default"]["files"]["accounts.jsonl"]
        .as_str()
        .unwrap()
        .replacen("Bozeman", "Billings", 1);
    tampered["fixtures"]["default"]["files"]["accounts.jsonl"] = Value::String(accounts);
    std::fs::write(&copy, serde_json::to_string(&tampered).unwrap()).unwrap();
    let out = syncgate(&["replay", "--from", "failure.json"], empty.path());
    let shown = text(&out);
    assert!(
        shown.contains("input fixtures default: sha256:")
            && shown.contains("DIFFERS from the report's"),
        "{shown}"
    );
    assert!(
        shown.contains("input bundle bluepeak-logistics/sandbox"),
        "{shown}"
    );

    // Not a replay file: bad input naming the file.
    std::fs::write(&copy, "{\"format\": \"something else\"}").unwrap();
    let out = syncgate(&["replay", "--from", "failure.json"], empty.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("failure.json"), "{}", text(&out));
}
