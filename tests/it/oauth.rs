//! OAuth like an org: simple-salesforce's own client-credentials, username-password and JWT
//! bearer logins against `syncgate mock serve --tls --connected-app FILE`, and forged,
//! expired and wrongly signed assertions, wrong secrets and never-issued refresh tokens
//! refused with Salesforce's errors (`tests/clients/oauth_check.py`). SKIPPED without
//! simple-salesforce, PyJWT and cryptography (a failure when `CI=true`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::served::root;

#[test]
fn simple_salesforce_logins_are_checked_like_an_org() {
    let probe = Command::new("python3")
        .args(["-c", "import simple_salesforce, jwt, cryptography"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        let reason = "python3 cannot import simple_salesforce, jwt and cryptography (pip install simple-salesforce 'pyjwt[crypto]')";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{reason} (CI=true: install it as .ci/run does)");
        }
        eprintln!("SKIPPED oauth: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = root().join("tests/clients/oauth_check.py");
    let prepared = Command::new("python3")
        .arg(&script)
        .arg("prepare")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(prepared.success());
    let ca = dir.path().join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "mock",
            "serve",
            "--tls",
            "--bundle",
            "northwind-outfitters/sandbox",
        ])
        .arg("--connected-app")
        .arg(dir.path().join("app.toml"))
        .arg("--ca-file")
        .arg(&ca)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let out = Command::new("python3")
        .arg(&script)
        .arg("check")
        .arg(dir.path())
        .env("MOCK_URL", &url)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("oauth: all checks passed"), "{text}");
    // Every refusal above is a check that ran: count them.
    assert!(text.matches("\nok   ").count() >= 24, "{text}");
}

#[test]
fn a_bad_connected_app_file_is_bad_input_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.toml");
    std::fs::write(
        &file,
        "client_id = \"x\"\nclient_secret = \"y\"\ncertficate = \"a.crt\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "mock",
            "serve",
            "--bundle",
            "northwind-outfitters/sandbox",
            "--connected-app",
        ])
        .arg(&file)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("app.toml") && err.contains("certficate"),
        "{err}"
    );
    std::fs::write(
        &file,
        "client_id = \"x\"\nclient_secret = \"y\"\ncertificate = \"missing.crt\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "mock",
            "serve",
            "--bundle",
            "northwind-outfitters/sandbox",
            "--connected-app",
        ])
        .arg(&file)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.crt"), "{err}");
}

/// `mock serve --connected-app` with the app `oauth_check.py prepare` wrote into `dir`
/// (a certificate for JWT bearer, its key in `jwt.key`, another key in `other.key`).
fn serve_connected_app(dir: &std::path::Path) -> crate::support::served::Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(["mock", "serve", "--bundle", "northwind-outfitters/sandbox"])
        .arg("--connected-app")
        .arg(dir.join("app.toml"))
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    crate::support::served::Served { child, url }
}

#[test]
fn the_engine_signs_in_with_jwt_bearer_and_a_wrong_key_is_refused() {
    let probe = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        let reason = "python3 cannot import cryptography, which writes the test's key pair (pip install 'pyjwt[crypto]')";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{reason} (CI=true: install it as .ci/run does)");
        }
        eprintln!("SKIPPED the engine's JWT bearer sign-in: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prepared = Command::new("python3")
        .arg(root().join("tests/clients/oauth_check.py"))
        .arg("prepare")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(prepared.success());
    let mock = serve_connected_app(dir.path());
    let sync = |key: &str, state: &str| {
        Command::new(env!("CARGO_BIN_EXE_syncgate"))
            .args(["sync", "--bundle", "northwind-outfitters/sandbox"])
            .args(["--source", "harness/fixtures/default", "--json"])
            .args([
                "--target",
                &mock.url,
                "--client-id",
                "3MVG9mockConnectedApp",
            ])
            .args(["--jwt-username", "integration@partner.example"])
            .arg("--jwt-key")
            .arg(dir.path().join(key))
            .arg("--database-url")
            .arg(format!("sqlite:{}", dir.path().join(state).display()))
            .env_remove("SYNCGATE_CLIENT_SECRET")
            .current_dir(root())
            .output()
            .unwrap()
    };
    let out = sync("jwt.key", "a.sqlite");
    let err = String::from_utf8_lossy(&out.stderr);
    // Exit 1: the default fixtures carry poison records, dead-lettered as they should be.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["created"].as_u64().unwrap() > 0, "{summary}");
    // Signed with a key whose certificate the app does not hold: the org refuses it.
    let out = sync("other.key", "b.sqlite");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!matches!(out.status.code(), Some(0 | 1)), "{err}");
    assert!(err.contains("invalid assertion"), "{err}");
    assert!(
        !err.contains("PRIVATE KEY"),
        "the key must never be printed: {err}"
    );
}
