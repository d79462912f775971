//! `syncgate contracts pacts`: writes (or, with `--check`, checks) the Pact V4 files of
//! tenants from their bundles, with the same generator the test suite uses.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{error, exit};
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
    /// The registry on disk `partner/tenant` is looked up in.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
    /// Write (or check) the files in this directory instead of each tenant's `pacts/`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write nothing: exit 1, naming each file, when a file differs from the generated one
    /// (or is missing, or a generated file of another provider is left over).
    #[arg(long)]
    pub check: bool,
}

/// One tenant to generate for: its label and directory.
fn targets(args: &PactsArgs) -> Result<Vec<(String, PathBuf)>, String> {
    if args.all {
        let registry = Registry::open(&args.contracts).map_err(|e| e.to_string())?;
        let tenants = registry.tenants().map_err(|e| e.to_string())?;
        if tenants.is_empty() {
            return Err(format!(
                "no tenant under {}: expected <partner>/<tenant>/bundle.toml",
                args.contracts.display()
            ));
        }
        return Ok(tenants.into_iter().map(|t| (t.label(), t.dir)).collect());
    }
    if args.bundles.is_empty() {
        return Err("name a tenant (`partner/tenant` or a tenant directory) or give --all".into());
    }
    args.bundles
        .iter()
        .map(|spec| {
            let as_dir = PathBuf::from(spec);
            if as_dir.join("bundle.toml").is_file() {
                return Ok((spec.clone(), as_dir));
            }
            let under = args.contracts.join(spec);
            if spec.split('/').count() == 2 && under.join("bundle.toml").is_file() {
                return Ok((spec.clone(), under));
            }
            Err(format!(
                "`{spec}`: no bundle.toml at {} nor at {}/bundle.toml",
                as_dir.display(),
                under.display()
            ))
        })
        .collect()
}

pub fn run(args: PactsArgs) -> i32 {
    let targets = match targets(&args) {
        Ok(t) => t,
        Err(e) => {
            error(e);
            return exit::BAD_INPUT;
        }
    };
    let mut stale = 0usize;
    for (label, dir) in targets {
        // Without its pact files: a broken one must not stop its own regeneration.
        let bundle = match Bundle::load_without_pacts(&dir) {
            Ok(b) => b,
            Err(e) => {
                error(e);
                return exit::BAD_INPUT;
            }
        };
        let generated = match pacts::generate(&bundle) {
            Ok(g) => g,
            Err(e) => {
                error(format_args!("{label}: {e}"));
                return exit::BAD_INPUT;
            }
        };
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
        let written = match home {
            Some(d) => pacts::write(d, &generated),
            None => write_into(&path, &generated.text()).map(|()| Vec::new()),
        };
        match written {
            Ok(removed) => {
                println!("wrote {} ({interactions} interactions)", path.display());
                for r in removed {
                    println!(
                        "removed {} (a provider the bundle no longer names)",
                        r.display()
                    );
                }
            }
            Err(e) => {
                error(format_args!("cannot write {}: {e}", path.display()));
                return exit::INTERNAL;
            }
        }
    }
    if stale > 0 {
        eprintln!(
            "{stale} pact file(s) differ from the bundles: run `syncgate contracts pacts` without --check and commit the result"
        );
        return exit::FAILED;
    }
    exit::PASSED
}

fn write_into(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}
