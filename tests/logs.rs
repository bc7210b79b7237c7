//! No secret and no personal data in what the gateway writes for operators.
//!
//! One scenario runs through several channels (transcripts, WhatsApp,
//! Telegram by webhook and by polling, Twilio), accepted, redelivered,
//! refused, throttled and malformed, while every log line is captured twice:
//! at `debug` in the human format and at the default level (`info`) as JSON.
//! Every captured line, every answer body and the `/metrics` text are then
//! scanned: no secret, token or signature may appear anywhere, nor a phone
//! number, email address, name or message text, at either level.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use aduan_adapter::testkit::{
    META, Signing, TELEGRAM_SECRET_HEADER, TWILIO_SIGNATURE_HEADER, bearer, meta_signature,
    tampered,
};
use common::smtp::Client;
use common::table::{self, Case};
use serde_json::Value;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

const TRANSCRIPT_TOKEN: &str = "cc-bogor-token-rahasia-2026";
const APP_SECRET: &str = "rahasia-aplikasi-meta";
const VERIFY_TOKEN: &str = "token-verifikasi-meta";
const TELEGRAM_SECRET: &str = "rahasia-webhook_123";
const BOT_TOKEN: &str = "7012345678:AAH-uji-token_stand-in";
const TWILIO_TOKEN: &str = "twilio-test-token-jabar";

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs, once for this test binary, a subscriber writing `debug` and above
/// to the first sink and the default level to the second, as JSON.
fn capture() -> &'static (Captured, Captured) {
    static SINKS: OnceLock<(Captured, Captured)> = OnceLock::new();
    SINKS.get_or_init(|| {
        let debug = Captured::default();
        let default = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(debug.clone())
                    .with_ansi(false)
                    .with_filter(LevelFilter::DEBUG),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(default.clone())
                    .with_filter(LevelFilter::INFO),
            );
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        (debug, default)
    })
}

fn instances(blobs: &std::path::Path) -> String {
    // A loopback port nothing listens on, for the Telegram poller to fail against.
    let api = format!("http://127.0.0.1:{}", common::private_redis::free_port());
    format!(
        r#"
[[instances]]
name = "cc-bogor"
kind = "transcript"
tokens = ["{TRANSCRIPT_TOKEN}"]

[[instances]]
name = "wa-jabar"
kind = "whatsapp"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"

[[instances]]
name = "tg-bogor"
kind = "telegram"
secret_token = "{TELEGRAM_SECRET}"
bot_username = "LaporCibinongBot"

[[instances]]
name = "tg-poll"
kind = "telegram"
mode = "polling"
bot_token = "{BOT_TOKEN}"
api_url = "{api}"
poll_timeout_seconds = 1
lease_seconds = 3

[[instances]]
name = "twilio-jabar"
kind = "twilio"
auth_token = "{TWILIO_TOKEN}"
public_url = "https://lapor.example.go.id/"

[[instances]]
name = "pengaduan-kota"
kind = "smtp"
addresses = ["pengaduan@lapor.example.go.id"]

[smtp]
listen = "127.0.0.1:0"
hostname = "mx.uji.example.go.id"

[blobs]
dir = "{blobs}"

[limits.instances.cc-bogor]
per_sender_per_minute = 2
"#,
        blobs = blobs.display()
    )
}

/// One SMTP session delivering `message`; returns every reply line.
async fn smtp_deliver(app: &common::TestApp, message: &[u8]) -> Vec<String> {
    let mut smtp = Client::connect(app).await;
    let mut replies = smtp.greeting.clone();
    for command in [
        "EHLO klien.example.id",
        "MAIL FROM:<budi.santoso@example.id>",
        "RCPT TO:<pengaduan@lapor.example.go.id>",
        "DATA",
    ] {
        replies.extend(smtp.send(format!("{command}\r\n").as_bytes()).await);
    }
    let text = String::from_utf8_lossy(message).replace("\r\n", "\n");
    let mut data = text.replace('\n', "\r\n");
    if !data.ends_with("\r\n") {
        data.push_str("\r\n");
    }
    data.push_str(".\r\nQUIT\r\n");
    replies.extend(smtp.send(data.as_bytes()).await);
    replies.extend(smtp.reply().await);
    replies
}

