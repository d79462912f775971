//! Preflight: what a partner runs before enabling a field. The proposed field change is
//! applied to the tenant's bundle, classified against the current bundle, and the proposed
//! bundle goes through the same checks as the gate (pacts against the mock org, and against
//! the partner's sandbox when given; every scenario through the engine). The result is a
//! certification report to attach to the enablement request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::gate::{run_scenario_with, ContractChange, GateError, RunResult};
use super::pacts::{verify_against_mock, verify_against_url, PactCheck};
use crate::contract::diff::{diff, Impact};
use crate::contract::{Bundle, FieldSpec, FieldType, Registry};
use crate::sim::Seed;

/// What to certify.
#[derive(Clone, Debug)]
pub struct PreflightOptions {
    pub contracts: PathBuf,
    /// Scenario files added to the built-in library (see [`crate::sim::library`]).
    pub scenarios: Option<PathBuf>,
    pub builtin_scenarios: bool,
    /// Hand-written fixture sets; missing ones are generated from the proposed bundle.
    pub fixtures: PathBuf,
    pub fixtures_out: PathBuf,
    pub records: usize,
    pub partner: String,
    pub tenant: String,
    /// `Object.Field` to enable; the spec comes from another tenant of the partner that has it.
    pub enable_fields: Vec<String>,
    /// A TOML file of field specs (`[objects.Account.fields]` tables), for fields no other
    /// tenant has yet.
    pub field_spec: Option<PathBuf>,
    pub provider_url: Option<String>,
    pub provider_token: Option<String>,
    pub seed: Seed,
    /// The engine configuration the scenarios run with (`--engine-config`).
    pub engine: crate::engine::config_file::EngineSettings,
    /// Judge this engine command instead of the in-process engine (`--engine-cmd`, or the
    /// tenant's `command` in the engine configuration file).
    pub engine_cmd: Option<super::engine_cmd::EngineCommand>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error("{0}")]
    Field(String),
}

/// The certification report.
#[derive(Clone, Debug, Serialize)]
pub struct Certification {
    pub partner: String,
    pub tenant: String,
    pub current_version: String,
    pub current_hash: String,
    /// Content hash of the bundle with the proposed fields.
    pub proposed_hash: String,
    pub engine_version: String,
    /// `sha256:…` of the engine configuration the scenarios ran with.
    pub engine_config_hash: String,
    /// The engine command judged instead of syncgate's own engine, if any.
    pub engine_command: Option<String>,
    pub seed: u64,
    pub enabled_fields: Vec<String>,
    pub changes: Vec<ContractChange>,
    pub pacts_mock: PactCheck,
    pub pacts_provider: Option<PactCheck>,
    pub runs: Vec<RunResult>,
}

impl Certification {
    pub fn passed(&self) -> bool {
        !self.changes.iter().any(|c| c.breaking)
            && self.pacts_mock.passed()
            && self.pacts_provider.as_ref().is_none_or(PactCheck::passed)
            && self.runs.iter().all(RunResult::passed)
    }
}

