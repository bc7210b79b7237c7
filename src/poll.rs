//! The door of polling channels (IMAP mailboxes, Telegram long polling):
//! what they publish goes through the ingest service; their leases and
//! cursors are kept in Redis so that replicas cooperate.

use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Host, HostError, Outcome, Receipt, Timestamp};

use crate::ingest::{Door, Ingest};
use crate::instances::Instance;
use crate::telemetry;

/// [`Host`] for one polling instance.
pub struct PollHost {
    ingest: Arc<Ingest>,
    instance: Arc<Instance>,
    /// Identifies this process as a lease holder.
    owner: String,
}

impl PollHost {
    /// The host `instance`'s poller runs on.
    pub fn new(ingest: Arc<Ingest>, instance: Arc<Instance>) -> Self {
        PollHost {
            ingest,
            instance,
            owner: ulid::Ulid::generate().to_string(),
        }
    }
}

fn host_err(e: impl std::fmt::Display) -> HostError {
    HostError(e.to_string())
}

#[async_trait::async_trait]
impl Host for PollHost {
    async fn accept(&self, outcome: Outcome) -> Result<Vec<Receipt>, HostError> {
        self.ingest
            .accept(&self.instance, outcome, Door::Poll)
            .await
            .map_err(host_err)
    }

    fn ignored(&self, instance: &str, reason: &'static str) {
        telemetry::ignored(Door::Poll.label(), instance, reason);
    }

    async fn lease(&self, name: &str, ttl: Duration) -> Result<bool, HostError> {
        self.ingest
            .redis()
            .take_lease(name, &self.owner, ttl)
            .await
            .map_err(host_err)
    }

    async fn release(&self, name: &str) -> Result<(), HostError> {
        self.ingest
            .redis()
            .release_lease(name, &self.owner)
            .await
            .map_err(host_err)
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<String>, HostError> {
        self.ingest
            .redis()
            .load_cursor(name)
            .await
            .map_err(host_err)
    }

    async fn store_cursor(&self, name: &str, value: &str) -> Result<(), HostError> {
        self.ingest
            .redis()
            .store_cursor(name, value)
            .await
            .map_err(host_err)
    }

    fn now(&self) -> Timestamp {
        Timestamp(chrono::Utc::now())
    }
}
