//! Aggregate queries: the records a `WHERE` kept grouped by the `GROUP BY` fields (one group
//! of all of them without `GROUP BY`), `HAVING` over each group, the aggregates computed,
//! the groups ordered and cut by `OFFSET`/`LIMIT`, and each answered as Salesforce's
//! `AggregateResult`: grouped fields by their name (the last part of a path) or alias,
//! aggregates by their alias or `expr0`, `expr1`, … in the order written.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::parser::same_path;
use super::{eval, order_values, FieldPath, Func, Item, Operand, Query};
use crate::sim::Timestamp;

/// The records sharing one value of the grouped fields.
pub struct Group<'r, R> {
    /// The grouped fields' values, as the group's first record has them.
    pub key: Vec<Value>,
    pub rows: Vec<&'r R>,
}

/// The name each item has in an `AggregateResult` (none for a child subquery).
pub(super) fn column_names(items: &[Item]) -> Vec<Option<String>> {
    let mut unnamed = 0;
    items
        .iter()
        .map(|item| match item {
            Item::Child(_) => None,
            Item::Field { path, alias } => Some(
                alias
                    .clone()
                    .unwrap_or_else(|| path.parts.last().cloned().unwrap_or_default()),
            ),
            Item::Aggregate { alias, .. } => Some(alias.clone().unwrap_or_else(|| {
                unnamed += 1;
                format!("expr{}", unnamed - 1)
            })),
        })
        .collect()
}

/// How a value groups and counts as distinct: text case-insensitively, numbers by value.
fn identity(v: &Value) -> String {
    match v {
        Value::String(s) => format!("s{}", s.to_lowercase()),
        Value::Number(n) => format!("n{}", n.as_f64().unwrap_or(f64::NAN)),
        other => format!("o{other}"),
    }
}

/// Orders values with nulls first, as `GROUP BY` answers groups.
fn nulls_first(a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => order_values(a, b),
    }
}

