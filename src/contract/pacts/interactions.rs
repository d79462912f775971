//! The interactions of a generated pact, built with the `pact_consumer` DSL: sign-in, one
//! upsert per object, a per-record failure, throttling, the spent budget, limits, the
//! conflict-check query per object, deletes by external ID and the Bulk API 2.0 job steps.

use std::collections::{BTreeSet, HashMap};

use pact_consumer::prelude::*;
use serde_json::{json, Value};

use super::{PactGenError, CONSUMER};
use crate::contract::{Bundle, DeletePolicy, FieldSpec, FieldType, ObjectSpec, Owner};

/// `Sforce-Call-Options` the engine sends (its default client name).
pub const CALL_OPTIONS: &str = "client=syncgate";
const BEARER_RE: &str = r"^Bearer \S+$";
const EXAMPLE_BEARER: &str = "Bearer 00D8d0000000001!AQ4AQExampleSessionToken";
/// An 18-character Salesforce record ID.
const ID_RE: &str = "^[a-zA-Z0-9]{18}$";
/// Salesforce sends `application/json;charset=UTF-8`; the standard verifier matches a
/// header regex against the whole value, so the charset parameter is spelled out.
const JSON_RESPONSE_RE: &str = r"^application/json(;\s*charset=[\w-]+)?$";
const CSV_RESPONSE_RE: &str = r"^text/csv(;\s*charset=[\w-]+)?$";
const JSON_RESPONSE: &str = "application/json;charset=UTF-8";
const FORM: &str = "application/x-www-form-urlencoded";
/// The first Bulk job the mock org numbers after a reset (each provider state starts from
/// one), so the example paths of the Bulk interactions name a job that exists.
pub const FIRST_BULK_JOB: &str = "7508d0000000001AAA";

pub const RATE_LIMIT_STATE: &str = "the org is rate limiting";
pub const BUDGET_STATE: &str = "the daily API budget is spent";

