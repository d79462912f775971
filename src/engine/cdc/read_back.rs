//! Reading records back from the org: when an event cannot be trusted on its own (a gap
//! event, an overflow, an expired replay ID), the consumer queries the records' current
//! values, paging to the last page, with the retry rules of `engine::retry`.

use reqwest::Method;
use serde_json::Value;

use super::*;
use crate::engine::retry::{Attempts, Failure, Next};
use crate::store::limiter::{Admission, Permit, WaitReason};

impl CdcConsumer<'_> {
    /// Reads the CRM-owned fields of `object` back from the org (all records, or those
    /// `filter` selects), paged, keeping the values newer than what was delivered.
    pub(super) async fn read_back(
        &mut self,
        object: &str,
        filter: Option<&str>,
        via: ChangeVia,
    ) -> Result<Vec<Staged>, CdcError> {
        let Some(spec) = self.bundle.object(object) else {
            return Ok(Vec::new());
        };
        let crm: Vec<String> = spec
            .fields
            .iter()
            .filter(|(_, f)| f.owner == Owner::Crm)
            .map(|(n, _)| n.clone())
            .collect();
        let ext_field = spec.external_id.clone();
        let mut soql = format!(
            "SELECT Id, {ext_field}, LastModifiedDate, {} FROM {object}",
            crm.join(", ")
        );
        if let Some(f) = filter {
            soql.push_str(" WHERE ");
            soql.push_str(f);
        }
        soql.push_str(" ORDER BY Id");
        let rows = self.query(object, &soql).await?;
        let mut out = Vec::new();
        for row in rows {
            let (Some(id), Some(ext)) = (
                row.get("Id").and_then(Value::as_str),
                row.get(&ext_field).and_then(Value::as_str),
            ) else {
                continue;
            };
            self.external_ids
                .insert((object.to_string(), id.to_string()), ext.to_string());
            let Some(modified) = row
                .get("LastModifiedDate")
                .and_then(Value::as_str)
                .and_then(Timestamp::parse)
            else {
                continue;
            };
            let version = Version::read_back(modified);
            for field in &crm {
                let key = (object.to_string(), id.to_string(), field.clone());
                // A read-back value equal to (or older than) what was delivered adds nothing.
                if self.watermark(&key).await?.is_some_and(|w| w >= version) {
                    continue;
                }
                out.push(Staged {
                    version,
                    change: CrmChange {
                        object: object.to_string(),
                        source_id: ext.to_string(),
                        record_id: id.to_string(),
                        field: field.clone(),
                        value: row.get(field).cloned().unwrap_or(Value::Null),
                        changed_at: modified,
                        replay_id: None,
                        event_uuid: None,
                        via,
                    },
                });
            }
        }
        Ok(out)
    }

    /// Runs a SOQL query and follows `nextRecordsUrl` to the last page.
    pub(super) async fn query(&mut self, object: &str, soql: &str) -> Result<Vec<Value>, CdcError> {
        let mut url = reqwest::Url::parse("http://localhost/query").expect("a fixed URL parses");
        url.query_pairs_mut().append_pair("q", soql);
        let mut path = format!("query?{}", url.query().unwrap_or_default());
        let mut rows = Vec::new();
        loop {
            let body = self.call(object, &path).await?;
            if let Some(records) = body.get("records").and_then(Value::as_array) {
                rows.extend(records.iter().cloned());
            }
            match body.get("nextRecordsUrl").and_then(Value::as_str) {
                // `/services/data/vNN.N/query/<locator>`: the client adds the prefix.
                Some(next) => match next.find("/query/") {
                    Some(at) => path = next[at + 1..].to_string(),
                    None => break,
                },
                None => break,
            }
        }
        Ok(rows)
    }

    /// One GET with retries: a new session once on 401, `Retry-After` honoured, backoff
    /// otherwise, the next daily window when the budget is spent.
    pub(super) async fn call(&mut self, object: &str, path: &str) -> Result<Value, CdcError> {
        // Signed in once (by this call or by the stream), renewed on 401 below.
        if self.client.session().is_none() {
            self.client.authenticate().await?;
        }
        let mut attempts = Attempts::new(self.config.max_attempts);
        // Window waits do not count as attempts, but an org that stays locked out must not
        // hold the consumer for ever: at most `max_attempts` of them per call.
        let mut windows = 0;
        loop {
            let attempt = attempts.start();
            let permit = self.admit(object, &mut windows).await?;
            let answer = self.client.call(Method::GET, path, None).await;
            if let (Some((limiter, _)), Some(permit)) = (&self.limiter, permit) {
                limiter.release(&permit).await?;
            }
            let failure: Failure = match answer {
                Ok(reply) => return Ok(reply.body),
                Err(f) => f,
            };
            let now = self.clock.now();
            let until = match attempts.after(&failure, true) {
                Next::Refresh => {
                    self.client.authenticate().await?;
                    continue;
                }
                Next::WaitForWindow if windows < self.config.max_attempts => {
                    windows += 1;
                    failure.window_opens(now)
                }
                Next::GiveUp(_) | Next::WaitForWindow => {
                    return Err(CdcError::Query {
                        object: object.to_string(),
                        code: failure.code,
                        message: failure.message,
                    })
                }
                Next::Retry => failure.not_before.unwrap_or_else(|| {
                    now.plus(self.config.backoff.delay(attempt, &mut self.jitter))
                }),
            };
            self.clock.sleep_until(until.max(now)).await;
        }
    }

    /// Waits until the engine's limiter lets one call go; `None` without a limiter. A daily
    /// budget that stays spent counts against the same `windows` as the org's lockout.
    async fn admit(&mut self, object: &str, windows: &mut u32) -> Result<Option<Permit>, CdcError> {
        let Some((limiter, policy)) = self.limiter.clone() else {
            return Ok(None);
        };
        loop {
            if self.stop.as_ref().is_some_and(Stop::requested) {
                return Err(CdcError::Stopped);
            }
            let until = match limiter
                .acquire(&self.tenant, &policy, self.clock.now())
                .await?
            {
                Admission::Granted(permit) => return Ok(Some(permit)),
                Admission::Wait {
                    reason: WaitReason::DailyBudget,
                    until,
                } => {
                    if *windows >= self.config.max_attempts {
                        return Err(CdcError::Query {
                            object: object.to_string(),
                            code: "DAILY_BUDGET".into(),
                            message: "the engine's daily budget stayed spent through every window it may wait for".into(),
                        });
                    }
                    *windows += 1;
                    until
                }
                Admission::Wait { until, .. } => until,
            };
            let stop = self.stop.clone();
            unless_stopped(stop.as_ref(), async {
                self.clock.sleep_until(until).await;
                Ok(())
            })
            .await?;
        }
    }
}
