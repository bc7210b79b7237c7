//! One instance's replies: its pacing, its slots, and the attempt itself
//! (claim, send each part, record). Each instance has its own lane, so a
//! slow or throttled provider only ever delays its own replies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aduan_adapter::{
    DELIVERY_SCHEMA, Delivery, DeliveryError, DeliveryStatus, Outgoing, ReplySender, Retry,
    SendError, Timestamp,
};
use chrono::Utc;
use tokio::sync::Semaphore;

use super::job::Job;
use super::record::Shared;
use crate::limits::buckets::Buckets;
use crate::redis::RedisError;
use crate::redis::replies::{Claim, Record};
use crate::settings::{InstanceKind, ReplyPolicy};
use crate::telemetry;

/// The sender and policy of one instance.
pub struct Lane {
    pub instance: String,
    pub kind: InstanceKind,
    sender: Arc<dyn ReplySender>,
    rate: Buckets,
    per_recipient: Option<Buckets>,
    slots: Semaphore,
    /// Jobs handed to the lane and not finished.
    queued: AtomicUsize,
    /// Past this many queued jobs, new ones wait in the retry set instead.
    cap: usize,
    max_attempts: u32,
    max_age: Duration,
    resend_on_uncertain: bool,
    /// The same for the instance's acknowledgements.
    ack_resend_on_uncertain: bool,
}

/// The rates a channel's provider allows when the instance sets none:
/// (per instance, per recipient) in messages per second.
fn default_rates(kind: InstanceKind) -> (f64, Option<f64>) {
    match kind {
        // Cloud API: 80 per second per business number.
        InstanceKind::Whatsapp => (80.0, None),
        // Bot API: about 30 per second overall and 1 per second per chat.
        InstanceKind::Telegram => (30.0, Some(1.0)),
        InstanceKind::Messenger | InstanceKind::Instagram => (40.0, None),
        // Twilio: 1 per second per long code; Vonage: 30 per second per key.
        InstanceKind::Twilio => (1.0, None),
        InstanceKind::Vonage => (30.0, None),
        InstanceKind::X => (1.0, None),
        _ => (10.0, None),
    }
}

impl Lane {
    pub fn new(
        instance: &str,
        kind: InstanceKind,
        sender: Arc<dyn ReplySender>,
        policy: &ReplyPolicy,
        ack: Option<&crate::ack::Ack>,
        defaults: &crate::settings::OutboundConfig,
    ) -> Self {
        let (rate, per_recipient) = default_rates(kind);
        let rate = policy.rate_per_second.unwrap_or(rate);
        let per_recipient = policy.per_recipient_per_second.or(per_recipient);
        Lane {
            instance: instance.to_string(),
            kind,
            sender,
            rate: Buckets::new(rate, policy.burst.unwrap_or(rate)),
            per_recipient: per_recipient.map(|r| Buckets::new(r, r.max(1.0))),
            slots: Semaphore::new(policy.concurrency),
            queued: AtomicUsize::new(0),
            cap: (policy.concurrency * 16).clamp(64, defaults.max_in_flight.max(64)),
            max_attempts: policy.max_attempts.unwrap_or(defaults.max_attempts).max(1),
            max_age: Duration::from_secs(
                policy.max_age_seconds.unwrap_or(defaults.max_age_seconds),
            ),
            resend_on_uncertain: policy.resend_on_uncertain,
            ack_resend_on_uncertain: ack.is_none_or(|a| a.resend_on_uncertain),
        }
    }

    /// Takes a place for one more job; false when the lane is full.
    pub fn try_enter(&self) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a send's tokens from the instance's and the recipient's
    /// buckets, or says how long until they are there.
    fn turn(&self, to: &str) -> Option<Duration> {
        let now = Instant::now();
        let wait = match &self.per_recipient {
            Some(b) => b.take(to, now).err(),
            None => None,
        };
        wait.or_else(|| self.rate.take("", now).err())
    }

    /// Waits until the instance's and the recipient's buckets allow a send.
    async fn pace(&self, to: &str) {
        while let Some(d) = self.turn(to) {
            tokio::time::sleep(d).await;
        }
    }

