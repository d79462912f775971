//! Mock performance: requests per second and p50/p99 latency of upsert-by-external-ID and
//! of a SOQL query on loopback, side by side with WireMock standalone serving an
//! equivalent static stub in the same run.
//!
//! `cargo bench --bench mock` (WireMock: `cd benches/wiremock && npm ci` first, Java on
//! PATH; `BENCH_SECS` sets the seconds per measurement, `BENCH_CONCURRENCY` the clients).
//! A bare axum handler returning a static body runs beside them as the ceiling of this
//! machine; the ratios to both are printed against the targets (≥ 3× WireMock, ≥ 0.6× the
//! ceiling). Then a soak: `BENCH_SOAK_SECS` (default 60) of upserts against the mock with
//! the process's resident memory sampled every 5 s (the mock keeps its journal bounded as
//! `mock serve` does, `--journal-limit` 100,000), to show whether memory stays flat. The
//! load average is printed at the start and the end (the machine may be shared).
//! The mock does its real work on every request: auth, budget, fault layer, field rules,
//! the external-ID index, audit fields, a change event and a journal entry per upsert; a
//! scan, filter and page per query. WireMock matches a stub and returns canned JSON.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use syncgate::contract::Registry;
use syncgate::mock::{self, ClientCredentials, MockConfig, MockOrg};
use syncgate::sim::{Clock, Scenario, Seed};

const RECORDS: usize = 1000;

struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

#[derive(Clone)]
enum Work {
    Upsert,
    Query,
}

