//! `[media]` and each instance's `[instances.media]`: fetching attachments
//! into the blob store before the provider's links expire.

use serde::Deserialize;

/// `[media]`: the worker that fetches attachments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Whether this replica fetches attachments. Default true.
    pub enabled: bool,
    /// The stream of fetch jobs, one per complaint. Default `aduan:media`.
    pub stream: String,
    /// The consumer group the replicas share. Default `aduan`.
    pub group: String,
    /// This replica's consumer name. Default: host name and process id.
    pub consumer: Option<String>,
    /// How long a job may stay pending with a replica before another takes it
    /// over. Default 60 s.
    pub claim_idle_seconds: u64,
    /// Largest attachment stored. Default 25 MiB.
    pub max_bytes: u64,
    /// Largest total of one complaint's attachments. Default 100 MiB.
    pub max_complaint_bytes: u64,
    /// Jobs fetched at once on this replica. Default 16.
    pub concurrency: usize,
    /// How long one download may take. Default 120 s.
    pub fetch_timeout_seconds: u64,
    /// First retry delay, doubled per attempt. Default 2 s.
    pub backoff_base_ms: u64,
    /// Longest retry delay. Default 10 minutes.
    pub backoff_max_ms: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            enabled: true,
            stream: "aduan:media".into(),
            group: "aduan".into(),
            consumer: None,
            claim_idle_seconds: 60,
            max_bytes: 25 * 1024 * 1024,
            max_complaint_bytes: 100 * 1024 * 1024,
            concurrency: 16,
            fetch_timeout_seconds: 120,
            backoff_base_ms: 2000,
            backoff_max_ms: 600_000,
        }
    }
}

impl MediaConfig {
    /// Values that cannot work, as (key, problem).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.stream.is_empty() || self.group.is_empty() {
            out.push(("media.stream", "stream and group must not be empty"));
        }
        for (key, v) in [
            ("media.claim_idle_seconds", self.claim_idle_seconds),
            ("media.max_bytes", self.max_bytes),
            ("media.max_complaint_bytes", self.max_complaint_bytes),
            ("media.fetch_timeout_seconds", self.fetch_timeout_seconds),
            ("media.backoff_base_ms", self.backoff_base_ms),
        ] {
            if v == 0 {
                out.push((key, "must be positive"));
            }
        }
        if self.concurrency == 0 {
            out.push(("media.concurrency", "must be positive"));
        }
        out
    }
}

/// The keys of `[instances.media]` the gateway reads itself; the rest are
/// the fetcher's (credentials, base URL).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MediaPolicy {
    /// Fetch this instance's attachments. Default true where a fetcher can
    /// be built from what is configured.
    pub enabled: bool,
    /// Let payload URLs reach loopback and private addresses (tests, or a
    /// provider stand-in on the local network). Default false.
    pub allow_private_addresses: bool,
    /// Overrides `[media] max_bytes` for this instance.
    pub max_bytes: Option<u64>,
}

impl Default for MediaPolicy {
    fn default() -> Self {
        MediaPolicy {
            enabled: true,
            allow_private_addresses: false,
            max_bytes: None,
        }
    }
}

impl MediaPolicy {
    pub const KEYS: [&'static str; 3] = ["enabled", "allow_private_addresses", "max_bytes"];

    /// Splits `table` into the policy and the fetcher's keys.
    pub fn split(mut table: toml::Table) -> Result<(MediaPolicy, toml::Table), String> {
        let mut own = toml::Table::new();
        for key in MediaPolicy::KEYS {
            if let Some(v) = table.remove(key) {
                own.insert(key.to_string(), v);
            }
        }
        let policy = MediaPolicy::deserialize(toml::Value::Table(own))
            .map_err(|e| format!("media: {}", e.message()))?;
        Ok((policy, table))
    }
}
