//! Webhooks and their delivery log on SQLite.

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use super::super::webhooks::{ExecutionStatus, Webhook, WebhookExecution, WebhookStore};
use super::{err, json_err, ts, SqliteStore};
use crate::store::{StoreError, StoreResult};
use async_trait::async_trait;

const WEBHOOK_COLUMNS: &str =
    "uuid, description, consumer, provider, events, request, enabled, created_at, updated_at";

/// A row of [`WEBHOOK_COLUMNS`], events still as JSON.
fn webhook_row(r: &Row) -> rusqlite::Result<(Webhook, String)> {
    Ok((
        Webhook {
            uuid: r.get(0)?,
            description: r.get(1)?,
            consumer: r.get(2)?,
            provider: r.get(3)?,
            events: Vec::new(),
            request: r.get(5)?,
            enabled: r.get(6)?,
            created_at: ts(r.get(7)?),
            updated_at: ts(r.get(8)?),
        },
        r.get(4)?,
    ))
}

fn with_events((mut w, events): (Webhook, String)) -> StoreResult<Webhook> {
    w.events = serde_json::from_str(&events).map_err(json_err)?;
    Ok(w)
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn webhook_put(&self, w: &Webhook) -> StoreResult<bool> {
        let events = serde_json::to_string(&w.events).map_err(json_err)?;
        let mut conn = self.lock();
        // Immediate: another process cannot create the same UUID between the look and the write.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
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
        let conn = self.lock();
        let row = conn
            .query_row(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE uuid = ?1"),
                params![uuid],
                webhook_row,
            )
            .optional()
            .map_err(err)?;
        row.map(with_events).transpose()
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY seq"
            ))
            .map_err(err)?;
        let rows = stmt.query_map([], webhook_row).map_err(err)?;
        rows.map(|r| r.map_err(err).and_then(with_events)).collect()
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
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, webhook_uuid, delivery, event, consumer, provider, attempt, status, response_code, error, executed_at
                 FROM webhook_executions WHERE webhook_uuid = ?1 ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![uuid], |r| {
                Ok((
                    WebhookExecution {
                        id: r.get(0)?,
                        webhook_uuid: r.get(1)?,
                        delivery: r.get(2)?,
                        event: r.get(3)?,
                        consumer: r.get(4)?,
                        provider: r.get(5)?,
                        attempt: r.get(6)?,
                        status: ExecutionStatus::Error,
                        response_code: r.get(8)?,
                        error: r.get(9)?,
                        executed_at: ts(r.get(10)?),
                    },
                    r.get::<_, String>(7)?,
                ))
            })
            .map_err(err)?;
        rows.map(|r| {
            let (mut e, status) = r.map_err(err)?;
            e.status = ExecutionStatus::parse(&status)?;
            Ok::<_, StoreError>(e)
        })
        .collect()
    }
}
