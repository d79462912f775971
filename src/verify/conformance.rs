//! Consumer conformance: every request the engine sent during a run must match an
//! interaction of the tenant's contract (its Pact files): same method and path, the headers
//! the contract requires, and no body field the contract does not list.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::evidence::SentRequest;
use crate::contract::Bundle;

/// The request side of one Pact interaction, as far as conformance needs it.
struct Expected {
    method: String,
    path: String,
    path_regex: Option<regex::Regex>,
    /// Headers with the value the contract requires (`None`: any value, a matcher applies).
    headers: Vec<(String, Option<String>)>,
    top_keys: BTreeSet<String>,
    record_keys: BTreeSet<String>,
}

fn interactions(bundle: &Bundle) -> Vec<Expected> {
    let mut out = Vec::new();
    for pact in bundle.pacts.values() {
        for i in pact["interactions"].as_array().into_iter().flatten() {
            let req = &i["request"];
            let (Some(method), Some(path)) = (req["method"].as_str(), req["path"].as_str()) else {
                continue;
            };
            let rules = &req["matchingRules"];
            let path_regex = rules["path"]["matchers"][0]["regex"]
                .as_str()
                .and_then(|r| regex::Regex::new(r).ok());
            let mut headers = Vec::new();
            for (name, values) in req["headers"].as_object().into_iter().flatten() {
                if name.eq_ignore_ascii_case("authorization") {
                    continue;
                }
                let matched = rules["header"]
                    .as_object()
                    .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case(name)));
                let value = values
                    .as_array()
                    .and_then(|v| v.first())
                    .and_then(Value::as_str)
                    .or(values.as_str());
                headers.push((
                    name.clone(),
                    if matched {
                        None
                    } else {
                        value.map(str::to_string)
                    },
                ));
            }
            let content = &req["body"]["content"];
            let top_keys = content
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            let record_keys = content["records"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|r| r.keys().cloned())
                .collect();
            out.push(Expected {
                method: method.to_string(),
                path: path.to_string(),
                path_regex,
                headers,
                top_keys,
                record_keys,
            });
        }
    }
    out
}

/// Checks every sent request; returns one line per distinct problem, with how often it happened.
pub fn check(bundle: &Bundle, sent: &[SentRequest]) -> Vec<String> {
    if bundle.pacts.is_empty() {
        return Vec::new();
    }
    let expected = interactions(bundle);
    let mut problems: BTreeMap<String, usize> = BTreeMap::new();
    for req in sent {
        let candidates: Vec<&Expected> = expected
            .iter()
            .filter(|e| e.method.eq_ignore_ascii_case(&req.method))
            .filter(|e| {
                e.path == req.path || e.path_regex.as_ref().is_some_and(|r| r.is_match(&req.path))
            })
            .collect();
        let at = format!("{} {}", req.method, req.path);
        if candidates.is_empty() {
            *problems
                .entry(format!("{at} matches no interaction of the contract"))
                .or_default() += 1;
            continue;
        }
        // Headers every candidate interaction requires, with a fixed value.
        for (name, value) in &candidates[0].headers {
            let Some(want) = value else { continue };
            if !candidates.iter().all(|c| {
                c.headers
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v.as_ref() == Some(want))
            }) {
                continue;
            }
            let got = req
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str());
            if got != Some(want.as_str()) {
                *problems
                    .entry(format!(
                        "{at}: header {name}: the contract says `{want}`, the engine sent `{}`",
                        got.unwrap_or("nothing")
                    ))
                    .or_default() += 1;
            }
        }
        let Some(body) = req.body.as_ref().and_then(Value::as_object) else {
            continue;
        };
        let top_allowed: BTreeSet<&String> = candidates.iter().flat_map(|c| &c.top_keys).collect();
        let rec_allowed: BTreeSet<&String> =
            candidates.iter().flat_map(|c| &c.record_keys).collect();
        for key in body.keys().filter(|k| !top_allowed.contains(k)) {
            *problems
                .entry(format!(
                    "{at}: sends body field `{key}`, which the contract does not list"
                ))
                .or_default() += 1;
        }
        for record in body
            .get("records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
        {
            for key in record.keys().filter(|k| !rec_allowed.contains(k)) {
                *problems
                    .entry(format!(
                        "{at}: sends record field `{key}`, which the contract does not list"
                    ))
                    .or_default() += 1;
            }
        }
    }
    problems
        .into_iter()
        .map(|(p, n)| with_count(&p, n))
        .collect()
}

/// Adds "(N times)" to a problem that happened more than once.
fn with_count(problem: &str, n: usize) -> String {
    if n == 1 {
        problem.to_string()
    } else {
        format!("{problem} ({n} times)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle_with_pact(pact: Value) -> Bundle {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contracts/northwind-outfitters/sandbox");
        let mut b = Bundle::load(&dir).unwrap();
        b.pacts.clear();
        b.pacts.insert("p.json".into(), pact);
        b
    }

    fn pact() -> Value {
        json!({"interactions": [{
            "request": {
                "method": "PATCH",
                "path": "/services/data/v62.0/composite/sobjects/Account/Ext__c",
                "headers": {"Sforce-Call-Options": ["client=syncgate"], "Authorization": ["Bearer x"]},
                "body": {"content": {"allOrNone": false, "records": [{"attributes": {"type": "Account"}, "Ext__c": "A", "Name": "n"}]}}
            }
        }]})
    }

    fn sent(path: &str, headers: &[(&str, &str)], body: Value) -> SentRequest {
        SentRequest {
            method: "PATCH".into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            body: Some(body),
        }
    }

    const PATH: &str = "/services/data/v62.0/composite/sobjects/Account/Ext__c";

    #[test]
    fn a_request_inside_the_contract_passes() {
        let b = bundle_with_pact(pact());
        let r = sent(
            PATH,
            &[("Sforce-Call-Options", "client=syncgate")],
            json!({"allOrNone": false, "records": [{"Ext__c": "A", "Name": "x"}]}),
        );
        assert_eq!(check(&b, &[r]), Vec::<String>::new());
    }

    #[test]
    fn extra_fields_headers_and_paths_are_named() {
        let b = bundle_with_pact(pact());
        let extra = sent(
            PATH,
            &[("Sforce-Call-Options", "client=syncgate")],
            json!({"allOrNone": false, "records": [{"Ext__c": "A", "Secret__c": 1}, {"Ext__c": "B", "Secret__c": 2}]}),
        );
        let header = sent(
            PATH,
            &[("Sforce-Call-Options", "client=other")],
            json!({"records": []}),
        );
        let path = sent(
            "/services/data/v62.0/composite/sobjects/Lead/Ext__c",
            &[],
            json!({}),
        );
        let problems = check(&b, &[extra, header, path]);
        assert_eq!(
            problems,
            vec![
                "PATCH /services/data/v62.0/composite/sobjects/Account/Ext__c: header Sforce-Call-Options: the contract says `client=syncgate`, the engine sent `client=other`".to_string(),
                "PATCH /services/data/v62.0/composite/sobjects/Account/Ext__c: sends record field `Secret__c`, which the contract does not list (2 times)".to_string(),
                "PATCH /services/data/v62.0/composite/sobjects/Lead/Ext__c matches no interaction of the contract".to_string(),
            ]
        );
    }
}
