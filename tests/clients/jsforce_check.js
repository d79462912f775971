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
    && results.failedResults[0].sf__Error.startsWith('JSON_PARSER_ERROR:'), results.failedResults);
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

  // Salesforce's JSON reader converts what it can read and refuses the rest: per record in
  // sObject Collections, for the whole request in a single-record write.
  const typed = await conn.sobject('Account').update([
    { Id: created.id, NumberOfEmployees: '42', BillingCity: 42 },
    { Id: up1.id, NumberOfEmployees: 'many' },
  ], { allOrNone: false });
  check('collections: a readable value lands, an unreadable one is JSON_PARSER_ERROR',
    typed[0].success === true && typed[1].success === false
    && JSON.stringify(typed[1].errors).includes('JSON_PARSER_ERROR'), typed);
  const converted = await conn.sobject('Account').retrieve(created.id);
  check('a number sent as text reads back as a number, one sent for text as text',
    converted.NumberOfEmployees === 42 && converted.BillingCity === '42', converted);
  try {
    await conn.sobject('Account').update({ Id: created.id, NumberOfEmployees: 'many' });
    check('unreadable value rejects', false, 'no error');
  } catch (e) {
    check('unreadable value is JSON_PARSER_ERROR', e.errorCode === 'JSON_PARSER_ERROR'
      && /instance of int from VALUE_STRING value many/.test(e.message), { name: e.name, code: e.errorCode, message: e.message });
  }

  const got = await conn.sobject('Account').retrieve([created.id, up1.id]);
  check('retrieve([ids]) (collections POST)', got.length === 2 && got[0].Id === created.id
    && got[1][EXT] === 'JS-1', got.map((r) => r && r.Id));

  const start = new Date(Date.now() - 3600e3);
  const end = new Date(Date.now() + 180e3);
  const doomed = await conn.sobject('Account').create({ Name: 'Short Lived', [EXT]: 'JS-GONE' });
  await conn.sobject('Account').destroy(doomed.id);
  const updated = await conn.sobject('Account').updated(start, end);
  check('updated()', updated.ids.includes(created.id) && !updated.ids.includes(doomed.id),
    updated.ids.length);
  const deleted = await conn.sobject('Account').deleted(start, end);
  check('deleted()', deleted.deletedRecords.length === 1
    && deleted.deletedRecords[0].id === doomed.id, deleted);
  try {
    await conn.sobject('Account').retrieve(doomed.id);
    check('GET of a deleted record fails', false, 'no error');
  } catch (e) {
    check('GET of a deleted record is ENTITY_IS_DELETED', e.errorCode === 'ENTITY_IS_DELETED',
      { name: e.name, code: e.errorCode });
  }

  // A fresh object per request: jsforce writes into the headers it is given.
  const json = () => ({ 'content-type': 'application/json' });
  const batch = await conn.request({
    method: 'POST',
    url: '/composite/batch',
    headers: json(),
    body: JSON.stringify({
      batchRequests: [
        { method: 'GET', url: `v62.0/sobjects/Account/${up1.id}` },
        { method: 'PATCH', url: `v62.0/sobjects/Account/${up1.id}`, richInput: { Name: 'Birch Batch' } },
        { method: 'GET', url: 'v62.0/sobjects/Account/001000000000000AAA' },
      ],
    }),
  });
  check('composite/batch', batch.hasErrors === true && batch.results[0].statusCode === 200
    && batch.results[0].result.Name === 'Birch Goods Ltd' && batch.results[1].statusCode === 204
    && batch.results[2].statusCode === 404, batch);
  const renamed = await conn.sobject('Account').retrieve(up1.id);
  check('composite/batch subrequests ran', renamed.Name === 'Birch Batch', renamed.Name);

  const tree = await conn.request({
    method: 'POST',
    url: '/composite/tree/Account',
    headers: json(),
    body: JSON.stringify({
      records: [{
        attributes: { type: 'Account', referenceId: 'acc1' },
        Name: 'Tree Co',
        [EXT]: 'TREE-1',
        Contacts: {
          records: [{ attributes: { type: 'Contact', referenceId: 'con1' }, LastName: 'Leaf', NW_Contact_Id__c: 'TREE-C1' }],
        },
      }],
    }),
  });
  check('composite/tree', tree.hasErrors === false && tree.results.length === 2
    && tree.results[1].referenceId === 'con1', tree);
  const leaf = await conn.sobject('Contact').retrieve(tree.results[1].id);
  check('composite/tree links the child to its parent', leaf.AccountId === tree.results[0].id, leaf);

  const bulkStream = await conn.bulk2.query(
    `SELECT Id, Name, ${EXT} FROM Account WHERE ${EXT} LIKE 'BULK-0000%' ORDER BY ${EXT}`,
    { pollInterval: 200, pollTimeout: 30000 },
  );
  const bulkRows = [];
  for await (const r of bulkStream) bulkRows.push(r);
  check('bulk2.query', bulkRows.length === 10 && bulkRows[0][EXT] === 'BULK-00000'
    && bulkRows[9].Name === 'Shop 9', bulkRows.slice(0, 2));

  const identity = await conn.identity();
  check('identity', identity.user_id === '0058d0000000001AAA'
    && identity.organization_id === '00D8d0000000001EAA' && identity.username, identity);

  const account = await conn.sobject('Account').describe();
  const field = (d, name) => d.fields.find((f) => f.name === name);
  check('describe labels', account.label === 'Account' && account.labelPlural === 'Accounts'
    && field(account, 'NW_Customer_Id__c').label === 'NW Customer ID'
    && field(account, 'NumberOfEmployees').label === 'Number Of Employees', account.labelPlural);
  const id = field(account, 'Id');
  check('describe Id', id.type === 'id' && id.idLookup === true && id.soapType === 'tns:ID'
    && id.filterable === true, id);
  const industry = field(account, 'Industry');
  check('describe picklist', industry.length === 255 && industry.picklistValues.length === 7
    && industry.soapType === 'xsd:string', industry);
  const archived = field(account, 'Archived__c');
  check('describe checkbox', archived.nillable === false && archived.soapType === 'xsd:boolean'
    && archived.defaultValue === false, archived);
  const revenue = field(account, 'AnnualRevenue');
  check('describe currency', revenue.precision === 18 && revenue.scale === 2
    && revenue.soapType === 'xsd:double', revenue);
  const employees = field(account, 'NumberOfEmployees');
  check('describe int', employees.digits === 9 && employees.soapType === 'xsd:int', employees);
  const children = account.childRelationships.map((r) => `${r.childSObject}.${r.field}`).sort();
  check('describe childRelationships', JSON.stringify(children)
    === JSON.stringify(['Contact.AccountId', 'Opportunity.AccountId']), children);
  const global = await conn.describeGlobal();
  check('global describe URLs use the org version', global.sobjects.every(
    (o) => o.urls.describe.startsWith('/services/data/v62.0/')), global.sobjects[0].urls);
  const user = await conn.sobject('User').describe();
  check('User is read-only', user.createable === false && user.updateable === false
    && field(user, 'Username'), user.createable);

  const contact = await conn.sobject('Contact').describe();
  check('describe labels from the bundle', field(contact, 'Title').label === 'Job Title'
    && field(contact, 'LastName').label === 'Last Name', field(contact, 'Title').label);

  const family = await conn.query(
    `SELECT Name, (SELECT LastName FROM Contacts) FROM Account WHERE ${EXT} IN ('TREE-1', 'JS-0') ORDER BY Name`,
  );
  const treeCo = family.records.find((r) => r.Name === 'Tree Co');
  const alder = family.records.find((r) => r.Name === 'Alder Outfitters');
  check('child relationship subquery', family.totalSize === 2 && treeCo.Contacts.totalSize === 1
    && treeCo.Contacts.done === true && treeCo.Contacts.records[0].LastName === 'Leaf'
    && treeCo.Contacts.records[0].attributes.type === 'Contact' && alder.Contacts === null,
  family.records);
  const grouped = await conn.query(
    `SELECT COUNT(Id) n, MIN(Name) first FROM Account WHERE ${EXT} LIKE 'BULK-000%'`,
  );
  check('aggregate query', grouped.records[0].attributes.type === 'AggregateResult'
    && grouped.records[0].n === 100 && grouped.records[0].first === 'Shop 0', grouped.records);

  const found = await conn.search('FIND {Tree*} IN NAME FIELDS RETURNING Account(Id, Name), Contact(LastName)');
  check('search', found.searchRecords.length === 1 && found.searchRecords[0].Name === 'Tree Co'
    && found.searchRecords[0].attributes.type === 'Account', found);
  const leaves = await conn.request('/parameterizedSearch?q=leaf&sobject=Contact&Contact.fields=Id,LastName');
  check('parameterizedSearch', leaves.searchRecords.length === 1
    && leaves.searchRecords[0].LastName === 'Leaf', leaves);
  try {
    await conn.search('FIND Tree');
    check('malformed search rejects', false, 'no error');
  } catch (e) {
    check('malformed search is MALFORMED_SEARCH', e.errorCode === 'MALFORMED_SEARCH',
      { name: e.name, code: e.errorCode });
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