#[tokio::test]
async fn no_secret_or_personal_data_in_logs_answers_or_metrics() {
    let (debug, default) = capture();
    let blobs = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&instances(blobs.path())).await;
    let mut answers = Vec::new();
    let mut cases = Vec::new();

    // Transcripts: accepted, redelivered, throttled (same caller), wrong token, malformed.
    let transcript = common::fixtures("transcript").bytes("plain.json");
    let call = |call_id: &str| {
        let mut body: Value = serde_json::from_slice(&transcript).expect("JSON");
        body["call_id"] = call_id.into();
        serde_json::to_vec(&body).expect("JSON")
    };
    let post_transcript = |label: &str, token: &str, body: Vec<u8>| {
        Case::post(label, "/v1/transcripts")
            .header("authorization", bearer(token))
            .json(body)
    };
    cases.extend([
        post_transcript("transcript", TRANSCRIPT_TOKEN, transcript.clone())
            .status(201)
            .adds_any(1),
        post_transcript("transcript again", TRANSCRIPT_TOKEN, transcript.clone()).status(201),
        post_transcript(
            "transcript second call",
            TRANSCRIPT_TOKEN,
            call("JKT-20261122-000999"),
        )
        .status(201)
        .adds_any(1),
        post_transcript(
            "transcript throttled",
            TRANSCRIPT_TOKEN,
            call("JKT-20261122-000998"),
        )
        .status(429),
        post_transcript(
            "transcript wrong token",
            "cc-bogor-token-salah",
            transcript.clone(),
        )
        .status(401),
        post_transcript(
            "transcript malformed",
            TRANSCRIPT_TOKEN,
            common::fixtures("transcript").bytes("invalid_many.json"),
        )
        .status(400),
    ]);

    // WhatsApp: a batch, its redelivery, a tampered body, a wrong secret, a handshake.
    let batch = common::fixtures("meta").bytes("whatsapp/batch.json");
    let good = meta_signature(APP_SECRET, &batch);
    let post_whatsapp = |label: &str, signing: Signing| {
        Case::post(label, "/webhooks/whatsapp/wa-jabar")
            .json(batch.clone())
            .signed(META, APP_SECRET, signing)
    };
    let handshake = |label: &str, token: &str| {
        Case::get(
            label,
            format!(
                "/webhooks/whatsapp/wa-jabar?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={token}"
            ),
        )
    };
    cases.extend([
        post_whatsapp("whatsapp batch", Signing::Good).adds_any(3),
        post_whatsapp("whatsapp redelivered", Signing::Good),
        post_whatsapp("whatsapp tampered", Signing::Tampered).status(403),
        post_whatsapp("whatsapp wrong secret", Signing::WrongSecret).status(403),
        handshake("whatsapp handshake", VERIFY_TOKEN),
        handshake("whatsapp handshake wrong token", "token-salah").status(403),
    ]);

    // Telegram: a text, a contact (a phone in the payload), a wrong secret, not JSON.
    let post_telegram = |label: &str, file: &str, secret: &str| {
        Case::post(label, "/webhooks/telegram/tg-bogor")
            .header(TELEGRAM_SECRET_HEADER, secret)
            .json(common::fixtures("telegram").bytes(file))
    };
    cases.extend([
        post_telegram("telegram text", "message_text.json", TELEGRAM_SECRET).adds_any(1),
        post_telegram("telegram contact", "message_contact.json", TELEGRAM_SECRET).adds_any(1),
        post_telegram(
            "telegram wrong secret",
            "message_text.json",
            "rahasia-salah",
        )
        .status(401),
        post_telegram("telegram not JSON", "not_json.txt", TELEGRAM_SECRET).status(400),
    ]);

    // Twilio: an SMS, its redelivery, a wrong token's signature, a tampered body.
    let sms = common::fixtures("sms");
    let form = sms.bytes("twilio/sms.form");
    let sig = sms.text("twilio/sms.sig");
    let wrong = sms.text("twilio/sms.wrongtoken.sig");
    let post_twilio = |label: &str, body: Vec<u8>, signature: &str| {
        Case::post(label, "/webhooks/twilio/twilio-jabar")
            .header(TWILIO_SIGNATURE_HEADER, signature)
            .form(body)
    };
    cases.extend([
        post_twilio("twilio sms", form.clone(), &sig).adds_any(1),
        post_twilio("twilio redelivered", form.clone(), &sig),
        post_twilio("twilio wrong token", form.clone(), &wrong).status(403),
        post_twilio("twilio tampered", tampered(&form), &sig).status(403),
    ]);
    for answered in table::run(&app, cases).await {
        answers.push(format!("{}: {}", answered.label, answered.body));
    }

    // Email over SMTP: addresses and names in the envelope and the headers.
    let replies = smtp_deliver(
        &app,
        &common::fixtures("email").bytes("mime/plain-indonesian.eml"),
    )
    .await;
    assert!(
        replies
            .iter()
            .any(|l| l.starts_with("250") && l.contains("2.0.0")),
        "{replies:#?}"
    );
    answers.extend(replies);

    let stored = app.complaints().await;
    // 2 transcripts, 3 from the batch, 2 Telegram, 1 Twilio, 1 email.
    assert_eq!(stored.len(), 9, "{stored:#?}");

    let metrics = app.metrics().await;
    // Let the poller fail against the closed port at least once.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    app.stop().await;

    let debug = debug.text();
    let default = default.text();
    // For a reader who wants to see what was scanned.
    if let Some(dir) = std::env::var_os("ADUAN_LOGS_DUMP") {
        let dir = std::path::Path::new(&dir);
        let _ = std::fs::write(dir.join("debug.log"), &debug);
        let _ = std::fs::write(dir.join("default.log"), &default);
    }
    assert!(
        default.contains("complaint accepted"),
        "the default level logs acceptances:\n{default}"
    );
    assert!(debug.lines().count() >= default.lines().count());

    let mut forbidden: Vec<(String, &str)> = [
        TRANSCRIPT_TOKEN,
        "cc-bogor-token-salah",
        APP_SECRET,
        VERIFY_TOKEN,
        TELEGRAM_SECRET,
        BOT_TOKEN,
        "AAH-uji-token_stand-in",
        TWILIO_TOKEN,
        "rahasia-lain",
        "rahasia-salah",
        good.trim_start_matches("sha256="),
        sig.as_str(),
        wrong.as_str(),
    ]
    .into_iter()
    .map(|s| (s.to_string(), "secret"))
    .collect();
    // Personal data from the fixtures, in every form a number takes there.
    for pii in [
        "81234567890",
        "0812-3456-7890",
        "85712345678",
        "Budi Santoso",
        "Siti Rahmawati",
        "Siti Rahayu",
        "Dewi Lestari",
        "berlubang",
        "Cibinong",
        "PDAM",
        "budi.santoso@example.id",
        "Budi.Santoso@Example.ID",
    ] {
        forbidden.push((pii.to_string(), "personal data"));
    }
    // The Telegram fixtures' senders and the Twilio sender.
    for doc in &stored {
        for key in ["name", "phone", "email", "handle"] {
            if let Some(v) = doc["sender"][key].as_str() {
                forbidden.push((v.to_string(), "personal data"));
            }
        }
        if let Some(text) = doc["text"].as_str() {
            let words: String = text.chars().take(24).collect();
            if words.chars().count() >= 12 {
                forbidden.push((words, "message text"));
            }
        }
    }

    let answers = answers.join("\n");
    let leaks = scan(
        &[
            ("log at debug", debug.as_str()),
            ("log at the default level", default.as_str()),
            ("metrics", metrics.as_str()),
            ("answer", answers.as_str()),
        ],
        &forbidden,
    );
    // The scan itself finds what it looks for, in any position of a line.
    let planted = format!("{{\"token\":\"Bearer {TRANSCRIPT_TOKEN}\"}}\nx tel:+6281234567890 y\nz");
    let found = scan(&[("planted", &planted)], &forbidden);
    assert!(
        found.iter().any(|l| l.contains(TRANSCRIPT_TOKEN)),
        "{found:?}"
    );
    assert!(
        found.iter().any(|l| l.ends_with("x tel:+6281234567890 y")),
        "{found:?}"
    );
    assert!(!found.iter().any(|l| l.ends_with(": z")), "{found:?}");
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// Every occurrence of a forbidden string, by place and line.
fn scan(places: &[(&str, &str)], forbidden: &[(String, &str)]) -> Vec<String> {
    let mut leaks = Vec::new();
    for (place, text) in places {
        for line in text.lines() {
            for (needle, what) in forbidden {
                if line.contains(needle.as_str()) {
                    leaks.push(format!("{what} `{needle}` in {place}: {line}"));
                }
            }
        }
    }
    leaks
}

