//! Durable state behind one trait. This build keeps dead letters in memory for the gate
//! (each scenario run starts empty); the SQLite and PostgreSQL stores come with the
//! registry index and checkpoints.

use std::sync::Mutex;

use crate::engine::dlq::DeadLetter;

/// Where the engine puts records it could not deliver.
pub trait DeadLetterStore: Send + Sync {
    fn append(&self, letter: DeadLetter);
    /// Every dead letter of `tenant`, in the order they were added.
    fn list(&self, tenant: &str) -> Vec<DeadLetter>;
}

/// Dead letters in memory, for one run.
#[derive(Debug, Default)]
pub struct MemoryStore {
    letters: Mutex<Vec<DeadLetter>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl DeadLetterStore for MemoryStore {
    fn append(&self, letter: DeadLetter) {
        self.letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(letter);
    }

    fn list(&self, tenant: &str) -> Vec<DeadLetter> {
        self.letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|l| l.tenant == tenant)
            .cloned()
            .collect()
    }
}
