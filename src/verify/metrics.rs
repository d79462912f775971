//! Per-run metrics, the numbers people watch: requests by endpoint, retries by cause, call
//! latency in org time (p50/p95/p99), the API budget used, dead letters by code and the
//! duplicates suppressed. Computed from the org's journal and the engine's report; in the
//! JSON report under each run's `metrics` (docs/report.md).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::cdc::CdcReport;
use crate::engine::{EventKind, SyncReport};
use crate::mock::JournalEntry;

/// One run's metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunMetrics {
    /// `METHOD /path` with IDs and key values as `{id}` / `{key}`, the API version as `vXX.X`.
    pub requests_by_endpoint: BTreeMap<String, u64>,
    /// Retries by the error code (or transport failure) that caused them.
    pub retries_by_cause: BTreeMap<String, u64>,
    /// Org-time latency of the answered calls, from arrival to answer, in milliseconds.
    pub latency_ms: Latency,
    /// The org's daily API usage after the run, and its limit (`Sforce-Limit-Info`).
    pub api_budget_used: Option<u64>,
    pub api_budget_max: Option<u64>,
    /// Dead letters by error code.
    pub dead_letters_by_code: BTreeMap<String, u64>,
    /// Records the engine did not send again (already applied) plus change events it
    /// skipped as duplicates.
    pub duplicates_suppressed: u64,
}

/// Nearest-rank percentiles of call latency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub calls: usize,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

/// The endpoint a journal entry's path belongs to.
pub fn endpoint(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let mut out: Vec<String> = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        let prev = |n: usize| i.checked_sub(n).and_then(|j| segments.get(j)).copied();
        let shaped = if i > 0 && prev(1) == Some("data") && seg.starts_with('v') {
            "vXX.X".to_string()
        } else if is_record_id(seg) {
            "{id}".to_string()
        } else if prev(3) == Some("sobjects") && prev(4) != Some("composite") {
            // `sobjects/{Object}/{ExternalIdField}/{value}`: the value is a record's key.
            "{key}".to_string()
        } else {
            (*seg).to_string()
        };
        out.push(shaped);
    }
    format!("{method} {}", out.join("/"))
}

/// A 15- or 18-character Salesforce ID (letters and digits, with a digit in it).
fn is_record_id(s: &str) -> bool {
    (s.len() == 15 || s.len() == 18)
        && s.chars().all(|c| c.is_ascii_alphanumeric())
        && s.chars().any(|c| c.is_ascii_digit())
}

fn latency(journal: &[JournalEntry]) -> Latency {
    let mut ms: Vec<u64> = journal
        .iter()
        .filter_map(|e| {
            let answered = e.answered_at?;
            u64::try_from(answered.as_millis() - e.at.as_millis()).ok()
        })
        .collect();
    if ms.is_empty() {
        return Latency::default();
    }
    ms.sort_unstable();
    // Nearest rank: the smallest value with at least p% of the calls at or below it.
    let rank = |p: usize| ms[(ms.len() * p).div_ceil(100).max(1) - 1];
    Latency {
        calls: ms.len(),
        p50: rank(50),
        p95: rank(95),
        p99: rank(99),
        max: ms[ms.len() - 1],
    }
}

/// The metrics of one run.
pub fn of(journal: &[JournalEntry], report: &SyncReport, cdc: &CdcReport) -> RunMetrics {
    let mut m = RunMetrics {
        latency_ms: latency(journal),
        api_budget_used: report.api_usage.map(|u| u.used),
        api_budget_max: report.api_usage.map(|u| u.max),
        duplicates_suppressed: report.already_synced as u64 + cdc.duplicates_skipped,
        ..RunMetrics::default()
    };
    for e in journal {
        *m.requests_by_endpoint
            .entry(endpoint(&e.method, &e.path))
            .or_default() += 1;
    }
    if m.api_budget_used.is_none() {
        m.api_budget_used = journal.iter().rev().find_map(|e| e.api_usage);
    }
    for ev in &report.events {
        match &ev.kind {
            EventKind::Retry {
                records: _, code, ..
            } => {
                *m.retries_by_cause.entry(code.clone()).or_default() += 1;
            }
            EventKind::DeadLetter { code, .. } => {
                *m.dead_letters_by_code.entry(code.clone()).or_default() += 1;
            }
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_hide_ids_keys_and_the_api_version() {
        assert_eq!(
            endpoint(
                "PATCH",
                "/services/data/v61.0/composite/sobjects/Account/BP_Account_Key__c"
            ),
            "PATCH /services/data/vXX.X/composite/sobjects/Account/BP_Account_Key__c"
        );
        assert_eq!(
            endpoint(
                "DELETE",
                "/services/data/v62.0/sobjects/Contact/NW_Contact_Id__c/CON-50001"
            ),
            "DELETE /services/data/vXX.X/sobjects/Contact/NW_Contact_Id__c/{key}"
        );
        assert_eq!(
            endpoint(
                "PUT",
                "/services/data/v62.0/jobs/ingest/7508d0000000001AAA/batches"
            ),
            "PUT /services/data/vXX.X/jobs/ingest/{id}/batches"
        );
        assert_eq!(
            endpoint("GET", "/services/data/v62.0/query?q=SELECT+Id+FROM+Account"),
            "GET /services/data/vXX.X/query"
        );
        assert_eq!(
            endpoint("POST", "/services/oauth2/token"),
            "POST /services/oauth2/token"
        );
    }
}
