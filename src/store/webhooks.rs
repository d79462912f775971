//! Webhooks of the Pact Broker-compatible registry as stored: their definitions and the log
//! of every delivery attempt. What they mean (events, templates, signing, retries) is
//! `broker::webhooks`; this layer only keeps them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::sim::Timestamp;

/// A webhook as the registry keeps it. Never holds credentials: the registry refuses
/// definitions that carry any (the receiver checks the registry's signature instead).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub uuid: String,
    pub description: String,
    /// Only events about this consumer; `None`: every consumer.
    pub consumer: Option<String>,
    /// Only events about this provider; `None`: every provider.
    pub provider: Option<String>,
    /// Event names, in the order given.
    pub events: Vec<String>,
    /// The request to send, as JSON: `{method, url, headers, body}` (templates unexpanded).
    pub request: String,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How one delivery attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// The receiver answered 2xx.
    Success,
    /// The receiver answered something else.
    Failure,
    /// No answer: connection refused, timeout, TLS failure, or not sent at all.
    Error,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Success => "success",
            ExecutionStatus::Failure => "failure",
            ExecutionStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "success" => Ok(ExecutionStatus::Success),
            "failure" => Ok(ExecutionStatus::Failure),
            "error" => Ok(ExecutionStatus::Error),
            other => Err(super::StoreError::failed(format!(
                "a stored webhook execution has an unknown status `{other}`"
            ))),
        }
    }
}

/// One attempt to deliver one event to one webhook. Holds no request headers or bodies (a
/// receiver's answer may echo what it was sent), only what tells whether it arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookExecution {
    /// Assigned by the store.
    pub id: i64,
    pub webhook_uuid: String,
    /// Identifies the event being delivered: every attempt of one delivery shares it.
    pub delivery: String,
    pub event: String,
    pub consumer: String,
    pub provider: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub status: ExecutionStatus,
    /// The receiver's HTTP status, when it answered.
    pub response_code: Option<u16>,
    /// Why it failed, when it did (never a header value or a URL's query).
    pub error: Option<String>,
    pub executed_at: Timestamp,
}

/// Webhook definitions and their delivery log.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates or replaces the webhook with this UUID; returns whether it was created.
    /// Replacing keeps its `created_at`.
    async fn webhook_put(&self, webhook: &Webhook) -> StoreResult<bool>;
    async fn webhook(&self, uuid: &str) -> StoreResult<Option<Webhook>>;
    /// Every webhook, oldest first.
    async fn webhooks(&self) -> StoreResult<Vec<Webhook>>;
    /// Deletes the webhook and its delivery log; returns whether it existed.
    async fn webhook_delete(&self, uuid: &str) -> StoreResult<bool>;
    /// Appends one attempt to the log and returns its id.
    async fn webhook_execution_record(&self, execution: &WebhookExecution) -> StoreResult<i64>;
    /// A webhook's attempts, oldest first.
    async fn webhook_executions(&self, uuid: &str) -> StoreResult<Vec<WebhookExecution>>;
}
