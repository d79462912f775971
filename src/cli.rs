//! Command-line interface: parses arguments, runs the library, prints diagnostics and
//! maps outcomes to the exit codes in [`exit`].

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::contract::Bundle;
use crate::engine::config_file::EngineSettings;
use crate::sim::Seed;

mod contracts;
mod init;
mod metrics_http;
mod org;
mod pacts;
mod registry;
mod replay_from;
mod scenarios;
mod sync;

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
    /// Where state lives (registry index, verifications, deployments, dead letters, dedupe
    /// keys, cursors): a SQLite path, `sqlite:PATH`, `sqlite::memory:` or `postgres://…`.
    /// Default: .syncgate/state.sqlite.
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
    /// Re-run one scenario and print its timeline: requests, faults, retries, waits, checks.
    Replay(ReplayArgs),
    /// Sync a tenant's source records into an org, once or `--follow` (the engine the gate
    /// verifies).
    Sync(sync::SyncArgs),
    /// Inspect and redrive the dead-letter queue.
    #[command(subcommand)]
    Dlq(sync::DlqCommand),
    /// Certify a field change before a partner enables it: classify it, then run the pacts and
    /// every scenario against the tenant's bundle with the field, and write a report.
    Preflight(PreflightArgs),
    /// Work with contract bundles.
    #[command(subcommand)]
    Contracts(ContractsCommand),
    /// Run the mock Salesforce org on its own, for your own tools and clients.
    #[command(subcommand)]
    Mock(MockCommand),
    /// The scenario library built into syncgate: list it, or print one to copy.
    #[command(subcommand)]
    Scenarios(scenarios::ScenariosCommand),
    /// Write a working repository skeleton (one partner, one tenant, syncgate.toml, CI
    /// file) into DIR, on which `syncgate gate` passes at once.
    Init(init::InitArgs),
    /// Serve the contract registry over HTTP, compatible with the Pact Broker API.
    #[command(subcommand)]
    Registry(RegistryCommand),
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
    /// A connected app (TOML: `client_id`, `client_secret`, `certificate` for JWT bearer,
    /// `[[users]]` with passwords, `[[refresh_tokens]]`; see docs/mock.md), besides the
    /// `--client-id` one.
    #[arg(long, value_name = "FILE")]
    pub connected_app: Option<PathBuf>,
    /// On shutdown, write the request journal (JSON lines) here.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Keep only the last N requests in the journal (every request is still counted;
    /// `/__syncgate/state` says how many were dropped), so a long-running mock stays small.
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub journal_limit: u64,
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

/// Where the verification's inputs live, and the seed.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// The contract registry: `<partner>/<tenant>/bundle.toml` directories.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
    /// Scenario files (`*.yaml`) added to the built-in library; a file named like a
    /// built-in scenario replaces it (`syncgate scenarios list` shows the library).
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Run only the scenarios of --scenarios, without the built-in library.
    #[arg(long)]
    pub no_builtin_scenarios: bool,
    /// Directory of hand-written fixture sets (source data), one sub-directory per set. A
    /// set missing there for a tenant is generated from the tenant's bundle.
    #[arg(long, default_value = "harness/fixtures", value_name = "DIR")]
    pub fixtures: PathBuf,
    /// Where generated fixture sets are written, as `<partner>/<tenant>/<set>/` (replay
    /// one with `--fixtures DIR/<partner>/<tenant>`).
    #[arg(long, default_value = verify::fixture_sets::DEFAULT_OUT, value_name = "DIR")]
    pub fixtures_out: PathBuf,
    /// Valid records per object in generated fixture sets (the records each rule must
    /// reject come on top).
    #[arg(long, default_value_t = crate::source::generate::DEFAULT_RECORDS, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub records: usize,
    /// Seed for every random choice (fault probabilities, jitter, tokens).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The engine configuration: a TOML file with an `[engine]` table (keys: README.md).
    /// Default: `syncgate.toml` beside the --contracts directory when present, else the
    /// built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub engine_config: Option<PathBuf>,
}

impl InputArgs {
    /// The engine configuration these inputs name, or the exit code after reporting why
    /// it cannot be read.
    fn engine(&self) -> Result<EngineSettings, i32> {
        EngineSettings::resolve(self.engine_config.as_deref(), &self.contracts).map_err(|e| {
            error(e);
            exit::BAD_INPUT
        })
    }
}

