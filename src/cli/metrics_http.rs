//! `syncgate sync --follow --metrics-addr 127.0.0.1:PORT`: the follower's numbers in the
//! Prometheus text format at `/metrics`, on loopback only. Counters come from the run
//! summary after each tick; the dead-letter queue (depth, oldest letter, letters by code) is
//! read from the store at each scrape. Every metric has a `tenant` label.
//!
//! | name | type | what |
//! |---|---|---|
//! | `syncgate_sync_ticks_total` | counter | ticks finished |
//! | `syncgate_sync_runs_total` | counter | engine runs (pages or ticks with changes) |
//! | `syncgate_sync_records_total{outcome}` | counter | `created`, `updated`, `dead_lettered`, `deleted` |
//! | `syncgate_sync_duplicates_suppressed_total` | counter | records already applied, not sent again |
//! | `syncgate_sync_retries_total` | counter | batch retries |
//! | `syncgate_sync_api_calls_total` | counter | API calls (sign-ins excluded) |
//! | `syncgate_sync_tick_failures_total` | counter | ticks that failed and were tried again |
//! | `syncgate_api_budget_used`, `syncgate_api_budget_max` | gauge | the org's daily usage (`Sforce-Limit-Info`) |
//! | `syncgate_dead_letter_queue_depth` | gauge | letters queued for a redrive |
//! | `syncgate_dead_letter_oldest_age_seconds` | gauge | age of the oldest queued letter |
//! | `syncgate_dead_letters{code}` | gauge | queued letters by error code |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::engine::runner::RunSummary;
use crate::sim::Clock;
use crate::store::{DlqFilter, LetterStatus, Store};

/// The numbers of the summary the endpoint serves.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub ticks: u64,
    pub runs: u64,
    pub created: u64,
    pub updated: u64,
    pub dead_lettered: u64,
    pub deleted: u64,
    pub duplicates: u64,
    pub retries: u64,
    pub api_calls: u64,
    pub tick_failures: u64,
    pub budget: Option<(u64, u64)>,
}

impl Counters {
    /// Takes a tick's summary (totals since the start).
    pub fn update(&mut self, s: &RunSummary) {
        self.ticks += 1;
        self.runs = u64::from(s.runs);
        self.created = s.report.created as u64;
        self.updated = s.report.updated as u64;
        self.dead_lettered = s.report.dead_lettered as u64;
        self.deleted = s.report.deleted as u64;
        self.duplicates = s.report.already_synced as u64;
        self.retries = s.report.retries as u64;
        self.api_calls = s.report.api_calls;
        self.tick_failures = u64::from(s.tick_failures);
        self.budget = s.report.api_usage.map(|u| (u.used, u.max));
    }
}

/// What the endpoint reads.
#[derive(Clone)]
pub struct Metrics {
    pub tenant: String,
    pub counters: Arc<Mutex<Counters>>,
    pub store: Arc<dyn Store>,
}

/// Refuses an address off loopback: syncgate's servers bind loopback only.
pub fn check_addr(addr: &SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "--metrics-addr {addr}: serve metrics on loopback (127.0.0.1:PORT) and let your agent or proxy reach it"
        ))
    }
}

/// The runner hook that keeps `counters` up to date after each tick.
pub fn tick_hook(counters: Arc<Mutex<Counters>>) -> crate::engine::runner::TickHook {
    Arc::new(move |s: &RunSummary| counters.lock().unwrap_or_else(|p| p.into_inner()).update(s))
}

/// Binds `addr`, says where on stderr, and serves `/metrics` there in the background.
pub async fn start(addr: SocketAddr, metrics: Metrics) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics-addr {addr}: {e}"))?;
    if let Ok(bound) = listener.local_addr() {
        eprintln!("metrics at http://{bound}/metrics");
    }
    tokio::spawn(serve(listener, metrics));
    Ok(())
}

/// Serves `/metrics` on `listener` until the runtime ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Metrics) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    axum::serve(listener, app).await
}

