//! Attachments as evidence, end to end: a complaint arrives with a
//! provider's media id or URL, the append step queues its media job, and
//! the media worker fetches the bytes from a stand-in of the provider into
//! the blob store, with one event per attachment on the events stream.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aduan_adapter::testkit::meta_signature;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::private_redis::free_port;
use redis::AsyncCommands;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const APP_SECRET: &str = "rahasia-aplikasi-meta";
const WA_TOKEN: &str = "token-media-wa";

/// A file the stand-in serves, and how.
#[derive(Clone)]
struct File {
    bytes: Vec<u8>,
    /// The SHA-256 the lookup claims (the real one unless a test lies).
    sha256: String,
    /// Answers to the lookup before it succeeds (e.g. 503).
    failures: Vec<u16>,
    /// How long the download takes to start.
    delay: Duration,
}

impl File {
    fn new(bytes: Vec<u8>) -> File {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        File {
            bytes,
            sha256,
            failures: Vec::new(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct Files {
    by_id: HashMap<String, File>,
    downloads: Vec<String>,
    lookups: Vec<String>,
}

/// The Graph media endpoints and a CDN, on loopback.
#[derive(Clone)]
struct Media {
    url: String,
    files: Arc<Mutex<Files>>,
}

impl Media {
    async fn start() -> Media {
        let files: Arc<Mutex<Files>> = Arc::default();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let base = url.clone();
        async fn lookup(
            State((files, base)): State<(Arc<Mutex<Files>>, String)>,
            Path((_version, id)): Path<(String, String)>,
            headers: HeaderMap,
        ) -> Response {
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                != Some(&format!("Bearer {WA_TOKEN}"))
            {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            let mut files = files.lock().expect("lock");
            files.lookups.push(id.clone());
            let Some(file) = files.by_id.get_mut(&id) else {
                return (
                    StatusCode::NOT_FOUND,
                    axum::Json(
                        json!({"error": {"message": "Unsupported get request", "code": 100}}),
                    ),
                )
                    .into_response();
            };
            if !file.failures.is_empty() {
                let status = file.failures.remove(0);
                return StatusCode::from_u16(status)
                    .unwrap_or(StatusCode::OK)
                    .into_response();
            }
            axum::Json(json!({"url": format!("{base}/dl/{id}"), "mime_type": "image/jpeg",
                "sha256": file.sha256, "file_size": file.bytes.len(), "id": id, "messaging_product": "whatsapp"}))
            .into_response()
        }
        async fn download(
            State((files, _)): State<(Arc<Mutex<Files>>, String)>,
            Path(id): Path<String>,
        ) -> Response {
            let file = {
                let mut files = files.lock().expect("lock");
                files.downloads.push(id.clone());
                files.by_id.get(&id).cloned()
            };
            let Some(file) = file else {
                return StatusCode::NOT_FOUND.into_response();
            };
            tokio::time::sleep(file.delay).await;
            ([("content-type", "image/jpeg")], file.bytes).into_response()
        }
        let app = Router::new()
            .route("/{version}/{id}", get(lookup))
            .route("/dl/{id}", get(download))
            .route("/cdn/{id}", get(download))
            .with_state((files.clone(), base));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Media { url, files }
    }

    fn serve(&self, id: &str, file: File) {
        self.files
            .lock()
            .expect("lock")
            .by_id
            .insert(id.into(), file);
    }

    fn downloads(&self, id: &str) -> usize {
        self.files
            .lock()
            .expect("lock")
            .downloads
            .iter()
            .filter(|d| *d == id)
            .count()
    }
}

fn jpeg(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

fn config(ns: &str, media: &Media, blobs: &std::path::Path, extra_wa: &str) -> String {
    format!(
        "[outbound]\nevents_stream = \"test:{ns}:events\"\nstream = \"test:{ns}:outbound\"\n\
         delivery_stream = \"test:{ns}:delivery\"\n\n\
         [media]\nstream = \"test:{ns}:media\"\nclaim_idle_seconds = 1\nbackoff_base_ms = 100\nbackoff_max_ms = 300\n\n\
         [blobs]\ndir = \"{}\"\n\n\
         [[instances]]\nname = \"wa-jabar\"\nkind = \"whatsapp\"\nkeep_raw = false\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"vt\"\n\
         [instances.media]\naccess_token = \"{WA_TOKEN}\"\nbase_url = \"{}\"\nallow_private_addresses = true\n{extra_wa}\n\
         [[instances]]\nname = \"fb-bogor\"\nkind = \"messenger\"\nkeep_raw = false\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"vt\"\n\
         [instances.media]\n\n",
        blobs.display(),
        media.url
    )
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: String) -> u16 {
    client
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            meta_signature(APP_SECRET, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn whatsapp_image(wamid: &str, media_id: &str, sha256: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "6281100001111", "phone_number_id": "1098765"},
            "contacts": [{"profile": {"name": "Rina Marlina"}, "wa_id": "6281311110000"}],
            "messages": [{"from": "6281311110000", "id": wamid, "timestamp": "1790000000", "type": "image",
                "image": {"id": media_id, "mime_type": "image/jpeg", "sha256": sha256,
                          "caption": "Got di depan rumah tersumbat"}}]
        }}]}]})
    .to_string()
}

