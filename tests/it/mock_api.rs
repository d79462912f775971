//! The mock org's wider API over real HTTP: CRUD and the recycle bin, conditional updates,
//! validation rules and unique external IDs from the bundle, collections, composite, SOQL
//! paging, Bulk 2.0 ingest, change events, the admin API, TLS and the newer faults.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use syncgate::contract::{Bundle, Registry, ValidationRule};
use syncgate::mock::{self, ClientCredentials, MockConfig, MockOrg, RunningMock};
use syncgate::sim::{Clock, Scenario, Seed, Timestamp};

fn bundle() -> Bundle {
    let registry =
        Registry::open(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts")).unwrap();
    let t = registry
        .select(&["northwind-outfitters".into()], &["sandbox".into()])
        .unwrap();
    registry.load(&t[0]).unwrap()
}

fn scenario(yaml: &str) -> Scenario {
    Scenario::from_yaml(std::path::Path::new("s.yaml"), yaml).unwrap()
}

struct Org {
    running: RunningMock,
    http: reqwest::Client,
    token: String,
    api: String,
}

async fn start_with(bundle: Bundle, scenario: Option<Scenario>) -> Org {
    let clock = Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap());
    start_on(bundle, scenario, clock).await
}

async fn start_on(bundle: Bundle, scenario: Option<Scenario>, clock: Clock) -> Org {
    let creds = ClientCredentials::gate();
    let org = MockOrg::new(MockConfig {
        bundle,
        scenario,
        seed: Seed(7),
        clock,
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
    let token = body["access_token"].as_str().unwrap().to_string();
    let api = format!("{}/services/data/v62.0", running.base_url());
    Org {
        running,
        http,
        token,
        api,
    }
}

async fn start() -> Org {
    start_with(bundle(), None).await
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl Org {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, String)],
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}/{path}", self.api))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            text,
        }
    }

    fn advance(&self, d: Duration) {
        self.running.org.clock().advance(d);
    }
}

