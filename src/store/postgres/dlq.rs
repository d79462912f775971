//! Dead letters on PostgreSQL: one row per record, the letters it replaced kept in its
//! history; rows are locked while a letter is replaced or retired.

use super::dedupe::applied_of;
use super::*;

/// Retires the record's queued letter if `applied` overtakes its version.
pub(super) async fn supersede_in(
    c: &impl GenericClient,
    tenant: &str,
    object: &str,
    source_id: &str,
    applied: u64,
) -> StoreResult<bool> {
    let row = c
        .query_opt(
            "SELECT id, letter FROM dead_letters
             WHERE tenant = $1 AND object = $2 AND source_id = $3 AND status = 'queued' FOR UPDATE",
            &[&tenant, &object, &source_id],
        )
        .await
        .map_err(err)?;
    let Some(row) = row else {
        return Ok(false);
    };
    let letter: DeadLetter = rows::json(&row, 1)?;
    if !overtaken(letter.source_version, Some(applied)) {
        return Ok(false);
    }
    let id = row.int(0)?;
    c.execute(
        "UPDATE dead_letters SET status = 'superseded', superseded_by = $2 WHERE id = $1",
        &[&id, &version_to_sql(applied)],
    )
    .await
    .map_err(err)?;
    Ok(true)
}

/// Queues `letter` within the transaction `tx` (replacing the record's earlier letter,
/// kept in its history; its row locked meanwhile).
async fn append_in(tx: &impl GenericClient, letter: &DeadLetter) -> StoreResult<i64> {
    let json = rows::to_json(letter)?;
    let applied = applied_of(tx, &letter.tenant, &letter.object, &letter.source_id).await?;
    let (status, superseded_by) = status_on_append(letter.source_version, applied);
    let superseded_by = superseded_by.map(version_to_sql);
    let inserted = tx
            .query_opt(
                "INSERT INTO dead_letters (tenant, object, source_id, error_code, letter, history, status, superseded_by)
                 VALUES ($1, $2, $3, $4, $5, '[]', $6, $7) ON CONFLICT (tenant, object, source_id) DO NOTHING
                 RETURNING id",
                &[
                    &letter.tenant,
                    &letter.object,
                    &letter.source_id,
                    &letter.error_code,
                    &json,
                    &status.as_str(),
                    &superseded_by,
                ],
            )
            .await
            .map_err(err)?;
    let id = match inserted {
        Some(row) => row.int(0)?,
        None => {
            // Already there: keep the earlier failure in the history.
            let row = tx
                .query_one(
                    "SELECT id, letter, history FROM dead_letters
                         WHERE tenant = $1 AND object = $2 AND source_id = $3 FOR UPDATE",
                    &[&letter.tenant, &letter.object, &letter.source_id],
                )
                .await
                .map_err(err)?;
            let id = row.int(0)?;
            let history = rows::history_with(&row.text(2)?, &row.text(1)?)?;
            tx.execute(
                "UPDATE dead_letters SET letter = $2, history = $3, error_code = $4,
                     status = $5, superseded_by = $6 WHERE id = $1",
                &[
                    &id,
                    &json,
                    &history,
                    &letter.error_code,
                    &status.as_str(),
                    &superseded_by,
                ],
            )
            .await
            .map_err(err)?;
            id
        }
    };
    Ok(id)
}

#[async_trait]
impl DeadLetterStore for PgStore {
    async fn dlq_append_all(&self, letters: &[DeadLetter]) -> StoreResult<Vec<i64>> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        let mut ids = Vec::with_capacity(letters.len());
        for letter in letters {
            ids.push(append_in(&tx, letter).await?);
        }
        tx.commit().await.map_err(err)?;
        Ok(ids)
    }

    async fn dlq_list(&self, filter: &DlqFilter) -> StoreResult<Vec<StoredLetter>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM dead_letters
                 WHERE ($1::TEXT IS NULL OR tenant = $1) AND ($2::TEXT IS NULL OR object = $2)
                   AND ($3::TEXT IS NULL OR error_code = $3)
                 ORDER BY id",
                rows::LETTER_COLUMNS
            ),
            &[&filter.tenant, &filter.object, &filter.error_code],
            rows::stored_letter,
        )
        .await
    }

    async fn dlq_take(&self, id: i64) -> StoreResult<Option<StoredLetter>> {
        self.first_row(
            &format!(
                "DELETE FROM dead_letters WHERE id = $1 RETURNING {}",
                rows::LETTER_COLUMNS
            ),
            &[&id],
            rows::stored_letter,
        )
        .await
    }

    async fn dlq_supersede(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
        applied: u64,
    ) -> StoreResult<bool> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        let retired = supersede_in(&tx, tenant, object, source_id, applied).await?;
        tx.commit().await.map_err(err)?;
        Ok(retired)
    }
}
