//! SMS and email replies end to end: a citizen's message arrives on a real
//! webhook (or at the SMTP listener), the core system appends a reply to
//! the outbound stream of a real Redis, and the gateway sends it to a
//! stand-in of Twilio, Vonage, Infobip or a Kannel-style gateway (or to an
//! SMTP server on loopback, aiosmtpd), recording every outcome on the
//! delivery stream. The providers' status callbacks and delivery receipts
//! come back on the instances' own webhooks, authenticated as their inbound
//! messages are; opt-out words become events, never complaints.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use aduan_adapter::testkit::{TWILIO_SIGNATURE_HEADER, basic_auth, twilio_signature};
use aduan_adapter::verify::hmac_sha256;
use common::TestApp;
use common::private_redis::PrivateRedis;
use common::standin::{Scripted, Seen, StandIn};
use redis::AsyncCommands;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// Where the providers reach this gateway (signatures are over it).
const PUBLIC: &str = "https://lapor.example.go.id";
/// The hotline citizens text.
const HOTLINE: &str = "+6281100017080";
const CITIZEN: &str = "+6281234567890";

const TWILIO_TOKEN: &str = "twilio-token-jabar-2026";
const TWILIO_SID: &str = "AC5f0d3e1b2a4c6e8f0a1b3c5d7e9f1a2b";
const VONAGE_SIGNATURE_SECRET: &str = "vonage-signature-secret-jabar-2026";
const VONAGE_KEY: &str = "a1b2c3d4";
const VONAGE_SECRET: &str = "vonage-api-secret-2026";
const INFOBIP_USER: &str = "infobip";
const INFOBIP_PASSWORD: &str = "infobip-basic-password-2026";
const INFOBIP_KEY: &str = "infobip-api-key-2026";
const KANNEL_SECRET: &str = "kannel-shared-secret-2026";
const KANNEL_PASSWORD: &str = "kannel-sendsms-password";

// ---------------------------------------------------------------------------
// Configuration

/// The `[outbound]` section for namespace `ns`, with quick retries.
fn outbound(ns: &str) -> String {
    format!(
        "[outbound]\nstream = \"test:{ns}:outbound\"\ndelivery_stream = \"test:{ns}:delivery\"\n\
         events_stream = \"test:{ns}:events\"\nconsumer = \"r1\"\nclaim_idle_seconds = 1\n\
         backoff_base_ms = 100\nbackoff_max_ms = 400\nsend_timeout_ms = 8000\n\n"
    )
}

fn twilio(standin: &StandIn) -> String {
    format!(
        r#"
[[instances]]
name = "twilio-jabar"
kind = "twilio"
keep_raw = false
auth_token = "{TWILIO_TOKEN}"
public_url = "{PUBLIC}"

[instances.reply]
account_sid = "{TWILIO_SID}"
from = "{HOTLINE}"
base_url = "{url}"
status_callback = "{PUBLIC}/webhooks/twilio/twilio-jabar"
rate_per_second = 1000
"#,
        url = standin.url()
    )
}

fn vonage(standin: &StandIn) -> String {
    format!(
        r#"
[[instances]]
name = "vonage-jabar"
kind = "vonage"
keep_raw = false
signature_secret = "{VONAGE_SIGNATURE_SECRET}"
signature_method = "sha256"

[instances.reply]
api_key = "{VONAGE_KEY}"
api_secret = "{VONAGE_SECRET}"
from = "{HOTLINE}"
base_url = "{url}"
callback = "{PUBLIC}/webhooks/vonage/vonage-jabar"
rate_per_second = 1000
"#,
        url = standin.url()
    )
}

fn infobip(standin: &StandIn) -> String {
    format!(
        r#"
[[instances]]
name = "infobip-jabar"
kind = "infobip"
keep_raw = false
username = "{INFOBIP_USER}"
secret = "{INFOBIP_PASSWORD}"

[instances.reply]
api_key = "{INFOBIP_KEY}"
base_url = "{url}"
from = "PDAMBOGOR"
notify_url = "{PUBLIC}/webhooks/infobip/infobip-jabar"
rate_per_second = 1000
"#,
        url = standin.url()
    )
}

/// The Kannel `sendsms` request and the DLR it asks for, back to the
/// instance's route with its query secret and Kannel's `%d`.
fn kannel_dlr_url() -> String {
    format!("{PUBLIC}/webhooks/sms/sms-kannel?secret={KANNEL_SECRET}&status=%d&id={{id}}")
}

fn kannel(standin: &StandIn) -> String {
    format!(
        r#"
[[instances]]
name = "sms-kannel"
kind = "sms"
keep_raw = false
auth = "query"
secret = "{KANNEL_SECRET}"

[instances.reply]
url = "{url}/cgi-bin/sendsms?username=aduan&password={{secret}}&from={{from}}&to={{to}}&text={{text}}&dlr-mask=3&dlr-url={{dlr_url}}"
secret = "{KANNEL_PASSWORD}"
from = "1708"
success_body_contains = "Accepted"
dlr_url = "{dlr}"
rate_per_second = 1000
"#,
        url = standin.url(),
        dlr = kannel_dlr_url(),
    )
}

async fn spawn(ns: &str, instances: &str) -> TestApp {
    common::spawn_replica(&format!("{}{instances}", outbound(ns)), ns, "r1").await
}

// ---------------------------------------------------------------------------
// Streams

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

/// Every entry of `key`: its fields.
async fn stream(app: &TestApp, key: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut conn = app.conn().await;
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(key).await.expect("xrange");
    reply
        .ids
        .iter()
        .map(|e| {
            e.map
                .iter()
                .map(|(k, v)| {
                    let s: String = redis::from_redis_value(v.clone()).expect("string field");
                    (k.clone(), s)
                })
                .collect()
        })
        .collect()
}

async fn deliveries(app: &TestApp, ns: &str) -> Vec<Value> {
    stream(app, &format!("test:{ns}:delivery"))
        .await
        .iter()
        .map(|f| {
            let doc: Value = serde_json::from_str(&f["delivery"]).expect("delivery is JSON");
            // The entry's own fields say what the document says.
            assert_eq!(
                doc["reply_id"].as_str(),
                f.get("reply_id").map(String::as_str)
            );
            assert_eq!(doc["status"].as_str(), f.get("status").map(String::as_str));
            assert_eq!(doc["schema"], "aduan.delivery.v1");
            doc
        })
        .collect()
}

/// The events stream: each entry's `type` and `event`.
async fn events(app: &TestApp, ns: &str) -> Vec<(String, Value)> {
    stream(app, &format!("test:{ns}:events"))
        .await
        .iter()
        .map(|f| {
            (
                f["type"].clone(),
                serde_json::from_str(&f["event"]).expect("event is JSON"),
            )
        })
        .collect()
}

fn of(all: &[Value], reply_id: &str) -> Vec<Value> {
    all.iter()
        .filter(|d| d["reply_id"] == reply_id)
        .cloned()
        .collect()
}

