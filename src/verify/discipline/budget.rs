//! `last-daily-call-spared`: the engine never spends the last API call of a daily window.
//! Every answer states the window's count (`Sforce-Limit-Info: api-usage=USED/MAX`); once
//! an answer has told the engine that at most one call is left (`USED >= MAX - 1`), it may
//! send nothing more to the org until the window reopens — the last call stays for the
//! org's own people and tools, and the lockout (`REQUEST_LIMIT_EXCEEDED` for everyone in
//! the org) never comes from the sync. A request sent before any such answer is not held
//! against it: the engine could not know.

use std::collections::BTreeMap;

use super::{answered_before, is_api, label};
use crate::mock::JournalEntry;
use crate::sim::Timestamp;

pub fn check(journal: &[JournalEntry], max: u64) -> Vec<String> {
    // Per daily window: the first answer (its journal index) that said at most one call
    // was left. Answers the client never read (lost, reset) told it nothing.
    let mut warned: BTreeMap<Timestamp, usize> = BTreeMap::new();
    for (i, e) in journal.iter().enumerate() {
        let (Some(used), Some(answered)) = (e.api_usage, e.answered_at) else {
            continue;
        };
        let lost = e.status == 0
            || e.fault
                .as_deref()
                .is_some_and(|f| f.contains("response_lost"));
        if is_api(e) && !lost && used.saturating_add(1) >= max {
            warned.entry(answered.day_start()).or_insert(i);
        }
    }
    let mut out = Vec::new();
    for e in journal.iter().filter(|e| is_api(e)) {
        let Some(&w) = warned.get(&e.at.day_start()) else {
            continue;
        };
        if !answered_before(w, e) {
            continue;
        }
        let told = &journal[w];
        let said = format!("{}/{max}", told.api_usage.unwrap_or_default());
        let refused = e.fault.as_deref() == Some("daily_budget_exhausted");
        out.push(if refused {
            format!(
                "request {} at {} ran into the daily lockout (REQUEST_LIMIT_EXCEEDED) although the answer to #{} had said api-usage={said}",
                label(e),
                e.at,
                told.seq
            )
        } else {
            format!(
                "request {} at {} spent one of the window's last calls (api-usage={}/{max} after it) although the answer to #{} had said api-usage={said}: the last call of the day must stay unspent",
                label(e),
                e.at,
                e.api_usage.unwrap_or_default(),
                told.seq
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::entry;
    use super::*;

    /// Requests one after the other, each answered before the next; `usage` after each.
    fn sequential(usage: &[u64]) -> Vec<JournalEntry> {
        usage
            .iter()
            .enumerate()
            .map(|(i, &u)| {
                let mut e = entry(i as u64 + 1, i as i64 * 1000, 10);
                e.api_usage = Some(u);
                e
            })
            .collect()
    }

    #[test]
    fn stopping_with_one_call_left_passes_and_spending_it_is_named() {
        // 14998 spent at the start: the first answer says 14999/15000, so nothing more.
        assert!(check(&sequential(&[14_999]), 15_000).is_empty());
        let found = check(&sequential(&[14_999, 15_000]), 15_000);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].contains("request #2") && found[0].contains("api-usage=14999/15000"),
            "{found:#?}"
        );
        // The engine could not know before the first answer: 14999 spent at the start.
        assert!(check(&sequential(&[15_000]), 15_000).is_empty());
    }

    #[test]
    fn a_request_into_the_lockout_is_named_and_a_new_window_starts_clean() {
        let mut journal = sequential(&[14_999]);
        let mut refused = entry(2, 2000, 1);
        refused.api_usage = Some(15_000);
        refused.fault = Some("daily_budget_exhausted".into());
        refused.status = 403;
        journal.push(refused);
        let found = check(&journal, 15_000);
        assert!(
            found[0].contains("ran into the daily lockout"),
            "{found:#?}"
        );
        // The next day's requests are another window's.
        let mut next_day = entry(3, 86_400_000, 10);
        next_day.api_usage = Some(1);
        journal.push(next_day);
        assert_eq!(check(&journal, 15_000).len(), 1);
        // Two requests sent before either answer came back: neither is held against it.
        let mut a = entry(1, 0, 5000);
        a.api_usage = Some(15_000);
        let mut b = entry(1, 10, 10);
        b.api_usage = Some(15_000);
        assert!(check(&[b, a], 15_000).is_empty());
    }
}
