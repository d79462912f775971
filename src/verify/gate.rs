//! The gate: for every selected partner × tenant and every scenario, start a mock org on
//! loopback, run the engine against it on a virtual clock, and check the invariants.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::contract_check::contract_check;
pub use super::contract_check::{ContractChange, ContractCheck};
use super::evidence::{ColumnReport, DeliveredChange, EngineOutput, SentRequest};
use super::invariants::{self, names, Evidence, Violation};
use super::oracle::{apply_manual_edits, expectations, AppliedEdit};
use super::pacts::{verify_against_mock, verify_against_url, PactCheck};
use crate::contract::{Bundle, Registry, RegistryError, TenantRef};
use crate::engine::cdc::{CdcReport, CrmChange, MemorySink};
use crate::engine::client::{Credentials, Secret};
use crate::engine::config_file::EngineSettings;
use crate::engine::feed::Feed;
use crate::engine::runner::{CrmSide, RunError, RunSummary, Runner};
use crate::engine::source::{SourceError, SourceSet};
use crate::engine::{EngineConfig, SyncReport, Target};
use crate::mock::{self, ClientCredentials, JournalEntry, MockConfig, MockOrg, RunningMock};
use crate::sim::{Clock, Scenario, ScenarioError, Seed};
use crate::store::{DeadLetterStore, DlqFilter, MemoryStore, PublishedVersion};

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

/// The org as the scenario's partner changed it (`org_fields`), or the bundle unchanged.
pub(crate) fn org_as_changed(bundle: &Bundle, scenario: &Scenario) -> Result<Bundle, GateError> {
    let mut org = bundle.clone();
    for (key, spec) in &scenario.org_fields {
        let (object, field) = key.split_once('.').unwrap_or((key.as_str(), ""));
        let obj = org.objects.get_mut(object).ok_or_else(|| {
            GateError::OrgPatch(format!(
                "{}: `org_fields` names {object}, which {}/{} does not sync",
                scenario.path.display(),
                bundle.partner,
                bundle.tenant
            ))
        })?;
        obj.fields.insert(field.to_string(), spec.clone());
    }
    Ok(org)
}

/// The engine a scenario runs: `base` (the configuration file's), with the scenario's
/// `engine:` settings on top (such as `bulk_threshold`; never faults: broken engines are
/// engine commands).
fn engine_config(base: &EngineConfig, o: &crate::sim::scenario::EngineOverrides) -> EngineConfig {
    fn set<T: Copy>(slot: &mut T, value: Option<T>) {
        if let Some(v) = value {
            *slot = v;
        }
    }
    let mut c = base.clone();
    set(&mut c.max_attempts, o.max_attempts);
    set(&mut c.batch_size, o.batch_size);
    set(&mut c.max_window_waits, o.max_window_waits);
    set(&mut c.bulk_threshold, o.bulk_threshold);
    c
}

/// A fresh mock org served on loopback, and the engine's target for it.
pub struct GateOrg {
    pub org: MockOrg,
    pub running: RunningMock,
    /// Signs in as the gate's connected app; no request log, no extra CA.
    pub target: Target,
}

/// Serves a fresh mock org built from `bundle` (the org as it really is) under `scenario`,
/// on `clock`, with the gate's connected app as its one client.
pub async fn spawn_org(
    bundle: Bundle,
    scenario: Option<Scenario>,
    seed: Seed,
    clock: Clock,
) -> std::io::Result<GateOrg> {
    let creds = ClientCredentials::gate();
    let org = MockOrg::new(MockConfig {
        bundle,
        scenario,
        seed,
        clock,
        clients: vec![creds.clone()],
    });
    let running = mock::spawn(org.clone(), 0).await?;
    let target = Target {
        login_url: running.base_url(),
        credentials: Credentials::client_credentials(
            creds.client_id,
            Secret::new(creds.client_secret),
        ),
        request_log: None,
        ca_pem: None,
    };
    Ok(GateOrg {
        org,
        running,
        target,
    })
}

/// Loads every fixture set the scenarios' runs read, each once.
pub fn load_fixtures(
    scenarios: &[Scenario],
    dir: &std::path::Path,
) -> Result<BTreeMap<String, SourceSet>, SourceError> {
    let mut fixtures = BTreeMap::new();
    for name in scenarios.iter().flat_map(Scenario::fixture_sets) {
        if !fixtures.contains_key(name) {
            fixtures.insert(name.to_string(), SourceSet::load_dir(&dir.join(name))?);
        }
    }
    Ok(fixtures)
}

