//! Change events over Salesforce's Pub/Sub API (gRPC, `eventbus.v1`): the [`ChangeStream`]
//! the consumer reads against a real org (`https://api.pubsub.salesforce.com:7443`) and
//! against a `syncgate mock serve` org (the same host as its REST API).
//!
//! One poll is one `Subscribe` call: a FetchRequest from the stored replay ID (or EARLIEST /
//! LATEST) asking for up to 100 events (`num_requested`, the API's flow control), answers read
//! until the events asked for arrived, an empty batch says nothing more is on the bus (a
//! keepalive), or nothing came for [`super::CdcConfig::pubsub_idle`]. Payloads are Avro,
//! decoded with the schema `GetSchema` gives for the event's schema ID (fetched once per ID);
//! the header's bitmap fields (`changedFields`, `nulledFields`, `diffFields`) are turned back
//! into field names by their positions in that schema. Replay IDs are opaque bytes, kept as
//! hex. The session is the consumer's own (its access token, instance URL and org ID ride in
//! the call's metadata); a refused token is renewed once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::schema::Schema;
use apache_avro::types::Value as Avro;
use async_trait::async_trait;
use futures_util::StreamExt as _;
use serde_json::{json, Map, Value};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::stream::{ChangeStream, Polled};
use super::{CdcConfig, CdcError};
use crate::engine::client::SalesforceClient;
use crate::engine::retry::Backoff;
use crate::sim::{Clock, Rng, Seed, Timestamp};

/// The Pub/Sub API's messages and client, generated from `proto/pubsub_api.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("eventbus.v1");
}

use self::proto::pub_sub_client::PubSubClient;
use self::proto::{ConsumerEvent, FetchRequest, ReplayPreset, SchemaRequest};

/// Salesforce's Pub/Sub API endpoint for every production and sandbox org.
pub const SALESFORCE_ENDPOINT: &str = "https://api.pubsub.salesforce.com:7443";
/// Most events one Subscribe call may be owed (the API's limit).
const MAX_REQUESTED: i32 = 100;

/// Where the Pub/Sub API of the org at `login_url` is: Salesforce's endpoint for a
/// `*.salesforce.com` or `*.force.com` login, otherwise the login host itself (a `syncgate
/// mock serve` org serves it beside its REST API).
pub fn default_endpoint(login_url: &str) -> String {
    let host = reqwest::Url::parse(login_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let salesforce = [".salesforce.com", ".force.com"]
        .iter()
        .any(|d| host.ends_with(d) || host == d[1..]);
    if salesforce {
        SALESFORCE_ENDPOINT.to_string()
    } else {
        login_url.trim_end_matches('/').to_string()
    }
}

/// Why a Subscribe call failed, and so what to do.
#[derive(Debug)]
enum Failure {
    /// The replay ID expired or was never issued: the consumer re-syncs.
    InvalidReplay,
    /// The session was refused: sign in again (once).
    Auth(String),
    /// Worth another attempt after a backoff.
    Retry(String),
    Fatal(String),
}

fn classify(s: &Status) -> Failure {
    let code = s
        .metadata()
        .get("error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let message = if code.is_empty() {
        format!("{:?}: {}", s.code(), s.message())
    } else {
        format!("{:?} {code}: {}", s.code(), s.message())
    };
    if code.contains(".replayid.") {
        return Failure::InvalidReplay;
    }
    match s.code() {
        Code::Unauthenticated | Code::PermissionDenied if code.contains("auth") => {
            Failure::Auth(message)
        }
        Code::Unauthenticated => Failure::Auth(message),
        Code::Unavailable
        | Code::Unknown
        | Code::Internal
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::DeadlineExceeded
        | Code::Cancelled => Failure::Retry(message),
        _ => Failure::Fatal(message),
    }
}

/// A schema and its top-level field names in order (bitmaps index them).
struct KnownSchema {
    schema: Schema,
    fields: Vec<String>,
    /// Nested field names of record-typed (compound) fields, by position.
    nested: HashMap<usize, Vec<String>>,
}

impl KnownSchema {
    fn parse(json: &str) -> Result<Self, String> {
        let schema = Schema::parse_str(json).map_err(|e| format!("unreadable schema: {e}"))?;
        let Schema::Record(record) = &schema else {
            return Err("the event schema is not a record".into());
        };
        let fields = record.fields.iter().map(|f| f.name.clone()).collect();
        let mut nested = HashMap::new();
        for (i, f) in record.fields.iter().enumerate() {
            let inner = match &f.schema {
                Schema::Union(u) => u.variants().iter().find_map(|v| match v {
                    Schema::Record(r) => Some(r),
                    _ => None,
                }),
                Schema::Record(r) => Some(r),
                _ => None,
            };
            if let Some(r) = inner {
                nested.insert(i, r.fields.iter().map(|f| f.name.clone()).collect());
            }
        }
        Ok(KnownSchema {
            schema,
            fields,
            nested,
        })
    }

    /// A bitmap field (`["0x…", "<position>-0x…", …]`) as the field names it stands for.
    fn names(&self, bitmap: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        for entry in bitmap
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            match entry.split_once('-') {
                None => {
                    for bit in bits(entry) {
                        if let Some(name) = self.fields.get(bit) {
                            out.push(json!(name));
                        }
                    }
                }
                Some((parent, map)) => {
                    let Some(p) = parent.parse::<usize>().ok() else {
                        continue;
                    };
                    let (Some(parent), Some(children)) = (self.fields.get(p), self.nested.get(&p))
                    else {
                        continue;
                    };
                    for bit in bits(map) {
                        if let Some(child) = children.get(bit) {
                            out.push(json!(format!("{parent}.{child}")));
                        }
                    }
                }
            }
        }
        out
    }
}

