//! The change-event log: every committed change becomes a Change Data Capture event with a
//! `ChangeEventHeader`, a replay ID and 72-hour retention on the clock (and, when a limit is
//! set, only the newest events kept, the rest counted); subscribers read it
//! over HTTP long-poll or server-sent events from EARLIEST, LATEST or a replay ID (see
//! `docs/mock.md`), or over the Pub/Sub API (`super::pubsub`, through [`deliver_after`]).
//! The scenario's event faults (duplicates, reordering, gaps, overflow) are applied here,
//! each drawn from the seed when the event is published.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::form::form_pairs;
use super::org::{Change, ChangeKind};
use super::{MockOrg, State};
use crate::sim::scenario::EventFaults;
use crate::sim::{Rng, Timestamp};

/// How long events stay on the bus.
pub const RETENTION: Duration = Duration::from_secs(72 * 3600);
/// Most events one poll returns unless `max` asks for fewer.
const MAX_BATCH: usize = 1000;

/// One retained event. Its JSON is rendered the first time a subscriber reads it and kept,
/// so publishing (on every write) stays cheap and every later read is a copy of bytes.
#[derive(Clone, Debug)]
struct Event {
    /// The long-poll JSON of the event, once rendered.
    rendered: OnceLock<Arc<str>>,
    replay_id: u64,
    at: Timestamp,
    uuid: (u64, u64),
    change_type: String,
    transaction: Arc<Transaction>,
    sequence: usize,
    /// `None` for an overflow event (no record).
    change: Option<Arc<Change>>,
    /// The object of an overflow event.
    object: String,
    gap: bool,
}

#[derive(Debug)]
struct Transaction {
    origin: String,
    key: u64,
    commit: u64,
    user: String,
}

impl Event {
    fn channel(&self) -> String {
        channel(&self.object)
    }

    /// The event's JSON text, rendered once.
    fn text(&self) -> Arc<str> {
        self.rendered
            .get_or_init(|| self.to_json().to_string().into())
            .clone()
    }

    fn to_json(&self) -> Value {
        let (a, b) = self.uuid;
        let uuid = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        );
        let t = &self.transaction;
        // Read once: the values, and from them the fields set and the fields cleared.
        let values = match &self.change {
            Some(c) if !self.gap => c.values.to_map(),
            _ => Map::new(),
        };
        let fields = |null: bool| -> Vec<String> {
            values
                .iter()
                .filter(|(_, v)| v.is_null() == null)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let (ids, changed, nulled, commit_at) = match &self.change {
            Some(c) if !self.gap && c.kind != ChangeKind::Delete => (
                vec![c.id.clone()],
                fields(false),
                fields(true),
                c.at.as_millis(),
            ),
            Some(c) => (vec![c.id.clone()], vec![], vec![], c.at.as_millis()),
            None => (vec![], vec![], vec![], self.at.as_millis()),
        };
        let header = json!({
            "entityName": self.object, "recordIds": ids, "changeType": self.change_type,
            "changeOrigin": t.origin, "transactionKey": format!("{:016x}", t.key),
            "sequenceNumber": self.sequence, "commitTimestamp": commit_at,
            "commitNumber": t.commit, "commitUser": t.user,
            "changedFields": changed, "nulledFields": nulled, "diffFields": [],
        });
        let mut payload = Map::new();
        payload.insert("ChangeEventHeader".into(), header);
        payload.extend(values);
        json!({"channel": self.channel(), "replayId": self.replay_id, "EventUuid": uuid, "payload": payload})
    }
}

/// Retained events in delivery order (which faults may make differ from replay order).
#[derive(Debug)]
pub(crate) struct EventLog {
    events: VecDeque<Event>,
    next_replay: u64,
    /// Replay IDs at or below this have expired.
    expired_through: u64,
    commit_number: u64,
    delivered: u64,
    /// Most events kept (the oldest beyond it are dropped, as if expired).
    limit: usize,
    /// Events dropped: past the retention window, and beyond `limit`.
    expired: u64,
    dropped: u64,
    rng: Rng,
    faults: EventFaults,
}

