//! Values of the wrong JSON type over real HTTP, as Salesforce's JSON reader takes them: a
//! number sent as text for a number field and a number sent for a text field are stored
//! converted (and read back converted, by GET and SOQL); text no reader of the type takes is
//! `400 JSON_PARSER_ERROR` for a single-record write and a per-record `JSON_PARSER_ERROR` in
//! sObject Collections and composite subrequests.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};
use syncgate::contract::Registry;
use syncgate::mock::{self, ClientCredentials, MockConfig, MockOrg, RunningMock};
use syncgate::sim::{Clock, Seed, Timestamp};

struct Org {
    running: RunningMock,
    http: reqwest::Client,
    token: String,
    api: String,
}

async fn start() -> Org {
    let registry =
        Registry::open(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts")).unwrap();
    let tenant = registry
        .select(&["northwind-outfitters".into()], &["production".into()])
        .unwrap();
    let creds = ClientCredentials::gate();
    let org = MockOrg::new(MockConfig {
        bundle: registry.load(&tenant[0]).unwrap(),
        scenario: None,
        seed: Seed(11),
        clock: Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap()),
        clients: vec![creds.clone()],
    });
    let running = mock::spawn(org, 0).await.unwrap();
    let http = syncgate::http::client();
    let token: Value = http
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
    Org {
        api: format!("{}/services/data/v62.0", running.base_url()),
        token: token["access_token"].as_str().unwrap().to_string(),
        running,
        http,
    }
}

impl Org {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/{path}", self.api))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The record as the org answers a GET of it.
    async fn get(&self, id: &str) -> Value {
        let (status, body) = self
            .send(Method::GET, &format!("sobjects/Account/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

const MANY: &str =
    "Cannot deserialize instance of int from VALUE_STRING value many or request may be missing a required field";

#[tokio::test]
async fn numbers_sent_as_text_and_text_sent_as_numbers_are_stored_converted() {
    let org = start().await;
    let (status, created) = org
        .send(
            Method::POST,
            "sobjects/Account",
            Some(json!({
                "NW_Customer_Id__c": "V-1", "Name": 1234, "NumberOfEmployees": "42",
                "AnnualRevenue": "1500.25", "Phone": 5035550100_i64, "Archived__c": "true"
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let rec = org.get(&id).await;
    assert_eq!(rec["NumberOfEmployees"], json!(42), "{rec}");
    assert!(
        rec["NumberOfEmployees"].is_u64(),
        "an int field holds a JSON number: {rec}"
    );
    assert_eq!(rec["AnnualRevenue"], json!(1500.25), "{rec}");
    assert_eq!(rec["Name"], json!("1234"), "{rec}");
    assert_eq!(rec["Phone"], json!("5035550100"), "{rec}");
    assert_eq!(rec["Archived__c"], json!(true), "{rec}");

    // An update converts the same way, and SOQL reads the converted values back.
    let (status, body) = org
        .send(
            Method::PATCH,
            &format!("sobjects/Account/{id}"),
            Some(json!({"NumberOfEmployees": "-7", "BillingCity": 42})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, found) = org
        .send(
            Method::GET,
            "query?q=SELECT+NumberOfEmployees,+BillingCity+FROM+Account+WHERE+NumberOfEmployees+<+0",
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["totalSize"], 1, "{found}");
    assert_eq!(found["records"][0]["NumberOfEmployees"], json!(-7));
    assert_eq!(found["records"][0]["BillingCity"], json!("42"));

    // Upsert by external ID converts too.
    let (status, body) = org
        .send(
            Method::PATCH,
            "sobjects/Account/NW_Customer_Id__c/V-1",
            Some(json!({"NumberOfEmployees": "8"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(org.get(&id).await["NumberOfEmployees"], json!(8));
}

#[tokio::test]
async fn unreadable_values_are_json_parser_errors_for_the_whole_single_record_write() {
    let org = start().await;
    let (status, body) = org
        .send(
            Method::POST,
            "sobjects/Account",
            Some(json!({"NW_Customer_Id__c": "V-2", "Name": "Birch", "NumberOfEmployees": "many"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body[0]["errorCode"], "JSON_PARSER_ERROR", "{body}");
    assert_eq!(body[0]["message"], MANY, "{body}");
    for (field, bad) in [
        ("NumberOfEmployees", json!(1.5)),
        ("AnnualRevenue", json!("n/a")),
        ("Customer_Since__c", json!("abc")),
        ("Archived__c", json!("yes")),
    ] {
        let (status, body) = org
            .send(
                Method::PATCH,
                "sobjects/Account/NW_Customer_Id__c/V-3",
                Some(json!({"Name": "Cedar", field: bad})),
            )
            .await;
        assert_eq!(status, 400, "{field}: {body}");
        assert_eq!(body[0]["errorCode"], "JSON_PARSER_ERROR", "{field}: {body}");
    }
    assert!(
        org.running.org.records("Account").is_empty(),
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn collections_and_composite_report_unreadable_values_per_record() {
    let org = start().await;
    let records = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account"}, "NW_Customer_Id__c": "C-1", "Name": "Alder", "NumberOfEmployees": "12"},
        {"attributes": {"type": "Account"}, "NW_Customer_Id__c": "C-2", "Name": "Birch", "NumberOfEmployees": "many"},
        {"attributes": {"type": "Account"}, "NW_Customer_Id__c": "C-3", "Name": 7}
    ]});
    let (status, body) = org
        .send(
            Method::PATCH,
            "composite/sobjects/Account/NW_Customer_Id__c",
            Some(records),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["success"], true, "{body}");
    assert_eq!(body[1]["success"], false, "{body}");
    assert_eq!(
        body[1]["errors"][0]["statusCode"], "JSON_PARSER_ERROR",
        "{body}"
    );
    assert_eq!(body[1]["errors"][0]["message"], MANY, "{body}");
    assert_eq!(body[2]["success"], true, "{body}");
    let stored = org.running.org.records("Account");
    assert_eq!(stored.len(), 2);
    let alder = stored.iter().find(|r| r.fields["Name"] == "Alder").unwrap();
    assert_eq!(alder.fields["NumberOfEmployees"], json!(12));
    assert!(stored.iter().any(|r| r.fields["Name"] == json!("7")));

    // allOrNone: the unreadable record fails, the others roll back.
    let all = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Account"}, "Name": "Dogwood", "NumberOfEmployees": "3"},
        {"attributes": {"type": "Account"}, "Name": "Elm", "AnnualRevenue": "lots"}
    ]});
    let (status, body) = org
        .send(Method::POST, "composite/sobjects", Some(all))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body[0]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "{body}"
    );
    assert_eq!(
        body[1]["errors"][0]["statusCode"], "JSON_PARSER_ERROR",
        "{body}"
    );
    assert_eq!(org.running.org.records("Account").len(), 2);

    // A composite subrequest carries the single-record answer.
    let composite = json!({"compositeRequest": [{
        "method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "bad",
        "body": {"Name": "Fir", "NumberOfEmployees": "many"}
    }]});
    let (status, body) = org.send(Method::POST, "composite", Some(composite)).await;
    assert_eq!(status, 200, "{body}");
    let sub = &body["compositeResponse"][0];
    assert_eq!(sub["httpStatusCode"], 400, "{body}");
    assert_eq!(sub["body"][0]["errorCode"], "JSON_PARSER_ERROR", "{body}");
}
