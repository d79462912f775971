//! Resume points (source cursors, replay IDs) on SQLite.

use super::*;

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
