//! `rate-and-concurrency-within-limits`: the requests the org saw, by arrival on its clock,
//! fit the engine's configured token bucket (a full bucket of `burst` tokens at the start,
//! refilled at `rate_per_sec`, one token a request); no request arrived with more than
//! `max_concurrent` requests in flight (itself included); and none arrived while the org
//! already ran as many long-running requests (in flight for the threshold or longer) as it
//! allows — the request Salesforce refuses with `ConcurrentPerOrgLongTxn`. With a
//! `daily_budget` configured, no UTC day of the org's clock saw more API requests than it.

use super::{is_api, request, CallLimits, OrgLimits};
use crate::mock::JournalEntry;
use crate::sim::Timestamp;

/// `slack`: how early a request may come and still be on time (the clock's resolution).
pub fn check(
    journal: &[JournalEntry],
    limits: &CallLimits,
    org: &OrgLimits,
    slack: std::time::Duration,
) -> Vec<String> {
    let mut api: Vec<&JournalEntry> = journal.iter().filter(|e| is_api(e)).collect();
    api.sort_by_key(|e| (e.at, e.seq));
    let crowded: Vec<String> = api
        .iter()
        .filter(|e| e.in_flight > limits.max_concurrent as usize)
        .map(|e| {
            format!(
                "request {} arrived at {} with {} requests in flight (itself included); the engine is configured for at most {} at once (max_concurrent)",
                request(e),
                e.at,
                e.in_flight,
                limits.max_concurrent
            )
        })
        .collect();
    let total = api.len();
    let mut details = Vec::new();
    for (kind, found) in [
        (
            "came before the configured token bucket held a token for them",
            bucket(&api, limits, slack.as_secs_f64() * 1000.0),
        ),
        (
            "arrived with more requests in flight than max_concurrent",
            crowded,
        ),
        (
            "arrived while the org already ran its limit of long-running requests",
            long_running(&api, org),
        ),
        (
            "went beyond the configured daily budget",
            over_daily_budget(&api, limits.daily_budget),
        ),
    ] {
        summarise(&mut details, kind, total, found);
    }
    details
}

/// Examples of each kind a violation shows (the count says how many there were).
const EXAMPLES: usize = 2;

/// One line saying how many of the run's requests broke a limit, then a few of them.
fn summarise(details: &mut Vec<String>, kind: &str, total: usize, found: Vec<String>) {
    if found.is_empty() {
        return;
    }
    if found.len() > 1 {
        details.push(format!("{} of {total} requests {kind}, e.g.:", found.len()));
    }
    details.extend(found.into_iter().take(EXAMPLES));
}

/// Requests that came before the bucket held a token for them.
fn bucket(api: &[&JournalEntry], limits: &CallLimits, slack_ms: f64) -> Vec<String> {
    let burst = f64::from(limits.burst);
    let per_ms = limits.rate_per_sec / 1000.0;
    let mut tokens = burst;
    let mut last: Option<Timestamp> = None;
    let mut out = Vec::new();
    for e in api {
        if let Some(last) = last {
            let ms = (e.at.as_millis() - last.as_millis()) as f64;
            tokens = (tokens + ms * per_ms).min(burst);
        }
        last = Some(e.at);
        if tokens + slack_ms * per_ms < 1.0 {
            let wait_ms = ((1.0 - tokens) / per_ms).ceil() as i64;
            out.push(format!(
                "request {} arrived at {}, {wait_ms} ms before the configured token bucket (rate_per_sec {}, burst {}) held a token for it",
                request(e),
                e.at,
                limits.rate_per_sec,
                limits.burst
            ));
            // Judged once: the next request is measured from an empty bucket, not a debt.
            tokens = 0.0;
        } else {
            tokens -= 1.0;
        }
    }
    out
}

/// Requests beyond the `budget`-th of their UTC day (by arrival on the org's clock).
fn over_daily_budget(api: &[&JournalEntry], budget: Option<u64>) -> Vec<String> {
    let Some(budget) = budget else {
        return Vec::new();
    };
    let mut per_day: std::collections::BTreeMap<Timestamp, u64> = Default::default();
    let mut out = Vec::new();
    for e in api {
        let n = per_day.entry(e.at.day_start()).or_default();
        *n += 1;
        if *n > budget {
            out.push(format!(
                "request {} arrived at {} as API request {n} of its UTC day; the engine is configured to spend at most {budget} a day (daily_budget)",
                request(e),
                e.at
            ));
        }
    }
    out
}

