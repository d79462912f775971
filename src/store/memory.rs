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
    /// The newest applied version of each record.
    applied: BTreeMap<RecordKey, u64>,
    checkpoints: BTreeMap<String, String>,
    work: Vec<MemWork>,
}

#[derive(Debug)]
struct MemWork {
    id: i64,
    tenant: String,
    item: WorkItem,
    worker: Option<String>,
    token: i64,
    expires_at: Option<Timestamp>,
    done: bool,
}

impl MemWork {
    fn held_by(&self, lease: &Lease) -> bool {
        !self.done
            && self.id == lease.id
            && self.token == lease.token
            && self.worker.as_deref() == Some(lease.worker.as_str())
    }
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
                Err(version_conflict(v, &existing.hash))
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

/// A record's identity across the dedupe and dead-letter maps: tenant, object, source ID.
type RecordKey = (String, String, String);

fn record_key(tenant: &str, object: &str, source_id: &str) -> RecordKey {
    (
        tenant.to_string(),
        object.to_string(),
        source_id.to_string(),
    )
}

impl Inner {
    fn supersede(&mut self, tenant: &str, object: &str, source_id: &str, applied: u64) -> bool {
        let Some(l) = self.letters.iter_mut().find(|l| {
            l.letter.tenant == tenant
                && l.letter.object == object
                && l.letter.source_id == source_id
        }) else {
            return false;
        };
        if l.status == LetterStatus::Queued && overtaken(l.letter.source_version, Some(applied)) {
            l.status = LetterStatus::Superseded;
            l.superseded_by = Some(applied);
            return true;
        }
        false
    }

    /// Whether `key` is set and not expired at `now`.
    fn is_live(&self, key: &str, now: Timestamp) -> bool {
        self.dedupe.get(key).is_some_and(|expires| *expires > now)
    }

    /// Sets `key` if it is absent or expired; false if it is live.
    fn set_key(&mut self, key: &str, now: Timestamp, ttl: Duration) -> bool {
        if self.is_live(key, now) {
            return false;
        }
        self.dedupe.insert(key.to_string(), now.plus(ttl));
        true
    }

    /// [`DedupeStore::mark_applied`] under the lock already held.
    fn mark_applied(&mut self, a: &AppliedVersion<'_>, now: Timestamp, ttl: Duration) -> bool {
        let set = self.set_key(a.key, now, ttl);
        let newest = self
            .applied
            .entry(record_key(a.tenant, a.object, a.source_id))
            .or_insert(a.version);
        *newest = (*newest).max(a.version);
        let newest = *newest;
        self.supersede(a.tenant, a.object, a.source_id, newest);
        set
    }
}

impl MemoryStore {
    /// Queues one letter (the trait's batch is these one after another).
    fn append_letter(&self, letter: &DeadLetter) -> StoreResult<i64> {
        let mut s = self.lock();
        let applied = s
            .applied
            .get(&record_key(
                &letter.tenant,
                &letter.object,
                &letter.source_id,
            ))
            .copied();
        let (status, superseded_by) = status_on_append(letter.source_version, applied);
        let same = |l: &StoredLetter| {
            l.letter.tenant == letter.tenant
                && l.letter.object == letter.object
                && l.letter.source_id == letter.source_id
        };
        if let Some(existing) = s.letters.iter_mut().find(|l| same(l)) {
            let previous = std::mem::replace(&mut existing.letter, letter.clone());
            existing.history.push(previous);
            existing.status = status;
            existing.superseded_by = superseded_by;
            return Ok(existing.id);
        }
        s.next_letter += 1;
        let id = s.next_letter;
        s.letters.push(StoredLetter {
            id,
            letter: letter.clone(),
            history: Vec::new(),
            status,
            superseded_by,
        });
        Ok(id)
    }
}

#[async_trait]
impl DeadLetterStore for MemoryStore {
    async fn dlq_append_all(&self, letters: &[DeadLetter]) -> StoreResult<Vec<i64>> {
        letters.iter().map(|l| self.append_letter(l)).collect()
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

    async fn dlq_supersede(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
        applied: u64,
    ) -> StoreResult<bool> {
        Ok(self.lock().supersede(tenant, object, source_id, applied))
    }
}

#[async_trait]
impl DedupeStore for MemoryStore {
    async fn check_and_set(&self, key: &str, now: Timestamp, ttl: Duration) -> StoreResult<bool> {
        Ok(self.lock().set_key(key, now, ttl))
    }

