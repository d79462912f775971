//! Where change events come from, behind one trait: the consumer asks a [`ChangeStream`]
//! for the events after a replay ID and does the rest (dedupe, echoes, gaps, the sink)
//! itself. [`LongPollStream`] reads the long-poll subscription a `syncgate mock serve` org
//! publishes (`/__syncgate/events`); [`super::PubSubStream`] reads Salesforce's Pub/Sub API
//! (a real org's, or the mock's), plugged in with [`super::CdcConsumer::with_stream`].

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{CdcConfig, CdcError, EventPage};
use crate::engine::client::SalesforceClient;
use crate::engine::retry::Backoff;
use crate::sim::{Clock, Rng, Seed};

/// What one poll brought.
#[derive(Clone, Debug, PartialEq)]
pub enum Polled {
    /// The events after the replay ID asked for (possibly none), oldest first, and the
    /// replay ID to resume from once these are handled (opaque: stored and passed back).
    Events {
        events: EventPage,
        latest: Option<String>,
    },
    /// The replay ID expired from the bus (or was never issued).
    InvalidReplay,
}

/// A subscription to a tenant's change events.
#[async_trait]
pub trait ChangeStream: Send {
    /// The events after `replay`: `EARLIEST`, `LATEST`, or a replay ID the stream issued.
    /// `client` is the consumer's session with the org (signed in by the stream when it
    /// needs one).
    async fn poll(
        &mut self,
        replay: &str,
        client: &mut SalesforceClient,
    ) -> Result<Polled, CdcError>;
}

/// A long-poll answer as the stream checks it: an object with an `events` array.
#[derive(Deserialize)]
struct PageHead {
    #[allow(dead_code)]
    #[serde(default)]
    events: Vec<serde::de::IgnoredAny>,
    #[serde(rename = "latestReplayId")]
    latest_replay_id: Option<u64>,
}

/// The long-poll subscription (`GET …?topic=&replay=&wait=&max=`), retrying transport
/// failures and server errors with backoff on the clock.
pub struct LongPollStream {
    url: String,
    topic: String,
    wait: Duration,
    max_events: usize,
    max_attempts: u32,
    backoff: Backoff,
    http: reqwest::Client,
    clock: Clock,
    jitter: Rng,
}

impl LongPollStream {
    /// Reads `config.events_url` on `clock`; retry jitter from `seed`.
    pub fn new(config: &CdcConfig, clock: Clock, seed: Seed) -> Self {
        LongPollStream {
            url: config.events_url.clone(),
            topic: config.topic.clone(),
            wait: config.wait,
            max_events: config.max_events,
            max_attempts: config.max_attempts,
            backoff: config.backoff.clone(),
            http: crate::http::client(),
            clock,
            jitter: seed.stream("engine.cdc.stream"),
        }
    }
}

#[async_trait]
impl ChangeStream for LongPollStream {
    async fn poll(
        &mut self,
        replay: &str,
        _client: &mut SalesforceClient,
    ) -> Result<Polled, CdcError> {
        let wait = self.wait.as_secs().to_string();
        let max = self.max_events.clamp(1, 1000).to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .get(&self.url)
                .query(&[
                    ("topic", self.topic.as_str()),
                    ("replay", replay),
                    ("wait", wait.as_str()),
                    ("max", max.as_str()),
                ])
                .send()
                .await;
            let message = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        // Checked here (a scan, nothing kept); the consumer reads the
                        // events from the text in place.
                        if let Ok(head) = serde_json::from_str::<PageHead>(&text) {
                            return Ok(Polled::Events {
                                latest: head.latest_replay_id.map(|id| id.to_string()),
                                events: EventPage::Json(text),
                            });
                        }
                    }
                    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let code = body
                        .pointer("/0/errorCode")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if code == "INVALID_REPLAY_ID" {
                        return Ok(Polled::InvalidReplay);
                    }
                    let text = body
                        .pointer("/0/message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message");
                    if status.is_client_error() {
                        return Err(CdcError::Poll {
                            url: self.url.clone(),
                            message: format!("HTTP {status}: {code} {text}"),
                        });
                    }
                    format!("HTTP {status}: {text}")
                }
                Err(e) => e.without_url().to_string(),
            };
            if attempt >= self.max_attempts {
                return Err(CdcError::Poll {
                    url: self.url.clone(),
                    message: format!("gave up after {attempt} attempts: {message}"),
                });
            }
            let delay = self.backoff.delay(attempt, &mut self.jitter);
            self.clock.sleep(delay).await;
        }
    }
}
