//! Dead letters on SQLite: one row per record, the letters it replaced kept in its history.

use super::dedupe::applied_of;
use super::*;

/// Retires the record's queued letter if `applied` overtakes its version.
pub(super) fn supersede_in(
    conn: &Connection,
    tenant: &str,
    object: &str,
    source_id: &str,
    applied: u64,
) -> StoreResult<bool> {
    let queued: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, letter FROM dead_letters
             WHERE tenant = ?1 AND object = ?2 AND source_id = ?3 AND status = 'queued'",
            params![tenant, object, source_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(err)?;
    let Some((id, letter)) = queued else {
        return Ok(false);
    };
    let letter: DeadLetter = rows::from_json(&letter)?;
    if !overtaken(letter.source_version, Some(applied)) {
        return Ok(false);
    }
    conn.execute(
        "UPDATE dead_letters SET status = 'superseded', superseded_by = ?2 WHERE id = ?1",
        params![id, version_to_sql(applied)],
    )
    .map_err(err)?;
    Ok(true)
}

/// Queues `letter` within the transaction `tx` (replacing the record's earlier letter,
/// kept in its history).
fn append_in(tx: &Connection, letter: &DeadLetter) -> StoreResult<i64> {
    let json = rows::to_json(letter)?;
    let applied = applied_of(tx, &letter.tenant, &letter.object, &letter.source_id)?;
    let (status, superseded_by) = status_on_append(letter.source_version, applied);
    let superseded_by = superseded_by.map(version_to_sql);
    let existing: Option<(i64, String, String)> = tx
            .query_row(
                "SELECT id, letter, history FROM dead_letters WHERE tenant = ?1 AND object = ?2 AND source_id = ?3",
                params![letter.tenant, letter.object, letter.source_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err)?;
    let id = match existing {
        Some((id, previous, history)) => {
            let history = rows::history_with(&history, &previous)?;
            tx.execute(
                    "UPDATE dead_letters SET letter = ?2, history = ?3, error_code = ?4, status = ?5, superseded_by = ?6 WHERE id = ?1",
                    params![id, json, history, letter.error_code, status.as_str(), superseded_by],
                )
                .map_err(err)?;
            id
        }
        None => {
            tx.execute(
                    "INSERT INTO dead_letters (tenant, object, source_id, error_code, letter, history, status, superseded_by) VALUES (?1, ?2, ?3, ?4, ?5, '[]', ?6, ?7)",
                    params![letter.tenant, letter.object, letter.source_id, letter.error_code, json, status.as_str(), superseded_by],
                )
                .map_err(err)?;
            tx.last_insert_rowid()
        }
    };
    Ok(id)
}

#[async_trait]
impl DeadLetterStore for SqliteStore {
    async fn dlq_append_all(&self, letters: &[DeadLetter]) -> StoreResult<Vec<i64>> {
        let mut conn = self.lock();
        let tx = write(&mut conn)?;
        let ids = letters
            .iter()
            .map(|letter| append_in(&tx, letter))
            .collect::<StoreResult<Vec<i64>>>()?;
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    async fn dlq_list(&self, filter: &DlqFilter) -> StoreResult<Vec<StoredLetter>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM dead_letters
                 WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR object = ?2) AND (?3 IS NULL OR error_code = ?3) ORDER BY id",
                rows::LETTER_COLUMNS
            ),
            params![filter.tenant, filter.object, filter.error_code],
            rows::stored_letter,
        )
    }

    async fn dlq_take(&self, id: i64) -> StoreResult<Option<StoredLetter>> {
        let mut conn = self.lock();
        let tx = write(&mut conn)?;
        let taken = first_row(
            &tx,
            &format!(
                "DELETE FROM dead_letters WHERE id = ?1 RETURNING {}",
                rows::LETTER_COLUMNS
            ),
            params![id],
            rows::stored_letter,
        )?;
        tx.commit().map_err(err)?;
        Ok(taken)
    }

    async fn dlq_supersede(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
        applied: u64,
    ) -> StoreResult<bool> {
        let mut conn = self.lock();
        let tx = write(&mut conn)?;
        let retired = supersede_in(&tx, tenant, object, source_id, applied)?;
        tx.commit().map_err(err)?;
        Ok(retired)
    }
}
