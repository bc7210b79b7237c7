//! Everything the gateway says to Redis, in one place: the connection, the
//! key names and the Lua scripts, and the operations built on them.
//!
//! - [`append`]: the atomic dedup-and-append of complaints.
//! - [`fragments`]: the store of held parts of split messages.
//! - [`keys`]: every key name, the partitions' hash tags and the cluster slot of a key.
//! - [`leases`]: poller leases and cursors.
//! - [`replies`]: the outbound stream, claims and records of replies.
//! - [`reports`]: provider reports matched to the replies they are about.
//! - [`scripts`]: the Lua, each with the keys and arguments it takes.
//!
//! Every key is named by [`Keys`], so the layout can be read here and
//! nowhere else. With partitions (or on a cluster) every key that a script
//! touches together with others carries its partition's hash tag (`{3}`),
//! and each partition is a [`Redis`] of its own over the one connection:
//! see [`Redis::part`].

pub mod append;
pub mod conn;
pub mod fragments;
pub mod keys;
pub mod leases;
pub mod media;
pub mod replies;
pub mod reports;
pub mod scripts;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OnceCell, mpsc};

pub use conn::Conn;
use conn::Link;
pub use keys::{Keys, hash_tag, partition_of, slot};

use crate::settings::RedisConfig;
use crate::telemetry;

/// Why Redis could not do what was asked. Callers fall back (spool) or answer 503.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    #[error("cannot serialize complaint: {0}")]
    Serialize(String),
}

impl RedisError {
    /// A command's failure, counted under `op`.
    pub fn command(op: &'static str, e: ::redis::RedisError) -> Self {
        telemetry::redis_error(op);
        RedisError::Unavailable(e.to_string())
    }
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// How long the append keeps what it writes beside the entry, in ms.
#[derive(Clone, Copy, Debug)]
struct Ttls {
    dedup_ms: u64,
    route_ms: u64,
    /// The longest reply window (7 days, Messenger's `HUMAN_AGENT`) and a day.
    window_ms: u64,
    /// How long a tracking number stays taken.
    tracking_ms: u64,
    /// How long what matches provider reports is kept (`report_days`).
    report_ms: u64,
}

/// The connection to Redis, opened on first use so that the gateway starts
/// (and spools) while Redis is down. With more than one partition, this is
/// the whole, and [`Redis::part`] gives each partition: the same connection
/// with that partition's keys, streams and append task.
pub struct Redis {
    link: Arc<Link>,
    keys: Keys,
    ttls: Ttls,
    /// Before every tracking number (`[tracking] prefix`).
    tracking_prefix: String,
    /// Where acknowledgements are queued (`[outbound] stream`), before the tag.
    outbound_stream: String,
    /// The acknowledgement of each instance that sends one.
    acks: Arc<std::collections::HashMap<String, Arc<crate::ack::Ack>>>,
    /// Where media jobs are queued (`[media] stream`), before the tag.
    media_stream: String,
    /// The media fetcher of each instance whose attachments are fetched.
    fetchers: Arc<std::collections::HashMap<String, Arc<dyn aduan_adapter::media::MediaFetcher>>>,
    /// The task that gathers concurrent appends into one script call,
    /// started by the first append.
    appender: OnceCell<mpsc::Sender<append::Job>>,
    /// This partition (0 for the whole).
    partition: u16,
    /// How many partitions there are (`redis.partitions`).
    count: u16,
    /// Whether keys carry the partition's hash tag.
    tagged: bool,
    /// The partitions, made on first use; empty in a partition itself.
    parts: std::sync::OnceLock<Vec<Arc<Redis>>>,
    /// True for a partition made by [`Redis::part`].
    is_part: bool,
}

impl Redis {
    /// Parses the URL (or the cluster's seed nodes); connects nothing yet.
    pub fn new(cfg: &RedisConfig) -> Result<Self, RedisError> {
        let keys = Keys::new(&cfg.key_prefix, &cfg.stream);
        let tagged = cfg.tagged();
        Ok(Redis {
            link: Arc::new(Link::new(cfg)?),
            keys: if tagged {
                keys.tagged(0, cfg.partitions.max(1))
            } else {
                keys
            },
            ttls: Ttls {
                dedup_ms: cfg.dedup_window_seconds.saturating_mul(1000),
                route_ms: 90 * DAY_MS,
                window_ms: 8 * DAY_MS,
                tracking_ms: 400 * DAY_MS,
                report_ms: 30 * DAY_MS,
            },
            tracking_prefix: "ADU".into(),
            outbound_stream: "aduan:outbound".into(),
            acks: Arc::default(),
            media_stream: "aduan:media".into(),
            fetchers: Arc::default(),
            appender: OnceCell::new(),
            partition: 0,
            count: cfg.partitions.max(1),
            tagged,
            parts: std::sync::OnceLock::new(),
            is_part: false,
        })
    }

