//! Work leases on PostgreSQL: items queued per tenant and stage; workers claiming at once
//! skip each other's locked rows.

use super::*;

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
        let mut leases = self
            .all_rows(
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
                |r| rows::lease(tenant, worker, r),
            )
            .await?;
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
        still_held(changed, lease)?;
        Ok(until)
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
        still_held(changed, lease)
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
