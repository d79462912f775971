//! The gate: for every selected partner × tenant and every scenario, start a mock org on
//! loopback, run the engine against it on a virtual clock, and check the invariants.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::contract_check::contract_check;
pub use super::contract_check::{ContractChange, ContractCheck};
use super::invariants::Violation;
use super::pacts::{verify_against_mock, verify_against_url, PactCheck};
pub(crate) use super::scenario_run::org_as_changed;
pub use super::scenario_run::{load_fixtures, run_scenario, run_scenario_with, spawn_org, GateOrg};
use crate::contract::{Bundle, Registry, RegistryError, TenantRef};
use crate::engine::cdc::CdcReport;
use crate::engine::config_file::EngineSettings;
use crate::engine::source::SourceError;
use crate::engine::SyncReport;
use crate::mock::{self, JournalEntry};
use crate::sim::{Scenario, ScenarioError, Seed};
use crate::store::PublishedVersion;

/// What to verify.
#[derive(Clone, Debug)]
pub struct GateOptions {
    pub contracts: PathBuf,
    /// Scenario files added to the built-in library (a file replaces the built-in scenario
    /// of its name).
    pub scenarios: Option<PathBuf>,
    /// Whether the built-in scenario library is part of the set (`--no-builtin-scenarios`).
    pub builtin_scenarios: bool,
    /// Hand-written fixture sets, one sub-directory per set; a set missing for a tenant is
    /// generated from its bundle.
    pub fixtures: PathBuf,
    /// Where generated fixture sets are written (`<partner>/<tenant>/<set>/`).
    pub fixtures_out: PathBuf,
    /// Valid records per object in generated fixture sets.
    pub records: usize,
    pub partners: Vec<String>,
    pub tenants: Vec<String>,
    /// Scenario names to run (all when empty).
    pub only_scenarios: Vec<String>,
    pub seed: Seed,
    /// Run only this shard of the (tenant, scenario) runs.
    pub shard: Option<Shard>,
    /// Runs in flight at once (each has its own mock, clock and engine).
    pub jobs: usize,
    /// Wall-clock time instead of the virtual clock (replay `--real-time`).
    pub real_time: bool,
    /// Verify each bundle's pacts (against the mock org, or `provider_url`).
    pub verify_pacts: bool,
    /// A real sandbox to verify the pacts against instead of the mock org.
    pub provider_url: Option<String>,
    /// Session token for `provider_url`.
    pub provider_token: Option<String>,
    /// Per tenant (`partner/tenant`): the bundle deployed in the target environment, to
    /// check the bundle on disk against (breaking changes fail the gate).
    pub deployed: BTreeMap<String, Bundle>,
    /// Per tenant (`partner/tenant`): every version published in the registry. With nothing
    /// deployed, the bundle is checked against the latest published version below its own;
    /// a published version with the bundle's number but other content fails the check.
    pub published: BTreeMap<String, Vec<PublishedVersion>>,
    /// The environment `deployed` comes from, for reports.
    pub environment: String,
    /// The engine configuration every run starts from (a scenario's `engine:` overrides
    /// apply on top); its hash goes into every report and verification record.
    pub engine: EngineSettings,
    /// Run this engine command instead of the in-process engine (`--engine-cmd`); its
    /// timeout and time scale also apply to scenarios that name their own `engine_cmd`.
    pub engine_cmd: Option<super::engine_cmd::EngineCommand>,
    /// Per tenant (`partner/tenant`): the engine command that judges it instead of
    /// `engine_cmd` (`[engine.tenants."partner/tenant"] command` in `syncgate.toml`).
    pub tenant_engine_cmds: BTreeMap<String, super::engine_cmd::EngineCommand>,
    /// `--engine-timeout` / `--time-scale` for scenarios that name an `engine_cmd`.
    pub engine_timeout: std::time::Duration,
    pub time_scale: f64,
}

