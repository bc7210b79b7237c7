//! What the gateway offers to channels that fetch messages themselves
//! (IMAP mailboxes, Telegram long polling) instead of receiving pushes.
//!
//! A poller runs one `run(host, shutdown)` loop. It never talks to Redis: the
//! [`Host`] publishes complaints durably, holds leases so that one replica
//! polls a given account, and keeps cursors (offsets, UIDs) that the poller
//! advances only after its complaints are accepted.

use std::time::Duration;

use crate::{Outcome, Receipt, Timestamp};

/// A failure of the gateway's storage; the poller backs off and retries.
#[derive(Debug, thiserror::Error)]
#[error("host unavailable: {0}")]
pub struct HostError(pub String);

/// The gateway as a polling channel sees it.
#[async_trait::async_trait]
pub trait Host: Send + Sync + 'static {
    /// Durably accepts what the poller made of a message, as an HTTP adapter's
    /// [`Outcome`]: attachment bytes stored first, then the complaints in Redis
    /// or the spool. `Ok` means nothing accepted can be lost any more;
    /// duplicates come back with `duplicate`.
    async fn accept(&self, outcome: Outcome) -> Result<Vec<Receipt>, HostError>;

    /// Counts non-complaint events the poller acknowledged.
    fn ignored(&self, instance: &str, reason: &'static str);

    /// Takes or renews the lease `name` for `ttl`. True while this replica holds it.
    async fn lease(&self, name: &str, ttl: Duration) -> Result<bool, HostError>;

    /// Gives the lease up, if held, so another replica can take over at once.
    async fn release(&self, name: &str) -> Result<(), HostError>;

    /// Reads a cursor saved by [`Host::store_cursor`].
    async fn load_cursor(&self, name: &str) -> Result<Option<String>, HostError>;

    /// Saves a cursor. Call only after the complaints it covers are published.
    async fn store_cursor(&self, name: &str, value: &str) -> Result<(), HostError>;

    /// The acceptance clock.
    fn now(&self) -> Timestamp;
}

/// Resolves when the gateway is shutting down.
pub type Shutdown = tokio_util::sync::CancellationToken;

/// A channel that fetches its own messages. Built from configuration by the
/// gateway and started once per instance.
pub trait Poller: Send + 'static {
    /// Runs until `shutdown` is cancelled. Errors are handled inside (backoff,
    /// reconnect); the loop only returns on shutdown.
    fn run(
        self: Box<Self>,
        host: std::sync::Arc<dyn Host>,
        shutdown: Shutdown,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}