/// Runs the engine (default configuration) through one scenario against a fresh mock org and
/// checks every invariant. `fixtures` holds (at least) the sets the scenario's runs read.
pub async fn run_scenario(
    bundle: &Bundle,
    scenario: &Scenario,
    fixtures: &BTreeMap<String, SourceSet>,
    seed: Seed,
    real_time: bool,
) -> Result<RunResult, GateError> {
    let base = EngineConfig::default();
    run_scenario_with(bundle, scenario, fixtures, seed, real_time, &base).await
}

/// [`run_scenario`] with the engine configuration `base` (scenario overrides on top): a fresh
/// org, a fresh clock, a fresh DLQ.
pub async fn run_scenario_with(
    bundle: &Bundle,
    scenario: &Scenario,
    fixtures: &BTreeMap<String, SourceSet>,
    seed: Seed,
    real_time: bool,
    base: &EngineConfig,
) -> Result<RunResult, GateError> {
    let fixture_set = |name: &str| {
        fixtures.get(name).ok_or_else(|| {
            GateError::Store(format!(
                "scenario {}: fixture set `{name}` was not loaded",
                scenario.name
            ))
        })
    };
    let first = fixture_set(&scenario.fixtures)?;
    let next = match &scenario.next_run {
        Some(n) => Some((n.after.0, fixture_set(&n.fixtures)?)),
        None => None,
    };
    let combined;
    let source = match next {
        Some((_, later)) => {
            combined = first.followed_by(later);
            &combined
        }
        None => first,
    };
    let clock = if real_time {
        Clock::system()
    } else {
        Clock::virtual_at(scenario.start)
    };
    let started = clock.now();
    let org_bundle = org_as_changed(bundle, scenario)?;
    let GateOrg {
        org,
        running,
        mut target,
    } = spawn_org(
        org_bundle.clone(),
        Some(scenario.clone()),
        seed,
        clock.clone(),
    )
    .await
    .map_err(GateError::Mock)?;
    let config = engine_config(base, &scenario.engine);
    let dlq = MemoryStore::new();
    let request_log = crate::engine::client::RequestLog::default();
    target.request_log = Some(request_log.clone());
    // The engine as `syncgate sync` runs it (one orchestration: pages, lanes, dedupe,
    // cursors, the change-event consumer after each run), over the scenario's fixtures.
    let sink = MemorySink::new();
    let mut runner = Runner::new(bundle, config.clone(), clock.clone(), &dlq, seed);
    runner.keep_timeline = true;
    let crm = CrmSide::for_target(&target, &config.client_name, &sink);
    runner.crm = Some(crm);
    let mut cdc_error = None;
    let mut cdc = CdcReport::default();
    let mut outcome = run_once(&runner, first, &target, &mut cdc, &mut cdc_error).await;
    let mut rerun_from = None;
    if let (Ok(report), Some((after, later))) = (&mut outcome, next) {
        clock.sleep_until(started.plus(after)).await;
        let requests_before = org.journal().len() as u64;
        if super::rerun::adds_nothing(first, later) {
            rerun_from = Some(requests_before as usize);
        }
        runner.seed = Seed(seed.0.wrapping_add(1));
        match run_once(&runner, later, &target, &mut cdc, &mut cdc_error).await {
            Ok(second) => report.absorb(second, requests_before),
            Err(e) => outcome = Err(e),
        }
    }
    let delivered = sink.delivered();
    running.stop().await;

    let journal = org.journal();
    let org_state: BTreeMap<String, Vec<_>> = bundle
        .objects
        .keys()
        .map(|o| (o.clone(), org.records(o)))
        .collect();
    let stored = dlq
        .dlq_list(&DlqFilter::tenant(&format!(
            "{}/{}",
            bundle.partner, bundle.tenant
        )))
        .await
        .map_err(|e| GateError::Store(e.to_string()))?;
    let queued: Vec<_> = stored
        .iter()
        .filter(|l| l.status == crate::store::LetterStatus::Queued)
        .map(|l| l.letter.clone())
        .collect();
    let letters: Vec<_> = stored.into_iter().map(|l| l.letter).collect();
    let expected = expected_org(bundle, &org_bundle, source, &org);
    let sent = request_log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (report, stopped) = match outcome {
        Ok(r) => (r, None),
        Err(e) => (SyncReport::default(), Some(e)),
    };
    let output = engine_output(
        &sent,
        stopped.is_none().then_some(&report),
        letters,
        &delivered,
        cdc_error,
    );
    let mut violations = invariants::check(&Evidence {
        bundle: &org_bundle,
        expectations: &expected,
        org: &org_state,
        journal: &journal,
        source,
        engine: &output,
        manual_edits: &scenario.manual_edits,
    });
    violations.extend(invariants::check_crm_changes(
        &invariants::CrmChangeEvidence {
            bundle,
            org: &org_state,
            manual_edits: &scenario.manual_edits,
            delivered: &output.delivered,
            consumer_error: output.consumer_error.clone(),
        },
    ));
    violations.extend(super::run_checks::check(&super::run_checks::RunEvidence {
        scenario,
        journal: &journal,
        rerun_from,
        bundle: &org_bundle,
        expected: &expected,
        org: &org_state,
        queued: &queued,
        source,
    }));
    let conformance = super::conformance::check(bundle, &output.sent);
    if !conformance.is_empty() {
        violations.push(Violation {
            invariant: names::CONFORMANCE,
            details: conformance,
        });
    }
    if let Some(e) = stopped {
        violations.insert(
            0,
            Violation {
                invariant: names::ENGINE_COMPLETED,
                details: vec![format!("the engine stopped: {e}")],
            },
        );
    }
    let metrics = super::metrics::of(&journal, &report, &cdc);
    Ok(RunResult {
        scenario: scenario.name.clone(),
        purpose: scenario.purpose.clone(),
        violations,
        not_checked: Vec::new(),
        report,
        requests: journal.len(),
        faults: journal.iter().filter(|e| e.fault.is_some()).count(),
        virtual_secs: clock.now().since(started).as_secs(),
        metrics,
        journal,
        cdc,
        edits: org.edit_log(),
    })
}

