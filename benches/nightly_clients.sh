#!/usr/bin/env bash
# The nightly load by `syncgate sync` vs simple-salesforce's and jsforce's Bulk API 2.0
# loads, side by side in one run (benches/nightly_clients/run.py says how). Needs the
# release binary, simple-salesforce (pip) and jsforce (cd tests/clients && npm ci), as
# .ci/run installs them.
#
#   benches/nightly_clients.sh [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SYNCGATE_BIN:-$root/target/release/syncgate}"
[ -x "$bin" ] || { echo "no $bin: cargo build --release first (or set SYNCGATE_BIN)" >&2; exit 2; }
python3 -c 'import simple_salesforce' 2>/dev/null \
  || { echo "simple-salesforce missing: python3 -m pip install simple-salesforce" >&2; exit 2; }
[ -d "$root/tests/clients/node_modules/jsforce" ] \
  || { echo "jsforce missing: (cd tests/clients && npm ci)" >&2; exit 2; }
exec python3 "$root/benches/nightly_clients/run.py" "$@"
