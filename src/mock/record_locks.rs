//! Per-record row locks inside a `200` collections answer: other jobs hold some of the
//! rows a write touches, so those records fail `UNABLE_TO_LOCK_ROW` (the record-level
//! error Salesforce marks retryable) while the rest of the write goes through. The answer
//! is `200` as a whole, so an engine that only retries failed requests, not failed records
//! inside a successful one, loses the locked records.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::answer::{Answer, Payload, Req};
use super::State;

/// The error a locked record answers with, as Salesforce words it.
fn locked() -> Value {
    json!({
        "success": false,
        "errors": [{
            "statusCode": "UNABLE_TO_LOCK_ROW",
            "message": "unable to obtain exclusive access to this record or 1 records",
            "fields": [],
        }],
    })
}

/// A record of an all-or-none write that another record's failure rolled back.
fn rolled_back() -> Value {
    json!({
        "success": false,
        "errors": [{
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
            "fields": [],
        }],
    })
}

/// Whether the `i`-th record (from 0) of a write is locked when every `every`-th is.
fn is_locked(i: usize, every: usize) -> bool {
    i % every.max(1) == 0
}

/// Does a collections write (`{"records": [...]}`) with every `every`-th record locked:
/// the others are written through `route` as one write, the locked ones answer
/// `UNABLE_TO_LOCK_ROW` in their place. `None` when the request is no collections write
/// (it is then done as usual). With `allOrNone` nothing is written and the rest answer
/// `ALL_OR_NONE_OPERATION_ROLLED_BACK`.
pub(super) fn locked_write(
    every: usize,
    state: &mut State,
    req: &Req<'_>,
    route: impl FnOnce(&mut State, &Req<'_>) -> Answer,
) -> Option<Answer> {
    let parsed: Value = serde_json::from_slice(req.body).ok()?;
    let records = parsed.get("records")?.as_array()?;
    let total = records.len();
    let all_or_none = parsed
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let results: Vec<Value> = if all_or_none {
        (0..total)
            .map(|i| {
                if is_locked(i, every) {
                    locked()
                } else {
                    rolled_back()
                }
            })
            .collect()
    } else {
        let free: Vec<Value> = records
            .iter()
            .enumerate()
            .filter(|(i, _)| !is_locked(*i, every))
            .map(|(_, r)| r.clone())
            .collect();
        let mut written = if free.is_empty() {
            Vec::new().into_iter()
        } else {
            let mut body = parsed.clone();
            body["records"] = Value::Array(free.clone());
            let bytes = body.to_string().into_bytes();
            let rest = Req {
                method: req.method.clone(),
                seg: req.seg.clone(),
                query: req.query.clone(),
                headers: req.headers,
                body: &bytes,
                now: req.now,
                api_version: req.api_version,
            };
            let answer = route(state, &rest);
            match &answer.body {
                Payload::Json(Value::Array(items))
                    if answer.status == StatusCode::OK && items.len() == free.len() =>
                {
                    items.clone().into_iter()
                }
                // The write failed as a whole (or is not a collections write after all):
                // that answer stands for every record.
                _ => return Some(answer),
            }
        };
        (0..total)
            .map(|i| {
                if is_locked(i, every) {
                    locked()
                } else {
                    written.next().unwrap_or_else(locked)
                }
            })
            .collect()
    };
    let ok = results
        .iter()
        .filter(|r| r.get("success").and_then(Value::as_bool) == Some(true))
        .count();
    let mut answer = Answer::ok(StatusCode::OK, Value::Array(results));
    answer.records = Some(total);
    answer.outcome = Some((ok, total - ok));
    Some(answer)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::is_locked;
    use crate::contract::Registry;
    use crate::mock::{spawn, MockConfig, MockOrg};
    use crate::sim::scenario::FaultRule;
    use crate::sim::{Clock, Scenario, Seed, Timestamp};

    /// A write of three Accounts with every other record locked: the 1st and 3rd answer
    /// `UNABLE_TO_LOCK_ROW` in a `200`, the 2nd is written; the retry of the two lands.
    #[tokio::test]
    async fn a_locked_record_fails_alone_inside_a_200_and_the_rest_is_written() {
        let registry = Registry::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts"))
            .unwrap_or_else(|e| panic!("{e}"));
        let tenants = registry
            .select(&["northwind-outfitters".into()], &["sandbox".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let bundle = registry.load(&tenants[0]).unwrap_or_else(|e| panic!("{e}"));
        let mut scenario = Scenario::from_yaml(Path::new("locks.yaml"), "purpose: p\n")
            .unwrap_or_else(|e| panic!("{e}"));
        scenario.faults = vec![FaultRule {
            name: "locks".into(),
            matcher: Default::default(),
            calls: Some(crate::sim::scenario::CallRange {
                first: 1,
                times: Some(1),
            }),
            probability: 1.0,
            lasting: None,
            respond: crate::sim::scenario::FaultResponse::RecordsLocked { every: 2 },
            optional: false,
        }];
        let org = MockOrg::new(MockConfig {
            bundle,
            scenario: Some(scenario),
            seed: Seed(1),
            clock: Clock::virtual_at(Timestamp::parse("2026-01-05T08:00:00Z").unwrap()),
            clients: vec![],
        });
        let token = org.issue_token();
        let running = spawn(org.clone(), 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "{}/services/data/v62.0/composite/sobjects/Account/NW_Customer_Id__c",
            running.base_url()
        );
        let write = |ids: &[&str]| {
            let records: Vec<serde_json::Value> = ids
                .iter()
                .map(|id| serde_json::json!({"attributes": {"type": "Account"}, "NW_Customer_Id__c": id, "Name": id}))
                .collect();
            crate::http::client()
                .patch(&url)
                .bearer_auth(&token)
                .json(&serde_json::json!({"allOrNone": false, "records": records}))
                .send()
        };
        let resp = write(&["A-1", "A-2", "A-3"]).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        let codes: Vec<Option<&str>> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["errors"][0]["statusCode"].as_str())
            .collect();
        assert_eq!(
            codes,
            [Some("UNABLE_TO_LOCK_ROW"), None, Some("UNABLE_TO_LOCK_ROW")]
        );
        assert_eq!(body[1]["success"], true);
        let names = |org: &MockOrg| {
            let mut n: Vec<String> = org
                .records("Account")
                .iter()
                .filter_map(|r| {
                    r.fields
                        .get("NW_Customer_Id__c")?
                        .as_str()
                        .map(str::to_string)
                })
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(&org), ["A-2"]);
        let again = write(&["A-1", "A-3"]).await.unwrap();
        let body: serde_json::Value = again.json().await.unwrap();
        assert!(
            body.as_array()
                .unwrap()
                .iter()
                .all(|r| r["success"] == true),
            "{body}"
        );
        assert_eq!(names(&org), ["A-1", "A-2", "A-3"]);
        running.stop().await;
    }

    #[test]
    fn every_nth_record_from_the_first_is_locked() {
        let locked: Vec<usize> = (0..7).filter(|&i| is_locked(i, 3)).collect();
        assert_eq!(locked, [0, 3, 6]);
        assert!((0..5).all(|i| is_locked(i, 1)));
    }
}
