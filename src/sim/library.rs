//! The scenario library built into the binary, and how a run's scenario set is put
//! together from it and a directory of the user's own.
//!
//! The default scenarios (`harness/scenarios/*.yaml`) are compiled in, so `syncgate gate`
//! works in any repository that holds only `contracts/`. A `--scenarios DIR` adds its files
//! to the built-in ones (a file of the same name replaces the built-in scenario);
//! `--no-builtin-scenarios` makes the directory the whole set.
//!
//! The files are listed by hand with `include_str!` rather than through the `include_dir`
//! crate or a build script: a couple of dozen entries do not need a dependency, and the test
//! `the_builtin_list_is_the_scenario_directory` fails the moment a file in
//! `harness/scenarios/` is added, removed or changed without this list following.
//! `harness/broken/` is deliberately not built in.

use std::path::{Path, PathBuf};

use super::scenario::{Scenario, ScenarioError};

/// One built-in scenario file: its name (the file stem) and its YAML, verbatim.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinScenario {
    pub name: &'static str,
    pub yaml: &'static str,
}

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(BuiltinScenario {
            name: $name,
            yaml: include_str!(concat!("../../harness/scenarios/", $name, ".yaml")),
        }),*]
    };
}

/// The built-in library, sorted by name.
pub const BUILTIN: &[BuiltinScenario] = builtin![
    "baseline",
    "bulk-backfill",
    "bulk-lost-responses",
    "concurrent-long-running-limit",
    "consumer-away-past-retention",
    "daily-budget-lockout",
    "delete-policies",
    "duplicate-and-reordered-events",
    "engine-daily-budget",
    "gateway-errors",
    "lost-responses",
    "manual-edits-during-sync",
    "partner-adds-required-field",
    "partner-changes-field-type",
    "permanent-rejections",
    "poison-records",
    "rate-limit-storm",
    "read-back-during-lockout",
    "rerun-same-source",
    "row-lock-contention",
    "schema-drift",
    "server-unavailable",
    "session-expiry",
    "sink-refuses-then-restart",
    "small-daily-budget",
    "throttled-slow-org",
    "timed-outage",
    "transport-failures",
    "trigger-cpu-limit",
];

/// Where built-in scenarios say they come from (their `path`): `<built-in>/NAME.yaml`.
pub const BUILTIN_DIR: &str = "<built-in>";

/// A built-in scenario by name.
pub fn builtin_yaml(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|b| b.name == name).map(|b| b.yaml)
}

/// Every built-in scenario, parsed.
pub fn builtin() -> Result<Vec<Scenario>, ScenarioError> {
    BUILTIN
        .iter()
        .map(|b| Scenario::from_yaml(&builtin_path(b.name), b.yaml))
        .collect()
}

fn builtin_path(name: &str) -> PathBuf {
    Path::new(BUILTIN_DIR).join(format!("{name}.yaml"))
}

/// Whether a scenario is the built-in one (not a file on disk).
pub fn is_builtin(s: &Scenario) -> bool {
    s.path.starts_with(BUILTIN_DIR)
}

/// Where a scenario set comes from, for messages.
pub fn describe(dir: Option<&Path>, builtin_too: bool) -> String {
    match (dir, builtin_too) {
        (Some(d), true) => format!("the built-in library and {}", d.display()),
        (Some(d), false) => d.display().to_string(),
        (None, _) => "the built-in library".into(),
    }
}

/// The scenario set of a run: the built-in library (unless `builtin` is false) with the
/// files of `dir` added, a file replacing the built-in scenario of the same name; sorted by
/// name. An empty result is not an error here (the gate decides what it means).
pub fn load(dir: Option<&Path>, builtin_too: bool) -> Result<Vec<Scenario>, ScenarioError> {
    let mut set = if builtin_too { builtin()? } else { Vec::new() };
    if let Some(dir) = dir {
        for own in Scenario::load_dir(dir)? {
            match set.iter_mut().find(|s| s.name == own.name) {
                Some(slot) => *slot = own,
                None => set.push(own),
            }
        }
    }
    set.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn the_builtin_list_is_the_scenario_directory() {
        let dir = repo().join("harness/scenarios");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .map(|p| {
                (
                    p.file_stem().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect();
        on_disk.sort();
        let built_in: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|b| (b.name.to_string(), b.yaml.to_string()))
            .collect();
        assert_eq!(
            built_in.iter().map(|b| &b.0).collect::<Vec<_>>(),
            on_disk.iter().map(|b| &b.0).collect::<Vec<_>>(),
            "src/sim/library.rs lists other files than harness/scenarios/ holds"
        );
        assert_eq!(built_in, on_disk);
    }

    #[test]
    fn every_builtin_parses_and_none_is_broken() {
        let all = builtin().unwrap();
        assert_eq!(all.len(), BUILTIN.len());
        for s in &all {
            assert!(is_builtin(s));
            assert!(s.engine_cmd.is_none(), "{} names an engine", s.name);
        }
        let broken = std::fs::read_dir(repo().join("harness/broken")).unwrap();
        for e in broken {
            let stem = e.unwrap().path();
            let stem = stem.file_stem().unwrap().to_string_lossy();
            assert!(builtin_yaml(&stem).is_none(), "{stem} is built in");
        }
    }

    #[test]
    fn a_directory_adds_and_replaces_and_can_close_the_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("baseline.yaml"),
            "purpose: My own baseline.\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("extra.yaml"), "purpose: One more.\n").unwrap();
        let set = load(Some(dir.path()), true).unwrap();
        assert_eq!(set.len(), BUILTIN.len() + 1);
        let baseline = set.iter().find(|s| s.name == "baseline").unwrap();
        assert_eq!(baseline.purpose, "My own baseline.");
        assert!(!is_builtin(baseline));
        assert!(set.iter().any(|s| s.name == "extra"));
        let closed = load(Some(dir.path()), false).unwrap();
        assert_eq!(
            closed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["baseline", "extra"]
        );
        assert!(load(None, false).unwrap().is_empty());
    }
}
