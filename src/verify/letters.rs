//! A dead letter must stand for a record that did not land: a letter for a version the org
//! holds (a lost answer the engine took for a failure, a retry that succeeded after the
//! engine gave up on it) sends someone to redrive what is already there, and a redrive of
//! it can overwrite newer values.

use std::collections::{BTreeMap, HashMap, HashSet};

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
    if queued.is_empty() {
        return None;
    }
    // Indexed once, so the check stays linear in records whatever the number of letters.
    let present: HashSet<(&str, &str)> = expectations
        .iter()
        .flat_map(|(object, records)| {
            records
                .iter()
                .filter(|(_, e)| matches!(e, Expected::Present { .. }))
                .map(move |(id, _)| (object.as_str(), id.as_str()))
        })
        .collect();
    let mut in_org: HashMap<(&str, &str), usize> = HashMap::new();
    for (object, records) in org {
        let Some(spec) = bundle.objects.get(object) else {
            continue;
        };
        for r in records {
            if let Some(ext) = r.fields.get(&spec.external_id).and_then(Value::as_str) {
                *in_org.entry((object.as_str(), ext)).or_default() += 1;
            }
        }
    }
    for letter in queued {
        let Some(spec) = bundle.objects.get(&letter.object) else {
            continue;
        };
        let expected_present =
            present.contains(&(letter.object.as_str(), letter.source_id.as_str()));
        if !expected_present
            || latest_version(&spec.source, &letter.source_id) != Some(letter.source_version)
        {
            continue;
        }
        let landed = in_org
            .get(&(letter.object.as_str(), letter.source_id.as_str()))
            .copied()
            .unwrap_or(0);
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
