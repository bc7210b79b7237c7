//! The fault suite: under a steady load of transcripts and Telegram updates, Redis
//! is killed, Redis is paused past the deadline, the gateway is killed with
//! `kill -9`, and providers deliver every request three times. After each
//! scenario every acknowledged complaint must be in the stream exactly once (by
//! instance and `external_id`), nothing refused may be there, and the spool must
//! be empty again.
//!
//! Each scenario starts its own `redis-server` (free port, own data directory,
//! `appendonly yes`, `appendfsync always`, so that a Redis restart loses nothing
//! it acknowledged and any loss is the gateway's) and runs the gateway as the
//! real binary, so that `kill -9` is real. Scenarios run one at a time.
//!
//! Quick mode (the default, part of `cargo test`) takes a few seconds per
//! scenario. `ADUAN_FAULTS_LONG=1 cargo test --test faults -- --nocapture` runs
//! each phase ten times longer and kills the gateway ten times instead of four.

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::private_redis::{PrivateRedis, free_port};
use serde_json::{Value, json};

const TOKEN: &str = "cc-faults-token-2026";
const TG_SECRET: &str = "tg-faults-secret-2026";
/// The gateway's Redis deadline in these runs: short, so a pause exceeds it.
const DEADLINE_MS: u64 = 300;

/// One scenario at a time: they measure timing-sensitive behavior on a small machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn long_mode() -> bool {
    std::env::var("ADUAN_FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// A phase's length: `ms` in quick mode, ten times that in long mode.
fn phase(ms: u64) -> Duration {
    Duration::from_millis(if long_mode() { ms * 10 } else { ms })
}

/// The real `aduan` binary with a configuration of its own.
struct Gateway {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    stream: String,
}

impl Gateway {
    /// `spool_keys` are added to the `[spool]` section.
    async fn start(redis_url: &str, spool_keys: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let stream = format!("faults:{}:complaints", port);
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
request_timeout_seconds = 10
shutdown_grace_seconds = 5

[redis]
url = "{redis_url}"
stream = "{stream}"
key_prefix = "faults:{port}"
command_timeout_ms = {DEADLINE_MS}

[spool]
dir = "{spool}"
retry_interval_ms = 100
{spool_keys}

[limits]
per_sender_per_minute = 0

[log]
level = "warn"

[[instances]]
name = "cc-faults"
kind = "transcript"
tokens = ["{TOKEN}"]

[[instances]]
name = "tg-faults"
kind = "telegram"
secret_token = "{TG_SECRET}"
"#,
            spool = dir.path().join("spool").display(),
        );
        std::fs::write(dir.path().join("aduan.toml"), config).expect("config written");
        let mut gateway = Gateway {
            child: None,
            port,
            dir,
            stream,
        };
        gateway.restart().await;
        gateway
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("aduan.toml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_aduan"))
            .arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("gateway binary starts");
        self.child = Some(child);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.base())).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not start:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: no shutdown, no flush.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The spool as `/readyz` reports it.
    async fn readiness(&self) -> Option<Value> {
        let r = reqwest::Client::new()
            .get(format!("{}/readyz", self.base()))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    async fn spool_depth(&self) -> Option<u64> {
        self.readiness().await?["spool"]["depth"].as_u64()
    }

    /// A counter or gauge from `/metrics`, 0 when absent.
    async fn metric(&self, name: &str) -> f64 {
        let Ok(r) = reqwest::get(format!("{}/metrics", self.base())).await else {
            return 0.0;
        };
        common::counter(&r.text().await.unwrap_or_default(), name, &[])
    }

    /// `aduan spool status --json`, run beside the gateway.
    fn status_cli(&self) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_aduan"))
            .args(["spool", "status", "--json", "--config"])
            .arg(self.config_path())
            .output()
            .expect("aduan spool status runs");
        assert!(
            out.status.success(),
            "spool status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status is JSON")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What the providers saw for one delivery, over all its attempts.
#[derive(Default, Clone)]
struct Seen {
    acked: u32,
    refused: u32,
    unanswered: u32,
}

/// How deliveries are sent.
#[derive(Clone, Copy)]
enum Retries {
    /// One request per delivery.
    Once,
    /// The original and a copy at the same time, then a third after both answered.
    TwiceSomeConcurrent,
}

/// The load generator: workers posting new deliveries until stopped, every answer recorded.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    ledger: Arc<Mutex<HashMap<(String, String), Seen>>>,
    workers: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(base: String, workers: usize, retries: Retries) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicU64::new(0));
        let ledger = Arc::new(Mutex::new(HashMap::new()));
        let run = format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (stop, sent, next, ledger, client, base, run) = (
                stop.clone(),
                sent.clone(),
                next.clone(),
                ledger.clone(),
                client.clone(),
                base.clone(),
                run.clone(),
            );
            set.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let delivery = Delivery::new(&run, n);
                    let attempt = || {
                        sent.fetch_add(1, Ordering::Relaxed);
                        delivery.send(&client, &base)
                    };
                    let answers = match retries {
                        Retries::Once => vec![attempt().await],
                        Retries::TwiceSomeConcurrent => {
                            let (a, b) = tokio::join!(attempt(), attempt());
                            vec![a, b, attempt().await]
                        }
                    };
                    let mut seen = Seen::default();
                    for answer in &answers {
                        match answer {
                            Some(s) if (200..300).contains(s) => seen.acked += 1,
                            Some(_) => seen.refused += 1,
                            None => seen.unanswered += 1,
                        }
                    }
                    let idle = seen.acked == 0;
                    if let Ok(mut l) = ledger.lock() {
                        l.insert(delivery.key(), seen);
                    }
                    if idle {
                        // The gateway is down or refusing: do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            });
        }
        Load {
            stop,
            sent,
            ledger,
            workers: set,
        }
    }

    async fn finish(mut self) -> (u64, HashMap<(String, String), Seen>) {
        self.stop.store(true, Ordering::Relaxed);
        while self.workers.join_next().await.is_some() {}
        let ledger = self.ledger.lock().map(|l| l.clone()).unwrap_or_default();
        (self.sent.load(Ordering::Relaxed), ledger)
    }
}

