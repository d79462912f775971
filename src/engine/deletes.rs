//! Source deletes in Salesforce. The bundle's policy decides: `hard_delete` removes the record
//! (by external ID, so no lookup is needed; a record already gone counts as deleted),
//! `archive` and `inactive` are upserts of a flag (see [`policy_payload`]). There is no
//! silent no-op: a bundle without a policy does not load.

use reqwest::Method;
use serde_json::{Map, Value};

use super::calls::ApiRequest;
use super::letters::Letter;
use super::query_text::encode_query_value;
use super::source::SourceRecord;
use super::{EngineError, Fence, Sync};
use crate::contract::{DeletePolicy, ObjectSpec};

/// The fields an `archive` or `inactive` delete sets on top of the record's mapped data;
/// `None` for `hard_delete`.
pub fn policy_payload(spec: &ObjectSpec) -> Option<(String, Value)> {
    match &spec.delete {
        DeletePolicy::HardDelete => None,
        DeletePolicy::Archive { field } => Some((field.clone(), Value::Bool(true))),
        DeletePolicy::Inactive { field, value } => {
            Some((field.clone(), Value::String(value.clone())))
        }
    }
}

/// Applies the policy flag to a mapped delete payload.
pub fn apply_policy(spec: &ObjectSpec, payload: &mut Map<String, Value>) {
    if let Some((field, value)) = policy_payload(spec) {
        payload.insert(field, value);
    }
}

impl Sync<'_> {
    /// Deletes `records` of `object` one by one by external ID.
    pub(super) async fn hard_delete(
        &mut self,
        client: &mut super::client::SalesforceClient,
        object: &str,
        spec: &ObjectSpec,
        records: &[&SourceRecord],
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        for &record in records {
            let path = format!(
                "sobjects/{object}/{}/{}",
                spec.external_id,
                encode_query_value(&record.id)
            );
            let first = self.clock.now();
            let request = ApiRequest::Rest {
                method: Method::DELETE,
                path: &path,
                body: None,
            };
            let outcome = self
                .drive_request(client, object, fence, &request, 1, true)
                .await?;
            let gave_up = match outcome {
                Ok(_) => None,
                // Never synced, or deleted by someone else: the record is gone either way.
                Err(g) if g.failure.status == Some(404) || g.failure.code == "NOT_FOUND" => None,
                Err(g) => Some(g),
            };
            let Some(gave_up) = gave_up else {
                self.report.deleted += 1;
                self.remember_applied(object, &[record]).await?;
                continue;
            };
            let message = gave_up.message();
            self.dead_letter(
                object,
                Letter {
                    record,
                    payload: Value::Null,
                    class: gave_up.class(),
                    code: &gave_up.failure.code,
                    message: &message,
                    attempts: gave_up.attempts,
                    correlation_id: None,
                    first_failed: first,
                },
            );
        }
        Ok(())
    }
}
