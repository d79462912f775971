//! Idempotency keys and applied record versions on SQLite.

use super::dlq::supersede_in;
use super::*;

/// The newest applied version of a record.
pub(super) fn applied_of(
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
impl DedupeStore for SqliteStore {
    async fn check_and_set(&self, key: &str, now: Timestamp, ttl: Duration) -> StoreResult<bool> {
        set_key(&self.lock(), key, now, ttl)
    }

    async fn check_and_set_all(
        &self,
        keys: &[String],
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<bool>> {
        let mut conn = self.lock();
        let tx = write(&mut conn)?;
        let set = keys
            .iter()
            .map(|key| set_key(&tx, key, now, ttl))
            .collect::<StoreResult<Vec<bool>>>()?;
        tx.commit().map_err(err)?;
        Ok(set)
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

    async fn mark_applied_all(
        &self,
        applied: &[AppliedVersion<'_>],
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<bool>> {
        let mut conn = self.lock();
        let tx = write(&mut conn)?;
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
