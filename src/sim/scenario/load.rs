//! Reading a scenario file and checking it once: a YAML error names its line and column, a
//! rule that cannot hold names the rule.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    EngineOverrides, EventFaults, FaultRule, LimitOverrides, ManualEdit, NextRun, Scenario,
    DEFAULT_START,
};
use crate::sim::time::Timestamp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    purpose: String,
    #[serde(default)]
    fixtures: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    limits: LimitOverrides,
    #[serde(default)]
    engine: EngineOverrides,
    #[serde(default)]
    faults: Vec<FaultRule>,
    #[serde(default)]
    manual_edits: Vec<ManualEdit>,
    #[serde(default)]
    events: EventFaults,
    #[serde(default)]
    org_fields: std::collections::BTreeMap<String, crate::contract::FieldSpec>,
    #[serde(default)]
    next_run: Option<NextRun>,
    #[serde(default)]
    engine_cmd: Option<String>,
}

/// A scenario file that could not be read, with the position and what to do.
#[derive(Debug, thiserror::Error)]
pub struct ScenarioError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// serde_yaml appends " at line N column M"; the position is already in the prefix.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

impl Scenario {
    /// Reads and checks the scenario file at `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let err = |line: Option<usize>, column: Option<usize>, message: String| ScenarioError {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(None, None, format!("cannot read scenario: {e}")))?;
        Scenario::from_yaml(path, &text)
    }

    /// Parses and checks scenario text; `path` names it in errors (and gives its name).
    pub fn from_yaml(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let err = |line: Option<usize>, column: Option<usize>, message: String| ScenarioError {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let file: ScenarioFile = serde_yaml::from_str(text).map_err(|e| {
            let loc = e.location();
            err(
                loc.as_ref().map(|l| l.line()),
                loc.as_ref().map(|l| l.column()),
                format!(
                    "{}; see harness/README.md for the scenario format",
                    strip_location(&e.to_string())
                ),
            )
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let start = match &file.start {
            None => Timestamp::parse(DEFAULT_START).expect("default start parses"),
            Some(s) => Timestamp::parse(s).ok_or_else(|| {
                err(
                    None,
                    None,
                    format!(
                        "`start`: `{s}` is not a datetime with a time zone (e.g. {DEFAULT_START})"
                    ),
                )
            })?,
        };
        if file.purpose.trim().is_empty() || file.purpose.contains('\n') {
            return Err(err(
                None,
                None,
                "`purpose` must be one line saying what the scenario proves".into(),
            ));
        }
        for (i, rule) in file.faults.iter().enumerate() {
            let at = format!("faults[{i}] ({})", rule.name);
            if !(0.0..=1.0).contains(&rule.probability) {
                return Err(err(
                    None,
                    None,
                    format!("{at}: `probability` must be between 0 and 1"),
                ));
            }
            if let Some(calls) = rule.calls {
                if calls.first == 0 || calls.times == Some(0) {
                    return Err(err(
                        None,
                        None,
                        format!("{at}: `calls.first` and `calls.times` count from 1"),
                    ));
                }
            }
            if let Some(m) = &rule.matcher.method {
                if !["GET", "POST", "PATCH", "PUT", "DELETE"]
                    .contains(&m.to_ascii_uppercase().as_str())
                {
                    return Err(err(None, None, format!("{at}: unknown method `{m}`")));
                }
            }
        }
        for (name, p) in [
            ("duplicate", file.events.duplicate),
            ("out_of_order", file.events.out_of_order),
            ("gap", file.events.gap),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(err(
                    None,
                    None,
                    format!("events.{name}: a chance must be between 0 and 1"),
                ));
            }
        }
        for (i, edit) in file.manual_edits.iter().enumerate() {
            if edit.after_calls.is_none() == edit.after.is_none() {
                return Err(err(
                    None,
                    None,
                    format!(
                        "manual_edits[{i}] ({}): give exactly one of `after_calls` or `after`",
                        edit.name
                    ),
                ));
            }
        }
        if file.engine.max_attempts == Some(0)
            || file.engine.batch_size.is_some_and(|b| b == 0 || b > 200)
        {
            return Err(err(
                None,
                None,
                "`engine`: max_attempts must be ≥ 1 and batch_size 1..=200".into(),
            ));
        }
        if file
            .engine
            .rate_per_sec
            .is_some_and(|r| !(r.is_finite() && r > 0.0))
            || file.engine.burst == Some(0)
            || file.engine.max_concurrent == Some(0)
            || file.engine.daily_budget == Some(0)
        {
            return Err(err(
                None,
                None,
                "`engine`: rate_per_sec must be a number above 0, burst, max_concurrent and daily_budget ≥ 1"
                    .into(),
            ));
        }
        if let Some(bad) = file.org_fields.keys().find(|k| {
            k.split_once('.')
                .is_none_or(|(o, f)| o.is_empty() || f.is_empty())
        }) {
            return Err(err(
                None,
                None,
                format!("`org_fields`: `{bad}` is not Object.Field (e.g. Account.Region__c)"),
            ));
        }
        Ok(Scenario {
            name,
            path: path.to_path_buf(),
            purpose: file.purpose.trim().to_string(),
            fixtures: file.fixtures.unwrap_or_else(|| "default".into()),
            start,
            limits: file.limits,
            engine: file.engine,
            faults: file.faults,
            manual_edits: file.manual_edits,
            events: file.events,
            org_fields: file.org_fields,
            next_run: file.next_run,
            engine_cmd: file.engine_cmd.filter(|c| !c.trim().is_empty()),
        })
    }

    /// Every `*.yaml` scenario in `dir`, sorted by name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
        let entries = std::fs::read_dir(dir).map_err(|e| ScenarioError {
            path: dir.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read scenario directory: {e}"),
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Scenario::load(p)).collect()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_scenario_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, "purpose: p\nfaults:\n  - name: a\n    respond: { rate_limited: { retry_after: soon } }\n").unwrap();
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(e.contains("s.yaml:3:5: faults[0]: rate_limited:"), "{e}");
        assert!(e.contains("not a duration"), "{e}");
    }
}
