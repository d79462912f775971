//! Shared work: several `syncgate sync` processes (or workers in one process) on one tenant
//! split each page of changes into leased units of work, so that none is applied twice or
//! lost when one of them dies.
//!
//! Every process reads the same page (the same stored cursor) and plans it the same way:
//! one unit per batch (a Bulk job is one unit), keyed by lane, object and batch number,
//! under a scope named after the page's content. Planning again queues nothing new. Each
//! process claims a unit, sends it through the engine's own code ([`Sync::send_in_lane`],
//! the same path a single process takes) with a fence that renews the lease before every
//! request, completes it, and claims the next. When the page has no open unit left, the
//! process commits the page's cursor and reads on. A process that dies stops renewing; its
//! lease expires and another process claims the unit. Budget and concurrency are shared
//! through the limiter (`--redis-url`), dedupe keys and dead letters through the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::client::SalesforceClient;
use super::lanes::Lane;
use super::runner::Stop;
use super::source::{SourceRecord, SourceSet};
use super::{EngineError, Fence, Sync};
use crate::contract::Bundle;
use crate::sim::Clock;
use crate::store::{Lease, LeaseStore, StoreError, WorkItem};

/// How this process claims and holds work.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Names this process in leases (unique among the tenant's processes).
    pub id: String,
    /// A lease not renewed for this long can be claimed by another process.
    pub lease_ttl: Duration,
    /// How long to wait before claiming again when nothing is free but work is open.
    pub idle_poll: Duration,
    /// Units claimed at once.
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

/// The tenant's work is shared with other processes through `leases`.
#[derive(Clone)]
pub struct SharedWork {
    pub leases: Arc<dyn LeaseStore>,
    pub worker: WorkerConfig,
}

/// What one unit of work asks for: these source records of this object, in this lane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOrder {
    /// [`Lane::label`].
    pub lane: String,
    pub object: String,
    pub source_ids: Vec<String>,
}

/// The units this process completed, and those it gave up because another took them over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SharedReport {
    pub completed: Vec<String>,
    pub lost: Vec<String>,
}

/// The lease scope of a page: the tenant and a digest of the record versions it holds, so
/// every process that read the same page plans into the same scope.
pub fn scope(bundle: &Bundle, page: &SourceSet) -> String {
    let mut lines: Vec<String> = page
        .entities
        .iter()
        .flat_map(|(entity, records)| {
            records
                .iter()
                .map(move |r| format!("{entity}\t{}\t{}\t{}\n", r.id, r.version, r.deleted))
        })
        .collect();
    lines.sort_unstable();
    let mut digest = Sha256::new();
    for l in &lines {
        digest.update(l.as_bytes());
    }
    let hex = hex::encode(digest.finalize());
    format!("{}/{}@{}", bundle.partner, bundle.tenant, &hex[..16])
}

/// The units of a page's lane plan as `engine` would send them: one per batch of
/// `batch_size`, or one per object for a Bulk job; stages in sending order (real-time lane
/// first, parents first).
///
/// Lanes depend on the clock (a record changed within the real-time window): two processes
/// planning the same page across the window's edge may plan one record in both lanes; the
/// second send is then skipped by its idempotency key or lands as the same update.
fn units(engine: &Sync<'_>, lanes: &[LanePlan<'_>], batch_size: usize) -> Vec<WorkItem> {
    let mut items = Vec::new();
    for (stage, (lane, object, records)) in lanes.iter().enumerate() {
        let lane = *lane;
        let size = if engine.uses_bulk(lane, records.len()) {
            records.len()
        } else {
            batch_size.clamp(1, 200)
        };
        for (n, chunk) in records.chunks(size).enumerate() {
            let order = BatchOrder {
                lane: lane.label().to_string(),
                object: object.clone(),
                source_ids: chunk.iter().map(|r| r.id.clone()).collect(),
            };
            items.push(WorkItem {
                key: format!("{stage:03}-{}-{object}#{n:06}", lane.label()),
                stage: i32::try_from(stage).unwrap_or(i32::MAX),
                // A struct of strings always serializes.
                payload: serde_json::to_string(&order).unwrap_or_default(),
            });
        }
    }
    items
}

/// Queues `page`'s units under its scope; returns the scope and how many units were new
/// (0 when another process planned the page first).
pub async fn plan(
    leases: &dyn LeaseStore,
    engine: &Sync<'_>,
    page: &SourceSet,
    batch_size: usize,
) -> Result<(String, usize), EngineError> {
    enqueue(leases, engine, page, &engine.lane_plan(page), batch_size).await
}