impl EventLog {
    pub fn new(rng: Rng, faults: EventFaults) -> Self {
        EventLog {
            events: VecDeque::new(),
            next_replay: 1,
            expired_through: 0,
            commit_number: 0,
            delivered: 0,
            limit: usize::MAX,
            expired: 0,
            dropped: 0,
            rng,
            faults,
        }
    }

    /// Keeps at most `limit` events from now on (at least one).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
        self.trim();
    }

    /// Drops the oldest events beyond the limit; resuming from one of them is then an
    /// invalid replay ID, as for an expired one.
    fn trim(&mut self) {
        while self.events.len() > self.limit {
            let Some(e) = self.events.pop_front() else {
                break;
            };
            self.expired_through = self.expired_through.max(e.replay_id);
            self.dropped += 1;
        }
    }

    /// Events kept now.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Events published so far, and of those dropped past the retention window and beyond
    /// the limit.
    pub fn totals(&self) -> (u64, u64, u64) {
        (self.next_replay - 1, self.expired, self.dropped)
    }

    /// Drops events older than the retention window.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some(e) = self.events.front() {
            if now.since(e.at) < RETENTION {
                break;
            }
            self.expired_through = self.expired_through.max(e.replay_id);
            self.events.pop_front();
            self.expired += 1;
        }
    }

    pub fn all(&self) -> Vec<Value> {
        self.events.iter().map(Event::to_json).collect()
    }

    /// Events handed to subscribers so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether a subscriber may resume after `id` (the Pub/Sub API's CUSTOM replay): issued,
    /// and not expired.
    pub fn resumable(&self, id: u64) -> bool {
        id >= self.expired_through && id < self.next_replay
    }

    /// Where "everything before now" ends in delivery order: the last retained event, or the
    /// last ID issued when none is retained (LATEST, and a caught-up subscriber's position).
    pub fn tail(&self) -> u64 {
        self.events
            .back()
            .map(|e| e.replay_id)
            .unwrap_or(self.next_replay - 1)
    }

    fn push(&mut self, mut event: Event) {
        event.replay_id = self.next_replay;
        self.next_replay += 1;
        self.events.push_back(event);
        self.trim();
    }

    fn uuid(&mut self) -> (u64, u64) {
        (self.rng.next_u64(), self.rng.next_u64())
    }

    /// Appends one transaction's changes.
    fn append(&mut self, changes: Vec<Change>, origin: &str, now: Timestamp) {
        if changes.is_empty() {
            return;
        }
        self.commit_number += 1;
        let transaction = Arc::new(Transaction {
            origin: origin.to_string(),
            key: self.rng.next_u64(),
            commit: self.commit_number,
            user: changes[0].user.clone(),
        });
        if let Some(limit) = self.faults.overflow_after {
            if changes.len() > limit {
                let mut objects: Vec<&str> = changes.iter().map(|c| c.object.as_str()).collect();
                objects.dedup();
                for (seq, object) in objects.into_iter().enumerate() {
                    let uuid = self.uuid();
                    self.push(Event {
                        rendered: OnceLock::new(),
                        replay_id: 0,
                        at: now,
                        uuid,
                        change_type: "GAP_OVERFLOW".into(),
                        transaction: transaction.clone(),
                        sequence: seq + 1,
                        change: None,
                        object: object.to_string(),
                        gap: true,
                    });
                }
                return;
            }
        }
        for (seq, c) in changes.into_iter().enumerate() {
            let gap = self.faults.gap > 0.0 && self.rng.chance(self.faults.gap);
            let change_type = if gap {
                format!("GAP_{}", c.kind.as_str())
            } else {
                c.kind.as_str().to_string()
            };
            let uuid = self.uuid();
            let event = Event {
                rendered: OnceLock::new(),
                replay_id: 0,
                at: now,
                uuid,
                change_type,
                transaction: transaction.clone(),
                sequence: seq + 1,
                object: c.object.clone(),
                change: Some(Arc::new(c)),
                gap,
            };
            let duplicate = self.faults.duplicate > 0.0 && self.rng.chance(self.faults.duplicate);
            if duplicate {
                // Delivered twice: same EventUuid, its own replay ID.
                self.push(event.clone());
            }
            self.push(event);
            if self.faults.out_of_order > 0.0
                && self.events.len() >= 2
                && self.rng.chance(self.faults.out_of_order)
            {
                let n = self.events.len();
                self.events.swap(n - 1, n - 2);
            }
        }
    }
}

