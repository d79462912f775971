//! The Pact V4 files of the interactions the syncgate engine relies on: the generator in
//! `syncgate::contract::pacts` (what `syncgate contracts pacts` runs) covers what the
//! engine needs for every tenant in `contracts/`, the committed copies match it, and a
//! tenant written from scratch gets a pact the mock org honours.
//!
//! * `SYNCGATE_UPDATE_PACTS=1 cargo test --test it pacts::` (re)writes the files, as
//!   `syncgate contracts pacts --all` does;
//! * `cargo test --test it pacts::` regenerates them in memory and fails if a committed file
//!   differs (or is missing).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use syncgate::contract::pacts::{
    self, Freshness, GeneratedPact, BUDGET_STATE, CALL_OPTIONS, CONSUMER, RATE_LIMIT_STATE,
};
use syncgate::contract::{Bundle, DeletePolicy, Owner, Registry, TenantRef};

const UPDATE_ENV: &str = "SYNCGATE_UPDATE_PACTS";
const UPDATE_HINT: &str =
    "run `syncgate contracts pacts --all` (or `SYNCGATE_UPDATE_PACTS=1 cargo test --test it pacts::`) and commit the result";

/// One tenant's generated pact.
struct Generated {
    tenant: TenantRef,
    bundle: Bundle,
    pact: GeneratedPact,
}

fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts")
}

/// The pact of every tenant under `contracts/`, whatever their number.
fn generate_all() -> Vec<Generated> {
    let registry = Registry::open(&contracts_dir()).expect("contracts/ opens");
    let tenants = registry.tenants().expect("tenants list");
    assert!(!tenants.is_empty(), "no tenant under contracts/");
    tenants
        .into_iter()
        .map(|tenant| {
            let bundle = registry
                .load(&tenant)
                .unwrap_or_else(|e| panic!("{}: {e}", tenant.label()));
            let pact =
                pacts::generate(&bundle).unwrap_or_else(|e| panic!("{}: {e}", tenant.label()));
            Generated {
                tenant,
                bundle,
                pact,
            }
        })
        .collect()
}

fn upsert_description(object: &str, spec: &syncgate::contract::ObjectSpec) -> String {
    format!("an upsert of {object} records by {}", spec.external_id)
}

fn interactions(pact: &Value) -> &Vec<Value> {
    pact["interactions"].as_array().expect("interactions array")
}

fn is_successful_upsert(i: &Value, path: &str) -> bool {
    i["request"]["method"] == "PATCH"
        && i["request"]["path"] == path
        && i["response"]["status"] == 200
        && i.pointer("/response/body/content/0/success") == Some(&Value::Bool(true))
}

