//! What the gateway cannot take now, answered in each provider's own form.
//!
//! Storage away with the spool full, a sender over its rate and a request
//! past its deadline are the gateway's refusals, not the adapter's; still
//! each route answers them as its provider reads answers: TwiML for Twilio
//! (whose `text/plain` or JSON body would be texted to the citizen), the
//! GeoReport error list for Open311 (JSON or XML as the resource names),
//! `{"error": …}` for the others. `Retry-After` comes where the provider may
//! retry, and nothing refused is stored.

mod common;

use std::time::Duration;

use aduan_adapter::testkit::{META, Signing, TWILIO_SIGNATURE_HEADER, twilio_signature};
use common::private_redis::PrivateRedis;
use common::table::Case;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PUBLIC: &str = "https://lapor.example.go.id";
const TWILIO_TOKEN: &str = "twilio-token-jabar-2026";
const TWILIO_PATH: &str = "/webhooks/twilio/twilio-jabar";
const APP_SECRET: &str = "rahasia-aplikasi-meta";
const BOGOR: &str = "/open311/v2/bogor-311";
const FMS_KEY: &str = "fms-bogor-2026-kunci-1";
const CITIZEN: &str = "+6281234567890";

/// A Twilio, a WhatsApp and the Open311 fixtures' instances, and `extra`.
fn instances(extra: &str) -> String {
    format!(
        r#"
[[instances]]
name = "twilio-jabar"
kind = "twilio"
keep_raw = false
auth_token = "{TWILIO_TOKEN}"
public_url = "{PUBLIC}"

[[instances]]
name = "wa-jabar"
kind = "whatsapp"
keep_raw = false
app_secret = "{APP_SECRET}"
verify_token = "token-verifikasi-meta"

{open311}
{extra}
"#,
        open311 = common::fixtures("open311").text("instances.toml")
    )
}

/// What one request got back.
#[derive(Debug)]
struct Got {
    status: u16,
    content_type: String,
    retry_after: Option<u64>,
    body: String,
}

async fn got(request: reqwest::RequestBuilder) -> Got {
    let resp = request.send().await.expect("answered");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after").and_then(|v| v.parse().ok());
    Got {
        status: resp.status().as_u16(),
        content_type,
        retry_after,
        body: resp.text().await.unwrap_or_default(),
    }
}

/// An inbound SMS `sid` from the citizen, signed as Twilio signs it.
fn twilio_sms(app: &common::TestApp, sid: &str, body: &str) -> reqwest::RequestBuilder {
    let params = [
        ("AccountSid", "AC5f0d3e1b2a4c6e8f0a1b3c5d7e9f1a2b"),
        ("Body", body),
        ("From", CITIZEN),
        ("MessageSid", sid),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("To", "+6281100017080"),
    ];
    let signature = twilio_signature(TWILIO_TOKEN, &format!("{PUBLIC}{TWILIO_PATH}"), &params);
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    Case::post("", TWILIO_PATH)
        .header(TWILIO_SIGNATURE_HEADER, signature)
        .form(form)
        .request(app)
}

fn whatsapp_text(app: &common::TestApp) -> reqwest::RequestBuilder {
    Case::post("", "/webhooks/whatsapp/wa-jabar")
        .json(common::fixtures("meta").bytes("whatsapp/text.json"))
        .signed(META, APP_SECRET, Signing::Good)
        .request(app)
}

/// A service request to `requests.{ext}` from the FixMyStreet client.
fn open311(app: &common::TestApp, ext: &str, description: &str) -> reqwest::RequestBuilder {
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("api_key", FMS_KEY),
            ("service_code", "SAMPAH"),
            ("lat", "-6.4764"),
            ("long", "106.8283"),
            ("email", "rina.wulandari@example.id"),
            ("description", description),
        ])
        .finish();
    Case::post("", format!("{BOGOR}/requests.{ext}"))
        .form(form)
        .request(app)
}

/// Asserts `got` is empty TwiML with `status`, the reason in its comment.
fn assert_twiml(got: &Got, status: u16, reason: &str) {
    assert_eq!(got.status, status, "{got:?}");
    assert!(got.content_type.starts_with("text/xml"), "{got:?}");
    assert!(
        got.body.starts_with("<?xml") && got.body.ends_with("<Response/>"),
        "{got:?}"
    );
    assert!(got.body.contains(&format!("<!-- {reason} -->")), "{got:?}");
}

/// Asserts `got` is Open311's JSON error list: one entry, `code` the status.
fn assert_open311_json(got: &Got, status: u16, description: &str) {
    assert_eq!(got.status, status, "{got:?}");
    assert!(got.content_type.starts_with("application/json"), "{got:?}");
    let body: Value = serde_json::from_str(&got.body).expect("JSON");
    assert_eq!(body, json!([{"code": status, "description": description}]));
}

/// Asserts `got` is Open311's XML error list.
fn assert_open311_xml(got: &Got, status: u16, description: &str) {
    assert_eq!(got.status, status, "{got:?}");
    assert!(got.content_type.contains("xml"), "{got:?}");
    let expected = format!(
        "<errors><error><code>{status}</code><description>{description}</description></error></errors>"
    );
    let compact: String = got.body.lines().map(str::trim).collect();
    assert!(compact.contains(&expected), "{got:?}");
}

