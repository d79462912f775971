//! The mock org's query surface over real HTTP: SOQL aggregates (`COUNT()`, `COUNT(f)`,
//! `SUM`/`AVG`/`MIN`/`MAX`/`COUNT_DISTINCT`, `GROUP BY`, `HAVING`) answered as
//! `AggregateResult` rows, child relationship subqueries, SOSL `search` and
//! `parameterizedSearch`, with Salesforce's errors, and no query text that can crash it.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};
use syncgate::contract::Registry;
use syncgate::mock::{self, ClientCredentials, MockConfig, MockOrg, RunningMock};
use syncgate::sim::{Clock, Seed, Timestamp};

const API: &str = "/services/data/v62.0";

struct Org {
    _running: RunningMock,
    http: reqwest::Client,
    token: String,
    base: String,
}

/// Northwind's sandbox org with four accounts and three contacts:
/// Alder Outfitters (Retail, 10 staff, Ann and Bob Alder), Birch Goods (Retail, 30 staff),
/// Cedar Camp (Apparel, 5 staff, Cy Cedar) and Dogwood (no industry).
async fn seeded() -> Org {
    let registry =
        Registry::open(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts")).unwrap();
    let t = registry
        .select(&["northwind-outfitters".into()], &["sandbox".into()])
        .unwrap();
    let bundle = registry.load(&t[0]).unwrap();
    let creds = ClientCredentials::gate();
    let org = MockOrg::new(MockConfig {
        bundle,
        scenario: None,
        seed: Seed(5),
        clock: Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap()),
        clients: vec![creds.clone()],
    });
    let running = mock::spawn(org, 0).await.unwrap();
    let http = syncgate::http::client();
    let body: Value = http
        .post(format!("{}/services/oauth2/token", running.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &creds.client_id),
            ("client_secret", &creds.client_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = Org {
        base: running.base_url(),
        _running: running,
        http,
        token: body["access_token"].as_str().unwrap().to_string(),
    };
    let contact = |r: &str, first: &str, last: &str, email: &str, phone: &str| {
        json!({"attributes": {"type": "Contact", "referenceId": r}, "FirstName": first,
            "LastName": last, "Email": email, "Phone": phone, "NW_Contact_Id__c": r})
    };
    let (status, tree) = org
        .call(Method::POST, &format!("{API}/composite/tree/Account"), Some(json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "a1"}, "Name": "Alder Outfitters",
             "NW_Customer_Id__c": "A-1", "Industry": "Retail", "NumberOfEmployees": 10,
             "AnnualRevenue": 1000, "BillingCity": "Oslo",
             "Contacts": {"records": [
                contact("c1", "Ann", "Alder", "ann@alder.example", "(555) 010-2000"),
                contact("c2", "Bob", "Alder", "bob@alder.example", "555 010 3000")]}},
            {"attributes": {"type": "Account", "referenceId": "a2"}, "Name": "Birch Goods",
             "NW_Customer_Id__c": "A-2", "Industry": "Retail", "NumberOfEmployees": 30,
             "AnnualRevenue": 2500.5, "BillingCity": "oslo"},
            {"attributes": {"type": "Account", "referenceId": "a3"}, "Name": "Cedar Camp",
             "NW_Customer_Id__c": "A-3", "Industry": "Apparel", "NumberOfEmployees": 5,
             "BillingCity": "Bergen",
             "Contacts": {"records": [contact("c3", "Cy", "Cedar", "cy@cedar.example", "555 010 4000")]}},
            {"attributes": {"type": "Account", "referenceId": "a4"}, "Name": "Dogwood",
             "NW_Customer_Id__c": "A-4"}
        ]})))
        .await;
    assert_eq!(status, 201, "{tree}");
    org
}

