//! Command-line interface: parses arguments, runs the library, prints diagnostics and
//! maps outcomes to the exit codes in [`exit`].

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::contract::Bundle;
use crate::sim::Seed;

mod contracts;
mod registry;

use crate::verify::{self, report, GateOptions};
pub use contracts::{
    CanIDeployArgs, DiffArgs, ListArgs, PublishArgs, RecordDeploymentArgs, ShowArgs,
};
pub use registry::{RegistryCommand, RegistryServeArgs};

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
    /// Where state lives (registry index, verification results, deployments): a SQLite path,
    /// `sqlite:PATH`, `sqlite::memory:` or `postgres://…`. Default: .syncgate/state.sqlite.
    #[arg(
        long,
        global = true,
        env = "SYNCGATE_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
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
    /// Serve the contract registry over HTTP, compatible with the Pact Broker API.
    #[command(subcommand)]
    Registry(RegistryCommand),
}

#[derive(Debug, Subcommand)]
pub enum MockCommand {
    /// Serve a tenant's mock org over HTTP on loopback until Ctrl-C.
    ///
    /// Prints the base URL on one line of stdout. Sign in at `<base>/services/oauth2/token`
    /// with the client-credentials grant and the client ID and secret given here.
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
    /// The engine version the verification results are recorded for (for can-i-deploy).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"), value_name = "VERSION")]
    pub engine_version: String,
}

#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// Check a tenant bundle on disk and print its resolved version and content hash.
    Validate {
        /// A tenant directory holding `bundle.toml`.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// List published bundle versions and where they are deployed.
    List(ListArgs),
    /// Show one bundle (on disk, or `partner/tenant[@version]` from the registry).
    Show(ShowArgs),
    /// Publish a tenant's resolved bundle: immutable, hashed, checked for breaking changes.
    Publish(PublishArgs),
    /// Classify every change between two bundles as breaking or safe (exit 1 if any breaks).
    Diff(DiffArgs),
    /// May this engine version go to that environment for a tenant? (exit 0 yes, 1 no)
    CanIDeploy(CanIDeployArgs),
    /// Record that a bundle version and an engine version are deployed to an environment.
    RecordDeployment(RecordDeploymentArgs),
}

/// Runs the CLI and returns the process exit code.
pub fn main_impl() -> i32 {
    let cli = Cli::parse();
    let db = cli.database_url.as_deref();
    match cli.command {
        Command::Gate(args) => gate(args, db),
        Command::Contracts(ContractsCommand::Validate { dir }) => validate(&dir),
        Command::Contracts(ContractsCommand::List(a)) => contracts::list(a, db),
        Command::Contracts(ContractsCommand::Show(a)) => contracts::show(a, db),
        Command::Contracts(ContractsCommand::Publish(a)) => contracts::publish(a, db),
        Command::Contracts(ContractsCommand::Diff(a)) => contracts::diff(a, db),
        Command::Contracts(ContractsCommand::CanIDeploy(a)) => contracts::can_i_deploy(a, db),
        Command::Contracts(ContractsCommand::RecordDeployment(a)) => {
            contracts::record_deployment(a, db)
        }
        Command::Mock(MockCommand::Serve(args)) => mock_serve(args),
        Command::Registry(RegistryCommand::Serve(args)) => registry::serve(args, db),
    }
}

fn error(msg: impl std::fmt::Display) {
    eprintln!("error: {msg}");
}

fn gate(args: GateArgs, database_url: Option<&str>) -> i32 {
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
    if let Err(e) = runtime.block_on(contracts::record_gate_verifications(
        &report,
        &args.engine_version,
        database_url,
    )) {
        error(format_args!(
            "failed to record the verification results: {e}"
        ));
        return exit::INTERNAL;
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
    let org = crate::mock::MockOrg::new(crate::mock::MockConfig {
        bundle,
        scenario,
        seed: Seed(args.seed),
        clock: crate::sim::Clock::system(),
        clients: vec![crate::mock::ClientCredentials {
            client_id: args.client_id.clone(),
            client_secret: args.client_secret,
        }],
    });
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
        let addr = listener.local_addr()?;
        println!("http://{addr}");
        eprintln!("mock org {label}: sign in at http://{addr}/services/oauth2/token with client_id {}; Ctrl-C stops", args.client_id);
        crate::mock::serve(listener, org.clone(), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
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
