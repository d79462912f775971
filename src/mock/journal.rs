//! The mock's request journal: every request, its answer and the fault applied, in order,
//! on the virtual clock. `Authorization` is never recorded. It keeps the last `limit`
//! entries (a ring; unbounded unless limited, so the gate sees every request of its
//! runs) and counts every request ever recorded, so a long-running `mock serve` holds a
//! bounded journal.

use std::collections::VecDeque;

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
    /// A digest of the request body (API requests with one): the same request sent again
    /// has the same digest. Not serialized.
    #[serde(skip)]
    pub body_digest: Option<u64>,
    /// Per record of a collections upsert, in the order sent: what Salesforce answered for
    /// it, as far as the client received it. Not serialized (traces stay as they were).
    #[serde(skip)]
    pub record_outcomes: Option<Vec<RecordOutcome>>,
}

/// One record of a collections upsert (`PATCH /composite/sobjects/{Object}/{Field}`) as the
/// journal keeps it: its external ID, a digest of the record exactly as sent (so a record
/// sent again unchanged is recognised) and Salesforce's answer for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordOutcome {
    pub external_id: String,
    pub digest: u64,
    pub result: RecordResult,
}

/// What the client learned about one record of a collections upsert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordResult {
    /// No per-record answer reached the client: the request was refused as a whole, or
    /// its answer was lost, cut short or never sent.
    Unseen,
    Applied,
    /// `errors[0]` of the record's result.
    Rejected {
        code: String,
        message: String,
    },
}

/// A stable digest of `bytes` within one run (the same bytes, the same digest).
pub fn digest(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// The records of a collections upsert body, each as [`RecordResult::Unseen`] (none when
/// the body holds no `records` array).
pub fn upsert_records(body: &[u8], external_id_field: &str) -> Option<Vec<RecordOutcome>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let records = value.get("records")?.as_array()?;
    Some(
        records
            .iter()
            .map(|r| RecordOutcome {
                external_id: match r.get(external_id_field) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) if !v.is_null() => v.to_string(),
                    _ => String::new(),
                },
                digest: digest(r.to_string().as_bytes()),
                result: RecordResult::Unseen,
            })
            .collect(),
    )
}

/// Fills `outcomes` from an answer body that is a per-record result array of the same
/// length (`[{"success": …, "errors": [{"statusCode", "message"}]}, …]`); anything else
/// (an error array for the whole request) leaves them unseen.
pub fn read_record_results(outcomes: &mut [RecordOutcome], body: &serde_json::Value) {
    let Some(results) = body.as_array() else {
        return;
    };
    if results.len() != outcomes.len()
        || !results
            .iter()
            .all(|r| r.get("success").is_some_and(serde_json::Value::is_boolean))
    {
        return;
    }
    for (o, r) in outcomes.iter_mut().zip(results) {
        o.result = if r["success"] == serde_json::Value::Bool(true) {
            RecordResult::Applied
        } else {
            let first = r.get("errors").and_then(|e| e.get(0));
            let text = |k: &str| {
                first
                    .and_then(|e| e.get(k))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            RecordResult::Rejected {
                code: text("statusCode"),
                message: text("message"),
            }
        };
    }
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

/// The last `limit` entries, and how many there were in all.
#[derive(Clone, Debug)]
pub struct Journal {
    entries: VecDeque<JournalEntry>,
    limit: usize,
    total: u64,
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new(usize::MAX)
    }
}

impl Journal {
    /// A journal keeping at most `limit` entries (at least one).
    pub fn new(limit: usize) -> Self {
        Journal {
            entries: VecDeque::new(),
            limit: limit.max(1),
            total: 0,
        }
    }

    pub fn push(&mut self, entry: JournalEntry) {
        if self.entries.len() >= self.limit {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
        self.total += 1;
    }

    /// Requests recorded since the start (or the last reset), the dropped ones included.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Entries dropped to keep the limit.
    pub fn dropped(&self) -> u64 {
        self.total - self.entries.len() as u64
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.entries.iter().cloned().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &JournalEntry> {
        self.entries.iter()
    }

    pub fn last_mut(&mut self) -> Option<&mut JournalEntry> {
        self.entries.back_mut()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> JournalEntry {
        JournalEntry {
            seq,
            at: Timestamp::parse("2026-01-05T08:00:00Z").unwrap(),
            method: "GET".into(),
            path: "/".into(),
            object: None,
            status: 200,
            records: None,
            outcome: None,
            fault: None,
            not_before: None,
            error_code: None,
            correlation_id: None,
            client: None,
            api_usage: None,
            created: None,
            in_flight: 0,
            request_body: None,
            response_body: None,
            answered_at: None,
            body_digest: None,
            record_outcomes: None,
        }
    }

    #[test]
    fn a_limited_journal_keeps_the_last_entries_and_counts_them_all() {
        let mut j = Journal::new(3);
        for seq in 1..=10 {
            j.push(entry(seq));
        }
        assert_eq!(j.total(), 10);
        assert_eq!(j.dropped(), 7);
        let seqs: Vec<u64> = j.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![8, 9, 10]);
        let mut all = Journal::default();
        for seq in 1..=1000 {
            all.push(entry(seq));
        }
        assert_eq!(all.entries().len(), 1000);
        assert_eq!(all.dropped(), 0);
    }

    #[test]
    fn per_record_results_are_read_only_from_a_result_array_of_the_same_length() {
        let body = br#"{"allOrNone": false, "records": [{"attributes": {"type": "Account"}, "Ext__c": "A"}, {"attributes": {"type": "Account"}, "Ext__c": "B"}]}"#;
        let mut outcomes = upsert_records(body, "Ext__c").unwrap();
        assert_eq!(outcomes[0].external_id, "A");
        assert_ne!(outcomes[0].digest, outcomes[1].digest);
        let whole = serde_json::json!([{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}, {"errorCode": "X", "message": "y"}]);
        read_record_results(&mut outcomes, &whole);
        assert!(outcomes.iter().all(|o| o.result == RecordResult::Unseen));
        let results = serde_json::json!([
            {"success": true, "errors": []},
            {"success": false, "errors": [{"statusCode": "STRING_TOO_LONG", "message": "Name: too long"}]}
        ]);
        read_record_results(&mut outcomes, &results);
        assert_eq!(outcomes[0].result, RecordResult::Applied);
        assert_eq!(
            outcomes[1].result,
            RecordResult::Rejected {
                code: "STRING_TOO_LONG".into(),
                message: "Name: too long".into()
            }
        );
    }
}
