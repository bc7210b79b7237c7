//! The sections of the configuration file other than `[limits]` and
//! `[[instances]]`: plain data, each with its defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use aduan_adapter::Secret;
use serde::Deserialize;

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP listener binds. Default `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes, unless an adapter sets its own. Default 1 MiB.
    pub body_limit_bytes: usize,
    /// How long one request may take, including reading a slow client's body. Default 15 s
    /// (Twilio gives up after 15 s, Meta and X sooner).
    pub request_timeout_seconds: u64,
    /// How long shutdown waits for in-flight requests. Default 20 s.
    pub shutdown_grace_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            body_limit_bytes: 1024 * 1024,
            request_timeout_seconds: 15,
            shutdown_grace_seconds: 20,
        }
    }
}

/// `[redis]`: the sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Redis URL. Default `redis://127.0.0.1:6379`. May be an `env:`/`file:` reference;
    /// since a URL can carry a password it is held like any secret and never printed.
    pub url: Secret,
    /// The complaints stream key. Default `aduan:complaints`.
    pub stream: String,
    /// Prefix of every other key the gateway writes (dedup keys, leases, cursors). Default `aduan`.
    pub key_prefix: String,
    /// How long a delivery is remembered for deduplication. Default 8 days, longer than any
    /// provider's retry horizon (WhatsApp: 7 days).
    pub dedup_window_seconds: u64,
    /// How long one Redis command may take before it counts as a failure. Default 2000 ms.
    pub command_timeout_ms: u64,
    /// Talk to a Redis Cluster, with `url` (and `nodes`) as seeds the rest
    /// of the cluster is discovered from. Default false. Set by `nodes` too.
    pub cluster: bool,
    /// Seed nodes of a Redis Cluster, each a URL or an `env:`/`file:`
    /// reference (`rediss://` for TLS; a password in the URL). When given,
    /// `url` is used only if it is set as well. Default none.
    pub nodes: Vec<Secret>,
    /// How many partitions complaints are spread over, by their
    /// conversation: each has its own streams and its keys in one hash slot.
    /// Default 1 (with no cluster: the key names of a single node).
    pub partitions: u16,
    /// Replicas each append must reach before it counts as durable
    /// (`WAIT`); an append not confirmed in time goes to the spool and is
    /// forwarded (a duplicate then, if it did arrive). Default 0: the
    /// master's own write (and its `appendfsync`) is what counts.
    pub wait_replicas: u32,
    /// How long an append waits for `wait_replicas`. Default 500 ms.
    pub wait_timeout_ms: u64,
    /// PEM file of the CA that signed the Redis servers' certificates, for
    /// `rediss://` URLs; default the system's trusted roots.
    pub tls_ca: Option<PathBuf>,
}

impl RedisConfig {
    /// Whether keys carry a partition hash tag: on a cluster, or with more
    /// than one partition.
    pub fn tagged(&self) -> bool {
        self.is_cluster() || self.partitions > 1
    }

    /// Whether the gateway talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster || !self.nodes.is_empty()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: Secret::literal("redis://127.0.0.1:6379"),
            stream: "aduan:complaints".into(),
            key_prefix: "aduan".into(),
            dedup_window_seconds: 8 * 24 * 3600,
            command_timeout_ms: 2000,
            cluster: false,
            nodes: Vec::new(),
            partitions: 1,
            wait_replicas: 0,
            wait_timeout_ms: 500,
            tls_ca: None,
        }
    }
}

/// `[log]`: logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`. Default `human`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `aduan=debug`. `RUST_LOG` overrides it. Default `info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// `[smtp]`: the listener for `kind = "smtp"` instances. It starts only when
/// at least one such instance is configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpListenerConfig {
    /// Address the SMTP listener binds. Default `0.0.0.0:2525`.
    pub listen: SocketAddr,
    /// The name the server gives in its greeting and `EHLO` answer. Default `aduan`.
    pub hostname: String,
    /// Largest message accepted, in bytes, announced with `SIZE`. Default 25 MiB.
    pub max_message_bytes: usize,
    /// Most recipients of one message (`452 4.5.3` past it). Default 100.
    pub max_recipients: usize,
    /// Longest command line, in bytes including CRLF (`500 5.5.2` past it). Default 2048.
    pub max_line_bytes: usize,
    /// Most commands in a session without a message delivered (`421 4.7.0`
    /// past it). Default 1000.
    pub max_commands: usize,
    /// Seconds a client may stay silent before the session is closed (`421 4.4.2`). Default 300.
    pub idle_timeout_seconds: u64,
    /// Most sessions at once; more are turned away with `421 4.3.2`. Default 256.
    pub max_sessions: usize,
    /// Whether `STARTTLS` is offered. Default `true`: with the certificate
    /// of `tls_cert` and `tls_key` when given, else with a self-signed one
    /// made at first start and kept in `tls_dir` (sending servers encrypt
    /// opportunistically, without verifying it). `false` offers none.
    pub starttls: bool,
    /// PEM certificate chain for `STARTTLS`; with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `STARTTLS`; with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Where the self-signed certificate (`cert.pem`) and its key (`key.pem`,
    /// mode 0600) are kept when no `tls_cert` is given, so that a restart
    /// keeps them; created when missing. Default `data/smtp-tls`.
    pub tls_dir: PathBuf,
}