    /// Paces a later part of a reply like any other message (Telegram
    /// allows about one a second per chat, parts included), holding the
    /// claim for the wait so that a part waiting its turn never looks like
    /// an attempt abandoned mid-send.
    async fn pace_part(
        &self,
        shared: &Shared,
        job: &Job,
        done: usize,
        ids: &[String],
    ) -> Result<(), RedisError> {
        while let Some(d) = self.turn(&job.route.to) {
            shared.part_sent(job, done, ids, &[], d).await?;
            tokio::time::sleep(d).await;
        }
        Ok(())
    }

    /// Runs one job to its recorded outcome (or leaves it pending when
    /// Redis cannot be reached, for a later takeover).
    pub async fn run(&self, shared: &Shared, job: Job) {
        self.pace(&job.route.to).await;
        let outcome = match self.slots.acquire().await {
            Ok(_slot) => self.attempt(shared, &job).await,
            Err(_) => Ok(()),
        };
        self.queued.fetch_sub(1, Ordering::AcqRel);
        if let Err(e) = outcome {
            tracing::warn!(instance = %self.instance, error = %e, "reply left pending");
        }
    }

    /// Whether a reply whose earlier send may have gone is sent again: the
    /// instance's policy for replies, or for its acknowledgements.
    fn resends_uncertain(&self, job: &Job) -> bool {
        if crate::ack::is_ack(&job.reply.reply_id) {
            self.ack_resend_on_uncertain
        } else {
            self.resend_on_uncertain
        }
    }

    /// Claims the reply, sends the parts not sent yet, and records the outcome.
    async fn attempt(&self, shared: &Shared, job: &Job) -> Result<(), RedisError> {
        let reply = &job.reply;
        let channel = job.route.channel.as_str();
        let parts = match reply.text.as_deref() {
            Some(t) if !t.trim().is_empty() => {
                aduan_adapter::reply::split_text(t, self.sender.max_chars(&job.route))
            }
            _ => Vec::new(),
        };
        let total = parts.len().max(1);
        let now = Timestamp(Utc::now());
        let claim = shared
            .redis
            .claim_reply(
                &reply.reply_id,
                &job.window_key,
                &shared
                    .redis
                    .keys()
                    .opt_out(&job.route.instance, &job.route.to),
                &shared.streams.consumer,
                now.0.timestamp_millis(),
                shared.lease,
                &job.entry_id,
                self.resends_uncertain(job),
                &job.json,
                shared.streams.state_ttl,
            )
            .await?;
        let (attempt, done, ids, window_ms) = match claim {
            Claim::Go {
                attempt,
                done,
                ids,
                window_ms,
            } => (attempt, done, ids, window_ms),
            Claim::Done => {
                telemetry::reply(&self.instance, channel, "duplicate");
                return shared.record(Record::Ack, job, None, &[]).await;
            }
            Claim::Busy { entry } => {
                if entry != job.entry_id {
                    // Another entry with this reply id holds it: this one is a duplicate.
                    telemetry::reply(&self.instance, channel, "duplicate");
                    return shared.record(Record::Ack, job, None, &[]).await;
                }
                return Ok(());
            }
            Claim::OptedOut { attempt } => {
                let error = SendError::permanent(
                    "opted_out",
                    "the citizen asked not to be messaged on this instance",
                );
                return self.fail(shared, job, attempt, &[], &error).await;
            }
            Claim::Uncertain { attempt, ids, .. } => {
                let why = "an earlier attempt was interrupted after it may have been sent";
                return self.uncertain(shared, job, attempt, &ids, total, why).await;
            }
        };
        let age = Duration::from_millis((now.0.timestamp_millis() - job.enqueued_ms).max(0) as u64);
        if age > self.max_age {
            let error =
                SendError::permanent("expired", format!("older than {}s", self.max_age.as_secs()));
            return self.fail(shared, job, attempt, &ids, &error).await;
        }
        let (ids, failure) = self
            .send_parts(shared, job, &parts, done, ids, window_ms)
            .await?;
        match failure {
            None => self.sent(shared, job, attempt, &ids).await,
            Some(error) => {
                self.not_sent(shared, job, attempt, &ids, total, error)
                    .await
            }
        }
    }

