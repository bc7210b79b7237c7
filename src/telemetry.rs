//! Metrics (Prometheus text at `/metrics`) and logging (`tracing`, human or
//! JSON), with personal data masked.
//!
//! The gateway's events have one definition each here (a function per
//! event), so that every door counts and logs them with the same names and
//! labels. Labels carry only configured names (channel, instance, route or
//! door) and fixed reason labels, never anything a caller sent.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aduan_adapter::{Channel, Complaint, Receipt};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::settings::{LogConfig, LogFormat};

/// Complaints appended to the stream, by `channel` and `instance`.
pub const ACCEPTED: &str = "aduan_complaints_accepted_total";
/// Deliveries recognized as duplicates (nothing written), by `channel` and `instance`.
pub const DUPLICATES: &str = "aduan_complaints_duplicate_total";
/// Requests refused, by `route`, `instance` and `reason`.
pub const REJECTED: &str = "aduan_requests_rejected_total";
/// Non-complaint events acknowledged and not written, by `route`, `instance` and `reason`.
pub const IGNORED: &str = "aduan_events_ignored_total";
/// Request latency in seconds, by `route`.
pub const LATENCY: &str = "aduan_request_duration_seconds";
/// Requests or connections refused by a limit, by `limit` and `route`.
pub const LIMIT_EXCEEDED: &str = "aduan_limit_exceeded_total";
/// Complaints per append script call (histogram): how much concurrent requests share.
pub const APPEND_BATCH: &str = "aduan_redis_append_batch_size";
/// Failed Redis operations, by `op`.
pub const REDIS_ERRORS: &str = "aduan_redis_errors_total";
/// Complaints waiting in the spool (gauge).
pub const SPOOL_DEPTH: &str = "aduan_spool_depth";
/// Bytes of the records waiting in the spool (gauge).
pub const SPOOL_BYTES: &str = "aduan_spool_bytes";
/// Age in seconds of the oldest waiting record, 0 when empty (gauge).
pub const SPOOL_OLDEST_AGE: &str = "aduan_spool_oldest_age_seconds";
/// Records moved to quarantine because they could not be decoded (gauge).
pub const SPOOL_QUARANTINED: &str = "aduan_spool_quarantined";
/// Complaints written to the spool (counter).
pub const SPOOL_WRITTEN: &str = "aduan_spool_written_total";
/// Complaints forwarded from the spool and confirmed by Redis (counter); its
/// rate is the drain rate.
pub const SPOOL_DRAINED: &str = "aduan_spool_drained_total";
/// Group commits (counter); `WRITTEN / COMMITS` is the mean batch size.
pub const SPOOL_COMMITS: &str = "aduan_spool_commits_total";
/// Writes refused because the spool was full (counter).
pub const SPOOL_FULL: &str = "aduan_spool_full_total";

/// Status entries applied, by `instance` and `outcome` (`applied`,
/// `older`, `duplicate`, `rejected`).
pub const STATUS_UPDATES: &str = "aduan_status_updates_total";
/// Public status lookups, by `outcome` (`found`, `not_found`, `limited`, `unavailable`).
pub const STATUS_LOOKUPS: &str = "aduan_status_lookups_total";

