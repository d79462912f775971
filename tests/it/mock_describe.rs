//! Describe as clients that generate code or forms read it, field by field, and the
//! surface added for real integrations (identity, User, collections retrieve by POST,
//! updated/deleted, composite batch and tree, Bulk 2.0 query jobs) over real HTTP.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};
use syncgate::contract::{Bundle, Registry};
use syncgate::mock::{self, ClientCredentials, MockConfig, MockOrg, RunningMock};
use syncgate::sim::{Clock, Seed, Timestamp};

struct Org {
    _running: RunningMock,
    http: reqwest::Client,
    token: String,
    base: String,
}

async fn start(tenant: (&str, &str)) -> Org {
    let registry =
        Registry::open(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts")).unwrap();
    let t = registry
        .select(&[tenant.0.into()], &[tenant.1.into()])
        .unwrap();
    start_with(registry.load(&t[0]).unwrap()).await
}

async fn start_with(bundle: Bundle) -> Org {
    let creds = ClientCredentials::gate();
    let org = MockOrg::new(MockConfig {
        bundle,
        scenario: None,
        seed: Seed(3),
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
    Org {
        base: running.base_url(),
        _running: running,
        http,
        token: body["access_token"].as_str().unwrap().to_string(),
    }
}

impl Org {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, String, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, ct, v)
    }
}

fn field<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {name} in {d}"))
}

