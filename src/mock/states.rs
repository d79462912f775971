//! Pact provider states on the mock org: one function that puts an org into the state a
//! pact interaction names. The gate's in-process verification (`verify::pacts`) and the
//! org's state-change endpoint (`POST /__syncgate/provider-states`, Pact's protocol
//! `{"state", "params", "action": "setup"|"teardown"}`) both call [`setup`] and
//! [`teardown`], so an independent `pact verifier --state-change-url …` sees exactly the
//! org the gate verifies.
//!
//! Interactions must not depend on each other's order: [`teardown`] empties the org, and a
//! [`setup`] that arrives after the org answered an API request (a verifier run without
//! teardown calls) empties it first. Several setups in a row (an interaction with more than
//! one state) accumulate.

use serde_json::{Map, Value};

use super::bulk::JobStage;
use super::{ClientCredentials, MockOrg};
use crate::contract::{FieldType, ObjectSpec};
use crate::sim::scenario::{Dur, FaultResponse};

/// The connected app the generated pacts sign in with (see `tests/it/pacts.rs`).
pub fn pact_client() -> ClientCredentials {
    ClientCredentials {
        client_id: "syncgate-engine".into(),
        client_secret: "example-secret".into(),
    }
}

/// Every state the mock org knows, as documentation and error text.
pub const KNOWN_STATES: &str = "`a connected app with the client-credentials flow enabled`, `<Object> with <ExternalIdField> <value> exists`, `a Bulk upsert job for <Object> by <ExternalIdField> is open` (`… has records uploaded`, `… is complete`), `the org is rate limiting`, `the daily API budget is spent`";

/// Puts `org` into the provider state `name` (empty: no state). Resets the org first when
/// it has answered an API request since the last reset, so an interaction never sees the
/// previous one's records.
pub fn setup(org: &MockOrg, name: &str, _params: &Map<String, Value>) -> Result<(), String> {
    if org.lock().journal.total() > 0 {
        teardown(org);
    }
    match name {
        "" => {}
        "a connected app with the client-credentials flow enabled" => {
            org.add_client(pact_client());
        }
        "the org is rate limiting" => org.force_next_fault(Some(FaultResponse::RateLimited {
            retry_after: Dur(std::time::Duration::from_secs(60)),
            http_date: false,
        })),
        "the daily API budget is spent" => {
            let (_, max) = org.api_usage();
            org.set_api_usage(max);
        }
        _ if name.starts_with("a Bulk upsert job for ") => {
            // "a Bulk upsert job for <Object> by <ExternalIdField> is open | has records
            // uploaded | is complete"
            let rest = name.trim_start_matches("a Bulk upsert job for ");
            let parsed = rest.split_once(" by ").and_then(|(object, rest)| {
                let (field, stage) = rest.split_once(' ')?;
                let stage = match stage {
                    "is open" => JobStage::Open,
                    "has records uploaded" => JobStage::Uploaded,
                    "is complete" => JobStage::Complete,
                    _ => return None,
                };
                Some((object, field, stage))
            });
            let Some((object, field, stage)) = parsed else {
                return Err(format!("unknown provider state `{name}`: a Bulk job state reads `a Bulk upsert job for <Object> by <ExternalIdField> is open`, `… has records uploaded` or `… is complete`"));
            };
            let spec = object_spec(org, name, object)?;
            let csv = sample_csv(field, &spec);
            org.stage_bulk_job(object, field, &csv, stage)
                .map_err(|e| format!("provider state `{name}`: {e}"))?;
        }
        _ => {
            // "<Object> with <Field> <value> exists"
            let parsed = name.strip_suffix(" exists").and_then(|rest| {
                let (object, rest) = rest.split_once(" with ")?;
                let (field, value) = rest.split_once(' ')?;
                Some((object, field, value))
            });
            let Some((object, field, value)) = parsed else {
                return Err(format!(
                    "unknown provider state `{name}`: the mock org knows {KNOWN_STATES}"
                ));
            };
            let spec = object_spec(org, name, object)?;
            if spec.external_id != field {
                return Err(format!(
                    "provider state `{name}`: {object}'s external ID is {}, not {field}",
                    spec.external_id
                ));
            }
            org.put_record(object, value, sample_record(&spec))
                .map_err(|e| format!("provider state `{name}`: {} {}", e.code, e.message))?;
        }
    }
    Ok(())
}

/// Ends an interaction: the org is emptied (signed-in sessions and connected apps stay),
/// forced faults are cleared and the daily budget is unspent.
pub fn teardown(org: &MockOrg) {
    org.reset();
    org.force_next_fault(None);
    org.set_api_usage(0);
}

