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
