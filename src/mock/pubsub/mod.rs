//! Salesforce's Pub/Sub API on the mock org (gRPC, `eventbus.v1.PubSub` from
//! `proto/pubsub_api.proto`), served on the same listener as the REST API: gRPC is HTTP/2
//! with `content-type: application/grpc`, and the mock's server speaks HTTP/1.1 and HTTP/2.
//!
//! - `Subscribe`: a pull subscription to `/data/ChangeEvents` or `/data/<Object>ChangeEvent`
//!   from LATEST, EARLIEST or a replay ID (CUSTOM), with flow control by `num_requested`
//!   (at most 100 outstanding). Events come from the org's change-event log (`super::events`)
//!   in delivery order, so the scenario's event faults show here too. A subscriber that has
//!   everything gets an empty batch (a keepalive) at once, carrying the replay ID to resume
//!   from; a real org sends one within 270 seconds.
//! - `GetTopic` and `GetSchema`: topics and the Avro schemas (`avro`) events are written with.
//!
//! Every call carries the session in metadata (`accesstoken`, `instanceurl`, `tenantid`), as
//! on a real org; errors are gRPC statuses with Salesforce's code in the `error-code` trailer.
//! Replay IDs are 8 bytes, the event's position on the bus (big-endian): clients treat them as
//! opaque.

mod avro;

/// The Pub/Sub API's messages, and its server, generated from `proto/pubsub_api.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("eventbus.v1");
}

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use serde_json::Value;
use tokio::sync::mpsc;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status, Streaming};

use self::avro::{event_name, Schemas};
use self::proto::pub_sub_server::{PubSub, PubSubServer};
use self::proto::{
    ConsumerEvent, FetchRequest, FetchResponse, ProducerEvent, ReplayPreset, SchemaInfo,
    SchemaRequest, TopicInfo, TopicRequest,
};
use super::org::ORG_ID;
use super::{events, MockOrg};

/// The topic carrying every object's change events.
pub const ALL_CHANGES: &str = "/data/ChangeEvents";
/// Most events a subscription may be owed at once (more requested counts as this many).
pub const MAX_REQUESTED: i32 = 100;
/// How often a waiting subscriber hears from the server when nothing happens.
const KEEPALIVE: Duration = Duration::from_secs(270);

/// Salesforce's error codes (the `error-code` trailer).
const AUTH_ERROR: &str = "sfdc.platform.eventbus.grpc.service.auth.error";
const REPLAY_CORRUPTED: &str = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted";
const REPLAY_INVALID: &str = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.invalid";
const TOPIC_NOT_FOUND: &str = "sfdc.platform.eventbus.grpc.topic.not.found";
const SCHEMA_NOT_FOUND: &str = "sfdc.platform.eventbus.grpc.schema.not.found";
const SERVICE_ERROR: &str = "sfdc.platform.eventbus.grpc.service.error";

/// The routes of the Pub/Sub API, to merge into the org's router.
pub(super) fn router(org: MockOrg) -> axum::Router {
    let schemas = {
        let state = org.lock();
        Schemas::of(state.org.bundle()).map(Arc::new)
    };
    let service = Service {
        org,
        schemas,
        rpc: Arc::new(AtomicU64::new(0)),
    };
    let path = format!(
        "/{}/{{*method}}",
        <PubSubServer<Service> as tonic::server::NamedService>::NAME
    );
    axum::Router::new().route_service(&path, PubSubServer::new(service))
}

