#!/usr/bin/env sh
# The whole syncgate pipeline for any CI that runs a shell, from the root of the repository
# that holds contracts/ (and harness/, if you have scenarios or fixtures of your own):
#
#   1. the committed pact files are current (`contracts pacts --all --check`);
#   2. every tenant's bundle is published to the shared store;
#   3. the gate runs every tenant and scenario and records the verification (a failing
#      run leaves a replay file in $SYNCGATE_OUT/replays);
#   4. per tenant: can-i-deploy, your deploy command, record-deployment.
#
# Settings (environment):
#   SYNCGATE_DATABASE_URL   required: the shared store (postgres://…) every step and every
#                           job must see. Unset or empty is an error, never a throwaway store.
#   SYNCGATE                the syncgate binary (default: syncgate on PATH)
#   SYNCGATE_OUT            where reports go (default: target/syncgate)
#   SYNCGATE_SEED           the gate's seed (default: 1; the CI run number is a good choice)
#   SYNCGATE_ENGINE_VERSION what is verified and deployed (default: git rev-parse HEAD)
#   SYNCGATE_ENVIRONMENT    the environment deployed to (default: production)
#   SYNCGATE_DEPLOY_CMD     run per tenant once can-i-deploy said yes, with SYNCGATE_PARTNER,
#                           SYNCGATE_TENANT and SYNCGATE_BUNDLE_VERSION set; unset: steps 4's
#                           deploy and record-deployment are skipped (and say so)
#
# Exit codes: 0 all passed; 1 a check failed (stale pacts, gate, can-i-deploy); 2 bad input
# or settings; 3 internal error.
set -eu

if [ -z "${SYNCGATE_DATABASE_URL:-}" ]; then
  echo "error: SYNCGATE_DATABASE_URL is unset or empty: set it to the shared store (postgres://…)," >&2
  echo "       or publish, the gate's verification records and can-i-deploy would each use a throwaway store" >&2
  exit 2
fi
export SYNCGATE_DATABASE_URL
sg="${SYNCGATE:-syncgate}"
out="${SYNCGATE_OUT:-target/syncgate}"
seed="${SYNCGATE_SEED:-1}"
environment="${SYNCGATE_ENVIRONMENT:-production}"
engine_version="${SYNCGATE_ENGINE_VERSION:-}"
if [ -z "$engine_version" ]; then
  engine_version="$(git rev-parse HEAD 2>/dev/null)" || {
    echo "error: SYNCGATE_ENGINE_VERSION is unset and this is not a git checkout" >&2
    exit 2
  }
fi
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

# Every tenant directory: contracts/<partner>/<tenant>/bundle.toml.
tenants() {
  for f in contracts/*/*/bundle.toml; do
    [ -f "$f" ] && dirname "$f"
  done
}
if [ -z "$(tenants)" ]; then
  echo "error: no contracts/<partner>/<tenant>/bundle.toml here ($(pwd))" >&2
  exit 2
fi

step "1. pact files are current"
"$sg" contracts pacts --all --check

step "2. publish every tenant"
for dir in $(tenants); do
  "$sg" contracts publish "$dir"
done

step "3. gate every tenant and scenario (records the verification for $engine_version)"
status=0
"$sg" gate --seed "$seed" --engine-version "$engine_version" --environment "$environment" \
  --junit "$out/junit.xml" --markdown "$out/summary.md" --json "$out/report.json" \
  --journal-dir "$out/journals" --artefacts "$out/replays" || status=$?
case $status in
  0) ;;
  1) echo "syncgate: the gate failed; replay files of the failing runs are in $out/replays" >&2; exit 1 ;;
  2) echo "syncgate: bad input (contracts, scenarios or fixtures); fix the file named above" >&2; exit 2 ;;
  *) echo "syncgate: internal error ($status)" >&2; exit "$status" ;;
esac

step "4. can-i-deploy, deploy and record, per tenant ($environment)"
for dir in $(tenants); do
  tenant="$(basename "$dir")"
  partner="$(basename "$(dirname "$dir")")"
  # `validate` prints: ok <partner>/<tenant> <version> <hash> (…)
  version="$("$sg" contracts validate "$dir" | awk '{print $3}')"
  "$sg" contracts can-i-deploy --partner "$partner" --tenant "$tenant" \
    --engine-version "$engine_version" --to "$environment" --bundle-version "$version"
  if [ -z "${SYNCGATE_DEPLOY_CMD:-}" ]; then
    echo "$partner/$tenant: no SYNCGATE_DEPLOY_CMD, so nothing deployed and no deployment recorded"
    continue
  fi
  SYNCGATE_PARTNER="$partner" SYNCGATE_TENANT="$tenant" SYNCGATE_BUNDLE_VERSION="$version" \
    sh -c "$SYNCGATE_DEPLOY_CMD"
  "$sg" contracts record-deployment --partner "$partner" --tenant "$tenant" \
    --environment "$environment" --bundle-version "$version" --engine-version "$engine_version"
done

step "done: every tenant published, gated, verified${SYNCGATE_DEPLOY_CMD:+ and deployed}"
