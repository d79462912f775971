//! Webhooks and their delivery log on PostgreSQL, shared by every registry process on the
//! database (each process logs the deliveries it makes).

use super::super::webhooks::{Webhook, WebhookExecution, WebhookStore};
use super::*;

#[async_trait]
impl WebhookStore for PgStore {
    async fn webhook_put(&self, w: &Webhook) -> StoreResult<bool> {
        let events = rows::to_json(&w.events)?;
        // `xmax = 0` only on a row this statement inserted (not one it updated).
        let row = self
            .lock()
            .await
            .query_one(
                "INSERT INTO webhooks (uuid, description, consumer, provider, events, request, enabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (uuid) DO UPDATE SET description = EXCLUDED.description,
                    consumer = EXCLUDED.consumer, provider = EXCLUDED.provider, events = EXCLUDED.events,
                    request = EXCLUDED.request, enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at
                 RETURNING (xmax = 0)",
                &[
                    &w.uuid,
                    &w.description,
                    &w.consumer,
                    &w.provider,
                    &events,
                    &w.request,
                    &w.enabled,
                    &w.created_at.as_millis(),
                    &w.updated_at.as_millis(),
                ],
            )
            .await
            .map_err(err)?;
        Ok(row.get(0))
    }

    async fn webhook(&self, uuid: &str) -> StoreResult<Option<Webhook>> {
        self.first_row(
            &format!(
                "SELECT {} FROM webhooks WHERE uuid = $1",
                rows::WEBHOOK_COLUMNS
            ),
            &[&uuid],
            rows::webhook,
        )
        .await
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM webhooks ORDER BY seq",
                rows::WEBHOOK_COLUMNS
            ),
            &[],
            rows::webhook,
        )
        .await
    }

    async fn webhook_delete(&self, uuid: &str) -> StoreResult<bool> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        tx.execute(
            "DELETE FROM webhook_executions WHERE webhook_uuid = $1",
            &[&uuid],
        )
        .await
        .map_err(err)?;
        let deleted = tx
            .execute("DELETE FROM webhooks WHERE uuid = $1", &[&uuid])
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(deleted == 1)
    }

    async fn webhook_execution_record(&self, e: &WebhookExecution) -> StoreResult<i64> {
        let attempt = i32::try_from(e.attempt).unwrap_or(i32::MAX);
        let code = e.response_code.map(i32::from);
        let row = self
            .lock()
            .await
            .query_one(
                "INSERT INTO webhook_executions (webhook_uuid, delivery, event, consumer, provider, attempt, status, response_code, error, executed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[
                    &e.webhook_uuid,
                    &e.delivery,
                    &e.event,
                    &e.consumer,
                    &e.provider,
                    &attempt,
                    &e.status.as_str(),
                    &code,
                    &e.error,
                    &e.executed_at.as_millis(),
                ],
            )
            .await
            .map_err(err)?;
        Ok(row.get(0))
    }

    async fn webhook_executions(&self, uuid: &str) -> StoreResult<Vec<WebhookExecution>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM webhook_executions WHERE webhook_uuid = $1 ORDER BY id",
                rows::EXECUTION_COLUMNS
            ),
            &[&uuid],
            rows::webhook_execution,
        )
        .await
    }
}
