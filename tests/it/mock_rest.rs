//! The mock org over real HTTP: auth, upsert by external ID, collections, validation
//! errors with Salesforce's bodies, limits, and the fault layer.

use std::path::PathBuf;

use serde_json::{json, Value};
use syncgate::contract::{Bundle, Registry};
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
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.yaml");
    std::fs::write(&p, yaml).unwrap();
    Scenario::load(&p).unwrap()
}

struct Org {
    running: RunningMock,
    http: reqwest::Client,
    token: String,
    api: String,
}

async fn start(scenario: Option<Scenario>) -> Org {
    let clock = Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap());
    let creds = ClientCredentials::gate();
    let org = MockOrg::new(MockConfig {
        bundle: bundle(),
        scenario,
        seed: Seed(3),
        clock,
        clients: vec![creds.clone()],
    });
    let running = mock::spawn(org, 0).await.unwrap();
    let http = syncgate::http::client();
    let resp = http
        .post(format!("{}/services/oauth2/token", running.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &creds.client_id),
            ("client_secret", &creds.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], running.base_url());
    assert!(body["issued_at"].as_str().unwrap().parse::<i64>().is_ok());
    let token = body["access_token"].as_str().unwrap().to_string();
    let api = format!("{}/services/data/v62.0", running.base_url());
    Org {
        running,
        http,
        token,
        api,
    }
}

impl Org {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/{path}", self.api))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// Like `send`, with a body given as raw text (JSON too deep to build as a `Value`).
    async fn send_raw(&self, method: reqwest::Method, path: &str, body: String) -> (u16, Value) {
        let resp = self
            .http
            .request(method, format!("{}/{path}", self.api))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The org still answers: a plain query succeeds.
    async fn still_answers(&self) {
        let (status, _, body) = self
            .send(reqwest::Method::GET, "query?q=SELECT+Id+FROM+Account", None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["totalSize"].is_number(), "{body}");
    }
}

/// A condition nested `depth` levels deep in parentheses (`NOT` every other level).
fn deep_condition(depth: usize) -> String {
    let mut open = String::new();
    for i in 0..depth {
        open.push_str(if i % 2 == 0 { "(" } else { "NOT (" });
    }
    format!("{open}Name = 'x'{}", ")".repeat(depth))
}

#[tokio::test]
async fn a_soql_query_nested_3000_levels_deep_is_malformed_and_the_org_keeps_answering() {
    let org = start(None).await;
    let q = format!("SELECT Id FROM Account WHERE {}", deep_condition(3000));
    let encoded: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, _, body) = org
        .send(reqwest::Method::GET, &format!("query?q={encoded}"), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY", "{body}");
    assert!(
        body[0]["message"].as_str().unwrap().contains("levels deep"),
        "{body}"
    );
    org.still_answers().await;
    // A long but flat condition past the operator cap is refused the same way.
    let flat = vec!["Name = 'x'"; 1500].join(" OR ");
    let (status, body) = org
        .send_raw(
            reqwest::Method::POST,
            "composite",
            json!({"compositeRequest": [{
                "method": "GET",
                "url": format!("/services/data/v62.0/query?q=SELECT+Id+FROM+Account+WHERE+{}", flat.replace(' ', "+").replace('=', "%3D").replace('\'', "%27")),
                "referenceId": "q"
            }]})
            .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sub = &body["compositeResponse"][0];
    assert_eq!(sub["httpStatusCode"], 400, "{body}");
    assert_eq!(sub["body"][0]["errorCode"], "MALFORMED_QUERY", "{body}");
    org.still_answers().await;
}

#[tokio::test]
async fn composite_subrequests_nested_3000_levels_deep_get_a_400_and_the_org_keeps_answering() {
    let org = start(None).await;
    // Deep JSON inside a subrequest body.
    let deep = format!("{}\"x\"{}", "{\"a\":".repeat(3000), "}".repeat(3000));
    let body = format!(
        r#"{{"compositeRequest":[{{"method":"POST","url":"/services/data/v62.0/sobjects/Account","referenceId":"a","body":{deep}}}]}}"#
    );
    let (status, answer) = org.send_raw(reqwest::Method::POST, "composite", body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer[0]["errorCode"], "JSON_PARSER_ERROR", "{answer}");
    org.still_answers().await;
    // A deeply nested SOQL condition in a subrequest's URL.
    let q: String = format!("SELECT Id FROM Account WHERE {}", deep_condition(3000))
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let body = json!({"compositeRequest": [
        {"method": "GET", "url": format!("/services/data/v62.0/query?q={q}"), "referenceId": "deep"}
    ]});
    let (status, answer) = org
        .send_raw(reqwest::Method::POST, "composite", body.to_string())
        .await;
    assert_eq!(status, 200, "{answer}");
    let sub = &answer["compositeResponse"][0];
    assert_eq!(sub["httpStatusCode"], 400, "{answer}");
    assert_eq!(sub["body"][0]["errorCode"], "MALFORMED_QUERY", "{answer}");
    org.still_answers().await;
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let org = start(None).await;
    let resp = org
        .http
        .post(format!("{}/services/oauth2/token", org.running.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "syncgate-gate"),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "invalid client credentials"})
    );
}

