//! `[limits]`: backpressure, rate limits and the size of what comes in.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::ConfigError;

/// `[limits]`: backpressure, rate limits and the size of what comes in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests the HTTP listener works on at once, across every route. Past it, a request
    /// is answered `503` with `Retry-After` at once (Twilio requests wait, see
    /// `twilio_wait_ms`). Default 1024.
    pub max_in_flight: usize,
    /// Requests one instance may have in flight at once, so that a flood on one channel
    /// always leaves room for the others. Default 256.
    pub max_in_flight_per_instance: usize,
    /// How long a Twilio request waits for room when the listener or its instance is full,
    /// instead of being refused at once: Twilio does not retry a refused message. Keep it
    /// well under Twilio's 15 s timeout. Default 5000 ms.
    pub twilio_wait_ms: u64,
    /// `Retry-After` seconds sent when the listener or an instance is full. Default 5.
    pub retry_after_seconds: u64,
    /// Requests per second one instance accepts, sustained; 0 turns the limit off.
    /// Default 0 (off).
    pub per_instance_rps: u32,
    /// Requests an instance may send in a burst above `per_instance_rps`; 0 means twice
    /// `per_instance_rps`. Default 0.
    pub per_instance_burst: u32,
    /// New complaints one sender (`sender.id`) may send to one instance per minute, with a
    /// burst of the same size; 0 turns the limit off. Redeliveries of a complaint already
    /// accepted do not count. Default 120.
    pub per_sender_per_minute: u32,
    /// Whether `aduan import-transcripts` applies `per_sender_per_minute` too. A call
    /// center's daily export holds many calls of one caller (or, without a caller number,
    /// of one agent) within minutes, which is not a flood. Default false.
    pub import_per_sender: bool,
    /// Deepest nesting of arrays and objects in a JSON body. Checked on the raw bytes
    /// before any adapter parses them. Default 32.
    pub json_max_depth: usize,
    /// Most fields in a form-encoded body, and most parameters in a query string.
    /// Default 1000.
    pub form_max_fields: usize,
    /// Most complaints one request may carry (a provider's batch). Past it, `413`.
    /// Default 1000.
    pub max_messages_per_request: usize,
    /// Largest body per route in bytes, overriding `[server] body_limit_bytes` and the
    /// adapter's own limit, e.g. `email = 26214400`. Keys are route names (`whatsapp`,
    /// `twilio`, `email`, `transcripts`, …). Default: none.
    pub body_limit_bytes: BTreeMap<String, usize>,
    /// Most header fields in one HTTP/1 request; past it the server answers `431`.
    /// Default 100.
    pub max_headers: usize,
    /// Largest request head (request line and headers) in bytes; at least 8192. Past it
    /// the server answers `431`. Default 65536.
    pub max_header_bytes: usize,
    /// Seconds a client has to send the whole request head; a slower client is
    /// disconnected. The body is bounded by `[server] request_timeout_seconds`. Default 10.
    pub header_read_timeout_seconds: u64,
    /// Most connections the HTTP listener keeps open. At the cap the connection idle
    /// longest is closed to make room; a new one is refused only when every open
    /// one is answering a request. Default 10000 (the open-file limit is raised to
    /// its hard maximum at start, with a warning when that is still too low).
    pub max_connections: usize,
    /// Milliseconds a new connection may stay silent before it is closed: a
    /// connection that never sends a byte holds a descriptor for nothing. Default 5000.
    pub first_byte_timeout_ms: u64,
    /// Milliseconds a connection may stay idle between requests (keep-alive)
    /// before it is closed. Default 30000.
    pub idle_timeout_ms: u64,
    /// Overrides for one instance, by instance name: `[limits.instances.wa-jabar]`.
    pub instances: BTreeMap<String, InstanceLimits>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_in_flight: 1024,
            max_in_flight_per_instance: 256,
            twilio_wait_ms: 5000,
            retry_after_seconds: 5,
            per_instance_rps: 0,
            per_instance_burst: 0,
            per_sender_per_minute: 120,
            import_per_sender: false,
            json_max_depth: 32,
            form_max_fields: 1000,
            max_messages_per_request: 1000,
            body_limit_bytes: BTreeMap::new(),
            max_headers: 100,
            max_header_bytes: 64 * 1024,
            header_read_timeout_seconds: 10,
            max_connections: 10_000,
            first_byte_timeout_ms: 5_000,
            idle_timeout_ms: 30_000,
            instances: BTreeMap::new(),
        }
    }
}

/// `[limits.instances.<name>]`: one instance's own limits; a key left out keeps the
/// `[limits]` value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceLimits {
    /// Overrides `max_in_flight_per_instance`.
    pub max_in_flight: Option<usize>,
    /// Overrides `per_instance_rps` (0 turns it off for this instance).
    pub per_instance_rps: Option<u32>,
    /// Overrides `per_instance_burst`.
    pub per_instance_burst: Option<u32>,
    /// Overrides `per_sender_per_minute` (0 turns it off for this instance).
    pub per_sender_per_minute: Option<u32>,
}

impl LimitsConfig {
    /// Problems that need the instance names or that serde cannot see.
    /// `routes` are the route names of every kind of instance.
    pub fn check(&self, instance_names: &HashSet<&str>, routes: &[&str]) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut problem = |location: String, message: String| {
            errors.push(ConfigError { location, message });
        };
        for (key, value) in [
            ("max_in_flight", self.max_in_flight),
            (
                "max_in_flight_per_instance",
                self.max_in_flight_per_instance,
            ),
            ("json_max_depth", self.json_max_depth),
            ("form_max_fields", self.form_max_fields),
            ("max_messages_per_request", self.max_messages_per_request),
            ("max_headers", self.max_headers),
            ("max_connections", self.max_connections),
            ("first_byte_timeout_ms", self.first_byte_timeout_ms as usize),
            ("idle_timeout_ms", self.idle_timeout_ms as usize),
        ] {
            if value == 0 {
                problem(format!("limits.{key}"), "must be positive".into());
            }
        }
        if self.max_header_bytes < 8192 {
            problem(
                "limits.max_header_bytes".into(),
                "must be at least 8192".into(),
            );
        }
        if self.header_read_timeout_seconds == 0 {
            problem(
                "limits.header_read_timeout_seconds".into(),
                "must be positive".into(),
            );
        }
        for (route, bytes) in &self.body_limit_bytes {
            if !routes.contains(&route.as_str()) {
                problem(
                    format!("limits.body_limit_bytes.{route}"),
                    format!("unknown route, expected one of: {}", routes.join(", ")),
                );
            } else if *bytes == 0 {
                problem(
                    format!("limits.body_limit_bytes.{route}"),
                    "must be positive".into(),
                );
            }
        }
        for (name, over) in &self.instances {
            if !instance_names.contains(name.as_str()) {
                problem(
                    format!("limits.instances.{name}"),
                    "no instance has this name".into(),
                );
            }
            if over.max_in_flight == Some(0) {
                problem(
                    format!("limits.instances.{name}.max_in_flight"),
                    "must be positive".into(),
                );
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_unknown_routes_and_instances() {
        let mut cfg = LimitsConfig::default();
        cfg.body_limit_bytes.insert("fax".into(), 10);
        cfg.instances
            .insert("nope".into(), InstanceLimits::default());
        cfg.max_header_bytes = 100;
        let names: HashSet<&str> = ["wa"].into_iter().collect();
        let errs: Vec<String> = cfg
            .check(&names, &["whatsapp", "twilio"])
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[1].contains("whatsapp, twilio"), "{errs:?}");
    }
}
