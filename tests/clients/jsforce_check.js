// Drives jsforce, unmodified, against `syncgate mock serve --tls`.
//
// Environment: MOCK_URL (https base URL), MOCK_CLIENT_ID, MOCK_CLIENT_SECRET and
// NODE_EXTRA_CA_CERTS (the CA file the mock printed). The mock's bundle must give Account a
// validation rule on Phone. Prints one line per check and exits non-zero on the first
// failure; tests/real_clients.rs runs it.
'use strict';

const jsforce = require('jsforce');

const BASE = process.env.MOCK_URL;
const EXT = 'NW_Customer_Id__c';

function check(name, cond, detail) {
  if (!cond) {
    console.log(`FAIL ${name}: ${JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok   ${name}`);
}

async function main() {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: process.env.MOCK_CLIENT_ID,
    client_secret: process.env.MOCK_CLIENT_SECRET,
  });
  const tokenResp = await fetch(`${BASE}/services/oauth2/token`, { method: 'POST', body: form });
  const token = await tokenResp.json();
  const conn = new jsforce.Connection({
    instanceUrl: token.instance_url,
    accessToken: token.access_token,
    version: '62.0',
  });

  const created = await conn.sobject('Account').create({ Name: 'Alder Outfitters', [EXT]: 'JS-0' });
  check('create', created.success && created.id.startsWith('001'), created);

  const up1 = await conn.sobject('Account').upsert({ [EXT]: 'JS-1', Name: 'Birch Goods' }, EXT);
  check('upsert created', up1.success && up1.created === true, up1);
  const up2 = await conn.sobject('Account').upsert({ [EXT]: 'JS-1', Name: 'Birch Goods Ltd' }, EXT);
  check('upsert updated', up2.success && up2.created === false, up2);

  const rec = await conn.request(`/sobjects/Account/${EXT}/JS-1`);
  check('get by external id', rec.Name === 'Birch Goods Ltd', rec);

  const rows = [];
  for (let i = 0; i < 2100; i++) {
    rows.push({ [EXT]: `BULK-${String(i).padStart(5, '0')}`, Name: `Shop ${i}`, NumberOfEmployees: i });
  }
  rows.push({ [EXT]: 'BULK-BAD', Name: 'Bad', NumberOfEmployees: 'many' });
  const results = await conn.bulk2.loadAndWaitForResults({
    object: 'Account',
    operation: 'upsert',
    externalIdFieldName: EXT,
    input: rows,
    pollInterval: 200,
    pollTimeout: 30000,
  });
  check('bulk2 successful results', results.successfulResults.length === 2100,
    results.successfulResults.length);
  check('bulk2 created flag', String(results.successfulResults[0].sf__Created) === 'true',
    results.successfulResults[0]);
  check('bulk2 failed results', results.failedResults.length === 1
    && results.failedResults[0].sf__Error.startsWith('INVALID_TYPE:'), results.failedResults);
  check('bulk2 unprocessed results', results.unprocessedRecords.length === 0,
    results.unprocessedRecords);

  const first = await conn.query('SELECT Id, Name FROM Account');
  check('first page is 2,000', first.records.length === 2000 && first.done === false
    && first.totalSize === 2102, { n: first.records.length, done: first.done });
  const more = await conn.queryMore(first.nextRecordsUrl);
  check('queryMore follows the locator', more.records.length === 102 && more.done, more.done);
  const all = await conn.query('SELECT Id FROM Account').run({ autoFetch: true, maxFetch: 10000 });
  check('autoFetch pages past 2,000', all.records.length === 2102, all.records.length);

  const limits = await conn.limits();
  check('limits', limits.DailyApiRequests.Max > 0, limits.DailyApiRequests);

  try {
    await conn.sobject('Account').create({ Name: 'Bad Phone', Phone: 'call me maybe' });
    check('validation error rejects', false, 'no error');
  } catch (e) {
    check('validation error names FIELD_CUSTOM_VALIDATION_EXCEPTION',
      e.errorCode === 'FIELD_CUSTOM_VALIDATION_EXCEPTION', { name: e.name, code: e.errorCode });
  }

  const load = await fetch(`${BASE}/__syncgate/scenario`, {
    method: 'POST',
    body: 'purpose: budget\nlimits: { daily_api_requests: 2 }\n',
  });
  check('admin loads a scenario', load.status === 200, await load.text());
  await conn.limits();
  await conn.limits();
  try {
    await conn.limits();
    check('budget exhaustion rejects', false, 'no error');
  } catch (e) {
    check('REQUEST_LIMIT_EXCEEDED error', e.errorCode === 'REQUEST_LIMIT_EXCEEDED',
      { name: e.name, code: e.errorCode });
  }
  console.log('jsforce: all checks passed');
}

main().catch((e) => {
  console.log(`FAIL unexpected error: ${e.stack || e}`);
  process.exit(1);
});
