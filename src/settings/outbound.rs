//! `[outbound]` and each instance's `[instances.reply]`: the way back to
//! the citizen. Plain data with defaults; the senders' own keys are read by
//! their channel crates.

use serde::Deserialize;

/// `[outbound]`: the worker that sends the core system's replies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Whether this replica sends replies at all. Default true (it does
    /// nothing unless some instance has an `[instances.reply]` table).
    pub enabled: bool,
    /// The stream the core system appends replies to. Default `aduan:outbound`.
    pub stream: String,
    /// The stream of delivery outcomes and provider reports. Default `aduan:delivery`.
    pub delivery_stream: String,
    /// The stream of events that are not complaints (opt-outs). Default `aduan:events`.
    pub events_stream: String,
    /// The consumer group the replicas share. Default `aduan`.
    pub group: String,
    /// This replica's consumer name. Default: host name and process id.
    pub consumer: Option<String>,
    /// How long an entry may stay pending with a replica before another takes
    /// it over (`XAUTOCLAIM`). Default 60 s.
    pub claim_idle_seconds: u64,
    /// How long a complaint's reply route is kept. Default 90 days.
    pub reply_route_days: u64,
    /// Attempts per reply before it fails with `attempts_exhausted`. Default 6.
    pub max_attempts: u32,
    /// Age (since it was appended) past which a reply fails with `expired`. Default 24 h.
    pub max_age_seconds: u64,
    /// First retry delay; doubled per attempt, with jitter. Default 1000 ms.
    pub backoff_base_ms: u64,
    /// Longest retry delay. Default 10 minutes.
    pub backoff_max_ms: u64,
    /// How long one send may take before it counts as a network failure. Default 30 s.
    pub send_timeout_ms: u64,
    /// Replies in flight on this replica, over all instances. Default 4096.
    pub max_in_flight: usize,
    /// Entries read per `XREADGROUP`. Default 256.
    pub read_count: usize,
    /// How long sent message ids are remembered to match provider reports. Default 30 days.
    pub report_days: u64,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            enabled: true,
            stream: "aduan:outbound".into(),
            delivery_stream: "aduan:delivery".into(),
            events_stream: "aduan:events".into(),
            group: "aduan".into(),
            consumer: None,
            claim_idle_seconds: 60,
            reply_route_days: 90,
            max_attempts: 6,
            max_age_seconds: 24 * 3600,
            backoff_base_ms: 1000,
            backoff_max_ms: 600_000,
            send_timeout_ms: 30_000,
            max_in_flight: 4096,
            read_count: 256,
            report_days: 30,
        }
    }
}

impl OutboundConfig {
    /// Values that cannot work, as (key, problem).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        for (key, value) in [
            ("outbound.stream", &self.stream),
            ("outbound.delivery_stream", &self.delivery_stream),
            ("outbound.events_stream", &self.events_stream),
            ("outbound.group", &self.group),
        ] {
            if value.is_empty() {
                out.push((key, "must not be empty"));
            }
        }
        for (key, value) in [
            ("outbound.claim_idle_seconds", self.claim_idle_seconds),
            ("outbound.reply_route_days", self.reply_route_days),
            ("outbound.max_age_seconds", self.max_age_seconds),
            ("outbound.backoff_base_ms", self.backoff_base_ms),
            ("outbound.send_timeout_ms", self.send_timeout_ms),
            ("outbound.report_days", self.report_days),
        ] {
            if value == 0 {
                out.push((key, "must be positive"));
            }
        }
        if self.max_attempts == 0 {
            out.push(("outbound.max_attempts", "must be positive"));
        }
        if self.max_in_flight == 0 || self.read_count == 0 {
            out.push(("outbound.max_in_flight", "must be positive"));
        }
        if self.backoff_max_ms < self.backoff_base_ms {
            out.push((
                "outbound.backoff_max_ms",
                "must not be below backoff_base_ms",
            ));
        }
        out
    }
}

/// The keys of `[instances.reply]` the gateway reads itself: how fast and how
/// persistently the instance's replies are sent. Every other key is the
/// sender's (access token, base URL, …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ReplyPolicy {
    /// Sends per second over the instance (per replica). Default per channel.
    pub rate_per_second: Option<f64>,
    /// Sends that may go at once after a quiet spell. Default: one second's worth.
    pub burst: Option<f64>,
    /// Sends per second to one recipient (Telegram: 1 per chat). Default per channel.
    pub per_recipient_per_second: Option<f64>,
    /// Sends in flight at once for the instance. Default 64.
    pub concurrency: usize,
    /// Overrides `[outbound] max_attempts` for this instance.
    pub max_attempts: Option<u32>,
    /// Overrides `[outbound] max_age_seconds` for this instance.
    pub max_age_seconds: Option<u64>,
    /// When a replica died between a send and its record, send again (may
    /// duplicate the message) instead of failing with `uncertain`. Default false.
    pub resend_on_uncertain: bool,
}

impl Default for ReplyPolicy {
    fn default() -> Self {
        ReplyPolicy {
            rate_per_second: None,
            burst: None,
            per_recipient_per_second: None,
            concurrency: 64,
            max_attempts: None,
            max_age_seconds: None,
            resend_on_uncertain: false,
        }
    }
}

impl ReplyPolicy {
    /// The policy keys taken out of a `[instances.reply]` table; the rest is
    /// left for the sender.
    pub const KEYS: [&'static str; 7] = [
        "rate_per_second",
        "burst",
        "per_recipient_per_second",
        "concurrency",
        "max_attempts",
        "max_age_seconds",
        "resend_on_uncertain",
    ];

    /// Splits `table` into the policy and the sender's keys.
    pub fn split(mut table: toml::Table) -> Result<(ReplyPolicy, toml::Table), String> {
        let mut own = toml::Table::new();
        for key in ReplyPolicy::KEYS {
            if let Some(v) = table.remove(key) {
                own.insert(key.to_string(), v);
            }
        }
        let policy = ReplyPolicy::deserialize(toml::Value::Table(own))
            .map_err(|e| format!("reply: {}", e.message()))?;
        if policy.concurrency == 0 {
            return Err("reply.concurrency must be positive".into());
        }
        for (key, v) in [
            ("rate_per_second", policy.rate_per_second),
            ("burst", policy.burst),
            ("per_recipient_per_second", policy.per_recipient_per_second),
        ] {
            if v.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
                return Err(format!("reply.{key} must be a positive number"));
            }
        }
        Ok((policy, table))
    }
}

/// `[tracking]`: the short numbers citizens are given for their complaints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// Before every number: `LPR` gives `LPR-7K3M-9QX2`. 0–8 capitals or
    /// digits. Default `ADU`.
    pub prefix: String,
    /// How long a number stays taken. Default 400 days.
    pub remember_days: u64,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            prefix: "ADU".into(),
            remember_days: 400,
        }
    }
}
