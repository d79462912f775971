//! syncgate's integration tests: one binary (each extra binary links the whole crate
//! again), one module per feature. Find "the tests for X" by module name.

mod support;

mod adoption;
mod bounded_run;
mod bug_classes;
mod cdc;
mod crash_resume;
mod deployable;
mod engine_bulk;
mod engine_command;
mod engine_policies;
mod gate;
mod limiter;
mod mock_api;
mod mock_describe;
mod mock_query;
mod mock_rest;
mod mock_values;
mod oauth;
mod org_onboarding;
mod pact_cli;
mod pacts;
mod partner;
mod preflight;
mod pubsub;
mod real_clients;
mod registry;
mod registry_latest;
mod replay_files;
mod run_metrics;
mod schemas;
mod store_suite;
mod sync_cli;
mod sync_metrics;
mod webhooks;
mod workers;
