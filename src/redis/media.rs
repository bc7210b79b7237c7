//! The media worker's Redis operations: each attachment's outcome recorded
//! once with its event, the job's acknowledgement, and keeping a job that
//! waits for a retry from being taken over.

use std::collections::HashMap;
use std::time::Duration;

use super::replies::Streams;
use super::{Redis, RedisError, scripts};

impl Redis {
    /// The outcomes already recorded for a complaint's attachments, by index.
    pub async fn media_outcomes(
        &self,
        complaint_id: &str,
    ) -> Result<HashMap<usize, String>, RedisError> {
        let mut conn = self.connection().await?;
        let all: HashMap<String, String> = ::redis::cmd("HGETALL")
            .arg(self.keys.media(complaint_id))
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("media", e))?;
        Ok(all
            .into_iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
            .collect())
    }

    /// Records attachment `index`'s outcome and its event, unless an earlier
    /// attempt did. True when recorded now.
    pub async fn media_outcome(
        &self,
        complaint_id: &str,
        index: usize,
        kind: &str,
        event: &str,
        events_stream: &str,
        keep: Duration,
    ) -> Result<bool, RedisError> {
        let mut conn = self.connection().await?;
        let recorded: i64 = scripts::MEDIA_OUTCOME
            .key(self.keys.media(complaint_id))
            .key(events_stream)
            .arg(index)
            .arg(kind)
            .arg(event)
            .arg(keep.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("media", e))?;
        Ok(recorded == 1)
    }

    /// Acknowledges a work stream entry.
    pub async fn ack_entry(&self, s: &Streams, entry_id: &str) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        let _: i64 = ::redis::cmd("XACK")
            .arg(&s.outbound)
            .arg(&s.group)
            .arg(entry_id)
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("media", e))?;
        Ok(())
    }

    /// Resets a pending entry's idle time for this consumer, so that a job
    /// waiting for its next attempt is not taken over as abandoned.
    pub async fn touch_entry(&self, s: &Streams, entry_id: &str) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        let _: ::redis::Value = ::redis::cmd("XCLAIM")
            .arg(&s.outbound)
            .arg(&s.group)
            .arg(&s.consumer)
            .arg(0)
            .arg(entry_id)
            .arg("JUSTID")
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("media", e))?;
        Ok(())
    }
}
