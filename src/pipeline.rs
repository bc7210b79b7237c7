//! From complaints ready to append to durable acceptance: stamp ids and
//! languages, append once in Redis, or spool while Redis is unavailable.

use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Complaint, Fragment, Receipt};

use crate::language::LanguageDetector;
use crate::redis::{Redis, RedisError};
use crate::spool::{Event, Spool, SpoolError};
use crate::telemetry;

/// Why complaints could not be durably accepted. Nothing was acknowledged;
/// the caller answers so that the provider retries.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("storage unavailable: {0}")]
    Unavailable(#[from] RedisError),
    /// Redis failed and the spool is at its size cap: refused rather than
    /// accepted without a place to keep it.
    #[error("redis unavailable and spool full ({0})")]
    SpoolFull(&'static str),
    #[error("redis unavailable and spool failed: {0}")]
    Spool(SpoolError),
}

/// Where every complaint goes, whatever its channel: Redis, else the spool.
pub struct Pipeline {
    redis: Arc<Redis>,
    spool: Option<Arc<Spool>>,
    language: LanguageDetector,
}

impl Pipeline {
    /// A pipeline that falls back to `spool`, when there is one, while Redis
    /// fails or is slow; without one, publishing fails with Redis.
    pub fn new(redis: Arc<Redis>, spool: Option<Arc<Spool>>, language: LanguageDetector) -> Self {
        Pipeline {
            redis,
            spool,
            language,
        }
    }

    /// The Redis behind the pipeline.
    pub fn redis(&self) -> &Arc<Redis> {
        &self.redis
    }

    /// The spool, when one is configured.
    pub fn spool(&self) -> Option<&Arc<Spool>> {
        self.spool.as_ref()
    }

    /// The language detector complaints are stamped with.
    pub fn language(&self) -> &LanguageDetector {
        &self.language
    }

    /// True while the spool holds records: new writes then go to the spool
    /// too, so that the forwarder writes the stream in acceptance order.
    pub fn spooling(&self) -> bool {
        self.spool.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// Stamps ids and languages, appends each complaint exactly once. `Ok`
    /// means every complaint is durably accepted (or was already): in Redis,
    /// or fsynced in the spool when Redis failed or missed its deadline.
    ///
    /// A spooled complaint's receipt says `duplicate: false` even when it turns
    /// out to be a redelivery; the forwarder's dedup step still writes it once.
    pub async fn publish(
        &self,
        complaints: &mut [Complaint],
    ) -> Result<Vec<Receipt>, PublishError> {
        for complaint in complaints.iter_mut() {
            self.language.stamp(complaint);
            complaint.tracking = Some(self.redis.first_tracking(complaint));
        }
        if !self.spooling() {
            match self.redis.append(complaints).await {
                Ok(receipts) => return Ok(receipts),
                Err(e) => self.redis_failed(e)?,
            }
        }
        let Some(spool) = &self.spool else {
            return Ok(Vec::new());
        };
        spooled(spool.put(complaints).await)?;
        Ok(complaints
            .iter()
            .map(|c| Receipt {
                id: c.id.clone(),
                external_id: c.external_id.clone(),
                duplicate: false,
                tracking: c.tracking.clone(),
            })
            .collect())
    }

    /// Keeps parts of split messages in the spool, for the forwarder to hold
    /// in Redis once it answers again.
    pub async fn spool_fragments(
        &self,
        fragments: &[Fragment],
        window: Duration,
    ) -> Result<(), PublishError> {
        match &self.spool {
            Some(spool) => spooled(spool.put_fragments(fragments, window).await),
            None => Err(PublishError::Unavailable(RedisError::Unavailable(
                "no spool configured".into(),
            ))),
        }
    }

    /// Keeps opt-outs, opt-ins or delivery reports in the spool, for the
    /// forwarder to record in their place once Redis answers again.
    pub async fn spool_event(&self, event: &Event) -> Result<(), PublishError> {
        match &self.spool {
            Some(spool) => spooled(spool.put_event(event).await),
            None => Err(PublishError::Unavailable(RedisError::Unavailable(
                "no spool configured".into(),
            ))),
        }
    }

    /// A failed append: fine when there is a spool to fall back to.
    pub fn redis_failed(&self, e: RedisError) -> Result<(), PublishError> {
        telemetry::redis_error("append");
        tracing::warn!(error = %e, "redis append failed");
        match self.spool {
            Some(_) => Ok(()),
            None => Err(e.into()),
        }
    }
}

/// The outcome of a spool write as the pipeline reports it.
fn spooled(result: Result<(), SpoolError>) -> Result<(), PublishError> {
    match result {
        // Logged by the spool, once a second: during an outage every request is spooled.
        Ok(()) => Ok(()),
        Err(SpoolError::Full(limit)) => {
            tracing::warn!(limit, "spool full; refusing");
            Err(PublishError::SpoolFull(limit))
        }
        Err(e) => {
            tracing::error!(error = %e, "spool write failed");
            Err(PublishError::Spool(e))
        }
    }
}