async fn scrape(State(m): State<Metrics>) -> axum::response::Response {
    let counters = m.counters.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let letters = m.store.dlq_list(&DlqFilter::tenant(&m.tenant)).await;
    let body = match letters {
        Ok(letters) => {
            let now = Clock::system().now();
            let queued: Vec<_> = letters
                .iter()
                .filter(|l| l.status == LetterStatus::Queued)
                .collect();
            let oldest = queued
                .iter()
                .map(|l| l.letter.first_failed_at)
                .min()
                .map(|t| now.since(t).as_secs());
            let mut by_code: BTreeMap<&str, u64> = BTreeMap::new();
            for l in &queued {
                *by_code.entry(l.letter.error_code.as_str()).or_default() += 1;
            }
            render(&m.tenant, &counters, queued.len() as u64, oldest, &by_code)
        }
        Err(e) => {
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("the store cannot be read: {e}\n"),
            )
                .into_response()
        }
    };
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// A label value with `\`, `"` and newlines escaped, as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text of one tenant's numbers.
pub fn render(
    tenant: &str,
    c: &Counters,
    depth: u64,
    oldest_secs: Option<u64>,
    by_code: &BTreeMap<&str, u64>,
) -> String {
    let plain = |v: u64| Some(vec![(String::new(), v)]);
    let budget = |pick: fn((u64, u64)) -> u64| c.budget.map(pick).and_then(plain);
    let codes: Vec<(String, u64)> = by_code
        .iter()
        .map(|(code, n)| (format!(",code=\"{}\"", label(code)), *n))
        .collect();
    // Name, type, help and samples of each family, in the order served; `None` is not
    // served (no budget seen yet, no letter queued).
    let families = [
        (
            "syncgate_sync_ticks_total",
            "counter",
            "Ticks finished.",
            plain(c.ticks),
        ),
        (
            "syncgate_sync_runs_total",
            "counter",
            "Engine runs (pages or ticks with changes).",
            plain(c.runs),
        ),
        (
            "syncgate_sync_records_total",
            "counter",
            "Records by outcome.",
            Some(vec![
                (",outcome=\"created\"".into(), c.created),
                (",outcome=\"updated\"".into(), c.updated),
                (",outcome=\"dead_lettered\"".into(), c.dead_lettered),
                (",outcome=\"deleted\"".into(), c.deleted),
            ]),
        ),
        (
            "syncgate_sync_duplicates_suppressed_total",
            "counter",
            "Records already applied, not sent again.",
            plain(c.duplicates),
        ),
        (
            "syncgate_sync_retries_total",
            "counter",
            "Batch retries.",
            plain(c.retries),
        ),
        (
            "syncgate_sync_api_calls_total",
            "counter",
            "API calls (sign-ins excluded).",
            plain(c.api_calls),
        ),
        (
            "syncgate_sync_tick_failures_total",
            "counter",
            "Ticks that failed and were tried again.",
            plain(c.tick_failures),
        ),
        (
            "syncgate_api_budget_used",
            "gauge",
            "The org's daily API usage (Sforce-Limit-Info).",
            budget(|(used, _)| used),
        ),
        (
            "syncgate_api_budget_max",
            "gauge",
            "The org's daily API limit (Sforce-Limit-Info).",
            budget(|(_, max)| max),
        ),
        (
            "syncgate_dead_letter_queue_depth",
            "gauge",
            "Dead letters queued for a redrive.",
            plain(depth),
        ),
        (
            "syncgate_dead_letter_oldest_age_seconds",
            "gauge",
            "Age of the oldest queued dead letter.",
            oldest_secs.and_then(plain),
        ),
        (
            "syncgate_dead_letters",
            "gauge",
            "Queued dead letters by error code.",
            Some(codes),
        ),
    ];
    let t = label(tenant);
    let mut out = String::new();
    for (name, kind, help, samples) in families {
        let Some(samples) = samples else { continue };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{{tenant=\"{t}\"{labels}}} {v}");
        }
    }
    out
}
