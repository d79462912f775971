//! Webhooks and their delivery log on SQLite.

use super::super::webhooks::{Webhook, WebhookExecution, WebhookStore};
use super::*;

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn webhook_put(&self, w: &Webhook) -> StoreResult<bool> {
        let events = rows::to_json(&w.events)?;
        let mut conn = self.lock();
        // Immediate: another process cannot create the same UUID between the look and the write.
        let tx = write(&mut conn)?;
        let existed: bool = tx
            .query_row(
                "SELECT COUNT(*) > 0 FROM webhooks WHERE uuid = ?1",
                params![w.uuid],
                |r| r.get(0),
            )
            .map_err(err)?;
        tx.execute(
            "INSERT INTO webhooks (uuid, seq, description, consumer, provider, events, request, enabled, created_at, updated_at)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM webhooks), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (uuid) DO UPDATE SET description = excluded.description,
                consumer = excluded.consumer, provider = excluded.provider, events = excluded.events,
                request = excluded.request, enabled = excluded.enabled, updated_at = excluded.updated_at",
            params![
                w.uuid,
                w.description,
                w.consumer,
                w.provider,
                events,
                w.request,
                w.enabled,
                w.created_at.as_millis(),
                w.updated_at.as_millis()
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(!existed)
    }

    async fn webhook(&self, uuid: &str) -> StoreResult<Option<Webhook>> {
        first_row(
            &self.lock(),
            &format!(
                "SELECT {} FROM webhooks WHERE uuid = ?1",
                rows::WEBHOOK_COLUMNS
            ),
            params![uuid],
            rows::webhook,
        )
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM webhooks ORDER BY seq",
                rows::WEBHOOK_COLUMNS
            ),
            [],
            rows::webhook,
        )
    }

    async fn webhook_delete(&self, uuid: &str) -> StoreResult<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        tx.execute(
            "DELETE FROM webhook_executions WHERE webhook_uuid = ?1",
            params![uuid],
        )
        .map_err(err)?;
        let deleted = tx
            .execute("DELETE FROM webhooks WHERE uuid = ?1", params![uuid])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(deleted == 1)
    }

    async fn webhook_execution_record(&self, e: &WebhookExecution) -> StoreResult<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO webhook_executions (webhook_uuid, delivery, event, consumer, provider, attempt, status, response_code, error, executed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                e.webhook_uuid,
                e.delivery,
                e.event,
                e.consumer,
                e.provider,
                e.attempt,
                e.status.as_str(),
                e.response_code,
                e.error,
                e.executed_at.as_millis()
            ],
        )
        .map_err(err)?;
        Ok(conn.last_insert_rowid())
    }

    async fn webhook_executions(&self, uuid: &str) -> StoreResult<Vec<WebhookExecution>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM webhook_executions WHERE webhook_uuid = ?1 ORDER BY id",
                rows::EXECUTION_COLUMNS
            ),
            params![uuid],
            rows::webhook_execution,
        )
    }
}