    /// How many partitions complaints are spread over.
    pub fn partition_count(&self) -> u16 {
        self.count
    }

    /// This partition's number (0 for the whole).
    pub fn partition(&self) -> u16 {
        self.partition
    }

    /// Whether the whole splits its work over partitions.
    fn splits(&self) -> bool {
        self.count > 1 && !self.is_part
    }

    /// Partition `p` (itself with one partition, or when it is one).
    pub fn part(&self, p: u16) -> &Redis {
        if !self.splits() {
            return self;
        }
        let parts = self.parts.get_or_init(|| {
            (0..self.count)
                .map(|p| {
                    Arc::new(Redis {
                        link: self.link.clone(),
                        keys: self.keys.tagged(p, self.count),
                        ttls: self.ttls,
                        tracking_prefix: self.tracking_prefix.clone(),
                        outbound_stream: self.outbound_stream.clone(),
                        acks: self.acks.clone(),
                        media_stream: self.media_stream.clone(),
                        fetchers: self.fetchers.clone(),
                        appender: OnceCell::new(),
                        partition: p,
                        count: self.count,
                        tagged: true,
                        parts: std::sync::OnceLock::new(),
                        is_part: true,
                    })
                })
                .collect()
        });
        parts.get(usize::from(p)).map_or(self, |r| r.as_ref())
    }

    /// Every partition, each to be given to the workers that read its streams.
    pub fn partitions(self: &Arc<Self>) -> Vec<Arc<Redis>> {
        if !self.splits() {
            return vec![self.clone()];
        }
        self.part(0);
        self.parts.get().cloned().unwrap_or_default()
    }

    /// The partition a key of ours belongs to, by its hash tag.
    pub fn owner_of(&self, key: &str) -> &Redis {
        match Keys::partition_of(key) {
            Some(p) if self.tagged => self.part(p),
            _ => self,
        }
    }

    /// The partition of a complaint: by its conversation.
    pub fn partition_for(&self, complaint: &aduan_adapter::Complaint) -> u16 {
        partition_of(&complaint.thread.conversation, self.count)
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.link.is_cluster()
    }

    /// The key that names every partition's streams for consumers
    /// (`{prefix}:layout`); written only when keys are tagged.
    pub fn layout_key(&self) -> String {
        format!("{}:layout", self.keys.prefix())
    }

    /// Writes the partition layout: the count, and for each stream the
    /// names of its partitions, in partition order (JSON). `delivery` and
    /// `events` are the `[outbound]` streams' names before the tag, `status`
    /// the `[status]` stream's.
    pub async fn publish_layout(
        &self,
        delivery: &str,
        events: &str,
        status: &str,
    ) -> Result<(), RedisError> {
        if !self.tagged {
            return Ok(());
        }
        let names = |base: &str| -> Vec<String> {
            (0..self.count)
                .map(|p| self.part(p).keys().named(base))
                .collect()
        };
        let layout = serde_json::json!({
            "partitions": self.count,
            "complaints": (0..self.count).map(|p| self.part(p).keys().stream()).collect::<Vec<_>>(),
            "outbound": names(&self.outbound_stream),
            "media": names(&self.media_stream),
            "delivery": names(delivery),
            "events": names(events),
            "status": names(status),
        });
        let mut conn = self.connection().await?;
        ::redis::cmd("SET")
            .arg(self.layout_key())
            .arg(layout.to_string())
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| RedisError::command("layout", e))
    }

