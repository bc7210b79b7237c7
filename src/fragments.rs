//! Split messages (concatenated SMS): holding their parts in Redis until the
//! whole message has arrived, then appending it as one complaint.
//!
//! Each part is held by one Lua step that also remembers the part's own
//! provider id, so a part redelivered after its message was written is
//! recognised. A message whose parts are all held is assembled at once; a
//! group whose window passes is assembled from what arrived, marked
//! incomplete, by the sweeper ([`sweep`]) that every replica runs. The
//! sweeper first claims a group (renames it aside, so a part arriving just
//! then starts a new group rather than joining one already being written).
//! Groups and claims stay in Redis until their complaint is durably
//! appended, so a crash in between only delays the complaint; appends are
//! idempotent because the assembled `external_id` is the first held part's,
//! so replicas sweeping the same group write it once.
//!
//! The scripts touch several keys of one instance's groups and the shared
//! deadline index, so this store needs a single Redis node (or the index and
//! groups in one hash slot), not a sharded cluster.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use aduan_adapter::{Complaint, Fragment, Raw, Receipt};
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Pipeline, PublishError};
use crate::sink::SinkError;

/// How long a part's provider id is remembered: longer than any SMS
/// provider's retry horizon (Vonage retries for 24 hours).
const PART_MEMORY: Duration = Duration::from_secs(8 * 24 * 3600);

/// How often the sweeper looks for groups whose window has passed.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// Groups assembled per sweep round, so one round stays short.
const SWEEP_BATCH: isize = 100;

/// Counter of message parts and groups by `outcome`: `held`, `duplicate`,
/// `completed` (all parts arrived), `expired` (written incomplete).
pub const METRIC: &str = "aduan_message_parts_total";

/// Written where a part never arrived.
pub const MISSING_PART: &str = "[…]";

/// KEYS[1] group hash, KEYS[2] part-seen key, KEYS[3] deadline index.
/// ARGV: part number, part JSON, total, deadline (ms), part memory (ms).
/// Returns {'dup'} for a part whose message was already written, {'held'}
/// while parts are missing, {'complete', total, field, value, …} when all are held.
const ABSORB: &str = r#"
local fresh = redis.call('SET', KEYS[2], '1', 'PX', ARGV[5], 'NX')
if not fresh and redis.call('EXISTS', KEYS[1]) == 0 then
  return {'dup'}
end
redis.call('HSETNX', KEYS[1], 'p:' .. ARGV[1], ARGV[2])
if redis.call('HSETNX', KEYS[1], 'total', ARGV[3]) == 1 then
  redis.call('HSET', KEYS[1], 'deadline', ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[4], KEYS[1])
end
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
if redis.call('HLEN', KEYS[1]) - 2 >= total then
  local out = {'complete'}
  for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do
    table.insert(out, v)
  end
  return out
end
return {'held'}
"#;

/// KEYS[1] a due member (group or claimed key), KEYS[2] deadline index.
/// ARGV: claimed key base, score for a retry (ms).
/// Returns {} when the member is gone, else {claimed key, field, value, …}.
/// The claimed key carries the group's deadline so that claims of groups
/// reusing one reference never collide.
const CLAIM: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], KEYS[1])
  return {}
end
local target = KEYS[1]
if string.find(KEYS[1], ':frag:group:', 1, true) then
  target = ARGV[1] .. ':' .. (redis.call('HGET', KEYS[1], 'deadline') or '0')
  redis.call('RENAME', KEYS[1], target)
  redis.call('ZREM', KEYS[2], KEYS[1])
end
redis.call('ZADD', KEYS[2], ARGV[2], target)
local out = {target}
for _, v in ipairs(redis.call('HGETALL', target)) do
  table.insert(out, v)
end
return out
"#;

static CLAIM_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(CLAIM));

/// How long a claim may take before another replica takes it over.
const CLAIM_RETRY_MS: i64 = 60_000;

static ABSORB_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(ABSORB));

/// Why parts could not be held or a group released. Nothing was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum FragmentError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("redis: {0}")]
    Redis(String),
    #[error("held part unreadable: {0}")]
    Corrupt(String),
}

