//! The shared limiter's behaviour, per process and through Redis: one suite, both backends.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use syncgate::sim::Timestamp;
use syncgate::store::limiter::{Admission, LimitPolicy, Limiter, LocalLimiter, WaitReason};

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

const TENANT: &str = "northwind/sandbox";

/// Every limiter this machine can run, by name; Redis keys are deleted with the guard.
async fn limiters(
    test: &str,
) -> (
    Vec<(&'static str, Arc<dyn Limiter>)>,
    Option<support::RedisPrefix>,
) {
    let mut all: Vec<(&'static str, Arc<dyn Limiter>)> =
        vec![("local", Arc::new(LocalLimiter::new()))];
    let redis = support::redis(test).await;
    if let Some(r) = &redis {
        all.push(("redis", r.limiter.clone() as Arc<dyn Limiter>));
    }
    (all, redis)
}

fn roomy() -> LimitPolicy {
    LimitPolicy {
        rate_per_sec: 1000.0,
        burst: 1000,
        daily_budget: 1000,
        max_concurrent: 1000,
        permit_ttl: Duration::from_secs(60),
        slot_poll: Duration::from_millis(100),
    }
}

fn granted(a: Admission) -> syncgate::store::limiter::Permit {
    match a {
        Admission::Granted(p) => p,
        other => panic!("expected a permit, got {other:?}"),
    }
}

#[tokio::test]
async fn the_daily_budget_stops_requests_until_the_next_window() {
    let (all, _redis) = limiters("the_daily_budget_stops_requests").await;
    for (name, l) in all {
        let policy = LimitPolicy {
            daily_budget: 3,
            ..roomy()
        };
        let now = t("2026-01-05T23:00:00Z");
        for _ in 0..3 {
            let p = granted(l.acquire(TENANT, &policy, now).await.unwrap());
            l.release(&p).await.unwrap();
        }
        assert_eq!(
            l.acquire(TENANT, &policy, now).await.unwrap(),
            Admission::Wait {
                until: t("2026-01-06T00:00:00Z"),
                reason: WaitReason::DailyBudget
            },
            "{name}"
        );
        assert_eq!(l.budget_used(TENANT, now).await.unwrap(), 3, "{name}");
        let other = "northwind/production";
        let held = granted(
            l.acquire(
                other,
                &LimitPolicy {
                    daily_budget: 1,
                    ..roomy()
                },
                now,
            )
            .await
            .unwrap(),
        );
        assert_eq!(
            l.acquire(
                other,
                &LimitPolicy {
                    daily_budget: 1,
                    ..roomy()
                },
                now
            )
            .await
            .unwrap(),
            Admission::Wait {
                until: now.plus(Duration::from_millis(100)),
                reason: WaitReason::Draining
            },
            "{name}: spent, but a request of today is still in flight"
        );
        l.release(&held).await.unwrap();
        granted(l.acquire("bluepeak/sandbox", &policy, now).await.unwrap());
        let next_day = t("2026-01-06T00:00:00Z");
        granted(l.acquire(TENANT, &policy, next_day).await.unwrap());
        assert_eq!(l.budget_used(TENANT, next_day).await.unwrap(), 1, "{name}");
    }
}

#[tokio::test]
async fn the_concurrency_cap_holds_until_a_permit_is_released_or_expires() {
    let (all, _redis) = limiters("the_concurrency_cap_holds").await;
    for (name, l) in all {
        let policy = LimitPolicy {
            max_concurrent: 2,
            ..roomy()
        };
        let now = t("2026-01-05T08:00:00Z");
        let a = granted(l.acquire(TENANT, &policy, now).await.unwrap());
        let _b = granted(l.acquire(TENANT, &policy, now).await.unwrap());
        assert_eq!(
            l.acquire(TENANT, &policy, now).await.unwrap(),
            Admission::Wait {
                until: now.plus(policy.slot_poll),
                reason: WaitReason::Concurrency
            },
            "{name}"
        );
        assert_eq!(
            l.budget_used(TENANT, now).await.unwrap(),
            2,
            "{name}: a refusal spends no budget"
        );
        l.release(&a).await.unwrap();
        let c = granted(l.acquire(TENANT, &policy, now).await.unwrap());
        assert!(
            matches!(
                l.acquire(TENANT, &policy, now).await.unwrap(),
                Admission::Wait { .. }
            ),
            "{name}"
        );
        // Nobody releases: the permits of a dead worker expire after their TTL.
        let later = now.plus(policy.permit_ttl);
        granted(l.acquire(TENANT, &policy, later).await.unwrap());
        assert_ne!(c.id, a.id, "{name}: permit ids are unique");
    }
}

#[tokio::test]
async fn the_token_bucket_paces_requests() {
    let (all, _redis) = limiters("the_token_bucket_paces_requests").await;
    for (name, l) in all {
        let policy = LimitPolicy {
            rate_per_sec: 2.0,
            burst: 2,
            ..roomy()
        };
        let now = t("2026-01-05T08:00:00Z");
        for _ in 0..2 {
            let p = granted(l.acquire(TENANT, &policy, now).await.unwrap());
            l.release(&p).await.unwrap();
        }
        assert_eq!(
            l.acquire(TENANT, &policy, now).await.unwrap(),
            Admission::Wait {
                until: now.plus(Duration::from_millis(500)),
                reason: WaitReason::Rate
            },
            "{name}"
        );
        let p = granted(
            l.acquire(TENANT, &policy, now.plus(Duration::from_millis(500)))
                .await
                .unwrap(),
        );
        l.release(&p).await.unwrap();
        assert!(
            matches!(
                l.acquire(TENANT, &policy, now.plus(Duration::from_millis(600)))
                    .await
                    .unwrap(),
                Admission::Wait {
                    reason: WaitReason::Rate,
                    ..
                }
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_bad_policy_is_refused() {
    let (all, _redis) = limiters("a_bad_policy_is_refused").await;
    for (name, l) in all {
        let policy = LimitPolicy {
            rate_per_sec: 0.0,
            ..roomy()
        };
        let e = l
            .acquire(TENANT, &policy, t("2026-01-05T08:00:00Z"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("rate_per_sec"), "{name}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_limits_are_shared_by_every_worker() {
    let test = "redis_limits_are_shared";
    let Some(first) = support::redis(test).await else {
        return;
    };
    let prefix = first.prefix().to_string();
    let policy = LimitPolicy {
        daily_budget: 25,
        ..roomy()
    };
    let now = t("2026-01-05T08:00:00Z");
    let mut tasks = Vec::new();
    // Four workers, each with its own connection, race for a budget of 25.
    for _ in 0..4 {
        let l = syncgate::store::limiter::RedisLimiter::connect(&support::redis_url(), &prefix)
            .await
            .unwrap();
        let policy = policy.clone();
        tasks.push(tokio::spawn(async move {
            let mut granted = 0;
            for _ in 0..20 {
                if let Admission::Granted(p) = l.acquire(TENANT, &policy, now).await.unwrap() {
                    granted += 1;
                    l.release(&p).await.unwrap();
                }
            }
            granted
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 25, "80 attempts, exactly the budget granted");
    assert_eq!(first.budget_used(TENANT, now).await.unwrap(), 25);
    first.clear().await.unwrap();
}
