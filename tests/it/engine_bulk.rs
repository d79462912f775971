//! The engine's planning and calling against the mock org: Bulk API 2.0 above the
//! threshold (rejected rows dead-lettered, polls that honour `Retry-After`, parents landed
//! before children), real-time lane before backfill, the circuit breaker, the token bucket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use syncgate::contract::{Bundle, Registry};
use syncgate::engine::source::{SourceRecord, SourceSet};
use syncgate::engine::{EngineConfig, EngineError, EventKind, Fence, Sync, SyncReport};
use syncgate::mock::journal::JournalEntry;
use syncgate::mock::MockOrg;
use syncgate::sim::{Clock, Scenario, Seed, Timestamp};
use syncgate::store::{DeadLetterStore, DlqFilter, MemoryStore, StoredLetter};
use syncgate::verify::gate::{spawn_org, GateOrg};

fn bundle() -> Bundle {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let registry = Registry::open(&root.join("contracts")).expect("registry");
    let tenant = registry
        .select(&["northwind-outfitters".into()], &["production".into()])
        .expect("tenant")
        .remove(0);
    registry.load(&tenant).expect("bundle")
}

fn record(entity: &str, id: String, data: Value, changed_at: Option<Timestamp>) -> SourceRecord {
    SourceRecord {
        entity: entity.into(),
        id,
        version: 1,
        data: data.as_object().cloned().unwrap_or_else(Map::new),
        changed_at,
        deleted: false,
        origin: "test".into(),
    }
}

fn account(i: usize, industry: &str) -> SourceRecord {
    record(
        "accounts",
        format!("CUST-{i:05}"),
        json!({"company_name": format!("Account {i}"), "industry": industry,
               "annual_revenue": 1000 * i, "employees": i, "billing_city": "Denver"}),
        None,
    )
}

fn opportunity(i: usize, account: usize) -> SourceRecord {
    record(
        "opportunities",
        format!("OPP-{i:05}"),
        json!({"account_no": format!("CUST-{account:05}"), "name": format!("Renewal {i}"),
               "stage": "Prospecting", "amount": 5000 + i, "close_date": "2026-06-30"}),
        None,
    )
}

fn source(accounts: Vec<SourceRecord>, opportunities: Vec<SourceRecord>) -> SourceSet {
    let mut entities = BTreeMap::new();
    entities.insert("accounts".to_string(), accounts);
    entities.insert("opportunities".to_string(), opportunities);
    SourceSet { entities }
}

struct Run {
    report: SyncReport,
    org: MockOrg,
    journal: Vec<JournalEntry>,
    dead: Vec<StoredLetter>,
    start: Timestamp,
}

