//! Everything the gateway says to Redis, in one place: the connection, the
//! key names and the Lua scripts, and the operations built on them.
//!
//! - [`append`]: the atomic dedup-and-append of complaints.
//! - [`fragments`]: the store of held parts of split messages.
//! - [`leases`]: poller leases and cursors.
//! - [`scripts`]: the Lua, each with the keys and arguments it takes.
//!
//! Every key is named by [`Keys`], so the layout can be read (and changed
//! for a cluster) here and nowhere else.

pub mod append;
pub mod fragments;
pub mod leases;
pub mod media;
pub mod replies;
pub mod scripts;

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use tokio::sync::{Mutex, OnceCell, mpsc};

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

/// The names of every key the gateway writes.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
    stream: String,
}

impl Keys {
    /// Keys under `prefix` (`redis.key_prefix`), complaints to `stream`.
    pub fn new(prefix: &str, stream: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
            stream: stream.to_string(),
        }
    }

    /// The complaints stream.
    pub fn stream(&self) -> &str {
        &self.stream
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
        format!(
            "{}:dedup:{}",
            self.prefix,
            Keys::digest(instance, external_id)
        )
    }

    /// The hash holding one group of a split message's parts.
    pub fn fragment_group(&self, instance: &str, group: &str) -> String {
        format!(
            "{}:frag:group:{}",
            self.prefix,
            Keys::digest(instance, group)
        )
    }

    /// Remembers that a part (by its provider id) was received.
    pub fn fragment_part(&self, instance: &str, external_id: &str) -> String {
        format!(
            "{}:frag:part:{}",
            self.prefix,
            Keys::digest(instance, external_id)
        )
    }

    /// The sorted set of held groups by deadline (ms since the epoch).
    pub fn fragment_due(&self) -> String {
        format!("{}:frag:due", self.prefix)
    }

    /// A complaint's reply route (hash: `r` the route JSON, `w` its window key).
    pub fn route(&self, complaint_id: &str) -> String {
        format!("{}:route:{complaint_id}", self.prefix)
    }

    /// The time (ms) of a citizen's last message on (`instance`, address).
    pub fn window(&self, instance: &str, to: &str) -> String {
        format!("{}:window:{}", self.prefix, Keys::digest(instance, to))
    }

    /// The claim and outcome of one reply (hash).
    pub fn reply(&self, reply_id: &str) -> String {
        format!("{}:reply:{}", self.prefix, Keys::digest("", reply_id))
    }

    /// Replies waiting for their next attempt, by due time (ms).
    pub fn retries(&self) -> String {
        format!("{}:outbound:retry", self.prefix)
    }

    /// What a provider message id we sent belongs to, for provider reports.
    pub fn sent(&self, instance: &str, provider_message_id: &str) -> String {
        format!(
            "{}:sent:{}",
            self.prefix,
            Keys::digest(instance, provider_message_id)
        )
    }

    /// The provider ids sent to (`instance`, address), by time sent (ms):
    /// read reports that name only a watermark.
    pub fn sent_to(&self, instance: &str, to: &str) -> String {
        format!("{}:sentto:{}", self.prefix, Keys::digest(instance, to))
    }

    /// Set while the citizen at (`instance`, address) opted out of messages.
    pub fn opt_out(&self, instance: &str, to: &str) -> String {
        format!("{}:optout:{}", self.prefix, Keys::digest(instance, to))
    }

    /// The outcomes of a complaint's media job, by attachment index.
    pub fn media(&self, complaint_id: &str) -> String {
        format!("{}:media:{complaint_id}", self.prefix)
    }

    /// Held by the complaint that took this tracking number.
    pub fn tracking(&self, number: &str) -> String {
        format!("{}:tracking:{number}", self.prefix)
    }

    /// A poller's lease.
    pub fn lease(&self, name: &str) -> String {
        format!("{}:lease:{name}", self.prefix)
    }

    /// A poller's cursor.
    pub fn cursor(&self, name: &str) -> String {
        format!("{}:cursor:{name}", self.prefix)
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
}

