#!/usr/bin/env sh
# Plain-shell CI step: run the gate, keep the JUnit report and journals, and pass the
# exit code through (0 pass, 1 gate failed, 2 bad input, 3 internal error).
set -u
out="${SYNCGATE_OUT:-target/syncgate}"
mkdir -p "$out"
syncgate gate --seed "${SYNCGATE_SEED:-1}" --junit "$out/junit.xml" --journal-dir "$out/journals" "$@"
status=$?
case $status in
  0) echo "syncgate: every tenant passed" ;;
  1) echo "syncgate: the gate failed; see the report above and $out/journals" >&2 ;;
  2) echo "syncgate: bad input (contracts, scenarios or fixtures); fix the file named above" >&2 ;;
  *) echo "syncgate: internal error ($status)" >&2 ;;
esac
exit $status