/// Runs one engine over `source` against a mock org with `scenario` faults; `org_bundle`
/// lets the org differ from the engine's bundle (what the org enforces).
async fn run(
    scenario: &str,
    org_bundle: impl FnOnce(&mut Bundle),
    config: EngineConfig,
    source: &SourceSet,
    prepare: impl FnOnce(Sync<'_>) -> Sync<'_>,
) -> Run {
    let bundle = bundle();
    let mut in_org = bundle.clone();
    org_bundle(&mut in_org);
    let scenario = Scenario::from_yaml(Path::new("engine-bulk.yaml"), scenario).expect("scenario");
    let clock = Clock::virtual_at(scenario.start);
    let GateOrg {
        org,
        running,
        target,
    } = spawn_org(in_org, Some(scenario.clone()), Seed(7), clock.clone())
        .await
        .expect("mock");
    let dlq = MemoryStore::new();
    let sync = prepare(Sync::new(&bundle, config, clock.clone(), Seed(7), &dlq));
    let report = sync.run(source, &target).await.expect("sync");
    running.stop().await;
    let dead = dlq.dlq_list(&DlqFilter::default()).await.expect("dlq list");
    Run {
        report,
        journal: org.journal(),
        org,
        dead,
        start: scenario.start,
    }
}

const NO_FAULTS: &str = "purpose: no faults\n";

fn small_threshold() -> EngineConfig {
    EngineConfig {
        bulk_threshold: 50,
        ..EngineConfig::default()
    }
}

fn api(journal: &[JournalEntry]) -> Vec<&JournalEntry> {
    journal
        .iter()
        .filter(|e| e.path.starts_with("/services/data/"))
        .collect()
}

fn is_job_create(e: &JournalEntry) -> bool {
    e.method == "POST" && e.path.trim_end_matches('/').ends_with("/jobs/ingest")
}

#[tokio::test]
async fn a_bulk_job_dead_letters_rejected_rows_and_lands_the_rest() {
    // The org's picklist no longer offers "Retail"; the engine's bundle still does, so
    // only the org can reject those rows.
    let accounts: Vec<_> = (0..120)
        .map(|i| account(i, if i % 10 == 3 { "Retail" } else { "Apparel" }))
        .collect();
    let r = run(
        NO_FAULTS,
        |b| {
            let industry = b
                .objects
                .get_mut("Account")
                .and_then(|o| o.fields.get_mut("Industry"))
                .expect("Industry");
            industry.values = Some(vec!["Apparel".into(), "Other".into()]);
        },
        small_threshold(),
        &source(accounts, vec![]),
        |s| s,
    )
    .await;
    let calls = api(&r.journal);
    assert!(
        calls.iter().all(|e| !e.path.contains("/composite/")),
        "every record went through Bulk, none through collections"
    );
    assert_eq!(calls.iter().filter(|e| is_job_create(e)).count(), 1);
    assert!(calls.iter().any(|e| e.path.ends_with("/failedResults")));
    assert_eq!(r.report.bulk_jobs, 1);
    assert_eq!(r.dead.len(), 12, "{:#?}", r.dead.first());
    for d in &r.dead {
        assert_eq!(
            d.letter.error_code,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        );
        assert!(!d.letter.message.is_empty());
        assert!(d.letter.correlation_id.is_some());
        let n: usize = d.letter.source_id[5..].parse().unwrap();
        assert_eq!(n % 10, 3, "only the Retail rows are dead-lettered");
        assert_eq!(d.letter.payload["Industry"], "Retail");
    }
    assert_eq!(r.org.records("Account").len(), 108);
    assert_eq!(r.report.created, 108);
    assert_eq!(r.report.dead_lettered, 12);
}

#[tokio::test]
async fn a_status_poll_answered_429_waits_for_retry_after() {
    let scenario = "purpose: the job status is rate limited once\nfaults:\n  - name: slow-down\n    match: { method: GET, path: \"/jobs/ingest/*\" }\n    calls: { first: 1, times: 1 }\n    respond:\n      rate_limited: { retry_after: 120s }\n";
    let accounts: Vec<_> = (0..80).map(|i| account(i, "Other")).collect();
    let r = run(
        scenario,
        |_| {},
        small_threshold(),
        &source(accounts, vec![]),
        |s| s,
    )
    .await;
    let calls = api(&r.journal);
    let limited = calls
        .iter()
        .position(|e| e.status == 429)
        .expect("the first poll was rate limited");
    let not_before = calls[limited].not_before.expect("Retry-After");
    let next = calls[limited + 1];
    assert_eq!(next.method, "GET", "the engine polled again");
    assert!(
        next.at >= not_before,
        "next poll at {} before Retry-After allowed {}",
        next.at.to_iso(),
        not_before.to_iso()
    );
    assert!(r.report.events.iter().any(|e| matches!(&e.kind,
        EventKind::Wait { reason, .. } if reason.starts_with("Retry-After"))));
    assert_eq!(r.org.records("Account").len(), 80);
    assert!(r.dead.is_empty());
}

#[tokio::test]
async fn parents_land_before_children_across_bulk_jobs() {
    let accounts: Vec<_> = (0..90).map(|i| account(i, "Other")).collect();
    let opportunities: Vec<_> = (0..70).map(|i| opportunity(i, (i * 7) % 90)).collect();
    let r = run(
        // Slow jobs: the parent job must be done before the children's job is created.
        "purpose: slow calls\nfaults:\n  - name: slow\n    respond: { latency: { min: 200ms, max: 900ms } }\n",
        |_| {},
        small_threshold(),
        &source(accounts, opportunities),
        |s| s,
    )
    .await;
    let calls = api(&r.journal);
    let creates: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, e)| is_job_create(e))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(creates.len(), 2, "one job per object");
    let account_results = calls
        .iter()
        .position(|e| e.path.ends_with("/successfulResults"))
        .expect("the Account job's results were read");
    assert!(
        account_results < creates[1],
        "the Opportunity job was created only after the Account job's results were read"
    );
    assert_eq!(r.report.bulk_jobs, 2);
    let opps = r.org.records("Opportunity");
    assert_eq!(opps.len(), 70);
    assert!(
        opps.iter().all(|o| o.value("AccountId").is_string()),
        "every Opportunity found its parent Account"
    );
    assert!(r.dead.is_empty());
}

