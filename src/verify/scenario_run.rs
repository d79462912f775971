//! One scenario run with the in-process engine: a fresh mock org on loopback built from the
//! bundle (as the scenario's partner changed it), the engine as `syncgate sync` runs it on
//! the scenario's clock, then every invariant over what the run left behind. The gate runs
//! this for each (tenant, scenario) pair that has no engine command.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::discipline::{CallEvidence, CallLimits, OrgLimits};
use super::evidence::{ColumnReport, DeliveredChange, EngineOutput, SentRequest};
use super::gate::{GateError, RunResult};
use super::invariants::{self, names, Evidence, Violation};
use super::oracle::{apply_manual_edits, expectations, AppliedEdit};
use super::refusing_sink::RefusingSink;
use crate::contract::Bundle;
use crate::engine::cdc::{CdcReport, CrmChange};
use crate::engine::client::{Credentials, Secret};
use crate::engine::feed::Feed;
use crate::engine::runner::{CrmSide, RunError, RunSummary, Runner};
use crate::engine::source::{SourceError, SourceSet};
use crate::engine::{EngineConfig, SyncReport, Target};
use crate::mock::{self, ClientCredentials, MockConfig, MockOrg, Record, RunningMock};
use crate::sim::{Clock, Scenario, Seed};
use crate::store::{DeadLetterStore, DlqFilter, MemoryStore};

