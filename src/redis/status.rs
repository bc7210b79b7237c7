//! The status loop's Redis operations: finding the complaint an entry names,
//! applying one status entry in one script (idempotent by `status_id`, the
//! latest never replaced by an older entry, a bounded history, the
//! citizen's notification queued and the entry acknowledged in the same
//! step), and reading a complaint's status back.
//!
//! Every key is in the complaint's slot, kept as long as its reply route.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;

use super::replies::Streams;
use super::{Redis, RedisError};

/// At most this many entries of a complaint's history are kept.
pub const HISTORY: usize = 50;

/// KEYS[1] the status id's seen key, KEYS[2] the status hash, KEYS[3] the
/// history list, KEYS[4] the outbound stream, KEYS[5] the status stream.
/// ARGV[1] the keep time (ms), ARGV[2] the public status JSON, ARGV[3] its
/// `at` (ms), ARGV[4] the notification's reply JSON (`''`: none), ARGV[5]
/// the history bound, ARGV[6] the group, ARGV[7] the entry id.
/// Returns 0 for an entry seen before, 1 when it joined the history only
/// (older than the latest), 2 when it became the latest.
const APPLY_STATUS_LUA: &str = r#"
local fresh = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
local outcome = 0
if fresh then
  redis.call('LPUSH', KEYS[3], ARGV[2])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
  outcome = 1
  local latest = redis.call('HGET', KEYS[2], 'at')
  if (not latest) or tonumber(ARGV[3]) >= tonumber(latest) then
    redis.call('HSET', KEYS[2], 'latest', ARGV[2], 'at', ARGV[3])
    outcome = 2
    if ARGV[4] ~= '' then
      redis.call('XADD', KEYS[4], '*', 'reply', ARGV[4])
    end
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
redis.call('XACK', KEYS[5], ARGV[6], ARGV[7])
return outcome
"#;

static APPLY_STATUS: LazyLock<Script> = LazyLock::new(|| Script::new(APPLY_STATUS_LUA));

/// KEYS[1] the events stream, KEYS[2] the status stream; ARGV[1] the
/// `status_rejected` event JSON, ARGV[2] the group, ARGV[3] the entry id.
const REJECT_STATUS_LUA: &str = r#"
redis.call('XADD', KEYS[1], '*', 'type', 'status_rejected', 'event', ARGV[1])
redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
return 0
"#;

static REJECT_STATUS: LazyLock<Script> = LazyLock::new(|| Script::new(REJECT_STATUS_LUA));

/// What applying an entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The same `status_id` was applied before: nothing changed.
    Seen,
    /// Kept in the history; the latest is newer.
    History,
    /// The complaint's latest status now (its notification, if any, queued).
    Latest,
}

/// A complaint's stored status: the latest, and the history newest first.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    pub latest: Option<String>,
    pub history: Vec<String>,
}

/// One status entry, ready to apply.
pub struct StatusWrite<'a> {
    pub status_id: &'a str,
    pub complaint_id: &'a str,
    /// The public status JSON kept in the store.
    pub public: &'a str,
    pub at_ms: i64,
    /// The notification's `aduan.reply.v1` JSON, when the citizen is told.
    pub notification: Option<&'a str>,
    pub entry_id: &'a str,
}

impl Redis {
    /// The complaint a tracking number was given to, and its instance.
    pub async fn complaint_of_number(
        &self,
        number: &str,
    ) -> Result<Option<(String, String)>, RedisError> {
        let mut conn = self.connection().await?;
        let held: Option<String> = ::redis::cmd("GET")
            .arg(self.keys.tracking(number))
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("status", e))?;
        Ok(held.map(|h| match h.split_once(' ') {
            Some((id, instance)) => (id.to_string(), instance.to_string()),
            None => (h, String::new()),
        }))
    }

    /// The tracking number a complaint was given, and its instance: the
    /// first of its candidates (in this partition) that it holds.
    pub async fn number_of_complaint(
        &self,
        complaint_id: &str,
    ) -> Result<Option<(String, String)>, RedisError> {
        let candidates = self.candidates(complaint_id);
        let mut conn = self.connection().await?;
        let mut pipe = ::redis::pipe();
        for c in &candidates {
            pipe.cmd("GET").arg(self.keys.tracking(c));
        }
        let held: Vec<Option<String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("status", e))?;
        for (number, value) in candidates.into_iter().zip(held) {
            if let Some(v) = value {
                let (id, instance) = v.split_once(' ').unwrap_or((v.as_str(), ""));
                if id == complaint_id {
                    return Ok(Some((number, instance.to_string())));
                }
            }
        }
        Ok(None)
    }

    /// A complaint's reply route JSON, if it is still kept.
    pub async fn route_of(&self, complaint_id: &str) -> Result<Option<String>, RedisError> {
        let mut conn = self.connection().await?;
        ::redis::cmd("HGET")
            .arg(self.keys.route(complaint_id))
            .arg("r")
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("status", e))
    }

    /// Applies one status entry of `s` (the status stream) and acknowledges it.
    pub async fn apply_status(
        &self,
        s: &Streams,
        w: &StatusWrite<'_>,
    ) -> Result<Applied, RedisError> {
        let keep = Duration::from_millis(self.ttls.route_ms);
        let mut conn = self.connection().await?;
        let outcome: i64 = APPLY_STATUS
            .key(self.keys.status_seen(w.status_id))
            .key(self.keys.status(w.complaint_id))
            .key(self.keys.status_history(w.complaint_id))
            .key(self.keys.named(&self.outbound_stream))
            .key(&s.outbound)
            .arg(keep.as_millis().max(1) as u64)
            .arg(w.public)
            .arg(w.at_ms)
            .arg(w.notification.unwrap_or(""))
            .arg(HISTORY)
            .arg(&s.group)
            .arg(w.entry_id)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("status", e))?;
        Ok(match outcome {
            0 => Applied::Seen,
            1 => Applied::History,
            _ => Applied::Latest,
        })
    }

    /// Refuses one status entry: its `status_rejected` event and its
    /// acknowledgement, in one step.
    pub async fn reject_status(
        &self,
        s: &Streams,
        entry_id: &str,
        event: &str,
    ) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        REJECT_STATUS
            .key(&s.events)
            .key(&s.outbound)
            .arg(event)
            .arg(&s.group)
            .arg(entry_id)
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(|e| RedisError::command("status", e))
    }

    /// A complaint's stored status.
    pub async fn status_of(&self, complaint_id: &str) -> Result<Stored, RedisError> {
        let mut conn = self.connection().await?;
        let (latest, history): (Option<String>, Vec<String>) = ::redis::pipe()
            .cmd("HGET")
            .arg(self.keys.status(complaint_id))
            .arg("latest")
            .cmd("LRANGE")
            .arg(self.keys.status_history(complaint_id))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("status", e))?;
        Ok(Stored { latest, history })
    }
}
