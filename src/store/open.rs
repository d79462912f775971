//! Which store a URL names (`postgres://…`, `sqlite:PATH`, `sqlite::memory:`, a plain path),
//! checked before anything is created, and opening it.

use std::path::Path;
use std::sync::Arc;

use super::{BrokerStore, PgStore, SqliteStore, Store, StoreError, StoreResult};

/// The environment variable naming the store when no `--database-url` is given.
pub const DATABASE_URL_ENV: &str = "SYNCGATE_DATABASE_URL";

/// Where state lives when no URL is given: an embedded SQLite file under the working directory.
pub const DEFAULT_SQLITE_PATH: &str = ".syncgate/state.sqlite";

/// What a store URL names, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// A private SQLite database in memory.
    SqliteMemory,
    /// A SQLite file (its directory must exist, except the default `.syncgate/`).
    SqliteFile(std::path::PathBuf),
    Postgres(String),
}

impl StoreUrl {
    /// Resolves `url` (`None`: [`DEFAULT_SQLITE_PATH`]), refusing an empty URL, an unknown
    /// scheme (`mysql://…`) and a SQLite file in a directory that does not exist: each would
    /// otherwise open a new, empty store where the user expects their state.
    pub fn parse(url: Option<&str>) -> StoreResult<StoreUrl> {
        let Some(url) = url else {
            return Ok(StoreUrl::SqliteFile(DEFAULT_SQLITE_PATH.into()));
        };
        let bad = |why: String| StoreError::BadUrl(format!("--database-url `{url}`: {why}"));
        if url.trim().is_empty() {
            return Err(StoreError::BadUrl(
                "--database-url is empty: give a SQLite path, sqlite:PATH, sqlite::memory: or postgres://… (or leave it out for .syncgate/state.sqlite)".into(),
            ));
        }
        if url == "sqlite::memory:" {
            return Ok(StoreUrl::SqliteMemory);
        }
        if is_postgres_url(url) {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        let path = match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Some(p) => p,
            None => {
                if let Some((scheme, _)) = url.split_once("://") {
                    return Err(bad(format!(
                        "unknown store scheme `{scheme}` (syncgate keeps state in SQLite or PostgreSQL: a path, sqlite:PATH, sqlite::memory: or postgres://…)"
                    )));
                }
                url
            }
        };
        if path.is_empty() {
            return Err(bad("no SQLite file path after `sqlite:`".into()));
        }
        let path = std::path::PathBuf::from(path);
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            let default_dir = Path::new(DEFAULT_SQLITE_PATH).parent();
            if !dir.is_dir() && Some(dir) != default_dir {
                return Err(bad(format!(
                    "the directory {} does not exist (create it first; only the default .syncgate/ is created for you)",
                    dir.display()
                )));
            }
        }
        Ok(StoreUrl::SqliteFile(path))
    }
}

/// Opens the store for `syncgate registry serve`: like [`open`], for backends that keep Pact
/// publications (SQLite and PostgreSQL; several registry processes may share one database).
pub fn open_broker(url: Option<&str>) -> StoreResult<Arc<dyn BrokerStore>> {
    match StoreUrl::parse(url)? {
        StoreUrl::SqliteMemory => Ok(Arc::new(SqliteStore::in_memory()?)),
        StoreUrl::SqliteFile(path) => Ok(Arc::new(SqliteStore::open(&path)?)),
        StoreUrl::Postgres(u) => Ok(Arc::new(PgStore::open_blocking(&u, None)?)),
    }
}

/// Opens the store a URL names: `postgres://…` or `postgresql://…` (migrated on open, under
/// an advisory lock), `sqlite:PATH`, `sqlite::memory:`, or a plain file path; no URL means
/// [`DEFAULT_SQLITE_PATH`], created on first use. The CLI passes `--database-url`, falling
/// back to [`DATABASE_URL_ENV`]. A URL [`StoreUrl::parse`] refuses is a
/// [`StoreError::BadUrl`].
///
/// Blocks while connecting; callable from inside or outside a tokio runtime.
pub fn open(url: Option<&str>) -> StoreResult<Arc<dyn Store>> {
    match StoreUrl::parse(url)? {
        StoreUrl::SqliteMemory => Ok(Arc::new(SqliteStore::in_memory()?)),
        StoreUrl::SqliteFile(path) => Ok(Arc::new(SqliteStore::open(&path)?)),
        StoreUrl::Postgres(u) => Ok(Arc::new(PgStore::open_blocking(&u, None)?)),
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