    /// Sends `parts` from `done` on, recording each but the last as it
    /// goes; returns every provider id so far and the failure that stopped
    /// it, if one did.
    async fn send_parts(
        &self,
        shared: &Shared,
        job: &Job,
        parts: &[String],
        done: usize,
        mut ids: Vec<String>,
        window_ms: Option<i64>,
    ) -> Result<(Vec<String>, Option<SendError>), RedisError> {
        let reply = &job.reply;
        let last_inbound_at = window_ms.and_then(Timestamp::from_unix_millis);
        let total = parts.len().max(1);
        for part in done..total {
            // The first part was paced before the attempt.
            if part > done {
                self.pace_part(shared, job, part, &ids).await?;
            }
            let out = Outgoing {
                reply_id: &reply.reply_id,
                route: &job.route,
                text: parts.get(part).map(String::as_str),
                template: reply.template.as_ref(),
                subject: reply.subject.as_deref(),
                part,
                parts: total,
                last_inbound_at,
                now: Timestamp(Utc::now()),
            };
            let sent = tokio::time::timeout(shared.send_timeout, self.sender.send(&out))
                .await
                .unwrap_or_else(|_| {
                    // The request most likely went out: its answer is lost.
                    Err(SendError::answer_lost(
                        "timeout",
                        "the provider did not answer in time",
                    ))
                });
            match sent {
                Ok(s) => {
                    let first_new = ids.len();
                    ids.extend(s.earlier_ids);
                    ids.push(s.provider_message_id);
                    if part + 1 < total {
                        shared
                            .part_sent(job, part + 1, &ids, &ids[first_new..], Duration::ZERO)
                            .await?;
                    }
                }
                Err(e) => return Ok((ids, Some(e))),
            }
        }
        Ok((ids, None))
    }

    async fn sent(
        &self,
        shared: &Shared,
        job: &Job,
        attempt: u32,
        ids: &[String],
    ) -> Result<(), RedisError> {
        telemetry::reply(&self.instance, job.route.channel.as_str(), "sent");
        let waited = Utc::now().timestamp_millis() - job.enqueued_ms;
        telemetry::reply_sent_after(&self.instance, Duration::from_millis(waited.max(0) as u64));
        let delivery = self.delivery(job, DeliveryStatus::Sent, attempt, ids, None, None);
        shared
            .record_parts(Record::Sent, job, Some(&delivery), ids, ids.len())
            .await
    }

    /// Records a reply whose send may have gone: `uncertain`, never sent
    /// again; a provider report that names it settles it later.
    async fn uncertain(
        &self,
        shared: &Shared,
        job: &Job,
        attempt: u32,
        ids: &[String],
        parts: usize,
        why: &str,
    ) -> Result<(), RedisError> {
        let error = SendError::permanent(
            "uncertain",
            format!("{why}; it may have been sent, so it is not sent again"),
        );
        let delivery = self.delivery(
            job,
            DeliveryStatus::Uncertain,
            attempt,
            ids,
            Some(&error),
            None,
        );
        telemetry::reply(&self.instance, job.route.channel.as_str(), "uncertain");
        shared
            .record_parts(Record::Uncertain, job, Some(&delivery), ids, parts)
            .await
    }

    /// Records a permanent failure (with its opt-out event when the error
    /// says the citizen cannot be reached).
    async fn fail(
        &self,
        shared: &Shared,
        job: &Job,
        attempt: u32,
        ids: &[String],
        error: &SendError,
    ) -> Result<(), RedisError> {
        let delivery = self.delivery(job, DeliveryStatus::Failed, attempt, ids, Some(error), None);
        telemetry::reply(&self.instance, job.route.channel.as_str(), "failed");
        if error.opt_out {
            shared
                .record_opt_out(job, &delivery, ids, &error.code)
                .await
        } else {
            shared
                .record(Record::Failed, job, Some(&delivery), ids)
                .await
        }
    }