/// The org as the scenario's partner changed it (`org_fields`, and its long-running limit
/// from `limits.concurrent_long_running`), or the bundle unchanged.
pub(crate) fn org_as_changed(bundle: &Bundle, scenario: &Scenario) -> Result<Bundle, GateError> {
    let mut org = bundle.clone();
    if let Some(n) = scenario.limits.concurrent_long_running {
        org.limits.concurrent_long_running = n;
    }
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
pub(crate) fn engine_config(
    base: &EngineConfig,
    o: &crate::sim::scenario::EngineOverrides,
) -> EngineConfig {
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
    set(&mut c.rate_per_sec, o.rate_per_sec);
    set(&mut c.burst, o.burst);
    set(&mut c.max_concurrent, o.max_concurrent);
    if o.daily_budget.is_some() {
        c.daily_budget = o.daily_budget;
    }
    c
}

/// The calling limits `config` sets: what `rate-and-concurrency-within-limits` holds a run to.
pub(crate) fn call_limits(config: &EngineConfig) -> CallLimits {
    CallLimits {
        rate_per_sec: config.rate_per_sec,
        burst: config.burst,
        max_concurrent: config.max_concurrent,
        daily_budget: config.daily_budget,
    }
}

/// The discipline invariants ([`super::discipline`]) over a finished run's journal: the
/// org's limits are the bundle's as the mock org ran them, the scenario's budget on top.
pub(crate) fn check_discipline(
    journal: &[mock::JournalEntry],
    limits: CallLimits,
    org_bundle: &Bundle,
    scenario: &Scenario,
    slack: std::time::Duration,
) -> (Vec<Violation>, Vec<super::gate::Unchecked>) {
    let l = &org_bundle.limits;
    super::discipline::check(&CallEvidence {
        journal,
        limits,
        slack,
        org: OrgLimits {
            daily_api_requests: scenario
                .limits
                .daily_api_requests
                .unwrap_or(l.daily_api_requests),
            concurrent_long_running: l.concurrent_long_running,
            long_running_threshold: std::time::Duration::from_secs(l.long_running_threshold_secs),
        },
    })
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

/// The org a scenario runs against: the bundle as the scenario's partner changed it
/// ([`org_as_changed`]; borrowed, not copied, when the scenario changes nothing: most
/// scenarios), served fresh on `clock`.
pub(crate) async fn spawn_scenario_org<'b>(
    bundle: &'b Bundle,
    scenario: &Scenario,
    seed: Seed,
    clock: &Clock,
) -> Result<(std::borrow::Cow<'b, Bundle>, GateOrg), GateError> {
    let unchanged =
        scenario.org_fields.is_empty() && scenario.limits.concurrent_long_running.is_none();
    let org_bundle = match unchanged {
        true => std::borrow::Cow::Borrowed(bundle),
        false => std::borrow::Cow::Owned(org_as_changed(bundle, scenario)?),
    };
    let org = spawn_org(
        org_bundle.clone().into_owned(),
        Some(scenario.clone()),
        seed,
        clock.clone(),
    )
    .await
    .map_err(GateError::Mock)?;
    Ok((org_bundle, org))
}

/// Loads every fixture set the scenarios' runs read, each once.
pub fn load_fixtures(
    scenarios: &[Scenario],
    dir: &std::path::Path,
) -> Result<BTreeMap<String, Arc<SourceSet>>, SourceError> {
    let mut fixtures = BTreeMap::new();
    for name in scenarios.iter().flat_map(Scenario::fixture_sets) {
        if !fixtures.contains_key(name) {
            fixtures.insert(
                name.to_string(),
                Arc::new(SourceSet::load_dir(&dir.join(name))?),
            );
        }
    }
    Ok(fixtures)
}

/// Runs the engine (default configuration) through one scenario against a fresh mock org and
/// checks every invariant. `fixtures` holds (at least) the sets the scenario's runs read.
pub async fn run_scenario(
    bundle: &Bundle,
    scenario: &Scenario,
    fixtures: &BTreeMap<String, Arc<SourceSet>>,
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
    fixtures: &BTreeMap<String, Arc<SourceSet>>,
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
    let (org_bundle, gate_org) = spawn_scenario_org(bundle, scenario, seed, &clock).await?;
    let org_bundle = org_bundle.as_ref();
    let GateOrg {
        org,
        running,
        mut target,
    } = gate_org;
    let config = engine_config(base, &scenario.engine);
    let dlq = MemoryStore::new();
    let request_log = crate::engine::client::RequestLog::default();
    target.request_log = Some(request_log.clone());
    // The engine as `syncgate sync` runs it (one orchestration: pages, lanes, dedupe,
    // cursors, the change-event consumer after each run), over the scenario's fixtures.
    // The source side, refusing the deliveries the scenario names (`events.sink_refuses`);
    // after each refusal the consumer is restarted on the same state store.
    let sink = RefusingSink::for_events(&scenario.events);
    let mut restarts = 0;
    let mut runner = Runner::new(bundle, config.clone(), clock.clone(), &dlq, seed);
    runner.keep_timeline = true;
    let crm = CrmSide::for_target(&target, &config.client_name, &sink);
    runner.crm = Some(crm);
    let mut cdc_error = None;
    let mut cdc = CdcReport::default();
    let mut outcome = run_once(&runner, first, &target, &mut cdc, &mut cdc_error).await;
    restart_after_refusals(
        &runner,
        &target,
        &sink,
        &mut cdc,
        &mut cdc_error,
        &mut restarts,
    )
    .await;
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
        restart_after_refusals(
            &runner,
            &target,
            &sink,
            &mut cdc,
            &mut cdc_error,
            &mut restarts,
        )
        .await;
    }
    let refusals_left = sink.refusals_left();
    let delivered = sink.delivered();
    running.stop().await;

    let journal = org.journal();
    let bulk_rows = org.bulk_rows();
    let org_state = org_state(bundle, &org);
    let saved_edits = org.saved_edits();
    let edits = org.edit_log();
    // What the org holds besides (its indexes, change events, Bulk jobs' rows) is not needed
    // past here: freed before the oracle and the invariants allocate theirs, so a run's peak
    // memory holds one copy of the org, not two.
    drop(org);
    drop(runner);
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
    drop(dlq);
    let expected = expected_org(bundle, org_bundle, source, saved_edits);
    // Taken, not cloned: the run is over and nothing else reads the log.
    let sent = std::mem::take(&mut *request_log.lock().unwrap_or_else(|p| p.into_inner()));
    let (report, stopped) = match outcome {
        Ok(r) => (r, None),
        Err(e) => (SyncReport::default(), Some(e)),
    };
    let output = engine_output(
        sent,
        stopped.is_none().then_some(&report),
        letters,
        &delivered,
        cdc_error,
    );
    let mut violations = invariants::check(&Evidence {
        bundle: org_bundle,
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
    if refusals_left > 0 {
        violations.push(Violation {
            invariant: names::CRM_CHANGES,
            details: vec![format!(
                "the sink refused only {} of the {} deliveries the scenario names (the \
                 consumer, restarted {} times, offered no more): the refusals and restarts \
                 were not all exercised",
                scenario.events.sink_refuses - refusals_left,
                scenario.events.sink_refuses,
                restarts
            )],
        });
    }
    violations.extend(super::run_checks::check(&super::run_checks::RunEvidence {
        scenario,
        journal: &journal,
        rerun_from,
        bundle: org_bundle,
        expected: &expected,
        org: &org_state,
        queued: &queued,
        source,
        bulk_rows: &bulk_rows,
    }));
    let conformance = super::conformance::check(bundle, &output.sent);
    if !conformance.is_empty() {
        violations.push(Violation {
            invariant: names::CONFORMANCE,
            details: conformance,
        });
    }
    let (discipline, not_checked) = check_discipline(
        &journal,
        call_limits(&config),
        org_bundle,
        scenario,
        // The virtual clock's millisecond; on the system clock, a request reaches the
        // org a little after the engine let it go.
        std::time::Duration::from_millis(if real_time { 5 } else { 1 }),
    );
    violations.extend(discipline);
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
        not_checked,
        report,
        requests: journal.len(),
        faults: journal.iter().filter(|e| e.fault.is_some()).count(),
        virtual_secs: clock.now().since(started).as_secs(),
        metrics,
        journal,
        cdc,
        edits,
    })
}

