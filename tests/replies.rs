//! Replies end to end: a complaint arrives on a real webhook, the core
//! system appends a reply to the outbound stream of a real Redis, and the
//! gateway sends it to a stand-in of the provider's send API, recording
//! every outcome on the delivery stream.

mod common;

use std::time::Duration;

use aduan_adapter::testkit::meta_signature;
use common::TestApp;
use common::standin::{Scripted, StandIn, graph_error};
use redis::AsyncCommands;
use serde_json::{Value, json};

const APP_SECRET: &str = "rahasia-aplikasi-meta";
const WA_TOKEN: &str = "token-wa-rahasia-123";
const PHONE_ID: &str = "1098765";
const BOT_TOKEN: &str = "123456:ABC-tokenbot";

/// The `[outbound]` section for namespace `ns`, with quick retries and takeovers.
fn outbound(ns: &str, consumer: &str) -> String {
    format!(
        "[outbound]\nstream = \"test:{ns}:outbound\"\ndelivery_stream = \"test:{ns}:delivery\"\n\
         events_stream = \"test:{ns}:events\"\nconsumer = \"{consumer}\"\nclaim_idle_seconds = 1\n\
         backoff_base_ms = 100\nbackoff_max_ms = 400\nsend_timeout_ms = 3000\n\n"
    )
}

fn whatsapp(name: &str, standin: &StandIn, extra: &str) -> String {
    format!(
        "[[instances]]\nname = \"{name}\"\nkind = \"whatsapp\"\nkeep_raw = false\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"vt\"\n\
         [instances.reply]\naccess_token = \"{WA_TOKEN}\"\nphone_number_id = \"{PHONE_ID}\"\n\
         base_url = \"{}\"\nrate_per_second = 1000\n{extra}\n",
        standin.url()
    )
}

fn telegram(name: &str, standin: &StandIn) -> String {
    format!(
        "[[instances]]\nname = \"{name}\"\nkind = \"telegram\"\nkeep_raw = false\n\
         secret_token = \"rahasia-tg\"\nbot_token = \"{BOT_TOKEN}\"\n\
         [instances.reply]\napi_url = \"{}\"\nrate_per_second = 1000\nper_recipient_per_second = 1000\n\n",
        standin.url()
    )
}

fn messenger(name: &str, standin: &StandIn, human_agent: bool) -> String {
    format!(
        "[[instances]]\nname = \"{name}\"\nkind = \"messenger\"\nkeep_raw = false\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"vt\"\n\
         [instances.reply]\naccess_token = \"token-fb\"\npage_id = \"PAGE1\"\n\
         base_url = \"{}\"\nhuman_agent = {human_agent}\n\n",
        standin.url()
    )
}

async fn spawn(ns: &str, consumer: &str, instances: &str) -> TestApp {
    common::spawn_replica(
        &format!("{}{instances}", outbound(ns, consumer)),
        ns,
        consumer,
    )
    .await
}

/// Posts a signed WhatsApp text message from `wa_id`, written just now,
/// and returns the complaint id.
async fn inbound(app: &TestApp, instance: &str, wamid: &str, wa_id: &str, text: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    inbound_at(app, instance, wamid, wa_id, text, now).await
}

/// [`inbound`] of a message WhatsApp says was written at `timestamp` (Unix seconds).
async fn inbound_at(
    app: &TestApp,
    instance: &str,
    wamid: &str,
    wa_id: &str,
    text: &str,
    timestamp: i64,
) -> String {
    let body =
        json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "6281100001111", "phone_number_id": PHONE_ID},
            "contacts": [{"profile": {"name": "Siti Rahayu"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": wamid, "timestamp": timestamp.to_string(),
                          "type": "text", "text": {"body": text}}]
        }}]}]})
        .to_string();
    let res = app
        .client
        .post(app.url(&format!("/webhooks/whatsapp/{instance}")))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            meta_signature(APP_SECRET, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .expect("webhook answered");
    assert_eq!(res.status(), 200);
    let complaints = app.complaints().await;
    let c = complaints
        .iter()
        .find(|c| c["external_id"] == wamid)
        .expect("complaint in the stream");
    c["id"].as_str().expect("id").to_string()
}

async fn reply(app: &TestApp, ns: &str, reply: Value) {
    let mut conn = app.conn().await;
    let _: String = conn
        .xadd(
            format!("test:{ns}:outbound"),
            "*",
            &[("reply", reply.to_string())],
        )
        .await
        .expect("xadd");
}

