//! The seed's nightly load — 42,000 Accounts and 12,200 Opportunities — synced into the mock
//! org over loopback with realistic per-call latency on the virtual clock. Prints the API
//! calls used against the minimum possible, limit violations, and wall and virtual time,
//! once with the default engine (both objects are over the 2,000-record Bulk threshold, so
//! one Bulk API 2.0 job each) and once with `bulk_threshold = usize::MAX` (sObject
//! Collections of 200 only), so the two can be compared.
//!
//! Run: `cargo bench --bench nightly`

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Map, Value};
use syncgate::contract::{Bundle, Registry};
use syncgate::engine::source::{SourceRecord, SourceSet};
use syncgate::engine::{EngineConfig, Sync};
use syncgate::sim::{Clock, Scenario, Seed};
use syncgate::store::{DeadLetterStore, DlqFilter, MemoryStore};
use syncgate::verify::gate::{spawn_org, GateOrg};

const ACCOUNTS: usize = 42_000;
const OPPORTUNITIES: usize = 12_200;

fn record(entity: &str, id: String, data: Value) -> SourceRecord {
    SourceRecord {
        entity: entity.into(),
        id,
        version: 1,
        data: data.as_object().cloned().unwrap_or_else(Map::new),
        changed_at: None,
        deleted: false,
        origin: "bench".into(),
    }
}

fn nightly_load() -> SourceSet {
    let industries = ["Retail", "Manufacturing", "Transportation"];
    let stages = [
        "Prospecting",
        "Qualification",
        "Proposal",
        "Negotiation",
        "Closed Won",
    ];
    let accounts = (0..ACCOUNTS)
        .map(|i| {
            record(
                "accounts",
                format!("CUST-{:06}", i),
                json!({"company_name": format!("Account {i}"), "industry": industries[i % 3], "annual_revenue": 1000 * (i % 9000), "employees": i % 2400, "billing_city": "Denver", "billing_country": "United States"}),
            )
        })
        .collect();
    let opportunities = (0..OPPORTUNITIES)
        .map(|i| {
            record(
                "opportunities",
                format!("OPP-{:06}", i),
                json!({"account_no": format!("CUST-{:06}", (i * 7) % ACCOUNTS), "name": format!("Renewal {i}"), "stage": stages[i % 5], "amount": 5000 + i, "close_date": "2026-06-30"}),
            )
        })
        .collect();
    let mut entities = BTreeMap::new();
    entities.insert("accounts".to_string(), accounts);
    entities.insert("opportunities".to_string(), opportunities);
    SourceSet { entities }
}

fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let registry = Registry::open(&root.join("contracts")).expect("registry");
    let tenant = registry
        .select(&["northwind-outfitters".into()], &["production".into()])
        .expect("tenant")
        .remove(0);
    let bundle = registry.load(&tenant).expect("bundle");
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario_path = dir.path().join("nightly.yaml");
    // A collections call of 200 records takes 0.3 to 1.2 s in a real org.
    std::fs::write(&scenario_path, "purpose: nightly load with realistic latency\nfaults:\n  - name: latency\n    respond: { latency: { min: 300ms, max: 1200ms } }\n").expect("write scenario");
    let scenario = Scenario::load(&scenario_path).expect("scenario");
    let source = nightly_load();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let collections_only = EngineConfig {
        bulk_threshold: usize::MAX,
        ..EngineConfig::default()
    };
    let runs = [
        ("bulk (default, threshold 2,000)", EngineConfig::default()),
        (
            "collections only (bulk_threshold = usize::MAX)",
            collections_only,
        ),
    ];
    println!("nightly load: {ACCOUNTS} Accounts + {OPPORTUNITIES} Opportunities into the mock org (latency 300..1200 ms per call)");
    for (label, config) in runs {
        let bulk = config.bulk_threshold < ACCOUNTS.min(OPPORTUNITIES);
        runtime.block_on(run(label, config, bulk, &bundle, &scenario, &source));
    }
}

async fn run(
    label: &str,
    config: EngineConfig,
    bulk: bool,
    bundle: &Bundle,
    scenario: &Scenario,
    source: &SourceSet,
) {
    let clock = Clock::virtual_at(scenario.start);
    let GateOrg {
        org,
        running,
        target,
    } = spawn_org(
        bundle.clone(),
        Some(scenario.clone()),
        Seed(1),
        clock.clone(),
    )
    .await
    .expect("mock");
    let dlq = MemoryStore::new();
    let wall = Instant::now();
    let report = Sync::new(bundle, config, clock.clone(), Seed(1), &dlq)
        .run(source, &target)
        .await
        .expect("sync");
    let elapsed = wall.elapsed();
    running.stop().await;

    let journal = org.journal();
    let violations = journal
        .iter()
        .filter(|e| e.status == 429 || e.status == 403)
        .count();
    // Bulk, per object: create, upload, close, one status poll, successfulResults (failed
    // and unprocessed results are only read when the job reports such rows).
    let (minimum, how) = if bulk {
        (
            2 * 5,
            "2 objects x (create + upload + close + 1 status poll + successfulResults)",
        )
    } else {
        (
            ACCOUNTS.div_ceil(200) + OPPORTUNITIES.div_ceil(200),
            "records / 200 per collections call",
        )
    };
    let in_org = org.records("Account").len() + org.records("Opportunity").len();
    let mut dead_codes: BTreeMap<String, usize> = BTreeMap::new();
    for d in dlq.dlq_list(&DlqFilter::default()).await.expect("dlq") {
        *dead_codes.entry(d.letter.error_code).or_default() += 1;
    }
    println!();
    println!("== {label}");
    println!(
        "records synced:        {} ({} in the org, {} dead-lettered)",
        report.created + report.updated,
        in_org,
        report.dead_lettered
    );
    if !dead_codes.is_empty() {
        println!("dead-letter codes:     {dead_codes:?}");
    }
    println!("API calls used:        {}", report.api_calls);
    println!("minimum possible:      {minimum} ({how})");
    println!(
        "calls over minimum:    {:.2}%",
        100.0 * (report.api_calls as f64 - minimum as f64) / minimum as f64
    );
    if bulk {
        println!(
            "bulk jobs / polls:     {} / {}",
            report.bulk_jobs, report.bulk_polls
        );
    }
    println!("retries:               {}", report.retries);
    println!("limit violations:      {violations} (429/403 answers)");
    println!(
        "virtual time:          {:.1} min",
        clock.now().since(scenario.start).as_secs_f64() / 60.0
    );
    println!("wall time:             {:.2} s", elapsed.as_secs_f64());
}
