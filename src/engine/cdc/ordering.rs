//! Sorting one poll's events: duplicates and the engine's own echoes dropped, field
//! changes staged with their versions, records behind gap events to read back, and
//! changes older than one already delivered left out.

use std::collections::HashSet;

use serde_json::Value;

use super::*;

impl CdcConsumer<'_> {
    /// Splits one poll's events into field changes, records to read back and objects to
    /// re-sync, dropping duplicates and echoes.
    pub(super) async fn sort(&mut self, events: &[ChangeEvent<'_>]) -> Result<Batch, CdcError> {
        let mut batch = Batch::default();
        let mut seen: HashSet<&str> = HashSet::new();
        let now = self.clock.now();
        let echo_tag = format!("client={}", self.config.client_name);
        for event in events {
            self.report.events_seen += 1;
            let uuid = event.uuid.as_str();
            if !uuid.is_empty() {
                let again =
                    !seen.insert(uuid) || self.dedupe.is_live(&self.dedupe_key(uuid), now).await?;
                if again {
                    self.report.duplicates_skipped += 1;
                    continue;
                }
            }
            batch.uuids.push(uuid.to_string());
            let header = &event.header;
            let object = header.entity_name();
            let ids = header.record_ids();
            let Some(spec) = self.bundle.object(object) else {
                continue;
            };
            // Whatever the event is, a value of the external ID it carries is a fact worth keeping.
            if let (Some(ext), [id]) = (
                event.field(&spec.external_id).and_then(|v| v.as_string()),
                ids,
            ) {
                self.external_ids
                    .insert((object.to_string(), id.as_str().to_string()), ext);
            }
            let origin = header.change_origin();
            if origin.split(';').any(|part| part.trim() == echo_tag) {
                self.report.echoes_skipped += 1;
                continue;
            }
            let crm: Vec<&String> = spec
                .fields
                .iter()
                .filter(|(_, f)| f.owner == Owner::Crm)
                .map(|(n, _)| n)
                .collect();
            if crm.is_empty() {
                continue;
            }
            let change_type = header.change_type();
            if change_type == "GAP_OVERFLOW" {
                batch.resync.insert(object.to_string());
                continue;
            }
            if change_type.starts_with("GAP_") {
                if change_type != "GAP_DELETE" {
                    batch
                        .reread
                        .entry(object.to_string())
                        .or_default()
                        .extend(ids.iter().map(|id| id.as_str().to_string()));
                }
                continue;
            }
            if change_type == "DELETE" {
                continue;
            }
            let named =
                |list: &[event::Text<'_>], field: &str| list.iter().any(|f| f.as_str() == field);
            let version = Version {
                at_ms: header.commit_timestamp.unwrap_or(0),
                commit: header.commit_number.unwrap_or(0),
                sequence: header.sequence_number.unwrap_or(0),
            };
            for field in crm {
                let value = if named(header.nulled_fields(), field) {
                    Value::Null
                } else if named(header.changed_fields(), field) {
                    event.field(field).map_or(Value::Null, |v| v.to_value())
                } else {
                    continue;
                };
                for id in ids {
                    batch.candidates.push(Candidate {
                        object: object.to_string(),
                        record_id: id.as_str().to_string(),
                        field: field.clone(),
                        value: value.clone(),
                        version,
                        replay_id: event.replay_id,
                        uuid: uuid.to_string(),
                    });
                }
            }
        }
        Ok(batch)
    }

    /// Gives each candidate its record's external ID, looking unknown ones up in batches.
    pub(super) async fn resolve(
        &mut self,
        candidates: Vec<Candidate>,
    ) -> Result<Vec<Staged>, CdcError> {
        let mut unknown: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for c in &candidates {
            if !self
                .external_ids
                .contains_key(&(c.object.clone(), c.record_id.clone()))
            {
                unknown
                    .entry(c.object.clone())
                    .or_default()
                    .insert(c.record_id.clone());
            }
        }
        for (object, ids) in unknown {
            let Some(ext_field) = self.bundle.object(&object).map(|s| s.external_id.clone()) else {
                continue;
            };
            let ids: Vec<String> = ids.into_iter().collect();
            for chunk in ids.chunks(IDS_PER_QUERY) {
                let list = soql_id_list(chunk);
                let soql = format!("SELECT Id, {ext_field} FROM {object} WHERE Id IN ({list})");
                for row in self.query(&object, &soql).await? {
                    if let (Some(id), Some(ext)) = (
                        row.get("Id").and_then(Value::as_str),
                        row.get(&ext_field).and_then(Value::as_str),
                    ) {
                        self.external_ids
                            .insert((object.clone(), id.to_string()), ext.to_string());
                    }
                }
            }
        }
        let mut out = Vec::new();
        for c in candidates {
            let Some(ext) = self
                .external_ids
                .get(&(c.object.clone(), c.record_id.clone()))
            else {
                self.report.unresolved += 1;
                continue;
            };
            out.push(Staged {
                version: c.version,
                change: CrmChange {
                    object: c.object,
                    source_id: ext.clone(),
                    record_id: c.record_id,
                    field: c.field,
                    value: c.value,
                    changed_at: Timestamp::from_millis(c.version.at_ms),
                    replay_id: Some(c.replay_id),
                    event_uuid: Some(c.uuid),
                    via: ChangeVia::Event,
                },
            });
        }
        Ok(out)
    }

    /// Drops changes older than one already delivered (or staged earlier in this batch)
    /// for the same record and field: reordered delivery must not roll a value back.
    pub(super) async fn fresh_only(
        &mut self,
        staged: Vec<Staged>,
    ) -> Result<Vec<Staged>, CdcError> {
        let mut newest: HashMap<FieldKey, Version> = HashMap::new();
        let mut out = Vec::new();
        for s in staged {
            let key = s.key();
            let known = match newest.get(&key) {
                Some(v) => Some(*v),
                None => self.watermark(&key).await?,
            };
            // Strictly older only: the same version twice is a redelivery, which is the
            // EventUuid dedupe's business.
            if known.is_some_and(|k| s.version < k) {
                self.report.stale_skipped += 1;
                continue;
            }
            newest.insert(key, s.version);
            out.push(s);
        }
        Ok(out)
    }
}
