//! Registry webhooks end to end: made with the real `pact broker` CLI against `registry
//! serve`, fired by publishes and verification results to a receiver on loopback that
//! checks the signature, retried after a 500, logged, and refused to tokens that do not own
//! the pacticipants named — on SQLite and on PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::registry::{call, pact, pact_cli, pact_cmd, publish_body, rt, text, Served, BP, NW};

const SECRET_VAR: &str = "SYNCGATE_TEST_WEBHOOK_SECRET";
const SECRET: &str = "webhook-secret-for-tests-only";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    signature: String,
    event: String,
    delivery: String,
    content_type: String,
    body: Vec<u8>,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the webhook body is not JSON ({e}): {:?}", self.body))
    }
}

/// A webhook receiver on loopback: answers 500 to its first `failures` requests, then 200.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(failures: usize) -> Receiver {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, addr) = std::sync::mpsc::channel();
        let log = seen.clone();
        let thread = std::thread::spawn(move || {
            rt().block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(
                    move |method: axum::http::Method,
                          uri: axum::http::Uri,
                          headers: axum::http::HeaderMap,
                          body: bytes::Bytes| {
                        let log = log.clone();
                        async move {
                            let h = |n: &str| {
                                headers
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_string()
                            };
                            let mut all = log.lock().unwrap();
                            all.push(Seen {
                                method: method.to_string(),
                                path: uri.to_string(),
                                signature: h("x-syncgate-signature"),
                                event: h("x-syncgate-event"),
                                delivery: h("x-syncgate-delivery"),
                                content_type: h("content-type"),
                                body: body.to_vec(),
                            });
                            if all.len() <= failures {
                                axum::http::StatusCode::INTERNAL_SERVER_ERROR
                            } else {
                                axum::http::StatusCode::OK
                            }
                        }
                    },
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr.recv_timeout(Duration::from_secs(10)).unwrap();
        Receiver {
            url: format!("http://{addr}"),
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) until `n` requests arrived, and returns them.
    fn wait_for(&self, n: usize) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} requests, not {n}: {seen:?}",
                seen.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn signature_of(body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `registry serve` on `db` (fresh SQLite when empty) with the webhook secret set and short
/// retry waits.
fn serve(db: &str) -> Served {
    Served::start_with_env(
        db,
        &[
            "--webhook-secret-env",
            SECRET_VAR,
            "--webhook-backoff",
            "50ms",
            "--webhook-attempts",
            "3",
        ],
        &[(SECRET_VAR, SECRET)],
    )
}

fn pg_db(test: &str) -> Option<(crate::support::PgSchema, String)> {
    let pg = rt().block_on(crate::support::postgres(test))?;
    let url = format!(
        "{}?options=-csearch_path%3D{}",
        crate::support::pg_url(),
        pg.schema
    );
    Some((pg, url))
}

/// Runs `pact broker ARGS --broker-base-url URL --broker-token TOKEN`.
fn broker(url: &str, token: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["broker"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--broker-base-url", url, "--broker-token", token]);
    let out = pact_cmd(&all);
    (out.status.success(), text(&out))
}

fn webhooks_of(url: &str, token: &str) -> Vec<Value> {
    let (status, body) = call("GET", &format!("{url}/webhooks"), Some(token), None);
    assert_eq!(status, 200, "{body}");
    body["_embedded"]["webhooks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn executions(url: &str, uuid: &str, token: &str) -> Vec<Value> {
    let (status, body) = call(
        "GET",
        &format!("{url}/webhooks/{uuid}/executions"),
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains(SECRET), "{body}");
    body["executions"].as_array().cloned().unwrap_or_default()
}

/// Waits until the webhook's log holds `n` attempts.
fn wait_for_log(url: &str, uuid: &str, token: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = executions(url, uuid, token);
        if log.len() >= n || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn publish(url: &str, version: &str, description: &str) {
    let (status, body) = call(
        "POST",
        &format!("{url}/contracts/publish"),
        Some("engine-write"),
        Some(publish_body(
            "syncgate-engine",
            version,
            &[pact("syncgate-engine", BP, description)],
        )),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_webhook_made_with_the_pact_cli_fires_on_publish_signed_retried_and_logged() {
    if !pact_cli("webhooks-fire") {
        return;
    }
    fires_on_publish_signed_retried_and_logged("");
    if let Some((pg, url)) = pg_db("webhooks_fire") {
        fires_on_publish_signed_retried_and_logged(&url);
        drop(pg);
    }
}

fn fires_on_publish_signed_retried_and_logged(db: &str) {
    let receiver = Receiver::start(1);
    let s = serve(db);
    let u = &s.url;
    let hook_url = format!("{}/hook/${{pactbroker.consumerName}}", receiver.url);
    let template = r#"{"pact": "${pactbroker.pactUrl}", "consumer": "${pactbroker.consumerName}", "provider": "${pactbroker.providerName}", "version": "${pactbroker.consumerVersionNumber}", "branch": "${pactbroker.consumerVersionBranch}", "event": "${pactbroker.eventName}", "status": "${pactbroker.githubVerificationStatus}"}"#;
    let (ok, out) = broker(
        u,
        "engine-write",
        &[
            "create-webhook",
            &hook_url,
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            template,
            "--consumer",
            "syncgate-engine",
            "--provider",
            BP,
            "--description",
            "verify bluepeak",
            "--contract-content-changed",
        ],
    );
    assert!(ok, "{out}");
    let hooks = webhooks_of(u, "engine-write");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let uuid = hooks[0]["uuid"].as_str().unwrap().to_string();
    assert_eq!(hooks[0]["provider"]["name"], BP);
    assert_eq!(hooks[0]["consumer"]["name"], "syncgate-engine");
    assert_eq!(
        hooks[0]["events"],
        json!([{ "name": "contract_content_changed" }])
    );

    // The first answer is a 500: the delivery is retried and the second attempt lands.
    publish(u, "1.0.0", "first");
    let seen = receiver.wait_for(2);
    for r in &seen {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hook/syncgate-engine");
        assert_eq!(r.signature, signature_of(&r.body), "signature of {r:?}");
        assert_eq!(r.event, "contract_content_changed");
        assert_eq!(r.content_type, "application/json");
    }
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(
        seen[0].delivery, seen[1].delivery,
        "one delivery, two attempts"
    );
    assert_eq!(
        seen[0].json(),
        json!({
            "pact": format!("{u}/pacts/provider/{BP}/consumer/syncgate-engine/version/1.0.0"),
            "consumer": "syncgate-engine",
            "provider": BP,
            "version": "1.0.0",
            "branch": "main",
            "event": "contract_content_changed",
            "status": "pending",
        })
    );
    let log = wait_for_log(u, &uuid, "engine-write", 2);
    let summary: Vec<(u64, &str, Option<u64>)> = log
        .iter()
        .map(|e| {
            (
                e["attempt"].as_u64().unwrap(),
                e["status"].as_str().unwrap(),
                e["responseCode"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(1, "failure", Some(500)), (2, "success", Some(200))],
        "{log:?}"
    );
    assert_eq!(log[0]["delivery"], log[1]["delivery"]);
    assert_eq!(log[0]["event"], "contract_content_changed");

    // The same content again fires nothing; new content fires once more.
    publish(u, "1.0.0", "first");
    publish(u, "1.1.0", "second");
    let seen = receiver.wait_for(3);
    assert_eq!(seen[2].json()["version"], "1.1.0", "{:?}", seen[2]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.seen().len(), 3, "{:?}", receiver.seen());

    // The webhook as stored holds no secret, and its definition round-trips.
    let (status, got) = call(
        "GET",
        &format!("{u}/webhooks/{uuid}"),
        Some("bluepeak-read"),
        None,
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["request"]["url"], hook_url.as_str());
    assert!(!got.to_string().contains(SECRET));

    // create-or-update-webhook replaces it under its UUID (and keeps the log); BluePeak's
    // token may not, since the webhook as it stands names the engine too.
    let replace = |token: &str| {
        broker(
            u,
            token,
            &[
                "create-or-update-webhook",
                &format!("{}/verified", receiver.url),
                "--uuid",
                &uuid,
                "-X",
                "POST",
                "-d",
                "v=${pactbroker.providerVersionNumber} ${pactbroker.githubVerificationStatus} ${pactbroker.verificationResultUrl}",
                "--provider",
                BP,
                "--description",
                "verification results",
                "--provider-verification-published",
            ],
        )
    };
    let (ok, out) = replace("bluepeak-write");
    assert!(
        !ok && out.contains("may not write `syncgate-engine`"),
        "{out}"
    );
    let (ok, out) = replace("engine-write");
    assert!(ok, "{out}");
    let (_, got) = call(
        "GET",
        &format!("{u}/webhooks/{uuid}"),
        Some("bluepeak-read"),
        None,
    );
    assert_eq!(got["description"], "verification results", "{got}");
    assert!(got.get("consumer").is_none(), "{got}");
    // Two attempts for 1.0.0, one for 1.1.0.
    assert_eq!(executions(u, &uuid, "bluepeak-read").len(), 3);

    // A verification result fires provider_verification_published with its values.
    let (status, body) = call(
        "POST",
        &format!("{u}/pacts/provider/{BP}/consumer/syncgate-engine/verification-results"),
        Some("bluepeak-write"),
        Some(json!({ "success": true, "providerApplicationVersion": "7.0.0" })),
    );
    assert_eq!(status, 201, "{body}");
    let seen = receiver.wait_for(4);
    let last = &seen[3];
    assert_eq!(last.path, "/verified");
    assert_eq!(last.event, "provider_verification_published");
    assert_eq!(last.signature, signature_of(&last.body));
    let result_url = body["_links"]["self"]["href"].as_str().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&last.body),
        format!("v=7.0.0 success {result_url}")
    );
    // The result URL a webhook carries resolves.
    let (status, got) = call("GET", result_url, Some("bluepeak-read"), None);
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["providerApplicationVersion"], "7.0.0", "{got}");

    // test-webhook sends one attempt now; delete-webhook removes it and its log.
    let (ok, out) = broker(u, "bluepeak-write", &["test-webhook", "--uuid", &uuid]);
    assert!(ok, "{out}");
    receiver.wait_for(5);
    let (ok, out) = broker(u, "bluepeak-write", &["delete-webhook", "--uuid", &uuid]);
    assert!(ok, "{out}");
    let (status, _) = call(
        "GET",
        &format!("{u}/webhooks/{uuid}"),
        Some("bluepeak-read"),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn webhooks_are_refused_to_tokens_that_do_not_own_what_they_name() {
    if !pact_cli("webhooks-scopes") {
        return;
    }
    webhook_scopes_hold("");
    if let Some((pg, url)) = pg_db("webhooks_scopes") {
        webhook_scopes_hold(&url);
        drop(pg);
    }
}

fn webhook_scopes_hold(db: &str) {
    let s = serve(db);
    let u = &s.url;
    let create = |token: &str, consumer: Option<&str>, provider: Option<&str>| {
        let mut args = vec![
            "create-webhook",
            "https://ci.example/hook",
            "-X",
            "POST",
            "-d",
            "{}",
            "--contract-requiring-verification-published",
        ];
        if let Some(c) = consumer {
            args.extend(["--consumer", c]);
        }
        if let Some(p) = provider {
            args.extend(["--provider", p]);
        }
        broker(u, token, &args)
    };

    // Northwind's token may not make a webhook on BluePeak's pacts: 403, nothing stored.
    let (ok, out) = create("northwind-write", None, Some(BP));
    assert!(!ok, "{out}");
    assert!(out.contains("403") || out.contains("may not"), "{out}");
    let (status, body) = call(
        "POST",
        &format!("{u}/webhooks"),
        Some("northwind-write"),
        Some(json!({
            "provider": { "name": BP },
            "events": [{ "name": "contract_published" }],
            "request": { "method": "POST", "url": "https://ci.example/hook" }
        })),
    );
    assert_eq!(status, 403, "{body}");
    assert!(webhooks_of(u, "admin").is_empty());

    // Its own provider, yes; a webhook for everything needs the admin token.
    let (ok, out) = create("northwind-write", None, Some(NW));
    assert!(ok, "{out}");
    let (ok, out) = create("engine-write", None, None);
    assert!(!ok, "{out}");
    let (ok, out) = create("admin", None, None);
    assert!(ok, "{out}");

    // Readers see the webhooks of their own partner only.
    let names = |token: &str| -> Vec<Value> {
        webhooks_of(u, token)
            .iter()
            .map(|w| w["provider"]["name"].clone())
            .collect()
    };
    assert_eq!(names("northwind-sandbox-read"), [json!(NW)]);
    assert!(names("bluepeak-read").is_empty());
    assert_eq!(names("admin").len(), 2);
    let nw_uuid = webhooks_of(u, "northwind-write")[0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call(
        "DELETE",
        &format!("{u}/webhooks/{nw_uuid}"),
        Some("bluepeak-write"),
        None,
    );
    assert_eq!(status, 403);
    let (status, _) = call(
        "GET",
        &format!("{u}/webhooks/{nw_uuid}/executions"),
        Some("bluepeak-read"),
        None,
    );
    assert_eq!(status, 403);

    // Definitions that would put a credential in the store, or deliver off http(s), are refused.
    let bad = |request: Value| {
        let (status, body) = call(
            "POST",
            &format!("{u}/webhooks/provider/{NW}"),
            Some("northwind-write"),
            Some(json!({ "events": [{ "name": "contract_published" }], "request": request })),
        );
        assert_eq!(status, 400, "{body}");
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let m = bad(
        json!({ "method": "POST", "url": "https://ci.example/", "username": "u", "password": "p" }),
    );
    assert!(m.contains("request.username/password"), "{m}");
    let m = bad(
        json!({ "method": "POST", "url": "https://ci.example/", "headers": { "Authorization": "Bearer x" } }),
    );
    assert!(m.contains("request.headers.Authorization"), "{m}");
    let m = bad(json!({ "method": "POST", "url": "file:///etc/passwd" }));
    assert!(m.contains("only http(s)"), "{m}");
    let m = bad(json!({ "method": "POST", "url": "https://ci.example/${pactbroker.secretThing}" }));
    assert!(m.contains("pactbroker.secretThing"), "{m}");
    let m = bad(json!({ "method": "POST", "url": "https://${pactbroker.consumerName}.example/" }));
    assert!(m.contains("host"), "{m}");
    let (status, body) = call(
        "POST",
        &format!("{u}/webhooks"),
        Some("admin"),
        Some(
            json!({ "events": [{ "name": "nope" }], "request": { "url": "https://ci.example/" } }),
        ),
    );
    assert_eq!(status, 400);
    assert!(body.to_string().contains("events[0].name"), "{body}");
}

#[test]
fn a_registry_without_a_webhook_secret_refuses_webhooks_and_an_empty_secret_is_bad_input() {
    let s = Served::start(&[]);
    let (status, body) = call(
        "POST",
        &format!("{}/webhooks", s.url),
        Some("admin"),
        Some(json!({
            "events": [{ "name": "contract_published" }],
            "request": { "method": "POST", "url": "https://ci.example/hook" }
        })),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("--webhook-secret-env"), "{body}");

    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\nname = \"a\"\ntoken = \"a\"\npartner = \"*\"\naccess = \"admin\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(["registry", "serve", "--port", "0", "--tokens"])
        .arg(&tokens)
        .args(["--webhook-secret-env", "SYNCGATE_TEST_UNSET_SECRET"])
        .env_remove("SYNCGATE_TEST_UNSET_SECRET")
        .env("SYNCGATE_DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("SYNCGATE_TEST_UNSET_SECRET is unset or empty"),
        "{}",
        text(&out)
    );
}

#[test]
fn with_two_registry_processes_on_one_database_the_one_that_took_the_publish_delivers() {
    let Some((pg, db)) = pg_db("webhooks_two_processes") else {
        return;
    };
    let receiver = Receiver::start(0);
    let a = serve(&db);
    let b = serve(&db);
    let (status, body) = call(
        "POST",
        &format!("{}/webhooks/provider/{BP}/consumer/syncgate-engine", a.url),
        Some("engine-write"),
        Some(json!({
            "description": "once",
            "events": [{ "name": "contract_published" }],
            "request": { "method": "POST", "url": format!("{}/once", receiver.url), "body": { "v": "${pactbroker.consumerVersionNumber}" } }
        })),
    );
    assert_eq!(status, 201, "{body}");
    let uuid = body["uuid"].as_str().unwrap().to_string();
    publish(&b.url, "3.0.0", "shared");
    let seen = receiver.wait_for(1);
    assert_eq!(seen[0].json(), json!({ "v": "3.0.0" }));
    assert_eq!(seen[0].signature, signature_of(&seen[0].body));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.seen().len(), 1, "delivered once, by one process");
    // Either process shows the log.
    let log = wait_for_log(&a.url, &uuid, "engine-write", 1);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], "success");
    drop((a, b));
    drop(pg);
}

#[test]
fn a_pact_requiring_verification_is_announced_once_per_provider_version_that_has_not_verified_it() {
    requiring_verification_is_announced("");
    if let Some((pg, url)) = pg_db("webhooks_requiring_verification") {
        requiring_verification_is_announced(&url);
        drop(pg);
    }
}

fn requiring_verification_is_announced(db: &str) {
    let receiver = Receiver::start(0);
    let s = serve(db);
    let u = &s.url;
    // The provider's main branch is at 5.0.0; 4.0.0 (another branch) is deployed.
    for (branch, version) in [("main", "5.0.0"), ("release-4", "4.0.0")] {
        let (status, body) = call(
            "PUT",
            &format!("{u}/pacticipants/{BP}/branches/{branch}/versions/{version}"),
            Some("bluepeak-write"),
            Some(json!({})),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = call(
        "POST",
        &format!("{u}/pacticipants/{BP}/versions/4.0.0/deployed-versions/environment/production"),
        Some("bluepeak-write"),
        Some(json!({})),
    );
    assert!(status == 200 || status == 201, "{status} {body}");
    let (status, body) = call(
        "POST",
        &format!("{u}/webhooks/provider/{BP}"),
        Some("bluepeak-write"),
        Some(json!({
            "events": [{ "name": "contract_requiring_verification_published" }],
            "request": {
                "method": "POST",
                "url": format!("{}/verify", receiver.url),
                "body": {
                    "pact": "${pactbroker.pactUrl}",
                    "provider_version": "${pactbroker.providerVersionNumber}",
                    "provider_branch": "${pactbroker.providerVersionBranch}"
                }
            }
        })),
    );
    assert_eq!(status, 201, "{body}");
    // A disabled webhook never fires (the exact counts below would show it).
    let (status, body) = call(
        "POST",
        &format!("{u}/webhooks/provider/{BP}"),
        Some("bluepeak-write"),
        Some(json!({
            "enabled": false,
            "events": [{ "name": "contract_published" }],
            "request": { "method": "POST", "url": format!("{}/disabled", receiver.url) }
        })),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["enabled"], false, "{body}");

    let announced = |seen: &[Seen]| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = seen
            .iter()
            .map(|r| {
                let b = r.json();
                (
                    b["provider_version"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    b["provider_branch"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    publish(u, "1.0.0", "needs verifying");
    let seen = receiver.wait_for(2);
    assert_eq!(
        announced(&seen),
        [
            ("4.0.0".to_string(), "release-4".to_string()),
            ("5.0.0".to_string(), "main".to_string())
        ]
    );
    assert!(seen
        .iter()
        .all(|r| r.event == "contract_requiring_verification_published"));
    assert!(
        seen[0].json()["pact"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/version/1.0.0"),
        "{:?}",
        seen[0]
    );

    // The main branch verifies it; the same content under a new consumer version then needs
    // only the deployed version.
    let (status, body) = call(
        "POST",
        &format!("{u}/pacts/provider/{BP}/consumer/syncgate-engine/verification-results"),
        Some("bluepeak-write"),
        Some(json!({ "success": true, "providerApplicationVersion": "5.0.0" })),
    );
    assert_eq!(status, 201, "{body}");
    publish(u, "1.0.1", "needs verifying");
    let seen = receiver.wait_for(3);
    assert_eq!(seen[2].json()["provider_version"], "4.0.0", "{:?}", seen[2]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.seen().len(), 3, "{:?}", receiver.seen());
}

#[test]
fn a_delivery_that_keeps_failing_stops_after_the_configured_attempts() {
    let receiver = Receiver::start(usize::MAX);
    // A port nobody listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let s = serve("");
    let u = &s.url;
    let mut uuids = Vec::new();
    for url in [
        format!("{}/always-500", receiver.url),
        format!("http://{closed}/nobody?key=query-value-never-logged"),
    ] {
        let (status, body) = call(
            "POST",
            &format!("{u}/webhooks/provider/{BP}"),
            Some("bluepeak-write"),
            Some(json!({
                "events": [{ "name": "contract_published" }],
                "request": { "method": "POST", "url": url, "body": "x" }
            })),
        );
        assert_eq!(status, 201, "{body}");
        uuids.push(body["uuid"].as_str().unwrap().to_string());
    }
    publish(u, "1.0.0", "failing");
    receiver.wait_for(3);
    let failing = wait_for_log(u, &uuids[0], "bluepeak-read", 3);
    let unreachable = wait_for_log(u, &uuids[1], "bluepeak-read", 3);
    // 50 ms then 100 ms between attempts: a fourth would have come by now.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(receiver.seen().len(), 3, "--webhook-attempts 3");
    assert_eq!(executions(u, &uuids[0], "bluepeak-read").len(), 3);
    assert_eq!(executions(u, &uuids[1], "bluepeak-read").len(), 3);
    for (n, e) in failing.iter().enumerate() {
        assert_eq!(e["attempt"], n + 1, "{e}");
        assert_eq!(e["status"], "failure", "{e}");
        assert_eq!(e["responseCode"], 500, "{e}");
    }
    for e in &unreachable {
        assert_eq!(e["status"], "error", "{e}");
        assert!(e["responseCode"].is_null(), "{e}");
        let error = e["error"].as_str().unwrap_or_default();
        assert!(
            !error.is_empty() && !error.contains("query-value-never-logged"),
            "{e}"
        );
    }
}
