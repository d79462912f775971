//! Several engine workers on one tenant, each the runner `syncgate sync` runs with shared
//! work: leases in PostgreSQL, the limiter in Redis, one mock org with a small daily budget
//! and a concurrency cap; one worker dies mid-batch.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use syncgate::contract::Bundle;
use syncgate::engine::client::{Credentials, Secret};
use syncgate::engine::feed::Feed;
use syncgate::engine::runner::{RunError, RunSummary, Runner};
use syncgate::engine::shared::{self, SharedWork, WorkerConfig};
use syncgate::engine::source::SourceSet;
use syncgate::engine::{EngineConfig, EngineError, Target};
use syncgate::mock::{self, ClientCredentials, MockConfig, MockOrg};
use syncgate::sim::scenario::LimitOverrides;
use syncgate::sim::{Clock, Scenario, Seed, Timestamp};
use syncgate::store::limiter::{LimitPolicy, Limiter, LocalLimiter, RedisLimiter};
use syncgate::store::{
    DeadLetterStore, DlqFilter, Lease, LeaseStore, PgStore, SqliteStore, Store, StoreResult,
    WorkItem,
};
use syncgate::verify::invariants::{self, Evidence};
use syncgate::verify::oracle::expectations;

const DAILY_BUDGET: u64 = 15;
/// The shared limiter's daily budget in the worker tests (see where it is set).
const LIMITER_BUDGET: u64 = DAILY_BUDGET - 2;
const MAX_CONCURRENT: u32 = 2;
/// Worker 2 dies on this claim: late enough that three live workers compete for the two
/// slots for a while, so the cap has something to hold back, and early enough that it gets
/// there on a loaded machine (on its sixth, the other two sometimes finished every batch
/// first: 2 of 20 runs with two CPU burners beside the test).
const DIES_ON_CLAIM: usize = 3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The leases of the worker that will die: it claims normally, and on the first renewal of
/// its third batch (after the limiter gave it a permit, right before sending) it hangs
/// until the test kills it. It dies holding a lease and a concurrency slot.
struct Doomed {
    inner: Arc<dyn LeaseStore>,
    claims: AtomicUsize,
    held: Mutex<Option<Lease>>,
    dying: Mutex<Option<tokio::sync::oneshot::Sender<Lease>>>,
    /// What it did before it died (its report dies with it).
    completed: Mutex<Vec<String>>,
    lost: Mutex<Vec<String>>,
}

