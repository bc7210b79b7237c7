//! The status loop through a real Redis and a Telegram stand-in: the core
//! system appends status entries, the gateway keeps the latest and the
//! history, tells the citizen once through the reply worker, refuses bad
//! entries with an event, and answers `GET /v1/status/{tracking}` with the
//! public part only.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::standin::StandIn;
use redis::AsyncCommands;
use serde_json::{Value, json};

const SECRET: &str = "rahasia-tg-status";
const BOT_TOKEN: &str = "123456:ABC-status";

fn config(ns: &str, api_url: &str, extra: &str) -> String {
    format!(
        "[outbound]\nstream = \"test:{ns}:outbound\"\n\
         delivery_stream = \"test:{ns}:delivery\"\nevents_stream = \"test:{ns}:events\"\n\n\
         [status]\nstream = \"test:{ns}:status\"\nclaim_idle_seconds = 2\n{extra}\n\n\
         [limits]\nper_sender_per_minute = 0\n\n\
         [[instances]]\nname = \"tg-status\"\nkind = \"telegram\"\nkeep_raw = false\n\
         secret_token = \"{SECRET}\"\nbot_token = \"{BOT_TOKEN}\"\n\
         [instances.reply]\napi_url = \"{api_url}\"\nrate_per_second = 1000\n\
         per_recipient_per_second = 1000\n\
         [instances.ack]\ntext = \"Nomor aduan Anda {{tracking}}.\"\n\n\
         [[instances]]\nname = \"tg-lain\"\nkind = \"telegram\"\nkeep_raw = false\n\
         secret_token = \"{SECRET}-lain\"\nbot_token = \"654321:XYZ-lain\"\n\n"
    )
}

async fn complain(app: &TestApp, chat: i64) -> Value {
    let update = json!({"update_id": 910_000 + chat, "message": {
        "message_id": 11, "date": 1_790_000_000,
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": false, "first_name": "Dewi", "last_name": "Lestari"},
        "text": "Saluran air di Jl. Sudirman 12 tersumbat, rumah warga kebanjiran."
    }});
    let status = app
        .client
        .post(app.url("/webhooks/telegram/tg-status"))
        .header("content-type", "application/json")
        .header("x-telegram-bot-api-secret-token", SECRET)
        .body(update.to_string())
        .send()
        .await
        .expect("webhook")
        .status();
    assert_eq!(status, 200);
    let complaints = app.tracked_complaints().await;
    assert_eq!(complaints.len(), 1);
    complaints.into_iter().next().expect("the complaint")
}

async fn append_status(conn: &mut redis::aio::MultiplexedConnection, ns: &str, entry: &Value) {
    let _: String = conn
        .xadd(
            format!("test:{ns}:status"),
            "*",
            &[("status", entry.to_string())],
        )
        .await
        .expect("XADD status");
}

async fn events(conn: &mut redis::aio::MultiplexedConnection, ns: &str) -> Vec<Value> {
    let reply: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("test:{ns}:events"))
        .await
        .expect("XRANGE events");
    reply
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("event"))
        .filter_map(|s| serde_json::from_str(&s).ok())
        .collect()
}

async fn pending(conn: &mut redis::aio::MultiplexedConnection, ns: &str) -> i64 {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(format!("test:{ns}:status"))
        .arg("aduan")
        .query_async(conn)
        .await
        .expect("XPENDING");
    match summary {
        redis::Value::Array(v) => match v.first() {
            Some(redis::Value::Int(n)) => *n,
            _ => -1,
        },
        _ => -1,
    }
}

