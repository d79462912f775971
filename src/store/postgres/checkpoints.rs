//! Resume points (source cursors, replay IDs) on PostgreSQL.

use super::*;

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
