//! The test of the mutation run (`scripts/mutants.sh`, `.cargo/mutants.toml`): the default
//! gate over every example tenant must pass.
//!
//! It is a small test target of its own, not built by `cargo test` (`test = false` in
//! Cargo.toml): each mutant then rebuilds the library and the binary only, not the `it`
//! binary and the library's unit tests, which the gate does not need (6.5 s a mutant instead
//! of ~17 s). The gate runs as its four shards one after the other, stopping at the first
//! that fails: a caught mutant is known after a quarter of the runs, most of the time.
//! The union of the shards is the whole gate (every run has its own org, clock and store);
//! `tests/it/gate.rs` checks the unsharded run and its report in detail.

use std::process::Command;

const SHARDS: usize = 4;

#[test]
fn default_gate_passes_every_tenant() {
    let mut verdicts = String::new();
    for k in 1..=SHARDS {
        let shard = format!("{k}/{SHARDS}");
        let out = Command::new(env!("CARGO_BIN_EXE_syncgate"))
            .args(["gate", "--seed", "42", "--shard", &shard])
            .args(["--database-url", "sqlite::memory:"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .output()
            .expect("run syncgate gate");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "shard {shard}:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        verdicts.push_str(&text);
    }
    for tenant in [
        "bluepeak-logistics/production",
        "bluepeak-logistics/sandbox",
        "northwind-outfitters/production",
        "northwind-outfitters/sandbox",
    ] {
        assert!(
            verdicts.contains(&format!("PASS {tenant}")),
            "no verdict for {tenant}:\n{verdicts}"
        );
    }
}
