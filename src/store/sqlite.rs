//! The embedded default: one SQLite file, created on first use, migrated on open.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::migrations::MIGRATIONS;
use super::*;

mod webhooks;

/// State in a SQLite file (or in memory with `:memory:`).
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {e}"))
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("stored JSON is unreadable: {e}"))
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
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

    /// Write transactions start `IMMEDIATE`: one that read first and wrote second would fail
    /// at once with "database is locked" when another connection wrote in between (the busy
    /// timeout does not apply to that upgrade), which is how several workers share a file.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
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
    let newest = super::migrations::newest();
    if current > newest {
        return Err(StoreError::Backend(format!(
            "the database is at schema version {current}, newer than this build knows ({newest}); upgrade syncgate"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let sql = format!(
            "BEGIN; {} INSERT INTO schema_migrations (version, name) VALUES ({}, '{}'); COMMIT;",
            m.sqlite,
            m.version,
            m.name.replace('\'', "''")
        );
        conn.execute_batch(&sql).map_err(|e| {
            StoreError::Backend(format!("migration {} ({}) failed: {e}", m.version, m.name))
        })?;
    }
    Ok(())
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

#[async_trait]
impl RegistryIndex for SqliteStore {
    async fn publish(&self, v: &PublishedVersion) -> StoreResult<PublishOutcome> {
        let conn = self.lock();
        let existing: Option<String> = conn
            .query_row(
                "SELECT hash FROM published_versions WHERE partner = ?1 AND tenant = ?2 AND version = ?3",
                params![v.partner, v.tenant, v.version],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        match existing {
            Some(hash) if hash == v.hash => Ok(PublishOutcome::Unchanged),
            Some(hash) => Err(StoreError::Conflict(format!(
                "{}/{} {} is already published with {hash} (this content is {})",
                v.partner, v.tenant, v.version, v.hash
            ))),
            None => {
                conn.execute(
                    "INSERT INTO published_versions (partner, tenant, version, hash, published_at, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![v.partner, v.tenant, v.version, v.hash, v.published_at.as_millis(), v.content],
                )
                .map_err(err)?;
                Ok(PublishOutcome::Created)
            }
        }
    }

    async fn versions(
        &self,
        partner: &str,
        tenant: Option<&str>,
    ) -> StoreResult<Vec<PublishedVersion>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT partner, tenant, version, hash, published_at, content FROM published_versions
                 WHERE partner = ?1 AND (?2 IS NULL OR tenant = ?2) ORDER BY published_at, rowid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![partner, tenant], |r| {
                Ok(PublishedVersion {
                    partner: r.get(0)?,
                    tenant: r.get(1)?,
                    version: r.get(2)?,
                    hash: r.get(3)?,
                    published_at: ts(r.get(4)?),
                    content: r.get(5)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    async fn version(
        &self,
        partner: &str,
        tenant: &str,
        version: &str,
    ) -> StoreResult<Option<PublishedVersion>> {
        Ok(self
            .versions(partner, Some(tenant))
            .await?
            .into_iter()
            .find(|v| v.version == version))
    }

    async fn add_environment(&self, name: &str) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO environments (name, seq) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM environments))",
                params![name],
            )
            .map_err(err)?;
        Ok(())
    }

    async fn environments(&self) -> StoreResult<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT name FROM environments ORDER BY seq")
            .map_err(err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    async fn record_deployment(&self, d: &Deployment) -> StoreResult<()> {
        self.add_environment(&d.environment).await?;
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "UPDATE deployments SET undeployed_at = ?4
             WHERE partner = ?1 AND tenant = ?2 AND environment = ?3 AND undeployed_at IS NULL",
            params![
                d.partner,
                d.tenant,
                d.environment,
                d.deployed_at.as_millis()
            ],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO deployments (partner, tenant, environment, bundle_version, engine_version, deployed_at, undeployed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                d.partner,
                d.tenant,
                d.environment,
                d.bundle_version,
                d.engine_version,
                d.deployed_at.as_millis(),
                d.undeployed_at.map(Timestamp::as_millis)
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    async fn deployments(
        &self,
        partner: &str,
        tenant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<Deployment>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT partner, tenant, environment, bundle_version, engine_version, deployed_at, undeployed_at FROM deployments
                 WHERE partner = ?1 AND (?2 IS NULL OR tenant = ?2) AND (?3 IS NULL OR environment = ?3) ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![partner, tenant, environment], |r| {
                Ok(Deployment {
                    partner: r.get(0)?,
                    tenant: r.get(1)?,
                    environment: r.get(2)?,
                    bundle_version: r.get(3)?,
                    engine_version: r.get(4)?,
                    deployed_at: ts(r.get(5)?),
                    undeployed_at: r.get::<_, Option<i64>>(6)?.map(ts),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    async fn record_verification(&self, v: &Verification) -> StoreResult<()> {
        let scenarios = serde_json::to_string(&v.scenarios).map_err(json_err)?;
        self.lock()
            .execute(
                "INSERT INTO verifications (partner, tenant, bundle_version, bundle_hash, engine_version, success, seed, scenarios, verified_at, verified_by, engine_config_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    v.partner,
                    v.tenant,
                    v.bundle_version,
                    v.bundle_hash,
                    v.engine_version,
                    v.success,
                    v.seed as i64,
                    scenarios,
                    v.verified_at.as_millis(),
                    v.verified_by,
                    v.engine_config_hash
                ],
            )
            .map_err(err)?;
        Ok(())
    }

    async fn partners(&self) -> StoreResult<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT DISTINCT partner FROM published_versions ORDER BY partner")
            .map_err(err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    async fn verifications(&self, partner: &str, tenant: &str) -> StoreResult<Vec<Verification>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT partner, tenant, bundle_version, bundle_hash, engine_version, success, seed, scenarios, verified_at, verified_by, engine_config_hash
                 FROM verifications WHERE partner = ?1 AND tenant = ?2 ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![partner, tenant], |r| {
                Ok((
                    Verification {
                        partner: r.get(0)?,
                        tenant: r.get(1)?,
                        bundle_version: r.get(2)?,
                        bundle_hash: r.get(3)?,
                        engine_version: r.get(4)?,
                        success: r.get(5)?,
                        seed: r.get::<_, i64>(6)? as u64,
                        scenarios: Vec::new(),
                        verified_at: ts(r.get(8)?),
                        verified_by: r.get(9)?,
                        engine_config_hash: r.get(10)?,
                    },
                    r.get::<_, String>(7)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut v, scenarios) = row.map_err(err)?;
            v.scenarios = serde_json::from_str(&scenarios).map_err(json_err)?;
            out.push(v);
        }
        Ok(out)
    }
}

/// The newest applied version of a record.
fn applied_of(
    conn: &Connection,
    tenant: &str,
    object: &str,
    source_id: &str,
) -> StoreResult<Option<u64>> {
    conn.query_row(
        "SELECT version FROM applied_versions WHERE tenant = ?1 AND object = ?2 AND source_id = ?3",
        params![tenant, object, source_id],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.map(version_from_sql))
    .map_err(err)
}

/// Retires the record's queued letter if `applied` overtakes its version.
fn supersede_in(
    conn: &Connection,
    tenant: &str,
    object: &str,
    source_id: &str,
    applied: u64,
) -> StoreResult<bool> {
    let queued: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, letter FROM dead_letters
             WHERE tenant = ?1 AND object = ?2 AND source_id = ?3 AND status = 'queued'",
            params![tenant, object, source_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(err)?;
    let Some((id, letter)) = queued else {
        return Ok(false);
    };
    let letter: DeadLetter = serde_json::from_str(&letter).map_err(json_err)?;
    if !overtaken(letter.source_version, Some(applied)) {
        return Ok(false);
    }
    conn.execute(
        "UPDATE dead_letters SET status = 'superseded', superseded_by = ?2 WHERE id = ?1",
        params![id, version_to_sql(applied)],
    )
    .map_err(err)?;
    Ok(true)
}

fn stored_letter(
    id: i64,
    letter: &str,
    history: &str,
    status: &str,
    superseded_by: Option<i64>,
) -> StoreResult<StoredLetter> {
    Ok(StoredLetter {
        id,
        letter: serde_json::from_str(letter).map_err(json_err)?,
        history: serde_json::from_str(history).map_err(json_err)?,
        status: LetterStatus::parse(status)?,
        superseded_by: superseded_by.map(version_from_sql),
    })
}

#[async_trait]
impl DeadLetterStore for SqliteStore {
    async fn dlq_append(&self, letter: &DeadLetter) -> StoreResult<i64> {
        let json = serde_json::to_string(letter).map_err(json_err)?;
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let applied = applied_of(&tx, &letter.tenant, &letter.object, &letter.source_id)?;
        let (status, superseded_by) = if overtaken(letter.source_version, applied) {
            (LetterStatus::Superseded, applied.map(version_to_sql))
        } else {
            (LetterStatus::Queued, None)
        };
        let existing: Option<(i64, String, String)> = tx
            .query_row(
                "SELECT id, letter, history FROM dead_letters WHERE tenant = ?1 AND object = ?2 AND source_id = ?3",
                params![letter.tenant, letter.object, letter.source_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err)?;
        let id = match existing {
            Some((id, previous, history)) => {
                let mut history: Vec<serde_json::Value> =
                    serde_json::from_str(&history).map_err(json_err)?;
                history.push(serde_json::from_str(&previous).map_err(json_err)?);
                let history = serde_json::to_string(&history).map_err(json_err)?;
                tx.execute(
                    "UPDATE dead_letters SET letter = ?2, history = ?3, error_code = ?4, status = ?5, superseded_by = ?6 WHERE id = ?1",
                    params![id, json, history, letter.error_code, status.as_str(), superseded_by],
                )
                .map_err(err)?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO dead_letters (tenant, object, source_id, error_code, letter, history, status, superseded_by) VALUES (?1, ?2, ?3, ?4, ?5, '[]', ?6, ?7)",
                    params![letter.tenant, letter.object, letter.source_id, letter.error_code, json, status.as_str(), superseded_by],
                )
                .map_err(err)?;
                tx.last_insert_rowid()
            }
        };
        tx.commit().map_err(err)?;
        Ok(id)
    }

    async fn dlq_list(&self, filter: &DlqFilter) -> StoreResult<Vec<StoredLetter>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, letter, history, status, superseded_by FROM dead_letters
                 WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR object = ?2) AND (?3 IS NULL OR error_code = ?3) ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(
                params![filter.tenant, filter.object, filter.error_code],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                },
            )
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, letter, history, status, by) = row.map_err(err)?;
            out.push(stored_letter(id, &letter, &history, &status, by)?);
        }
        Ok(out)
    }

    async fn dlq_take(&self, id: i64) -> StoreResult<Option<StoredLetter>> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let row: Option<(String, String, String, Option<i64>)> = tx
            .query_row(
                "SELECT letter, history, status, superseded_by FROM dead_letters WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(err)?;
        let Some((letter, history, status, by)) = row else {
            return Ok(None);
        };
        tx.execute("DELETE FROM dead_letters WHERE id = ?1", params![id])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        stored_letter(id, &letter, &history, &status, by).map(Some)
    }

    async fn dlq_supersede(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
        applied: u64,
    ) -> StoreResult<bool> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let retired = supersede_in(&tx, tenant, object, source_id, applied)?;
        tx.commit().map_err(err)?;
        Ok(retired)
    }
}

#[async_trait]
impl DedupeStore for SqliteStore {
    async fn check_and_set(&self, key: &str, now: Timestamp, ttl: Duration) -> StoreResult<bool> {
        set_key(&self.lock(), key, now, ttl)
    }

    async fn is_live(&self, key: &str, now: Timestamp) -> StoreResult<bool> {
        self.lock()
            .query_row(
                "SELECT 1 FROM dedupe_keys WHERE key = ?1 AND expires_at > ?2",
                params![key, now.as_millis()],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(err)
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
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut set = Vec::with_capacity(applied.len());
        for a in applied {
            set.push(set_key(&tx, a.key, now, ttl)?);
            tx.execute(
                "INSERT INTO applied_versions (tenant, object, source_id, version) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, object, source_id) DO UPDATE SET version = MAX(version, excluded.version)",
                params![a.tenant, a.object, a.source_id, version_to_sql(a.version)],
            )
            .map_err(err)?;
            let newest = applied_of(&tx, a.tenant, a.object, a.source_id)?.unwrap_or(a.version);
            supersede_in(&tx, a.tenant, a.object, a.source_id, newest)?;
        }
        tx.commit().map_err(err)?;
        Ok(set)
    }

    async fn applied_version(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
    ) -> StoreResult<Option<u64>> {
        applied_of(&self.lock(), tenant, object, source_id)
    }
}

/// Sets `key` if it is absent or expired: one statement (insert, or take over an expired
/// key; a live key changes nothing).
fn set_key(conn: &Connection, key: &str, now: Timestamp, ttl: Duration) -> StoreResult<bool> {
    let changed = conn
        .execute(
            "INSERT INTO dedupe_keys (key, expires_at) VALUES (?1, ?3)
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE dedupe_keys.expires_at <= ?2",
            params![key, now.as_millis(), now.plus(ttl).as_millis()],
        )
        .map_err(err)?;
    Ok(changed == 1)
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    async fn checkpoint(&self, scope: &str) -> StoreResult<Option<String>> {
        self.lock()
            .query_row(
                "SELECT value FROM checkpoints WHERE scope = ?1",
                params![scope],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)
    }

    async fn set_checkpoint(&self, scope: &str, value: &str) -> StoreResult<()> {
        self.lock()
            .execute(
                "INSERT INTO checkpoints (scope, value) VALUES (?1, ?2) ON CONFLICT (scope) DO UPDATE SET value = excluded.value",
                params![scope, value],
            )
            .map_err(err)?;
        Ok(())
    }
}

fn tags_json(tags: &[String]) -> StoreResult<String> {
    serde_json::to_string(tags).map_err(json_err)
}

fn tags_from(json: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(json).map_err(json_err)
}

#[async_trait]
impl PactIndex for SqliteStore {
    async fn pacts_publish(&self, pacts: &[PactPublication]) -> StoreResult<Vec<PublishOutcome>> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let mut outcomes = Vec::new();
        for p in pacts {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT sha FROM pact_publications WHERE consumer = ?1 AND consumer_version = ?2 AND provider = ?3",
                    params![p.consumer, p.consumer_version, p.provider],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            match existing {
                Some(sha) if sha == p.sha => outcomes.push(PublishOutcome::Unchanged),
                // Dropping the transaction rolls back whatever this call wrote so far.
                Some(sha) => {
                    return Err(StoreError::Conflict(format!(
                        "a different pact between {} version {} and {} is already published ({sha}, this one is {}); a published pact is immutable: publish it under a new consumer version",
                        p.consumer, p.consumer_version, p.provider, p.sha
                    )))
                }
                None => {
                    tx.execute(
                        "INSERT INTO pact_publications (consumer, consumer_version, provider, branch, tags, sha, content, published_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            p.consumer,
                            p.consumer_version,
                            p.provider,
                            p.branch,
                            tags_json(&p.tags)?,
                            p.sha,
                            p.content,
                            p.published_at.as_millis()
                        ],
                    )
                    .map_err(err)?;
                    outcomes.push(PublishOutcome::Created);
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(outcomes)
    }

    async fn pacts(
        &self,
        provider: Option<&str>,
        consumer: Option<&str>,
    ) -> StoreResult<Vec<PactPublication>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT consumer, consumer_version, provider, branch, tags, sha, content, published_at FROM pact_publications
                 WHERE (?1 IS NULL OR provider = ?1) AND (?2 IS NULL OR consumer = ?2) ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![provider, consumer], |r| {
                Ok((
                    PactPublication {
                        consumer: r.get(0)?,
                        consumer_version: r.get(1)?,
                        provider: r.get(2)?,
                        branch: r.get(3)?,
                        tags: Vec::new(),
                        sha: r.get(5)?,
                        content: r.get(6)?,
                        published_at: ts(r.get(7)?),
                    },
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut p, tags) = row.map_err(err)?;
            p.tags = tags_from(&tags)?;
            out.push(p);
        }
        Ok(out)
    }

    async fn pact_verification_record(&self, v: &PactVerificationResult) -> StoreResult<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO pact_verification_results (consumer, provider, pact_sha, provider_version, success, body, verified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                v.consumer,
                v.provider,
                v.pact_sha,
                v.provider_version,
                v.success,
                v.body,
                v.verified_at.as_millis()
            ],
        )
        .map_err(err)?;
        Ok(conn.last_insert_rowid())
    }

    async fn pact_verifications(
        &self,
        provider: &str,
        consumer: Option<&str>,
    ) -> StoreResult<Vec<PactVerificationResult>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, consumer, provider, pact_sha, provider_version, success, body, verified_at FROM pact_verification_results
                 WHERE provider = ?1 AND (?2 IS NULL OR consumer = ?2) ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![provider, consumer], |r| {
                Ok(PactVerificationResult {
                    id: r.get(0)?,
                    consumer: r.get(1)?,
                    provider: r.get(2)?,
                    pact_sha: r.get(3)?,
                    provider_version: r.get(4)?,
                    success: r.get(5)?,
                    body: r.get(6)?,
                    verified_at: ts(r.get(7)?),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    async fn pacticipant_version_upsert(
        &self,
        pacticipant: &str,
        version: &str,
        branch: Option<&str>,
        tag: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<PacticipantVersion> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let existing: Option<(Option<String>, String, i64)> = tx
            .query_row(
                "SELECT branch, tags, created_at FROM pacticipant_versions WHERE pacticipant = ?1 AND version = ?2",
                params![pacticipant, version],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err)?;
        let (old_branch, tags, created) = existing.unwrap_or((None, "[]".into(), now.as_millis()));
        let mut tags = tags_from(&tags)?;
        if let Some(t) = tag {
            if !tags.iter().any(|x| x == t) {
                tags.push(t.to_string());
            }
        }
        let branch = branch.map(str::to_string).or(old_branch);
        tx.execute(
            "INSERT INTO pacticipant_versions (pacticipant, version, branch, tags, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (pacticipant, version) DO UPDATE SET branch = excluded.branch, tags = excluded.tags",
            params![pacticipant, version, branch, tags_json(&tags)?, created],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(PacticipantVersion {
            pacticipant: pacticipant.to_string(),
            version: version.to_string(),
            branch,
            tags,
            created_at: ts(created),
        })
    }

    async fn pacticipant_versions(
        &self,
        pacticipant: &str,
    ) -> StoreResult<Vec<PacticipantVersion>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT pacticipant, version, branch, tags, created_at FROM pacticipant_versions
                 WHERE pacticipant = ?1 ORDER BY created_at, rowid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![pacticipant], |r| {
                Ok((
                    PacticipantVersion {
                        pacticipant: r.get(0)?,
                        version: r.get(1)?,
                        branch: r.get(2)?,
                        tags: Vec::new(),
                        created_at: ts(r.get(4)?),
                    },
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut v, tags) = row.map_err(err)?;
            v.tags = tags_from(&tags)?;
            out.push(v);
        }
        Ok(out)
    }

    async fn pacticipant_deploy(&self, d: &PacticipantDeployment) -> StoreResult<i64> {
        self.add_environment(&d.environment).await?;
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        tx.execute(
            "UPDATE pacticipant_deployments SET undeployed_at = ?4
             WHERE pacticipant = ?1 AND environment = ?2 AND application_instance IS ?3 AND undeployed_at IS NULL",
            params![
                d.pacticipant,
                d.environment,
                d.application_instance,
                d.deployed_at.as_millis()
            ],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO pacticipant_deployments (pacticipant, version, environment, application_instance, deployed_at, undeployed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
            params![
                d.pacticipant,
                d.version,
                d.environment,
                d.application_instance,
                d.deployed_at.as_millis()
            ],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(err)?;
        Ok(id)
    }

    async fn pacticipant_deployments(
        &self,
        pacticipant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<PacticipantDeployment>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, pacticipant, version, environment, application_instance, deployed_at, undeployed_at FROM pacticipant_deployments
                 WHERE (?1 IS NULL OR pacticipant = ?1) AND (?2 IS NULL OR environment = ?2) ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![pacticipant, environment], |r| {
                Ok(PacticipantDeployment {
                    id: r.get(0)?,
                    pacticipant: r.get(1)?,
                    version: r.get(2)?,
                    environment: r.get(3)?,
                    application_instance: r.get(4)?,
                    deployed_at: ts(r.get(5)?),
                    undeployed_at: r.get::<_, Option<i64>>(6)?.map(ts),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    async fn pacticipant_release(&self, r: &PacticipantRelease) -> StoreResult<i64> {
        self.add_environment(&r.environment).await?;
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM pacticipant_releases
                 WHERE pacticipant = ?1 AND version = ?2 AND environment = ?3 AND support_ended_at IS NULL",
                params![r.pacticipant, r.version, r.environment],
                |row| row.get(0),
            )
            .optional()
            .map_err(err)?;
        if let Some(id) = existing {
            return Ok(id);
        }
        tx.execute(
            "INSERT INTO pacticipant_releases (pacticipant, version, environment, released_at, support_ended_at)
             VALUES (?1, ?2, ?3, ?4, NULL)",
            params![r.pacticipant, r.version, r.environment, r.released_at.as_millis()],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(err)?;
        Ok(id)
    }

    async fn pacticipant_releases(
        &self,
        pacticipant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<PacticipantRelease>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, pacticipant, version, environment, released_at, support_ended_at FROM pacticipant_releases
                 WHERE (?1 IS NULL OR pacticipant = ?1) AND (?2 IS NULL OR environment = ?2) ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![pacticipant, environment], |r| {
                Ok(PacticipantRelease {
                    id: r.get(0)?,
                    pacticipant: r.get(1)?,
                    version: r.get(2)?,
                    environment: r.get(3)?,
                    released_at: ts(r.get(4)?),
                    support_ended_at: r.get::<_, Option<i64>>(5)?.map(ts),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

fn lease_of(tenant: &str, worker: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<Lease> {
    Ok(Lease {
        id: r.get(0)?,
        tenant: tenant.to_string(),
        key: r.get(1)?,
        stage: r.get(2)?,
        payload: r.get(3)?,
        worker: worker.to_string(),
        token: r.get(4)?,
        expires_at: ts(r.get(5)?),
    })
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn lease_enqueue(&self, tenant: &str, items: &[WorkItem]) -> StoreResult<usize> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut added = 0;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO work_items (tenant, key, stage, payload) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, key) DO NOTHING",
                )
                .map_err(err)?;
            for item in items {
                added += stmt
                    .execute(params![tenant, item.key, item.stage, item.payload])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(added)
    }

    async fn lease_claim(
        &self,
        tenant: &str,
        worker: &str,
        max: usize,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<Lease>> {
        // One writer at a time holds the database (BEGIN IMMEDIATE), so the pick and the
        // update cannot interleave with another process claiming.
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut leases = {
            let mut stmt = tx
                .prepare(
                    "UPDATE work_items SET worker = ?2, token = token + 1, expires_at = ?5
                     WHERE id IN (
                        SELECT id FROM work_items
                        WHERE tenant = ?1 AND done = 0
                          AND stage = (SELECT MIN(stage) FROM work_items WHERE tenant = ?1 AND done = 0)
                          AND (worker IS NULL OR expires_at <= ?3)
                        ORDER BY id LIMIT ?4)
                     RETURNING id, key, stage, payload, token, expires_at",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map(
                    params![
                        tenant,
                        worker,
                        now.as_millis(),
                        i64::try_from(max).unwrap_or(i64::MAX),
                        now.plus(ttl).as_millis()
                    ],
                    |r| lease_of(tenant, worker, r),
                )
                .map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)?
        };
        tx.commit().map_err(err)?;
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
            .execute(
                "UPDATE work_items SET expires_at = ?4
                 WHERE id = ?1 AND worker = ?2 AND token = ?3 AND done = 0",
                params![lease.id, lease.worker, lease.token, until.as_millis()],
            )
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
            .execute(
                "UPDATE work_items SET done = 1
                 WHERE id = ?1 AND worker = ?2 AND token = ?3 AND done = 0",
                params![lease.id, lease.worker, lease.token],
            )
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
            .query_row(
                "SELECT COUNT(*) FROM work_items WHERE tenant = ?1 AND done = 0",
                params![tenant],
                |r| r.get(0),
            )
            .map_err(err)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
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
