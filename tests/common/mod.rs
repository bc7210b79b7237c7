//! Test harness: a real gateway on 127.0.0.1:0 in front of the real Redis
//! named by `REDIS_URL` (`./scripts/test` starts a private one for the run),
//! with keys unique to each test so tests never collide.
//!
//! [`table`] is the one runner of request tables; [`private_redis`] a Redis
//! of a test's own; [`smtp`] a raw SMTP client. Signatures, fixtures, golden documents and their
//! comparison come from `aduan_adapter::testkit`, shared with the channel
//! crates' tests.
#![allow(dead_code)]

pub mod private_redis;
pub mod smtp;
pub mod standin;
pub mod table;

use std::collections::HashMap;
use std::sync::OnceLock;

use aduan::server::Running;
use aduan::settings::Config;
use aduan_adapter::testkit::Fixtures;
use redis::AsyncCommands;
use serde_json::Value;

/// The Redis the tests use. There is no default: a Redis that happens to
/// answer on 6379 is the one `./scripts/run` keeps its data in.
pub fn redis_url() -> String {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "REDIS_URL is not set: run ./scripts/test (it starts a private Redis), \
             or name a Redis of the tests' own in REDIS_URL"
        ),
    }
}

/// A gateway under test.
pub struct TestApp {
    pub running: Option<Running>,
    pub base_url: String,
    /// This test's complaints stream.
    pub stream: String,
    /// This test's key prefix (dedup keys, leases, cursors).
    pub prefix: String,
    /// The Redis this gateway writes to; [`TestApp::conn`] connects to it.
    pub redis: redis::Client,
    pub client: reqwest::Client,
    /// This gateway's spool directory, removed when the app is dropped.
    pub spool_dir: std::path::PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.spool_dir);
    }
}

/// A unique suffix for keys: process id, time and a counter.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{tag}-{}-{t}-{n}", std::process::id())
}

/// Starts a gateway whose configuration is `config_toml` (instances and any
/// sections) plus a `[redis]` section pointing at this test's own keys.
/// `config_toml` must not contain `[redis]` or `[server]`.
pub async fn spawn_app(config_toml: &str) -> TestApp {
    spawn_app_with(config_toml, &redis_url(), &unique("t")).await
}

/// Like [`spawn_app`], with an explicit Redis URL and key namespace (to restart
/// a gateway on the same keys).
pub async fn spawn_app_with(config_toml: &str, redis_url: &str, namespace: &str) -> TestApp {
    // Each gateway needs a spool file of its own; a restart on the same namespace reopens it.
    let spool_dir = std::env::temp_dir().join(format!("aduan-test-spool-{namespace}"));
    start(config_toml, redis_url, namespace, spool_dir, "").await
}

/// The `[server]` lines of every test gateway but a tuned one.
const SERVER: &str = "request_timeout_seconds = 10\nshutdown_grace_seconds = 5\n";

/// Like [`spawn_app_with`], with `server` lines in place of the usual
/// `[server]` ones (`listen` aside) and `spool` lines added to `[spool]`.
pub async fn spawn_app_tuned(
    config_toml: &str,
    redis_url: &str,
    namespace: &str,
    server: &str,
    spool: &str,
) -> TestApp {
    let spool_dir = std::env::temp_dir().join(format!("aduan-test-spool-{namespace}"));
    let sections = Sections {
        server,
        spool,
        redis: "",
    };
    start_with(config_toml, redis_url, namespace, spool_dir, sections).await
}

/// A gateway on the Redis keys of `namespace` beside others on the same keys,
/// as a replica runs: its own listener and its own spool file (`replica`
/// names it). A spool is released a moment after its gateway stops, so a
/// restart takes a fresh one too; it is empty while Redis is up.
pub async fn spawn_replica(config_toml: &str, namespace: &str, replica: &str) -> TestApp {
    let spool_dir = std::env::temp_dir().join(format!("aduan-test-spool-{namespace}-{replica}"));
    start(config_toml, &redis_url(), namespace, spool_dir, "").await
}

