//! The attachments benchmark's three parts (`scripts/bench` runs them):
//!
//! - `standin ADDR`: a Telegram Bot API stand-in for files: `getFile`
//!   answers a `file_path` for any `file_id`, and the file URL serves a
//!   JPEG-like body of `--size` bytes (1 MiB by default) that starts with
//!   the JPEG magic bytes and carries the file's name, so every file is a
//!   distinct blob (the store is addressed by content and would write a
//!   repeated body only once).
//! - `produce`: makes `--count` attachments to fetch and waits until as many
//!   outcomes are on the events stream, then prints one JSON line:
//!   `{ok, errors, seconds, rps, mib_s, bytes}` (`ok` counts
//!   `attachment_stored`, `errors` the rest). With `--webhook` it posts
//!   Telegram photo messages to the gateway, so the gateway's own append
//!   step queues the media jobs; with `--jobs` it appends bare jobs to that
//!   stream for the `bare` consumer.
//! - `bare`: the bare baseline: a consumer that reads the jobs with
//!   `XREADGROUP`, asks the stand-in's `getFile`, downloads the file and
//!   writes it to a synced file in `--dir` (or PUTs it to the S3 bucket with
//!   `--s3-endpoint`), appends one `attachment_stored` event and
//!   acknowledges, with nothing else (no digest, sniffing, limits, address
//!   checks or retries): the least any Telegram media fetcher must do.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::{Parser, Subcommand};
use object_store::ObjectStore;
use redis::AsyncCommands;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

