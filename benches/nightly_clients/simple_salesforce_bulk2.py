"""The nightly load through simple-salesforce's Bulk 2.0 upsert, as a user would write it:
`sf.bulk2.Account.upsert(records=..., external_id_field=...)` with the library's defaults,
Accounts first, then Opportunities (their parent by external ID).

Environment: MOCK_URL, MOCK_CLIENT_ID, MOCK_CLIENT_SECRET; argv[1]: the salesforce.json
that load.py wrote. Prints one JSON line: records sent, succeeded, failed.
"""

import json
import os
import sys

import requests
from simple_salesforce import Salesforce

base = os.environ["MOCK_URL"]
token = requests.post(
    f"{base}/services/oauth2/token",
    data={
        "grant_type": "client_credentials",
        "client_id": os.environ["MOCK_CLIENT_ID"],
        "client_secret": os.environ["MOCK_CLIENT_SECRET"],
    },
    timeout=30,
).json()
sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], version="62.0")
records = json.load(open(sys.argv[1]))
sent = ok = failed = 0
for obj, ext in (("Account", "NW_Customer_Id__c"), ("Opportunity", "NW_Opportunity_Id__c")):
    rows = records[obj]
    results = getattr(sf.bulk2, obj).upsert(records=rows, external_id_field=ext)
    sent += len(rows)
    for r in results:
        ok += int(r.get("numberRecordsProcessed", 0)) - int(r.get("numberRecordsFailed", 0))
        failed += int(r.get("numberRecordsFailed", 0))
print(json.dumps({"sent": sent, "succeeded": ok, "failed": failed}))
