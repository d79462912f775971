//! Tests of `table_source`.

use super::*;
use crate::store::MemoryStore;

fn db(dir: &Path, sql: &str) -> PathBuf {
    let path = dir.join("source.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(sql).unwrap();
    path
}

const SCHEMA: &str = "CREATE TABLE accounts (id TEXT PRIMARY KEY, updated_at TEXT NOT NULL, \
    company_name TEXT, employees INTEGER, revenue REAL, active BOOLEAN, deleted BOOLEAN);";

async fn source(path: &Path) -> TableSource {
    TableSource::open(&TableDb::Sqlite(path.to_path_buf()), "p/t")
        .await
        .unwrap()
}

fn ids(pull: &Pull, table: &str) -> Vec<String> {
    pull.set.entities[table]
        .iter()
        .map(|r| r.id.clone())
        .collect()
}

#[tokio::test]
async fn typed_columns_become_json_and_reserved_ones_are_taken_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(
        dir.path(),
        &format!("{SCHEMA} INSERT INTO accounts VALUES ('A-1', '2026-11-20T09:00:00.250Z', 'Acme', 12, 1.5, 1, 0), \
         ('A-2', '2026-11-20T09:00:01.000Z', NULL, NULL, NULL, 0, 1);"),
    );
    let src = source(&path).await;
    let store = MemoryStore::new();
    let pull = src.pull(&["accounts"], &store, 100).await.unwrap();
    let recs = &pull.set.entities["accounts"];
    assert_eq!(recs.len(), 2);
    let a = &recs[0];
    assert_eq!(a.id, "A-1");
    assert_eq!(
        a.version, 1_795_165_200_250,
        "version is updated_at in epoch ms"
    );
    assert_eq!(a.changed_at.unwrap().to_iso(), "2026-11-20T09:00:00.250Z");
    assert!(!a.deleted);
    assert_eq!(
        Value::Object(a.data.clone()),
        serde_json::json!({"company_name": "Acme", "employees": 12, "revenue": 1.5, "active": true})
    );
    assert!(recs[1].deleted);
    assert_eq!(
        recs[1].data["company_name"],
        Value::Null,
        "NULL is an explicit null"
    );
    assert!(!pull.more);
}

#[tokio::test]
async fn incremental_pull_returns_only_rows_changed_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    // Three rows in the same millisecond, split by the page: the tie is broken by id.
    let path = db(
        dir.path(),
        &format!(
            "{SCHEMA} INSERT INTO accounts (id, updated_at) VALUES \
         ('B', '2026-11-20T09:00:00.000Z'), ('A', '2026-11-20T09:00:00.000Z'), \
         ('C', '2026-11-20T09:00:00.000Z'), ('D', '2026-11-20T09:00:00.001Z');"
        ),
    );
    let src = source(&path).await;
    let store = MemoryStore::new();

    let first = src.pull(&["accounts"], &store, 2).await.unwrap();
    assert_eq!(ids(&first, "accounts"), ["A", "B"]);
    assert!(first.more);
    // Not committed: the same rows again.
    let again = src.pull(&["accounts"], &store, 2).await.unwrap();
    assert_eq!(ids(&again, "accounts"), ["A", "B"]);
    src.commit(&first, &store).await.unwrap();

    let second = src.pull(&["accounts"], &store, 2).await.unwrap();
    assert_eq!(
        ids(&second, "accounts"),
        ["C", "D"],
        "C shares B's millisecond"
    );
    src.commit(&second, &store).await.unwrap();
    let empty = src.pull(&["accounts"], &store, 2).await.unwrap();
    assert_eq!(empty.rows, 0);
    assert!(empty.pending.is_empty());

    // The source changes A again and adds E in D's millisecond: exactly those come back.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "UPDATE accounts SET updated_at = '2026-11-20T09:05:00.000Z', company_name = 'A2' WHERE id = 'A'; \
         INSERT INTO accounts (id, updated_at) VALUES ('E', '2026-11-20T09:00:00.001Z');",
    )
    .unwrap();
    let third = src.pull(&["accounts"], &store, 10).await.unwrap();
    assert_eq!(ids(&third, "accounts"), ["E", "A"]);
    assert_eq!(third.set.entities["accounts"][1].data["company_name"], "A2");
    assert!(!third.more);
}

#[tokio::test]
async fn a_full_parent_table_ends_the_page_before_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(
        dir.path(),
        "CREATE TABLE accounts (id TEXT, updated_at TEXT); CREATE TABLE contacts (id TEXT, updated_at TEXT);
         INSERT INTO accounts VALUES ('A', '2026-11-20T09:00:00Z'), ('B', '2026-11-20T09:00:01Z');
         INSERT INTO contacts VALUES ('C', '2026-11-20T09:00:00Z');",
    );
    let src = source(&path).await;
    let store = MemoryStore::new();
    let p1 = src
        .pull(&["accounts", "contacts"], &store, 2)
        .await
        .unwrap();
    assert_eq!(ids(&p1, "accounts"), ["A", "B"]);
    assert!(!p1.set.entities.contains_key("contacts"));
    src.commit(&p1, &store).await.unwrap();
    let p2 = src
        .pull(&["accounts", "contacts"], &store, 2)
        .await
        .unwrap();
    assert_eq!(ids(&p2, "contacts"), ["C"]);
    assert!(!p2.more);
}

#[tokio::test]
async fn missing_table_and_columns_are_named_with_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path(), "CREATE TABLE accounts (id TEXT, name TEXT);");
    let src = source(&path).await;
    let store = MemoryStore::new();
    let e = src
        .pull(&["accounts"], &store, 10)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("source table `accounts` has no column `updated_at`: add an `updated_at` timestamp column"),
        "{e}"
    );
    let e = src
        .pull(&["contacts"], &store, 10)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no table `contacts`"), "{e}");
    let e = TableSource::open(&TableDb::Sqlite(dir.path().join("nope.db")), "p/t")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nope.db: no such file"), "{e}");
}

#[tokio::test]
async fn an_unparsable_updated_at_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(
        dir.path(),
        "CREATE TABLE accounts (id TEXT, updated_at TEXT); INSERT INTO accounts VALUES ('A', 'yesterday');",
    );
    let src = source(&path).await;
    let e = src
        .pull(&["accounts"], &MemoryStore::new(), 10)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("source table `accounts`, row id `A`, column `updated_at`: \"yesterday\" is not an ISO 8601"),
        "{e}"
    );
}

#[test]
fn urls_in_messages_hide_the_password() {
    assert_eq!(
        redact("postgres://u:pw@127.0.0.1/db"),
        "postgres://u:***@127.0.0.1/db"
    );
}
