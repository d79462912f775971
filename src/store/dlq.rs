//! Dead letters: records the engine could not deliver, with everything needed to see why
//! and to send them again.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sim::Timestamp;

/// Why a record was dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Salesforce rejected the record (validation, type, length, picklist, …).
    Rejected,
    /// The engine could not coerce a source value to the field's type.
    Mapping,
    /// Retryable failures outlasted the retry budget.
    RetriesExhausted,
    /// The contract rejects the record (required, length, picklist, type): never sent.
    Invalid,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Rejected => "rejected",
            ErrorClass::Mapping => "mapping",
            ErrorClass::RetriesExhausted => "retries_exhausted",
            ErrorClass::Invalid => "invalid",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// `partner/tenant`.
    pub tenant: String,
    pub object: String,
    pub source_id: String,
    pub source_version: u64,
    pub payload: Value,
    pub class: ErrorClass,
    /// Salesforce's `statusCode`/`errorCode`, or the engine's own code for mapping errors.
    pub error_code: String,
    pub message: String,
    pub attempts: u32,
    pub correlation_id: Option<String>,
    pub first_failed_at: Timestamp,
    pub last_failed_at: Timestamp,
    /// The record version's idempotency key (`tenant|object|source ID|operation|version`).
    #[serde(default)]
    pub idempotency_key: String,
    /// The headers of the last request that carried the record (never `Authorization`);
    /// empty when it was never sent (mapping and pre-validation failures).
    #[serde(default)]
    pub headers_sent: std::collections::BTreeMap<String, String>,
}
