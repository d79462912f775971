//! Crash safety of `syncgate sync` from a SQLite table source: the process is SIGKILLed at
//! different points of a run against `syncgate mock serve`, started again, and the org must
//! end with every source record exactly once, at its latest values.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::served::{admin_get, root, serve, Served};

const ACCOUNTS: usize = 800;
const CONTACTS: usize = 400;
const TOTAL: usize = ACCOUNTS + CONTACTS;

/// The mock with every collections call answered 400 ms late, so a run takes seconds.
fn serve_slow(dir: &Path) -> Served {
    let scenario = dir.join("slow.yaml");
    std::fs::write(
        &scenario,
        "purpose: every write is slow\nfaults:\n  - name: slow\n    match: { method: PATCH }\n    respond: { latency: { fixed: 400ms } }\n",
    )
    .unwrap();
    serve(&scenario)
}

/// Collections calls the mock has answered.
fn collection_calls(base: &str) -> usize {
    admin_get(base, "/__syncgate/journal")
        .lines()
        .filter(|l| l.contains("/composite/sobjects"))
        .count()
}

/// The org's records of `object`, by external ID (each a list, to see duplicates).
fn org_records(base: &str, object: &str, ext: &str) -> BTreeMap<String, Vec<Value>> {
    let state: Value = serde_json::from_str(&admin_get(base, "/__syncgate/state")).unwrap();
    let mut by_ext: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in state["objects"][object].as_array().unwrap() {
        if r["IsDeleted"] == true {
            continue;
        }
        let key = r[ext].as_str().unwrap_or("<none>").to_string();
        by_ext.entry(key).or_default().push(r.clone());
    }
    by_ext
}

/// A source database: `ACCOUNTS` accounts and `CONTACTS` contacts (each under an account),
/// an empty opportunities table; all changed within a few milliseconds, many sharing one.
fn source_db(dir: &Path) -> PathBuf {
    let path = dir.join("source.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, updated_at TEXT NOT NULL, company_name TEXT, employees INTEGER);
         CREATE TABLE contacts (id TEXT PRIMARY KEY, updated_at TEXT NOT NULL, account_no TEXT, first_name TEXT, last_name TEXT);
         CREATE TABLE opportunities (id TEXT PRIMARY KEY, updated_at TEXT NOT NULL, name TEXT);",
    )
    .unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in 0..ACCOUNTS {
        tx.execute(
            "INSERT INTO accounts VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                format!("CUST-{i:05}"),
                format!("2026-11-20T09:00:00.{:03}Z", i % 7),
                format!("Account {i}"),
                i as i64
            ],
        )
        .unwrap();
    }
    for i in 0..CONTACTS {
        tx.execute(
            "INSERT INTO contacts VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                format!("CON-{i:05}"),
                format!("2026-11-20T09:00:00.{:03}Z", i % 5),
                format!("CUST-{:05}", i % ACCOUNTS),
                "Ada",
                format!("Contact {i}")
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    path
}

fn sync_cmd(db: &str, source: &Path, target: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_syncgate"));
    cmd.args([
        "sync",
        "--bundle",
        "northwind-outfitters/production",
        "--target",
        target,
        "--json",
        "--seed",
        "7",
        "--source",
    ])
    .arg(format!("sqlite:{}", source.display()))
    .args(extra)
    .current_dir(root())
    .env("SYNCGATE_DATABASE_URL", db)
    .env("SYNCGATE_CLIENT_ID", "app")
    .env("SYNCGATE_CLIENT_SECRET", "s3cret");
    cmd
}

fn finish(out: Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Starts a sync, SIGKILLs it once the mock has answered `calls` collections calls, and
/// returns how many records the org holds then.
fn run_and_kill(mock: &Served, db: &str, source: &Path, calls: usize, extra: &[&str]) -> usize {
    let mut child = sync_cmd(db, source, &mock.url, extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while collection_calls(&mock.url) < calls {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before {calls} calls"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no handler runs, nothing is flushed or committed.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    org_records(&mock.url, "Account", "NW_Customer_Id__c").len()
        + org_records(&mock.url, "Contact", "NW_Contact_Id__c").len()
}

/// Every source row is in the org exactly once, with the source's latest values, and each
/// contact hangs under its account.
fn assert_org_matches_source(base: &str, source: &Path) {
    let accounts = org_records(base, "Account", "NW_Customer_Id__c");
    let contacts = org_records(base, "Contact", "NW_Contact_Id__c");
    let dupes: Vec<&String> = accounts
        .iter()
        .chain(&contacts)
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(dupes.is_empty(), "duplicated external IDs: {dupes:?}");
    assert_eq!(accounts.len(), ACCOUNTS);
    assert_eq!(contacts.len(), CONTACTS);
    let c = rusqlite::Connection::open(source).unwrap();
    let mut stmt = c
        .prepare("SELECT id, company_name, employees FROM accounts")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, name, employees) = row.unwrap();
        let org = &accounts[&id][0];
        assert_eq!(org["Name"], name.as_str(), "{id}");
        assert_eq!(org["NumberOfEmployees"], employees, "{id}");
    }
    let account_ids: BTreeMap<String, String> = accounts
        .iter()
        .map(|(ext, v)| (v[0]["Id"].as_str().unwrap().to_string(), ext.clone()))
        .collect();
    let mut stmt = c
        .prepare("SELECT id, account_no, last_name FROM contacts")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, account, last) = row.unwrap();
        let org = &contacts[&id][0];
        assert_eq!(org["LastName"], last.as_str(), "{id}");
        let parent = org["AccountId"].as_str().unwrap();
        assert_eq!(account_ids[parent], account, "{id}'s account");
    }
}

