//! The mock Salesforce org: real HTTP (or HTTPS) on loopback, state from the bundle, faults
//! from the scenario, time from the one clock, and a journal of everything it answered.
//!
//! [`MockOrg`] holds the state; [`serve`] runs it on a listener until a shutdown future
//! resolves (tests and the gate pass their own); [`spawn`] and [`spawn_with`] do both on
//! `127.0.0.1`, the latter optionally over TLS with a freshly generated CA.
//!
//! Inside: `routes` (the dispatcher: auth, budget, concurrency, faults, journal), `rest`
//! (sObjects, collections, composite, query), `soql` (the query subset), `bulk` (Bulk API
//! 2.0 ingest), `events` (the change-event log and its subscription), `pubsub` (Salesforce's
//! Pub/Sub API over gRPC on the same listener, Avro change events), `admin` (the
//! `/__syncgate/` API), `states` (Pact provider states), `oauth` (connected apps, users and the
//! OAuth endpoints), `tls` (the self-signed certificate and listener), `partner` (a
//! bundle's Pact interactions as a stateful stub, and signed webhooks).

mod admin;
mod answer;
pub mod bulk;
mod bulk_query;
mod bulk_timing;
mod events;
mod fault_answer;
mod faults;
mod flight;
mod form;
pub mod ids;
pub mod journal;
pub mod oauth;
pub mod org;
pub mod partner;
pub mod pubsub;
mod record_locks;
mod rest;
mod routes;
pub mod states;
/// The SOQL subset lives with the contracts (validation rules use its conditions).
pub use crate::contract::soql;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use faults::{Fault, FaultLayer};
use flight::InFlight;
pub use journal::JournalEntry;
pub use org::{Org, Record};

use crate::contract::Bundle;
use crate::sim::scenario::ManualEdit;
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

/// A manual edit from the scenario and whether it has happened.
#[derive(Debug)]
pub(crate) struct PendingEdit {
    pub edit: ManualEdit,
    pub done: bool,
    /// When the edit was saved (a rep cannot edit a record that does not exist yet, and an
    /// edit breaking a rule is not saved).
    pub saved_at: Option<Timestamp>,
    /// Requests the journal held when the edit was made (it came before the next one).
    pub after_request: u64,
}

/// A scenario's manual edit as the org saw it, for timelines.
#[derive(Clone, Debug, PartialEq)]
pub struct EditRecord {
    pub edit: ManualEdit,
    /// Whether its time came during the run.
    pub made: bool,
    /// When it was saved (an edit breaking a rule is not saved).
    pub saved_at: Option<Timestamp>,
    /// Requests the journal held when it was made.
    pub after_request: u64,
}

pub(crate) struct State {
    pub org: Org,
    pub budget: Budget,
    pub faults: FaultLayer,
    pub journal: journal::Journal,
    pub tokens: Vec<String>,
    pub token_rng: crate::sim::Rng,
    /// Connected apps, users, refresh tokens and sessions (kept across resets).
    pub oauth: oauth::Directory,
    pub base_url: String,
    /// The scenario's start: fault time windows and timed manual edits count from here.
    pub start: Timestamp,
    /// API requests admitted (for `after_calls` manual edits).
    pub api_calls: u64,
    /// Requests in flight (shared with the server, kept across resets).
    pub in_flight: Arc<InFlight>,
    pub cursors: std::collections::HashMap<String, rest::Cursor>,
    pub next_cursor: u64,
    pub bulk: bulk::Jobs,
    pub events: events::EventLog,
    pub edits: Vec<PendingEdit>,
    pub notify: Arc<tokio::sync::Notify>,
    /// Records the collections request being answered created, for its journal entry.
    pub created_by_last: Option<usize>,
    /// The org's clock (durations stated to clients are in its wall time).
    pub clock: Clock,
}