#[async_trait]
impl LeaseStore for Doomed {
    async fn lease_enqueue(&self, tenant: &str, items: &[WorkItem]) -> StoreResult<usize> {
        self.inner.lease_enqueue(tenant, items).await
    }
    async fn lease_claim(
        &self,
        tenant: &str,
        worker: &str,
        max: usize,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<Lease>> {
        let got = self
            .inner
            .lease_claim(tenant, worker, max, now, ttl)
            .await?;
        if !got.is_empty() && self.claims.fetch_add(1, Ordering::SeqCst) == DIES_ON_CLAIM - 1 {
            *self.held.lock().unwrap() = got.first().cloned();
        }
        Ok(got)
    }
    async fn lease_renew(
        &self,
        lease: &Lease,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Timestamp> {
        let second = self.held.lock().unwrap().clone();
        if second.as_ref() == Some(lease) {
            if let Some(tx) = self.dying.lock().unwrap().take() {
                let _ = tx.send(lease.clone());
            }
            std::future::pending::<()>().await;
        }
        let renewed = self.inner.lease_renew(lease, now, ttl).await;
        if renewed.is_err() {
            self.lost.lock().unwrap().push(lease.key.clone());
        }
        renewed
    }
    async fn lease_complete(&self, lease: &Lease) -> StoreResult<()> {
        let done = self.inner.lease_complete(lease).await;
        match &done {
            Ok(()) => self.completed.lock().unwrap().push(lease.key.clone()),
            Err(_) => self.lost.lock().unwrap().push(lease.key.clone()),
        }
        done
    }
    async fn lease_open(&self, tenant: &str) -> StoreResult<usize> {
        self.inner.lease_open(tenant).await
    }
}

/// One worker's view of the shared state: its own connection, as a separate process has
/// (the same store, as the runner and as a lease store).
type Connect = Box<
    dyn Fn() -> std::pin::Pin<
        Box<dyn std::future::Future<Output = (Arc<dyn Store>, Arc<dyn LeaseStore>)> + Send>,
    >,
>;
type ConnectLimiter =
    Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn Limiter>> + Send>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_on_postgres_and_redis_survive_a_killed_one() {
    let test = "three_workers_on_postgres_and_redis";
    let Some(pg) = support::postgres(test).await else {
        return;
    };
    let Some(redis) = support::redis(test).await else {
        return;
    };
    let schema = pg.schema.clone();
    let connect: Connect = Box::new(move || {
        let schema = schema.clone();
        Box::pin(async move {
            let s = Arc::new(
                PgStore::connect(&support::pg_url(), Some(&schema))
                    .await
                    .expect("a worker's connection"),
            );
            (s.clone() as Arc<dyn Store>, s as Arc<dyn LeaseStore>)
        })
    });
    let prefix = redis.prefix().to_string();
    let limiter: ConnectLimiter = Box::new(move || {
        let prefix = prefix.clone();
        Box::pin(async move {
            Arc::new(
                RedisLimiter::connect(&support::redis_url(), &prefix)
                    .await
                    .expect("a worker's Redis connection"),
            ) as Arc<dyn Limiter>
        })
    });
    three_workers(connect, limiter).await;
}

/// The same run with nothing but syncgate: SQLite leases (a connection per worker to one
/// file) and one per-process limiter shared by the three workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_on_sqlite_and_a_local_limiter_survive_a_killed_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let connect: Connect = Box::new(move || {
        let path = path.clone();
        Box::pin(async move {
            let s = Arc::new(SqliteStore::open(&path).expect("a worker's connection"));
            (s.clone() as Arc<dyn Store>, s as Arc<dyn LeaseStore>)
        })
    });
    let shared: Arc<dyn Limiter> = Arc::new(LocalLimiter::new());
    let limiter: ConnectLimiter = Box::new(move || {
        let shared = shared.clone();
        Box::pin(async move { shared })
    });
    three_workers(connect, limiter).await;
}

