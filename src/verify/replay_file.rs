//! Self-contained replay files: everything one gate run read (the resolved bundle, the
//! scenario file, the fixture sets, the engine configuration), the seed, the syncgate
//! version and the run's recorded trace, in one JSON file. `syncgate gate --artefacts DIR`
//! writes one per failing run; `syncgate replay --from FILE` lays the inputs out in an
//! empty directory, checks them against the recorded hashes and runs the scenario again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::gate::{GateOptions, RunResult, TenantResult};
use crate::contract::{Bundle, Registry};
use crate::engine::config_file::{EngineSettings, DEFAULT_FILE_NAME};

/// The format tag of replay files this build writes and reads.
pub const FORMAT: &str = "syncgate-replay/1";

/// One replay file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayFile {
    pub format: String,
    /// The syncgate that recorded the run.
    pub syncgate_version: String,
    pub partner: String,
    pub tenant: String,
    pub scenario: String,
    pub seed: u64,
    pub bundle: BundleInput,
    pub scenario_file: TextInput,
    /// Fixture sets by name: file name → text.
    pub fixtures: BTreeMap<String, FixtureSet>,
    pub engine_config: EngineInput,
    /// The engine command the run judged, when it was not the in-process engine.
    pub engine_cmd: Option<String>,
    pub recorded: Recorded,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleInput {
    /// The report's `bundle_hash`.
    pub hash: String,
    pub version: String,
    /// The resolved bundle (base and tenant merged, pacts included).
    pub resolved: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TextInput {
    pub name: String,
    pub text: String,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FixtureSet {
    pub files: BTreeMap<String, String>,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineInput {
    /// The report's `engine_config_hash`.
    pub hash: String,
    /// The configuration file's text, or `None` for the built-in defaults.
    pub toml: Option<String>,
}

/// What the run gave when it was recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recorded {
    pub verdict: String,
    /// Invariants that failed.
    pub failed: Vec<String>,
    /// `sha256:` of the trace (the timeline as JSON lines, `replay --trace`).
    pub trace_sha256: String,
    pub trace: String,
}

/// `sha256:` and 64 hex digits.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn set_hash(files: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (name, text) in files {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The fixture files a set is read from (`*.jsonl`, `*.csv`), by name.
fn read_fixture_set(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.extension().is_some_and(|x| x == "jsonl" || x == "csv") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        files.insert(entry.file_name().to_string_lossy().into_owned(), text);
    }
    Ok(files)
}

/// The replay file of one run of a finished gate, read from the inputs `opts` names.
pub fn build(
    opts: &GateOptions,
    tenant: &TenantResult,
    run: &RunResult,
) -> Result<ReplayFile, String> {
    let registry = Registry::open(&opts.contracts).map_err(|e| e.to_string())?;
    let tref = registry
        .tenants()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|t| t.partner == tenant.partner && t.tenant == tenant.tenant)
        .ok_or_else(|| {
            format!(
                "{} is no longer under {}",
                tenant.label(),
                opts.contracts.display()
            )
        })?;
    let bundle = registry.load(&tref).map_err(|e| e.to_string())?;
    let resolved = serde_json::to_value(&bundle).map_err(|e| e.to_string())?;
    let scenario = crate::sim::library::load(opts.scenarios.as_deref(), opts.builtin_scenarios)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| s.name == run.scenario)
        .ok_or_else(|| format!("scenario {} is no longer in the library", run.scenario))?;
    let text = match crate::sim::library::builtin_yaml(&scenario.name)
        .filter(|_| crate::sim::library::is_builtin(&scenario))
    {
        Some(yaml) => yaml.to_string(),
        None => std::fs::read_to_string(&scenario.path)
            .map_err(|e| format!("cannot read {}: {e}", scenario.path.display()))?,
    };
    let mut fixtures = BTreeMap::new();
    for set in scenario.fixture_sets() {
        // A hand-written set, else the one the gate generated for this tenant.
        let hand = opts.fixtures.join(set);
        let dir = if super::fixture_sets::feeds(&hand, &bundle) {
            hand
        } else {
            opts.fixtures_out
                .join(&bundle.partner)
                .join(&bundle.tenant)
                .join(set)
        };
        let files = read_fixture_set(&dir)?;
        let sha256 = set_hash(&files);
        fixtures.insert(set.to_string(), FixtureSet { files, sha256 });
    }
    let toml = match &opts.engine.source {
        Some(p) => Some(
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let trace = super::timeline::json_lines(run);
    Ok(ReplayFile {
        format: FORMAT.into(),
        syncgate_version: env!("CARGO_PKG_VERSION").into(),
        partner: tenant.partner.clone(),
        tenant: tenant.tenant.clone(),
        scenario: run.scenario.clone(),
        seed: opts.seed.0,
        bundle: BundleInput {
            hash: tenant.bundle_hash.clone(),
            version: tenant.bundle_version.clone(),
            resolved,
        },
        scenario_file: TextInput {
            name: format!("{}.yaml", run.scenario),
            sha256: sha256(text.as_bytes()),
            text,
        },
        fixtures,
        engine_config: EngineInput {
            hash: opts.engine.hash.clone(),
            toml,
        },
        engine_cmd: opts.engine_cmd.as_ref().map(|c| c.command.clone()),
        recorded: Recorded {
            verdict: if run.passed() { "PASS" } else { "FAIL" }.into(),
            failed: run
                .violations
                .iter()
                .map(|v| v.invariant.to_string())
                .collect(),
            trace_sha256: sha256(trace.as_bytes()),
            trace,
        },
    })
}

/// Where a replay file's inputs were laid out.
#[derive(Clone, Debug)]
pub struct Layout {
    pub contracts: PathBuf,
    pub scenarios: PathBuf,
    pub fixtures: PathBuf,
    /// The engine configuration file, when the run had one.
    pub engine_config: Option<PathBuf>,
}

/// One input checked against the hash the report recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputCheck {
    pub what: String,
    pub recorded: String,
    pub found: String,
}

