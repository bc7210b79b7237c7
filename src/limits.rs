//! Backpressure and input limits: how much work the gateway takes on at once,
//! how fast each instance and each sender may go, and how big or deep a
//! request may be before any adapter looks at it.
//!
//! Everything here is cheap and runs before the expensive steps it protects:
//! admission before the body is read, the byte pre-scan before an adapter's
//! serde parse, the per-sender check before the append. Every refusal is
//! counted in `aduan_limit_exceeded_total{limit, route}`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aduan_adapter::{Complaint, Receipt};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ConfigError;
use crate::telemetry;

/// Every route a body limit may be set for: the webhook segments and `transcripts`.
pub const ROUTES: &[&str] = &[
    "whatsapp",
    "messenger",
    "instagram",
    "telegram",
    "twilio",
    "vonage",
    "infobip",
    "sms",
    "x",
    "email",
    "transcripts",
];

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
            json_max_depth: 32,
            form_max_fields: 1000,
            max_messages_per_request: 1000,
            body_limit_bytes: BTreeMap::new(),
            max_headers: 100,
            max_header_bytes: 64 * 1024,
            header_read_timeout_seconds: 10,
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
    pub fn check(&self, instance_names: &HashSet<String>) -> Vec<ConfigError> {
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
            if !ROUTES.contains(&route.as_str()) {
                problem(
                    format!("limits.body_limit_bytes.{route}"),
                    format!("unknown route, expected one of: {}", ROUTES.join(", ")),
                );
            } else if *bytes == 0 {
                problem(
                    format!("limits.body_limit_bytes.{route}"),
                    "must be positive".into(),
                );
            }
        }
        for (name, over) in &self.instances {
            if !instance_names.contains(name) {
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

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener is working on `max_in_flight` requests.
    InFlight,
    /// The instance is working on its share of requests.
    InstanceInFlight,
    /// The instance is over its request rate; retry after the given time.
    InstanceRate(Duration),
    /// A sender is over its complaint rate; retry after the given time.
    SenderRate(Duration),
}

impl Refusal {
    /// The `limit` label of the metric.
    pub fn limit(&self) -> &'static str {
        match self {
            Refusal::InFlight => "in_flight",
            Refusal::InstanceInFlight => "instance_in_flight",
            Refusal::InstanceRate(_) => "instance_rate",
            Refusal::SenderRate(_) => "sender_rate",
        }
    }
}

/// A request's place in the listener and in its instance, given back when dropped.
#[derive(Debug)]
pub struct Admission {
    _listener: OwnedSemaphorePermit,
    _instance: OwnedSemaphorePermit,
}

/// Tokens taken from senders' buckets for complaints about to be appended:
/// given back for those that turn out to be redeliveries or were not stored.
#[derive(Debug, Default)]
#[must_use = "settle the tickets once the append's outcome is known"]
pub struct SenderTickets {
    taken: Vec<String>,
}

/// One instance's gate: its share of the listener, its rate, its senders.
struct Gate {
    in_flight: Arc<Semaphore>,
    rate: Option<Buckets>,
    senders: Option<Buckets>,
}

/// The limits in force, shared by every request.
pub struct Limits {
    cfg: LimitsConfig,
    in_flight: Arc<Semaphore>,
    gates: HashMap<String, Gate>,
    /// For instances that were not known at start (never in practice; keeps lookups total).
    fallback: Gate,
}

