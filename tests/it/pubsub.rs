//! Change events over Salesforce's Pub/Sub API (gRPC) on the mock org:
//!
//! - an independent client (`tests/clients/pubsub_client.py`: Python `grpcio` with stubs
//!   generated at run time from `proto/pubsub_api.proto`, `fastavro` for the payloads) reads
//!   `syncgate mock serve`'s change events over plain HTTP/2 and over TLS, checks the header
//!   fields, resumes from a replay ID and uses flow control;
//! - the engine's consumer reads the same API in process: echoes skipped, the replay ID
//!   stored and resumed from, an expired one re-synced.
//!
//! A missing Python package SKIPS the client test with the reason printed, except when
//! `CI=true`: CI installs them (`.ci/run`), so a missing one there is a failure.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use syncgate::contract::{Bundle, Registry};
use syncgate::engine::cdc::{CdcConfig, CdcConsumer, ChangeVia, MemorySink, PubSubStream};
use syncgate::engine::client::{Credentials, SalesforceClient, Secret};
use syncgate::mock::{self, ClientCredentials, MockConfig, MockOrg, RunningMock};
use syncgate::sim::{Clock, Scenario, Seed, Timestamp};
use syncgate::store::{CheckpointStore, MemoryStore};

const CLIENT_ID: &str = "pubsub-client";
const CLIENT_SECRET: &str = "pubsub-client-secret";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (or, in CI, fails) when a tool is missing.
fn unavailable(what: &str, reason: &str) {
    let msg = format!("{what}: SKIPPED: {reason}");
    if in_ci() {
        panic!("{msg} (CI=true: install it as .ci/run does)");
    }
    eprintln!("{msg}");
}

struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `syncgate mock serve` on the northwind sandbox, over TLS with its CA written to `ca`.
fn serve(ca: Option<&std::path::Path>) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_syncgate"));
    cmd.args(["mock", "serve", "--bundle", "northwind-outfitters/sandbox"])
        .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(ca) = ca {
        cmd.arg("--tls").arg("--ca-file").arg(ca);
    }
    let mut child = cmd.spawn().expect("start syncgate mock serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("mock serve printed {line:?}"))
        .to_string();
    Served { child, url }
}

