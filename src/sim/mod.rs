//! Simulation primitives shared by the mock, the engine and the verifier: the one
//! [`Clock`], seeded randomness ([`Rng`]) and the scenario model.
//!
//! Nothing else in the crate reads the wall clock or an OS random source: time and
//! randomness are passed in, so the same seed and scenario give the same trace.

mod clock;
pub mod library;
mod rng;
pub mod scenario;
pub mod time;

pub use clock::Clock;
pub use rng::{Rng, Seed};
pub use scenario::{Scenario, ScenarioError};
pub use time::Timestamp;