impl SmtpListenerConfig {
    /// The TLS settings that contradict each other.
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            out.push((
                "smtp.tls_cert",
                "tls_cert and tls_key must be given together",
            ));
        }
        if !self.starttls && self.tls_cert.is_some() {
            out.push((
                "smtp.starttls",
                "is false, so the certificate of tls_cert would never be used",
            ));
        }
        if self.tls_cert.is_none() && self.tls_dir.as_os_str().is_empty() {
            out.push(("smtp.tls_dir", "must not be empty"));
        }
        out
    }
}

impl Default for SmtpListenerConfig {
    fn default() -> Self {
        SmtpListenerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 2525)),
            hostname: "aduan".into(),
            starttls: true,
            tls_cert: None,
            tls_key: None,
            tls_dir: PathBuf::from("data/smtp-tls"),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
            max_line_bytes: 2048,
            max_commands: 1000,
            idle_timeout_seconds: 300,
            max_sessions: 256,
        }
    }
}

/// `[blobs]`: where attachment bytes are kept, and who may read them back
/// through `GET /v1/blobs/{storage_key}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobsConfig {
    /// `local` (a directory, the default) or `s3` (an S3-compatible bucket, for
    /// several replicas sharing one store).
    pub backend: BlobBackend,
    /// Directory of the local store; a blob with key `sha256/<hex>` is the file
    /// `<dir>/sha256/<hex>`. Default `data/blobs`.
    pub dir: PathBuf,
    /// Where downloads are written while they arrive, before they are stored.
    /// Default `<dir>/staging` for `local` (it must be on the same file system,
    /// so that storing is a rename) and `<system temp dir>/aduan-blobs-staging`
    /// for `s3`.
    pub staging_dir: Option<PathBuf>,
    /// `s3`: the endpoint URL, e.g. `https://s3.ap-southeast-3.amazonaws.com` or a
    /// MinIO, Ceph or Garage address. Default: AWS's endpoint for `region`.
    pub endpoint: Option<String>,
    /// `s3`: the bucket. Required for `s3`.
    pub bucket: Option<String>,
    /// `s3`: the region the requests are signed for. Default `us-east-1`.
    pub region: String,
    /// `s3`: the access key id (`env:`/`file:` reference), with `secret_access_key`.
    /// When both are absent the usual AWS environment variables, web identity
    /// or instance credentials are used.
    pub access_key_id: Option<Secret>,
    /// `s3`: the secret access key, with `access_key_id`.
    pub secret_access_key: Option<Secret>,
    /// `s3`: path-style requests (`<endpoint>/<bucket>/<key>`), as most
    /// self-hosted stores want; otherwise virtual-hosted style. Default false.
    pub path_style: bool,
    /// `s3`: a prefix put before every key inside the bucket, e.g. `aduan`, so
    /// the key `sha256/<hex>` is the object `aduan/sha256/<hex>`. Default none.
    pub prefix: Option<String>,
    /// Bearer tokens that may read blobs (`env:`/`file:` references). Default none.
    pub readers: Vec<Secret>,
    /// The key signed blob URLs are made and checked with (HMAC-SHA256).
    /// Without it no signed URL is accepted. Default none.
    pub signing_key: Option<Secret>,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        BlobsConfig {
            backend: BlobBackend::Local,
            dir: PathBuf::from("data/blobs"),
            staging_dir: None,
            endpoint: None,
            bucket: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            path_style: false,
            prefix: None,
            readers: Vec::new(),
            signing_key: None,
        }
    }
}

/// Which store `[blobs]` uses.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    /// A directory on this machine.
    #[default]
    Local,
    /// An S3-compatible bucket.
    S3,
}

