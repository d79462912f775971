#!/usr/bin/env bash
# Mutation run over src/engine/ with the gate as the test (.cargo/mutants.toml).
#
#   scripts/mutants.sh                       # every mutant (1,127: ~6 h on a 2-core machine)
#   scripts/mutants.sh --shard 3/8 -o OUT    # one eighth (consecutive), results under OUT/
#   scripts/mutants.sh --file src/engine/retry.rs
#
# Each mutant rebuilds the library and the binary (profile `mutants`) and runs
# tests/mutation_gate.rs: the default gate, every example tenant x the scenario library, as
# four shards that stop at the first failure. Caught = the gate failed; missed = the gate
# still passed with the mutant: a bug the gate cannot see. Results go to mutants.out/
# (outcomes.json, caught.txt, missed.txt, timeout.txt, unviable.txt). The runs so far, their
# scores and what became of each survivor: docs/mutation-run.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-mutants >/dev/null; then
  echo "cargo-mutants is not installed: cargo install --locked cargo-mutants" >&2
  exit 2
fi
# In place: the repository's warm target directory is reused instead of a cold copy per run
# (the tree is restored after each mutant; do not edit it meanwhile).
exec cargo mutants --in-place --no-shuffle "$@"
