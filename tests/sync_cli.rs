//! `syncgate sync` and `syncgate dlq` against `syncgate mock serve`, as a user runs them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `mock serve` child process, killed on drop.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(scenario: &std::path::Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "mock",
            "serve",
            "--bundle",
            "northwind-outfitters/production",
            "--client-id",
            "app",
            "--client-secret",
            "s3cret",
            "--scenario",
        ])
        .arg(scenario)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.split_whitespace().next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    Served { child, url }
}

fn run(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(args)
        .current_dir(root())
        .env("SYNCGATE_DATABASE_URL", db)
        .env("SYNCGATE_CLIENT_ID", "app")
        .env("SYNCGATE_CLIENT_SECRET", "s3cret")
        .output()
        .unwrap()
}

#[test]
fn sync_dead_letters_then_redrive_delivers_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("expiring.yaml");
    // The first Contact batch meets a session that expires twice: refreshed once, then given up.
    std::fs::write(&scenario, "purpose: sessions expire twice in a row\nfaults:\n  - name: expired\n    match: { method: PATCH, object: Contact }\n    calls: { first: 1, times: 2 }\n    respond: session_expired\n").unwrap();
    let mock = serve(&scenario);
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());

    let out = run(
        &db,
        &[
            "sync",
            "--bundle",
            "northwind-outfitters/production",
            "--source",
            "harness/fixtures/default",
            "--target",
            &mock.url,
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"], 660);
    let dead = report["dead_lettered"].as_u64().unwrap();
    assert!(dead >= 200, "the expired batch is dead-lettered: {report}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("s3cret"),
        "secrets never printed"
    );

    let list = run(
        &db,
        &["dlq", "list", "--code", "INVALID_SESSION_ID", "--json"],
    );
    let letters: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 200);

    let redrive = run(
        &db,
        &[
            "dlq",
            "redrive",
            "--bundle",
            "northwind-outfitters/production",
            "--target",
            &mock.url,
            "--code",
            "INVALID_SESSION_ID",
        ],
    );
    let text = String::from_utf8_lossy(&redrive.stdout);
    // The session is fine now: valid contacts land; those Salesforce rejects come back with history.
    assert!(
        text.starts_with("redrove 200 letter(s): "),
        "{text}{}",
        String::from_utf8_lossy(&redrive.stderr)
    );
    let after = run(
        &db,
        &["dlq", "list", "--code", "INVALID_SESSION_ID", "--json"],
    );
    let left: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert!(left.as_array().unwrap().is_empty(), "{left}");
    let all = run(&db, &["dlq", "list", "--object", "Contact", "--json"]);
    let contacts: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    let retried: Vec<&serde_json::Value> = contacts
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["history"].as_array().unwrap().is_empty())
        .collect();
    assert!(
        !retried.is_empty(),
        "a record that failed again keeps its earlier failure"
    );
    for l in retried {
        assert_eq!(l["history"][0]["error_code"], "INVALID_SESSION_ID");
        assert_eq!(
            l["letter"]["attempts"],
            l["history"][0]["attempts"].as_u64().unwrap() + 1
        );
    }
    assert_eq!(redrive.status.code(), Some(1), "some letters failed again");
}

#[test]
fn a_second_sync_skips_versions_already_applied() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("calm.yaml");
    std::fs::write(&scenario, "purpose: a calm org\nfaults: []\n").unwrap();
    let mock = serve(&scenario);
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let args = [
        "sync",
        "--bundle",
        "northwind-outfitters/production",
        "--source",
        "harness/fixtures/default",
        "--target",
        &mock.url,
        "--json",
    ];
    let first: serde_json::Value = serde_json::from_slice(&run(&db, &args).stdout).unwrap();
    assert_eq!(first["created"], 646);
    assert_eq!(first["already_synced"], 0);
    let second: serde_json::Value = serde_json::from_slice(&run(&db, &args).stdout).unwrap();
    // Every applied version is skipped; only the records Salesforce rejected are tried again.
    assert_eq!(second["already_synced"], 646, "{second}");
    assert_eq!(second["created"], 0);
    assert_eq!(second["updated"], 0);
    assert_eq!(second["dead_lettered"], 14);
    assert!(second["api_calls"].as_u64().unwrap() < first["api_calls"].as_u64().unwrap());
}
