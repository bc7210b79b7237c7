//! Everything the gateway says to Redis, in one place: the connection, the
//! key names and the Lua scripts, and the operations built on them.
//!
//! - [`append`]: the atomic dedup-and-append of complaints.
//! - [`fragments`]: the store of held parts of split messages.
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
pub mod leases;
pub mod media;
pub mod replies;
pub mod reports;
pub mod scripts;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OnceCell, mpsc};

pub use conn::Conn;
use conn::Link;

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

/// The names of every key the gateway writes, in one partition.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
    stream: String,
    /// `{p}` on a cluster or with partitions, else empty: today's names.
    tag: String,
}

impl Keys {
    /// Keys under `prefix` (`redis.key_prefix`), complaints to `stream`,
    /// untagged (a single node with one partition).
    pub fn new(prefix: &str, stream: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
            stream: stream.to_string(),
            tag: String::new(),
        }
    }

    /// The same names in partition `p` of `count`, with its hash tag.
    pub fn tagged(&self, p: u16, count: u16) -> Self {
        Keys {
            tag: format!("{{{}}}", hash_tag(p, count)),
            ..self.clone()
        }
    }

    /// The partition a tagged key belongs to (`None`: untagged).
    pub fn partition_of(key: &str) -> Option<u16> {
        let open = key.find('{')?;
        let close = open + key[open..].find('}')?;
        let tag = &key[open + 1..close];
        tag.split('-').next()?.parse().ok()
    }

    /// A stream (or other key) named by configuration, in this partition:
    /// `base` untagged, else `base:{p}`.
    pub fn named(&self, base: &str) -> String {
        if self.tag.is_empty() {
            base.to_string()
        } else {
            format!("{base}:{}", self.tag)
        }
    }

    /// `prefix:kind:rest`, with the tag after the kind when tagged.
    fn key(&self, kind: &str, rest: &str) -> String {
        if self.tag.is_empty() {
            format!("{}:{kind}:{rest}", self.prefix)
        } else {
            format!("{}:{kind}:{}:{rest}", self.prefix, self.tag)
        }
    }

    /// The complaints stream.
    pub fn stream(&self) -> String {
        self.named(&self.stream)
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A digest of `instance` and an id: ids of any length and content make
    /// keys of one shape, and provider text stays out of key names.
    fn digest(instance: &str, id: &str) -> String {
        aduan_adapter::verify::sha256_hex(format!("{instance}\u{0}{id}").as_bytes())
    }

    /// The dedup key of a delivery (`instance`, `external_id`).
    pub fn dedup(&self, instance: &str, external_id: &str) -> String {
        self.key("dedup", &Keys::digest(instance, external_id))
    }

    /// The hash holding one group of a split message's parts.
    pub fn fragment_group(&self, instance: &str, group: &str) -> String {
        self.key("frag:group", &Keys::digest(instance, group))
    }

    /// Remembers that a part (by its provider id) was received.
    pub fn fragment_part(&self, instance: &str, external_id: &str) -> String {
        self.key("frag:part", &Keys::digest(instance, external_id))
    }

    /// The sorted set of held groups by deadline (ms since the epoch).
    pub fn fragment_due(&self) -> String {
        self.named(&format!("{}:frag:due", self.prefix))
    }

    /// A complaint's reply route (hash: `r` the route JSON, `w` its window key).
    pub fn route(&self, complaint_id: &str) -> String {
        self.key("route", complaint_id)
    }

    /// The time (ms) of a citizen's last message on (`instance`, address).
    pub fn window(&self, instance: &str, to: &str) -> String {
        self.key("window", &Keys::digest(instance, to))
    }

    /// The claim and outcome of one reply (hash).
    pub fn reply(&self, reply_id: &str) -> String {
        self.key("reply", &Keys::digest("", reply_id))
    }

    /// Replies waiting for their next attempt, by due time (ms).
    pub fn retries(&self) -> String {
        self.named(&format!("{}:outbound:retry", self.prefix))
    }

    /// What a provider message id we sent belongs to, for provider reports.
    pub fn sent(&self, instance: &str, provider_message_id: &str) -> String {
        self.key("sent", &Keys::digest(instance, provider_message_id))
    }

    /// The provider ids sent to (`instance`, address), by time sent (ms):
    /// read reports that name only a watermark.
    pub fn sent_to(&self, instance: &str, to: &str) -> String {
        self.key("sentto", &Keys::digest(instance, to))
    }

    /// Set while the citizen at (`instance`, address) opted out of messages.
    pub fn opt_out(&self, instance: &str, to: &str) -> String {
        self.key("optout", &Keys::digest(instance, to))
    }

    /// The outcomes of a complaint's media job, by attachment index.
    pub fn media(&self, complaint_id: &str) -> String {
        self.key("media", complaint_id)
    }

    /// Held by the complaint that took this tracking number.
    pub fn tracking(&self, number: &str) -> String {
        self.key("tracking", number)
    }

    /// A poller's lease: one key, in whatever slot its name falls in.
    pub fn lease(&self, name: &str) -> String {
        format!("{}:lease:{name}", self.prefix)
    }

    /// A poller's cursor: one key, like its lease.
    pub fn cursor(&self, name: &str) -> String {
        format!("{}:cursor:{name}", self.prefix)
    }
}