fn channel(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(base) => format!("/data/{base}__ChangeEvent"),
        None => format!("/data/{object}ChangeEvent"),
    }
}

/// Publishes the org's pending changes as one transaction and wakes subscribers.
pub(super) fn publish_changes(state: &mut State, origin: &str, now: Timestamp) {
    let changes = state.org.take_changes();
    if changes.is_empty() {
        return;
    }
    state.events.append(changes, origin, now);
    state.notify.notify_waiters();
}

/// Where a subscriber starts.
#[derive(Debug, PartialEq, Eq)]
enum Replay {
    Earliest,
    Latest,
    After(u64),
}

fn parse_replay(s: &str) -> Option<Replay> {
    match s.to_ascii_uppercase().as_str() {
        "EARLIEST" | "-2" => Some(Replay::Earliest),
        "LATEST" | "-1" => Some(Replay::Latest),
        n => n.parse().ok().map(Replay::After),
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        axum::Json(json!([{"errorCode": code, "message": message}])),
    )
        .into_response()
}

/// `GET /__syncgate/events?topic=…&replay=EARLIEST|LATEST|<id>&wait=<secs>&max=<n>`:
/// the events after the starting point, waiting up to `wait` seconds (on the clock) for
/// the first one. The answer's `latestReplayId` is where the next poll resumes.
pub(super) async fn subscribe(org: &MockOrg, query: Option<&str>) -> Response {
    let params = query.map(form_pairs).unwrap_or_default();
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let topic = get("topic").unwrap_or("/data/ChangeEvents").to_string();
    let Some(replay) = parse_replay(get("replay").unwrap_or("LATEST")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REPLAY_ID",
            "replay must be EARLIEST, LATEST or a replay ID".into(),
        );
    };
    let wait = get("wait")
        .and_then(|w| w.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::ZERO);
    let max = get("max")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(MAX_BATCH)
        .clamp(1, MAX_BATCH);
    // Resolve the starting point once: LATEST means "what comes after now".
    let after = {
        let mut state = org.lock();
        let now = org.clock().now();
        state.tick(now);
        let log = &state.events;
        match replay {
            Replay::Earliest => None,
            Replay::Latest => Some(log.next_replay - 1),
            Replay::After(id) => {
                if id < log.expired_through || id >= log.next_replay {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_REPLAY_ID",
                        format!("The replayId {id} you provided was invalid or has expired (events are kept 72 hours, and only the newest when the bus holds more than its limit). Provide a valid ID, -2 to replay all events, or -1 to replay only new events; then re-sync."),
                    );
                }
                Some(id)
            }
        }
    };
    let notify = org.lock().notify.clone();
    if get("stream") == Some("sse") {
        return sse(org.clone(), notify, topic, after);
    }
    let mut waited = false;
    loop {
        // Registered before looking, so an event published in between still wakes us.
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut state = org.lock();
            let batch = batch_after(&state, after, &topic, max);
            if !batch.is_empty() || waited || wait.is_zero() {
                let latest = batch.last().map(|e| e.replay_id).or(after).unwrap_or(0);
                // The page is the events' rendered JSON joined: nothing parsed or rebuilt.
                let mut body = format!("{{\"topic\":{},\"events\":[", Value::from(topic.as_str()));
                for (i, e) in batch.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&e.text());
                }
                body.push_str(&format!("],\"latestReplayId\":{latest}}}"));
                let n = batch.len() as u64;
                state.events.delivered += n;
                let mut resp = (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    body,
                )
                    .into_response();
                resp.headers_mut()
                    .insert("cache-control", HeaderValue::from_static("no-store"));
                return resp;
            }
        }
        tokio::select! {
            _ = notified => {}
            _ = org.clock().sleep(wait) => {}
        }
        waited = true;
    }
}

