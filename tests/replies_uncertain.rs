//! Replies whose outcome is not known at once, end to end: a send whose
//! answer is lost after the request reached the provider is `uncertain`
//! (not `failed`, not sent again), and the provider's later report, which
//! echoes our reference of the message, settles it; the provider id of each
//! part is indexed as that part goes, so a report of an early part finds
//! its reply while the later parts are still being sent.

mod common;

use std::time::Duration;

use aduan_adapter::testkit::meta_signature;
use common::TestApp;
use common::standin::{HangUp, Scripted, StandIn};
use redis::AsyncCommands;
use serde_json::{Value, json};

const APP_SECRET: &str = "rahasia-aplikasi-meta";
const PHONE_ID: &str = "1098765";
const CITIZEN: &str = "6281234567890";

/// The `[outbound]` section for namespace `ns`: quick retries, and a
/// takeover slow enough never to race a send that is merely slow.
fn outbound(ns: &str) -> String {
    format!(
        "[outbound]\nstream = \"test:{ns}:outbound\"\ndelivery_stream = \"test:{ns}:delivery\"\n\
         events_stream = \"test:{ns}:events\"\nconsumer = \"r1\"\nclaim_idle_seconds = 10\n\
         backoff_base_ms = 100\nbackoff_max_ms = 400\nsend_timeout_ms = 3000\n\n"
    )
}

fn whatsapp(name: &str, base_url: &str) -> String {
    format!(
        "[[instances]]\nname = \"{name}\"\nkind = \"whatsapp\"\nkeep_raw = false\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"vt\"\n\
         [instances.reply]\naccess_token = \"token-wa\"\nphone_number_id = \"{PHONE_ID}\"\n\
         base_url = \"{base_url}\"\nrate_per_second = 1000\n\n"
    )
}

fn keys(ns: &str) -> aduan::redis::Keys {
    aduan::redis::Keys::new(&format!("test:{ns}"), &format!("test:{ns}:complaints"))
}

/// A gateway whose WhatsApp instance `name` sends to `base_url`, with the
/// citizen's window open. (Metrics are the test process's: an instance
/// name of its own keeps a test's counts apart.)
async fn spawn(ns: &str, name: &str, base_url: &str) -> TestApp {
    let config = format!("{}{}", outbound(ns), whatsapp(name, base_url));
    let app = common::spawn_replica(&config, ns, "r1").await;
    let mut conn = app.conn().await;
    let _: () = conn
        .set(
            keys(ns).window(name, CITIZEN),
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .expect("set");
    app
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

async fn deliveries(app: &TestApp, ns: &str, reply_id: &str) -> Vec<Value> {
    let mut conn = app.conn().await;
    let reply: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("test:{ns}:delivery"))
        .await
        .expect("xrange");
    reply
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("delivery"))
        .map(|s| serde_json::from_str::<Value>(&s).expect("JSON"))
        .filter(|d| d["reply_id"] == reply_id)
        .collect()
}