/// The hash slot of a key, as Redis Cluster computes it: CRC16 (XMODEM)
/// of its hash tag (or of the whole key when it has none), modulo 16384.
pub fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    let mut crc: u16 = 0;
    for &b in tagged.unwrap_or(bytes) {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// The hash tag of partition `p` of `count`: `p-k` with the first `k` whose
/// slot lies in the `p`-th of `count` equal slices of the slot range, so
/// the partitions spread over the masters of an evenly sliced cluster (as
/// `redis-cli --cluster create` makes it). `0` with one partition.
pub fn hash_tag(p: u16, count: u16) -> String {
    if count <= 1 {
        return "0".into();
    }
    let (from, to) = (
        u32::from(p) * 16384 / u32::from(count),
        (u32::from(p) + 1) * 16384 / u32::from(count),
    );
    (0u32..)
        .map(|k| format!("{p}-{k}"))
        .find(|tag| (from..to).contains(&u32::from(slot(&format!("{{{tag}}}")))))
        .unwrap_or_else(|| p.to_string())
}

/// The partition of a conversation among `count`: a stable hash of its key,
/// so one citizen's conversation stays in order on one partition.
pub fn partition_of(conversation: &str, count: u16) -> u16 {
    if count <= 1 {
        return 0;
    }
    let digest = aduan_adapter::verify::sha256_hex(conversation.as_bytes());
    let head = u64::from_str_radix(&digest[..16], 16).unwrap_or(0);
    (head % u64::from(count)) as u16
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
    /// `events` are the `[outbound]` streams' names before the tag.
    pub async fn publish_layout(&self, delivery: &str, events: &str) -> Result<(), RedisError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_those_redis_cluster_computes() {
        // As `CLUSTER KEYSLOT` answers.
        assert_eq!(slot("{0}"), 13907);
        assert_eq!(slot("{1}"), 9842);
        assert_eq!(slot("123456789"), 12739);
        // An empty tag is no tag: the whole key is hashed.
        assert_ne!(slot("a{}b"), slot("{}"));
        assert_eq!(slot("aduan:dedup:{2-1}:x"), slot("{2-1}"));
    }

    #[test]
    fn partitions_spread_over_the_slot_range_and_name_themselves() {
        for count in [2u16, 3, 5, 16] {
            for p in 0..count {
                let keys = Keys::new("aduan", "aduan:complaints").tagged(p, count);
                let s = u32::from(slot(&keys.stream()));
                assert!(s >= u32::from(p) * 16384 / u32::from(count));
                assert!(s < (u32::from(p) + 1) * 16384 / u32::from(count));
                assert_eq!(Keys::partition_of(&keys.dedup("i", "e")), Some(p));
                assert_eq!(slot(&keys.dedup("i", "e")), slot(&keys.stream()));
            }
        }
        let plain = Keys::new("aduan", "aduan:complaints");
        assert_eq!(plain.stream(), "aduan:complaints");
        assert_eq!(plain.dedup("i", "e").matches(':').count(), 2);
        assert_eq!(Keys::partition_of(&plain.dedup("i", "e")), None);
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(
            partition_of("wa:6281234567890", 4),
            partition_of("wa:6281234567890", 4)
        );
    }
}