async fn raw_reply(app: &TestApp, ns: &str, fields: &[(&str, &str)]) {
    let mut conn = app.conn().await;
    let _: String = conn
        .xadd(format!("test:{ns}:outbound"), "*", fields)
        .await
        .expect("xadd");
}

async fn read_stream(app: &TestApp, key: &str, field: &str) -> Vec<Value> {
    let mut conn = app.conn().await;
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(key).await.expect("xrange");
    reply
        .ids
        .iter()
        .filter_map(|e| e.get::<String>(field))
        .map(|s| serde_json::from_str(&s).expect("JSON"))
        .collect()
}

async fn deliveries(app: &TestApp, ns: &str) -> Vec<Value> {
    read_stream(app, &format!("test:{ns}:delivery"), "delivery").await
}

/// Waits until `reply_id` has a delivery with `status`, and returns all of its deliveries.
async fn wait_status(app: &TestApp, ns: &str, reply_id: &str, status: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mine: Vec<Value> = deliveries(app, ns)
            .await
            .into_iter()
            .filter(|d| d["reply_id"] == reply_id)
            .collect();
        if mine.iter().any(|d| d["status"] == status) {
            return mine;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no `{status}` delivery for {reply_id}; got {mine:#?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn keys(ns: &str) -> aduan::redis::Keys {
    aduan::redis::Keys::new(&format!("test:{ns}"), &format!("test:{ns}:complaints"))
}

#[tokio::test]
async fn a_reply_by_complaint_id_reaches_the_citizen_once_and_its_report_is_matched() {
    let ns = common::unique("reply");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, "r1", &whatsapp("wa-jabar", &standin, "")).await;
    let complaint = inbound(
        &app,
        "wa-jabar",
        "wamid.IN0001",
        "6281234567890",
        "Air mati",
    )
    .await;

    let entry = json!({"reply_id": "balas-1", "complaint_id": complaint,
                       "text": "Terima kasih Bu Siti, petugas PDAM menuju lokasi."});
    reply(&app, &ns, entry.clone()).await;
    let mine = wait_status(&app, &ns, "balas-1", "sent").await;
    // The same reply appended again, after and alongside: never sent twice.
    reply(&app, &ns, entry.clone()).await;
    reply(&app, &ns, entry).await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    let seen = standin.seen();
    assert_eq!(seen.len(), 1, "one send for one reply_id: {seen:#?}");
    let req = &seen[0];
    assert_eq!(req.path, format!("/v21.0/{PHONE_ID}/messages"));
    assert_eq!(
        req.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {WA_TOKEN}").as_str())
    );
    assert_eq!(req.body["to"], "6281234567890");
    assert_eq!(req.body["type"], "text");
    assert_eq!(
        req.body["text"]["body"],
        "Terima kasih Bu Siti, petugas PDAM menuju lokasi."
    );
    assert_eq!(req.body["context"]["message_id"], "wamid.IN0001");

    let sent = mine.iter().find(|d| d["status"] == "sent").expect("sent");
    assert_eq!(sent["schema"], "aduan.delivery.v1");
    assert_eq!(sent["complaint_id"], complaint.as_str());
    assert_eq!(sent["instance"], "wa-jabar");
    assert_eq!(sent["channel"], "whatsapp");
    assert_eq!(sent["to"], "6281234567890");
    assert_eq!(sent["attempt"], 1);
    let wamid = sent["provider_message_id"]
        .as_str()
        .expect("provider id")
        .to_string();
    let all = deliveries(&app, &ns).await;
    assert_eq!(all.len(), 1, "duplicates write no delivery: {all:#?}");

    // WhatsApp reports the message delivered on the inbound webhook.
    let status = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "6281100001111", "phone_number_id": PHONE_ID},
                  "statuses": [
                      {"id": wamid, "status": "delivered", "timestamp": "1790000100", "recipient_id": "6281234567890"},
                      {"id": "wamid.NOT-OURS", "status": "read", "timestamp": "1790000100", "recipient_id": "6281234567890"}
                  ]}}]}]})
    .to_string();
    let res = app
        .client
        .post(app.url("/webhooks/whatsapp/wa-jabar"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            meta_signature(APP_SECRET, status.as_bytes()),
        )
        .body(status)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), 200);
    let mine = wait_status(&app, &ns, "balas-1", "delivered").await;
    let delivered = mine
        .iter()
        .find(|d| d["status"] == "delivered")
        .expect("delivered");
    assert_eq!(delivered["provider_message_id"], wamid.as_str());
    assert_eq!(delivered["complaint_id"], complaint.as_str());
    assert_eq!(delivered["attempt"], 0);
    assert_eq!(
        app.stream_len().await,
        1,
        "reports never reach the complaints stream"
    );
    assert_eq!(
        deliveries(&app, &ns).await.len(),
        2,
        "the unknown message's report is dropped"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        common::counter(
            &metrics,
            "aduan_delivery_reports_total",
            &[("instance", "wa-jabar"), ("status", "unmatched")]
        ),
        1.0
    );
    assert_eq!(
        common::counter(
            &metrics,
            "aduan_replies_total",
            &[("instance", "wa-jabar"), ("outcome", "sent")]
        ),
        1.0
    );
    assert!(!metrics.contains(WA_TOKEN));
    app.stop().await;
}

