//! syncgate's integration tests: one binary (each extra binary links the whole crate
//! again), one module per feature. Find "the tests for X" by module name.

mod support;

mod adoption;
mod cdc;
mod crash_resume;
mod engine_bulk;
mod engine_policies;
mod gate;
mod limiter;
mod mock_api;
mod mock_rest;
mod pacts;
mod partner;
mod preflight;
mod real_clients;
mod registry;
mod schemas;
mod store_suite;
mod sync_cli;
mod workers;