/// The built-in engine's outputs as the plain evidence the invariants judge.
pub(crate) fn engine_output(
    sent: &[crate::engine::client::SentRequest],
    report: Option<&SyncReport>,
    dead_letters: Vec<crate::store::DeadLetter>,
    delivered: &[CrmChange],
    consumer_error: Option<String>,
) -> EngineOutput {
    EngineOutput {
        sent: sent
            .iter()
            .map(|r| SentRequest {
                method: r.method.clone(),
                path: r.path.clone(),
                headers: r.headers.clone(),
                body: r.body.clone(),
            })
            .collect(),
        columns: report.map(|r| ColumnReport {
            unmapped_columns: r.unmapped_columns.clone(),
            routed_columns: r.routed_columns.clone(),
        }),
        dead_letters,
        delivered: delivered
            .iter()
            .map(|c| DeliveredChange {
                object: c.object.clone(),
                source_id: c.source_id.clone(),
                record_id: c.record_id.clone(),
                field: c.field.clone(),
                value: c.value.clone(),
                replay_id: c.replay_id,
                event_uuid: c.event_uuid.clone(),
            })
            .collect(),
        consumer_error,
    }
}

/// What the org must hold after a run: the oracle's expectations from the bundle and the
/// source, with the manual edits the org saved (and when) taken into account.
pub(crate) fn expected_org(
    bundle: &Bundle,
    org_bundle: &Bundle,
    source: &SourceSet,
    org: &MockOrg,
) -> super::oracle::Expectations {
    let mut expected = expectations(bundle, org_bundle, source);
    let edits: Vec<AppliedEdit> = org
        .saved_edits()
        .into_iter()
        .map(|(e, at)| AppliedEdit {
            object: e.object,
            external_id: e.external_id,
            set: e.set,
            at,
        })
        .collect();
    apply_manual_edits(&mut expected, bundle, source, &edits);
    expected
}

/// One runner pass over a fixed set: the engine's report, or why it stopped. A failure
/// of the change-event consumer is kept in `cdc_error` (judged by the CRM-change invariant).
async fn run_once(
    runner: &Runner<'_>,
    set: &SourceSet,
    target: &Target,
    cdc: &mut CdcReport,
    cdc_error: &mut Option<String>,
) -> Result<SyncReport, RunError> {
    let mut summary = RunSummary::default();
    let outcome = runner
        .run(&mut Feed::fixed(set.clone()), target, &mut summary)
        .await;
    if let Some(report) = summary.crm_changes.take() {
        *cdc = report;
    }
    match outcome {
        Ok(()) => Ok(summary.report),
        Err(RunError::Changes(e)) => {
            *cdc_error = Some(e);
            Ok(summary.report)
        }
        Err(e) => Err(e),
    }
}
