//! Change events in: the CDC consumer against the mock org over loopback — duplicates,
//! the engine's own echoes, reordering, restart from the stored replay ID, gaps, overflow
//! and an expired replay ID.

use std::path::PathBuf;

use serde_json::{json, Value};
use syncgate::contract::{Bundle, Registry};
use syncgate::engine::cdc::{
    CdcConfig, CdcConsumer, CdcReport, ChangeVia, CrmChangeSink, JsonlOutbox, MemorySink,
};
use syncgate::engine::client::{Credentials, SalesforceClient, Secret};
use syncgate::mock::{self, ClientCredentials, MockConfig, MockOrg, RunningMock};
use syncgate::sim::{Clock, Scenario, Seed, Timestamp};
use syncgate::store::{CheckpointStore, DedupeStore, MemoryStore, SqliteStore};

use crate::support;

const ENGINE: &str = "syncgate";
const EXT: &str = "NW_Customer_Id__c";
const MANAGER: &str = "Account_Manager__c";

fn bundle() -> Bundle {
    let registry =
        Registry::open(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts")).unwrap();
    let t = registry
        .select(&["northwind-outfitters".into()], &["sandbox".into()])
        .unwrap();
    registry.load(&t[0]).unwrap()
}

struct Org {
    running: RunningMock,
    clock: Clock,
    bundle: Bundle,
}

async fn start(scenario_yaml: &str) -> Org {
    let clock = Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap());
    let scenario = Scenario::from_yaml(std::path::Path::new("s.yaml"), scenario_yaml).unwrap();
    let org = MockOrg::new(MockConfig {
        bundle: bundle(),
        scenario: Some(scenario),
        seed: Seed(11),
        clock: clock.clone(),
        clients: vec![ClientCredentials::gate()],
    });
    let running = mock::spawn(org, 0).await.unwrap();
    Org {
        running,
        clock,
        bundle: bundle(),
    }
}

impl Org {
    /// A signed-in client sending `client=<name>`.
    async fn client(&self, name: &str) -> SalesforceClient {
        let mut c = self.unsigned(name);
        c.authenticate().await.unwrap();
        c
    }

    fn unsigned(&self, name: &str) -> SalesforceClient {
        let creds = ClientCredentials::gate();
        SalesforceClient::new(
            &self.running.base_url(),
            "62.0",
            Credentials::client_credentials(creds.client_id, Secret::new(creds.client_secret)),
            self.clock.clone(),
            name,
            "t",
        )
    }

    /// Upserts accounts `(external ID, extra fields)` as client `name`, in one call.
    async fn upsert(&self, name: &str, accounts: &[(&str, Value)]) {
        let records: Vec<Value> = accounts
            .iter()
            .map(|(ext, extra)| {
                let mut r = json!({EXT: ext, "Name": format!("Account {ext}")});
                for (k, v) in extra.as_object().unwrap() {
                    r[k] = v.clone();
                }
                r
            })
            .collect();
        let reply = self
            .client(name)
            .await
            .upsert_collection("Account", EXT, &records)
            .await
            .unwrap();
        for r in reply.body.as_array().unwrap() {
            assert_eq!(r["success"], true, "{reply:?}");
        }
    }

