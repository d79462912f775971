//! The mock's request journal: every request, its answer and the fault applied, in order,
//! on the virtual clock. `Authorization` is never recorded.

use serde::Serialize;

use crate::sim::Timestamp;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JournalEntry {
    pub seq: u64,
    #[serde(serialize_with = "iso")]
    pub at: Timestamp,
    pub method: String,
    /// Path and query, without scheme or host (ports differ between runs).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub status: u16,
    /// Records in a collections request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<usize>,
    /// Per-record outcomes of a collections request: (succeeded, failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<(usize, usize)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Earliest time a retry is allowed, from `Retry-After` or a budget lockout.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "iso_opt")]
    pub not_before: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// API requests used in the daily window after this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_usage: Option<u64>,
    /// Records a collections request created (the rest of its successes were updates).
    /// Kept out of the serialized trace so existing traces stay byte-identical.
    #[serde(skip)]
    pub created: Option<usize>,
    /// API requests in flight at the mock when this one arrived, itself included (0 for
    /// sign-ins, which are not counted): real concurrency, across every client. Not
    /// serialized (it depends on scheduling).
    #[serde(skip)]
    pub in_flight: usize,
    /// The request body as text, cut at [`BODY_LIMIT`] bytes (`replay --bodies`). None for
    /// the token endpoint, whose bodies hold credentials. Not serialized: traces stay as
    /// they were.
    #[serde(skip)]
    pub request_body: Option<String>,
    /// The response body as text, cut the same way (none for the token endpoint).
    #[serde(skip)]
    pub response_body: Option<String>,
    /// When the answer went out, on the org's clock (latency metrics). Not serialized.
    #[serde(skip)]
    pub answered_at: Option<Timestamp>,
}

/// Bytes of a body a journal entry keeps.
pub const BODY_LIMIT: usize = 4096;

/// A body as the journal keeps it: `None` when empty, cut at [`BODY_LIMIT`] bytes (on a
/// character boundary) with the full size said.
pub fn kept_body(text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    if text.len() <= BODY_LIMIT {
        return Some(text.to_string());
    }
    let mut end = BODY_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}… ({} bytes in all)", &text[..end], text.len()))
}

/// Whether a path's bodies hold credentials (the OAuth endpoints): never kept.
pub fn holds_credentials(path: &str) -> bool {
    path.starts_with("/services/oauth2/")
}

fn iso<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_iso())
}

fn iso_opt<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_iso()),
        None => s.serialize_none(),
    }
}

/// The journal as JSON lines (byte-identical for the same seed and scenario).
pub fn to_json_lines(entries: &[JournalEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&serde_json::to_string(e).expect("journal entry serializes"));
        out.push('\n');
    }
    out
}