#[tokio::test]
async fn the_whatsapp_window_decides_between_text_template_and_refusal() {
    let ns = common::unique("window");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, "r1", &whatsapp("wa-jabar", &standin, "")).await;
    let complaint = inbound(
        &app,
        "wa-jabar",
        "wamid.IN0002",
        "6281298765432",
        "Jalan rusak",
    )
    .await;
    // The citizen's last message was 25 hours ago.
    let old = chrono::Utc::now().timestamp_millis() - 25 * 3600 * 1000;
    let mut conn = app.conn().await;
    let _: () = conn
        .set(keys(&ns).window("wa-jabar", "6281298765432"), old)
        .await
        .expect("set");

    reply(
        &app,
        &ns,
        json!({"reply_id": "tutup-1", "complaint_id": complaint, "text": "Halo"}),
    )
    .await;
    let mine = wait_status(&app, &ns, "tutup-1", "failed").await;
    assert_eq!(mine[0]["error"]["code"], "window_closed");
    assert_eq!(mine[0]["error"]["permanent"], true);
    assert!(standin.seen().is_empty(), "a closed window calls nobody");

    reply(
        &app,
        &ns,
        json!({"reply_id": "tutup-2", "complaint_id": complaint, "text": "Halo",
        "template": {"name": "aduan_update", "language": "id", "params": ["LPR-7K3M"]}}),
    )
    .await;
    wait_status(&app, &ns, "tutup-2", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["type"], "template");
    assert_eq!(seen[0].body["template"]["name"], "aduan_update");
    assert_eq!(seen[0].body["template"]["language"]["code"], "id");
    assert_eq!(
        seen[0].body["template"]["components"][0]["parameters"][0]["text"],
        "LPR-7K3M"
    );
    app.stop().await;
}

#[tokio::test]
async fn messenger_replies_use_human_agent_up_to_seven_days_only_where_allowed() {
    let ns = common::unique("human");
    let standin = StandIn::start().await;
    let config = format!(
        "{}{}",
        messenger("fb-agen", &standin, true),
        messenger("fb-biasa", &standin, false)
    );
    let mut app = spawn(&ns, "r1", &config).await;
    let three_days_ago = chrono::Utc::now().timestamp_millis() - 3 * 24 * 3600 * 1000;
    let mut conn = app.conn().await;
    for instance in ["fb-agen", "fb-biasa"] {
        let _: () = conn
            .set(keys(&ns).window(instance, "PSID-7781"), three_days_ago)
            .await
            .expect("set");
    }
    for (id, instance) in [("fb-1", "fb-agen"), ("fb-2", "fb-biasa")] {
        reply(
            &app,
            &ns,
            json!({"reply_id": id, "channel": "facebook", "instance": instance,
            "to": "PSID-7781", "text": "Laporan Anda sedang kami tindak lanjuti."}),
        )
        .await;
    }
    wait_status(&app, &ns, "fb-1", "sent").await;
    let refused = wait_status(&app, &ns, "fb-2", "failed").await;
    assert_eq!(refused[0]["error"]["code"], "window_closed");
    let seen = standin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v21.0/PAGE1/messages");
    assert_eq!(seen[0].body["messaging_type"], "MESSAGE_TAG");
    assert_eq!(seen[0].body["tag"], "HUMAN_AGENT");
    assert_eq!(seen[0].body["recipient"]["id"], "PSID-7781");
    app.stop().await;
}

