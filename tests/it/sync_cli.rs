//! `syncgate sync` and `syncgate dlq` against `syncgate mock serve`, as a user runs them:
//! directory and table sources (SQLite, PostgreSQL), `--follow`, and a clean stop on SIGTERM.

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::served::{admin_get, root, serve, Served};

pub(crate) fn run(db: &str, args: &[&str]) -> Output {
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
    // Each letter says what was sent: the headers (never the token) and the version's key.
    let first = &letters[0]["letter"];
    assert_eq!(
        first["headers_sent"]["Sforce-Call-Options"],
        "client=syncgate"
    );
    assert!(first["headers_sent"].get("Authorization").is_none());
    assert!(
        first["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("northwind-outfitters/production|Contact|CON-"),
        "{first}"
    );

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
    // Every applied version is skipped, and so is every version Salesforce rejected for
    // good: it waits in the dead-letter queue for a redrive instead of costing a call again.
    assert_eq!(second["already_synced"], 646, "{second}");
    assert_eq!(second["already_dead_lettered"], 14, "{second}");
    assert_eq!(second["created"], 0);
    assert_eq!(second["updated"], 0);
    assert_eq!(second["dead_lettered"], 0);
    assert!(second["api_calls"].as_u64().unwrap() < first["api_calls"].as_u64().unwrap());
}

fn jsonl(dir: &Path, name: &str, lines: &[(&str, u64, &str)]) -> String {
    let feed = dir.join(name);
    std::fs::create_dir_all(&feed).unwrap();
    let text: String = lines
        .iter()
        .map(|(id, v, name)| {
            format!(
                "{{\"id\":\"{id}\",\"version\":{v},\"data\":{{\"company_name\":\"{name}\"}}}}\n"
            )
        })
        .collect();
    std::fs::write(feed.join("accounts.jsonl"), text).unwrap();
    feed.display().to_string()
}

/// Waits for `child` at most `limit`; kills it and fails if it is still running.
fn wait_within(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_redrive_never_sends_a_letter_whose_record_has_a_newer_version_applied() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("expiring.yaml");
    // The first Account batch meets a session that expires twice: refreshed once, then given up.
    std::fs::write(&scenario, "purpose: sessions expire twice in a row\nfaults:\n  - name: expired\n    match: { method: PATCH, object: Account }\n    calls: { first: 1, times: 2 }\n    respond: session_expired\n").unwrap();
    let mock = serve(&scenario);
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let sync = |source: &str| {
        run(
            &db,
            &[
                "sync",
                "--bundle",
                "northwind-outfitters/production",
                "--source",
                source,
                "--target",
                &mock.url,
                "--json",
            ],
        )
    };
    let first = jsonl(
        dir.path(),
        "v1",
        &[("CUST-1", 1, "One"), ("CUST-2", 1, "Two")],
    );
    let out = sync(&first);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dead_lettered"], 2, "{report}");
    // Version 2 of CUST-1 lands: its v1 letter is retired; CUST-2's stays queued.
    let second = jsonl(dir.path(), "v2", &[("CUST-1", 2, "Uno")]);
    let out = sync(&second);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = || org_names(&mock.url, "Account", "NW_Customer_Id__c");
    assert_eq!(names(), [("CUST-1".to_string(), "Uno".to_string())]);
    let list = |extra: &[&str]| -> Value {
        let mut args = vec!["dlq", "list", "--json"];
        args.extend_from_slice(extra);
        serde_json::from_slice(&run(&db, &args).stdout).unwrap()
    };
    let queued = list(&[]);
    assert_eq!(queued.as_array().unwrap().len(), 1, "{queued}");
    assert_eq!(queued[0]["letter"]["source_id"], "CUST-2");
    let all = list(&["--all"]);
    let retired = all
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["letter"]["source_id"] == "CUST-1")
        .unwrap_or_else(|| panic!("the superseded letter is kept: {all}"));
    assert_eq!(retired["status"], "superseded", "{retired}");
    assert_eq!(retired["superseded_by"], 2, "{retired}");
    assert_eq!(retired["letter"]["source_version"], 1, "{retired}");
    let text = String::from_utf8_lossy(&run(&db, &["dlq", "list"]).stdout).to_string();
    assert!(text.contains("1 superseded letter(s) not shown"), "{text}");

    // The redrive sends CUST-2 only, at a rate so low that a wait after the last batch
    // would never end, and says what it left alone and why.
    let redrive = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "dlq",
            "redrive",
            "--bundle",
            "northwind-outfitters/production",
            "--target",
            &mock.url,
            "--rate",
            "0.001",
            "--json",
        ])
        .current_dir(root())
        .env("SYNCGATE_DATABASE_URL", &db)
        .env("SYNCGATE_CLIENT_ID", "app")
        .env("SYNCGATE_CLIENT_SECRET", "s3cret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_within(redrive, Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["delivered"], 1, "{report}");
    assert_eq!(report["superseded"], 1, "{report}");
    // The org keeps v2 of CUST-1; CUST-2 arrived from its letter.
    assert_eq!(
        names(),
        [
            ("CUST-1".to_string(), "Uno".to_string()),
            ("CUST-2".into(), "Two".into())
        ]
    );
    let all = list(&["--all"]);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["status"], "superseded", "{all}");
    // A second redrive has nothing to send and says so in words.
    let again = run(
        &db,
        &[
            "dlq",
            "redrive",
            "--bundle",
            "northwind-outfitters/production",
            "--target",
            &mock.url,
        ],
    );
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.starts_with("redrove 0 letter(s)"), "{text}");
    assert!(
        text.contains("1 superseded letter(s): the same or a newer version of their record is already applied"),
        "{text}"
    );
    assert_eq!(names()[0], ("CUST-1".to_string(), "Uno".to_string()));
}

