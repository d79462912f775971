//! `retries-follow-retryable-answers`: a call is only sent again after an answer that says
//! trying again can help. Per record: a record of a collections upsert that Salesforce
//! rejected for good (`REQUIRED_FIELD_MISSING`, `STRING_TOO_LONG`, `INVALID_FIELD`, …) is
//! never sent again unchanged. Per request: a request answered with a permanent error (a
//! `4xx` other than a session to renew, a lockout to wait out or a row lock) is never sent
//! again unchanged. What is retryable is written out here, not shared with any engine.

use std::collections::HashMap;

use super::{answered_before, is_api, label};
use crate::mock::journal::RecordResult;
use crate::mock::JournalEntry;

/// Per-record codes that say the same record may land if sent again.
const RETRYABLE_RECORD_CODES: [&str; 4] = [
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "REQUEST_RUNNING_TOO_LONG",
    // Another record of an all-or-none request failed; this one was fine.
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
];

/// Whether a per-record rejection leaves sending the record again worthwhile.
pub fn record_retryable(code: &str, message: &str) -> bool {
    RETRYABLE_RECORD_CODES.contains(&code)
        // An org-side trigger ran its transaction past a governor limit: the same record
        // lands in a smaller batch.
        || (code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
            && (message.contains("LimitException") || message.contains("CPU time limit")))
}

/// Whether an answer to a whole request is permanent: sending it again unchanged cannot
/// help. Transport failures (status 0), `5xx`, `401` (sign in again), `403
/// REQUEST_LIMIT_EXCEEDED` (a budget or concurrency lockout to wait out), `408`, `420`,
/// `429` and a row lock are not.
pub fn request_permanent(status: u16, code: Option<&str>) -> bool {
    match status {
        400 => code != Some("UNABLE_TO_LOCK_ROW"),
        401 | 408 | 420 | 429 => false,
        403 => code != Some("REQUEST_LIMIT_EXCEEDED"),
        402..=499 => true,
        _ => false,
    }
}

/// The violations, and a note when records went through Bulk API jobs (their per-record
/// outcomes are not in the journal: only whole requests were judged for them).
pub fn check(journal: &[JournalEntry]) -> (Vec<String>, Option<super::Unchecked>) {
    // The first permanent rejection of each (object, external ID, record as sent), and of
    // each (method, path, body) — by journal index, for "answered before".
    let mut records: HashMap<(&str, &str, u64), (usize, &str)> = HashMap::new();
    let mut requests: HashMap<(&str, &str, Option<u64>), usize> = HashMap::new();
    for (i, e) in journal.iter().enumerate().filter(|(_, e)| is_api(e)) {
        // A fault the mock injected is not Salesforce's verdict on the request.
        if e.fault.is_none() && request_permanent(e.status, e.error_code.as_deref()) {
            requests
                .entry((e.method.as_str(), e.path.as_str(), e.body_digest))
                .or_insert(i);
        }
        let object = e.object.as_deref().unwrap_or_default();
        for o in e.record_outcomes.iter().flatten() {
            if let RecordResult::Rejected { code, message } = &o.result {
                if !record_retryable(code, message) {
                    records
                        .entry((object, o.external_id.as_str(), o.digest))
                        .or_insert((i, code.as_str()));
                }
            }
        }
    }
    let mut out = Vec::new();
    for e in journal.iter().filter(|e| is_api(e)) {
        let key = (e.method.as_str(), e.path.as_str(), e.body_digest);
        if let Some(&i) = requests.get(&key) {
            if answered_before(i, e) {
                let first = &journal[i];
                out.push(format!(
                    "request {} repeated #{} unchanged after Salesforce answered it {} {} (permanent)",
                    label(e),
                    first.seq,
                    first.status,
                    first.error_code.as_deref().unwrap_or("")
                ));
                continue;
            }
        }
        let object = e.object.as_deref().unwrap_or_default();
        for o in e.record_outcomes.iter().flatten() {
            let Some(&(i, code)) = records.get(&(object, o.external_id.as_str(), o.digest)) else {
                continue;
            };
            if answered_before(i, e) {
                out.push(format!(
                    "{object} {}: sent again unchanged in request {} after the answer to #{} rejected it permanently ({code})",
                    o.external_id,
                    label(e),
                    journal[i].seq
                ));
            }
        }
    }
    let bulk = journal
        .iter()
        .any(|e| is_api(e) && e.path.contains("/jobs/ingest"));
    let note = bulk.then(|| {
        super::Unchecked::not_checked(
            crate::verify::invariants::names::WASTED_CALLS,
            "records written through Bulk API 2.0 jobs have no per-record outcomes in the journal: for them only whole requests were judged",
        )
    });
    (out, note)
}

