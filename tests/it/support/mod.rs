//! Shared test helpers: reaching the local PostgreSQL and Redis, each test in its own
//! schema or key prefix, skipped with the reason when the server is absent (failed on CI).
#![allow(dead_code)]

pub mod served;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use syncgate::store::limiter::RedisLimiter;
use syncgate::store::PgStore;

/// The database tests use (`SYNCGATE_TEST_DATABASE_URL` overrides).
pub fn pg_url() -> String {
    std::env::var("SYNCGATE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The Redis tests use (`SYNCGATE_TEST_REDIS_URL` overrides).
pub fn redis_url() -> String {
    std::env::var("SYNCGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A name no other test run shares: process id, a counter, and the test's name.
pub fn unique_name(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let clean: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    format!("sgt_{}_{n}_{clean}", std::process::id())
}

/// Reports a server this test cannot reach: a skip on a laptop, a failure on CI.
pub fn unreachable(test: &str, what: &str, url: &str, error: &dyn std::fmt::Display) {
    let line = format!("SKIPPED: {test} needs {what} at {url}: {error}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{line} (CI=true, so this is a failure)");
    }
    // Straight to the process's stderr: libtest captures `println!`/`eprintln!` of passing
    // tests, and a skip must be seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A PostgreSQL store in a schema of its own, dropped when this is dropped.
pub struct PgSchema {
    pub store: Arc<PgStore>,
    pub schema: String,
}

impl PgSchema {
    /// Another connection to the same schema (as a second worker process would have).
    pub async fn another(&self) -> PgStore {
        PgStore::connect(&pg_url(), Some(&self.schema))
            .await
            .expect("second connection to the test schema")
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop is not async; the store's connection runs on its own thread, so a private
        // runtime on a helper thread can drive the statement.
        let store = self.store.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(store.drop_schema());
            }
        })
        .join();
    }
}

/// A PostgreSQL store for `test`, or `None` (after saying why) when none is reachable.
pub async fn postgres(test: &str) -> Option<PgSchema> {
    let url = pg_url();
    let schema = unique_name(test);
    match PgStore::connect(&url, Some(&schema)).await {
        Ok(store) => Some(PgSchema {
            store: Arc::new(store),
            schema,
        }),
        Err(e) => {
            unreachable(test, "PostgreSQL", &url, &e);
            None
        }
    }
}

/// A Redis limiter under a key prefix of its own; its keys are deleted when this drops.
pub struct RedisPrefix {
    pub limiter: Arc<RedisLimiter>,
}

impl std::ops::Deref for RedisPrefix {
    type Target = RedisLimiter;
    fn deref(&self) -> &RedisLimiter {
        &self.limiter
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        // The limiter's connection belongs to the test's runtime, which may be shutting
        // down; clear through a fresh connection on a private runtime instead.
        let prefix = self.limiter.prefix().to_string();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(l) = RedisLimiter::connect(&redis_url(), &prefix).await {
                        let _ = l.clear().await;
                    }
                });
            }
        })
        .join();
    }
}

/// A Redis limiter for `test` under a key prefix of its own, or `None` when none is reachable.
pub async fn redis(test: &str) -> Option<RedisPrefix> {
    let url = redis_url();
    match RedisLimiter::connect(&url, &unique_name(test)).await {
        Ok(l) => match l.clear().await {
            Ok(()) => Some(RedisPrefix {
                limiter: Arc::new(l),
            }),
            Err(e) => {
                unreachable(test, "Redis", &url, &e);
                None
            }
        },
        Err(e) => {
            unreachable(test, "Redis", &url, &e);
            None
        }
    }
}
