//! The engine's record policies against the mock org, one fault or edge at a time:
//! pre-validation (no call for a record the contract rejects), schema drift routing, delete
//! policies, and conflicts with edits made in Salesforce after the source's change.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use syncgate::contract::{Bundle, Registry};
use syncgate::engine::dlq::ErrorClass;
use syncgate::engine::source::SourceSet;
use syncgate::engine::{EngineConfig, Sync, SyncReport, Target};
use syncgate::mock::{MockOrg, RunningMock};
use syncgate::sim::{Clock, Scenario, Seed, Timestamp};
use syncgate::store::{DeadLetterStore, DlqFilter, MemoryStore};
use syncgate::verify::gate::{spawn_org, GateOrg};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn northwind_production() -> Bundle {
    let registry = Registry::open(&root().join("contracts")).unwrap();
    let tenant = registry
        .select(&["northwind-outfitters".into()], &["production".into()])
        .unwrap()
        .remove(0);
    registry.load(&tenant).unwrap()
}

/// Writes a fixture set (file name → lines) and loads it.
fn source(dir: &Path, files: &[(&str, Vec<Value>)]) -> SourceSet {
    std::fs::create_dir_all(dir).unwrap();
    for (name, lines) in files {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.join(name), text).unwrap();
    }
    SourceSet::load_dir(dir).unwrap()
}

struct Org {
    org: MockOrg,
    running: RunningMock,
    clock: Clock,
    target: Target,
    bundle: Bundle,
    dlq: MemoryStore,
}

async fn org(scenario_yaml: &str) -> Org {
    org_with(northwind_production(), scenario_yaml).await
}

async fn org_with(bundle: Bundle, scenario_yaml: &str) -> Org {
    let scenario = Scenario::from_yaml(Path::new("test.yaml"), scenario_yaml).unwrap();
    let clock = Clock::virtual_at(scenario.start);
    let GateOrg {
        org,
        running,
        target,
    } = spawn_org(bundle.clone(), Some(scenario), Seed(3), clock.clone())
        .await
        .unwrap();
    Org {
        org,
        running,
        clock,
        target,
        bundle,
        dlq: MemoryStore::new(),
    }
}

impl Org {
    async fn sync(&self, source: &SourceSet) -> SyncReport {
        Sync::new(
            &self.bundle,
            EngineConfig::default(),
            self.clock.clone(),
            Seed(3),
            &self.dlq,
        )
        .run(source, &self.target)
        .await
        .unwrap()
    }

    fn record(&self, object: &str, ext_field: &str, ext: &str) -> Option<Value> {
        self.org
            .records(object)
            .into_iter()
            .find(|r| r.fields.get(ext_field).and_then(Value::as_str) == Some(ext))
            .map(|r| Value::Object(r.fields.into_iter().collect()))
    }
}

fn account(id: &str, version: u64, extra: Value) -> Value {
    let mut data = json!({"company_name": format!("Company {id}"), "industry": "Retail", "phone": "+1 555-0000", "billing_city": "Boise"});
    for (k, v) in extra.as_object().unwrap() {
        data[k] = v.clone();
    }
    json!({"id": id, "version": version, "data": data})
}

#[tokio::test]
async fn a_record_the_contract_rejects_costs_no_call() {
    let o = org("purpose: pre-validation\nfaults: []\n").await;
    let dir = tempfile::tempdir().unwrap();
    let src = source(
        dir.path(),
        &[(
            "accounts.jsonl",
            vec![
                account("CUST-1", 1, json!({})),
                account("CUST-2", 1, json!({"industry": "Aerospace"})),
                account("CUST-3", 1, json!({"company_name": "x".repeat(300)})),
                account("CUST-4", 1, json!({})),
            ],
        )],
    );
    let report = o.sync(&src).await;
    assert_eq!(report.rejected_before_sending, 2);
    assert_eq!(report.created, 2);
    let journal = o.org.journal();
    let patches: Vec<_> = journal.iter().filter(|e| e.method == "PATCH").collect();
    assert_eq!(patches.len(), 1, "one collections call for the valid two");
    assert_eq!(patches[0].records, Some(2));
    let letters = o.dlq.dlq_list(&DlqFilter::default()).await.unwrap();
    for l in &letters {
        // Never sent: no headers; the key names the record version.
        assert!(l.letter.headers_sent.is_empty(), "{l:?}");
        assert_eq!(
            l.letter.idempotency_key,
            format!(
                "northwind-outfitters/production|Account|{}|upsert|1",
                l.letter.source_id
            )
        );
    }
    let mut codes: Vec<(String, String, ErrorClass, u32)> = letters
        .iter()
        .map(|l| {
            (
                l.letter.source_id.clone(),
                l.letter.error_code.clone(),
                l.letter.class,
                l.letter.attempts,
            )
        })
        .collect();
    codes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        codes,
        [
            (
                "CUST-2".to_string(),
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST".to_string(),
                ErrorClass::Invalid,
                0
            ),
            (
                "CUST-3".to_string(),
                "STRING_TOO_LONG".to_string(),
                ErrorClass::Invalid,
                0
            ),
        ]
    );
    o.running.stop().await;
}

