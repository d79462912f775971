//! Replay files on the command line: `syncgate gate --artefacts DIR` writes one per failing
//! run, and `syncgate replay --from FILE` runs one again in an empty directory and says
//! whether it reproduced the recorded trace byte for byte.

use std::path::{Path, PathBuf};

use super::gate::{print_run, run_gate};
use super::{write_file, CliError, CliResult, Context, Outcome};
use crate::engine::config_file::EngineSettings;
use crate::sim::Seed;
use crate::verify::replay_file::{self, ReplayFile};
use crate::verify::{self, GateOptions, GateReport};

/// Writes the replay file of every failing run of `report` into `dir`.
pub fn write_artefacts(
    opts: &GateOptions,
    report: &GateReport,
    dir: &Path,
) -> Result<Vec<PathBuf>, CliError> {
    let mut written = Vec::new();
    for t in &report.tenants {
        for r in t.runs.iter().filter(|r| !r.passed()) {
            let file = replay_file::build(opts, t, r).map_err(|e| {
                CliError::internal(format!(
                    "replay file of {} on {}: {e}",
                    r.scenario,
                    t.label()
                ))
            })?;
            let path = replay_file::path_for(dir, &t.partner, &t.tenant, &r.scenario);
            write_file(&path, &file.to_json())?;
            written.push(path);
        }
    }
    Ok(written)
}

/// What `replay --from` was asked.
pub struct FromArgs<'a> {
    pub file: &'a Path,
    pub trace: Option<&'a Path>,
    pub bodies: bool,
}

pub(super) fn replay_from(args: FromArgs<'_>) -> CliResult {
    let file = ReplayFile::read(args.file).map_err(CliError::bad_input)?;
    let root = tempfile::Builder::new()
        .prefix("syncgate-replay-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let layout = file
        .materialize(root.path())
        .map_err(|e| CliError::bad_input(format!("{}: {e}", args.file.display())))?;
    println!(
        "replay file {} (recorded by syncgate {}{})",
        args.file.display(),
        file.syncgate_version,
        if file.syncgate_version == env!("CARGO_PKG_VERSION") {
            String::new()
        } else {
            format!(
                "; this is syncgate {}: the engine may behave differently",
                env!("CARGO_PKG_VERSION")
            )
        }
    );
    let checks = file.check_inputs(&layout);
    let differing = checks.iter().filter(|c| !c.matches()).count();
    for c in &checks {
        if c.matches() {
            println!("input {}: {} (as recorded)", c.what, short(&c.found));
        } else {
            println!(
                "input {}: {} DIFFERS from the report's {}",
                c.what,
                short(&c.found),
                short(&c.recorded)
            );
        }
    }
    let engine = match &layout.engine_config {
        Some(p) => EngineSettings::load(p)?,
        None => EngineSettings::defaults(),
    };
    let mut opts = GateOptions {
        contracts: layout.contracts.clone(),
        // The replay file carries its scenario and every fixture set: a closed set, nothing
        // built in or generated.
        scenarios: Some(layout.scenarios.clone()),
        builtin_scenarios: false,
        fixtures: layout.fixtures.clone(),
        partners: vec![file.partner.clone()],
        tenants: vec![file.tenant.clone()],
        only_scenarios: vec![file.scenario.clone()],
        verify_pacts: false,
        engine,
        ..GateOptions::new(Seed(file.seed))
    };
    if let Some(cmd) = &file.engine_cmd {
        println!("engine command `{cmd}`: it runs on the wall clock, so its trace is not compared byte for byte");
        opts.engine_cmd = Some(verify::engine_cmd::EngineCommand::new(
            cmd.clone(),
            &opts.contracts,
            &opts.fixtures,
        ));
    }
    let report = run_gate(&opts)?;
    let Some((t, run)) = report
        .tenants
        .iter()
        .flat_map(|t| t.runs.iter().map(move |r| (t, r)))
        .next()
    else {
        return Err(CliError::internal("the replay ran nothing"));
    };
    print_run(t, run, report.seed, "", args.bodies);
    let trace = verify::timeline::json_lines(run);
    let found = replay_file::sha256(trace.as_bytes());
    if found == file.recorded.trace_sha256 {
        println!(
            "reproduced: the trace is byte for byte the recorded one ({}, {} lines)",
            short(&found),
            trace.lines().count()
        );
    } else {
        println!(
            "NOT reproduced: the trace ({}) differs from the recorded one ({}); {}",
            short(&found),
            short(&file.recorded.trace_sha256),
            first_difference(&file.recorded.trace, &trace)
        );
        if differing > 0 {
            println!("{differing} input(s) differ from the report's hashes (above)");
        }
    }
    if let Some(path) = args.trace {
        write_file(path, &trace)?;
    }
    Ok(Outcome::of(run.passed()))
}

/// `sha256:` and the first 12 hex digits.
fn short(hash: &str) -> String {
    match hash.strip_prefix("sha256:") {
        Some(h) if h.len() >= 12 => format!("sha256:{}", &h[..12]),
        _ => hash.to_string(),
    }
}

/// The first line where the recorded trace and this one differ.
fn first_difference(recorded: &str, now: &str) -> String {
    let (mut r, mut n) = (recorded.lines(), now.lines());
    let mut line = 1;
    loop {
        match (r.next(), n.next()) {
            (None, None) => return "they differ only in line endings".into(),
            (a, b) if a == b => line += 1,
            (a, b) => {
                return format!(
                    "first difference at line {line}: recorded `{}`, now `{}`",
                    a.unwrap_or("<end>"),
                    b.unwrap_or("<end>")
                )
            }
        }
    }
}
