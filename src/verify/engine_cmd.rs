//! The engine command: the gate runs any sync engine as a child process under the engine
//! protocol (`docs/engine-protocol.md`), on a scaled org clock, and judges what it left.

mod files;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use self::files::{copy_fixtures, read_dead_letters, read_outbox, read_report, write_sqlite};
use super::discipline::CallLimits;
use super::gate::{GateError, RunResult, Unchecked};
use super::invariants::{self, names, Evidence, Violation};
use super::scenario_run::{call_limits, check_discipline, engine_config};
use super::scenario_run::{engine_output, expected_org, org_state, spawn_scenario_org, GateOrg};
use crate::contract::Bundle;
use crate::engine::client::SentRequest;
use crate::engine::source::SourceSet;
use crate::mock::ClientCredentials;
use crate::sim::{Clock, Scenario, Seed};

/// The version of the protocol this build speaks (`SYNCGATE_PROTOCOL`).
pub const PROTOCOL_VERSION: &str = "1";

/// Org seconds per wall second for engine commands unless `--time-scale` says otherwise.
pub const DEFAULT_TIME_SCALE: f64 = 3600.0;

/// Wall-clock limit per engine run unless `--engine-timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How to run a foreign engine.
#[derive(Clone, Debug)]
pub struct EngineCommand {
    /// Run with `sh -c`.
    pub command: String,
    /// Wall-clock limit of one run of the command; past it its process group is killed.
    pub timeout: Duration,
    /// Org seconds per wall second.
    pub time_scale: f64,
    /// The registry directory (`SYNCGATE_CONTRACTS`).
    pub contracts: PathBuf,
    /// Where the fixture sets live (each run's set is copied from here).
    pub fixtures: PathBuf,
}

impl EngineCommand {
    pub fn new(command: impl Into<String>, contracts: &Path, fixtures: &Path) -> Self {
        EngineCommand {
            command: command.into(),
            timeout: DEFAULT_TIMEOUT,
            time_scale: DEFAULT_TIME_SCALE,
            contracts: contracts.to_path_buf(),
            fixtures: fixtures.to_path_buf(),
        }
    }
}

/// Checks that the command's program exists (on `PATH`, or as a path), before any run.
pub fn check_command(command: &str) -> Result<(), String> {
    let program = command
        .split_whitespace()
        .find(|w| !w.contains('=') || w.starts_with('='))
        .ok_or_else(|| "the engine command is empty".to_string())?;
    let found = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        }) || is_shell_builtin(program)
    };
    if found {
        Ok(())
    } else {
        Err(format!(
            "engine command `{command}`: `{program}` was not found (not on PATH, not a file)"
        ))
    }
}

fn is_shell_builtin(word: &str) -> bool {
    matches!(
        word,
        "exit" | "true" | "false" | "echo" | "cd" | "exec" | "sleep" | "test" | "[" | ":"
    )
}

/// What one start of the command did.
struct Exit {
    /// `None` when it finished with 0 or 1; otherwise why `engine-completed` fails.
    failure: Option<String>,
}

/// Runs one scenario with the engine command against a fresh mock org on a scaled clock,
/// and checks every invariant on what the engine left (org, journal, files).
pub async fn run_scenario(
    bundle: &Bundle,
    scenario: &Scenario,
    seed: Seed,
    engine: &EngineCommand,
) -> Result<RunResult, GateError> {
    let base = crate::engine::EngineConfig::default();
    run_scenario_in(bundle, scenario, seed, engine, &Default::default(), &base).await
}

