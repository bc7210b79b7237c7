//! Automatic acknowledgements and tracking numbers: each new complaint gets
//! exactly one acknowledgement queued in the same atomic step that appends
//! it, whatever happens around it: provider redeliveries, concurrent
//! duplicates, a Redis outage replayed from the spool, and `kill -9` of the
//! gateway in the middle of a load.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestApp;
use common::private_redis::{PrivateRedis, free_port};
use common::standin::StandIn;
use redis::AsyncCommands;
use serde_json::{Value, json};

const SECRET: &str = "rahasia-tg-ack";
const BOT_TOKEN: &str = "123456:ABC-ack";

/// A Telegram instance that acknowledges, and the namespaced streams.
fn config(ns: &str, api_url: &str, worker: bool) -> String {
    format!(
        "[outbound]\nenabled = {worker}\nstream = \"test:{ns}:outbound\"\n\
         delivery_stream = \"test:{ns}:delivery\"\nevents_stream = \"test:{ns}:events\"\n\n\
         [tracking]\nprefix = \"LPR\"\n\n\
         [limits]\nper_sender_per_minute = 0\n\n\
         [[instances]]\nname = \"tg-ack\"\nkind = \"telegram\"\nkeep_raw = false\n\
         secret_token = \"{SECRET}\"\nbot_token = \"{BOT_TOKEN}\"\n\
         [instances.reply]\napi_url = \"{api_url}\"\nrate_per_second = 1000\n\
         per_recipient_per_second = 1000\n\
         [instances.ack]\ntext = \"Terima kasih {{name}}, aduan Anda lewat {{channel}} bernomor {{tracking}}.\"\n\n"
    )
}

fn update(n: u64) -> String {
    json!({"update_id": 500_000 + n, "message": {
        "message_id": 70 + n, "date": 1_790_000_000,
        "chat": {"id": 6_000 + n, "type": "private"},
        "from": {"id": 6_000 + n, "is_bot": false, "first_name": "Budi", "last_name": "Santoso"},
        "text": format!("Jalan berlubang di Jl. Pajajaran nomor {n}")
    }})
    .to_string()
}

async fn post(client: &reqwest::Client, base: &str, body: String) -> u16 {
    client
        .post(format!("{base}/webhooks/telegram/tg-ack"))
        .header("content-type", "application/json")
        .header("x-telegram-bot-api-secret-token", SECRET)
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The acknowledgements queued on the outbound stream.
async fn acks(conn: &mut redis::aio::MultiplexedConnection, ns: &str) -> Vec<Value> {
    let reply: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("test:{ns}:outbound"))
        .await
        .expect("xrange");
    reply
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("reply"))
        .map(|s| serde_json::from_str(&s).expect("reply JSON"))
        .collect()
}

/// Every complaint has one acknowledgement naming it and carrying its
/// tracking number, and there is no other.
fn assert_one_ack_each(complaints: &[Value], acks: &[Value]) {
    assert_eq!(
        acks.len(),
        complaints.len(),
        "one acknowledgement per complaint"
    );
    let by_id: HashMap<&str, &Value> = acks
        .iter()
        .map(|a| (a["complaint_id"].as_str().expect("complaint_id"), a))
        .collect();
    assert_eq!(by_id.len(), acks.len(), "no complaint acknowledged twice");
    let mut numbers = HashSet::new();
    for c in complaints {
        let id = c["id"].as_str().expect("id");
        let tracking = c["tracking"].as_str().expect("tracking");
        assert!(
            numbers.insert(tracking.to_string()),
            "tracking numbers are unique"
        );
        let ack = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no acknowledgement for {id}"));
        assert_eq!(ack["reply_id"], format!("ack:{id}").as_str());
        assert!(
            ack["text"].as_str().is_some_and(|t| t.contains(tracking)),
            "{ack}"
        );
    }
}

