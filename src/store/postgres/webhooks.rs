//! Webhooks and their delivery log on PostgreSQL, shared by every registry process on the
//! database (each process logs the deliveries it makes).

use super::super::webhooks::{ExecutionStatus, Webhook, WebhookExecution, WebhookStore};
use super::*;

const WEBHOOK_COLUMNS: &str =
    "uuid, description, consumer, provider, events, request, enabled, created_at, updated_at";

fn webhook_of(r: &Row) -> StoreResult<Webhook> {
    Ok(Webhook {
        uuid: r.get(0),
        description: r.get(1),
        consumer: r.get(2),
        provider: r.get(3),
        events: serde_json::from_str(r.get(4)).map_err(json_err)?,
        request: r.get(5),
        enabled: r.get(6),
        created_at: ts(r.get(7)),
        updated_at: ts(r.get(8)),
    })
}

fn execution_of(r: &Row) -> StoreResult<WebhookExecution> {
    Ok(WebhookExecution {
        id: r.get(0),
        webhook_uuid: r.get(1),
        delivery: r.get(2),
        event: r.get(3),
        consumer: r.get(4),
        provider: r.get(5),
        attempt: u32::try_from(r.get::<_, i32>(6)).unwrap_or_default(),
        status: ExecutionStatus::parse(r.get(7))?,
        response_code: r
            .get::<_, Option<i32>>(8)
            .and_then(|c| u16::try_from(c).ok()),
        error: r.get(9),
        executed_at: ts(r.get(10)),
    })
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn webhook_put(&self, w: &Webhook) -> StoreResult<bool> {
        let events = serde_json::to_string(&w.events).map_err(json_err)?;
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
        let row = self
            .lock()
            .await
            .query_opt(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE uuid = $1"),
                &[&uuid],
            )
            .await
            .map_err(err)?;
        row.as_ref().map(webhook_of).transpose()
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.rows(
            &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY seq"),
            &[],
            webhook_of,
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
        self.rows(
            "SELECT id, webhook_uuid, delivery, event, consumer, provider, attempt, status, response_code, error, executed_at
             FROM webhook_executions WHERE webhook_uuid = $1 ORDER BY id",
            &[&uuid],
            execution_of,
        )
        .await
    }
}