    fn consumer<'a>(
        &'a self,
        store: &'a (impl CheckpointStore + DedupeStore),
        sink: &'a dyn CrmChangeSink,
        tweak: impl FnOnce(&mut CdcConfig),
    ) -> CdcConsumer<'a> {
        let mut config = CdcConfig::new(
            format!("{}/__syncgate/events", self.running.base_url()),
            ENGINE,
        );
        tweak(&mut config);
        CdcConsumer::new(
            &self.bundle,
            config,
            self.clock.clone(),
            Seed(11),
            self.unsigned(ENGINE),
            store,
            store,
            sink,
        )
    }

    async fn drain(
        &self,
        store: &(impl CheckpointStore + DedupeStore),
        sink: &MemorySink,
    ) -> CdcReport {
        self.consumer(store, sink, |_| {}).drain().await.unwrap()
    }

    fn manager_in_org(&self, ext: &str) -> Value {
        self.running
            .org
            .records("Account")
            .into_iter()
            .find(|r| r.fields.get(EXT) == Some(&json!(ext)))
            .unwrap()
            .fields
            .get(MANAGER)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn key(ext: &str) -> (String, String, String) {
    ("Account".into(), ext.into(), MANAGER.into())
}

#[tokio::test]
async fn duplicates_are_delivered_once_and_the_engines_own_echoes_not_at_all() {
    let org = start("purpose: p\nevents: { duplicate: 1.0 }\n").await;
    // The engine creates three accounts and (a fault) writes a CRM-owned field itself.
    org.upsert(
        ENGINE,
        &[
            ("A-1", json!({})),
            ("A-2", json!({})),
            ("A-3", json!({MANAGER: "Written By Sync"})),
        ],
    )
    .await;
    // A sales rep's app changes two managers.
    org.upsert(
        "crm-ui",
        &[
            ("A-1", json!({MANAGER: "Priya Nair"})),
            ("A-2", json!({MANAGER: "Jonas Berg"})),
        ],
    )
    .await;
    let store = MemoryStore::new();
    let sink = MemorySink::new();
    let report = org.drain(&store, &sink).await;
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 2, "{delivered:#?}");
    let finals = sink.final_values();
    assert_eq!(finals[&key("A-1")], json!("Priya Nair"));
    assert_eq!(finals[&key("A-2")], json!("Jonas Berg"));
    assert!(
        !finals.contains_key(&key("A-3")),
        "an echo reached the source"
    );
    assert!(delivered
        .iter()
        .all(|c| c.via == ChangeVia::Event && c.event_uuid.is_some()));
    // Every event came twice: 3 creates + 2 updates.
    assert_eq!(report.events_seen, 10);
    assert_eq!(report.duplicates_skipped, 5);
    assert_eq!(report.echoes_skipped, 3);
    assert_eq!(report.changes_delivered, 2);
    // The external IDs came from the creates' echoes: no lookup was needed.
    assert_eq!(report.api_calls, 0);
}

#[tokio::test]
async fn reordered_manual_edits_end_with_the_orgs_value() {
    // Ten accounts, then a rep edits each one twice in a row (same tick, so the same commit
    // time: only the commit order tells the edits apart); half the events swap places.
    let mut yaml = String::from("purpose: p\nevents: { out_of_order: 0.5 }\nmanual_edits:\n");
    for i in 1..=10 {
        for (n, who) in [(1, "First Rep"), (2, "Second Rep")] {
            yaml.push_str(&format!(
                "  - {{ name: e{i}-{n}, object: Account, external_id: R-{i}, after_calls: 1, set: {{ {MANAGER}: {who} {i} }} }}\n"
            ));
        }
    }
    let org = start(&yaml).await;
    let accounts: Vec<(String, Value)> = (1..=10).map(|i| (format!("R-{i}"), json!({}))).collect();
    let refs: Vec<(&str, Value)> = accounts
        .iter()
        .map(|(e, v)| (e.as_str(), v.clone()))
        .collect();
    org.upsert(ENGINE, &refs).await;
    // The engine's next call is the one the edits happen before.
    org.upsert(ENGINE, &[("R-11", json!({}))]).await;

    // The bus really does deliver some second edit before its first.
    let events = org.running.org.change_events();
    let order: Vec<String> = events
        .iter()
        .filter_map(|e| e["payload"][MANAGER].as_str().map(str::to_string))
        .collect();
    let swapped = (1..=10).any(|i| {
        let first = order.iter().position(|v| *v == format!("First Rep {i}"));
        let second = order.iter().position(|v| *v == format!("Second Rep {i}"));
        second < first
    });
    assert!(swapped, "the seed reordered no pair: {order:?}");

    let store = MemoryStore::new();
    let sink = MemorySink::new();
    let report = org.drain(&store, &sink).await;
    let finals = sink.final_values();
    for i in 1..=10 {
        let ext = format!("R-{i}");
        assert_eq!(org.manager_in_org(&ext), json!(format!("Second Rep {i}")));
        assert_eq!(finals[&key(&ext)], org.manager_in_org(&ext), "{ext}");
    }
    assert!(report.stale_skipped >= 1, "{report:?}");
    assert_eq!(report.changes_delivered + report.stale_skipped, 20);
}