/// Builds the pact for one bundle with `pact_consumer` and returns its V4 JSON.
pub(super) fn build(bundle: &Bundle, provider: &str) -> Result<Value, PactGenError> {
    let api = format!("/services/data/v{}", bundle.api_version);
    let mut pact = PactBuilder::new_v4(CONSUMER, provider);

    // Sign-in: OAuth 2.0 client credentials.
    pact.interaction("a client-credentials token request", "", |mut i| {
        i.given("a connected app with the client-credentials flow enabled");
        i.request
            .method("POST")
            .path("/services/oauth2/token")
            .header("Content-Type", FORM)
            .body2(
                "grant_type=client_credentials&client_id=syncgate-engine&client_secret=example-secret",
                FORM,
            );
        // The client ID and secret are deployment settings: any non-empty value.
        add_body_matchers(
            &mut i.request,
            json!({
                "$.client_id": {"matchers": [{"match": "regex", "regex": r"^\S+$"}]},
                "$.client_secret": {"matchers": [{"match": "regex", "regex": r"^\S+$"}]},
            }),
        );
        i.response
            .status(200)
            .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
            .json_body(json_pattern!({
                "access_token": like!("00D8d0000000001!AQ4AQExampleSessionToken"),
                "instance_url": like!("https://example.my.salesforce.com"),
                "token_type": "Bearer",
                "issued_at": like!("1767600000000"),
            }));
        i
    });

    // One sObject Collections upsert per synced object, parents first.
    for (name, spec) in bundle.objects_parent_first() {
        let description = upsert_description(name, spec);
        let parent_states: BTreeSet<String> = spec
            .fields
            .values()
            .filter(|f| f.owner == Owner::Source && f.from.is_some())
            .filter_map(|f| f.to.as_deref())
            .map(|parent| parent_state(bundle, parent))
            .collect();
        pact.interaction(description.as_str(), "", |mut i| {
            for state in &parent_states {
                i.given(state.as_str());
            }
            upsert_request(&mut i, &api, bundle, name, spec, None);
            i.response
                .status(200)
                .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
                .json_body(each_like!({
                    "id": term!(ID_RE, example_id(name)),
                    "success": true,
                    "errors": [],
                    "created": like!(true),
                }));
            // `each_like` matches the fields by type; a success must say so.
            add_body_matchers(
                &mut i.response,
                json!({"$[*].success": {"matchers": [{"match": "equality"}]}}),
            );
            i
        });
    }

    // The throttling and failure interactions are stated once, on one object: Account
    // when the bundle syncs it, else the first object parents first.
    let (account, account_spec) = match bundle.objects.get_key_value("Account") {
        Some(found) => found,
        None => bundle
            .objects_parent_first()
            .into_iter()
            .next()
            .ok_or_else(|| PactGenError("the bundle syncs no object".into()))?,
    };
    let an_object = with_article(account);

    // A per-record failure: the batch succeeds, the record does not. Stated when the object
    // has a required field the source fills (Name first).
    if let Some(required) = required_source_field(account_spec) {
        let description =
            format!("{an_object} upsert with a record missing the required {required}");
        let message = format!("Required fields are missing: [{required}]");
        pact.interaction(description.as_str(), "", |mut i| {
            upsert_request(&mut i, &api, bundle, account, account_spec, Some(required));
            i.response
                .status(200)
                .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
                .json_body(json_pattern!([{
                    "success": false,
                    "errors": [{
                        "statusCode": "REQUIRED_FIELD_MISSING",
                        "message": like!(message.as_str()),
                        "fields": [required],
                    }],
                }]));
            i
        });
    }

    // Throttled: back off for Retry-After.
    let description = format!("{an_object} upsert while the org is rate limiting");
    pact.interaction(description.as_str(), "", |mut i| {
        i.given(RATE_LIMIT_STATE);
        upsert_request(&mut i, &api, bundle, account, account_spec, None);
        i.response
            .status(429)
            .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
            .header("Retry-After", term!(r"^\d+$", "30"))
            .json_body(each_like!({
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
                "message": "Too many requests; retry after 30 seconds",
            }));
        i
    });

    // The daily budget is spent: wait for the next window (the engine keys on this text).
    let description = format!("{an_object} upsert after the daily API budget is spent");
    pact.interaction(description.as_str(), "", |mut i| {
        i.given(BUDGET_STATE);
        upsert_request(&mut i, &api, bundle, account, account_spec, None);
        i.response
            .status(403)
            .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
            .json_body(json_pattern!([{
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
                "message": "TotalRequests Limit exceeded.",
            }]));
        i
    });

    // The limits resource, and the usage header the engine tracks.
    let max = bundle.limits.daily_api_requests;
    pact.interaction("a request for the org's limits", "", |mut i| {
        i.request
            .method("GET")
            .path(format!("{api}/limits"))
            .api_headers("application/json");
        i.response
            .status(200)
            .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
            .header(
                "Sforce-Limit-Info",
                term!(r"^api-usage=\d+/\d+(,.*)?$", format!("api-usage=18/{max}")),
            )
            .json_body(json_pattern!({
                "DailyApiRequests": {
                    "Max": max,
                    "Remaining": max - 18,
                },
            }));
        // pact_consumer's DSL has no integer matcher of its own.
        add_body_matchers(
            &mut i.response,
            json!({
                "$.DailyApiRequests.Max": {"matchers": [{"match": "integer"}]},
                "$.DailyApiRequests.Remaining": {"matchers": [{"match": "integer"}]},
            }),
        );
        i
    });

    // Before updating records whose source change carries `updated_at`, the engine asks which
    // records of the object someone else modified since (one SOQL query per object and run)
    // to keep values a person edited in Salesforce afterwards.
    for (name, spec) in bundle.objects_parent_first() {
        let ext = &spec.external_id;
        let example = format!(
            "SELECT Id, {ext}, LastModifiedDate, LastModifiedById FROM {name} WHERE LastModifiedDate > 2026-01-01T00:00:00Z AND LastModifiedById != '0058d0000000009AAA'"
        );
        let pattern = format!(
            r"^SELECT Id, {ext}, LastModifiedDate, LastModifiedById(, \w+)* FROM {name} WHERE LastModifiedDate > \d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}:\d{{2}}Z( AND LastModifiedById != '\w+')?$"
        );
        let state = parent_state(bundle, name);
        let description =
            format!("a query for {name} records others modified since the source changed");
        pact.interaction(description.as_str(), "", |mut i| {
            i.given(state.as_str());
            i.request
                .method("GET")
                .path(format!("{api}/query"))
                .query_param("q", term!(pattern.as_str(), example.as_str()))
                .api_headers("application/json");
            i.response
                .status(200)
                .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
                .json_body(json_pattern!({
                    "totalSize": like!(1),
                    "done": true,
                    "records": each_like!({
                        "Id": term!(ID_RE, example_id(name)),
                        ext.as_str(): like!(example_ext_id(bundle, name)),
                        "LastModifiedDate": term!(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?(Z|[+-]\d{2}:?\d{2})$", "2026-01-05T00:00:00.000+0000"),
                        "LastModifiedById": term!(ID_RE, "0058d0000000001AAA"),
                    }),
                }));
            i
        });
    }

    // A source delete under the `hard_delete` policy: delete by external ID.
    for (name, spec) in bundle.objects_parent_first() {
        if spec.delete != DeletePolicy::HardDelete {
            continue;
        }
        let ext = &spec.external_id;
        let example = format!(
            "{api}/sobjects/{name}/{ext}/{}",
            example_ext_id(bundle, name)
        );
        let pattern = format!("^{}/sobjects/{name}/{ext}/[^/]+$", regex_escape(&api));
        let state = parent_state(bundle, name);
        let description = format!("a delete of a {name} record by {ext}");
        pact.interaction(description.as_str(), "", |mut i| {
            i.given(state.as_str());
            i.request
                .method("DELETE")
                .path(term!(pattern.as_str(), example.as_str()))
                .api_headers("application/json");
            i.response.status(204);
            i
        });
    }

    bulk_interactions(&mut pact, bundle, &api);

    let built = pact.build();
    let json = built
        .to_json(built.specification_version())
        .map_err(|e| PactGenError(format!("the pact does not serialize: {e}")))?;
    Ok(json)
}

/// `an Account`, `a Contact`.
fn with_article(object: &str) -> String {
    let vowel = object
        .chars()
        .next()
        .is_some_and(|c| "AEIOUaeiou".contains(c));
    format!("{} {object}", if vowel { "an" } else { "a" })
}

/// The required field a record can leave out to be refused: `Name` when it is required and
/// filled by the source, else the first such field (neither the external ID nor a reference).
fn required_source_field(spec: &ObjectSpec) -> Option<&str> {
    let candidates = spec.fields.iter().filter(|(name, f)| {
        f.required
            && f.owner == Owner::Source
            && f.ty != FieldType::Reference
            && **name != spec.external_id
    });
    let mut first = None;
    for (name, _) in candidates {
        if name == "Name" {
            return Some(name.as_str());
        }
        first.get_or_insert(name.as_str());
    }
    first
}

/// Bulk API 2.0 upsert jobs, which the engine uses for a backfill above its bulk threshold:
/// one job per object (create), then upload, close (or abort), poll and read the results.
/// The job steps are the same for every object; they are stated once, on the first object.
fn bulk_interactions(pact: &mut PactBuilder, bundle: &Bundle, api: &str) {
    const JOB_RE_TAIL: &str = "[a-zA-Z0-9]{18}";
    // The mock numbers jobs from one after each reset: the first job of a provider state.
    // (The mock org's `ids::numbered("750", 1)`; a test checks that they agree.)
    let job = FIRST_BULK_JOB.to_string();
    let job_path = |tail: &str| {
        (
            format!(
                "^{}/jobs/ingest/{JOB_RE_TAIL}{}$",
                regex_escape(api),
                regex_escape(tail)
            ),
            format!("{api}/jobs/ingest/{job}{tail}"),
        )
    };
    for (name, spec) in bundle.objects_parent_first() {
        let ext = spec.external_id.as_str();
        let description = format!("a Bulk upsert job for {name} by {ext} is created");
        pact.interaction(description.as_str(), "", |mut i| {
            i.request
                .method("POST")
                .path(format!("{api}/jobs/ingest"))
                .api_headers("application/json")
                .header("Content-Type", "application/json")
                .json_body(json_pattern!({
                    "object": name.as_str(),
                    "operation": "upsert",
                    "externalIdFieldName": ext,
                    "contentType": "CSV",
                    "columnDelimiter": "COMMA",
                    "lineEnding": "LF",
                }));
            i.response
                .status(200)
                .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
                .json_body(json_pattern!({
                    "id": term!(ID_RE, job.as_str()),
                    "object": name.as_str(),
                    "operation": "upsert",
                    "state": "Open",
                }));
            i
        });
    }
    let Some((object, spec)) = bundle.objects_parent_first().into_iter().next() else {
        return;
    };
    let state = |stage: &str| {
        format!(
            "a Bulk upsert job for {object} by {} {stage}",
            spec.external_id
        )
    };
    // One record: its key and a text column (Name when the object has one).
    let text_column = if spec.fields.contains_key("Name") {
        Some("Name")
    } else {
        required_source_field(spec)
    };
    let upload = match text_column {
        Some(column) => format!(
            "{},{column}\nSTATE-00002,Uploaded by the pact\n",
            spec.external_id
        ),
        None => format!("{}\nSTATE-00002\n", spec.external_id),
    };
    let (re, example) = job_path("/batches");
    pact.interaction(
        "CSV records are uploaded to an open Bulk job",
        "",
        |mut i| {
            i.given(state("is open").as_str());
            i.request
                .method("PUT")
                .path(term!(re.as_str(), example.as_str()))
                .api_headers("application/json")
                .header("Content-Type", "text/csv")
                .body2(upload.clone(), "text/csv".to_string());
            i.response.status(201);
            i
        },
    );
    for (description, stage, target) in [
        (
            "a Bulk job with its records uploaded is closed",
            "has records uploaded",
            "UploadComplete",
        ),
        ("an open Bulk job is aborted", "is open", "Aborted"),
    ] {
        let (re, example) = job_path("");
        pact.interaction(description, "", |mut i| {
            i.given(state(stage).as_str());
            i.request
                .method("PATCH")
                .path(term!(re.as_str(), example.as_str()))
                .api_headers("application/json")
                .header("Content-Type", "application/json")
                .json_body(json_pattern!({ "state": target }));
            i.response
                .status(200)
                .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
                .json_body(json_pattern!({
                    "id": term!(ID_RE, job.as_str()),
                    "state": target,
                }));
            i
        });
    }
    let (re, example) = job_path("");
    pact.interaction("the state of a finished Bulk job is read", "", |mut i| {
        i.given(state("is complete").as_str());
        i.request
            .method("GET")
            .path(term!(re.as_str(), example.as_str()))
            .api_headers("application/json");
        i.response
            .status(200)
            .header("Content-Type", term!(JSON_RESPONSE_RE, JSON_RESPONSE))
            .json_body(json_pattern!({
                "id": term!(ID_RE, job.as_str()),
                "state": term!("^(JobComplete|Failed|Aborted|InProgress|UploadComplete)$", "JobComplete"),
                "numberRecordsProcessed": 1,
                "numberRecordsFailed": 0,
            }));
        add_body_matchers(
            &mut i.response,
            json!({
                "$.numberRecordsProcessed": {"matchers": [{"match": "integer"}]},
                "$.numberRecordsFailed": {"matchers": [{"match": "integer"}]},
            }),
        );
        i
    });
    for kind in ["successfulResults", "failedResults", "unprocessedrecords"] {
        let (re, example) = job_path(&format!("/{kind}"));
        let description = format!("the {kind} of a finished Bulk job are read");
        pact.interaction(description.as_str(), "", |mut i| {
            i.given(state("is complete").as_str());
            i.request
                .method("GET")
                .path(term!(re.as_str(), example.as_str()))
                .api_headers("text/csv");
            i.response
                .status(200)
                .header("Content-Type", term!(CSV_RESPONSE_RE, "text/csv"));
            i
        });
    }
}

fn upsert_description(object: &str, spec: &ObjectSpec) -> String {
    format!("an upsert of {object} records by {}", spec.external_id)
}

fn parent_state(bundle: &Bundle, parent: &str) -> String {
    let ext = &bundle.objects[parent].external_id;
    format!(
        "{parent} with {ext} {} exists",
        example_ext_id(bundle, parent)
    )
}

/// `PATCH …/composite/sobjects/{Object}/{ExternalIdField}` with one example record
/// (`records` matched with `each_like`), or, with `without`, exactly that record less one field.
fn upsert_request(
    i: &mut pact_consumer::builders::InteractionBuilder,
    api: &str,
    bundle: &Bundle,
    object: &str,
    spec: &ObjectSpec,
    without: Option<&str>,
) {
    let record = record_pattern(bundle, object, spec, without);
    let records: JsonPattern = match without {
        None => each_like!(record).into(),
        Some(_) => JsonPattern::Array(vec![record]),
    };
    let mut body: HashMap<String, JsonPattern> = HashMap::new();
    body.insert("allOrNone".into(), false.into());
    body.insert("records".into(), records);
    i.request
        .method("PATCH")
        .path(format!(
            "{api}/composite/sobjects/{object}/{}",
            spec.external_id
        ))
        .api_headers("application/json")
        .header("Content-Type", "application/json")
        .json_body(JsonPattern::Object(body));
}

/// The record the engine sends: `attributes`, the external ID, and every source-owned field
/// filled `from` a column (references as `{"<Relationship>": {"<ParentExtId>": …}}`).
fn record_pattern(
    bundle: &Bundle,
    object: &str,
    spec: &ObjectSpec,
    without: Option<&str>,
) -> JsonPattern {
    let mut record: HashMap<String, JsonPattern> = HashMap::new();
    let mut attributes: HashMap<String, JsonPattern> = HashMap::new();
    attributes.insert(
        "type".into(),
        term!(format!("^{}$", regex_escape(object)), object).into(),
    );
    record.insert("attributes".into(), JsonPattern::Object(attributes));
    record.insert(
        spec.external_id.clone(),
        example_ext_id(bundle, object).into(),
    );
    for (name, field) in &spec.fields {
        if field.owner == Owner::Crm || *name == spec.external_id || Some(name.as_str()) == without
        {
            continue;
        }
        // Fields no column feeds are sent too: new source columns routed to them (schema
        // drift) and the flag an `archive` or `inactive` delete sets.
        let column = field.from.as_deref().unwrap_or(name.as_str());
        if field.ty == FieldType::Reference {
            let parent = field.to.as_deref().expect("references name their parent");
            let relationship = field.relationship.clone().unwrap_or_else(|| name.clone());
            let parent_ext = bundle.objects[parent].external_id.clone();
            let mut reference: HashMap<String, JsonPattern> = HashMap::new();
            reference.insert(parent_ext, example_ext_id(bundle, parent).into());
            record.insert(relationship, JsonPattern::Object(reference));
            continue;
        }
        let value = example_value(field, column);
        let pattern: JsonPattern = match field.ty {
            FieldType::Picklist if field.restricted => {
                let values = field.values.as_deref().unwrap_or_default();
                let alternatives: Vec<String> = values.iter().map(|v| regex_escape(v)).collect();
                term!(
                    format!("^({})$", alternatives.join("|")),
                    value.as_str().unwrap_or_default()
                )
                .into()
            }
            FieldType::Date => {
                term!(r"^\d{4}-\d{2}-\d{2}$", value.as_str().unwrap_or_default()).into()
            }
            FieldType::Datetime => term!(
                r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?(Z|[+-]\d{2}:?\d{2})$",
                value.as_str().unwrap_or_default()
            )
            .into(),
            _ => value.into(),
        };
        record.insert(name.clone(), pattern);
    }
    JsonPattern::Object(record)
}

/// An example external ID, shaped like the source keys (`CUST-10001`, `CON-50001`, …).
fn example_ext_id(bundle: &Bundle, object: &str) -> String {
    match bundle.objects[object].source.as_str() {
        "accounts" => "CUST-10001".into(),
        "contacts" => "CON-50001".into(),
        "opportunities" => "OPP-70001".into(),
        other => format!("{}-00001", other.to_ascii_uppercase()),
    }
}

/// An 18-character ID with the object's key prefix.
fn example_id(object: &str) -> String {
    let prefix = match object {
        "Account" => "001",
        "Contact" => "003",
        "Opportunity" => "006",
        _ => "a00",
    };
    format!("{prefix}8d00000A1bCdEAA")
}

/// An example value of the field's type (text within `max_length`).
fn example_value(field: &FieldSpec, column: &str) -> Value {
    let text = |s: &str| {
        let max = field.max_length.map_or(usize::MAX, |m| m as usize);
        Value::String(s.chars().take(max).collect())
    };
    match field.ty {
        FieldType::String | FieldType::Textarea => text(match column {
            "company_name" => "Foxhollow Distribution",
            "billing_city" => "Bozeman",
            "billing_country" => "United States",
            "first_name" => "Yusuf",
            "last_name" => "Baptiste",
            "title" => "Controller",
            "name" => "Foxhollow Distribution - Winter range",
            _ => "Example text",
        }),
        FieldType::Email => text("yusuf.baptiste@example.com"),
        FieldType::Phone => text("+1 676-555-8892"),
        FieldType::Url => text("https://www.example.com"),
        FieldType::Picklist => {
            let values = field.values.as_deref().unwrap_or_default();
            let preferred = ["Active", "Retail", "Closed Won", "Web", "Silver"];
            let pick = preferred
                .iter()
                .find(|p| values.iter().any(|v| v == *p))
                .map(|p| p.to_string())
                .or_else(|| values.first().cloned())
                .unwrap_or_default();
            text(&pick)
        }
        FieldType::Boolean => json!(false),
        FieldType::Int => json!(match column {
            "employees" => 805,
            "fleet_size" => 35,
            _ => 1,
        }),
        FieldType::Currency => json!(match column {
            "annual_revenue" => 50753000.0,
            _ => 169552.48,
        }),
        FieldType::Double => json!(1.5),
        FieldType::Percent => json!(12.5),
        FieldType::Date => json!(match column {
            "customer_since" => "2010-12-25",
            _ => "2026-03-01",
        }),
        FieldType::Datetime => json!("2026-01-05T08:00:00.000+0000"),
        FieldType::Reference => json!("CUST-10001"),
    }
}

/// Adds matching rules (Pact V4 JSON form, keyed by path) to a part's `body` category.
///
/// Escape hatch for matchers the `pact_consumer` DSL has no macro for (integer, equality,
/// form parameters); it goes through the builder's own rule set, so the rules serialize as
/// any other.
/// The headers every API call of the engine carries: a bearer token, its client name and
/// what it accepts.
trait ApiHeaders {
    fn api_headers(&mut self, accept: &str) -> &mut Self;
}

impl ApiHeaders for pact_consumer::builders::RequestBuilder {
    fn api_headers(&mut self, accept: &str) -> &mut Self {
        self.header("Authorization", term!(BEARER_RE, EXAMPLE_BEARER))
            .header("Sforce-Call-Options", CALL_OPTIONS)
            .header("Accept", accept.to_string())
    }
}

fn add_body_matchers<B: HttpPartBuilder>(part: &mut B, rules: Value) {
    let (_, matching_rules) = part.body_and_matching_rules_mut();
    matching_rules
        .add_category("body")
        .add_rules_from_json(&rules)
        .expect("valid matching rules");
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