    /// Keeps reply routes `days` (`[outbound] reply_route_days`) and
    /// queues acknowledgements on `outbound_stream`.
    pub fn with_outbound(mut self, cfg: &crate::settings::OutboundConfig) -> Self {
        self.ttls.route_ms = cfg.reply_route_days.saturating_mul(DAY_MS);
        self.ttls.report_ms = cfg.report_days.max(1).saturating_mul(DAY_MS);
        self.outbound_stream = cfg.stream.clone();
        self
    }

    /// Before every tracking number (`[tracking] prefix`).
    pub fn tracking_prefix(&self) -> &str {
        &self.tracking_prefix
    }

    /// How long what matches provider reports to replies is kept.
    pub fn report_ttl(&self) -> Duration {
        Duration::from_millis(self.ttls.report_ms)
    }

    /// Gives tracking numbers this prefix, each taken for `remember_days`.
    pub fn with_tracking(mut self, cfg: &crate::settings::TrackingConfig) -> Self {
        self.tracking_prefix = cfg.prefix.clone();
        self.ttls.tracking_ms = cfg.remember_days.max(1).saturating_mul(DAY_MS);
        self
    }

    /// Queues `acks[instance]` with each new complaint of that instance.
    pub fn with_acks(
        mut self,
        acks: std::collections::HashMap<String, Arc<crate::ack::Ack>>,
    ) -> Self {
        self.acks = Arc::new(acks);
        self
    }

    /// Queues a media job on `stream` for each new complaint of an instance
    /// in `fetchers` with attachments its fetcher can get.
    pub fn with_media(
        mut self,
        stream: &str,
        fetchers: std::collections::HashMap<String, Arc<dyn aduan_adapter::media::MediaFetcher>>,
    ) -> Self {
        self.media_stream = stream.to_string();
        self.fetchers = Arc::new(fetchers);
        self
    }

    /// The state of a complaint's media job (an outcome per attachment index).
    pub fn media_key(&self, complaint_id: &str) -> String {
        self.keys.media(complaint_id)
    }

    /// The tracking number a complaint is offered first.
    pub fn first_tracking(&self, complaint: &aduan_adapter::Complaint) -> String {
        let p = self.partition_for(complaint);
        let [first, ..] = self.part(p).candidates(&complaint.id);
        first
    }

    /// This partition's three tracking candidates for the complaint `id`:
    /// each is the partition's number modulo the count, so no two
    /// partitions ever offer the same number.
    fn candidates(&self, id: &str) -> [String; 3] {
        crate::tracking::candidates_in(&self.tracking_prefix, id, self.partition, self.count)
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// How long one command may take.
    pub fn timeout(&self) -> Duration {
        self.link.timeout
    }

    /// A connection; it reconnects by itself once established.
    pub async fn connection(&self) -> Result<Conn, RedisError> {
        self.link.connection().await
    }

    /// True when Redis answers `PING` within the deadline.
    pub async fn ping(&self) -> bool {
        let Ok(mut conn) = self.connection().await else {
            return false;
        };
        matches!(
            tokio::time::timeout(
                self.timeout(),
                ::redis::cmd("PING").query_async::<String>(&mut conn)
            )
            .await,
            Ok(Ok(_))
        )
    }
}

/// The flat list of strings in a script reply.
pub(crate) fn strings(v: &::redis::Value) -> Result<Vec<String>, RedisError> {
    let ::redis::Value::Array(items) = v else {
        return Err(RedisError::Protocol("reply is not a list".into()));
    };
    items
        .iter()
        .map(|i| match i {
            ::redis::Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            ::redis::Value::SimpleString(s) => Ok(s.clone()),
            ::redis::Value::Int(n) => Ok(n.to_string()),
            other => Err(RedisError::Protocol(format!("{other:?}"))),
        })
        .collect()
}
