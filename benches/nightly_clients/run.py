"""Side by side, in one run: the nightly load (42,000 Accounts + 12,200 Opportunities) into a
fresh `syncgate mock serve --tls` org per load, by

- `syncgate sync` (the release binary, a directory source, a fresh SQLite state store),
- simple-salesforce's `sf.bulk2.<Object>.upsert(...)` (simple_salesforce_bulk2.py),
- jsforce's `bulk2.loadAndWaitForResults` (jsforce_bulk2.js),

alternating, ROUNDS times. Wall clock per load (process start to exit, sign-in included),
API calls from the org's journal (sign-ins not counted), records in the org afterwards.
Prints every round and one table (median wall, API calls, ratios), with the load average.

    python3 benches/nightly_clients/run.py [ROUNDS]     # SYNCGATE_BIN overrides the binary
"""

import json
import os
import pathlib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import load  # noqa: E402

BIN = os.environ.get("SYNCGATE_BIN", str(ROOT / "target" / "release" / "syncgate"))
BUNDLE = "northwind-outfitters/production"
CLIENT_ID, CLIENT_SECRET = "nightly-bench", "nightly-bench-secret"
# Bulk API 2.0 per object: create, upload, close, one status poll, successfulResults.
MINIMUM_CALLS = 2 * 5


class Mock:
    """A fresh `syncgate mock serve --tls` on loopback (its first stdout line is the base URL
    and the CA file). TLS because simple-salesforce only speaks https to an instance."""

    def __init__(self, work):
        self.ca = str(work / "mock-ca.pem")
        self.proc = subprocess.Popen(
            [BIN, "mock", "serve", "--tls", "--ca-file", self.ca, "--bundle", BUNDLE,
             "--contracts", str(ROOT / "contracts"), "--client-id", CLIENT_ID,
             "--client-secret", CLIENT_SECRET],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.proc.stdout.readline().split()[0]
        self.tls = ssl.create_default_context(cafile=self.ca)

    def get(self, path, token=None):
        req = urllib.request.Request(self.url + path)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=120, context=self.tls) as r:
            return r.read().decode()

    def api_calls(self):
        """(API calls, Bulk status polls) in the journal; sign-ins are not API calls."""
        entries = [json.loads(line) for line in self.get("/__syncgate/journal").splitlines() if line]
        api = [e for e in entries if not e["path"].startswith("/services/oauth2/")]
        polls = [e for e in api if e["method"] == "GET" and e["path"].rstrip("/").split("/")[-2] == "ingest"]
        return len(api), len(polls)

    def records(self):
        """Accounts + Opportunities in the org, by SOQL COUNT() (after the journal was read)."""
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                       "client_secret": CLIENT_SECRET}).encode()
        with urllib.request.urlopen(self.url + "/services/oauth2/token", body, timeout=30,
                                    context=self.tls) as r:
            token = json.load(r)["access_token"]
        total = 0
        for obj in ("Account", "Opportunity"):
            q = urllib.parse.quote(f"SELECT COUNT() FROM {obj}")
            total += json.loads(self.get(f"/services/data/v62.0/query?q={q}", token))["totalSize"]
        return total

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def contenders(work):
    source, records = work / "source", work / "source" / "salesforce.json"
    ca = str(work / "mock-ca.pem")
    env = {"MOCK_CLIENT_ID": CLIENT_ID, "MOCK_CLIENT_SECRET": CLIENT_SECRET,
           "REQUESTS_CA_BUNDLE": ca, "NODE_EXTRA_CA_CERTS": ca}

    def syncgate(url, n):
        return [BIN, "--database-url", f"sqlite:{work}/state-{n}.db", "sync", "--bundle", BUNDLE,
                "--contracts", str(ROOT / "contracts"), "--target", url, "--client-id", CLIENT_ID,
                "--client-secret", CLIENT_SECRET, "--ca-file", str(work / "mock-ca.pem"),
                "--source", str(source), "--no-progress", "--json", "--seed", "1"]

    return [
        ("syncgate sync", syncgate, env),
        ("simple-salesforce bulk2 upsert",
         lambda url, n: ["python3", str(HERE / "simple_salesforce_bulk2.py"), str(records)], env),
        ("jsforce bulk2.loadAndWaitForResults",
         lambda url, n: ["node", str(HERE / "jsforce_bulk2.js"), str(records)], env),
    ]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = pathlib.Path(tempfile.mkdtemp(prefix="syncgate-nightly-"))
    load.write_source(work / "source")
    a, o = load.salesforce_records()
    (work / "source" / "salesforce.json").write_text(json.dumps({"Account": a, "Opportunity": o}))
    # The directory source reads every *.jsonl/*.csv; the clients' file is .json, ignored.
    expected = len(a) + len(o)
    print(f"nightly load: {len(a)} Accounts + {len(o)} Opportunities, {rounds} round(s), "
          f"a fresh `syncgate mock serve` per load; {BIN}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")
    results = {}
    n = 0
    for rnd in range(1, rounds + 1):
        print(f"round {rnd}:")
        for name, cmd, env in contenders(work):
            n += 1
            mock = Mock(work)
            try:
                t0 = time.monotonic()
                done = subprocess.run(cmd(mock.url, n), env={**os.environ, **env, "MOCK_URL": mock.url},
                                      capture_output=True, text=True, timeout=1800)
                wall = time.monotonic() - t0
                calls, polls = mock.api_calls()
                landed = mock.records()
            finally:
                mock.stop()
            ok = done.returncode == 0 and landed == expected
            status = "ok" if ok else f"FAILED (exit {done.returncode}, {landed} of {expected} in the org)"
            print(f"  {name:<36} {wall:7.2f} s wall  {calls:4d} API calls ({polls} status polls)  "
                  f"{landed} records  {status}")
            if not ok or os.environ.get("BENCH_VERBOSE"):
                print("   ", (done.stdout + done.stderr).strip()[-2000:].replace("\n", "\n    "))
            results.setdefault(name, []).append((wall, calls, ok))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(f"{'load':<36} {'median wall':>12} {'best wall':>10} {'API calls':>10} {'vs syncgate':>12}")
    base = statistics.median(w for w, _, _ in results["syncgate sync"])
    for name, runs in results.items():
        med = statistics.median(w for w, _, _ in runs)
        calls = "/".join(sorted({str(c) for _, c, _ in runs}))
        failed = sum(1 for *_, ok in runs if not ok)
        note = f"  ({failed} failed)" if failed else ""
        print(f"{name:<36} {med:10.2f} s {min(w for w, _, _ in runs):8.2f} s {calls:>10} "
              f"{med / base:11.2f}x{note}")
    print(f"minimum API calls for two Bulk API 2.0 jobs: {MINIMUM_CALLS} "
          "(create, upload, close, one status poll, successfulResults per object)")
    print("ratio = the load's median wall / syncgate's: above 1 means syncgate is faster")


if __name__ == "__main__":
    main()