/// Waits until `reply_id` has a delivery with `status`, and returns all of its deliveries.
async fn wait_status(app: &TestApp, ns: &str, reply_id: &str, status: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mine = of(&deliveries(app, ns).await, reply_id);
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

/// Waits until the events stream has `n` entries.
async fn wait_events(app: &TestApp, ns: &str, n: usize) -> Vec<(String, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let all = events(app, ns).await;
        if all.len() >= n {
            return all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} events, expected {n}: {all:#?}",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The one delivery of `mine` with `status`.
fn one<'a>(mine: &'a [Value], status: &str) -> &'a Value {
    let found: Vec<&Value> = mine.iter().filter(|d| d["status"] == status).collect();
    assert_eq!(found.len(), 1, "one `{status}`: {mine:#?}");
    found[0]
}

/// The id of the complaint of `instance` from the citizen at `phone`.
async fn complaint_of(app: &TestApp, instance: &str, phone: &str) -> String {
    let complaints = app.complaints().await;
    let found: Vec<&Value> = complaints
        .iter()
        .filter(|c| c["instance"] == instance && c["sender"]["phone"] == phone)
        .collect();
    assert_eq!(found.len(), 1, "{complaints:#?}");
    found[0]["id"].as_str().expect("id").to_string()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The sorted names of a form's fields.
fn names(pairs: &[(String, String)]) -> Vec<&str> {
    let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names
}

/// Lets the worker run long enough to have made any request it would make.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

// ---------------------------------------------------------------------------
// Twilio

const TWILIO_PATH: &str = "/webhooks/twilio/twilio-jabar";

fn twilio_sign(params: &[(&str, &str)]) -> String {
    twilio_signature(TWILIO_TOKEN, &format!("{PUBLIC}{TWILIO_PATH}"), params)
}

/// Posts `params` to the Twilio route with `signature`, and returns the status.
async fn twilio_post(app: &TestApp, params: &[(&str, &str)], signature: Option<&str>) -> u16 {
    let mut req = app
        .client
        .post(app.url(TWILIO_PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(params));
    if let Some(sig) = signature {
        req = req.header(TWILIO_SIGNATURE_HEADER, sig);
    }
    let res = req.send().await.expect("the Twilio route answers");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("text/xml"),
        "TwiML: {content_type}"
    );
    status
}

/// A signed inbound SMS from `from`, as Twilio posts it; asserts it is accepted.
async fn twilio_sms(app: &TestApp, sid: &str, from: &str, body: &str) {
    let params = [
        ("AccountSid", TWILIO_SID),
        ("ApiVersion", "2010-04-01"),
        ("Body", body),
        ("From", from),
        ("FromCountry", "ID"),
        ("MessageSid", sid),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsMessageSid", sid),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("To", HOTLINE),
    ];
    assert_eq!(
        twilio_post(app, &params, Some(&twilio_sign(&params))).await,
        200
    );
}

/// A status callback about message `sid`, as Twilio posts it.
fn twilio_callback<'a>(
    sid: &'a str,
    status: &'a str,
    error: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("AccountSid", TWILIO_SID),
        ("ApiVersion", "2010-04-01"),
        ("From", HOTLINE),
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("To", CITIZEN),
    ];
    if let Some(code) = error {
        params.push(("ErrorCode", code));
    }
    params
}

fn twilio_messages_path() -> String {
    format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
}

#[tokio::test]
async fn twilio_replies_and_their_signed_status_callbacks() {
    let ns = common::unique("sms-twilio");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, &twilio(&standin)).await;
    twilio_sms(
        &app,
        "SM1c3e5a7b9d1f3a5c7e9b1d3f5a7c9e1b",
        CITIZEN,
        "LAPOR Jalan berlubang di Jl. Raya Bogor km 31, dua motor jatuh minggu ini",
    )
    .await;
    let complaint = complaint_of(&app, "twilio-jabar", CITIZEN).await;

    let text = "Bapak/Ibu, laporan jalan berlubang di Jl. Raya Bogor km 31 sudah kami teruskan ke Dinas PUPR. Perbaikan pekan ini.";
    reply(
        &app,
        &ns,
        json!({"reply_id": "tw-balas-1", "complaint_id": complaint, "text": text}),
    )
    .await;
    let mine = wait_status(&app, &ns, "tw-balas-1", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, twilio_messages_path());
    assert_eq!(
        req.header("authorization"),
        Some(basic_auth(TWILIO_SID, TWILIO_TOKEN).as_str())
    );
    assert!(
        req.header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")),
        "{:?}",
        req.headers
    );
    assert_eq!(names(&req.form), ["Body", "From", "StatusCallback", "To"]);
    assert_eq!(req.form_value("To"), Some(CITIZEN));
    assert_eq!(req.form_value("From"), Some(HOTLINE));
    assert_eq!(req.form_value("Body"), Some(text));
    // The callback URL names the reply and part: our reference.
    assert_eq!(
        req.form_value("StatusCallback"),
        Some(format!("{PUBLIC}{TWILIO_PATH}?reply_id=tw-balas-1&part=0").as_str())
    );

    let sent = one(&mine, "sent");
    let sid = req.answered.1["sid"].as_str().expect("the stand-in's sid");
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert_eq!(sent["provider_message_id"], sid);
    assert_eq!(sent["complaint_id"], complaint.as_str());
    assert_eq!(sent["instance"], "twilio-jabar");
    assert_eq!(sent["channel"], "sms");
    assert_eq!(sent["to"], CITIZEN);
    assert_eq!(sent["attempt"], 1);
    assert!(sent["entry_id"].is_string());
    assert_eq!(sent["error"], Value::Null);

    // Twilio reports the message delivered, signed, on the instance's route.
    let delivered = twilio_callback(sid, "delivered", None);
    let signature = twilio_sign(&delivered);
    assert_eq!(twilio_post(&app, &delivered, Some(&signature)).await, 200);
    let mine = wait_status(&app, &ns, "tw-balas-1", "delivered").await;
    let report = one(&mine, "delivered");
    assert_eq!(report["provider_message_id"], sid);
    assert_eq!(report["complaint_id"], complaint.as_str());
    assert_eq!(report["instance"], "twilio-jabar");
    assert_eq!(report["to"], CITIZEN);
    assert_eq!(report["attempt"], 0);
    assert_eq!(report["entry_id"], Value::Null);
    assert_eq!(report["error"], Value::Null);
    assert_eq!(deliveries(&app, &ns).await.len(), 2);

    // Forgeries: the same callback with a signature changed by one
    // character, a body changed after signing, no signature at all.
    let mut forged = signature.clone();
    let swapped = if forged.starts_with('A') { "B" } else { "A" };
    forged.replace_range(0..1, swapped);
    assert_eq!(twilio_post(&app, &delivered, Some(&forged)).await, 403);
    let failed = twilio_callback(sid, "failed", Some("30008"));
    assert_eq!(twilio_post(&app, &failed, Some(&signature)).await, 403);
    assert_eq!(twilio_post(&app, &delivered, None).await, 403);
    settle().await;
    assert_eq!(
        deliveries(&app, &ns).await.len(),
        2,
        "refused callbacks write no delivery"
    );
    assert_eq!(app.stream_len().await, 1, "nor any complaint");
    assert!(events(&app, &ns).await.is_empty());

    // A failed message: the report carries Twilio's error code.
    reply(
        &app,
        &ns,
        json!({"reply_id": "tw-balas-2", "complaint_id": complaint,
               "text": "Mohon kirimkan foto lokasi jalan berlubang."}),
    )
    .await;
    wait_status(&app, &ns, "tw-balas-2", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen.len(), 2);
    let sid2 = seen[1].answered.1["sid"].as_str().expect("sid").to_string();
    assert_ne!(sid2, sid);
    // Twilio calls the per-message StatusCallback, query and all, and signs that URL.
    let callback = seen[1]
        .form_value("StatusCallback")
        .expect("a StatusCallback")
        .to_string();
    assert_eq!(
        callback,
        format!("{PUBLIC}{TWILIO_PATH}?reply_id=tw-balas-2&part=0")
    );
    let path = callback.strip_prefix(PUBLIC).expect("under the public URL");
    let failed = twilio_callback(&sid2, "failed", Some("30003"));
    let signature = twilio_signature(TWILIO_TOKEN, &callback, &failed);
    let res = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(TWILIO_SIGNATURE_HEADER, signature)
        .body(encode(&failed))
        .send()
        .await
        .expect("the Twilio route answers");
    assert_eq!(res.status(), 200);
    let mine = wait_status(&app, &ns, "tw-balas-2", "failed").await;
    let report = one(&mine, "failed");
    assert_eq!(report["provider_message_id"], sid2.as_str());
    assert_eq!(report["error"]["code"], "30003");
    assert_eq!(report["error"]["permanent"], true);
    assert_eq!(report["attempt"], 0);
    assert_eq!(report["entry_id"], Value::Null);
    // The first reply's deliveries are untouched by the second's report.
    let first = of(&deliveries(&app, &ns).await, "tw-balas-1");
    let statuses: Vec<&str> = first.iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    assert_eq!(app.stream_len().await, 1);
    app.stop().await;
}