/// Shard `index` (1-based) of `count`: a deterministic split of the runs across CI runners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a shard: write K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl GateOptions {
    /// Options for the example registry laid out as in this repository.
    pub fn new(seed: Seed) -> Self {
        GateOptions {
            contracts: PathBuf::from("contracts"),
            scenarios: None,
            builtin_scenarios: true,
            fixtures: PathBuf::from("harness/fixtures"),
            fixtures_out: PathBuf::from(super::fixture_sets::DEFAULT_OUT),
            records: crate::source::generate::DEFAULT_RECORDS,
            partners: Vec::new(),
            tenants: Vec::new(),
            only_scenarios: Vec::new(),
            seed,
            shard: None,
            jobs: 1,
            real_time: false,
            verify_pacts: true,
            provider_url: None,
            provider_token: None,
            deployed: BTreeMap::new(),
            published: BTreeMap::new(),
            environment: "production".into(),
            engine: EngineSettings::defaults(),
            engine_cmd: None,
            tenant_engine_cmds: BTreeMap::new(),
            engine_timeout: super::engine_cmd::DEFAULT_TIMEOUT,
            time_scale: super::engine_cmd::DEFAULT_TIME_SCALE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("no scenario named {wanted} in {dir} (known: {known})")]
    NoScenario {
        wanted: String,
        dir: String,
        known: String,
    },
    #[error("failed to start the mock org on 127.0.0.1: {0}")]
    Mock(std::io::Error),
    #[error("the state store failed: {0}")]
    Store(String),
    #[error("{0}")]
    OrgPatch(String),
    /// Bad usage: options that select nothing or make no sense (`--jobs 0`).
    #[error("{0}")]
    Usage(String),
    /// An engine command that cannot run (its program is not found).
    #[error("{0}")]
    EngineCommand(String),
}

/// One scenario run against one tenant.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub scenario: String,
    pub purpose: String,
    pub violations: Vec<Violation>,
    /// Invariants this run could not judge (never counted as passed).
    pub not_checked: Vec<Unchecked>,
    pub report: SyncReport,
    /// Requests the mock answered, and how many of those were faults it injected.
    pub requests: usize,
    pub faults: usize,
    /// Virtual time the run took.
    pub virtual_secs: u64,
    #[serde(skip)]
    pub journal: Vec<JournalEntry>,
    /// What the change-event consumer did after the engine run.
    #[serde(skip)]
    pub cdc: CdcReport,
    /// The scenario's manual edits as the org saw them (for the timeline).
    #[serde(skip)]
    pub edits: Vec<mock::EditRecord>,
    /// Requests by endpoint, retries by cause, latency, budget, dead letters by code,
    /// duplicates suppressed.
    pub metrics: super::metrics::RunMetrics,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// An invariant a run did not judge, and why: `not-checked` (the evidence it needs is
/// missing, e.g. an engine command wrote no dead-letters file) or `not-applicable`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unchecked {
    pub invariant: &'static str,
    pub state: &'static str,
    pub reason: String,
}

impl Unchecked {
    pub fn not_checked(invariant: &'static str, reason: &str) -> Self {
        Unchecked {
            invariant,
            state: "not-checked",
            reason: reason.into(),
        }
    }
    pub fn not_applicable(invariant: &'static str, reason: &str) -> Self {
        Unchecked {
            invariant,
            state: "not-applicable",
            reason: reason.into(),
        }
    }
}

/// All runs of one tenant.
#[derive(Clone, Debug, Serialize)]
pub struct TenantResult {
    pub partner: String,
    pub tenant: String,
    pub bundle_version: String,
    pub bundle_hash: String,
    /// The bundle on disk against the version deployed in the target environment (absent
    /// when nothing is deployed there yet).
    pub contract: Option<ContractCheck>,
    /// Provider verification of the bundle's pacts (absent when not asked for).
    pub pacts: Option<PactCheck>,
    pub runs: Vec<RunResult>,
}

impl TenantResult {
    pub fn label(&self) -> String {
        format!("{}/{}", self.partner, self.tenant)
    }
    pub fn passed(&self) -> bool {
        self.runs.iter().all(RunResult::passed)
            && self.pacts.as_ref().is_none_or(PactCheck::passed)
            && self.contract.as_ref().is_none_or(ContractCheck::passed)
    }
}

/// The gate's verdict over every tenant.
#[derive(Clone, Debug, Serialize)]
pub struct GateReport {
    pub seed: u64,
    /// `K/N` when only one shard of the runs was run.
    pub shard: Option<String>,
    /// The scenario directory added to (or, without the built-in library, replacing) the
    /// built-in library, as given; empty when none was.
    pub scenarios_dir: String,
    /// Whether the built-in scenario library was part of the set.
    pub builtin_scenarios: bool,
    /// Fixture sets generated from the bundles, as `partner/tenant set → directory`.
    pub generated_fixtures: Vec<String>,
    /// Valid records per object in generated fixture sets.
    pub records: usize,
    /// `sha256:…` of the engine configuration the runs started from.
    pub engine_config_hash: String,
    /// The file it was read from, or `defaults`.
    pub engine_config_source: String,
    /// The engine command every run used (`--engine-cmd`), if one was given on the command
    /// line (commands from the configuration file come back with `--engine-config`).
    pub engine_cmd: Option<String>,
    pub scenarios: Vec<String>,
    pub tenants: Vec<TenantResult>,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        self.tenants.iter().all(TenantResult::passed)
    }

    /// Runs over every tenant.
    pub fn run_count(&self) -> usize {
        self.tenants.iter().map(|t| t.runs.len()).sum()
    }
}

