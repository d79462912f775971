//! The embedded default: one SQLite file, created on first use, migrated on open.
//!
//! The store's connection, migration and row access live here; each trait's implementation
//! has a file of its own beside it. Rows become domain types in [`super::rows`], shared with
//! PostgreSQL.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::rows::{self, Columns};
use super::*;

mod checkpoints;
mod dedupe;
mod dlq;
mod leases;
mod pact;
mod registry;
mod webhooks;

/// State in a SQLite file (or in memory with `:memory:`).
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::backend("sqlite", e)
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::backend(format!("cannot create {}", dir.display()), e))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError::backend(format!("cannot open {}", path.display()), e))?;
        Self::with_connection(conn)
    }

    /// A private database in memory.
    pub fn in_memory() -> StoreResult<Self> {
        Self::with_connection(Connection::open_in_memory().map_err(err)?)
    }

    fn with_connection(conn: Connection) -> StoreResult<Self> {
        // Several processes (CI jobs, workers) may share the file: wait for locks rather than fail.
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        migrate(&conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts a write transaction `IMMEDIATE`: one that read first and wrote second would fail
/// at once with "database is locked" when another connection wrote in between (the busy
/// timeout does not apply to that upgrade), which is how several workers share a file.
fn write(conn: &mut Connection) -> StoreResult<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .map_err(err)?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    for m in super::migrations::pending(current)? {
        let sql = format!(
            "BEGIN; {} INSERT INTO schema_migrations (version, name) VALUES ({}, '{}'); COMMIT;",
            m.sqlite,
            m.version,
            m.name.replace('\'', "''")
        );
        conn.execute_batch(&sql).map_err(|e| {
            StoreError::backend(format!("migration {} ({}) failed", m.version, m.name), e)
        })?;
    }
    Ok(())
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.get(i).map_err(err)
    }

    fn text_opt(&self, i: usize) -> StoreResult<Option<String>> {
        self.get(i).map_err(err)
    }

    fn int_opt(&self, i: usize) -> StoreResult<Option<i64>> {
        self.get(i).map_err(err)
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.get(i).map_err(err)
    }
}

/// Runs a query and maps every row with one of [`rows`]' mappings.
fn all_rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare(sql).map_err(err)?;
    let mut rows = stmt.query(params).map_err(err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        out.push(map(r)?);
    }
    Ok(out)
}

/// The first row of a query, mapped; `None` when there is none.
fn first_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare(sql).map_err(err)?;
    let mut rows = stmt.query(params).map_err(err)?;
    rows.next().map_err(err)?.map(|r| map(r)).transpose()
}

#[cfg(test)]
mod tests {
    use super::super::migrations::MIGRATIONS;
    use super::*;

    /// A database written by a build at schema version 3 keeps its letters through migration
    /// 4: queued, and retired once a newer version of their record lands.
    #[tokio::test]
    async fn letters_from_schema_3_are_queued_after_migration_4() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        )
        .unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version <= 3) {
            conn.execute_batch(m.sqlite).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
                params![m.version, m.name],
            )
            .unwrap();
        }
        let now = Timestamp::from_millis(1_767_600_000_000);
        // As a schema-3 build stored it (the letter JSON; no status columns yet).
        let letter: DeadLetter = serde_json::from_value(serde_json::json!({
            "tenant": "northwind/sandbox", "object": "Account", "source_id": "A-1",
            "source_version": 1, "payload": {"Name": "Old"}, "class": "rejected",
            "error_code": "STRING_TOO_LONG", "message": "m", "attempts": 1,
            "correlation_id": null, "first_failed_at": now, "last_failed_at": now,
            "idempotency_key": "northwind/sandbox|Account|A-1|upsert|1"
        }))
        .unwrap();
        conn.execute(
            "INSERT INTO dead_letters (tenant, object, source_id, error_code, letter, history) VALUES (?1, ?2, ?3, ?4, ?5, '[]')",
            params![
                letter.tenant,
                letter.object,
                letter.source_id,
                letter.error_code,
                serde_json::to_string(&letter).unwrap()
            ],
        )
        .unwrap();
        let store = SqliteStore::with_connection(conn).unwrap();
        let listed = store.dlq_list(&DlqFilter::default()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, LetterStatus::Queued);
        assert_eq!(listed[0].superseded_by, None);
        let applied = AppliedVersion {
            key: "northwind/sandbox|Account|A-1|upsert|2",
            tenant: "northwind/sandbox",
            object: "Account",
            source_id: "A-1",
            version: 2,
        };
        store
            .mark_applied(&applied, now, Duration::from_secs(60))
            .await
            .unwrap();
        let listed = store.dlq_list(&DlqFilter::default()).await.unwrap();
        assert_eq!(listed[0].status, LetterStatus::Superseded);
        assert_eq!(listed[0].superseded_by, Some(2));
    }
}