/// One keep-alive HTTP/1.1 connection with a minimal client, so that the load generator
/// costs little next to the servers it measures (all share the machine's cores).
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> std::io::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(8192),
        })
    }

    /// Sends one request and reads the whole answer; returns the status.
    async fn call(&mut self, request: &[u8]) -> std::io::Result<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(request).await?;
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let body_start = end + 4;
                if let Some(len) = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                {
                    while self.buf.len() < body_start + len {
                        let n = self.stream.read(&mut chunk).await?;
                        if n == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        self.buf.extend_from_slice(&chunk[..n]);
                    }
                    return Ok(status);
                }
                if head.contains("transfer-encoding: chunked") {
                    while find(&self.buf[body_start..], b"0\r\n\r\n").is_none() {
                        let n = self.stream.read(&mut chunk).await?;
                        if n == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        self.buf.extend_from_slice(&chunk[..n]);
                    }
                    return Ok(status);
                }
                return Ok(status);
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn request(work: &Work, host: &str, token: Option<&str>, n: usize, i: usize) -> Vec<u8> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    match work {
        Work::Upsert => {
            let body = format!("{{\"Name\":\"Shop {n} rev {i}\",\"NumberOfEmployees\":{i}}}");
            format!(
                "PATCH /services/data/v62.0/sobjects/Account/NW_Customer_Id__c/C-{n:05} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
        Work::Query => format!(
            "GET /services/data/v62.0/query?q=SELECT+Id,+Name+FROM+Account+WHERE+NW_Customer_Id__c+=+'C-{n:05}' HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"
        )
        .into_bytes(),
    }
}

async fn measure(
    addr: &str,
    token: Option<&str>,
    work: Work,
    secs: f64,
    concurrency: usize,
) -> Figures {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let addr = addr.to_string();
        let token = token.map(str::to_string);
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut conn = None;
            let mut i = worker;
            while Instant::now() < deadline {
                let n = i % RECORDS;
                i += concurrency;
                let req = request(&work, &addr, token.as_deref(), n, i);
                let t0 = Instant::now();
                if conn.is_none() {
                    conn = Conn::open(&addr).await.ok();
                }
                let ok = match conn.as_mut() {
                    Some(c) => match c.call(&req).await {
                        Ok(status) => (200..300).contains(&status),
                        Err(_) => {
                            conn = None;
                            false
                        }
                    },
                    None => false,
                };
                lat.push(t0.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        rps: all.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, f: &Figures) {
    println!(
        "{name:<34} {:>10.0} req/s   p50 {:>9}   p99 {:>9}   errors {}",
        f.rps,
        ms(f.p50),
        ms(f.p99),
        f.errors
    );
}

async fn start_mock() -> (mock::RunningMock, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let registry = Registry::open(&root.join("contracts")).expect("registry");
    let tenants = registry
        .select(&["northwind-outfitters".into()], &["sandbox".into()])
        .expect("tenant");
    let bundle = registry.load(&tenants[0]).expect("bundle");
    let creds = ClientCredentials::gate();
    // A budget no benchmark spends, so every request does the full work.
    let scenario = Scenario::from_yaml(
        std::path::Path::new("bench.yaml"),
        "purpose: benchmark\nlimits: { daily_api_requests: 1000000000 }\n",
    )
    .expect("scenario");
    let org = MockOrg::new(MockConfig {
        bundle,
        scenario: Some(scenario),
        seed: Seed(1),
        clock: Clock::system(),
        clients: vec![creds.clone()],
    });
    let running = mock::spawn(org, 0).await.expect("spawn mock");
    let http = syncgate::http::client();
    let token: Value = http
        .post(format!("{}/services/oauth2/token", running.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", creds.client_secret.as_str()),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let token = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Seed the records the upserts update and the queries find.
    for chunk in 0..RECORDS / 200 {
        let records: Vec<Value> = (0..200)
            .map(|i| {
                let n = chunk * 200 + i;
                json!({"NW_Customer_Id__c": format!("C-{n:05}"), "Name": format!("Shop {n}")})
            })
            .collect();
        http.patch(format!(
            "{}/services/data/v62.0/composite/sobjects/Account/NW_Customer_Id__c",
            running.base_url()
        ))
        .bearer_auth(&token)
        .json(&json!({"records": records}))
        .send()
        .await
        .expect("seed");
    }
    (running, token)
}

struct WireMock {
    child: Child,
    base: String,
    addr: String,
}

impl Drop for WireMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wiremock_jar() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("WIREMOCK_JAR") {
        return Ok(PathBuf::from(p));
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches/wiremock/node_modules/wiremock/build");
    std::fs::read_dir(&dir)
        .map_err(|_| {
            format!(
                "{} not found (cd benches/wiremock && npm ci)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "jar"))
        .ok_or_else(|| format!("no jar in {}", dir.display()))
}

async fn start_wiremock() -> Result<WireMock, String> {
    let jar = wiremock_jar()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = Command::new("java")
        .arg("-jar")
        .arg(&jar)
        .args([
            "--port",
            &port.to_string(),
            "--bind-address",
            "127.0.0.1",
            "--disable-banner",
            "--no-request-journal",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("java: {e}"))?;
    let wm = WireMock {
        child,
        base: format!("http://127.0.0.1:{port}"),
        addr: format!("127.0.0.1:{port}"),
    };
    let http = syncgate::http::client();
    let ready = Instant::now();
    loop {
        let up = http
            .get(format!("{}/__admin/mappings", wm.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            break;
        }
        if ready.elapsed() > Duration::from_secs(60) {
            return Err("WireMock did not start within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The same answers the mock gives, canned.
    let stubs = [
        json!({"request": {"method": "PATCH", "urlPathPattern": "/services/data/v62.0/sobjects/Account/NW_Customer_Id__c/.*"},
               "response": {"status": 200, "headers": {"Content-Type": "application/json", "Sforce-Limit-Info": "api-usage=1/100000"},
                            "jsonBody": {"id": "0018d0000000001AAA", "success": true, "errors": [], "created": false}}}),
        json!({"request": {"method": "GET", "urlPath": "/services/data/v62.0/query"},
               "response": {"status": 200, "headers": {"Content-Type": "application/json", "Sforce-Limit-Info": "api-usage=1/100000"},
                            "jsonBody": {"totalSize": 1, "done": true, "records": [{"attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/0018d0000000001AAA"}, "Id": "0018d0000000001AAA", "Name": "Shop 1"}]}}}),
    ];
    for s in stubs {
        http.post(format!("{}/__admin/mappings", wm.base))
            .json(&s)
            .send()
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(wm)
}

/// A bare axum server answering canned JSON with no work at all: the ceiling any Rust
/// server on this machine reaches with this load generator, for context.
async fn start_bare() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    use axum::http::Method;
    async fn canned(method: Method) -> axum::Json<Value> {
        if method == Method::PATCH {
            axum::Json(
                json!({"id": "0018d0000000001AAA", "success": true, "errors": [], "created": false}),
            )
        } else {
            axum::Json(
                json!({"totalSize": 1, "done": true, "records": [{"attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/0018d0000000001AAA"}, "Id": "0018d0000000001AAA", "Name": "Shop 1"}]}),
            )
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = axum::Router::new().fallback(canned);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    (addr, tx)
}

/// `/proc/loadavg`'s three averages, or `unknown` off Linux.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// This process's resident memory in MiB (`VmRSS`), the mock's included (it runs in it).
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Upserts for `secs` seconds from `concurrency` clients, counting answers only (no latency
/// kept, so the load generator's memory stays constant); prints the resident memory every
/// `every` seconds. Returns (requests, errors, samples in MiB).
async fn soak(
    addr: &str,
    token: &str,
    secs: f64,
    concurrency: usize,
    every: f64,
) -> (u64, u64, Vec<f64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (addr, token) = (addr.to_string(), token.to_string());
        let (done, failed) = (done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            let mut i = worker;
            while Instant::now() < deadline {
                let req = request(&Work::Upsert, &addr, Some(&token), i % RECORDS, i);
                i += concurrency;
                if conn.is_none() {
                    conn = Conn::open(&addr).await.ok();
                }
                let ok = match conn.as_mut() {
                    Some(c) => match c.call(&req).await {
                        Ok(status) => (200..300).contains(&status),
                        Err(_) => {
                            conn = None;
                            false
                        }
                    },
                    None => false,
                };
                done.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut next = 0.0;
    while Instant::now() < deadline {
        if start.elapsed().as_secs_f64() >= next {
            let rss = rss_mib().unwrap_or(0.0);
            println!(
                "  t={:>5.1} s  RSS {rss:>7.1} MiB  requests so far {}",
                start.elapsed().as_secs_f64(),
                done.load(Ordering::Relaxed)
            );
            samples.push(rss);
            next += every;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let rss = rss_mib().unwrap_or(0.0);
    println!(
        "  t={:>5.1} s  RSS {rss:>7.1} MiB  requests {}",
        start.elapsed().as_secs_f64(),
        done.load(Ordering::Relaxed)
    );
    samples.push(rss);
    (
        done.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        samples,
    )
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    runtime.block_on(async {
        println!(
            "mock benchmark: {rounds} rounds of {secs} s per measurement, {concurrency} concurrent keep-alive clients, loopback, {RECORDS} Accounts"
        );
        println!(
            "load average at start: {} ({} CPUs; the load generator and every server share them)",
            load_average(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        // Both servers run side by side and are measured in alternation, round after round,
        // so that anything else the machine does hits both; the best round of each counts.
        let (running, token) = start_mock().await;
        let addr = running.addr.to_string();
        let wm = match start_wiremock().await {
            Ok(wm) => Some(wm),
            Err(e) => {
                println!("WireMock: SKIPPED: {e}");
                None
            }
        };
        let (bare, bare_stop) = start_bare().await;
        let bare = bare.to_string();
        // Warm up (the JVM's JIT needs it most).
        measure(&addr, Some(&token), Work::Upsert, 1.0, concurrency).await;
        if let Some(wm) = &wm {
            measure(&wm.addr, None, Work::Upsert, 3.0, concurrency).await;
            measure(&wm.addr, None, Work::Query, 3.0, concurrency).await;
        }
        let mut best: [Option<Figures>; 6] = [None, None, None, None, None, None];
        let names = [
            "syncgate mock: upsert by ext ID",
            "syncgate mock: query",
            "WireMock static stub: upsert",
            "WireMock static stub: query",
            "bare axum canned JSON: upsert",
            "bare axum canned JSON: query",
        ];
        for round in 1..=rounds {
            println!("round {round}:");
            for (slot, work) in [(0, Work::Upsert), (1, Work::Query)] {
                let f = measure(&addr, Some(&token), work.clone(), secs, concurrency).await;
                row(&format!("  {}", names[slot]), &f);
                keep_best(&mut best[slot], f);
                if let Some(wm) = &wm {
                    let f = measure(&wm.addr, None, work.clone(), secs, concurrency).await;
                    row(&format!("  {}", names[slot + 2]), &f);
                    keep_best(&mut best[slot + 2], f);
                }
                let f = measure(&bare, None, work, secs, concurrency).await;
                row(&format!("  {}", names[slot + 4]), &f);
                keep_best(&mut best[slot + 4], f);
            }
        }
        let journal = running.org.journal().len();
        println!("load average after the rounds: {}", load_average());
        let soak_secs: f64 = std::env::var("BENCH_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60.0);
        let soaked = if soak_secs > 0.0 {
            // As `mock serve` keeps them (its default `--journal-limit` and `--event-limit`).
            running.org.limit_journal(100_000);
            running.org.limit_events(100_000);
            println!(
                "soak: {soak_secs} s of upserts against the mock, resident memory of this process every 5 s:"
            );
            Some(soak(&addr, &token, soak_secs, concurrency, 5.0).await)
        } else {
            None
        };
        running.stop().await;
        let _ = bare_stop.send(());
        println!("best of {rounds} rounds:");
        for (name, f) in names.iter().zip(&best) {
            if let Some(f) = f {
                row(name, f);
            }
        }
        println!("  (the mock journaled {journal} requests; the soak kept the newest 100,000 change events)");
        if let [Some(mu), Some(mq), Some(wu), Some(wq), ..] = &best {
            println!(
                "ratio (mock / WireMock throughput): upsert {:.2}x, query {:.2}x",
                mu.rps / wu.rps.max(1e-9),
                mq.rps / wq.rps.max(1e-9)
            );
        }
        if let [Some(mu), Some(mq), _, _, Some(bu), Some(bq)] = &best {
            println!(
                "mock / bare axum (share of the machine's ceiling): upsert {:.0}%, query {:.0}%",
                100.0 * mu.rps / bu.rps.max(1e-9),
                100.0 * mq.rps / bq.rps.max(1e-9)
            );
        }
        println!("side by side (best round each):");
        println!(
            "  {:<10} {:>12} {:>12} {:>12} {:>14} {:>14}",
            "work", "mock req/s", "WireMock", "bare axum", "mock/WireMock", "mock/bare"
        );
        for (work, m, w, b) in [("upsert", 0, 2, 4), ("query", 1, 3, 5)] {
            let rps = |i: usize| best[i].as_ref().map(|f| f.rps);
            let ratio = |a: Option<f64>, b: Option<f64>, target: f64| match (a, b) {
                (Some(a), Some(b)) => {
                    let r = a / b.max(1e-9);
                    let verdict = if r >= target { "met" } else { "NOT met" };
                    format!("{r:.2}x ({verdict})")
                }
                _ => "-".into(),
            };
            let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
            println!(
                "  {work:<10} {:>12} {:>12} {:>12} {:>14} {:>14}",
                show(rps(m)),
                show(rps(w)),
                show(rps(b)),
                ratio(rps(m), rps(w), 3.0),
                ratio(rps(m), rps(b), 0.6)
            );
        }
        println!("  targets: mock >= 3x WireMock, mock >= 0.6x the bare handler");
        if let Some((requests, errors, samples)) = soaked {
            let first = samples.first().copied().unwrap_or(0.0);
            // The first sample is taken as the soak starts; growth is judged after warm-up.
            let warm = samples.get(1).copied().unwrap_or(first);
            let last = samples.last().copied().unwrap_or(0.0);
            let peak = samples.iter().copied().fold(0.0, f64::max);
            println!(
                "soak: {requests} upserts in {soak_secs} s ({:.0} req/s), {errors} errors; RSS {first:.1} MiB at the start, {warm:.1} after 5 s, {last:.1} at the end, peak {peak:.1} (growth after warm-up {:+.1} MiB)",
                requests as f64 / soak_secs,
                last - warm
            );
        }
        println!("load average at the end: {}", load_average());
    });
}

fn keep_best(slot: &mut Option<Figures>, f: Figures) {
    if slot.as_ref().is_none_or(|b| f.rps > b.rps) {
        *slot = Some(f);
    }
}