    /// What follows a failed send: another attempt later, `uncertain` when
    /// the message may have gone and is not to be sent again, else `failed`.
    async fn not_sent(
        &self,
        shared: &Shared,
        job: &Job,
        attempt: u32,
        ids: &[String],
        parts: usize,
        error: SendError,
    ) -> Result<(), RedisError> {
        let channel = job.route.channel.as_str();
        tracing::info!(
            instance = %self.instance,
            to = %telemetry::mask_sender(&format!("{channel}:{}", job.route.to)),
            code = %error.code,
            attempt,
            "reply not sent"
        );
        let lost = || {
            format!(
                "the provider's answer was lost ({}: {})",
                error.code, error.message
            )
        };
        if error.maybe_sent && !self.resends_uncertain(job) {
            return self
                .uncertain(shared, job, attempt, ids, parts, &lost())
                .await;
        }
        let retry_at = match error.retry {
            Retry::Never => None,
            Retry::Later(after) => {
                let delay = shared.backoff(attempt).max(after.unwrap_or_default());
                let due = Utc::now().timestamp_millis() + delay.as_millis() as i64;
                let deadline = job.enqueued_ms + self.max_age.as_millis() as i64;
                (attempt < self.max_attempts && due <= deadline).then_some(due)
            }
        };
        if let Some(due) = retry_at {
            let next = Timestamp::from_unix_millis(due);
            let delivery = self.delivery(
                job,
                DeliveryStatus::Retrying,
                attempt,
                ids,
                Some(&error),
                next,
            );
            telemetry::reply(&self.instance, channel, "retrying");
            return shared.record_retry(job, &delivery, ids, due).await;
        }
        if error.maybe_sent {
            // Sent again as the policy allows, and out of attempts or time:
            // the last of them may still have gone.
            let why = format!("{} attempts; the last: {}", attempt, lost());
            return self.uncertain(shared, job, attempt, ids, parts, &why).await;
        }
        let error = match error.retry {
            Retry::Never => error,
            Retry::Later(_) if attempt >= self.max_attempts => SendError {
                code: "attempts_exhausted".into(),
                message: format!(
                    "{} attempts; the last: {}: {}",
                    attempt, error.code, error.message
                ),
                ..SendError::permanent("", "")
            },
            Retry::Later(_) => SendError {
                code: "expired".into(),
                message: format!(
                    "the next attempt would be past max_age; the last: {}: {}",
                    error.code, error.message
                ),
                ..SendError::permanent("", "")
            },
        };
        self.fail(shared, job, attempt, ids, &error).await
    }

    /// The delivery entry of an attempt's outcome. A `sent` one names every
    /// message the reply went out as (`parts`, `provider_message_ids`);
    /// the others list the ids only when there are several.
    fn delivery(
        &self,
        job: &Job,
        status: DeliveryStatus,
        attempt: u32,
        ids: &[String],
        error: Option<&SendError>,
        next_attempt_at: Option<Timestamp>,
    ) -> Delivery {
        let sent = status == DeliveryStatus::Sent;
        Delivery {
            schema: DELIVERY_SCHEMA.into(),
            reply_id: job.reply.reply_id.clone(),
            entry_id: Some(job.entry_id.clone()),
            complaint_id: Some(job.route.complaint_id.clone()).filter(|c| !c.is_empty()),
            instance: Some(self.instance.clone()),
            channel: Some(job.route.channel),
            to: Some(job.route.to.clone()),
            status,
            provider_message_id: ids.last().cloned(),
            parts: sent.then(|| u32::try_from(ids.len()).unwrap_or(u32::MAX)),
            provider_message_ids: if sent || ids.len() > 1 {
                ids.to_vec()
            } else {
                Vec::new()
            },
            attempt,
            error: error.map(|e| DeliveryError {
                code: e.code.clone(),
                message: e.message.clone(),
                // Neither is tried again.
                permanent: matches!(status, DeliveryStatus::Failed | DeliveryStatus::Uncertain),
            }),
            next_attempt_at,
            at: Timestamp(Utc::now()),
        }
    }
}
