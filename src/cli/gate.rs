//! `syncgate gate`, `syncgate replay` and `syncgate preflight`: the commands that run the
//! verifier, print its report and write the files CI keeps; and what the gate reads from
//! the store (the registry) and records there (its verification results).

use std::path::PathBuf;

use super::args::{GateArgs, PreflightArgs, ReplayArgs};
use super::{color, open_store, replay_from, runtime, write_file};
use super::{CliError, CliResult, Outcome};
use crate::sim::{Clock, Seed};
use crate::verify::registry::RegistryState;
use crate::verify::{self, report, GateOptions, GateReport};

/// Runs the gate on a one-thread runtime (see [`runtime`]).
pub(super) fn run_gate(opts: &GateOptions) -> Result<GateReport, CliError> {
    Ok(runtime()?.block_on(verify::run_gate(opts))?)
}

pub(super) fn gate(args: GateArgs, database_url: Option<&str>) -> CliResult {
    let base = args.selection.options()?;
    // The contract check reads the store: a store that cannot be read fails the gate.
    let registry = registry_state(database_url, &args.environment)
        .map_err(|e| e.context("the contract check needs the store (--database-url)"))?;
    let mut opts = GateOptions {
        only_scenarios: args.scenario.clone(),
        shard: args.shard,
        jobs: args.jobs.unwrap_or_else(verify::parallel::default_jobs),
        // A sharded gate verifies the pacts once: in shard 1.
        verify_pacts: !args.no_pacts && args.shard.is_none_or(|s| s.index == 1),
        deployed: registry.deployed,
        published: registry.published,
        environment: args.environment.clone(),
        provider_url: args.provider.provider_url.clone(),
        provider_token: args.provider.provider_token.clone(),
        ..base
    };
    args.engine.apply(&mut opts);
    let judged_a_command = opts.engine_cmd.is_some() || !opts.tenant_engine_cmds.is_empty();
    if let Some(s) = args.shard.filter(|s| s.index != 1 && !args.no_pacts) {
        eprintln!("pacts: verified by shard 1/{}, not by this shard", s.count);
    }
    let report = run_gate(&opts)?;
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
        write_file(&path, &text)?;
    }
    if let Some(dir) = &args.artefacts {
        for p in replay_from::write_artefacts(&opts, &report, dir)? {
            eprintln!("replay file: {} (syncgate replay --from it)", p.display());
        }
    }
    // A verification vouches for the whole scenario set: a filtered or sharded run is not one.
    let partial = !args.scenario.is_empty() || args.shard.is_some() || args.no_pacts;
    if partial {
        eprintln!("verification results not recorded: --scenario, --shard or --no-pacts ran only part of the checks");
    } else if judged_a_command {
        // The results are of that command, not of this engine version.
        eprintln!("verification results not recorded: an engine command judged another engine");
    } else {
        record_gate_verifications(&report, &args.engine_version, database_url)
            .map_err(|e| e.context("failed to record the verification results"))?;
    }
    Ok(Outcome::of(report.passed()))
}

pub(super) fn preflight(args: PreflightArgs) -> CliResult {
    if args.enable_field.is_empty() && args.field_spec.is_none() {
        return Err(CliError::bad_input(
            "nothing to certify: give --enable-field OBJECT.FIELD or --field-spec FILE",
        ));
    }
    let engine = args.inputs.engine()?;
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
        provider_url: args.provider.provider_url,
        provider_token: args.provider.provider_token,
        seed: Seed(args.inputs.seed),
        engine,
        engine_cmd,
    };
    let cert = runtime()?.block_on(verify::preflight::run_preflight(&opts))?;
    let md = verify::preflight::markdown(&cert);
    print!("{md}");
    for (name, text) in [
        ("preflight.md", md.clone()),
        ("preflight.json", verify::preflight::json(&cert)),
    ] {
        write_file(&args.report_dir.join(name), &text)?;
    }
    eprintln!("certification written to {}", args.report_dir.display());
    Ok(Outcome::of(cert.passed()))
}

pub(super) fn replay(args: ReplayArgs) -> CliResult {
    if let Some(file) = &args.from {
        return replay_from::replay_from(replay_from::FromArgs {
            file,
            trace: args.trace.as_deref(),
            bodies: args.bodies,
        });
    }
    let scenario = args.scenario.clone().unwrap_or_default();
    let mut opts = GateOptions {
        real_time: args.real_time,
        verify_pacts: false,
        ..args.selection.options()?
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
    let report = run_gate(&opts)?;
    let mut trace = String::new();
    let note = if args.real_time { ", real time" } else { "" };
    for t in &report.tenants {
        for r in &t.runs {
            print_run(t, r, report.seed, note, args.bodies);
            println!();
            trace.push_str(&verify::timeline::json_lines(r));
        }
    }
    if let Some(path) = &args.trace {
        write_file(path, &trace)?;
    }
    Ok(Outcome::of(report.passed()))
}

/// One replayed run: the header, its purpose, its timeline and its verdict.
pub(super) fn print_run(
    t: &verify::TenantResult,
    r: &verify::RunResult,
    seed: u64,
    note: &str,
    bodies: bool,
) {
    println!(
        "replay {} on {} (bundle {} {}), seed {seed}{note}",
        r.scenario,
        t.label(),
        t.bundle_version,
        t.bundle_hash,
    );
    println!("purpose: {}", r.purpose);
    print!("{}", verify::timeline::render_with(r, bodies));
    println!("verdict: {}", if r.passed() { "PASS" } else { "FAIL" });
}

/// Says which fixture sets were generated from the bundles, and where they are.
fn report_generated(report: &GateReport) {
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

/// Records one verification per tenant of a gate run: what can-i-deploy answers from.
fn record_gate_verifications(
    report: &GateReport,
    engine_version: &str,
    db: Option<&str>,
) -> Result<(), CliError> {
    let store = open_store(db)?;
    let at = Clock::system().now();
    let done = runtime()?.block_on(verify::registry::record_verifications(
        store.as_ref(),
        report,
        engine_version,
        at,
    ))?;
    for label in &done.pacts_unchecked {
        eprintln!(
            "verification result not recorded for {label}: its pacts were not checked (the bundle has no pacts/)"
        );
    }
    eprintln!(
        "recorded {} verification result(s) for engine {engine_version}",
        done.recorded.len()
    );
    Ok(())
}

/// Reads the registry's state from the store. A store that cannot be opened or read is an
/// error (with its cause): the gate must not pass without the check it was asked for.
fn registry_state(db: Option<&str>, environment: &str) -> Result<RegistryState, CliError> {
    let store = open_store(db)?;
    Ok(runtime()?.block_on(verify::registry::registry_state(
        store.as_ref(),
        environment,
    ))?)
}