/// Up to `max` events of `topic` after the event `after` (all when `None`), counted as
/// delivered: what a Pub/Sub API subscription (`super::pubsub`) sends next.
pub(super) fn deliver_after(
    state: &mut State,
    after: Option<u64>,
    topic: &str,
    max: usize,
) -> Vec<Value> {
    let batch: Vec<Value> = batch_after(state, after, topic, max)
        .into_iter()
        .map(Event::to_json)
        .collect();
    state.events.delivered += batch.len() as u64;
    batch
}

/// Up to `max` events of `topic` delivered after the event `after` (all when `None`).
fn batch_after<'s>(
    state: &'s State,
    after: Option<u64>,
    topic: &str,
    max: usize,
) -> Vec<&'s Event> {
    let events = &state.events.events;
    // Delivery order may differ from replay order: resume after the position of the
    // starting event, not by comparing IDs.
    let start = match after {
        None => 0,
        Some(id) => events
            .iter()
            .position(|e| e.replay_id == id)
            .map(|p| p + 1)
            .unwrap_or_else(|| {
                events
                    .iter()
                    .position(|e| e.replay_id > id)
                    .unwrap_or(events.len())
            }),
    };
    events
        .iter()
        .skip(start)
        .filter(|e| topic == "/data/ChangeEvents" || e.channel() == topic)
        .take(max)
        .collect()
}

