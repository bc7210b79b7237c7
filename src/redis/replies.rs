//! The outbound side: reading `aduan:outbound`, claiming and recording
//! replies, the retry set, and the indexes that match provider reports.

use std::time::Duration;

use ::redis::Value;

use super::{Conn, Redis, RedisError, scripts, strings};

/// One entry of a work stream: its id and its payload field.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    /// The payload field (`reply` on the outbound stream, `job` on the media
    /// stream); `None` when the entry has none (or it is not UTF-8).
    pub payload: Option<String>,
}

/// What the claim of a reply said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Send it: this is attempt `attempt`; `done` parts went out before
    /// (their ids in `ids`); the citizen's last message was at `window_ms`.
    Go {
        attempt: u32,
        done: usize,
        ids: Vec<String>,
        window_ms: Option<i64>,
    },
    /// Already sent (or failed for good): acknowledge, send nothing.
    Done,
    /// Another attempt holds it; `entry` is the entry it belongs to.
    Busy { entry: String },
    /// An earlier attempt's holder vanished mid-send and the instance does
    /// not send again.
    Uncertain {
        attempt: u32,
        done: usize,
        ids: Vec<String>,
    },
    /// The citizen opted out of messages on this instance.
    OptedOut { attempt: u32 },
}

/// An attempt's outcome as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Sent,
    /// The provider may have taken it: not final, never sent again; a
    /// provider report that names it settles it.
    Uncertain,
    Failed,
    Retrying,
    /// Wait in the retry set without an attempt (the instance was full).
    Defer,
    /// A delivery entry and the ack, for an entry with no reply to keep.
    Report,
    /// Only the ack (a duplicate entry of a reply handled elsewhere).
    Ack,
}

impl Record {
    fn as_str(self) -> &'static str {
        match self {
            Record::Sent => "sent",
            Record::Uncertain => "uncertain",
            Record::Failed => "failed",
            Record::Retrying => "retrying",
            Record::Defer => "defer",
            Record::Report => "report",
            Record::Ack => "ack",
        }
    }
}

/// Everything one record writes.
#[derive(Clone, Debug, Default)]
pub struct RecordArgs<'a> {
    pub reply_id: &'a str,
    pub entry_id: &'a str,
    pub delivery: &'a str,
    pub status: &'a str,
    pub due_ms: i64,
    pub event: &'a str,
    pub reply: &'a str,
    /// The provider ids sent, with their (instance, address) for the indexes.
    pub ids: &'a [String],
    pub instance: &'a str,
    pub to: &'a str,
    /// What a provider id maps back to (JSON).
    pub sent_index: &'a str,
    /// How many parts the reply has (kept with a `sent` or `uncertain`
    /// reply: a report about the last one settles an uncertain reply).
    pub parts: usize,
    pub now_ms: i64,
    /// The failure says the citizen opted out: remember it.
    pub remember_opt_out: bool,
}

/// One more part of a reply sent (see [`Redis::part_sent`]).
#[derive(Clone, Debug)]
pub struct PartSent<'a> {
    pub reply_id: &'a str,
    pub owner: &'a str,
    /// Parts sent so far, and every provider id of them.
    pub done: usize,
    pub ids: &'a [String],
    /// The ids of the part just sent (none: only renew the lease).
    pub new_ids: &'a [String],
    pub lease_until_ms: i64,
    pub instance: &'a str,
    pub to: &'a str,
    /// What a provider id maps back to (JSON).
    pub sent_index: &'a str,
    pub report_ttl: Duration,
    pub now_ms: i64,
}

/// The names and lifetimes the outbound side works with.
#[derive(Clone, Debug)]
pub struct Streams {
    /// The work stream read with the consumer group.
    pub outbound: String,
    /// Its payload field: `reply`, or `job` for the media stream.
    pub field: &'static str,
    pub delivery: String,
    pub events: String,
    pub group: String,
    pub consumer: String,
    /// How long a reply's state is kept after its last change.
    pub state_ttl: Duration,
    /// How long sent ids are kept to match provider reports.
    pub report_ttl: Duration,
}

/// This replica's consumer name in a group: the host's name and the process id.
pub fn default_consumer() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "aduan".into());
    format!("{host}-{}", std::process::id())
}

fn ms(d: Duration) -> u64 {
    d.as_millis().clamp(1, u64::MAX as u128) as u64
}

impl Redis {
    /// A connection of its own for blocking reads (a blocked command holds
    /// up every command behind it on the same connection).
    pub async fn blocking_connection(&self, block: Duration) -> Result<Conn, RedisError> {
        self.link.open(block + self.timeout()).await
    }