/// The positions of the set bits of a hexadecimal bitmap (`0x…`, least significant = 0).
fn bits(hex: &str) -> Vec<usize> {
    let digits = hex.trim().trim_start_matches("0x").trim_start_matches("0X");
    let mut out = Vec::new();
    for (k, c) in digits.chars().rev().enumerate() {
        let Some(d) = c.to_digit(16) else {
            return Vec::new();
        };
        for b in 0..4 {
            if d & (1 << b) != 0 {
                out.push(k * 4 + b);
            }
        }
    }
    out
}

/// An Avro value as JSON, in the shape the REST API gives values (dates `YYYY-MM-DD`,
/// datetimes in Salesforce's format, whole numbers without a fraction).
fn to_json(v: &Avro) -> Value {
    let number = |f: f64| {
        if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            json!(f as i64)
        } else {
            json!(f)
        }
    };
    match v {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => json!(b),
        Avro::Int(i) => json!(i),
        Avro::Long(l) => json!(l),
        Avro::Float(f) => number(f64::from(*f)),
        Avro::Double(f) => number(*f),
        Avro::String(s) | Avro::Enum(_, s) => json!(s),
        Avro::Bytes(b) | Avro::Fixed(_, b) => json!(hex::encode(b)),
        Avro::Union(_, inner) => to_json(inner),
        Avro::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Avro::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Avro::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        Avro::Date(days) => json!(Timestamp::from_millis(i64::from(*days) * 86_400_000).to_date()),
        Avro::TimestampMillis(ms) | Avro::LocalTimestampMillis(ms) => {
            json!(Timestamp::from_millis(*ms).to_salesforce())
        }
        Avro::TimestampMicros(us) | Avro::LocalTimestampMicros(us) => {
            json!(Timestamp::from_millis(us / 1000).to_salesforce())
        }
        other => json!(format!("{other:?}")),
    }
}