fn group_rows<'r, R>(
    rows: Vec<&'r R>,
    by: &[FieldPath],
    get: &dyn Fn(&R, &FieldPath) -> Value,
) -> Vec<Group<'r, R>> {
    if by.is_empty() {
        return vec![Group {
            key: Vec::new(),
            rows,
        }];
    }
    let mut groups: Vec<Group<'r, R>> = Vec::new();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    for r in rows {
        let key: Vec<Value> = by.iter().map(|f| get(r, f)).collect();
        let id: Vec<String> = key.iter().map(identity).collect();
        match index.get(&id) {
            Some(i) => groups[*i].rows.push(r),
            None => {
                index.insert(id, groups.len());
                groups.push(Group { key, rows: vec![r] });
            }
        }
    }
    groups.sort_by(|a, b| {
        a.key
            .iter()
            .zip(&b.key)
            .map(|(x, y)| nulls_first(x, y))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
    groups
}

/// One aggregate over the values of a group's records.
fn fold(func: Func, values: impl Iterator<Item = Value>) -> Value {
    let present = values.filter(|v| !v.is_null());
    match func {
        Func::Count => json!(present.count()),
        Func::CountDistinct => {
            let mut seen: Vec<String> = present.map(|v| identity(&v)).collect();
            seen.sort();
            seen.dedup();
            json!(seen.len())
        }
        Func::Sum | Func::Avg => {
            let numbers: Vec<serde_json::Number> = present
                .filter_map(|v| match v {
                    Value::Number(n) => Some(n),
                    _ => None,
                })
                .collect();
            if numbers.is_empty() {
                return Value::Null;
            }
            let total: f64 = numbers.iter().filter_map(|n| n.as_f64()).sum();
            if func == Func::Avg {
                return json!(total / numbers.len() as f64);
            }
            // Whole numbers add up to a whole number (`SUM(NumberOfEmployees)`).
            let whole = numbers
                .iter()
                .try_fold(0i64, |acc, n| n.as_i64().and_then(|i| acc.checked_add(i)));
            match whole {
                Some(i) => json!(i),
                None => json!(total),
            }
        }
        Func::Min | Func::Max => present
            .reduce(|best, v| {
                let ord = order_values(&v, &best);
                let better = if func == Func::Min {
                    ord == Ordering::Less
                } else {
                    ord == Ordering::Greater
                };
                if better {
                    v
                } else {
                    best
                }
            })
            .unwrap_or(Value::Null),
    }
}

/// What an operand of `HAVING` or `ORDER BY` is for one group.
fn operand_value<R>(
    q: &Query,
    g: &Group<'_, R>,
    op: &Operand,
    get: &dyn Fn(&R, &FieldPath) -> Value,
) -> Value {
    match op {
        Operand::Field(f) => q
            .group_by
            .iter()
            .position(|x| same_path(x, f))
            .and_then(|i| g.key.get(i).cloned())
            .unwrap_or(Value::Null),
        Operand::Aggregate(a) => fold(a.func, g.rows.iter().map(|r| get(r, &a.field))),
    }
}

/// Answers the aggregate query `q` (its fields checked) over `rows`, the records its
/// `WHERE` kept: one `AggregateResult` per group.
pub fn aggregate<R>(
    q: &Query,
    rows: Vec<&R>,
    now: Timestamp,
    get: &dyn Fn(&R, &FieldPath) -> Value,
) -> Vec<Value> {
    let mut groups = group_rows(rows, &q.group_by, get);
    if let Some(having) = &q.having {
        groups.retain(|g| eval(having, now, &|op: &Operand| operand_value(q, g, op, get)));
    }
    if !q.order.is_empty() {
        let keys: Vec<Vec<Value>> = groups
            .iter()
            .map(|g| {
                q.order
                    .iter()
                    .map(|o| operand_value(q, g, &o.by, get))
                    .collect()
            })
            .collect();
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by(|&a, &b| {
            for (i, o) in q.order.iter().enumerate() {
                let (x, y) = (&keys[a][i], &keys[b][i]);
                let ord = match (x.is_null(), y.is_null()) {
                    (true, true) => Ordering::Equal,
                    (true, false) if o.nulls_last => Ordering::Greater,
                    (true, false) => Ordering::Less,
                    (false, true) if o.nulls_last => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) if o.descending => order_values(x, y).reverse(),
                    (false, false) => order_values(x, y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
        let mut slots: Vec<Option<Group<'_, R>>> = groups.into_iter().map(Some).collect();
        groups = order.into_iter().filter_map(|i| slots[i].take()).collect();
    }
    let names = column_names(q.items());
    groups
        .iter()
        .skip(q.offset.unwrap_or(0))
        .take(q.limit.unwrap_or(usize::MAX))
        .map(|g| {
            let mut out = Map::new();
            out.insert("attributes".into(), json!({"type": "AggregateResult"}));
            for (item, name) in q.items().iter().zip(&names) {
                let (Some(name), value) = (
                    name,
                    match item {
                        Item::Field { path, .. } => {
                            operand_value(q, g, &Operand::Field(path.clone()), get)
                        }
                        Item::Aggregate { agg, .. } => {
                            fold(agg.func, g.rows.iter().map(|r| get(r, &agg.field)))
                        }
                        Item::Child(_) => Value::Null,
                    },
                ) else {
                    continue;
                };
                out.insert(name.clone(), value);
            }
            Value::Object(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::soql::parse;

    fn run(text: &str, rows: &[Value]) -> Vec<Value> {
        let q = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let now = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
        let get = |r: &Value, f: &FieldPath| {
            r.pointer(&format!("/{}", f.parts.join("/")))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let kept = rows
            .iter()
            .filter(|r| match &q.filter {
                Some(f) => eval(f, now, &|p: &FieldPath| get(r, p)),
                None => true,
            })
            .collect();
        aggregate(&q, kept, now, &get)
    }

    fn accounts() -> Vec<Value> {
        vec![
            json!({"Id": "1", "Name": "Alder", "Industry": "Retail", "Employees": 10, "Revenue": 2.5, "Owner": {"Name": "Ann"}}),
            json!({"Id": "2", "Name": "Birch", "Industry": "retail", "Employees": 30, "Revenue": null, "Owner": {"Name": "Bob"}}),
            json!({"Id": "3", "Name": "Cedar", "Industry": "Apparel", "Employees": 5, "Revenue": 1.0, "Owner": {"Name": "Ann"}}),
            json!({"Id": "4", "Name": "Dogwood", "Industry": null, "Employees": null, "Revenue": null, "Owner": {"Name": "Ann"}}),
        ]
    }

    #[test]
    fn aggregates_without_group_by_answer_one_row() {
        let rows = run(
            "SELECT COUNT(Id), COUNT(Revenue), COUNT_DISTINCT(Industry), SUM(Employees) total, AVG(Employees), MIN(Name), MAX(Revenue) FROM Account",
            &accounts(),
        );
        assert_eq!(
            rows,
            vec![
                json!({"attributes": {"type": "AggregateResult"}, "expr0": 4, "expr1": 2,
                "expr2": 2, "total": 45, "expr3": 15.0, "expr4": "Alder", "expr5": 2.5})
            ]
        );
        // No records: counts are 0, the rest null; still one row.
        let empty = run(
            "SELECT COUNT(Id), SUM(Employees), MAX(Name) FROM Account",
            &[],
        );
        assert_eq!(
            empty,
            vec![
                json!({"attributes": {"type": "AggregateResult"}, "expr0": 0, "expr1": null, "expr2": null})
            ]
        );
    }

    #[test]
    fn groups_fold_case_and_order_by_key_having_and_aggregates() {
        let rows = run(
            "SELECT Industry, COUNT(Id) n FROM Account GROUP BY Industry",
            &accounts(),
        );
        assert_eq!(
            rows,
            vec![
                json!({"attributes": {"type": "AggregateResult"}, "Industry": null, "n": 1}),
                json!({"attributes": {"type": "AggregateResult"}, "Industry": "Apparel", "n": 1}),
                json!({"attributes": {"type": "AggregateResult"}, "Industry": "Retail", "n": 2}),
            ]
        );
        let rows = run(
            "SELECT Owner.Name, SUM(Employees) FROM Account GROUP BY Owner.Name HAVING COUNT(Id) > 1 ORDER BY SUM(Employees) DESC",
            &accounts(),
        );
        assert_eq!(
            rows,
            vec![json!({"attributes": {"type": "AggregateResult"}, "Name": "Ann", "expr0": 15})]
        );
        let rows = run(
            "SELECT Industry, Owner.Name o, COUNT(Id) FROM Account WHERE Industry != null GROUP BY Industry, Owner.Name ORDER BY COUNT(Id) DESC, Industry LIMIT 2",
            &accounts(),
        );
        let names: Vec<(Value, Value)> = rows
            .iter()
            .map(|r| (r["Industry"].clone(), r["o"].clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                (json!("Apparel"), json!("Ann")),
                (json!("Retail"), json!("Ann"))
            ]
        );
        let rows = run(
            "SELECT Industry FROM Account GROUP BY Industry HAVING Industry LIKE 'ret%' OFFSET 0",
            &accounts(),
        );
        assert_eq!(rows.len(), 1);
    }
}