/// The connection itself, shared with the task that batches appends.
struct Link {
    client: ::redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    timeout: Duration,
}

impl Link {
    /// A connection; the manager reconnects by itself once established.
    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok(conn.clone());
        }
        // Reconnection after a failure is retried quickly and often: readiness
        // and the spool's forwarder should see Redis back within a second.
        let config = ::redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| RedisError::Timeout(self.timeout))?
        .map_err(|e| RedisError::Unavailable(e.to_string()))?;
        *guard = Some(conn.clone());
        Ok(conn)
    }
}

/// The connection to Redis, opened on first use so that the gateway starts
/// (and spools) while Redis is down.
pub struct Redis {
    link: Arc<Link>,
    keys: Keys,
    ttls: Ttls,
    /// Before every tracking number (`[tracking] prefix`).
    tracking_prefix: String,
    /// Where acknowledgements are queued (`[outbound] stream`).
    outbound_stream: String,
    /// The acknowledgement of each instance that sends one.
    acks: std::collections::HashMap<String, Arc<crate::ack::Ack>>,
    /// Where media jobs are queued (`[media] stream`).
    media_stream: String,
    /// The media fetcher of each instance whose attachments are fetched.
    fetchers: std::collections::HashMap<String, Arc<dyn aduan_adapter::media::MediaFetcher>>,
    /// The task that gathers concurrent appends into one script call,
    /// started by the first append.
    appender: OnceCell<mpsc::Sender<append::Job>>,
}

impl Redis {
    /// Parses the URL; connects nothing yet.
    pub fn new(cfg: &RedisConfig) -> Result<Self, RedisError> {
        // Every command is answered before the next one goes out, so Nagle's
        // algorithm would only hold the tail of a large script call back
        // until the previous segment is acknowledged.
        let info = ::redis::IntoConnectionInfo::into_connection_info(cfg.url.expose())
            .map_err(|e| RedisError::Unavailable(e.to_string()))?
            .set_tcp_settings(::redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client =
            ::redis::Client::open(info).map_err(|e| RedisError::Unavailable(e.to_string()))?;
        Ok(Redis {
            link: Arc::new(Link {
                client,
                conn: Mutex::new(None),
                timeout: Duration::from_millis(cfg.command_timeout_ms),
            }),
            keys: Keys::new(&cfg.key_prefix, &cfg.stream),
            ttls: Ttls {
                dedup_ms: cfg.dedup_window_seconds.saturating_mul(1000),
                route_ms: 90 * DAY_MS,
                window_ms: 8 * DAY_MS,
                tracking_ms: 400 * DAY_MS,
            },
            tracking_prefix: "ADU".into(),
            outbound_stream: "aduan:outbound".into(),
            acks: std::collections::HashMap::new(),
            media_stream: "aduan:media".into(),
            fetchers: std::collections::HashMap::new(),
            appender: OnceCell::new(),
        })
    }

    /// Keeps reply routes `days` (`[outbound] reply_route_days`) and
    /// queues acknowledgements on `outbound_stream`.
    pub fn with_outbound(mut self, cfg: &crate::settings::OutboundConfig) -> Self {
        self.ttls.route_ms = cfg.reply_route_days.saturating_mul(DAY_MS);
        self.outbound_stream = cfg.stream.clone();
        self
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
        self.acks = acks;
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
        self.fetchers = fetchers;
        self
    }

    /// The state of a complaint's media job (an outcome per attachment index).
    pub fn media_key(&self, complaint_id: &str) -> String {
        self.keys.media(complaint_id)
    }

    /// The tracking number a complaint with this id is offered first.
    pub fn first_tracking(&self, id: &str) -> String {
        let [first, ..] = crate::tracking::candidates(&self.tracking_prefix, id);
        first
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// How long one command may take.
    pub fn timeout(&self) -> Duration {
        self.link.timeout
    }

    /// A connection; the manager reconnects by itself once established.
    pub async fn connection(&self) -> Result<ConnectionManager, RedisError> {
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