#[test]
fn generated_pacts_cover_what_the_engine_relies_on() {
    for g in generate_all() {
        let label = g.tenant.label();
        let pact = &g.pact.json;
        assert_eq!(
            pact.pointer("/metadata/pactSpecification/version"),
            Some(&json!("4.0")),
            "{label}"
        );
        assert!(
            pact.pointer("/metadata/pactRust").is_none(),
            "{label}: volatile metadata left in"
        );
        assert_eq!(pact["consumer"]["name"], CONSUMER, "{label}");
        assert_eq!(
            pact["provider"]["name"],
            g.pact.provider.as_str(),
            "{label}"
        );

        let all = interactions(pact);
        let descriptions: BTreeSet<&str> = all
            .iter()
            .map(|i| i["description"].as_str().expect("description"))
            .collect();
        assert_eq!(
            descriptions.len(),
            all.len(),
            "{label}: duplicate descriptions"
        );
        // Token, limits, a validation failure, rate limiting, budget spent, + per object an
        // upsert, a conflict-check query and a Bulk job creation, + a delete per
        // `hard_delete` object, + the Bulk job steps (upload, close, abort, state, 3 results).
        // (The validation failure needs a required field the source fills; every example
        // tenant's Account has Name.)
        let hard_deletes = g
            .bundle
            .objects
            .values()
            .filter(|o| o.delete == DeletePolicy::HardDelete)
            .count();
        assert_eq!(
            all.len(),
            3 * g.bundle.objects.len() + hard_deletes + 5 + 7,
            "{label}"
        );

        let api = format!("/services/data/v{}", g.bundle.api_version);
        for (object, spec) in &g.bundle.objects {
            let path = format!("{api}/composite/sobjects/{object}/{}", spec.external_id);
            let upserts: Vec<&Value> = all
                .iter()
                .filter(|i| is_successful_upsert(i, &path))
                .collect();
            assert_eq!(
                upserts.len(),
                1,
                "{label}: expected one upsert interaction for {object}"
            );
            let upsert = upserts[0];
            assert_eq!(
                upsert["description"],
                upsert_description(object, spec).as_str()
            );
            let headers = &upsert["request"]["headers"];
            assert_eq!(headers["Sforce-Call-Options"], json!([CALL_OPTIONS]));
            assert!(
                headers["Authorization"].is_array(),
                "{label}: no Authorization"
            );
            let body = &upsert["request"]["body"]["content"];
            assert_eq!(body["allOrNone"], false);
            let record = body["records"][0].as_object().expect("one record");
            assert_eq!(record["attributes"]["type"], object.as_str());
            assert!(record.contains_key(&spec.external_id), "{label}: {object}");
            for (name, field) in &spec.fields {
                let key = field.relationship.as_ref().unwrap_or(name);
                let expected = field.owner == Owner::Source;
                assert_eq!(
                    record.contains_key(key),
                    expected,
                    "{label}: {object}.{name} (as `{key}`) in the upsert record"
                );
                if let (true, Some(parent)) = (expected, &field.to) {
                    let parent_ext = &g.bundle.objects[parent].external_id;
                    assert!(
                        record[key].get(parent_ext).is_some(),
                        "{label}: {object}.{key} references {parent} by {parent_ext}"
                    );
                }
            }
            let rules = &upsert["response"]["matchingRules"]["body"];
            assert!(rules["$"].is_object(), "{label}: each_like on the results");
            assert!(rules["$[*].id"].is_object(), "{label}: ID regex");
        }

        let by_state = |state: &str| -> &Value {
            all.iter()
                .find(|i| i["providerStates"][0]["name"] == state)
                .unwrap_or_else(|| panic!("{label}: no interaction for `{state}`"))
        };
        let limited = by_state(RATE_LIMIT_STATE);
        assert_eq!(limited["response"]["status"], 429);
        assert!(limited["response"]["headers"]["Retry-After"].is_array());
        let spent = by_state(BUDGET_STATE);
        assert_eq!(spent["response"]["status"], 403);
        assert_eq!(
            spent["response"]["body"]["content"],
            json!([{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}])
        );
        let invalid = all
            .iter()
            .find(|i| {
                i.pointer("/response/body/content/0/errors/0/statusCode")
                    == Some(&json!("REQUIRED_FIELD_MISSING"))
            })
            .expect("validation-failure interaction");
        assert!(invalid
            .pointer("/request/body/content/records/0/Name")
            .is_none());
        let limits = all
            .iter()
            .find(|i| i["request"]["path"] == format!("{api}/limits").as_str())
            .expect("limits interaction");
        assert_eq!(
            limits["response"]["body"]["content"]["DailyApiRequests"]["Max"],
            g.bundle.limits.daily_api_requests
        );
    }
}