#[tokio::test]
async fn the_acknowledgement_reaches_the_citizen_once_with_the_tracking_number() {
    let ns = common::unique("ack");
    let standin = StandIn::start().await;
    let mut app: TestApp = common::spawn_app_with(
        &config(&ns, &standin.url(), true),
        &common::redis_url(),
        &ns,
    )
    .await;
    for _ in 0..3 {
        assert_eq!(post(&app.client, &app.base_url, update(1)).await, 200);
    }
    let complaints = app.tracked_complaints().await;
    assert_eq!(complaints.len(), 1);
    let tracking = complaints[0]["tracking"]
        .as_str()
        .expect("tracking")
        .to_string();
    assert!(
        tracking.starts_with("LPR-") && tracking.len() == "LPR-7K3M-9QX2".len(),
        "{tracking}"
    );
    let mut conn = app.conn().await;
    assert_one_ack_each(&complaints, &acks(&mut conn, &ns).await);

    let seen = standin.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(standin.seen().len(), 1, "acknowledged once");
    assert_eq!(seen[0].body["chat_id"], 6001);
    assert_eq!(
        seen[0].body["text"],
        format!("Terima kasih Budi Santoso, aduan Anda lewat Telegram bernomor {tracking}.")
            .as_str()
    );
    assert_eq!(seen[0].body["reply_parameters"]["message_id"], 71);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_queue_one_acknowledgement() {
    let ns = common::unique("ackdup");
    let mut app = common::spawn_app_with(
        &config(&ns, "http://127.0.0.1:9", false),
        &common::redis_url(),
        &ns,
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..24u64 {
        let (client, base) = (app.client.clone(), app.base_url.clone());
        // Eight complaints, each delivered three times at once.
        tasks.push(tokio::spawn(async move {
            post(&client, &base, update(i % 8)).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200);
    }
    let complaints = app.tracked_complaints().await;
    assert_eq!(complaints.len(), 8);
    let mut conn = app.conn().await;
    assert_one_ack_each(&complaints, &acks(&mut conn, &ns).await);
    app.stop().await;
}

#[tokio::test]
async fn a_spool_replay_acknowledges_new_complaints_only() {
    let ns = common::unique("ackspool");
    let mut redis = PrivateRedis::start().await;
    let mut app =
        common::spawn_app_with(&config(&ns, "http://127.0.0.1:9", false), &redis.url(), &ns).await;
    // Acknowledged while Redis is up.
    assert_eq!(post(&app.client, &app.base_url, update(1)).await, 200);
    redis.kill();
    // While Redis is away: a redelivery of the first and a new complaint, spooled.
    assert_eq!(post(&app.client, &app.base_url, update(1)).await, 200);
    assert_eq!(post(&app.client, &app.base_url, update(2)).await, 200);
    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.readiness().await["state"] != "ready" {
        assert!(Instant::now() < deadline, "the spool did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the provider redelivers the new one after the replay.
    assert_eq!(post(&app.client, &app.base_url, update(2)).await, 200);
    let complaints = app.tracked_complaints().await;
    assert_eq!(complaints.len(), 2);
    let mut conn = redis.connection().await;
    assert_one_ack_each(&complaints, &acks(&mut conn, &ns).await);
    app.stop().await;
}

/// The real binary, so that `kill -9` is real.
struct Process {
    child: Option<Child>,
    port: u16,
    config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    async fn start(ns: &str) -> Process {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[redis]\nurl = \"{}\"\nstream = \"test:{ns}:complaints\"\n\
             key_prefix = \"test:{ns}\"\n[spool]\ndir = \"{}\"\n[log]\nlevel = \"warn\"\n{}",
            common::redis_url(),
            dir.path().join("spool").display(),
            config(ns, "http://127.0.0.1:9", false)
        );
        let config = dir.path().join("aduan.toml");
        std::fs::write(&config, text).expect("config");
        let mut p = Process {
            child: None,
            port,
            config,
            _dir: dir,
        };
        p.restart().await;
        p
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_aduan"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gateway binary starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{}/healthz", self.base()))
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
async fn kill_9_in_the_middle_of_a_load_leaves_one_acknowledgement_per_complaint() {
    let ns = common::unique("ackkill");
    let mut gateway = Process::start(&ns).await;
    let client = reqwest::Client::new();
    let n = 1000u64;
    // A load in flight when the gateway dies; what was not answered 200 is
    // delivered again afterwards, as providers do.
    let base = gateway.base();
    let load = tokio::spawn({
        let client = client.clone();
        async move {
            let mut answered = HashSet::new();
            for chunk in (0..n).collect::<Vec<_>>().chunks(20) {
                let posts = chunk.iter().map(|&i| {
                    let (client, base) = (client.clone(), base.clone());
                    async move { (i, post(&client, &base, update(i)).await) }
                });
                for (i, status) in futures::future::join_all(posts).await {
                    if status == 200 {
                        answered.insert(i);
                    }
                }
            }
            answered
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    gateway.kill9();
    let answered = load.await.expect("load");
    assert!(answered.len() < n as usize, "the kill fell inside the load");
    gateway.restart().await;
    for i in 0..n {
        // Every update again: the answered ones are duplicates now.
        assert_eq!(post(&client, &gateway.base(), update(i)).await, 200);
    }
    let client = redis::Client::open(common::redis_url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let reply: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("test:{ns}:complaints"))
        .await
        .expect("xrange");
    let complaints: Vec<Value> = reply
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("complaint"))
        .map(|s| serde_json::from_str(&s).expect("JSON"))
        .collect();
    assert_eq!(complaints.len(), n as usize, "each complaint once");
    assert_one_ack_each(&complaints, &acks(&mut conn, &ns).await);
}