#[tokio::test]
async fn twilio_21610_is_an_opt_out_that_holds_for_later_replies() {
    let ns = common::unique("sms-21610");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, &twilio(&standin)).await;
    let number = "+6285712345678";
    twilio_sms(
        &app,
        "SM2d4f6b8c0e2a4c6e8b0d2f4a6c8e0b2d",
        number,
        "Sampah menumpuk di Pasar Anyar sudah seminggu",
    )
    .await;
    let complaint = complaint_of(&app, "twilio-jabar", number).await;

    standin.script([Scripted::status(
        400,
        json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient",
               "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}),
    )]);
    reply(
        &app,
        &ns,
        json!({"reply_id": "tw-stop-1", "complaint_id": complaint,
               "text": "Sampah di Pasar Anyar diangkut besok pagi."}),
    )
    .await;
    let mine = wait_status(&app, &ns, "tw-stop-1", "failed").await;
    assert_eq!(mine.len(), 1, "no retry: {mine:#?}");
    assert_eq!(mine[0]["error"]["code"], "opted_out");
    assert_eq!(mine[0]["error"]["permanent"], true);
    assert!(
        mine[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("21610") && !m.contains(TWILIO_TOKEN)),
        "{mine:#?}"
    );
    assert_eq!(standin.seen().len(), 1);

    let all = wait_events(&app, &ns, 1).await;
    assert_eq!(all.len(), 1);
    let (kind, event) = &all[0];
    assert_eq!(kind, "opt_out");
    assert_eq!(event["type"], "opt_out");
    assert_eq!(event["instance"], "twilio-jabar");
    assert_eq!(event["channel"], "sms");
    assert_eq!(event["to"], number);
    assert_eq!(event["code"], "opted_out");
    assert_eq!(event["reply_id"], "tw-stop-1");
    assert_eq!(event["complaint_id"], complaint.as_str());

    // Later replies to the number fail at once, without a request.
    reply(
        &app,
        &ns,
        json!({"reply_id": "tw-stop-2", "complaint_id": complaint, "text": "Halo lagi"}),
    )
    .await;
    reply(
        &app,
        &ns,
        json!({"reply_id": "tw-stop-3", "channel": "sms", "instance": "twilio-jabar",
               "to": number, "text": "Halo lagi"}),
    )
    .await;
    for id in ["tw-stop-2", "tw-stop-3"] {
        let mine = wait_status(&app, &ns, id, "failed").await;
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0]["error"]["code"], "opted_out", "{id}");
        assert_eq!(mine[0]["error"]["permanent"], true);
    }
    settle().await;
    assert_eq!(standin.seen().len(), 1, "nothing more was sent to Twilio");
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Opt-out and opt-in words

