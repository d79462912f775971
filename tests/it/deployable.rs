//! A tenant written from scratch becomes deployable with the binary alone, in a repository
//! of its own: pacts generated, the gate green on the built-in scenario library with
//! fixtures generated from the contract, the bundle published, can-i-deploy yes.

use std::path::Path;
use std::process::{Command, Output};

fn syncgate(cwd: &Path, db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .arg("--database-url")
        .arg(format!("sqlite:{}", db.display()))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("SYNCGATE_DATABASE_URL")
        .output()
        .expect("syncgate runs")
}

fn shown(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_tenant_written_from_scratch_becomes_deployable_with_the_binary_alone() {
    let repo = tempfile::tempdir().unwrap();
    let db = repo.path().join("state.sqlite");
    let tenant = repo.path().join("contracts/scratch-partner/trial");
    std::fs::create_dir_all(&tenant).unwrap();
    std::fs::write(tenant.join("bundle.toml"), crate::pacts::SCRATCH_BASE).unwrap();
    let run = |args: &[&str]| syncgate(repo.path(), &db, args);

    let out = run(&["contracts", "validate", tenant.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));

    // Not deployable before anything was verified.
    let ask = [
        "contracts",
        "can-i-deploy",
        "--partner",
        "scratch-partner",
        "--tenant",
        "trial",
        "--engine-version",
        env!("CARGO_PKG_VERSION"),
        "--to",
        "production",
    ];
    let out = run(&ask);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));

    let out = run(&["contracts", "pacts", "scratch-partner/trial"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let out = run(&["contracts", "pacts", "scratch-partner/trial", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));

    let out = run(&["contracts", "publish", "scratch-partner/trial"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));

    // No harness/ here: the built-in library on fixtures generated from the bundle.
    let out = run(&["gate"]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS scratch-partner/trial"), "{text}");
    assert!(
        text.contains("pact-verification") && !text.contains("not checked: the bundle has no pact"),
        "the generated pact was verified: {text}"
    );

    let out = run(&ask);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
}