impl State {
    fn fresh(config: &MockConfig, notify: Arc<tokio::sync::Notify>) -> State {
        let limits = &config.bundle.limits;
        let scenario = config.scenario.as_ref();
        let overrides = scenario.map(|s| s.limits.clone()).unwrap_or_default();
        let now = config.clock.now();
        State {
            clock: config.clock.clone(),
            org: Org::new(config.bundle.clone()),
            budget: Budget {
                max: overrides
                    .daily_api_requests
                    .unwrap_or(limits.daily_api_requests),
                used: overrides.used_at_start,
                window_start: now.day_start(),
            },
            faults: FaultLayer::new(
                scenario.map(|s| s.faults.clone()).unwrap_or_default(),
                config.seed.stream("mock.faults"),
            ),
            journal: journal::Journal::default(),
            tokens: Vec::new(),
            token_rng: config.seed.stream("mock.tokens"),
            oauth: oauth::Directory::new(&config.clients),
            base_url: String::new(),
            start: scenario.map(|s| s.start).unwrap_or(now),
            api_calls: 0,
            in_flight: Arc::default(),
            cursors: Default::default(),
            next_cursor: 0,
            bulk: bulk::Jobs::new(config.seed.stream("mock.bulk")),
            events: events::EventLog::new(
                config.seed.stream("mock.events"),
                scenario.map(|s| s.events.clone()).unwrap_or_default(),
            ),
            edits: scenario
                .map(|s| {
                    s.manual_edits
                        .iter()
                        .map(|e| PendingEdit {
                            edit: e.clone(),
                            done: false,
                            saved_at: None,
                            after_request: 0,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            notify,
            created_by_last: None,
        }
    }

    /// Lets time-driven work happen before a request is answered: due manual edits are
    /// made, Bulk jobs progress, old events expire.
    ///
    /// An edit due at a time of its own (`after: 90m`) is made at that time, even when no
    /// request came then: a rep does not wait for the API to be called. Its
    /// `LastModifiedDate` and change event carry that time, so a sync that stays away for
    /// days finds them aged, and their events expired past the bus's retention. Only
    /// `after_calls` edits are made at `now`. Due edits are made oldest first.
    pub fn tick(&mut self, now: Timestamp) {
        let elapsed = now.since(self.start);
        let mut due: Vec<(Timestamp, usize)> = Vec::new();
        for (i, p) in self.edits.iter().enumerate() {
            if p.done {
                continue;
            }
            let timed = p.edit.after.filter(|d| elapsed >= d.0);
            if let Some(d) = timed {
                due.push((self.start.plus(d.0), i));
            } else if p.edit.after_calls.is_some_and(|n| self.api_calls >= n) {
                due.push((now, i));
            }
        }
        due.sort();
        for (at, i) in due {
            self.edits[i].done = true;
            self.edits[i].after_request = self.journal.total();
            let edit = self.edits[i].edit.clone();
            let Some(id) = self
                .org
                .find_by_external_id(&edit.object, &edit.external_id)
                .first()
                .map(|r| r.id.clone())
            else {
                continue;
            };
            self.org.act_as(org::REP_USER_ID);
            // A rep's edit that breaks a rule is simply not saved, as in the UI.
            if self
                .org
                .update(&edit.object, &id, edit.set.clone(), at)
                .is_ok()
            {
                self.edits[i].saved_at = Some(at);
            }
            self.org.act_as(org::API_USER_ID);
            events::publish_changes(self, "", at);
        }
        bulk::tick(self, now);
        self.events.expire(now);
    }
}

/// A running or ready-to-run mock org. Cloning shares the same org.
#[derive(Clone)]
pub struct MockOrg {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub clock: Clock,
    pub api_version: String,
    pub config: Mutex<MockConfig>,
    pub notify: Arc<tokio::sync::Notify>,
    pub state: Mutex<State>,
    pub in_flight: Arc<InFlight>,
    /// Wall-clock hold per request, in microseconds (0: none). See [`MockOrg::hold_requests`].
    pub hold_us: AtomicU64,
    /// Journal entries kept (see [`MockOrg::limit_journal`]).
    pub journal_limit: std::sync::atomic::AtomicUsize,
    /// Change events kept (see [`MockOrg::limit_events`]).
    pub event_limit: std::sync::atomic::AtomicUsize,
    /// API requests as they arrived, when [`MockOrg::capture_requests`] turned it on.
    pub captured: Mutex<Option<Vec<CapturedRequest>>>,
}

/// One API request as the mock received it (for judging an engine the gate runs as a
/// child process by what it sent). `Authorization` is left out.
#[derive(Clone, Debug, PartialEq)]
pub struct CapturedRequest {
    pub method: String,
    /// Path from the host, without the query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body, when it is JSON.
    pub body: Option<serde_json::Value>,
}

impl MockOrg {
    pub fn new(config: MockConfig) -> Self {
        let notify = Arc::new(tokio::sync::Notify::new());
        let state = State::fresh(&config, notify.clone());
        let in_flight = state.in_flight.clone();
        MockOrg {
            shared: Arc::new(Shared {
                clock: config.clock.clone(),
                api_version: config.bundle.api_version.clone(),
                config: Mutex::new(config),
                notify,
                state: Mutex::new(state),
                in_flight,
                hold_us: AtomicU64::new(0),
                journal_limit: std::sync::atomic::AtomicUsize::new(usize::MAX),
                event_limit: std::sync::atomic::AtomicUsize::new(usize::MAX),
                captured: Mutex::new(None),
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

    /// From now on, keeps every API request (`/services/data/…`) as it arrives.
    pub fn capture_requests(&self) {
        let mut c = self
            .shared
            .captured
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.get_or_insert_with(Vec::new);
    }

    /// The API requests kept since [`MockOrg::capture_requests`], in arrival order.
    pub fn captured_requests(&self) -> Vec<CapturedRequest> {
        let c = self
            .shared
            .captured
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        c.clone().unwrap_or_default()
    }

    pub(crate) fn capture(
        &self,
        method: &axum::http::Method,
        uri: &axum::http::Uri,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) {
        if !uri.path().starts_with("/services/data/") {
            return;
        }
        let mut c = self
            .shared
            .captured
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(list) = c.as_mut() else { return };
        list.push(CapturedRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            headers: headers
                .iter()
                .filter(|(n, _)| !n.as_str().eq_ignore_ascii_case("authorization"))
                .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            body: serde_json::from_slice(body).ok(),
        });
    }

    /// Every request answered so far.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.lock().journal.entries()
    }

    /// Keeps only the newest `limit` change events from now on (and after resets), counting
    /// the rest (`/__syncgate/state` → `eventLog`): a subscriber resuming from a dropped
    /// replay ID gets `INVALID_REPLAY_ID`, as for one past the 72-hour retention. Unlimited
    /// by default.
    pub fn limit_events(&self, limit: usize) {
        self.shared.event_limit.store(limit, Ordering::SeqCst);
        self.lock().events.set_limit(limit);
    }

    /// Keeps only the last `limit` journal entries from now on (and after resets), counting
    /// the rest: a long-running `mock serve` holds a bounded journal. Unlimited by default.
    pub fn limit_journal(&self, limit: usize) {
        self.shared.journal_limit.store(limit, Ordering::SeqCst);
        let mut state = self.lock();
        let mut bounded = journal::Journal::new(limit);
        for e in state.journal.iter() {
            bounded.push(e.clone());
        }
        state.journal = bounded;
    }

    /// Every row finished Bulk ingest jobs processed successfully (see [`bulk::ProcessedRow`]).
    pub fn bulk_rows(&self) -> Vec<bulk::ProcessedRow> {
        self.lock().bulk.processed_rows()
    }

    /// The scenario's manual edits that were saved, with when, in order.
    pub fn saved_edits(&self) -> Vec<(ManualEdit, Timestamp)> {
        self.lock()
            .edits
            .iter()
            .filter_map(|p| Some((p.edit.clone(), p.saved_at?)))
            .collect()
    }

    /// Every manual edit of the scenario, made or not, in the scenario's order.
    pub fn edit_log(&self) -> Vec<EditRecord> {
        self.lock()
            .edits
            .iter()
            .map(|p| EditRecord {
                edit: p.edit.clone(),
                made: p.done,
                saved_at: p.saved_at,
                after_request: p.after_request,
            })
            .collect()
    }

    /// Live records of `object`, in creation order.
    pub fn records(&self, object: &str) -> Vec<Record> {
        self.lock().org.records(object).cloned().collect()
    }

    /// Moves an object's live records out of the org, leaving its table empty: for judging a
    /// finished run without holding every record twice.
    pub fn take_records(&self, object: &str) -> Vec<Record> {
        self.lock().org.take_records(object)
    }

    /// Issues a session token as the token endpoint would (for tools that bring no credentials).
    pub fn issue_token(&self) -> String {
        oauth::issue_plain(&mut self.lock())
    }

    /// Puts a record in the org directly (a provider state, an org seed), as an upsert by
    /// external ID would, without a request.
    pub fn put_record(
        &self,
        object: &str,
        ext_value: &str,
        values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), crate::contract::rules::RecordError> {
        let now = self.shared.clock.now();
        let mut s = self.lock();
        let ext_field = s
            .org
            .bundle()
            .object(object)
            .map(|o| o.external_id.clone())
            .ok_or_else(|| {
                crate::contract::rules::RecordError::new(
                    "NOT_FOUND",
                    format!("no object {object} in the bundle"),
                    vec![],
                )
            })?;
        match s.org.prepare_upsert(object, &ext_field, ext_value, values) {
            Ok(p) => {
                s.org.apply(p, now);
                Ok(())
            }
            Err(org::UpsertError::Record(e)) => Err(e),
            Err(org::UpsertError::Ambiguous(_)) => Err(crate::contract::rules::RecordError::new(
                "DUPLICATE_EXTERNAL_ID",
                ext_value.to_string(),
                vec![],
            )),
        }
    }

    /// Lets the token endpoint accept `client` too (kept across resets).
    pub fn add_client(&self, client: ClientCredentials) {
        self.lock().oauth.add_app(oauth::ConnectedApp {
            client_id: client.client_id,
            client_secret: client.client_secret,
            jwt_key: None,
        });
    }

    /// Adds a connected app, its users and refresh tokens (`mock serve --connected-app`).
    pub fn add_connected_app(&self, file: &oauth::AppFile) {
        self.lock().oauth.add_file(file);
    }

    /// Answers the next API request with `response` (cleared with `None`).
    pub fn force_next_fault(&self, response: Option<crate::sim::scenario::FaultResponse>) {
        let fault = response.map(|response| Fault {
            rule: "provider-state".into(),
            response,
        });
        self.lock().faults.force_next(fault);
    }

    /// Sets up a Bulk upsert job of `object` by `ext_field` at `stage` (a provider state);
    /// returns its ID.
    pub fn stage_bulk_job(
        &self,
        object: &str,
        ext_field: &str,
        csv: &str,
        stage: bulk::JobStage,
    ) -> Result<String, String> {
        let now = self.shared.clock.now();
        let mut s = self.lock();
        bulk::stage_job(&mut s, object, ext_field, csv, stage, now)
    }

    /// Sets the API requests already used in the current daily window.
    pub fn set_api_usage(&self, used: u64) {
        let now = self.shared.clock.now();
        let mut s = self.lock();
        s.budget.roll(now);
        s.budget.used = used;
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

    /// Change events still retained, oldest first, as subscribers receive them.
    pub fn change_events(&self) -> Vec<serde_json::Value> {
        self.lock().events.all()
    }

    /// Empties the org and its journal, keeping signed-in sessions and the scenario.
    pub fn reset(&self) {
        let config = self
            .shared
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut state = self.lock();
        let mut fresh = State::fresh(&config, self.shared.notify.clone());
        fresh.tokens = std::mem::take(&mut state.tokens);
        fresh.in_flight = state.in_flight.clone();
        fresh.oauth = state.oauth.clone();
        fresh.base_url = std::mem::take(&mut state.base_url);
        fresh.start = state.start;
        fresh.journal = journal::Journal::new(self.shared.journal_limit.load(Ordering::SeqCst));
        fresh
            .events
            .set_limit(self.shared.event_limit.load(Ordering::SeqCst));
        *state = fresh;
    }

    /// Replaces the scenario (faults, limits, manual edits, event faults) and resets the org.
    pub fn load_scenario(&self, scenario: Scenario) {
        {
            let mut config = self.shared.config.lock().unwrap_or_else(|p| p.into_inner());
            config.scenario = Some(scenario);
        }
        self.reset();
        let now = self.shared.clock.now();
        self.lock().start = now;
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
    // REST, OAuth and the admin API over HTTP/1.1 or HTTP/2; the Pub/Sub API over HTTP/2.
    let app = routes::router(org.clone()).merge(pubsub::router(org));
    // TCP_NODELAY: without it the Pub/Sub API's small HTTP/2 frames wait out the peer's
    // delayed ACK (Nagle), 40 ms a round trip — most of a gate run's wall time.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves `org` over TLS on `listener` until `shutdown` resolves.
pub async fn serve_tls(
    listener: TcpListener,
    tls: &tls::SelfSigned,
    org: MockOrg,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    org.lock().base_url = format!("https://localhost:{}", addr.port());
    // REST, OAuth and the admin API over HTTP/1.1 or HTTP/2; the Pub/Sub API over HTTP/2.
    let app = routes::router(org.clone()).merge(pubsub::router(org));
    let listener = tls::TlsListener::new(listener, tls.acceptor());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// How to start a background mock.
#[derive(Clone, Debug, Default)]
pub struct SpawnOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Serve HTTPS with a generated certificate; its CA is written to this file.
    pub tls_ca_file: Option<PathBuf>,
}

/// A mock serving in the background on `127.0.0.1`, stopped on drop or with [`RunningMock::stop`].
pub struct RunningMock {
    pub org: MockOrg,
    pub addr: SocketAddr,
    /// With TLS: the CA certificate (PEM) clients must trust.
    pub ca_pem: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningMock {
    pub fn base_url(&self) -> String {
        match self.ca_pem {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        }
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

/// Starts `org` on `127.0.0.1:port` (0 for any free port) over plain HTTP.
pub async fn spawn(org: MockOrg, port: u16) -> std::io::Result<RunningMock> {
    spawn_with(
        org,
        SpawnOptions {
            port,
            tls_ca_file: None,
        },
    )
    .await
}

/// Starts `org` on `127.0.0.1` as `options` say.
pub async fn spawn_with(org: MockOrg, options: SpawnOptions) -> std::io::Result<RunningMock> {
    let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = rx.await;
    };
    let (task, ca_pem) = match &options.tls_ca_file {
        None => (tokio::spawn(serve(listener, org.clone(), shutdown)), None),
        Some(path) => {
            let cert = tls::SelfSigned::generate().map_err(std::io::Error::other)?;
            std::fs::write(path, cert.ca_pem())?;
            let pem = cert.ca_pem().to_string();
            let org2 = org.clone();
            let task =
                tokio::spawn(async move { serve_tls(listener, &cert, org2, shutdown).await });
            (task, Some(pem))
        }
    };
    Ok(RunningMock {
        org,
        addr,
        ca_pem,
        stop: Some(tx),
        task: Some(task),
    })
}
