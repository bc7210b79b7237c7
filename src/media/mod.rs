//! The media worker: every attachment a provider only links to is fetched
//! into the blob store before the link expires (SPEC section 9,
//! `docs/attachments.md`).
//!
//! The append step queues one job per complaint on `aduan:media`, in the
//! same atomic step as the complaint. Replicas share the stream through a
//! consumer group; a dead replica's jobs are taken over with `XAUTOCLAIM`.
//! Each attachment's outcome is recorded once, with its event on
//! `aduan:events` (`attachment_stored` or `attachment_unavailable`), and a
//! job is acknowledged only when every attachment has one. A job taken over
//! mid-download starts that attachment again: the store is addressed by
//! content, so the file is stored once whatever happens. The staging
//! files such a download leaves are removed when a worker next starts.
//!
//! - `guard`: the HTTP client whose resolver refuses non-public addresses.
//! - `sink`: the staging file a download is streamed into.
//! - `sniff`: the content type from the first bytes.

pub mod guard;
pub(crate) mod sink;
pub mod sniff;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::Timestamp;
use aduan_adapter::media::{FetchError, MediaFetcher, MediaHttp};
use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::blobs::BlobStore;
use crate::media_job::{Indexed, MediaJob};
use crate::redis::replies::{Entry, Streams};
use crate::redis::{Redis, RedisError};
use crate::settings::MediaConfig;
use crate::worker::{self, Reading, StreamJob};
use sink::FileSink;

/// Staging files untouched this long (or twice the fetch timeout, if more)
/// are what a crash left; the worker removes them when it starts.
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// How long a job's outcomes are remembered after its last one.
const KEEP_OUTCOMES: Duration = Duration::from_secs(30 * 24 * 3600);

/// One instance's fetcher, with what it may reach and how much it may store.
#[derive(Clone)]
pub struct InstanceFetcher {
    pub fetcher: Arc<dyn MediaFetcher>,
    pub http: MediaHttp,
    pub max_bytes: u64,
}

/// The media worker of one replica.
pub struct MediaWorker {
    redis: Arc<Redis>,
    blobs: BlobStore,
    streams: Streams,
    events: String,
    config: MediaConfig,
    fetchers: HashMap<String, InstanceFetcher>,
    slots: Arc<Semaphore>,
}

impl StreamJob for MediaWorker {
    /// Fetches each job on a task of its own, holding its slot until done.
    async fn take(self: Arc<Self>, entries: Vec<Entry>, room: OwnedSemaphorePermit) {
        worker::spawn_each(self, entries, room, |this, entry| async move {
            this.process(entry).await
        });
    }
}

/// What one attachment came to.
enum Outcome {
    Stored {
        storage_key: String,
        sha256: String,
        size: u64,
        content_type: Option<String>,
        declared: Option<String>,
    },
    Unavailable(FetchError),
}

impl MediaWorker {
    /// The worker for `fetchers`; `None` when there are none or `[media] enabled = false`.
    pub fn new(
        config: &MediaConfig,
        events_stream: &str,
        fetchers: HashMap<String, InstanceFetcher>,
        redis: Arc<Redis>,
        blobs: BlobStore,
    ) -> Option<MediaWorker> {
        if fetchers.is_empty() || !config.enabled {
            return None;
        }
        let consumer = config
            .consumer
            .clone()
            .unwrap_or_else(crate::redis::replies::default_consumer);
        Some(MediaWorker {
            redis,
            blobs,
            streams: Streams {
                outbound: config.stream.clone(),
                field: "job",
                delivery: String::new(),
                events: events_stream.to_string(),
                group: config.group.clone(),
                consumer,
                state_ttl: KEEP_OUTCOMES,
                report_ttl: KEEP_OUTCOMES,
            },
            events: events_stream.to_string(),
            config: config.clone(),
            fetchers,
            slots: Arc::new(Semaphore::new(config.concurrency)),
        })
    }