#[tokio::test]
async fn temporary_failures_are_retried_with_backoff_and_permanent_ones_are_not() {
    let ns = common::unique("retry");
    let standin = StandIn::start().await;
    let config = format!(
        "{}{}",
        whatsapp("wa-jabar", &standin, ""),
        whatsapp("wa-dua", &standin, "max_attempts = 2\n")
    );
    let mut app = spawn(&ns, "r1", &config).await;
    let c1 = inbound(
        &app,
        "wa-jabar",
        "wamid.IN0003",
        "6281311112222",
        "Sampah menumpuk",
    )
    .await;
    let c2 = inbound(
        &app,
        "wa-dua",
        "wamid.IN0004",
        "6281322223333",
        "Lampu jalan mati",
    )
    .await;

    // Throttled (with Retry-After), then a server error, then accepted.
    standin.script([
        graph_error(429, 130429, "Rate limit hit").header("retry-after", "1"),
        Scripted::status(
            503,
            json!({"error": {"message": "Service unavailable", "code": 2}}),
        ),
    ]);
    reply(
        &app,
        &ns,
        json!({"reply_id": "ulang-1", "complaint_id": c1, "text": "Segera kami angkut."}),
    )
    .await;
    let mine = wait_status(&app, &ns, "ulang-1", "sent").await;
    let statuses: Vec<&str> = mine.iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(statuses, ["retrying", "retrying", "sent"]);
    assert_eq!(mine[0]["error"]["code"], "130429");
    assert_eq!(mine[0]["error"]["permanent"], false);
    assert!(mine[0]["next_attempt_at"].is_string());
    assert_eq!(mine[2]["attempt"], 3);
    let seen = standin.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen[1].at.duration_since(seen[0].at) >= Duration::from_millis(950),
        "Retry-After is honoured"
    );

    // A refusal is final: one request, no retry.
    let before = standin.seen().len();
    standin.script([graph_error(400, 100, "Invalid parameter")]);
    reply(
        &app,
        &ns,
        json!({"reply_id": "tolak-1", "complaint_id": c1, "text": "Halo"}),
    )
    .await;
    let mine = wait_status(&app, &ns, "tolak-1", "failed").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["error"]["code"], "100");
    assert_eq!(mine[0]["error"]["permanent"], true);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(standin.seen().len(), before + 1);

    // Out of attempts.
    standin.script([
        Scripted::status(500, json!({})),
        Scripted::status(500, json!({})),
    ]);
    reply(
        &app,
        &ns,
        json!({"reply_id": "habis-1", "complaint_id": c2, "text": "Halo"}),
    )
    .await;
    let mine = wait_status(&app, &ns, "habis-1", "failed").await;
    let last = mine.last().expect("last");
    assert_eq!(last["error"]["code"], "attempts_exhausted");
    assert_eq!(last["attempt"], 2);
    app.stop().await;
}

