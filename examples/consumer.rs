//! An example consumer for the core complaint system: reads the complaints
//! stream with a consumer group, handles each complaint, and acknowledges it.
//!
//! ```text
//! # one Redis node, one partition (the defaults):
//! cargo run --example consumer -- redis://127.0.0.1:6379 aduan:complaints core worker-1
//! # partitions (on a node or a cluster): every stream named in aduan:layout
//! cargo run --example consumer -- redis://127.0.0.1:7000 aduan:layout core worker-1
//! ```
//!
//! The second argument is a stream, or the gateway's layout key
//! (`{key_prefix}:layout`, written when `[redis] partitions` is above 1 or
//! `cluster` is on), whose `complaints` list names every partition's stream.
//! A comma-separated list of URLs is taken as the seeds of a Redis Cluster.
//!
//! Each partition's stream has its own consumer group (a group belongs to
//! one stream) and its own reading task: one conversation is always in one
//! partition, so its complaints arrive in order. A reply to a complaint goes
//! to the `outbound` stream of the same partition (the layout's `outbound`
//! list, at the same index).
//!
//! On start each task first re-reads its own pending entries (delivered
//! before a crash but never acknowledged), then new ones. An entry is
//! acknowledged only after it is handled, so a crash means redelivery, never
//! loss; the handler must therefore be idempotent on the complaint `id`.

use redis::aio::ConnectionLike;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, RedisResult};

#[tokio::main]
async fn main() -> RedisResult<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let stream = args.next().unwrap_or_else(|| "aduan:complaints".into());
    let group = args.next().unwrap_or_else(|| "core".into());
    let consumer = args.next().unwrap_or_else(|| "worker-1".into());

    if url.contains(',') {
        let seeds: Vec<&str> = url.split(',').collect();
        let conn = redis::cluster::ClusterClient::new(seeds)?
            .get_async_connection()
            .await?;
        run(conn, &stream, &group, &consumer).await
    } else {
        let conn = redis::Client::open(url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        run(conn, &stream, &group, &consumer).await
    }
}

/// Reads every stream that `name` stands for, one task each.
async fn run<C>(mut conn: C, name: &str, group: &str, consumer: &str) -> RedisResult<()>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let streams = streams(&mut conn, name).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for stream in streams {
        let (conn, group, consumer) = (conn.clone(), group.to_string(), consumer.to_string());
        tasks.spawn(async move { read(conn, stream, group, consumer).await });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            return Err(e);
        }
    }
    Ok(())
}

/// The streams of the layout key `name`, or `name` itself when it is a stream.
async fn streams<C: ConnectionLike + Send>(conn: &mut C, name: &str) -> RedisResult<Vec<String>> {
    let kind: String = redis::cmd("TYPE").arg(name).query_async(conn).await?;
    if kind != "string" {
        return Ok(vec![name.to_string()]);
    }
    let layout: String = redis::cmd("GET").arg(name).query_async(conn).await?;
    let layout: serde_json::Value = serde_json::from_str(&layout).map_err(|e| {
        redis::RedisError::from((
            redis::ErrorKind::Client,
            "layout is not JSON",
            e.to_string(),
        ))
    })?;
    Ok(layout["complaints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect())
}

/// One partition: its group, its pending entries, then new ones.
async fn read<C>(mut conn: C, stream: String, group: String, consumer: String) -> RedisResult<()>
where
    C: ConnectionLike + Send + Sync,
{
    // Create the group once; "$" would skip what is already in the stream, "0" reads it all.
    let created: RedisResult<()> = conn.xgroup_create_mkstream(&stream, &group, "0").await;
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        return Err(e);
    }
    // "0" = my pending entries first; once none are left, ">" = new entries.
    let mut cursor = "0".to_string();
    loop {
        let opts = StreamReadOptions::default()
            .group(&group, &consumer)
            .count(10)
            .block(5000);
        let reply: StreamReadReply = conn.xread_options(&[&stream], &[&cursor], &opts).await?;
        let entries: Vec<_> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
        if entries.is_empty() {
            if cursor == "0" {
                cursor = ">".into();
            }
            continue;
        }
        for entry in entries {
            let id: Option<String> = entry.get("id");
            let complaint: Option<String> = entry.get("complaint");
            match (id, complaint) {
                (Some(id), Some(json)) => handle(&stream, &id, &json),
                _ => eprintln!("entry {} is not a complaint; acknowledging it", entry.id),
            }
            let _: i64 = conn.xack(&stream, &group, &[&entry.id]).await?;
        }
    }
}

/// Where the core system files the complaint. Here: print its partition's
/// stream, its id, channel and length.
fn handle(stream: &str, id: &str, json: &str) {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(doc) => println!(
            "{stream} {id} {} {} chars",
            doc["channel"].as_str().unwrap_or("?"),
            doc["text"].as_str().map(str::len).unwrap_or(0)
        ),
        Err(e) => eprintln!("{id}: not JSON: {e}"),
    }
}