/// Three workers on one tenant against one mock org; worker 2 dies mid-batch.
async fn three_workers(connect: Connect, connect_limiter: ConnectLimiter) {
    let bundle =
        Arc::new(Bundle::load(&root().join("contracts/northwind-outfitters/sandbox")).unwrap());
    let source = Arc::new(SourceSet::load_dir(&root().join("harness/fixtures/default")).unwrap());
    let start = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
    let clock = Clock::virtual_at(start);
    let mut scenario = Scenario::load(&root().join("harness/scenarios/baseline.yaml")).unwrap();
    scenario.limits = LimitOverrides {
        daily_api_requests: Some(DAILY_BUDGET),
        used_at_start: 0,
        concurrent_long_running: None,
    };
    scenario.start = start;
    let creds = ClientCredentials::gate();
    let org = MockOrg::new(MockConfig {
        bundle: (*bundle).clone(),
        scenario: Some(scenario),
        seed: Seed(7),
        clock: clock.clone(),
        clients: vec![creds.clone()],
    });
    // Hold every request a little (wall time) so that concurrent workers really overlap.
    org.hold_requests(Duration::from_millis(8));
    let running = mock::spawn(org.clone(), 0).await.unwrap();
    let target = Target {
        login_url: running.base_url(),
        credentials: Credentials::client_credentials(
            creds.client_id.clone(),
            Secret::new(creds.client_secret.clone()),
        ),
        request_log: None,
        ca_pem: None,
    };

    let batch_size = 20;
    let engine = |n: u64| EngineConfig {
        batch_size,
        client_name: format!("syncgate-w{n}"),
        max_window_waits: 10,
        // On the shared virtual clock, another worker's wait for the next daily window can
        // move time by a day while this one is inside a request (a jump that cannot happen
        // on the wall clock, where the shared budget makes every worker wait the same
        // window). This test is about leases and the shared budget, not the run deadline.
        limits: syncgate::engine::bounds::Limits {
            run_deadline: Duration::from_secs(30 * 24 * 3600),
            ..Default::default()
        },
        ..EngineConfig::default()
    };
    let (dlq, leases) = connect().await;
    // Planning is the runner's own (each worker plans the page it read); planning twice
    // queues nothing new.
    let planner = syncgate::engine::Sync::new(&bundle, engine(0), clock.clone(), Seed(0), &*dlq);
    let (scope, queued) = shared::plan(&*leases, &planner, &source, batch_size)
        .await
        .unwrap();
    assert_eq!(scope, shared::scope(&bundle, &source));
    assert!(
        queued > 2 * DAILY_BUDGET as usize,
        "the budget must bind: {queued} batches"
    );
    assert_eq!(
        shared::plan(&*leases, &planner, &source, batch_size)
            .await
            .unwrap()
            .1,
        0
    );

    let policy = LimitPolicy {
        rate_per_sec: 50.0,
        burst: 5,
        // Two below the org's limit, so the shared limiter (which waits for the next window
        // only once no request it granted is in flight) binds before the engine's own guard
        // on the org's count (`Sforce-Limit-Info`, one call kept): on the shared virtual
        // clock that guard's wait jumped to midnight under another worker's request in
        // flight, expiring its permit, and a third request reached the org (seen in CI).
        daily_budget: LIMITER_BUDGET,
        max_concurrent: MAX_CONCURRENT,
        permit_ttl: Duration::from_secs(120),
        slot_poll: Duration::from_millis(100),
    };
    let (dying_tx, dying_rx) = tokio::sync::oneshot::channel();
    let doomed = Arc::new(Doomed {
        inner: connect().await.1,
        claims: AtomicUsize::new(0),
        held: Mutex::new(None),
        dying: Mutex::new(Some(dying_tx)),
        completed: Mutex::new(Vec::new()),
        lost: Mutex::new(Vec::new()),
    });
    let mut handles = Vec::new();
    for n in 1..=3u64 {
        let (state, own_leases) = connect().await;
        let leases: Arc<dyn LeaseStore> = if n == 2 { doomed.clone() } else { own_leases };
        let limiter = connect_limiter().await;
        let (bundle, source, target, clock) = (
            bundle.clone(),
            source.clone(),
            target.clone(),
            clock.clone(),
        );
        let (config, policy) = (engine(n), policy.clone());
        // Each worker is what `syncgate sync --shared` runs: the one runner, sharing work.
        handles.push(tokio::spawn(async move {
            let mut runner = Runner::new(&bundle, config, clock, &*state, Seed(n));
            runner.shared = Some(SharedWork {
                leases,
                worker: WorkerConfig {
                    lease_ttl: Duration::from_secs(60),
                    ..WorkerConfig::new(format!("w{n}"))
                },
            });
            runner.limiter = (limiter, policy);
            let mut feed = Feed::fixed((*source).clone());
            let mut summary = RunSummary::default();
            runner
                .run(&mut feed, &target, &mut summary)
                .await
                .map(|()| (format!("w{n}"), summary))
        }));
    }

    let dead_batch = match tokio::time::timeout(Duration::from_secs(60), dying_rx).await {
        Ok(Ok(lease)) => lease,
        _ => {
            // Say what the workers did instead.
            let mut outcomes = Vec::new();
            for h in handles {
                h.abort();
                outcomes.push(format!(
                    "{:?}",
                    h.await.map(|r| r.map(|(w, s)| (w, s.shared)))
                ));
            }
            panic!("worker 2 never reached its third batch: {outcomes:#?}");
        }
    };
    handles[1].abort();
    let mut reports: Vec<(String, RunSummary)> = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let outcome = tokio::time::timeout(Duration::from_secs(120), h)
            .await
            .expect("workers finish");
        if i == 1 {
            assert!(outcome.unwrap_err().is_cancelled(), "worker 2 was killed");
        } else {
            let report: Result<(String, RunSummary), RunError> = outcome.unwrap();
            reports.push(report.unwrap());
        }
    }
    running.stop().await;

    // The killed worker's batch was taken over after its lease expired.
    assert_eq!(leases.lease_open(&scope).await.unwrap(), 0);
    let shared_of = |r: &RunSummary| r.shared.clone().unwrap_or_default();
    let by_dead = doomed.completed.lock().unwrap().clone();
    let done: Vec<(String, shared::SharedReport)> = reports
        .iter()
        .map(|(w, r)| (w.clone(), shared_of(r)))
        .collect();
    let completed: Vec<&String> = done
        .iter()
        .flat_map(|(_, r)| &r.completed)
        .chain(&by_dead)
        .collect();
    assert!(
        completed.contains(&&dead_batch.key),
        "{} was taken over: {completed:?}",
        dead_batch.key
    );
    let distinct: BTreeSet<&String> = completed.iter().copied().collect();
    assert_eq!(distinct.len(), completed.len(), "no batch completed twice");

    // Every record exactly once in the org (or dead-lettered), values right, budget kept:
    // the gate's own invariants.
    let journal = org.journal();
    let org_state: BTreeMap<String, Vec<_>> = bundle
        .objects
        .keys()
        .map(|o| (o.clone(), org.records(o)))
        .collect();
    let letters: Vec<_> = dlq
        .dlq_list(&DlqFilter::tenant(&format!(
            "{}/{}",
            bundle.partner, bundle.tenant
        )))
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.letter)
        .collect();
    let expected = expectations(&bundle, &bundle, &source);
    let violations = invariants::check(&Evidence {
        bundle: &bundle,
        expectations: &expected,
        org: &org_state,
        journal: &journal,
        source: &source,
        // Requests are checked below from the journal; no single engine report exists.
        engine: &syncgate::verify::evidence::EngineOutput {
            dead_letters: letters,
            ..Default::default()
        },
        manual_edits: &[],
    });
    assert!(violations.is_empty(), "{violations:#?}");

    // Applied exactly once: every record the org holds was created by exactly one request,
    // and no record was sent again (the dead worker never sent its last batch).
    let in_org: usize = org_state.values().map(Vec::len).sum();
    let collections: Vec<_> = journal
        .iter()
        .filter(|e| e.path.starts_with("/services/data/v"))
        .collect();
    let created: usize = collections.iter().filter_map(|e| e.created).sum();
    let succeeded: usize = collections
        .iter()
        .filter_map(|e| e.outcome)
        .map(|o| o.0)
        .sum();
    let sent: Vec<String> = collections
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?} records={:?} outcome={:?} created={:?} status={} fault={:?} usage={:?}",
                e.at.to_iso(),
                e.client.as_deref().unwrap_or("-"),
                e.object,
                e.records,
                e.outcome,
                e.created,
                e.status,
                e.fault,
                e.api_usage
            )
        })
        .collect();
    assert_eq!(created, in_org, "no duplicate creates: {sent:#?}");
    // A batch is sent a second time only when its lease was taken over after it was sent
    // and before it was completed (its first worker then finds the lease gone); the second
    // send updates what the first created. Nothing else may be applied twice.
    let lost_by_dead = doomed.lost.lock().unwrap().clone();
    let lost: Vec<&String> = done
        .iter()
        .flat_map(|(_, r)| &r.lost)
        .chain(&lost_by_dead)
        .collect();
    for key in &lost {
        assert!(
            completed.contains(key),
            "lost batch {key} was completed by another worker"
        );
    }
    assert!(
        succeeded >= in_org && succeeded - in_org <= lost.len() * batch_size,
        "records applied twice beyond re-sent batches {lost:?}: {sent:#?}"
    );
    let workers: BTreeSet<&str> = collections
        .iter()
        .filter_map(|e| e.client.as_deref())
        .collect();
    assert_eq!(
        workers.len(),
        3,
        "all three workers sent batches: {workers:?}"
    );

    // The shared budget: never refused by the org, and per daily window never above it.
    assert!(
        journal
            .iter()
            .all(|e| e.error_code.as_deref() != Some("REQUEST_LIMIT_EXCEEDED")),
        "the org never had to refuse a request for the budget: {sent:#?}"
    );
    let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
    for e in journal
        .iter()
        .filter(|e| e.path.starts_with("/services/data/v"))
    {
        *per_day.entry(e.at.day_start().as_millis()).or_default() += 1;
    }
    assert!(
        per_day.len() >= 3,
        "the budget made the run span days: {per_day:?}"
    );
    assert!(
        per_day.values().all(|n| *n <= LIMITER_BUDGET),
        "{per_day:?}"
    );

    // The concurrency cap: measured at the mock, across every worker, it bound and held.
    let peak = journal.iter().map(|e| e.in_flight).max().unwrap_or(0);
    assert_eq!(org.max_in_flight(), peak);
    assert!(peak <= MAX_CONCURRENT as usize, "peak in flight {peak}");
    assert_eq!(
        peak, MAX_CONCURRENT as usize,
        "workers did overlap up to the cap"
    );
    println!(
        "batches {queued}; records applied {succeeded}, in the org {in_org}; completed per worker {:?}; lost {:?}; requests per day {per_day:?}; peak in flight {peak}; virtual end {}",
        done.iter().map(|(w, r)| (w.as_str(), r.completed.len())).collect::<Vec<_>>(),
        done.iter().map(|(w, r)| (w.as_str(), r.lost.len())).collect::<Vec<_>>(),
        clock.now().to_iso()
    );
}

