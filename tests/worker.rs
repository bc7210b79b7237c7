//! The stream worker on a real Redis: new entries are handed to the job with
//! one permit each, entries a dead consumer left pending are all taken over
//! in one round by following the `XAUTOCLAIM` cursor, and the worker
//! acknowledges nothing itself.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aduan::redis::Redis;
use aduan::redis::replies::{Entry, Streams};
use aduan::settings::RedisConfig;
use aduan::worker::{self, Reading, StreamJob};
use aduan_adapter::Secret;
use redis::AsyncCommands;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Records what it was handed; acknowledges only the entries it is told to.
struct Recorder {
    redis: Arc<Redis>,
    streams: Streams,
    ack: bool,
    seen: Mutex<HashMap<String, usize>>,
    permits: Mutex<Vec<(usize, usize)>>,
}

impl StreamJob for Recorder {
    async fn take(self: Arc<Self>, entries: Vec<Entry>, room: OwnedSemaphorePermit) {
        self.permits
            .lock()
            .expect("lock")
            .push((entries.len(), room.num_permits()));
        for entry in entries {
            *self
                .seen
                .lock()
                .expect("lock")
                .entry(entry.payload.clone().unwrap_or_default())
                .or_default() += 1;
            if self.ack {
                self.redis
                    .ack_entry(&self.streams, &entry.id)
                    .await
                    .expect("XACK");
            }
        }
    }
}

fn streams(ns: &str, consumer: &str) -> Streams {
    Streams {
        outbound: format!("test:{ns}:work"),
        field: "job",
        delivery: String::new(),
        events: String::new(),
        group: "aduan".into(),
        consumer: consumer.into(),
        state_ttl: Duration::from_secs(60),
        report_ttl: Duration::from_secs(60),
    }
}

fn redis(ns: &str) -> Arc<Redis> {
    Arc::new(
        Redis::new(&RedisConfig {
            url: Secret::literal(common::redis_url()),
            key_prefix: format!("test:{ns}"),
            stream: format!("test:{ns}:complaints"),
            ..RedisConfig::default()
        })
        .expect("redis config"),
    )
}

async fn add(conn: &mut redis::aio::MultiplexedConnection, stream: &str, n: usize, tag: &str) {
    for i in 0..n {
        let _: String = conn
            .xadd(stream, "*", &[("job", format!("{tag}-{i}"))])
            .await
            .expect("XADD");
    }
}

async fn wait_seen(job: &Recorder, n: usize, within: Duration) -> HashMap<String, usize> {
    let deadline = Instant::now() + within;
    loop {
        let seen = job.seen.lock().expect("lock").clone();
        if seen.len() >= n || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn reads_new_entries_and_takes_over_everything_a_dead_consumer_left() {
    let ns = common::unique("worker");
    let client = redis::Client::open(common::redis_url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("the test Redis answers");
    let redis = redis(&ns);
    let dead = streams(&ns, "dead-replica");
    redis.ensure_group(&dead).await.expect("XGROUP");

    // A consumer read 100 entries and died with them pending.
    add(&mut conn, &dead.outbound, 100, "left").await;
    let mut read_conn = redis
        .blocking_connection(Duration::from_secs(1))
        .await
        .expect("connection");
    let mut taken = 0;
    while taken < 100 {
        taken += redis
            .read_outbound(
                &mut read_conn,
                &dead,
                100,
                Duration::from_millis(100),
                false,
            )
            .await
            .expect("XREADGROUP")
            .len();
    }

    let live = streams(&ns, "live-replica");
    let job = Arc::new(Recorder {
        redis: redis.clone(),
        streams: live.clone(),
        ack: true,
        seen: Mutex::default(),
        permits: Mutex::default(),
    });
    let reading = Reading {
        name: "test",
        room: Arc::new(Semaphore::new(16)),
        capacity: 16,
        per_read: 8,
        // One round of takeover comes every 250 ms; the whole backlog is
        // taken in the first by following the cursor, 8 entries at a time
        // (the room the reader leaves).
        claim_idle: Duration::from_secs(1),
    };
    let stop = CancellationToken::new();
    let tasks = worker::spawn(&reading, redis.clone(), live.clone(), job.clone(), &stop);

    add(&mut conn, &live.outbound, 20, "new").await;
    let seen = wait_seen(&job, 120, Duration::from_secs(10)).await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }

    assert_eq!(seen.len(), 120, "every entry handed over");
    assert!(seen.values().all(|&n| n == 1), "each entry once: {seen:?}");
    for (entries, permits) in job.permits.lock().expect("lock").iter() {
        assert_eq!(entries, permits, "one permit per entry");
        assert!(*entries <= 8, "never more than the room the reader leaves");
    }
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(&live.outbound)
        .arg("aduan")
        .query_async(&mut conn)
        .await
        .expect("XPENDING");
    let redis::Value::Array(summary) = pending else {
        panic!("XPENDING summary")
    };
    assert_eq!(
        summary.first(),
        Some(&redis::Value::Int(0)),
        "all acknowledged by the job"
    );
    let _: () = conn.del(&live.outbound).await.expect("DEL");
}

#[tokio::test]
async fn the_worker_acknowledges_nothing_the_job_did_not() {
    let ns = common::unique("worker-noack");
    let client = redis::Client::open(common::redis_url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("the test Redis answers");
    let redis = redis(&ns);
    let live = streams(&ns, "live-replica");
    let job = Arc::new(Recorder {
        redis: redis.clone(),
        streams: live.clone(),
        ack: false,
        seen: Mutex::default(),
        permits: Mutex::default(),
    });
    let reading = Reading {
        name: "test",
        room: Arc::new(Semaphore::new(4)),
        capacity: 4,
        per_read: 4,
        claim_idle: Duration::from_secs(60),
    };
    let stop = CancellationToken::new();
    let tasks = worker::spawn(&reading, redis.clone(), live.clone(), job.clone(), &stop);
    // The group is made by the worker: wait for it before adding.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let groups: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&live.outbound)
            .query_async(&mut conn)
            .await;
        if groups.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    add(&mut conn, &live.outbound, 10, "kept").await;
    let seen = wait_seen(&job, 10, Duration::from_secs(10)).await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    assert_eq!(seen.len(), 10);
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(&live.outbound)
        .arg("aduan")
        .query_async(&mut conn)
        .await
        .expect("XPENDING");
    let redis::Value::Array(summary) = pending else {
        panic!("XPENDING summary")
    };
    assert_eq!(
        summary.first(),
        Some(&redis::Value::Int(10)),
        "left pending"
    );
    let _: () = conn.del(&live.outbound).await.expect("DEL");
}
