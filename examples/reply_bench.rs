//! The outbound benchmark's three parts (`scripts/bench` runs them):
//!
//! - `standin ADDR`: a Telegram Bot API stand-in that answers `sendMessage`
//!   at once and measures, for each message, the time since the producer
//!   appended it (the producer writes its append time into the text).
//!   `GET /stats` answers `{count, p50_ms, p99_ms}`; `POST /reset` clears them.
//! - `produce`: appends replies to the outbound stream (as fast as it can,
//!   or at `--rate`), waits until the stand-in has seen them all, and prints
//!   one JSON line: `{ok, errors, seconds, rps, p50_ms, p99_ms}`.
//! - `bare`: the bare baseline: a consumer that reads the same stream with
//!   `XREADGROUP`, posts each reply to the stand-in, appends one delivery
//!   entry and acknowledges, with nothing else (no claims, routes, pacing or
//!   retries): the least any outbound worker must do.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use redis::AsyncCommands;
use serde_json::{Value, json};

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
    },
    Produce {
        #[arg(long)]
        redis: String,
        #[arg(long, default_value = "bench:outbound")]
        stream: String,
        #[arg(long, default_value = "tg-bench")]
        instance: String,
        #[arg(long)]
        standin: String,
        #[arg(long, default_value_t = 50_000)]
        count: u64,
        /// Replies per second; 0 for as fast as possible.
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
    Bare {
        #[arg(long)]
        redis: String,
        #[arg(long, default_value = "bench:outbound-bare")]
        stream: String,
        #[arg(long, default_value = "bench:delivery-bare")]
        delivery: String,
        #[arg(long)]
        standin: String,
    },
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Messages seen, their latencies, and when the last one arrived (unix µs).
type Stats = Arc<Mutex<(u64, Histogram<u64>, u64)>>;

fn fresh() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

async fn standin(addr: String) {
    let stats: Stats = Arc::new(Mutex::new((0, fresh(), 0)));
    async fn send(State(stats): State<Stats>, Json(body): Json<Value>) -> Json<Value> {
        let text = body["text"].as_str().unwrap_or("");
        let sent_us = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("t="))
            .and_then(|t| t.parse::<u64>().ok());
        if let (Some(t), Ok(mut s)) = (sent_us, stats.lock()) {
            let now = now_us();
            s.0 += 1;
            s.2 = now;
            let _ = s.1.record(now.saturating_sub(t).max(1));
        }
        Json(json!({"ok": true, "result": {"message_id": 1, "date": 0,
            "chat": {"id": body["chat_id"], "type": "private"}}}))
    }
    async fn stats_of(State(stats): State<Stats>) -> Json<Value> {
        let s = stats
            .lock()
            .map(|s| (s.0, s.1.clone(), s.2))
            .unwrap_or((0, fresh(), 0));
        Json(json!({"count": s.0, "last_us": s.2,
            "p50_ms": s.1.value_at_quantile(0.5) as f64 / 1000.0,
            "p99_ms": s.1.value_at_quantile(0.99) as f64 / 1000.0}))
    }
    async fn reset(State(stats): State<Stats>) -> Json<Value> {
        if let Ok(mut s) = stats.lock() {
            *s = (0, fresh(), 0);
        }
        Json(json!({}))
    }
    let app = Router::new()
        .route("/{bot}/sendMessage", post(send))
        .route("/stats", get(stats_of))
        .route("/reset", post(reset))
        .with_state(stats);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}

#[allow(clippy::too_many_arguments)]
async fn produce(
    redis_url: String,
    stream: String,
    instance: String,
    standin: String,
    count: u64,
    rate: u64,
) {
    let http = reqwest::Client::new();
    let _ = http.post(format!("{standin}/reset")).send().await;
    let client = redis::Client::open(redis_url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let run = now_us();
    let start = Instant::now();
    let started_us = now_us();
    let batch = if rate == 0 { 500 } else { (rate / 100).max(1) };
    let mut sent = 0u64;
    while sent < count {
        let n = batch.min(count - sent);
        let mut pipe = redis::pipe();
        for i in 0..n {
            let k = sent + i;
            let reply = json!({"reply_id": format!("bench-{run}-{k}"), "channel": "telegram",
                "instance": instance, "to": format!("{}", 100_000 + k % 50_000),
                "text": format!("Balasan aduan nomor {k} t={}", now_us())});
            pipe.xadd(&stream, "*", &[("reply", reply.to_string())])
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.expect("xadd");
        sent += n;
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    // Until every reply arrived, or nothing more arrives for 10 s.
    let mut stats = json!({});
    let mut last = (0u64, Instant::now());
    while last.1.elapsed() < Duration::from_secs(10) {
        if let Ok(r) = http.get(format!("{standin}/stats")).send().await
            && let Ok(v) = r.json::<Value>().await
        {
            stats = v;
            let seen = stats["count"].as_u64().unwrap_or(0);
            if seen >= count {
                break;
            }
            if seen > last.0 {
                last = (seen, Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // From the first append to the last arrival.
    let last_us = stats["last_us"].as_u64().unwrap_or(0);
    let secs = if last_us > started_us {
        (last_us - started_us) as f64 / 1e6
    } else {
        start.elapsed().as_secs_f64()
    };
    let ok = stats["count"].as_u64().unwrap_or(0);
    println!(
        "{}",
        json!({"ok": ok, "errors": count - ok.min(count), "seconds": secs,
               "rps": ok as f64 / secs, "p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"]})
    );
}

async fn bare(redis_url: String, stream: String, delivery: String, standin: String) {
    let http = reqwest::Client::new();
    let (mut reader, conn) = bare_group::connect(redis_url, &stream).await;
    let url = format!("{standin}/botbare/sendMessage");
    loop {
        let opts = redis::streams::StreamReadOptions::default()
            .group("bare", "b")
            .count(256)
            .block(1000);
        let read: redis::streams::StreamReadReply =
            match reader.xread_options(&[&stream], &[">"], &opts).await {
                Ok(r) => r,
                Err(_) => continue,
            };
        let mut tasks = Vec::new();
        for key in read.keys {
            for entry in key.ids {
                let (http, url, mut conn) = (http.clone(), url.clone(), conn.clone());
                let (stream, delivery) = (stream.clone(), delivery.clone());
                tasks.push(tokio::spawn(async move {
                    let reply: Value = entry
                        .get::<String>("reply")
                        .and_then(|r| serde_json::from_str(&r).ok())
                        .unwrap_or(Value::Null);
                    let body = json!({"chat_id": reply["to"], "text": reply["text"]});
                    let ok = http
                        .post(&url)
                        .json(&body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    let status = if ok { "sent" } else { "failed" };
                    let _: Result<(), _> = redis::pipe()
                        .xadd(
                            &delivery,
                            "*",
                            &[
                                ("reply_id", reply["reply_id"].as_str().unwrap_or("")),
                                ("status", status),
                            ],
                        )
                        .ignore()
                        .xack(&stream, "bare", &[&entry.id])
                        .ignore()
                        .query_async(&mut conn)
                        .await;
                }));
            }
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

#[tokio::main]
async fn main() {
    match Args::parse().mode {
        Mode::Standin { addr } => standin(addr).await,
        Mode::Produce {
            redis,
            stream,
            instance,
            standin,
            count,
            rate,
        } => produce(redis, stream, instance, standin, count, rate).await,
        Mode::Bare {
            redis,
            stream,
            delivery,
            standin,
        } => bare(redis, stream, delivery, standin).await,
    }
}