async fn lookup(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.get(path).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `check` holds, or `within` passed.
async fn until<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_status_reaches_the_citizen_once_and_the_public_reads_it_by_number() {
    let ns = common::unique("status");
    let standin = StandIn::start().await;
    let mut app =
        common::spawn_app_with(&config(&ns, &standin.url(), ""), &common::redis_url(), &ns).await;
    let mut conn = app.conn().await;
    let complaint = complain(&app, 88_001).await;
    let tracking = complaint["tracking"]
        .as_str()
        .expect("tracking")
        .to_string();
    let ack = standin.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(ack.len(), 1, "the acknowledgement");

    // Before any status: received, at the complaint's time.
    let (code, body) = lookup(&app, &format!("/v1/status/{tracking}")).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "received");
    assert_eq!(body["history"], json!([]));

    // in_progress by number, with a note: the citizen is told.
    let entry = json!({"status_id": format!("{ns}-1"), "tracking": tracking.to_lowercase(),
        "status": "in_progress", "agency": "Dinas PUPR Kota Bogor",
        "public_note": "Petugas sudah dijadwalkan.", "at": "2026-12-08T03:00:00Z"});
    append_status(&mut conn, &ns, &entry).await;
    let sent = standin.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(sent.len(), 2, "the notification");
    assert_eq!(
        sent[1].body["text"],
        format!("Aduan {tracking}: Sedang ditangani. Petugas sudah dijadwalkan.")
    );
    assert_eq!(sent[1].body["chat_id"], json!(88_001));

    // The same entry again, and an older one: nothing more is sent, the
    // latest stays, the older joins the history.
    append_status(&mut conn, &ns, &entry).await;
    let older = json!({"status_id": format!("{ns}-0"), "complaint_id": complaint["id"],
        "status": "verified", "at": "2026-12-08T01:00:00Z"});
    append_status(&mut conn, &ns, &older).await;
    assert!(
        until(Duration::from_secs(10), || {
            let app = &app;
            let tracking = &tracking;
            async move {
                let (_, b) = lookup(app, &format!("/v1/status/{tracking}")).await;
                b["history"].as_array().is_some_and(|h| h.len() == 2)
            }
        })
        .await,
        "the older entry joined the history"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(standin.seen().len(), 2, "no second notification");
    let spaced = tracking.replace('-', " ").to_lowercase();
    let (code, body) = lookup(&app, &format!("/v1/status/{spaced}?lang=en")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["tracking"], tracking.as_str());
    assert_eq!(body["status"], "in_progress");
    assert_eq!(body["label"], "In progress");
    assert_eq!(body["open311_status"], "open");
    assert_eq!(body["agency"], "Dinas PUPR Kota Bogor");
    assert_eq!(body["history"][0]["status"], "verified");
    assert_eq!(body["history"][1]["note"], "Petugas sudah dijadwalkan.");
    let text = body.to_string();
    for private in [
        "Dewi",
        "Lestari",
        "Saluran air",
        "88001",
        complaint["id"].as_str().unwrap_or("-"),
    ] {
        assert!(!text.contains(private), "{private} in {text}");
    }
    let outbound: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("test:{ns}:outbound"))
        .await
        .expect("XRANGE");
    assert_eq!(
        outbound.ids.len(),
        2,
        "one acknowledgement, one notification"
    );

    // An unknown number, a malformed one and one of another instance: one answer.
    for path in [
        "/v1/status/ADU-0000-0000".to_string(),
        "/v1/status/bukan-nomor".to_string(),
        format!("/v1/status/{tracking}?instance=tg-lain"),
    ] {
        assert_eq!(
            lookup(&app, &path).await,
            (404, json!({"error": "not_found"})),
            "{path}"
        );
    }
    assert_eq!(
        lookup(&app, &format!("/v1/status/{tracking}?instance=tg-status"))
            .await
            .0,
        200
    );

    // Bad entries: one event each with its code, acknowledged, nothing kept.
    for (entry, _) in [
        (
            json!({"status_id": "x", "tracking": tracking, "status": "lost", "at": "2026-12-08T03:00:00Z"}),
            "unknown_status",
        ),
        (
            json!({"status_id": "y", "tracking": "ADU-0000-0000", "status": "closed", "at": "2026-12-08T03:00:00Z"}),
            "unknown_complaint",
        ),
    ] {
        append_status(&mut conn, &ns, &entry).await;
    }
    let _: String = conn
        .xadd(format!("test:{ns}:status"), "*", &[("other", "1")])
        .await
        .expect("XADD");
    let ns2 = ns.clone();
    let c2 = conn.clone();
    assert!(
        until(Duration::from_secs(10), || {
            let (ns, mut c) = (ns2.clone(), c2.clone());
            async move {
                events(&mut c, &ns)
                    .await
                    .iter()
                    .filter(|e| e["type"] == "status_rejected")
                    .count()
                    == 3
            }
        })
        .await,
        "three status_rejected events"
    );
    let codes: Vec<String> = events(&mut conn, &ns)
        .await
        .iter()
        .filter(|e| e["type"] == "status_rejected")
        .filter_map(|e| e["code"].as_str().map(String::from))
        .collect();
    assert_eq!(codes, ["unknown_status", "unknown_complaint", "malformed"]);
    assert!(
        until(Duration::from_secs(5), || {
            let (ns, mut c) = (ns.clone(), conn.clone());
            async move { pending(&mut c, &ns).await == 0 }
        })
        .await,
        "every entry acknowledged"
    );
    assert_eq!(standin.seen().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn lookups_are_limited_per_address() {
    let ns = common::unique("status-limit");
    let standin = StandIn::start().await;
    let mut app = common::spawn_app_with(
        &config(
            &ns,
            &standin.url(),
            "lookups_per_minute = 3\ncors_origins = [\"https://lapor.bogorkota.go.id\"]",
        ),
        &common::redis_url(),
        &ns,
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = app
            .client
            .get(app.url("/v1/status/ADU-0000-0000"))
            .header("origin", "https://lapor.bogorkota.go.id")
            .send()
            .await
            .expect("GET");
        if codes.is_empty() {
            assert_eq!(
                r.headers()
                    .get("access-control-allow-origin")
                    .and_then(|v| v.to_str().ok()),
                Some("https://lapor.bogorkota.go.id")
            );
        }
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, [404, 404, 404, 429]);
    let other = app
        .client
        .get(app.url("/v1/status/ADU-0000-0000"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("GET");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

/// A file's text, by path from the repository root.
fn repo_file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every status entry shown in `docs/status.md` (JSON blocks and the
/// `redis-cli` one-liner) is valid against `schema/status.v1.json` and
/// reads as the Rust type; its TOML block is an instance's valid notices.
#[test]
fn the_examples_in_the_docs_are_valid_entries() {
    let schema: Value =
        serde_json::from_str(&repo_file("schema/status.v1.json")).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let docs = repo_file("docs/status.md");
    let mut entries = Vec::new();
    let mut tomls = 0;
    let mut rest = docs.as_str();
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let Some(eol) = after.find('\n') else { break };
        let info = after[..eol].trim();
        let Some(close) = after[eol..].find("```") else {
            break;
        };
        let content = &after[eol + 1..eol + close];
        match info {
            "json" => {
                let doc: Value = serde_json::from_str(content).expect("a json block is JSON");
                if doc["status_id"].is_string() && doc["type"].is_null() {
                    entries.push(doc);
                }
            }
            "sh" => {
                for line in content.lines() {
                    if let Some(json) = line.split("XADD aduan:status '*' status '").nth(1) {
                        let json = json.strip_suffix('\'').expect("quoted");
                        entries.push(serde_json::from_str(json).expect("JSON"));
                    }
                }
            }
            "toml" => {
                let table: toml::Table = toml::from_str(content).expect("a toml block parses");
                let status = table["instances"]["status"]
                    .as_table()
                    .cloned()
                    .expect("[instances.status]");
                aduan::status::Notices::new(Some(status)).expect("valid notices");
                tomls += 1;
            }
            _ => {}
        }
        rest = &after[eol + close + 3..];
    }
    assert!(entries.len() >= 2, "the docs show entries");
    assert_eq!(tomls, 1);
    for doc in &entries {
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{doc}: {errors:?}");
        aduan_adapter::StatusUpdate::parse(Some(&doc.to_string())).expect("reads as the type");
    }
    // The schema refuses what the type refuses.
    for bad in [
        json!({"status_id": "a", "status": "closed", "at": "2026-12-08T03:00:00Z"}),
        json!({"status_id": "a", "tracking": "x", "status": "lost", "at": "2026-12-08T03:00:00Z"}),
        json!({"status_id": "a", "tracking": "x", "status": "closed", "at": "2026-12-08T03:00:00Z", "nama": "Dewi"}),
    ] {
        assert!(!validator.is_valid(&bad), "{bad}");
        assert!(aduan_adapter::StatusUpdate::parse(Some(&bad.to_string())).is_err());
    }
}