impl BlobsConfig {
    /// Problems with the values, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        match self.backend {
            BlobBackend::Local => {
                if self.dir.as_os_str().is_empty() {
                    out.push(("blobs.dir", "must not be empty"));
                }
            }
            BlobBackend::S3 => {
                if self.bucket.as_deref().is_none_or(str::is_empty) {
                    out.push(("blobs.bucket", "is required with backend = \"s3\""));
                }
                if self.region.is_empty() {
                    out.push(("blobs.region", "must not be empty"));
                }
                if self.access_key_id.is_some() != self.secret_access_key.is_some() {
                    out.push((
                        "blobs.access_key_id",
                        "access_key_id and secret_access_key go together",
                    ));
                }
                if let Some(endpoint) = &self.endpoint
                    && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
                {
                    out.push(("blobs.endpoint", "must be an http:// or https:// URL"));
                }
                if let Some(prefix) = &self.prefix {
                    let segments_ok = prefix
                        .trim_matches('/')
                        .split('/')
                        .all(|s| !s.is_empty() && s != "." && s != "..");
                    let chars_ok = prefix
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
                    if !(segments_ok && chars_ok) {
                        out.push((
                            "blobs.prefix",
                            "must be path segments of letters, digits, `-`, `_` and `.`",
                        ));
                    }
                }
            }
        }
        if let Some(staging) = &self.staging_dir
            && staging.as_os_str().is_empty()
        {
            out.push(("blobs.staging_dir", "must not be empty"));
        }
        out
    }
}

/// The spool's file inside `[spool] dir`.
pub const SPOOL_FILE_NAME: &str = "spool.redb";

/// `[spool]`: the local durable spool used while Redis is unavailable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Directory holding the spool file (`spool.redb`); created when missing. Each
    /// gateway process needs its own. Default `data/spool`.
    pub dir: PathBuf,
    /// Most bytes of waiting records; past it the gateway answers `503` with
    /// `Retry-After` instead of accepting. Default 1 GiB.
    pub max_bytes: u64,
    /// Most waiting complaints; past it, `503` with `Retry-After`. Default 1,000,000.
    pub max_records: u64,
    /// Most writes (requests) grouped into one commit. Default 1024.
    pub group_commit_max: usize,
    /// Writes that may wait for the writer before callers wait for room. Default 8192.
    pub queue_capacity: usize,
    /// Records the forwarder reads, forwards and deletes per round. Default 512.
    pub forward_batch: usize,
    /// How long the forwarder waits before trying Redis again after a failure. Default 500 ms.
    pub retry_interval_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::from("data/spool"),
            max_bytes: 1 << 30,
            max_records: 1_000_000,
            group_commit_max: 1024,
            queue_capacity: 8192,
            forward_batch: 512,
            retry_interval_ms: 500,
        }
    }
}

impl SpoolConfig {
    /// Problems with the values, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.dir.as_os_str().is_empty() {
            out.push(("spool.dir", "must not be empty"));
        }
        for (key, value) in [
            ("spool.max_bytes", self.max_bytes),
            ("spool.max_records", self.max_records),
            ("spool.group_commit_max", self.group_commit_max as u64),
            ("spool.queue_capacity", self.queue_capacity as u64),
            ("spool.forward_batch", self.forward_batch as u64),
            ("spool.retry_interval_ms", self.retry_interval_ms),
        ] {
            if value == 0 {
                out.push((key, "must be positive"));
            }
        }
        out
    }

    /// The spool file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(SPOOL_FILE_NAME)
    }
}

/// `[language]`: detection of the complaint text's language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanguageConfig {
    /// Languages detection chooses among, as ISO 639-3 codes (`ind`, `eng`, `jav`,
    /// `kor`, …; any language whatlang knows). Fewer candidates make detection both
    /// faster and more often confident. An empty list turns detection off.
    /// Default: Indonesian, English, Javanese, Korean, Tagalog, Vietnamese, Thai,
    /// Mandarin, Japanese, Arabic.
    pub candidates: Vec<String>,
    /// Only the first this many characters of the text are examined: enough for a
    /// confident answer on the texts citizens write, and it bounds the cost. Default 160.
    pub max_chars: usize,
}

impl Default for LanguageConfig {
    fn default() -> Self {
        LanguageConfig {
            candidates: [
                "ind", "eng", "jav", "kor", "tgl", "vie", "tha", "cmn", "jpn", "ara",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            max_chars: 160,
        }
    }
}