pub async fn run_preflight(opts: &PreflightOptions) -> Result<Certification, PreflightError> {
    let registry = Registry::open(&opts.contracts).map_err(GateError::from)?;
    let tenants = registry
        .select(
            std::slice::from_ref(&opts.partner),
            std::slice::from_ref(&opts.tenant),
        )
        .map_err(GateError::from)?;
    let current = registry.load(&tenants[0]).map_err(GateError::from)?;
    let siblings: Vec<Bundle> = registry
        .select(std::slice::from_ref(&opts.partner), &[])
        .map_err(GateError::from)?
        .iter()
        .filter(|t| t.tenant != opts.tenant)
        .map(|t| registry.load(t))
        .collect::<Result<_, _>>()
        .map_err(GateError::from)?;
    let from_file = match &opts.field_spec {
        Some(p) => read_field_specs(p)?,
        None => BTreeMap::new(),
    };
    let mut proposed = current.clone();
    let mut enabled = Vec::new();
    for wanted in opts
        .enable_fields
        .iter()
        .cloned()
        .chain(from_file.keys().cloned())
    {
        let (object, field) = wanted.split_once('.').ok_or_else(|| {
            PreflightError::Field(format!(
                "`{wanted}` is not Object.Field (e.g. Account.Loyalty_Tier__c)"
            ))
        })?;
        let spec = from_file
            .get(&wanted)
            .cloned()
            .or_else(|| siblings.iter().find_map(|b| b.object(object)?.fields.get(field).cloned()))
            .ok_or_else(|| {
                PreflightError::Field(format!(
                    "no other tenant of {} defines {wanted}: give its spec with --field-spec FILE ([objects.{object}.fields] {field} = {{ type = \"string\", … }})",
                    opts.partner
                ))
            })?;
        let obj = proposed.objects.get_mut(object).ok_or_else(|| {
            PreflightError::Field(format!(
                "{}/{} does not sync {object}",
                opts.partner, opts.tenant
            ))
        })?;
        obj.fields.insert(field.to_string(), spec.clone());
        extend_pacts(&mut proposed, object, field, &spec);
        enabled.push(wanted.clone());
    }
    // The verifier reads pact files: write the proposed ones where it can find them.
    let pact_dir = tempfile::tempdir()
        .map_err(|e| PreflightError::Field(format!("cannot create a temporary directory: {e}")))?;
    std::fs::create_dir_all(pact_dir.path().join("pacts"))
        .map_err(|e| PreflightError::Field(e.to_string()))?;
    for (name, pact) in &proposed.pacts {
        let text = serde_json::to_string_pretty(pact).expect("pact serializes");
        std::fs::write(pact_dir.path().join("pacts").join(name), text)
            .map_err(|e| PreflightError::Field(e.to_string()))?;
    }
    proposed.dir = pact_dir.path().to_path_buf();

    let changes = diff(&current, &proposed)
        .changes
        .iter()
        .map(|c| ContractChange {
            breaking: c.impact == Impact::Breaking,
            rule: c.rule.id().to_string(),
            at: c.at.clone(),
            reason: c.reason.clone(),
        })
        .collect();
    let pacts_mock = verify_against_mock(&proposed, opts.seed).await;
    let pacts_provider = match &opts.provider_url {
        Some(url) => Some(verify_against_url(&proposed, url, opts.provider_token.as_deref()).await),
        None => None,
    };
    let scenarios = crate::sim::library::load(opts.scenarios.as_deref(), opts.builtin_scenarios)
        .map_err(GateError::from)?;
    if scenarios.is_empty() {
        return Err(GateError::Usage(
            "no scenarios to run: the certification would verify nothing".into(),
        )
        .into());
    }
    let fixtures = super::fixture_sets::resolve(
        &proposed,
        &scenarios,
        &scenarios.iter().collect::<Vec<_>>(),
        &super::fixture_sets::FixtureOptions {
            fixtures: &opts.fixtures,
            out: &opts.fixtures_out,
            seed: opts.seed,
            records: opts.records,
        },
    )?;
    // A scenario's own command, else the engine command, else the in-process engine.
    let commands: Vec<Option<super::engine_cmd::EngineCommand>> = scenarios
        .iter()
        .map(|s| match (&s.engine_cmd, &opts.engine_cmd) {
            (Some(own), base) => Some(super::engine_cmd::EngineCommand {
                command: own.clone(),
                ..base.clone().unwrap_or_else(|| {
                    super::engine_cmd::EngineCommand::new("", &opts.contracts, &opts.fixtures)
                })
            }),
            (None, base) => base.clone(),
        })
        .collect();
    for (s, cmd) in scenarios.iter().zip(&commands) {
        if let Some(c) = cmd {
            super::engine_cmd::check_command(&c.command)
                .map_err(|e| GateError::EngineCommand(format!("{}: {e}", s.path.display())))?;
        }
    }
    let mut runs = Vec::new();
    for (s, cmd) in scenarios.iter().zip(&commands) {
        runs.push(match cmd {
            Some(c) => {
                super::engine_cmd::run_scenario_in(
                    &proposed,
                    s,
                    opts.seed,
                    c,
                    &fixtures.dirs,
                    &opts.engine.config,
                )
                .await?
            }
            None => {
                run_scenario_with(
                    &proposed,
                    s,
                    &fixtures.sets,
                    opts.seed,
                    false,
                    &opts.engine.config,
                )
                .await?
            }
        });
    }
    Ok(Certification {
        partner: current.partner.clone(),
        tenant: current.tenant.clone(),
        current_version: current.version.clone(),
        current_hash: current.content_hash(),
        proposed_hash: proposed.content_hash(),
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
        engine_config_hash: opts.engine.hash.clone(),
        engine_command: opts.engine_cmd.as_ref().map(|c| c.command.clone()),
        seed: opts.seed.0,
        enabled_fields: enabled,
        changes,
        pacts_mock,
        pacts_provider,
        runs,
    })
}

/// Field specs from a TOML file of `[objects.<Object>.fields]` tables, keyed `Object.Field`.
fn read_field_specs(path: &Path) -> Result<BTreeMap<String, FieldSpec>, PreflightError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        objects: BTreeMap<String, Obj>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Obj {
        fields: BTreeMap<String, FieldSpec>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| PreflightError::Field(format!("{}: cannot read: {e}", path.display())))?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| crate::contract::bundle::line_col(&text, s.start).0)
            .unwrap_or(0);
        PreflightError::Field(format!("{}:{line}: {}", path.display(), e.message().trim()))
    })?;
    Ok(file
        .objects
        .into_iter()
        .flat_map(|(o, obj)| {
            obj.fields
                .into_iter()
                .map(move |(f, spec)| (format!("{o}.{f}"), spec))
        })
        .collect())
}

