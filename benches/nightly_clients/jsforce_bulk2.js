// The nightly load through jsforce's `bulk2.loadAndWaitForResults`, as a user would write
// it (the library's default polling), Accounts first, then Opportunities (their parent by
// external ID).
//
// Environment: MOCK_URL, MOCK_CLIENT_ID, MOCK_CLIENT_SECRET; argv[2]: the salesforce.json
// that load.py wrote. jsforce comes from tests/clients/node_modules (npm ci there).
// Prints one JSON line: records sent, succeeded, failed.
'use strict';

const fs = require('fs');
const path = require('path');
const jsforce = require(path.join(__dirname, '..', '..', 'tests', 'clients', 'node_modules', 'jsforce'));

async function main() {
  const base = process.env.MOCK_URL;
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: process.env.MOCK_CLIENT_ID,
    client_secret: process.env.MOCK_CLIENT_SECRET,
  });
  const token = await (await fetch(`${base}/services/oauth2/token`, { method: 'POST', body: form })).json();
  const conn = new jsforce.Connection({
    instanceUrl: token.instance_url,
    accessToken: token.access_token,
    version: '62.0',
  });
  const records = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  let sent = 0;
  let succeeded = 0;
  let failed = 0;
  for (const [object, ext] of [['Account', 'NW_Customer_Id__c'], ['Opportunity', 'NW_Opportunity_Id__c']]) {
    const input = records[object];
    const res = await conn.bulk2.loadAndWaitForResults({
      object,
      operation: 'upsert',
      externalIdFieldName: ext,
      input,
    });
    sent += input.length;
    succeeded += res.successfulResults.length;
    failed += res.failedResults.length + res.unprocessedRecords.length;
  }
  console.log(JSON.stringify({ sent, succeeded, failed }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