#[test]
fn bad_rates_store_urls_targets_and_ca_files_are_bad_input_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let expect_bad = |args: &[&str], needle: &str| {
        let out = run(&db, args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    let expect_bad_owned = |args: &[String], needle: &str| {
        expect_bad(&args.iter().map(String::as_str).collect::<Vec<_>>(), needle)
    };
    let redrive = |rate: &'static str| {
        [
            "dlq",
            "redrive",
            "--bundle",
            "northwind-outfitters/production",
            "--target",
            "http://127.0.0.1:9",
            "--rate",
            rate,
        ]
    };
    for rate in ["0", "-1", "NaN", "inf"] {
        expect_bad(&redrive(rate), "--rate must be a positive number");
    }
    expect_bad(&redrive("1e-300"), "--rate 1e-300 is too small");
    expect_bad(&redrive("fast"), "not a number");
    // Store URLs that name no store are refused, not opened as new empty stores.
    expect_bad(
        &["--database-url", "mysql://u@127.0.0.1/db", "dlq", "list"],
        "unknown store scheme `mysql`",
    );
    let missing = dir.path().join("no/such/dir/x.sqlite");
    let missing = format!("sqlite:{}", missing.display());
    expect_bad(
        &["--database-url", &missing, "dlq", "list"],
        "does not exist",
    );
    assert!(!dir.path().join("no").exists(), "nothing was created");
    expect_bad(
        &["--database-url", "", "dlq", "list"],
        "--database-url is empty",
    );
    // An unreachable PostgreSQL is not bad input, but its cause and address are printed.
    let out = run(
        &db,
        &[
            "--database-url",
            "postgres://postgres@127.0.0.1:1/test",
            "dlq",
            "list",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    // A target that is not an http(s) URL.
    let sync = |target: &str, extra: &[&str]| {
        let mut args = vec![
            "sync".to_string(),
            "--bundle".into(),
            "northwind-outfitters/production".into(),
            "--source".into(),
            "harness/fixtures/default".into(),
            "--target".into(),
            target.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    for (target, needle) in [
        ("not a url", "--target `not a url`: not a URL"),
        ("ftp://127.0.0.1/", "the scheme must be http or https"),
    ] {
        expect_bad_owned(&sync(target, &[]), needle);
    }
    // CA files: missing, empty, garbage.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let gone = dir.path().join("gone.pem");
    for (file, needle) in [
        (&empty, "the file is empty"),
        (&garbage, "no PEM certificate"),
        (&broken, "not a usable PEM certificate"),
        (&gone, "cannot read it"),
    ] {
        let f = file.display().to_string();
        expect_bad_owned(
            &sync("http://127.0.0.1:9", &["--ca-file", &f]),
            &format!("--ca-file {f}: {needle}"),
        );
    }
    // A JSONL line that is not UTF-8 is named by its line.
    let feed = dir.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    let mut bytes =
        b"{\"id\":\"CUST-1\",\"version\":1,\"data\":{\"company_name\":\"One\"}}\n".to_vec();
    bytes.extend_from_slice(
        b"{\"id\":\"CUST-2\",\"version\":1,\"data\":{\"company_name\":\"T\xffo\"}}\n",
    );
    std::fs::write(feed.join("accounts.jsonl"), bytes).unwrap();
    let src = feed.display().to_string();
    let mock = calm_mock(dir.path());
    let mut args = sync(&mock.url, &[]);
    args[4] = src;
    expect_bad_owned(&args, "accounts.jsonl:2");
}

/// The org's live records of `object`: external ID → Name.
fn org_names(base: &str, object: &str, ext: &str) -> Vec<(String, String)> {
    let state: Value = serde_json::from_str(&admin_get(base, "/__syncgate/state")).unwrap();
    let mut out: Vec<(String, String)> = state["objects"][object]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["IsDeleted"] != true)
        .map(|r| {
            (
                r[ext].as_str().unwrap_or_default().to_string(),
                r["Name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

pub(crate) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn spawn_sync(db: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(args)
        .current_dir(root())
        .env("SYNCGATE_DATABASE_URL", db)
        .env("SYNCGATE_CLIENT_ID", "app")
        .env("SYNCGATE_CLIENT_SECRET", "s3cret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn terminate(child: Child) -> (Option<i32>, Value) {
    // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), summary)
}

fn sqlite_source(dir: &Path, accounts: &[(&str, &str, &str)]) -> PathBuf {
    let path = dir.join("source.sqlite");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, updated_at TEXT NOT NULL, company_name TEXT);
         CREATE TABLE contacts (id TEXT PRIMARY KEY, updated_at TEXT NOT NULL, last_name TEXT);
         CREATE TABLE opportunities (id TEXT PRIMARY KEY, updated_at TEXT NOT NULL, name TEXT);",
    )
    .unwrap();
    for (id, at, name) in accounts {
        c.execute("INSERT INTO accounts VALUES (?1, ?2, ?3)", [id, at, name])
            .unwrap();
    }
    path
}

fn calm_mock(dir: &Path) -> Served {
    let scenario = dir.join("calm.yaml");
    std::fs::write(&scenario, "purpose: a calm org\nfaults: []\n").unwrap();
    serve(&scenario)
}

#[test]
fn follow_syncs_new_table_rows_each_tick_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mock = calm_mock(dir.path());
    let source = sqlite_source(
        dir.path(),
        &[
            ("CUST-1", "2026-11-20T09:00:00.000Z", "One"),
            ("CUST-2", "2026-11-20T09:00:00.000Z", "Two"),
        ],
    );
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let src = source.display().to_string();
    let child = spawn_sync(
        &db,
        &[
            "sync",
            "--bundle",
            "northwind-outfitters/production",
            "--source",
            &src,
            "--target",
            &mock.url,
            "--follow",
            "--poll",
            "100ms",
            "--json",
        ],
    );
    let names = || org_names(&mock.url, "Account", "NW_Customer_Id__c");
    wait_for("the first tick", || names().len() == 2);

    // The source adds a row in the same millisecond as the cursor and renames one.
    let c = rusqlite::Connection::open(&source).unwrap();
    c.execute_batch(
        "INSERT INTO accounts VALUES ('CUST-3', '2026-11-20T09:00:00.000Z', 'Three');
         UPDATE accounts SET company_name = 'Uno', updated_at = '2026-11-20T09:01:00.000Z' WHERE id = 'CUST-1';",
    )
    .unwrap();
    wait_for("the next tick", || {
        names()
            == [
                ("CUST-1".to_string(), "Uno".to_string()),
                ("CUST-2".into(), "Two".into()),
                ("CUST-3".into(), "Three".into()),
            ]
    });
    let (code, summary) = terminate(child);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["created"], 3, "{summary}");
    assert_eq!(summary["updated"], 1, "{summary}");
    // Each tick read only what changed since the cursor.
    assert_eq!(summary["records"], 4, "{summary}");
    assert_eq!(summary["already_synced"], 0, "{summary}");
}

#[test]
fn follow_on_a_directory_sends_only_new_versions() {
    let dir = tempfile::tempdir().unwrap();
    let mock = calm_mock(dir.path());
    let feed = dir.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    let file = feed.join("accounts.jsonl");
    std::fs::write(
        &file,
        "{\"id\":\"CUST-1\",\"version\":1,\"data\":{\"company_name\":\"One\"}}\n",
    )
    .unwrap();
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let src = feed.display().to_string();
    let child = spawn_sync(
        &db,
        &[
            "sync",
            "--bundle",
            "northwind-outfitters/production",
            "--source",
            &src,
            "--target",
            &mock.url,
            "--follow",
            "--poll",
            "100ms",
            "--json",
        ],
    );
    let names = || org_names(&mock.url, "Account", "NW_Customer_Id__c");
    wait_for("the first tick", || names().len() == 1);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    writeln!(
        f,
        "{{\"id\":\"CUST-1\",\"version\":3,\"data\":{{\"company_name\":\"Uno\"}}}}\n{{\"id\":\"CUST-2\",\"version\":1,\"data\":{{\"company_name\":\"Two\"}}}}"
    )
    .unwrap();
    drop(f);
    wait_for("the new versions", || {
        names()
            == [
                ("CUST-1".to_string(), "Uno".to_string()),
                ("CUST-2".into(), "Two".into()),
            ]
    });
    // A few idle ticks: nothing is sent again.
    std::thread::sleep(Duration::from_millis(400));
    // A line caught half-written fails its ticks without ending the follower; once the
    // writer finishes it, it is synced.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    write!(f, "{{\"id\":\"CUST-3\",\"vers").unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // A stale version arriving late must not overwrite the newer one.
    writeln!(
        f,
        "ion\":1,\"data\":{{\"company_name\":\"Three\"}}}}\n{{\"id\":\"CUST-1\",\"version\":2,\"data\":{{\"company_name\":\"Stale\"}}}}"
    )
    .unwrap();
    drop(f);
    wait_for("the finished line", || names().len() == 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(names()[0], ("CUST-1".to_string(), "Uno".to_string()));
    let (code, summary) = terminate(child);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(summary["created"], 3, "{summary}");
    assert_eq!(summary["updated"], 1, "{summary}");
    assert_eq!(summary["records"], 4, "{summary}");
    assert_eq!(summary["runs"], 3, "{summary}");
    assert!(summary["tick_failures"].as_u64().unwrap() >= 1, "{summary}");
}

#[test]
fn sigterm_mid_run_finishes_the_batch_in_flight_and_the_restart_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("slow.yaml");
    std::fs::write(
        &scenario,
        "purpose: slow writes\nfaults:\n  - name: slow\n    match: { method: PATCH }\n    respond: { latency: { fixed: 400ms } }\n",
    )
    .unwrap();
    let mock = serve(&scenario);
    let rows: Vec<(String, String, String)> = (0..1000)
        .map(|i| {
            (
                format!("CUST-{i:04}"),
                "2026-11-20T09:00:00.000Z".to_string(),
                format!("Account {i}"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let source = sqlite_source(dir.path(), &refs);
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let src = format!("sqlite:{}", source.display());
    let args = [
        "sync",
        "--bundle",
        "northwind-outfitters/production",
        "--source",
        &src,
        "--target",
        &mock.url,
        "--json",
    ];
    let child = spawn_sync(&db, &args);
    let names = || org_names(&mock.url, "Account", "NW_Customer_Id__c");
    wait_for("two batches", || names().len() >= 400);
    let (code, first) = terminate(child);
    assert_eq!(code, Some(0), "{first}");
    assert_eq!(first["interrupted"], true);
    let created = first["created"].as_u64().unwrap();
    assert!((400..1000).contains(&created), "{first}");
    // The batch in flight at the signal finished and was counted: the org holds exactly
    // what the summary says.
    assert_eq!(names().len() as u64, created, "{first}");

    let out = run(&db, &args);
    assert_eq!(out.status.code(), Some(0));
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["already_synced"], created, "{second}");
    assert_eq!(second["created"].as_u64().unwrap(), 1000 - created);
    assert_eq!(second["updated"], 0, "{second}");
    assert_eq!(names().len(), 1000);
}

#[test]
fn a_bad_source_spec_or_table_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let base = [
        "sync",
        "--bundle",
        "northwind-outfitters/production",
        "--target",
        "http://127.0.0.1:9",
        "--source",
    ];
    let out = run(&db, &[&base[..], &["nowhere.txt"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--source `nowhere.txt` is neither a directory, a SQLite database"),
        "{err}"
    );
    // A database without the contacts table the bundle reads.
    let path = dir.path().join("src.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE accounts (id TEXT, updated_at TEXT);")
        .unwrap();
    let mock = calm_mock(dir.path());
    let src = path.display().to_string();
    let out = run(
        &db,
        &[
            "sync",
            "--bundle",
            "northwind-outfitters/production",
            "--target",
            &mock.url,
            "--source",
            &src,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "no table `contacts`: create it with at least the columns `id` (text) and `updated_at`"
        ),
        "{err}"
    );
}

/// The same incremental sync from PostgreSQL tables (skipped without a local server,
/// failed on CI).
#[tokio::test]
async fn postgres_table_source_is_incremental_and_loses_no_tie() {
    let url = support::pg_url();
    let (client, conn) = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => {
            support::unreachable(
                "postgres_table_source_is_incremental_and_loses_no_tie",
                "PostgreSQL",
                &url,
                &e,
            );
            return;
        }
    };
    tokio::spawn(conn);
    let schema = support::unique_name("table_source");
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.accounts (id text PRIMARY KEY, updated_at timestamptz NOT NULL, company_name text, employees integer, vip boolean);
             CREATE TABLE {schema}.contacts (id text PRIMARY KEY, updated_at timestamptz NOT NULL, last_name text);
             CREATE TABLE {schema}.opportunities (id text PRIMARY KEY, updated_at timestamptz NOT NULL);
             INSERT INTO {schema}.accounts VALUES
               ('CUST-1', '2026-11-20 09:00:00.123456+00', 'One', 10, true),
               ('CUST-2', '2026-11-20 09:00:00.123456+00', 'Two', NULL, false),
               ('CUST-3', '2026-11-20 09:00:00.123456+00', 'Three', 30, NULL);"
        ))
        .await
        .unwrap();
    let source = format!(
        "{url}{}options=-csearch_path%3D{schema}",
        if url.contains('?') { "&" } else { "?" }
    );
    let dir = tempfile::tempdir().unwrap();
    let mock = calm_mock(dir.path());
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let args = [
        "sync",
        "--bundle",
        "northwind-outfitters/production",
        "--source",
        &source,
        "--target",
        &mock.url,
        "--page-size",
        "2",
        "--json",
    ];
    let result = std::panic::AssertUnwindSafe(async {
        // Pages of two split the three rows of one microsecond: the id breaks the tie.
        let first: Value = serde_json::from_slice(&run(&db, &args).stdout).unwrap();
        assert_eq!(first["created"], 3, "{first}");
        assert_eq!(first["runs"], 2, "{first}");
        client
            .batch_execute(&format!(
                "INSERT INTO {schema}.accounts VALUES ('CUST-4', '2026-11-20 09:00:00.123456+00', 'Four', 40, false);
                 UPDATE {schema}.accounts SET company_name = 'Deux', updated_at = '2026-11-20 09:05:00+00' WHERE id = 'CUST-2';"
            ))
            .await
            .unwrap();
        let second: Value = serde_json::from_slice(&run(&db, &args).stdout).unwrap();
        assert_eq!(
            second["records"], 2,
            "only the rows after the cursor: {second}"
        );
        assert_eq!(second["created"], 1, "{second}");
        assert_eq!(second["updated"], 1, "{second}");
        let names = org_names(&mock.url, "Account", "NW_Customer_Id__c");
        assert_eq!(
            names,
            [
                ("CUST-1".to_string(), "One".to_string()),
                ("CUST-2".into(), "Deux".into()),
                ("CUST-3".into(), "Three".into()),
                ("CUST-4".into(), "Four".into()),
            ]
        );
    });
    let outcome = futures_util::FutureExt::catch_unwind(result).await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The engine's progress hook: settled counts only grow, objects come parents first, and
/// the last report covers every record of the run.
#[tokio::test]
async fn the_progress_hook_follows_every_batch_to_the_end() {
    use std::sync::{Arc, Mutex};
    use syncgate::contract::Bundle;
    use syncgate::engine::client::{Credentials, Secret};
    use syncgate::engine::source::SourceSet;
    use syncgate::engine::{EngineConfig, Progress, Sync, Target};
    use syncgate::mock::{self, ClientCredentials, MockConfig, MockOrg};
    use syncgate::sim::{Clock, Seed, Timestamp};

    let bundle = Bundle::load(&root().join("contracts/northwind-outfitters/sandbox")).unwrap();
    let source = SourceSet::load_dir(&root().join("harness/fixtures/default")).unwrap();
    let clock = Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap());
    let creds = ClientCredentials::gate();
    let org = MockOrg::new(MockConfig {
        bundle: bundle.clone(),
        scenario: None,
        seed: Seed(1),
        clock: clock.clone(),
        clients: vec![creds.clone()],
    });
    let running = mock::spawn(org.clone(), 0).await.unwrap();
    let target = Target {
        login_url: running.base_url(),
        credentials: Credentials::client_credentials(
            creds.client_id.clone(),
            Secret::new(creds.client_secret.clone()),
        ),
        request_log: None,
        ca_pem: None,
    };
    let dlq = syncgate::store::MemoryStore::new();
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = seen.clone();
    let report = Sync::new(&bundle, EngineConfig::default(), clock, Seed(1), &dlq)
        .with_progress(Arc::new(move |p: &Progress| {
            sink.lock().unwrap().push(p.clone())
        }))
        .run(&source, &target)
        .await
        .unwrap();
    running.stop().await;
    let seen = seen.lock().unwrap();
    assert!(
        seen.windows(2).all(|w| w[0].settled <= w[1].settled),
        "{seen:?}"
    );
    assert_eq!(seen.last().unwrap().settled, report.records);
    assert_eq!(report.records, 660);
    let mut objects: Vec<&str> = seen.iter().map(|p| p.object.as_str()).collect();
    objects.dedup();
    assert_eq!(objects, ["Account", "Contact", "Opportunity"]);
    // One report after mapping each object, and one after each of its batches.
    let collections = org
        .journal()
        .iter()
        .filter(|j| j.path.contains("/composite/sobjects"))
        .count();
    assert_eq!(seen.len(), 3 + collections, "{seen:?}");
}

/// `--crm-outbox`: a sales rep's edits of CRM-owned fields come back to the source once each,
/// even when every change event is delivered twice; the engine's own writes never do; a second
/// run resumes from the stored replay ID and delivers nothing again.
#[test]
fn crm_changes_reach_the_outbox_once_and_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("reps.yaml");
    std::fs::write(
        &scenario,
        "purpose: reps edit CRM-owned fields while the sync runs
faults: []
events: { duplicate: 1.0 }
manual_edits:
  - { name: rep-1, object: Account, external_id: CUST-10001, after_calls: 2, set: { Account_Manager__c: Omar Haddad } }
  - { name: rep-2, object: Contact, external_id: CON-50001, after_calls: 3, set: { Do_Not_Call__c: true } }
",
    )
    .unwrap();
    let mock = serve(&scenario);
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let outbox = dir.path().join("crm.jsonl");
    let args = [
        "sync",
        "--bundle",
        "northwind-outfitters/production",
        "--source",
        "harness/fixtures/default",
        "--target",
        &mock.url,
        "--crm-outbox",
        outbox.to_str().unwrap(),
        "--json",
    ];
    let first: Value = serde_json::from_slice(&run(&db, &args).stdout).unwrap();
    let cdc = &first["crm_changes"];
    assert_eq!(cdc["changes_delivered"], 2, "{first}");
    assert!(cdc["duplicates_skipped"].as_u64().unwrap() > 0, "{cdc}");
    assert!(cdc["echoes_skipped"].as_u64().unwrap() > 0, "{cdc}");
    let lines: Vec<Value> = std::fs::read_to_string(&outbox)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(&str, &str, &Value)> = lines
        .iter()
        .map(|l| {
            (
                l["source_id"].as_str().unwrap(),
                l["field"].as_str().unwrap(),
                &l["value"],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("CUST-10001", "Account_Manager__c", &json!("Omar Haddad")),
            ("CON-50001", "Do_Not_Call__c", &json!(true)),
        ]
    );
    let second: Value = serde_json::from_slice(&run(&db, &args).stdout).unwrap();
    assert_eq!(second["crm_changes"]["changes_delivered"], 0, "{second}");
    assert_eq!(std::fs::read_to_string(&outbox).unwrap().lines().count(), 2);
}

/// The write requests of a journal (JSON lines) the engine's own client sent, as
/// (method, path, records) in order: what the org was asked to change.
fn writes_in(journal: impl Iterator<Item = Value>) -> Vec<(String, String, u64)> {
    journal
        .filter(|e| e["client"] == "syncgate")
        .filter(|e| {
            matches!(
                e["method"].as_str(),
                Some("POST" | "PATCH" | "PUT" | "DELETE")
            )
        })
        .filter(|e| {
            let path = e["path"].as_str().unwrap_or_default();
            !path.contains("/oauth2/") && !path.contains("/query")
        })
        .map(|e| {
            (
                e["method"].as_str().unwrap_or_default().to_string(),
                e["path"].as_str().unwrap_or_default().to_string(),
                e["records"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// `syncgate sync --follow` and the gate run one orchestration: on the same source, the
/// same bundle and a calm org, they ask the org for exactly the same writes.
#[test]
fn sync_follow_and_the_gate_send_the_same_writes() {
    let root = root();
    let registry = syncgate::contract::Registry::open(&root.join("contracts")).unwrap();
    let tenant = registry
        .select(&["northwind-outfitters".into()], &["production".into()])
        .unwrap()
        .remove(0);
    let bundle = registry.load(&tenant).unwrap();
    let scenario =
        syncgate::sim::Scenario::load(&root.join("harness/scenarios/baseline.yaml")).unwrap();
    let fixtures = syncgate::verify::gate::load_fixtures(
        std::slice::from_ref(&scenario),
        &root.join("harness/fixtures"),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = rt
        .block_on(syncgate::verify::gate::run_scenario(
            &bundle,
            &scenario,
            &fixtures,
            syncgate::sim::Seed(42),
            false,
        ))
        .unwrap();
    assert!(run.passed(), "{:?}", run.violations);
    let gate_writes = writes_in(run.journal.iter().map(|e| serde_json::to_value(e).unwrap()));
    assert!(gate_writes.len() >= 3, "{gate_writes:?}");

    let dir = tempfile::tempdir().unwrap();
    let mock = calm_mock(dir.path());
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let child = spawn_sync(
        &db,
        &[
            "sync",
            "--bundle",
            "northwind-outfitters/production",
            "--source",
            "harness/fixtures/default",
            "--target",
            &mock.url,
            "--follow",
            "--poll",
            "100ms",
            "--seed",
            "42",
            "--json",
        ],
    );
    let journal = || {
        writes_in(
            admin_get(&mock.url, "/__syncgate/journal")
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        )
    };
    wait_for("the follower's first tick", || {
        journal().len() >= gate_writes.len()
    });
    // A few idle ticks: a follower sends nothing more for a source that did not change.
    std::thread::sleep(Duration::from_millis(500));
    let (code, summary) = terminate(child);
    assert_eq!(code, Some(1), "dead letters are expected: {summary}");
    assert_eq!(journal(), gate_writes);
}

#[tokio::test]
async fn redrive_skips_a_letter_the_dedupe_store_knows_was_overtaken() {
    use syncgate::contract::Bundle;
    use syncgate::engine::client::{Credentials, SalesforceClient, Secret};
    use syncgate::engine::dlq::{DeadLetter, ErrorClass};
    use syncgate::engine::redrive;
    use syncgate::sim::{Clock, Timestamp};
    use syncgate::store::{
        AppliedVersion, DeadLetterStore, DedupeStore, DlqFilter, LetterStatus, MemoryStore,
    };

    let bundle = Bundle::load(&root().join("contracts/northwind-outfitters/production")).unwrap();
    let tenant = format!("{}/{}", bundle.partner, bundle.tenant);
    let now = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
    let clock = Clock::virtual_at(now);
    // Letters queued in one store (as before this build kept applied versions), the applied
    // versions in another: the redrive asks the dedupe store before sending anything.
    let letters = MemoryStore::new();
    let applied = MemoryStore::new();
    letters
        .dlq_append(&DeadLetter {
            tenant: tenant.clone(),
            object: "Account".into(),
            source_id: "CUST-1".into(),
            source_version: 1,
            payload: json!({"NW_Customer_Id__c": "CUST-1", "Name": "Stale"}),
            class: ErrorClass::RetriesExhausted,
            error_code: "SERVER_UNAVAILABLE".into(),
            message: "m".into(),
            attempts: 8,
            correlation_id: None,
            first_failed_at: now,
            last_failed_at: now,
            idempotency_key: format!("{tenant}|Account|CUST-1|upsert|1"),
            headers_sent: Default::default(),
        })
        .await
        .unwrap();
    let key = format!("{tenant}|Account|CUST-1|upsert|2");
    applied
        .mark_applied(
            &AppliedVersion {
                key: &key,
                tenant: &tenant,
                object: "Account",
                source_id: "CUST-1",
                version: 2,
            },
            now,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    // Nothing listens here: a request would fail the redrive.
    let mut client = SalesforceClient::new(
        "http://127.0.0.1:9",
        &bundle.api_version,
        Credentials::client_credentials("app", Secret::new("s3cret")),
        clock.clone(),
        "syncgate",
        "redrive",
    );
    let report = redrive::redrive(
        &bundle,
        &mut client,
        &letters,
        &applied,
        &DlqFilter::default(),
        Some(10.0),
        &clock,
    )
    .await
    .unwrap();
    assert_eq!(report.superseded, 1, "{report:?}");
    assert_eq!((report.sent, report.failed_again), (0, 0), "{report:?}");
    assert_eq!(client.calls(), 0);
    let kept = letters.dlq_list(&DlqFilter::default()).await.unwrap();
    assert_eq!(kept[0].status, LetterStatus::Superseded);
    assert_eq!(kept[0].superseded_by, Some(2));
}

/// `sync --engine-config` runs the engine with the file's settings: with `batch_size = 50`
/// the batch a session failure dead-letters holds 50 records, not 200; a bad file is exit 2.
#[test]
fn sync_reads_the_engine_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("expiring.yaml");
    std::fs::write(&scenario, "purpose: sessions expire twice in a row\nfaults:\n  - name: expired\n    match: { method: PATCH, object: Contact }\n    calls: { first: 1, times: 2 }\n    respond: session_expired\n").unwrap();
    let config = dir.path().join("engine.toml");
    std::fs::write(&config, "[engine]\nbatch_size = 50\n").unwrap();
    let mock = serve(&scenario);
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let sync = |config: &Path| {
        run(
            &db,
            &[
                "sync",
                "--bundle",
                "northwind-outfitters/production",
                "--source",
                "harness/fixtures/default",
                "--target",
                &mock.url,
                "--engine-config",
                config.to_str().unwrap(),
                "--json",
            ],
        )
    };
    let out = sync(&config);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = run(
        &db,
        &["dlq", "list", "--code", "INVALID_SESSION_ID", "--json"],
    );
    let letters: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 50);

    std::fs::write(&config, "[engine]\nbatch_size = \"fifty\"\n").unwrap();
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2:14: `engine.batch_size`", config.display())),
        "{err}"
    );
}

/// SIGTERM during a `Retry-After` wait of an hour ends `sync` within a second: the wait is
/// cut short, the next request's fence stops the run, nothing is committed, and the summary
/// says it stopped early.
#[test]
fn sigterm_during_a_retry_after_wait_ends_the_sync_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("storm.yaml");
    std::fs::write(
        &scenario,
        "purpose: throttled for an hour\nfaults:\n  - name: storm\n    match: { method: PATCH }\n    calls: { first: 1, times: 1 }\n    respond:\n      rate_limited: { retry_after: 3600s }\n",
    )
    .unwrap();
    let mock = serve(&scenario);
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let child = spawn_sync(
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
    wait_for("the 429", || {
        admin_get(&mock.url, "/__syncgate/journal").contains("\"status\":429")
    });
    // The engine is now waiting an hour for Retry-After.
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let (code, summary) = terminate(child);
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // 1: records the contract rejects were dead-lettered before the first call.
    assert!(matches!(code, Some(0 | 1)), "{code:?} {summary}");
    assert_eq!(summary["interrupted"], true, "{summary}");
    let writes = admin_get(&mock.url, "/__syncgate/journal")
        .lines()
        .filter(|l| l.contains("\"PATCH\""))
        .count();
    assert_eq!(writes, 1, "nothing is sent after the stop");
}