    /// Creates the consumer group at the stream's start (and the stream),
    /// unless it exists.
    pub async fn ensure_group(&self, s: &Streams) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        let created: Result<String, _> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&s.outbound)
            .arg(&s.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(RedisError::command("outbound", e)),
        }
    }

    /// Reads up to `count` entries for this consumer: new ones (`>`), or
    /// its own pending ones from an earlier run (`0`).
    pub async fn read_outbound(
        &self,
        conn: &mut Conn,
        s: &Streams,
        count: usize,
        block: Duration,
        pending: bool,
    ) -> Result<Vec<Entry>, RedisError> {
        let mut cmd = ::redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&s.group)
            .arg(&s.consumer)
            .arg("COUNT")
            .arg(count);
        if !pending {
            cmd.arg("BLOCK").arg(block.as_millis() as u64);
        }
        cmd.arg("STREAMS")
            .arg(&s.outbound)
            .arg(if pending { "0" } else { ">" });
        let reply: Value = cmd
            .query_async(conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        // Nil on timeout; else [[stream, [[id, [field, value, …]], …]]].
        let Value::Array(streams) = reply else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for stream in streams {
            if let Value::Array(pair) = stream
                && let Some(Value::Array(entries)) = pair.into_iter().nth(1)
            {
                out.extend(entries.into_iter().filter_map(|e| entry(e, s.field)));
            }
        }
        Ok(out)
    }

    /// Takes over entries pending longer than `min_idle` with any consumer.
    /// Returns the cursor to continue from (`0-0` when done) and the entries.
    pub async fn autoclaim(
        &self,
        s: &Streams,
        min_idle: Duration,
        start: &str,
        count: usize,
    ) -> Result<(String, Vec<Entry>), RedisError> {
        let mut conn = self.connection().await?;
        let reply: Value = ::redis::cmd("XAUTOCLAIM")
            .arg(&s.outbound)
            .arg(&s.group)
            .arg(&s.consumer)
            .arg(ms(min_idle))
            .arg(start)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        let Value::Array(parts) = reply else {
            return Err(RedisError::Protocol("XAUTOCLAIM reply".into()));
        };
        let mut parts = parts.into_iter();
        let next = match parts.next() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
            Some(Value::SimpleString(s)) => s,
            _ => return Err(RedisError::Protocol("XAUTOCLAIM cursor".into())),
        };
        let entries = match parts.next() {
            Some(Value::Array(items)) => items
                .into_iter()
                .filter_map(|e| entry(e, s.field))
                .collect(),
            _ => Vec::new(),
        };
        Ok((next, entries))
    }

    /// The stored routes of these complaints: (route JSON, window key) or
    /// `None` when unknown or expired. One round trip.
    pub async fn routes(
        &self,
        complaint_ids: &[&str],
    ) -> Result<Vec<Option<(String, String)>>, RedisError> {
        if complaint_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.connection().await?;
        let mut pipe = ::redis::pipe();
        for id in complaint_ids {
            pipe.cmd("HMGET").arg(self.keys.route(id)).arg("r").arg("w");
        }
        let replies: Vec<(Option<String>, Option<String>)> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        Ok(replies
            .into_iter()
            .map(|(r, w)| r.zip(w.or(Some(String::new()))))
            .collect())
    }

    /// Claims `reply_id` for one attempt by `owner`.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_reply(
        &self,
        reply_id: &str,
        window_key: &str,
        opt_out_key: &str,
        owner: &str,
        now_ms: i64,
        lease: Duration,
        entry_id: &str,
        resend_on_uncertain: bool,
        reply: &str,
        state_ttl: Duration,
    ) -> Result<Claim, RedisError> {
        let mut conn = self.connection().await?;
        let state = self.keys.reply(reply_id);
        let window = if window_key.is_empty() {
            state.clone()
        } else {
            window_key.to_string()
        };
        let reply: Value = scripts::CLAIM_REPLY
            .key(&state)
            .key(window)
            .key(opt_out_key)
            .arg(owner)
            .arg(now_ms)
            .arg(ms(lease))
            .arg(entry_id)
            .arg(if resend_on_uncertain { "1" } else { "0" })
            .arg(reply)
            .arg(ms(state_ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        let items = strings(&reply)?;
        let num = |i: usize| {
            items
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let ids = |i: usize| -> Vec<String> {
            items
                .get(i)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default()
        };
        match items.first().map(String::as_str) {
            Some("go") => Ok(Claim::Go {
                attempt: num(1) as u32,
                done: num(2) as usize,
                ids: ids(3),
                window_ms: items.get(4).and_then(|v| v.parse().ok()),
            }),
            Some("done") => Ok(Claim::Done),
            Some("busy") => Ok(Claim::Busy {
                entry: items.get(1).cloned().unwrap_or_default(),
            }),
            Some("opted_out") => Ok(Claim::OptedOut {
                attempt: num(1) as u32,
            }),
            Some("uncertain") => Ok(Claim::Uncertain {
                attempt: num(1) as u32,
                done: num(2) as usize,
                ids: ids(3),
            }),
            other => Err(RedisError::Protocol(format!("claim answered {other:?}"))),
        }
    }

    /// Records that `p.done` parts went out, indexes the provider ids of
    /// the last of them (`p.new_ids`) and renews the lease; with no new
    /// ids it only renews the lease. False when the claim was lost.
    pub async fn part_sent(&self, p: &PartSent<'_>) -> Result<bool, RedisError> {
        let mut conn = self.connection().await?;
        let ids = serde_json::to_string(p.ids).map_err(|e| RedisError::Serialize(e.to_string()))?;
        let mut inv = scripts::PART_SENT.prepare_invoke();
        inv.key(self.keys.reply(p.reply_id))
            .key(self.keys.sent_to(p.instance, p.to));
        for id in p.new_ids {
            inv.key(self.keys.sent(p.instance, id));
        }
        inv.arg(p.owner)
            .arg(p.done)
            .arg(ids)
            .arg(p.lease_until_ms)
            .arg(p.sent_index)
            .arg(ms(p.report_ttl))
            .arg(p.now_ms);
        for id in p.new_ids {
            inv.arg(id);
        }
        let held: i64 = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        Ok(held == 1)
    }

    /// Records an outcome with its delivery entry and the ack, atomically.
    pub async fn record_reply(
        &self,
        s: &Streams,
        what: Record,
        a: &RecordArgs<'_>,
    ) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        let ids = serde_json::to_string(a.ids).map_err(|e| RedisError::Serialize(e.to_string()))?;
        let mut inv = scripts::RECORD_REPLY.prepare_invoke();
        inv.key(self.keys.reply(a.reply_id))
            .key(&s.delivery)
            .key(&s.outbound)
            .key(self.keys.retries())
            .key(&s.events)
            .key(self.keys.sent_to(a.instance, a.to))
            .key(self.keys.opt_out(a.instance, a.to));
        let indexed = matches!(what, Record::Sent | Record::Uncertain);
        if indexed {
            for id in a.ids {
                inv.key(self.keys.sent(a.instance, id));
            }
        }
        inv.arg(what.as_str())
            .arg(&s.group)
            .arg(a.entry_id)
            .arg(a.delivery)
            .arg(a.reply_id)
            .arg(a.status)
            .arg(a.due_ms)
            .arg(ms(s.state_ttl))
            .arg(a.event)
            .arg(a.sent_index)
            .arg(ms(s.report_ttl))
            .arg(a.now_ms)
            .arg(ids)
            .arg(a.reply)
            .arg(if a.remember_opt_out { "1" } else { "0" })
            .arg(a.instance)
            .arg(a.parts.max(1));
        if indexed {
            for id in a.ids {
                inv.arg(id);
            }
        }
        let _: Value = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        Ok(())
    }

    /// Takes up to `count` replies due by `now_ms`, each for `lease`.
    /// Returns (reply JSON, entry id) pairs.
    pub async fn take_due(
        &self,
        now_ms: i64,
        lease: Duration,
        count: usize,
    ) -> Result<Vec<(String, String)>, RedisError> {
        let mut conn = self.connection().await?;
        let reply: Value = scripts::TAKE_DUE
            .key(self.keys.retries())
            .arg(now_ms)
            .arg(ms(lease))
            .arg(count)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        let items = strings(&reply)?;
        Ok(items
            .chunks(3)
            .filter(|c| c.len() == 3)
            .map(|c| (c[1].clone(), c[2].clone()))
            .collect())
    }

    /// The earliest due time in the retry set, if any.
    pub async fn next_due(&self) -> Result<Option<i64>, RedisError> {
        let mut conn = self.connection().await?;
        let first: Vec<(String, f64)> = ::redis::cmd("ZRANGE")
            .arg(self.keys.retries())
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        Ok(first.first().map(|(_, score)| *score as i64))
    }
}

/// `[id, [field, value, …]]` → an [`Entry`]; `None` for a deleted entry.
fn entry(v: Value, field: &str) -> Option<Entry> {
    let Value::Array(pair) = v else {
        return None;
    };
    let mut pair = pair.into_iter();
    let id = match pair.next()? {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::SimpleString(s) => s,
        _ => return None,
    };
    let mut payload = None;
    if let Some(Value::Array(fields)) = pair.next() {
        let mut it = fields.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if matches!(&k, Value::BulkString(b) if b == field.as_bytes())
                && let Value::BulkString(b) = v
            {
                payload = String::from_utf8(b).ok();
            }
        }
    }
    Some(Entry { id, payload })
}