/// The Redis keys of the fragment store, all under the gateway's prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (the gateway's `redis.key_prefix`).
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    /// The hash holding one group's parts. A digest keeps provider text out of key names.
    fn group(&self, instance: &str, group: &str) -> String {
        let digest =
            aduan_adapter::verify::sha256_hex(format!("{instance}\u{0}{group}").as_bytes());
        format!("{}:frag:group:{digest}", self.prefix)
    }

    /// Remembers that a part (by its provider id) was received.
    fn part(&self, instance: &str, external_id: &str) -> String {
        let digest =
            aduan_adapter::verify::sha256_hex(format!("{instance}\u{0}{external_id}").as_bytes());
        format!("{}:frag:part:{digest}", self.prefix)
    }

    /// The sorted set of held groups by deadline (ms since the epoch).
    fn due(&self) -> String {
        format!("{}:frag:due", self.prefix)
    }
}

/// What [`absorb`] made of a request's parts.
#[derive(Debug, Default)]
pub struct Absorbed {
    /// Whole messages, ready to append.
    pub complaints: Vec<Complaint>,
    /// Their group hashes: pass to [`release`] once the complaints are durably appended.
    pub groups: Vec<String>,
}

/// Holds each part durably; returns the messages it completed.
///
/// A group's window starts with its first part; when it passes, [`sweep`]
/// writes whatever arrived.
pub async fn absorb(
    conn: &mut ConnectionManager,
    keys: &Keys,
    fragments: Vec<Fragment>,
    window: Duration,
) -> Result<Absorbed, FragmentError> {
    let mut absorbed = Absorbed::default();
    for fragment in fragments {
        let c = &fragment.complaint;
        let group_key = keys.group(&c.instance, &fragment.group);
        let deadline = c.received_at.0.timestamp_millis()
            + i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
        let json = serde_json::to_string(c).map_err(|e| FragmentError::Corrupt(e.to_string()))?;
        let reply: redis::Value = ABSORB_SCRIPT
            .key(&group_key)
            .key(keys.part(&c.instance, &c.external_id))
            .key(keys.due())
            .arg(fragment.part)
            .arg(json)
            .arg(fragment.total)
            .arg(deadline)
            .arg(PART_MEMORY.as_millis() as u64)
            .invoke_async(conn)
            .await
            .map_err(|e| FragmentError::Redis(e.to_string()))?;
        let items = strings(&reply)?;
        let outcome = items.first().map(String::as_str);
        let label = match outcome {
            Some("dup") => "duplicate",
            Some("complete") => "completed",
            _ => "held",
        };
        metrics::counter!(METRIC, "outcome" => label).increment(1);
        match outcome {
            Some("complete") => {
                let (total, parts) = held_parts(&items[1..])?;
                if let Some(whole) = assemble(parts, total) {
                    absorbed.complaints.push(whole);
                    absorbed.groups.push(group_key);
                }
            }
            Some("held") | Some("dup") => {}
            other => return Err(FragmentError::Corrupt(format!("absorb reply {other:?}"))),
        }
    }
    Ok(absorbed)
}

/// Forgets groups whose complaints are durably appended.
pub async fn release(
    conn: &mut ConnectionManager,
    keys: &Keys,
    groups: &[String],
) -> Result<(), FragmentError> {
    if groups.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for g in groups {
        pipe.del(g).ignore();
        pipe.zrem(keys.due(), g).ignore();
    }
    pipe.query_async::<()>(conn)
        .await
        .map_err(|e| FragmentError::Redis(e.to_string()))
}

/// Holds the parts, appends the messages they complete, and releases those
/// groups. The receipts are those of the complaints written (possibly none).
pub async fn accept(
    pipeline: &Pipeline,
    fragments: Vec<Fragment>,
    window: Duration,
) -> Result<Vec<Receipt>, FragmentError> {
    let keys = Keys::new(pipeline.sink().prefix());
    let mut conn = pipeline.sink().connection().await?;
    let absorbed = absorb(&mut conn, &keys, fragments, window).await?;
    if absorbed.complaints.is_empty() {
        return Ok(Vec::new());
    }
    let receipts = pipeline.publish(absorbed.complaints).await?;
    // The complaints are durable: a group left behind is only swept again
    // at its deadline, and that append is a duplicate.
    if let Err(e) = release(&mut conn, &keys, &absorbed.groups).await {
        tracing::warn!(error = %e, "written split message not released; the sweeper will");
    }
    Ok(receipts)
}

