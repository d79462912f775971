//! A dead letter must stand for a record that did not land: a letter for a version the org
//! holds (a lost answer the engine took for a failure, a retry that succeeded after the
//! engine gave up on it) sends someone to redrive what is already there, and a redrive of
//! it can overwrite newer values.

use std::collections::BTreeMap;

use serde_json::Value;

use super::invariants::{names, Violation};
use super::oracle::{Expectations, Expected};
use crate::contract::Bundle;
use crate::mock::Record;
use crate::store::DeadLetter;

/// How many letters a violation lists before summarising the rest.
const SHOWN: usize = 10;

/// Letters (still queued) whose record the oracle expects in the org and the org holds,
/// once, at the letter's version: the latest the source has.
pub fn check(
    bundle: &Bundle,
    expectations: &Expectations,
    org: &BTreeMap<String, Vec<Record>>,
    queued: &[DeadLetter],
    latest_version: impl Fn(&str, &str) -> Option<u64>,
) -> Option<Violation> {
    let mut details = Vec::new();
    for letter in queued {
        let Some(spec) = bundle.objects.get(&letter.object) else {
            continue;
        };
        let expected_present = expectations.get(&letter.object).is_some_and(|records| {
            records
                .iter()
                .any(|(id, e)| id == &letter.source_id && matches!(e, Expected::Present { .. }))
        });
        if !expected_present
            || latest_version(&spec.source, &letter.source_id) != Some(letter.source_version)
        {
            continue;
        }
        let landed = org.get(&letter.object).map_or(0, |records| {
            records
                .iter()
                .filter(|r| {
                    r.fields.get(&spec.external_id).and_then(Value::as_str)
                        == Some(letter.source_id.as_str())
                })
                .count()
        });
        if landed == 1 {
            details.push(format!(
                "{} {} version {} is in the org, yet its dead letter ({}: {}) is still queued",
                letter.object,
                letter.source_id,
                letter.source_version,
                letter.error_code,
                letter.message
            ));
        }
    }
    if details.is_empty() {
        return None;
    }
    let more = details.len().saturating_sub(SHOWN);
    details.truncate(SHOWN);
    if more > 0 {
        details.push(format!("… and {more} more"));
    }
    Some(Violation {
        invariant: names::LETTERS_REAL,
        details,
    })
}