mod bare_group;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    Standin {
        addr: String,
        /// Bytes of each file.
        #[arg(long, default_value_t = 1 << 20)]
        size: usize,
    },
    Produce {
        #[arg(long)]
        redis: String,
        /// The stream the outcomes are counted on.
        #[arg(long)]
        events: String,
        /// The gateway's Telegram webhook URL (the gateway run).
        #[arg(long)]
        webhook: Option<String>,
        /// The webhook's secret token.
        #[arg(long, default_value = "bench-telegram-secret")]
        secret: String,
        /// The stream of bare jobs (the baseline run).
        #[arg(long)]
        jobs: Option<String>,
        #[arg(long, default_value_t = 300)]
        count: u64,
        /// Bytes of each file, as the stand-in serves them.
        #[arg(long, default_value_t = 1 << 20)]
        size: u64,
    },
    Bare {
        #[arg(long)]
        redis: String,
        #[arg(long, default_value = "bench:media-bare")]
        stream: String,
        #[arg(long, default_value = "bench:events-bare")]
        events: String,
        #[arg(long)]
        standin: String,
        /// The directory files are written to.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// An S3 endpoint to PUT files to instead (path-style, over http).
        #[arg(long)]
        s3_endpoint: Option<String>,
        #[arg(long, default_value = "aduan-bench")]
        bucket: String,
        /// Jobs in flight at once (the gateway's `[media] concurrency`).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The body every file is made from: JPEG magic and a JFIF header, then filler.
fn template(size: usize) -> Vec<u8> {
    let mut body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let head = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00";
    let n = head.len().min(size);
    body[..n].copy_from_slice(&head[..n]);
    body
}

async fn standin(addr: String, size: usize) {
    let body = Arc::new(template(size));
    async fn get_file(
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> axum::Json<Value> {
        let id = q.get("file_id").cloned().unwrap_or_default();
        axum::Json(
            json!({"ok": true, "result": {"file_id": id, "file_unique_id": id,
            "file_path": format!("photos/{id}.jpg")}}),
        )
    }
    async fn file(
        State(body): State<Arc<Vec<u8>>>,
        Path((_bot, name)): Path<(String, String)>,
    ) -> impl IntoResponse {
        let mut bytes = body.as_ref().clone();
        // The name after the header makes each file's bytes its own.
        let at = 20.min(bytes.len());
        let end = (at + name.len()).min(bytes.len());
        bytes[at..end].copy_from_slice(&name.as_bytes()[..end - at]);
        ([(header::CONTENT_TYPE, "image/jpeg")], bytes)
    }
    let app = Router::new()
        .route("/{bot}/getFile", get(get_file))
        .route("/file/{bot}/photos/{name}", get(file))
        .with_state(body);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}

/// A Telegram photo message whose largest size is `file_id`, from one of
/// many citizens (one citizen's photos would meet the per-sender limit).
fn update(id: u64, file_id: &str) -> String {
    let citizen = 418_000_000 + id;
    json!({"update_id": id, "message": {"message_id": id,
        "from": {"id": citizen, "is_bot": false, "first_name": "Budi", "language_code": "id"},
        "chat": {"id": citizen, "first_name": "Budi", "type": "private"},
        "date": 1795500060,
        "photo": [{"file_id": file_id, "file_unique_id": file_id, "file_size": 1048576,
                   "width": 1280, "height": 960}],
        "caption": "Foto lubang jalan di depan SDN 3 Cibinong"}})
    .to_string()
}

#[allow(clippy::too_many_arguments)]
async fn produce(
    redis_url: String,
    events: String,
    webhook: Option<String>,
    secret: String,
    jobs: Option<String>,
    count: u64,
    size: u64,
) {
    let client = redis::Client::open(redis_url).expect("redis url");
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("redis");
    // Outcomes are counted from the events stream's last entry before the run.
    let last: redis::streams::StreamRangeReply = conn
        .xrevrange_count(&events, "+", "-", 1)
        .await
        .expect("xrevrange");
    let mut from = last
        .ids
        .first()
        .map(|e| e.id.clone())
        .unwrap_or_else(|| "0-0".into());
    // Ids unique per run: seconds of the clock in the high digits.
    let run = now_us() / 1_000_000 % 100_000 * 1_000_000;
    let start = Instant::now();
    if let Some(url) = webhook {
        let http = reqwest::Client::new();
        let slots = Arc::new(Semaphore::new(32));
        let mut posts = tokio::task::JoinSet::new();
        for k in 0..count {
            let permit = slots.clone().acquire_owned().await.expect("semaphore");
            let (http, url, secret) = (http.clone(), url.clone(), secret.clone());
            posts.spawn(async move {
                let body = update(run + k, &format!("bench-{}", run + k));
                let answer = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-telegram-bot-api-secret-token", secret)
                    .body(body)
                    .send()
                    .await;
                drop(permit);
                answer.is_ok_and(|r| r.status().is_success())
            });
        }
        let refused = posts.join_all().await.iter().filter(|ok| !**ok).count();
        if refused > 0 {
            eprintln!("media_bench: {refused} webhooks refused");
        }
    } else if let Some(stream) = jobs {
        let mut sent = 0;
        while sent < count {
            let n = 500.min(count - sent);
            let mut pipe = redis::pipe();
            for k in sent..sent + n {
                let job = json!({"file_id": format!("bench-{}", run + k)}).to_string();
                pipe.xadd(&stream, "*", &[("job", job)]).ignore();
            }
            let _: () = pipe.query_async(&mut conn).await.expect("xadd");
            sent += n;
        }
    }
    // Until every outcome is there, or none comes for 30 s.
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut done_at = start.elapsed();
    let mut quiet = Instant::now();
    while ok + errors < count && quiet.elapsed() < Duration::from_secs(30) {
        let opts = redis::streams::StreamReadOptions::default()
            .count(1000)
            .block(1000);
        let read: redis::streams::StreamReadReply =
            match conn.xread_options(&[&events], &[&from], &opts).await {
                Ok(r) => r,
                Err(_) => continue,
            };
        for key in read.keys {
            for entry in key.ids {
                from = entry.id.clone();
                match entry.get::<String>("type").as_deref() {
                    Some("attachment_stored") => ok += 1,
                    Some("attachment_unavailable") => errors += 1,
                    _ => continue,
                }
                done_at = start.elapsed();
                quiet = Instant::now();
            }
        }
    }
    let secs = done_at.as_secs_f64().max(1e-6);
    let bytes = ok * size;
    println!(
        "{}",
        json!({"ok": ok, "errors": errors + count.saturating_sub(ok + errors),
               "seconds": secs, "rps": ok as f64 / secs,
               "mib_s": bytes as f64 / (1u64 << 20) as f64 / secs, "bytes": bytes})
    );
}

/// Where the bare consumer puts a file.
#[derive(Clone)]
enum Target {
    Dir(PathBuf),
    Bucket(Arc<dyn ObjectStore>),
}

impl Target {
    async fn put(&self, name: &str, bytes: bytes::Bytes) -> Result<(), String> {
        match self {
            Target::Dir(dir) => {
                let path = dir.join(name);
                let mut f = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| e.to_string())?;
                f.write_all(&bytes).await.map_err(|e| e.to_string())?;
                f.sync_all().await.map_err(|e| e.to_string())
            }
            Target::Bucket(store) => store
                .put_opts(
                    &object_store::path::Path::from(name),
                    bytes.into(),
                    object_store::PutOptions::default(),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn bare(
    redis_url: String,
    stream: String,
    events: String,
    standin: String,
    dir: Option<PathBuf>,
    s3_endpoint: Option<String>,
    bucket: String,
    concurrency: usize,
) {
    let target = match (s3_endpoint, dir) {
        (Some(endpoint), _) => {
            let store = object_store::aws::AmazonS3Builder::new()
                .with_endpoint(endpoint)
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_access_key_id("bench")
                .with_secret_access_key("bench-secret")
                .with_allow_http(true)
                .with_virtual_hosted_style_request(false)
                .build()
                .expect("s3 client");
            Target::Bucket(Arc::new(store))
        }
        (None, Some(dir)) => {
            std::fs::create_dir_all(&dir).expect("directory");
            Target::Dir(dir)
        }
        (None, None) => panic!("--dir or --s3-endpoint"),
    };
    let http = reqwest::Client::new();
    let (mut reader, conn) = bare_group::connect(redis_url, &stream).await;
    let slots = Arc::new(Semaphore::new(concurrency));
    loop {
        // As many jobs as there are free slots.
        let first = slots.clone().acquire_owned().await.expect("semaphore");
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let opts = redis::streams::StreamReadOptions::default()
            .group("bare", "b")
            .count(permits.len())
            .block(1000);
        let read: redis::streams::StreamReadReply =
            match reader.xread_options(&[&stream], &[">"], &opts).await {
                Ok(r) => r,
                Err(_) => continue,
            };
        for entry in read.keys.into_iter().flat_map(|k| k.ids) {
            let Some(permit) = permits.pop() else { break };
            let (http, standin, target, mut conn) =
                (http.clone(), standin.clone(), target.clone(), conn.clone());
            let (stream, events) = (stream.clone(), events.clone());
            tokio::spawn(async move {
                let job: Value = entry
                    .get::<String>("job")
                    .and_then(|j| serde_json::from_str(&j).ok())
                    .unwrap_or(Value::Null);
                let id = job["file_id"].as_str().unwrap_or("").to_string();
                let stored = fetch(&http, &standin, &id, &target).await;
                let (kind, event) = match stored {
                    Ok(size) => (
                        "attachment_stored",
                        json!({"type": "attachment_stored", "file_id": id, "size": size}),
                    ),
                    Err(e) => (
                        "attachment_unavailable",
                        json!({"type": "attachment_unavailable", "file_id": id, "reason": e}),
                    ),
                };
                let _: Result<(), _> = redis::pipe()
                    .xadd(
                        &events,
                        "*",
                        &[("type", kind), ("event", &event.to_string())],
                    )
                    .ignore()
                    .xack(&stream, "bare", &[&entry.id])
                    .ignore()
                    .query_async(&mut conn)
                    .await;
                drop(permit);
            });
        }
    }
}

/// `getFile`, the download, the write: the file's size.
async fn fetch(
    http: &reqwest::Client,
    standin: &str,
    file_id: &str,
    target: &Target,
) -> Result<usize, String> {
    let answer: Value = http
        .get(format!("{standin}/botbare/getFile"))
        .query(&[("file_id", file_id)])
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let path = answer["result"]["file_path"].as_str().unwrap_or("");
    let bytes = http
        .get(format!("{standin}/file/botbare/{path}"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let size = bytes.len();
    target.put(&format!("{file_id}.jpg"), bytes).await?;
    Ok(size)
}

#[tokio::main]
async fn main() {
    match Args::parse().mode {
        Mode::Standin { addr, size } => standin(addr, size).await,
        Mode::Produce {
            redis,
            events,
            webhook,
            secret,
            jobs,
            count,
            size,
        } => produce(redis, events, webhook, secret, jobs, count, size).await,
        Mode::Bare {
            redis,
            stream,
            events,
            standin,
            dir,
            s3_endpoint,
            bucket,
            concurrency,
        } => {
            bare(
                redis,
                stream,
                events,
                standin,
                dir,
                s3_endpoint,
                bucket,
                concurrency,
            )
            .await
        }
    }
}
