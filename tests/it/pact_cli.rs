//! Independent Pact verification: the standard `pact verifier` (pact-python-cli) against
//! `syncgate mock serve`, with the org's state-change URL, verifies every interaction of
//! every example tenant, as the gate does in process. Without the CLI the test is SKIPPED
//! (a failure when `CI=true`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::served::root;

const CLIENT_ID: &str = "pact-cli";
const CLIENT_SECRET: &str = "pact-cli-secret";

struct Served {
    child: Child,
    host: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(tenant: &str) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(["mock", "serve", "--bundle", tenant])
        .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start syncgate mock serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let host = line
        .trim()
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("mock serve printed {line:?}"))
        .to_string();
    Served { child, host }
}

/// One HTTP/1.0 request; returns the status line, headers and body.
fn http(host: &str, method: &str, path: &str, content_type: &str, body: &str) -> (String, String) {
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn token(host: &str) -> String {
    let (head, body) = http(
        host,
        "POST",
        "/services/oauth2/token",
        "application/x-www-form-urlencoded",
        &format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
        ),
    );
    assert!(head.contains(" 200 "), "{head}\n{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

fn pact_cli() -> bool {
    let found = Command::new("pact")
        .args(["verifier", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let reason =
            "the Pact CLI (`pact`) is not on PATH; install it with `pip install pact-python-cli`";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{reason} (CI=true: this test must run in CI)");
        }
        eprintln!("SKIPPED pact_cli: {reason}");
    }
    found
}

/// Runs `pact verifier` on `pact` against the served org; returns the JSON report.
fn verify(served: &Served, pact: &Path, teardown: bool, report: &Path, token: &str) -> Value {
    let (host, port) = served.host.split_once(':').unwrap();
    let mut cmd = Command::new("pact");
    cmd.arg("verifier")
        .arg("--file")
        .arg(pact)
        .args(["--hostname", host, "--port", port])
        .arg("--state-change-url")
        .arg(format!("http://{}/__syncgate/provider-states", served.host))
        .arg("--header")
        .arg(format!("Authorization=Bearer {token}"))
        .arg("--json")
        .arg(report)
        .arg("--no-colour")
        .env("PACT_DO_NOT_TRACK", "true");
    if teardown {
        cmd.arg("--state-change-teardown");
    }
    let out = cmd.output().expect("run pact verifier");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "pact verifier failed on {}:\n{text}",
        pact.display()
    );
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

fn tenants() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for partner in ["bluepeak-logistics", "northwind-outfitters"] {
        for tenant in ["sandbox", "production"] {
            let dir = root()
                .join("contracts")
                .join(partner)
                .join(tenant)
                .join("pacts");
            let file = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "json"))
                .unwrap_or_else(|| panic!("no pact in {}", dir.display()));
            out.push((format!("{partner}/{tenant}"), file));
        }
    }
    out
}

#[test]
fn the_pact_cli_verifies_every_interaction_of_every_tenant_against_mock_serve() {
    if !pact_cli() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (n, (tenant, file)) in tenants().into_iter().enumerate() {
        let pact: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let expected = pact["interactions"].as_array().unwrap().len();
        assert!(expected >= 20, "{tenant}: {expected} interactions");
        // Every other tenant: the interactions in reverse order and no teardown calls, so
        // neither the order nor the verifier's teardown option decides the outcome.
        let reversed = n % 2 == 1;
        let file = if reversed {
            let mut p = pact.clone();
            p["interactions"].as_array_mut().unwrap().reverse();
            let path = dir.path().join(format!("reversed-{n}.json"));
            std::fs::write(&path, p.to_string()).unwrap();
            path
        } else {
            file
        };
        let served = serve(&tenant);
        let token = token(&served.host);
        let report = dir.path().join(format!("report-{n}.json"));
        let report = verify(&served, &file, !reversed, &report, &token);
        let interactions = report["interactionResults"].as_array().unwrap();
        assert_eq!(interactions.len(), expected, "{tenant}: {report}");
        let failed: Vec<&Value> = interactions
            .iter()
            .filter(|i| i["result"] != "OK")
            .collect();
        assert!(
            failed.is_empty(),
            "{tenant}: failed interactions: {failed:#?}"
        );
        assert_eq!(report["result"], true, "{tenant}: {report}");
        // The state-change endpoint refuses what it does not know, naming the states it knows.
        let (head, body) = http(
            &served.host,
            "POST",
            "/__syncgate/provider-states",
            "application/json",
            r#"{"state":"a unicorn exists","action":"setup"}"#,
        );
        assert!(head.contains(" 400 "), "{head}");
        assert!(
            body.contains("a unicorn exists") && body.contains("exists`"),
            "{body}"
        );
    }
}

/// The gate against a "real" provider URL (here `mock serve`, standing in for a sandbox)
/// sets provider states through the team's state-change service, as docs/mock.md tells a
/// team to run one for its sandbox; without the service the stateful interactions fail.
#[test]
fn the_gate_sets_provider_states_on_a_provider_url_through_a_state_change_service() {
    let served = serve("bluepeak-logistics/sandbox");
    let token = token(&served.host);
    let gate = |states_url: Option<String>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_syncgate"));
        cmd.args([
            "gate",
            "--partner",
            "bluepeak-logistics",
            "--tenant",
            "sandbox",
            "--scenario",
            "baseline",
            "--database-url",
            "sqlite::memory:",
            "--provider-url",
        ])
        .arg(format!("http://{}", served.host))
        .env("SYNCGATE_PROVIDER_TOKEN", &token)
        .env_remove("SYNCGATE_PROVIDER_STATES_URL")
        .current_dir(root());
        if let Some(u) = states_url {
            cmd.env("SYNCGATE_PROVIDER_STATES_URL", u);
        }
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let with = gate(Some(format!(
        "http://{}/__syncgate/provider-states",
        served.host
    )));
    let line = with
        .lines()
        .find(|l| l.contains("pact-verification"))
        .unwrap_or_else(|| panic!("{with}"));
    assert!(line.contains("23/23 interactions"), "{with}");
    assert!(line.trim_start().starts_with("ok"), "{with}");
    let without = gate(None);
    let line = without
        .lines()
        .find(|l| l.contains("pact-verification"))
        .unwrap_or_else(|| panic!("{without}"));
    assert!(!line.trim_start().starts_with("ok"), "{without}");
}
