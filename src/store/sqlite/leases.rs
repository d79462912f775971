//! Work leases on SQLite: items queued per tenant and stage, claimed by one worker at a time.

use super::*;

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn lease_enqueue(&self, tenant: &str, items: &[WorkItem]) -> StoreResult<usize> {
        let mut conn = self.lock();
        let tx = write(&mut conn)?;
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
        let tx = write(&mut conn)?;
        let mut leases = all_rows(
            &tx,
            "UPDATE work_items SET worker = ?2, token = token + 1, expires_at = ?5
             WHERE id IN (
                SELECT id FROM work_items
                WHERE tenant = ?1 AND done = 0
                  AND stage = (SELECT MIN(stage) FROM work_items WHERE tenant = ?1 AND done = 0)
                  AND (worker IS NULL OR expires_at <= ?3)
                ORDER BY id LIMIT ?4)
             RETURNING id, key, stage, payload, token, expires_at",
            params![
                tenant,
                worker,
                now.as_millis(),
                i64::try_from(max).unwrap_or(i64::MAX),
                now.plus(ttl).as_millis()
            ],
            |r| rows::lease(tenant, worker, r),
        )?;
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
        still_held(changed as u64, lease)?;
        Ok(until)
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
        still_held(changed as u64, lease)
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