#[tokio::test]
async fn new_columns_go_to_same_named_fields_or_are_reported() {
    let o = org("purpose: drift\nfaults: []\n").await;
    let dir = tempfile::tempdir().unwrap();
    let src = source(
        dir.path(),
        &[(
            "accounts.jsonl",
            vec![account(
                "CUST-1",
                1,
                json!({"segment": "West", "credit_rating": "A", "account_manager": "Kenji Tanaka"}),
            )],
        )],
    );
    let report = o.sync(&src).await;
    let rec = o.record("Account", "NW_Customer_Id__c", "CUST-1").unwrap();
    assert_eq!(rec["Segment__c"], "West");
    // A column named like a CRM-owned field is never routed onto it.
    assert!(rec.get("Account_Manager__c").is_none_or(Value::is_null));
    assert_eq!(
        report.routed_columns["accounts"]["segment"], "Segment__c",
        "{report:?}"
    );
    let unmapped: Vec<&str> = report.unmapped_columns["accounts"]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(unmapped, ["account_manager", "credit_rating"]);
    o.running.stop().await;
}

#[tokio::test]
async fn deletes_follow_each_objects_policy() {
    let o = org("purpose: deletes\nfaults: []\n").await;
    let dir = tempfile::tempdir().unwrap();
    let day1 = source(
        &dir.path().join("day1"),
        &[
            ("accounts.jsonl", vec![account("CUST-1", 1, json!({}))]),
            (
                "contacts.jsonl",
                vec![
                    json!({"id": "CON-1", "version": 1, "data": {"last_name": "Brennan", "account_no": "CUST-1"}}),
                ],
            ),
            (
                "opportunities.jsonl",
                vec![
                    json!({"id": "OPP-1", "version": 1, "data": {"name": "Spring restock", "stage": "Proposal", "close_date": "2026-03-01", "account_no": "CUST-1"}}),
                ],
            ),
        ],
    );
    let first = o.sync(&day1).await;
    assert_eq!(first.created, 3);
    let day2 = source(
        &dir.path().join("day2"),
        &[
            (
                "accounts.jsonl",
                vec![
                    json!({"id": "CUST-1", "version": 2, "deleted": true, "data": {"company_name": "Company CUST-1"}}),
                ],
            ),
            (
                "contacts.jsonl",
                vec![
                    json!({"id": "CON-1", "version": 2, "deleted": true}),
                    // Never synced: already gone is deleted, not an error.
                    json!({"id": "CON-404", "version": 1, "deleted": true}),
                ],
            ),
            (
                "opportunities.jsonl",
                vec![
                    json!({"id": "OPP-1", "version": 2, "deleted": true, "data": {"name": "Spring restock"}}),
                ],
            ),
        ],
    );
    let second = o.sync(&day2).await;
    assert_eq!(second.deleted, 2, "{second:?}");
    assert_eq!(second.dead_lettered, 0, "{second:?}");
    // archive: the flag is set, the record stays.
    let acct = o.record("Account", "NW_Customer_Id__c", "CUST-1").unwrap();
    assert_eq!(acct["Archived__c"], true);
    // hard_delete: the record is gone.
    assert!(o.record("Contact", "NW_Contact_Id__c", "CON-1").is_none());
    // inactive: the status is set.
    let opp = o
        .record("Opportunity", "NW_Opportunity_Id__c", "OPP-1")
        .unwrap();
    assert_eq!(opp["StageName"], "Closed Lost");
    let deletes: Vec<String> = o
        .org
        .journal()
        .iter()
        .filter(|e| e.method == "DELETE")
        .map(|e| format!("{} {}", e.path, e.status))
        .collect();
    assert_eq!(
        deletes,
        [
            "/services/data/v62.0/sobjects/Contact/NW_Contact_Id__c/CON-1 204",
            "/services/data/v62.0/sobjects/Contact/NW_Contact_Id__c/CON-404 404",
        ]
    );
    o.running.stop().await;
}

