//! `syncgate init DIR`: a working repository skeleton (one partner with one tenant, the
//! engine configuration with its defaults commented, the shell CI step, a README), on
//! which `syncgate gate` passes at once: the built-in scenario library runs on fixtures
//! generated from the example bundle.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, CliResult, Outcome};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to create (or an empty one to fill).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The skeleton's files, by path relative to DIR. The CI step is syncgate's own template
/// (`ci/gate.sh`), so the skeleton follows it.
pub const FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("init/README.md")),
    (".gitignore", include_str!("init/gitignore")),
    ("syncgate.toml", include_str!("init/syncgate.toml")),
    (
        "contracts/example-partner/base.toml",
        include_str!("init/base.toml"),
    ),
    (
        "contracts/example-partner/sandbox/bundle.toml",
        include_str!("init/bundle.toml"),
    ),
    ("ci/gate.sh", include_str!("../../ci/gate.sh")),
];

pub(super) fn run(args: InitArgs) -> CliResult {
    init(&args.dir)?;
    println!("initialised {}", args.dir.display());
    for (path, _) in FILES {
        println!("  {path}");
    }
    println!(
        "next: cd {} && syncgate gate",
        shell_quote(&args.dir.display().to_string())
    );
    Ok(Outcome::Passed)
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn init(dir: &Path) -> Result<(), CliError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CliError::bad_input(format!(
                    "{} is not empty: syncgate init writes only into a new or empty directory (nothing was written)",
                    dir.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory || dir.is_file() => {
            return Err(CliError::bad_input(format!(
                "{} is a file, not a directory",
                dir.display()
            )))
        }
        Err(e) => {
            return Err(CliError::bad_input(format!("cannot read {}", dir.display())).because(e))
        }
    }
    for (rel, text) in FILES {
        let path = dir.join(rel);
        super::write_file(&path, text)?;
        #[cfg(unix)]
        if rel.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skeleton_bundle_validates_and_its_config_parses_with_every_default_uncommented() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        init(&root).unwrap();
        let b =
            crate::contract::Bundle::load(&root.join("contracts/example-partner/sandbox")).unwrap();
        assert!(b.objects.contains_key("Shipment__c"));
        assert!(b.pacts.is_empty());
        let settings =
            crate::engine::config_file::EngineSettings::resolve(None, &root.join("contracts"))
                .unwrap();
        let defaults = crate::engine::config_file::EngineSettings::defaults();
        assert_eq!(
            settings.hash, defaults.hash,
            "commented keys change nothing"
        );
        // Every commented line is a real key with its real default.
        let uncommented: String = include_str!("init/syncgate.toml")
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|l| l.contains(" = "))
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let file = dir.path().join("all.toml");
        std::fs::write(&file, uncommented).unwrap();
        let all =
            crate::engine::config_file::EngineSettings::resolve(Some(&file), dir.path()).unwrap();
        assert_eq!(all.hash, defaults.hash);
    }

    #[test]
    fn a_non_empty_directory_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let e = init(dir.path()).unwrap_err();
        assert_eq!(e.exit_code(), crate::cli::exit::BAD_INPUT);
        assert!(e.to_string().contains("not empty"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // An empty existing directory is fine.
        let empty = tempfile::tempdir().unwrap();
        init(empty.path()).unwrap();
    }
}
