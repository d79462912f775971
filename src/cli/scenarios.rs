//! `syncgate scenarios list|show`: the scenario library built into the binary (with any
//! `--scenarios DIR` on top), so users can read one and copy it to start their own.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, CliResult, Outcome};
use crate::sim::library;

#[derive(Debug, Subcommand)]
pub enum ScenariosCommand {
    /// One line per scenario: name, the fixture sets it reads, what it proves.
    List(LibraryArgs),
    /// Print one scenario's YAML, verbatim (redirect it into a file to start your own).
    Show {
        /// The scenario's name (its file stem), e.g. `rate-limit-storm`.
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        library: LibraryArgs,
    },
}

/// The library to look at: the built-in one, plus or instead of a directory.
#[derive(Debug, Args)]
pub struct LibraryArgs {
    /// Scenario files added to the built-in library (a file of the same name replaces it).
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Only the scenarios of --scenarios.
    #[arg(long)]
    pub no_builtin_scenarios: bool,
}

pub(super) fn run(cmd: ScenariosCommand) -> CliResult {
    let (lib, name) = match &cmd {
        ScenariosCommand::List(l) => (l, None),
        ScenariosCommand::Show { name, library } => (library, Some(name.as_str())),
    };
    let set = library::load(lib.scenarios.as_deref(), !lib.no_builtin_scenarios)?;
    let Some(name) = name else {
        let width = set.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let sets: Vec<String> = set.iter().map(|s| s.fixture_sets().join(", ")).collect();
        let set_width = sets.iter().map(String::len).max().unwrap_or(0);
        for (s, fixtures) in set.iter().zip(&sets) {
            let from = if library::is_builtin(s) {
                String::new()
            } else {
                format!("  [{}]", s.path.display())
            };
            println!(
                "{:<width$}  {:<set_width$}  {}{from}",
                s.name, fixtures, s.purpose
            );
        }
        let builtin = set.iter().filter(|s| library::is_builtin(s)).count();
        eprintln!(
            "{} scenario(s), {builtin} built in; `syncgate scenarios show NAME` prints one",
            set.len()
        );
        return Ok(Outcome::Passed);
    };
    let Some(found) = set.iter().find(|s| s.name == name) else {
        let known: Vec<&str> = set.iter().map(|s| s.name.as_str()).collect();
        return Err(CliError::bad_input(format!(
            "no scenario named {name} (known: {})",
            known.join(", ")
        )));
    };
    if library::is_builtin(found) {
        print!("{}", library::builtin_yaml(name).unwrap_or_default());
        return Ok(Outcome::Passed);
    }
    let text = std::fs::read_to_string(&found.path).map_err(|e| {
        CliError::bad_input(format!("cannot read {}", found.path.display())).because(e)
    })?;
    print!("{text}");
    Ok(Outcome::Passed)
}
