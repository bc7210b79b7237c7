//! What the lanes and the loops share (Redis, the streams, the lease and
//! backoff settings), and how an attempt's outcome is recorded: each in one
//! atomic step with its delivery entry and the ack, retried briefly so that
//! a short Redis blip does not leave a sent reply unrecorded.

use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Delivery, Timestamp};
use chrono::Utc;

use super::job::{self, Job};
use crate::redis::replies::{PartSent, Record, RecordArgs, Streams};
use crate::redis::{Redis, RedisError};

/// What every lane and loop shares.
pub struct Shared {
    pub(super) redis: Arc<Redis>,
    pub(super) streams: Streams,
    pub(super) lease: Duration,
    pub(super) send_timeout: Duration,
    pub(super) backoff_base: Duration,
    pub(super) backoff_max: Duration,
}

impl Shared {
    /// The delay before attempt `attempt + 1`: doubling from the base, capped,
    /// with jitter over its upper half so that replicas do not retry in step.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.backoff_max);
        cap.mul_f64(0.5 + 0.5 * jitter())
    }

    /// Records an outcome that keeps no parts (`failed`, the ack of a
    /// duplicate, …).
    pub(super) async fn record(
        &self,
        what: Record,
        job: &Job,
        delivery: Option<&Delivery>,
        ids: &[String],
    ) -> Result<(), RedisError> {
        self.record_parts(what, job, delivery, ids, 0).await
    }

    /// Records an outcome; a `sent` or `uncertain` one indexes its provider
    /// ids and keeps what a report found by our reference needs (`parts`:
    /// how many parts the reply has).
    pub(super) async fn record_parts(
        &self,
        what: Record,
        job: &Job,
        delivery: Option<&Delivery>,
        ids: &[String],
        parts: usize,
    ) -> Result<(), RedisError> {
        let json = delivery_json(delivery)?;
        let status = delivery.map_or("", |d| d.status.as_str());
        let sent_index = if matches!(what, Record::Sent | Record::Uncertain) {
            job::sent_index(job)?
        } else {
            String::new()
        };
        let mut args = record_args(job, &json, status, ids);
        args.sent_index = &sent_index;
        args.parts = parts;
        self.with_retries(|| self.redis.record_reply(&self.streams, what, &args))
            .await
    }

    pub(super) async fn record_retry(
        &self,
        job: &Job,
        delivery: &Delivery,
        ids: &[String],
        due_ms: i64,
    ) -> Result<(), RedisError> {
        let json = delivery_json(Some(delivery))?;
        let mut args = record_args(job, &json, "retrying", ids);
        args.due_ms = due_ms;
        self.with_retries(|| {
            self.redis
                .record_reply(&self.streams, Record::Retrying, &args)
        })
        .await
    }

    pub(super) async fn record_opt_out(
        &self,
        job: &Job,
        delivery: &Delivery,
        ids: &[String],
        code: &str,
    ) -> Result<(), RedisError> {
        let json = delivery_json(Some(delivery))?;
        let event = serde_json::json!({
            "type": "opt_out",
            "instance": job.route.instance,
            "channel": job.route.channel,
            "to": job.route.to,
            "reply_id": job.reply.reply_id,
            "complaint_id": Some(&job.route.complaint_id).filter(|c| !c.is_empty()),
            "code": code,
            "at": Timestamp(Utc::now()),
        })
        .to_string();
        let mut args = record_args(job, &json, "failed", ids);
        args.event = &event;
        // A carrier's own STOP (Twilio 21610) holds like an SMS `STOP`.
        args.remember_opt_out = code == "opted_out";
        self.with_retries(|| {
            self.redis
                .record_reply(&self.streams, Record::Failed, &args)
        })
        .await
    }

    /// Records that `done` parts of `job` went out (every id so far in
    /// `ids`, those of the part just sent in `new_ids`, indexed at once for
    /// early reports) and holds the claim for `hold` and a lease from now.
    /// With no new ids it only renews the claim. False when the claim was lost.
    pub(super) async fn part_sent(
        &self,
        job: &Job,
        done: usize,
        ids: &[String],
        new_ids: &[String],
        hold: Duration,
    ) -> Result<bool, RedisError> {
        let sent_index = job::sent_index(job)?;
        let now_ms = Utc::now().timestamp_millis();
        self.redis
            .part_sent(&PartSent {
                reply_id: &job.reply.reply_id,
                owner: &self.streams.consumer,
                done,
                ids,
                new_ids,
                lease_until_ms: now_ms + (self.lease + hold).as_millis() as i64,
                instance: &job.route.instance,
                to: &job.route.to,
                sent_index: &sent_index,
                report_ttl: self.streams.report_ttl,
                now_ms,
            })
            .await
    }

    pub(super) async fn with_retries<'a, F, Fut>(&'a self, f: F) -> Result<(), RedisError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), RedisError>> + 'a,
    {
        let mut delay = Duration::from_millis(100);
        let mut last = None;
        for _ in 0..6 {
            match f().await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(last.unwrap_or_else(|| RedisError::Unavailable("record failed".into())))
    }
}

fn delivery_json(delivery: Option<&Delivery>) -> Result<String, RedisError> {
    delivery.map_or(Ok(String::new()), |d| {
        serde_json::to_string(d).map_err(|e| RedisError::Serialize(e.to_string()))
    })
}

/// A number in [0, 1) that differs between calls and replicas.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Utc::now().timestamp_nanos_opt().unwrap_or(0) as u128);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Fills in what every record of a job shares.
pub(super) fn record_args<'a>(
    job: &'a Job,
    delivery: &'a str,
    status: &'a str,
    ids: &'a [String],
) -> RecordArgs<'a> {
    RecordArgs {
        reply_id: &job.reply.reply_id,
        entry_id: &job.entry_id,
        delivery,
        status,
        reply: &job.json,
        ids,
        instance: &job.route.instance,
        to: &job.route.to,
        now_ms: Utc::now().timestamp_millis(),
        ..RecordArgs::default()
    }
}
