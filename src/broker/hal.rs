//! How the registry answers: HAL+JSON bodies, JSON error answers (and the store's errors as
//! statuses), request bodies read as JSON, and path segments percent-encoded for links.

use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::StoreError;

/// An error answer: status and message, as JSON.
#[derive(Debug)]
pub struct ApiError(pub(super) StatusCode, pub(super) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": { "message": self.1 },
            "notices": [{ "type": "error", "text": self.1 }],
        });
        (
            self.0,
            [(CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError(StatusCode::CONFLICT, m),
            StoreError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, format!("{m} not found")),
            e @ (StoreError::Backend { .. } | StoreError::BadUrl(_)) => {
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

pub(super) type ApiResult = Result<Response, ApiError>;

pub(super) fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

pub(super) fn not_found(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, msg.into())
}

/// A JSON answer; `application/hal+json` when the client asks for it.
pub(super) fn hal(status: StatusCode, headers: &HeaderMap, body: Value) -> Response {
    let wants_hal = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/hal+json"));
    let ct = if wants_hal {
        "application/hal+json"
    } else {
        "application/json"
    };
    (status, [(CONTENT_TYPE, ct)], body.to_string()).into_response()
}

/// Percent-encodes one path segment.
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn parse_json<T: for<'de> Deserialize<'de>>(
    body: &Bytes,
    what: &str,
) -> Result<T, ApiError> {
    let text = if body.is_empty() { &b"{}"[..] } else { body };
    serde_json::from_slice(text).map_err(|e| bad_request(format!("invalid {what} body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(seg("Pact Broker"), "Pact%20Broker");
        assert_eq!(seg("a/b"), "a%2Fb");
        assert_eq!(seg("bluepeak-logistics"), "bluepeak-logistics");
    }
}
