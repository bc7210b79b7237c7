//! The gateway's side of polling channels: publishing through the pipeline,
//! leases and cursors kept in Redis so replicas cooperate.

use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Complaint, Host, HostError, Receipt, Timestamp};

use crate::pipeline::Pipeline;
use crate::telemetry;

/// Takes or renews a lease held by ARGV[1] for ARGV[2] ms.
const TAKE_LEASE: &str = r#"
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"#;

/// Deletes the lease only if ARGV[1] holds it.
const RELEASE_LEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// [`Host`] backed by the pipeline and Redis.
pub struct RedisHost {
    pipeline: Arc<Pipeline>,
    /// Identifies this process as a lease holder.
    owner: String,
    /// Where pollers' attachment bytes go (email), when the gateway keeps them.
    blobs: Option<crate::blobs::BlobStore>,
}

impl RedisHost {
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        RedisHost {
            pipeline,
            owner: ulid::Ulid::generate().to_string(),
            blobs: None,
        }
    }

    /// Lets pollers store attachment bytes in `store`.
    pub fn with_blobs(mut self, store: crate::blobs::BlobStore) -> Self {
        self.blobs = Some(store);
        self
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.pipeline.sink().prefix())
    }

    async fn conn(&self) -> Result<redis::aio::ConnectionManager, HostError> {
        self.pipeline
            .sink()
            .connection()
            .await
            .map_err(|e| HostError(e.to_string()))
    }
}

fn host_err(e: redis::RedisError) -> HostError {
    metrics::counter!(telemetry::REDIS_ERRORS, "op" => "host").increment(1);
    HostError(e.to_string())
}

#[async_trait::async_trait]
impl Host for RedisHost {
    async fn publish(&self, complaints: Vec<Complaint>) -> Result<Vec<Receipt>, HostError> {
        self.pipeline
            .publish(complaints)
            .await
            .map_err(|e| HostError(e.to_string()))
    }

    async fn store_blobs(&self, blobs: Vec<aduan_adapter::Blob>) -> Result<(), HostError> {
        match &self.blobs {
            Some(store) => store
                .put_all(blobs)
                .await
                .map_err(|e| HostError(e.to_string())),
            None if blobs.is_empty() => Ok(()),
            None => Err(HostError("this gateway keeps no attachment bytes".into())),
        }
    }

    fn ignored(&self, instance: &str, reason: &'static str) {
        metrics::counter!(telemetry::IGNORED, "route" => "poll", "instance" => instance.to_string(), "reason" => reason)
            .increment(1);
    }

    async fn lease(&self, name: &str, ttl: Duration) -> Result<bool, HostError> {
        let mut conn = self.conn().await?;
        let held: i64 = redis::Script::new(TAKE_LEASE)
            .key(self.key("lease", name))
            .arg(&self.owner)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(host_err)?;
        Ok(held == 1)
    }

    async fn release(&self, name: &str) -> Result<(), HostError> {
        let mut conn = self.conn().await?;
        let _: i64 = redis::Script::new(RELEASE_LEASE)
            .key(self.key("lease", name))
            .arg(&self.owner)
            .invoke_async(&mut conn)
            .await
            .map_err(host_err)?;
        Ok(())
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<String>, HostError> {
        let mut conn = self.conn().await?;
        redis::cmd("GET")
            .arg(self.key("cursor", name))
            .query_async(&mut conn)
            .await
            .map_err(host_err)
    }

    async fn store_cursor(&self, name: &str, value: &str) -> Result<(), HostError> {
        let mut conn = self.conn().await?;
        redis::cmd("SET")
            .arg(self.key("cursor", name))
            .arg(value)
            .query_async::<()>(&mut conn)
            .await
            .map_err(host_err)
    }

    fn now(&self) -> Timestamp {
        Timestamp(chrono::Utc::now())
    }
}
