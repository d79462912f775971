#!/usr/bin/env sh
# Plain-shell CI step: run the gate, keep the JUnit report, journals and replay files of
# failing runs, and pass the exit code through (0 pass, 1 gate failed, 2 bad input or
# settings, 3 internal error). For the whole pipeline (pacts, publish, gate, can-i-deploy,
# deploy, record) use ci/pipeline.sh.
set -u
if [ -z "${SYNCGATE_DATABASE_URL:-}" ]; then
  echo "error: SYNCGATE_DATABASE_URL is unset or empty: set it to the shared store (postgres://…)" >&2
  exit 2
fi
export SYNCGATE_DATABASE_URL
out="${SYNCGATE_OUT:-target/syncgate}"
mkdir -p "$out"
"${SYNCGATE:-syncgate}" gate --seed "${SYNCGATE_SEED:-1}" --junit "$out/junit.xml" \
  --journal-dir "$out/journals" --artefacts "$out/replays" "$@"
status=$?
case $status in
  0) echo "syncgate: every tenant passed" ;;
  1) echo "syncgate: the gate failed; replay files in $out/replays (syncgate replay --from FILE)" >&2 ;;
  2) echo "syncgate: bad input (contracts, scenarios or fixtures); fix the file named above" >&2 ;;
  *) echo "syncgate: internal error ($status)" >&2 ;;
esac
exit $status
