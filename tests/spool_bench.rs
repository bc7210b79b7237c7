//! Spool throughput: complaints per second through `Pipeline::publish` while
//! Redis is unreachable (every complaint fsynced in the spool with group commit),
//! then the rate at which the forwarder drains them into Redis.
//!
//! A measurement, not a timed test: ignored by default. Run it in release mode:
//!
//! ```text
//! cargo test --release --test spool_bench -- --ignored --nocapture
//! ```
//!
//! `ADUAN_BENCH_WRITERS` (default 64) and `ADUAN_BENCH_COMPLAINTS` (default
//! 50000) change the load; `ADUAN_BENCH_DIR` the directory the spool file is made in; `REDIS_URL` names the Redis drained into (default
//! `redis://127.0.0.1:6379`; the bench writes only its own keys and deletes its
//! stream afterwards; its dedup keys expire after ten minutes).

use std::sync::Arc;
use std::time::Instant;

use aduan::language::LanguageDetector;
use aduan::pipeline::Pipeline;
use aduan::redis::Redis;
use aduan::settings::{RedisConfig, SpoolConfig};
use aduan::spool::{Spool, Target};
use aduan_adapter::{Channel, Complaint, Context, Secret, Timestamp};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn complaint(n: usize) -> Complaint {
    let ctx = Context {
        instance: "wa-jabar",
        received_at: Timestamp(chrono::Utc::now()),
        keep_raw: false,
    };
    let phone = format!("+62812{:08}", n % 100_000_000);
    let mut c = Complaint::new(
        &ctx,
        Channel::Whatsapp,
        "meta_whatsapp",
        format!("wamid.BENCH{n:012}"),
        format!("whatsapp:{}", &phone[1..]),
    );
    c.sender.phone = Some(phone);
    c.sender.name = Some("Siti Rahmawati".into());
    c.text = "Jalan berlubang di depan SDN 3 Cibinong sudah dua minggu belum diperbaiki, \
              sudah ada dua pengendara motor yang jatuh. Mohon segera ditindaklanjuti."
        .into();
    c
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement; run with --release --ignored --nocapture"]
async fn spool_throughput_and_drain_rate() {
    let writers = env_usize("ADUAN_BENCH_WRITERS", 64);
    let total = env_usize("ADUAN_BENCH_COMPLAINTS", 50_000);
    let per_writer = total.div_ceil(writers);
    let dir = match std::env::var_os("ADUAN_BENCH_DIR") {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("tempdir");
    let spool = Spool::open(&SpoolConfig {
        dir: dir.path().to_path_buf(),
        ..SpoolConfig::default()
    })
    .expect("spool opens");
    // Nothing listens on port 1: every direct append fails at once.
    let unreachable = RedisConfig {
        url: Secret::literal("redis://127.0.0.1:1"),
        command_timeout_ms: 500,
        ..RedisConfig::default()
    };
    let pipeline = Arc::new(Pipeline::new(
        Arc::new(Redis::new(&unreachable).expect("redis url")),
        Some(spool.clone()),
        LanguageDetector::default(),
    ));

    // What every complaint costs before any storage, on one core: building it,
    // language detection (as `publish` does) and encoding it as JSON.
    let started = Instant::now();
    let sample = 5_000;
    for n in 0..sample {
        let mut c = complaint(n);
        c.language = aduan::language::detect_language(&c.text);
        std::hint::black_box(serde_json::to_vec(&c).expect("json"));
    }
    println!(
        "pipeline work alone (build, detect language, encode), one core: {:.0} complaints/s",
        sample as f64 / started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let pipeline = pipeline.clone();
        tasks.spawn(async move {
            for i in 0..per_writer {
                let receipts = pipeline
                    .publish(&mut [complaint(w * per_writer + i)])
                    .await
                    .expect("spooled");
                assert_eq!(receipts.len(), 1);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("writer");
    }
    let spooled = writers * per_writer;
    let elapsed = started.elapsed().as_secs_f64();
    let status = spool.status();
    assert_eq!(status.depth as usize, spooled);
    let (commits, committing) = spool.commits();
    println!(
        "spool path: {spooled} complaints by {writers} concurrent writers in {elapsed:.2} s = {:.0} complaints/s \
         ({} bytes spooled; {commits} commits, {:.1} complaints and {:.2} ms each on average)",
        spooled as f64 / elapsed,
        status.bytes,
        spooled as f64 / commits.max(1) as f64,
        committing.as_secs_f64() * 1000.0 / commits.max(1) as f64
    );

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ns = format!(
        "bench:spool:{}:{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let reachable = RedisConfig {
        url: Secret::literal(url.clone()),
        stream: format!("{ns}:complaints"),
        key_prefix: ns.clone(),
        dedup_window_seconds: 600,
        ..RedisConfig::default()
    };
    let sink = Redis::new(&reachable).expect("redis url");
    let language = LanguageDetector::default();
    let target = Target {
        redis: &sink,
        language: &language,
        reports: None,
    };
    let started = Instant::now();
    let drained = spool.drain(target).await.expect("drained");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(drained, spooled);
    assert!(spool.is_empty());
    println!(
        "drain: {drained} complaints into Redis in {elapsed:.2} s = {:.0} complaints/s",
        drained as f64 / elapsed
    );

    let mut conn = sink.connection().await.expect("redis");
    let len: usize = redis::cmd("XLEN")
        .arg(sink.keys().stream())
        .query_async(&mut conn)
        .await
        .expect("XLEN");
    assert_eq!(len, spooled, "each spooled complaint appended once");
    let _: () = redis::cmd("DEL")
        .arg(sink.keys().stream())
        .query_async(&mut conn)
        .await
        .expect("DEL");
}