#[test]
fn committed_pacts_match_the_generator_and_load_with_their_bundles() {
    let update = std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for g in generate_all() {
        let path = g.pact.path_in(&g.tenant.dir);
        if update {
            pacts::write(&g.tenant.dir, &g.pact).expect("write pact");
            continue;
        }
        match pacts::freshness(&path, &g.pact) {
            Freshness::Current => {}
            Freshness::Missing => stale.push(format!("{}: missing", path.display())),
            Freshness::Stale(why) => stale.push(format!("{}: out of date; {why}", path.display())),
        }
        for extra in pacts::leftovers(&g.tenant.dir, &g.pact) {
            stale.push(format!("{}: left over", extra.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "committed pact files differ from the generator:\n{}\n\n{UPDATE_HINT}",
        stale.join("\n")
    );

    // The bundle loader accepts each file and carries it with the bundle.
    for g in generate_all() {
        let bundle = Bundle::load(&g.tenant.dir)
            .unwrap_or_else(|e| panic!("{}: bundle with its pact: {e}", g.tenant.label()));
        let loaded = bundle
            .pacts
            .get(&g.pact.file_name())
            .unwrap_or_else(|| panic!("{}: pact not loaded", g.tenant.label()));
        assert_eq!(loaded, &g.pact.json, "{}", g.tenant.label());
    }
}

#[test]
fn the_bulk_job_the_pacts_name_is_the_first_the_mock_org_numbers() {
    assert_eq!(
        pacts::FIRST_BULK_JOB,
        syncgate::mock::ids::numbered("750", 1)
    );
}

/// A tenant written from scratch: a custom object with a lookup to another custom object,
/// restricted picklists, an external ID, no Account and no `Name` field.
pub(crate) const SCRATCH_BASE: &str = r#"
format = 1
partner = "scratch-partner"
tenant = "trial"
version = "0.1.0"
kind = "salesforce"
api_version = "62.0"

[limits]
daily_api_requests = 5000
concurrent_long_running = 10

[objects.Depot__c]
external_id = "Depot_Key__c"
source = "depots"
delete = { policy = "hard_delete" }

[objects.Depot__c.fields]
Depot_Key__c = { type = "string", max_length = 20, from = "depot_no" }
Region__c = { type = "picklist", required = true, values = ["North", "South"], from = "region" }

[objects.Shipment__c]
external_id = "Shipment_Key__c"
source = "shipments"
delete = { policy = "inactive", field = "State__c", value = "Void" }

[objects.Shipment__c.fields]
Shipment_Key__c = { type = "string", max_length = 30, from = "shipment_no" }
Reference__c = { type = "string", required = true, max_length = 60, from = "reference" }
State__c = { type = "picklist", values = ["Open", "Shipped", "Void"], from = "state" }
Weight__c = { type = "double", from = "weight_kg" }
Shipped_On__c = { type = "date", from = "shipped_on" }
Depot__c = { type = "reference", to = "Depot__c", relationship = "Depot__r", from = "depot_no" }
"#;

fn syncgate(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_syncgate"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("syncgate runs")
}

#[tokio::test]
async fn a_tenant_written_from_scratch_gets_a_pact_from_the_binary_that_the_mock_org_honours() {
    let repo = tempfile::tempdir().expect("temp dir");
    let tenant_dir = repo.path().join("contracts/scratch-partner/trial");
    std::fs::create_dir_all(&tenant_dir).unwrap();
    std::fs::write(tenant_dir.join("bundle.toml"), SCRATCH_BASE).unwrap();

    // Nothing to check yet: the file is missing.
    let out = syncgate(
        &["contracts", "pacts", "scratch-partner/trial", "--check"],
        repo.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("missing")
            && stdout.contains("syncgate-engine-scratch-partner-salesforce-trial.json"),
        "{stdout}"
    );

    let out = syncgate(
        &["contracts", "pacts", "scratch-partner/trial"],
        repo.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = tenant_dir.join("pacts/syncgate-engine-scratch-partner-salesforce-trial.json");
    assert!(path.is_file(), "{stdout}");

    // The binary wrote what the library generates, and it is current.
    let bundle = Bundle::load(&tenant_dir).expect("the bundle loads with its pact");
    let generated = pacts::generate(&bundle).expect("generates");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), generated.text());
    let out = syncgate(
        &["contracts", "pacts", "scratch-partner/trial", "--check"],
        repo.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // What a custom object needs: the upsert sends the lookup by the parent's external ID,
    // the failure leaves out the required field, the throttling is stated on the parent.
    let all = generated.json["interactions"].as_array().unwrap();
    let descriptions: BTreeSet<&str> = all
        .iter()
        .filter_map(|i| i["description"].as_str())
        .collect();
    for expected in [
        "an upsert of Depot__c records by Depot_Key__c",
        "an upsert of Shipment__c records by Shipment_Key__c",
        "a Depot__c upsert with a record missing the required Region__c",
        "a Depot__c upsert while the org is rate limiting",
        "a delete of a Depot__c record by Depot_Key__c",
        "a Bulk upsert job for Shipment__c by Shipment_Key__c is created",
    ] {
        assert!(
            descriptions.contains(expected),
            "no `{expected}` in {descriptions:#?}"
        );
    }
    let shipment = all
        .iter()
        .find(|i| i["description"] == "an upsert of Shipment__c records by Shipment_Key__c")
        .unwrap();
    let record = &shipment["request"]["body"]["content"]["records"][0];
    assert_eq!(
        record["Depot__r"],
        json!({"Depot_Key__c": "DEPOTS-00001"}),
        "{record}"
    );
    assert!(record.get("Reference__c").is_some(), "{record}");

    // The mock org of this bundle honours every interaction.
    let check = syncgate::verify::pacts::verify_against_mock(&bundle, syncgate::sim::Seed(7)).await;
    let failed: Vec<_> = check.interactions.iter().filter(|i| !i.passed).collect();
    assert!(check.error.is_none(), "{:?}\n{}", check.error, check.output);
    assert!(failed.is_empty(), "{failed:#?}\n{}", check.output);
    assert_eq!(check.interactions.len(), all.len());

    // A hand edit makes the committed file stale: --check names it and exits 1.
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("Region__c", "Area__c");
    std::fs::write(&path, edited).unwrap();
    let out = syncgate(
        &["contracts", "pacts", "scratch-partner/trial", "--check"],
        repo.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("stale   contracts/scratch-partner/trial/pacts/syncgate-engine-scratch-partner-salesforce-trial.json"),
        "{stdout}"
    );
    assert!(stdout.contains("first difference at line"), "{stdout}");

    // A file that is not even JSON (a bad merge) is stale, and regenerating mends it.
    std::fs::write(&path, "{ <<<<<<< ours").unwrap();
    let out = syncgate(
        &["contracts", "pacts", "scratch-partner/trial", "--check"],
        repo.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("invalid JSON"), "{stdout}");
    let out = syncgate(
        &["contracts", "pacts", "scratch-partner/trial"],
        repo.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), generated.text());

    // --out writes elsewhere and leaves the tenant's file alone.
    let out_dir = repo.path().join("generated");
    let out = syncgate(
        &[
            "contracts",
            "pacts",
            "--all",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        repo.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(
            out_dir.join("syncgate-engine-scratch-partner-salesforce-trial.json")
        )
        .unwrap(),
        generated.text()
    );

    // A name that is no tenant is bad input.
    let out = syncgate(&["contracts", "pacts", "scratch-partner/nope"], repo.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("scratch-partner/nope"));
}
