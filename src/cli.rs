//! The command line, for the `syncgate` binary alone (not an API: see `lib.rs`): parses the
//! arguments (`args`), runs one command against the library, prints what it did, and
//! maps the outcome to an exit code (`error` holds the codes, the one error type and the
//! printer of its cause chain).

use std::io::IsTerminal;
use std::path::Path;

use clap::Parser;

mod args;
mod contracts;
mod dlq;
mod error;
mod gate;
mod init;
mod login;
mod metrics_http;
mod mock;
mod org;
mod pacts;
mod registry;
mod replay_from;
mod scenarios;
mod sync;

pub use args::{
    Cli, Command, ContractsCommand, ContractsDir, EngineCmdArgs, GateArgs, InputArgs, MockCommand,
    MockServeArgs, PreflightArgs, ProviderArgs, ReplayArgs, SelectionArgs,
};
pub use contracts::{
    CanIDeployArgs, DiffArgs, ListArgs, PublishArgs, RecordDeploymentArgs, ShowArgs,
};
pub use error::{exit, render, CliError, CliResult, Context, Kind, Outcome};
pub use registry::{RegistryCommand, RegistryServeArgs};

/// Runs the CLI and returns the process exit code; a failure is printed on stderr with its
/// causes.
pub fn main_impl() -> i32 {
    match dispatch(Cli::parse()) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprint!("{}", render(&e));
            e.exit_code()
        }
    }
}

/// Runs the command `cli` names.
fn dispatch(cli: Cli) -> CliResult {
    let db = cli.database_url.as_deref();
    // A store URL that names no store is bad input for every command, not a new empty store.
    if let Some(url) = db {
        crate::store::StoreUrl::parse(Some(url))?;
    }
    match cli.command {
        Command::Gate(args) => gate::gate(args, db),
        Command::Replay(args) => gate::replay(args),
        Command::Preflight(args) => gate::preflight(args),
        Command::Sync(args) => sync::sync(args, db),
        Command::Dlq(cmd) => dlq::dlq(cmd, db),
        Command::Contracts(ContractsCommand::Validate { dir }) => contracts::validate(&dir),
        Command::Contracts(ContractsCommand::List(a)) => contracts::list(a, db),
        Command::Contracts(ContractsCommand::Show(a)) => contracts::show(a, db),
        Command::Contracts(ContractsCommand::Publish(a)) => contracts::publish(a, db),
        Command::Contracts(ContractsCommand::Diff(a)) => contracts::diff(a, db),
        Command::Contracts(ContractsCommand::CanIDeploy(a)) => contracts::can_i_deploy(a, db),
        Command::Contracts(ContractsCommand::RecordDeployment(a)) => {
            contracts::record_deployment(a, db)
        }
        Command::Contracts(ContractsCommand::Pacts(a)) => pacts::run(a),
        Command::Contracts(ContractsCommand::Pull(a)) => org::pull(a),
        Command::Contracts(ContractsCommand::CheckOrg(a)) => org::check_org(a),
        Command::Mock(MockCommand::Serve(args)) => mock::serve(args),
        Command::Scenarios(cmd) => scenarios::run(cmd),
        Command::Init(args) => init::run(args),
        Command::Registry(RegistryCommand::Serve(args)) => registry::serve(args, db),
    }
}

/// The runtime of a command that runs the engine or reads the store: one thread, so the
/// engine and the mock take turns and a seed gives one order of events.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// The runtime of a server (`mock serve`, `registry serve`): two workers, so a slow client
/// does not hold up the others.
fn server_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// Colours on stdout: when it is a terminal and `NO_COLOR` is unset or empty.
fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The store `--database-url` names.
fn open_store(db: Option<&str>) -> Result<std::sync::Arc<dyn crate::store::Store>, CliError> {
    crate::store::open(db).context("cannot open the store")
}

/// `value` as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Writes `text` to `path`, creating its directory.
fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .context(format_args!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).context(format_args!("cannot write {}", path.display()))
}