/// One complaint as a provider delivers it: a transcript or a Telegram update.
struct Delivery {
    instance: &'static str,
    external_id: String,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Delivery {
    fn new(run: &str, n: u64) -> Delivery {
        if n.is_multiple_of(2) {
            let call_id = format!("FLT-{run}-{n}");
            let body = json!({
                "call_id": call_id,
                "agent": {"id": "AG-031", "name": "Rina Wulandari"},
                "caller": {"phone": format!("0812{:08}", n % 100_000_000), "name": "Bambang Sutrisno"},
                "started_at": "2026-11-22T09:02:11+07:00",
                "duration_seconds": 64,
                "direction": "inbound",
                "category": "Infrastruktur",
                "segments": [
                    {"speaker": "Penelepon", "text": "Jalan berlubang di depan SDN 3 Cibinong, sudah dua minggu belum diperbaiki.", "offset_seconds": 3.5}
                ]
            });
            Delivery {
                instance: "cc-faults",
                external_id: call_id,
                path: "/v1/transcripts",
                headers: vec![("authorization", format!("Bearer {TOKEN}"))],
                body: serde_json::to_vec(&body).expect("json"),
            }
        } else {
            let chat = 700_000_000 + (n % 1000) as i64;
            let message_id = n as i64;
            let body = json!({
                "update_id": 500_000_000 + n,
                "message": {
                    "message_id": message_id,
                    "from": {"id": chat, "is_bot": false, "first_name": "Siti", "language_code": "id"},
                    "chat": {"id": chat, "type": "private", "first_name": "Siti"},
                    "date": 1_763_780_000,
                    "text": "Lampu penerangan jalan di Jalan Merdeka mati sejak minggu lalu."
                }
            });
            Delivery {
                instance: "tg-faults",
                external_id: format!("{chat}:{message_id}"),
                path: "/webhooks/telegram/tg-faults",
                headers: vec![("x-telegram-bot-api-secret-token", TG_SECRET.to_string())],
                body: serde_json::to_vec(&body).expect("json"),
            }
        }
    }

    fn key(&self) -> (String, String) {
        (self.instance.to_string(), self.external_id.clone())
    }

    /// The status answered, or `None` when no answer came (refused connection,
    /// reset, timeout): such a delivery may or may not have been accepted.
    async fn send(&self, client: &reqwest::Client, base: &str) -> Option<u16> {
        let mut req = client
            .post(format!("{base}{}", self.path))
            .header("content-type", "application/json")
            .body(self.body.clone());
        for (name, value) in &self.headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.ok()?;
        let status = resp.status().as_u16();
        // The answer counts only once its body arrived: a 2xx cut off mid-body is unknown.
        resp.bytes().await.ok()?;
        Some(status)
    }
}

/// The figures of one scenario.
#[derive(Debug, Default)]
struct Figures {
    sent: u64,
    deliveries: usize,
    acknowledged: usize,
    refused: usize,
    unknown: usize,
    found: usize,
    duplicates: usize,
    lost: usize,
    refused_but_found: usize,
    unknown_found: usize,
    strays: usize,
}

/// Waits for the spool to empty, reads the whole stream and compares it with the ledger.
async fn check(
    label: &str,
    redis: &PrivateRedis,
    gateway: &Gateway,
    sent: u64,
    ledger: &HashMap<(String, String), Seen>,
) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(60).max(phase(6000));
    loop {
        if gateway.spool_depth().await == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: spool not empty after Redis came back: {:?}\n{}",
            gateway.readiness().await,
            gateway.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = redis.connection().await;
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    let mut cursor = "-".to_string();
    loop {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&gateway.stream)
            .arg(&cursor)
            .arg("+")
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        let Some(last) = reply.ids.last().map(|e| e.id.clone()) else {
            break;
        };
        for entry in &reply.ids {
            let json: String = entry.get("complaint").expect("complaint field");
            let doc: Value = serde_json::from_str(&json).expect("complaint JSON");
            let key = (
                doc["instance"].as_str().unwrap_or_default().to_string(),
                doc["external_id"].as_str().unwrap_or_default().to_string(),
            );
            *counts.entry(key).or_default() += 1;
        }
        cursor = format!("({last}");
    }