/// Appends every group whose window has passed at `now_ms`, complete or
/// not, and releases it. Returns how many groups were written.
pub async fn sweep_once(pipeline: &Pipeline, now_ms: i64) -> Result<usize, FragmentError> {
    let keys = Keys::new(pipeline.sink().prefix());
    let mut conn = pipeline.sink().connection().await?;
    let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(keys.due())
        .arg("-inf")
        .arg(now_ms)
        .arg("LIMIT")
        .arg(0)
        .arg(SWEEP_BATCH)
        .query_async(&mut conn)
        .await
        .map_err(|e| FragmentError::Redis(e.to_string()))?;
    let mut written = 0;
    for member in due {
        // Claiming moves the group out of the way first: a part arriving
        // while it is being written starts a group of its own instead of
        // joining one whose complaint is already on its way.
        let (claimed, fields) =
            match claim(&mut conn, &keys, &member, now_ms + CLAIM_RETRY_MS).await? {
                Claimed::Gone => continue,
                Claimed::Fields(claimed, fields) => (claimed, fields),
            };
        let (total, parts) = match held_parts(&fields) {
            Ok(held) => held,
            Err(e) => {
                // Left in place for inspection, but out of the index so it
                // cannot hold up the groups behind it.
                tracing::warn!(error = %e, "unreadable held group skipped");
                let _: () = redis::cmd("ZREM")
                    .arg(keys.due())
                    .arg(&claimed)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| FragmentError::Redis(e.to_string()))?;
                continue;
            }
        };
        let complete = (1..=total).all(|n| parts.contains_key(&n));
        if let Some(whole) = assemble(parts, total) {
            pipeline.publish(vec![whole]).await?;
            // A complete group here was counted when its last part came.
            if !complete {
                metrics::counter!(METRIC, "outcome" => "expired").increment(1);
            }
            written += 1;
        }
        release(&mut conn, &keys, std::slice::from_ref(&claimed)).await?;
    }
    Ok(written)
}

/// What claiming a due group found.
enum Claimed {
    /// Released meanwhile (written when complete, or by another replica).
    Gone,
    /// The claimed key and its fields.
    Fields(String, Vec<String>),
}

/// Renames a due group to a claimed key that stays in the index with a
/// later score, so that if this replica dies before writing it another
/// replica picks the claim up. A claimed key is re-claimed in place.
async fn claim(
    conn: &mut ConnectionManager,
    keys: &Keys,
    member: &str,
    retry_at_ms: i64,
) -> Result<Claimed, FragmentError> {
    let reply: redis::Value = CLAIM_SCRIPT
        .key(member)
        .key(keys.due())
        .arg(member.replacen(":frag:group:", ":frag:claimed:", 1))
        .arg(retry_at_ms)
        .invoke_async(conn)
        .await
        .map_err(|e| FragmentError::Redis(e.to_string()))?;
    let mut items = strings(&reply)?;
    if items.is_empty() {
        return Ok(Claimed::Gone);
    }
    let claimed = items.remove(0);
    Ok(Claimed::Fields(claimed, items))
}

/// Runs [`sweep_once`] until `shutdown`; every replica runs one.
pub async fn sweep(pipeline: Arc<Pipeline>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = chrono::Utc::now().timestamp_millis();
        match sweep_once(&pipeline, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(groups = n, "split messages written after their window"),
            // Redis being away is reported by the append path; retry next tick.
            Err(e) => tracing::debug!(error = %e, "fragment sweep failed"),
        }
    }
}

/// Reads a held group's hash (`total`, `deadline`, `p:<n>` → part JSON).
fn held_parts(fields: &[String]) -> Result<(u32, BTreeMap<u32, Complaint>), FragmentError> {
    let mut total = 0;
    let mut parts = BTreeMap::new();
    for pair in fields.chunks(2) {
        let [name, value] = pair else {
            return Err(FragmentError::Corrupt("odd field list".into()));
        };
        if name == "total" {
            total = value
                .parse()
                .map_err(|_| FragmentError::Corrupt("total".into()))?;
        } else if let Some(n) = name.strip_prefix("p:") {
            let n: u32 = n
                .parse()
                .map_err(|_| FragmentError::Corrupt("part number".into()))?;
            let c: Complaint =
                serde_json::from_str(value).map_err(|e| FragmentError::Corrupt(e.to_string()))?;
            parts.insert(n, c);
        }
    }
    Ok((total, parts))
}