fn python_client(tls: bool) {
    let probe = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, fastavro, requests"])
        .output();
    match probe {
        Err(e) => return unavailable("Pub/Sub client", &format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => {
            return unavailable(
                "Pub/Sub client",
                "python3 cannot import grpc, grpc_tools, fastavro and requests (pip install grpcio grpcio-tools fastavro requests)",
            )
        }
        Ok(_) => {}
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let served = serve(tls.then_some(ca.as_path()));
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/clients/pubsub_client.py"))
        .env("MOCK_URL", &served.url)
        .env("MOCK_CLIENT_ID", CLIENT_ID)
        .env("MOCK_CLIENT_SECRET", CLIENT_SECRET);
    if tls {
        cmd.env("MOCK_CA", &ca);
    }
    let out = cmd.output().expect("run the Pub/Sub client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the Pub/Sub client failed:\n{text}");
    assert!(text.contains("pubsub: all checks passed"), "{text}");
}

#[test]
fn an_independent_grpc_client_reads_resumes_and_flow_controls_the_change_events() {
    python_client(false);
}

#[test]
fn an_independent_grpc_client_reads_the_change_events_over_tls() {
    python_client(true);
}

// --- The engine's consumer over the same API, in process -------------------------------

const ENGINE: &str = "syncgate";
const EXT: &str = "NW_Customer_Id__c";
const MANAGER: &str = "Account_Manager__c";

fn bundle() -> Bundle {
    let registry = Registry::open(&root().join("contracts")).unwrap();
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
    Org {
        running: mock::spawn(org, 0).await.unwrap(),
        clock,
        bundle: bundle(),
    }
}

impl Org {
    fn client(&self, name: &str) -> SalesforceClient {
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

    async fn upsert(&self, name: &str, ext: &str, extra: Value) {
        let mut record = json!({EXT: ext, "Name": format!("Account {ext}")});
        for (k, v) in extra.as_object().unwrap() {
            record[k] = v.clone();
        }
        let mut c = self.client(name);
        c.authenticate().await.unwrap();
        let reply = c
            .upsert_collection("Account", EXT, &[record])
            .await
            .unwrap();
        assert_eq!(reply.body[0]["success"], true, "{reply:?}");
    }

    /// Drains the consumer over the Pub/Sub API into `sink`.
    async fn drain(
        &self,
        store: &MemoryStore,
        sink: &MemorySink,
    ) -> syncgate::engine::cdc::CdcReport {
        let mut config = CdcConfig::new("http://unused.invalid/__syncgate/events", ENGINE);
        config.pubsub_url = Some(self.running.base_url());
        let stream = PubSubStream::new(
            &config,
            &self.running.base_url(),
            self.clock.clone(),
            Seed(11),
            None,
        );
        CdcConsumer::new(
            &self.bundle,
            config,
            self.clock.clone(),
            Seed(11),
            self.client(ENGINE),
            store,
            store,
            sink,
        )
        .with_stream(Box::new(stream))
        .drain()
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn the_engines_consumer_reads_over_pubsub_skips_echoes_and_resumes() {
    let org = start("purpose: p\nevents: { duplicate: 1.0 }\n").await;
    org.upsert(ENGINE, "P-1", json!({})).await;
    org.upsert("crm-ui", "P-1", json!({MANAGER: "Priya Nair"}))
        .await;
    let store = MemoryStore::new();
    let sink = MemorySink::new();
    let report = org.drain(&store, &sink).await;
    assert_eq!(report.changes_delivered, 1, "{report:?}");
    assert_eq!(report.echoes_skipped, 1, "{report:?}");
    assert_eq!(report.duplicates_skipped, 2, "{report:?}");
    let change = &sink.delivered()[0];
    assert_eq!(
        (
            change.source_id.as_str(),
            change.field.as_str(),
            &change.value,
            change.via
        ),
        ("P-1", MANAGER, &json!("Priya Nair"), ChangeVia::Event)
    );
    // The replay ID is stored as the API gave it (8 bytes, hex), and a restart resumes there.
    let scope = "cdc|northwind-outfitters/sandbox|/data/ChangeEvents";
    let stored = store.checkpoint(scope).await.unwrap().unwrap();
    assert_eq!(stored.len(), 16, "{stored}");
    let again = org.drain(&store, &sink).await;
    assert_eq!(
        (again.events_seen, again.changes_delivered),
        (0, 0),
        "{again:?}"
    );
    org.upsert("crm-ui", "P-1", json!({MANAGER: "Jonas Berg"}))
        .await;
    let later = org.drain(&store, &sink).await;
    assert_eq!(later.changes_delivered, 1, "{later:?}");
    assert_eq!(sink.delivered().last().unwrap().value, json!("Jonas Berg"));
}

#[tokio::test]
async fn an_expired_replay_id_over_pubsub_resyncs_and_resumes_from_the_present() {
    let org = start("purpose: p\n").await;
    org.upsert(ENGINE, "X-1", json!({})).await;
    let store = MemoryStore::new();
    let sink = MemorySink::new();
    org.drain(&store, &sink).await;
    org.upsert("crm-ui", "X-1", json!({MANAGER: "Priya Nair"}))
        .await;
    // Away for longer than the bus keeps events.
    org.clock.advance(std::time::Duration::from_secs(73 * 3600));
    let report = org.drain(&store, &sink).await;
    assert_eq!(report.resyncs, 3, "{report:?}");
    assert!(sink.delivered().iter().all(|c| c.via == ChangeVia::Resync));
    org.upsert("crm-ui", "X-1", json!({MANAGER: "Jonas Berg"}))
        .await;
    let report = org.drain(&store, &sink).await;
    assert_eq!(report.resyncs, 0, "{report:?}");
    let last = sink.delivered().pop().unwrap();
    assert_eq!(
        (last.via, last.value),
        (ChangeVia::Event, json!("Jonas Berg"))
    );
}
