//! The registry over HTTP, compatible with the Pact Broker endpoints standard Pact tooling
//! uses (`pact broker publish|record-deployment|can-i-deploy`, `pact verifier --broker-url`).
//!
//! Relation names follow the Pact Broker; paths are ours. Every request needs a bearer token
//! scoped to a partner ([`tokens`]); a pacticipant named `<partner>-salesforce-<tenant>` is
//! that tenant's org, any other name counts as a partner of its own (see the README's
//! "Registry" section for the whole mapping).

//!
//! Inside: `routes` (the router, the server and the index), `auth` (the caller's token),
//! `hal` (answers and errors), `publish`, `pacts`, `verifications`, `pacticipants`,
//! `environments`, `releases`, `latest`, `matrix`, `selectors`, `order` and `webhooks`.

mod auth;
pub mod environments;
mod hal;
pub mod latest;
pub mod matrix;
pub mod order;
mod pacticipants;
mod pacts;
mod publish;
pub mod releases;
mod routes;
pub mod selectors;
pub mod tokens;
mod verifications;
pub mod webhooks;

use std::sync::Arc;

use crate::sim::{Clock, Timestamp};
use crate::store::BrokerStore;
use auth::caller;
pub use auth::Caller;
use hal::{bad_request, hal, not_found, parse_json, ApiResult};
pub use hal::{seg, ApiError};
use pacticipants::version_body;
pub use pacts::latest_per_consumer;
use pacts::{find_pact, pact_link, pact_response};
pub use publish::{base64_decode, pact_sha};
pub use routes::{router, serve};
pub use tokens::{Access, TokenScope, Tokens};

/// What the server needs: the store, the accepted tokens, the clock, and the base URL links
/// are written with (by default the request's `Host`).
#[derive(Clone)]
pub struct BrokerConfig {
    pub store: Arc<dyn BrokerStore>,
    pub tokens: Tokens,
    pub clock: Clock,
    pub public_url: Option<String>,
    /// How webhooks are signed, retried and timed out ([`webhooks::delivery`]).
    pub webhooks: Arc<webhooks::Delivery>,
}

type Shared = Arc<BrokerConfig>;

/// The time the server stamps records with.
pub fn now(cfg: &BrokerConfig) -> Timestamp {
    cfg.clock.now()
}
