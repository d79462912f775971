//! Test fixtures of the diff rules: the example bundle, its fields and pacts to edit, and
//! the rules a diff fires.

use std::path::Path;

use serde_json::Value;

use super::{diff, Impact, Rule};
use crate::contract::bundle::{Bundle, FieldSpec};

pub(super) fn base() -> Bundle {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/bluepeak-logistics/sandbox");
    match Bundle::load(&dir) {
        Ok(b) => b,
        Err(e) => panic!("example bundle does not load: {e}"),
    }
}

pub(super) fn field<'a>(b: &'a mut Bundle, object: &str, name: &str) -> &'a mut FieldSpec {
    b.objects
        .get_mut(object)
        .and_then(|o| o.fields.get_mut(name))
        .unwrap_or_else(|| panic!("no field {object}.{name}"))
}

pub(super) fn values<'a>(b: &'a mut Bundle, object: &str, name: &str) -> &'a mut Vec<String> {
    field(b, object, name)
        .values
        .as_mut()
        .unwrap_or_else(|| panic!("{object}.{name} is not a picklist"))
}

/// The rules that fired, with their impact.
pub(super) fn rules(old: &Bundle, new: &Bundle) -> Vec<(Rule, Impact)> {
    diff(old, new)
        .changes
        .iter()
        .map(|c| (c.rule, c.impact))
        .collect()
}

/// Checks a rule in both directions: `old -> new` fires `forward`, `new -> old` fires `back`.
pub(super) fn both_ways(old: &Bundle, new: &Bundle, forward: (Rule, Impact), back: (Rule, Impact)) {
    assert_eq!(rules(old, new), vec![forward], "old -> new");
    assert_eq!(rules(new, old), vec![back], "new -> old");
}

fn first_pact(b: &mut Bundle) -> &mut Value {
    b.pacts
        .values_mut()
        .next()
        .unwrap_or_else(|| panic!("example bundle has no pact"))
}

pub(super) fn interactions_mut(b: &mut Bundle) -> &mut Vec<Value> {
    match first_pact(b).get_mut("interactions") {
        Some(Value::Array(a)) => a,
        _ => panic!("pact has no interactions"),
    }
}

/// The token request's interaction (interactions are in description order).
pub(super) fn token_interaction(b: &mut Bundle) -> &mut Value {
    interactions_mut(b)
        .iter_mut()
        .find(|i| i["description"] == "a client-credentials token request")
        .expect("the pact has the token request")
}