/// The seed URLs of the Redis Cluster that `./scripts/test` starts
/// (`ADUAN_CLUSTER_NODES`, comma-separated).
pub fn cluster_nodes() -> Vec<String> {
    let nodes = std::env::var("ADUAN_CLUSTER_NODES").unwrap_or_else(|_| {
        panic!(
            "ADUAN_CLUSTER_NODES is not set: run ./scripts/test, which starts a local Redis Cluster"
        )
    });
    nodes.split(',').map(str::to_string).collect()
}

/// A gateway replica (`replica` names its spool) on the keys of `namespace`
/// in the Redis Cluster, with `redis_extra` lines added to its `[redis]`.
pub async fn spawn_on_cluster(
    config_toml: &str,
    namespace: &str,
    replica: &str,
    redis_extra: &str,
) -> TestApp {
    let spool_dir = std::env::temp_dir().join(format!("aduan-test-spool-{namespace}-{replica}"));
    let nodes = cluster_nodes()
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let extra = format!("nodes = [{nodes}]\n{redis_extra}");
    start(
        config_toml,
        &cluster_nodes()[0],
        namespace,
        spool_dir,
        &extra,
    )
    .await
}

/// Lines of a test gateway's own sections.
struct Sections<'a> {
    server: &'a str,
    spool: &'a str,
    redis: &'a str,
}

async fn start(
    config_toml: &str,
    redis_url: &str,
    namespace: &str,
    spool_dir: std::path::PathBuf,
    redis_extra: &str,
) -> TestApp {
    let sections = Sections {
        server: SERVER,
        spool: "",
        redis: redis_extra,
    };
    start_with(config_toml, redis_url, namespace, spool_dir, sections).await
}