/// [`run_scenario`] reading the fixture sets named in `dirs` from there (a tenant's
/// generated sets), the others from `engine.fixtures`. `base` is the engine configuration
/// (`syncgate.toml`): its calling limits, with the scenario's `engine:` settings on top,
/// are the ones the command is told (`SYNCGATE_ENGINE_LIMITS`) and held to.
pub async fn run_scenario_in(
    bundle: &Bundle,
    scenario: &Scenario,
    seed: Seed,
    engine: &EngineCommand,
    dirs: &std::collections::BTreeMap<String, std::path::PathBuf>,
    base: &crate::engine::EngineConfig,
) -> Result<RunResult, GateError> {
    let mut limits = call_limits(&engine_config(base, &scenario.engine));
    // An engine command runs on the wall clock, scaled: it can pace itself and count its
    // requests in flight, but it cannot see where the org's UTC day ends, so a configured
    // daily budget is neither passed on nor judged (and the report says so).
    let unjudged_budget = limits.daily_budget.take().map(|budget| {
        Unchecked::not_checked(
            names::RATE_AND_CONCURRENCY,
            &format!(
                "the configured daily_budget ({budget} a day) is not judged for an engine command: it runs on the wall clock and cannot see the org's UTC day (the token bucket and concurrency cap are judged)"
            ),
        )
    });
    let fixture_dir = |name: &str| {
        dirs.get(name)
            .cloned()
            .unwrap_or_else(|| engine.fixtures.join(name))
    };
    let first = SourceSet::load_dir(&fixture_dir(&scenario.fixtures))?;
    let next = match &scenario.next_run {
        Some(n) => Some((
            n.after.0,
            n.fixtures.clone(),
            SourceSet::load_dir(&fixture_dir(&n.fixtures))?,
        )),
        None => None,
    };
    let source = match &next {
        Some((_, _, later)) => first.followed_by(later),
        None => first.clone(),
    };
    let clock = Clock::scaled_at(scenario.start, engine.time_scale);
    // Org time stands still until the engine's first request (its start-up is not the
    // org's business), and again between runs.
    clock.pause();
    let started = clock.now();
    let (org_bundle, GateOrg { org, running, .. }) =
        spawn_scenario_org(bundle, scenario, seed, &clock).await?;
    let org_bundle = org_bundle.as_ref();
    org.capture_requests();
    let io =
        |what: &str, e: std::io::Error| GateError::Store(format!("engine command: {what}: {e}"));
    let work = tempfile::Builder::new()
        .prefix("syncgate-engine-")
        .tempdir()
        .map_err(|e| io("cannot make a work directory", e))?;
    let files = RunFiles::new(work.path());
    std::fs::create_dir_all(&files.state).map_err(|e| io("state directory", e))?;
    let bundle_json = serde_json::to_string_pretty(bundle)
        .map_err(|e| GateError::Store(format!("cannot write the bundle as JSON: {e}")))?;
    std::fs::write(&files.bundle, bundle_json).map_err(|e| io("bundle.json", e))?;

    let mut runs: Vec<(String, SourceSet)> = vec![(scenario.fixtures.clone(), first)];
    let mut waits = vec![None];
    if let Some((after, name, later)) = next {
        runs.push((name, later));
        waits.push(Some(after));
    }
    let mut failures = Vec::new();
    // A second run over changes the first already had must send nothing.
    let mut rerun_from = None;
    for (index, ((set_name, set), wait)) in runs.iter().zip(waits).enumerate() {
        if index == 1 && super::rerun::adds_nothing(&runs[0].1, set) {
            rerun_from = Some(org.journal().len());
        }
        if let Some(after) = wait {
            // No engine runs in between: org time jumps to the next run (a wall-clock
            // wait would show nothing more).
            let (at, now) = (started.plus(after), clock.now());
            if at > now {
                clock.advance(at.since(now));
            }
        }
        let run_dir = work.path().join(format!("run-{}", index + 1));
        let source_dir = run_dir.join("source");
        copy_fixtures(&fixture_dir(set_name), &source_dir).map_err(|e| io("source copy", e))?;
        let sqlite = run_dir.join("source.sqlite");
        write_sqlite(&sqlite, set, scenario.start)
            .map_err(|e| GateError::Store(format!("engine command: source SQLite: {e}")))?;
        let env = protocol_env(
            &running.base_url(),
            bundle,
            scenario,
            seed,
            engine,
            &files,
            &source_dir,
            &sqlite,
            index,
            &limits,
        );
        let exit = run_child(engine, &env, &run_dir).await;
        clock.pause();
        if let Some(f) = exit.failure {
            failures.push(format!("run {}: {f}", index + 1));
            break;
        }
    }
    running.stop().await;

    let journal = org.journal();
    let bulk_rows = org.bulk_rows();
    let org_state = org_state(bundle, &org);
    let tenant = format!("{}/{}", bundle.partner, bundle.tenant);
    let mut not_checked: Vec<Unchecked> = unjudged_budget.into_iter().collect();
    let letters = match read_dead_letters(&files.dead_letters, &tenant, started) {
        Ok(Some(l)) => l,
        Ok(None) => {
            not_checked.push(Unchecked::not_checked(
                names::DEAD_LETTERED,
                "the engine wrote no dead-letters file (SYNCGATE_DEAD_LETTERS)",
            ));
            Vec::new()
        }
        Err(e) => {
            failures.push(e);
            Vec::new()
        }
    };
    let report = match read_report(&files.report) {
        Ok(r) => r,
        Err(e) => {
            failures.push(e);
            None
        }
    };
    if report.is_none() {
        not_checked.push(Unchecked::not_checked(
            names::COLUMNS,
            "the engine wrote no report file (SYNCGATE_REPORT)",
        ));
    }
    let expected = expected_org(bundle, org_bundle, &source, org.saved_edits());
    let sent: Vec<SentRequest> = org
        .captured_requests()
        .into_iter()
        .map(|r| SentRequest {
            method: r.method,
            path: r.path,
            headers: r.headers,
            body: r.body,
        })
        .collect();
    let completed = failures.is_empty();
    let delivered = match read_outbox(&files.outbox) {
        Ok(d) => d,
        Err(e) => {
            failures.push(e);
            None
        }
    };
    let output = engine_output(
        sent,
        report.as_ref().filter(|_| completed),
        letters.clone(),
        delivered.as_deref().unwrap_or_default(),
        None,
    );
    let mut violations = invariants::check(&Evidence {
        bundle: org_bundle,
        expectations: &expected,
        org: &org_state,
        journal: &journal,
        source: &source,
        engine: &output,
        manual_edits: &scenario.manual_edits,
    });
    if not_checked
        .iter()
        .any(|u| u.invariant == names::DEAD_LETTERED)
    {
        violations.retain(|v| v.invariant != names::DEAD_LETTERED);
    }
    if scenario.events.sink_refuses > 0 {
        // An outbox file has no way to refuse a delivery short of failing the whole
        // command, and the gate does not restart engine commands: judging the outbox as if
        // the source had accepted everything would pass what the scenario is about.
        not_checked.push(Unchecked::not_checked(
            names::CRM_CHANGES,
            "the scenario's sink refuses deliveries and the consumer is restarted \
             (events.sink_refuses); the gate does not model that for engine commands",
        ));
    } else if delivered.is_some() {
        violations.extend(invariants::check_crm_changes(
            &invariants::CrmChangeEvidence {
                bundle,
                org: &org_state,
                manual_edits: &scenario.manual_edits,
                delivered: &output.delivered,
                consumer_error: None,
            },
        ));
    } else {
        not_checked.push(Unchecked::not_applicable(
            names::CRM_CHANGES,
            "the engine runs no change-event consumer (no SYNCGATE_CRM_OUTBOX output)",
        ));
    }
    violations.extend(super::run_checks::check(&super::run_checks::RunEvidence {
        scenario,
        journal: &journal,
        rerun_from,
        bundle: org_bundle,
        expected: &expected,
        org: &org_state,
        queued: &letters,
        source: &source,
        bulk_rows: &bulk_rows,
    }));
    let conformance = super::conformance::check(bundle, &output.sent);
    if !conformance.is_empty() {
        violations.push(Violation {
            invariant: names::CONFORMANCE,
            details: conformance,
        });
    }
    // A foreign engine paces itself on the wall clock: 5 wall ms of slack, in org time.
    let slack = std::time::Duration::from_secs_f64(0.005 * engine.time_scale);
    let (discipline, unjudged) = check_discipline(&journal, limits, org_bundle, scenario, slack);
    violations.extend(discipline);
    not_checked.extend(unjudged);
    if !failures.is_empty() {
        violations.insert(
            0,
            Violation {
                invariant: names::ENGINE_COMPLETED,
                details: failures,
            },
        );
    }
    let mut report = report.unwrap_or_default();
    report.dead_lettered = report.dead_lettered.max(letters.len());
    let metrics = super::metrics::of(&journal, &report, &Default::default());
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
        cdc: Default::default(),
        edits: org.edit_log(),
    })
}