    let mut f = Figures {
        sent,
        deliveries: ledger.len(),
        found: counts.len(),
        ..Figures::default()
    };
    for (key, seen) in ledger {
        let n = counts.get(key).copied().unwrap_or(0);
        f.duplicates += n.saturating_sub(1);
        if seen.acked > 0 {
            f.acknowledged += 1;
            if n == 0 {
                f.lost += 1;
            }
        } else if seen.unanswered == 0 {
            f.refused += 1;
            if n > 0 {
                f.refused_but_found += 1;
            }
        } else {
            f.unknown += 1;
            if n > 0 {
                f.unknown_found += 1;
            }
        }
    }
    f.strays = counts.keys().filter(|k| !ledger.contains_key(*k)).count();
    println!(
        "{label}: sent {} requests for {} deliveries; acknowledged {}, refused {}, unknown {} ({} of them stored); \
         found in Redis {}; duplicates {}; lost {}; refused but stored {}; never sent but stored {}",
        f.sent,
        f.deliveries,
        f.acknowledged,
        f.refused,
        f.unknown,
        f.unknown_found,
        f.found,
        f.duplicates,
        f.lost,
        f.refused_but_found,
        f.strays
    );
    let _ = std::io::stdout().flush();
    assert!(
        f.lost == 0 && f.duplicates == 0 && f.refused_but_found == 0 && f.strays == 0,
        "{label}: {f:?}\n{}",
        gateway.log_tail()
    );
    assert!(f.acknowledged > 0, "{label}: nothing was acknowledged");
    let status = gateway.status_cli();
    assert_eq!(status["depth"], 0, "{label}: spool status {status}");
    assert_eq!(status["quarantined"], 0, "{label}: spool status {status}");
    f
}

