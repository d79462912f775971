//! # syncgate
//!
//! Catches the three ways a Salesforce or partner sync breaks production — a silent field
//! change, the org pushing back on limits, and duplicate delivery — before anything is
//! deployed.
//!
//! # Layout
//! - [`contract`]: the contract bundle (objects, fields, limits, pacts) per partner and
//!   tenant, the field rules Salesforce enforces, and the registry on disk.
//! - [`mock`]: a mock Salesforce org over real HTTP, with faults from a scenario.
//! - [`engine`]: the sync engine teams deploy: source → mapping → batches → client, with
//!   retries, limits and a dead-letter queue; several workers share a tenant by leases.
//! - [`verify`]: the gate: runs the engine against the mock per scenario and checks the
//!   invariants; reports for terminals and CI.
//! - [`store`]: durable state behind one trait (SQLite by default, PostgreSQL to share it),
//!   and the limiter (per process, or Redis to share it).
//! - [`sim`]: the one clock, seeded randomness and the scenario model.
//! - [`source`]: change records from our own system (JSONL and CSV fixtures), read by the
//!   engine and the verifier's oracle alike.
//! - [`broker`]: the registry over HTTP, compatible with the Pact Broker API.
//! - `cli`: the command line of the `syncgate` binary (not part of the API).

// Errors carry the file, line, field and fix; they are built once, on bad input, so their
// size on the cold path is worth the detail.
#![allow(clippy::result_large_err)]

pub mod broker;
// The binary's command line: `pub` only because `src/main.rs` is another crate that calls
// `cli::main_impl`; hidden from the docs because it is no API: its types change with the
// flags, and library users call `verify`, `engine`, `contract` and `store` directly.
#[doc(hidden)]
pub mod cli;
pub mod contract;
pub mod engine;
pub mod mock;
pub mod sim;
pub mod source;
pub mod store;
pub mod verify;

#[cfg(test)]
mod layering;
#[cfg(test)]
mod proptests;

pub use contract::Bundle;
pub use sim::{Clock, Scenario, Seed};
pub use verify::{run_gate, GateOptions, GateReport};
