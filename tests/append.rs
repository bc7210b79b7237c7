//! The batched atomic append against a real Redis of its own: a batch of N
//! complaints is one script call (one round trip), concurrent appends share
//! calls, and dedup holds within a batch and across batches.

mod common;

use std::sync::Arc;

use aduan::redis::Redis;
use aduan::settings::RedisConfig;
use aduan_adapter::{Complaint, Secret};
use common::private_redis::PrivateRedis;

fn complaint(external_id: &str) -> Complaint {
    common::whatsapp_complaint(
        "wa-jatim",
        external_id,
        "whatsapp:6281330001111",
        "Banjir di Jalan Ahmad Yani sejak pagi, mohon pompa air dikirim.",
    )
}

fn redis_for(server: &PrivateRedis) -> Redis {
    Redis::new(&RedisConfig {
        url: Secret::literal(server.url()),
        stream: "uji:complaints".into(),
        key_prefix: "uji".into(),
        ..RedisConfig::default()
    })
    .expect("redis url")
}

/// Calls of `command` since the last `CONFIG RESETSTAT`.
async fn calls(server: &PrivateRedis, command: &str) -> u64 {
    let mut conn = server.connection().await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn reset_stats(server: &PrivateRedis) {
    let mut conn = server.connection().await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .expect("RESETSTAT");
}

#[tokio::test]
async fn a_batch_of_n_complaints_is_one_round_trip() {
    let server = PrivateRedis::start().await;
    let redis = redis_for(&server);
    // The first call loads the script (NOSCRIPT, SCRIPT LOAD, EVALSHA).
    redis.append(&[complaint("warm-up")]).await.expect("append");
    reset_stats(&server).await;

    let batch: Vec<Complaint> = (0..50).map(|i| complaint(&format!("wamid.B{i}"))).collect();
    let receipts = redis.append(&batch).await.expect("append");
    assert_eq!(receipts.len(), 50);
    assert!(receipts.iter().all(|r| !r.duplicate));
    assert_eq!(calls(&server, "evalsha").await, 1, "one script call for 50");
    assert_eq!(calls(&server, "eval").await, 0);
    assert_eq!(calls(&server, "xadd").await, 50, "each appended inside it");

    // The same complaints again, with a new one in the middle and one twice.
    let mut again: Vec<Complaint> = (0..5).map(|i| complaint(&format!("wamid.B{i}"))).collect();
    again.insert(2, complaint("wamid.NEW"));
    again.push(complaint("wamid.NEW"));
    let receipts = redis.append(&again).await.expect("append");
    let duplicate: Vec<bool> = receipts.iter().map(|r| r.duplicate).collect();
    assert_eq!(duplicate, [true, true, false, true, true, true, true]);
    assert_eq!(receipts[2].id, again[2].id, "the new one keeps its own id");
    assert_eq!(
        receipts[6].id, again[2].id,
        "its twin in the batch gets the first id"
    );
    assert_eq!(
        receipts[0].id, batch[0].id,
        "a redelivery gets the first id"
    );
    let mut conn = server.connection().await;
    let len: usize = redis::cmd("XLEN")
        .arg("uji:complaints")
        .query_async(&mut conn)
        .await
        .expect("XLEN");
    assert_eq!(len, 52);
}

#[tokio::test]
async fn concurrent_appends_share_script_calls() {
    let server = PrivateRedis::start().await;
    let redis = Arc::new(redis_for(&server));
    redis.append(&[complaint("warm-up")]).await.expect("append");
    reset_stats(&server).await;
    // Redis paused: the appends pile up behind the first call, then go together.
    let mut conn = server.connection().await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(300)
        .arg("WRITE")
        .query_async(&mut conn)
        .await
        .expect("pause");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let redis = redis.clone();
        tasks.spawn(async move { redis.append(&[complaint(&format!("wamid.C{i}"))]).await });
    }
    while let Some(r) = tasks.join_next().await {
        let receipts = r.expect("task").expect("append");
        assert_eq!(receipts.len(), 1);
        assert!(!receipts[0].duplicate);
    }
    let script_calls = calls(&server, "evalsha").await;
    assert!(
        (1..=10).contains(&script_calls),
        "200 concurrent appends took {script_calls} script calls"
    );
    assert_eq!(calls(&server, "xadd").await, 200);
}
