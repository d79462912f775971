//! Table sources: change records read from SQLite or PostgreSQL tables, incrementally, with
//! an `(updated_at, id)` cursor per tenant and table kept in the [`CheckpointStore`].
//!
//! One table per source entity (the bundle's `[objects.X] source = "accounts"` names it).
//! Columns: `id` (the record ID, becomes the external ID) and `updated_at` (a timestamp; in
//! SQLite ISO 8601 text with a zone, all rows in one format, or integer epoch milliseconds)
//! are required; `version` (a non-negative integer) and `deleted` (a boolean) are optional;
//! every other column is data. Without `version`, a row's version is its `updated_at` in
//! epoch milliseconds, so each change of a row is a new version for the dedupe store.
//!
//! Reading is two steps so a crash never skips a row: [`TableSource::pull`] reads the rows
//! after the stored cursors and returns them with the cursors they would advance to;
//! [`TableSource::commit`] stores those cursors, and the caller calls it only once the
//! engine has applied (or dead-lettered) every record of the pull. Rows with the same
//! `updated_at` are ordered by `id`, so a page boundary inside one millisecond loses nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::source::{SourceRecord, SourceSet};
use crate::sim::Timestamp;
use crate::store::{CheckpointStore, StoreError};

/// Where the tables are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableDb {
    /// A SQLite database file (opened read-only).
    Sqlite(PathBuf),
    /// A `postgres://…` URL.
    Postgres(String),
}

/// The last row read of one table: its raw `updated_at` (as the database compares it) and
/// its `id`. Rows after it are `(updated_at, id) > (cursor)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub updated_at: Value,
    pub id: Value,
}

/// Rows read by one [`TableSource::pull`], not yet committed.
#[derive(Clone, Debug, Default)]
pub struct Pull {
    pub set: SourceSet,
    /// Cursor scope → the cursor after this pull's last row of that table.
    pub pending: Vec<(String, Cursor)>,
    /// Rows read.
    pub rows: usize,
    /// A table filled the page: pull again (after committing) for the rest.
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot open the source database {db}: {message}")]
    Open { db: String, message: String },
    #[error("the source database has no table `{table}`: create it with at least the columns `id` (text) and `updated_at` (timestamp), one row per record")]
    MissingTable { table: String },
    #[error("source table `{table}` has no column `{column}`: {hint}")]
    MissingColumn {
        table: String,
        column: String,
        hint: String,
    },
    #[error("source table `{table}`, row id `{id}`, column `{column}`: {message}")]
    BadValue {
        table: String,
        id: String,
        column: String,
        message: String,
    },
    #[error("failed to read source table `{table}`: {message}")]
    Query { table: String, message: String },
    #[error("the stored cursor of `{scope}` is unreadable ({message}); delete that checkpoint to re-read the table from the start")]
    BadCursor { scope: String, message: String },
    #[error("failed to read or store a source cursor: {0}")]
    Store(#[from] StoreError),
}

enum Conn {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(tokio_postgres::Client),
}

/// A database of source tables for one tenant.
pub struct TableSource {
    conn: Conn,
    tenant: String,
}

/// Rows of one table after a cursor, converted.
struct TableRows {
    records: Vec<SourceRecord>,
    last: Option<Cursor>,
}

const ID_HINT: &str = "add the record ID as a text column `id`";
const UPDATED_HINT: &str = "add an `updated_at` timestamp column, set on every insert and update (the incremental cursor reads it)";

impl TableSource {
    /// Connects to `db`; `tenant` (`partner/tenant`) scopes the cursors.
    pub async fn open(db: &TableDb, tenant: &str) -> Result<TableSource, TableError> {
        let conn = match db {
            TableDb::Sqlite(path) => Conn::Sqlite(Mutex::new(open_sqlite(path)?)),
            TableDb::Postgres(url) => Conn::Postgres(open_postgres(url).await?),
        };
        Ok(TableSource {
            conn,
            tenant: tenant.to_string(),
        })
    }

    /// The checkpoint scope of `table`'s cursor.
    pub fn scope(&self, table: &str) -> String {
        format!("source-cursor:{}:{table}", self.tenant)
    }