/// Two consumers in turn on `before` and then `after` (the same database seen by a new
/// process): the second resumes where the first stopped.
async fn resumes_after_a_restart<S: CheckpointStore + DedupeStore>(before: &S, after: &S) {
    let org = start("purpose: p\n").await;
    org.upsert(ENGINE, &[("S-1", json!({})), ("S-2", json!({}))])
        .await;
    org.upsert("crm-ui", &[("S-1", json!({MANAGER: "Priya Nair"}))])
        .await;
    let sink = MemorySink::new();
    // The source is down for the first delivery: nothing is marked done.
    sink.refuse_next(1);
    let err = org.consumer(before, &sink, |_| {}).drain().await;
    assert!(err.is_err());
    let report = org.drain(before, &sink).await;
    assert_eq!(report.changes_delivered, 1, "redelivered after the refusal");
    assert_eq!(sink.final_values()[&key("S-1")], json!("Priya Nair"));

    org.upsert("crm-ui", &[("S-2", json!({MANAGER: "Jonas Berg"}))])
        .await;
    let scope = org
        .consumer(after, &MemorySink::new(), |_| {})
        .checkpoint_scope();
    let stored = after.checkpoint(&scope).await.unwrap();
    assert_eq!(
        stored.as_deref(),
        Some("3"),
        "replay ID of the first rep edit"
    );
    let sink = MemorySink::new();
    let report = org.drain(after, &sink).await;
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert_eq!(delivered[0].source_id, "S-2");
    assert_eq!(delivered[0].value, json!("Jonas Berg"));
    assert_eq!(delivered[0].replay_id, Some(4));
    assert_eq!(report.events_seen, 1);
    // Fresh memory knows no external IDs: one batched lookup.
    assert_eq!(report.api_calls, 1);
}

#[tokio::test]
async fn a_restart_resumes_from_the_stored_replay_id_without_redelivering_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite");
    let first = SqliteStore::open(&db).unwrap();
    let second = SqliteStore::open(&db).unwrap();
    resumes_after_a_restart(&first, &second).await;
}

#[tokio::test]
async fn a_restart_resumes_from_the_stored_replay_id_without_redelivering_postgres() {
    let Some(pg) = support::postgres("cdc_restart_resumes").await else {
        return;
    };
    let second = pg.another().await;
    resumes_after_a_restart(pg.store.as_ref(), &second).await;
}

#[tokio::test]
async fn a_read_back_waits_for_retry_after() {
    let org = start(
        "purpose: p\nevents: { gap: 1.0 }\nfaults:\n  - name: busy\n    match: { method: GET, path: /query }\n    calls: { first: 1, times: 1 }\n    respond:\n      rate_limited: { retry_after: 600s }\n",
    )
    .await;
    org.upsert(ENGINE, &[("W-1", json!({}))]).await;
    org.upsert("crm-ui", &[("W-1", json!({MANAGER: "Priya Nair"}))])
        .await;
    let start = org.clock.now();
    let store = MemoryStore::new();
    let sink = MemorySink::new();
    let report = org.drain(&store, &sink).await;
    assert_eq!(report.api_calls, 2, "the refused query and its retry");
    assert_eq!(sink.final_values()[&key("W-1")], json!("Priya Nair"));
    let queries: Vec<_> = org
        .running
        .org
        .journal()
        .into_iter()
        .filter(|e| e.method == "GET")
        .collect();
    assert_eq!(queries.len(), 2);
    assert_eq!(queries[0].status, 429);
    assert!(queries[1].at >= start.plus(std::time::Duration::from_secs(600)));
}

