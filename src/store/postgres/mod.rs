//! The shared backend: PostgreSQL, for several engine workers and CI runners on one state.
//!
//! The connection (on a thread of its own), migration and row access live here; each trait's
//! implementation has a file of its own beside it. Rows become domain types in
//! [`super::rows`], shared with SQLite.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, NoTls, Row};

use super::rows::{self, Columns};
use super::*;

mod checkpoints;
mod dedupe;
mod dlq;
mod leases;
mod pact;
mod registry;
mod webhooks;

/// State in a PostgreSQL database (optionally in one schema of it).
///
/// One connection per store, driven by a thread of its own: the store works from any
/// runtime (or none, for [`PgStore::open_blocking`]) and outlives the runtime that opened it.
/// Workers that should run in parallel open a store each, as separate processes would.
pub struct PgStore {
    client: Mutex<Client>,
    schema: Option<String>,
}

fn err(e: tokio_postgres::Error) -> StoreError {
    // The driver's own text is a summary ("db error", "error connecting to server"); what
    // the database said, or the refused connection, is its source, kept underneath.
    StoreError::backend("postgres", e)
}

/// A schema name we are willing to put into SQL unquoted: lower-case letters, digits, `_`.
fn checked_schema(schema: &str) -> StoreResult<&str> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(schema)
    } else {
        Err(StoreError::failed(format!(
            "`{schema}` is not a usable schema name (lower-case letters, digits and _, at most 63)"
        )))
    }
}

/// `host:port` of a configuration, for error messages (never the password).
fn endpoint(c: &tokio_postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// Connects on a thread of its own that keeps driving the connection, and hands the client
/// to `done`.
fn start(url: &str, done: impl FnOnce(StoreResult<Client>) + Send + 'static) {
    let config = tokio_postgres::Config::from_str(url).map(|mut c| {
        c.connect_timeout(Duration::from_secs(5));
        c
    });
    let spawned = std::thread::Builder::new()
        .name("syncgate-postgres".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    return done(Err(StoreError::backend(
                        "cannot start the PostgreSQL connection thread",
                        e,
                    )))
                }
            };
            runtime.block_on(async move {
                let where_ = config.as_ref().map(endpoint).unwrap_or_default();
                let config = match config {
                    Ok(c) => c,
                    Err(e) => return done(Err(StoreError::backend("not a PostgreSQL URL", e))),
                };
                match config.connect(NoTls).await {
                    Ok((client, connection)) => {
                        done(Ok(client));
                        // Runs until the client is dropped or the server goes away.
                        let _ = connection.await;
                    }
                    Err(e) => done(Err(StoreError::backend(
                        format!("cannot connect to PostgreSQL at {where_}"),
                        e,
                    ))),
                }
            });
        });
    // If the thread could not be spawned, `done` was dropped with it and the caller sees a
    // closed channel, which it reports.
    drop(spawned);
}

impl PgStore {
    /// Connects to `url`, optionally creating and using `schema` (tests use a schema per
    /// run), and applies pending migrations.
    pub async fn connect(url: &str, schema: Option<&str>) -> StoreResult<Self> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        start(url, move |r| {
            let _ = tx.send(r);
        });
        let client = rx
            .await
            .map_err(|_| StoreError::failed("the PostgreSQL connection thread did not start"))??;
        Self::prepare(client, schema).await
    }

    /// [`PgStore::connect`] for callers that are not async (`store::open`).
    pub fn open_blocking(url: &str, schema: Option<&str>) -> StoreResult<Self> {
        let url = url.to_string();
        let schema = schema.map(str::to_string);
        let (tx, rx) = std::sync::mpsc::channel();
        // Connect and migrate on a runtime of our own, so this works inside a caller's
        // single-threaded runtime as well as outside any.
        std::thread::Builder::new()
            .name("syncgate-postgres-open".into())
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::backend("cannot start a runtime", e))
                    .and_then(|rt| rt.block_on(PgStore::connect(&url, schema.as_deref())));
                let _ = tx.send(result);
            })
            .map_err(|e| StoreError::backend("cannot spawn a thread", e))?;
        rx.recv()
            .map_err(|_| StoreError::failed("the PostgreSQL connection thread stopped"))?
    }

    async fn prepare(mut client: Client, schema: Option<&str>) -> StoreResult<Self> {
        let schema = schema.map(checked_schema).transpose()?;
        migrate(&mut client, schema).await?;
        Ok(PgStore {
            client: Mutex::new(client),
            schema: schema.map(str::to_string),
        })
    }

    /// The migrations applied to this database, oldest first.
    pub async fn applied_migrations(&self) -> StoreResult<Vec<i64>> {
        let rows = self
            .lock()
            .await
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .map_err(err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The schema this store lives in, if it was given one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Drops this store's schema and everything in it (tests clean up with this).
    pub async fn drop_schema(&self) -> StoreResult<()> {
        let Some(schema) = self.schema.as_deref() else {
            return Err(StoreError::failed(
                "this store has no schema of its own to drop",
            ));
        };
        self.lock()
            .await
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .map_err(err)
    }

    async fn lock(&self) -> MutexGuard<'_, Client> {
        self.client.lock().await
    }

    /// Runs a query and maps every row with one of [`rows`]' mappings.
    async fn all_rows<T>(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        map: impl Fn(&dyn Columns) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let rows = self.lock().await.query(sql, params).await.map_err(err)?;
        rows.iter().map(|r| map(r)).collect()
    }

    /// The first row of a query, mapped; `None` when there is none.
    async fn first_row<T>(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        map: impl Fn(&dyn Columns) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let row = self
            .lock()
            .await
            .query_opt(sql, params)
            .await
            .map_err(err)?;
        row.as_ref().map(|r| map(r)).transpose()
    }
}

/// Creates the schema if one is named, and applies pending migrations, in one transaction
/// that holds an advisory lock: two processes opening the same fresh database (parallel CI
/// runners) would otherwise both try, and one would fail on a duplicate table or schema.
async fn migrate(client: &mut Client, schema: Option<&str>) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('syncgate.schema_migrations'), hashtext(COALESCE($1::TEXT, current_schema(), '')))",
        &[&schema],
    )
    .await
    .map_err(err)?;
    if let Some(schema) = schema {
        // `schema` passed `checked_schema`, so it is safe unquoted. A plain SET outlives
        // the transaction: the whole session works in this schema.
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
        ))
        .await
        .map_err(err)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(err)?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    for m in super::migrations::pending(current)? {
        tx.batch_execute(m.postgres).await.map_err(|e| {
            StoreError::backend(format!("migration {} ({}) failed", m.version, m.name), e)
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(err)?;
    }
    tx.commit().await.map_err(err)
}

impl Columns for Row {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.try_get(i).map_err(err)
    }

    fn text_opt(&self, i: usize) -> StoreResult<Option<String>> {
        self.try_get(i).map_err(err)
    }

    fn int_opt(&self, i: usize) -> StoreResult<Option<i64>> {
        // `INTEGER` columns (a stage, an attempt) are 32 bits here, and the driver reads a
        // column only as its own width.
        match self.columns().get(i).map(|c| c.type_()) {
            Some(t) if *t == Type::INT4 => Ok(self
                .try_get::<_, Option<i32>>(i)
                .map_err(err)?
                .map(i64::from)),
            Some(t) if *t == Type::INT2 => Ok(self
                .try_get::<_, Option<i16>>(i)
                .map_err(err)?
                .map(i64::from)),
            _ => self.try_get(i).map_err(err),
        }
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.try_get(i).map_err(err)
    }
}
