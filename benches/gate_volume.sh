#!/usr/bin/env bash
# The gate's baseline run at about 10k, 100k and 1M records (benches/gate_volume.py copies
# the default fixture set 15, 151 and 1,506 times): wall, CPU and peak RSS of the release
# binary for each, per record, and the load average, in one table.
#
#   benches/gate_volume.sh [COPIES...]        # default: 15 151 1506
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SYNCGATE_BIN:-$root/target/release/syncgate}"
[ -x "$bin" ] || { echo "no $bin: cargo build --release first (or set SYNCGATE_BIN)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
copies=("$@")
[ ${#copies[@]} -gt 0 ] || copies=(15 151 1506)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "gate at volume: $bin; $(nproc) CPUs; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
for n in "${copies[@]}"; do
  records=$(python3 "$root/benches/gate_volume.py" "$n" "$work/vol" | cut -d' ' -f1)
  load=$(cut -d' ' -f1 /proc/loadavg)
  if ! /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$bin" --database-url sqlite::memory: gate \
      --fixtures "$work/vol/fixtures" --scenarios "$work/vol/scenarios" --no-builtin-scenarios \
      --partner northwind-outfitters --tenant production --no-pacts >"$work/out" 2>&1; then
    echo "the gate failed at $records records:" >&2; tail -20 "$work/out" >&2; exit 1
  fi
  read -r wall user sys rss_kb <"$work/time"
  rows+=("$(python3 - "$records" "$wall" "$user" "$sys" "$rss_kb" "$load" <<'PY'
import sys
r, wall, user, sys_, kb, load = int(sys.argv[1]), *map(float, sys.argv[2:])
cpu = user + sys_
print(f"{r:>9,} {wall:>9.2f} s {cpu:>9.2f} s {kb/1024:>10.0f} MiB {1e6*cpu/r:>9.1f} us {1024*kb/r:>9.0f} B {load:>6.2f}")
PY
)")
  echo "${rows[-1]}"
done
echo
printf '%9s %11s %11s %14s %12s %11s %6s\n' records wall CPU "peak RSS" "CPU/record" "RSS/record" load
printf '%s\n' "${rows[@]}"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
