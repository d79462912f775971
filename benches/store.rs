//! Store operations per second on this machine: dedupe check-and-set, dead-letter append and
//! lease claim, on SQLite (a file) and PostgreSQL, in one run. Prints a table.
//!
//! `cargo bench --bench store` (PostgreSQL from `SYNCGATE_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; it is skipped with the reason if unreachable).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use syncgate::engine::dlq::{DeadLetter, ErrorClass};
use syncgate::sim::Timestamp;
use syncgate::store::{AppliedVersion, PgStore, SqliteStore, Store, WorkItem};

/// Operations timed per measurement (after a short warm-up).
const OPS: usize = 2000;
const TENANT: &str = "bench/tenant";

fn letter(n: usize, at: Timestamp) -> DeadLetter {
    DeadLetter {
        tenant: TENANT.into(),
        object: "Account".into(),
        source_id: format!("CUST-{n}"),
        source_version: 1,
        payload: json!({"Name": "Cedar Outfitters", "Phone": "+1 555 0100"}),
        class: ErrorClass::Rejected,
        error_code: "STRING_TOO_LONG".into(),
        message: "Name: data value too large".into(),
        attempts: 1,
        correlation_id: Some(format!("sg-{n:06}")),
        first_failed_at: at,
        last_failed_at: at,
        idempotency_key: format!("{TENANT}|Account|CUST-{n}|upsert|1"),
        headers_sent: Default::default(),
    }
}

fn version<'a>(key: &'a str, source_id: &'a str) -> AppliedVersion<'a> {
    AppliedVersion {
        key,
        tenant: TENANT,
        object: "Account",
        source_id,
        version: 1,
    }
}

/// Runs `op` for `0..OPS` and returns operations per second.
async fn rate<F, Fut>(mut op: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..50 {
        op(OPS * 10 + i).await;
    }
    let start = Instant::now();
    for i in 0..OPS {
        op(i).await;
    }
    OPS as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

async fn measure(name: &str, s: Arc<dyn Store>) -> Vec<(String, String, f64)> {
    let now = Timestamp::parse("2026-01-05T08:00:00Z").expect("a valid timestamp");
    let ttl = Duration::from_secs(3600);
    let mut out = Vec::new();

    let st = s.clone();
    let dedupe = rate(|i| {
        let st = st.clone();
        async move {
            st.check_and_set(&format!("key-{i}"), now, ttl)
                .await
                .expect("check_and_set");
        }
    })
    .await;
    out.push((name.to_string(), "dedupe check-and-set".to_string(), dedupe));

    // Applied record versions (key + applied version + superseding older letters): one
    // transaction per record, as the engine wrote them before, then one per batch of 200.
    let keys: Vec<String> = (0..OPS)
        .map(|i| format!("{TENANT}|Account|APPLIED-{i}|upsert|1"))
        .collect();
    let ids: Vec<String> = (0..OPS).map(|i| format!("APPLIED-{i}")).collect();
    let applied = |i: usize, round: &str| -> (String, String) {
        (format!("{round}{}", keys[i]), format!("{round}{}", ids[i]))
    };
    let owned: Vec<(String, String)> = (0..OPS).map(|i| applied(i, "one-")).collect();
    let start = Instant::now();
    for (key, id) in &owned {
        s.mark_applied(&version(key, id), now, ttl)
            .await
            .expect("mark_applied");
    }
    let one = OPS as f64 / start.elapsed().as_secs_f64().max(1e-9);
    out.push((name.to_string(), "applied key, 1 per tx".to_string(), one));
    let owned: Vec<(String, String)> = (0..OPS).map(|i| applied(i, "batch-")).collect();
    let start = Instant::now();
    for chunk in owned.chunks(200) {
        let batch: Vec<AppliedVersion<'_>> = chunk.iter().map(|(k, id)| version(k, id)).collect();
        s.mark_applied_all(&batch, now, ttl)
            .await
            .expect("mark_applied_all");
    }
    let batched = OPS as f64 / start.elapsed().as_secs_f64().max(1e-9);
    out.push((
        name.to_string(),
        "applied key, 200 per tx".to_string(),
        batched,
    ));

    let st = s.clone();
    let dlq = rate(|i| {
        let st = st.clone();
        async move {
            st.dlq_append(&letter(i, now)).await.expect("dlq_append");
        }
    })
    .await;
    out.push((name.to_string(), "DLQ append".to_string(), dlq));

    let items: Vec<WorkItem> = (0..OPS + 100)
        .map(|i| WorkItem {
            key: format!("batch-{i:06}"),
            stage: 0,
            payload: json!({"object": "Account", "source_ids": [format!("CUST-{i}")]}).to_string(),
        })
        .collect();
    s.lease_enqueue(TENANT, &items)
        .await
        .expect("lease_enqueue");
    let st = s.clone();
    let claim = rate(|_| {
        let st = st.clone();
        async move {
            let got = st
                .lease_claim(TENANT, "bench", 1, now, ttl)
                .await
                .expect("lease_claim");
            assert_eq!(got.len(), 1, "work left to claim");
        }
    })
    .await;
    out.push((name.to_string(), "lease claim".to_string(), claim));
    out
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let mut rows = Vec::new();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sqlite = SqliteStore::open(&dir.path().join("bench.sqlite")).expect("SQLite opens");
        rows.extend(measure("sqlite (file, WAL)", Arc::new(sqlite)).await);

        let url = std::env::var("SYNCGATE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("sgbench_{}", std::process::id());
        match PgStore::connect(&url, Some(&schema)).await {
            Ok(pg) => {
                let pg = Arc::new(pg);
                rows.extend(measure("postgres (loopback)", pg.clone()).await);
                if let Err(e) = pg.drop_schema().await {
                    eprintln!("could not drop the bench schema {schema}: {e}");
                }
            }
            Err(e) => println!("SKIPPED: postgres needs PostgreSQL at {url}: {e}"),
        }
        println!("{OPS} sequential operations each, one connection, after a warm-up of 50");
        println!("{:<22} {:<24} {:>12}", "backend", "operation", "ops/second");
        for (backend, op, per_sec) in rows {
            println!("{backend:<22} {op:<24} {per_sec:>12.0}");
        }
    });
}
