//! Idempotency keys and applied record versions on PostgreSQL.

use super::dlq::supersede_in;
use super::*;

/// The newest applied version of a record.
pub(super) async fn applied_of(
    c: &impl GenericClient,
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
    row.map(|r| r.int(0).map(version_from_sql)).transpose()
}

/// Sets `key` if it is absent or expired: one statement (insert, or take over an expired
/// key; a live key changes nothing).
async fn set_key(
    c: &impl GenericClient,
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
impl DedupeStore for PgStore {
    async fn check_and_set(&self, key: &str, now: Timestamp, ttl: Duration) -> StoreResult<bool> {
        set_key(&*self.lock().await, key, now, ttl).await
    }

    async fn check_and_set_all(
        &self,
        keys: &[String],
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<bool>> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        // One at a time within the transaction: a key twice in the batch is set once.
        let mut set = Vec::with_capacity(keys.len());
        for key in keys {
            set.push(set_key(&tx, key, now, ttl).await?);
        }
        tx.commit().await.map_err(err)?;
        Ok(set)
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