async fn start_with(
    config_toml: &str,
    redis_url: &str,
    namespace: &str,
    spool_dir: std::path::PathBuf,
    sections: Sections<'_>,
) -> TestApp {
    let stream = format!("test:{namespace}:complaints");
    let prefix = format!("test:{namespace}");
    let Sections {
        server,
        spool,
        redis: redis_extra,
    } = sections;
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server}\n\
         [redis]\nurl = \"{redis_url}\"\nstream = \"{stream}\"\nkey_prefix = \"{prefix}\"\ncommand_timeout_ms = 1000\n{redis_extra}\n\
         [spool]\ndir = \"{}\"\n{spool}\n\n{config_toml}",
        spool_dir.display()
    );
    let text = smtp_tls_beside_spool(text, &spool_dir.join("smtp-tls"));
    let config = match Config::from_toml(&text, &[], "test.toml") {
        Ok(c) => c,
        Err(e) => panic!("test configuration is invalid:\n{e}"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let running = aduan::server::start(config, listener)
        .await
        .expect("gateway starts");
    let base_url = format!("http://{}", running.addr);
    // Connected on use: a test may start the gateway while its Redis is down.
    let redis = redis::Client::open(redis_url).expect("redis url");
    TestApp {
        running: Some(running),
        base_url,
        stream,
        prefix,
        redis,
        client: reqwest::Client::new(),
        spool_dir,
    }
}

/// `text` with `[smtp] tls_dir` set to `dir` unless it names one: the
/// self-signed STARTTLS certificate a gateway makes at start is then kept
/// with this gateway's spool (and removed with it), not in the tree's `data/`.
fn smtp_tls_beside_spool(text: String, dir: &std::path::Path) -> String {
    if text.contains("tls_dir") {
        return text;
    }
    let line = format!("tls_dir = \"{}\"\n", dir.display());
    let header = "\n[smtp]\n";
    match text.find(header) {
        Some(at) => {
            let at = at + header.len();
            format!("{}{line}{}", &text[..at], &text[at..])
        }
        None => format!("{text}\n[smtp]\n{line}"),
    }
}

/// A WhatsApp complaint of `instance` with its id, received now, for tests
/// that drive the Redis side directly.
pub fn whatsapp_complaint(
    instance: &str,
    external_id: &str,
    sender: &str,
    text: &str,
) -> aduan_adapter::Complaint {
    let ctx = aduan_adapter::Context {
        instance,
        received_at: aduan_adapter::Timestamp(chrono::Utc::now()),
        keep_raw: false,
    };
    let mut c = aduan_adapter::Complaint::new(
        &ctx,
        aduan_adapter::Channel::Whatsapp,
        "meta_whatsapp",
        external_id,
        sender,
    );
    c.id = ulid::Ulid::generate().to_string();
    c.text = text.into();
    c
}

/// One stream entry's fields.
#[derive(Debug, Clone)]
pub struct Entry {
    pub entry_id: String,
    pub fields: HashMap<String, String>,
}

impl TestApp {
    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A connection to this gateway's Redis.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.redis
            .get_multiplexed_async_connection()
            .await
            .expect("test redis reachable")
    }

    /// Every entry of this test's stream, oldest first.
    pub async fn entries(&self) -> Vec<Entry> {
        let mut conn = self.conn().await;
        let reply: redis::streams::StreamRangeReply =
            conn.xrange_all(&self.stream).await.expect("XRANGE");
        reply
            .ids
            .into_iter()
            .map(|id| Entry {
                entry_id: id.id.clone(),
                fields: id
                    .map
                    .iter()
                    .map(|(k, v)| {
                        let s: String = redis::from_redis_value(v.clone()).expect("string field");
                        (k.clone(), s)
                    })
                    .collect(),
            })
            .collect()
    }

    /// Number of entries in this test's stream.
    pub async fn stream_len(&self) -> usize {
        let mut conn = self.conn().await;
        conn.xlen(&self.stream).await.expect("XLEN")
    }

    /// Every complaint in the stream, each validated against the JSON Schema
    /// and checked against its entry's fields. Each must carry a tracking
    /// number; it is set to `null` here, as the golden documents (the
    /// adapters' output) have it: [`TestApp::tracked_complaints`] keeps it.
    pub async fn complaints(&self) -> Vec<Value> {
        let mut docs = self.tracked_complaints().await;
        for doc in &mut docs {
            assert!(
                doc["tracking"].as_str().is_some_and(|t| t.len() >= 9),
                "a complaint in the stream has its tracking number: {doc}"
            );
            doc["tracking"] = Value::Null;
        }
        docs
    }

    /// [`TestApp::complaints`], with their tracking numbers.
    pub async fn tracked_complaints(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for entry in self.entries().await {
            let json = entry.fields.get("complaint").expect("complaint field");
            let doc: Value = serde_json::from_str(json).expect("complaint is JSON");
            assert_valid_complaint(&doc);
            for field in ["id", "channel", "instance", "schema"] {
                assert_eq!(
                    entry.fields.get(field).map(String::as_str),
                    doc[field].as_str(),
                    "entry field `{field}` matches the document"
                );
            }
            out.push(doc);
        }
        out
    }

    /// A `GET` of `path`, answered.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// What `/metrics` answers now.
    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics text")
    }

    /// What `/readyz` answers now.
    pub async fn readiness(&self) -> Value {
        self.get("/readyz")
            .await
            .json()
            .await
            .expect("readyz answers JSON")
    }

    /// Stops the gateway gracefully.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// Panics unless `doc` validates against `schema/complaint.v1.json`.
pub fn assert_valid_complaint(doc: &Value) {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_slice(&fixture("schema/complaint.v1.json")).expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("schema compiles")
    });
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "complaint does not validate:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

/// Exact equality, except that `"*"` in `expected` matches any non-null value.
pub fn assert_json_matches(actual: &Value, expected: &Value) {
    aduan_adapter::testkit::assert_json_matches(actual, expected)
}

/// A file's bytes, by path from the repository root.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The fixtures of a provider family, `channels/<family>/fixtures/`, and
/// the golden documents beside them.
pub fn fixtures(family: &str) -> Fixtures {
    Fixtures::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("channels")
            .join(family)
            .join("fixtures"),
    )
}

/// The whole documents a fixture must become, read from `rel` (a path from the
/// repository root). With `ADUAN_BLESS=1` the file is first written from
/// `actual`, with `id` and `received_at` as `"*"`, for a reviewer to check.
pub fn expected_documents(rel: &str, actual: &[Value]) -> Value {
    aduan_adapter::testkit::expected_documents(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel),
        &Value::from(actual.to_vec()),
        &[],
    )
}

/// The sum of the samples of metric `name` whose labels include every one of
/// `labels`, in the text `/metrics` answered; 0 when there is none.
pub fn counter(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
