//! The gate's change-event sink: it keeps every change it accepts (a [`MemorySink`]) and
//! refuses the deliveries a scenario's `events.sink_refuses` names, as a source that is down
//! would, so the gate can judge a consumer that must lose nothing and duplicate nothing
//! across the refusals and its restarts.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::engine::cdc::{CrmChange, CrmChangeSink, MemorySink, SinkError};
use crate::sim::scenario::EventFaults;

/// A sink that accepts `accept_first` deliveries, refuses the next `refuse`, then accepts
/// again. A delivery is one non-empty hand-over of changes.
#[derive(Debug, Default)]
pub struct RefusingSink {
    kept: MemorySink,
    accept_first: u32,
    refuse: u32,
    /// (deliveries offered so far, of which refused).
    counts: Mutex<(u32, u32)>,
}

impl RefusingSink {
    /// The sink a scenario's change-event section asks for (refusing nothing by default).
    pub fn for_events(events: &EventFaults) -> Self {
        RefusingSink {
            kept: MemorySink::new(),
            accept_first: events.sink_accepts_first,
            refuse: events.sink_refuses,
            counts: Mutex::new((0, 0)),
        }
    }

    /// Every change accepted, in order.
    pub fn delivered(&self) -> Vec<CrmChange> {
        self.kept.delivered()
    }

    /// Deliveries refused so far.
    pub fn refused(&self) -> u32 {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// Refusals the scenario asked for that have not happened yet.
    pub fn refusals_left(&self) -> u32 {
        self.refuse - self.refused()
    }
}

#[async_trait]
impl CrmChangeSink for RefusingSink {
    async fn apply(&self, changes: &[CrmChange]) -> Result<(), SinkError> {
        if changes.is_empty() {
            return Ok(());
        }
        {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            let offered = counts.0;
            counts.0 += 1;
            if offered >= self.accept_first && counts.1 < self.refuse {
                counts.1 += 1;
                return Err(SinkError(format!(
                    "the source refused the changes (refusal {} of {})",
                    counts.1, self.refuse
                )));
            }
        }
        self.kept.apply(changes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cdc::ChangeVia;
    use crate::sim::Timestamp;

    fn change() -> CrmChange {
        CrmChange {
            object: "Account".into(),
            source_id: "CUST-1".into(),
            record_id: "001".into(),
            field: "Account_Manager__c".into(),
            value: serde_json::json!("Mei Chen"),
            changed_at: Timestamp::from_millis(0),
            replay_id: Some(1),
            event_uuid: Some("u1".into()),
            via: ChangeVia::Event,
        }
    }

    #[tokio::test]
    async fn accepts_then_refuses_then_accepts_again() {
        let sink = RefusingSink::for_events(&EventFaults {
            sink_refuses: 2,
            sink_accepts_first: 1,
            ..EventFaults::default()
        });
        let c = [change()];
        assert!(
            sink.apply(&[]).await.is_ok(),
            "an empty hand-over is no delivery"
        );
        assert!(sink.apply(&c).await.is_ok());
        assert!(sink.apply(&c).await.is_err());
        assert_eq!(sink.refusals_left(), 1);
        assert!(sink.apply(&c).await.is_err());
        assert!(sink.apply(&c).await.is_ok());
        assert_eq!(sink.refused(), 2);
        assert_eq!(sink.refusals_left(), 0);
        assert_eq!(sink.delivered().len(), 2);
    }
}