/// One complaint from the parts held, in part order.
///
/// It takes the first held part's fields (its `external_id` among them).
/// The texts are joined as they are, since a split falls anywhere, even
/// inside a word. When parts are missing, each gap reads [`MISSING_PART`] in
/// the text and `subject` ends with `[incomplete: <held> of <total> parts]`.
/// `None` when no part is held.
pub fn assemble(parts: BTreeMap<u32, Complaint>, total: u32) -> Option<Complaint> {
    let first = parts.values().next()?;
    let mut out = first.clone();
    let held = parts.len() as u32;
    let complete = (1..=total).all(|n| parts.contains_key(&n));
    let mut text = String::new();
    let last = total.max(parts.keys().next_back().copied().unwrap_or(0));
    for n in 1..=last {
        match parts.get(&n) {
            Some(p) => text.push_str(&p.text),
            None => text.push_str(MISSING_PART),
        }
    }
    out.text = text;
    out.attachments = parts.values().flat_map(|p| p.attachments.clone()).collect();
    if !complete {
        let note = format!("[incomplete: {held} of {total} parts]");
        out.subject = Some(match out.subject.take() {
            Some(s) => format!("{s} {note}"),
            None => note,
        });
    }
    // Keep every part's exact bytes, one per line, when all were kept as text.
    let raws: Option<Vec<&Raw>> = parts.values().map(|p| p.raw.as_ref()).collect();
    out.raw = match raws {
        Some(raws) if raws.iter().all(|r| !r.content_type.ends_with(";base64")) => Some(Raw {
            content_type: first
                .raw
                .as_ref()
                .map(|r| r.content_type.clone())
                .unwrap_or_default(),
            body: raws
                .iter()
                .map(|r| r.body.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        }),
        _ => first.raw.clone(),
    };
    Some(out)
}

/// The flat list of strings in a script reply.
fn strings(v: &redis::Value) -> Result<Vec<String>, FragmentError> {
    let redis::Value::Array(items) = v else {
        return Err(FragmentError::Corrupt("absorb reply is not a list".into()));
    };
    items
        .iter()
        .map(|i| match i {
            redis::Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            redis::Value::SimpleString(s) => Ok(s.clone()),
            redis::Value::Int(n) => Ok(n.to_string()),
            other => Err(FragmentError::Corrupt(format!("{other:?}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_adapter::{Channel, Context, Timestamp};

    fn part(n: u32, text: &str, subject: Option<&str>) -> Complaint {
        let ctx = Context {
            instance: "vonage-jabar",
            received_at: Timestamp::from_unix_seconds(1_795_335_330).expect("in range"),
            keep_raw: true,
        };
        let mut c = Complaint::new(
            &ctx,
            Channel::Sms,
            "vonage",
            format!("msg-{n}"),
            "tel:+6281234567890",
        );
        c.text = text.to_string();
        c.subject = subject.map(str::to_string);
        c.raw = Some(Raw {
            content_type: "application/x-www-form-urlencoded".into(),
            body: format!("part={n}"),
        });
        c
    }

    #[test]
    fn complete_messages_join_without_separators() {
        let parts = BTreeMap::from([
            (2, part(2, "ya rusak ", None)),
            (1, part(1, "Jalan n", Some("LAPOR"))),
            (3, part(3, "parah", None)),
        ]);
        let whole = assemble(parts, 3).expect("parts held");
        assert_eq!(whole.text, "Jalan nya rusak parah");
        assert_eq!(whole.subject.as_deref(), Some("LAPOR"));
        assert_eq!(whole.external_id, "msg-1");
        assert_eq!(
            whole.raw.map(|r| r.body).as_deref(),
            Some("part=1\npart=2\npart=3")
        );
    }

    #[test]
    fn incomplete_messages_are_marked() {
        let parts = BTreeMap::from([(2, part(2, "tengah ", None)), (4, part(4, "akhir", None))]);
        let whole = assemble(parts, 4).expect("parts held");
        assert_eq!(whole.text, "[…]tengah […]akhir");
        assert_eq!(whole.subject.as_deref(), Some("[incomplete: 2 of 4 parts]"));
        assert_eq!(whole.external_id, "msg-2");

        let first_only = BTreeMap::from([(1, part(1, "awal ", Some("ADUAN")))]);
        let whole = assemble(first_only, 2).expect("parts held");
        assert_eq!(whole.text, "awal […]");
        assert_eq!(
            whole.subject.as_deref(),
            Some("ADUAN [incomplete: 1 of 2 parts]")
        );
        assert!(assemble(BTreeMap::new(), 2).is_none());
    }
}