/// Files shared by every start of the command in one scenario run.
struct RunFiles {
    bundle: PathBuf,
    dead_letters: PathBuf,
    report: PathBuf,
    outbox: PathBuf,
    state: PathBuf,
}

impl RunFiles {
    fn new(dir: &Path) -> Self {
        RunFiles {
            bundle: dir.join("bundle.json"),
            dead_letters: dir.join("dead-letters.jsonl"),
            report: dir.join("report.json"),
            outbox: dir.join("crm-outbox.jsonl"),
            state: dir.join("state"),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn protocol_env(
    base_url: &str,
    bundle: &Bundle,
    scenario: &Scenario,
    seed: Seed,
    engine: &EngineCommand,
    files: &RunFiles,
    source: &Path,
    sqlite: &Path,
    index: usize,
    limits: &CallLimits,
) -> Vec<(&'static str, String)> {
    let creds = ClientCredentials::gate();
    let abs = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let run = serde_json::json!({
        "tenant": format!("{}/{}", bundle.partner, bundle.tenant),
        "partner": bundle.partner,
        "scenario": scenario.name,
        "seed": seed.0,
        "run": index + 1,
        "runs": 1 + usize::from(scenario.next_run.is_some()),
        "start": scenario.start.to_iso(),
    });
    vec![
        ("SYNCGATE_PROTOCOL", PROTOCOL_VERSION.to_string()),
        ("SYNCGATE_TARGET_URL", base_url.to_string()),
        ("SYNCGATE_CLIENT_ID", creds.client_id),
        ("SYNCGATE_CLIENT_SECRET", creds.client_secret),
        (
            "SYNCGATE_TENANT",
            format!("{}/{}", bundle.partner, bundle.tenant),
        ),
        ("SYNCGATE_CONTRACTS", abs(&engine.contracts)),
        ("SYNCGATE_BUNDLE", abs(&files.bundle)),
        ("SYNCGATE_SOURCE", abs(source)),
        ("SYNCGATE_SOURCE_SQLITE", abs(sqlite)),
        ("SYNCGATE_DEAD_LETTERS", abs(&files.dead_letters)),
        ("SYNCGATE_REPORT", abs(&files.report)),
        ("SYNCGATE_CRM_OUTBOX", abs(&files.outbox)),
        ("SYNCGATE_STATE_DIR", abs(&files.state)),
        ("SYNCGATE_TIME_SCALE", format!("{}", engine.time_scale)),
        ("SYNCGATE_RUN", run.to_string()),
        (
            "SYNCGATE_ENGINE_LIMITS",
            serde_json::to_string(limits).unwrap_or_default(),
        ),
        (
            "SYNCGATE_SCENARIO_DIR",
            abs(scenario.path.parent().unwrap_or(Path::new("."))),
        ),
    ]
}

/// Starts the command in its own process group and waits for it, up to the time limit.
async fn run_child(engine: &EngineCommand, env: &[(&'static str, String)], dir: &Path) -> Exit {
    use std::os::unix::process::CommandExt;
    let open = |name: &str| std::fs::File::create(dir.join(name));
    let (Ok(out), Ok(err)) = (open("stdout.log"), open("stderr.log")) else {
        return Exit {
            failure: Some("cannot create the engine's log files".into()),
        };
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&engine.command)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    // Nothing of the gate's own environment that names a secret or a store reaches the engine.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("SYNCGATE_") {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Exit {
                failure: Some(format!("cannot start `{}`: {e}", engine.command)),
            }
        }
    };
    let pid = child.id() as i32;
    let began = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if began.elapsed() >= engine.timeout => {
                // SAFETY: signalling the child's own process group (the child leads it).
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
                let _ = child.wait();
                break Err(format!(
                    "killed after the {} wall-clock limit (--engine-timeout)",
                    crate::sim::time::format_duration(engine.timeout)
                ));
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => break Err(format!("cannot wait for the engine: {e}")),
        }
    };
    // Whatever it left behind in its group goes too.
    // SAFETY: as above; the group may already be empty.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let failure = match status {
        Err(e) => Some(e),
        Ok(s) => match s.code() {
            Some(0) | Some(1) => None,
            Some(code) => Some(format!("exited with status {code}{}", stderr_tail(dir))),
            None => {
                use std::os::unix::process::ExitStatusExt;
                Some(format!(
                    "killed by signal {}{}",
                    s.signal().unwrap_or(0),
                    stderr_tail(dir)
                ))
            }
        },
    };
    Exit { failure }
}

/// The last lines the engine wrote to stderr, for the report (at most 400 bytes).
fn stderr_tail(dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(dir.join("stderr.log")) {
        let _ = f.read_to_string(&mut text);
    }
    let secret = ClientCredentials::gate().client_secret;
    let text = text.replace(&secret, "***");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        return String::new();
    }
    let mut start = tail.len().saturating_sub(400);
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    format!("; stderr: {}", &tail[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named() {
        let e = check_command("no-such-engine-xyz --flag").unwrap_err();
        assert!(e.contains("`no-such-engine-xyz`"), "{e}");
        check_command("sh -c true").unwrap();
        check_command("FOO=1 env").unwrap();
        assert!(check_command("   ").is_err());
    }
}