/// Waits until `reply_id` has a delivery with `status`; returns all of its deliveries.
async fn wait_status(app: &TestApp, ns: &str, reply_id: &str, status: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mine = deliveries(app, ns, reply_id).await;
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

async fn state(app: &TestApp, ns: &str, reply_id: &str) -> Option<String> {
    let mut conn = app.conn().await;
    conn.hget(keys(ns).reply(reply_id), "state")
        .await
        .expect("hget")
}

/// Posts WhatsApp `statuses` to the webhook of instance `name`, signed.
async fn statuses(app: &TestApp, name: &str, statuses: Value) {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "6281100001111", "phone_number_id": PHONE_ID},
                  "statuses": statuses}}]}]})
    .to_string();
    let res = app
        .client
        .post(app.url(&format!("/webhooks/whatsapp/{name}")))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            meta_signature(APP_SECRET, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_send_whose_answer_is_lost_is_uncertain_until_a_report_settles_it() {
    let ns = common::unique("lost");
    // WhatsApp takes the request, then the connection drops unanswered.
    let provider = HangUp::start().await;
    let mut app = spawn(&ns, "wa-hilang", &provider.url()).await;
    let entry = json!({"reply_id": "hilang-1", "channel": "whatsapp", "instance": "wa-hilang",
                       "to": CITIZEN, "text": "Petugas PDAM sudah menuju lokasi."});
    reply(&app, &ns, entry.clone()).await;
    let mine = wait_status(&app, &ns, "hilang-1", "uncertain").await;
    // Longer than every backoff: nothing more is sent, nothing is failed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mine_later = deliveries(&app, &ns, "hilang-1").await;
    assert_eq!(mine_later, mine, "one outcome, no retry");
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let uncertain = &mine[0];
    assert_eq!(uncertain["error"]["code"], "uncertain");
    assert_eq!(uncertain["error"]["permanent"], true);
    assert_eq!(uncertain["attempt"], 1);
    assert_eq!(uncertain["provider_message_id"], Value::Null);
    assert!(
        uncertain["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("answer was lost")),
        "{uncertain:#?}"
    );
    assert_eq!(
        state(&app, &ns, "hilang-1").await.as_deref(),
        Some("uncertain")
    );
    // The same reply appended again is not sent either.
    reply(&app, &ns, entry).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies = provider.bodies();
    assert_eq!(bodies.len(), 1, "sent once: {bodies:#?}");
    // The request carried our reference for WhatsApp to echo.
    assert_eq!(bodies[0]["biz_opaque_callback_data"], "hilang-1.0");
    assert_eq!(
        bodies[0]["text"]["body"],
        "Petugas PDAM sudah menuju lokasi."
    );

    // WhatsApp's report names the message by the reference: it was delivered.
    statuses(
        &app,
        "wa-hilang",
        json!([{"id": "wamid.HILANG01", "status": "delivered", "timestamp": "1795400000",
                "recipient_id": CITIZEN, "biz_opaque_callback_data": "hilang-1.0"}]),
    )
    .await;
    let mine = wait_status(&app, &ns, "hilang-1", "delivered").await;
    let delivered = mine
        .iter()
        .find(|d| d["status"] == "delivered")
        .expect("delivered");
    assert_eq!(delivered["provider_message_id"], "wamid.HILANG01");
    assert_eq!(delivered["instance"], "wa-hilang");
    assert_eq!(delivered["channel"], "whatsapp");
    assert_eq!(delivered["to"], CITIZEN);
    assert_eq!(delivered["attempt"], 0);
    assert_eq!(delivered["entry_id"], Value::Null);
    assert_eq!(state(&app, &ns, "hilang-1").await.as_deref(), Some("sent"));

    // From now on the provider id alone finds the reply.
    statuses(
        &app,
        "wa-hilang",
        json!([{"id": "wamid.HILANG01", "status": "read", "timestamp": "1795400060",
                "recipient_id": CITIZEN}]),
    )
    .await;
    let mine = wait_status(&app, &ns, "hilang-1", "read").await;
    let statuses: Vec<&str> = mine.iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(statuses, ["uncertain", "delivered", "read"]);
    let metrics = app.metrics().await;
    assert_eq!(
        common::counter(
            &metrics,
            "aduan_replies_total",
            &[("instance", "wa-hilang"), ("outcome", "uncertain")]
        ),
        1.0
    );
    assert_eq!(
        common::counter(
            &metrics,
            "aduan_delivery_reports_total",
            &[("instance", "wa-hilang"), ("status", "unmatched")]
        ),
        0.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_report_that_is_not_about_the_last_part_leaves_the_reply_uncertain() {
    let ns = common::unique("lost-part");
    let provider = HangUp::start().await;
    let mut app = spawn(&ns, "wa-bagian", &provider.url()).await;
    // Two parts; the first one's answer is lost, so the second never goes.
    let text = "Rincian jadwal pemeliharaan jaringan air bersih di wilayah Bogor. ".repeat(70);
    reply(
        &app,
        &ns,
        json!({"reply_id": "hilang-2", "channel": "whatsapp", "instance": "wa-bagian",
               "to": CITIZEN, "text": text}),
    )
    .await;
    wait_status(&app, &ns, "hilang-2", "uncertain").await;
    assert_eq!(provider.bodies().len(), 1);
    statuses(
        &app,
        "wa-bagian",
        json!([{"id": "wamid.BAGIAN0", "status": "delivered", "timestamp": "1795400000",
                "recipient_id": CITIZEN, "biz_opaque_callback_data": "hilang-2.0"}]),
    )
    .await;
    let mine = wait_status(&app, &ns, "hilang-2", "delivered").await;
    assert_eq!(mine.len(), 2, "{mine:#?}");
    // The report is written, but the second part was never sent.
    assert_eq!(
        state(&app, &ns, "hilang-2").await.as_deref(),
        Some("uncertain")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_report_of_an_early_part_finds_its_reply_while_the_rest_is_sent() {
    let ns = common::unique("early");
    let provider = StandIn::start().await;
    let accepted = |id: &str| {
        Scripted::status(
            200,
            json!({"messaging_product": "whatsapp", "contacts": [{"input": CITIZEN, "wa_id": CITIZEN}],
                   "messages": [{"id": id}]}),
        )
    };
    // The second part's answer takes two seconds.
    provider.script([
        accepted("wamid.AWAL0"),
        accepted("wamid.AWAL1").delayed(Duration::from_secs(2)),
    ]);
    let mut app = spawn(&ns, "wa-awal", &provider.url()).await;
    let text = "Rincian jadwal pemeliharaan jaringan air bersih di wilayah Bogor. ".repeat(70);
    reply(
        &app,
        &ns,
        json!({"reply_id": "awal-1", "channel": "whatsapp", "instance": "wa-awal",
               "to": CITIZEN, "text": text}),
    )
    .await;
    let seen = provider.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(seen[0].body["biz_opaque_callback_data"], "awal-1.0");
    assert_eq!(seen[1].body["biz_opaque_callback_data"], "awal-1.1");
    // WhatsApp reports the first part, without our reference, before the
    // second part's answer is back.
    statuses(
        &app,
        "wa-awal",
        json!([{"id": "wamid.AWAL0", "status": "delivered", "timestamp": "1795400000",
                "recipient_id": CITIZEN}]),
    )
    .await;
    let mine = wait_status(&app, &ns, "awal-1", "delivered").await;
    assert!(
        !mine.iter().any(|d| d["status"] == "sent"),
        "the report came while the reply was still being sent: {mine:#?}"
    );
    let delivered = mine
        .iter()
        .find(|d| d["status"] == "delivered")
        .expect("delivered");
    assert_eq!(delivered["provider_message_id"], "wamid.AWAL0");
    let mine = wait_status(&app, &ns, "awal-1", "sent").await;
    let sent = mine.iter().find(|d| d["status"] == "sent").expect("sent");
    assert_eq!(sent["parts"], 2);
    assert_eq!(
        sent["provider_message_ids"],
        json!(["wamid.AWAL0", "wamid.AWAL1"])
    );
    assert_eq!(sent["provider_message_id"], "wamid.AWAL1");
    app.stop().await;
}
