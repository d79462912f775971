//! The mock Salesforce org: real HTTP on loopback, state from the bundle, faults from the
//! scenario, time from the one clock, and a journal of everything it answered.
//!
//! [`MockOrg`] holds the state; [`serve`] runs it on a listener until a shutdown future
//! resolves (tests and the gate pass their own); [`spawn`] does both on `127.0.0.1:0`.

mod faults;
pub mod ids;
pub mod journal;
pub mod org;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;

pub use faults::{Fault, FaultLayer};
pub use journal::JournalEntry;
pub use org::{Org, Record};

use crate::contract::Bundle;
use crate::sim::{Clock, Scenario, Seed, Timestamp};

/// Credentials the mock's token endpoint accepts.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl ClientCredentials {
    /// The connected app the gate's engine signs in with.
    pub fn gate() -> Self {
        ClientCredentials {
            client_id: "syncgate-gate".into(),
            client_secret: "gate-secret-not-for-production".into(),
        }
    }
}

/// Everything a mock org is made from.
#[derive(Clone, Debug)]
pub struct MockConfig {
    pub bundle: Bundle,
    pub scenario: Option<Scenario>,
    pub seed: Seed,
    pub clock: Clock,
    pub clients: Vec<ClientCredentials>,
}

/// Daily API budget accounting on the clock (the window is the UTC day).
#[derive(Debug)]
pub(crate) struct Budget {
    pub max: u64,
    pub used: u64,
    pub window_start: Timestamp,
}

impl Budget {
    fn roll(&mut self, now: Timestamp) {
        let day = now.day_start();
        if day > self.window_start {
            self.window_start = day;
            self.used = 0;
        }
    }
}

pub(crate) struct State {
    pub org: Org,
    pub budget: Budget,
    pub faults: FaultLayer,
    pub journal: Vec<JournalEntry>,
    pub tokens: Vec<String>,
    pub token_rng: crate::sim::Rng,
    pub clients: Vec<ClientCredentials>,
    pub base_url: String,
    /// Records the collections request being answered created, for its journal entry.
    pub created_by_last: Option<usize>,
}

/// A running or ready-to-run mock org. Cloning shares the same org.
#[derive(Clone)]
pub struct MockOrg {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub clock: Clock,
    pub api_version: String,
    pub state: Mutex<State>,
    pub in_flight: InFlight,
    /// Wall-clock hold per request, in microseconds (0: none). See [`MockOrg::hold_requests`].
    pub hold_us: AtomicU64,
}

/// Requests being answered right now, and the most there ever were at once.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    /// Counts a request in until the returned guard drops; also returns the count with it.
    pub fn enter(&self) -> (InFlightGuard<'_>, usize) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        (InFlightGuard(self), n)
    }
}

pub(crate) struct InFlightGuard<'a>(&'a InFlight);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MockOrg {
    pub fn new(config: MockConfig) -> Self {
        let limits = &config.bundle.limits;
        let overrides = config
            .scenario
            .as_ref()
            .map(|s| s.limits.clone())
            .unwrap_or_default();
        let budget = Budget {
            max: overrides
                .daily_api_requests
                .unwrap_or(limits.daily_api_requests),
            used: overrides.used_at_start,
            window_start: config.clock.now().day_start(),
        };
        let rules = config
            .scenario
            .as_ref()
            .map(|s| s.faults.clone())
            .unwrap_or_default();
        let api_version = config.bundle.api_version.clone();
        MockOrg {
            shared: Arc::new(Shared {
                clock: config.clock,
                api_version,
                state: Mutex::new(State {
                    org: Org::new(config.bundle),
                    budget,
                    faults: FaultLayer::new(rules, config.seed.stream("mock.faults")),
                    journal: Vec::new(),
                    tokens: Vec::new(),
                    token_rng: config.seed.stream("mock.tokens"),
                    clients: config.clients,
                    base_url: String::new(),
                    created_by_last: None,
                }),
                in_flight: InFlight::default(),
                hold_us: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in the mock; the state is still
        // the best record of what happened, so keep serving it.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Every request answered so far.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.lock().journal.clone()
    }

    /// Live records of `object`, in creation order.
    pub fn records(&self, object: &str) -> Vec<Record> {
        self.lock().org.records(object).cloned().collect()
    }

    /// Holds each request this long in *wall* time before answering it (0 turns it off).
    ///
    /// A load-test instrument, not latency modelling: the org's clock does not move. Its
    /// only purpose is to make requests from concurrent clients overlap at the mock, so
    /// that [`MockOrg::max_in_flight`] and the journal's `in_flight` measure a real
    /// concurrency cap rather than the speed of loopback.
    pub fn hold_requests(&self, hold: Duration) {
        let us = u64::try_from(hold.as_micros()).unwrap_or(u64::MAX);
        self.shared.hold_us.store(us, Ordering::SeqCst);
    }

    /// The most API requests the mock was answering at once so far, across every client.
    pub fn max_in_flight(&self) -> usize {
        self.shared.in_flight.max.load(Ordering::SeqCst)
    }

    /// API requests used in the current daily window, and the maximum.
    pub fn api_usage(&self) -> (u64, u64) {
        let mut s = self.lock();
        let now = self.shared.clock.now();
        s.budget.roll(now);
        (s.budget.used, s.budget.max)
    }
}

/// Serves `org` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    org: MockOrg,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    org.lock().base_url = format!("http://{addr}");
    let app = routes::router(org);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A mock serving in the background on `127.0.0.1`, stopped on drop or with [`RunningMock::stop`].
pub struct RunningMock {
    pub org: MockOrg,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningMock {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for open connections to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningMock {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts `org` on `127.0.0.1:port` (0 for any free port).
pub async fn spawn(org: MockOrg, port: u16) -> std::io::Result<RunningMock> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, org.clone(), async {
        let _ = rx.await;
    }));
    Ok(RunningMock {
        org,
        addr,
        stop: Some(tx),
        task: Some(task),
    })
}