fn object_spec(org: &MockOrg, state: &str, object: &str) -> Result<ObjectSpec, String> {
    org.lock()
        .org
        .bundle()
        .object(object)
        .cloned()
        .ok_or_else(|| format!("provider state `{state}`: the bundle has no object {object}"))
}

/// A one-record CSV upload of the least record the org accepts, keyed `STATE-00001`.
fn sample_csv(ext_field: &str, spec: &ObjectSpec) -> String {
    let record = sample_record(spec);
    let mut header = vec![ext_field.to_string()];
    let mut row = vec!["STATE-00001".to_string()];
    for (k, v) in &record {
        header.push(k.clone());
        row.push(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = w.write_record(&header);
    let _ = w.write_record(&row);
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The least record the org accepts: every required field with a value of its type.
fn sample_record(spec: &ObjectSpec) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, f) in spec
        .fields
        .iter()
        .filter(|(n, f)| f.required && **n != spec.external_id)
    {
        let v = match f.ty {
            FieldType::Picklist => f
                .values
                .as_ref()
                .and_then(|v| v.first())
                .map(|v| Value::String(v.clone())),
            FieldType::Boolean => Some(Value::Bool(false)),
            t if t.is_number() => Some(Value::from(1)),
            FieldType::Date => Some(Value::String("2026-01-05".into())),
            FieldType::Datetime => Some(Value::String("2026-01-05T08:00:00.000+0000".into())),
            FieldType::Email => Some(Value::String("state@example.com".into())),
            FieldType::Reference => None,
            _ => Some(Value::String("Provider state record".into())),
        };
        if let Some(v) = v {
            out.insert(name.clone(), v);
        }
    }
    out
}

/// One state-change request of Pact's protocol, from a JSON body or (with the verifier's
/// `--state-change-as-query`) from query parameters.
#[derive(Debug, PartialEq)]
pub struct StateChange {
    pub state: String,
    pub params: Map<String, Value>,
    pub setup: bool,
}

impl StateChange {
    /// Reads a state change; `Err` says what is wrong with it.
    pub fn parse(query: &[(String, String)], body: &[u8]) -> Result<StateChange, String> {
        let from_body = !body.iter().all(u8::is_ascii_whitespace);
        let (state, action, params) = if from_body {
            let v: Value = serde_json::from_slice(body).map_err(|e| {
                format!("the state-change body is not JSON ({e}); send {{\"state\": \"…\", \"params\": {{…}}, \"action\": \"setup\"|\"teardown\"}}")
            })?;
            let state = match v.get("state") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err("`state` must be a string".into()),
            };
            let action = match v.get("action") {
                None | Some(Value::Null) => "setup".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err("`action` must be \"setup\" or \"teardown\"".into()),
            };
            let params = match v.get("params") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m.clone(),
                Some(_) => return Err("`params` must be an object".into()),
            };
            (state, action, params)
        } else {
            let mut state = String::new();
            let mut action = "setup".to_string();
            let mut params = Map::new();
            for (k, v) in query {
                match k.as_str() {
                    "state" => state = v.clone(),
                    "action" => action = v.clone(),
                    _ => {
                        params.insert(k.clone(), Value::String(v.clone()));
                    }
                }
            }
            (state, action, params)
        };
        let setup = match action.as_str() {
            "setup" => true,
            "teardown" => false,
            other => {
                return Err(format!(
                    "`action` is `{other}`; it must be \"setup\" or \"teardown\""
                ))
            }
        };
        Ok(StateChange {
            state,
            params,
            setup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_state_changes_from_bodies_and_queries() {
        let c = StateChange::parse(
            &[],
            br#"{"state":"Account with Ext__c A-1 exists","params":{"x":1},"action":"teardown"}"#,
        )
        .unwrap();
        assert_eq!(c.state, "Account with Ext__c A-1 exists");
        assert!(!c.setup);
        assert_eq!(c.params.get("x"), Some(&Value::from(1)));
        let q = vec![
            ("state".to_string(), "the org is rate limiting".to_string()),
            ("action".to_string(), "setup".to_string()),
        ];
        let c = StateChange::parse(&q, b"").unwrap();
        assert!(c.setup);
        assert_eq!(c.state, "the org is rate limiting");
        assert!(
            StateChange::parse(&[], br#"{"state":"x","action":"destroy"}"#)
                .unwrap_err()
                .contains("destroy")
        );
        assert!(StateChange::parse(&[], b"{").is_err());
    }
}
