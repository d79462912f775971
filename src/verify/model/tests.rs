//! The reference model's own tests: version choice, mapping (absent vs null, drift), delete
//! policies, and the oracle's predictions built on them.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::*;
use crate::contract::{FieldSpec, Registry};
use crate::sim::Timestamp;
use crate::verify::oracle::{expectations, Expected};

fn record(id: &str, version: u64, data: Value) -> SourceRecord {
    SourceRecord {
        entity: "accounts".into(),
        id: id.into(),
        version,
        data: data.as_object().cloned().unwrap_or_default(),
        changed_at: None,
        deleted: false,
        origin: format!("accounts.jsonl:{version}"),
    }
}

fn deleted(id: &str, version: u64, data: Value) -> SourceRecord {
    SourceRecord {
        deleted: true,
        ..record(id, version, data)
    }
}

fn set(records: Vec<SourceRecord>) -> SourceSet {
    let mut s = SourceSet::default();
    s.entities.insert("accounts".into(), records);
    s
}

/// The example registry's Northwind production bundle: Account archives, Contact hard
/// deletes, Opportunity goes inactive (StageName = Closed Lost).
fn northwind() -> Bundle {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts");
    let registry = Registry::open(&root).unwrap();
    let t = registry
        .select(&["northwind-outfitters".into()], &["production".into()])
        .unwrap();
    registry.load(&t[0]).unwrap()
}

fn field(ty: FieldType, from: Option<&str>) -> FieldSpec {
    FieldSpec {
        ty,
        required: false,
        max_length: None,
        values: None,
        restricted: true,
        owner: Owner::Source,
        from: from.map(str::to_string),
        to: None,
        relationship: None,
        label: None,
    }
}

/// A small object with one field of each kind that matters to mapping.
fn object() -> ObjectSpec {
    let mut fields = BTreeMap::new();
    fields.insert("Key__c".into(), field(FieldType::String, Some("key")));
    fields.insert("Name".into(), field(FieldType::String, Some("name")));
    fields.insert("Seats__c".into(), field(FieldType::Int, Some("seats")));
    fields.insert(
        "Renewal__c".into(),
        field(FieldType::Datetime, Some("renewal")),
    );
    fields.insert("Segment__c".into(), field(FieldType::String, None));
    fields.insert("Archived__c".into(), field(FieldType::Boolean, None));
    fields.insert(
        "Owner_Name__c".into(),
        FieldSpec {
            owner: Owner::Crm,
            ..field(FieldType::String, None)
        },
    );
    ObjectSpec {
        external_id: "Key__c".into(),
        source: "accounts".into(),
        delete: DeletePolicy::Archive {
            field: "Archived__c".into(),
        },
        fields,
        unique_external_id: false,
        validation_rules: vec![],
        label: None,
    }
}

fn values(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn the_highest_version_wins_in_order_of_first_appearance() {
    let s = set(vec![
        record("B", 1, json!({"n": "b1"})),
        record("A", 2, json!({"n": "a2"})),
        record("A", 5, json!({"n": "a5"})),
        record("A", 3, json!({"n": "a3 arrived late, stale"})),
        record("B", 0, json!({"n": "b0 stale"})),
    ]);
    let latest = latest_versions(&s, "accounts");
    let got: Vec<(&str, &Value)> = latest
        .iter()
        .map(|r| (r.id.as_str(), &r.data["n"]))
        .collect();
    assert_eq!(got, vec![("B", &json!("b1")), ("A", &json!("a5"))]);
    assert!(latest_versions(&s, "contacts").is_empty());
}

#[test]
fn an_equal_version_arriving_later_is_a_stale_redelivery() {
    let mut later = record("A", 2, json!({"n": "second copy"}));
    // Even when it claims a later change time: versions decide, not `updated_at`.
    later.changed_at = Timestamp::parse("2026-12-01T10:00:00Z");
    let mut first = record("A", 2, json!({"n": "first copy"}));
    first.changed_at = Timestamp::parse("2026-12-01T09:00:00Z");
    let s = set(vec![record("A", 1, json!({"n": "v1"})), first, later]);
    let latest = latest_versions(&s, "accounts");
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].data["n"], json!("first copy"));
}