/// A replay ID as the API carries it.
pub fn replay_bytes(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

#[derive(Clone)]
struct Service {
    org: MockOrg,
    /// The bundle's event schemas (an error if one would not build, answered on every call).
    schemas: Result<Arc<Schemas>, String>,
    rpc: Arc<AtomicU64>,
}

/// A gRPC status carrying Salesforce's error code and the call's RPC ID.
fn status(code: Code, error_code: &str, rpc_id: &str, message: impl Into<String>) -> Status {
    let mut trailers = MetadataMap::new();
    if let Ok(v) = MetadataValue::try_from(error_code) {
        trailers.insert("error-code", v);
    }
    if let Ok(v) = MetadataValue::try_from(rpc_id) {
        trailers.insert("rpc-id", v);
    }
    Status::with_metadata(
        code,
        format!("{} rpcId: {rpc_id}", message.into()),
        trailers,
    )
}

impl Service {
    fn rpc_id(&self) -> String {
        format!("mock-{:08}", self.rpc.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn schemas(&self, rpc_id: &str) -> Result<Arc<Schemas>, Status> {
        self.schemas
            .clone()
            .map_err(|e| status(Code::Internal, SERVICE_ERROR, rpc_id, e))
    }

    /// Checks the session in `metadata` as the REST API checks a bearer token: a token the org
    /// issued and has not revoked, for this org.
    fn authenticate(&self, metadata: &MetadataMap, rpc_id: &str) -> Result<(), Status> {
        let get = |k: &str| {
            metadata
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let (token, instance, tenant) = (get("accesstoken"), get("instanceurl"), get("tenantid"));
        let refuse = |why: &str| {
            Err(status(
                Code::Unauthenticated,
                AUTH_ERROR,
                rpc_id,
                format!("An authentication exception occurred: {why}. Provide valid authentication via the metadata headers accesstoken, instanceurl and tenantid."),
            ))
        };
        if token.is_empty() || instance.is_empty() || tenant.is_empty() {
            return refuse("accesstoken, instanceurl and tenantid are all required");
        }
        // The 15-character form of the org ID is the 18-character one's prefix.
        if tenant != ORG_ID && tenant != ORG_ID[..15] {
            return refuse(&format!("tenantid {tenant} is not this org ({ORG_ID})"));
        }
        if !self.org.lock().tokens.contains(&token) {
            return refuse("the access token is invalid or has expired");
        }
        // A paused (scaled) clock runs from the engine's first request on, as for REST.
        self.org.clock().resume();
        Ok(())
    }

    /// The object a topic carries, or `None` for `/data/ChangeEvents` (every object).
    fn topic_object(&self, topic: &str, rpc_id: &str) -> Result<Option<String>, Status> {
        if topic == ALL_CHANGES {
            return Ok(None);
        }
        let schemas = self.schemas(rpc_id)?;
        let found = topic.strip_prefix("/data/").and_then(|name| {
            schemas
                .objects()
                .find(|o| event_name(o) == name)
                .map(str::to_string)
        });
        match found {
            Some(object) => Ok(Some(object)),
            None => Err(status(
                Code::NotFound,
                TOPIC_NOT_FOUND,
                rpc_id,
                format!("The topic {topic} does not exist: this org has {ALL_CHANGES} and /data/<Object>ChangeEvent for its objects."),
            )),
        }
    }
}

type FetchStream = Pin<Box<dyn Stream<Item = Result<FetchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PubSub for Service {
    type SubscribeStream = FetchStream;

    async fn subscribe(
        &self,
        request: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<FetchStream>, Status> {
        let rpc_id = self.rpc_id();
        self.authenticate(request.metadata(), &rpc_id)?;
        let (tx, rx) = mpsc::channel(4);
        let subscription = Subscription {
            service: self.clone(),
            rpc_id,
            tx,
        };
        tokio::spawn(subscription.run(request.into_inner()));
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_schema(
        &self,
        request: Request<SchemaRequest>,
    ) -> Result<Response<SchemaInfo>, Status> {
        let rpc_id = self.rpc_id();
        self.authenticate(request.metadata(), &rpc_id)?;
        let id = &request.get_ref().schema_id;
        let schemas = self.schemas(&rpc_id)?;
        let schema = schemas.by_id(id).ok_or_else(|| {
            status(
                Code::NotFound,
                SCHEMA_NOT_FOUND,
                &rpc_id,
                format!("No schema has the ID `{id}`: take schema IDs from GetTopic or from an event's schema_id."),
            )
        })?;
        Ok(Response::new(SchemaInfo {
            schema_json: schema.json.clone(),
            schema_id: schema.id.clone(),
            rpc_id,
        }))
    }

    async fn get_topic(
        &self,
        request: Request<TopicRequest>,
    ) -> Result<Response<TopicInfo>, Status> {
        let rpc_id = self.rpc_id();
        self.authenticate(request.metadata(), &rpc_id)?;
        let topic = request.get_ref().topic_name.clone();
        let schema_id = match self.topic_object(&topic, &rpc_id)? {
            Some(object) => self
                .schemas(&rpc_id)?
                .for_object(&object)
                .map(|s| s.id.clone())
                .unwrap_or_default(),
            // Several objects' events: each event names its own schema.
            None => String::new(),
        };
        Ok(Response::new(TopicInfo {
            topic_name: topic,
            tenant_guid: ORG_ID.to_string(),
            can_publish: false,
            can_subscribe: true,
            schema_id,
            rpc_id,
        }))
    }
}

/// One Subscribe call: reads the client's FetchRequests, sends what they ask for.
struct Subscription {
    service: Service,
    rpc_id: String,
    tx: mpsc::Sender<Result<FetchResponse, Status>>,
}

impl Subscription {
    async fn run(self, mut inbound: Streaming<FetchRequest>) {
        let first = match inbound.message().await {
            Ok(Some(first)) => first,
            // The client went away before asking for anything.
            Ok(None) | Err(_) => return,
        };
        if let Err(s) = self.serve(first, inbound).await {
            let _ = self.tx.send(Err(s)).await;
        }
    }

    /// Where the first request starts: after which event (`None`: before every retained one).
    fn start(&self, first: &FetchRequest) -> Result<Option<u64>, Status> {
        let org = &self.service.org;
        let mut state = org.lock();
        let now = org.clock().now();
        state.tick(now);
        let log = &state.events;
        match ReplayPreset::try_from(first.replay_preset) {
            Ok(ReplayPreset::Earliest) => Ok(None),
            Ok(ReplayPreset::Latest) => Ok(Some(log.tail())),
            Ok(ReplayPreset::Custom) => {
                let bytes: [u8; 8] = first.replay_id.as_slice().try_into().map_err(|_| {
                    status(
                        Code::InvalidArgument,
                        REPLAY_CORRUPTED,
                        &self.rpc_id,
                        format!("The replay ID is corrupted: {} bytes where this org's replay IDs have 8. Pass back a replay ID exactly as an event or a FetchResponse carried it.", first.replay_id.len()),
                    )
                })?;
                let id = u64::from_be_bytes(bytes);
                if !log.resumable(id) {
                    return Err(status(
                        Code::InvalidArgument,
                        REPLAY_INVALID,
                        &self.rpc_id,
                        "The replay ID is invalid or has expired (events are kept 72 hours). Subscribe with EARLIEST or LATEST, then re-sync.",
                    ));
                }
                Ok(Some(id))
            }
            Err(_) => Err(status(
                Code::InvalidArgument,
                SERVICE_ERROR,
                &self.rpc_id,
                format!(
                    "Unknown replay_preset {}: use LATEST (0), EARLIEST (1) or CUSTOM (2).",
                    first.replay_preset
                ),
            )),
        }
    }

    async fn serve(
        &self,
        first: FetchRequest,
        mut inbound: Streaming<FetchRequest>,
    ) -> Result<(), Status> {
        let topic = first.topic_name.clone();
        self.service.topic_object(&topic, &self.rpc_id)?;
        let schemas = self.service.schemas(&self.rpc_id)?;
        let org = self.service.org.clone();
        let mut cursor = self.start(&first)?;
        let mut pending = first.num_requested.clamp(0, MAX_REQUESTED);
        let mut inbound_open = true;
        // Whether the subscriber has heard that nothing more is on the bus.
        let mut told_caught_up = false;
        let notify = org.lock().notify.clone();
        let keepalive = !org.clock().is_virtual();
        loop {
            // Registered before looking, so an event published in between still wakes us.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if pending > 0 {
                let batch = {
                    let mut state = org.lock();
                    let batch = events::deliver_after(&mut state, cursor, &topic, pending as usize);
                    // Caught up: everything up to the bus's tail was looked at.
                    cursor = match batch.last() {
                        Some(e) => e["replayId"].as_u64(),
                        None => Some(state.events.tail()),
                    };
                    batch
                };
                if !batch.is_empty() || !told_caught_up {
                    let mut out = Vec::with_capacity(batch.len());
                    for event in &batch {
                        out.push(self.consumer_event(&schemas, event)?);
                    }
                    pending -= out.len() as i32;
                    told_caught_up = out.is_empty();
                    let response = FetchResponse {
                        events: out,
                        latest_replay_id: replay_bytes(cursor.unwrap_or(0)),
                        rpc_id: self.rpc_id.clone(),
                        pending_num_requested: pending,
                    };
                    if self.tx.send(Ok(response)).await.is_err() {
                        return Ok(());
                    }
                    if !told_caught_up {
                        continue;
                    }
                }
            } else if !inbound_open {
                // Nothing owed and nothing more will be asked: the call is over.
                return Ok(());
            }
            tokio::select! {
                _ = &mut notified => {}
                next = inbound.message(), if inbound_open => match next {
                    Ok(Some(more)) => {
                        pending = pending.saturating_add(more.num_requested.max(0)).min(MAX_REQUESTED);
                        told_caught_up = false;
                    }
                    Ok(None) | Err(_) => inbound_open = false,
                },
                _ = self.tx.closed() => return Ok(()),
                _ = org.clock().sleep(KEEPALIVE), if keepalive => told_caught_up = false,
            }
        }
    }

    /// One event of the log as the API sends it: its UUID, its object's schema ID, the Avro
    /// payload and its replay ID.
    fn consumer_event(&self, schemas: &Schemas, event: &Value) -> Result<ConsumerEvent, Status> {
        let internal = |m: String| status(Code::Internal, SERVICE_ERROR, &self.rpc_id, m);
        let payload = event.get("payload").unwrap_or(&Value::Null);
        let object = payload
            .pointer("/ChangeEventHeader/entityName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let schema = schemas
            .for_object(object)
            .ok_or_else(|| internal(format!("no change-event schema for {object}")))?;
        let bytes = schema.encode(payload).map_err(internal)?;
        Ok(ConsumerEvent {
            event: Some(ProducerEvent {
                id: event["EventUuid"].as_str().unwrap_or_default().to_string(),
                schema_id: schema.id.clone(),
                payload: bytes,
                headers: Vec::new(),
            }),
            replay_id: replay_bytes(event["replayId"].as_u64().unwrap_or(0)),
        })
    }
}