/// Kill after `calls` collections calls (one page: the cursor is not committed when the
/// kill comes), change some rows, restart, and check the org.
fn kill_and_resume(calls: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mock = serve_slow(dir.path());
    let source = source_db(dir.path());
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());

    let in_org = run_and_kill(&mock, &db, &source, calls, &[]);
    assert!(
        in_org >= (calls - 1) * 200 && in_org < TOTAL,
        "{in_org} records in the org after {calls} calls"
    );
    // While the engine was down, the source changed 30 accounts (some applied, some not).
    let c = rusqlite::Connection::open(&source).unwrap();
    c.execute(
        "UPDATE accounts SET company_name = company_name || ' (renamed)', employees = employees + 1000000, \
         updated_at = '2026-11-20T10:00:00.000Z' WHERE CAST(substr(id, 6) AS INTEGER) % 27 = 0",
        [],
    )
    .unwrap();

    let second = finish(sync_cmd(&db, &source, &mock.url, &[]).output().unwrap());
    assert_eq!(second["records"], TOTAL, "{second}");
    // What the first run recorded as applied is skipped: at least every batch answered
    // before the one in flight at the kill.
    let skipped = second["already_synced"].as_u64().unwrap() as usize;
    assert!(skipped >= (calls - 1) * 200 - 30, "{second}");
    // Nothing the first run created is created again.
    assert_eq!(
        second["created"].as_u64().unwrap() as usize,
        TOTAL - in_org,
        "{second}"
    );
    assert_eq!(second["dead_lettered"], 0, "{second}");
    assert_org_matches_source(&mock.url, &source);

    // A third run has nothing left to do: the cursor moved past every row.
    let third = finish(sync_cmd(&db, &source, &mock.url, &[]).output().unwrap());
    assert_eq!(third["records"], 0, "{third}");
    assert_eq!(third["api_calls"], 0, "{third}");
}

#[test]
fn killed_after_the_first_batches_resumes_without_duplicates() {
    kill_and_resume(2);
}

#[test]
fn killed_in_the_contacts_resumes_without_duplicates() {
    // Four Account batches done, the Contacts underway.
    kill_and_resume(5);
}

#[test]
fn killed_after_committed_pages_resumes_from_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mock = serve_slow(dir.path());
    let source = source_db(dir.path());
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    // Pages of 300 rows (two calls each): the cursor is committed after each page.
    let page = ["--page-size", "300"];

    let in_org = run_and_kill(&mock, &db, &source, 5, &page);
    assert!(in_org >= 800, "{in_org}");
    let second = finish(sync_cmd(&db, &source, &mock.url, &page).output().unwrap());
    let records = second["records"].as_u64().unwrap() as usize;
    // Committed pages are not read again; the page in flight is, and its applied records skipped.
    assert!(
        records <= TOTAL - 600,
        "the cursor resumed after the committed pages: {second}"
    );
    assert_eq!(
        second["created"].as_u64().unwrap() as usize,
        TOTAL - in_org,
        "{second}"
    );
    assert_eq!(
        records,
        second["created"].as_u64().unwrap() as usize
            + second["updated"].as_u64().unwrap() as usize
            + second["already_synced"].as_u64().unwrap() as usize,
        "{second}"
    );
    assert_org_matches_source(&mock.url, &source);
    let ids: BTreeSet<String> = org_records(&mock.url, "Account", "NW_Customer_Id__c")
        .into_keys()
        .collect();
    assert_eq!(ids.len(), ACCOUNTS);
}
