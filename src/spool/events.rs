//! Opt-outs, opt-ins and delivery reports kept while Redis is away. A
//! citizen's `BERHENTI` or a provider's receipt answered `503` is lost when
//! the provider does not retry (Twilio does not, by default), so they are
//! spooled like complaints: one record per request, in acceptance order
//! among the complaints, applied by the forwarder when it reaches them.

use aduan_adapter::{Channel, Consent, StatusReport};
use serde::{Deserialize, Serialize};

use super::{RecordRef, Spool, SpoolError, now_ms};
use crate::outbound::reports::Reports;
use crate::redis::RedisError;

/// What one request said besides complaints: applied through the same
/// [`Reports`] whether directly or from the spool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// Opt-outs and opt-ins of an instance's senders, in the order received.
    Consents {
        instance: String,
        channel: Channel,
        consents: Vec<Consent>,
    },
    /// Delivery and read reports the provider sent to an instance's route.
    Reports {
        instance: String,
        reports: Vec<StatusReport>,
    },
}

impl Event {
    /// Records the event in Redis. Applying it twice (a direct write that
    /// reached Redis although it failed for the gateway, then its spooled
    /// copy) leaves the same consent; the events or delivery stream may hold
    /// its entry twice.
    pub async fn apply(&self, reports: &Reports) -> Result<(), RedisError> {
        match self {
            Event::Consents {
                instance,
                channel,
                consents,
            } => reports.consents(instance, *channel, consents).await,
            Event::Reports {
                instance,
                reports: list,
            } => reports.record(instance, list).await,
        }
    }
}

impl Spool {
    /// Writes `event` durably, after every record already waiting; the
    /// forwarder applies it in that place.
    pub async fn put_event(&self, event: &Event) -> Result<(), SpoolError> {
        let record = RecordRef {
            spooled_at_ms: now_ms(),
            complaint: None,
            part: None,
            event: Some(event),
        };
        self.write(vec![record]).await?;
        self.tally(&self.events_spooled, 1);
        Ok(())
    }
}
