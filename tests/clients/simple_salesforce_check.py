"""Drives simple-salesforce, unmodified, against `syncgate mock serve --tls`.

Environment: MOCK_URL (https base URL), MOCK_CLIENT_ID, MOCK_CLIENT_SECRET and
REQUESTS_CA_BUNDLE (the CA file the mock printed). The mock's bundle must give Account a
validation rule on Phone. Prints one line per check and exits non-zero on the first
failure; tests/real_clients.rs runs it.
"""

import os
import sys

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

BASE = os.environ["MOCK_URL"]
EXT = "NW_Customer_Id__c"


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok   {name}")


def main():
    token = requests.post(
        f"{BASE}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": os.environ["MOCK_CLIENT_ID"],
            "client_secret": os.environ["MOCK_CLIENT_SECRET"],
        },
        timeout=30,
    ).json()
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        version="62.0",
    )

    created = sf.Account.create({"Name": "Alder Outfitters", EXT: "PY-0"})
    check("create", created["success"] and created["id"].startswith("001"), created)

    status = sf.Account.upsert(f"{EXT}/PY-1", {"Name": "Birch Goods"})
    check("upsert created -> 201", status == 201, status)
    status = sf.Account.upsert(f"{EXT}/PY-1", {"Name": "Birch Goods Ltd"})
    check("upsert updated -> 200", status == 200, status)

    rec = sf.Account.get_by_custom_id(EXT, "PY-1")
    check("get by external id", rec["Name"] == "Birch Goods Ltd", rec)
    check("record attributes", rec["attributes"]["type"] == "Account", rec)

    rows = [{EXT: f"BULK-{i:05d}", "Name": f"Shop {i}", "NumberOfEmployees": str(i)}
            for i in range(2100)]
    rows.append({EXT: "BULK-BAD", "Name": "", "NumberOfEmployees": "many"})
    results = sf.bulk2.Account.upsert(records=rows, external_id_field=EXT, wait=1)
    job = results[0]
    check("bulk2 upsert processed", job["numberRecordsProcessed"] == 2101, results)
    check("bulk2 upsert failures counted", job["numberRecordsFailed"] == 1, results)
    detail = sf.bulk2.Account.get_all_ingest_records(job["job_id"])
    ok = detail["successfulRecords"]
    bad = detail["failedRecords"]
    check("bulk2 successful results", len(ok) == 2100 and ok[0]["sf__Created"] == "true",
          ok[:1])
    check("bulk2 failed results", len(bad) == 1 and bad[0]["sf__Error"].startswith("JSON_PARSER_ERROR:"), bad)
    check("bulk2 unprocessed results", detail["unprocessedRecords"] == [], detail["unprocessedRecords"])

    everything = sf.query_all("SELECT Id, Name FROM Account")
    check("query_all pages past 2,000", everything["totalSize"] == 2102
          and len(everything["records"]) == 2102, everything["totalSize"])
    first = sf.query("SELECT Id FROM Account")
    check("first page is 2,000", len(first["records"]) == 2000 and not first["done"], first["done"])
    more = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    check("query_more follows nextRecordsUrl", len(more["records"]) == 102 and more["done"], more["done"])

    limits = sf.limits()
    check("limits", limits["DailyApiRequests"]["Max"] > 0, limits.get("DailyApiRequests"))
    check("api usage parsed from Sforce-Limit-Info", sf.api_usage.get("api-usage") is not None,
          sf.api_usage)

    try:
        sf.Account.create({"Name": "Bad Phone", "Phone": "call me maybe"})
        check("validation error raises", False, "no exception")
    except SalesforceMalformedRequest as e:
        check("validation error raises SalesforceMalformedRequest",
              e.content[0]["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION", e.content)

    # Salesforce's JSON reader converts what it can read and refuses the rest.
    sf.Account.update(created["id"], {"NumberOfEmployees": "42", "BillingCity": 42})
    alder = sf.Account.get(created["id"])
    check("a number sent as text is stored as a number",
          alder["NumberOfEmployees"] == 42 and isinstance(alder["NumberOfEmployees"], int), alder)
    check("a number sent for text is stored as text", alder["BillingCity"] == "42", alder)
    try:
        sf.Account.update(created["id"], {"NumberOfEmployees": "many"})
        check("unreadable value raises", False, "no exception")
    except SalesforceMalformedRequest as e:
        check("unreadable value is JSON_PARSER_ERROR", e.content[0]["errorCode"] == "JSON_PARSER_ERROR"
              and "instance of int from VALUE_STRING value many" in e.content[0]["message"], e.content)

    count = sf.query("SELECT COUNT() FROM Account")
    check("COUNT() answers totalSize without records", count["totalSize"] == 2102
          and count["records"] == [] and count["done"], count)
    shops = sf.query("SELECT COUNT(Id) n, SUM(NumberOfEmployees) staff, MAX(Name) "
                     "FROM Account WHERE Name LIKE 'Shop 1%'")
    row = shops["records"][0]
    check("aggregate query answers an AggregateResult", shops["totalSize"] == 1
          and row["attributes"]["type"] == "AggregateResult" and row["n"] == 1111
          and row["staff"] == 1514596 and row["expr0"] == "Shop 1999", shops)
    groups = sf.query("SELECT Name, COUNT(Id) FROM Account "
                      "WHERE Name IN ('Shop 7', 'Birch Goods Ltd') GROUP BY Name ORDER BY Name")
    check("GROUP BY", [(r["Name"], r["expr0"]) for r in groups["records"]]
          == [("Birch Goods Ltd", 1), ("Shop 7", 1)], groups)
    try:
        sf.query("SELECT Name, COUNT(Id) FROM Account")
        check("ungrouped field raises", False, "no exception")
    except SalesforceMalformedRequest as e:
        check("ungrouped field is MALFORMED_QUERY", e.content[0]["errorCode"] == "MALFORMED_QUERY"
              and "grouped or aggregated" in e.content[0]["message"], e.content)

    found = sf.quick_search("Birch")
    recs = found["searchRecords"]
    check("quick_search", len(recs) == 1 and recs[0]["attributes"]["type"] == "Account", found)
    found = sf.search("FIND {Shop 21*} IN NAME FIELDS RETURNING Account(Id, Name ORDER BY Name LIMIT 3)")
    names = [r["Name"] for r in found["searchRecords"]]
    check("search RETURNING fields, ORDER BY, LIMIT", names == ["Shop 21", "Shop 210", "Shop 211"],
          names)
    params = {"q": "birch", "sobject": "Account", "Account.fields": "Id,Name"}
    found = sf.restful("parameterizedSearch/", params=params)
    check("parameterizedSearch", [r["Name"] for r in found["searchRecords"]] == ["Birch Goods Ltd"],
          found)
    try:
        sf.search("FIND Birch")
        check("malformed search raises", False, "no exception")
    except SalesforceMalformedRequest as e:
        check("malformed search is MALFORMED_SEARCH",
              e.content[0]["errorCode"] == "MALFORMED_SEARCH", e.content)

    # Spend the daily budget for real: load a scenario with a budget of 2 calls.
    r = requests.post(f"{BASE}/__syncgate/scenario",
                      data="purpose: budget\nlimits: { daily_api_requests: 2 }\n", timeout=30)
    check("admin loads a scenario", r.status_code == 200, r.text)
    sf.limits()
    sf.limits()
    try:
        sf.limits()
        check("budget exhaustion raises", False, "no exception")
    except SalesforceRefusedRequest as e:
        check("REQUEST_LIMIT_EXCEEDED raises SalesforceRefusedRequest",
              e.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED", e.content)
    print("simple-salesforce: all checks passed")


if __name__ == "__main__":
    main()
