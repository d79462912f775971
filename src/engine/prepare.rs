//! Record preparation, before anything is sent: versions already applied or already
//! rejected for good are skipped (their keys are live in the dedupe store); each record is
//! mapped to the object's fields (a value that does not coerce is dead-lettered with the
//! `JSON_PARSER_ERROR` Salesforce would answer); deletes
//! follow the object's policy; and a payload the contract itself rejects is dead-lettered
//! without spending an API call.

use serde_json::Value;

use super::deletes;
use super::dlq::ErrorClass;
use super::letters::Letter;
use super::mapping::map_record;
use super::source::SourceRecord;
use super::{EngineError, EventKind, Item, Sync};
use crate::contract::json_value::PARSER_ERROR as JSON_PARSER_ERROR;
use crate::contract::rules::{check_write, RegexRules, WriteKind};
use crate::contract::ObjectSpec;

/// What a lane sends of one object: upserts (mapped and checked) and hard deletes.
pub(super) struct Prepared<'s> {
    pub items: Vec<Item<'s>>,
    pub hard_deletes: Vec<&'s SourceRecord>,
}

impl Sync<'_> {
    /// Prepares `records` of `object` for sending (see the module's doc).
    pub(super) async fn prepare<'s>(
        &mut self,
        object: &str,
        spec: &ObjectSpec,
        records: &[&'s SourceRecord],
    ) -> Result<Prepared<'s>, EngineError> {
        let mut items = Vec::new();
        let mut hard_deletes = Vec::new();
        let regex_rules = RegexRules::compile(spec);
        for &record in records {
            self.report.records += 1;
            if let Some((store, _)) = self.dedupe {
                let now = self.clock.now();
                if store
                    .is_live(&self.idempotency_key(object, record), now)
                    .await?
                {
                    self.report.already_synced += 1;
                    continue;
                }
                // Salesforce (or the contract) already said no to this very version: sending
                // it again spends a call for the same answer. It waits in the DLQ for a redrive.
                if store
                    .is_live(&self.rejection_key(object, record), now)
                    .await?
                {
                    self.report.already_dead_lettered += 1;
                    continue;
                }
            }
            let deleted = record.deleted;
            if deleted && deletes::policy_payload(spec).is_none() {
                self.event(
                    object,
                    EventKind::Delete {
                        source_id: record.id.clone(),
                        policy: spec.delete.label().into(),
                    },
                );
                hard_deletes.push(record);
                continue;
            }
            let parent_ext =
                |parent: &str| self.bundle.object(parent).map(|o| o.external_id.clone());
            let mut mapped = match map_record(spec, record, parent_ext) {
                Ok(mapped) => mapped,
                Err(e) => {
                    let message = e.to_string();
                    self.dead_letter(
                        object,
                        Letter {
                            record,
                            payload: Value::Null,
                            class: ErrorClass::Mapping,
                            // What Salesforce's JSON reader answers the value sent as it is.
                            code: JSON_PARSER_ERROR,
                            message: &message,
                            attempts: 0,
                            correlation_id: None,
                            first_failed: self.clock.now(),
                        },
                    );
                    continue;
                }
            };
            if deleted {
                deletes::apply_policy(spec, &mut mapped.payload);
                self.event(
                    object,
                    EventKind::Delete {
                        source_id: record.id.clone(),
                        policy: spec.delete.label().into(),
                    },
                );
            }
            if !mapped.unmapped.is_empty() {
                self.report
                    .unmapped_columns
                    .entry(spec.source.clone())
                    .or_default()
                    .extend(mapped.unmapped);
            }
            if !mapped.routed.is_empty() {
                self.report
                    .routed_columns
                    .entry(spec.source.clone())
                    .or_default()
                    .extend(mapped.routed);
            }
            // A record the contract itself rejects would only spend an API call to be
            // rejected by Salesforce: it goes to the dead-letter queue now. Checked as an
            // update (a required field the source leaves out may already be set in the org).
            let verdict = check_write(object, spec, &mapped.payload, WriteKind::Update)
                .and_then(|()| regex_rules.check(&mapped.payload));
            if let Err(e) = verdict {
                self.report.rejected_before_sending += 1;
                self.dead_letter(
                    object,
                    Letter {
                        record,
                        payload: Value::Object(mapped.payload),
                        class: ErrorClass::Invalid,
                        code: &e.code,
                        message: &e.message,
                        attempts: 0,
                        correlation_id: None,
                        first_failed: self.clock.now(),
                    },
                );
                continue;
            }
            items.push(Item {
                record,
                payload: Value::Object(mapped.payload),
            });
        }
        Ok(Prepared {
            items,
            hard_deletes,
        })
    }
}
