//! `syncgate contracts pacts`: writes (or, with `--check`, checks) the Pact V4 files of
//! tenants from their bundles, with the same generator the test suite uses.

use std::path::PathBuf;

use clap::Args;

use super::args::ContractsDir;
use super::{write_file, CliError, CliResult, Context, Outcome};
use crate::contract::pacts::{self, Freshness};
use crate::contract::{Bundle, Registry};

#[derive(Debug, Args)]
pub struct PactsArgs {
    /// Tenants: `partner/tenant` under --contracts, or tenant directories holding
    /// `bundle.toml`. With none, give `--all`.
    #[arg(value_name = "PARTNER/TENANT|DIR")]
    pub bundles: Vec<String>,
    /// Every tenant under --contracts.
    #[arg(long, conflicts_with = "bundles")]
    pub all: bool,
    #[command(flatten)]
    pub registry: ContractsDir,
    /// Write (or check) the files in this directory instead of each tenant's `pacts/`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write nothing: exit 1, naming each file, when a file differs from the generated one
    /// (or is missing, or a generated file of another provider is left over).
    #[arg(long)]
    pub check: bool,
}

/// One tenant to generate for: its label and directory.
fn targets(args: &PactsArgs) -> Result<Vec<(String, PathBuf)>, CliError> {
    let contracts = &args.registry.contracts;
    if args.all {
        let tenants = Registry::open(contracts)?.tenants()?;
        if tenants.is_empty() {
            return Err(CliError::bad_input(format!(
                "no tenant under {}: expected <partner>/<tenant>/bundle.toml",
                contracts.display()
            )));
        }
        return Ok(tenants.into_iter().map(|t| (t.label(), t.dir)).collect());
    }
    if args.bundles.is_empty() {
        return Err(CliError::bad_input(
            "name a tenant (`partner/tenant` or a tenant directory) or give --all",
        ));
    }
    args.bundles
        .iter()
        .map(|spec| {
            let as_dir = PathBuf::from(spec);
            if as_dir.join("bundle.toml").is_file() {
                return Ok((spec.clone(), as_dir));
            }
            let under = contracts.join(spec);
            if spec.split('/').count() == 2 && under.join("bundle.toml").is_file() {
                return Ok((spec.clone(), under));
            }
            Err(CliError::bad_input(format!(
                "`{spec}`: no bundle.toml at {} nor at {}/bundle.toml",
                as_dir.display(),
                under.display()
            )))
        })
        .collect()
}

pub(super) fn run(args: PactsArgs) -> CliResult {
    let mut stale = 0usize;
    for (label, dir) in targets(&args)? {
        // Without its pact files: a broken one must not stop its own regeneration.
        let bundle = Bundle::load_without_pacts(&dir)?;
        let generated =
            pacts::generate(&bundle).context(format_args!("{label}: cannot generate its pact"))?;
        let interactions = generated.json["interactions"]
            .as_array()
            .map_or(0, Vec::len);
        // `--out` holds the files themselves; a tenant directory holds them under `pacts/`.
        let (path, home) = match &args.out {
            Some(out) => (out.join(generated.file_name()), None),
            None => (generated.path_in(&dir), Some(dir.as_path())),
        };
        if args.check {
            match pacts::freshness(&path, &generated) {
                Freshness::Current => {
                    println!("current {} ({interactions} interactions)", path.display())
                }
                Freshness::Missing => {
                    stale += 1;
                    println!("missing {}", path.display());
                }
                Freshness::Stale(why) => {
                    stale += 1;
                    println!("stale   {}: {why}", path.display());
                }
            }
            for extra in home
                .map(|d| pacts::leftovers(d, &generated))
                .unwrap_or_default()
            {
                stale += 1;
                println!(
                    "stale   {}: a generated pact of another provider (expected only {})",
                    extra.display(),
                    generated.file_name()
                );
            }
            continue;
        }
        let removed = match home {
            Some(d) => pacts::write(d, &generated)
                .context(format_args!("cannot write {}", path.display()))?,
            None => {
                write_file(&path, &generated.text())?;
                Vec::new()
            }
        };
        println!("wrote {} ({interactions} interactions)", path.display());
        for r in removed {
            println!(
                "removed {} (a provider the bundle no longer names)",
                r.display()
            );
        }
    }
    if stale > 0 {
        eprintln!(
            "{stale} pact file(s) differ from the bundles: run `syncgate contracts pacts` without --check and commit the result"
        );
        return Ok(Outcome::Failed);
    }
    Ok(Outcome::Passed)
}
