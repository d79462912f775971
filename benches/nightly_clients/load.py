"""The nightly load of benches/nightly.rs (42,000 Accounts + 12,200 Opportunities), generated
the same way, in two shapes:

- `write_source(dir)`: a `syncgate sync --source DIR` directory (`accounts.jsonl`,
  `opportunities.jsonl`, one change line per record);
- `salesforce_records()`: the same records as a user of a client library writes them for
  Bulk API 2.0 (Salesforce field names, the bundle's mapping of
  contracts/northwind-outfitters, the Opportunity's parent by its external ID).
"""

import json
import pathlib

ACCOUNTS = 42_000
OPPORTUNITIES = 12_200
INDUSTRIES = ["Retail", "Manufacturing", "Transportation"]
STAGES = ["Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won"]


def account(i):
    return {
        "company_name": f"Account {i}",
        "industry": INDUSTRIES[i % 3],
        "annual_revenue": 1000 * (i % 9000),
        "employees": i % 2400,
        "billing_city": "Denver",
        "billing_country": "United States",
    }


def opportunity(i):
    return {
        "account_no": f"CUST-{(i * 7) % ACCOUNTS:06}",
        "name": f"Renewal {i}",
        "stage": STAGES[i % 5],
        "amount": 5000 + i,
        "close_date": "2026-06-30",
    }


def write_source(directory):
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "accounts.jsonl", "w") as f:
        for i in range(ACCOUNTS):
            f.write(json.dumps({"id": f"CUST-{i:06}", "version": 1, "data": account(i)}) + "\n")
    with open(d / "opportunities.jsonl", "w") as f:
        for i in range(OPPORTUNITIES):
            line = {"id": f"OPP-{i:06}", "version": 1, "data": opportunity(i)}
            f.write(json.dumps(line) + "\n")


def salesforce_records():
    """(accounts, opportunities) as lists of dicts of strings, Bulk API 2.0 column names."""
    accounts = []
    for i in range(ACCOUNTS):
        a = account(i)
        accounts.append(
            {
                "NW_Customer_Id__c": f"CUST-{i:06}",
                "Name": a["company_name"],
                "Industry": a["industry"],
                "AnnualRevenue": str(a["annual_revenue"]),
                "NumberOfEmployees": str(a["employees"]),
                "BillingCity": a["billing_city"],
                "BillingCountry": a["billing_country"],
            }
        )
    opportunities = []
    for i in range(OPPORTUNITIES):
        o = opportunity(i)
        opportunities.append(
            {
                "NW_Opportunity_Id__c": f"OPP-{i:06}",
                "Name": o["name"],
                "StageName": o["stage"],
                "Amount": str(o["amount"]),
                "CloseDate": o["close_date"],
                "Account.NW_Customer_Id__c": o["account_no"],
            }
        )
    return accounts, opportunities


if __name__ == "__main__":
    import sys

    out = sys.argv[1] if len(sys.argv) > 1 else "nightly-source"
    write_source(out)
    a, o = salesforce_records()
    pathlib.Path(out, "salesforce.json").write_text(json.dumps({"Account": a, "Opportunity": o}))
    print(f"{len(a)} Accounts + {len(o)} Opportunities in {out}")
