//! The way back to the citizen: replies from `aduan:outbound` sent on the
//! channel and instance the complaint came from, exactly once, with every
//! outcome on `aduan:delivery` (SPEC section 7, `docs/replies.md`).
//!
//! - `job`: an entry read, checked and given its route.
//! - `lane`: one instance's pacing and slots, and the attempt (claim, send, record).
//! - `record`: what the lanes and loops share, and how an outcome is recorded.
//! - `reports`: provider delivery and read reports matched to their replies.
//!
//! Three loops feed the lanes: the reader (`XREADGROUP`, the consumer group
//! shared by every replica), the takeover (`XAUTOCLAIM` of entries a dead
//! replica left pending) and the retry set (replies waiting for their next
//! attempt, held in Redis rather than by a task).

mod job;
mod lane;
mod record;
pub mod reports;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Delivery, DeliveryStatus, Timestamp};
use chrono::Utc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::instances::Instance;
use crate::redis::Redis;
use crate::redis::replies::{Entry, Record, Streams};
use crate::settings::{InstanceKind, OutboundConfig};
use crate::telemetry;
use job::{Job, Parsed, Refusal};
use lane::Lane;
use record::{Shared, record_args};

/// The outbound worker of one replica.
pub struct Outbound {
    shared: Arc<Shared>,
    config: OutboundConfig,
    lanes: HashMap<String, Arc<Lane>>,
    /// Every configured instance's kind, to tell an unknown instance from
    /// one that sends no replies.
    kinds: HashMap<String, InstanceKind>,
    in_flight: Arc<Semaphore>,
}

impl Outbound {
    /// The worker for the instances that have an `[instances.reply]` table;
    /// `None` when there are none or `[outbound] enabled = false`.
    pub fn new(
        config: &OutboundConfig,
        instances: &[Arc<Instance>],
        redis: Arc<Redis>,
    ) -> Option<Self> {
        let lanes: HashMap<String, Arc<Lane>> = instances
            .iter()
            .filter_map(|i| {
                let (policy, sender) = i.reply.as_ref()?;
                Some((
                    i.name.clone(),
                    Arc::new(Lane::new(
                        &i.name,
                        i.kind,
                        sender.clone(),
                        policy,
                        i.ack.as_deref(),
                        config,
                    )),
                ))
            })
            .collect();
        if lanes.is_empty() || !config.enabled {
            return None;
        }
        let send_timeout = Duration::from_millis(config.send_timeout_ms);
        // An attempt holds its claim for one send and a margin; a takeover
        // (claim_idle) must come later, or it would find the claim still live.
        let lease = (send_timeout + Duration::from_secs(5))
            .min(Duration::from_secs(config.claim_idle_seconds).mul_f64(0.9));
        let streams = Streams {
            outbound: config.stream.clone(),
            field: "reply",
            delivery: config.delivery_stream.clone(),
            events: config.events_stream.clone(),
            group: config.group.clone(),
            consumer: config
                .consumer
                .clone()
                .unwrap_or_else(crate::redis::replies::default_consumer),
            state_ttl: Duration::from_secs(config.report_days.max(1) * 24 * 3600),
            report_ttl: Duration::from_secs(config.report_days.max(1) * 24 * 3600),
        };
        Some(Outbound {
            shared: Arc::new(Shared {
                redis,
                streams,
                lease,
                send_timeout,
                backoff_base: Duration::from_millis(config.backoff_base_ms),
                backoff_max: Duration::from_millis(config.backoff_max_ms),
            }),
            config: config.clone(),
            lanes,
            kinds: instances.iter().map(|i| (i.name.clone(), i.kind)).collect(),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
        })
    }

    /// Runs the reader, the takeover and the retry loops of every partition
    /// until `stop`. The partitions share the lanes (each instance's send
    /// rate) and the limit of sends in flight.
    pub async fn run(self, stop: CancellationToken) {
        let mut loops = Vec::new();
        for redis in self.shared.redis.partitions() {
            let this = Arc::new(self.on(redis));
            loops.push(tokio::spawn(this.clone().read_loop(stop.clone())));
            loops.push(tokio::spawn(this.clone().takeover_loop(stop.clone())));
            loops.push(tokio::spawn(this.retry_loop(stop.clone())));
        }
        for task in loops {
            let _ = task.await;
        }
    }

    /// This worker on one partition: its streams, its keys.
    fn on(&self, redis: Arc<Redis>) -> Outbound {
        let keys = redis.keys();
        let streams = Streams {
            outbound: keys.named(&self.config.stream),
            delivery: keys.named(&self.config.delivery_stream),
            events: keys.named(&self.config.events_stream),
            ..self.shared.streams.clone()
        };
        Outbound {
            shared: Arc::new(Shared {
                redis,
                streams,
                lease: self.shared.lease,
                send_timeout: self.shared.send_timeout,
                backoff_base: self.shared.backoff_base,
                backoff_max: self.shared.backoff_max,
            }),
            config: self.config.clone(),
            lanes: self.lanes.clone(),
            kinds: self.kinds.clone(),
            in_flight: self.in_flight.clone(),
        }
    }