/// The subscription as server-sent events: `id: <replayId>`, `event: change`, `data: <event>`,
/// open until the client goes away.
fn sse(
    org: MockOrg,
    notify: std::sync::Arc<tokio::sync::Notify>,
    topic: String,
    after: Option<u64>,
) -> Response {
    let stream = futures_util::stream::unfold(
        (org, notify, topic, after),
        |(org, notify, topic, mut after)| async move {
            loop {
                let text = {
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    let batch: Vec<(u64, Arc<str>)> = {
                        let mut state = org.lock();
                        let batch: Vec<(u64, Arc<str>)> =
                            batch_after(&state, after, &topic, MAX_BATCH)
                                .into_iter()
                                .map(|e| (e.replay_id, e.text()))
                                .collect();
                        state.events.delivered += batch.len() as u64;
                        batch
                    };
                    if batch.is_empty() {
                        notified.await;
                        continue;
                    }
                    let mut text = String::new();
                    for (id, e) in &batch {
                        text.push_str(&format!("id: {id}\nevent: change\ndata: {e}\n\n"));
                        after = Some(*id);
                    }
                    text
                };
                let chunk = Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(text));
                return Some((chunk, (org, notify, topic, after)));
            }
        },
    );
    let mut resp = Response::new(axum::body::Body::from_stream(stream));
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Seed;

    fn change(id: &str) -> Change {
        let mut values = Map::new();
        values.insert("Name".into(), json!("Acme"));
        Change {
            object: "Account".into(),
            id: id.into(),
            kind: ChangeKind::Create,
            values: super::super::org::ChangeValues::of(&values),
            at: Timestamp::from_millis(0),
            user: "005".into(),
        }
    }

    #[test]
    fn events_carry_the_header_and_expire_after_72_hours() {
        let mut log = EventLog::new(Seed(1).stream("e"), EventFaults::default());
        let t0 = Timestamp::from_millis(0);
        log.append(vec![change("001A"), change("001B")], "origin;client=x", t0);
        let all = log.all();
        assert_eq!(all.len(), 2);
        let h = &all[1]["payload"]["ChangeEventHeader"];
        assert_eq!(h["changeType"], "CREATE");
        assert_eq!(h["sequenceNumber"], 2);
        assert_eq!(h["changeOrigin"], "origin;client=x");
        assert_eq!(all[1]["channel"], "/data/AccountChangeEvent");
        assert_eq!(all[1]["payload"]["Name"], "Acme");
        log.expire(t0.plus(RETENTION - Duration::from_millis(1)));
        assert_eq!(log.all().len(), 2);
        log.expire(t0.plus(RETENTION));
        assert!(log.all().is_empty());
        assert_eq!(log.expired_through, 2);
    }

    #[test]
    fn a_limit_keeps_the_newest_events_and_counts_the_dropped_ones() {
        let mut log = EventLog::new(Seed(1).stream("e"), EventFaults::default());
        log.set_limit(3);
        let t0 = Timestamp::from_millis(0);
        let changes = ["001A", "001B", "001C", "001D", "001E"]
            .map(change)
            .to_vec();
        log.append(changes, "", t0);
        let ids: Vec<u64> = log.events.iter().map(|e| e.replay_id).collect();
        assert_eq!(ids, vec![3, 4, 5]);
        assert_eq!((log.len(), log.totals()), (3, (5, 0, 2)));
        // Resuming after a dropped event is refused; after the last dropped one is not.
        assert!(!log.resumable(1));
        assert!(log.resumable(2));
        log.expire(t0.plus(RETENTION));
        assert_eq!((log.len(), log.totals()), (0, (5, 3, 2)));
    }

    #[test]
    fn an_event_is_rendered_once_as_its_json() {
        let mut log = EventLog::new(Seed(1).stream("e"), EventFaults::default());
        log.append(vec![change("001A")], "", Timestamp::from_millis(0));
        let e = &log.events[0];
        let text = e.text();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), e.to_json());
        assert!(
            Arc::ptr_eq(&text, &e.text()),
            "the second read is the same text"
        );
    }

    /// The events one transaction changing the records `ids` leaves under `faults`.
    fn logged(faults: EventFaults, ids: &[&str]) -> Vec<Value> {
        let mut log = EventLog::new(Seed(1).stream("e"), faults);
        let changes = ids.iter().map(|id| change(id)).collect();
        log.append(changes, "", Timestamp::from_millis(0));
        log.all()
    }

    #[test]
    fn overflow_replaces_a_large_transaction() {
        let faults = EventFaults {
            overflow_after: Some(1),
            ..EventFaults::default()
        };
        let all = logged(faults, &["001A", "001B"]);
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0]["payload"]["ChangeEventHeader"]["changeType"],
            "GAP_OVERFLOW"
        );
    }

    #[test]
    fn duplicates_share_the_event_uuid() {
        let faults = EventFaults {
            duplicate: 1.0,
            ..EventFaults::default()
        };
        let all = logged(faults, &["001A"]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["EventUuid"], all[1]["EventUuid"]);
        assert_ne!(all[0]["replayId"], all[1]["replayId"]);
    }

    #[test]
    fn gaps_carry_no_values_and_reordering_swaps_neighbours() {
        let faults = EventFaults {
            gap: 1.0,
            ..EventFaults::default()
        };
        let e = &logged(faults, &["001A"])[0];
        assert_eq!(
            e["payload"]["ChangeEventHeader"]["changeType"],
            "GAP_CREATE"
        );
        assert!(e["payload"].get("Name").is_none());
        assert_eq!(
            e["payload"]["ChangeEventHeader"]["changedFields"],
            json!([])
        );

        let faults = EventFaults {
            out_of_order: 1.0,
            ..EventFaults::default()
        };
        let ids: Vec<u64> = logged(faults, &["001A", "001B"])
            .iter()
            .map(|e| e["replayId"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, vec![2, 1]);
    }

    #[test]
    fn replay_presets() {
        assert_eq!(parse_replay("earliest"), Some(Replay::Earliest));
        assert_eq!(parse_replay("-1"), Some(Replay::Latest));
        assert_eq!(parse_replay("42"), Some(Replay::After(42)));
        assert_eq!(parse_replay("soon"), None);
    }
}