#[tokio::test]
async fn gap_events_make_the_consumer_read_the_records_back() {
    let org = start("purpose: p\nevents: { gap: 1.0 }\n").await;
    org.upsert(ENGINE, &[("G-1", json!({})), ("G-2", json!({}))])
        .await;
    org.upsert(
        "crm-ui",
        &[
            ("G-1", json!({MANAGER: "Priya Nair"})),
            ("G-2", json!({MANAGER: "Lena Ortiz"})),
        ],
    )
    .await;
    let store = MemoryStore::new();
    let sink = MemorySink::new();
    let report = org.drain(&store, &sink).await;
    assert_eq!(report.gaps_reread, 2);
    assert_eq!(
        report.echoes_skipped, 2,
        "the engine's gap events are its own"
    );
    assert_eq!(report.api_calls, 1, "one query reads both records back");
    let finals = sink.final_values();
    assert_eq!(finals[&key("G-1")], json!("Priya Nair"));
    assert_eq!(finals[&key("G-2")], json!("Lena Ortiz"));
    assert!(sink.delivered().iter().all(|c| c.via == ChangeVia::Reread));
}

#[tokio::test]
async fn overflow_resyncs_the_object() {
    let org = start("purpose: p\nevents: { overflow_after: 1 }\n").await;
    org.upsert(ENGINE, &[("O-1", json!({})), ("O-2", json!({}))])
        .await;
    org.upsert(
        "crm-ui",
        &[
            ("O-1", json!({MANAGER: "Priya Nair"})),
            ("O-2", json!({MANAGER: "Lena Ortiz"})),
        ],
    )
    .await;
    let store = MemoryStore::new();
    let sink = MemorySink::new();
    let report = org.drain(&store, &sink).await;
    assert_eq!(report.resyncs, 1, "{report:?}");
    let finals = sink.final_values();
    assert_eq!(finals[&key("O-1")], json!("Priya Nair"));
    assert_eq!(finals[&key("O-2")], json!("Lena Ortiz"));
    assert!(sink.delivered().iter().all(|c| c.via == ChangeVia::Resync));
}

