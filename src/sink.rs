//! The Redis sink: one atomic "seen before? else append" step per complaint.
//!
//! The duplicate check and the `XADD` run inside one Lua script, so two
//! replicas (or a provider retry racing its original) can never both append.
//! The dedup key stores the first complaint's id, which a duplicate gets back.

use std::time::Duration;

use aduan_adapter::{Complaint, Receipt};
use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use crate::config::RedisConfig;

/// KEYS[1] dedup key, KEYS[2] stream.
/// ARGV: id, dedup ttl (ms), channel, instance, schema, complaint JSON.
/// Returns {1, id, entry id} when appended, {0, first id} for a duplicate.
const APPEND_ONCE: &str = r#"
local first = redis.call('GET', KEYS[1])
if first then
  return {0, first}
end
local entry = redis.call('XADD', KEYS[2], '*',
  'id', ARGV[1], 'channel', ARGV[3], 'instance', ARGV[4],
  'schema', ARGV[5], 'complaint', ARGV[6])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, ARGV[1], entry}
"#;

/// Why a complaint could not be appended. The caller falls back (spool) or answers 503.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    #[error("cannot serialize complaint: {0}")]
    Serialize(String),
}

/// Appends complaints to the stream exactly once.
pub struct RedisSink {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    script: redis::Script,
    stream: String,
    prefix: String,
    dedup_ttl_ms: u64,
    timeout: Duration,
}

impl RedisSink {
    /// Creates the sink. No connection is made until first use, so the gateway
    /// starts (and can spool) while Redis is down.
    pub fn new(cfg: &RedisConfig) -> Result<Self, SinkError> {
        let client = redis::Client::open(cfg.url.as_str())
            .map_err(|e| SinkError::Unavailable(e.to_string()))?;
        Ok(RedisSink {
            client,
            conn: Mutex::new(None),
            script: redis::Script::new(APPEND_ONCE),
            stream: cfg.stream.clone(),
            prefix: cfg.key_prefix.clone(),
            dedup_ttl_ms: cfg.dedup_window_seconds.saturating_mul(1000),
            timeout: Duration::from_millis(cfg.command_timeout_ms),
        })
    }

    /// The stream complaints go to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The key prefix for everything else the gateway stores.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A connection; the manager reconnects by itself once established.
    pub async fn connection(&self) -> Result<ConnectionManager, SinkError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok(conn.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| SinkError::Timeout(self.timeout))?
        .map_err(|e| SinkError::Unavailable(e.to_string()))?;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// The dedup key of a delivery: a digest, so that ids of any length and
    /// content make keys of one shape.
    pub fn dedup_key(&self, instance: &str, external_id: &str) -> String {
        let digest =
            aduan_adapter::verify::sha256_hex(format!("{instance}\u{0}{external_id}").as_bytes());
        format!("{}:dedup:{digest}", self.prefix)
    }

    /// Appends each complaint unless its (instance, external_id) was seen within
    /// the window. Complaints must already carry their id.
    pub async fn append(&self, complaints: &[Complaint]) -> Result<Vec<Receipt>, SinkError> {
        let mut conn = self.connection().await?;
        let mut receipts = Vec::with_capacity(complaints.len());
        for complaint in complaints {
            let json = serde_json::to_string(complaint)
                .map_err(|e| SinkError::Serialize(e.to_string()))?;
            let mut invocation = self.script.prepare_invoke();
            invocation
                .key(self.dedup_key(&complaint.instance, &complaint.external_id))
                .key(&self.stream)
                .arg(&complaint.id)
                .arg(self.dedup_ttl_ms)
                .arg(complaint.channel.as_str())
                .arg(&complaint.instance)
                .arg(&complaint.schema)
                .arg(json);
            let reply: Vec<redis::Value> =
                tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
                    .await
                    .map_err(|_| SinkError::Timeout(self.timeout))?
                    .map_err(|e| SinkError::Unavailable(e.to_string()))?;
            let (appended, id) = decode_reply(&reply)?;
            receipts.push(Receipt {
                id,
                external_id: complaint.external_id.clone(),
                duplicate: !appended,
            });
        }
        Ok(receipts)
    }

    /// True when Redis answers `PING` within the deadline.
    pub async fn ping(&self) -> bool {
        let Ok(mut conn) = self.connection().await else {
            return false;
        };
        matches!(
            tokio::time::timeout(
                self.timeout,
                redis::cmd("PING").query_async::<String>(&mut conn)
            )
            .await,
            Ok(Ok(_))
        )
    }
}

fn decode_reply(reply: &[redis::Value]) -> Result<(bool, String), SinkError> {
    let flag = match reply.first() {
        Some(redis::Value::Int(n)) => *n == 1,
        other => return Err(SinkError::Protocol(format!("flag {other:?}"))),
    };
    let id = match reply.get(1) {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s.clone(),
        other => return Err(SinkError::Protocol(format!("id {other:?}"))),
    };
    Ok((flag, id))
}