#[tokio::test]
async fn every_malformed_entry_fails_with_its_code_and_the_worker_goes_on() {
    let ns = common::unique("malformed");
    let standin = StandIn::start().await;
    let config = format!(
        "{}{}[[instances]]\nname = \"tanpa-balas\"\nkind = \"whatsapp\"\napp_secret = \"s\"\nverify_token = \"v\"\n\n",
        whatsapp("wa-jabar", &standin, ""),
        telegram("tg-bogor", &standin)
    );
    let mut app = spawn(&ns, "r1", &config).await;
    raw_reply(&app, &ns, &[("reply", "{bukan json")]).await;
    raw_reply(&app, &ns, &[("pesan", "tanpa field reply")]).await;
    reply(&app, &ns, json!({"text": "tanpa id"})).await;
    reply(
        &app,
        &ns,
        json!({"reply_id": "m-1", "complaint_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ", "text": "x"}),
    )
    .await;
    reply(&app, &ns, json!({"reply_id": "m-2", "channel": "telegram", "instance": "tidak-ada", "to": "1", "text": "x"})).await;
    reply(
        &app,
        &ns,
        json!({"reply_id": "m-3", "channel": "telegram", "instance": "tg-bogor", "to": "1"}),
    )
    .await;
    reply(&app, &ns, json!({"reply_id": "m-4", "channel": "whatsapp", "instance": "tanpa-balas", "to": "6281", "text": "x"})).await;
    reply(&app, &ns, json!({"reply_id": "m-5", "channel": "whatsapp", "instance": "tg-bogor", "to": "6281", "text": "x"})).await;
    reply(
        &app,
        &ns,
        json!({"reply_id": "m-6", "complaint_id": "c", "text": "x", "extra": 1}),
    )
    .await;
    reply(&app, &ns, json!({"reply_id": "ok-1", "channel": "telegram", "instance": "tg-bogor", "to": "5011", "text": "Halo"})).await;
    wait_status(&app, &ns, "ok-1", "sent").await;

    let all = deliveries(&app, &ns).await;
    let code = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        all.iter()
            .filter(|d| pred(d))
            .map(|d| d["error"]["code"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let anonymous = code(&|d| d["reply_id"] == "");
    assert_eq!(anonymous, ["malformed", "malformed", "missing_reply_id"]);
    for (id, expected) in [
        ("m-1", "unknown_complaint"),
        ("m-2", "unknown_instance"),
        ("m-3", "missing_text"),
        ("m-4", "no_sender"),
        ("m-5", "channel_mismatch"),
        ("m-6", "malformed"),
    ] {
        assert_eq!(code(&|d| d["reply_id"] == id), [expected], "{id}");
    }
    assert!(
        all.iter()
            .filter(|d| d["status"] == "failed")
            .all(|d| d["error"]["permanent"] == true)
    );
    // Every entry is acknowledged: nothing is left pending.
    let mut conn = app.conn().await;
    let pending: redis::streams::StreamPendingReply = conn
        .xpending(format!("test:{ns}:outbound"), "aduan")
        .await
        .expect("xpending");
    assert_eq!(pending.count(), 0);
    assert_eq!(standin.seen().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn telegram_replies_answer_the_message_and_a_blocked_bot_is_an_opt_out() {
    let ns = common::unique("tg");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, "r1", &telegram("tg-bogor", &standin)).await;
    reply(
        &app,
        &ns,
        json!({"reply_id": "tg-1", "channel": "telegram", "instance": "tg-bogor",
        "to": "5011", "text": "Aduan Anda kami terima."}),
    )
    .await;
    wait_status(&app, &ns, "tg-1", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen[0].path, format!("/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(seen[0].body["chat_id"], 5011);

    standin.script([Scripted::status(
        403,
        json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
    )]);
    reply(
        &app,
        &ns,
        json!({"reply_id": "tg-2", "channel": "telegram", "instance": "tg-bogor",
        "to": "5012", "text": "Halo"}),
    )
    .await;
    let mine = wait_status(&app, &ns, "tg-2", "failed").await;
    assert_eq!(mine[0]["error"]["code"], "blocked");
    assert!(
        !mine[0]["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(BOT_TOKEN)
    );
    let events = read_stream(&app, &format!("test:{ns}:events"), "event").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "opt_out");
    assert_eq!(events[0]["to"], "5012");
    assert_eq!(events[0]["reply_id"], "tg-2");

    // A long text goes out in parts under one reply id.
    let long = "kata ".repeat(1500);
    reply(
        &app,
        &ns,
        json!({"reply_id": "tg-3", "channel": "telegram", "instance": "tg-bogor",
        "to": "5013", "text": long}),
    )
    .await;
    let mine = wait_status(&app, &ns, "tg-3", "sent").await;
    let parts = standin
        .seen()
        .into_iter()
        .filter(|s| s.body["chat_id"] == 5013)
        .count();
    assert_eq!(parts, 2);
    assert_eq!(
        mine[0]["provider_message_ids"].as_array().map(Vec::len),
        Some(2)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_dead_replicas_pending_entry_is_taken_over_and_an_uncertain_one_follows_policy() {
    let ns = common::unique("takeover");
    let standin = StandIn::start().await;
    let config = format!(
        "{}[[instances]]\nname = \"tg-ulang\"\nkind = \"telegram\"\nsecret_token = \"s\"\nbot_token = \"{BOT_TOKEN}\"\n\
         [instances.reply]\napi_url = \"{}\"\nresend_on_uncertain = true\n\n",
        telegram("tg-bogor", &standin),
        standin.url()
    );
    let client = redis::Client::open(common::redis_url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let stream = format!("test:{ns}:outbound");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("aduan")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .expect("group");
    let add = |id: &str, instance: &str, to: &str| {
        json!({"reply_id": id, "channel": "telegram", "instance": instance, "to": to, "text": "Halo"}).to_string()
    };
    for (id, instance, to) in [
        ("mati-1", "tg-bogor", "6001"),
        ("ragu-1", "tg-bogor", "6002"),
        ("ragu-2", "tg-ulang", "6003"),
    ] {
        let _: String = conn
            .xadd(&stream, "*", &[("reply", add(id, instance, to))])
            .await
            .expect("xadd");
    }
    // A replica read all three and died; it had claimed the last two and
    // may have sent them.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("aduan")
        .arg("mati")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .expect("read");
    let ids: redis::streams::StreamRangeReply = conn.xrange_all(&stream).await.expect("range");
    for (i, reply_id) in [(1, "ragu-1"), (2, "ragu-2")] {
        let _: () = conn
            .hset_multiple(
                keys(&ns).reply(reply_id),
                &[
                    ("state", "sending"),
                    ("owner", "mati"),
                    ("until", "1"),
                    ("attempt", "1"),
                    ("entry", ids.ids[i].id.as_str()),
                ],
            )
            .await
            .expect("hset");
    }
    let mut app = spawn(&ns, "hidup", &config).await;
    wait_status(&app, &ns, "mati-1", "sent").await;
    // Not `failed`: it may have reached the citizen, and a report may say so.
    let uncertain = wait_status(&app, &ns, "ragu-1", "uncertain").await;
    assert_eq!(uncertain.len(), 1, "{uncertain:#?}");
    assert_eq!(uncertain[0]["error"]["code"], "uncertain");
    assert_eq!(uncertain[0]["error"]["permanent"], true);
    assert_eq!(uncertain[0]["attempt"], 1);
    let mut conn = app.conn().await;
    let state: Option<String> = conn
        .hget(keys(&ns).reply("ragu-1"), "state")
        .await
        .expect("hget");
    assert_eq!(state.as_deref(), Some("uncertain"));
    let resent = wait_status(&app, &ns, "ragu-2", "sent").await;
    assert_eq!(resent.last().expect("sent")["attempt"], 2);
    let chats: Vec<Value> = standin
        .seen()
        .iter()
        .map(|s| s.body["chat_id"].clone())
        .collect();
    assert_eq!(chats.len(), 2, "{chats:?}");
    assert!(chats.contains(&json!(6001)) && chats.contains(&json!(6003)));
    app.stop().await;
}

#[tokio::test]
async fn two_replicas_share_the_stream_without_double_sends() {
    let ns = common::unique("replicas");
    let standin = StandIn::start().await;
    let config = telegram("tg-bogor", &standin);
    let mut a = spawn(&ns, "a", &config).await;
    let mut b = spawn(&ns, "b", &config).await;
    let n = 200;
    for i in 0..n {
        reply(
            &a,
            &ns,
            json!({"reply_id": format!("dua-{i}"), "channel": "telegram",
            "instance": "tg-bogor", "to": format!("{}", 7000 + i), "text": format!("balasan {i}")}),
        )
        .await;
    }
    let seen = standin.wait_for(n, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen_after = standin.seen();
    assert_eq!(seen_after.len(), n, "no reply sent twice");
    let mut texts: Vec<String> = seen
        .iter()
        .map(|s| s.body["text"].as_str().unwrap_or("").to_string())
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), n);
    let sent = deliveries(&a, &ns)
        .await
        .into_iter()
        .filter(|d| d["status"] == "sent")
        .count();
    assert_eq!(sent, n);
    a.stop().await;
    b.stop().await;
}

fn telegram_paced(name: &str, standin: &StandIn, concurrency: usize) -> String {
    format!(
        "[[instances]]\nname = \"{name}\"\nkind = \"telegram\"\nkeep_raw = false\n\
         secret_token = \"rahasia-tg\"\nbot_token = \"{BOT_TOKEN}\"\n\
         [instances.reply]\napi_url = \"{}\"\nconcurrency = {concurrency}\n\n",
        standin.url()
    )
}

#[tokio::test]
async fn a_slow_provider_delays_only_its_own_instance() {
    let ns = common::unique("slow");
    let slow = StandIn::start().await;
    let quick = StandIn::start().await;
    slow.script((0..40).map(|_| {
        Scripted::status(
            200,
            json!({"ok": true, "result": {"message_id": 1, "date": 0,
            "chat": {"id": 1, "type": "private"}}}),
        )
        .delayed(Duration::from_secs(3))
    }));
    let config = format!(
        "{}{}",
        telegram_paced("tg-lambat", &slow, 2),
        telegram_paced("tg-cepat", &quick, 8)
    );
    let mut app = spawn(&ns, "r1", &config).await;
    for i in 0..40 {
        reply(
            &app,
            &ns,
            json!({"reply_id": format!("lambat-{i}"), "channel": "telegram",
            "instance": "tg-lambat", "to": format!("{}", 8000 + i), "text": "Halo"}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    for i in 0..10 {
        reply(
            &app,
            &ns,
            json!({"reply_id": format!("cepat-{i}"), "channel": "telegram",
            "instance": "tg-cepat", "to": format!("{}", 9000 + i), "text": "Halo"}),
        )
        .await;
    }
    quick.wait_for(10, Duration::from_secs(5)).await;
    for i in 0..10 {
        wait_status(&app, &ns, &format!("cepat-{i}"), "sent").await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        slow.seen().len() <= 4,
        "the slow instance keeps to its own slots"
    );
    app.stop().await;
}

#[tokio::test]
async fn messenger_delivery_and_read_reports_find_their_replies() {
    let ns = common::unique("mreport");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, "r1", &messenger("fb-bogor", &standin, false)).await;
    let mut conn = app.conn().await;
    let _: () = conn
        .set(
            keys(&ns).window("fb-bogor", "PSID-4455"),
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .expect("set");
    reply(
        &app,
        &ns,
        json!({"reply_id": "fb-lapor-1", "channel": "facebook", "instance": "fb-bogor",
        "to": "PSID-4455", "text": "Terima kasih, laporan diteruskan ke Dinas PU."}),
    )
    .await;
    let mine = wait_status(&app, &ns, "fb-lapor-1", "sent").await;
    let mid = mine[0]["provider_message_id"]
        .as_str()
        .expect("mid")
        .to_string();
    assert_eq!(standin.seen()[0].body["messaging_type"], "RESPONSE");

    let now = chrono::Utc::now().timestamp_millis();
    let post = |event: Value| {
        let body = json!({"object": "page", "entry": [{"id": "PAGE1", "time": now, "messaging": [event]}]}).to_string();
        let sig = meta_signature(APP_SECRET, body.as_bytes());
        let req = app
            .client
            .post(app.url("/webhooks/messenger/fb-bogor"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .body(body);
        async move { req.send().await.expect("answered").status() }
    };
    let delivered = json!({"sender": {"id": "PSID-4455"}, "recipient": {"id": "PAGE1"}, "timestamp": now,
        "delivery": {"mids": [mid], "watermark": now}});
    assert_eq!(post(delivered).await, 200);
    wait_status(&app, &ns, "fb-lapor-1", "delivered").await;
    let read = json!({"sender": {"id": "PSID-4455"}, "recipient": {"id": "PAGE1"}, "timestamp": now + 1000,
        "read": {"watermark": now + 1000}});
    assert_eq!(post(read).await, 200);
    let mine = wait_status(&app, &ns, "fb-lapor-1", "read").await;
    let read = mine.iter().find(|d| d["status"] == "read").expect("read");
    assert_eq!(read["provider_message_id"], mid.as_str());
    assert_eq!(app.stream_len().await, 0, "reports are not complaints");
    app.stop().await;
}

#[tokio::test]
async fn the_parts_of_a_long_telegram_reply_keep_to_one_message_a_second_per_chat() {
    let ns = common::unique("tg-parts");
    let standin = StandIn::start().await;
    // Telegram's own pace: one message a second per chat.
    let mut app = spawn(&ns, "r1", &telegram_paced("tg-bogor", &standin, 8)).await;
    let text = "Jadwal perbaikan jalan di Kecamatan Cibinong minggu ini. ".repeat(90);
    reply(
        &app,
        &ns,
        json!({"reply_id": "tg-panjang-1", "channel": "telegram", "instance": "tg-bogor",
               "to": "5020", "text": text}),
    )
    .await;
    let mine = wait_status(&app, &ns, "tg-panjang-1", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen.len(), 2, "two parts of at most 4,096 characters");
    assert!(seen.iter().all(|s| s.body["chat_id"] == 5020));
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "the second part came {gap:?} after the first"
    );
    // The sent delivery names both messages.
    let sent = mine.iter().find(|d| d["status"] == "sent").expect("sent");
    assert_eq!(sent["parts"], 2);
    let ids = sent["provider_message_ids"].as_array().expect("ids");
    assert_eq!(ids.len(), 2);
    assert_eq!(sent["provider_message_id"], ids[1]);
    assert_eq!(
        mine.len(),
        1,
        "one attempt, never taken for abandoned while a part waited: {mine:#?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_whatsapp_message_delivered_a_day_late_opens_no_window() {
    let ns = common::unique("late");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, "r1", &whatsapp("wa-jabar", &standin, "")).await;
    // Meta redelivers a message the citizen wrote 25 hours ago.
    let written = chrono::Utc::now().timestamp() - 25 * 3600;
    let complaint = inbound_at(
        &app,
        "wa-jabar",
        "wamid.LATE0001",
        "6281355556666",
        "Got mampet",
        written,
    )
    .await;
    let mut conn = app.conn().await;
    let window: Option<i64> = conn
        .get(keys(&ns).window("wa-jabar", "6281355556666"))
        .await
        .expect("get");
    assert_eq!(
        window,
        Some(written * 1000),
        "the window counts from WhatsApp's time"
    );

    reply(
        &app,
        &ns,
        json!({"reply_id": "telat-1", "complaint_id": complaint, "text": "Petugas menuju lokasi."}),
    )
    .await;
    let mine = wait_status(&app, &ns, "telat-1", "failed").await;
    assert_eq!(mine[0]["error"]["code"], "window_closed");
    assert!(standin.seen().is_empty(), "a closed window calls nobody");
    reply(
        &app,
        &ns,
        json!({"reply_id": "telat-2", "complaint_id": complaint, "text": "Petugas menuju lokasi.",
               "template": {"name": "aduan_update", "language": "id", "params": []}}),
    )
    .await;
    wait_status(&app, &ns, "telat-2", "sent").await;
    assert_eq!(standin.seen()[0].body["type"], "template");

    // A time ahead of the gateway's clock counts as the time received.
    let before = chrono::Utc::now().timestamp_millis();
    inbound_at(
        &app,
        "wa-jabar",
        "wamid.AHEAD0001",
        "6281355557777",
        "Lampu mati",
        chrono::Utc::now().timestamp() + 3600,
    )
    .await;
    let window: Option<i64> = conn
        .get(keys(&ns).window("wa-jabar", "6281355557777"))
        .await
        .expect("get");
    let window = window.expect("a window");
    assert!(
        window >= before && window <= chrono::Utc::now().timestamp_millis(),
        "{window}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_x_dm_the_citizen_does_not_take_is_blocked_with_an_opt_out_event() {
    let ns = common::unique("x-blocked");
    let standin = StandIn::start().await;
    standin.script([Scripted::status(
        403,
        json!({"detail": "You are not permitted to send this Direct Message", "title": "Forbidden",
               "type": "https://api.twitter.com/2/problems/not-authorized-for-resource", "status": 403}),
    )]);
    let config = format!(
        "[[instances]]\nname = \"x-pupr\"\nkind = \"x\"\nkeep_raw = false\n\
         consumer_secret = \"rahasia-x\"\naccount_id = \"1460000000000000001\"\n\
         [instances.reply]\nbase_url = \"{}\"\nbearer_token = \"token-x-rahasia\"\n\n",
        standin.url()
    );
    let mut app = spawn(&ns, "r1", &config).await;
    reply(
        &app,
        &ns,
        json!({"reply_id": "x-dm-1", "channel": "x", "instance": "x-pupr",
               "to": "1460000000000000777", "text": "Laporan Anda kami teruskan ke Dinas PUPR."}),
    )
    .await;
    let mine = wait_status(&app, &ns, "x-dm-1", "failed").await;
    assert_eq!(mine[0]["error"]["code"], "blocked");
    assert_eq!(mine[0]["error"]["permanent"], true);
    assert_eq!(
        standin.seen()[0].path,
        "/2/dm_conversations/with/1460000000000000777/messages"
    );
    let events = read_stream(&app, &format!("test:{ns}:events"), "event").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["type"], "opt_out");
    assert_eq!(events[0]["code"], "blocked");
    assert_eq!(events[0]["channel"], "x");
    assert_eq!(events[0]["to"], "1460000000000000777");
    assert_eq!(events[0]["reply_id"], "x-dm-1");
    app.stop().await;
}