/// Refuses every request, as a fence whose lease another worker took.
struct TakenOver;

#[async_trait]
impl syncgate::engine::Fence for TakenOver {
    async fn still_ours(&self) -> Result<(), EngineError> {
        Err(EngineError::Fenced("taken over by w9".into()))
    }
}

#[tokio::test]
async fn a_fenced_batch_sends_nothing_and_gives_its_permit_back() {
    let bundle = Bundle::load(&root().join("contracts/northwind-outfitters/sandbox")).unwrap();
    let source = SourceSet::load_dir(&root().join("harness/fixtures/default")).unwrap();
    let start = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
    let clock = Clock::virtual_at(start);
    let creds = ClientCredentials::gate();
    let org = MockOrg::new(MockConfig {
        bundle: bundle.clone(),
        scenario: None,
        seed: Seed(1),
        clock: clock.clone(),
        clients: vec![creds.clone()],
    });
    let running = mock::spawn(org.clone(), 0).await.unwrap();
    let target = Target {
        login_url: running.base_url(),
        credentials: Credentials::client_credentials(
            creds.client_id.clone(),
            Secret::new(creds.client_secret.clone()),
        ),
        request_log: None,
        ca_pem: None,
    };
    let dlq = syncgate::store::MemoryStore::new();
    let limiter = Arc::new(LocalLimiter::new());
    let policy = LimitPolicy {
        max_concurrent: 1,
        ..LimitPolicy::default()
    };
    let mut sync = syncgate::engine::Sync::new(
        &bundle,
        EngineConfig::default(),
        clock.clone(),
        Seed(1),
        &dlq,
    )
    .with_limiter(limiter.clone(), policy.clone());
    let mut client = sync.connect(&target).await.unwrap();
    let accounts = source.latest("accounts");
    let e = sync
        .send_records(&mut client, "Account", &accounts[..5], Some(&TakenOver))
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Fenced(_)), "{e}");
    assert!(
        org.journal()
            .iter()
            .all(|j| !j.path.starts_with("/services/data/v")),
        "no API request went out"
    );
    assert!(org.records("Account").is_empty());
    // The one slot was given back: the next request is admitted at once.
    assert!(matches!(
        limiter
            .acquire("northwind-outfitters/sandbox", &policy, clock.now())
            .await
            .unwrap(),
        syncgate::store::limiter::Admission::Granted(_)
    ));
    running.stop().await;
}

