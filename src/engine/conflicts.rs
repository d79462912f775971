//! Conflicts with edits made in Salesforce. Before records whose source change carries
//! `updated_at` are sent, the engine asks the org which records of the object someone else
//! modified since the oldest of those changes (one SOQL query per object and run, paged). A record someone other than the engine modified after the
//! source change keeps its Salesforce values: every field whose value differs is left out of
//! the write and reported as a [`Conflict`]. CRM-owned fields are never written at all.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::calls::ApiRequest;
use super::client::SalesforceClient;
use super::query_text::{encode_query_value, soql_datetime, soql_string};
use super::{EngineError, EventKind, Fence, Item, Sync};
use crate::contract::{FieldType, ObjectSpec};
use crate::sim::Timestamp;

/// A source value not written because Salesforce's value is newer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conflict {
    pub object: String,
    pub source_id: String,
    pub field: String,
    /// The value kept (Salesforce's).
    pub crm_value: Value,
    /// The value the source wanted.
    pub source_value: Value,
    /// When the record was last modified in Salesforce, and by whom.
    pub crm_modified_at: String,
    pub crm_modified_by: String,
    /// When the source made its change.
    pub source_changed_at: String,
}

/// Plain fields of `spec` a payload may carry (no external ID, no relationships).
fn comparable_fields<'s>(spec: &'s ObjectSpec, items: &[Item<'_>]) -> Vec<&'s str> {
    spec.fields
        .iter()
        .filter(|(name, f)| **name != spec.external_id && f.ty != FieldType::Reference)
        .filter(|(name, _)| items.iter().any(|i| i.payload.get(name.as_str()).is_some()))
        .map(|(name, _)| name.as_str())
        .collect()
}

/// Values equal as Salesforce stores them (numbers compared as numbers).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl Sync<'_> {
    /// Drops from `items` the field values Salesforce changed after the source did.
    pub(super) async fn resolve_conflicts(
        &mut self,
        client: &mut SalesforceClient,
        object: &str,
        spec: &ObjectSpec,
        items: &mut [Item<'_>],
        fence: Option<&dyn Fence>,
    ) -> Result<(), EngineError> {
        let checked: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].record.changed_at.is_some())
            .collect();
        if checked.is_empty() {
            return Ok(());
        }
        let fields = comparable_fields(spec, items);
        let Some(since) = checked
            .iter()
            .filter_map(|&i| items[i].record.changed_at)
            .min()
        else {
            return Ok(());
        };
        // One query per object, by time, not by ID: only records someone else modified after
        // the oldest source change here can conflict, and a backfill of records Salesforce
        // has never seen costs one call, not one per batch.
        let mut select = vec![
            "Id",
            spec.external_id.as_str(),
            "LastModifiedDate",
            "LastModifiedById",
        ];
        select.extend(fields.iter().copied());
        let mut filter = format!("LastModifiedDate > {}", soql_datetime(since));
        if let Some(me) = &client.user_id {
            filter.push_str(&format!(" AND LastModifiedById != {}", soql_string(me)));
        }
        let soql = format!("SELECT {} FROM {object} WHERE {filter}", select.join(", "));
        let mut path = format!("query?q={}", encode_query_value(&soql));
        let mut rows: Vec<Value> = Vec::new();
        loop {
            let request = ApiRequest::Rest {
                method: Method::GET,
                path: &path,
                body: None,
            };
            let page = match self
                .call_retrying(client, object, fence, &request, checked.len(), true)
                .await?
            {
                Ok(reply) => serde_json::from_str::<Value>(&reply.text).unwrap_or(Value::Null),
                Err(failure) => {
                    // Without the org's side the write goes ahead as the source says; the
                    // timeline shows the check that could not be made.
                    self.event(
                        object,
                        EventKind::Note {
                            message: format!(
                                "conflict check skipped for {} record(s): {}",
                                checked.len(),
                                failure.code
                            ),
                        },
                    );
                    return Ok(());
                }
            };
            rows.extend(
                page.get("records")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            // `nextRecordsUrl` is `/services/data/vNN.N/query/<locator>`: the client adds the prefix.
            match page
                .get("nextRecordsUrl")
                .and_then(Value::as_str)
                .and_then(|u| u.split_once("/query/"))
            {
                Some((_, locator)) => path = format!("query/{locator}"),
                None => break,
            }
        }
        let chunk = &checked;
        let by_ext: BTreeMap<&str, &Value> = rows
            .iter()
            .filter_map(|r| Some((r.get(&spec.external_id)?.as_str()?, r)))
            .collect();
        for &i in chunk {
            let item = &mut items[i];
            let Some(row) = by_ext.get(item.record.id.as_str()) else {
                continue;
            };
            let modified_by = row
                .get("LastModifiedById")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if client.user_id.as_deref() == Some(modified_by) {
                continue;
            }
            let Some(modified_at) = row
                .get("LastModifiedDate")
                .and_then(Value::as_str)
                .and_then(Timestamp::parse)
            else {
                continue;
            };
            let Some(changed_at) = item.record.changed_at else {
                continue;
            };
            if modified_at <= changed_at {
                continue;
            }
            let Some(payload) = item.payload.as_object_mut() else {
                continue;
            };
            for field in &fields {
                let (Some(want), Some(have)) = (payload.get(*field), row.get(*field)) else {
                    continue;
                };
                if same_value(want, have) {
                    continue;
                }
                let conflict = Conflict {
                    object: object.to_string(),
                    source_id: item.record.id.clone(),
                    field: field.to_string(),
                    crm_value: have.clone(),
                    source_value: want.clone(),
                    crm_modified_at: modified_at.to_iso(),
                    crm_modified_by: modified_by.to_string(),
                    source_changed_at: changed_at.to_iso(),
                };
                payload.remove(*field);
                self.report.conflicts.push(conflict);
                self.event(
                    object,
                    EventKind::Conflict {
                        source_id: item.record.id.clone(),
                        field: field.to_string(),
                    },
                );
            }
        }
        Ok(())
    }
}
