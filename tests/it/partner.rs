//! Partner mode over real HTTP: a bundle's Pact interactions as a stateful stub driven by
//! provider states, scenario faults in front, and signed webhooks with seeded duplicates.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use syncgate::contract::{Bundle, Registry};
use syncgate::mock::partner::{self, PartnerMock};
use syncgate::sim::{Clock, Scenario, Seed, Timestamp};

fn bundle() -> Bundle {
    let registry =
        Registry::open(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts")).unwrap();
    let t = registry
        .select(&["northwind-outfitters".into()], &["sandbox".into()])
        .unwrap();
    registry.load(&t[0]).unwrap()
}

fn clock() -> Clock {
    Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap())
}

const UPSERT: &str = "/services/data/v62.0/composite/sobjects/Account/NW_Customer_Id__c";

#[tokio::test]
async fn provider_states_choose_the_answer() {
    let stub = PartnerMock::new(&bundle(), None, Seed(1), clock());
    let (addr, _stop) = partner::spawn(stub.clone(), 0).await.unwrap();
    let http = syncgate::http::client();
    let base = format!("http://{addr}");
    let limits = http
        .get(format!("{base}/services/data/v62.0/limits"))
        .send()
        .await
        .unwrap();
    assert_eq!(limits.status(), 200);
    let body: Value = limits.json().await.unwrap();
    assert!(body["DailyApiRequests"]["Max"].is_number(), "{body}");

    // The token interaction needs its provider state.
    let token = http
        .post(format!("{base}/services/oauth2/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 500);

    let set = |state: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.post(format!("{base}/__syncgate/provider-states"))
                .json(&json!({"state": state, "action": "setup"}))
                .send()
                .await
                .unwrap()
        }
    };
    set("the org is rate limiting").await;
    let r = http
        .patch(format!("{base}{UPSERT}"))
        .json(&json!({"allOrNone": false, "records": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    stub.set_states(vec![]);
    let r = http
        .patch(format!("{base}{UPSERT}"))
        .json(&json!({"allOrNone": false, "records": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let journal = stub.journal();
    assert_eq!(journal.len(), 4);
    assert_eq!(journal[2]["status"], 429);
}

#[tokio::test]
async fn scenario_faults_come_first() {
    let scenario = Scenario::from_yaml(
        std::path::Path::new("s.yaml"),
        "purpose: p\nfaults:\n  - name: down\n    match: { method: GET }\n    calls: { times: 1 }\n    respond: server_unavailable\n",
    )
    .unwrap();
    let stub = PartnerMock::new(&bundle(), Some(&scenario), Seed(1), clock());
    let (addr, _stop) = partner::spawn(stub.clone(), 0).await.unwrap();
    let url = format!("http://{addr}/services/data/v62.0/limits");
    let http = syncgate::http::client();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 503);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(stub.journal()[0]["fault"], "down: server_unavailable");
}

#[tokio::test]
async fn webhooks_are_signed_and_duplicated_from_the_seed() {
    // A receiver that records what it gets.
    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;
    let seen: Seen = Arc::default();
    let app = axum::Router::new().fallback({
        let seen = seen.clone();
        move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                seen.lock().unwrap().push((
                    h("x-syncgate-timestamp"),
                    h("x-syncgate-signature"),
                    body,
                ));
                "ok"
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let scenario = Scenario::from_yaml(
        std::path::Path::new("s.yaml"),
        "purpose: p\nevents: { duplicate: 1.0 }\n",
    )
    .unwrap();
    let stub = PartnerMock::new(&bundle(), Some(&scenario), Seed(1), clock());
    let (addr, _stop) = partner::spawn(stub, 0).await.unwrap();
    let resp: Value = syncgate::http::client()
        .post(format!("http://{addr}/__syncgate/webhooks"))
        .json(&json!({"url": format!("http://{receiver}/hook"), "secret": "whsec", "events": [{"id": "evt-1"}, {"id": "evt-2"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["deliveries"].as_array().unwrap().len(), 4, "{resp}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].2, seen[1].2, "each event is delivered twice");
    for (ts, signature, body) in &seen {
        assert_eq!(ts, "1767600000");
        let ts: i64 = ts.parse().unwrap();
        assert_eq!(signature, &partner::sign("whsec", ts, body));
    }
}