    /// Reads up to `page` rows changed after the stored cursors, table by table in the
    /// order given (parents first): a table that fills the page ends it, so a child table
    /// is read only once its parents are drained up to now. Stores nothing.
    pub async fn pull(
        &self,
        tables: &[&str],
        cursors: &dyn CheckpointStore,
        page: usize,
    ) -> Result<Pull, TableError> {
        let page = page.max(1);
        let mut pull = Pull::default();
        let mut seen = BTreeSet::new();
        for &table in tables {
            if !seen.insert(table) {
                continue;
            }
            let room = page - pull.rows;
            if room == 0 {
                pull.more = true;
                break;
            }
            let scope = self.scope(table);
            let cursor = match cursors.checkpoint(&scope).await? {
                None => None,
                Some(text) => Some(serde_json::from_str::<Cursor>(&text).map_err(|e| {
                    TableError::BadCursor {
                        scope: scope.clone(),
                        message: e.to_string(),
                    }
                })?),
            };
            let rows = match &self.conn {
                Conn::Sqlite(c) => {
                    let c = c.lock().unwrap_or_else(|p| p.into_inner());
                    sqlite_rows(&c, table, cursor.as_ref(), room)?
                }
                Conn::Postgres(c) => pg_rows(c, table, cursor.as_ref(), room).await?,
            };
            let n = rows.records.len();
            pull.rows += n;
            if let Some(last) = rows.last {
                pull.pending.push((scope, last));
            }
            pull.set
                .entities
                .entry(table.to_string())
                .or_default()
                .extend(rows.records);
            if n == room {
                pull.more = true;
                break;
            }
        }
        Ok(pull)
    }

    /// Stores the cursors of `pull`: call it once every record of the pull is applied or
    /// dead-lettered.
    pub async fn commit(
        &self,
        pull: &Pull,
        cursors: &dyn CheckpointStore,
    ) -> Result<(), TableError> {
        for (scope, cursor) in &pull.pending {
            let text = serde_json::to_string(cursor).expect("a cursor serializes");
            cursors.set_checkpoint(scope, &text).await?;
        }
        Ok(())
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn query_err(table: &str) -> impl Fn(String) -> TableError + '_ {
    move |message| TableError::Query {
        table: table.to_string(),
        message,
    }
}

/// The names of a table's `columns` (name, type), or why the table cannot be a source:
/// missing, or without the `id` and `updated_at` columns every source table needs.
fn column_names(table: &str, columns: &[(String, String)]) -> Result<Vec<String>, TableError> {
    if columns.is_empty() {
        return Err(TableError::MissingTable {
            table: table.into(),
        });
    }
    let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    require(table, &names, "id", ID_HINT)?;
    require(table, &names, "updated_at", UPDATED_HINT)?;
    Ok(names)
}

fn require(table: &str, columns: &[String], column: &str, hint: &str) -> Result<(), TableError> {
    if columns.iter().any(|c| c == column) {
        Ok(())
    } else {
        Err(TableError::MissingColumn {
            table: table.to_string(),
            column: column.to_string(),
            hint: hint.to_string(),
        })
    }
}

/// Builds one record from a row's columns (already JSON), taking out the reserved ones.
fn record_from(
    table: &str,
    mut data: Map<String, Value>,
    changed_at: Timestamp,
    origin: String,
) -> Result<SourceRecord, TableError> {
    let id = match data.remove("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::Number(n)) => n.to_string(),
        other => {
            return Err(TableError::BadValue {
                table: table.into(),
                id: String::new(),
                column: "id".into(),
                message: format!(
                    "must be a non-empty text (or integer), not {}",
                    other.unwrap_or(Value::Null)
                ),
            })
        }
    };
    let bad = |column: &str, message: String| TableError::BadValue {
        table: table.into(),
        id: id.clone(),
        column: column.into(),
        message,
    };
    data.remove("updated_at");
    let version = match data.remove("version") {
        None => u64::try_from(changed_at.as_millis()).map_err(|_| {
            bad(
                "updated_at",
                "is before 1970; add a `version` column".into(),
            )
        })?,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or_default(),
        Some(other) => {
            return Err(bad(
                "version",
                format!("must be a non-negative integer, not {other}"),
            ))
        }
    };
    let deleted = match data.remove("deleted") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(Value::Number(n)) if n.as_i64() == Some(0) => false,
        Some(Value::Number(n)) if n.as_i64() == Some(1) => true,
        Some(other) => {
            return Err(bad(
                "deleted",
                format!("must be a boolean (or 0/1), not {other}"),
            ))
        }
    };
    Ok(SourceRecord {
        entity: table.to_string(),
        id,
        version,
        data,
        changed_at: Some(changed_at),
        deleted,
        origin,
    })
}

// --- SQLite ---------------------------------------------------------------------------

fn open_sqlite(path: &Path) -> Result<rusqlite::Connection, TableError> {
    let err = |message: String| TableError::Open {
        db: path.display().to_string(),
        message,
    };
    if !path.is_file() {
        return Err(err("no such file (give an existing SQLite database)".into()));
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| err(e.to_string()))?;
    // The source system keeps writing while we read.
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| err(e.to_string()))?;
    Ok(conn)
}

