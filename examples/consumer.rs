//! An example consumer for the core complaint system: reads `aduan:complaints`
//! with a consumer group, handles each complaint, and acknowledges it.
//!
//! ```text
//! cargo run --example consumer -- redis://127.0.0.1:6379 aduan:complaints lapor worker-1
//! ```
//!
//! On start it first re-reads its own pending entries (delivered before a crash
//! but never acknowledged), then new ones. An entry is acknowledged only after
//! it is handled, so a crash means redelivery, never loss; the handler must
//! therefore be idempotent on the complaint `id`.

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

    let client = redis::Client::open(url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;

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
                (Some(id), Some(json)) => handle(&id, &json),
                _ => eprintln!("entry {} is not a complaint; acknowledging it", entry.id),
            }
            let _: i64 = conn.xack(&stream, &group, &[&entry.id]).await?;
        }
    }
}

/// Where the core system files the complaint. Here: print its id, channel and length.
fn handle(id: &str, json: &str) {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(doc) => println!(
            "{id} {} {} chars",
            doc["channel"].as_str().unwrap_or("?"),
            doc["text"].as_str().map(str::len).unwrap_or(0)
        ),
        Err(e) => eprintln!("{id}: not JSON: {e}"),
    }
}
