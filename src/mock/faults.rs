//! The fault layer: decides, from the scenario's rules and the seed, which requests the
//! org answers with a fault instead of (or after) doing the work.

use std::time::Duration;

use crate::sim::scenario::{FaultResponse, FaultRule};
use crate::sim::Rng;

/// A fault chosen for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub rule: String,
    pub response: FaultResponse,
}

/// Applies scenario rules in order; the first rule that fires wins. Every rule whose
/// matcher fits the request counts the call, fired or not, so `calls` ranges mean
/// "the Nth matching request" whatever the other rules do.
#[derive(Debug)]
pub struct FaultLayer {
    rules: Vec<FaultRule>,
    calls: Vec<u64>,
    /// Per rule with `lasting`: when (since the start) it first fired.
    began: Vec<Option<Duration>>,
    rng: Rng,
    /// A fault for the next API request only, set by a provider state.
    forced: Option<Fault>,
}

impl FaultLayer {
    pub fn new(rules: Vec<FaultRule>, rng: Rng) -> Self {
        let calls = vec![0; rules.len()];
        FaultLayer {
            began: vec![None; rules.len()],
            rules,
            calls,
            rng,
            forced: None,
        }
    }

    /// Answers the next API request with `fault`, before any rule (cleared with `None`).
    pub fn force_next(&mut self, fault: Option<Fault>) {
        self.forced = fault;
    }

    /// The fault for a request `elapsed` after the scenario start, if any.
    pub fn decide(
        &mut self,
        method: &str,
        path: &str,
        object: Option<&str>,
        elapsed: Duration,
    ) -> Option<Fault> {
        if let Some(f) = self.forced.take() {
            return Some(f);
        }
        let mut chosen = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matcher.matches(method, path, object) || !rule.matcher.in_window(elapsed) {
                continue;
            }
            self.calls[i] += 1;
            // A lasting outage: every matching request while it lasts, none after it.
            if let (Some(lasting), Some(began)) = (rule.lasting, self.began[i]) {
                if chosen.is_none() && elapsed < began + lasting.0 {
                    chosen = Some(Fault {
                        rule: rule.name.clone(),
                        response: rule.respond.clone(),
                    });
                }
                continue;
            }
            let in_range = rule.calls.is_none_or(|r| r.contains(self.calls[i]));
            if chosen.is_none()
                && in_range
                && (rule.probability >= 1.0 || self.rng.chance(rule.probability))
            {
                if rule.lasting.is_some() {
                    self.began[i] = Some(elapsed);
                }
                chosen = Some(Fault {
                    rule: rule.name.clone(),
                    response: rule.respond.clone(),
                });
            }
        }
        chosen
    }

    /// A latency between `min` and `max`, drawn from the fault stream (whole milliseconds).
    pub fn draw(&mut self, min: Duration, max: Duration) -> Duration {
        let lo = min.as_millis() as u64;
        let hi = max.as_millis() as u64;
        if hi <= lo {
            return min;
        }
        Duration::from_millis(lo + self.rng.up_to(hi - lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::{CallRange, Dur, RequestMatch};
    use crate::sim::Seed;

    fn rule(name: &str, calls: Option<CallRange>, p: f64) -> FaultRule {
        FaultRule {
            name: name.into(),
            matcher: RequestMatch {
                method: Some("PATCH".into()),
                path: None,
                object: Some("Account".into()),
                after: None,
                before: None,
            },
            calls,
            probability: p,
            lasting: None,
            respond: FaultResponse::ServerUnavailable,
            optional: false,
        }
    }

    #[test]
    fn a_lasting_rule_answers_every_matching_request_for_its_length_then_never() {
        let mut r = rule(
            "outage",
            Some(CallRange {
                first: 2,
                times: Some(1),
            }),
            1.0,
        );
        r.lasting = Some(Dur(Duration::from_secs(30)));
        let mut layer = FaultLayer::new(vec![r], Seed(1).stream("faults"));
        let at = |s: u64| Duration::from_secs(s);
        let fired = |layer: &mut FaultLayer, s| {
            layer
                .decide("PATCH", "/sobjects/Account", Some("Account"), at(s))
                .is_some()
        };
        assert!(!fired(&mut layer, 0), "the first call is before it starts");
        assert!(fired(&mut layer, 5), "it starts on the second call");
        // However many calls come meanwhile, until 5 s + 30 s.
        for s in [5, 6, 7, 8, 9, 10, 20, 34] {
            assert!(fired(&mut layer, s), "at {s}s");
        }
        assert!(!fired(&mut layer, 35));
        assert!(!fired(&mut layer, 36));
    }

    const T0: Duration = Duration::ZERO;

    #[test]
    fn call_range_counts_matching_requests_only() {
        let mut layer = FaultLayer::new(
            vec![rule(
                "r",
                Some(CallRange {
                    first: 2,
                    times: Some(1),
                }),
                1.0,
            )],
            Seed(1).stream("f"),
        );
        assert!(layer.decide("GET", "/limits", None, T0).is_none());
        assert!(layer.decide("PATCH", "/x", Some("Account"), T0).is_none());
        assert!(layer.decide("PATCH", "/x", Some("Contact"), T0).is_none());
        assert_eq!(
            layer
                .decide("PATCH", "/x", Some("Account"), T0)
                .map(|f| f.rule),
            Some("r".into())
        );
        assert!(layer.decide("PATCH", "/x", Some("Account"), T0).is_none());
    }

    #[test]
    fn probability_is_seeded() {
        let run = |seed| {
            let mut layer = FaultLayer::new(vec![rule("r", None, 0.5)], Seed(seed).stream("f"));
            (0..64)
                .map(|_| layer.decide("PATCH", "/x", Some("Account"), T0).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        let fired = run(3).iter().filter(|f| **f).count();
        assert!((16..=48).contains(&fired), "{fired}");
    }

    #[test]
    fn time_window_limits_a_rule() {
        let mut r = rule("w", None, 1.0);
        r.matcher.after = Some(Dur(Duration::from_secs(60)));
        r.matcher.before = Some(Dur(Duration::from_secs(120)));
        let mut layer = FaultLayer::new(vec![r], Seed(1).stream("f"));
        let at = |s| Duration::from_secs(s);
        assert!(layer
            .decide("PATCH", "/x", Some("Account"), at(59))
            .is_none());
        assert!(layer
            .decide("PATCH", "/x", Some("Account"), at(60))
            .is_some());
        assert!(layer
            .decide("PATCH", "/x", Some("Account"), at(120))
            .is_none());
    }

    #[test]
    fn latency_draws_stay_in_range_and_repeat() {
        let draws = |seed| {
            let mut layer = FaultLayer::new(vec![], Seed(seed).stream("f"));
            (0..50)
                .map(|_| layer.draw(Duration::from_millis(100), Duration::from_millis(300)))
                .collect::<Vec<_>>()
        };
        let a = draws(5);
        assert_eq!(a, draws(5));
        assert!(a
            .iter()
            .all(|d| (100..=300).contains(&(d.as_millis() as u64))));
        assert!(a.iter().any(|d| *d != a[0]));
    }
}