/// Stops a child on drop, so a failing assertion leaves no `sync --follow` behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The scenario with real processes: three `syncgate sync --follow --shared`
/// processes on one tenant (leases in PostgreSQL, the limiter in Redis) against one org;
/// one is killed with SIGKILL while it holds a batch. Every record lands exactly once, the
/// killed batch is taken over, and the concurrency cap and daily budget hold across them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sync_processes_share_a_tenant_and_survive_a_killed_one() {
    let test = "three_sync_processes";
    let Some(pg) = support::postgres(test).await else {
        return;
    };
    let Some(redis) = support::redis(test).await else {
        return;
    };
    let db_url = format!(
        "{}?options=-csearch_path%3D{}",
        support::pg_url(),
        pg.schema
    );
    let bundle = Bundle::load(&root().join("contracts/northwind-outfitters/sandbox")).unwrap();
    let source_dir = root().join("harness/fixtures/default");
    let source = SourceSet::load_dir(&source_dir).unwrap();
    let clock = Clock::shifted();
    let creds = ClientCredentials::gate();
    const BUDGET: u64 = 400;
    let mut scenario = Scenario::load(&root().join("harness/scenarios/baseline.yaml")).unwrap();
    scenario.limits = LimitOverrides {
        daily_api_requests: Some(BUDGET),
        used_at_start: 0,
        concurrent_long_running: None,
    };
    let org = MockOrg::new(MockConfig {
        bundle: bundle.clone(),
        scenario: Some(scenario),
        seed: Seed(3),
        clock: clock.clone(),
        clients: vec![creds.clone()],
    });
    // Each request takes a while (wall time): the processes overlap, and a kill lands
    // while a batch is in flight.
    org.hold_requests(Duration::from_millis(120));
    let running = mock::spawn(org.clone(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncgate.toml");
    let batch_size = 20;
    std::fs::write(
        &config,
        format!(
            "[engine]\nbatch_size = {batch_size}\nmax_concurrent = {MAX_CONCURRENT}\nrate_per_sec = 50.0\nburst = 5\ndaily_budget = {BUDGET}\n"
        ),
    )
    .unwrap();
    let start = |id: &str| {
        let out = std::fs::File::create(dir.path().join(format!("{id}.out"))).unwrap();
        let err = std::fs::File::create(dir.path().join(format!("{id}.err"))).unwrap();
        Child(
            std::process::Command::new(env!("CARGO_BIN_EXE_syncgate"))
                .args(["--database-url", &db_url, "sync"])
                .args(["--bundle", "northwind-outfitters/sandbox"])
                .arg("--contracts")
                .arg(root().join("contracts"))
                .arg("--source")
                .arg(&source_dir)
                .args(["--target", &running.base_url()])
                .args(["--client-id", &creds.client_id])
                .args(["--client-secret", &creds.client_secret])
                .arg("--engine-config")
                .arg(&config)
                .args(["--follow", "--poll", "300ms", "--shared", "--worker-id", id])
                .args(["--lease-ttl", "3s"])
                .args(["--redis-url", &support::redis_url()])
                .args(["--redis-prefix", redis.prefix()])
                .args(["--json", "--no-progress"])
                .env_remove("SYNCGATE_DATABASE_URL")
                .stdin(std::process::Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("syncgate sync starts"),
        )
    };
    let mut w1 = start("w1");
    let mut w2 = start("w2");
    let mut w3 = start("w3");

    // The leases, as any process sees them.
    let (db, conn) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let count = |sql: &'static str| {
        let db = &db;
        async move {
            db.query_one(sql, &[])
                .await
                .map(|r| r.get::<_, i64>(0))
                .unwrap_or(0)
        }
    };
    let began = std::time::Instant::now();
    // Kill w2 once it has completed some batches and holds another.
    loop {
        let done = count("SELECT COUNT(*) FROM work_items WHERE worker = 'w2' AND done").await;
        let holds = count("SELECT COUNT(*) FROM work_items WHERE worker = 'w2' AND NOT done").await;
        if done >= 2 && holds >= 1 {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(90),
            "w2 never held a batch: {}",
            std::fs::read_to_string(dir.path().join("w2.err")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w2.0.kill().unwrap();
    w2.0.wait().unwrap();
    let killed_held: Vec<String> = db
        .query(
            "SELECT key FROM work_items WHERE worker = 'w2' AND NOT done",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The others finish the page, the killed batch included (after its lease expires).
    loop {
        let open = count("SELECT COUNT(*) FROM work_items WHERE NOT done").await;
        let all = count("SELECT COUNT(*) FROM work_items").await;
        if all > 0 && open == 0 {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(180),
            "{open} of {all} batches still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SIGTERM: the followers stop after the batch in flight and print their summaries.
    let mut summaries = Vec::new();
    for (id, w) in [("w1", &mut w1), ("w3", &mut w3)] {
        // SAFETY: signalling our own child by its PID.
        unsafe {
            libc::kill(w.0.id() as i32, libc::SIGTERM);
        }
        let status = w.0.wait().unwrap();
        let out = std::fs::read_to_string(dir.path().join(format!("{id}.out"))).unwrap();
        let err = std::fs::read_to_string(dir.path().join(format!("{id}.err"))).unwrap();
        assert!(status.code().is_some(), "{id} ended by a signal: {err}");
        let summary: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{id} printed no JSON summary ({e}): {out}{err}"));
        summaries.push((id, summary));
    }
    running.stop().await;

    let completed_by = |id: &str| {
        summaries
            .iter()
            .find(|(w, _)| *w == id)
            .and_then(|(_, s)| s["shared"]["completed"].as_array().cloned())
            .unwrap_or_default()
    };
    let (c1, c3) = (completed_by("w1"), completed_by("w3"));
    assert!(!c1.is_empty() && !c3.is_empty(), "{summaries:?}");
    for key in &killed_held {
        assert!(
            c1.iter().chain(&c3).any(|k| k == key),
            "the killed process's batch {key} was taken over: {summaries:?}"
        );
    }
    let by_w2 = count("SELECT COUNT(*) FROM work_items WHERE worker = 'w2' AND done").await;
    assert!(by_w2 >= 2, "w2 completed batches before it died");

    // Every record exactly once with the right values, nothing else: the gate's invariants.
    let journal = org.journal();
    let org_state: BTreeMap<String, Vec<_>> = bundle
        .objects
        .keys()
        .map(|o| (o.clone(), org.records(o)))
        .collect();
    let letters: Vec<_> = pg
        .store
        .dlq_list(&DlqFilter::tenant("northwind-outfitters/sandbox"))
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.letter)
        .collect();
    let expected = expectations(&bundle, &bundle, &source);
    let violations = invariants::check(&Evidence {
        bundle: &bundle,
        expectations: &expected,
        org: &org_state,
        journal: &journal,
        source: &source,
        engine: &syncgate::verify::evidence::EngineOutput {
            dead_letters: letters,
            ..Default::default()
        },
        manual_edits: &[],
    });
    assert!(violations.is_empty(), "{violations:#?}");

    // Applied once: no duplicate creates; only the batch the killed process held may have
    // been applied twice (sent by it, then again by the process that took it over).
    let writes: Vec<_> = journal
        .iter()
        .filter(|e| e.path.starts_with("/services/data/v") && e.records.is_some())
        .collect();
    let in_org: usize = org_state.values().map(Vec::len).sum();
    let created: usize = writes.iter().filter_map(|e| e.created).sum();
    let succeeded: usize = writes.iter().filter_map(|e| e.outcome).map(|o| o.0).sum();
    assert_eq!(created, in_org, "no duplicate creates");
    assert!(
        succeeded >= in_org && succeeded - in_org <= killed_held.len() * batch_size,
        "applied {succeeded} for {in_org} records; only the killed batch may repeat"
    );

    // The shared limiter: the cap bound and held across processes; the budget was kept.
    let peak = journal.iter().map(|e| e.in_flight).max().unwrap_or(0);
    assert!(peak <= MAX_CONCURRENT as usize, "peak in flight {peak}");
    assert_eq!(peak, MAX_CONCURRENT as usize, "the processes overlapped");
    assert!(
        journal
            .iter()
            .all(|e| e.error_code.as_deref() != Some("REQUEST_LIMIT_EXCEEDED")),
        "the org never refused for the budget"
    );
    let api = journal
        .iter()
        .filter(|e| e.path.starts_with("/services/data/v"))
        .count();
    assert!(api as u64 <= BUDGET, "{api} API requests");
    println!(
        "three processes: {} batches, w1 {} / w3 {} / w2 {by_w2} before its kill; killed holding {killed_held:?}; {succeeded} applied for {in_org} records; peak in flight {peak}; {api} API requests",
        c1.len() + c3.len() + by_w2 as usize,
        c1.len(),
        c3.len()
    );
}