impl Org {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET {resource}?{key}=value` with the value percent-encoded.
    async fn get(&self, resource: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{API}/{resource}", self.base))
            .query(pairs)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    async fn query(&self, soql: &str) -> (u16, Value) {
        self.get("query", &[("q", soql)]).await
    }

    /// A query that must succeed.
    async fn rows(&self, soql: &str) -> Value {
        let (status, body) = self.query(soql).await;
        assert_eq!(status, 200, "{soql}: {body}");
        body
    }

    /// A query that must fail with `code`, its message containing `says`.
    async fn refused(&self, soql: &str, code: &str, says: &str) {
        let (status, body) = self.query(soql).await;
        assert_eq!(status, 400, "{soql}: {body}");
        assert_eq!(body[0]["errorCode"], code, "{soql}: {body}");
        let message = body[0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{soql}: {message}");
    }
}

fn aggregate(fields: Value) -> Value {
    let mut row = json!({"attributes": {"type": "AggregateResult"}});
    if let (Some(r), Some(f)) = (row.as_object_mut(), fields.as_object()) {
        r.extend(f.clone());
    }
    row
}

#[tokio::test]
async fn aggregates_answer_aggregate_results_like_an_org() {
    let org = seeded().await;
    // COUNT(): totalSize only, no records.
    let all = org.rows("SELECT COUNT() FROM Account").await;
    assert_eq!(all, json!({"totalSize": 4, "done": true, "records": []}));
    let retail = org
        .rows("SELECT COUNT() FROM Account WHERE Industry = 'retail'")
        .await;
    assert_eq!(retail["totalSize"], 2);

    // Without GROUP BY: one row, unaliased aggregates named expr0, expr1, …
    let one = org
        .rows("SELECT COUNT(Id), COUNT(AnnualRevenue), SUM(NumberOfEmployees) staff, MIN(Name), MAX(AnnualRevenue), COUNT_DISTINCT(BillingCity) FROM Account")
        .await;
    assert_eq!(one["totalSize"], 1, "{one}");
    assert_eq!(
        one["records"][0],
        aggregate(
            json!({"expr0": 4, "expr1": 2, "staff": 45, "expr2": "Alder Outfitters",
            "expr3": 2500.5, "expr4": 2})
        )
    );
    let none = org
        .rows("SELECT COUNT(Id), AVG(NumberOfEmployees) FROM Account WHERE Name = 'nobody'")
        .await;
    assert_eq!(
        none["records"],
        json!([aggregate(json!({"expr0": 0, "expr1": null}))])
    );

    // GROUP BY: one row per group, grouped fields by name, ordered as asked.
    let by_industry = org
        .rows("SELECT Industry, COUNT(Id) n, AVG(NumberOfEmployees) avg FROM Account GROUP BY Industry ORDER BY COUNT(Id) DESC, Industry NULLS LAST")
        .await;
    assert_eq!(
        by_industry,
        json!({"totalSize": 3, "done": true, "records": [
            aggregate(json!({"Industry": "Retail", "n": 2, "avg": 20.0})),
            aggregate(json!({"Industry": "Apparel", "n": 1, "avg": 5.0})),
            aggregate(json!({"Industry": null, "n": 1, "avg": null})),
        ]})
    );
    // Grouping by a parent field, filtered by HAVING; two grouped fields.
    let busy = org
        .rows("SELECT Account.Industry, COUNT(Id) FROM Contact GROUP BY Account.Industry HAVING COUNT(Id) > 1")
        .await;
    assert_eq!(
        busy["records"],
        json!([aggregate(json!({"Industry": "Retail", "expr0": 2}))])
    );
    let pairs = org
        .rows("SELECT Industry, BillingCity city, COUNT(Id) FROM Account WHERE Industry != null GROUP BY Industry, BillingCity LIMIT 2")
        .await;
    assert_eq!(
        pairs["records"],
        json!([
            aggregate(json!({"Industry": "Apparel", "city": "Bergen", "expr0": 1})),
            aggregate(json!({"Industry": "Retail", "city": "Oslo", "expr0": 2})),
        ])
    );

    // Salesforce's errors.
    org.refused(
        "SELECT Name, COUNT(Id) FROM Account",
        "MALFORMED_QUERY",
        "Field must be grouped or aggregated: Name",
    )
    .await;
    org.refused(
        "SELECT Industry FROM Account GROUP BY Industry ORDER BY Name",
        "MALFORMED_QUERY",
        "Ordered field must be grouped or aggregated: Name",
    )
    .await;
    org.refused(
        "SELECT COUNT() FROM Account GROUP BY Industry",
        "MALFORMED_QUERY",
        "COUNT()",
    )
    .await;
    org.refused(
        "SELECT SUM(Name) FROM Account",
        "INVALID_FIELD",
        "field Name does not support aggregate operator SUM",
    )
    .await;
    org.refused(
        "SELECT MAX(Archived__c) FROM Account",
        "INVALID_FIELD",
        "does not support aggregate operator MAX",
    )
    .await;
    org.refused(
        "SELECT AnnualRevenue, COUNT(Id) FROM Account GROUP BY AnnualRevenue",
        "INVALID_FIELD",
        "field 'AnnualRevenue' can not be grouped in a query call",
    )
    .await;
    org.refused(
        "SELECT COUNT(Nope__c) FROM Account",
        "INVALID_FIELD",
        "No such column 'Nope__c' on entity 'Account'",
    )
    .await;
    org.refused(
        "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING SUM(Name) > 1",
        "INVALID_FIELD",
        "does not support aggregate operator SUM",
    )
    .await;
    // Bulk API 2.0 query jobs do not aggregate.
    let (status, job) = org
        .call(
            Method::POST,
            &format!("{API}/jobs/query"),
            Some(json!({"operation": "query", "query": "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry"})),
        )
        .await;
    assert_eq!(
        (status, job[0]["errorCode"].clone()),
        (400, json!("INVALIDJOB"))
    );
}

#[tokio::test]
async fn child_subqueries_nest_a_query_result_or_null() {
    let org = seeded().await;
    let accounts = org
        .rows("SELECT Name, (SELECT LastName, Account.Name FROM contacts ORDER BY FirstName DESC) FROM Account WHERE Name LIKE '%o%' ORDER BY Name")
        .await;
    assert_eq!(accounts["totalSize"], 3, "{accounts}");
    let alder = &accounts["records"][0];
    assert_eq!(alder["Name"], "Alder Outfitters");
    assert_eq!(alder["attributes"]["type"], "Account");
    let contacts = &alder["Contacts"];
    assert_eq!(
        (
            contacts["totalSize"].clone(),
            contacts["done"].clone(),
            contacts["records"].as_array().map(Vec::len)
        ),
        (json!(2), json!(true), Some(2)),
        "{contacts}"
    );
    let bob = &contacts["records"][0];
    assert_eq!(bob["attributes"]["type"], "Contact");
    assert!(bob["attributes"]["url"]
        .as_str()
        .unwrap()
        .starts_with("/services/data/v62.0/sobjects/Contact/003"));
    assert_eq!(bob["LastName"], "Alder");
    assert_eq!(bob["Account"]["Name"], "Alder Outfitters");
    // No children: null, as Salesforce answers it.
    assert_eq!(accounts["records"][1]["Name"], "Birch Goods");
    assert_eq!(accounts["records"][1]["Contacts"], Value::Null);

    // A filtered, limited subquery; another relationship; a deleted child shows in queryAll.
    let ann = org
        .rows("SELECT Id, (SELECT FirstName FROM Contacts WHERE FirstName = 'ann' LIMIT 1), (SELECT Name FROM Opportunities) FROM Account WHERE NW_Customer_Id__c = 'A-1'")
        .await;
    let record = &ann["records"][0];
    assert_eq!(record["Contacts"]["records"][0]["FirstName"], "Ann");
    assert_eq!(record["Contacts"]["totalSize"], 1);
    assert_eq!(record["Opportunities"], Value::Null);
    let bob_id = contacts["records"][0]["attributes"]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let (status, _) = org
        .call(
            Method::DELETE,
            &format!("{API}/sobjects/Contact/{bob_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let soql =
        "SELECT Name, (SELECT LastName FROM Contacts) FROM Account WHERE NW_Customer_Id__c = 'A-1'";
    let live = org.rows(soql).await;
    assert_eq!(live["records"][0]["Contacts"]["totalSize"], 1);
    let (status, with_bin) = org.get("queryAll", &[("q", soql)]).await;
    assert_eq!(status, 200);
    assert_eq!(with_bin["records"][0]["Contacts"]["totalSize"], 2);

    org.refused(
        "SELECT Name, (SELECT Id FROM Cases) FROM Account",
        "INVALID_TYPE",
        "Didn't understand relationship 'Cases' in FROM part of query call",
    )
    .await;
    org.refused(
        "SELECT Name, (SELECT Nope__c FROM Contacts) FROM Account",
        "INVALID_FIELD",
        "No such column 'Nope__c' on entity 'Contact'",
    )
    .await;
    org.refused(
        "SELECT Name, (SELECT Id, (SELECT Id FROM Opportunities) FROM Contacts) FROM Account",
        "MALFORMED_QUERY",
        "one level of child subqueries",
    )
    .await;
    let (status, job) = org
        .call(
            Method::POST,
            &format!("{API}/jobs/query"),
            Some(json!({"operation": "query", "query": "SELECT Name, (SELECT Id FROM Contacts) FROM Account"})),
        )
        .await;
    assert_eq!(
        (status, job[0]["errorCode"].clone()),
        (400, json!("INVALIDJOB"))
    );
}

#[tokio::test]
async fn no_query_text_can_exhaust_the_stack() {
    let org = seeded().await;
    let deep = |open: &str, close: &str| (open.repeat(3000), close.repeat(3000));
    let (o, c) = deep("(", ")");
    org.refused(
        &format!("SELECT Id FROM Account WHERE {o}Name = 'x'{c}"),
        "MALFORMED_QUERY",
        "levels deep",
    )
    .await;
    org.refused(
        &format!(
            "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry HAVING {o}COUNT(Id) > 1{c}"
        ),
        "MALFORMED_QUERY",
        "levels deep",
    )
    .await;
    org.refused(
        &format!(
            "SELECT Id, {}Id FROM Contacts{} FROM Account",
            "(SELECT Id, ".repeat(3000),
            ")".repeat(3000)
        ),
        "MALFORMED_QUERY",
        "one level",
    )
    .await;
    org.refused(
        &format!("SELECT COUNT({o}Id{c}) FROM Account"),
        "MALFORMED_QUERY",
        "expecting a field name",
    )
    .await;
    let (status, body) = org
        .get(
            "search",
            &[(
                "q",
                &format!("FIND {{alder}} RETURNING Account(Id WHERE {o}Name = 'x'{c})"),
            )],
        )
        .await;
    assert_eq!(
        (status, body[0]["errorCode"].clone()),
        (400, json!("MALFORMED_SEARCH"))
    );
    // The org still answers.
    assert_eq!(
        org.rows("SELECT COUNT() FROM Account").await["totalSize"],
        4
    );
}

fn found(body: &Value) -> Vec<(String, String)> {
    body["searchRecords"]
        .as_array()
        .unwrap_or_else(|| panic!("no searchRecords in {body}"))
        .iter()
        .map(|r| {
            let ty = r["attributes"]["type"].as_str().unwrap_or_default();
            let name = ["Name", "LastName", "Email", "Phone", "Id"]
                .iter()
                .find_map(|k| r[*k].as_str())
                .unwrap_or_default();
            (ty.to_string(), name.to_string())
        })
        .collect()
}

#[tokio::test]
async fn sosl_search_and_parameterized_search_find_text() {
    let org = seeded().await;
    // No RETURNING: every object, Id only.
    let (status, all) = org.get("search", &[("q", "FIND {alder}")]).await;
    assert_eq!(status, 200, "{all}");
    let types: Vec<String> = found(&all).into_iter().map(|(t, _)| t).collect();
    assert_eq!(types, vec!["Account", "Contact", "Contact"], "{all}");
    let first = &all["searchRecords"][0];
    assert!(first["Id"].as_str().unwrap().starts_with("001"), "{first}");
    assert!(first.get("Name").is_none(), "{first}");
    assert!(first["attributes"]["url"]
        .as_str()
        .unwrap()
        .starts_with("/services/data/v62.0/sobjects/Account/"));

    for (sosl, want) in [
        (
            "FIND {ALD*} IN NAME FIELDS RETURNING Account(Id, Name), Contact(FirstName, LastName WHERE FirstName = 'Ann')",
            vec![("Account", "Alder Outfitters"), ("Contact", "Alder")],
        ),
        (
            "FIND {ann@alder.example} IN EMAIL FIELDS RETURNING Contact(Email)",
            vec![("Contact", "ann@alder.example")],
        ),
        (
            "FIND {5550104000} IN PHONE FIELDS RETURNING Contact(Phone), Account",
            vec![("Contact", "555 010 4000")],
        ),
        (
            "FIND {camp OR goods} RETURNING Account(Name ORDER BY Name DESC)",
            vec![("Account", "Cedar Camp"), ("Account", "Birch Goods")],
        ),
        (
            "FIND {\"alder outfitters\"} RETURNING Contact, Account(Name)",
            vec![("Account", "Alder Outfitters")],
        ),
        (
            "FIND {alder} RETURNING Contact(LastName ORDER BY FirstName), Account(Name) LIMIT 2",
            vec![("Contact", "Alder"), ("Contact", "Alder")],
        ),
        ("FIND {nowhere} RETURNING Account(Name)", vec![]),
    ] {
        let (status, body) = org.get("search/", &[("q", sosl)]).await;
        assert_eq!(status, 200, "{sosl}: {body}");
        let got = found(&body);
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want, "{sosl}");
    }

    for (sosl, code) in [
        ("FIND alder", "MALFORMED_SEARCH"),
        ("FIND {alder", "MALFORMED_SEARCH"),
        ("FIND {alder} RETURNING Account(Name", "MALFORMED_SEARCH"),
        ("FIND {a}", "MALFORMED_SEARCH"),
        ("FIND {alder} RETURNING Nope__c", "INVALID_TYPE"),
        ("FIND {alder} RETURNING Account(Nope__c)", "INVALID_FIELD"),
    ] {
        let (status, body) = org.get("search", &[("q", sosl)]).await;
        assert_eq!(
            (status, body[0]["errorCode"].clone()),
            (400, json!(code)),
            "{sosl}: {body}"
        );
    }
    let (status, body) = org.get("search", &[]).await;
    assert_eq!(
        (status, body[0]["errorCode"].clone()),
        (400, json!("MALFORMED_SEARCH"))
    );

    // parameterizedSearch: GET with parameters, POST with JSON.
    let (status, body) = org
        .get(
            "parameterizedSearch",
            &[
                ("q", "alder"),
                ("sobject", "Account"),
                ("Account.fields", "Id,Name"),
                ("sobject", "Contact"),
                ("Contact.fields", "LastName,Email"),
                ("Contact.where", "FirstName = 'Bob'"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        found(&body),
        vec![
            ("Account".to_string(), "Alder Outfitters".to_string()),
            ("Contact".to_string(), "Alder".to_string())
        ]
    );
    assert_eq!(body["searchRecords"][1]["Email"], "bob@alder.example");
    let (status, body) = org
        .get(
            "parameterizedSearch",
            &[
                ("q", "al*"),
                ("in", "NAME"),
                ("fields", "Id"),
                ("overallLimit", "2"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["searchRecords"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let (status, body) = org
        .call(
            Method::POST,
            &format!("{API}/parameterizedSearch"),
            Some(json!({"q": "cedar", "in": "ALL", "sobjects": [
                {"name": "Contact", "fields": ["FirstName", "Account.Name"]},
                {"name": "Account", "fields": ["Name"], "limit": 1}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["searchRecords"][0]["Account"]["Name"], "Cedar Camp");
    assert_eq!(body["searchRecords"][1]["Name"], "Cedar Camp");
    for (pairs, code) in [
        (vec![("sobject", "Account")], "MALFORMED_SEARCH"),
        (
            vec![("q", "alder"), ("in", "EVERYTHING")],
            "MALFORMED_SEARCH",
        ),
        (
            vec![
                ("q", "alder"),
                ("sobject", "Account"),
                ("Account.where", "Name ="),
            ],
            "MALFORMED_SEARCH",
        ),
        (
            vec![
                ("q", "alder"),
                ("sobject", "Account"),
                ("Account.limit", "many"),
            ],
            "MALFORMED_SEARCH",
        ),
        (vec![("q", "alder"), ("sobject", "Nope__c")], "INVALID_TYPE"),
    ] {
        let (status, body) = org.get("parameterizedSearch", &pairs).await;
        assert_eq!(
            (status, body[0]["errorCode"].clone()),
            (400, json!(code)),
            "{pairs:?}: {body}"
        );
    }
    let (_, resources) = org.call(Method::GET, &format!("{API}/"), None).await;
    assert_eq!(
        resources["parameterizedSearch"],
        format!("{API}/parameterizedSearch")
    );
}