/// The proposed contract: the object's upsert interactions carry the new field too, so the
/// engine's requests can be checked against it. (Publishing the change means regenerating
/// the tenant's pact files.)
fn extend_pacts(bundle: &mut Bundle, object: &str, field: &str, spec: &FieldSpec) {
    if spec.from.is_none() {
        return;
    }
    let Some(ext) = bundle.object(object).map(|o| o.external_id.clone()) else {
        return;
    };
    let suffix = format!("/composite/sobjects/{object}/{ext}");
    let sample = match spec.ty {
        FieldType::Picklist => spec
            .values
            .as_ref()
            .and_then(|v| v.first())
            .map(|v| serde_json::json!(v))
            .unwrap_or(serde_json::json!("x")),
        FieldType::Boolean => serde_json::json!(true),
        t if t.is_number() => serde_json::json!(1),
        FieldType::Date => serde_json::json!("2026-01-05"),
        _ => serde_json::json!("example"),
    };
    for pact in bundle.pacts.values_mut() {
        for i in pact["interactions"].as_array_mut().into_iter().flatten() {
            if !i["request"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with(&suffix))
            {
                continue;
            }
            for r in i["request"]["body"]["content"]["records"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                if let Some(m) = r.as_object_mut() {
                    m.entry(field.to_string()).or_insert(sample.clone());
                }
            }
        }
    }
}

/// The certification as Markdown, to attach to the enablement request.
pub fn markdown(c: &Certification) -> String {
    let mut out = String::new();
    let verdict = if c.passed() {
        "CERTIFIED"
    } else {
        "NOT CERTIFIED"
    };
    let _ = writeln!(out, "# syncgate preflight: {verdict}\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| tenant | {}/{} |", c.partner, c.tenant);
    let _ = writeln!(out, "| fields enabled | {} |", c.enabled_fields.join(", "));
    let _ = writeln!(
        out,
        "| current bundle | {} `{}` |",
        c.current_version, c.current_hash
    );
    let _ = writeln!(out, "| proposed bundle | `{}` |", c.proposed_hash);
    match &c.engine_command {
        Some(cmd) => {
            let _ = writeln!(out, "| engine | command `{}` |", cmd.replace('|', "\\|"));
        }
        None => {
            let _ = writeln!(out, "| engine version | {} |", c.engine_version);
            let _ = writeln!(out, "| engine configuration | `{}` |", c.engine_config_hash);
        }
    }
    let _ = writeln!(out, "| seed | {} |", c.seed);
    out.push_str("\n## Contract changes\n\n");
    for ch in &c.changes {
        let _ = writeln!(
            out,
            "- {} `{}` {}: {}",
            if ch.breaking { "**breaking**" } else { "safe" },
            ch.rule,
            ch.at,
            ch.reason
        );
    }
    out.push_str("\n## Checks\n\n| check | verdict |\n|---|---|\n");
    let pact_line = |p: &PactCheck| {
        format!(
            "{}/{} interactions",
            p.interactions.iter().filter(|i| i.passed).count(),
            p.interactions.len()
        )
    };
    let _ = writeln!(
        out,
        "| pacts against the {} | {} ({}) |",
        c.pacts_mock.provider,
        if c.pacts_mock.passed() {
            "pass"
        } else {
            "**FAIL**"
        },
        pact_line(&c.pacts_mock)
    );
    if let Some(p) = &c.pacts_provider {
        let _ = writeln!(
            out,
            "| pacts against {} | {} ({}) |",
            p.provider,
            if p.passed() { "pass" } else { "**FAIL**" },
            pact_line(p)
        );
    }
    for r in &c.runs {
        let broken: Vec<&str> = r.violations.iter().map(|v| v.invariant).collect();
        let _ = writeln!(
            out,
            "| scenario {} | {} |",
            r.scenario,
            if r.passed() {
                "pass".to_string()
            } else {
                format!("**FAIL**: {}", broken.join(", "))
            }
        );
    }
    let failed: Vec<_> = c.runs.iter().filter(|r| !r.passed()).collect();
    if !failed.is_empty() {
        out.push_str("\n## Why\n\n");
        for r in failed {
            for v in &r.violations {
                let _ = writeln!(out, "- {} `{}`", r.scenario, v.invariant);
                for d in v.details.iter().take(3) {
                    let _ = writeln!(out, "  - {d}");
                }
                if v.details.len() > 3 {
                    let _ = writeln!(out, "  - … {} more", v.details.len() - 3);
                }
            }
        }
    }
    out
}

/// The certification as JSON.
pub fn json(c: &Certification) -> String {
    let doc = serde_json::json!({
        "format_version": 1,
        "certified": c.passed(),
        "partner": c.partner,
        "tenant": c.tenant,
        "enabled_fields": c.enabled_fields,
        "current_version": c.current_version,
        "current_hash": c.current_hash,
        "proposed_hash": c.proposed_hash,
        "engine_version": c.engine_version,
        "engine_config_hash": c.engine_config_hash,
        "engine_command": c.engine_command,
        "seed": c.seed,
        "changes": c.changes,
        "pacts_mock": c.pacts_mock,
        "pacts_provider": c.pacts_provider,
        "scenarios": c.runs.iter().map(|r| serde_json::json!({"scenario": r.scenario, "passed": r.passed(), "violations": r.violations})).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).expect("certification serializes") + "\n"
}