/// One step of a lane plan: the lane, the object and its records.
type LanePlan<'s> = (Lane, String, Vec<&'s SourceRecord>);

async fn enqueue(
    leases: &dyn LeaseStore,
    engine: &Sync<'_>,
    page: &SourceSet,
    lanes: &[LanePlan<'_>],
    batch_size: usize,
) -> Result<(String, usize), EngineError> {
    let scope = scope(engine.bundle, page);
    let added = leases
        .lease_enqueue(&scope, &units(engine, lanes, batch_size))
        .await?;
    Ok((scope, added))
}

/// A lease held while its unit is sent: renewed before every request; refused once another
/// process took it over, or once a stop was asked for.
struct LeaseFence<'a> {
    leases: &'a dyn LeaseStore,
    lease: Lease,
    clock: &'a Clock,
    ttl: Duration,
    stop: &'a Stop,
}

#[async_trait]
impl Fence for LeaseFence<'_> {
    async fn still_ours(&self) -> Result<(), EngineError> {
        if self.stop.requested() {
            return Err(EngineError::Fenced("a stop was requested".into()));
        }
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

/// Sends `page` with the other processes of the tenant: plans it, then claims and sends
/// units until none is open. `Ok(false)` when a stop cut it short (the page stays
/// uncommitted; the units this process held are claimed by others once their leases expire).
pub async fn run_page(
    shared: &SharedWork,
    engine: &mut Sync<'_>,
    client: &mut SalesforceClient,
    page: &SourceSet,
    stop: &Stop,
    report: &mut SharedReport,
) -> Result<bool, EngineError> {
    let batch_size = engine.config.batch_size;
    // One lane plan: the units queued and the records they name come from the same one.
    let lanes = engine.lane_plan(page);
    let (scope, _) = enqueue(&*shared.leases, engine, page, &lanes, batch_size).await?;
    let clock = engine.clock.clone();
    let by_id: HashMap<(String, &str), &SourceRecord> = lanes
        .into_iter()
        .flat_map(|(_, object, records)| {
            records
                .into_iter()
                .map(move |r| ((object.clone(), r.id.as_str()), r))
        })
        .collect();
    let me = &shared.worker;
    loop {
        if stop.requested() {
            return Ok(false);
        }
        let claimed = shared
            .leases
            .lease_claim(&scope, &me.id, me.claim.max(1), clock.now(), me.lease_ttl)
            .await?;
        if claimed.is_empty() {
            if shared.leases.lease_open(&scope).await? == 0 {
                return Ok(true);
            }
            // Others hold the rest; one of them may die, so look again later. Time spent
            // waiting for others (who may wait for the next daily window) is not this
            // run's: the deadline does not count it.
            let before = clock.now();
            tokio::select! {
                _ = clock.poll_until(clock.now().plus(me.idle_poll)) => {}
                _ = stop.requested_now() => {}
            }
            engine.bounds.excuse(clock.now().since(before));
            continue;
        }
        for lease in claimed {
            let order: BatchOrder = serde_json::from_str(&lease.payload)
                .map_err(|e| EngineError::Work(format!("{}: {e}", lease.key)))?;
            let lane = Lane::from_label(&order.lane).ok_or_else(|| {
                EngineError::Work(format!("{}: unknown lane {}", lease.key, order.lane))
            })?;
            let records = order
                .source_ids
                .iter()
                .map(|id| {
                    by_id
                        .get(&(order.object.clone(), id.as_str()))
                        .copied()
                        .ok_or_else(|| {
                            EngineError::Work(format!(
                                "{}: source record {id} of {} is not in this page",
                                lease.key, order.object
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let fence = LeaseFence {
                leases: &*shared.leases,
                lease: lease.clone(),
                clock: &clock,
                ttl: me.lease_ttl,
                stop,
            };
            match engine
                .send_in_lane(lane, client, &order.object, &records, Some(&fence))
                .await
            {
                Ok(()) => match shared.leases.lease_complete(&lease).await {
                    Ok(()) => report.completed.push(lease.key),
                    // Sent, but another process took it over meanwhile; upserts by external
                    // ID make its second send an update, never a duplicate.
                    Err(StoreError::Conflict(_)) => report.lost.push(lease.key),
                    Err(e) => return Err(e.into()),
                },
                Err(EngineError::Fenced(_)) if stop.requested() => return Ok(false),
                Err(EngineError::Fenced(_)) => report.lost.push(lease.key),
                Err(e) => return Err(e),
            }
        }
    }
}
