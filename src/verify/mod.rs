//! The verifier: runs the engine against the mock under each scenario and judges the
//! result by invariants; reports the verdict for people and for CI.

pub mod conformance;
pub mod engine_cmd;
pub mod gate;
pub mod invariants;
pub mod oracle;
pub mod pacts;
pub mod preflight;
pub mod report;
pub mod timeline;

pub use gate::{run_gate, GateError, GateOptions, GateReport, RunResult, TenantResult};
