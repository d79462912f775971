//! Engine workers: several processes syncing one tenant, splitting its records into leased
//! batches and sharing one limiter, so that none is applied twice or lost when a worker dies.
//!
//! [`plan`] queues the tenant's source as work items (one per batch, parents' stage first);
//! each [`Worker`] claims a batch, sends it through the engine's own batch code with a
//! [`Fence`] that renews the lease before every request, completes it, and claims the next.
//! A worker that dies stops renewing; its lease expires and another worker claims it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::source::{SourceRecord, SourceSet};
use super::{EngineConfig, EngineError, Fence, Sync, SyncReport, Target};
use crate::contract::Bundle;
use crate::sim::{Clock, Seed};
use crate::store::limiter::{LimitPolicy, Limiter};
use crate::store::{DeadLetterStore, Lease, LeaseStore, StoreError, WorkItem};

/// What one work item asks for: these source records of this object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOrder {
    pub object: String,
    pub source_ids: Vec<String>,
}

/// Queues the latest source records of every object of `bundle` as batches of
/// `batch_size`, one stage per object, parents first. Planning again queues nothing new
/// (keys are object and batch number). Returns how many items were new.
pub async fn plan(
    leases: &dyn LeaseStore,
    bundle: &Bundle,
    source: &SourceSet,
    batch_size: usize,
) -> Result<usize, EngineError> {
    let mut items = Vec::new();
    for (stage, (object, spec)) in bundle.objects_parent_first().into_iter().enumerate() {
        let records = source.latest(&spec.source);
        for (n, chunk) in records.chunks(batch_size.clamp(1, 200)).enumerate() {
            let order = BatchOrder {
                object: object.to_string(),
                source_ids: chunk.iter().map(|r| r.id.clone()).collect(),
            };
            items.push(WorkItem {
                key: format!("{object}#{n:06}"),
                stage: i32::try_from(stage).unwrap_or(i32::MAX),
                payload: serde_json::to_string(&order)
                    .map_err(|e| EngineError::Work(e.to_string()))?,
            });
        }
    }
    Ok(leases.lease_enqueue(&tenant_of(bundle), &items).await?)
}

fn tenant_of(bundle: &Bundle) -> String {
    format!("{}/{}", bundle.partner, bundle.tenant)
}

/// How a worker claims and holds work.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Names this worker in leases (unique among the tenant's workers).
    pub id: String,
    /// A lease not renewed for this long can be claimed by another worker.
    pub lease_ttl: Duration,
    /// How long to wait before claiming again when nothing is free but work is open.
    pub idle_poll: Duration,
    /// Batches claimed at once.
    pub claim: usize,
}

impl WorkerConfig {
    pub fn new(id: impl Into<String>) -> Self {
        WorkerConfig {
            id: id.into(),
            lease_ttl: Duration::from_secs(60),
            idle_poll: Duration::from_millis(200),
            claim: 1,
        }
    }
}

/// What one worker did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerReport {
    pub worker: String,
    /// Batches this worker sent and completed.
    pub completed: Vec<String>,
    /// Batches it gave up because another worker took the lease over.
    pub lost: Vec<String>,
    pub sync: SyncReport,
}

/// One engine worker of a tenant.
pub struct Worker {
    pub bundle: Arc<Bundle>,
    pub source: Arc<SourceSet>,
    pub leases: Arc<dyn LeaseStore>,
    pub dlq: Arc<dyn DeadLetterStore>,
    pub limiter: Option<(Arc<dyn Limiter>, LimitPolicy)>,
    pub target: Target,
    pub engine: EngineConfig,
    pub clock: Clock,
    pub seed: Seed,
    pub config: WorkerConfig,
}

/// A lease held while its batch is sent: renewed before every request.
struct LeaseFence<'a> {
    leases: &'a dyn LeaseStore,
    lease: Lease,
    clock: &'a Clock,
    ttl: Duration,
}

#[async_trait]
impl Fence for LeaseFence<'_> {
    async fn still_ours(&self) -> Result<(), EngineError> {
        match self
            .leases
            .lease_renew(&self.lease, self.clock.now(), self.ttl)
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(m)) => Err(EngineError::Fenced(m)),
            Err(e) => Err(e.into()),
        }
    }
}

impl Worker {
    /// Claims and sends batches until the tenant has no open work left.
    pub async fn run(self) -> Result<WorkerReport, EngineError> {
        let tenant = tenant_of(&self.bundle);
        let mut sync = Sync::new(
            &self.bundle,
            self.engine.clone(),
            self.clock.clone(),
            self.seed,
            &*self.dlq,
        );
        if let Some((limiter, policy)) = &self.limiter {
            sync = sync.with_limiter(limiter.clone(), policy.clone());
        }
        let mut client = sync.connect(&self.target).await?;
        let mut report = WorkerReport {
            worker: self.config.id.clone(),
            ..WorkerReport::default()
        };
        loop {
            let claimed = self
                .leases
                .lease_claim(
                    &tenant,
                    &self.config.id,
                    self.config.claim.max(1),
                    self.clock.now(),
                    self.config.lease_ttl,
                )
                .await?;
            if claimed.is_empty() {
                if self.leases.lease_open(&tenant).await? == 0 {
                    break;
                }
                // Others hold the rest; one of them may die, so look again later.
                let next = self.clock.now().plus(self.config.idle_poll);
                self.clock.poll_until(next).await;
                continue;
            }
            for lease in claimed {
                let order: BatchOrder = serde_json::from_str(&lease.payload)
                    .map_err(|e| EngineError::Work(format!("{}: {e}", lease.key)))?;
                let records = self.records(&order)?;
                let fence = LeaseFence {
                    leases: &*self.leases,
                    lease: lease.clone(),
                    clock: &self.clock,
                    ttl: self.config.lease_ttl,
                };
                match sync
                    .send_records(&mut client, &order.object, &records, Some(&fence))
                    .await
                {
                    Ok(()) => match self.leases.lease_complete(&lease).await {
                        Ok(()) => report.completed.push(lease.key),
                        // Sent, but another worker took it over meanwhile; upserts by
                        // external ID make its second send an update, never a duplicate.
                        Err(StoreError::Conflict(_)) => report.lost.push(lease.key),
                        Err(e) => return Err(e.into()),
                    },
                    Err(EngineError::Fenced(_)) => report.lost.push(lease.key),
                    Err(e) => return Err(e),
                }
            }
        }
        report.sync = sync.finish(&client);
        Ok(report)
    }

    /// The source records a batch names, in its order.
    fn records(&self, order: &BatchOrder) -> Result<Vec<&SourceRecord>, EngineError> {
        let spec = self.bundle.object(&order.object).ok_or_else(|| {
            EngineError::Work(format!("no object {} in the bundle", order.object))
        })?;
        let latest = self.source.latest(&spec.source);
        order
            .source_ids
            .iter()
            .map(|id| {
                latest.iter().copied().find(|r| &r.id == id).ok_or_else(|| {
                    EngineError::Work(format!(
                        "source record {id} of {} is not in this worker's source",
                        spec.source
                    ))
                })
            })
            .collect()
    }
}
