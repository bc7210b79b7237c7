//! The store of split messages' parts: each part held by one script step
//! that also remembers the part's own provider id, groups indexed by their
//! deadline, claims that move a due group aside while it is written.
//!
//! The scripts touch a group, its part-seen key and the deadline index
//! together, so with partitions each part is held in its conversation's
//! partition (every part of a message comes from the same sender), with a
//! deadline index of each partition's own: every key of one step shares
//! one hash slot.

use std::collections::BTreeMap;
use std::time::Duration;

use aduan_adapter::{Complaint, Fragment};

use super::{Redis, RedisError, scripts, strings};

/// How long a part's provider id is remembered: longer than any SMS
/// provider's retry horizon (Vonage retries for 24 hours).
const PART_MEMORY: Duration = Duration::from_secs(8 * 24 * 3600);

/// Counter of message parts and groups by `outcome`: `held`, `duplicate`,
/// `completed` (all parts arrived), `expired` (written incomplete).
pub const METRIC: &str = "aduan_message_parts_total";

/// The parts of one group as held: how many the message has, and those that arrived.
#[derive(Debug)]
pub struct Held {
    /// The group's key: give it to [`Redis::release_fragments`] once its complaint is durable.
    pub key: String,
    pub total: u32,
    pub parts: BTreeMap<u32, Complaint>,
}

/// What claiming a due group found.
pub enum Claimed {
    /// Released meanwhile (written when complete, or by another replica).
    Gone,
    /// The claimed group, or `Err` with its key when its fields cannot be read.
    Group(Result<Held, String>),
}

impl Redis {
    /// Holds each part durably; returns the groups it completed. A group's
    /// window starts with its first part.
    pub async fn absorb(
        &self,
        fragments: &[Fragment],
        window: Duration,
    ) -> Result<Vec<Held>, RedisError> {
        if self.splits() {
            let mut completed = Vec::new();
            for fragment in fragments {
                let p = self.partition_for(&fragment.complaint);
                let part = self.part(p);
                completed.extend(
                    part.absorb_here(std::slice::from_ref(fragment), window)
                        .await?,
                );
            }
            return Ok(completed);
        }
        self.absorb_here(fragments, window).await
    }

    /// Holds parts in this partition.
    async fn absorb_here(
        &self,
        fragments: &[Fragment],
        window: Duration,
    ) -> Result<Vec<Held>, RedisError> {
        let mut conn = self.connection().await?;
        let keys = self.keys();
        let mut completed = Vec::new();
        for fragment in fragments {
            let c = &fragment.complaint;
            let group_key = keys.fragment_group(&c.instance, &fragment.group);
            let deadline = c.received_at.0.timestamp_millis()
                + i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
            let json =
                serde_json::to_string(c).map_err(|e| RedisError::Serialize(e.to_string()))?;
            let reply: ::redis::Value = scripts::ABSORB
                .key(&group_key)
                .key(keys.fragment_part(&c.instance, &c.external_id))
                .key(keys.fragment_due())
                .arg(fragment.part)
                .arg(json)
                .arg(fragment.total)
                .arg(deadline)
                .arg(PART_MEMORY.as_millis() as u64)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| RedisError::command("fragments", e))?;
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
                    completed.push(Held {
                        key: group_key,
                        total,
                        parts,
                    });
                }
                Some("held") | Some("dup") => {}
                other => return Err(RedisError::Protocol(format!("absorb reply {other:?}"))),
            }
        }
        Ok(completed)
    }

    /// Forgets groups whose complaints are durably appended.
    pub async fn release_fragments(&self, groups: &[String]) -> Result<(), RedisError> {
        if groups.is_empty() {
            return Ok(());
        }
        if self.splits() {
            for g in groups {
                self.owner_of(g)
                    .release_here(std::slice::from_ref(g))
                    .await?;
            }
            return Ok(());
        }
        self.release_here(groups).await
    }

    /// Forgets groups of this partition.
    async fn release_here(&self, groups: &[String]) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        let due = self.keys().fragment_due();
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for g in groups {
            pipe.del(g).ignore();
            pipe.zrem(&due, g).ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| RedisError::command("fragments", e))
    }

    /// Up to `limit` groups (or claims) whose deadline is at or before `now_ms`.
    pub async fn due_fragments(
        &self,
        now_ms: i64,
        limit: isize,
    ) -> Result<Vec<String>, RedisError> {
        if self.splits() {
            let mut due = Vec::new();
            for p in 0..self.count {
                due.extend(self.part(p).due_here(now_ms, limit).await?);
            }
            return Ok(due);
        }
        self.due_here(now_ms, limit).await
    }

    /// Due groups of this partition.
    async fn due_here(&self, now_ms: i64, limit: isize) -> Result<Vec<String>, RedisError> {
        let mut conn = self.connection().await?;
        ::redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys().fragment_due())
            .arg("-inf")
            .arg(now_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("fragments", e))
    }

    /// Renames a due group to a claimed key that stays in the index with the
    /// later score `retry_at_ms`, so that if this replica dies before writing
    /// it another replica picks the claim up. A claimed key is re-claimed in place.
    pub async fn claim_fragments(
        &self,
        member: &str,
        retry_at_ms: i64,
    ) -> Result<Claimed, RedisError> {
        let this = self.owner_of(member);
        let mut conn = this.connection().await?;
        let reply: ::redis::Value = scripts::CLAIM
            .key(member)
            .key(this.keys().fragment_due())
            .arg(member.replacen(":frag:group:", ":frag:claimed:", 1))
            .arg(retry_at_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("fragments", e))?;
        let mut items = strings(&reply)?;
        if items.is_empty() {
            return Ok(Claimed::Gone);
        }
        let key = items.remove(0);
        Ok(Claimed::Group(match held_parts(&items) {
            Ok((total, parts)) => Ok(Held { key, total, parts }),
            Err(_) => Err(key),
        }))
    }

    /// Takes an unreadable group out of the deadline index, leaving it in
    /// place for inspection, so that it cannot hold up the groups behind it.
    pub async fn unindex_fragments(&self, key: &str) -> Result<(), RedisError> {
        let this = self.owner_of(key);
        let mut conn = this.connection().await?;
        ::redis::cmd("ZREM")
            .arg(this.keys().fragment_due())
            .arg(key)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| RedisError::command("fragments", e))
    }
}

/// Reads a held group's hash (`total`, `deadline`, `p:<n>` → part JSON).
fn held_parts(fields: &[String]) -> Result<(u32, BTreeMap<u32, Complaint>), RedisError> {
    let corrupt = |what: &str| RedisError::Protocol(format!("held part unreadable: {what}"));
    let mut total = 0;
    let mut parts = BTreeMap::new();
    for pair in fields.chunks(2) {
        let [name, value] = pair else {
            return Err(corrupt("odd field list"));
        };
        if name == "total" {
            total = value.parse().map_err(|_| corrupt("total"))?;
        } else if let Some(n) = name.strip_prefix("p:") {
            let n: u32 = n.parse().map_err(|_| corrupt("part number"))?;
            let c: Complaint = serde_json::from_str(value).map_err(|e| corrupt(&e.to_string()))?;
            parts.insert(n, c);
        }
    }
    Ok((total, parts))
}