/// Loads everything the options name, failing early on bad input, then runs the gate.
pub async fn run_gate(opts: &GateOptions) -> Result<GateReport, GateError> {
    if opts.jobs == 0 {
        return Err(GateError::Usage(
            "--jobs 0 runs nothing: give at least 1".into(),
        ));
    }
    let registry = Registry::open(&opts.contracts)?;
    let tenants = registry.select(&opts.partners, &opts.tenants)?;
    let mut scenarios =
        crate::sim::library::load(opts.scenarios.as_deref(), opts.builtin_scenarios)?;
    if scenarios.is_empty() {
        return Err(GateError::Usage(format!(
            "no scenarios in {}: the gate would verify nothing (add `*.yaml` scenario files, point --scenarios at a directory holding them, or drop --no-builtin-scenarios)",
            opts.scenarios
                .as_ref()
                .map_or("the selection".into(), |d| d.display().to_string())
        )));
    }
    for wanted in &opts.only_scenarios {
        if !scenarios.iter().any(|s| &s.name == wanted) {
            let known = scenarios
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(GateError::NoScenario {
                wanted: wanted.clone(),
                dir: crate::sim::library::describe(
                    opts.scenarios.as_deref(),
                    opts.builtin_scenarios,
                ),
                known,
            });
        }
    }
    // Generated fixtures depend on the whole library (the records its manual edits name),
    // never on a filter or a shard: a replay of one run regenerates the same files.
    let library = scenarios.clone();
    if !opts.only_scenarios.is_empty() {
        scenarios.retain(|s| opts.only_scenarios.contains(&s.name));
    }
    // Load every bundle and fixture set before running anything: bad input fails fast.
    let bundles: Vec<(TenantRef, Bundle)> = tenants
        .into_iter()
        .map(|t| registry.load(&t).map(|b| (t, b)))
        .collect::<Result<_, _>>()?;
    let commands = engine_commands(opts, &scenarios)?;
    for (tenant, cmd) in &opts.tenant_engine_cmds {
        super::engine_cmd::check_command(&cmd.command)
            .map_err(|e| GateError::EngineCommand(format!("{tenant}: {e}")))?;
    }
    // Every (tenant, scenario) pair in a fixed order; a shard takes every Nth.
    let plan: Vec<(usize, usize)> = (0..bundles.len())
        .flat_map(|t| (0..scenarios.len()).map(move |s| (t, s)))
        .enumerate()
        .filter(|(i, _)| opts.shard.is_none_or(|sh| i % sh.count == sh.index - 1))
        .map(|(_, pair)| pair)
        .collect();
    if plan.is_empty() {
        let total = bundles.len() * scenarios.len();
        let shard = opts.shard.map_or(String::new(), |s| {
            format!("shard {}/{} of ", s.index, s.count)
        });
        return Err(GateError::Usage(format!(
            "{shard}{total} run(s) selects none: use at most {total} shard(s)"
        )));
    }
    // Unsharded, every selected tenant must have runs (a shard may leave one to the others).
    if opts.shard.is_none() {
        if let Some((_, b)) = (0..bundles.len())
            .find(|t| !plan.iter().any(|(pt, _)| pt == t))
            .map(|t| &bundles[t])
        {
            return Err(GateError::Usage(format!(
                "{}/{} has no runs: nothing would be verified for it",
                b.partner, b.tenant
            )));
        }
    }
    // The fixture sets of the planned runs, per tenant: hand-written or generated.
    let fixtures = super::fixture_sets::resolve_plan(&bundles, &library, &scenarios, &plan, opts)?;
    // `--jobs` runs at once, each on its own thread and runtime (see `parallel`).
    let runs = super::parallel::run_all(plan.len(), opts.jobs, |i| {
        let (t, s) = plan[i];
        let (bundle, fixtures, commands) = (&bundles[t].1, &fixtures[t], &commands);
        // A scenario's own command, else the tenant's, else the one for every tenant.
        let command = match &scenarios[s].engine_cmd {
            Some(_) => commands[s].as_ref(),
            None => opts
                .tenant_engine_cmds
                .get(&format!("{}/{}", bundle.partner, bundle.tenant))
                .or(commands[s].as_ref()),
        };
        // What of a built-in scenario the tenant's objects allow; the rest is said.
        let (scenario, notes) = super::applicability::for_tenant(&scenarios[s], bundle);
        async move {
            let scenario = scenario.as_ref();
            let run = match command {
                Some(cmd) => {
                    super::engine_cmd::run_scenario_in(
                        bundle,
                        scenario,
                        opts.seed,
                        cmd,
                        &fixtures.dirs,
                        &opts.engine.config,
                    )
                    .await
                }
                None => {
                    run_scenario_with(
                        bundle,
                        scenario,
                        &fixtures.sets,
                        opts.seed,
                        opts.real_time,
                        &opts.engine.config,
                    )
                    .await
                }
            };
            run.map(|mut r| {
                r.not_checked.extend(notes);
                r
            })
        }
    })
    .map_err(GateError::Mock)?;
    let mut results: Vec<TenantResult> = Vec::new();
    for (&(t, _), run) in plan.iter().zip(runs) {
        let run = run?;
        let bundle = &bundles[t].1;
        match results.last_mut() {
            Some(last) if last.partner == bundle.partner && last.tenant == bundle.tenant => {
                last.runs.push(run)
            }
            _ => results.push(TenantResult {
                partner: bundle.partner.clone(),
                tenant: bundle.tenant.clone(),
                bundle_version: bundle.version.clone(),
                bundle_hash: bundle.content_hash(),
                contract: None,
                pacts: None,
                runs: vec![run],
            }),
        }
    }
    // The pacts are verified for every selected tenant, also one this shard has no runs of
    // (the CLI lets one shard of a sharded gate verify them, so they run once).
    if opts.verify_pacts {
        for (_, b) in &bundles {
            if !results
                .iter()
                .any(|t| t.partner == b.partner && t.tenant == b.tenant)
            {
                results.push(TenantResult {
                    partner: b.partner.clone(),
                    tenant: b.tenant.clone(),
                    bundle_version: b.version.clone(),
                    bundle_hash: b.content_hash(),
                    contract: None,
                    pacts: None,
                    runs: Vec::new(),
                });
            }
        }
        results.sort_by_key(|t| {
            bundles
                .iter()
                .position(|(_, b)| b.partner == t.partner && b.tenant == t.tenant)
        });
    }
    for t in &mut results {
        let Some((_, bundle)) = bundles
            .iter()
            .find(|(_, b)| b.partner == t.partner && b.tenant == t.tenant)
        else {
            continue;
        };
        let label = t.label();
        t.contract = Some(contract_check(
            bundle,
            &opts.environment,
            opts.deployed.get(&label),
            opts.published.get(&label).map_or(&[][..], Vec::as_slice),
        )?);
    }
    if opts.verify_pacts {
        for t in &mut results {
            let Some((_, bundle)) = bundles
                .iter()
                .find(|(_, b)| b.partner == t.partner && b.tenant == t.tenant)
            else {
                continue;
            };
            t.pacts = Some(match &opts.provider_url {
                Some(url) => verify_against_url(bundle, url, opts.provider_token.as_deref()).await,
                None => verify_against_mock(bundle, opts.seed).await,
            });
        }
    }
    Ok(GateReport {
        seed: opts.seed.0,
        shard: opts.shard.map(|s| format!("{}/{}", s.index, s.count)),
        scenarios_dir: opts
            .scenarios
            .as_ref()
            .map_or(String::new(), |d| d.display().to_string()),
        builtin_scenarios: opts.builtin_scenarios,
        records: opts.records,
        generated_fixtures: super::fixture_sets::listing(&bundles, &fixtures),
        engine_config_hash: opts.engine.hash.clone(),
        engine_config_source: opts.engine.source_label(),
        engine_cmd: opts
            .engine_cmd
            .as_ref()
            .filter(|c| Some(&c.command) != opts.engine.commands.default.as_ref())
            .map(|c| c.command.clone()),
        scenarios: scenarios.iter().map(|s| s.name.clone()).collect(),
        tenants: results,
    })
}

/// The engine command of each scenario: its own `engine_cmd`, else `--engine-cmd`, else
/// none (the in-process engine). Every program is looked up before anything runs.
fn engine_commands(
    opts: &GateOptions,
    scenarios: &[Scenario],
) -> Result<Vec<Option<super::engine_cmd::EngineCommand>>, GateError> {
    use super::engine_cmd::{check_command, EngineCommand};
    let mut out = Vec::new();
    for s in scenarios {
        let cmd = match (&s.engine_cmd, &opts.engine_cmd) {
            (Some(own), _) => Some(EngineCommand {
                command: own.clone(),
                timeout: opts.engine_timeout,
                time_scale: opts.time_scale,
                ..EngineCommand::new("", &opts.contracts, &opts.fixtures)
            }),
            (None, Some(c)) => Some(c.clone()),
            (None, None) => None,
        };
        if let Some(c) = &cmd {
            check_command(&c.command).map_err(|e| {
                GateError::EngineCommand(match &s.engine_cmd {
                    Some(_) => format!("{}: {e}", s.path.display()),
                    None => e,
                })
            })?;
        }
        out.push(cmd);
    }
    Ok(out)
}