fn sql_param(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => V::Integer(i),
            None => V::Real(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => V::Text(s.clone()),
        Value::Null => V::Null,
        other => V::Text(other.to_string()),
    }
}

fn sqlite_rows(
    conn: &rusqlite::Connection,
    table: &str,
    cursor: Option<&Cursor>,
    limit: usize,
) -> Result<TableRows, TableError> {
    let qerr = query_err(table);
    let mut info = conn
        .prepare(&format!("PRAGMA table_info({})", quote(table)))
        .map_err(|e| qerr(e.to_string()))?;
    let columns: Vec<(String, String)> = info
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| qerr(e.to_string()))?;
    let names = column_names(table, &columns)?;
    let select = names
        .iter()
        .map(|n| quote(n))
        .collect::<Vec<_>>()
        .join(", ");
    let (sql, params): (String, Vec<rusqlite::types::Value>) = match cursor {
        None => (
            format!(
                "SELECT {select} FROM {} ORDER BY updated_at, id LIMIT ?1",
                quote(table)
            ),
            vec![rusqlite::types::Value::Integer(limit as i64)],
        ),
        Some(c) => (
            format!(
                "SELECT {select} FROM {} WHERE (updated_at, id) > (?1, ?2) ORDER BY updated_at, id LIMIT ?3",
                quote(table)
            ),
            vec![
                sql_param(&c.updated_at),
                sql_param(&c.id),
                rusqlite::types::Value::Integer(limit as i64),
            ],
        ),
    };
    let mut stmt = conn.prepare(&sql).map_err(|e| qerr(e.to_string()))?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(|e| qerr(e.to_string()))?;
    let mut out = TableRows {
        records: Vec::new(),
        last: None,
    };
    while let Some(row) = rows.next().map_err(|e| qerr(e.to_string()))? {
        let mut data = Map::new();
        let mut raw_updated = Value::Null;
        let mut raw_id = Value::Null;
        for (i, (name, decl)) in columns.iter().enumerate() {
            let v = row.get_ref(i).map_err(|e| qerr(e.to_string()))?;
            let value = sqlite_value(v, decl).map_err(|message| TableError::BadValue {
                table: table.into(),
                id: raw_id.to_string(),
                column: name.clone(),
                message,
            })?;
            if name == "updated_at" {
                raw_updated = value.clone();
            } else if name == "id" {
                raw_id = value.clone();
            }
            data.insert(name.clone(), value);
        }
        let id_text = match &raw_id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let changed_at = match &raw_updated {
            Value::String(s) => Timestamp::parse(s),
            Value::Number(n) => n.as_i64().map(Timestamp::from_millis),
            _ => None,
        }
        .ok_or_else(|| TableError::BadValue {
            table: table.into(),
            id: id_text.clone(),
            column: "updated_at".into(),
            message: format!(
                "{raw_updated} is not an ISO 8601 date-time with a zone (e.g. 2026-11-20T09:00:00.000Z) or integer epoch milliseconds"
            ),
        })?;
        let origin = format!("table {table} id {id_text}");
        out.records
            .push(record_from(table, data, changed_at, origin)?);
        out.last = Some(Cursor {
            updated_at: raw_updated,
            id: raw_id,
        });
    }
    Ok(out)
}