/// Counts one status entry's outcome.
pub fn status_update(instance: &str, outcome: &'static str) {
    metrics::counter!(STATUS_UPDATES, "instance" => instance.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Counts one public status lookup.
pub fn status_lookup(outcome: &'static str) {
    metrics::counter!(STATUS_LOOKUPS, "outcome" => outcome).increment(1);
}

/// Counts and logs what one append did: each complaint accepted or found to
/// be a redelivery. `door` names where they came in (a route, `smtp`, `poll`,
/// `import`, `sweep`, `spool`).
pub fn published(door: &'static str, complaints: &[Complaint], receipts: &[Receipt]) {
    for (complaint, receipt) in complaints.iter().zip(receipts) {
        if receipt.duplicate {
            duplicate(complaint.channel, &complaint.instance);
            tracing::info!(id = %receipt.id, instance = %complaint.instance, door, "duplicate delivery");
        } else {
            metrics::counter!(ACCEPTED, "channel" => complaint.channel.as_str(), "instance" => complaint.instance.clone())
                .increment(1);
            tracing::info!(
                id = %receipt.id,
                channel = complaint.channel.as_str(),
                instance = %complaint.instance,
                door,
                sender = %mask_sender(&complaint.sender.id),
                "complaint accepted"
            );
        }
    }
}

/// Counts one redelivery of a complaint already accepted.
pub fn duplicate(channel: Channel, instance: &str) {
    metrics::counter!(DUPLICATES, "channel" => channel.as_str(), "instance" => instance.to_string())
        .increment(1);
}

/// Counts and logs one refused request or message.
pub fn rejected(door: &'static str, instance: &str, reason: &'static str) {
    tracing::info!(instance, door, reason, "request refused");
    metrics::counter!(REJECTED, "route" => door, "instance" => instance.to_string(), "reason" => reason)
        .increment(1);
}

/// Counts non-complaint events acknowledged and not written.
pub fn ignored(door: &'static str, instance: &str, reason: &'static str) {
    metrics::counter!(IGNORED, "route" => door, "instance" => instance.to_string(), "reason" => reason)
        .increment(1);
}

/// Counts and logs one refusal by a limit.
pub fn limit_exceeded(route: &'static str, limit: &'static str) {
    tracing::info!(route, limit, "refused by a limit");
    limit_counted(route, limit);
}

/// Counts one refusal by a limit that is logged in a summary instead (see [`QuietLog`]).
pub fn limit_counted(route: &'static str, limit: &'static str) {
    metrics::counter!(LIMIT_EXCEEDED, "limit" => limit, "route" => route).increment(1);
}

/// Reply attempts by instance, channel and outcome (`sent`, `retrying`,
/// `failed`, `duplicate`, `deferred`).
pub const REPLIES: &str = "aduan_replies_total";
/// Time from a reply's append to `aduan:outbound` to the provider's acceptance.
pub const REPLY_LATENCY: &str = "aduan_reply_latency_seconds";
/// Provider reports by instance and status; `unmatched` for messages this
/// gateway did not send.
pub const REPORTS: &str = "aduan_delivery_reports_total";

/// Attachments fetched by instance and outcome (`attachment_stored`,
/// `attachment_unavailable`).
pub const MEDIA: &str = "aduan_attachments_total";

/// One attachment's outcome.
pub fn media(instance: &str, outcome: &'static str) {
    metrics::counter!(MEDIA, "instance" => instance.to_string(), "outcome" => outcome).increment(1);
}

/// One reply attempt's outcome.
pub fn reply(instance: &str, channel: &'static str, outcome: &'static str) {
    metrics::counter!(REPLIES, "instance" => instance.to_string(), "channel" => channel, "outcome" => outcome)
        .increment(1);
}

/// A reply the provider accepted `waited` after it was appended.
pub fn reply_sent_after(instance: &str, waited: Duration) {
    metrics::histogram!(REPLY_LATENCY, "instance" => instance.to_string())
        .record(waited.as_secs_f64());
}

/// One provider report, matched (`status`) or not (`unmatched`).
pub fn report(instance: &str, status: &'static str) {
    metrics::counter!(REPORTS, "instance" => instance.to_string(), "status" => status).increment(1);
}

/// Counts one failed Redis operation.
pub fn redis_error(op: &'static str) {
    metrics::counter!(REDIS_ERRORS, "op" => op).increment(1);
}

/// Records how long one request took.
pub fn request_took(route: &'static str, elapsed: Duration) {
    metrics::histogram!(LATENCY, "route" => route).record(elapsed);
}

/// How long a [`QuietLog`] holds a repeating event back.
const QUIET_WINDOW: Duration = Duration::from_secs(1);

/// At most one log line per second for an event that can repeat thousands
/// of times a second: an accept loop out of descriptors, complaints spooled
/// during a Redis outage, connections closed to make room under a flood.
/// One line per event would bury everything else (a 80 s Redis pause once
/// wrote 90 MB of "complaints spooled").
///
/// Two ways to use one: [`QuietLog::allow`] lets the caller write the first
/// line of a second itself and tells it how many were held back since the
/// last one; [`QuietLog::tally`] (for a log made with
/// [`QuietLog::summarizing`]) counts events and writes one summary per
/// second, the count and the oldest age among them, a second after the
/// first event of the window, so nothing counted goes unsaid.
pub struct QuietLog {
    window: std::sync::Mutex<QuietWindow>,
    /// Writes one summary line.
    summary: Option<Box<dyn Fn(QuietSummary) + Send + Sync>>,
}

/// What one [`QuietLog`] has seen since its last line.
#[derive(Default)]
struct QuietWindow {
    /// When the last line was written ([`QuietLog::allow`]).
    last: Option<std::time::Instant>,
    /// Events counted and not yet written.
    held: u64,
    /// The oldest age among them.
    oldest: Option<Duration>,
    /// A summary is due (its flush is scheduled).
    open: bool,
}

/// What a summary line says: how many events in its window, and the
/// oldest age among them (of a spooled record, of an idle connection).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuietSummary {
    pub count: u64,
    pub oldest: Option<Duration>,
}

impl QuietSummary {
    /// The oldest age in seconds, to the millisecond, for a log field.
    pub fn oldest_seconds(&self) -> f64 {
        self.oldest.map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
    }
}

impl Default for QuietLog {
    fn default() -> Self {
        QuietLog {
            window: std::sync::Mutex::new(QuietWindow::default()),
            summary: None,
        }
    }
}

impl QuietLog {
    /// A log whose [`QuietLog::tally`] writes its summaries with `write`.
    pub fn summarizing(write: impl Fn(QuietSummary) + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(QuietLog {
            window: std::sync::Mutex::new(QuietWindow::default()),
            summary: Some(Box::new(write)),
        })
    }

    /// `Some(n)` when a line may be written now, `n` being how many were
    /// held back since the last one.
    pub fn allow(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut window = self.window.lock().ok()?;
        if window
            .last
            .is_some_and(|t| now.duration_since(t) < QUIET_WINDOW)
        {
            window.held += 1;
            return None;
        }
        window.last = Some(now);
        Some(std::mem::take(&mut window.held))
    }

    /// Counts `count` events, the oldest of them `age` old. The first event
    /// of a window schedules its summary a second later, on the running
    /// tokio runtime; outside one the summary is written at once.
    pub fn tally(self: &Arc<Self>, count: u64, age: Option<Duration>) {
        let schedule = {
            let Ok(mut window) = self.window.lock() else {
                return;
            };
            window.held += count;
            window.oldest = window.oldest.max(age);
            !std::mem::replace(&mut window.open, true)
        };
        if !schedule {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let log = self.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(QUIET_WINDOW).await;
                    log.flush();
                });
            }
            Err(_) => self.flush(),
        }
    }

    /// Writes the summary of what was counted and not yet written, if anything.
    pub fn flush(&self) {
        let summary = {
            let Ok(mut window) = self.window.lock() else {
                return;
            };
            window.open = false;
            QuietSummary {
                count: std::mem::take(&mut window.held),
                oldest: window.oldest.take(),
            }
        };
        if summary.count > 0
            && let Some(write) = &self.summary
        {
            write(summary);
        }
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process-wide recorder once and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(LATENCY.to_string()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(APPEND_BATCH.to_string()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                    )
                })
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // A second install (another gateway in the same test process) keeps the first recorder.
            let _ = metrics::set_global_recorder(recorder);
            // Histogram samples are kept raw until folded into their buckets: without a
            // scrape, or this upkeep, they would grow by every request for ever.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("aduan-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            handle
        })
        .clone()
}

