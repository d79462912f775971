//! Limits and API-version rules: a lower limit or API version is breaking, a higher one safe.

use super::{push, Change, Impact, Rule};
use crate::contract::bundle::Limits;

pub(super) fn diff_limits(old: &Limits, new: &Limits, out: &mut Vec<Change>) {
    let pairs = [
        (
            "daily_api_requests",
            old.daily_api_requests,
            new.daily_api_requests,
            "fewer API requests per 24 hours: a sync sized for the old budget can hit REQUEST_LIMIT_EXCEEDED",
        ),
        (
            "concurrent_long_running",
            u64::from(old.concurrent_long_running),
            u64::from(new.concurrent_long_running),
            "fewer long-running requests at once: the engine's concurrency can be refused",
        ),
        (
            "long_running_threshold_secs",
            old.long_running_threshold_secs,
            new.long_running_threshold_secs,
            "requests count as long-running sooner, so the concurrency limit bites earlier",
        ),
    ];
    for (name, before, after, why_lower) in pairs {
        let at = format!("limits.{name}");
        if after < before {
            push(
                out,
                Rule::LimitLowered,
                Impact::Breaking,
                at,
                format!("lowered from {before} to {after}; {why_lower}"),
            );
        } else if after > before {
            push(
                out,
                Rule::LimitRaised,
                Impact::Safe,
                at,
                format!("raised from {before} to {after}; everything that fitted still fits"),
            );
        }
    }
}

pub(super) fn diff_api_version(old: &str, new: &str, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    let parse = |v: &str| v.parse::<f64>().ok();
    let lowered = matches!((parse(old), parse(new)), (Some(a), Some(b)) if b < a);
    if lowered {
        push(
            out,
            Rule::ApiVersionChanged,
            Impact::Breaking,
            "api_version".into(),
            format!("lowered from {old} to {new}: resources of the newer API may be missing"),
        );
    } else {
        push(
            out,
            Rule::ApiVersionChanged,
            Impact::Safe,
            "api_version".into(),
            format!("changed from {old} to {new}: Salesforce keeps older API versions working"),
        );
    }
}
#[cfg(test)]
mod tests {
    use super::super::fixtures::{base, both_ways};
    use super::*;

    #[test]
    fn lowered_limits_are_breaking_and_raised_limits_are_safe() {
        let old = base();
        for change in [
            |l: &mut Limits| l.daily_api_requests /= 2,
            |l: &mut Limits| l.concurrent_long_running -= 1,
            |l: &mut Limits| l.long_running_threshold_secs -= 5,
        ] {
            let mut new = base();
            change(&mut new.limits);
            both_ways(
                &old,
                &new,
                (Rule::LimitLowered, Impact::Breaking),
                (Rule::LimitRaised, Impact::Safe),
            );
        }
    }

    #[test]
    fn a_lower_api_version_is_breaking_and_a_higher_one_safe() {
        let old = base();
        let mut new = base();
        new.api_version = "58.0".into();
        both_ways(
            &old,
            &new,
            (Rule::ApiVersionChanged, Impact::Breaking),
            (Rule::ApiVersionChanged, Impact::Safe),
        );
    }
}
