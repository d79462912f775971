//! A run that cannot go on forever: `syncgate sync` against `mock serve` orgs that never
//! get better stops at its deadline, its retry budget or a `Retry-After` too long (exit 1
//! and a message naming the `[engine]` key), and SIGTERM ends every kind of wait within a
//! second (backoff, breaker cool-down, daily window, rate limiter; `Retry-After` is
//! `sync_cli::sigterm_during_a_retry_after_wait_ends_the_sync_within_a_second`).

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::served::{admin_get, serve};
use crate::sync_cli::{run, spawn_sync, wait_for};

/// A scenario file and an engine configuration file in `dir`.
fn setup(dir: &Path, scenario: &str, engine: &str) -> (std::path::PathBuf, String, String) {
    let scenario_path = dir.join("scenario.yaml");
    std::fs::write(&scenario_path, scenario).unwrap();
    let config = dir.join("syncgate.toml");
    std::fs::write(&config, format!("[engine]\n{engine}")).unwrap();
    let db = format!("sqlite:{}", dir.join("state.sqlite").display());
    (scenario_path, config.display().to_string(), db)
}

fn sync_args<'a>(url: &'a str, config: &'a str) -> Vec<&'a str> {
    vec![
        "sync",
        "--bundle",
        "northwind-outfitters/production",
        "--source",
        "harness/fixtures/default",
        "--target",
        url,
        "--engine-config",
        config,
        "--seed",
        "7",
        "--json",
    ]
}

const ALWAYS_503: &str = "purpose: the org is down for writes\nfaults:\n  - name: down\n    match: { method: PATCH }\n    respond: server_unavailable\n";

#[test]
fn sync_against_an_org_that_only_answers_5xx_stops_by_its_deadline_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (scenario, config, db) = setup(
        dir.path(),
        ALWAYS_503,
        "run_deadline = \"2s\"\nbackoff_base = \"100ms\"\nbackoff_cap = \"400ms\"\nbreaker_cooldown = \"300ms\"\nretry_budget = 1000\n",
    );
    let mock = serve(&scenario);
    let started = Instant::now();
    let out = run(&db, &sync_args(&mock.url, &config));
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the run reached its deadline (`run_deadline` = 2s"),
        "{err}"
    );
    // Stopped by the deadline (2 s), not by 8 attempts of every batch.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        summary["error"]
            .as_str()
            .unwrap_or("")
            .contains("run_deadline"),
        "{summary}"
    );
    assert_eq!(summary["created"], 0, "{summary}");
    assert!(summary["retries"].as_u64().unwrap() >= 2, "{summary}");
    // The breaker opened (5 failures in a row) and the report says so.
    assert!(
        summary["breaker_opened"].as_u64().unwrap() >= 1,
        "{summary}"
    );
}

const HANGS: &str = "purpose: the org holds every write for ten minutes\nfaults:\n  - name: hung\n    match: { method: PATCH }\n    respond: { timeout: { after: 10m } }\n";

#[test]
fn a_request_the_org_never_answers_ends_at_the_deadline_not_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (scenario, config, db) = setup(dir.path(), HANGS, "run_deadline = \"2s\"\n");
    let mock = serve(&scenario);
    let started = Instant::now();
    let out = run(&db, &sync_args(&mock.url, &config));
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the run reached its deadline (`run_deadline` = 2s")
            && err.contains("waiting for the org to answer"),
        "{err}"
    );
    // The first write hangs for 10 minutes on the mock; the run ends at its 2 s deadline.
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[test]
fn the_retry_budget_stops_the_run_after_that_many_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (scenario, config, db) = setup(
        dir.path(),
        ALWAYS_503,
        "retry_budget = 3\nbackoff_base = \"1ms\"\nbackoff_cap = \"1ms\"\nbreaker_threshold = 0\n",
    );
    let mock = serve(&scenario);
    let out = run(&db, &sync_args(&mock.url, &config));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("spent its whole retry budget (`retry_budget` = 3"),
        "{err}"
    );
    assert!(err.contains("last error: SERVER_UNAVAILABLE"), "{err}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["retries"], 3, "{summary}");
    let writes = admin_get(&mock.url, "/__syncgate/journal")
        .lines()
        .filter(|l| l.contains("\"PATCH\""))
        .count();
    assert_eq!(writes, 4, "the first attempt and three retries");
}

const YEAR_RETRY_AFTER: &str = "purpose: come back in a year\nfaults:\n  - name: year\n    match: { method: PATCH }\n    calls: { first: 1, times: 1 }\n    respond:\n      rate_limited: { retry_after: 31536000s }\n";

