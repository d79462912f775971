//! Where CRM changes go once the consumer has them: the sink trait, an in-memory sink (the
//! gate and tests read it) and a JSON-lines outbox file (`sync --crm-outbox`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use super::CrmChange;

#[derive(Debug, thiserror::Error)]
#[error("failed to deliver CRM changes: {0}")]
pub struct SinkError(pub String);

/// Where CRM changes go. Once `apply` returns `Ok`, the changes are the sink's: the
/// consumer moves its replay ID past them.
#[async_trait]
pub trait CrmChangeSink: Send + Sync {
    async fn apply(&self, changes: &[CrmChange]) -> Result<(), SinkError>;
}

/// Keeps every delivered change in memory, in delivery order (the gate and tests read it).
#[derive(Debug, Default)]
pub struct MemorySink {
    delivered: Mutex<Vec<CrmChange>>,
    /// Calls to refuse before accepting again (to test redelivery).
    refuse: Mutex<u32>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every change accepted so far, in order.
    pub fn delivered(&self) -> Vec<CrmChange> {
        self.delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The value the source ends with per (object, source ID, field): the last one delivered.
    pub fn final_values(&self) -> BTreeMap<(String, String, String), Value> {
        final_values(&self.delivered())
    }

    /// Refuses the next `n` deliveries (as a source that is down would).
    pub fn refuse_next(&self, n: u32) {
        *self.refuse.lock().unwrap_or_else(|p| p.into_inner()) = n;
    }
}

/// The last value delivered per (object, source ID, field).
pub fn final_values(changes: &[CrmChange]) -> BTreeMap<(String, String, String), Value> {
    changes
        .iter()
        .map(|c| {
            (
                (c.object.clone(), c.source_id.clone(), c.field.clone()),
                c.value.clone(),
            )
        })
        .collect()
}

#[async_trait]
impl CrmChangeSink for MemorySink {
    async fn apply(&self, changes: &[CrmChange]) -> Result<(), SinkError> {
        {
            let mut refuse = self.refuse.lock().unwrap_or_else(|p| p.into_inner());
            if *refuse > 0 {
                *refuse -= 1;
                return Err(SinkError("the source refused the changes".into()));
            }
        }
        self.delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(changes);
        Ok(())
    }
}

/// Appends changes to a JSON-lines outbox file, one line per change (`object`,
/// `source_id`, `field`, `value`, `changed_at`, `replay_id`, …), for the source side to apply.
#[derive(Debug)]
pub struct JsonlOutbox {
    path: PathBuf,
}

impl JsonlOutbox {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlOutbox { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl CrmChangeSink for JsonlOutbox {
    async fn apply(&self, changes: &[CrmChange]) -> Result<(), SinkError> {
        if changes.is_empty() {
            return Ok(());
        }
        let fail = |e: std::io::Error| SinkError(format!("{}: {e}", self.path.display()));
        let mut text = String::new();
        for c in changes {
            let line = serde_json::to_string(c).map_err(|e| SinkError(e.to_string()))?;
            text.push_str(&line);
            text.push('\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(fail)?;
        // One write, then fsync: a change the consumer moves past must be on disk.
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_data().map_err(fail)?;
        Ok(())
    }
}
