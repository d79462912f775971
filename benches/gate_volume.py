#!/usr/bin/env python3
"""Writes a fixture set N times the size of harness/fixtures/default (664 records; every
copy's IDs suffixed, children pointing at their own copy's parents) and a scenario
directory holding only `baseline`, for timing the gate at volume:

    python3 benches/gate_volume.py 15 /tmp/vol15      # 9,960 records
    /usr/bin/time -v syncgate --database-url sqlite::memory: gate \\
        --fixtures /tmp/vol15/fixtures --scenarios /tmp/vol15/scenarios \\
        --no-builtin-scenarios --partner northwind-outfitters --tenant production --no-pacts

`benches/gate_volume.sh` does this at 10k, 100k and 1M records and prints one table.
"""
import csv
import json
import pathlib
import shutil
import sys

copies, out = int(sys.argv[1]), pathlib.Path(sys.argv[2])
src = pathlib.Path(__file__).resolve().parent.parent / "harness"
fixtures = out / "fixtures" / "default"
scenarios = out / "scenarios"
shutil.rmtree(out, ignore_errors=True)
fixtures.mkdir(parents=True)
scenarios.mkdir(parents=True)
shutil.copy(src / "scenarios" / "baseline.yaml", scenarios / "baseline.yaml")
REFS = ("account_no",)
records = 0
for name in ("accounts.jsonl", "opportunities.jsonl"):
    lines = (src / "fixtures" / "default" / name).read_text().splitlines()
    with open(fixtures / name, "w") as f:
        for k in range(copies):
            for line in lines:
                r = json.loads(line)
                r["id"] = f"{r['id']}-{k}"
                for ref in REFS:
                    if isinstance(r["data"].get(ref), str):
                        r["data"][ref] = f"{r['data'][ref]}-{k}"
                f.write(json.dumps(r) + "\n")
                records += 1
with open(src / "fixtures" / "default" / "contacts.csv", newline="") as f:
    rows = list(csv.DictReader(f))
with open(fixtures / "contacts.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    for k in range(copies):
        for row in rows:
            row = dict(row)
            row["id"] = f"{row['id']}-{k}"
            if row.get("account_no"):
                row["account_no"] = f"{row['account_no']}-{k}"
            w.writerow(row)
            records += 1
print(f"{records} records in {fixtures}")