#[test]
fn a_retry_after_of_a_year_stops_the_run_or_dead_letters_the_batch_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (scenario, config, db) = setup(dir.path(), YEAR_RETRY_AFTER, "");
    let mock = serve(&scenario);
    let started = Instant::now();
    let out = run(&db, &sync_args(&mock.url, &config));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        err.contains("the org asked to wait 8760h (Retry-After after TOO_MANY_REQUESTS), longer than `max_retry_after` = 1h; stopping"),
        "{err}"
    );

    // Dead-letter instead: the batch goes to the DLQ and the run goes on.
    let dir = tempfile::tempdir().unwrap();
    let (scenario, config, db) = setup(
        dir.path(),
        YEAR_RETRY_AFTER,
        "max_retry_after = \"10m\"\non_long_retry_after = \"dead-letter\"\n",
    );
    let mock = serve(&scenario);
    let out = run(&db, &sync_args(&mock.url, &config));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary.get("error").is_none(), "{summary}");
    assert!(summary["created"].as_u64().unwrap() > 0, "{summary}");
    let letters = run(&db, &["dlq", "list", "--json"]);
    let letters = String::from_utf8_lossy(&letters.stdout);
    assert!(
        letters.contains("longer than `max_retry_after` = 10m; dead-lettered"),
        "{letters}"
    );
}

/// SIGTERM, then the JSON summary, stderr and how long the process took to end.
fn terminate(child: Child) -> (Option<i32>, Value, String, Duration) {
    let asked = Instant::now();
    // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let took = asked.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}): {}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), summary, stderr, took)
}

fn data_requests(url: &str) -> usize {
    admin_get(url, "/__syncgate/journal")
        .lines()
        .filter(|l| l.contains("/services/data/"))
        .count()
}

/// Starts a sync, waits until `ready` holds for the mock's journal, lets the engine settle
/// into its wait, sends SIGTERM and checks the process ended within a second, interrupted,
/// having sent no data request after the signal.
fn sigterm_during(scenario: &str, engine: &str, ready: fn(&str) -> bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (scenario, config, db) = setup(dir.path(), scenario, engine);
    let mock = serve(&scenario);
    let child = spawn_sync(&db, &sync_args(&mock.url, &config));
    wait_for("the engine to start waiting", || {
        ready(&admin_get(&mock.url, "/__syncgate/journal"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let before = data_requests(&mock.url);
    let (code, summary, stderr, took) = terminate(child);
    assert!(took < Duration::from_secs(1), "took {took:?}: {stderr}");
    assert!(matches!(code, Some(0 | 1)), "{code:?} {summary} {stderr}");
    assert_eq!(summary["interrupted"], true, "{summary} {stderr}");
    assert_eq!(
        data_requests(&mock.url),
        before,
        "nothing is sent after the stop"
    );
    stderr
}

#[test]
fn sigterm_during_a_backoff_ends_the_sync_within_a_second() {
    sigterm_during(
        ALWAYS_503,
        "backoff_base = \"1h\"\nbackoff_cap = \"1h\"\nbreaker_threshold = 0\n",
        |journal| journal.contains("\"status\":503"),
    );
}

#[test]
fn sigterm_during_a_breaker_cooldown_ends_the_sync_within_a_second() {
    sigterm_during(
        ALWAYS_503,
        "backoff_base = \"1ms\"\nbackoff_cap = \"1ms\"\nbreaker_threshold = 1\nbreaker_cooldown = \"1h\"\n",
        |journal| journal.contains("\"status\":503"),
    );
}

#[test]
fn sigterm_during_a_wait_for_the_daily_window_ends_the_sync_within_a_second_and_the_wait_was_announced(
) {
    let stderr = sigterm_during(
        "purpose: the daily budget is spent\nfaults:\n  - name: spent\n    match: { method: PATCH }\n    respond: request_limit_exceeded\n",
        "",
        |journal| journal.contains("\"status\":403"),
    );
    assert!(
        stderr.contains("REQUEST_LIMIT_EXCEEDED: waiting ")
            && stderr.contains("for the next daily window (opens ")
            && stderr.contains("T00:00:00"),
        "{stderr}"
    );
}

#[test]
fn sigterm_during_a_rate_limiter_wait_ends_the_sync_within_a_second() {
    sigterm_during(
        "purpose: no faults\nfaults: []\n",
        "rate_per_sec = 0.001\nburst = 1\n",
        |journal| journal.contains("/services/data/"),
    );
}

#[test]
fn sync_json_reports_the_bulk_jobs_and_polls_that_ran() {
    let dir = tempfile::tempdir().unwrap();
    let (scenario, config, db) = setup(
        dir.path(),
        "purpose: no faults\nfaults: []\n",
        "bulk_threshold = 10\nbulk_poll_interval = \"50ms\"\nbulk_poll_cap = \"100ms\"\n",
    );
    let mock = serve(&scenario);
    let out = run(&db, &sync_args(&mock.url, &config));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let journal = admin_get(&mock.url, "/__syncgate/journal");
    let jobs_created = journal
        .lines()
        .filter(|l| l.contains("\"POST\"") && l.contains("/jobs/ingest\""))
        .count();
    assert!(jobs_created >= 1, "{journal}");
    assert_eq!(summary["bulk_jobs"], jobs_created, "{summary}");
    let polls = journal
        .lines()
        .filter(|l| l.contains("\"GET\"") && l.contains("/jobs/ingest/") && !l.contains("Results"))
        .count();
    assert!(polls >= jobs_created, "{journal}");
    assert_eq!(summary["bulk_polls"], polls, "{summary}");
    assert_eq!(summary["breaker_opened"], 0, "{summary}");
}

#[test]
fn mock_serve_applies_the_scenarios_org_fields_or_refuses_them() {
    // The partner made Account.Region__c required: creates without it are rejected.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let mock = serve(Path::new(
        "harness/scenarios/partner-adds-required-field.yaml",
    ));
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
    let out = run(&db, &args);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let letters = run(&db, &["dlq", "list", "--json"]);
    let letters = String::from_utf8_lossy(&letters.stdout);
    assert!(
        letters.contains("REQUIRED_FIELD_MISSING") && letters.contains("Region__c"),
        "{summary} {letters}"
    );

    // An org field on an object the bundle does not sync is refused, naming the file.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "purpose: bad\norg_fields:\n  Invoice__c.Total__c: { type: string }\nfaults: []\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "mock",
            "serve",
            "--bundle",
            "northwind-outfitters/production",
            "--scenario",
        ])
        .arg(&bad)
        .current_dir(crate::support::served::root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.yaml") && err.contains("`org_fields` names Invoice__c"),
        "{err}"
    );
}