impl Limits {
    /// The limits for the named instances.
    pub fn new<'a>(cfg: LimitsConfig, instance_names: impl IntoIterator<Item = &'a str>) -> Self {
        let gates = instance_names
            .into_iter()
            .map(|name| (name.to_string(), Gate::new(&cfg, cfg.instances.get(name))))
            .collect();
        Limits {
            in_flight: Arc::new(Semaphore::new(cfg.max_in_flight)),
            fallback: Gate::new(&cfg, None),
            gates,
            cfg,
        }
    }

    /// The settings these limits were built from.
    pub fn config(&self) -> &LimitsConfig {
        &self.cfg
    }

    fn gate(&self, instance: &str) -> &Gate {
        self.gates.get(instance).unwrap_or(&self.fallback)
    }

    /// Admits a request to `instance` on `route`, or says why not. Twilio requests wait
    /// up to `twilio_wait_ms` for room, because Twilio does not retry a refused message;
    /// every other provider retries and is refused at once.
    pub async fn admit(&self, route: &'static str, instance: &str) -> Result<Admission, Refusal> {
        let gate = self.gate(instance);
        let result: Result<Admission, Refusal> = async {
            if let Some(rate) = &gate.rate {
                rate.take("", Instant::now())
                    .map_err(Refusal::InstanceRate)?;
            }
            let wait = (route == "twilio").then(|| Duration::from_millis(self.cfg.twilio_wait_ms));
            let deadline = wait.map(|w| tokio::time::Instant::now() + w);
            let instance = acquire(&gate.in_flight, deadline)
                .await
                .ok_or(Refusal::InstanceInFlight)?;
            let listener = acquire(&self.in_flight, deadline)
                .await
                .ok_or(Refusal::InFlight)?;
            Ok(Admission {
                _listener: listener,
                _instance: instance,
            })
        }
        .await;
        if let Err(refusal) = &result {
            count(route, refusal.limit());
        }
        result
    }

    /// Takes one token per complaint from its sender's bucket. Complaints whose sender
    /// is over the limit are held back: the caller appends the rest and answers so that
    /// the provider retries the whole request later (the ones appended now are then
    /// redeliveries, which take no token).
    pub fn take_senders(
        &self,
        route: &'static str,
        instance: &str,
        complaints: Vec<Complaint>,
    ) -> (Vec<Complaint>, SenderTickets, Option<Refusal>) {
        let Some(senders) = &self.gate(instance).senders else {
            return (complaints, SenderTickets::default(), None);
        };
        let now = Instant::now();
        let mut kept = Vec::with_capacity(complaints.len());
        let mut tickets = SenderTickets::default();
        let mut wait: Option<Duration> = None;
        for complaint in complaints {
            match senders.take(&complaint.sender.id, now) {
                Ok(()) => {
                    tickets.taken.push(complaint.sender.id.clone());
                    kept.push(complaint);
                }
                Err(after) => wait = Some(wait.map_or(after, |w| w.max(after))),
            }
        }
        let refusal = wait.map(Refusal::SenderRate);
        if let Some(r) = &refusal {
            count(route, r.limit());
        }
        (kept, tickets, refusal)
    }

    /// Gives back the tokens of complaints that were redeliveries (`receipts` of the
    /// append) or, when the append failed (`None`), of all of them.
    pub fn settle(&self, instance: &str, tickets: SenderTickets, receipts: Option<&[Receipt]>) {
        let Some(senders) = &self.gate(instance).senders else {
            return;
        };
        for (i, sender) in tickets.taken.iter().enumerate() {
            let give_back = match receipts {
                None => true,
                Some(r) => r.get(i).is_none_or(|r| r.duplicate),
            };
            if give_back {
                senders.give_back(sender);
            }
        }
    }

    /// The body limit for `route`: the configured override, else the adapter's own, else
    /// the server's default.
    pub fn body_limit(&self, route: &str, adapter_own: Option<usize>, default: usize) -> usize {
        self.cfg
            .body_limit_bytes
            .get(route)
            .copied()
            .or(adapter_own)
            .unwrap_or(default)
    }

    /// The cheap checks on the raw request, before an adapter reads it: JSON nesting
    /// depth, form field count, query parameter count. `Err` is the `limit` label.
    pub fn prescan(
        &self,
        route: &'static str,
        headers: &HeaderMap,
        uri: &Uri,
        body: &[u8],
    ) -> Result<(), &'static str> {
        let result = prescan(&self.cfg, headers, uri, body);
        if let Err(limit) = result {
            count(route, limit);
        }
        result
    }

    /// Refuses a batch larger than `max_messages_per_request`.
    pub fn check_batch(&self, route: &'static str, messages: usize) -> Result<(), &'static str> {
        if messages > self.cfg.max_messages_per_request {
            count(route, "messages");
            return Err("messages");
        }
        Ok(())
    }

    /// The answer to a refused admission or a throttled sender, in the form the route's
    /// provider retries: `429` where it is documented to be retried (the transcript API,
    /// Telegram, Vonage), `503` elsewhere (SendGrid retries only 5xx; Meta, X, Mailgun and
    /// Postmark retry any failure; Twilio logs it, see `docs/limits.md`).
    pub fn refusal_response(&self, route: &str, refusal: Refusal) -> Response {
        let retry_after = match refusal {
            Refusal::InFlight | Refusal::InstanceInFlight => self.cfg.retry_after_seconds.max(1),
            Refusal::InstanceRate(d) | Refusal::SenderRate(d) => whole_seconds(d),
        };
        let (status, reason) = match refusal {
            Refusal::InFlight | Refusal::InstanceInFlight => (503, "overloaded"),
            Refusal::InstanceRate(_) | Refusal::SenderRate(_) => {
                (throttle_status(route), "rate_limited")
            }
        };
        let mut response = (
            axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE),
            axum::Json(serde_json::json!({ "error": reason })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        response
    }
}

/// Counts one refusal by a limit.
pub fn count(route: &'static str, limit: &'static str) {
    tracing::info!(route, limit, "refused by a limit");
    metrics::counter!(telemetry::LIMIT_EXCEEDED, "limit" => limit, "route" => route).increment(1);
}

/// The status a throttled request gets on `route`.
fn throttle_status(route: &str) -> u16 {
    match route {
        "transcripts" | "telegram" | "vonage" => 429,
        _ => 503,
    }
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A permit now, or by `deadline` when one is given.
async fn acquire(
    sem: &Arc<Semaphore>,
    deadline: Option<tokio::time::Instant>,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = sem.clone().try_acquire_owned() {
        return Some(p);
    }
    let deadline = deadline?;
    tokio::time::timeout_at(deadline, sem.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
}

impl Gate {
    fn new(cfg: &LimitsConfig, over: Option<&InstanceLimits>) -> Gate {
        let over = over.cloned().unwrap_or_default();
        let in_flight = over.max_in_flight.unwrap_or(cfg.max_in_flight_per_instance);
        let rps = over.per_instance_rps.unwrap_or(cfg.per_instance_rps);
        let burst = over.per_instance_burst.unwrap_or(cfg.per_instance_burst);
        let per_minute = over
            .per_sender_per_minute
            .unwrap_or(cfg.per_sender_per_minute);
        Gate {
            in_flight: Arc::new(Semaphore::new(in_flight.max(1))),
            rate: (rps > 0).then(|| {
                let burst = if burst == 0 {
                    rps.saturating_mul(2)
                } else {
                    burst
                };
                Buckets::new(f64::from(rps), f64::from(burst))
            }),
            senders: (per_minute > 0)
                .then(|| Buckets::new(f64::from(per_minute) / 60.0, f64::from(per_minute))),
        }
    }
}

/// Token buckets by key: each holds up to `burst` tokens and refills at `rate` per
/// second. A full bucket is the same as no bucket, which is how the map is pruned.
struct Buckets {
    rate: f64,
    burst: f64,
    map: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Past this many keys, full buckets are dropped before a new one is added.
const PRUNE_AT: usize = 16 * 1024;

impl Buckets {
    fn new(rate: f64, burst: f64) -> Self {
        Buckets {
            rate,
            burst: burst.max(1.0),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`, or says how long until one is there.
    fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut map) = self.map.lock() else {
            // A panic elsewhere poisoned the map; limiting is not worth failing requests for.
            return Ok(());
        };
        if !map.contains_key(key) && map.len() >= PRUNE_AT {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| refilled(*b, now, rate, burst) < burst);
        }
        let bucket = map.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = refilled(*bucket, now, self.rate, self.burst);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }

    fn give_back(&self, key: &str) {
        if let Ok(mut map) = self.map.lock()
            && let Some(b) = map.get_mut(key)
        {
            b.tokens = (b.tokens + 1.0).min(self.burst);
        }
    }
}

fn refilled(b: Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + elapsed * rate).min(burst)
}

/// The byte-level checks behind [`Limits::prescan`].
pub fn prescan(
    cfg: &LimitsConfig,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<(), &'static str> {
    if let Some(query) = uri.query()
        && field_count(query.as_bytes()) > cfg.form_max_fields
    {
        return Err("form_fields");
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media_type == "application/x-www-form-urlencoded" {
        if field_count(body) > cfg.form_max_fields {
            return Err("form_fields");
        }
    } else if (media_type.ends_with("json") || looks_like_json(body))
        && json_depth_exceeds(body, cfg.json_max_depth)
    {
        return Err("json_depth");
    }
    Ok(())
}

/// Fields in a `a=1&b=2` string: empty pieces between `&`s are not fields.
fn field_count(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .count()
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// True when arrays and objects nest deeper than `max` anywhere in `body`. Brackets
/// inside strings do not count; the bytes need not be valid JSON (the adapter's parse
/// decides that), so this never fails on anything else.
pub fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complaint(sender: &str) -> Complaint {
        let ctx = aduan_adapter::Context {
            instance: "t",
            received_at: aduan_adapter::Timestamp(chrono::Utc::now()),
            keep_raw: false,
        };
        Complaint::new(
            &ctx,
            aduan_adapter::Channel::Whatsapp,
            "meta_whatsapp",
            format!("x-{sender}"),
            sender.to_string(),
        )
    }

    #[test]
    fn json_depth_counts_brackets_outside_strings_only() {
        assert!(!json_depth_exceeds(br#"{"a":[{"b":1}]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[\"[[[["}"#, 1));
        assert!(json_depth_exceeds(&[b'['; 10_000], 32));
        // Unbalanced closers never underflow into a pass for what follows.
        assert!(json_depth_exceeds(b"]]]]]]][[[[", 3));
    }

    #[test]
    fn prescan_counts_form_fields_and_query_parameters() {
        let cfg = LimitsConfig {
            form_max_fields: 3,
            ..LimitsConfig::default()
        };
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let uri: Uri = "/webhooks/sms/x".parse().expect("uri");
        assert_eq!(prescan(&cfg, &form, &uri, b"a=1&b=2&&c=3"), Ok(()));
        assert_eq!(
            prescan(&cfg, &form, &uri, b"a=1&b=2&c=3&d=4"),
            Err("form_fields")
        );
        let long: Uri = "/webhooks/sms/x?a=1&b=2&c=3&d=4".parse().expect("uri");
        assert_eq!(
            prescan(&cfg, &HeaderMap::new(), &long, b""),
            Err("form_fields")
        );
    }

    #[test]
    fn a_sender_over_its_rate_waits_and_others_do_not() {
        let buckets = Buckets::new(1.0, 2.0);
        let t0 = Instant::now();
        assert!(buckets.take("tel:+6281", t0).is_ok());
        assert!(buckets.take("tel:+6281", t0).is_ok());
        let wait = buckets.take("tel:+6281", t0).expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        assert!(buckets.take("tel:+6282", t0).is_ok());
        assert!(
            buckets
                .take("tel:+6281", t0 + Duration::from_secs(1))
                .is_ok()
        );
        buckets.give_back("tel:+6281");
        assert!(
            buckets
                .take("tel:+6281", t0 + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn redeliveries_give_their_sender_token_back() {
        let cfg = LimitsConfig {
            per_sender_per_minute: 1,
            ..LimitsConfig::default()
        };
        let limits = Limits::new(cfg, ["wa"]);
        let (kept, tickets, refused) = limits.take_senders("whatsapp", "wa", vec![complaint("a")]);
        assert_eq!((kept.len(), refused), (1, None));
        let receipt = Receipt {
            id: "01J".into(),
            external_id: "x-a".into(),
            duplicate: true,
        };
        limits.settle("wa", tickets, Some(&[receipt]));
        let (kept, tickets, refused) =
            limits.take_senders("whatsapp", "wa", vec![complaint("a"), complaint("b")]);
        assert_eq!(kept.len(), 2);
        assert!(refused.is_none());
        limits.settle("wa", tickets, None);
        let (kept, _, refused) =
            limits.take_senders("whatsapp", "wa", vec![complaint("a"), complaint("a")]);
        assert_eq!(kept.len(), 1);
        assert!(matches!(refused, Some(Refusal::SenderRate(_))));
    }

    #[tokio::test]
    async fn a_full_instance_refuses_at_once_and_twilio_waits() {
        let cfg = LimitsConfig {
            max_in_flight_per_instance: 1,
            twilio_wait_ms: 200,
            ..LimitsConfig::default()
        };
        let limits = Limits::new(cfg, ["wa", "sms"]);
        let held = limits.admit("whatsapp", "wa").await.expect("room");
        assert_eq!(
            limits.admit("whatsapp", "wa").await.err(),
            Some(Refusal::InstanceInFlight)
        );
        // Another instance still has room.
        let other = limits.admit("twilio", "sms").await.expect("room");
        let started = Instant::now();
        assert_eq!(
            limits.admit("twilio", "sms").await.err(),
            Some(Refusal::InstanceInFlight)
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
        drop((held, other));
    }

    #[test]
    fn check_reports_unknown_routes_and_instances() {
        let mut cfg = LimitsConfig::default();
        cfg.body_limit_bytes.insert("fax".into(), 10);
        cfg.instances
            .insert("nope".into(), InstanceLimits::default());
        cfg.max_header_bytes = 100;
        let names: HashSet<String> = ["wa".to_string()].into_iter().collect();
        let errs: Vec<String> = cfg.check(&names).iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
