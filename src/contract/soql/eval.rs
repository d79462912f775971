//! Evaluating a condition for one record, and ordering values as `ORDER BY` does.

use std::cmp::Ordering;

use serde_json::Value;

use super::{Expr, Literal, Op, Relative, DAY};
use crate::sim::Timestamp;

impl Relative {
    fn range(self, now: Timestamp) -> (Timestamp, Timestamp) {
        let today = now.day_start();
        let day_ms = DAY.as_millis() as i64;
        let at = |days: i64| Timestamp::from_millis(today.as_millis() + days * day_ms);
        match self {
            Relative::Today => (at(0), at(1)),
            Relative::Yesterday => (at(-1), at(0)),
            Relative::Tomorrow => (at(1), at(2)),
            Relative::LastNDays(n) => (at(-(n as i64)), at(1)),
            Relative::NextNDays(n) => (at(1), at(n as i64 + 1)),
        }
    }
}

/// Evaluates `expr` for one record (or one group); `get` reads a (checked) field path (or
/// operand).
pub fn eval<L>(expr: &Expr<L>, now: Timestamp, get: &dyn Fn(&L) -> Value) -> bool {
    match expr {
        Expr::And(a, b) => eval(a, now, get) && eval(b, now, get),
        Expr::Or(a, b) => eval(a, now, get) || eval(b, now, get),
        Expr::Not(e) => !eval(e, now, get),
        Expr::Cmp(f, op, lit) => compare(&get(f), *op, lit, now),
        Expr::In(f, values, negated) => {
            let v = get(f);
            let found = values.iter().any(|l| compare(&v, Op::Eq, l, now));
            found != *negated
        }
        Expr::Like(f, pattern) => match get(f) {
            Value::String(s) => like(&s.to_lowercase(), &pattern.to_lowercase()),
            _ => false,
        },
    }
}

/// Compares text case-insensitively without allocating.
fn cmp_ci(a: &str, b: &str) -> Ordering {
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

/// Whether `s` matches the `LIKE` pattern (`%` any run, `_` one character); the caller
/// folds case.
pub(super) fn like(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // dp[j]: pattern[..i] matches s[..j]
    let mut dp = vec![false; s.len() + 1];
    dp[0] = true;
    for pc in &p {
        let mut next = vec![false; s.len() + 1];
        match pc {
            '%' => {
                let mut any = false;
                for j in 0..=s.len() {
                    any |= dp[j];
                    next[j] = any;
                }
            }
            c => {
                for j in 1..=s.len() {
                    next[j] = dp[j - 1] && (*c == '_' || s[j - 1] == *c);
                }
            }
        }
        dp = next;
    }
    dp[s.len()]
}

fn as_instant(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(Timestamp::parse)
}

fn compare(v: &Value, op: Op, lit: &Literal, now: Timestamp) -> bool {
    let range = match lit {
        Literal::Range(a, b) => Some((*a, *b)),
        Literal::Relative(r) => Some(r.range(now)),
        _ => None,
    };
    if let Some((start, end)) = range {
        let Some(t) = as_instant(v) else {
            return op == Op::Ne;
        };
        return match op {
            Op::Eq => t >= start && t < end,
            Op::Ne => !(t >= start && t < end),
            Op::Lt => t < start,
            Op::Le => t < end,
            Op::Gt => t >= end,
            Op::Ge => t >= start,
        };
    }
    let ord = match (v, lit) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Literal::Number(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        (Value::String(a), Literal::Text(b)) => Some(cmp_ci(a, b)),
        (Value::String(a), Literal::Number(b)) => {
            a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b))
        }
        _ => None,
    };
    match (op, ord) {
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        (Op::Ne, None) => !(v.is_null() && matches!(lit, Literal::Null)),
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

/// Orders two values as `ORDER BY` does (text case-insensitively; nulls placed by the caller).
pub fn order_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => match (Timestamp::parse(x), Timestamp::parse(y)) {
            (Some(p), Some(q)) if x.len() >= 10 && y.len() >= 10 => p.cmp(&q),
            _ => cmp_ci(x, y),
        },
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::soql::{parse_condition, FieldPath};
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-05T08:00:00Z").unwrap()
    }

    fn matches(cond: &str, rec: Value) -> bool {
        let e = parse_condition(cond).unwrap();
        eval(&e, now(), &|f: &FieldPath| {
            rec.pointer(&format!("/{}", f.parts.join("/")))
                .cloned()
                .unwrap_or(Value::Null)
        })
    }

    #[test]
    fn evaluates_conditions() {
        let rec = json!({"Name": "Alder Outfitters", "Amount": 12.5, "Active": true, "Tier": null,
            "CreatedDate": "2026-01-03T10:00:00.000+0000", "Account": {"Name": "Parent"}});
        assert!(matches("Name = 'alder outfitters'", rec.clone()));
        assert!(matches("Name LIKE 'Alder%'", rec.clone()));
        assert!(!matches("Name LIKE 'Out%'", rec.clone()));
        assert!(matches("Name LIKE '%fit_ers'", rec.clone()));
        assert!(matches("Amount > 12 AND Amount <= 12.5", rec.clone()));
        assert!(matches("Tier = null AND Active = true", rec.clone()));
        assert!(matches("Tier != 'Gold'", rec.clone()));
        assert!(!matches("Tier = 'Gold'", rec.clone()));
        assert!(matches(
            "Name NOT IN ('a', 'b') OR Amount IN (1)",
            rec.clone()
        ));
        assert!(matches("CreatedDate = LAST_N_DAYS:3", rec.clone()));
        assert!(!matches("CreatedDate = LAST_N_DAYS:1", rec.clone()));
        assert!(matches("CreatedDate < TODAY", rec.clone()));
        assert!(matches("CreatedDate = 2026-01-03", rec.clone()));
        assert!(matches("CreatedDate > 2026-01-03T09:00:00Z", rec.clone()));
        assert!(matches("Account.Name = 'Parent'", rec.clone()));
        assert!(matches("NOT (Amount < 0 OR Active = false)", rec));
    }
}
