//! One change event as the consumer reads it: the header's fields typed, the payload's
//! field values left as they came (raw JSON text, or the decoded value) until the consumer
//! picks the few it carries, and every string borrowed from the page the stream delivered.
//! A page is the long-poll answer's text ([`EventPage::Json`], read in place) or events a
//! stream decoded itself ([`EventPage::Values`], the Pub/Sub API's Avro).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// One poll's events as the stream delivered them.
#[derive(Clone, Debug, PartialEq)]
pub enum EventPage {
    /// A long-poll answer, `{"events": [...], …}`, as text.
    Json(String),
    /// Events in the long-poll's JSON shape, decoded by the stream.
    Values(Vec<Value>),
}

impl EventPage {
    /// The page's events, oldest first; an error names what does not read.
    pub fn read(&self) -> Result<Vec<ChangeEvent<'_>>, String> {
        match self {
            EventPage::Json(text) => serde_json::from_str::<Page<'_>>(text)
                .map(|p| p.events)
                .map_err(|e| format!("unreadable change-event page: {e}")),
            EventPage::Values(values) => values
                .iter()
                .map(ChangeEvent::from_value)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("unreadable change event: {e}")),
        }
    }
}

/// A string of the page, borrowed when the JSON holds it unescaped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The `ChangeEventHeader` fields the consumer reads (absent or null ones are empty).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Header<'a> {
    #[serde(borrow, default)]
    pub entity_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub change_type: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub change_origin: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub record_ids: Option<Vec<Text<'a>>>,
    #[serde(borrow, default)]
    pub changed_fields: Option<Vec<Text<'a>>>,
    #[serde(borrow, default)]
    pub nulled_fields: Option<Vec<Text<'a>>>,
    #[serde(default)]
    pub commit_timestamp: Option<i64>,
    #[serde(default)]
    pub commit_number: Option<u64>,
    #[serde(default)]
    pub sequence_number: Option<u64>,
}

fn text<'s>(t: &'s Option<Text<'_>>) -> &'s str {
    t.as_ref().map_or("", Text::as_str)
}

fn list<'s, 'a>(t: &'s Option<Vec<Text<'a>>>) -> &'s [Text<'a>] {
    t.as_deref().unwrap_or_default()
}

impl<'a> Header<'a> {
    pub fn entity_name(&self) -> &str {
        text(&self.entity_name)
    }
    pub fn change_type(&self) -> &str {
        text(&self.change_type)
    }
    pub fn change_origin(&self) -> &str {
        text(&self.change_origin)
    }
    pub fn record_ids(&self) -> &[Text<'a>] {
        list(&self.record_ids)
    }
    pub fn changed_fields(&self) -> &[Text<'a>] {
        list(&self.changed_fields)
    }
    pub fn nulled_fields(&self) -> &[Text<'a>] {
        list(&self.nulled_fields)
    }
}

/// A payload field's value as the page holds it.
#[derive(Clone, Copy, Debug)]
pub enum FieldValue<'a> {
    Raw(&'a RawValue),
    Decoded(&'a Value),
}

impl FieldValue<'_> {
    /// The value, owned (what the consumer hands on).
    pub fn to_value(self) -> Value {
        match self {
            FieldValue::Raw(r) => serde_json::from_str(r.get()).unwrap_or(Value::Null),
            FieldValue::Decoded(v) => v.clone(),
        }
    }

    /// The value when it is a string.
    pub fn as_string(self) -> Option<String> {
        match self {
            FieldValue::Raw(r) => serde_json::from_str::<String>(r.get()).ok(),
            FieldValue::Decoded(v) => v.as_str().map(str::to_string),
        }
    }
}

impl PartialEq for FieldValue<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.to_value() == other.to_value()
    }
}

/// One change event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeEvent<'a> {
    pub replay_id: u64,
    /// `EventUuid` (empty when absent).
    pub uuid: Text<'a>,
    pub header: Header<'a>,
    /// The payload's fields besides the header, in the order they came.
    pub fields: Vec<(Text<'a>, FieldValue<'a>)>,
}

impl<'a> ChangeEvent<'a> {
    /// The payload's value of `field`.
    pub fn field(&self, name: &str) -> Option<FieldValue<'a>> {
        self.fields
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|&(_, v)| v)
    }

    /// An event in the long-poll's JSON shape, already decoded.
    fn from_value(v: &'a Value) -> Result<Self, serde_json::Error> {
        let mut event = ChangeEvent {
            replay_id: v.get("replayId").and_then(Value::as_u64).unwrap_or(0),
            uuid: v
                .get("EventUuid")
                .and_then(Value::as_str)
                .map(|s| Text(Cow::Borrowed(s)))
                .unwrap_or_default(),
            ..ChangeEvent::default()
        };
        if let Some(Value::Object(payload)) = v.get("payload") {
            for (k, value) in payload {
                if k == "ChangeEventHeader" {
                    event.header = Header::deserialize(value)?;
                } else {
                    event
                        .fields
                        .push((Text(Cow::Borrowed(k)), FieldValue::Decoded(value)));
                }
            }
        }
        Ok(event)
    }
}

