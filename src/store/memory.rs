//! The in-memory store: one run's state, gone when the process ends.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::*;

#[derive(Debug, Default)]
struct Inner {
    versions: Vec<PublishedVersion>,
    environments: Vec<String>,
    deployments: Vec<Deployment>,
    verifications: Vec<Verification>,
    letters: Vec<StoredLetter>,
    next_letter: i64,
    dedupe: BTreeMap<String, Timestamp>,
    checkpoints: BTreeMap<String, String>,
}

/// State in memory, for tests and single gate runs.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl RegistryIndex for MemoryStore {
    async fn publish(&self, v: &PublishedVersion) -> StoreResult<PublishOutcome> {
        let mut s = self.lock();
        if let Some(existing) = s
            .versions
            .iter()
            .find(|e| e.partner == v.partner && e.tenant == v.tenant && e.version == v.version)
        {
            return if existing.hash == v.hash {
                Ok(PublishOutcome::Unchanged)
            } else {
                Err(StoreError::Conflict(format!(
                    "{}/{} {} is already published with {} (this content is {})",
                    v.partner, v.tenant, v.version, existing.hash, v.hash
                )))
            };
        }
        s.versions.push(v.clone());
        Ok(PublishOutcome::Created)
    }

    async fn versions(
        &self,
        partner: &str,
        tenant: Option<&str>,
    ) -> StoreResult<Vec<PublishedVersion>> {
        Ok(self
            .lock()
            .versions
            .iter()
            .filter(|v| v.partner == partner && tenant.is_none_or(|t| t == v.tenant))
            .cloned()
            .collect())
    }

    async fn version(
        &self,
        partner: &str,
        tenant: &str,
        version: &str,
    ) -> StoreResult<Option<PublishedVersion>> {
        Ok(self
            .lock()
            .versions
            .iter()
            .find(|v| v.partner == partner && v.tenant == tenant && v.version == version)
            .cloned())
    }

    async fn add_environment(&self, name: &str) -> StoreResult<()> {
        let mut s = self.lock();
        if !s.environments.iter().any(|e| e == name) {
            s.environments.push(name.to_string());
        }
        Ok(())
    }

    async fn environments(&self) -> StoreResult<Vec<String>> {
        Ok(self.lock().environments.clone())
    }

    async fn record_deployment(&self, d: &Deployment) -> StoreResult<()> {
        let mut s = self.lock();
        if !s.environments.contains(&d.environment) {
            s.environments.push(d.environment.clone());
        }
        for prev in s.deployments.iter_mut() {
            if prev.partner == d.partner
                && prev.tenant == d.tenant
                && prev.environment == d.environment
                && prev.undeployed_at.is_none()
            {
                prev.undeployed_at = Some(d.deployed_at);
            }
        }
        s.deployments.push(d.clone());
        Ok(())
    }

    async fn deployments(
        &self,
        partner: &str,
        tenant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<Deployment>> {
        Ok(self
            .lock()
            .deployments
            .iter()
            .filter(|d| {
                d.partner == partner
                    && tenant.is_none_or(|t| t == d.tenant)
                    && environment.is_none_or(|e| e == d.environment)
            })
            .cloned()
            .collect())
    }

    async fn record_verification(&self, v: &Verification) -> StoreResult<()> {
        self.lock().verifications.push(v.clone());
        Ok(())
    }

    async fn partners(&self) -> StoreResult<Vec<String>> {
        let mut out: Vec<String> = self
            .lock()
            .versions
            .iter()
            .map(|v| v.partner.clone())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn verifications(&self, partner: &str, tenant: &str) -> StoreResult<Vec<Verification>> {
        Ok(self
            .lock()
            .verifications
            .iter()
            .filter(|v| v.partner == partner && v.tenant == tenant)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl DeadLetterStore for MemoryStore {
    async fn dlq_append(&self, letter: &DeadLetter) -> StoreResult<i64> {
        let mut s = self.lock();
        let same = |l: &StoredLetter| {
            l.letter.tenant == letter.tenant
                && l.letter.object == letter.object
                && l.letter.source_id == letter.source_id
        };
        if let Some(existing) = s.letters.iter_mut().find(|l| same(l)) {
            let previous = std::mem::replace(&mut existing.letter, letter.clone());
            existing.history.push(previous);
            return Ok(existing.id);
        }
        s.next_letter += 1;
        let id = s.next_letter;
        s.letters.push(StoredLetter {
            id,
            letter: letter.clone(),
            history: Vec::new(),
        });
        Ok(id)
    }

    async fn dlq_list(&self, filter: &DlqFilter) -> StoreResult<Vec<StoredLetter>> {
        Ok(self
            .lock()
            .letters
            .iter()
            .filter(|l| filter.matches(&l.letter))
            .cloned()
            .collect())
    }

    async fn dlq_take(&self, id: i64) -> StoreResult<Option<StoredLetter>> {
        let mut s = self.lock();
        Ok(s.letters
            .iter()
            .position(|l| l.id == id)
            .map(|i| s.letters.remove(i)))
    }
}

#[async_trait]
impl DedupeStore for MemoryStore {
    async fn check_and_set(&self, key: &str, now: Timestamp, ttl: Duration) -> StoreResult<bool> {
        let mut s = self.lock();
        match s.dedupe.get(key) {
            Some(expires) if *expires > now => Ok(false),
            _ => {
                s.dedupe.insert(key.to_string(), now.plus(ttl));
                Ok(true)
            }
        }
    }
}

#[async_trait]
impl CheckpointStore for MemoryStore {
    async fn checkpoint(&self, scope: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().checkpoints.get(scope).cloned())
    }

    async fn set_checkpoint(&self, scope: &str, value: &str) -> StoreResult<()> {
        self.lock()
            .checkpoints
            .insert(scope.to_string(), value.to_string());
        Ok(())
    }
}