/// A SQLite value as JSON; a column declared BOOLEAN reads 0/1 as false/true.
fn sqlite_value(v: rusqlite::types::ValueRef<'_>, decl: &str) -> Result<Value, String> {
    use rusqlite::types::ValueRef as R;
    Ok(match v {
        R::Null => Value::Null,
        R::Integer(i) if decl.to_ascii_uppercase().contains("BOOL") => Value::Bool(i != 0),
        R::Integer(i) => Value::Number(i.into()),
        R::Real(f) => Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} is not a finite number"))?,
        R::Text(t) => Value::String(
            std::str::from_utf8(t)
                .map_err(|_| "text is not valid UTF-8".to_string())?
                .to_string(),
        ),
        R::Blob(_) => {
            return Err(
                "holds a BLOB; source columns must be integer, real, text, boolean or null".into(),
            )
        }
    })
}

// --- PostgreSQL -----------------------------------------------------------------------

async fn open_postgres(url: &str) -> Result<tokio_postgres::Client, TableError> {
    let err = |message: String| TableError::Open {
        db: redact(url),
        message,
    };
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| err(format!("{e}")))?;
    config.connect_timeout(std::time::Duration::from_secs(5));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| err(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // Cursor values are the database's own text of `updated_at`: one zone for all of them.
    client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok(client)
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn pg_rows(
    client: &tokio_postgres::Client,
    table: &str,
    cursor: Option<&Cursor>,
    limit: usize,
) -> Result<TableRows, TableError> {
    let qerr = query_err(table);
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .map_err(|e| qerr(e.to_string()))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    column_names(table, &columns)?;
    let ts_type = match columns.iter().find(|(n, _)| n == "updated_at") {
        Some((_, t)) if t == "timestamp with time zone" || t == "timestamp without time zone" => {
            t.clone()
        }
        Some((_, t)) => {
            return Err(TableError::MissingColumn {
                table: table.into(),
                column: "updated_at".into(),
                hint: format!(
                "it is `{t}`; make it `timestamp with time zone` (the cursor compares timestamps)"
            ),
            })
        }
        None => unreachable!("checked above"),
    };
    let t = quote(table);
    // Ordering by id's bytes, the same in the comparison and the ORDER BY.
    let head = format!(
        "SELECT row_to_json(t)::text, t.updated_at::text, t.id::text, \
         floor(extract(epoch from t.updated_at) * 1000)::bigint FROM {t} t"
    );
    let order = "ORDER BY t.updated_at, t.id::text COLLATE \"C\"";
    let rows = match cursor {
        None => {
            client
                .query(
                    &format!("{head} {order} LIMIT $1"),
                    &[&(limit as i64)],
                )
                .await
        }
        Some(c) => {
            let (Value::String(at), Value::String(id)) = (&c.updated_at, &c.id) else {
                return Err(TableError::BadCursor {
                    scope: table.into(),
                    message: "a PostgreSQL cursor holds text".into(),
                });
            };
            client
                .query(
                    &format!(
                        "{head} WHERE (t.updated_at, t.id::text COLLATE \"C\") > ($1::text::{ts_type}, $2::text COLLATE \"C\") {order} LIMIT $3"
                    ),
                    &[at, id, &(limit as i64)],
                )
                .await
        }
    }
    .map_err(|e| qerr(e.to_string()))?;
    let mut out = TableRows {
        records: Vec::new(),
        last: None,
    };
    for row in rows {
        let json: String = row.get(0);
        let at: String = row.get(1);
        let id: String = row.get(2);
        let ms: i64 = row.get(3);
        let data = match serde_json::from_str::<Value>(&json) {
            Ok(Value::Object(m)) => m,
            _ => return Err(qerr(format!("row {id} did not read as a JSON object"))),
        };
        let origin = format!("table {table} id {id}");
        out.records.push(record_from(
            table,
            data,
            Timestamp::from_millis(ms),
            origin,
        )?);
        out.last = Some(Cursor {
            updated_at: Value::String(at),
            id: Value::String(id),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
