//! An example producer for the core complaint system: appends one reply to
//! `aduan:outbound` and prints its deliveries from `aduan:delivery`.
//!
//! ```text
//! cargo run --example reply_producer -- --complaint-id 01KBX4T9M2Q8R7ZP3N6V5W1HJD \
//!     --text "Laporan Anda sudah kami teruskan ke Dinas Perhubungan."
//! cargo run --example reply_producer -- --channel telegram --instance tg-bogor \
//!     --to 538201947 --text "Mohon kirimkan foto lokasinya."
//! ```
//!
//! The last delivery entry's id is taken before the append, so an outcome
//! written right after it is not missed. It follows until `failed` or `read`
//! (nothing comes after either), or until `--follow-seconds` have passed: a
//! `sent` with no report after it is a normal end on channels without reports.
//! Exit status: 0 when the last status seen is `sent`, `delivered` or `read`,
//! 1 on `failed`, 2 when nothing final came in time.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig};
use serde_json::{Map, Value, json};

/// The longest wait of one XREAD.
const BLOCK: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(about = "Append one reply to aduan:outbound and follow its deliveries")]
struct Args {
    /// The complaint answered (its id).
    #[arg(long, required_unless_present = "channel", conflicts_with_all = ["channel", "instance", "to"])]
    complaint_id: Option<String>,
    /// Instead of --complaint-id, with --instance and --to.
    #[arg(long, requires_all = ["instance", "to"], value_parser = [
        "whatsapp", "telegram", "sms", "email", "facebook", "instagram", "x",
    ])]
    channel: Option<String>,
    /// The configured instance that sends.
    #[arg(long, requires = "channel")]
    instance: Option<String>,
    /// The citizen's address on the channel (WhatsApp id, chat id, PSID, ...).
    #[arg(long, requires = "channel")]
    to: Option<String>,
    /// The message.
    #[arg(long)]
    text: String,
    /// The reply's id; a new ULID when not given.
    #[arg(long)]
    reply_id: Option<String>,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// The stream replies are appended to.
    #[arg(long, default_value = "aduan:outbound")]
    stream: String,
    /// The stream deliveries are read from.
    #[arg(long, default_value = "aduan:delivery")]
    delivery_stream: String,
    /// How long to wait for a final status.
    #[arg(long, default_value_t = 30)]
    follow_seconds: u64,
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = Args::parse();
    let reply_id = args
        .reply_id
        .clone()
        .unwrap_or_else(|| ulid::Ulid::generate().to_string());

    // The aduan.reply.v1 document: only the fields given.
    let mut reply = Map::new();
    reply.insert("schema".into(), json!("aduan.reply.v1"));
    reply.insert("reply_id".into(), json!(reply_id));
    let fields = [
        ("complaint_id", &args.complaint_id),
        ("channel", &args.channel),
        ("instance", &args.instance),
        ("to", &args.to),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            reply.insert(name.into(), json!(value));
        }
    }
    reply.insert("text".into(), json!(args.text));
    let reply = Value::Object(reply).to_string();

    // An XREAD BLOCK waits up to `BLOCK` for its answer: the response timeout
    // (500 ms by default) must be longer.
    let client = redis::Client::open(args.redis_url.as_str())?;
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(BLOCK + BLOCK));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;

    // Where the delivery stream ends now: "$" as it was before the append.
    let last: StreamRangeReply = conn
        .xrevrange_count(&args.delivery_stream, "+", "-", 1)
        .await?;
    let mut cursor = last
        .ids
        .first()
        .map_or_else(|| "0-0".to_string(), |e| e.id.clone());

    let entry_id: String = conn
        .xadd(&args.stream, "*", &[("reply", reply.as_str())])
        .await?;
    println!(
        "appended {entry_id} to {}: reply_id {reply_id}",
        args.stream
    );

    let deadline = Instant::now() + Duration::from_secs(args.follow_seconds);
    let mut last_status: Option<String> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // BLOCK 0 would wait forever; wait at most what is left, in slices.
        let block = left.min(BLOCK).as_millis().max(1) as usize;
        let opts = StreamReadOptions::default().count(100).block(block);
        let read: Option<StreamReadReply> = conn
            .xread_options(&[&args.delivery_stream], &[&cursor], &opts)
            .await?;
        let entries = read.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        for entry in entries {
            cursor = entry.id.clone();
            if entry.get::<String>("reply_id").as_deref() != Some(reply_id.as_str()) {
                continue;
            }
            let status: String = entry.get("status").unwrap_or_default();
            let delivery: String = entry.get("delivery").unwrap_or_default();
            println!("{} {status} {}", entry.id, describe(&delivery));
            last_status = Some(status.clone());
            if status == "failed" || status == "read" {
                return Ok(exit_for(last_status.as_deref()));
            }
        }
    }
    match last_status.as_deref() {
        None => println!("no delivery for {reply_id} within {}s", args.follow_seconds),
        Some(status) => println!("last status {status} after {}s", args.follow_seconds),
    }
    Ok(exit_for(last_status.as_deref()))
}

/// The parts of a delivery worth a line: the attempt, the provider's ids,
/// the error and the next attempt's time.
fn describe(delivery: &str) -> String {
    let Ok(doc) = serde_json::from_str::<Value>(delivery) else {
        return format!("(not JSON: {delivery})");
    };
    let mut out = format!("attempt {}", doc["attempt"]);
    if let Some(ids) = doc["provider_message_ids"].as_array() {
        let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
        out += &format!(" messages {}", ids.join(","));
    } else if let Some(id) = doc["provider_message_id"].as_str() {
        out += &format!(" message {id}");
    }
    if let Some(error) = doc["error"].as_object() {
        out += &format!(
            " error {} ({}{})",
            error["code"].as_str().unwrap_or("?"),
            error["message"].as_str().unwrap_or(""),
            if error["permanent"] == true {
                ", permanent"
            } else {
                ""
            }
        );
    }
    if let Some(next) = doc["next_attempt_at"].as_str() {
        out += &format!(" next attempt at {next}");
    }
    out
}

fn exit_for(status: Option<&str>) -> ExitCode {
    match status {
        Some("sent" | "delivered" | "read") => ExitCode::SUCCESS,
        Some("failed") => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}