#[test]
fn absent_columns_write_nothing_and_null_clears() {
    let bundle = northwind();
    let spec = object();
    let w = write_for(&bundle, &spec, &record("K-1", 1, json!({"name": null}))).unwrap();
    assert_eq!(w.values, values(json!({"Key__c": "K-1", "Name": null})));
    let w = write_for(&bundle, &spec, &record("K-1", 1, json!({"seats": ""}))).unwrap_err();
    assert_eq!(
        (w.field.as_str(), w.expected),
        ("Seats__c", "an integer"),
        "empty text is not null"
    );
    let w = write_for(
        &bundle,
        &spec,
        &record("K-1", 1, json!({"name": "", "seats": "1,024"})),
    )
    .unwrap();
    assert_eq!(w.values["Name"], json!(""));
    assert_eq!(w.values["Seats__c"], json!(1024));
}

#[test]
fn crm_owned_fields_are_never_written_and_new_columns_are_routed_once() {
    let bundle = northwind();
    let spec = object();
    let data = json!({
        "name": "Acme",
        "segment": "Retail",
        "SEGMENT": "Wholesale",     // same loose name: the field is fed already
        "owner_name": "Priya",      // matches a CRM-owned field: never routed there
        "archived": true,           // the delete policy's flag is not a drift target
        "renewal": "2026-03-08T03:30:00-04:00",
        "shoe_size": 44,
    });
    let w = write_for(&bundle, &spec, &record("K-1", 1, data)).unwrap();
    assert_eq!(
        w.values,
        values(json!({
            "Key__c": "K-1",
            "Name": "Acme",
            "Renewal__c": "2026-03-08T07:30:00.000+0000",
            "Segment__c": "Retail",
        }))
    );
    assert_eq!(
        w.routed,
        BTreeMap::from([("segment".to_string(), "Segment__c".to_string())])
    );
    let unmapped: Vec<&str> = w.unmapped.iter().map(String::as_str).collect();
    assert_eq!(
        unmapped,
        vec!["SEGMENT", "archived", "owner_name", "shoe_size"]
    );
}

#[test]
fn references_name_the_parent_by_its_external_id() {
    let bundle = northwind();
    let contact = bundle.object("Contact").unwrap();
    let r = |data| SourceRecord {
        entity: "contacts".into(),
        ..record("CON-1", 1, data)
    };
    let w = write_for(
        &bundle,
        contact,
        &r(json!({"account_no": "CUST-7", "last_name": "Ng"})),
    )
    .unwrap();
    assert_eq!(w.values["Account"], json!({"NW_Customer_Id__c": "CUST-7"}));
    assert_eq!(w.values["NW_Contact_Id__c"], json!("CON-1"));
    let w = write_for(&bundle, contact, &r(json!({"account_no": null}))).unwrap();
    assert_eq!(
        w.values["Account"],
        Value::Null,
        "a null parent column clears the link"
    );
}

#[test]
fn delete_policies() {
    let bundle = northwind();
    assert_eq!(
        delete_outcome(bundle.object("Contact").unwrap()),
        DeleteOutcome::Gone
    );
    assert_eq!(
        delete_outcome(bundle.object("Account").unwrap()),
        DeleteOutcome::Flagged {
            field: "Archived__c".into(),
            value: json!(true)
        }
    );
    assert_eq!(
        delete_outcome(bundle.object("Opportunity").unwrap()),
        DeleteOutcome::Flagged {
            field: "StageName".into(),
            value: json!("Closed Lost")
        }
    );
}

fn fate<'e>(e: &'e crate::verify::oracle::Expectations, object: &str, id: &str) -> &'e Expected {
    &e[object].iter().find(|(i, _)| i == id).unwrap().1
}

