//! Off-the-shelf Salesforce clients against `syncgate mock serve --tls`: simple-salesforce
//! (Python) and jsforce (Node) run the scripts under `tests/clients/` unmodified, with only
//! the instance URL and a token from the mock's token endpoint.
//!
//! A client that is not installed is SKIPPED with the reason printed, except when `CI=true`:
//! CI installs both (`.ci/run`), so a missing one there is a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const CLIENT_ID: &str = "real-clients";
const CLIENT_SECRET: &str = "real-clients-secret";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (or, in CI, fails) when a client is missing.
fn unavailable(what: &str, reason: &str) {
    let msg = format!("{what}: SKIPPED: {reason}");
    if in_ci() {
        panic!("{msg} (CI=true: install it as .ci/run does)");
    }
    eprintln!("{msg}");
}

/// The northwind sandbox bundle plus a validation rule on Account.Phone and a label on
/// Contact.Title, in a temp dir.
fn bundle_with_rule(dir: &Path) -> PathBuf {
    let src = root().join("contracts/northwind-outfitters");
    std::fs::copy(src.join("base.toml"), dir.join("base.toml")).unwrap();
    let tenant = dir.join("sandbox");
    std::fs::create_dir_all(&tenant).unwrap();
    let mut text = std::fs::read_to_string(src.join("sandbox/bundle.toml")).unwrap();
    text.push_str(
        "\n[[objects.Account.validation_rules]]\nname = \"phone_digits\"\nfield = \"Phone\"\nregex = '\\+?[0-9 ()-]{7,}'\nmessage = \"Phone must be digits\"\n\n[objects.Contact.fields]\nTitle = { type = \"string\", max_length = 128, from = \"title\", label = \"Job Title\" }\n",
    );
    std::fs::write(tenant.join("bundle.toml"), text).unwrap();
    tenant
}

struct Served {
    child: Child,
    url: String,
    ca: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Served {
    let bundle = bundle_with_rule(dir);
    let ca = dir.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(["mock", "serve", "--tls", "--bundle"])
        .arg(&bundle)
        .arg("--ca-file")
        .arg(&ca)
        .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start syncgate mock serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let url = parts.next().expect("base URL").to_string();
    let printed_ca = PathBuf::from(parts.next().expect("CA path"));
    assert!(url.starts_with("https://localhost:"), "{line}");
    assert_eq!(printed_ca, ca);
    Served { child, url, ca }
}

fn run(mut cmd: Command, served: &Served, ca_env: &str) -> (bool, String) {
    let out = cmd
        .env("MOCK_URL", &served.url)
        .env("MOCK_CLIENT_ID", CLIENT_ID)
        .env("MOCK_CLIENT_SECRET", CLIENT_SECRET)
        .env(ca_env, &served.ca)
        .output()
        .expect("run client script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn simple_salesforce_works_unmodified() {
    let probe = Command::new("python3")
        .args(["-c", "import simple_salesforce"])
        .output();
    match probe {
        Err(e) => return unavailable("simple-salesforce", &format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => {
            return unavailable(
                "simple-salesforce",
                "python3 cannot import simple_salesforce (pip install simple-salesforce)",
            )
        }
        Ok(_) => {}
    }
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path());
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/clients/simple_salesforce_check.py"));
    let (ok, text) = run(cmd, &served, "REQUESTS_CA_BUNDLE");
    println!("{text}");
    assert!(ok, "simple-salesforce checks failed:\n{text}");
    assert!(
        text.contains("simple-salesforce: all checks passed"),
        "{text}"
    );
}

#[test]
fn jsforce_works_unmodified() {
    let clients = root().join("tests/clients");
    if !clients.join("node_modules/jsforce").is_dir() {
        return unavailable(
            "jsforce",
            "tests/clients/node_modules/jsforce is missing (cd tests/clients && npm ci)",
        );
    }
    if Command::new("node").arg("--version").output().is_err() {
        return unavailable("jsforce", "node is not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path());
    let mut cmd = Command::new("node");
    cmd.arg(clients.join("jsforce_check.js"))
        .current_dir(&clients);
    let (ok, text) = run(cmd, &served, "NODE_EXTRA_CA_CERTS");
    println!("{text}");
    assert!(ok, "jsforce checks failed:\n{text}");
    assert!(text.contains("jsforce: all checks passed"), "{text}");
}