/// Requests that arrived while the org already ran its limit of long-running requests.
fn long_running(api: &[&JournalEntry], org: &OrgLimits) -> Vec<String> {
    let threshold = org.long_running_threshold;
    let limit = org.concurrent_long_running as usize;
    let mut out = Vec::new();
    // Requests arrived so far and not answered yet (by arrival): (arrived, answered).
    let mut open: Vec<(Timestamp, Timestamp)> = Vec::new();
    for e in api {
        let now = e.at;
        open.retain(|(_, answered)| *answered > now);
        let long = open
            .iter()
            .filter(|(arrived, _)| now.since(*arrived) >= threshold)
            .count();
        if long >= limit {
            out.push(format!(
                "request {} arrived at {} while {long} requests had been running for {} s or longer; the org allows {limit} long-running requests at once",
                request(e),
                now,
                threshold.as_secs()
            ));
        }
        open.push((e.at, e.answered_at.unwrap_or(e.at)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::entry;
    use super::*;
    use std::time::Duration;

    fn limits(rate: f64, burst: u32, concurrent: u32) -> CallLimits {
        CallLimits {
            rate_per_sec: rate,
            burst,
            max_concurrent: concurrent,
            daily_budget: None,
        }
    }

    const MS: Duration = Duration::from_millis(1);

    fn org(limit: u32) -> OrgLimits {
        OrgLimits {
            daily_api_requests: 15_000,
            concurrent_long_running: limit,
            long_running_threshold: Duration::from_secs(20),
        }
    }

    #[test]
    fn requests_paced_by_the_bucket_pass_and_early_ones_are_named() {
        // Burst 2, one token every 10 s: 0, 0, 10 s, 20 s fit; a fifth at 25 s does not.
        let paced: Vec<JournalEntry> = [0, 0, 10_000, 20_000]
            .iter()
            .enumerate()
            .map(|(i, &at)| entry(i as u64 + 1, at, 100))
            .collect();
        assert!(check(&paced, &limits(0.1, 2, 4), &org(25), MS).is_empty());
        let mut early = paced.clone();
        early.push(entry(5, 25_000, 100));
        let found = check(&early, &limits(0.1, 2, 4), &org(25), MS);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("request PATCH")
                && found[0].contains("at 2026-01-05T08:00:25.000Z, 5000 ms before"),
            "{found:#?}"
        );
        // One millisecond early is the clocks' rounding, not a breach.
        let mut edge = paced.clone();
        edge.push(entry(5, 29_999, 100));
        assert!(check(&edge, &limits(0.1, 2, 4), &org(25), MS).is_empty());
    }

    #[test]
    fn too_many_in_flight_and_over_the_orgs_long_running_limit_are_named() {
        let mut a = entry(1, 0, 30_000);
        let mut b = entry(2, 0, 30_000);
        let mut c = entry(3, 21_000, 100);
        (a.in_flight, b.in_flight, c.in_flight) = (1, 2, 3);
        let journal = vec![a, b, c];
        let found = check(&journal, &limits(100.0, 100, 2), &org(2), MS);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("with 3 requests in flight"), "{found:#?}");
        assert!(
            found[1].contains("08:00:21.000Z") && found[1].contains("while 2 requests"),
            "{found:#?}"
        );
        // Within the limits: nothing.
        assert!(check(&journal, &limits(100.0, 100, 3), &org(3), MS).is_empty());
    }

    #[test]
    fn requests_beyond_the_configured_daily_budget_are_named_per_utc_day() {
        // Three requests on the first day, two just after midnight (the day starts over).
        let day = 24 * 3600 * 1000 - 8 * 3600 * 1000; // entry() starts at 08:00
        let journal: Vec<JournalEntry> = [0, 1_000, 2_000, day + 1_000, day + 2_000]
            .iter()
            .enumerate()
            .map(|(i, &at)| entry(i as u64 + 1, at, 100))
            .collect();
        let mut budget = limits(100.0, 100, 4);
        assert!(check(&journal, &budget, &org(25), MS).is_empty());
        budget.daily_budget = Some(3);
        assert!(check(&journal, &budget, &org(25), MS).is_empty());
        budget.daily_budget = Some(2);
        let found = check(&journal, &budget, &org(25), MS);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].contains("at 2026-01-05T08:00:02.000Z as API request 3 of its UTC day")
                && found[0].contains("at most 2 a day (daily_budget)"),
            "{found:#?}"
        );
        budget.daily_budget = Some(1);
        let found = check(&journal, &budget, &org(25), MS);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0].starts_with("3 of 5 requests went beyond the configured daily budget"),
            "{found:#?}"
        );
    }
}
