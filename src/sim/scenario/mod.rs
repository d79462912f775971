//! Scenarios: the faults a mock org injects and the conditions a run starts from.
//!
//! A scenario is a YAML file under `harness/scenarios/`; it is read and checked once, here,
//! and the rest of the crate only sees a checked [`Scenario`]. The format is documented in
//! `harness/README.md`.
//!
//! Layout: this module holds the model (what a checked scenario is); `fault` the fault
//! rules (which requests, how the org answers), `load` reading and checking a file.

mod fault;
mod load;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::time::{parse_duration, Timestamp};

pub use fault::{CallRange, FaultResponse, FaultRule, LostMode, RequestMatch};
pub use load::ScenarioError;

/// The default virtual start of a run: a Monday morning, so the daily window has 16 hours left.
pub const DEFAULT_START: &str = "2026-01-05T08:00:00Z";

/// A checked scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// File stem, e.g. `rate-limit-storm`.
    pub name: String,
    pub path: PathBuf,
    /// One line saying what the scenario proves.
    pub purpose: String,
    /// Fixture set under `harness/fixtures/`.
    pub fixtures: String,
    pub start: Timestamp,
    pub limits: LimitOverrides,
    pub engine: EngineOverrides,
    pub faults: Vec<FaultRule>,
    /// Fields the partner changed in the org without telling anyone (`Object.Field` → spec):
    /// the mock org is built with them, the engine keeps its contract.
    pub org_fields: std::collections::BTreeMap<String, crate::contract::FieldSpec>,
    /// Edits a simulated sales rep makes in the org between the engine's calls.
    pub manual_edits: Vec<ManualEdit>,
    /// How the change-event stream misbehaves.
    pub events: EventFaults,
    /// A second engine run later on (the next sync, with the source's newer changes).
    pub next_run: Option<NextRun>,
    /// The engine this scenario judges, as a command under the engine protocol (the
    /// deliberately broken engines of `harness/broken/` name theirs); `None`: the gate's.
    pub engine_cmd: Option<String>,
}

/// The engine runs again `after` the scenario start, on a further fixture set: the source's
/// changes since the first run (records edited by hand in between meet them there).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextRun {
    pub after: Dur,
    pub fixtures: String,
}

/// A change a sales rep makes by hand, applied before the request that reaches `after_calls`
/// API calls or the first request at or after `after` (since the scenario start).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualEdit {
    pub name: String,
    pub object: String,
    /// The record, by the object's external-ID value.
    pub external_id: String,
    #[serde(default)]
    pub after_calls: Option<u64>,
    #[serde(default)]
    pub after: Option<Dur>,
    /// Field values to set (`null` clears a field).
    pub set: serde_json::Map<String, serde_json::Value>,
}

/// Delivery faults of the change-event stream, each drawn from the seed per event.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFaults {
    /// Chance an event is delivered twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Chance an event is delivered after the one that follows it.
    #[serde(default)]
    pub out_of_order: f64,
    /// Chance an event is replaced by a gap event (`GAP_CREATE`, `GAP_UPDATE`, …) without values.
    #[serde(default)]
    pub gap: f64,
    /// A transaction changing more records than this publishes one `GAP_OVERFLOW` event per
    /// object instead of one event per record.
    #[serde(default)]
    pub overflow_after: Option<usize>,
    /// The source side refuses this many deliveries of CRM changes (as a source that is
    /// down would); after each refusal the gate restarts the consumer (a fresh one on the
    /// same state store, resuming from the stored replay ID).
    #[serde(default)]
    pub sink_refuses: u32,
    /// Deliveries the sink accepts before it starts refusing (so some replay IDs are
    /// already stored when it does).
    #[serde(default)]
    pub sink_accepts_first: u32,
}

/// Changes to the org's limits profile for this scenario.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    pub daily_api_requests: Option<u64>,
    /// API requests already spent in the current window when the run starts.
    #[serde(default)]
    pub used_at_start: u64,
    /// Requests the org lets run for its long-running threshold or longer at once
    /// (Salesforce: 25), replacing the bundle's `limits.concurrent_long_running`.
    pub concurrent_long_running: Option<u32>,
}

/// Engine settings a scenario may change: genuine settings of the shipped engine, never
/// faults (the deliberately broken engines of `harness/broken/` are engine commands).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineOverrides {
    pub max_attempts: Option<u32>,
    pub batch_size: Option<usize>,
    /// Daily windows the engine waits for before giving up (default 2).
    pub max_window_waits: Option<u32>,
    /// Objects with more records than this go through Bulk API 2.0 (library scenarios use
    /// it to exercise the Bulk path on small fixtures).
    pub bulk_threshold: Option<usize>,
    /// The engine's token bucket: requests per second, and the burst it starts with.
    pub rate_per_sec: Option<f64>,
    pub burst: Option<u32>,
    /// Requests in flight at once.
    pub max_concurrent: Option<u32>,
    /// API requests the engine may spend per UTC day of the org's clock (`syncgate.toml`'s
    /// `daily_budget`), below what the org allows.
    pub daily_budget: Option<u64>,
}

/// A duration written as `3600s`, `1h`, `250ms` or a bare number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t).map(Dur).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a duration (write 250ms, 30s, 15m, 2h or 1d)"
                ))
            }),
        }
    }
}

impl Scenario {
    /// The fixture sets the scenario's runs read, in run order.
    pub fn fixture_sets(&self) -> Vec<&str> {
        let mut sets = vec![self.fixtures.as_str()];
        sets.extend(self.next_run.iter().map(|n| n.fixtures.as_str()));
        sets
    }
}