/// Waits until the running gateway holds records in its spool.
async fn until_spooled(label: &str, gateway: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.spool_depth().await.unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "{label}: nothing reached the spool\n{}",
            gateway.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_then_restarted() {
    let _serial = SERIAL.lock().await;
    let label = "redis killed then restarted";
    let mut redis = PrivateRedis::start().await;
    let gateway = Gateway::start(&redis.url(), "").await;
    let load = Load::start(gateway.base(), 8, Retries::Once);
    tokio::time::sleep(phase(800)).await;
    redis.kill();
    until_spooled(label, &gateway).await;
    tokio::time::sleep(phase(2000)).await;
    redis.restart().await;
    tokio::time::sleep(phase(1000)).await;
    let (sent, ledger) = load.finish().await;
    check(label, &redis, &gateway, sent, &ledger).await;
    assert!(gateway.metric("aduan_spool_drained_total").await > 0.0);
    let ready = gateway.readiness().await.expect("readyz answers");
    assert!(
        ready["spool"]["drained_total"].as_u64() > Some(0),
        "{label}: {ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_beyond_the_deadline() {
    let _serial = SERIAL.lock().await;
    let label = "redis paused beyond the deadline";
    let redis = PrivateRedis::start().await;
    let gateway = Gateway::start(&redis.url(), "").await;
    let load = Load::start(gateway.base(), 8, Retries::Once);
    tokio::time::sleep(phase(800)).await;
    let pause = phase(2000).as_millis() as u64;
    redis.pause(pause).await;
    until_spooled(label, &gateway).await;
    tokio::time::sleep(Duration::from_millis(pause)).await;
    tokio::time::sleep(phase(1000)).await;
    let (sent, ledger) = load.finish().await;
    check(label, &redis, &gateway, sent, &ledger).await;
    assert!(gateway.metric("aduan_spool_written_total").await > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_killed_with_sigkill_and_restarted() {
    let _serial = SERIAL.lock().await;
    let label = "gateway killed with kill -9";
    let mut redis = PrivateRedis::start().await;
    let mut gateway = Gateway::start(&redis.url(), "").await;
    let load = Load::start(gateway.base(), 8, Retries::Once);
    let rounds = if long_mode() { 10 } else { 4 };
    for round in 0..rounds {
        tokio::time::sleep(phase(500)).await;
        if round % 2 == 1 {
            // Killed while the spool holds acknowledged complaints and Redis is down:
            // they must come back from disk after the restart.
            redis.kill();
            until_spooled(label, &gateway).await;
            gateway.kill9();
            gateway.restart().await;
            tokio::time::sleep(phase(300)).await;
            redis.restart().await;
        } else {
            gateway.kill9();
            gateway.restart().await;
        }
    }
    tokio::time::sleep(phase(500)).await;
    let (sent, ledger) = load.finish().await;
    let f = check(label, &redis, &gateway, sent, &ledger).await;
    assert!(f.unknown > 0 || f.acknowledged > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_retried_twice_through_faults() {
    let _serial = SERIAL.lock().await;
    let label = "every request retried twice";
    let mut redis = PrivateRedis::start().await;
    let gateway = Gateway::start(&redis.url(), "").await;
    let load = Load::start(gateway.base(), 6, Retries::TwiceSomeConcurrent);
    tokio::time::sleep(phase(800)).await;
    redis.kill();
    until_spooled(label, &gateway).await;
    tokio::time::sleep(phase(1500)).await;
    redis.restart().await;
    tokio::time::sleep(phase(800)).await;
    redis.pause(phase(1500).as_millis() as u64).await;
    tokio::time::sleep(phase(2500)).await;
    let (sent, ledger) = load.finish().await;
    let f = check(label, &redis, &gateway, sent, &ledger).await;
    assert!(
        f.sent >= 3 * f.deliveries as u64,
        "every delivery was sent three times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_answers_503_with_retry_after_and_keeps_nothing_it_refused() {
    let _serial = SERIAL.lock().await;
    let label = "spool full";
    let mut redis = PrivateRedis::start().await;
    let gateway = Gateway::start(&redis.url(), "max_records = 10").await;
    redis.kill();
    let client = reqwest::Client::new();
    let mut ledger = HashMap::new();
    let mut statuses = Vec::new();
    for n in 0..20 {
        let delivery = Delivery::new("full", n);
        let mut req = client
            .post(format!("{}{}", gateway.base(), delivery.path))
            .header("content-type", "application/json")
            .body(delivery.body.clone());
        for (name, value) in &delivery.headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        statuses.push(status);
        let mut seen = Seen::default();
        if (200..300).contains(&status) {
            seen.acked = 1;
        } else {
            assert_eq!(status, 503, "{label}: {statuses:?}");
            assert!(retry_after.is_some(), "{label}: 503 without Retry-After");
            seen.refused = 1;
        }
        ledger.insert(delivery.key(), seen);
    }
    let acked = statuses.iter().filter(|s| (200..300).contains(*s)).count();
    assert_eq!(
        acked, 10,
        "{label}: exactly the cap is accepted: {statuses:?}"
    );
    let ready = gateway.readiness().await.expect("readyz answers");
    assert_eq!(ready["redis"], "unreachable");
    assert_eq!(ready["spool"]["state"], "unwritable");
    redis.restart().await;
    let f = check(label, &redis, &gateway, 20, &ledger).await;
    assert_eq!((f.acknowledged, f.refused, f.found), (10, 10, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_left_by_a_killed_gateway_is_drained_by_hand() {
    let _serial = SERIAL.lock().await;
    let label = "spool drained by hand";
    let mut redis = PrivateRedis::start().await;
    let mut gateway = Gateway::start(&redis.url(), "").await;
    redis.kill();
    let load = Load::start(gateway.base(), 4, Retries::Once);
    until_spooled(label, &gateway).await;
    tokio::time::sleep(phase(500)).await;
    gateway.kill9();
    let (sent, ledger) = load.finish().await;

    // No gateway holds the file now: status reads it, drain forwards it.
    let waiting = gateway.status_cli();
    let depth = waiting["depth"].as_u64().expect("depth");
    assert!(depth > 0, "{label}: {waiting}");
    let drain = || {
        Command::new(env!("CARGO_BIN_EXE_aduan"))
            .args(["spool", "drain", "--config"])
            .arg(gateway.config_path())
            .output()
            .expect("aduan spool drain runs")
    };
    let refused = drain();
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{label}: drain without Redis fails and keeps the records"
    );
    assert_eq!(gateway.status_cli()["depth"].as_u64(), Some(depth));
    redis.restart().await;
    let drained = drain();
    assert!(
        drained.status.success(),
        "{label}: {}",
        String::from_utf8_lossy(&drained.stderr)
    );
    assert!(
        String::from_utf8_lossy(&drained.stdout).starts_with(&format!("forwarded {depth} ")),
        "{label}: {}",
        String::from_utf8_lossy(&drained.stdout)
    );
    // The checks read the gateway's readiness; start it again on the empty spool.
    gateway.restart().await;
    check(label, &redis, &gateway, sent, &ledger).await;
}