#[tokio::test]
async fn an_edit_newer_than_the_source_change_wins_and_is_reported() {
    // The rep edits both accounts one hour in; the engine's second run comes at two hours.
    let o = org("purpose: conflicts
faults: []
manual_edits:
  - { name: edit-1, object: Account, external_id: CUST-1, after: 1h, set: { Phone: '+1 555-0101' } }
  - { name: edit-2, object: Account, external_id: CUST-2, after: 1h, set: { Phone: '+1 555-0102' } }
")
    .await;
    let start = o.clock.now();
    let dir = tempfile::tempdir().unwrap();
    let day1 = source(
        &dir.path().join("day1"),
        &[(
            "accounts.jsonl",
            vec![
                account("CUST-1", 1, json!({})),
                account("CUST-2", 1, json!({})),
            ],
        )],
    );
    o.sync(&day1).await;
    o.clock
        .sleep_until(start.plus(std::time::Duration::from_secs(2 * 3600)))
        .await;
    let at = |mins: u64| {
        start
            .plus(std::time::Duration::from_secs(mins * 60))
            .to_iso()
    };
    let mut older = account(
        "CUST-1",
        2,
        json!({"phone": "+1 555-9001", "billing_city": "Reno"}),
    );
    older["updated_at"] = json!(at(30)); // before the edit: Salesforce's value is newer
    let mut newer = account("CUST-2", 2, json!({"phone": "+1 555-9002"}));
    newer["updated_at"] = json!(at(150)); // after the edit: the source's value is newer
    let day2 = source(
        &dir.path().join("day2"),
        &[("accounts.jsonl", vec![older, newer])],
    );
    let report = o.sync(&day2).await;

    let one = o.record("Account", "NW_Customer_Id__c", "CUST-1").unwrap();
    assert_eq!(one["Phone"], "+1 555-0101", "the rep's newer edit stays");
    assert_eq!(
        one["BillingCity"], "Boise",
        "the record is kept as Salesforce has it"
    );
    let two = o.record("Account", "NW_Customer_Id__c", "CUST-2").unwrap();
    assert_eq!(
        two["Phone"], "+1 555-9002",
        "the source's newer change wins"
    );

    let conflicts: Vec<(&str, &str, &Value, &Value)> = report
        .conflicts
        .iter()
        .map(|c| {
            (
                c.source_id.as_str(),
                c.field.as_str(),
                &c.crm_value,
                &c.source_value,
            )
        })
        .collect();
    assert_eq!(
        conflicts,
        [
            ("CUST-1", "BillingCity", &json!("Boise"), &json!("Reno")),
            (
                "CUST-1",
                "Phone",
                &json!("+1 555-0101"),
                &json!("+1 555-9001")
            ),
        ]
    );
    let c = &report.conflicts[0];
    assert!(
        Timestamp::parse(&c.crm_modified_at).unwrap()
            > Timestamp::parse(&c.source_changed_at).unwrap()
    );
    o.running.stop().await;
}

#[tokio::test]
async fn a_regex_validation_rule_is_checked_before_sending_and_predicted_by_the_oracle() {
    let mut bundle = northwind_production();
    bundle
        .objects
        .get_mut("Account")
        .unwrap()
        .validation_rules
        .push(syncgate::contract::ValidationRule {
            name: "Phone_Format".into(),
            field: Some("Phone".into()),
            regex: Some(r"\+1 \d{3}-\d{4}".into()),
            condition: None,
            message: "Phone must look like +1 555-0100".into(),
        });
    let o = org_with(bundle.clone(), "purpose: rules\nfaults: []\n").await;
    let dir = tempfile::tempdir().unwrap();
    let src = source(
        dir.path(),
        &[(
            "accounts.jsonl",
            vec![
                account("CUST-1", 1, json!({})),
                account("CUST-2", 1, json!({"phone": "0044 20 7946 0000"})),
            ],
        )],
    );
    let report = o.sync(&src).await;
    assert_eq!((report.created, report.rejected_before_sending), (1, 1));
    let letters = o.dlq.dlq_list(&DlqFilter::default()).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].letter.error_code,
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    );
    // The oracle predicts the same fate, before any call.
    let expected = syncgate::verify::oracle::expectations(&bundle, &bundle, &src);
    let fate = &expected["Account"]
        .iter()
        .find(|(id, _)| id == "CUST-2")
        .unwrap()
        .1;
    assert!(
        matches!(
            fate,
            syncgate::verify::oracle::Expected::DeadLetter { code, before_call: true, .. }
                if code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        ),
        "{fate:?}"
    );
    o.running.stop().await;
}