#[tokio::test]
async fn calls_without_a_session_are_refused() {
    let org = start(None).await;
    let resp = org
        .http
        .get(format!("{}/limits", org.api))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
    assert_eq!(body[0]["message"], "Session expired or invalid");
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    let org = start(None).await;
    let path = "sobjects/Account/NW_Customer_Id__c/CUST-1";
    let (status, headers, body) = org
        .send(
            reqwest::Method::PATCH,
            path,
            Some(json!({"Name": "Alder Outfitters"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["created"], true);
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("001"));
    assert_eq!(headers["sforce-limit-info"], "api-usage=1/100000");

    let (status, _, body) = org
        .send(
            reqwest::Method::PATCH,
            path,
            Some(json!({"Name": "Alder Outfitters Ltd"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );

    let (status, _, rec) = org.send(reqwest::Method::GET, path, None).await;
    assert_eq!(status, 200);
    assert_eq!(rec["Name"], "Alder Outfitters Ltd");
    assert_eq!(rec["attributes"]["type"], "Account");
    assert_eq!(rec["CreatedDate"], "2026-01-05T08:00:00.000+0000");
    let (status, _, by_id) = org
        .send(
            reqwest::Method::GET,
            &format!("sobjects/Account/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(by_id["NW_Customer_Id__c"], "CUST-1");
}

#[tokio::test]
async fn single_record_errors_use_error_code() {
    let org = start(None).await;
    let (status, _, body) = org
        .send(
            reqwest::Method::PATCH,
            "sobjects/Account/NW_Customer_Id__c/CUST-2",
            Some(json!({"Industry": "Retail"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!([{"message": "Required fields are missing: [Name]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}])
    );
    let (status, _, body) = org
        .send(
            reqwest::Method::PATCH,
            "sobjects/Account/Wrong_Field__c/CUST-2",
            Some(json!({"Name": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body[0]["errorCode"], "NOT_FOUND");
    let (status, _, _) = org
        .send(
            reqwest::Method::GET,
            "sobjects/Account/NW_Customer_Id__c/NOPE",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn collections_report_each_record_in_order() {
    let org = start(None).await;
    let records = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account"}, "NW_Customer_Id__c": "A-1", "Name": "Cedar Mercantile", "Loyalty_Tier__c": "Gold"},
        {"attributes": {"type": "Account"}, "NW_Customer_Id__c": "A-2", "Name": "x".repeat(256)},
        {"attributes": {"type": "Account"}, "NW_Customer_Id__c": "A-3", "Name": "Quarry Freight", "Industry": "Aerospace"},
        {"attributes": {"type": "Account"}, "NW_Customer_Id__c": "A-4", "Name": "Birch Goods", "NumberOfEmployees": "many"}
    ]});
    let (status, _, body) = org
        .send(
            reqwest::Method::PATCH,
            "composite/sobjects/Account/NW_Customer_Id__c",
            Some(records),
        )
        .await;
    assert_eq!(status, 200);
    let codes: Vec<Value> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.pointer("/errors/0/statusCode")
                .cloned()
                .unwrap_or(Value::Null)
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            Value::Null,
            json!("STRING_TOO_LONG"),
            json!("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
            json!("JSON_PARSER_ERROR")
        ]
    );
    assert_eq!(body[0]["success"], true);
    assert_eq!(org.running.org.records("Account").len(), 1);

    // A child links to its parent by the parent's external ID.
    let contacts = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "NW_Contact_Id__c": "C-1", "LastName": "Okafor", "Account": {"NW_Customer_Id__c": "A-1"}},
        {"attributes": {"type": "Contact"}, "NW_Contact_Id__c": "C-2", "LastName": "Holm", "Account": {"NW_Customer_Id__c": "A-2"}}
    ]});
    let (_, _, body) = org
        .send(
            reqwest::Method::PATCH,
            "composite/sobjects/Contact/NW_Contact_Id__c",
            Some(contacts),
        )
        .await;
    assert_eq!(body[0]["success"], true);
    assert_eq!(body[1]["errors"][0]["statusCode"], "INVALID_FIELD");
    let contact = &org.running.org.records("Contact")[0];
    assert_eq!(
        contact.fields["AccountId"],
        org.running.org.records("Account")[0].id
    );
}

#[tokio::test]
async fn all_or_none_rolls_back_every_record() {
    let org = start(None).await;
    let records = json!({"allOrNone": true, "records": [
        {"NW_Customer_Id__c": "A-1", "Name": "Cedar Mercantile"},
        {"NW_Customer_Id__c": "A-2"}
    ]});
    let (_, _, body) = org
        .send(
            reqwest::Method::PATCH,
            "composite/sobjects/Account/NW_Customer_Id__c",
            Some(records),
        )
        .await;
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(body[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert!(org.running.org.records("Account").is_empty());
}

#[tokio::test]
async fn more_than_200_records_is_refused() {
    let org = start(None).await;
    let records: Vec<Value> = (0..201)
        .map(|i| json!({"NW_Customer_Id__c": format!("A-{i}"), "Name": "n"}))
        .collect();
    let (status, _, body) = org
        .send(
            reqwest::Method::PATCH,
            "composite/sobjects/Account/NW_Customer_Id__c",
            Some(json!({"records": records})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "EXCEEDED_ID_LIMIT");
}

#[tokio::test]
async fn rate_limit_fault_carries_retry_after_and_a_json_body() {
    let org = start(Some(scenario(
        "purpose: p\nfaults:\n  - name: storm\n    match: { path: /limits }\n    calls: { first: 2, times: 1 }\n    respond: { rate_limited: { retry_after: 90s } }\n",
    )))
    .await;
    let (status, _, body) = org.send(reqwest::Method::GET, "limits", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["DailyApiRequests"],
        json!({"Max": 100000, "Remaining": 99999})
    );
    let (status, headers, body) = org.send(reqwest::Method::GET, "limits/", None).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "90");
    assert!(body[0]["errorCode"].is_string());
    let journal = org.running.org.journal();
    assert_eq!(
        journal[2].fault.as_deref(),
        Some("storm: rate_limited(retry_after=90s)")
    );
    assert_eq!(
        journal[2].not_before,
        Some(Timestamp::parse("2026-01-05T08:01:30Z").unwrap())
    );
}

#[tokio::test]
async fn daily_budget_is_enforced_and_resets_with_the_window() {
    let org = start(Some(scenario(
        "purpose: p\nlimits: { daily_api_requests: 2 }\n",
    )))
    .await;
    for _ in 0..2 {
        assert_eq!(org.send(reqwest::Method::GET, "limits", None).await.0, 200);
    }
    let (status, headers, body) = org.send(reqwest::Method::GET, "limits", None).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED", "fields": []}])
    );
    assert_eq!(headers["sforce-limit-info"], "api-usage=2/2");
    org.running
        .org
        .clock()
        .advance(std::time::Duration::from_secs(16 * 3600));
    assert_eq!(org.send(reqwest::Method::GET, "limits", None).await.0, 200);
    assert_eq!(org.running.org.api_usage(), (1, 2));
}

#[tokio::test]
async fn lost_response_still_commits_the_write() {
    let org = start(Some(scenario(
        "purpose: p\nfaults:\n  - name: lost\n    match: { method: PATCH }\n    respond: { response_lost: { mode: connection_reset } }\n",
    )))
    .await;
    let resp = org
        .http
        .patch(format!(
            "{}/sobjects/Account/NW_Customer_Id__c/A-9",
            org.api
        ))
        .bearer_auth(&org.token)
        .json(&json!({"Name": "Glacier Provisions"}))
        .send()
        .await;
    let lost = match resp {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(lost, "the client should not get an answer");
    let records = org.running.org.records("Account");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].fields["Name"], "Glacier Provisions");
}

#[tokio::test]
async fn journal_never_holds_the_token() {
    let org = start(None).await;
    org.send(reqwest::Method::GET, "limits", None).await;
    let text = syncgate::mock::journal::to_json_lines(&org.running.org.journal());
    assert!(!text.contains(&org.token), "{text}");
    assert!(!text.contains("Bearer"));
}

#[tokio::test]
async fn retry_after_is_rounded_up_to_what_the_header_can_say() {
    let org = start(Some(scenario(
        "purpose: p\nfaults:\n  - name: a\n    match: { path: /limits }\n    calls: { first: 1, times: 1 }\n    respond: { rate_limited: { retry_after: 1500ms } }\n  - name: b\n    match: { path: /limits }\n    calls: { first: 2, times: 1 }\n    respond: { rate_limited: { retry_after: 1500ms, http_date: true } }\n",
    )))
    .await;
    let (status, headers, _) = org.send(reqwest::Method::GET, "limits", None).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "2");
    let (_, headers, _) = org.send(reqwest::Method::GET, "limits", None).await;
    assert_eq!(headers["retry-after"], "Mon, 05 Jan 2026 08:00:02 GMT");
    let journal = org.running.org.journal();
    let at = Timestamp::parse("2026-01-05T08:00:02Z").unwrap();
    assert_eq!(
        journal[1].not_before,
        Some(at),
        "the time the header announced, not 1.5 s"
    );
    assert_eq!(journal[2].not_before, Some(at));
}

#[tokio::test]
async fn a_body_over_the_limit_gets_a_salesforce_shaped_413() {
    let org = start(None).await;
    let big = vec![b' '; 151 * 1024 * 1024];
    let resp = org
        .http
        .post(format!("{}/sobjects/Account", org.api))
        .bearer_auth(&org.token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "REQUEST_ENTITY_TOO_LARGE", "{body}");
    assert!(
        body[0]["message"].as_str().unwrap().contains("150 MB"),
        "{body}"
    );
    org.still_answers().await;
}
