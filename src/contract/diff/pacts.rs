//! Pact rules: interactions removed or added, response statuses and body shapes narrowed
//! or widened.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{push, Change, Impact, Rule};

/// Interactions of every pact file, keyed by description and provider states (not by file
/// name, so two tenants' pacts compare interaction by interaction).
fn interactions(pacts: &BTreeMap<String, Value>) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    for pact in pacts.values() {
        for i in pact
            .get("interactions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let description = i.get("description").and_then(Value::as_str).unwrap_or("");
            let states: Vec<&str> = i
                .get("providerStates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("name").and_then(Value::as_str))
                .collect();
            let key = if states.is_empty() {
                description.to_string()
            } else {
                format!("{description} (given {})", states.join(", "))
            };
            out.insert(key, i);
        }
    }
    out
}

pub(super) fn diff_pacts(
    old: &BTreeMap<String, Value>,
    new: &BTreeMap<String, Value>,
    out: &mut Vec<Change>,
) {
    let before = interactions(old);
    let after = interactions(new);
    for (key, o) in &before {
        let at = format!("pacts[\"{key}\"]");
        let Some(n) = after.get(key) else {
            push(
                out,
                Rule::InteractionRemoved,
                Impact::Breaking,
                at,
                "the engine relies on this interaction and it is no longer in the contract".into(),
            );
            continue;
        };
        let status = |v: &Value| v.pointer("/response/status").and_then(Value::as_u64);
        if status(o) != status(n) {
            push(
                out,
                Rule::ResponseNarrowed,
                Impact::Breaking,
                format!("{at}.response.status"),
                format!(
                    "the response status changed from {} to {}",
                    status(o).map_or("none".into(), |s| s.to_string()),
                    status(n).map_or("none".into(), |s| s.to_string())
                ),
            );
        }
        let body = |v: &Value| v.pointer("/response/body/content").cloned();
        match (body(o), body(n)) {
            (Some(a), Some(b)) => compare_shape(&at, "$", &a, &b, out),
            (Some(_), None) => push(
                out,
                Rule::ResponseNarrowed,
                Impact::Breaking,
                format!("{at}.response.body"),
                "the response no longer has a body".into(),
            ),
            (None, Some(_)) => push(
                out,
                Rule::ResponseWidened,
                Impact::Safe,
                format!("{at}.response.body"),
                "the response now has a body the engine may ignore".into(),
            ),
            (None, None) => {}
        }
    }
    for key in after.keys() {
        if !before.contains_key(key) {
            push(
                out,
                Rule::InteractionAdded,
                Impact::Safe,
                format!("pacts[\"{key}\"]"),
                "a new interaction: nothing that worked before depends on it".into(),
            );
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compares the shape of two response bodies: keys and JSON types, not example values.
fn compare_shape(at: &str, path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => compare_shape(at, &p, va, vb, out),
                    None => push(
                        out,
                        Rule::ResponseNarrowed,
                        Impact::Breaking,
                        format!("{at}.response.body"),
                        format!("`{p}` is no longer in the response"),
                    ),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                push(
                    out,
                    Rule::ResponseWidened,
                    Impact::Safe,
                    format!("{at}.response.body"),
                    format!("`{path}.{k}` is new in the response; the engine can ignore it"),
                );
            }
        }
        (Value::Array(a), Value::Array(b)) => match (a.first(), b.first()) {
            (Some(x), Some(y)) => compare_shape(at, &format!("{path}[*]"), x, y, out),
            (Some(_), None) => push(
                out,
                Rule::ResponseNarrowed,
                Impact::Breaking,
                format!("{at}.response.body"),
                format!("`{path}` no longer has any elements"),
            ),
            _ => {}
        },
        _ if kind(old) != kind(new) => push(
            out,
            Rule::ResponseNarrowed,
            Impact::Breaking,
            format!("{at}.response.body"),
            format!("`{path}` changed from {} to {}", kind(old), kind(new)),
        ),
        _ => {}
    }
}
#[cfg(test)]
mod tests {
    use super::super::fixtures::{base, both_ways, interactions_mut, rules, token_interaction};
    use super::*;

    #[test]
    fn interaction_removed_is_breaking_and_added_is_safe() {
        let old = base();
        let mut new = base();
        interactions_mut(&mut new).remove(0);
        both_ways(
            &old,
            &new,
            (Rule::InteractionRemoved, Impact::Breaking),
            (Rule::InteractionAdded, Impact::Safe),
        );
    }

    #[test]
    fn a_narrower_response_is_breaking_and_a_wider_one_safe() {
        let old = base();
        let mut new = base();
        // The token response loses `instance_url`.
        let removed = token_interaction(&mut new)
            .pointer_mut("/response/body/content")
            .and_then(Value::as_object_mut)
            .and_then(|o| o.remove("instance_url"));
        assert!(
            removed.is_some(),
            "the first interaction is the token request"
        );
        both_ways(
            &old,
            &new,
            (Rule::ResponseNarrowed, Impact::Breaking),
            (Rule::ResponseWidened, Impact::Safe),
        );
    }

    #[test]
    fn a_response_field_changing_type_or_status_is_breaking() {
        let old = base();
        let mut new = base();
        if let Some(v) = token_interaction(&mut new).pointer_mut("/response/body/content/issued_at")
        {
            *v = Value::from(1_767_600_000_000_u64);
        }
        assert_eq!(
            rules(&old, &new),
            vec![(Rule::ResponseNarrowed, Impact::Breaking)]
        );
        let mut status = base();
        if let Some(v) = token_interaction(&mut status).pointer_mut("/response/status") {
            *v = Value::from(201);
        }
        assert_eq!(
            rules(&old, &status),
            vec![(Rule::ResponseNarrowed, Impact::Breaking)]
        );
    }
}
