//! Tests of `cdc`.

use super::*;
use serde_json::json;

#[test]
fn versions_order_by_time_then_commit_then_sequence() {
    let v = |at_ms, commit, sequence| Version {
        at_ms,
        commit,
        sequence,
    };
    assert!(v(1, 9, 9) < v(2, 0, 0));
    assert!(v(2, 1, 9) < v(2, 2, 0));
    assert!(v(2, 2, 1) < v(2, 2, 2));
    // A value read back at time 2 supersedes every event committed at time 2.
    assert!(v(2, 7, 3) < Version::read_back(Timestamp::from_millis(2)));
    assert!(Version::read_back(Timestamp::from_millis(2)) < v(3, 0, 0));
    let r = Version::read_back(Timestamp::from_millis(5));
    assert_eq!(Version::decode(&r.encode()), Some(r));
    assert_eq!(Version::decode("1:2"), None);
    assert_eq!(Version::decode("1:2:3:4"), None);
}

#[test]
fn final_values_keep_the_last_delivery() {
    let change = |value: &str| CrmChange {
        object: "Account".into(),
        source_id: "CUST-1".into(),
        record_id: "001".into(),
        field: "Account_Manager__c".into(),
        value: json!(value),
        changed_at: Timestamp::from_millis(0),
        replay_id: None,
        event_uuid: None,
        via: ChangeVia::Event,
    };
    let finals = final_values(&[change("a"), change("b")]);
    assert_eq!(
        finals[&(
            "Account".to_string(),
            "CUST-1".to_string(),
            "Account_Manager__c".to_string()
        )],
        json!("b")
    );
}