#[tokio::test]
async fn an_expired_replay_id_resyncs_and_resumes_from_the_present() {
    let org = start("purpose: p\n").await;
    org.upsert(ENGINE, &[("X-1", json!({}))]).await;
    let store = MemoryStore::new();
    let sink = MemorySink::new();
    org.drain(&store, &sink).await;
    assert!(sink.delivered().is_empty());
    org.upsert("crm-ui", &[("X-1", json!({MANAGER: "Priya Nair"}))])
        .await;
    // The consumer is away for longer than the bus keeps events.
    let resp = syncgate::http::client()
        .post(format!(
            "{}/__syncgate/clock?advance=73h",
            org.running.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let report = org.drain(&store, &sink).await;
    // Every object with CRM-owned fields is read back: Account, Contact, Opportunity.
    assert_eq!(report.resyncs, 3, "{report:?}");
    assert_eq!(sink.final_values()[&key("X-1")], json!("Priya Nair"));
    // Resumed from the present: a new edit arrives as an event.
    org.upsert("crm-ui", &[("X-1", json!({MANAGER: "Jonas Berg"}))])
        .await;
    let report = org.drain(&store, &sink).await;
    assert_eq!(report.resyncs, 0, "no second re-sync");
    let last = sink.delivered().pop().unwrap();
    assert_eq!(
        (last.via, last.value),
        (ChangeVia::Event, json!("Jonas Berg"))
    );
}

#[tokio::test]
async fn the_outbox_writes_one_json_line_per_change() {
    let org = start("purpose: p\n").await;
    org.upsert(ENGINE, &[("J-1", json!({}))]).await;
    org.upsert("crm-ui", &[("J-1", json!({MANAGER: "Priya Nair"}))])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = JsonlOutbox::new(dir.path().join("outbox.jsonl"));
    let store = MemoryStore::new();
    org.consumer(&store, &outbox, |_| {}).drain().await.unwrap();
    let text = std::fs::read_to_string(outbox.path()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let l = &lines[0];
    assert_eq!(l["object"], "Account");
    assert_eq!(l["source_id"], "J-1");
    assert_eq!(l["field"], MANAGER);
    assert_eq!(l["value"], "Priya Nair");
    assert_eq!(l["replay_id"], 2);
    assert_eq!(l["changed_at"], "2026-01-05T08:00:00.000Z");
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn gate_run(partner: &str, path: &str) -> syncgate::verify::RunResult {
    let registry = Registry::open(&root().join("contracts")).unwrap();
    let t = registry
        .select(&[partner.into()], &["production".into()])
        .unwrap();
    let bundle = registry.load(&t[0]).unwrap();
    let scenario = Scenario::load(&root().join(path)).unwrap();
    let fixtures = syncgate::verify::gate::load_fixtures(
        std::slice::from_ref(&scenario),
        &root().join("harness/fixtures"),
    )
    .unwrap();
    syncgate::verify::gate::run_scenario(&bundle, &scenario, &fixtures, Seed(42), false)
        .await
        .unwrap()
}

/// The library scenario really exercises the consumer: the rep's edits arrive duplicated,
/// reordered and as gaps, and the gate still finds the source in step with the org.
#[tokio::test]
async fn the_gate_runs_the_consumer_over_duplicated_reordered_and_gapped_events() {
    for partner in ["northwind-outfitters", "bluepeak-logistics"] {
        let run = gate_run(
            partner,
            "harness/scenarios/duplicate-and-reordered-events.yaml",
        )
        .await;
        assert!(run.passed(), "{partner}: {:#?}", run.violations);
        let cdc = &run.cdc;
        assert!(cdc.duplicates_skipped > 0, "{partner}: {cdc:?}");
        assert!(cdc.echoes_skipped > 0, "{partner}: {cdc:?}");
        if partner == "northwind-outfitters" {
            // With seed 42 the bus reorders one rep's pair of edits and turns one into a gap.
            assert!(cdc.stale_skipped > 0, "{partner}: {cdc:?}");
            assert!(cdc.gaps_reread > 0, "{partner}: {cdc:?}");
        }
        let edits = if partner == "northwind-outfitters" {
            9
        } else {
            3
        };
        assert!(
            cdc.changes_delivered >= edits,
            "{partner}: {edits} rep edits of CRM-owned fields: {cdc:?}"
        );
    }
}

/// The broken example is an engine command (harness/broken/engines/): a consumer without
/// the `EventUuid` dedupe, writing to `SYNCGATE_CRM_OUTBOX`.
#[tokio::test]
async fn the_gate_fails_a_consumer_without_dedupe_naming_the_invariant() {
    let registry = Registry::open(&root().join("contracts")).unwrap();
    let t = registry
        .select(&["northwind-outfitters".into()], &["production".into()])
        .unwrap();
    let bundle = registry.load(&t[0]).unwrap();
    let scenario =
        Scenario::load(&root().join("harness/broken/delivers-duplicate-events.yaml")).unwrap();
    let command = syncgate::verify::engine_cmd::EngineCommand::new(
        scenario
            .engine_cmd
            .clone()
            .expect("the scenario names its engine"),
        &root().join("contracts"),
        &root().join("harness/fixtures"),
    );
    let run = syncgate::verify::engine_cmd::run_scenario(&bundle, &scenario, Seed(42), &command)
        .await
        .unwrap();
    let names: Vec<&str> = run.violations.iter().map(|v| v.invariant).collect();
    assert_eq!(
        names,
        vec!["crm-changes-reach-source"],
        "{:#?}",
        run.violations
    );
    assert!(
        run.violations[0]
            .details
            .iter()
            .any(|d| d.contains("delivered 2 times")),
        "{:#?}",
        run.violations
    );
}