/// A Kannel inbound SMS (`GET`, secret in the query); returns the status.
async fn kannel_sms(app: &TestApp, from: &str, text: &str) -> u16 {
    let query = encode(&[
        ("secret", KANNEL_SECRET),
        ("from", from),
        ("to", "1708"),
        ("text", text),
    ]);
    app.client
        .get(app.url(&format!("/webhooks/sms/sms-kannel?{query}")))
        .send()
        .await
        .expect("the SMS route answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn stop_and_berhenti_are_opt_outs_and_daftar_opts_back_in() {
    let ns = common::unique("sms-words");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, &format!("{}{}", twilio(&standin), kannel(&standin))).await;
    let (siti, agus) = ("+6281377788899", "+6281377788800");

    twilio_sms(&app, "SM3e5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e", siti, "STOP").await;
    let all = wait_events(&app, &ns, 1).await;
    assert_eq!(all[0].0, "opt_out");
    assert_eq!(all[0].1["type"], "opt_out");
    assert_eq!(all[0].1["instance"], "twilio-jabar");
    assert_eq!(all[0].1["channel"], "sms");
    assert_eq!(all[0].1["to"], siti);
    assert_eq!(all[0].1["keyword"], "STOP");
    reply(
        &app,
        &ns,
        json!({"reply_id": "kata-1", "channel": "sms", "instance": "twilio-jabar",
               "to": siti, "text": "Ibu Siti, laporan Anda sedang kami proses."}),
    )
    .await;
    let mine = wait_status(&app, &ns, "kata-1", "failed").await;
    assert_eq!(mine[0]["error"]["code"], "opted_out");
    assert_eq!(mine[0]["error"]["permanent"], true);

    // Lower case, on another provider's route.
    assert_eq!(kannel_sms(&app, agus, " berhenti ").await, 200);
    let all = wait_events(&app, &ns, 2).await;
    assert_eq!(all[1].0, "opt_out");
    assert_eq!(all[1].1["instance"], "sms-kannel");
    assert_eq!(all[1].1["to"], agus);
    assert_eq!(all[1].1["keyword"], "BERHENTI");
    reply(
        &app,
        &ns,
        json!({"reply_id": "kata-2", "channel": "sms", "instance": "sms-kannel",
               "to": agus, "text": "Pak Agus, laporan Anda sudah kami terima."}),
    )
    .await;
    let mine = wait_status(&app, &ns, "kata-2", "failed").await;
    assert_eq!(mine[0]["error"]["code"], "opted_out");
    settle().await;
    assert!(standin.seen().is_empty(), "{:#?}", standin.seen());

    // DAFTAR: replies go out again.
    twilio_sms(&app, "SM4f6b8d0f2a4c6e8a0c2e4b6d8f0a2c4e", siti, "Daftar").await;
    let all = wait_events(&app, &ns, 3).await;
    assert_eq!(all[2].0, "opt_in");
    assert_eq!(all[2].1["type"], "opt_in");
    assert_eq!(all[2].1["to"], siti);
    assert_eq!(all[2].1["keyword"], "DAFTAR");
    reply(
        &app,
        &ns,
        json!({"reply_id": "kata-3", "channel": "sms", "instance": "twilio-jabar",
               "to": siti, "text": "Ibu Siti, terima kasih telah mendaftar kembali."}),
    )
    .await;
    wait_status(&app, &ns, "kata-3", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, twilio_messages_path());
    assert_eq!(seen[0].form_value("To"), Some(siti));

    // None of the words was a complaint.
    assert_eq!(app.stream_len().await, 0);
    assert_eq!(events(&app, &ns).await.len(), 3);
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Opt-outs and receipts during a Redis outage

/// A gateway on a Redis of the test's own, which it can stop and start.
async fn spawn_on(redis: &PrivateRedis, ns: &str, instances: &str) -> TestApp {
    common::spawn_app_with(&format!("{}{instances}", outbound(ns)), &redis.url(), ns).await
}

/// Waits until Redis answers and the spool is empty.
async fn wait_drained(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.readiness().await["state"] != "ready" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spool did not drain: {}",
            app.readiness().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Twilio does not retry a refused webhook by default: words sent while
/// Redis is away are answered `200` and kept, and hold once it is back.
#[tokio::test]
async fn opt_out_words_in_an_outage_are_kept_and_applied_in_order() {
    let ns = common::unique("sms-outage-words");
    let standin = StandIn::start().await;
    let mut redis = PrivateRedis::start().await;
    let mut app = spawn_on(&redis, &ns, &twilio(&standin)).await;
    let (siti, agus) = ("+6281377788899", "+6281377788800");

    redis.kill();
    // `twilio_sms` asserts the 200 and the TwiML.
    twilio_sms(&app, "SM5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5a", siti, "BERHENTI").await;
    twilio_sms(&app, "SM6b8d0f2a4c6e8a0c2e4b6d8f0a2c4e6b", agus, "STOP").await;
    twilio_sms(&app, "SM7c9e1b3d5f7a9c1e3b5d7f9a1c3e5a7c", agus, "DAFTAR").await;
    redis.restart().await;
    wait_drained(&app).await;

    let all = wait_events(&app, &ns, 3).await;
    let seen: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|(kind, e)| {
            (
                kind.as_str(),
                e["to"].as_str().unwrap_or(""),
                e["keyword"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("opt_out", siti, "BERHENTI"),
            ("opt_out", agus, "STOP"),
            ("opt_in", agus, "DAFTAR"),
        ]
    );
    // Siti opted out: a reply after the outage is not sent. Agus opted back in.
    for (id, to) in [("kata-luar-1", siti), ("kata-luar-2", agus)] {
        reply(
            &app,
            &ns,
            json!({"reply_id": id, "channel": "sms", "instance": "twilio-jabar",
                   "to": to, "text": "Laporan Anda sedang kami proses."}),
        )
        .await;
    }
    let mine = wait_status(&app, &ns, "kata-luar-1", "failed").await;
    assert_eq!(mine[0]["error"]["code"], "opted_out");
    wait_status(&app, &ns, "kata-luar-2", "sent").await;
    let sent = standin.seen();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].form_value("To"), Some(agus));
    assert_eq!(app.stream_len().await, 0, "no word was a complaint");
    app.stop().await;
}

#[tokio::test]
async fn a_receipt_in_an_outage_is_applied_when_redis_is_back() {
    let ns = common::unique("sms-outage-receipt");
    let standin = StandIn::start().await;
    let mut redis = PrivateRedis::start().await;
    let mut app = spawn_on(&redis, &ns, &twilio(&standin)).await;
    twilio_sms(
        &app,
        "SM8d0f2a4c6e8a0c2e4b6d8f0a2c4e6b8d",
        CITIZEN,
        "Sampah menumpuk di Pasar Anyar sudah seminggu",
    )
    .await;
    let complaint = complaint_of(&app, "twilio-jabar", CITIZEN).await;
    reply(
        &app,
        &ns,
        json!({"reply_id": "tw-luar-1", "complaint_id": complaint,
               "text": "Sampah di Pasar Anyar diangkut besok pagi."}),
    )
    .await;
    wait_status(&app, &ns, "tw-luar-1", "sent").await;
    let seen = standin.seen();
    let sid = seen[0].answered.1["sid"].as_str().expect("sid").to_string();

    redis.kill();
    let delivered = twilio_callback(&sid, "delivered", None);
    assert_eq!(
        twilio_post(&app, &delivered, Some(&twilio_sign(&delivered))).await,
        200
    );
    redis.restart().await;
    wait_drained(&app).await;
    let mine = wait_status(&app, &ns, "tw-luar-1", "delivered").await;
    let report = one(&mine, "delivered");
    assert_eq!(report["provider_message_id"], sid.as_str());
    assert_eq!(report["complaint_id"], complaint.as_str());
    assert_eq!(report["attempt"], 0);
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Vonage

/// `params` with a fresh `timestamp` and `nonce` and their HMAC-SHA256
/// `sig`, as a query string: Vonage's signed webhooks.
fn vonage_signed(params: &[(&str, &str)], secret: &str) -> String {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let mut all: Vec<(&str, &str)> = params.to_vec();
    all.push(("timestamp", &timestamp));
    all.push(("nonce", "7c1f4e2a-9b3d-4c5e-8f6a-1b2c3d4e5f60"));
    let mut sorted = all.clone();
    sorted.sort();
    let signed: String = sorted
        .iter()
        .map(|(k, v)| format!("&{k}={}", v.replace(['&', '='], "_")))
        .collect();
    let sig = hex::encode_upper(hmac_sha256(secret.as_bytes(), signed.as_bytes()));
    all.push(("sig", &sig));
    encode(&all)
}

async fn vonage_get(app: &TestApp, query: &str) -> u16 {
    app.client
        .get(app.url(&format!("/webhooks/vonage/vonage-jabar?{query}")))
        .send()
        .await
        .expect("the Vonage route answers")
        .status()
        .as_u16()
}

fn vonage_receipt(message_id: &str) -> Vec<(&str, &str)> {
    vec![
        ("msisdn", "6281234567890"),
        ("to", "6281100017080"),
        ("network-code", "51010"),
        ("messageId", message_id),
        ("price", "0.03330000"),
        ("status", "delivered"),
        ("scts", "2611221021"),
        ("err-code", "0"),
        ("api-key", VONAGE_KEY),
        ("message-timestamp", "2026-11-22 10:21:05"),
    ]
}

#[tokio::test]
async fn vonage_unicode_replies_receipts_and_throttling() {
    let ns = common::unique("sms-vonage");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, &vonage(&standin)).await;
    let inbound = vonage_signed(
        &[
            ("msisdn", "6281234567890"),
            ("to", "6281100017080"),
            ("messageId", "1A0000000B2C3D4E"),
            (
                "text",
                "LAPOR Saluran air tersumbat di Perumahan Griya Asri",
            ),
            ("type", "text"),
            ("keyword", "LAPOR"),
            ("message-timestamp", "2026-11-22 08:20:00"),
        ],
        VONAGE_SIGNATURE_SECRET,
    );
    assert_eq!(vonage_get(&app, &inbound).await, 200);
    let complaint = complaint_of(&app, "vonage-jabar", CITIZEN).await;

    let text =
        "Terima kasih 🙏 saluran air di Perumahan Griya Asri dibersihkan petugas besok pagi.";
    reply(
        &app,
        &ns,
        json!({"reply_id": "vn-balas-1", "complaint_id": complaint, "text": text}),
    )
    .await;
    let mine = wait_status(&app, &ns, "vn-balas-1", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/sms/json");
    assert_eq!(
        names(&req.form),
        [
            "api_key",
            "api_secret",
            "callback",
            "client-ref",
            "from",
            "status-report-req",
            "text",
            "to",
            "type"
        ]
    );
    assert_eq!(req.form_value("api_key"), Some(VONAGE_KEY));
    assert_eq!(req.form_value("api_secret"), Some(VONAGE_SECRET));
    assert_eq!(req.form_value("from"), Some("6281100017080"));
    assert_eq!(req.form_value("to"), Some("6281234567890"));
    assert_eq!(req.form_value("text"), Some(text));
    assert_eq!(req.form_value("type"), Some("unicode"));
    assert_eq!(req.form_value("status-report-req"), Some("1"));
    assert_eq!(req.form_value("client-ref"), Some("vn-balas-1.0"));
    assert_eq!(
        req.form_value("callback"),
        Some(format!("{PUBLIC}/webhooks/vonage/vonage-jabar").as_str())
    );
    let message_id = req.answered.1["messages"][0]["message-id"]
        .as_str()
        .expect("the stand-in's message-id")
        .to_string();
    let sent = one(&mine, "sent");
    assert_eq!(sent["provider_message_id"], message_id.as_str());
    assert_eq!(sent["to"], CITIZEN);
    assert_eq!(sent["channel"], "sms");

    // A receipt signed with another secret is refused and writes nothing.
    let forged = vonage_signed(&vonage_receipt(&message_id), "bukan-rahasia-vonage");
    assert_eq!(vonage_get(&app, &forged).await, 403);
    let unsigned = encode(&vonage_receipt(&message_id));
    assert_eq!(vonage_get(&app, &unsigned).await, 403);
    settle().await;
    assert_eq!(deliveries(&app, &ns).await.len(), 1);

    // The signed receipt becomes `delivered`, at Vonage's time.
    let receipt = vonage_signed(&vonage_receipt(&message_id), VONAGE_SIGNATURE_SECRET);
    assert_eq!(vonage_get(&app, &receipt).await, 200);
    let mine = wait_status(&app, &ns, "vn-balas-1", "delivered").await;
    let report = one(&mine, "delivered");
    assert_eq!(report["provider_message_id"], message_id.as_str());
    assert_eq!(report["complaint_id"], complaint.as_str());
    assert_eq!(report["attempt"], 0);
    assert_eq!(report["at"], "2026-11-22T10:21:05.000Z");
    assert_eq!(app.stream_len().await, 1, "a receipt is no complaint");

    // Status 1, throttled: retried, then sent; a GSM text has no `type`.
    standin.script([Scripted::status(
        200,
        json!({"message-count": "1", "messages": [{"status": "1",
               "error-text": "Throughput Rate Exceeded - please wait [ 30 ] and retry"}]}),
    )]);
    let gsm = "Pak, petugas akan datang Kamis pukul 09.00.";
    reply(
        &app,
        &ns,
        json!({"reply_id": "vn-balas-2", "complaint_id": complaint, "text": gsm}),
    )
    .await;
    let mine = wait_status(&app, &ns, "vn-balas-2", "sent").await;
    let statuses: Vec<&str> = mine.iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(statuses, ["retrying", "sent"]);
    assert_eq!(mine[0]["error"]["code"], "1");
    assert_eq!(mine[0]["error"]["permanent"], false);
    assert!(mine[0]["next_attempt_at"].is_string());
    assert_eq!(mine[0]["attempt"], 1);
    assert_eq!(mine[1]["attempt"], 2);
    let seen = standin.seen();
    assert_eq!(seen.len(), 3);
    for req in &seen[1..] {
        assert_eq!(req.form_value("text"), Some(gsm));
        assert_eq!(req.form_value("type"), None);
    }
    assert_eq!(
        mine[1]["provider_message_id"],
        seen[2].answered.1["messages"][0]["message-id"]
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Infobip

async fn infobip_post(app: &TestApp, body: &Value, password: &str) -> u16 {
    app.client
        .post(app.url("/webhooks/infobip/infobip-jabar"))
        .header("content-type", "application/json")
        .header("authorization", basic_auth(INFOBIP_USER, password))
        .body(body.to_string())
        .send()
        .await
        .expect("the Infobip route answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn infobip_replies_and_delivery_reports() {
    let ns = common::unique("sms-infobip");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, &infobip(&standin)).await;
    let inbound = json!({"results": [{
        "messageId": "817790313235066449", "from": "6281234567890", "to": "628111708",
        "text": "LAPOR Pungutan liar di loket KTP Kecamatan Cibinong",
        "cleanText": "Pungutan liar di loket KTP Kecamatan Cibinong", "keyword": "LAPOR",
        "receivedAt": "2026-11-22T08:05:00.123+0000", "smsCount": 1,
        "price": {"pricePerMessage": 0, "currency": "IDR"}, "callbackData": null
    }], "messageCount": 1, "pendingMessageCount": 0});
    assert_eq!(infobip_post(&app, &inbound, INFOBIP_PASSWORD).await, 200);
    let complaint = complaint_of(&app, "infobip-jabar", CITIZEN).await;

    let text = "Laporan pungli di loket KTP Kecamatan Cibinong sudah kami teruskan ke Inspektorat.";
    reply(
        &app,
        &ns,
        json!({"reply_id": "ib-balas-1", "complaint_id": complaint, "text": text}),
    )
    .await;
    let mine = wait_status(&app, &ns, "ib-balas-1", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/sms/2/text/advanced");
    assert_eq!(
        req.header("authorization"),
        Some(format!("App {INFOBIP_KEY}").as_str())
    );
    assert_eq!(
        req.body,
        json!({"messages": [{
            "destinations": [{"to": "6281234567890"}],
            "from": "PDAMBOGOR",
            "text": text,
            "notifyUrl": format!("{PUBLIC}/webhooks/infobip/infobip-jabar"),
            "callbackData": "ib-balas-1.0",
        }]})
    );
    let message_id = req.answered.1["messages"][0]["messageId"]
        .as_str()
        .expect("the stand-in's messageId")
        .to_string();
    assert_eq!(
        one(&mine, "sent")["provider_message_id"],
        message_id.as_str()
    );

    let report = json!({"results": [{
        "bulkId": "bulk-1", "messageId": message_id, "to": "6281234567890",
        "sentAt": "2026-11-22T08:31:00.000+0000", "doneAt": "2026-11-22T08:31:04.000+0000",
        "smsCount": 1, "price": {"pricePerMessage": 350, "currency": "IDR"},
        "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5,
                   "name": "DELIVERED_TO_HANDSET", "description": "Message delivered to handset"},
        "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR",
                  "description": "No Error", "permanent": false}
    }]});
    // With the wrong password: refused, nothing written.
    assert_eq!(infobip_post(&app, &report, "tebakan-salah").await, 401);
    settle().await;
    assert_eq!(deliveries(&app, &ns).await.len(), 1);

    assert_eq!(infobip_post(&app, &report, INFOBIP_PASSWORD).await, 200);
    let mine = wait_status(&app, &ns, "ib-balas-1", "delivered").await;
    let delivered = one(&mine, "delivered");
    assert_eq!(delivered["provider_message_id"], message_id.as_str());
    assert_eq!(delivered["complaint_id"], complaint.as_str());
    assert_eq!(delivered["to"], CITIZEN);
    assert_eq!(delivered["attempt"], 0);
    assert_eq!(delivered["at"], "2026-11-22T08:31:04.000Z");
    assert_eq!(app.stream_len().await, 1);
    app.stop().await;
}

// ---------------------------------------------------------------------------
// A generic gateway (Kannel)

#[tokio::test]
async fn kannel_sendsms_with_a_dlr_url_and_its_report() {
    let ns = common::unique("sms-kannel");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, &kannel(&standin)).await;
    assert_eq!(
        kannel_sms(&app, CITIZEN, "LAPOR Pipa PDAM bocor di Jl. Cempaka No. 12").await,
        200
    );
    let complaint = complaint_of(&app, "sms-kannel", CITIZEN).await;

    // `+`, `&` and `%` must survive the query string.
    let text = "Pak Budi, tagihan Rp 150.000 + denda 2% & biaya admin sudah dihapus.";
    reply(
        &app,
        &ns,
        json!({"reply_id": "kn-balas-1", "complaint_id": complaint, "text": text}),
    )
    .await;
    let mine = wait_status(&app, &ns, "kn-balas-1", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen.len(), 1);
    let req: &Seen = &seen[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/cgi-bin/sendsms");
    assert!(req.raw.is_empty());
    assert_eq!(
        names(&req.query),
        [
            "dlr-mask", "dlr-url", "from", "password", "text", "to", "username"
        ]
    );
    assert_eq!(req.query_value("username"), Some("aduan"));
    assert_eq!(req.query_value("password"), Some(KANNEL_PASSWORD));
    assert_eq!(req.query_value("from"), Some("1708"));
    assert_eq!(req.query_value("to"), Some(CITIZEN));
    assert_eq!(req.query_value("text"), Some(text));
    assert_eq!(req.query_value("dlr-mask"), Some("3"));
    let dlr_url = req.query_value("dlr-url").expect("dlr-url").to_string();
    assert_eq!(
        dlr_url,
        kannel_dlr_url().replace("{id}", "kn-balas-1.0"),
        "the DLR URL carries our id"
    );
    let sent = one(&mine, "sent");
    assert_eq!(sent["provider_message_id"], "kn-balas-1.0");
    assert_eq!(sent["to"], CITIZEN);

    // Kannel calls the DLR URL with `%d` filled in: 1, delivered.
    let local = dlr_url
        .replace("%d", "1")
        .replacen(PUBLIC, &app.base_url, 1);
    let wrong = local.replace(KANNEL_SECRET, "rahasia-tebakan");
    let status = |url: String| {
        let req = app.client.get(url);
        async move { req.send().await.expect("answered").status().as_u16() }
    };
    assert_eq!(status(wrong).await, 401);
    settle().await;
    assert_eq!(deliveries(&app, &ns).await.len(), 1);
    assert_eq!(status(local).await, 200);
    let mine = wait_status(&app, &ns, "kn-balas-1", "delivered").await;
    let report = one(&mine, "delivered");
    assert_eq!(report["provider_message_id"], "kn-balas-1.0");
    assert_eq!(report["complaint_id"], complaint.as_str());
    assert_eq!(report["attempt"], 0);
    assert_eq!(app.stream_len().await, 1, "a DLR is no complaint");
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Long texts

#[tokio::test]
async fn a_text_over_max_parts_fails_too_long_without_a_request() {
    let ns = common::unique("sms-long");
    let standin = StandIn::start().await;
    let config = format!(
        "{}{}{}{}",
        twilio(&standin),
        vonage(&standin),
        infobip(&standin),
        kannel(&standin)
    );
    let mut app = spawn(&ns, &config).await;
    // Three GSM-7 parts hold 3 × 153 septets; one more character is a fourth.
    let sentence = "Petugas PDAM akan memperbaiki pipa bocor di Jl. Cempaka No. 12 besok pagi. ";
    let fits: String = sentence.repeat(7).chars().take(459).collect();
    assert!(!fits.ends_with(' ') && fits.is_ascii());
    let over = format!("{fits}!");
    // A curly quote makes a text UCS-2: three parts hold 3 × 67 units.
    let ucs2 = format!("’{}", "a".repeat(201));

    for (id, instance, text) in [
        ("panjang-tw", "twilio-jabar", &over),
        ("panjang-vn", "vonage-jabar", &over),
        ("panjang-ib", "infobip-jabar", &over),
        ("panjang-kn", "sms-kannel", &over),
        ("panjang-ucs2", "vonage-jabar", &ucs2),
    ] {
        reply(
            &app,
            &ns,
            json!({"reply_id": id, "channel": "sms", "instance": instance,
                   "to": CITIZEN, "text": text}),
        )
        .await;
        let mine = wait_status(&app, &ns, id, "failed").await;
        assert_eq!(mine.len(), 1, "{id}: {mine:#?}");
        assert_eq!(mine[0]["error"]["code"], "too_long", "{id}");
        assert_eq!(mine[0]["error"]["permanent"], true);
        assert!(
            mine[0]["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("4 SMS parts") && m.contains("at most 3")),
            "{id}: {mine:#?}"
        );
    }
    settle().await;
    assert!(standin.seen().is_empty(), "{:#?}", standin.seen());

    // Exactly three parts go, in one request.
    reply(
        &app,
        &ns,
        json!({"reply_id": "pas-tw", "channel": "sms", "instance": "twilio-jabar",
               "to": CITIZEN, "text": fits}),
    )
    .await;
    wait_status(&app, &ns, "pas-tw", "sent").await;
    let seen = standin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].form_value("Body"), Some(fits.as_str()));
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Email: the SMTP listener in, an SMTP relay (aiosmtpd) out

/// The Python interpreter that can import aiosmtpd: `ADUAN_PYTHON`, else
/// `python3`, else `/usr/bin/python3`.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let candidates: Vec<String> = match std::env::var("ADUAN_PYTHON") {
            Ok(p) if !p.is_empty() => vec![p],
            _ => vec!["python3".into(), "/usr/bin/python3".into()],
        };
        candidates
            .iter()
            .find(|p| {
                std::process::Command::new(p)
                    .args(["-c", "import aiosmtpd"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .cloned()
            .unwrap_or_else(|| {
                panic!("no Python of {candidates:?} imports aiosmtpd; set ADUAN_PYTHON")
            })
    })
}

/// The SMTP relay: `channels/email/tests/smtp_sink.py` on a free port.
struct Relay {
    port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

/// One message the relay took.
struct Relayed {
    raw: String,
    envelope: Value,
}

impl Relayed {
    /// Header `name`, unfolded, without its name; asserts it appears at most once.
    fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match lines.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => {
                    last.push(' ');
                    last.push_str(line.trim_start());
                }
                _ => lines.push(line.to_string()),
            }
        }
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let found: Vec<String> = lines
            .iter()
            .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
            .collect();
        assert!(found.len() <= 1, "{name} twice: {found:?}");
        found.into_iter().next()
    }

    fn body(&self) -> &str {
        self.raw.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

impl Relay {
    async fn start(args: &[&str]) -> Relay {
        let dir = tempfile::tempdir().expect("temporary folder");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("channels/email/tests/smtp_sink.py");
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the SMTP relay starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(20),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let Some(port) = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        else {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = child.start_kill();
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), stderr.read_to_string(&mut err))
                        .await;
            }
            panic!("the SMTP relay did not start (printed {line:?}): {err}");
        };
        Relay {
            port,
            dir,
            _child: child,
        }
    }

    /// Every message taken so far, in order.
    fn received(&self) -> Vec<Relayed> {
        (1..)
            .map_while(|n| {
                let envelope = std::fs::read(self.dir.path().join(format!("{n}.json"))).ok()?;
                let raw = std::fs::read(self.dir.path().join(format!("{n}.eml"))).ok()?;
                Some(Relayed {
                    raw: String::from_utf8(raw).expect("the message is 7-bit"),
                    envelope: serde_json::from_slice(&envelope).expect("envelope"),
                })
            })
            .collect()
    }
}

/// Quoted-printable decoded to bytes (RFC 2045 section 6.7).
fn quoted_printable(encoded: &str) -> Vec<u8> {
    let b = encoded.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'=' {
            out.push(b[i]);
            i += 1;
        } else if b[i + 1..].starts_with(b"\r\n") {
            i += 3;
        } else {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("=XX"));
            i += 3;
        }
    }
    out
}