#[tokio::test]
async fn create_read_update_delete_and_the_recycle_bin() {
    let org = start().await;
    let r = org
        .call(
            Method::POST,
            "sobjects/Account",
            Some(json!({"Name": "Alder", "NW_Customer_Id__c": "C-1"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("001") && id.len() == 18);
    assert_eq!(r.json()["success"], true);

    org.advance(Duration::from_secs(60));
    let r = org
        .call(
            Method::PATCH,
            &format!("sobjects/Account/{id}"),
            Some(json!({"Phone": "555-0100"})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    let rec = org
        .call(Method::GET, &format!("sobjects/Account/{id}"), None)
        .await
        .json();
    assert_eq!(rec["Phone"], "555-0100");
    assert_eq!(rec["CreatedDate"], "2026-01-05T08:00:00.000+0000");
    assert_eq!(rec["LastModifiedDate"], "2026-01-05T08:01:00.000+0000");
    assert_eq!(rec["SystemModstamp"], "2026-01-05T08:01:00.000+0000");
    // Every field of the object, null when never set.
    assert_eq!(rec["Industry"], Value::Null);
    assert_eq!(rec["IsDeleted"], false);

    let r = org
        .call(Method::DELETE, &format!("sobjects/Account/{id}"), None)
        .await;
    assert_eq!(r.status, 204);
    let r = org
        .call(Method::DELETE, &format!("sobjects/Account/{id}"), None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()[0]["errorCode"], "ENTITY_IS_DELETED");
    let r = org
        .call(Method::GET, &format!("sobjects/Account/{id}"), None)
        .await;
    assert_eq!(r.status, 404);

    let q = org
        .call(Method::GET, "query?q=SELECT+Id+FROM+Account", None)
        .await
        .json();
    assert_eq!(q["totalSize"], 0);
    let q = org
        .call(
            Method::GET,
            "queryAll/?q=SELECT+Id,+IsDeleted+FROM+Account",
            None,
        )
        .await
        .json();
    assert_eq!(q["totalSize"], 1);
    assert_eq!(q["records"][0]["IsDeleted"], true);
}

#[tokio::test]
async fn conditional_update_refuses_a_stale_client() {
    let org = start().await;
    let id = org
        .call(
            Method::POST,
            "sobjects/Account",
            Some(json!({"Name": "Alder"})),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let read = org
        .call(Method::GET, &format!("sobjects/Account/{id}"), None)
        .await;
    let etag = read.headers["etag"].to_str().unwrap().to_string();
    let read_at = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
    org.advance(Duration::from_secs(30));
    // A sales rep saves in between.
    let r = org
        .call(
            Method::PATCH,
            &format!("sobjects/Account/{id}"),
            Some(json!({"Phone": "1"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = org
        .call_with(
            Method::PATCH,
            &format!("sobjects/Account/{id}"),
            Some(json!({"Phone": "2"})),
            &[("if-unmodified-since", read_at.to_http_date())],
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text);
    let r = org
        .call_with(
            Method::PATCH,
            &format!("sobjects/Account/{id}"),
            Some(json!({"Phone": "2"})),
            &[("if-match", etag)],
        )
        .await;
    assert_eq!(r.status, 412);
    let fresh = org
        .call(Method::GET, &format!("sobjects/Account/{id}"), None)
        .await;
    let r = org
        .call_with(
            Method::PATCH,
            &format!("sobjects/Account/{id}"),
            Some(json!({"Phone": "2"})),
            &[(
                "if-match",
                fresh.headers["etag"].to_str().unwrap().to_string(),
            )],
        )
        .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn validation_rules_and_unique_external_ids_come_from_the_bundle() {
    let mut b = bundle();
    let account = b.objects.get_mut("Account").unwrap();
    account.unique_external_id = true;
    account.validation_rules = vec![
        ValidationRule {
            name: "phone_format".into(),
            field: Some("Phone".into()),
            regex: Some(r"\+?[0-9 ()-]{7,}".into()),
            condition: None,
            message: "Phone must be digits".into(),
        },
        ValidationRule {
            name: "no_negative_revenue".into(),
            field: Some("AnnualRevenue".into()),
            regex: None,
            condition: Some("AnnualRevenue < 0".into()),
            message: "Revenue cannot be negative".into(),
        },
    ];
    let org = start_with(b, None).await;
    let r = org
        .call(
            Method::PATCH,
            "sobjects/Account/NW_Customer_Id__c/C-1",
            Some(json!({"Name": "Alder", "Phone": "call me"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!([{"message": "Phone must be digits", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": ["Phone"]}])
    );
    let r = org
        .call(
            Method::PATCH,
            "sobjects/Account/NW_Customer_Id__c/C-1",
            Some(json!({"Name": "Alder", "Phone": "+1 555 0100"})),
        )
        .await;
    assert_eq!(r.status, 201);
    // The condition sees the record after the write.
    let r = org
        .call(
            Method::PATCH,
            "sobjects/Account/NW_Customer_Id__c/C-1",
            Some(json!({"AnnualRevenue": -5})),
        )
        .await;
    assert_eq!(
        r.json()[0]["errorCode"],
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    );
    assert_eq!(r.json()[0]["message"], "Revenue cannot be negative");
    let r = org
        .call(
            Method::POST,
            "sobjects/Account",
            Some(json!({"Name": "Copy", "NW_Customer_Id__c": "C-1"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()[0]["errorCode"], "DUPLICATE_VALUE");
}

#[tokio::test]
async fn duplicate_external_ids_make_upsert_answer_300() {
    let org = start().await;
    for _ in 0..2 {
        let r = org
            .call(
                Method::POST,
                "sobjects/Account",
                Some(json!({"Name": "Twin", "NW_Customer_Id__c": "T-1"})),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let r = org
        .call(
            Method::PATCH,
            "sobjects/Account/NW_Customer_Id__c/T-1",
            Some(json!({"Name": "Which?"})),
        )
        .await;
    assert_eq!(r.status, 300);
    assert_eq!(r.json().as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn collections_create_update_delete_with_all_or_none() {
    let org = start().await;
    let r = org
        .call(
            Method::POST,
            "composite/sobjects",
            Some(json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Account"}, "Name": "A"},
                {"attributes": {"type": "Account"}},
                {"attributes": {"type": "Account"}, "Name": "C"}
            ]})),
        )
        .await;
    let body = r.json();
    assert_eq!(body[0]["success"], true);
    assert_eq!(body[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(body[2]["success"], true);
    let a = body[0]["id"].as_str().unwrap().to_string();
    let c = body[2]["id"].as_str().unwrap().to_string();

    let r = org
        .call(
            Method::PATCH,
            "composite/sobjects",
            Some(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Account"}, "id": a, "Phone": "1"},
                {"attributes": {"type": "Account"}, "id": c, "Industry": "Mining"}
            ]})),
        )
        .await;
    let body = r.json();
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        body[1]["errors"][0]["statusCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    let rec = org
        .call(Method::GET, &format!("sobjects/Account/{a}"), None)
        .await
        .json();
    assert_eq!(rec["Phone"], Value::Null, "rolled back");

    let r = org
        .call(
            Method::DELETE,
            &format!("composite/sobjects?ids={a},{c}&allOrNone=false"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([{"id": a, "success": true, "errors": []}, {"id": c, "success": true, "errors": []}])
    );
    assert!(org.running.org.records("Account").is_empty());
}

#[tokio::test]
async fn composite_resolves_references_between_subrequests() {
    let org = start().await;
    let r = org
        .call(
            Method::POST,
            "composite",
            Some(json!({"allOrNone": true, "compositeRequest": [
                {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "acct",
                 "body": {"Name": "Parent"}},
                {"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "ct",
                 "body": {"LastName": "Child", "AccountId": "@{acct.id}"}},
                {"method": "GET", "url": "/services/data/v62.0/sobjects/Contact/@{ct.id}", "referenceId": "read"}
            ]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let resp = r.json()["compositeResponse"].clone();
    assert_eq!(resp[0]["httpStatusCode"], 201);
    assert_eq!(resp[1]["httpStatusCode"], 201);
    assert_eq!(resp[2]["body"]["AccountId"], resp[0]["body"]["id"]);
    assert_eq!(resp[2]["referenceId"], "read");

    // allOrNone: a failing subrequest rolls back the ones before it.
    let r = org
        .call(
            Method::POST,
            "composite",
            Some(json!({"allOrNone": true, "compositeRequest": [
                {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "ok", "body": {"Name": "Kept?"}},
                {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "bad", "body": {}}
            ]})),
        )
        .await;
    let resp = r.json()["compositeResponse"].clone();
    assert_eq!(resp[0]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(resp[1]["body"][0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(org.running.org.records("Account").len(), 1);
}

#[tokio::test]
async fn query_pages_2000_records_at_a_time() {
    let org = start().await;
    for chunk in 0..23 {
        let records: Vec<Value> = (0..200)
            .map(|i| {
                let n = chunk * 200 + i;
                json!({"NW_Customer_Id__c": format!("C-{n:05}"), "Name": format!("Shop {n}"), "NumberOfEmployees": n})
            })
            .collect();
        let r = org
            .call(
                Method::PATCH,
                "composite/sobjects/Account/NW_Customer_Id__c",
                Some(json!({"records": records})),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let first = org
        .call(
            Method::GET,
            "query?q=SELECT+Id,+Name+FROM+Account+WHERE+NumberOfEmployees+>=+100+ORDER+BY+NumberOfEmployees+DESC",
            None,
        )
        .await
        .json();
    assert_eq!(first["totalSize"], 4500);
    assert_eq!(first["done"], false);
    assert_eq!(first["records"].as_array().unwrap().len(), 2000);
    assert_eq!(first["records"][0]["Name"], "Shop 4599");
    let next = first["nextRecordsUrl"].as_str().unwrap().to_string();
    assert!(
        next.starts_with("/services/data/v62.0/query/01g") && next.ends_with("-2000"),
        "{next}"
    );
    // jsforce keeps only the locator and calls query/{locator}.
    let locator = next.rsplit('/').next().unwrap();
    let second = org
        .call(Method::GET, &format!("query/{locator}"), None)
        .await
        .json();
    assert_eq!(second["records"].as_array().unwrap().len(), 2000);
    let third = org
        .http
        .get(format!(
            "{}{}",
            org.running.base_url(),
            second["nextRecordsUrl"].as_str().unwrap()
        ))
        .bearer_auth(&org.token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(third["done"], true);
    assert_eq!(third["records"].as_array().unwrap().len(), 500);
    assert_eq!(third["records"][499]["Name"], "Shop 100");

    let count = org
        .call(
            Method::GET,
            "query?q=SELECT+COUNT()+FROM+Account+WHERE+Name+LIKE+'Shop+1%25'",
            None,
        )
        .await
        .json();
    assert_eq!(count["totalSize"], 1111);
}

#[tokio::test]
async fn query_errors_use_salesforce_codes() {
    let org = start().await;
    let r = org.call(Method::GET, "query?q=SELECT+Id+FROM", None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()[0]["errorCode"], "MALFORMED_QUERY");
    let r = org
        .call(Method::GET, "query?q=SELECT+Id,+Nope__c+FROM+Account", None)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()[0]["errorCode"], "INVALID_FIELD");
    assert!(r.json()[0]["message"]
        .as_str()
        .unwrap()
        .contains("No such column 'Nope__c' on entity 'Account'"));
    let r = org
        .call(Method::GET, "query?q=SELECT+Id+FROM+Widget", None)
        .await;
    assert_eq!(r.json()[0]["errorCode"], "INVALID_TYPE");
}

#[tokio::test]
async fn relationship_fields_come_back_nested() {
    let org = start().await;
    org.call(
        Method::PATCH,
        "sobjects/Account/NW_Customer_Id__c/A-1",
        Some(json!({"Name": "Parent Co"})),
    )
    .await;
    org.call(
        Method::PATCH,
        "sobjects/Contact/NW_Contact_Id__c/K-1",
        Some(json!({"LastName": "Okafor", "Account": {"NW_Customer_Id__c": "A-1"}})),
    )
    .await;
    let q = org
        .call(
            Method::GET,
            "query?q=SELECT+LastName,+Account.Name+FROM+Contact+WHERE+Account.Name+=+'parent+co'",
            None,
        )
        .await
        .json();
    assert_eq!(q["totalSize"], 1, "{q}");
    assert_eq!(q["records"][0]["Account"]["Name"], "Parent Co");
    assert_eq!(q["records"][0]["Account"]["attributes"]["type"], "Account");
}

#[tokio::test]
async fn versions_userinfo_describe_and_limit_header() {
    let org = start().await;
    let base = org.running.base_url();
    let versions: Value = org
        .http
        .get(format!("{base}/services/data/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(versions[0]["version"], "62.0");
    assert_eq!(versions[0]["url"], "/services/data/v62.0");
    let info: Value = org
        .http
        .get(format!("{base}/services/oauth2/userinfo"))
        .bearer_auth(&org.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["organization_id"], "00D8d0000000001EAA");
    let d = org
        .call(Method::GET, "sobjects/Account/describe/", None)
        .await;
    assert_eq!(d.status, 200);
    let fields = d.json()["fields"].as_array().unwrap().clone();
    let ext = fields
        .iter()
        .find(|f| f["name"] == "NW_Customer_Id__c")
        .unwrap();
    assert_eq!(ext["externalId"], true);
    let r = org.call(Method::GET, "sobjects/", None).await;
    assert_eq!(r.status, 200);
    let info = r.headers["sforce-limit-info"].to_str().unwrap().to_string();
    assert!(info.starts_with("api-usage="), "{info}");
    let r = org.call(Method::GET, "nothing/here", None).await;
    assert_eq!(r.status, 404);
    assert!(r.headers.contains_key("sforce-limit-info"));
}

#[tokio::test]
async fn bulk_ingest_progresses_on_the_clock_and_reports_results() {
    let org = start().await;
    let r = org
        .call_with(
            Method::POST,
            "jobs/ingest/",
            Some(json!({"object": "Account", "operation": "upsert", "externalIdFieldName": "NW_Customer_Id__c", "contentType": "CSV", "lineEnding": "LF"})),
            &[("sforce-call-options", "client=loader".into())],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let job = r.json();
    let id = job["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("750"));
    assert_eq!(job["state"], "Open");
    let csv = "NW_Customer_Id__c,Name,NumberOfEmployees\nB-1,Birch,12\nB-2,,3\nB-3,Cedar,many\n";
    let put = org
        .http
        .put(format!("{}/jobs/ingest/{id}/batches", org.api))
        .bearer_auth(&org.token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let r = org
        .call(
            Method::PATCH,
            &format!("jobs/ingest/{id}"),
            Some(json!({"state": "UploadComplete"})),
        )
        .await;
    assert_eq!(r.json()["state"], "UploadComplete");
    org.advance(Duration::from_millis(250));
    let r = org
        .call(Method::GET, &format!("jobs/ingest/{id}"), None)
        .await;
    assert_eq!(r.json()["state"], "InProgress");
    org.advance(Duration::from_secs(1));
    let info = org
        .call(Method::GET, &format!("jobs/ingest/{id}"), None)
        .await
        .json();
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["numberRecordsProcessed"], 3);
    assert_eq!(info["numberRecordsFailed"], 2);
    let ok = org
        .call(
            Method::GET,
            &format!("jobs/ingest/{id}/successfulResults/"),
            None,
        )
        .await;
    assert_eq!(ok.headers["content-type"], "text/csv");
    let lines: Vec<&str> = ok.text.lines().collect();
    assert_eq!(
        lines[0],
        "\"sf__Id\",\"sf__Created\",\"NW_Customer_Id__c\",\"Name\",\"NumberOfEmployees\""
    );
    assert!(
        lines[1].contains("\"true\",\"B-1\",\"Birch\",\"12\""),
        "{}",
        lines[1]
    );
    let failed = org
        .call(
            Method::GET,
            &format!("jobs/ingest/{id}/FAILEDRESULTS"),
            None,
        )
        .await;
    assert!(failed.text.starts_with("\"sf__Id\",\"sf__Error\""));
    assert!(failed
        .text
        .contains("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"));
    assert!(failed.text.contains(
        "JSON_PARSER_ERROR:Cannot deserialize instance of int from VALUE_STRING value many"
    ));
    let un = org
        .call(
            Method::GET,
            &format!("jobs/ingest/{id}/unprocessedrecords"),
            None,
        )
        .await;
    assert_eq!(un.text.lines().count(), 1);
    let recs = org.running.org.records("Account");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].fields["NumberOfEmployees"], 12);
    // The bulk write shows up as a change event from the loader.
    let events = org.running.org.change_events();
    assert_eq!(
        events[0]["payload"]["ChangeEventHeader"]["changeOrigin"],
        "com/salesforce/api/bulk/62.0;client=loader"
    );
}

#[tokio::test]
async fn change_events_replay_and_expire() {
    let org = start().await;
    let base = org.running.base_url();
    org.call_with(
        Method::PATCH,
        "sobjects/Account/NW_Customer_Id__c/E-1",
        Some(json!({"Name": "Evergreen"})),
        &[("sforce-call-options", "client=syncgate".into())],
    )
    .await;
    org.call(
        Method::PATCH,
        "sobjects/Account/NW_Customer_Id__c/E-1",
        Some(json!({"Phone": "555"})),
    )
    .await;
    let poll = |replay: &str| {
        let url =
            format!("{base}/__syncgate/events?topic=/data/AccountChangeEvent&replay={replay}");
        let http = org.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, all) = poll("EARLIEST").await;
    assert_eq!(status, 200);
    let events = all["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let h0 = &events[0]["payload"]["ChangeEventHeader"];
    assert_eq!(h0["changeType"], "CREATE");
    assert_eq!(
        h0["changeOrigin"],
        "com/salesforce/api/rest/62.0;client=syncgate"
    );
    assert_eq!(h0["entityName"], "Account");
    let h1 = &events[1]["payload"]["ChangeEventHeader"];
    assert_eq!(h1["changeType"], "UPDATE");
    assert_eq!(h1["changedFields"], json!(["Phone"]));
    assert_eq!(events[1]["payload"]["Phone"], "555");
    let first = events[0]["replayId"].as_u64().unwrap();
    let (_, after) = poll(&first.to_string()).await;
    assert_eq!(after["events"].as_array().unwrap().len(), 1);
    let (_, latest) = poll("LATEST").await;
    assert!(latest["events"].as_array().unwrap().is_empty());

    org.advance(Duration::from_secs(73 * 3600));
    let (status, expired) = poll(&first.to_string()).await;
    assert_eq!(status, 400, "{expired}");
    assert_eq!(expired[0]["errorCode"], "INVALID_REPLAY_ID");
}

#[tokio::test]
async fn admin_api_dumps_resets_and_moves_the_clock() {
    let org = start().await;
    let base = org.running.base_url();
    org.call(
        Method::PATCH,
        "sobjects/Account/NW_Customer_Id__c/Z-1",
        Some(json!({"Name": "Zinnia"})),
    )
    .await;
    let state: Value = org
        .http
        .get(format!("{base}/__syncgate/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["objects"]["Account"][0]["Name"], "Zinnia");
    assert_eq!(state["apiUsage"]["used"], 1);
    let journal = org
        .http
        .get(format!("{base}/__syncgate/journal"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(journal.lines().count(), 2, "{journal}");
    assert!(!journal.contains(&org.token));
    let clock: Value = org
        .http
        .post(format!("{base}/__syncgate/clock?advance=2h"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["clock"], "2026-01-05T10:00:00.000Z");
    let r = org
        .http
        .post(format!("{base}/__syncgate/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(org.running.org.records("Account").is_empty());
    // Sessions survive a reset.
    assert_eq!(org.call(Method::GET, "limits", None).await.status, 200);
    let r = org
        .http
        .post(format!("{base}/__syncgate/scenario"))
        .body("purpose: p\nfaults:\n  - name: down\n    respond: server_unavailable\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(org.call(Method::GET, "limits", None).await.status, 503);
    let bad = org
        .http
        .post(format!("{base}/__syncgate/scenario"))
        .body("purpose: p\nfaults: 3\n")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn session_expiry_revokes_the_token() {
    let org = start_with(
        bundle(),
        Some(scenario(
            "purpose: p\nfaults:\n  - name: expire\n    match: { path: /limits }\n    calls: { first: 2, times: 1 }\n    respond: session_expired\n",
        )),
    )
    .await;
    assert_eq!(org.call(Method::GET, "limits", None).await.status, 200);
    let r = org.call(Method::GET, "limits", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()[0]["errorCode"], "INVALID_SESSION_ID");
    assert_eq!(org.call(Method::GET, "limits", None).await.status, 401);
}

#[tokio::test]
async fn latency_moves_the_clock_and_malformed_bodies_do_not_parse() {
    let org = start_with(
        bundle(),
        Some(scenario(
            "purpose: p\nfaults:\n  - name: slow\n    match: { path: /limits }\n    calls: { times: 1 }\n    respond: { latency: { fixed: 30s } }\n  - name: garbled\n    match: { path: /sobjects }\n    respond: malformed_body\n",
        )),
    )
    .await;
    let before = org.running.org.clock().now();
    assert_eq!(org.call(Method::GET, "limits", None).await.status, 200);
    assert_eq!(
        org.running.org.clock().now().since(before),
        Duration::from_secs(30)
    );
    let r = org.call(Method::GET, "sobjects", None).await;
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<Value>(&r.text).is_err(),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn long_running_requests_in_flight_hit_the_concurrency_limit() {
    let mut b = bundle();
    b.limits.concurrent_long_running = 1;
    b.limits.long_running_threshold_secs = 1;
    // Real time: the slow call is held 1.6 s, so a request arriving after 1.2 s sees one
    // request that has been running longer than the 1 s threshold.
    let org = start_on(
        b,
        Some(scenario(
            "purpose: p\nfaults:\n  - name: slow\n    match: { path: /sobjects }\n    respond: { latency: { fixed: 1600ms } }\n",
        )),
        Clock::shifted(),
    )
    .await;
    let slow = org.call(Method::GET, "sobjects", None);
    let probe = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        org.call(Method::GET, "limits", None).await
    };
    let (slow, probe) = tokio::join!(slow, probe);
    assert_eq!(slow.status, 200);
    assert_eq!(probe.status, 403, "{}", probe.text);
    assert_eq!(
        probe.json()[0]["message"],
        "ConcurrentPerOrgLongTxn Limit exceeded."
    );
    // Once it finished, requests are admitted again.
    assert_eq!(org.call(Method::GET, "limits", None).await.status, 200);
}

#[tokio::test]
async fn manual_edits_happen_between_calls_and_show_as_events() {
    let org = start_with(
        bundle(),
        Some(scenario(
            "purpose: p\nmanual_edits:\n  - name: rep\n    object: Account\n    external_id: M-1\n    after_calls: 1\n    set: { Phone: '555-REP' }\n",
        )),
    )
    .await;
    org.call(
        Method::PATCH,
        "sobjects/Account/NW_Customer_Id__c/M-1",
        Some(json!({"Name": "Maple"})),
    )
    .await;
    let rec = org
        .call(Method::GET, "sobjects/Account/NW_Customer_Id__c/M-1", None)
        .await
        .json();
    assert_eq!(rec["Phone"], "555-REP");
    assert_eq!(rec["LastModifiedById"], "0058d0000000002AAA");
    let events = org.running.org.change_events();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1]["payload"]["ChangeEventHeader"]["changeOrigin"],
        ""
    );
}

#[tokio::test]
async fn a_timed_edit_is_made_at_its_time_and_its_event_ages_out_of_the_bus() {
    // The rep edits at 09:30; the next request comes three days later.
    let clock = Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap());
    let org = start_on(
        bundle(),
        Some(scenario(
            "purpose: p\nmanual_edits:\n  - name: rep\n    object: Account\n    external_id: M-1\n    after: 90m\n    set: { Phone: '555-REP' }\n",
        )),
        clock.clone(),
    )
    .await;
    org.call(
        Method::PATCH,
        "sobjects/Account/NW_Customer_Id__c/M-1",
        Some(json!({"Name": "Maple"})),
    )
    .await;
    let created = org.running.org.change_events();
    assert_eq!(created.len(), 1);
    let first_replay = created[0]["replayId"].as_u64().unwrap();

    clock.advance(Duration::from_secs(80 * 3600));
    let rec = org
        .call(Method::GET, "sobjects/Account/NW_Customer_Id__c/M-1", None)
        .await
        .json();
    assert_eq!(rec["Phone"], "555-REP");
    // Stamped when the rep made it, not when the API next looked.
    assert_eq!(rec["LastModifiedDate"], "2026-01-05T09:30:00.000+0000");
    assert_eq!(rec["LastModifiedById"], "0058d0000000002AAA");
    // Both events are older than the bus's 72 hours: gone, and a consumer that stored the
    // first one's replay ID is told it expired (events after it were lost).
    assert!(org.running.org.change_events().is_empty());
    let url = format!(
        "{}/__syncgate/events?replay={first_replay}",
        org.running.base_url()
    );
    let poll = org.http.get(url).send().await.unwrap();
    assert_eq!(poll.status().as_u16(), 400);
    let body: Value = poll.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_REPLAY_ID", "{body}");
}

#[tokio::test]
async fn tls_serves_https_with_the_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let org = MockOrg::new(MockConfig {
        bundle: bundle(),
        scenario: None,
        seed: Seed(1),
        clock: Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap()),
        clients: vec![ClientCredentials::gate()],
    });
    let running = mock::spawn_with(
        org,
        mock::SpawnOptions {
            port: 0,
            tls_ca_file: Some(ca_path.clone()),
        },
    )
    .await
    .unwrap();
    assert!(running.base_url().starts_with("https://localhost:"));
    let pem = std::fs::read_to_string(&ca_path).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    // A raw TLS client that trusts only the generated CA.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let der = pem_to_der(&pem);
    roots
        .add(rustls::pki_types::CertificateDer::from(der))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /services/data/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).await.ok();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"version\":\"62.0\""), "{out}");
    running.stop().await;
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in b64.bytes().filter(|c| *c != b'=') {
        let v = ALPHA.iter().position(|a| *a == c).unwrap() as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

#[tokio::test]
async fn same_seed_same_journal_with_the_new_faults() {
    let run = || async {
        let org = start_with(
            bundle(),
            Some(scenario(
                "purpose: p\nfaults:\n  - name: jitter\n    probability: 0.5\n    respond: { latency: { min: 10ms, max: 900ms } }\n  - name: flaky\n    probability: 0.3\n    respond: server_unavailable\n",
            )),
        )
        .await;
        for i in 0..20 {
            org.call(
                Method::PATCH,
                &format!("sobjects/Account/NW_Customer_Id__c/J-{i}"),
                Some(json!({"Name": "J"})),
            )
            .await;
        }
        org.call(Method::GET, "query?q=SELECT+Id+FROM+Account", None)
            .await;
        mock::journal::to_json_lines(&org.running.org.journal())
    };
    let a = run().await;
    let b = run().await;
    assert_eq!(a, b);
    assert!(a.contains("jitter: latency("), "{a}");
}

#[tokio::test]
async fn external_id_lookups_in_queries_ignore_case_and_keep_the_rest_of_the_filter() {
    let org = start().await;
    for (ext, name) in [("K-1", "Kestrel"), ("K-2", "Kite")] {
        org.call(
            Method::PATCH,
            &format!("sobjects/Account/NW_Customer_Id__c/{ext}"),
            Some(json!({"Name": name})),
        )
        .await;
    }
    let org = &org;
    let q = |soql: &str| {
        let path = format!("query?q={}", soql.replace(' ', "+"));
        async move { org.call(Method::GET, &path, None).await.json() }
    };
    let hit = q("SELECT Name FROM Account WHERE NW_Customer_Id__c = 'k-1'").await;
    assert_eq!(hit["totalSize"], 1, "{hit}");
    assert_eq!(hit["records"][0]["Name"], "Kestrel");
    let miss =
        q("SELECT Name FROM Account WHERE Name = 'Kite' AND NW_Customer_Id__c = 'K-1'").await;
    assert_eq!(miss["totalSize"], 0, "{miss}");
    let either =
        q("SELECT Name FROM Account WHERE NW_Customer_Id__c = 'K-1' OR Name = 'Kite'").await;
    assert_eq!(either["totalSize"], 2, "{either}");
}

#[tokio::test]
async fn timeouts_and_resets_leave_the_client_without_an_answer_and_the_org_unchanged() {
    let org = start_with(
        bundle(),
        Some(scenario(
            "purpose: p\nfaults:\n  - name: hang\n    match: { method: PATCH, object: Account }\n    calls: { times: 1 }\n    respond: { timeout: { after: 90s } }\n  - name: drop\n    match: { method: PATCH, object: Account }\n    calls: { first: 2, times: 1 }\n    respond: connection_reset\n  - name: later\n    match: { path: /limits, after: 10m }\n    respond: server_unavailable\n",
        )),
    )
    .await;
    let before = org.running.org.clock().now();
    for _ in 0..2 {
        let resp = org
            .http
            .patch(format!(
                "{}/sobjects/Account/NW_Customer_Id__c/T-1",
                org.api
            ))
            .bearer_auth(&org.token)
            .json(&json!({"Name": "Tamarack"}))
            .send()
            .await;
        let answered = match resp {
            Err(_) => false,
            Ok(r) => r.bytes().await.is_ok(),
        };
        assert!(!answered, "the client must not get an answer");
    }
    assert!(org.running.org.records("Account").is_empty());
    assert_eq!(
        org.running.org.clock().now().since(before),
        Duration::from_secs(90)
    );
    // The time window: /limits fails only from 10 minutes after the start.
    assert_eq!(org.call(Method::GET, "limits", None).await.status, 200);
    org.advance(Duration::from_secs(600));
    assert_eq!(org.call(Method::GET, "limits", None).await.status, 503);
    let journal = org.running.org.journal();
    assert_eq!(journal[1].fault.as_deref(), Some("hang: timeout(90s)"));
    assert_eq!(journal[2].fault.as_deref(), Some("drop: connection_reset"));
}

#[tokio::test]
async fn long_poll_wakes_on_a_new_event_and_sse_streams_events() {
    let org = start_on(bundle(), None, Clock::shifted()).await;
    let base = org.running.base_url();
    // A long poll from LATEST waits until the write below publishes.
    let poll = org
        .http
        .get(format!("{base}/__syncgate/events?replay=LATEST&wait=30"))
        .send();
    let write = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        org.call(
            Method::PATCH,
            "sobjects/Account/NW_Customer_Id__c/S-1",
            Some(json!({"Name": "Spruce"})),
        )
        .await
    };
    let started = std::time::Instant::now();
    let (poll, write) = tokio::join!(poll, write);
    assert_eq!(write.status, 201);
    let got: Value = poll.unwrap().json().await.unwrap();
    assert_eq!(got["events"].as_array().unwrap().len(), 1, "{got}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let mut sse = org
        .http
        .get(format!(
            "{base}/__syncgate/events?replay=EARLIEST&stream=sse"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let chunk = sse.chunk().await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&chunk).to_string();
    assert!(text.starts_with("id: 1\nevent: change\ndata: {"), "{text}");
    assert!(text.contains("\"changeType\":\"CREATE\""), "{text}");
}
