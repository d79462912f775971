//! Command-line interface: parses arguments, runs the library, prints diagnostics and
//! maps outcomes to the exit codes in [`exit`].

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::contract::Bundle;
use crate::sim::Seed;
use crate::verify::{self, report, GateOptions};

/// Exit codes, in one place.
pub mod exit {
    /// Everything passed.
    pub const PASSED: i32 = 0;
    /// The gate's verdict is "fail".
    pub const FAILED: i32 = 1;
    /// Bad usage or bad input (a malformed bundle, scenario or fixture).
    pub const BAD_INPUT: i32 = 2;
    /// Something went wrong inside syncgate.
    pub const INTERNAL: i32 = 3;
}

/// Catch Salesforce and partner sync breakage before it is deployed.
#[derive(Debug, Parser)]
#[command(name = "syncgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sync engine against a mock org for every tenant and scenario, and check the invariants.
    Gate(GateArgs),
    /// Work with contract bundles.
    #[command(subcommand)]
    Contracts(ContractsCommand),
    /// Run the mock Salesforce org on its own, for your own tools and clients.
    #[command(subcommand)]
    Mock(MockCommand),
}

#[derive(Debug, Subcommand)]
pub enum MockCommand {
    /// Serve a tenant's mock org over HTTP on loopback until Ctrl-C.
    ///
    /// Prints the base URL on one line of stdout (with `--tls`, followed by a space and the
    /// path of the CA certificate to trust). Sign in at `<base>/services/oauth2/token` with
    /// the client-credentials grant and the client ID and secret given here. The admin API
    /// (journal, state, reset, scenario, clock, events) is under `<base>/__syncgate/`.
    Serve(MockServeArgs),
}

#[derive(Debug, Args)]
pub struct MockServeArgs {
    /// A tenant directory holding `bundle.toml`, or `partner/tenant` in the registry.
    #[arg(long, value_name = "DIR|PARTNER/TENANT")]
    pub bundle: String,
    /// The registry `partner/tenant` is looked up in.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
    /// A scenario file whose faults and limits the org applies.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Seed for fault probabilities and tokens.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Client ID the token endpoint accepts.
    #[arg(long, default_value = "syncgate-mock")]
    pub client_id: String,
    /// Client secret the token endpoint accepts.
    #[arg(
        long,
        env = "SYNCGATE_MOCK_CLIENT_SECRET",
        default_value = "mock-secret",
        hide_env_values = true
    )]
    pub client_secret: String,
    /// On shutdown, write the request journal (JSON lines) here.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Serve HTTPS with a certificate generated at start (simple-salesforce needs it).
    #[arg(long)]
    pub tls: bool,
    /// With `--tls`: where to write the CA certificate clients must trust
    /// (default: `syncgate-mock-<port>-ca.pem` in the temporary directory).
    #[arg(long, value_name = "PATH", requires = "tls")]
    pub ca_file: Option<PathBuf>,
    /// Partner mode: serve the bundle's Pact interactions as a stateful stub (provider
    /// states set through `/__syncgate/provider-states`) instead of the Salesforce org.
    #[arg(long, conflicts_with = "tls")]
    pub pact: bool,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The contract registry: `<partner>/<tenant>/bundle.toml` directories.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
    /// Directory of scenario files (`*.yaml`).
    #[arg(long, default_value = "harness/scenarios", value_name = "DIR")]
    pub scenarios: PathBuf,
    /// Directory of fixture sets (source data), one sub-directory per set.
    #[arg(long, default_value = "harness/fixtures", value_name = "DIR")]
    pub fixtures: PathBuf,
    /// Only this partner (repeatable).
    #[arg(long, value_name = "PARTNER")]
    pub partner: Vec<String>,
    /// Only this tenant, e.g. `sandbox` (repeatable).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Vec<String>,
    /// Only this scenario, by file stem (repeatable).
    #[arg(long, value_name = "NAME")]
    pub scenario: Vec<String>,
    /// Seed for every random choice (fault probabilities, jitter, tokens).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Write each run's request journal (JSON lines) into this directory.
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// Check a tenant bundle on disk and print its resolved version and content hash.
    Validate {
        /// A tenant directory holding `bundle.toml`.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Runs the CLI and returns the process exit code.
pub fn main_impl() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Gate(args) => gate(args),
        Command::Contracts(ContractsCommand::Validate { dir }) => validate(&dir),
        Command::Mock(MockCommand::Serve(args)) => mock_serve(args),
    }
}

fn error(msg: impl std::fmt::Display) {
    eprintln!("error: {msg}");
}