/// The thread headers of a citizen's mail answering our earlier reply.
const THREAD: &str = "References: <20261120093012.4F2A1@mail.example.id> <balasan-lama.0@pdam.example.id>\n\
                      In-Reply-To: <balasan-lama.0@pdam.example.id>\n";

/// A citizen's mail, sent to the gateway's SMTP listener by smtplib;
/// `thread` holds its `References` and `In-Reply-To` lines, if any.
async fn mail(app: &TestApp, dir: &Path, from: &str, message_id: &str, thread: &str) {
    let file: PathBuf = dir.join(format!("{message_id}.eml"));
    let message = format!(
        "From: {from}\nTo: Pengaduan PDAM <pengaduan@lapor.example.go.id>\nSubject: {SUBJECT}\n\
         Date: Mon, 23 Nov 2026 08:15:00 +0700\nMessage-ID: <{message_id}>\n{thread}\
         MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n\
         Selamat pagi, air PDAM di rumah kami keruh sejak tiga hari.\nTerima kasih.\n"
    );
    std::fs::write(&file, message).expect("write the message");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/email_smtp/client.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .arg("send")
        .arg(app.smtp_port().to_string())
        .arg(&file)
        .output()
        .await
        .expect("smtplib runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).expect("the client prints JSON");
    assert_eq!(out["result"], 250);
}

const SUBJECT: &str = "Air PDAM keruh di Jl. Cempaka";

async fn wait_relayed(relay: &Relay, n: usize) -> Vec<Relayed> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = relay.received();
        if got.len() >= n {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay took {} messages",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn email_replies_answer_in_the_citizens_thread_through_the_relay() {
    let (busy, unknown) = ("penuh@example.id", "tidak.ada@example.id");
    let relay = Relay::start(&["--temp-fail", busy, "--perm-fail", unknown]).await;
    let blobs = tempfile::tempdir().expect("tempdir");
    let mails = tempfile::tempdir().expect("tempdir");
    let ns = common::unique("email");
    let config = format!(
        r#"
[smtp]
listen = "127.0.0.1:0"
hostname = "mx.uji.example.go.id"

[blobs]
dir = "{blobs}"

[[instances]]
name = "pdam-email"
kind = "smtp"
keep_raw = false
addresses = ["pengaduan@lapor.example.go.id"]

[instances.reply]
relay_host = "127.0.0.1"
relay_port = {port}
tls = "none"
from = "Layanan Aduan <aduan@pdam.example.id>"
timeout_seconds = 5
max_attempts = 2
"#,
        blobs = blobs.path().display(),
        port = relay.port,
    );
    let mut app = spawn(&ns, &config).await;
    let sri = "sri.wahyuni@example.id";
    let parent = "CAK7pRw3.Jx9Yq@mail.example.id";
    let subject = SUBJECT;
    mail(
        &app,
        mails.path(),
        &format!("Sri Wahyuni <{sri}>"),
        parent,
        THREAD,
    )
    .await;
    mail(&app, mails.path(), busy, "penuh.1@mail.example.id", "").await;
    mail(
        &app,
        mails.path(),
        unknown,
        "tidak.ada.1@mail.example.id",
        "",
    )
    .await;
    // A client that writes In-Reply-To but no References.
    let dewi = "dewi.lestari@example.id";
    mail(
        &app,
        mails.path(),
        dewi,
        "dewi.2@mail.example.id",
        "In-Reply-To: <balasan-lama.0@pdam.example.id>\n",
    )
    .await;
    let complaints = app.complaints().await;
    assert_eq!(complaints.len(), 4);
    let id_of = |external_id: &str| {
        complaints
            .iter()
            .find(|c| c["external_id"] == external_id)
            .and_then(|c| c["id"].as_str())
            .expect("the complaint")
            .to_string()
    };
    let complaint = id_of(parent);

    let text = "Yth. Ibu Sri Wahyuni,\n\nlaporan Anda tentang air keruh di Jl. Cempaka sudah kami tindak lanjuti: \
                petugas datang Kamis pukul 09.00 WIB — mohon maaf atas ketidaknyamanannya. “Terima kasih” ✓\n\n\
                Salam,\nLayanan Aduan PDAM";
    reply(
        &app,
        &ns,
        json!({"reply_id": "surel-1", "complaint_id": complaint, "text": text}),
    )
    .await;
    let mine = wait_status(&app, &ns, "surel-1", "sent").await;
    let sent = one(&mine, "sent");
    assert_eq!(sent["channel"], "email");
    assert_eq!(sent["to"], sri);
    let provider_id = sent["provider_message_id"]
        .as_str()
        .expect("provider id")
        .to_string();
    assert!(
        !provider_id.contains(['<', '>']) && provider_id.ends_with("@pdam.example.id"),
        "{provider_id}"
    );

    let got = wait_relayed(&relay, 1).await;
    let m = &got[0];
    assert_eq!(m.envelope["mail_from"], "aduan@pdam.example.id");
    assert_eq!(m.envelope["rcpt_tos"], json!([sri]));
    assert_eq!(m.header("To").as_deref(), Some(sri));
    assert_eq!(
        m.header("From").as_deref(),
        Some("\"Layanan Aduan\" <aduan@pdam.example.id>")
    );
    assert_eq!(m.header("Subject"), Some(format!("Re: {subject}")));
    assert_eq!(m.header("In-Reply-To"), Some(format!("<{parent}>")));
    let references = m.header("References").expect("References");
    assert!(
        references.ends_with(&format!(" <{parent}>")),
        "{references}"
    );
    assert_eq!(
        references,
        format!(
            "<20261120093012.4F2A1@mail.example.id> <balasan-lama.0@pdam.example.id> <{parent}>"
        )
    );
    assert_eq!(m.header("Message-ID"), Some(format!("<{provider_id}>")));
    assert_eq!(
        m.header("Content-Type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        m.header("Content-Transfer-Encoding").as_deref(),
        Some("quoted-printable")
    );
    let body = String::from_utf8(quoted_printable(m.body())).expect("a UTF-8 body");
    assert_eq!(body.replace("\r\n", "\n").trim_end(), text);

    // 451 from the relay: retried, until the attempts run out.
    reply(
        &app,
        &ns,
        json!({"reply_id": "surel-2", "complaint_id": id_of("penuh.1@mail.example.id"),
               "text": "Laporan Anda sudah kami terima."}),
    )
    .await;
    let mine = wait_status(&app, &ns, "surel-2", "failed").await;
    let statuses: Vec<&str> = mine.iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(statuses, ["retrying", "failed"]);
    let retrying = &mine[0];
    assert_eq!(retrying["error"]["code"], "smtp_451");
    assert_eq!(retrying["error"]["permanent"], false);
    assert!(retrying["next_attempt_at"].is_string());
    assert!(
        retrying["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sementara tidak tersedia")),
        "{retrying:#?}"
    );
    assert_eq!(mine[1]["error"]["code"], "attempts_exhausted");

    // 550: failed at once, permanent, with the relay's words.
    reply(
        &app,
        &ns,
        json!({"reply_id": "surel-3", "complaint_id": id_of("tidak.ada.1@mail.example.id"),
               "text": "Laporan Anda sudah kami terima."}),
    )
    .await;
    let mine = wait_status(&app, &ns, "surel-3", "failed").await;
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert_eq!(mine[0]["error"]["code"], "smtp_550");
    assert_eq!(mine[0]["error"]["permanent"], true);
    assert!(
        mine[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Recipient address rejected: User unknown")),
        "{mine:#?}"
    );

    // Without References, the thread is the citizen's In-Reply-To, then
    // their message (RFC 5322, section 3.6.4).
    reply(
        &app,
        &ns,
        json!({"reply_id": "surel-4", "complaint_id": id_of("dewi.2@mail.example.id"),
               "text": "Ibu Dewi, laporan Anda sudah kami terima."}),
    )
    .await;
    wait_status(&app, &ns, "surel-4", "sent").await;
    let got = wait_relayed(&relay, 2).await;
    assert_eq!(got.len(), 2, "the 451 and 550 replies were never taken");
    let m = &got[1];
    assert_eq!(m.envelope["rcpt_tos"], json!([dewi]));
    assert_eq!(
        m.header("In-Reply-To").as_deref(),
        Some("<dewi.2@mail.example.id>")
    );
    assert_eq!(
        m.header("References").as_deref(),
        Some("<balasan-lama.0@pdam.example.id> <dewi.2@mail.example.id>")
    );
    app.stop().await;
}

#[tokio::test]
async fn every_part_of_a_long_vonage_sms_is_named_and_finds_its_reply() {
    let ns = common::unique("sms-vonage-parts");
    let standin = StandIn::start().await;
    let mut app = spawn(&ns, &vonage(&standin)).await;
    let ids = ["1B00000000D0A701", "1B00000000D0A702", "1B00000000D0A703"];
    // Vonage splits the text in three and names each part.
    standin.script([Scripted::status(
        200,
        json!({"message-count": "3", "messages": ids.iter().map(|id| json!({
            "to": "6281234567890", "message-id": id, "status": "0",
            "remaining-balance": "3.14159265", "message-price": "0.03330000", "network": "51010"
        })).collect::<Vec<_>>()}),
    )]);
    let text =
        "Pemberitahuan: perbaikan pipa PDAM di Perumahan Griya Asri dijadwalkan Kamis. ".repeat(5);
    reply(
        &app,
        &ns,
        json!({"reply_id": "vn-panjang-1", "channel": "sms", "instance": "vonage-jabar",
               "to": CITIZEN, "text": text.trim()}),
    )
    .await;
    let mine = wait_status(&app, &ns, "vn-panjang-1", "sent").await;
    let sent = one(&mine, "sent");
    assert_eq!(sent["parts"], 3);
    assert_eq!(sent["provider_message_ids"], json!(ids));
    assert_eq!(sent["provider_message_id"], ids[2]);

    // The receipt of the first part (no client-ref) finds the reply by its id.
    let receipt = vonage_signed(&vonage_receipt(ids[0]), VONAGE_SIGNATURE_SECRET);
    assert_eq!(vonage_get(&app, &receipt).await, 200);
    let mine = wait_status(&app, &ns, "vn-panjang-1", "delivered").await;
    let report = one(&mine, "delivered");
    assert_eq!(report["provider_message_id"], ids[0]);
    assert_eq!(report["to"], CITIZEN);
    assert_eq!(report["attempt"], 0);
    let metrics = app.metrics().await;
    assert_eq!(
        common::counter(
            &metrics,
            "aduan_delivery_reports_total",
            &[("instance", "vonage-jabar"), ("status", "unmatched")]
        ),
        0.0
    );
    app.stop().await;
}