#[cfg(test)]
mod tests {
    use super::super::testing::entry;
    use super::*;
    use crate::mock::journal::RecordOutcome;

    fn upsert(seq: u64, records: &[(&str, u64, RecordResult)]) -> JournalEntry {
        let mut e = entry(seq, seq as i64 * 1000, 10);
        e.record_outcomes = Some(
            records
                .iter()
                .map(|(ext, digest, result)| RecordOutcome {
                    external_id: ext.to_string(),
                    digest: *digest,
                    result: result.clone(),
                })
                .collect(),
        );
        e
    }

    fn rejected(code: &str) -> RecordResult {
        RecordResult::Rejected {
            code: code.into(),
            message: "Name: data value too large".into(),
        }
    }

    #[test]
    fn only_retryable_answers_are_followed_by_the_same_record() {
        use RecordResult::*;
        // A lock, then the same record again: fine. A too-long name, then the same record
        // again: wasted. The same ID with other content (a new version): fine.
        let journal = vec![
            upsert(
                1,
                &[
                    ("A", 1, rejected("UNABLE_TO_LOCK_ROW")),
                    ("B", 2, rejected("STRING_TOO_LONG")),
                ],
            ),
            upsert(2, &[("A", 1, Applied), ("B", 3, Applied)]),
        ];
        assert!(check(&journal).0.is_empty());
        let journal = vec![
            upsert(
                1,
                &[
                    ("A", 1, rejected("UNABLE_TO_LOCK_ROW")),
                    ("B", 2, rejected("STRING_TOO_LONG")),
                ],
            ),
            upsert(
                2,
                &[("A", 1, Applied), ("B", 2, rejected("STRING_TOO_LONG"))],
            ),
        ];
        let (found, note) = check(&journal);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("Account B: sent again unchanged in request #2")
                && found[0].contains("(STRING_TOO_LONG)"),
            "{found:#?}"
        );
        assert!(note.is_none());
        // A record whose answer never reached the client (lost) may be sent again.
        let journal = vec![
            upsert(1, &[("B", 2, Unseen)]),
            upsert(2, &[("B", 2, Applied)]),
        ];
        assert!(check(&journal).0.is_empty());
        // A governor limit in a trigger: the record lands in a smaller batch.
        let cpu = RecordResult::Rejected {
            code: "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY".into(),
            message: "System.LimitException: Apex CPU time limit exceeded".into(),
        };
        let journal = vec![upsert(1, &[("C", 4, cpu)]), upsert(2, &[("C", 4, Applied)])];
        assert!(check(&journal).0.is_empty());
    }

    #[test]
    fn a_request_repeated_after_a_permanent_answer_is_named_and_transient_ones_are_not() {
        let mut first = entry(1, 0, 10);
        (first.status, first.error_code, first.body_digest) =
            (400, Some("JSON_PARSER_ERROR".into()), Some(9));
        let mut again = entry(2, 1000, 10);
        again.body_digest = Some(9);
        let (found, _) = check(&[first.clone(), again.clone()]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("repeated #1") && found[0].contains("400 JSON_PARSER_ERROR"));
        for (status, code) in [
            (400, "UNABLE_TO_LOCK_ROW"),
            (403, "REQUEST_LIMIT_EXCEEDED"),
            (401, "INVALID_SESSION_ID"),
            (503, "SERVER_UNAVAILABLE"),
            (429, "REQUEST_LIMIT_EXCEEDED"),
        ] {
            let mut t = first.clone();
            (t.status, t.error_code) = (status, Some(code.into()));
            assert!(check(&[t, again.clone()]).0.is_empty(), "{status} {code}");
        }
        // Sent again before the answer came back (in parallel): not a retry.
        let mut parallel = again.clone();
        parallel.seq = 1;
        assert!(check(&[first, parallel]).0.is_empty());
    }
}
