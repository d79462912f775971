//! The shared backend: PostgreSQL, for several engine workers and CI runners on one state.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::{Client, NoTls, Row};

use super::migrations::MIGRATIONS;
use super::*;

mod pact;
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
    // The database's own message (e.g. "relation … does not exist") is more useful than
    // tokio-postgres's summary "db error".
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!("postgres: {}", db.message())),
        None => StoreError::Backend(format!("postgres: {}", cause_chain(&e))),
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("stored JSON is unreadable: {e}"))
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
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
        Err(StoreError::Backend(format!(
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
                    return done(Err(StoreError::Backend(format!(
                        "cannot start the PostgreSQL connection thread: {e}"
                    ))))
                }
            };
            runtime.block_on(async move {
                let where_ = config.as_ref().map(endpoint).unwrap_or_default();
                let config = match config {
                    Ok(c) => c,
                    Err(e) => {
                        return done(Err(StoreError::Backend(format!(
                            "not a PostgreSQL URL: {e}"
                        ))))
                    }
                };
                match config.connect(NoTls).await {
                    Ok((client, connection)) => {
                        done(Ok(client));
                        // Runs until the client is dropped or the server goes away.
                        let _ = connection.await;
                    }
                    Err(e) => done(Err(StoreError::Backend(format!(
                        "cannot connect to PostgreSQL at {where_}: {}",
                        cause_chain(&e)
                    )))),
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
        let client = rx.await.map_err(|_| {
            StoreError::Backend("the PostgreSQL connection thread did not start".into())
        })??;
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
                    .map_err(|e| StoreError::Backend(format!("cannot start a runtime: {e}")))
                    .and_then(|rt| rt.block_on(PgStore::connect(&url, schema.as_deref())));
                let _ = tx.send(result);
            })
            .map_err(|e| StoreError::Backend(format!("cannot spawn a thread: {e}")))?;
        rx.recv()
            .map_err(|_| StoreError::Backend("the PostgreSQL connection thread stopped".into()))?
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
            return Err(StoreError::Backend(
                "this store has no schema of its own to drop".into(),
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

    /// Runs a query and maps each row (the Pact index's and webhooks' listings).
    async fn rows<T>(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        map: impl Fn(&Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let rows = self.lock().await.query(sql, params).await.map_err(err)?;
        rows.iter().map(map).collect()
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
    let newest = super::migrations::newest();
    if current > newest {
        return Err(StoreError::Backend(format!(
            "the database is at schema version {current}, newer than this build knows ({newest}); upgrade syncgate"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.postgres).await.map_err(|e| {
            StoreError::Backend(format!(
                "migration {} ({}) failed: {}",
                m.version,
                m.name,
                err(e)
            ))
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

fn version_of(r: &Row) -> PublishedVersion {
    PublishedVersion {
        partner: r.get(0),
        tenant: r.get(1),
        version: r.get(2),
        hash: r.get(3),
        published_at: ts(r.get(4)),
        content: r.get(5),
    }
}

/// A letter from `id, letter, history, status, superseded_by`.
fn letter_of(r: &Row) -> StoreResult<StoredLetter> {
    Ok(StoredLetter {
        id: r.get(0),
        letter: serde_json::from_str(r.get(1)).map_err(json_err)?,
        history: serde_json::from_str(r.get(2)).map_err(json_err)?,
        status: LetterStatus::parse(r.get(3))?,
        superseded_by: r.get::<_, Option<i64>>(4).map(version_from_sql),
    })
}

/// The newest applied version of a record.
async fn applied_of(
    c: &impl tokio_postgres::GenericClient,
    tenant: &str,
    object: &str,
    source_id: &str,
) -> StoreResult<Option<u64>> {
    let row = c
        .query_opt(
            "SELECT version FROM applied_versions WHERE tenant = $1 AND object = $2 AND source_id = $3",
            &[&tenant, &object, &source_id],
        )
        .await
        .map_err(err)?;
    Ok(row.map(|r| version_from_sql(r.get(0))))
}

/// Retires the record's queued letter if `applied` overtakes its version.
async fn supersede_in(
    c: &impl tokio_postgres::GenericClient,
    tenant: &str,
    object: &str,
    source_id: &str,
    applied: u64,
) -> StoreResult<bool> {
    let row = c
        .query_opt(
            "SELECT id, letter FROM dead_letters
             WHERE tenant = $1 AND object = $2 AND source_id = $3 AND status = 'queued' FOR UPDATE",
            &[&tenant, &object, &source_id],
        )
        .await
        .map_err(err)?;
    let Some(row) = row else {
        return Ok(false);
    };
    let letter: DeadLetter = serde_json::from_str(row.get(1)).map_err(json_err)?;
    if !overtaken(letter.source_version, Some(applied)) {
        return Ok(false);
    }
    let id: i64 = row.get(0);
    c.execute(
        "UPDATE dead_letters SET status = 'superseded', superseded_by = $2 WHERE id = $1",
        &[&id, &version_to_sql(applied)],
    )
    .await
    .map_err(err)?;
    Ok(true)
}

/// Sets `key` if it is absent or expired: one statement (insert, or take over an expired
/// key; a live key changes nothing).
async fn set_key(
    c: &impl tokio_postgres::GenericClient,
    key: &str,
    now: Timestamp,
    ttl: Duration,
) -> StoreResult<bool> {
    let changed = c
        .execute(
            "INSERT INTO dedupe_keys (key, expires_at) VALUES ($1, $3)
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
             WHERE dedupe_keys.expires_at <= $2",
            &[&key, &now.as_millis(), &now.plus(ttl).as_millis()],
        )
        .await
        .map_err(err)?;
    Ok(changed == 1)
}

#[async_trait]
impl RegistryIndex for PgStore {
    async fn publish(&self, v: &PublishedVersion) -> StoreResult<PublishOutcome> {
        let client = self.lock().await;
        // Insert-or-nothing first: two runners publishing the same version at once both
        // land on the same row, and then compare hashes.
        let inserted = client
            .execute(
                "INSERT INTO published_versions (partner, tenant, version, hash, published_at, content)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&v.partner, &v.tenant, &v.version, &v.hash, &v.published_at.as_millis(), &v.content],
            )
            .await
            .map_err(err)?;
        if inserted == 1 {
            return Ok(PublishOutcome::Created);
        }
        let hash: String = client
            .query_one(
                "SELECT hash FROM published_versions WHERE partner = $1 AND tenant = $2 AND version = $3",
                &[&v.partner, &v.tenant, &v.version],
            )
            .await
            .map_err(err)?
            .get(0);
        if hash == v.hash {
            Ok(PublishOutcome::Unchanged)
        } else {
            Err(StoreError::Conflict(format!(
                "{}/{} {} is already published with {hash} (this content is {})",
                v.partner, v.tenant, v.version, v.hash
            )))
        }
    }

    async fn versions(
        &self,
        partner: &str,
        tenant: Option<&str>,
    ) -> StoreResult<Vec<PublishedVersion>> {
        let rows = self
            .lock()
            .await
            .query(
                "SELECT partner, tenant, version, hash, published_at, content FROM published_versions
                 WHERE partner = $1 AND ($2::TEXT IS NULL OR tenant = $2) ORDER BY published_at, seq",
                &[&partner, &tenant],
            )
            .await
            .map_err(err)?;
        Ok(rows.iter().map(version_of).collect())
    }

    async fn version(
        &self,
        partner: &str,
        tenant: &str,
        version: &str,
    ) -> StoreResult<Option<PublishedVersion>> {
        let row = self
            .lock()
            .await
            .query_opt(
                "SELECT partner, tenant, version, hash, published_at, content FROM published_versions
                 WHERE partner = $1 AND tenant = $2 AND version = $3",
                &[&partner, &tenant, &version],
            )
            .await
            .map_err(err)?;
        Ok(row.as_ref().map(version_of))
    }

    async fn add_environment(&self, name: &str) -> StoreResult<()> {
        self.lock()
            .await
            .execute(
                "INSERT INTO environments (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&name],
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn environments(&self) -> StoreResult<Vec<String>> {
        let rows = self
            .lock()
            .await
            .query("SELECT name FROM environments ORDER BY seq", &[])
            .await
            .map_err(err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn record_deployment(&self, d: &Deployment) -> StoreResult<()> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        tx.execute(
            "INSERT INTO environments (name) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&d.environment],
        )
        .await
        .map_err(err)?;
        tx.execute(
            "UPDATE deployments SET undeployed_at = $4
             WHERE partner = $1 AND tenant = $2 AND environment = $3 AND undeployed_at IS NULL",
            &[
                &d.partner,
                &d.tenant,
                &d.environment,
                &d.deployed_at.as_millis(),
            ],
        )
        .await
        .map_err(err)?;
        tx.execute(
            "INSERT INTO deployments (partner, tenant, environment, bundle_version, engine_version, deployed_at, undeployed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &d.partner,
                &d.tenant,
                &d.environment,
                &d.bundle_version,
                &d.engine_version,
                &d.deployed_at.as_millis(),
                &d.undeployed_at.map(Timestamp::as_millis),
            ],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)
    }

    async fn deployments(
        &self,
        partner: &str,
        tenant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<Deployment>> {
        let rows = self
            .lock()
            .await
            .query(
                "SELECT partner, tenant, environment, bundle_version, engine_version, deployed_at, undeployed_at
                 FROM deployments
                 WHERE partner = $1 AND ($2::TEXT IS NULL OR tenant = $2) AND ($3::TEXT IS NULL OR environment = $3)
                 ORDER BY id",
                &[&partner, &tenant, &environment],
            )
            .await
            .map_err(err)?;
        Ok(rows
            .iter()
            .map(|r| Deployment {
                partner: r.get(0),
                tenant: r.get(1),
                environment: r.get(2),
                bundle_version: r.get(3),
                engine_version: r.get(4),
                deployed_at: ts(r.get(5)),
                undeployed_at: r.get::<_, Option<i64>>(6).map(ts),
            })
            .collect())
    }

    async fn record_verification(&self, v: &Verification) -> StoreResult<()> {
        let scenarios = serde_json::to_string(&v.scenarios).map_err(json_err)?;
        // Seeds are u64; stored bit-for-bit in a BIGINT.
        let seed = v.seed as i64;
        self.lock()
            .await
            .execute(
                "INSERT INTO verifications (partner, tenant, bundle_version, bundle_hash, engine_version, success, seed, scenarios, verified_at, verified_by, engine_config_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &v.partner,
                    &v.tenant,
                    &v.bundle_version,
                    &v.bundle_hash,
                    &v.engine_version,
                    &v.success,
                    &seed,
                    &scenarios,
                    &v.verified_at.as_millis(),
                    &v.verified_by,
                    &v.engine_config_hash,
                ],
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn partners(&self) -> StoreResult<Vec<String>> {
        let rows = self
            .lock()
            .await
            .query(
                "SELECT DISTINCT partner FROM published_versions ORDER BY partner",
                &[],
            )
            .await
            .map_err(err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn verifications(&self, partner: &str, tenant: &str) -> StoreResult<Vec<Verification>> {
        let rows = self
            .lock()
            .await
            .query(
                "SELECT partner, tenant, bundle_version, bundle_hash, engine_version, success, seed, scenarios, verified_at, verified_by, engine_config_hash
                 FROM verifications WHERE partner = $1 AND tenant = $2 ORDER BY id",
                &[&partner, &tenant],
            )
            .await
            .map_err(err)?;
        rows.iter()
            .map(|r| {
                Ok(Verification {
                    partner: r.get(0),
                    tenant: r.get(1),
                    bundle_version: r.get(2),
                    bundle_hash: r.get(3),
                    engine_version: r.get(4),
                    success: r.get(5),
                    seed: r.get::<_, i64>(6) as u64,
                    scenarios: serde_json::from_str(r.get(7)).map_err(json_err)?,
                    verified_at: ts(r.get(8)),
                    verified_by: r.get(9),
                    engine_config_hash: r.get(10),
                })
            })
            .collect()
    }
}

#[async_trait]
impl DeadLetterStore for PgStore {
    async fn dlq_append(&self, letter: &DeadLetter) -> StoreResult<i64> {
        let json = serde_json::to_string(letter).map_err(json_err)?;
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        let applied = applied_of(&tx, &letter.tenant, &letter.object, &letter.source_id).await?;
        let (status, superseded_by) = if overtaken(letter.source_version, applied) {
            (LetterStatus::Superseded, applied.map(version_to_sql))
        } else {
            (LetterStatus::Queued, None)
        };
        let inserted = tx
            .query_opt(
                "INSERT INTO dead_letters (tenant, object, source_id, error_code, letter, history, status, superseded_by)
                 VALUES ($1, $2, $3, $4, $5, '[]', $6, $7) ON CONFLICT (tenant, object, source_id) DO NOTHING
                 RETURNING id",
                &[
                    &letter.tenant,
                    &letter.object,
                    &letter.source_id,
                    &letter.error_code,
                    &json,
                    &status.as_str(),
                    &superseded_by,
                ],
            )
            .await
            .map_err(err)?;
        let id = match inserted {
            Some(row) => row.get(0),
            None => {
                // Already there: keep the earlier failure in the history.
                let row = tx
                    .query_one(
                        "SELECT id, letter, history FROM dead_letters
                         WHERE tenant = $1 AND object = $2 AND source_id = $3 FOR UPDATE",
                        &[&letter.tenant, &letter.object, &letter.source_id],
                    )
                    .await
                    .map_err(err)?;
                let id: i64 = row.get(0);
                let mut history: Vec<serde_json::Value> =
                    serde_json::from_str(row.get(2)).map_err(json_err)?;
                history.push(serde_json::from_str(row.get(1)).map_err(json_err)?);
                let history = serde_json::to_string(&history).map_err(json_err)?;
                tx.execute(
                    "UPDATE dead_letters SET letter = $2, history = $3, error_code = $4,
                     status = $5, superseded_by = $6 WHERE id = $1",
                    &[
                        &id,
                        &json,
                        &history,
                        &letter.error_code,
                        &status.as_str(),
                        &superseded_by,
                    ],
                )
                .await
                .map_err(err)?;
                id
            }
        };
        tx.commit().await.map_err(err)?;
        Ok(id)
    }

    async fn dlq_list(&self, filter: &DlqFilter) -> StoreResult<Vec<StoredLetter>> {
        let rows = self
            .lock()
            .await
            .query(
                "SELECT id, letter, history, status, superseded_by FROM dead_letters
                 WHERE ($1::TEXT IS NULL OR tenant = $1) AND ($2::TEXT IS NULL OR object = $2)
                   AND ($3::TEXT IS NULL OR error_code = $3)
                 ORDER BY id",
                &[&filter.tenant, &filter.object, &filter.error_code],
            )
            .await
            .map_err(err)?;
        rows.iter().map(letter_of).collect()
    }

    async fn dlq_take(&self, id: i64) -> StoreResult<Option<StoredLetter>> {
        let row = self
            .lock()
            .await
            .query_opt(
                "DELETE FROM dead_letters WHERE id = $1
                 RETURNING id, letter, history, status, superseded_by",
                &[&id],
            )
            .await
            .map_err(err)?;
        row.as_ref().map(letter_of).transpose()
    }

    async fn dlq_supersede(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
        applied: u64,
    ) -> StoreResult<bool> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        let retired = supersede_in(&tx, tenant, object, source_id, applied).await?;
        tx.commit().await.map_err(err)?;
        Ok(retired)
    }
}

#[async_trait]
impl DedupeStore for PgStore {
    async fn check_and_set(&self, key: &str, now: Timestamp, ttl: Duration) -> StoreResult<bool> {
        set_key(&*self.lock().await, key, now, ttl).await
    }

    async fn is_live(&self, key: &str, now: Timestamp) -> StoreResult<bool> {
        let row = self
            .lock()
            .await
            .query_opt(
                "SELECT 1 FROM dedupe_keys WHERE key = $1 AND expires_at > $2",
                &[&key, &now.as_millis()],
            )
            .await
            .map_err(err)?;
        Ok(row.is_some())
    }

    async fn mark_applied(
        &self,
        a: &AppliedVersion<'_>,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<bool> {
        Ok(self
            .mark_applied_all(std::slice::from_ref(a), now, ttl)
            .await?[0])
    }

    async fn mark_applied_all(
        &self,
        applied: &[AppliedVersion<'_>],
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<bool>> {
        use futures_util::future::try_join_all;
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        // Each step's statements are issued together: tokio-postgres pipelines them on the
        // connection (one round trip per step, not per record); the server runs them in
        // order, so a key twice in a batch is set once, as one at a time would.
        let set = try_join_all(applied.iter().map(|a| set_key(&tx, a.key, now, ttl))).await?;
        let upsert = "INSERT INTO applied_versions (tenant, object, source_id, version) VALUES ($1, $2, $3, $4)
                      ON CONFLICT (tenant, object, source_id)
                      DO UPDATE SET version = GREATEST(applied_versions.version, excluded.version)
                      RETURNING version";
        let versions: Vec<i64> = applied.iter().map(|a| version_to_sql(a.version)).collect();
        let txr = &tx;
        let rows = try_join_all(applied.iter().zip(&versions).map(|(a, v)| async move {
            txr.query_one(upsert, &[&a.tenant, &a.object, &a.source_id, v])
                .await
        }))
        .await
        .map_err(err)?;
        try_join_all(applied.iter().zip(&rows).map(|(a, row)| {
            supersede_in(
                &tx,
                a.tenant,
                a.object,
                a.source_id,
                version_from_sql(row.get(0)),
            )
        }))
        .await?;
        tx.commit().await.map_err(err)?;
        Ok(set)
    }

    async fn applied_version(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
    ) -> StoreResult<Option<u64>> {
        applied_of(&*self.lock().await, tenant, object, source_id).await
    }
}

#[async_trait]
impl CheckpointStore for PgStore {
    async fn checkpoint(&self, scope: &str) -> StoreResult<Option<String>> {
        let row = self
            .lock()
            .await
            .query_opt("SELECT value FROM checkpoints WHERE scope = $1", &[&scope])
            .await
            .map_err(err)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_checkpoint(&self, scope: &str, value: &str) -> StoreResult<()> {
        self.lock()
            .await
            .execute(
                "INSERT INTO checkpoints (scope, value) VALUES ($1, $2)
                 ON CONFLICT (scope) DO UPDATE SET value = excluded.value",
                &[&scope, &value],
            )
            .await
            .map_err(err)?;
        Ok(())
    }
}

#[async_trait]
impl LeaseStore for PgStore {
    async fn lease_enqueue(&self, tenant: &str, items: &[WorkItem]) -> StoreResult<usize> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        let stmt = tx
            .prepare(
                "INSERT INTO work_items (tenant, key, stage, payload) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, key) DO NOTHING",
            )
            .await
            .map_err(err)?;
        let mut added = 0;
        for item in items {
            added += tx
                .execute(&stmt, &[&tenant, &item.key, &item.stage, &item.payload])
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(usize::try_from(added).unwrap_or(usize::MAX))
    }

    async fn lease_claim(
        &self,
        tenant: &str,
        worker: &str,
        max: usize,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<Lease>> {
        // SKIP LOCKED: workers claiming at the same moment each lock different rows instead
        // of queueing behind one another; a row another claimer holds is simply not offered.
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self
            .lock()
            .await
            .query(
                "UPDATE work_items w SET worker = $2, token = w.token + 1, expires_at = $5
                 FROM (
                    SELECT id FROM work_items
                    WHERE tenant = $1 AND NOT done
                      AND stage = (SELECT MIN(stage) FROM work_items WHERE tenant = $1 AND NOT done)
                      AND (worker IS NULL OR expires_at <= $3)
                    ORDER BY id LIMIT $4
                    FOR UPDATE SKIP LOCKED) picked
                 WHERE w.id = picked.id
                 RETURNING w.id, w.key, w.stage, w.payload, w.token, w.expires_at",
                &[
                    &tenant,
                    &worker,
                    &now.as_millis(),
                    &max,
                    &now.plus(ttl).as_millis(),
                ],
            )
            .await
            .map_err(err)?;
        let mut leases: Vec<Lease> = rows
            .iter()
            .map(|r| Lease {
                id: r.get(0),
                tenant: tenant.to_string(),
                key: r.get(1),
                stage: r.get(2),
                payload: r.get(3),
                worker: worker.to_string(),
                token: r.get(4),
                expires_at: ts(r.get(5)),
            })
            .collect();
        leases.sort_by_key(|l| l.id);
        Ok(leases)
    }

    async fn lease_renew(
        &self,
        lease: &Lease,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Timestamp> {
        let until = now.plus(ttl);
        let changed = self
            .lock()
            .await
            .execute(
                "UPDATE work_items SET expires_at = $4
                 WHERE id = $1 AND worker = $2 AND token = $3 AND NOT done",
                &[&lease.id, &lease.worker, &lease.token, &until.as_millis()],
            )
            .await
            .map_err(err)?;
        if changed == 1 {
            Ok(until)
        } else {
            Err(lost_lease(lease))
        }
    }

    async fn lease_complete(&self, lease: &Lease) -> StoreResult<()> {
        let changed = self
            .lock()
            .await
            .execute(
                "UPDATE work_items SET done = TRUE
                 WHERE id = $1 AND worker = $2 AND token = $3 AND NOT done",
                &[&lease.id, &lease.worker, &lease.token],
            )
            .await
            .map_err(err)?;
        if changed == 1 {
            Ok(())
        } else {
            Err(lost_lease(lease))
        }
    }

    async fn lease_open(&self, tenant: &str) -> StoreResult<usize> {
        let n: i64 = self
            .lock()
            .await
            .query_one(
                "SELECT COUNT(*) FROM work_items WHERE tenant = $1 AND NOT done",
                &[&tenant],
            )
            .await
            .map_err(err)?
            .get(0);
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
