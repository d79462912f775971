//! Per-run metrics in the gate's reports: requests by endpoint, retries by cause, org-time
//! latency percentiles, the API budget used, dead letters by code, duplicates suppressed.

use std::path::PathBuf;

use syncgate::contract::Registry;
use syncgate::sim::{Scenario, Seed};
use syncgate::verify::gate::{load_fixtures, run_scenario};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn gate_run(tenant: &str, scenario: &str) -> syncgate::verify::RunResult {
    let registry = Registry::open(&root().join("contracts")).unwrap();
    let t = registry
        .tenants()
        .unwrap()
        .into_iter()
        .find(|t| t.label() == tenant)
        .unwrap();
    let bundle = registry.load(&t).unwrap();
    let scenario =
        Scenario::load(&root().join(format!("harness/scenarios/{scenario}.yaml"))).unwrap();
    let fixtures = load_fixtures(
        std::slice::from_ref(&scenario),
        &root().join("harness/fixtures"),
    )
    .unwrap();
    run_scenario(&bundle, &scenario, &fixtures, Seed(5), false)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_runs_metrics_add_up_to_its_journal_and_report() {
    // Latency of 2-8 s on the composite calls, and the concurrency limit refusing some.
    let run = gate_run(
        "northwind-outfitters/sandbox",
        "concurrent-long-running-limit",
    )
    .await;
    let m = &run.metrics;
    assert_eq!(
        m.requests_by_endpoint.values().sum::<u64>() as usize,
        run.journal.len()
    );
    assert!(
        m.requests_by_endpoint
            .contains_key("POST /services/oauth2/token"),
        "{:?}",
        m.requests_by_endpoint
    );
    assert!(
        m.requests_by_endpoint
            .keys()
            .any(|k| k.starts_with("PATCH /services/data/vXX.X/composite/sobjects/Account/")),
        "{:?}",
        m.requests_by_endpoint
    );
    assert_eq!(m.latency_ms.calls, run.journal.len());
    let l = m.latency_ms;
    assert!(l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max, "{l:?}");
    // The scenario holds calls for 2-8 s of org time: the slowest took at least 2 s.
    assert!(l.max >= 2_000, "{l:?}");
    assert_eq!(
        m.retries_by_cause.values().sum::<u64>() as usize,
        run.report.retries,
        "{:?}",
        m.retries_by_cause
    );
    assert_eq!(
        m.dead_letters_by_code.values().sum::<u64>() as usize,
        run.report.dead_lettered,
        "{:?}",
        m.dead_letters_by_code
    );
    assert_eq!(
        m.api_budget_used,
        run.journal.iter().rev().find_map(|e| e.api_usage)
    );

    // A rerun of the same source: everything the engine skips is a suppressed duplicate.
    let rerun = gate_run("northwind-outfitters/sandbox", "rerun-same-source").await;
    assert!(rerun.report.already_synced > 0);
    assert!(
        rerun.metrics.duplicates_suppressed >= rerun.report.already_synced as u64,
        "{:?}",
        rerun.metrics
    );
}
