//! Lanes: which records go out first. A run sends its **real-time** lane before its
//! **backfill** lane, each parent-first.
//!
//! A record is real-time when its source change (`changed_at`) lies within
//! `EngineConfig::realtime_window` of the clock's now (or after it), or when the caller
//! marks it so ([`super::Sync::with_realtime`]). Everything else is backfill. A real-time
//! child whose parent is only in the backfill lane pulls that parent (and, through it, the
//! grandparent) into the real-time lane, so the child never waits for a bulk job to land
//! its parent. The real-time lane always goes through sObject Collections (small, fast);
//! the backfill lane of an object goes through one Bulk API 2.0 job when it holds more
//! records than `EngineConfig::bulk_threshold`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::source::{SourceRecord, SourceSet};
use crate::contract::{Bundle, FieldType};
use crate::sim::Timestamp;

/// The two lanes of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    RealTime,
    Backfill,
}

impl Lane {
    pub fn label(self) -> &'static str {
        match self {
            Lane::RealTime => "real-time",
            Lane::Backfill => "backfill",
        }
    }

    /// The lane a [`Lane::label`] names.
    pub fn from_label(label: &str) -> Option<Lane> {
        match label {
            "real-time" => Some(Lane::RealTime),
            "backfill" => Some(Lane::Backfill),
            _ => None,
        }
    }
}

/// A caller's rule marking records real-time regardless of their change time.
pub type RealtimeRule = Arc<dyn Fn(&SourceRecord) -> bool + Send + std::marker::Sync>;

/// Records of each object, in the bundle's parent-first order, split in two lanes.
#[derive(Debug, Default)]
pub struct Plan<'s> {
    pub realtime: Vec<(String, Vec<&'s SourceRecord>)>,
    pub backfill: Vec<(String, Vec<&'s SourceRecord>)>,
}

/// Whether `record` changed within `window` of `now` (a change stamped later than `now`,
/// a source clock ahead of ours, counts as recent).
pub fn is_recent(record: &SourceRecord, now: Timestamp, window: Duration) -> bool {
    record.changed_at.is_some_and(|t| t.plus(window) >= now)
}

/// Every object's latest versions in `source`, in the order a run sends them: per lane
/// (real-time first), per object (parents first); objects with nothing to send left out.
pub fn in_order<'s>(
    bundle: &Bundle,
    source: &'s SourceSet,
    realtime: impl Fn(&SourceRecord) -> bool,
) -> Vec<(Lane, String, Vec<&'s SourceRecord>)> {
    let per_object = bundle
        .objects_parent_first()
        .into_iter()
        .map(|(object, spec)| (object.clone(), source.latest(&spec.source)))
        .collect();
    let plan = plan(bundle, per_object, realtime);
    [
        (Lane::RealTime, plan.realtime),
        (Lane::Backfill, plan.backfill),
    ]
    .into_iter()
    .flat_map(|(lane, objects)| {
        objects
            .into_iter()
            .filter(|(_, records)| !records.is_empty())
            .map(move |(object, records)| (lane, object, records))
    })
    .collect()
}

/// Splits `per_object` (parent-first, as `Bundle::objects_parent_first` orders them) into
/// lanes: `realtime` decides each record, then real-time children pull their parents.
pub fn plan<'s>(
    bundle: &Bundle,
    per_object: Vec<(String, Vec<&'s SourceRecord>)>,
    realtime: impl Fn(&SourceRecord) -> bool,
) -> Plan<'s> {
    let mut marked: Vec<Vec<bool>> = per_object
        .iter()
        .map(|(_, records)| records.iter().map(|r| realtime(r)).collect())
        .collect();
    // Children before parents, so a pulled parent pulls its own parent in turn.
    for child in (0..per_object.len()).rev() {
        let (object, records) = &per_object[child];
        let Some(spec) = bundle.object(object) else {
            continue;
        };
        let links: Vec<(&str, usize)> = spec
            .fields
            .values()
            .filter(|f| f.ty == FieldType::Reference)
            .filter_map(|f| {
                let column = f.from.as_deref()?;
                let parent = f.to.as_deref()?;
                let at = per_object.iter().position(|(o, _)| o == parent)?;
                (at != child).then_some((column, at))
            })
            .collect();
        for (column, at) in links {
            let wanted: BTreeSet<String> = records
                .iter()
                .zip(&marked[child])
                .filter(|(_, &rt)| rt)
                .filter_map(|(r, _)| source_key(r.data.get(column)?))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            for (i, parent) in per_object[at].1.iter().enumerate() {
                if wanted.contains(&parent.id) {
                    marked[at][i] = true;
                }
            }
        }
    }
    let mut out = Plan::default();
    for ((object, records), marks) in per_object.into_iter().zip(marked) {
        let (rt, bf): (Vec<_>, Vec<_>) = records.into_iter().zip(marks).partition(|(_, m)| *m);
        out.realtime
            .push((object.clone(), rt.into_iter().map(|(r, _)| r).collect()));
        out.backfill
            .push((object, bf.into_iter().map(|(r, _)| r).collect()));
    }
    out
}

/// A reference column's value as the parent's source ID.
fn source_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn rec(changed_at: Option<Timestamp>) -> SourceRecord {
        SourceRecord {
            entity: "accounts".into(),
            id: "A".into(),
            version: 1,
            data: Map::new(),
            changed_at,
            deleted: false,
            origin: "t".into(),
        }
    }

    #[test]
    fn recent_means_within_the_window_or_later() {
        let now = Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
        let w = Duration::from_secs(15 * 60);
        let at =
            |secs_before: i64| Some(Timestamp::from_millis(now.as_millis() - secs_before * 1000));
        assert!(is_recent(&rec(at(0)), now, w));
        assert!(is_recent(&rec(at(15 * 60)), now, w), "the edge is inside");
        assert!(!is_recent(&rec(at(15 * 60 + 1)), now, w));
        assert!(
            is_recent(&rec(at(-60)), now, w),
            "a source clock ahead of ours"
        );
        assert!(!is_recent(&rec(None), now, w), "no change time: backfill");
    }
}
