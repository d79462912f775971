//! Unit tests of the fixture generator: every rule gets a record that breaks it, edges are
//! covered, references link to generated parents, the same seed gives the same files.

use super::*;
use crate::contract::rules::{check_write, RegexRules, WriteKind};

fn bundle() -> Bundle {
    Bundle::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/northwind-outfitters/sandbox"),
    )
    .unwrap()
}

fn opts(records: usize) -> Options {
    Options {
        seed: Seed(7),
        records,
        start: Timestamp::parse("2026-01-05T08:00:00Z").unwrap(),
        named: BTreeMap::from([("Account".into(), vec!["CUST-10003".into()])]),
    }
}

/// The record as the engine would write it, with the source columns mapped by hand
/// (independently of the engine and the oracle), for the contract's own checks.
fn payload(b: &Bundle, g: &Generated) -> Map<String, Value> {
    let spec = &b.objects[&g.object];
    let mut m = Map::new();
    m.insert(spec.external_id.clone(), json!(g.id));
    for (name, f) in &spec.fields {
        let Some(col) = &f.from else { continue };
        if name == &spec.external_id || f.owner == Owner::Crm {
            continue;
        }
        if let Some(v) = g.data.get(col) {
            m.insert(name.clone(), v.clone());
        }
    }
    m
}

#[test]
fn every_rule_of_the_bundle_has_a_record_that_breaks_it() {
    let b = bundle();
    let set = generate(&b, SetKind::Default, &opts(20));
    for (object, spec) in &b.objects {
        let rejected: Vec<(&str, &str)> = set
            .rejects()
            .filter(|g| &g.object == object)
            .filter_map(|g| match &g.purpose {
                Purpose::Reject { field, rule, .. } => Some((field.as_str(), rule.as_str())),
                _ => None,
            })
            .collect();
        for (name, f) in &spec.fields {
            if f.from.is_none() || f.owner == Owner::Crm || name == &spec.external_id {
                continue;
            }
            if f.required {
                assert!(
                    rejected.contains(&(name, "required")),
                    "{object}.{name} required"
                );
            }
            if f.max_length.is_some() {
                assert!(
                    rejected.contains(&(name, "max_length")),
                    "{object}.{name} length"
                );
            }
            if f.ty == FieldType::Picklist && f.restricted {
                assert!(
                    rejected.contains(&(name, "restricted_picklist")),
                    "{object}.{name} picklist"
                );
            }
            if f.ty.is_number() || matches!(f.ty, FieldType::Date | FieldType::Datetime) {
                assert!(rejected.contains(&(name, "type")), "{object}.{name} type");
            }
        }
    }
}