#[tokio::test]
async fn describe_carries_what_generated_forms_need_in_the_orgs_api_version() {
    // Bluepeak's org runs API 61.0: every URL the describe gives says so.
    let org = start(("bluepeak-logistics", "sandbox")).await;
    let (status, ct, global) = org
        .call(Method::GET, "/services/data/v61.0/sobjects", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/json;charset=UTF-8");
    for o in global["sobjects"].as_array().unwrap() {
        assert!(
            o["urls"]["describe"]
                .as_str()
                .unwrap()
                .starts_with("/services/data/v61.0/"),
            "{o}"
        );
        assert!(o["labelPlural"].is_string(), "{o}");
    }
    assert!(global["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["name"] == "User"));
    let (_, _, root) = org.call(Method::GET, "/services/data/v61.0/", None).await;
    assert!(
        root["identity"]
            .as_str()
            .unwrap()
            .ends_with("/id/00D8d0000000001EAA/0058d0000000001AAA"),
        "{root}"
    );

    let (status, _, d) = org
        .call(
            Method::GET,
            "/services/data/v61.0/sobjects/Account/describe",
            None,
        )
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["labelPlural"], "Accounts");
    let id = field(&d, "Id");
    assert_eq!(
        (
            id["type"].clone(),
            id["idLookup"].clone(),
            id["soapType"].clone()
        ),
        (json!("id"), json!(true), json!("tns:ID"))
    );
    assert_eq!(id["length"], 18);
    let ext = field(&d, "BP_Account_Key__c");
    assert_eq!(ext["label"], "BP Account Key");
    assert_eq!(ext["idLookup"], true);
    assert_eq!(ext["externalId"], true);
    assert_eq!(ext["filterable"], true);
    assert_eq!(ext["sortable"], true);
    let created = field(&d, "CreatedById");
    assert_eq!(created["label"], "Created By ID");
    assert_eq!(created["referenceTo"], json!(["User"]));
    for f in d["fields"].as_array().unwrap() {
        let ty = f["type"].as_str().unwrap();
        assert!(f["soapType"].is_string(), "{f}");
        assert_ne!(f["label"], Value::Null, "{f}");
        for key in ["precision", "scale", "digits", "length"] {
            assert!(f[key].is_number(), "{key} of {f}");
        }
        match ty {
            "boolean" => {
                assert_eq!(f["nillable"], false, "{f}");
                assert_eq!(f["soapType"], "xsd:boolean");
            }
            "picklist" => assert_eq!(f["length"], 255, "{f}"),
            "currency" => assert_eq!(
                (f["precision"].as_u64(), f["scale"].as_u64()),
                (Some(18), Some(2))
            ),
            "int" => assert_eq!(f["digits"], 9, "{f}"),
            "textarea" => assert_eq!(f["filterable"], false, "{f}"),
            _ => {}
        }
    }
    let children: Vec<String> = d["childRelationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}.{} as {}",
                r["childSObject"].as_str().unwrap(),
                r["field"].as_str().unwrap(),
                r["relationshipName"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        children.contains(&"Contact.AccountId as Contacts".to_string()),
        "{children:?}"
    );

    let (status, _, user) = org
        .call(
            Method::GET,
            "/services/data/v61.0/sobjects/User/describe",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(user["createable"], false);
    let (status, _, me) = org
        .call(
            Method::GET,
            "/services/data/v61.0/sobjects/User/0058d0000000001AAA",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["Username"], "integration@syncgate.mock");
    let (status, _, refused) = org
        .call(
            Method::PATCH,
            "/services/data/v61.0/sobjects/User/0058d0000000001AAA",
            Some(json!({"Name": "x"})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
}

#[tokio::test]
async fn updated_deleted_tree_batch_retrieve_and_bulk_query_answer_like_an_org() {
    let org = start(("northwind-outfitters", "sandbox")).await;
    let api = "/services/data/v62.0";
    let (status, _, tree) = org
        .call(Method::POST, &format!("{api}/composite/tree/Account"), Some(json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "a1"}, "Name": "Alder", "NW_Customer_Id__c": "T-1",
             "Contacts": {"records": [{"attributes": {"type": "Contact", "referenceId": "c1"}, "LastName": "Leaf", "NW_Contact_Id__c": "TC-1"}]}},
            {"attributes": {"type": "Account", "referenceId": "a2"}, "Name": "Birch", "NW_Customer_Id__c": "T-2"}
        ]})))
        .await;
    assert_eq!(status, 201, "{tree}");
    let ids: Vec<String> = tree["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tree["results"][1]["referenceId"], "c1");
    // A tree with one bad record saves nothing.
    let (status, _, bad) = org
        .call(Method::POST, &format!("{api}/composite/tree/Account"), Some(json!({"records": [
            {"attributes": {"type": "Account", "referenceId": "ok"}, "Name": "Cedar", "NW_Customer_Id__c": "T-3"},
            {"attributes": {"type": "Account", "referenceId": "bad"}, "NW_Customer_Id__c": "T-4"}
        ]})))
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["hasErrors"], true);
    assert_eq!(bad["results"][0]["referenceId"], "bad");
    assert_eq!(
        bad["results"][0]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    let (_, _, count) = org
        .call(
            Method::GET,
            &format!("{api}/query?q=SELECT+COUNT()+FROM+Account"),
            None,
        )
        .await;
    assert_eq!(count["totalSize"], 2, "{count}");

    let (status, _, got) = org
        .call(
            Method::POST,
            &format!("{api}/composite/sobjects/Account"),
            Some(json!({"ids": [ids[0], "001000000000000AAA", ids[2]], "fields": ["Name"]})),
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got[0]["Name"], "Alder");
    assert_eq!(got[1], Value::Null);
    assert_eq!(got[2]["Name"], "Birch");
    assert!(got[0].get("NW_Customer_Id__c").is_none(), "{got}");

    let (status, _, batch) = org
        .call(Method::POST, &format!("{api}/composite/batch"), Some(json!({"haltOnError": true, "batchRequests": [
            {"method": "PATCH", "url": format!("v62.0/sobjects/Account/{}", ids[0]), "richInput": {"Name": "Alder Two"}},
            {"method": "GET", "url": "v62.0/sobjects/Account/001000000000000AAA"},
            {"method": "GET", "url": format!("v62.0/sobjects/Account/{}", ids[0])}
        ]})))
        .await;
    assert_eq!(status, 200);
    let codes: Vec<u64> = batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["statusCode"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, vec![204, 404, 412], "{batch}");

    let (status, _, _) = org
        .call(
            Method::DELETE,
            &format!("{api}/sobjects/Account/{}", ids[2]),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, gone) = org
        .call(
            Method::GET,
            &format!("{api}/sobjects/Account/{}", ids[2]),
            None,
        )
        .await;
    assert_eq!(
        (status, gone[0]["errorCode"].clone()),
        (404, json!("ENTITY_IS_DELETED"))
    );
    let (status, _, missing) = org
        .call(
            Method::GET,
            &format!("{api}/sobjects/Account/001000000000000AAA"),
            None,
        )
        .await;
    assert_eq!(
        (status, missing[0]["errorCode"].clone()),
        (404, json!("NOT_FOUND"))
    );
    let window = "start=2026-01-05T07%3A00%3A00%2B00%3A00&end=2026-01-05T09%3A00%3A00Z";
    let (status, _, updated) = org
        .call(
            Method::GET,
            &format!("{api}/sobjects/Account/updated/?{window}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["ids"], json!([ids[0]]));
    let (_, _, deleted) = org
        .call(
            Method::GET,
            &format!("{api}/sobjects/Account/deleted/?{window}"),
            None,
        )
        .await;
    assert_eq!(deleted["deletedRecords"][0]["id"], json!(ids[2]));
    let (_, _, early) = org.call(Method::GET, &format!("{api}/sobjects/Account/updated/?start=2026-01-04T00%3A00%3A00Z&end=2026-01-05T07%3A00%3A00Z"), None).await;
    assert_eq!(early["ids"], json!([]));
    let (status, _, _) = org
        .call(
            Method::GET,
            &format!(
                "{api}/sobjects/Account/updated/?start=yesterday&end=2026-01-05T09%3A00%3A00Z"
            ),
            None,
        )
        .await;
    assert_eq!(status, 400);

    let (status, _, job) = org
        .call(Method::POST, &format!("{api}/jobs/query"), Some(json!({"operation": "query", "query": "SELECT Id, LastName, Account.Name FROM Contact"})))
        .await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap();
    let (_, _, info) = org
        .call(Method::GET, &format!("{api}/jobs/query/{id}"), None)
        .await;
    assert_eq!(info["state"], "JobComplete");
    let resp = org
        .http
        .get(format!("{}{api}/jobs/query/{id}/results", org.base))
        .bearer_auth(&org.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["sforce-locator"], "null");
    assert_eq!(resp.headers()["sforce-numberofrecords"], "1");
    let csv = resp.text().await.unwrap();
    assert_eq!(
        csv,
        format!(
            "\"Id\",\"LastName\",\"Account.Name\"\n\"{}\",\"Leaf\",\"Alder Two\"\n",
            ids[1]
        )
    );
}

/// Northwind's sandbox with `extra` appended to its tenant file, in a temp dir.
fn northwind_with(dir: &std::path::Path, extra: &str) -> Result<Bundle, String> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts/northwind-outfitters");
    std::fs::copy(src.join("base.toml"), dir.join("base.toml")).unwrap();
    let tenant = dir.join("sandbox");
    std::fs::create_dir_all(&tenant).unwrap();
    let text = std::fs::read_to_string(src.join("sandbox/bundle.toml")).unwrap();
    std::fs::write(tenant.join("bundle.toml"), format!("{text}\n{extra}")).unwrap();
    Bundle::load(&tenant).map_err(|e| e.to_string())
}

#[tokio::test]
async fn labels_come_from_the_bundle_else_from_the_api_name() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = northwind_with(
        dir.path(),
        "[objects.Contact]\nlabel = \"Person\"\n\n[objects.Contact.fields]\nTitle = { type = \"string\", max_length = 128, from = \"title\", label = \"Job Title\" }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let org = start_with(bundle).await;
    let (status, _, d) = org
        .call(
            Method::GET,
            "/services/data/v62.0/sobjects/Contact/describe",
            None,
        )
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(
        (d["label"].clone(), d["labelPlural"].clone()),
        (json!("Person"), json!("Persons"))
    );
    assert_eq!(field(&d, "Title")["label"], "Job Title");
    assert_eq!(field(&d, "Id")["label"], "Person ID");
    // Without a label: derived from the API name, as before.
    assert_eq!(field(&d, "LastName")["label"], "Last Name");
    assert_eq!(field(&d, "NW_Contact_Id__c")["label"], "NW Contact ID");
    let (_, _, global) = org
        .call(Method::GET, "/services/data/v62.0/sobjects", None)
        .await;
    let label_of = |name: &str| {
        global["sobjects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .map(|o| o["label"].clone())
    };
    assert_eq!(label_of("Contact"), Some(json!("Person")));
    assert_eq!(label_of("Account"), Some(json!("Account")));
    let (_, _, info) = org
        .call(Method::GET, "/services/data/v62.0/sobjects/Contact", None)
        .await;
    assert_eq!(info["objectDescribe"]["labelPlural"], "Persons");

    // A blank or over-long label does not load, and says where.
    let blank = northwind_with(dir.path(), "[objects.Contact]\nlabel = \" \"\n")
        .expect_err("a blank label");
    assert!(blank.contains("objects.Contact.label"), "{blank}");
    let long = northwind_with(
        dir.path(),
        &format!("[objects.Contact.fields]\nTitle = {{ type = \"string\", from = \"title\", label = \"{}\" }}\n", "x".repeat(41)),
    )
    .expect_err("a 41-character label");
    assert!(
        long.contains("objects.Contact.fields.Title.label"),
        "{long}"
    );
    assert!(long.contains("at most 40"), "{long}");
}