/// A foreign engine to judge instead of the in-process one (docs/engine-protocol.md).
#[derive(Debug, Args)]
pub struct EngineCmdArgs {
    /// Run this command (through `sh -c`) as the engine of every run, under the engine
    /// protocol, instead of syncgate's own engine in process. Overrides `command` in the
    /// engine configuration file (`[engine]` and `[engine.tenants."partner/tenant"]`).
    #[arg(long, value_name = "CMD")]
    pub engine_cmd: Option<String>,
    /// Wall-clock limit of one engine-command run; past it its process group is killed
    /// and the run fails `engine-completed` [default: `command_timeout` in the engine
    /// configuration, else 120s].
    #[arg(long, value_name = "DURATION", value_parser = parse_wall_duration)]
    pub engine_timeout: Option<std::time::Duration>,
    /// Org seconds per wall second for engine commands (the mock's scaled clock)
    /// [default: `time_scale` in the engine configuration, else 3600].
    #[arg(long, value_name = "N", value_parser = parse_time_scale)]
    pub time_scale: Option<f64>,
}

fn parse_wall_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::sim::time::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{s}` is not a duration above zero (e.g. 120s, 5m)"))
}

fn parse_time_scale(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 1.0)
        .ok_or_else(|| format!("`{s}` is not a time scale: give a number ≥ 1 (e.g. 3600)"))
}

impl EngineCmdArgs {
    /// The engine commands of the run: `--engine-cmd` for every tenant, else what the
    /// engine configuration file (already in `opts.engine`) names; flags beat the file.
    fn apply(&self, opts: &mut GateOptions) {
        use verify::engine_cmd::{EngineCommand, DEFAULT_TIMEOUT, DEFAULT_TIME_SCALE};
        let file = &opts.engine.commands;
        opts.engine_timeout = self
            .engine_timeout
            .or(file.timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        opts.time_scale = self
            .time_scale
            .or(file.time_scale)
            .unwrap_or(DEFAULT_TIME_SCALE);
        let command = |c: &str| EngineCommand {
            timeout: opts.engine_timeout,
            time_scale: opts.time_scale,
            ..EngineCommand::new(c, &opts.contracts, &opts.fixtures)
        };
        match &self.engine_cmd {
            Some(c) => {
                opts.engine_cmd = Some(command(c));
                opts.tenant_engine_cmds.clear();
            }
            None => {
                opts.engine_cmd = file.default.as_deref().map(command);
                opts.tenant_engine_cmds = file
                    .per_tenant
                    .iter()
                    .map(|(t, c)| (t.clone(), command(c)))
                    .collect();
            }
        }
    }
}

/// What to verify: the inputs, narrowed by filters.
#[derive(Debug, Args)]
pub struct SelectionArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Only this partner (repeatable).
    #[arg(long, value_name = "PARTNER")]
    pub partner: Vec<String>,
    /// Only this tenant, e.g. `sandbox` (repeatable).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Vec<String>,
}

impl SelectionArgs {
    fn options(&self) -> Result<GateOptions, i32> {
        Ok(GateOptions {
            contracts: self.inputs.contracts.clone(),
            scenarios: self.inputs.scenarios.clone(),
            builtin_scenarios: !self.inputs.no_builtin_scenarios,
            fixtures: self.inputs.fixtures.clone(),
            fixtures_out: self.inputs.fixtures_out.clone(),
            records: self.inputs.records,
            partners: self.partner.clone(),
            tenants: self.tenant.clone(),
            engine: self.inputs.engine()?,
            ..GateOptions::new(Seed(self.inputs.seed))
        })
    }
}

#[derive(Debug, Args)]
pub struct GateArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Only this scenario, by file stem (repeatable).
    #[arg(long, value_name = "NAME")]
    pub scenario: Vec<String>,
    /// Run only shard K of N (e.g. `2/4`): a deterministic split of the runs across CI runners.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<verify::gate::Shard>,
    /// Runs to execute at once on this machine (at least 1; default: the cores available).
    /// The report is the same whatever the number.
    #[arg(long, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: Option<usize>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Write the report as JSON here (format: docs/report.md).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write a Markdown summary here (fits `$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Write each run's request journal (JSON lines) into this directory.
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// Write a self-contained replay file per failing run into this directory
    /// (`syncgate replay --from FILE` runs it again anywhere).
    #[arg(long, value_name = "DIR")]
    pub artefacts: Option<PathBuf>,
    /// Verify the pacts against this real sandbox instead of the mock org.
    #[arg(long, value_name = "URL")]
    pub provider_url: Option<String>,
    /// Session token for `--provider-url`.
    #[arg(
        long,
        env = "SYNCGATE_PROVIDER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub provider_token: Option<String>,
    /// Skip provider verification of the bundles' pacts.
    #[arg(long)]
    pub no_pacts: bool,
    /// Check each bundle against the version deployed in this environment (from the store):
    /// a breaking change fails the gate.
    #[arg(long, default_value = "production", value_name = "ENV")]
    pub environment: String,
    /// The engine version the verification results are recorded for (for can-i-deploy).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"), value_name = "VERSION")]
    pub engine_version: String,
    #[command(flatten)]
    pub engine: EngineCmdArgs,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// The partner, e.g. `northwind-outfitters`.
    #[arg(long)]
    pub partner: String,
    /// The tenant the field is being enabled in, e.g. `production`.
    #[arg(long)]
    pub tenant: String,
    /// `Object.Field` to enable (repeatable); its spec is taken from another tenant of the
    /// partner that has it.
    #[arg(long, value_name = "OBJECT.FIELD")]
    pub enable_field: Vec<String>,
    /// A TOML file of field specs (`[objects.Account.fields]` tables) to enable.
    #[arg(long, value_name = "FILE")]
    pub field_spec: Option<PathBuf>,
    /// Also verify the pacts against the partner's sandbox at this URL.
    #[arg(long, value_name = "URL")]
    pub provider_url: Option<String>,
    /// Session token for `--provider-url`.
    #[arg(
        long,
        env = "SYNCGATE_PROVIDER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub provider_token: Option<String>,
    /// Where the certification (preflight.md, preflight.json) is written.
    #[arg(long, default_value = "preflight", value_name = "DIR")]
    pub report_dir: PathBuf,
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub engine: EngineCmdArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The scenario: a name in `--scenarios` or a path to a scenario file.
    #[arg(value_name = "SCENARIO", required_unless_present = "from")]
    pub scenario: Option<String>,
    /// Replay a run from its replay file (`gate --artefacts`) alone, in an empty directory:
    /// its inputs are checked against the recorded hashes and its trace against the
    /// recorded one.
    #[arg(long, value_name = "FILE", conflicts_with = "scenario")]
    pub from: Option<PathBuf>,
    /// Print each request's and response's body under it (cut at 4 KiB).
    #[arg(long)]
    pub bodies: bool,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Use the wall clock: waits really wait (a `Retry-After: 3600` takes an hour).
    #[arg(long)]
    pub real_time: bool,
    /// Also write the timeline as JSON lines here.
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineCmdArgs,
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
    /// Write a tenant's Pact V4 file(s) from its bundle (`--check`: exit 1 when stale).
    Pacts(pacts::PactsArgs),
    /// Write a new tenant bundle from a live org's describe metadata (mappings marked for you).
    Pull(org::PullArgs),
    /// Compare a live org's describe with a tenant's bundle (exit 1 on a breaking drift).
    CheckOrg(org::CheckOrgArgs),
}