/// The lines of the default-level (JSON) log whose message is `message`, as
/// their `fields`.
fn logged(sink: &Captured, message: &str) -> Vec<Value> {
    sink.text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == message)
        .map(|l| l["fields"].clone())
        .collect()
}

/// During a Redis outage every request is spooled; the log says so once a
/// second, with how many and how old the oldest waiting is, not once per
/// complaint (a pause of 80 s once wrote 182,340 such lines).
#[tokio::test]
async fn complaints_spooled_within_a_second_are_one_summary_line() {
    let (_, default) = capture();
    let redis = common::private_redis::PrivateRedis::stopped();
    let ns = common::unique("logs-spool");
    let config = format!(
        "[[instances]]\nname = \"cc-spool\"\nkind = \"transcript\"\ntokens = [\"{TRANSCRIPT_TOKEN}-spool\"]\n"
    );
    let mut app = common::spawn_app_with(&config, &redis.url(), &ns).await;
    let transcript = common::fixtures("transcript").bytes("plain.json");
    let post = |call_id: String| {
        let mut body: Value = serde_json::from_slice(&transcript).expect("JSON");
        body["call_id"] = call_id.into();
        app.client
            .post(app.url("/v1/transcripts"))
            .header(
                "authorization",
                bearer(&format!("{TRANSCRIPT_TOKEN}-spool")),
            )
            .json(&body)
            .send()
    };
    // The first finds Redis away and is spooled; its line comes a second later.
    let first = post("SPOOL-0".into()).await.expect("answered");
    assert_eq!(first.status().as_u16(), 201);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let before = logged(default, "complaints spooled");
    assert_eq!(before.len(), 1, "{before:#?}");
    assert_eq!(before[0]["count"], 1);

    let n = 20;
    let answers = futures::future::join_all((1..=n).map(|i| post(format!("SPOOL-{i}")))).await;
    for answer in answers {
        assert_eq!(answer.expect("answered").status().as_u16(), 201);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let lines = logged(default, "complaints spooled");
    assert_eq!(lines.len(), 2, "one line for the {n}: {lines:#?}");
    assert_eq!(lines[1]["count"], n);
    // The oldest waiting is the first, spooled more than a second before.
    let oldest = lines[1]["oldest_age_seconds"].as_f64().expect("age");
    assert!(oldest >= 1.0, "{lines:#?}");
    app.stop().await;
}

/// A flood of SMTP connections past `max_sessions` closes one idle session
/// per new connection; the log says so once a second.
#[tokio::test]
async fn sessions_closed_to_make_room_are_one_summary_line() {
    let (_, default) = capture();
    let config = "[[instances]]\nname = \"surat-banjir\"\nkind = \"smtp\"\naddresses = [\"banjir@lapor.example.go.id\"]\n\n\
                  [smtp]\nlisten = \"127.0.0.1:0\"\nhostname = \"mx.uji.example.go.id\"\nmax_sessions = 2\n";
    let mut app = common::spawn_app(config).await;
    let smtp_lines = || -> Vec<Value> {
        logged(default, "idle connections closed to make room")
            .into_iter()
            .filter(|l| l["listener"] == "smtp")
            .collect()
    };
    assert!(smtp_lines().is_empty());
    let mut open = Vec::new();
    for _ in 0..12 {
        // Each reads its greeting: it was admitted, the oldest idle one closed.
        open.push(Client::connect(&app).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let lines = smtp_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["count"], 10);
    assert!(lines[0]["oldest_idle_seconds"].as_f64().is_some());
    drop(open);
    app.stop().await;
}