/// Bulk API 2.0's minimum per job is create, upload, close, one status poll (the close
/// answer says `UploadComplete`, so one poll must see `JobComplete`) and
/// `successfulResults`. The first job's poll is timed from the engine's priors; the second
/// job's from what the org reported of the first (its `systemModstamp`s and
/// `totalProcessingTime`), so it comes sooner than the priors would have it.
#[tokio::test]
async fn each_bulk_job_is_polled_once_the_second_at_the_pace_the_first_showed() {
    let accounts: Vec<_> = (0..3_000).map(|i| account(i, "Other")).collect();
    let opportunities: Vec<_> = (0..2_500)
        .map(|i| opportunity(i, (i * 7) % 3_000))
        .collect();
    let config = EngineConfig::default();
    let r = run(
        NO_FAULTS,
        |_| {},
        config.clone(),
        &source(accounts, opportunities),
        |s| s,
    )
    .await;
    let calls = api(&r.journal);
    let methods: Vec<&str> = calls.iter().map(|e| e.method.as_str()).collect();
    let job = ["POST", "PUT", "PATCH", "GET", "GET"];
    assert_eq!(methods, [job, job].concat(), "the minimum: 5 calls a job");
    assert_eq!((r.report.bulk_jobs, r.report.bulk_polls), (2, 2));
    let waited = |close: usize| calls[close + 1].at.since(calls[close].at);
    let prior = syncgate::engine::bulk::Pace::new(&config);
    assert_eq!(
        waited(2),
        prior.first_wait("Account", 3_000, &config),
        "the Account job's poll: the priors"
    );
    // (At least 100 ms sooner: the clock counts whole milliseconds.)
    assert!(
        waited(7) + Duration::from_millis(100) < prior.first_wait("Opportunity", 2_500, &config),
        "the Opportunity job's poll came {:?} after its close: at the pace the Account job showed",
        waited(7)
    );
    assert_eq!(r.org.records("Opportunity").len(), 2_500);
    assert!(r.dead.is_empty());
}

#[tokio::test]
async fn real_time_changes_go_before_the_backfill_and_pull_their_parents() {
    let scenario = Scenario::from_yaml(Path::new("s.yaml"), NO_FAULTS).unwrap();
    let recent = Some(Timestamp::from_millis(scenario.start.as_millis() - 60_000));
    let mut accounts: Vec<_> = (0..100).map(|i| account(i, "Other")).collect();
    for a in accounts.iter_mut().take(3) {
        a.changed_at = recent;
    }
    let mut opportunities: Vec<_> = (0..60).map(|i| opportunity(i, 50 + i % 40)).collect();
    // Two real-time children whose parents (CUST-00050, CUST-00051) are backfill.
    opportunities[40].changed_at = recent;
    opportunities[41].changed_at = recent;
    // A third one is marked real-time by the caller.
    let marked = opportunities[5].id.clone();
    let r = run(
        NO_FAULTS,
        |_| {},
        small_threshold(),
        &source(accounts, opportunities),
        move |s| s.with_realtime(Arc::new(move |r: &SourceRecord| r.id == marked)),
    )
    .await;
    let calls = api(&r.journal);
    let kinds: Vec<String> = calls
        .iter()
        .map(|e| {
            if is_job_create(e) {
                "bulk".to_string()
            } else if e.path.contains("/composite/sobjects/") {
                format!(
                    "{}:{}",
                    e.object.clone().unwrap_or_default(),
                    e.records.unwrap_or(0)
                )
            } else {
                String::new()
            }
        })
        .filter(|k| !k.is_empty())
        .collect();
    // Real-time: 3 recent Accounts + 3 parents pulled in (CUST-00050, -51, -55), then the 3
    // real-time Opportunities; then the backfill: Accounts by Bulk (94 > 50), the other
    // 57 Opportunities by Bulk too.
    assert_eq!(
        kinds,
        vec!["Account:6", "Opportunity:3", "bulk", "bulk"],
        "{kinds:?}"
    );
    assert_eq!(r.org.records("Account").len(), 100);
    assert_eq!(r.org.records("Opportunity").len(), 60);
    assert!(r.dead.is_empty());
}