    async fn is_live(&self, key: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(self.lock().is_live(key, now))
    }

    async fn mark_applied_all(
        &self,
        applied: &[AppliedVersion<'_>],
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<bool>> {
        // One lock for the batch: no other caller sees half of it.
        let mut s = self.lock();
        Ok(applied
            .iter()
            .map(|a| s.mark_applied(a, now, ttl))
            .collect())
    }

    async fn applied_version(
        &self,
        tenant: &str,
        object: &str,
        source_id: &str,
    ) -> StoreResult<Option<u64>> {
        Ok(self
            .lock()
            .applied
            .get(&record_key(tenant, object, source_id))
            .copied())
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

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn lease_enqueue(&self, tenant: &str, items: &[WorkItem]) -> StoreResult<usize> {
        let mut s = self.lock();
        let mut added = 0;
        for item in items {
            if s.work
                .iter()
                .any(|w| w.tenant == tenant && w.item.key == item.key)
            {
                continue;
            }
            let id = s.work.len() as i64 + 1;
            s.work.push(MemWork {
                id,
                tenant: tenant.to_string(),
                item: item.clone(),
                worker: None,
                token: 0,
                expires_at: None,
                done: false,
            });
            added += 1;
        }
        Ok(added)
    }

    async fn lease_claim(
        &self,
        tenant: &str,
        worker: &str,
        max: usize,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Vec<Lease>> {
        let mut s = self.lock();
        let Some(stage) = s
            .work
            .iter()
            .filter(|w| w.tenant == tenant && !w.done)
            .map(|w| w.item.stage)
            .min()
        else {
            return Ok(Vec::new());
        };
        let expires_at = now.plus(ttl);
        let mut out = Vec::new();
        for w in s.work.iter_mut() {
            if out.len() >= max {
                break;
            }
            let free = w.worker.is_none() || w.expires_at.is_some_and(|e| e <= now);
            if w.tenant != tenant || w.done || w.item.stage != stage || !free {
                continue;
            }
            w.worker = Some(worker.to_string());
            w.token += 1;
            w.expires_at = Some(expires_at);
            out.push(Lease {
                id: w.id,
                tenant: tenant.to_string(),
                key: w.item.key.clone(),
                stage: w.item.stage,
                payload: w.item.payload.clone(),
                worker: worker.to_string(),
                token: w.token,
                expires_at,
            });
        }
        Ok(out)
    }

    async fn lease_renew(
        &self,
        lease: &Lease,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<Timestamp> {
        let mut s = self.lock();
        match s.work.iter_mut().find(|w| w.held_by(lease)) {
            Some(w) => {
                let until = now.plus(ttl);
                w.expires_at = Some(until);
                Ok(until)
            }
            None => Err(lost_lease(lease)),
        }
    }

    async fn lease_complete(&self, lease: &Lease) -> StoreResult<()> {
        let mut s = self.lock();
        match s.work.iter_mut().find(|w| w.held_by(lease)) {
            Some(w) => {
                w.done = true;
                Ok(())
            }
            None => Err(lost_lease(lease)),
        }
    }

    async fn lease_open(&self, tenant: &str) -> StoreResult<usize> {
        Ok(self
            .lock()
            .work
            .iter()
            .filter(|w| w.tenant == tenant && !w.done)
            .count())
    }
}