impl InputCheck {
    pub fn matches(&self) -> bool {
        self.recorded == self.found
    }
}

impl ReplayFile {
    /// Reads a replay file; the error names the file and what is wrong.
    pub fn read(path: &Path) -> Result<ReplayFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the replay file: {e}", path.display()))?;
        let file: ReplayFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a replay file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if file.format != FORMAT {
            return Err(format!(
                "{}: format `{}`, this build reads `{FORMAT}`",
                path.display(),
                file.format
            ));
        }
        Ok(file)
    }

    /// The file's JSON text.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("replay files serialize");
        text.push('\n');
        text
    }

    /// Lays the inputs out under `root` (an empty directory) as a registry, a scenario
    /// directory, fixture sets and the engine configuration.
    pub fn materialize(&self, root: &Path) -> Result<Layout, String> {
        let io = |p: &Path, e: std::io::Error| format!("cannot write {}: {e}", p.display());
        let write = |p: &Path, text: &str| -> Result<(), String> {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            std::fs::write(p, text).map_err(|e| io(p, e))
        };
        let contracts = root.join("contracts");
        let tenant_dir = contracts.join(&self.partner).join(&self.tenant);
        let mut resolved = self.bundle.resolved.clone();
        let pacts = resolved
            .as_object_mut()
            .and_then(|o| o.remove("pacts"))
            .unwrap_or(Value::Null);
        let table: toml::Value = toml::Value::try_from(&resolved)
            .map_err(|e| format!("the replay file's bundle is not a bundle: {e}"))?;
        let body = toml::to_string(&table)
            .map_err(|e| format!("the replay file's bundle does not render: {e}"))?;
        write(
            &tenant_dir.join("bundle.toml"),
            &format!("# The resolved bundle of a replay file (base and tenant merged).\n{body}"),
        )?;
        if let Value::Object(files) = pacts {
            for (name, pact) in files {
                let text = serde_json::to_string_pretty(&pact).map_err(|e| e.to_string())? + "\n";
                write(&tenant_dir.join("pacts").join(name), &text)?;
            }
        }
        let scenarios = root.join("scenarios");
        write(
            &scenarios.join(&self.scenario_file.name),
            &self.scenario_file.text,
        )?;
        let fixtures = root.join("fixtures");
        for (set, files) in &self.fixtures {
            for (name, text) in &files.files {
                write(&fixtures.join(set).join(name), text)?;
            }
        }
        let engine_config = match &self.engine_config.toml {
            Some(text) => {
                let p = root.join(DEFAULT_FILE_NAME);
                write(&p, text)?;
                Some(p)
            }
            None => None,
        };
        Ok(Layout {
            contracts,
            scenarios,
            fixtures,
            engine_config,
        })
    }

    /// Every input laid out under `layout`, against the hash recorded for it.
    pub fn check_inputs(&self, layout: &Layout) -> Vec<InputCheck> {
        let mut out = Vec::new();
        let dir = layout.contracts.join(&self.partner).join(&self.tenant);
        out.push(InputCheck {
            what: format!(
                "bundle {}/{} {}",
                self.partner, self.tenant, self.bundle.version
            ),
            recorded: self.bundle.hash.clone(),
            found: Bundle::load(&dir)
                .map(|b| b.content_hash())
                .unwrap_or_else(|e| format!("unreadable ({e})")),
        });
        out.push(InputCheck {
            what: format!("scenario {}", self.scenario_file.name),
            recorded: self.scenario_file.sha256.clone(),
            found: sha256(self.scenario_file.text.as_bytes()),
        });
        for (set, files) in &self.fixtures {
            out.push(InputCheck {
                what: format!("fixtures {set}"),
                recorded: files.sha256.clone(),
                found: read_fixture_set(&layout.fixtures.join(set))
                    .map(|f| set_hash(&f))
                    .unwrap_or_else(|e| format!("unreadable ({e})")),
            });
        }
        let engine = match &layout.engine_config {
            Some(p) => EngineSettings::load(p)
                .map(|s| s.hash)
                .map_err(|e| e.to_string()),
            None => Ok(EngineSettings::defaults().hash),
        };
        out.push(InputCheck {
            what: "engine configuration".into(),
            recorded: self.engine_config.hash.clone(),
            found: engine.unwrap_or_else(|e| format!("unreadable ({e})")),
        });
        out
    }
}

/// Where a run's replay file goes under `dir`.
pub fn path_for(dir: &Path, partner: &str, tenant: &str, scenario: &str) -> PathBuf {
    dir.join(format!("replay-{partner}-{tenant}-{scenario}.json"))
}