#[test]
fn valid_records_pass_the_contract_and_rejects_fail_it_with_their_code() {
    let b = bundle();
    let set = generate(&b, SetKind::Default, &opts(30));
    let mut checked = 0;
    for g in set.entities.values().flatten() {
        let spec = &b.objects[&g.object];
        let values = payload(&b, g);
        // Values the engine converts (text for numbers, datetimes in zones) are judged by
        // the oracle's tests; here: text types and picklists as sent.
        let outcome = check_write(
            &g.object,
            spec,
            &relationships(&b, spec, values),
            WriteKind::Create,
        )
        .and_then(|()| RegexRules::compile(spec).check(&payload(&b, g)));
        match &g.purpose {
            Purpose::Valid => {
                if let Err(e) = &outcome {
                    // Only conversions may differ (e.g. "1,234" for an int, which Salesforce
                    // does not read but the engine converts).
                    assert_eq!(e.code, "JSON_PARSER_ERROR", "{} {}: {e:?}", g.object, g.id);
                }
            }
            // A "type" reject is text the engine cannot convert; sent as it is, the org's JSON
            // reader must refuse it too (a value Salesforce would coerce is no reject).
            Purpose::Reject { code, rule, .. } if *code != "INVALID_FIELD" => {
                let e = outcome.expect_err(&format!("{} {} must be rejected", g.object, g.id));
                assert_eq!(&e.code, code, "{} {} ({rule})", g.object, g.id);
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked > 10, "only {checked} rejects checked");
}

/// Relationship columns as the engine sends them (`Account: {Ext: id}`), so the required
/// check sees a reference.
fn relationships(
    b: &Bundle,
    spec: &ObjectSpec,
    mut values: Map<String, Value>,
) -> Map<String, Value> {
    for (name, f) in &spec.fields {
        if f.ty != FieldType::Reference {
            continue;
        }
        if let (Some(v), Some(rel), Some(to)) = (values.remove(name), &f.relationship, &f.to) {
            let key = b.objects[to].external_id.clone();
            let linked = if v.is_null() {
                Value::Null
            } else {
                json!({ key: v })
            };
            values.insert(rel.clone(), linked);
        }
    }
    values
}

#[test]
fn children_point_at_generated_parents_and_named_ids_come_first() {
    let b = bundle();
    let set = generate(&b, SetKind::Default, &opts(25));
    let accounts: BTreeSet<&str> = set.entities["accounts"]
        .iter()
        .filter(|g| g.purpose == Purpose::Valid)
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(set.entities["accounts"][0].id, "CUST-10003");
    assert_eq!(accounts.len(), 25);
    let mut linked = 0;
    for c in set.entities["contacts"]
        .iter()
        .filter(|g| g.purpose == Purpose::Valid)
    {
        match c.data.get("account_no") {
            Some(Value::String(id)) => {
                assert!(accounts.contains(id.as_str()), "{id}");
                linked += 1;
            }
            Some(Value::Null) | None => {}
            Some(other) => panic!("{other}"),
        }
    }
    assert!(linked >= 20);
}

#[test]
fn edges_are_in_the_set() {
    let b = bundle();
    let set = generate(&b, SetKind::Default, &opts(20));
    let accounts = &set.entities["accounts"];
    let industries: BTreeSet<&str> = accounts
        .iter()
        .filter(|g| g.purpose == Purpose::Valid)
        .filter_map(|g| g.data.get("industry").and_then(Value::as_str))
        .collect();
    let listed = b.objects["Account"].fields["Industry"]
        .values
        .clone()
        .unwrap();
    assert!(
        listed.iter().all(|v| industries.contains(v.as_str())),
        "{industries:?}"
    );
    let max = b.objects["Account"].fields["BillingCity"]
        .max_length
        .unwrap() as usize;
    assert!(accounts.iter().any(|g| g.purpose == Purpose::Valid
        && g.data["billing_city"]
            .as_str()
            .is_some_and(|s| s.chars().count() == max && s.len() > max)));
    assert!(
        accounts
            .iter()
            .any(|g| g.data.get("billing_city") == Some(&Value::Null)),
        "explicit null"
    );
    assert!(
        accounts
            .iter()
            .any(|g| g.purpose == Purpose::Valid && !g.data.contains_key("billing_city")),
        "absent"
    );
    let ext_max = b.objects["Account"].fields["NW_Customer_Id__c"]
        .max_length
        .unwrap() as usize;
    assert!(accounts
        .iter()
        .any(|g| g.purpose == Purpose::Valid && g.id.len() == ext_max));
}

#[test]
fn second_days_update_and_delete_what_the_first_day_had() {
    let b = bundle();
    let o = opts(12);
    let first = generate(&b, SetKind::Default, &o);
    let ids =
        |e: &str| -> BTreeSet<String> { first.entities[e].iter().map(|g| g.id.clone()).collect() };
    let deletes = generate(&b, SetKind::DeletesDay2, &o);
    for (entity, records) in &deletes.entities {
        let known = ids(entity);
        let dels: Vec<&Generated> = records.iter().filter(|g| g.deleted).collect();
        assert!(
            dels.iter().filter(|g| known.contains(&g.id)).count() >= 1,
            "{entity}"
        );
        assert!(
            dels.iter().any(|g| !known.contains(&g.id)),
            "{entity}: a never-synced delete"
        );
        assert!(records.iter().all(|g| g.updated_at.is_some()));
    }
    let edits = generate(&b, SetKind::ManualEditsDay2, &o);
    let accounts = &edits.entities["accounts"];
    assert_eq!(accounts[0].id, "CUST-10003", "the named record is updated");
    assert!(accounts.iter().all(|g| g.version == 2 && !g.deleted));
}

#[test]
fn the_same_seed_gives_the_same_files_and_another_seed_other_ones() {
    let b = bundle();
    let files = |seed: u64, kind| {
        let o = Options {
            seed: Seed(seed),
            ..opts(40)
        };
        generate(&b, kind, &o).files(&b, &o)
    };
    for kind in SetKind::ALL {
        assert_eq!(files(1, kind), files(1, kind), "{}", kind.name());
    }
    assert_ne!(files(1, SetKind::Default), files(2, SetKind::Default));
}

#[test]
fn records_scale_and_files_load_as_a_fixture_set() {
    let b = bundle();
    let o = opts(1000);
    let set = generate(&b, SetKind::Default, &o);
    assert_eq!(
        set.entities["contacts"]
            .iter()
            .filter(|g| g.purpose == Purpose::Valid)
            .count(),
        1000
    );
    let dir = tempfile::tempdir().unwrap();
    set.write_to(dir.path(), &b, &o).unwrap();
    let loaded = crate::source::SourceSet::load_dir(dir.path()).unwrap();
    assert_eq!(
        loaded.entities["contacts"].len(),
        set.entities["contacts"].len()
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("_generated.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["rejects"].as_array().unwrap().len(),
        set.rejects().count()
    );
}

#[test]
fn regex_rules_get_matching_values_and_one_breaking_record() {
    let mut b = bundle();
    let contact = b.objects.get_mut("Contact").unwrap();
    contact
        .validation_rules
        .push(crate::contract::bundle::ValidationRule {
            name: "title_code".into(),
            field: Some("Title".into()),
            regex: Some(r"[A-Z]{2}-\d{3}".into()),
            condition: None,
            message: "Title must look like AB-123".into(),
        });
    let set = generate(&b, SetKind::Default, &opts(15));
    let re = regex::Regex::new(r"^(?:[A-Z]{2}-\d{3})$").unwrap();
    let contacts = &set.entities["contacts"];
    for g in contacts.iter().filter(|g| g.purpose == Purpose::Valid) {
        if let Some(Value::String(t)) = g.data.get("title") {
            assert!(re.is_match(t), "{t}");
        }
    }
    assert!(contacts.iter().any(|g| matches!(&g.purpose,
        Purpose::Reject { rule, code, .. } if rule == "validation_rule:title_code" && *code == "FIELD_CUSTOM_VALIDATION_EXCEPTION")));
}