#[test]
fn the_oracle_applies_policies_to_the_latest_version() {
    let bundle = northwind();
    let mut source = SourceSet::default();
    source.entities.insert(
        "accounts".into(),
        vec![
            record(
                "CUST-1",
                1,
                json!({"company_name": "One", "industry": "Retail"}),
            ),
            deleted("CUST-1", 2, json!({"company_name": "One"})),
            record("CUST-2", 1, json!({"company_name": "Two"})),
            // A delete that a newer version undoes is no delete.
            deleted("CUST-3", 1, json!({"company_name": "Three"})),
            record("CUST-3", 2, json!({"company_name": "Three"})),
        ],
    );
    let opp = |id: &str, version, data, gone| SourceRecord {
        entity: "opportunities".into(),
        deleted: gone,
        ..record(id, version, data)
    };
    source.entities.insert(
        "opportunities".into(),
        vec![opp(
            "OPP-1",
            4,
            json!({"account_no": "CUST-2", "name": "Deal", "stage": "Closed Won", "close_date": "2026-10-07"}),
            true,
        )],
    );
    source.entities.insert(
        "contacts".into(),
        vec![SourceRecord {
            entity: "contacts".into(),
            deleted: true,
            ..record("CON-1", 3, json!({}))
        }],
    );
    let e = expectations(&bundle, &bundle, &source);
    assert_eq!(
        fate(&e, "Account", "CUST-1"),
        &Expected::Present {
            values: values(
                json!({"NW_Customer_Id__c": "CUST-1", "Name": "One", "Archived__c": true})
            )
        }
    );
    assert_eq!(
        fate(&e, "Account", "CUST-3"),
        &Expected::Present {
            values: values(json!({"NW_Customer_Id__c": "CUST-3", "Name": "Three"}))
        }
    );
    // The inactive flag wins over the delete's own stage.
    let Expected::Present { values: o } = fate(&e, "Opportunity", "OPP-1") else {
        panic!("{e:#?}");
    };
    assert_eq!(o["StageName"], json!("Closed Lost"));
    assert_eq!(o["Account"], json!({"NW_Customer_Id__c": "CUST-2"}));
    assert_eq!(fate(&e, "Contact", "CON-1"), &Expected::Absent);
}

#[test]
fn the_oracle_dead_letters_values_the_contract_cannot_hold() {
    let bundle = northwind();
    let source = set(vec![
        record(
            "CUST-1",
            1,
            json!({"company_name": "One", "employees": "12.5"}),
        ),
        record(
            "CUST-2",
            1,
            json!({"company_name": "Two", "customer_since": "2026-02-30"}),
        ),
        record("CUST-3", 1, json!({"company_name": null})),
        record(
            "CUST-4",
            1,
            json!({"company_name": "Four", "industry": "Aerospace"}),
        ),
        record(
            "CUST-5",
            1,
            json!({"company_name": "Five", "customer_since": "2026-01-05T23:30:00-05:00"}),
        ),
    ]);
    let e = expectations(&bundle, &bundle, &source);
    let code = |id| match fate(&e, "Account", id) {
        Expected::DeadLetter {
            code, before_call, ..
        } => (code.as_str(), *before_call),
        other => panic!("{id}: {other:?}"),
    };
    assert_eq!(code("CUST-1"), ("JSON_PARSER_ERROR", true));
    assert_eq!(code("CUST-2"), ("JSON_PARSER_ERROR", true));
    assert_eq!(code("CUST-3"), ("REQUIRED_FIELD_MISSING", true));
    assert_eq!(
        code("CUST-4"),
        ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", true)
    );
    let Expected::Present { values } = fate(&e, "Account", "CUST-5") else {
        panic!("{e:#?}");
    };
    assert_eq!(
        values["Customer_Since__c"],
        json!("2026-01-06"),
        "the UTC date"
    );
}

#[test]
fn a_manual_edit_is_judged_against_the_synced_version_not_a_stale_copy() {
    use crate::verify::oracle::{apply_manual_edits, AppliedEdit};
    let bundle = northwind();
    let at = |s: &str| Timestamp::parse(s);
    let mut synced = record(
        "CUST-1",
        2,
        json!({"company_name": "Two", "industry": "Apparel"}),
    );
    synced.changed_at = at("2026-12-01T09:00:00Z");
    // A redelivery of version 2 claiming a later change: stale, never synced.
    let mut stale = record(
        "CUST-1",
        2,
        json!({"company_name": "Two again", "industry": "Retail"}),
    );
    stale.changed_at = at("2026-12-01T11:00:00Z");
    let v1 = record(
        "CUST-1",
        1,
        json!({"company_name": "One", "industry": "Retail"}),
    );
    let source = set(vec![v1, synced, stale]);
    let mut e = expectations(&bundle, &bundle, &source);
    let edit = AppliedEdit {
        object: "Account".into(),
        external_id: "CUST-1".into(),
        set: values(json!({"Name": "Renamed by a rep"})),
        at: at("2026-12-01T10:00:00Z").unwrap(),
    };
    apply_manual_edits(&mut e, &bundle, &source, &[edit]);
    // The rep edited after the synced change: the org keeps what it held, the edit on top.
    assert_eq!(
        fate(&e, "Account", "CUST-1"),
        &Expected::Present {
            values: values(json!({
                "NW_Customer_Id__c": "CUST-1",
                "Name": "Renamed by a rep",
                "Industry": "Retail",
            }))
        }
    );
}