/// A replay ID's number (8 bytes, big-endian, as Salesforce issues them), for reports.
fn replay_number(bytes: &[u8]) -> u64 {
    if bytes.len() > 8 {
        return 0;
    }
    bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

/// The consumer's subscription over the Pub/Sub API.
pub struct PubSubStream {
    endpoint: String,
    topic: String,
    batch: i32,
    idle: Duration,
    max_attempts: u32,
    backoff: Backoff,
    clock: Clock,
    jitter: Rng,
    ca_pem: Option<Vec<u8>>,
    channel: Option<Channel>,
    schemas: HashMap<String, Arc<KnownSchema>>,
}

impl PubSubStream {
    /// Subscribes to `config.topic` at `endpoint` on `clock`, trusting `ca_pem` besides the
    /// public roots (a mock org served with `--tls`); retry jitter from `seed`.
    pub fn new(
        config: &CdcConfig,
        endpoint: &str,
        clock: Clock,
        seed: Seed,
        ca_pem: Option<Vec<u8>>,
    ) -> Self {
        PubSubStream {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            topic: config.topic.clone(),
            batch: i32::try_from(config.max_events)
                .unwrap_or(MAX_REQUESTED)
                .clamp(1, MAX_REQUESTED),
            idle: config.pubsub_idle,
            max_attempts: config.max_attempts,
            backoff: config.backoff.clone(),
            clock,
            jitter: seed.stream("engine.cdc.pubsub"),
            ca_pem,
            channel: None,
            schemas: HashMap::new(),
        }
    }

    fn channel(&mut self) -> Result<Channel, Failure> {
        if let Some(c) = &self.channel {
            return Ok(c.clone());
        }
        let bad = |e: &dyn std::fmt::Display| {
            Failure::Fatal(format!(
                "the Pub/Sub endpoint `{}` is not usable: {e} (expected https://host:port, or http:// for a local mock)",
                self.endpoint
            ))
        };
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| bad(&e))?
            .connect_timeout(Duration::from_secs(30));
        if self.endpoint.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_webpki_roots();
            if let Some(pem) = &self.ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| bad(&e))?;
        }
        let channel = endpoint.connect_lazy();
        self.channel = Some(channel.clone());
        Ok(channel)
    }

    /// `message` with the session's metadata.
    fn request<T>(message: T, client: &SalesforceClient) -> Result<Request<T>, Failure> {
        let (token, instance) = client
            .session()
            .ok_or_else(|| Failure::Auth("not signed in".into()))?;
        let org = client.org_id.clone().unwrap_or_default();
        let value = |v: &str, what: &str| {
            MetadataValue::try_from(v)
                .map_err(|_| Failure::Fatal(format!("the {what} cannot be sent as gRPC metadata")))
        };
        let mut request = Request::new(message);
        let m = request.metadata_mut();
        m.insert("accesstoken", value(token.expose(), "access token")?);
        m.insert("instanceurl", value(instance, "instance URL")?);
        m.insert("tenantid", value(&org, "org ID")?);
        Ok(request)
    }

    /// The schema `id`, from the cache or `GetSchema`.
    async fn schema(
        &mut self,
        id: &str,
        api: &mut PubSubClient<Channel>,
        client: &SalesforceClient,
    ) -> Result<Arc<KnownSchema>, Failure> {
        if let Some(s) = self.schemas.get(id) {
            return Ok(s.clone());
        }
        let request = Self::request(
            SchemaRequest {
                schema_id: id.to_string(),
            },
            client,
        )?;
        let info = api
            .get_schema(request)
            .await
            .map_err(|s| classify(&s))?
            .into_inner();
        let known = KnownSchema::parse(&info.schema_json)
            .map_err(|e| Failure::Fatal(format!("schema {id}: {e}")))?;
        let known = Arc::new(known);
        self.schemas.insert(id.to_string(), known.clone());
        Ok(known)
    }

    /// One event as the consumer reads events: `replayId`, `EventUuid` and the payload with
    /// its header's field lists as names.
    async fn decode(
        &mut self,
        event: ConsumerEvent,
        api: &mut PubSubClient<Channel>,
        client: &SalesforceClient,
    ) -> Result<Value, Failure> {
        let body = event
            .event
            .ok_or_else(|| Failure::Fatal("an event came without its body".into()))?;
        let known = self.schema(&body.schema_id, api, client).await?;
        let datum = apache_avro::from_avro_datum(&known.schema, &mut body.payload.as_slice(), None)
            .map_err(|e| {
                Failure::Fatal(format!(
                    "event {} does not decode with schema {}: {e}",
                    body.id, body.schema_id
                ))
            })?;
        let mut payload = match to_json(&datum) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Some(Value::Object(header)) = payload.get_mut("ChangeEventHeader") {
            for key in ["changedFields", "nulledFields", "diffFields"] {
                if let Some(bitmap) = header.get(key) {
                    let names = known.names(bitmap);
                    header.insert(key.to_string(), Value::Array(names));
                }
            }
        }
        Ok(json!({
            "channel": self.topic,
            "replayId": replay_number(&event.replay_id),
            "EventUuid": body.id,
            "payload": payload,
        }))
    }

    /// One Subscribe call from `preset` / `replay_id`.
    async fn fetch(
        &mut self,
        preset: ReplayPreset,
        replay_id: &[u8],
        client: &SalesforceClient,
    ) -> Result<Polled, Failure> {
        let mut api = PubSubClient::new(self.channel()?);
        let first = FetchRequest {
            topic_name: self.topic.clone(),
            replay_preset: preset as i32,
            replay_id: replay_id.to_vec(),
            num_requested: self.batch,
            auth_refresh: String::new(),
        };
        // The request side stays open for the whole poll and ends with it (when `done` drops):
        // the call is then over on both sides, so neither end keeps the stream (nor the
        // connection) open.
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let outbound = futures_util::stream::iter([first]).chain(
            futures_util::stream::once(finished).filter_map(|_| async { None::<FetchRequest> }),
        );
        let request = Self::request(outbound, client)?;
        let mut answers = api
            .subscribe(request)
            .await
            .map_err(|s| classify(&s))?
            .into_inner();
        let mut events = Vec::new();
        let mut latest = None;
        loop {
            // Wall time: how long the network may stay quiet, not a time in the org.
            let next = match tokio::time::timeout(self.idle, answers.message()).await {
                Err(_) => break,
                Ok(next) => next.map_err(|s| classify(&s))?,
            };
            let Some(batch) = next else { break };
            if !batch.latest_replay_id.is_empty() {
                latest = Some(hex::encode(&batch.latest_replay_id));
            }
            let keepalive = batch.events.is_empty();
            for event in batch.events {
                events.push(self.decode(event, &mut api, client).await?);
            }
            if keepalive || batch.pending_num_requested <= 0 {
                break;
            }
        }
        drop(answers);
        drop(done);
        Ok(Polled::Events {
            events: super::EventPage::Values(events),
            latest,
        })
    }
}