#[tokio::test]
async fn a_full_spool_while_redis_is_down_is_refused_in_each_providers_form() {
    let mut redis = PrivateRedis::stopped();
    let ns = common::unique("deferral-full");
    let mut app = common::spawn_app_tuned(
        &instances("[limits]\nretry_after_seconds = 7\n"),
        &redis.url(),
        &ns,
        "request_timeout_seconds = 10\nshutdown_grace_seconds = 5\n",
        "max_records = 1\n",
    )
    .await;
    // One complaint fills the spool.
    let first = got(twilio_sms(
        &app,
        "SM00000000000000000000000000000001",
        "Lampu jalan mati",
    ))
    .await;
    assert_eq!(first.status, 200, "{first:?}");
    assert!(first.content_type.starts_with("text/xml"), "{first:?}");
    let refused = "the service is unavailable, try again later";
    let twilio = got(twilio_sms(
        &app,
        "SM00000000000000000000000000000002",
        "Got mampet",
    ))
    .await;
    assert_twiml(&twilio, 503, "unavailable");
    assert_eq!(twilio.retry_after, Some(7));
    let whatsapp = got(whatsapp_text(&app)).await;
    assert_eq!(whatsapp.status, 503, "{whatsapp:?}");
    assert!(whatsapp.content_type.starts_with("application/json"));
    assert_eq!(
        serde_json::from_str::<Value>(&whatsapp.body).expect("JSON"),
        json!({"error": "unavailable"})
    );
    assert_eq!(whatsapp.retry_after, Some(7));
    let json = got(open311(&app, "json", "Sampah menumpuk di depan pasar.")).await;
    assert_open311_json(&json, 503, refused);
    assert_eq!(json.retry_after, Some(7));
    let xml = got(open311(&app, "xml", "Sampah menumpuk di depan pasar.")).await;
    assert_open311_xml(&xml, 503, refused);
    assert_eq!(xml.retry_after, Some(7));

    // Redis back: only the accepted complaint reaches the stream.
    redis.restart().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while app.readiness().await["state"] != "ready" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spool did not drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = app.complaints().await;
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(
        stored[0]["external_id"],
        "SM00000000000000000000000000000001"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_sender_over_its_rate_is_refused_in_each_providers_form() {
    let mut app = common::spawn_app(&instances("[limits]\nper_sender_per_minute = 1\n")).await;
    let sms = |sid: &str, text: &str| twilio_sms(&app, sid, text);
    let first = got(sms(
        "SM00000000000000000000000000000011",
        "Lampu jalan mati",
    ))
    .await;
    assert_eq!(first.status, 200, "{first:?}");
    let twilio = got(sms("SM00000000000000000000000000000012", "Got mampet")).await;
    // Twilio's route answers a throttled message 503, as it does for outages.
    assert_twiml(&twilio, 503, "rate_limited");
    assert!(
        twilio.retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{twilio:?}"
    );

    let first = got(open311(&app, "json", "Sampah di depan pasar.")).await;
    assert_eq!(first.status, 201, "{first:?}");
    let refused = "too many requests, try again later";
    let json = got(open311(&app, "json", "Sampah di belakang pasar.")).await;
    assert_open311_json(&json, 429, refused);
    assert!(json.retry_after.is_some(), "{json:?}");
    let xml = got(open311(&app, "xml", "Sampah di samping pasar.")).await;
    assert_open311_xml(&xml, 429, refused);
    assert!(xml.retry_after.is_some(), "{xml:?}");

    let stored = app.complaints().await;
    let ids: Vec<&str> = stored
        .iter()
        .filter_map(|c| c["instance"].as_str())
        .collect();
    assert_eq!(ids, ["twilio-jabar", "bogor-311"], "{stored:#?}");
    app.stop().await;
}

/// Sends a request head and part of its body to `path`, then stalls; the
/// gateway's whole answer once it gives one: status, content type, body.
async fn stalled(app: &common::TestApp, path: &str, content_type: &str) -> Got {
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\ncontent-length: 100\r\n\r\nFrom=%2B62"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse::<usize>().ok());
                if length.is_some_and(|n| body.len() >= n) {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    Got {
        status,
        content_type,
        retry_after: None,
        body: body.to_string(),
    }
}

#[tokio::test]
async fn a_request_past_its_deadline_is_refused_in_each_providers_form() {
    let ns = common::unique("deferral-deadline");
    let mut app = common::spawn_app_tuned(
        &instances(""),
        &common::redis_url(),
        &ns,
        "request_timeout_seconds = 1\nshutdown_grace_seconds = 5\n",
        "",
    )
    .await;
    let form = "application/x-www-form-urlencoded";
    let twilio = stalled(&app, TWILIO_PATH, form).await;
    assert_twiml(&twilio, 408, "timeout");
    let json = stalled(&app, &format!("{BOGOR}/requests.json"), form).await;
    assert_open311_json(&json, 408, "the request took too long, try again");
    let xml = stalled(&app, &format!("{BOGOR}/requests.xml"), form).await;
    assert_open311_xml(&xml, 408, "the request took too long, try again");
    let whatsapp = stalled(&app, "/webhooks/whatsapp/wa-jabar", "application/json").await;
    assert_eq!(whatsapp.status, 408, "{whatsapp:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&whatsapp.body).expect("JSON"),
        json!({"error": "timeout"})
    );
    assert_eq!(app.stream_len().await, 0);
    app.stop().await;
}
