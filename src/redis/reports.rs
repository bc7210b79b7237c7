//! The Redis side of provider reports: the indexes of the provider ids
//! we sent, the replies found by our own reference, the opt-outs and
//! opt-ins, and the delivery entries reports become.

use std::time::Duration;

use super::{Redis, RedisError, scripts};

/// What a reply's state says a report found by our reference needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyFound {
    /// `sent`, `uncertain`, … (the claim's states).
    pub state: String,
    /// The sent-index value kept with the reply (JSON); `None` for a reply
    /// recorded before references were kept, or not sent.
    pub sent_index: Option<String>,
    /// The instance that sent it.
    pub instance: Option<String>,
}

/// A report found by our reference, to write (see
/// [`Redis::report_by_reference`]).
#[derive(Clone, Debug)]
pub struct ByReference<'a> {
    pub reply_id: &'a str,
    pub instance: &'a str,
    pub part: usize,
    pub status: &'a str,
    pub delivery: &'a str,
    /// The report's provider id (`""`: none), indexed for later reports.
    pub provider_message_id: &'a str,
    pub sent_index: &'a str,
    pub report_ttl: Duration,
    pub state_ttl: Duration,
}

/// What [`Redis::report_by_reference`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The reply is not one the report can be about: nothing written.
    No,
    /// The report's delivery entry.
    Report,
    /// The entry, and the uncertain reply is settled (`sent` or `failed`).
    Settled,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().clamp(1, u64::MAX as u128) as u64
}

impl Redis {
    /// The state of these replies (by reply id), as far as a report found by
    /// our reference needs it; `None` for a reply this partition does not
    /// hold. One round trip.
    pub async fn replies_found(
        &self,
        reply_ids: &[&str],
    ) -> Result<Vec<Option<ReplyFound>>, RedisError> {
        if reply_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.connection().await?;
        let mut pipe = ::redis::pipe();
        for id in reply_ids {
            pipe.cmd("HMGET")
                .arg(self.keys.reply(id))
                .arg("state")
                .arg("ref")
                .arg("instance");
        }
        type Fields = (Option<String>, Option<String>, Option<String>);
        let rows: Vec<Fields> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        Ok(rows
            .into_iter()
            .map(|(state, sent_index, instance)| {
                state.map(|state| ReplyFound {
                    state,
                    sent_index,
                    instance,
                })
            })
            .collect())
    }

    /// Writes a report found by our reference, and settles the reply when
    /// it was `uncertain` and the report is about its last part; all at once.
    pub async fn report_by_reference(
        &self,
        delivery_stream: &str,
        r: &ByReference<'_>,
    ) -> Result<Written, RedisError> {
        let mut conn = self.connection().await?;
        let state = self.keys.reply(r.reply_id);
        let index = if r.provider_message_id.is_empty() {
            state.clone()
        } else {
            self.keys.sent(r.instance, r.provider_message_id)
        };
        let written: i64 = scripts::REPORT_BY_REFERENCE
            .key(&state)
            .key(delivery_stream)
            .key(index)
            .arg(r.reply_id)
            .arg(r.status)
            .arg(r.delivery)
            .arg(r.part)
            .arg(r.sent_index)
            .arg(ms(r.report_ttl))
            .arg(r.provider_message_id)
            .arg(ms(r.state_ttl))
            .arg(r.instance)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        Ok(match written {
            0 => Written::No,
            1 => Written::Report,
            _ => Written::Settled,
        })
    }

    /// What these provider ids (of `instance`) were sent for; one round trip.
    pub async fn sent_lookup(
        &self,
        instance: &str,
        ids: &[&str],
    ) -> Result<Vec<Option<String>>, RedisError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.connection().await?;
        let mut cmd = ::redis::cmd("MGET");
        for id in ids {
            cmd.arg(self.keys.sent(instance, id));
        }
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))
    }

    /// The provider ids sent to (`instance`, `to`) up to `watermark_ms`,
    /// taken out of the index so that each is reported read once.
    pub async fn sent_up_to(
        &self,
        instance: &str,
        to: &str,
        watermark_ms: i64,
    ) -> Result<Vec<String>, RedisError> {
        let mut conn = self.connection().await?;
        let key = self.keys.sent_to(instance, to);
        let (ids, _): (Vec<String>, i64) = ::redis::pipe()
            .atomic()
            .cmd("ZRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(watermark_ms)
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(watermark_ms)
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))?;
        Ok(ids)
    }

    /// Records opt-outs and opt-ins of `instance`: the key later replies are
    /// refused by, and (given `events_stream`) an event for the core system,
    /// at once.
    pub async fn record_consents(
        &self,
        instance: &str,
        events_stream: Option<&str>,
        consents: &[(String, bool, String)],
    ) -> Result<(), RedisError> {
        if consents.is_empty() {
            return Ok(());
        }
        let mut conn = self.connection().await?;
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for (to, opted_out, event) in consents {
            let key = self.keys.opt_out(instance, to);
            if *opted_out {
                pipe.cmd("SET")
                    .arg(&key)
                    .arg(chrono::Utc::now().timestamp_millis())
                    .ignore();
            } else {
                pipe.cmd("DEL").arg(&key).ignore();
            }
            if let Some(events_stream) = events_stream {
                pipe.cmd("XADD")
                    .arg(events_stream)
                    .arg("*")
                    .arg("type")
                    .arg(if *opted_out { "opt_out" } else { "opt_in" })
                    .arg("event")
                    .arg(event)
                    .ignore();
            }
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))
    }

    /// Appends delivery entries (`(reply_id, status, JSON)`) to `stream`.
    pub async fn add_deliveries(
        &self,
        stream: &str,
        entries: &[(String, &'static str, String)],
    ) -> Result<(), RedisError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.connection().await?;
        let mut pipe = ::redis::pipe();
        for (reply_id, status, json) in entries {
            pipe.cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("reply_id")
                .arg(reply_id)
                .arg("status")
                .arg(*status)
                .arg("delivery")
                .arg(json)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| RedisError::command("outbound", e))
    }
}