/// Live records per object of the bundle, as the org holds them at the end of a run.
/// Moved out of the org, not copied: the run is over and a second copy of every record would
/// be most of the gate's peak memory at volume.
pub(crate) fn org_state(bundle: &Bundle, org: &MockOrg) -> BTreeMap<String, Vec<Record>> {
    bundle
        .objects
        .keys()
        .map(|o| (o.clone(), org.take_records(o)))
        .collect()
}

/// The built-in engine's outputs as the plain evidence the invariants judge (the requests
/// are moved, not copied: their bodies are most of a run's memory).
pub(crate) fn engine_output(
    sent: Vec<crate::engine::client::SentRequest>,
    report: Option<&SyncReport>,
    dead_letters: Vec<crate::store::DeadLetter>,
    delivered: &[CrmChange],
    consumer_error: Option<String>,
) -> EngineOutput {
    EngineOutput {
        sent: sent
            .into_iter()
            .map(|r| SentRequest {
                method: r.method,
                path: r.path,
                headers: r.headers,
                body: r.body,
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
    saved_edits: Vec<(crate::sim::scenario::ManualEdit, crate::sim::Timestamp)>,
) -> super::oracle::Expectations {
    let mut expected = expectations(bundle, org_bundle, source);
    let edits: Vec<AppliedEdit> = saved_edits
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
    set: &Arc<SourceSet>,
    target: &Target,
    cdc: &mut CdcReport,
    cdc_error: &mut Option<String>,
) -> Result<SyncReport, RunError> {
    let mut summary = RunSummary::default();
    let outcome = runner
        .run(&mut Feed::fixed(Arc::clone(set)), target, &mut summary)
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

/// After each delivery the sink refused, starts the change-event consumer again as a
/// restarted process would (a fresh consumer on the same state store, from the stored
/// replay ID), until it drains. A failure with no refusal behind it is left standing.
async fn restart_after_refusals(
    runner: &Runner<'_>,
    target: &Target,
    sink: &RefusingSink,
    cdc: &mut CdcReport,
    cdc_error: &mut Option<String>,
    restarts: &mut u32,
) {
    while cdc_error.is_some() && sink.refused() > *restarts {
        *restarts += 1;
        match runner.restart_consumer(target).await {
            Ok(Some(report)) => {
                *cdc = report;
                *cdc_error = None;
            }
            Ok(None) => return,
            Err((report, e)) => {
                *cdc = report;
                *cdc_error = Some(match e {
                    RunError::Changes(e) => e,
                    e => e.to_string(),
                });
            }
        }
    }
}