/// Runs the CLI and returns the process exit code.
pub fn main_impl() -> i32 {
    let cli = Cli::parse();
    let db = cli.database_url.as_deref();
    // A store URL that names no store is bad input for every command, not a new empty store.
    if let Some(url) = db {
        if let Err(e) = crate::store::StoreUrl::parse(Some(url)) {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    }
    match cli.command {
        Command::Gate(args) => gate(args, db),
        Command::Replay(args) => replay(args),
        Command::Preflight(args) => preflight(args),
        Command::Sync(args) => sync::sync(args, db),
        Command::Dlq(cmd) => sync::dlq(cmd, db),
        Command::Contracts(ContractsCommand::Validate { dir }) => validate(&dir),
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
        Command::Mock(MockCommand::Serve(args)) => mock_serve(args),
        Command::Scenarios(cmd) => scenarios::run(cmd),
        Command::Init(args) => init::run(args),
        Command::Registry(RegistryCommand::Serve(args)) => registry::serve(args, db),
    }
}

fn error(msg: impl std::fmt::Display) {
    eprintln!("error: {msg}");
}

fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    // One thread: the engine and the mock take turns, so a seed gives one order of events.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            error(format_args!("failed to start the async runtime: {e}"));
            exit::INTERNAL
        })
}

fn run_gate(opts: &GateOptions) -> Result<verify::GateReport, i32> {
    let runtime = runtime()?;
    runtime.block_on(verify::run_gate(opts)).map_err(|e| {
        let code = match e {
            verify::GateError::Mock(_) | verify::GateError::Store(_) => exit::INTERNAL,
            _ => exit::BAD_INPUT,
        };
        error(e);
        code
    })
}

fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn gate(args: GateArgs, database_url: Option<&str>) -> i32 {
    let base = match args.selection.options() {
        Ok(o) => o,
        Err(code) => return code,
    };
    // The contract check reads the store: a store that cannot be read fails the gate.
    let registry = match contracts::registry_state(database_url, &args.environment) {
        Ok(r) => r,
        Err(e) => {
            error(format_args!(
                "the contract check needs the store (--database-url): {e}"
            ));
            return exit::INTERNAL;
        }
    };
    let mut opts = GateOptions {
        only_scenarios: args.scenario.clone(),
        shard: args.shard,
        jobs: args.jobs.unwrap_or_else(verify::parallel::default_jobs),
        // A sharded gate verifies the pacts once: in shard 1.
        verify_pacts: !args.no_pacts && args.shard.is_none_or(|s| s.index == 1),
        deployed: registry.deployed,
        published: registry.published,
        environment: args.environment.clone(),
        provider_url: args.provider_url.clone(),
        provider_token: args.provider_token.clone(),
        ..base
    };
    args.engine.apply(&mut opts);
    let judged_a_command = opts.engine_cmd.is_some() || !opts.tenant_engine_cmds.is_empty();
    if let Some(s) = args.shard.filter(|s| s.index != 1 && !args.no_pacts) {
        eprintln!("pacts: verified by shard 1/{}, not by this shard", s.count);
    }
    let report = match run_gate(&opts) {
        Ok(r) => r,
        Err(code) => return code,
    };
    print!(
        "{}",
        report::terminal(&report, report::Style { color: color() })
    );
    report_generated(&report);
    let mut outputs: Vec<(PathBuf, String)> = Vec::new();
    if let Some(path) = &args.junit {
        outputs.push((path.clone(), report::junit(&report)));
    }
    if let Some(path) = &args.json {
        outputs.push((path.clone(), report::json(&report)));
    }
    if let Some(path) = &args.markdown {
        outputs.push((path.clone(), report::markdown(&report)));
    }
    if let Some(dir) = &args.journal_dir {
        for t in &report.tenants {
            for r in &t.runs {
                let path = dir
                    .join(&t.partner)
                    .join(&t.tenant)
                    .join(format!("{}.jsonl", r.scenario));
                outputs.push((path, crate::mock::journal::to_json_lines(&r.journal)));
            }
        }
    }
    for (path, text) in outputs {
        if let Err(e) = write_file(&path, &text) {
            error(e);
            return exit::INTERNAL;
        }
    }
    if let Some(dir) = &args.artefacts {
        match replay_from::write_artefacts(&opts, &report, dir) {
            Ok(paths) => {
                for p in paths {
                    eprintln!("replay file: {} (syncgate replay --from it)", p.display());
                }
            }
            Err(e) => {
                error(e);
                return exit::INTERNAL;
            }
        }
    }
    // A verification vouches for the whole scenario set: a filtered or sharded run is not one.
    let partial = !args.scenario.is_empty() || args.shard.is_some() || args.no_pacts;
    if partial {
        eprintln!("verification results not recorded: --scenario, --shard or --no-pacts ran only part of the checks");
    } else if judged_a_command {
        // The results are of that command, not of this engine version.
        eprintln!("verification results not recorded: an engine command judged another engine");
    }
    let recorded = if partial || judged_a_command {
        Ok(())
    } else {
        runtime().and_then(|rt| {
            rt.block_on(contracts::record_gate_verifications(
                &report,
                &args.engine_version,
                database_url,
            ))
            .map_err(|e| {
                error(format_args!(
                    "failed to record the verification results: {e}"
                ));
                exit::INTERNAL
            })
        })
    };
    if let Err(code) = recorded {
        return code;
    }
    if report.passed() {
        exit::PASSED
    } else {
        exit::FAILED
    }
}