    async fn read_loop(self: Arc<Self>, stop: CancellationToken) {
        let s = &self.shared.streams;
        let block = Duration::from_secs(2);
        let mut conn = None;
        let mut pending = true;
        let mut grouped = false;
        while !stop.is_cancelled() {
            if !grouped {
                match self.shared.redis.ensure_group(s).await {
                    Ok(()) => grouped = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbound group not ready");
                        pause(&stop, Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            if conn.is_none() {
                match self.shared.redis.blocking_connection(block).await {
                    Ok(c) => conn = Some(c),
                    Err(_) => {
                        pause(&stop, Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            // Room for a whole read before reading it.
            let count = self.config.read_count.min(self.config.max_in_flight);
            let Ok(permits) = self
                .in_flight
                .clone()
                .acquire_many_owned(count as u32)
                .await
            else {
                return;
            };
            let read = tokio::select! {
                r = self.shared.redis.read_outbound(c, s, count, block, pending) => r,
                _ = stop.cancelled() => return,
            };
            match read {
                Ok(entries) => {
                    // Our own pending entries (an earlier run's) are read once, then new ones.
                    if pending && entries.len() < count {
                        pending = false;
                    }
                    drop(permits);
                    self.dispatch_entries(entries).await;
                }
                Err(e) => {
                    drop(permits);
                    tracing::warn!(error = %e, "outbound read failed");
                    if e.to_string().contains("NOGROUP") {
                        grouped = false;
                    }
                    pause(&stop, Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn takeover_loop(self: Arc<Self>, stop: CancellationToken) {
        let idle = Duration::from_secs(self.config.claim_idle_seconds);
        let every = (idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(15));
        while !stop.is_cancelled() {
            pause(&stop, every).await;
            let mut cursor = "0-0".to_string();
            // A Redis failure ends this round; the next one starts over.
            while let Ok((next, entries)) = self
                .shared
                .redis
                .autoclaim(&self.shared.streams, idle, &cursor, 100)
                .await
            {
                self.dispatch_entries(entries).await;
                if next == "0-0" || stop.is_cancelled() {
                    break;
                }
                cursor = next;
            }
        }
    }

    async fn retry_loop(self: Arc<Self>, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let now = Utc::now().timestamp_millis();
            match self
                .shared
                .redis
                .take_due(now, self.shared.lease, 256)
                .await
            {
                Ok(due) if !due.is_empty() => {
                    let mut parsed = Vec::with_capacity(due.len());
                    for (json, entry_id) in due {
                        parsed.push((entry_id, Some(json)));
                    }
                    self.dispatch(parsed).await;
                    continue;
                }
                Ok(_) => {}
                Err(_) => {}
            }
            let wait = match self.shared.redis.next_due().await {
                Ok(Some(due)) => {
                    Duration::from_millis((due - Utc::now().timestamp_millis()).clamp(5, 250) as u64)
                }
                _ => Duration::from_millis(250),
            };
            pause(&stop, wait).await;
        }
    }

    async fn dispatch_entries(&self, entries: Vec<Entry>) {
        let items = entries.into_iter().map(|e| (e.id, e.payload)).collect();
        self.dispatch(items).await;
    }

    /// Parses each entry, looks up the routes of a whole read at once, and
    /// hands each job to its lane (refusals are recorded here).
    async fn dispatch(&self, items: Vec<(String, Option<String>)>) {
        let now = Timestamp(Utc::now());
        let mut waiting = Vec::new();
        let mut ready = Vec::new();
        for (entry_id, json) in items {
            let text = json.clone().unwrap_or_default();
            match job::parse(json.as_deref(), now) {
                Parsed::Refused(reply_id, refusal) => {
                    self.refuse(&entry_id, reply_id.as_deref(), None, &text, refusal)
                        .await;
                }
                Parsed::ByComplaint(reply, complaint_id) => {
                    waiting.push((entry_id, text, reply, complaint_id))
                }
                Parsed::Direct(reply, route) => {
                    let window_key = self.shared.redis.keys().window(&route.instance, &route.to);
                    ready.push(Job {
                        enqueued_ms: job::entry_ms(&entry_id),
                        entry_id,
                        json: text,
                        reply,
                        route,
                        window_key,
                    });
                }
            }
        }
        if !waiting.is_empty() {
            let ids: Vec<&str> = waiting.iter().map(|w| w.3.as_str()).collect();
            match self.shared.redis.routes(&ids).await {
                Ok(routes) => {
                    for ((entry_id, text, reply, complaint_id), found) in
                        waiting.into_iter().zip(routes)
                    {
                        let route = found.and_then(|(r, w)| {
                            serde_json::from_str::<aduan_adapter::ReplyRoute>(&r)
                                .ok()
                                .map(|r| (r, w))
                        });
                        match route {
                            Some((route, window_key)) => ready.push(Job {
                                enqueued_ms: job::entry_ms(&entry_id),
                                entry_id,
                                json: text,
                                reply,
                                route,
                                window_key,
                            }),
                            None => {
                                let refusal = Refusal::new(
                                    "unknown_complaint",
                                    "no reply route is stored for this complaint (unknown, or older than reply_route_days)",
                                );
                                let id = reply.reply_id.clone();
                                self.refuse(
                                    &entry_id,
                                    Some(&id),
                                    Some(&complaint_id),
                                    &text,
                                    refusal,
                                )
                                .await;
                            }
                        }
                    }
                }
                // Left pending: the takeover loop brings them back.
                Err(e) => tracing::warn!(error = %e, "reply routes not read"),
            }
        }
        for job in ready {
            self.hand_over(job).await;
        }
    }

    async fn hand_over(&self, job: Job) {
        let instance = job.route.instance.clone();
        let Some(lane) = self.lanes.get(&instance).cloned() else {
            let refusal = match self.kinds.get(&instance) {
                Some(_) => Refusal::new(
                    "no_sender",
                    format!("instance `{instance}` sends no replies (no [instances.reply])"),
                ),
                None => Refusal::new("unknown_instance", format!("no instance `{instance}`")),
            };
            let id = job.reply.reply_id.clone();
            let complaint = Some(job.route.complaint_id.clone()).filter(|c| !c.is_empty());
            self.refuse(
                &job.entry_id,
                Some(&id),
                complaint.as_deref(),
                &job.json,
                refusal,
            )
            .await;
            return;
        };
        if !job::channel_fits(lane.kind, job.route.channel) {
            let refusal = Refusal::new(
                "channel_mismatch",
                format!(
                    "instance `{instance}` does not send on {}",
                    job.route.channel.as_str()
                ),
            );
            let id = job.reply.reply_id.clone();
            self.refuse(&job.entry_id, Some(&id), None, &job.json, refusal)
                .await;
            return;
        }
        if !lane.try_enter() {
            // The instance is behind: its reply waits in Redis, not here, so
            // that the reader keeps serving the other instances.
            telemetry::reply(&instance, job.route.channel.as_str(), "deferred");
            let due = Utc::now().timestamp_millis() + 1000;
            let mut args = record_args(&job, "", "", &[]);
            args.due_ms = due;
            if let Err(e) = self
                .shared
                .redis
                .record_reply(&self.shared.streams, Record::Defer, &args)
                .await
            {
                tracing::warn!(error = %e, "reply not deferred; left pending");
            }
            return;
        }
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            lane.run(&shared, job).await;
            drop(permit);
        });
    }

    /// Records a permanent refusal of an entry.
    async fn refuse(
        &self,
        entry_id: &str,
        reply_id: Option<&str>,
        complaint_id: Option<&str>,
        json: &str,
        refusal: Refusal,
    ) {
        tracing::info!(entry = entry_id, code = refusal.code, "reply refused");
        telemetry::reply("", "", "failed");
        let delivery = Delivery {
            schema: aduan_adapter::DELIVERY_SCHEMA.into(),
            reply_id: reply_id.unwrap_or_default().to_string(),
            entry_id: Some(entry_id.to_string()),
            complaint_id: complaint_id.map(str::to_string),
            instance: None,
            channel: None,
            to: None,
            status: DeliveryStatus::Failed,
            provider_message_id: None,
            parts: None,
            provider_message_ids: Vec::new(),
            attempt: 0,
            error: Some(aduan_adapter::DeliveryError {
                code: refusal.code.into(),
                message: refusal.message,
                permanent: true,
            }),
            next_attempt_at: None,
            at: Timestamp(Utc::now()),
        };
        let Ok(json_delivery) = serde_json::to_string(&delivery) else {
            return;
        };
        let what = if reply_id.is_some() {
            Record::Failed
        } else {
            Record::Report
        };
        let args = crate::redis::replies::RecordArgs {
            reply_id: reply_id.unwrap_or_default(),
            entry_id,
            delivery: &json_delivery,
            status: "failed",
            reply: json,
            now_ms: Utc::now().timestamp_millis(),
            ..Default::default()
        };
        if let Err(e) = self
            .shared
            .with_retries(|| {
                self.shared
                    .redis
                    .record_reply(&self.shared.streams, what, &args)
            })
            .await
        {
            tracing::warn!(error = %e, "refusal not recorded; left pending");
        }
    }
}

async fn pause(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.cancelled() => {}
    }
}