#[test]
fn mock_serve_keeps_a_bounded_journal_and_counts_every_request() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "mock",
            "serve",
            "--bundle",
            "northwind-outfitters/production",
            "--journal-limit",
            "5",
        ])
        .current_dir(crate::support::served::root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mock = crate::support::served::Served {
        child,
        url: line.split_whitespace().next().unwrap().to_string(),
    };
    // Twelve API requests (unauthenticated: each answered 401 and journaled).
    for _ in 0..12 {
        let host = mock.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(host).unwrap();
        use std::io::{Read, Write};
        write!(
            s,
            "GET /services/data/v62.0/sobjects HTTP/1.0\r\nHost: {host}\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
    }
    let journal = admin_get(&mock.url, "/__syncgate/journal");
    let seqs: Vec<u64> = journal
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        seqs,
        vec![8, 9, 10, 11, 12],
        "the last five, numbered in full"
    );
    let state: Value = serde_json::from_str(&admin_get(&mock.url, "/__syncgate/state")).unwrap();
    assert_eq!(state["requests"], 12, "{state}");
    assert_eq!(state["journal"]["dropped"], 7, "{state}");
    assert_eq!(state["journal"]["kept"], 5, "{state}");
}

/// SIGTERM while the change-event consumer waits to retry the Pub/Sub API (here a port
/// nobody listens on, so every attempt fails and backs off for seconds) ends `sync`
/// within a second, as a stop during the engine's own waits does; the summary says it was
/// interrupted and the consumer's replay ID stays where it was.
#[test]
fn sigterm_during_the_change_event_consumers_backoff_ends_the_sync_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (scenario, config, db) = setup(dir.path(), "purpose: no faults\nfaults: []\n", "");
    let mock = serve(&scenario);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let outbox = dir.path().join("outbox.jsonl");
    let mut args = sync_args(&mock.url, &config);
    args.extend([
        "--crm-outbox",
        outbox.to_str().unwrap(),
        "--pubsub-url",
        &nobody,
    ]);
    let child = spawn_sync(&db, &args);
    // The engine's writes come first; the consumer starts once the last object is sent.
    wait_for("the engine to send every object", || {
        admin_get(&mock.url, "/__syncgate/journal").contains("/Opportunity/")
    });
    // Into the consumer's retries (0.5 s, 1 s, 2 s, 4 s, 8 s between attempts).
    std::thread::sleep(Duration::from_millis(2500));
    let (code, summary, stderr, took) = terminate(child);
    assert!(took < Duration::from_secs(1), "took {took:?}: {stderr}");
    assert!(matches!(code, Some(0 | 1)), "{code:?} {summary} {stderr}");
    assert_eq!(summary["interrupted"], true, "{summary} {stderr}");
    assert!(summary["created"].as_u64().unwrap() > 0, "{summary}");
}