#[async_trait]
impl ChangeStream for PubSubStream {
    async fn poll(
        &mut self,
        replay: &str,
        client: &mut SalesforceClient,
    ) -> Result<Polled, CdcError> {
        let (preset, replay_id) = match replay.to_ascii_uppercase().as_str() {
            "EARLIEST" => (ReplayPreset::Earliest, Vec::new()),
            "LATEST" => (ReplayPreset::Latest, Vec::new()),
            _ => match hex::decode(replay) {
                Ok(bytes) if !bytes.is_empty() => (ReplayPreset::Custom, bytes),
                // Not a replay ID this stream issued (one from the long-poll stream, say).
                _ => return Ok(Polled::InvalidReplay),
            },
        };
        let url = self.endpoint.clone();
        let give_up = |message: String| CdcError::Poll {
            url: url.clone(),
            message,
        };
        let mut attempt = 0;
        let mut renewed = false;
        loop {
            attempt += 1;
            if client.session().is_none() {
                client.authenticate().await?;
            }
            let message = match self.fetch(preset, &replay_id, client).await {
                Ok(polled) => return Ok(polled),
                Err(Failure::InvalidReplay) => return Ok(Polled::InvalidReplay),
                Err(Failure::Auth(_)) if !renewed => {
                    renewed = true;
                    attempt -= 1;
                    client.authenticate().await?;
                    continue;
                }
                Err(Failure::Auth(m) | Failure::Fatal(m)) => return Err(give_up(m)),
                Err(Failure::Retry(m)) => m,
            };
            if attempt >= self.max_attempts {
                return Err(give_up(format!(
                    "gave up after {attempt} attempts: {message}"
                )));
            }
            let delay = self.backoff.delay(attempt, &mut self.jitter);
            self.clock.sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_name_the_fields_at_their_positions() {
        assert_eq!(bits("0x0A"), vec![1, 3]);
        assert_eq!(bits("0x650004E0").len(), 8);
        assert!(bits("0xZZ").is_empty());
        let schema = KnownSchema::parse(
            r#"{"type":"record","name":"AccountChangeEvent","fields":[
                {"name":"ChangeEventHeader","type":"string"},
                {"name":"Name","type":["null","string"]},
                {"name":"Address","type":["null",{"type":"record","name":"Address",
                    "fields":[{"name":"Street","type":"string"},{"name":"City","type":"string"}]}]}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            schema.names(&json!(["0x02", "2-0x2"])),
            vec![json!("Name"), json!("Address.City")]
        );
    }

    #[test]
    fn the_endpoint_is_salesforces_for_a_real_org_and_the_login_host_otherwise() {
        for login in [
            "https://login.salesforce.com",
            "https://test.salesforce.com/",
            "https://acme.my.salesforce.com",
            "https://acme--uat.sandbox.my.salesforce.com",
        ] {
            assert_eq!(default_endpoint(login), SALESFORCE_ENDPOINT, "{login}");
        }
        assert_eq!(
            default_endpoint("http://127.0.0.1:8088/"),
            "http://127.0.0.1:8088"
        );
        assert_eq!(
            default_endpoint("https://evilsalesforce.com"),
            "https://evilsalesforce.com"
        );
    }

    #[test]
    fn values_come_back_in_the_rest_apis_shapes() {
        assert_eq!(to_json(&Avro::Double(5.0)), json!(5));
        assert_eq!(to_json(&Avro::Double(2.5)), json!(2.5));
        assert_eq!(to_json(&Avro::Date(1)), json!("1970-01-02"));
        assert_eq!(
            to_json(&Avro::Union(1, Box::new(Avro::TimestampMillis(0)))),
            json!("1970-01-01T00:00:00.000+0000")
        );
        assert_eq!(replay_number(&[0, 0, 0, 0, 0, 0, 1, 2]), 258);
    }
}
