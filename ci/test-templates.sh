#!/usr/bin/env bash
# Tests the CI templates as a team copies them: a fresh git repository holding a copy of
# this repository's contracts/ (and harness/ when the binary has no built-in scenario
# library) and ci/pipeline.sh, whose steps run in order there with the built binary; the
# YAML templates parse and name only commands the binary has; and the Docker image builds
# where a Docker engine runs (skipped, saying so, where it does not).
#
#   bash ci/test-templates.sh [path/to/syncgate]     (default: target/release/syncgate)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
bin="${1:-$root/target/release/syncgate}"
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
if [ ! -x "$bin" ]; then
  echo "error: no syncgate binary at $bin (cargo build --release first)" >&2
  exit 2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
checks=0
ok() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

echo "== the YAML templates parse and name only syncgate commands that exist"
python3 - "$bin" ci/github-actions.yml ci/gitlab-ci.yml <<'PY'
import re, subprocess, sys, yaml
binary, files = sys.argv[1], sys.argv[2:]
for path in files:
    doc = yaml.safe_load(open(path))
    text = open(path).read()
    # The shell the templates run: `run:` (GitHub), `script:`/`before_script:` (GitLab).
    def shell(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("run", "script", "before_script"):
                    yield from (v if isinstance(v, list) else [v])
                else:
                    yield from shell(v)
        elif isinstance(node, list):
            for v in node:
                yield from shell(v)
    commands = "\n".join(str(c) for c in shell(doc))
    assert "syncgate gate" in commands, f"{path}: runs no gate"
    for cmd in sorted(set(re.findall(r"(?m)(?:^\s*|[;&|(]\s*|\bthen\s+)syncgate ((?:contracts )?[a-z][a-z-]+)", commands))):
        args = cmd.split() + ["--help"]
        r = subprocess.run([binary] + args, capture_output=True)
        if r.returncode != 0:
            sys.exit(f"{path}: `syncgate {cmd}` is not a command of this syncgate: {r.stderr.decode()}")
    if path.endswith("github-actions.yml"):
        gate = doc["jobs"]["gate"]
        perms = gate.get("permissions", {})
        assert perms.get("checks") == "write", f"{path}: the JUnit report action needs checks: write"
        steps = [s.get("run", "") for s in gate["steps"]]
        assert not any("cargo install" in s for s in steps), f"{path}: compiles syncgate per job"
    if path.endswith("gitlab-ci.yml"):
        assert "cargo install" not in text, f"{path}: compiles syncgate per job"
        assert doc[".syncgate"]["image"] == "$SYNCGATE_IMAGE", f"{path}: not on the image"
    print(f"{path}: parses; syncgate commands exist; nothing compiled per job")
PY
ok "YAML templates"

echo "== a fresh repository holding a copy of contracts/"
repo="$work/repo"
mkdir -p "$repo/ci"
cp -R contracts "$repo/contracts"
[ -f syncgate.toml ] && cp syncgate.toml "$repo/"
if "$bin" scenarios list >/dev/null 2>&1; then
  echo "the binary ships the scenario library: contracts/ only"
else
  echo "this syncgate has no built-in scenario library: harness/scenarios and harness/fixtures copied too"
  mkdir -p "$repo/harness"
  cp -R harness/scenarios harness/fixtures "$repo/harness/"
fi
cp ci/pipeline.sh "$repo/ci/pipeline.sh"
git -C "$repo" init -q
git -C "$repo" add -A
git -C "$repo" -c user.name=ci -c user.email=ci@example.invalid commit -q -m "our contracts"
ok "fresh repository at $repo"

run_pipeline() { (cd "$repo" && SYNCGATE="$bin" sh ci/pipeline.sh) ; }

echo "== an unset or empty SYNCGATE_DATABASE_URL is an error (exit 2), in the template and the CLI"
set +e
(unset SYNCGATE_DATABASE_URL; run_pipeline) >"$work/unset.log" 2>&1; unset_status=$?
(SYNCGATE_DATABASE_URL="" run_pipeline) >"$work/empty.log" 2>&1; empty_status=$?
(cd "$repo" && "$bin" --database-url "" gate) >"$work/cli.log" 2>&1; cli_status=$?
set -e
[ "$unset_status" = 2 ] && grep -q "SYNCGATE_DATABASE_URL is unset or empty" "$work/unset.log" \
  || fail "unset store: exit $unset_status: $(cat "$work/unset.log")"
[ "$empty_status" = 2 ] || fail "empty store: exit $empty_status: $(cat "$work/empty.log")"
[ "$cli_status" = 2 ] && grep -q "database-url is empty" "$work/cli.log" \
  || fail "--database-url \"\": exit $cli_status: $(cat "$work/cli.log")"
[ ! -e "$repo/.syncgate" ] || fail "a throwaway store was created at $repo/.syncgate"
ok "unset and empty store URLs refused"

echo "== the shell template's steps, in order"
store="sqlite:$work/state.sqlite"
deploy_log="$work/deployed.txt"
SYNCGATE_DATABASE_URL="$store" SYNCGATE_SEED=7 \
  SYNCGATE_DEPLOY_CMD="echo \"\$SYNCGATE_PARTNER/\$SYNCGATE_TENANT \$SYNCGATE_BUNDLE_VERSION\" >> '$deploy_log'" \
  run_pipeline 2>&1 | tee "$work/pipeline.log"
tenants=$(cd "$repo" && ls -d contracts/*/*/bundle.toml | wc -l)
deployed=$(wc -l < "$deploy_log")
[ "$deployed" = "$tenants" ] || fail "$deployed of $tenants tenants deployed"
for f in junit.xml summary.md report.json; do
  [ -s "$repo/target/syncgate/$f" ] || fail "no $f report"
done
# Every tenant published and deployed in production, as the store says.
"$bin" --database-url "$store" contracts list --json > "$work/list.json"
python3 - "$work/list.json" "$tenants" <<'PY'
import json, sys
rows, want = json.load(open(sys.argv[1])), int(sys.argv[2])
deployed = {(r["partner"], r["tenant"]) for r in rows if any(d["environment"] == "production" for d in r["deployed"])}
assert len(deployed) == want, f"{len(deployed)} of {want} tenants deployed in production: {rows}"
print(f"store: {want} tenants published and deployed in production")
PY
ok "pipeline: $tenants tenants published, gated, recorded and deployed"

echo "== a stale pact file stops the pipeline at its first step, naming the file"
pact=$(cd "$repo" && ls contracts/*/*/pacts/*.json | head -1)
sed -i 's/"consumer"/"consumer" /' "$repo/$pact"
set +e
(SYNCGATE_DATABASE_URL="$store" run_pipeline) >"$work/stale.log" 2>&1; stale_status=$?
set -e
[ "$stale_status" = 1 ] && grep -q "stale   $pact" "$work/stale.log" \
  || fail "stale pact: exit $stale_status: $(cat "$work/stale.log")"
ok "stale pact refused"

echo "== docker build of the image"
if ! command -v docker >/dev/null 2>&1; then
  echo "SKIPPED docker build: docker is not installed here"
elif docker info >/dev/null 2>&1; then
  docker build -q -t syncgate:ci-test "$root"
  docker run --rm syncgate:ci-test syncgate --version
  uid=$(docker run --rm syncgate:ci-test id -u)
  [ "$uid" != 0 ] || fail "the image runs as root"
  ok "docker image builds and runs as uid $uid"
else
  echo "SKIPPED docker build: no Docker engine reachable here ($(docker info 2>&1 | grep -m1 -iE 'cannot connect|error' || echo 'docker info failed'))"
fi

echo "ci templates: $checks checks ok"
