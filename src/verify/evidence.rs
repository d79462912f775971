//! What an engine left behind, as plain data the invariants judge: the requests it sent, the
//! columns it reported, the CRM changes it delivered. The gate fills it from the built-in
//! engine; an engine run as a child process can fill it from files (it is serde data), so the
//! invariants never depend on the engine's own types.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::store::DeadLetter;

/// A request as the engine sent it (the token and the `Authorization` header never kept).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentRequest {
    pub method: String,
    /// Path from the host, e.g. `/services/data/v62.0/composite/sobjects/Account/Ext__c`.
    pub path: String,
    /// Header names and values sent, `Authorization` left out.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: Option<Value>,
}

/// What the engine's own report says about source columns no field reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnReport {
    /// Source columns no bundle field reads, per source entity.
    #[serde(default)]
    pub unmapped_columns: BTreeMap<String, BTreeSet<String>>,
    /// New source columns routed to a same-named custom field, per entity: column → field.
    #[serde(default)]
    pub routed_columns: BTreeMap<String, BTreeMap<String, String>>,
}

/// One CRM-owned field value the change-event consumer carried to the source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveredChange {
    pub object: String,
    /// The record's external-ID value: the source record's ID.
    pub source_id: String,
    /// The Salesforce record ID.
    pub record_id: String,
    pub field: String,
    pub value: Value,
    /// The event's replay ID (absent for values read back from the org).
    #[serde(default)]
    pub replay_id: Option<u64>,
    #[serde(default)]
    pub event_uuid: Option<String>,
}

/// Everything an engine run produced that the invariants look at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineOutput {
    /// Every request the engine sent, in order, with its body.
    #[serde(default)]
    pub sent: Vec<SentRequest>,
    /// The engine's column report; `None` when the run did not complete (no report).
    #[serde(default)]
    pub columns: Option<ColumnReport>,
    /// The dead-letter queue after the run.
    #[serde(default)]
    pub dead_letters: Vec<DeadLetter>,
    /// Every change the change-event consumer delivered, in order.
    #[serde(default)]
    pub delivered: Vec<DeliveredChange>,
    /// The consumer's error, if it stopped.
    #[serde(default)]
    pub consumer_error: Option<String>,
}

/// The value the source ends with per (object, source ID, field): the last one delivered.
pub fn last_delivered(changes: &[DeliveredChange]) -> BTreeMap<(String, String, String), Value> {
    let mut out = BTreeMap::new();
    for c in changes {
        out.insert(
            (c.object.clone(), c.source_id.clone(), c.field.clone()),
            c.value.clone(),
        );
    }
    out
}

/// Whether two field values are the same as Salesforce stores them: numbers by their numeric
/// value (`5`, `5.0` and `5e0` are one number), everything else exactly.
pub fn same_stored_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_the_last_delivery_wins() {
        assert!(same_stored_value(&json!(5), &json!(5.0)));
        assert!(!same_stored_value(&json!(5), &json!("5")));
        assert!(!same_stored_value(&json!(0.1), &json!(0.10000001)));
        let change = |v: &str| DeliveredChange {
            object: "Account".into(),
            source_id: "A".into(),
            record_id: "001A".into(),
            field: "Owner__c".into(),
            value: json!(v),
            replay_id: None,
            event_uuid: None,
        };
        let last = last_delivered(&[change("one"), change("two")]);
        assert_eq!(last.len(), 1);
        assert_eq!(
            last[&("Account".into(), "A".into(), "Owner__c".into())],
            json!("two")
        );
    }

    #[test]
    fn engine_output_reads_from_json_with_defaults() {
        let out: EngineOutput = serde_json::from_str(
            r#"{"sent":[{"method":"PATCH","path":"/x"}],"columns":{"unmapped_columns":{"accounts":["shoe_size"]}}}"#,
        )
        .unwrap();
        assert_eq!(out.sent[0].headers.len(), 0);
        assert!(out.columns.unwrap().unmapped_columns["accounts"].contains("shoe_size"));
        assert!(out.dead_letters.is_empty() && out.consumer_error.is_none());
    }
}
