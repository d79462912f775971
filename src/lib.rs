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
//! - [`http`]: the one way an HTTP client is built (reqwest on rustls with `ring`).
//! - `cli`: the command line of the `syncgate` binary (not part of the API).
//!
//! # Where to look
//! - **`Retry-After` honoured, retries decided**: the rules in [`engine::retry`]
//!   (`classify`, `Attempts::after`), carried out for every request by the request driver
//!   (`engine/calls.rs`, `Sync::drive` and its `retry_wait`).
//! - **The daily budget guarded**: `engine/guard.rs` (`guard_budget` before each request,
//!   the limiter's admission, the waits for the daily window); the shared budget of several
//!   processes in [`store::limiter`].
//! - **What a batch sends and how it settles**: `engine/prepare.rs` (dedupe, mapping,
//!   pre-validation), `engine/collections.rs` (batches, per-record results, the batch size
//!   adapting to trigger limits), [`engine::bulk`] (Bulk API 2.0), `engine/letters.rs`
//!   (idempotency keys and dead letters).
//! - **One run, from source to org**: [`engine::runner`] (pages, lanes, cursors, the stop
//!   fence, the change-event consumer); [`engine::shared`] for several processes.
//! - **The verdict decided**: each run's invariants in [`verify::invariants`] (with
//!   [`verify::oracle`], the independent reference model of what the org must hold, and
//!   [`verify::run_checks`]); a tenant and the gate pass only when every run, the contract
//!   check and pact verification pass ([`verify::gate`]).
//! - **A fault's answer**: `mock/fault_answer.rs`, shared by the org mock and the partner stub.

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
pub mod http;
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