#[tokio::test]
async fn the_breaker_opens_after_consecutive_503s_and_cools_down_on_the_clock() {
    let scenario = "purpose: the org is down for a while\nfaults:\n  - name: down\n    match: { method: PATCH }\n    calls: { first: 1, times: 4 }\n    respond: server_unavailable\n";
    let accounts: Vec<_> = (0..10).map(|i| account(i, "Other")).collect();
    let config = EngineConfig {
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_secs(60),
        max_attempts: 10,
        ..EngineConfig::default()
    };
    let r = run(scenario, |_| {}, config, &source(accounts, vec![]), |s| s).await;
    let calls = api(&r.journal);
    let statuses: Vec<u16> = calls.iter().map(|e| e.status).collect();
    assert_eq!(statuses, vec![503, 503, 503, 503, 200]);
    let breaker_waits: Vec<Timestamp> = r
        .report
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Wait { until, reason } if reason.contains("circuit breaker") => {
                Some(Timestamp::parse(until).unwrap())
            }
            _ => None,
        })
        .collect();
    // Open after the 3rd failure; the probe (4th call) fails and opens it again.
    assert_eq!(breaker_waits.len(), 2, "{:#?}", r.report.events);
    assert_eq!(breaker_waits[0], calls[2].at.plus(Duration::from_secs(60)));
    assert!(
        calls[3].at >= breaker_waits[0],
        "the probe waited for the cooldown"
    );
    assert_eq!(breaker_waits[1], calls[3].at.plus(Duration::from_secs(60)));
    assert!(calls[4].at >= breaker_waits[1]);
    assert_eq!(r.report.breaker_opened, 2);
    assert_eq!(r.org.records("Account").len(), 10);
}

#[tokio::test]
async fn the_token_bucket_spaces_requests() {
    let accounts: Vec<_> = (0..12).map(|i| account(i, "Other")).collect();
    let config = EngineConfig {
        batch_size: 2,
        rate_per_sec: 2.0,
        burst: 1,
        ..EngineConfig::default()
    };
    let r = run(NO_FAULTS, |_| {}, config, &source(accounts, vec![]), |s| s).await;
    let calls = api(&r.journal);
    assert_eq!(calls.len(), 6);
    for pair in calls.windows(2) {
        let gap = pair[1].at.since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(500),
            "only {gap:?} between requests"
        );
    }
    assert!(calls[5].at.since(r.start) >= Duration::from_millis(2500));
    assert_eq!(r.org.records("Account").len(), 12);
}

#[tokio::test]
async fn a_failed_upload_aborts_the_job_and_sends_a_new_one() {
    let scenario = "purpose: the first upload breaks\nfaults:\n  - name: broken-upload\n    match: { method: PUT, path: \"/jobs/ingest/*/batches\" }\n    calls: { first: 1, times: 1 }\n    respond: server_unavailable\n";
    let accounts: Vec<_> = (0..80).map(|i| account(i, "Other")).collect();
    let r = run(
        scenario,
        |_| {},
        small_threshold(),
        &source(accounts, vec![]),
        |s| s,
    )
    .await;
    let calls = api(&r.journal);
    let steps: Vec<(String, u16)> = calls
        .iter()
        .map(|e| {
            let tail = e.path.rsplit("/jobs/ingest").next().unwrap_or("");
            let what = match (e.method.as_str(), tail.matches('/').count()) {
                ("POST", _) => "create",
                ("PUT", _) => "upload",
                ("PATCH", _) => "state",
                ("GET", 1) => "poll",
                _ => "results",
            };
            (what.to_string(), e.status)
        })
        .collect();
    let expect: Vec<(String, u16)> = [
        ("create", 200),
        ("upload", 503),
        ("state", 200), // the broken job is aborted
        ("create", 200),
        ("upload", 201),
        ("state", 200),
        ("poll", 200),
        ("results", 200),
    ]
    .iter()
    .map(|(w, s)| (w.to_string(), *s))
    .collect();
    assert_eq!(steps, expect);
    assert!(r.report.events.iter().any(|e| matches!(&e.kind,
        EventKind::Retry { code, records: 80, .. } if code == "SERVER_UNAVAILABLE")));
    assert_eq!(r.org.records("Account").len(), 80);
    assert_eq!(r.report.created, 80);
    assert!(r.dead.is_empty());
}