    /// Removes what crashed downloads left in the staging directory, then
    /// runs the reader and the takeover loop until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let stale = STALE_STAGING.max(Duration::from_secs(
            self.config.fetch_timeout_seconds.saturating_mul(2),
        ));
        let swept = sink::sweep(&self.blobs.staging_dir(), stale).await;
        if swept > 0 {
            tracing::info!(swept, "removed staging files of downloads cut short");
        }
        let reading = Reading {
            name: "media",
            room: self.slots.clone(),
            capacity: self.config.concurrency,
            // One job per free slot: the rest stay in the stream for other replicas.
            per_read: 1,
            claim_idle: Duration::from_secs(self.config.claim_idle_seconds),
        };
        worker::run_partitions(&reading, &self.redis, &stop, |redis| {
            let this = Arc::new(self.on(redis));
            let streams = this.streams.clone();
            (this, streams)
        })
        .await;
    }

    /// This worker on one partition; the partitions share the fetch slots.
    fn on(&self, redis: Arc<Redis>) -> MediaWorker {
        let keys = redis.keys();
        let events = keys.named(&self.events);
        MediaWorker {
            streams: Streams {
                outbound: keys.named(&self.config.stream),
                events: events.clone(),
                ..self.streams.clone()
            },
            events,
            redis,
            blobs: self.blobs.clone(),
            config: self.config.clone(),
            fetchers: self.fetchers.clone(),
            slots: self.slots.clone(),
        }
    }

    /// Fetches every attachment of one job that has no outcome yet, then
    /// acknowledges it. Left pending (for a takeover) if Redis fails.
    async fn process(&self, entry: Entry) {
        if let Err(e) = self.process_job(&entry).await {
            tracing::warn!(error = %e, "media job left pending");
        }
    }

    async fn process_job(&self, entry: &Entry) -> Result<(), RedisError> {
        let job: MediaJob = match entry.payload.as_deref().map(serde_json::from_str) {
            Some(Ok(job)) => job,
            _ => {
                tracing::warn!(entry = %entry.id, "media job unreadable; acknowledged");
                return self.redis.ack_entry(&self.streams, &entry.id).await;
            }
        };
        let done = self.redis.media_outcomes(&job.complaint_id).await?;
        let fetcher = self.fetchers.get(&job.instance).cloned();
        let mut budget = self.config.max_complaint_bytes;
        for item in &job.attachments {
            if done.contains_key(&item.index) {
                continue;
            }
            let outcome = match &fetcher {
                Some(f) => {
                    self.fetch_with_retries(&job, item, f, &entry.id, budget)
                        .await
                }
                None => Outcome::Unavailable(FetchError::permanent(
                    "no_fetcher",
                    format!("instance `{}` fetches no attachments", job.instance),
                )),
            };
            if let Outcome::Stored { size, .. } = &outcome {
                budget = budget.saturating_sub(*size);
            }
            self.record(&job, item.index, outcome).await?;
        }
        self.redis.ack_entry(&self.streams, &entry.id).await
    }

    /// Attempts until stored, refused for good, or past the provider's link lifetime.
    async fn fetch_with_retries(
        &self,
        job: &MediaJob,
        item: &Indexed,
        f: &InstanceFetcher,
        entry_id: &str,
        budget: u64,
    ) -> Outcome {
        let horizon =
            job.received_at.0.timestamp_millis() + f.fetcher.link_lifetime().as_millis() as i64;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let error = match self.fetch_once(item, f, budget.min(f.max_bytes)).await {
                Ok(stored) => return stored,
                Err(e) => e,
            };
            let delay = backoff(&self.config, attempt).max(error.retry_after.unwrap_or_default());
            let next = Utc::now().timestamp_millis() + delay.as_millis() as i64;
            if !error.temporary || next > horizon {
                return Outcome::Unavailable(error);
            }
            tracing::info!(
                instance = %job.instance,
                code = %error.code,
                attempt,
                "attachment not fetched yet; retrying"
            );
            self.wait_holding(entry_id, delay).await;
        }
    }

    /// Waits `delay`, keeping the job's entry from looking abandoned.
    async fn wait_holding(&self, entry_id: &str, delay: Duration) {
        let step = Duration::from_secs(self.config.claim_idle_seconds)
            .mul_f64(0.3)
            .max(Duration::from_millis(100));
        let until = tokio::time::Instant::now() + delay;
        loop {
            let now = tokio::time::Instant::now();
            if now >= until {
                return;
            }
            tokio::time::sleep((until - now).min(step)).await;
            let _ = self.redis.touch_entry(&self.streams, entry_id).await;
        }
    }

    async fn fetch_once(
        &self,
        item: &Indexed,
        f: &InstanceFetcher,
        cap: u64,
    ) -> Result<Outcome, FetchError> {
        let mut sink = FileSink::create(&self.blobs.staging_dir(), cap).await?;
        let timeout = Duration::from_secs(self.config.fetch_timeout_seconds);
        let fetched = match tokio::time::timeout(
            timeout,
            f.fetcher.fetch(&item.attachment, &f.http, &mut sink),
        )
        .await
        {
            Ok(Ok(fetched)) => fetched,
            Ok(Err(e)) => {
                sink.discard().await;
                return Err(e);
            }
            Err(_) => {
                sink.discard().await;
                return Err(FetchError::temporary(
                    "timeout",
                    "the download took too long",
                ));
            }
        };
        let staged = sink.finish().await?;
        let expected = fetched
            .expected_sha256
            .as_deref()
            .or(item.attachment.sha256.as_deref())
            .map(str::to_ascii_lowercase);
        if let Some(expected) = expected.filter(|e| e.len() == 64)
            && expected != staged.sha256
        {
            let _ = tokio::fs::remove_file(&staged.path).await;
            return Err(FetchError::permanent(
                "sha256_mismatch",
                "the bytes do not match the provider's SHA-256",
            ));
        }
        let declared = fetched
            .content_type
            .or_else(|| item.attachment.content_type.clone());
        let sniffed = sniff::sniff(&staged.head).map(str::to_string);
        let content_type = sniffed
            .clone()
            .or_else(|| declared.clone())
            .unwrap_or_else(|| "application/octet-stream".into());
        let storage_key = format!("sha256/{}", staged.sha256);
        if let Err(e) = self
            .blobs
            .put_file(&storage_key, &staged.path, &content_type)
            .await
        {
            let _ = tokio::fs::remove_file(&staged.path).await;
            return Err(FetchError::temporary("store", e.to_string()));
        }
        Ok(Outcome::Stored {
            storage_key,
            sha256: staged.sha256,
            size: staged.size,
            content_type: Some(content_type),
            declared,
        })
    }

    async fn record(
        &self,
        job: &MediaJob,
        index: usize,
        outcome: Outcome,
    ) -> Result<(), RedisError> {
        let at = Timestamp(Utc::now());
        let (kind, event) = match outcome {
            Outcome::Stored {
                storage_key,
                sha256,
                size,
                content_type,
                declared,
            } => (
                "attachment_stored",
                serde_json::json!({
                    "type": "attachment_stored",
                    "complaint_id": job.complaint_id,
                    "instance": job.instance,
                    "index": index,
                    "storage_key": storage_key,
                    "sha256": sha256,
                    "size": size,
                    "content_type": content_type,
                    "declared_content_type": declared,
                    "at": at,
                }),
            ),
            Outcome::Unavailable(e) => (
                "attachment_unavailable",
                serde_json::json!({
                    "type": "attachment_unavailable",
                    "complaint_id": job.complaint_id,
                    "instance": job.instance,
                    "index": index,
                    "reason": e.code,
                    "message": e.message,
                    "at": at,
                }),
            ),
        };
        crate::telemetry::media(&job.instance, kind);
        self.redis
            .media_outcome(
                &job.complaint_id,
                index,
                kind,
                &event.to_string(),
                &self.events,
                KEEP_OUTCOMES,
            )
            .await
            .map(|_| ())
    }
}

/// The delay before attempt `attempt + 1`: doubling from the base, capped.
fn backoff(cfg: &MediaConfig, attempt: u32) -> Duration {
    let base = Duration::from_millis(cfg.backoff_base_ms);
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(Duration::from_millis(cfg.backoff_max_ms))
}