fn preflight(args: PreflightArgs) -> i32 {
    if args.enable_field.is_empty() && args.field_spec.is_none() {
        error("nothing to certify: give --enable-field OBJECT.FIELD or --field-spec FILE");
        return exit::BAD_INPUT;
    }
    let engine = match args.inputs.engine() {
        Ok(e) => e,
        Err(code) => return code,
    };
    // The tenant's engine command, resolved as the gate resolves it (flag, then file).
    let mut gate_like = GateOptions {
        contracts: args.inputs.contracts.clone(),
        fixtures: args.inputs.fixtures.clone(),
        engine: engine.clone(),
        ..GateOptions::new(Seed(args.inputs.seed))
    };
    args.engine.apply(&mut gate_like);
    let engine_cmd = gate_like
        .tenant_engine_cmds
        .remove(&format!("{}/{}", args.partner, args.tenant))
        .or(gate_like.engine_cmd);
    let opts = verify::preflight::PreflightOptions {
        contracts: args.inputs.contracts,
        scenarios: args.inputs.scenarios,
        builtin_scenarios: !args.inputs.no_builtin_scenarios,
        fixtures: args.inputs.fixtures,
        fixtures_out: args.inputs.fixtures_out,
        records: args.inputs.records,
        partner: args.partner,
        tenant: args.tenant,
        enable_fields: args.enable_field,
        field_spec: args.field_spec,
        provider_url: args.provider_url,
        provider_token: args.provider_token,
        seed: Seed(args.inputs.seed),
        engine,
        engine_cmd,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let cert = match rt.block_on(verify::preflight::run_preflight(&opts)) {
        Ok(c) => c,
        Err(e) => {
            let code = match &e {
                verify::preflight::PreflightError::Gate(
                    verify::GateError::Mock(_) | verify::GateError::Store(_),
                ) => exit::INTERNAL,
                _ => exit::BAD_INPUT,
            };
            error(e);
            return code;
        }
    };
    let md = verify::preflight::markdown(&cert);
    print!("{md}");
    for (name, text) in [
        ("preflight.md", md.clone()),
        ("preflight.json", verify::preflight::json(&cert)),
    ] {
        if let Err(e) = write_file(&args.report_dir.join(name), &text) {
            error(e);
            return exit::INTERNAL;
        }
    }
    eprintln!("certification written to {}", args.report_dir.display());
    if cert.passed() {
        exit::PASSED
    } else {
        exit::FAILED
    }
}

fn replay(args: ReplayArgs) -> i32 {
    if let Some(file) = &args.from {
        return replay_from::replay_from(replay_from::FromArgs {
            file,
            trace: args.trace.as_deref(),
            bodies: args.bodies,
        });
    }
    let scenario = args.scenario.clone().unwrap_or_default();
    let base = match args.selection.options() {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut opts = GateOptions {
        real_time: args.real_time,
        verify_pacts: false,
        ..base
    };
    args.engine.apply(&mut opts);
    let as_path = PathBuf::from(&scenario);
    if as_path.is_file() {
        let name = as_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        opts.scenarios = Some(as_path.parent().map(PathBuf::from).unwrap_or_default());
        opts.only_scenarios = vec![name];
    } else {
        opts.only_scenarios = vec![scenario.clone()];
    }
    let report = match run_gate(&opts) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut trace = String::new();
    for t in &report.tenants {
        for r in &t.runs {
            println!(
                "replay {} on {} (bundle {} {}), seed {}{}",
                r.scenario,
                t.label(),
                t.bundle_version,
                t.bundle_hash,
                report.seed,
                if args.real_time { ", real time" } else { "" }
            );
            println!("purpose: {}", r.purpose);
            print!("{}", verify::timeline::render_with(r, args.bodies));
            println!("verdict: {}\n", if r.passed() { "PASS" } else { "FAIL" });
            trace.push_str(&verify::timeline::json_lines(r));
        }
    }
    if let Some(path) = &args.trace {
        if let Err(e) = write_file(path, &trace) {
            error(e);
            return exit::INTERNAL;
        }
    }
    if report.passed() {
        exit::PASSED
    } else {
        exit::FAILED
    }
}

/// Says which fixture sets were generated from the bundles, and where they are.
fn report_generated(report: &verify::GateReport) {
    if report.generated_fixtures.is_empty() {
        return;
    }
    eprintln!(
        "fixtures generated from the contract (seed {}, {} valid records per object; to replay one, pass --fixtures with its <partner>/<tenant> directory):",
        report.seed, report.records
    );
    for line in &report.generated_fixtures {
        eprintln!("  {line}");
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
    // The org as the scenario's partner changed it (`org_fields`), as the gate builds it.
    let bundle = match &scenario {
        Some(s) => match verify::gate::org_as_changed(&bundle, s) {
            Ok(b) => b,
            Err(e) => {
                error(e);
                return exit::BAD_INPUT;
            }
        },
        None => bundle,
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
    // The org as the scenario's partner changed it (`org_fields`), as the gate serves it.
    let bundle = match &scenario {
        Some(s) => match crate::verify::gate::org_as_changed(&bundle, s) {
            Ok(changed) => changed,
            Err(e) => {
                error(e);
                return exit::BAD_INPUT;
            }
        },
        None => bundle,
    };
    let app_file = match args
        .connected_app
        .as_deref()
        .map(crate::mock::oauth::AppFile::load)
    {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            error(e);
            return exit::BAD_INPUT;
        }
    };
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
    org.limit_journal(usize::try_from(args.journal_limit).unwrap_or(usize::MAX));
    if let Some(f) = &app_file {
        org.add_connected_app(f);
    }
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