#[tokio::test]
async fn an_upload_of_several_megabytes_is_one_job() {
    // Over axum's default 2 MB body limit: the mock takes what Salesforce takes (150 MB).
    let accounts: Vec<_> = (0..25_000).map(|i| account(i, "Other")).collect();
    let r = run(
        NO_FAULTS,
        |_| {},
        EngineConfig::default(),
        &source(accounts, vec![]),
        |s| s,
    )
    .await;
    let calls = api(&r.journal);
    let methods: Vec<&str> = calls.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(
        methods,
        vec!["POST", "PUT", "PATCH", "GET", "GET"],
        "create, upload, close, one status poll, successfulResults: the minimum"
    );
    assert!(calls.iter().all(|e| e.status < 300));
    assert_eq!(r.report.bulk_jobs, 1);
    assert_eq!(r.report.bulk_polls, 1);
    // The mock processes 25,000 rows (three internal batches, two at a time) in about
    // 1.5 s. The one status poll comes when a job of that size should be done at the
    // engine's prior pace (0.5 s + 1.25 s, and 25% more: 2.19 s) and finds it complete;
    // the results are read right after.
    let closed = calls[2].at;
    let polled = calls[3].at;
    let read_back = calls[4].at;
    assert_eq!(
        polled.since(closed),
        std::time::Duration::from_millis(2187),
        "polled {:?} after closing",
        polled.since(closed)
    );
    assert!(
        read_back.since(closed) < std::time::Duration::from_millis(2_400),
        "read back {:?} after closing",
        read_back.since(closed)
    );
    assert_eq!(r.org.records("Account").len(), 25_000);
    assert!(r.dead.is_empty());
}