fn gate(args: GateArgs) -> i32 {
    let opts = GateOptions {
        contracts: args.contracts,
        scenarios: args.scenarios,
        fixtures: args.fixtures,
        partners: args.partner,
        tenants: args.tenant,
        only_scenarios: args.scenario,
        seed: Seed(args.seed),
    };
    // One thread: the engine and the mock take turns, so a seed gives one order of events.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error(format_args!("failed to start the async runtime: {e}"));
            return exit::INTERNAL;
        }
    };
    let result = runtime.block_on(verify::run_gate(&opts));
    let report = match result {
        Ok(r) => r,
        Err(verify::GateError::Mock(e)) => {
            error(format_args!(
                "failed to start the mock org on 127.0.0.1: {e}"
            ));
            return exit::INTERNAL;
        }
        Err(e) => {
            error(e);
            return exit::BAD_INPUT;
        }
    };
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    print!("{}", report::terminal(&report, report::Style { color }));
    if let Some(path) = &args.junit {
        if let Err(e) = write_file(path, &report::junit(&report)) {
            error(e);
            return exit::INTERNAL;
        }
    }
    if let Some(dir) = &args.journal_dir {
        for t in &report.tenants {
            for r in &t.runs {
                let path = dir
                    .join(&t.partner)
                    .join(&t.tenant)
                    .join(format!("{}.jsonl", r.scenario));
                if let Err(e) = write_file(&path, &crate::mock::journal::to_json_lines(&r.journal))
                {
                    error(e);
                    return exit::INTERNAL;
                }
            }
        }
    }
    if report.passed() {
        exit::PASSED
    } else {
        exit::FAILED
    }
}

fn write_file(path: &std::path::Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn validate(dir: &std::path::Path) -> i32 {
    match Bundle::load(dir) {
        Ok(b) => {
            let fields: usize = b.objects.values().map(|o| o.fields.len()).sum();
            println!(
                "ok {}/{} {} {} ({} objects, {} fields, {} pact files)",
                b.partner,
                b.tenant,
                b.version,
                b.content_hash(),
                b.objects.len(),
                fields,
                b.pacts.len()
            );
            exit::PASSED
        }
        Err(e) => {
            error(e);
            exit::BAD_INPUT
        }
    }
}

fn mock_serve(args: MockServeArgs) -> i32 {
    let as_dir = PathBuf::from(&args.bundle);
    let dir = if as_dir.join("bundle.toml").is_file() {
        as_dir
    } else {
        args.contracts.join(&args.bundle)
    };
    let bundle = match Bundle::load(&dir) {
        Ok(b) => b,
        Err(e) => {
            error(e);
            return exit::BAD_INPUT;
        }
    };
    let scenario = match &args.scenario {
        None => None,
        Some(p) => match crate::sim::Scenario::load(p) {
            Ok(s) => Some(s),
            Err(e) => {
                error(e);
                return exit::BAD_INPUT;
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error(format_args!("failed to start the async runtime: {e}"));
            return exit::INTERNAL;
        }
    };
    let label = format!("{}/{}", bundle.partner, bundle.tenant);
    if args.pact {
        let stub = crate::mock::partner::PartnerMock::new(
            &bundle,
            scenario.as_ref(),
            Seed(args.seed),
            crate::sim::Clock::shifted(),
        );
        let served = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
            let addr = listener.local_addr()?;
            println!("http://{addr}");
            eprintln!("partner stub {label}: Pact interactions of the bundle; set provider states at http://{addr}/__syncgate/provider-states; Ctrl-C stops");
            crate::mock::partner::serve(listener, stub, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
        });
        return match served {
            Ok(()) => exit::PASSED,
            Err(e) => {
                error(format_args!(
                    "failed to serve on 127.0.0.1:{}: {e}",
                    args.port
                ));
                exit::INTERNAL
            }
        };
    }
    let org = crate::mock::MockOrg::new(crate::mock::MockConfig {
        bundle,
        scenario,
        seed: Seed(args.seed),
        clock: crate::sim::Clock::shifted(),
        clients: vec![crate::mock::ClientCredentials {
            client_id: args.client_id.clone(),
            client_secret: args.client_secret,
        }],
    });
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
        let addr = listener.local_addr()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        if !args.tls {
            println!("http://{addr}");
            eprintln!("mock org {label}: sign in at http://{addr}/services/oauth2/token with client_id {}; admin API at http://{addr}/__syncgate/; Ctrl-C stops", args.client_id);
            return crate::mock::serve(listener, org.clone(), shutdown).await;
        }
        let cert = crate::mock::tls::SelfSigned::generate().map_err(std::io::Error::other)?;
        let ca_file = args.ca_file.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("syncgate-mock-{}-ca.pem", addr.port()))
        });
        std::fs::write(&ca_file, cert.ca_pem())?;
        let base = format!("https://localhost:{}", addr.port());
        println!("{base} {}", ca_file.display());
        eprintln!("mock org {label}: sign in at {base}/services/oauth2/token with client_id {}; trust {} (REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS); Ctrl-C stops", args.client_id, ca_file.display());
        crate::mock::serve_tls(listener, &cert, org.clone(), shutdown).await
    });
    if let Err(e) = served {
        error(format_args!(
            "failed to serve on 127.0.0.1:{}: {e}",
            args.port
        ));
        return exit::INTERNAL;
    }
    if let Some(path) = &args.journal {
        if let Err(e) = write_file(path, &crate::mock::journal::to_json_lines(&org.journal())) {
            error(e);
            return exit::INTERNAL;
        }
    }
    exit::PASSED
}
