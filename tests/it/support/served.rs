//! `syncgate mock serve` as a child process, the way a user starts it, and its admin API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The repository root (tests run the CLI from there).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `mock serve` child process, killed on drop.
pub struct Served {
    pub child: Child,
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves Northwind's production org with `scenario`, signing in client `app` / `s3cret`;
/// returns once the mock printed its URL.
pub fn serve(scenario: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "mock",
            "serve",
            "--bundle",
            "northwind-outfitters/production",
            "--client-id",
            "app",
            "--client-secret",
            "s3cret",
            "--scenario",
        ])
        .arg(scenario)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.split_whitespace().next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    Served { child, url }
}

/// GET on the mock's admin API (HTTP/1.0: the body ends with the connection); the status
/// must be 200.
pub fn admin_get(base: &str, path: &str) -> String {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_string()
}