/// The long-poll answer: only its events are read here.
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow, default)]
    events: Vec<ChangeEvent<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ChangeEvent<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ChangeEvent<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a change event")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<ChangeEvent<'a>, M::Error> {
                let mut event = ChangeEvent::default();
                while let Some(key) = m.next_key::<Text<'de>>()? {
                    match key.as_str() {
                        "replayId" => event.replay_id = m.next_value::<Option<u64>>()?.unwrap_or(0),
                        "EventUuid" => {
                            event.uuid = m.next_value::<Option<Text<'a>>>()?.unwrap_or_default()
                        }
                        "payload" => {
                            let p: Payload<'a> = m.next_value()?;
                            event.header = p.header;
                            event.fields = p.fields;
                        }
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(event)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A payload: the header typed, every other field kept as its raw JSON.
struct Payload<'a> {
    header: Header<'a>,
    fields: Vec<(Text<'a>, FieldValue<'a>)>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Payload<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Payload<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event payload")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Payload<'a>, M::Error> {
                let mut p = Payload {
                    header: Header::default(),
                    fields: Vec::new(),
                };
                while let Some(key) = m.next_key::<Text<'a>>()? {
                    if key.as_str() == "ChangeEventHeader" {
                        p.header = m.next_value()?;
                    } else {
                        let raw: &'a RawValue = m.next_value()?;
                        p.fields.push((key, FieldValue::Raw(raw)));
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({"channel": "/data/AccountChangeEvent", "replayId": 7, "EventUuid": "u-1",
               "payload": {"ChangeEventHeader": {"entityName": "Account", "recordIds": ["001A"],
                   "changeType": "UPDATE", "changeOrigin": "x;client=\"q\"", "commitTimestamp": 5,
                   "commitNumber": 2, "sequenceNumber": 1, "changedFields": ["Rating"],
                   "nulledFields": [], "diffFields": [], "transactionKey": "ab"},
                 "Rating": "Hot", "Ext__c": "C-1", "Score__c": 12.5, "Name": null}})
    }

    #[test]
    fn a_page_reads_the_same_as_text_and_as_decoded_values() {
        let text = EventPage::Json(
            json!({"topic": "t", "events": [event()], "latestReplayId": 7}).to_string(),
        );
        let values = EventPage::Values(vec![event()]);
        let (a, b) = (text.read().unwrap(), values.read().unwrap());
        assert_eq!(a, b);
        let e = &a[0];
        assert_eq!(e.replay_id, 7);
        assert_eq!(e.uuid.as_str(), "u-1");
        assert_eq!(e.header.entity_name(), "Account");
        assert_eq!(e.header.change_type(), "UPDATE");
        assert_eq!(e.header.change_origin(), "x;client=\"q\"");
        assert_eq!(e.header.record_ids()[0].as_str(), "001A");
        assert_eq!(e.header.changed_fields()[0].as_str(), "Rating");
        assert_eq!(
            (
                e.header.commit_timestamp,
                e.header.commit_number,
                e.header.sequence_number
            ),
            (Some(5), Some(2), Some(1))
        );
        assert_eq!(e.field("Rating").unwrap().to_value(), json!("Hot"));
        assert_eq!(e.field("Score__c").unwrap().to_value(), json!(12.5));
        assert_eq!(e.field("Name").unwrap().to_value(), Value::Null);
        assert_eq!(
            e.field("Ext__c").unwrap().as_string().as_deref(),
            Some("C-1")
        );
        assert!(e.field("ChangeEventHeader").is_none());
        // Unescaped strings are borrowed from the page; escaped ones are copied.
        assert!(matches!(
            e.header.entity_name.as_ref().unwrap().0,
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            a[0].header.change_origin.as_ref().unwrap().0,
            Cow::Owned(_)
        ));
    }

    #[test]
    fn missing_and_null_header_fields_read_as_empty_and_a_wrong_type_is_an_error() {
        let page = EventPage::Json(
            r#"{"events": [{"payload": {"ChangeEventHeader": {"entityName": null}}}]}"#.into(),
        );
        let e = &page.read().unwrap()[0];
        assert_eq!(
            (e.replay_id, e.uuid.as_str(), e.header.entity_name()),
            (0, "", "")
        );
        assert!(e.header.record_ids().is_empty());
        let bad = EventPage::Json(
            r#"{"events": [{"payload": {"ChangeEventHeader": {"recordIds": [1]}}}]}"#.into(),
        );
        let err = bad.read().unwrap_err();
        assert!(err.contains("unreadable change-event page"), "{err}");
    }
}
