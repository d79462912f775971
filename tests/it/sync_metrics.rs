//! `syncgate sync --follow --metrics-addr`: a follower's numbers in the Prometheus text
//! format, read the way a scraper reads them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::served::{root, serve};

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(" 200 "), "{head}");
    assert!(
        head.to_lowercase().contains("content-type: text/plain"),
        "{head}"
    );
    body.to_string()
}

/// The value of the sample whose name and labels start with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_follower_serves_its_numbers_to_a_scraper() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("calm.yaml");
    std::fs::write(&scenario, "purpose: a calm org\nfaults: []\n").unwrap();
    let mock = serve(&scenario);
    let db = format!("sqlite:{}", dir.path().join("state.sqlite").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args([
            "sync",
            "--bundle",
            "northwind-outfitters/production",
            "--source",
            "harness/fixtures/default",
            "--target",
            &mock.url,
            "--follow",
            "--poll",
            "100ms",
            "--metrics-addr",
            "127.0.0.1:0",
            "--json",
        ])
        .current_dir(root())
        .env("SYNCGATE_DATABASE_URL", &db)
        .env("SYNCGATE_CLIENT_ID", "app")
        .env("SYNCGATE_CLIENT_SECRET", "s3cret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The address is printed on stderr; keep draining it so the child never blocks.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("metrics at http://") {
                let _ = tx.send(rest.trim_end_matches("/metrics").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the follower prints where its metrics are");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let tenant = "{tenant=\"northwind-outfitters/production\"";
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = get(&addr, "/metrics");
        if sample(&text, &format!("syncgate_sync_ticks_total{tenant}}}")).unwrap_or(0) >= 2 {
            break text;
        }
        assert!(Instant::now() < deadline, "no second tick:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let created = sample(
        &text,
        &format!("syncgate_sync_records_total{tenant},outcome=\"created\"}}"),
    )
    .unwrap();
    let dead = sample(
        &text,
        &format!("syncgate_sync_records_total{tenant},outcome=\"dead_lettered\"}}"),
    )
    .unwrap();
    assert!(created > 0, "{text}");
    assert!(
        dead > 0,
        "the default fixtures hold invalid records:\n{text}"
    );
    // The queue holds what was dead-lettered, by code, and its oldest letter has an age.
    let depth = sample(
        &text,
        &format!("syncgate_dead_letter_queue_depth{tenant}}}"),
    )
    .unwrap();
    assert_eq!(depth, dead, "{text}");
    let by_code: u64 = text
        .lines()
        .filter(|l| l.starts_with(&format!("syncgate_dead_letters{tenant},code=")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(by_code, depth, "{text}");
    assert!(
        text.contains("syncgate_dead_letter_oldest_age_seconds{"),
        "{text}"
    );
    let used = sample(&text, &format!("syncgate_api_budget_used{tenant}}}")).unwrap();
    assert!(used > 0, "{text}");
    assert!(
        text.contains("# TYPE syncgate_sync_records_total counter"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "a secret in the metrics");

    // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.code().is_some(), "{status:?}");
}

#[test]
fn metrics_are_served_on_loopback_only_and_only_while_following() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_syncgate"))
            .args(args)
            .current_dir(root())
            .env("SYNCGATE_DATABASE_URL", "sqlite::memory:")
            .env("SYNCGATE_CLIENT_ID", "app")
            .env("SYNCGATE_CLIENT_SECRET", "s3cret")
            .output()
            .unwrap()
    };
    let base = [
        "sync",
        "--bundle",
        "northwind-outfitters/production",
        "--source",
        "harness/fixtures/default",
        "--target",
        "http://127.0.0.1:9",
    ];
    let mut off_loopback = base.to_vec();
    off_loopback.extend(["--follow", "--metrics-addr", "0.0.0.0:9464"]);
    let out = run(&off_loopback);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    let mut once = base.to_vec();
    once.extend(["--metrics-addr", "127.0.0.1:9464"]);
    let out = run(&once);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--follow"));
}