/// Starts logging. Safe to call more than once (later calls are no-ops).
pub fn init_logging(cfg: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// Masks a phone number for logs: `+6281234567890` → `+62812****7890`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 8 {
        return "****".into();
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Masks an email address for logs: `budi@example.id` → `b***@example.id`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// Masks a sender URN for logs, keeping its scheme: `tel:+62812****7890`,
/// `mailto:b***@example.id`, `telegram:12****89`.
pub fn mask_sender(urn: &str) -> String {
    match urn.split_once(':') {
        Some(("tel", rest)) => format!("tel:{}", mask_phone(rest)),
        Some(("mailto", rest)) => format!("mailto:{}", mask_email(rest)),
        Some((scheme, rest)) => {
            let chars: Vec<char> = rest.chars().collect();
            if chars.len() <= 4 {
                format!("{scheme}:****")
            } else {
                let head: String = chars[..2].iter().collect();
                let tail: String = chars[chars.len() - 2..].iter().collect();
                format!("{scheme}:{head}****{tail}")
            }
        }
        None => "****".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_samples_are_folded_by_an_upkeep_thread() {
        let _handle = metrics_handle();
        // A new thread names itself once it runs; thread names are cut to
        // 15 bytes by the kernel.
        let names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .map(|tasks| {
                    tasks
                        .filter_map(|t| t.ok())
                        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                        .map(|n| n.trim().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        for _ in 0..100 {
            if names().iter().any(|n| n == "aduan-metrics-u") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no upkeep thread among {:?}", names());
    }

    #[test]
    fn a_repeating_failure_is_logged_once_a_second() {
        let log = QuietLog::default();
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
    }

    /// The lines a summarizing log wrote.
    fn recording() -> (Arc<QuietLog>, Arc<std::sync::Mutex<Vec<QuietSummary>>>) {
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let written = lines.clone();
        let log = QuietLog::summarizing(move |s| written.lock().expect("lines").push(s));
        (log, lines)
    }

    #[tokio::test]
    async fn events_within_a_second_are_one_summary_with_their_count_and_oldest_age() {
        let (log, lines) = recording();
        for age in [3, 9, 4] {
            log.tally(1, Some(Duration::from_millis(age)));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        log.tally(2, None);
        assert!(
            lines.lock().expect("lines").is_empty(),
            "held for the second"
        );
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let written = lines.lock().expect("lines").clone();
        assert_eq!(
            written,
            [QuietSummary {
                count: 5,
                oldest: Some(Duration::from_millis(9))
            }]
        );
        // A later event opens a new window; without events, nothing is written.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(lines.lock().expect("lines").len(), 1);
        log.tally(1, Some(Duration::from_millis(1)));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let written = lines.lock().expect("lines").clone();
        assert_eq!(written.len(), 2);
        assert_eq!(written[1].count, 1);
    }

    #[test]
    fn outside_a_runtime_a_summary_is_written_at_once() {
        let (log, lines) = recording();
        log.tally(1, None);
        assert_eq!(lines.lock().expect("lines").len(), 1);
    }

    #[test]
    fn masks_keep_only_what_identifies_nobody() {
        assert_eq!(mask_phone("+6281234567890"), "+62812****7890");
        assert_eq!(mask_email("budi@example.id"), "b***@example.id");
        assert_eq!(mask_sender("tel:+6281234567890"), "tel:+62812****7890");
        assert_eq!(
            mask_sender("mailto:siti@example.id"),
            "mailto:s***@example.id"
        );
        assert_eq!(mask_sender("whatsapp:6281234567890"), "whatsapp:62****90");
        assert_eq!(mask_sender("x:12"), "x:****");
    }
}
