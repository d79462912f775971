//! The command line's shape: the clap definitions of every command and the flags they
//! share (the doc comments are the `--help` text), and how shared flags resolve into the
//! library's options.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use super::contracts::{
    CanIDeployArgs, DiffArgs, ListArgs, PublishArgs, RecordDeploymentArgs, ShowArgs,
};
use super::registry::RegistryCommand;
use super::{dlq, init, org, pacts, scenarios, sync, CliError};
use crate::engine::config_file::EngineSettings;
use crate::sim::Seed;
use crate::verify::{self, GateOptions};

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
    Dlq(dlq::DlqCommand),
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
    #[command(flatten)]
    pub registry: ContractsDir,
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
    /// Keep only the newest N change events (besides the 72-hour retention; the rest are
    /// counted in `/__syncgate/state`, and resuming from one of them is `INVALID_REPLAY_ID`),
    /// so a mock under a long write load stays small.
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub event_limit: u64,
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
    /// The engine configuration these inputs name.
    pub(super) fn engine(&self) -> Result<EngineSettings, CliError> {
        Ok(EngineSettings::resolve(
            self.engine_config.as_deref(),
            &self.contracts,
        )?)
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
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub engine_timeout: Option<std::time::Duration>,
    /// Org seconds per wall second for engine commands (the mock's scaled clock)
    /// [default: `time_scale` in the engine configuration, else 3600].
    #[arg(long, value_name = "N", value_parser = parse_time_scale)]
    pub time_scale: Option<f64>,
}

/// A duration flag: above zero, written `500ms`, `5s`, `1m`, `2h`.
pub(super) fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::sim::time::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{s}` is not a duration above zero (e.g. 500ms, 5s, 1m)"))
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
    pub(super) fn apply(&self, opts: &mut GateOptions) {
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
    pub(super) fn options(&self) -> Result<GateOptions, CliError> {
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
    #[command(flatten)]
    pub provider: ProviderArgs,
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
    #[command(flatten)]
    pub provider: ProviderArgs,
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

/// The partner's real sandbox to verify the pacts against (shared by `gate`, where it
/// replaces the mock org, and `preflight`, where it comes on top).
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// Verify the pacts against the partner's real sandbox at this URL (`gate`: instead of
    /// the mock org; `preflight`: as well).
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
}

/// The registry on disk that a `partner/tenant` argument is looked up in.
#[derive(Debug, Args)]
pub struct ContractsDir {
    /// The registry on disk `partner/tenant` is looked up in.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
}

impl ContractsDir {
    /// The tenant directory `spec` names (see [`tenant_dir`]).
    pub fn tenant_dir(&self, spec: &str) -> PathBuf {
        tenant_dir(spec, &self.contracts)
    }
}

/// The tenant directory `spec` names: `spec` itself when it holds `bundle.toml`, else
/// `partner/tenant` under `contracts`.
pub fn tenant_dir(spec: &str, contracts: &Path) -> PathBuf {
    let as_dir = PathBuf::from(spec);
    if as_dir.join("bundle.toml").is_file() {
        as_dir
    } else {
        contracts.join(spec)
    }
}
