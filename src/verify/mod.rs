//! The verifier: runs the engine against the mock under each scenario and judges the
//! result by invariants; reports the verdict for people and for CI.

pub mod applicability;
pub mod bulk_rows;
pub mod conformance;
pub mod contract_check;
pub mod discipline;
pub mod engine_cmd;
pub mod evidence;
pub mod fixture_sets;
pub mod gate;
pub mod invariants;
pub mod letters;
pub mod metrics;
pub mod model;
pub mod oracle;
pub mod pacts;
pub mod parallel;
pub mod preflight;
pub mod refusing_sink;
pub mod registry;
pub mod replay_file;
pub mod report;
pub mod rerun;
pub mod run_checks;
pub mod scenario_run;
pub mod timeline;

pub use gate::{run_gate, GateError, GateOptions, GateReport, RunResult, TenantResult};