/// Aborts every open ingest job of the org right before the engine's `nth` request, once.
struct AbortsJobs {
    base: String,
    token: String,
    nth: usize,
    seen: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Fence for AbortsJobs {
    async fn still_ours(&self) -> Result<(), EngineError> {
        let n = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n != self.nth {
            return Ok(());
        }
        let http = syncgate::http::client();
        let jobs = format!("{}/services/data/v62.0/jobs/ingest", self.base);
        let list: Value = http
            .get(&jobs)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for job in list["records"].as_array().unwrap() {
            if job["state"] == "Open" {
                let status = http
                    .patch(format!("{jobs}/{}", job["id"].as_str().unwrap()))
                    .bearer_auth(&self.token)
                    .json(&json!({"state": "Aborted"}))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status.as_u16(), 200);
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_job_aborted_by_someone_else_is_sent_again_as_a_new_job() {
    let bundle = bundle();
    let scenario = Scenario::from_yaml(Path::new("abort.yaml"), NO_FAULTS).unwrap();
    let clock = Clock::virtual_at(scenario.start);
    let GateOrg {
        org,
        running,
        target,
    } = spawn_org(bundle.clone(), Some(scenario), Seed(3), clock.clone())
        .await
        .expect("mock");
    let dlq = MemoryStore::new();
    let accounts: Vec<_> = (0..80).map(|i| account(i, "Other")).collect();
    let refs: Vec<&SourceRecord> = accounts.iter().collect();
    // Requests: create (1), upload (2), then the job is aborted before the close (3).
    let fence = AbortsJobs {
        base: running.base_url(),
        token: org.issue_token(),
        nth: 3,
        seen: Default::default(),
    };
    let mut sync = Sync::new(&bundle, small_threshold(), clock.clone(), Seed(3), &dlq);
    let mut client = sync.connect(&target).await.expect("sign in");
    sync.send_records(&mut client, "Account", &refs, Some(&fence))
        .await
        .expect("sent");
    let report = sync.finish(&client);
    running.stop().await;
    let retried: Vec<&String> = report
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Retry {
                code, records: 80, ..
            } => Some(code),
            _ => None,
        })
        .collect();
    assert_eq!(retried, vec!["BULK_JOB_ABORTED"], "{:#?}", report.events);
    let engine_calls: Vec<(String, u16)> = org
        .journal()
        .iter()
        .filter(|e| {
            e.correlation_id
                .as_deref()
                .is_some_and(|c| c.starts_with("sg-"))
        })
        .map(|e| (e.method.clone(), e.status))
        .collect();
    let expect: Vec<(String, u16)> = [
        ("POST", 200),
        ("PUT", 201),
        ("PATCH", 409), // closing an aborted job
        ("GET", 200),   // the poll sees Aborted
        ("POST", 200),
        ("PUT", 201),
        ("PATCH", 200),
        ("GET", 200),
        ("GET", 200),
    ]
    .iter()
    .map(|(m, s)| (m.to_string(), *s))
    .collect();
    assert_eq!(engine_calls, expect);
    assert_eq!(report.bulk_jobs, 1);
    assert_eq!(report.created, 80);
    assert_eq!(org.records("Account").len(), 80);
    assert!(dlq
        .dlq_list(&DlqFilter::default())
        .await
        .unwrap()
        .is_empty());
}

/// The design's promise: on the virtual clock, an answer that is slow in *wall* time (a
/// busy machine, a slow loopback) never trips a timeout measured on the clock. Every
/// answer is held 150 ms of wall time; the run — Bulk job polls included — makes the same
/// requests, with no retry and no timeout, and ends at the same virtual time as without
/// the hold.
#[tokio::test]
async fn a_slow_loopback_answer_never_trips_a_virtual_timeout() {
    let src = source(
        (0..80).map(|i| account(i, "Apparel")).collect(),
        (0..20).map(|i| opportunity(i, i)).collect(),
    );
    let config = || EngineConfig {
        bulk_threshold: 50,
        bulk_poll_interval: Duration::from_millis(100),
        bulk_job_timeout: Duration::from_secs(1),
        ..EngineConfig::default()
    };
    let mut runs = Vec::new();
    for hold in [Duration::ZERO, Duration::from_millis(150)] {
        let bundle = bundle();
        let scenario = Scenario::from_yaml(Path::new("slow.yaml"), NO_FAULTS).expect("scenario");
        let clock = Clock::virtual_at(scenario.start);
        let GateOrg {
            org,
            running,
            target,
        } = spawn_org(bundle.clone(), Some(scenario), Seed(7), clock.clone())
            .await
            .expect("mock");
        org.hold_requests(hold);
        let dlq = MemoryStore::new();
        let started = std::time::Instant::now();
        let report = Sync::new(&bundle, config(), clock.clone(), Seed(7), &dlq)
            .run(&src, &target)
            .await
            .expect("sync");
        let wall = started.elapsed();
        running.stop().await;
        let requests: Vec<(String, String, u16)> = api(&org.journal())
            .iter()
            .map(|e| (e.method.clone(), e.path.clone(), e.status))
            .collect();
        runs.push((report, requests, clock.now(), wall));
    }
    let (fast, slow) = (&runs[0], &runs[1]);
    assert!(
        slow.3 >= Duration::from_millis(150) * slow.1.len() as u32,
        "the hold really held every answer: {:?} for {} requests",
        slow.3,
        slow.1.len()
    );
    assert_eq!(slow.0.retries, 0, "{:?}", slow.0.events);
    assert_eq!(slow.0.dead_lettered, 0);
    assert_eq!(slow.0.bulk_jobs, fast.0.bulk_jobs);
    assert!(slow.0.bulk_jobs >= 1, "the Bulk path ran");
    assert_eq!(slow.1, fast.1, "the same requests, in the same order");
    assert_eq!(slow.2, fast.2, "the same virtual end time");
}