async fn events(conn: &mut redis::aio::MultiplexedConnection, ns: &str) -> Vec<Value> {
    let reply: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("test:{ns}:events"))
        .await
        .expect("xrange");
    reply
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("event"))
        .map(|s| serde_json::from_str(&s).expect("event JSON"))
        .collect()
}

/// Waits until `n` attachment events exist.
async fn wait_events(
    conn: &mut redis::aio::MultiplexedConnection,
    ns: &str,
    n: usize,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all: Vec<Value> = events(conn, ns)
            .await
            .into_iter()
            .filter(|e| {
                e["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("attachment_"))
            })
            .collect();
        if all.len() >= n {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{} attachment events, expected {n}: {all:#?}",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn attachments_are_fetched_into_the_store_with_one_event_each() {
    let ns = common::unique("media");
    let media = Media::start().await;
    let blobs = tempfile::tempdir().expect("tempdir");
    let photo = jpeg(1 << 20, 7);
    let good = File::new(photo.clone());
    media.serve("MEDIA-OK", good.clone());
    let mut flaky = File::new(jpeg(2000, 9));
    flaky.failures = vec![503, 503];
    media.serve("MEDIA-FLAKY", flaky.clone());
    let mut liar = File::new(jpeg(2000, 11));
    liar.sha256 = "0".repeat(64);
    media.serve("MEDIA-LIAR", liar.clone());
    let mut app = common::spawn_app_with(
        &config(&ns, &media, blobs.path(), ""),
        &common::redis_url(),
        &ns,
    )
    .await;
    let wa = "/webhooks/whatsapp/wa-jabar";
    for (wamid, id, sha) in [
        ("wamid.M1", "MEDIA-OK", good.sha256.as_str()),
        ("wamid.M2", "MEDIA-FLAKY", flaky.sha256.as_str()),
        ("wamid.M3", "MEDIA-LIAR", liar.sha256.as_str()),
        ("wamid.M4", "MEDIA-GONE", good.sha256.as_str()),
    ] {
        assert_eq!(
            post(
                &app.client,
                &app.base_url,
                wa,
                whatsapp_image(wamid, id, sha)
            )
            .await,
            200
        );
    }
    // A redelivery queues nothing more.
    assert_eq!(
        post(
            &app.client,
            &app.base_url,
            wa,
            whatsapp_image("wamid.M1", "MEDIA-OK", &good.sha256)
        )
        .await,
        200
    );
    let mut conn = app.conn().await;
    let all = wait_events(&mut conn, &ns, 4).await;
    let complaints = app.tracked_complaints().await;
    let id_of = |wamid: &str| {
        complaints
            .iter()
            .find(|c| c["external_id"] == wamid)
            .map(|c| c["id"].clone())
            .expect("complaint")
    };
    let event_of = |wamid: &str| {
        let id = id_of(wamid);
        all.iter()
            .find(|e| e["complaint_id"] == id)
            .cloned()
            .expect("event")
    };

    let stored = event_of("wamid.M1");
    assert_eq!(stored["type"], "attachment_stored");
    assert_eq!(stored["index"], 0);
    assert_eq!(stored["sha256"], good.sha256.as_str());
    assert_eq!(
        stored["storage_key"],
        format!("sha256/{}", good.sha256).as_str()
    );
    assert_eq!(stored["size"], photo.len() as u64);
    assert_eq!(stored["content_type"], "image/jpeg");
    let on_disk =
        std::fs::read(blobs.path().join("sha256").join(&good.sha256)).expect("blob on disk");
    assert_eq!(on_disk, photo);
    assert_eq!(
        event_of("wamid.M2")["type"],
        "attachment_stored",
        "retried after 503s"
    );
    let liar_event = event_of("wamid.M3");
    assert_eq!(
        (liar_event["type"].as_str(), liar_event["reason"].as_str()),
        (Some("attachment_unavailable"), Some("sha256_mismatch"))
    );
    let gone = event_of("wamid.M4");
    assert_eq!(
        (gone["type"].as_str(), gone["reason"].as_str()),
        (Some("attachment_unavailable"), Some("not_found"))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        wait_events(&mut conn, &ns, 4).await.len(),
        4,
        "one event per attachment"
    );
    assert_eq!(media.downloads("MEDIA-OK"), 1, "fetched once");
    // The complaint stays as first written: the event carries the outcome.
    let first = complaints
        .iter()
        .find(|c| c["external_id"] == "wamid.M1")
        .expect("complaint");
    assert_eq!(first["attachments"][0]["storage_key"], Value::Null);
    assert_eq!(first["attachments"][0]["provider_ref"], "MEDIA-OK");
    let pending: redis::streams::StreamPendingReply = conn
        .xpending(format!("test:{ns}:media"), "aduan")
        .await
        .expect("xpending");
    assert_eq!(pending.count(), 0, "every job acknowledged");
    app.stop().await;
}

#[tokio::test]
async fn payload_urls_to_private_addresses_and_oversize_files_are_refused() {
    let ns = common::unique("mediasafe");
    let media = Media::start().await;
    let blobs = tempfile::tempdir().expect("tempdir");
    media.serve("big", File::new(jpeg(50_000, 3)));
    media.serve("inside", File::new(jpeg(100, 5)));
    let mut app = common::spawn_app_with(
        &config(&ns, &media, blobs.path(), "max_bytes = 10000\n"),
        &common::redis_url(),
        &ns,
    )
    .await;
    let big = File::new(jpeg(50_000, 3));
    assert_eq!(
        post(
            &app.client,
            &app.base_url,
            "/webhooks/whatsapp/wa-jabar",
            whatsapp_image("wamid.B1", "big", &big.sha256)
        )
        .await,
        200
    );
    // A Messenger attachment whose URL points inside the network.
    let now = chrono::Utc::now().timestamp_millis();
    let fb = json!({"object": "page", "entry": [{"id": "PAGE1", "time": now, "messaging": [{
        "sender": {"id": "PSID-9"}, "recipient": {"id": "PAGE1"}, "timestamp": now,
        "message": {"mid": "m_media_1", "attachments": [{"type": "image",
            "payload": {"url": format!("{}/cdn/inside", media.url)}}]}}]}]})
    .to_string();
    assert_eq!(
        post(
            &app.client,
            &app.base_url,
            "/webhooks/messenger/fb-bogor",
            fb
        )
        .await,
        200
    );
    let mut conn = app.conn().await;
    let all = wait_events(&mut conn, &ns, 2).await;
    let reasons: Vec<&str> = all.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.contains(&"too_large"), "{all:#?}");
    assert!(reasons.contains(&"forbidden_address"), "{all:#?}");
    assert_eq!(
        media.downloads("inside"),
        0,
        "the private address was never contacted"
    );
    assert!(
        std::fs::read_dir(blobs.path().join("sha256")).map_or(true, |d| d.count() == 0),
        "nothing stored"
    );
    app.stop().await;
}

/// Names and addresses of this machine in the spellings that slipped past
/// the guard: `LOCALHOST.` once had no outcome at all (its lookup went to
/// DNS and waited), the IPv6 forms of loopback were not known. Each is now
/// `attachment_unavailable` with the reason of every private address,
/// `forbidden_address`, at once.
#[tokio::test]
async fn localhost_names_and_embedded_loopback_are_refused_at_once() {
    let ns = common::unique("medialocal");
    let media = Media::start().await;
    let blobs = tempfile::tempdir().expect("tempdir");
    media.serve("inside", File::new(jpeg(100, 5)));
    let mut app = common::spawn_app_with(
        &config(&ns, &media, blobs.path(), ""),
        &common::redis_url(),
        &ns,
    )
    .await;
    let port = media.url.rsplit(':').next().expect("port").to_string();
    let hosts = [
        "LOCALHOST.",
        "localhost..",
        "LocalHost...",
        "cdn.localhost",
        "CDN.LOCALHOST.",
        "[64:ff9b::7f00:1]",
        "[::127.0.0.1]",
        "[::ffff:127.0.0.1]",
        "[fec0::1]",
    ];
    let attachments: Vec<Value> = hosts
        .iter()
        .map(|h| json!({"type": "image", "payload": {"url": format!("http://{h}:{port}/cdn/inside")}}))
        .collect();
    let now = chrono::Utc::now().timestamp_millis();
    let fb = json!({"object": "page", "entry": [{"id": "PAGE1", "time": now, "messaging": [{
        "sender": {"id": "PSID-10"}, "recipient": {"id": "PAGE1"}, "timestamp": now,
        "message": {"mid": "m_media_local", "attachments": attachments}}]}]})
    .to_string();
    let mut conn = app.conn().await;
    // The worker is waiting on its stream before the clock starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let posted = Instant::now();
    assert_eq!(
        post(
            &app.client,
            &app.base_url,
            "/webhooks/messenger/fb-bogor",
            fb
        )
        .await,
        200
    );
    let all = wait_events(&mut conn, &ns, hosts.len()).await;
    let took = posted.elapsed();
    assert!(took < Duration::from_secs(1), "outcomes after {took:?}");
    let mut by_index: Vec<(u64, &str, &str)> = all
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().expect("index"),
                e["type"].as_str().expect("type"),
                e["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    by_index.sort();
    let expected: Vec<(u64, &str, &str)> = (0..hosts.len() as u64)
        .map(|i| (i, "attachment_unavailable", "forbidden_address"))
        .collect();
    assert_eq!(by_index, expected, "{hosts:?}");
    assert_eq!(
        media.downloads("inside"),
        0,
        "the stand-in was never contacted"
    );
    app.stop().await;
}

/// The real binary, so that `kill -9` is real.
struct Process {
    child: Option<Child>,
    port: u16,
    config: std::path::PathBuf,
}

impl Process {
    /// A gateway on a free port with the test configuration of `ns`, its
    /// file and its spool in `dir`; not started yet.
    fn configured(
        ns: &str,
        media: &Media,
        dir: &std::path::Path,
        blobs: &std::path::Path,
    ) -> Process {
        let port = free_port();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[redis]\nurl = \"{}\"\nstream = \"test:{ns}:complaints\"\n\
             key_prefix = \"test:{ns}\"\n[spool]\ndir = \"{}\"\n[log]\nlevel = \"warn\"\n{}",
            common::redis_url(),
            dir.join("spool").display(),
            config(ns, media, blobs, "")
        );
        let config = dir.join("aduan.toml");
        std::fs::write(&config, text).expect("config");
        Process {
            child: None,
            port,
            config,
        }
    }

    fn spawn(&mut self) {
        self.child = Some(
            Command::new(env!("CARGO_BIN_EXE_aduan"))
                .arg("serve")
                .arg("--config")
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("gateway binary starts"),
        );
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("http://127.0.0.1:{}/healthz", self.port))
            .await
            .map_or(true, |r| r.status() != 200)
        {
            assert!(Instant::now() < deadline, "gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[tokio::test]
async fn a_worker_killed_mid_download_is_taken_over_without_a_second_copy() {
    let ns = common::unique("mediakill");
    let media = Media::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = dir.path().join("blobs");
    let mut slow = File::new(jpeg(300_000, 13));
    slow.delay = Duration::from_millis(1500);
    media.serve("SLOW", slow.clone());
    let mut gateway = Process::configured(&ns, &media, dir.path(), &blobs);
    gateway.spawn();
    gateway.ready().await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", gateway.port);
    assert_eq!(
        post(
            &client,
            &base,
            "/webhooks/whatsapp/wa-jabar",
            whatsapp_image("wamid.K1", "SLOW", &slow.sha256)
        )
        .await,
        200
    );
    // Killed while the download is under way.
    let deadline = Instant::now() + Duration::from_secs(10);
    while media.downloads("SLOW") == 0 {
        assert!(Instant::now() < deadline, "the download never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.kill9();
    media
        .files
        .lock()
        .expect("lock")
        .by_id
        .get_mut("SLOW")
        .expect("file")
        .delay = Duration::ZERO;
    gateway.spawn();
    gateway.ready().await;
    let redis = redis::Client::open(common::redis_url()).expect("url");
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let all = wait_events(&mut conn, &ns, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all_after = wait_events(&mut conn, &ns, 1).await;
    assert_eq!(all_after.len(), 1, "one outcome: {all:#?}");
    assert_eq!(all[0]["type"], "attachment_stored");
    assert_eq!(
        media.downloads("SLOW"),
        2,
        "fetched again after the takeover"
    );
    let stored: Vec<_> = std::fs::read_dir(blobs.join("sha256"))
        .expect("store")
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().contains('.'))
        .collect();
    assert_eq!(stored.len(), 1, "one copy");
}

#[tokio::test]
async fn staging_files_left_by_a_crash_are_removed_when_the_worker_starts() {
    let ns = common::unique("mediasweep");
    let media = Media::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = dir.path().join("blobs");
    let staging = blobs.join("staging");
    std::fs::create_dir_all(&staging).expect("staging");
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    let aged = |name: &str| {
        let path = staging.join(name);
        let file = std::fs::File::create(&path).expect("staging file");
        file.set_modified(two_hours_ago).expect("mtime");
        path
    };
    // A download cut short two hours ago, one under way, and a file that is
    // no download's.
    let left = aged("01JCRASHED000000000000000.part");
    let other = aged("README");
    let current = staging.join("01JCURRENT000000000000000.part");
    std::fs::write(&current, b"\xFF\xD8\xFF").expect("staging file");
    let mut gateway = Process::configured(&ns, &media, dir.path(), &blobs);
    gateway.spawn();
    gateway.ready().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while left.exists() {
        assert!(
            Instant::now() < deadline,
            "the stale staging file is still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(current.exists(), "a download under way keeps its file");
    assert!(other.exists(), "only staging files are removed");
}
