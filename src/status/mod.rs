//! The status loop (SPEC section 11, `docs/status.md`): the core system
//! appends what happened to a complaint to its partition's status stream
//! (`aduan:status`), once; the status worker keeps the latest status and a
//! bounded history per complaint, tells the citizen through the outbound
//! pipeline, and the public reads it back by the tracking number.
//!
//! - `notice`: what the citizen is told of a new status, per instance.
//! - `lookup`: `GET /v1/status/{tracking}`, the public answer.
//!
//! Each entry is applied in one script: a second entry with the same
//! `status_id` is a no-op, an entry older than the stored latest joins the
//! history only, and the notification is queued on the outbound stream in
//! the same step, with `reply_id` `status:<status_id>`, so the reply
//! worker's claim and record send it once. A malformed entry or one naming
//! no known complaint is a `status_rejected` event, acknowledged and never
//! retried. Replicas share the stream through a consumer group on the
//! stream worker, which takes over a dead replica's entries.

pub mod lookup;
pub mod notice;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{StatusRejection, StatusUpdate};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::redis::replies::{Entry, Streams};
use crate::redis::status::{Applied, StatusWrite};
use crate::redis::{Redis, RedisError};
use crate::settings::StatusConfig;
use crate::worker::{self, Reading, StreamJob};
pub use notice::Notices;

/// The status worker of one replica (or of one partition, once running).
pub struct StatusWorker {
    redis: Arc<Redis>,
    streams: Streams,
    config: StatusConfig,
    /// Each instance's notices; an instance without replies has none.
    notices: Arc<HashMap<String, Arc<Notices>>>,
    room: Arc<Semaphore>,
}

/// Where an entry's complaint was found.
struct Found {
    complaint_id: String,
    tracking: String,
    instance: String,
}

impl StatusWorker {
    /// The worker; `None` when `[status] enabled = false`.
    pub fn new(
        config: &StatusConfig,
        events_stream: &str,
        notices: HashMap<String, Arc<Notices>>,
        redis: Arc<Redis>,
    ) -> Option<StatusWorker> {
        if !config.enabled {
            return None;
        }
        let consumer = config
            .consumer
            .clone()
            .unwrap_or_else(crate::redis::replies::default_consumer);
        let keep = Duration::from_secs(3600);
        Some(StatusWorker {
            redis,
            streams: Streams {
                outbound: config.stream.clone(),
                field: "status",
                delivery: String::new(),
                events: events_stream.to_string(),
                group: config.group.clone(),
                consumer,
                state_ttl: keep,
                report_ttl: keep,
            },
            config: config.clone(),
            notices: Arc::new(notices),
            room: Arc::new(Semaphore::new(config.concurrency)),
        })
    }

    /// Runs every partition's reader and takeover until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let reading = Reading {
            name: "status",
            room: self.room.clone(),
            capacity: self.config.concurrency,
            per_read: (self.config.concurrency / 2).max(1),
            claim_idle: Duration::from_secs(self.config.claim_idle_seconds),
        };
        worker::run_partitions(&reading, &self.redis, &stop, |redis| {
            let this = Arc::new(self.on(redis));
            let streams = this.streams.clone();
            (this, streams)
        })
        .await;
    }

    /// This worker on one partition: its streams, its keys.
    fn on(&self, redis: Arc<Redis>) -> StatusWorker {
        let keys = redis.keys();
        StatusWorker {
            streams: Streams {
                outbound: keys.named(&self.config.stream),
                events: keys.named(&self.streams.events),
                ..self.streams.clone()
            },
            redis,
            config: self.config.clone(),
            notices: self.notices.clone(),
            room: self.room.clone(),
        }
    }

    /// Applies one entry; left pending (for a takeover) when Redis fails.
    async fn process(&self, entry: Entry) {
        if let Err(e) = self.apply(&entry).await {
            tracing::warn!(error = %e, "status entry left pending");
        }
    }

    async fn apply(&self, entry: &Entry) -> Result<(), RedisError> {
        let update = match StatusUpdate::parse(entry.payload.as_deref()) {
            Ok(u) => u,
            Err(r) => return self.reject(entry, None, r).await,
        };
        let Some(found) = self.find(&update).await? else {
            let r = StatusRejection::new(
                "unknown_complaint",
                "no complaint with this complaint_id or tracking number in this partition \
                 (unknown, or older than reply_route_days)",
            );
            return self.reject(entry, Some(&update), r).await;
        };
        let public = serde_json::to_string(&update.public())
            .map_err(|e| RedisError::Serialize(e.to_string()))?;
        let notification = match self.notices.get(&found.instance) {
            Some(n) if n.notifies(&update) => {
                Some(n.reply_json(&update, &found.complaint_id, &found.tracking))
            }
            _ => None,
        };
        let applied = self
            .redis
            .apply_status(
                &self.streams,
                &StatusWrite {
                    status_id: &update.status_id,
                    complaint_id: &found.complaint_id,
                    public: &public,
                    at_ms: update.at.0.timestamp_millis(),
                    notification: notification.as_deref(),
                    entry_id: &entry.id,
                },
            )
            .await?;
        let outcome = match applied {
            Applied::Seen => "duplicate",
            Applied::History => "older",
            Applied::Latest => "applied",
        };
        crate::telemetry::status_update(&found.instance, outcome);
        Ok(())
    }

    /// The complaint an entry names, by id or by number, with its number
    /// and instance.
    async fn find(&self, u: &StatusUpdate) -> Result<Option<Found>, RedisError> {
        if let Some(id) = u.complaint_id.as_deref().filter(|s| !s.trim().is_empty()) {
            return Ok(self
                .redis
                .number_of_complaint(id)
                .await?
                .map(|(tracking, instance)| Found {
                    complaint_id: id.to_string(),
                    tracking,
                    instance,
                }));
        }
        let typed = u.tracking.as_deref().unwrap_or("");
        let Some(number) = crate::tracking::normalize(typed, self.redis.tracking_prefix()) else {
            return Ok(None);
        };
        Ok(self
            .redis
            .complaint_of_number(&number)
            .await?
            .map(|(complaint_id, instance)| Found {
                complaint_id,
                tracking: number,
                instance,
            }))
    }

    async fn reject(
        &self,
        entry: &Entry,
        update: Option<&StatusUpdate>,
        r: StatusRejection,
    ) -> Result<(), RedisError> {
        tracing::warn!(entry = %entry.id, code = r.code, "status entry rejected");
        crate::telemetry::status_update("", "rejected");
        let event = serde_json::json!({
            "type": "status_rejected",
            "entry_id": entry.id,
            "status_id": update.map(|u| u.status_id.as_str()),
            "complaint_id": update.and_then(|u| u.complaint_id.as_deref()),
            "tracking": update.and_then(|u| u.tracking.as_deref()),
            "code": r.code,
            "message": r.message,
            "at": aduan_adapter::Timestamp(chrono::Utc::now()),
        });
        self.redis
            .reject_status(&self.streams, &entry.id, &event.to_string())
            .await
    }
}

impl StreamJob for StatusWorker {
    /// Applies each entry on a task of its own, holding its permit until done.
    async fn take(self: Arc<Self>, entries: Vec<Entry>, room: OwnedSemaphorePermit) {
        worker::spawn_each(self, entries, room, |this, entry| async move {
            this.process(entry).await
        });
    }
}
