//! End to end: every input limit and the backpressure in front of the
//! adapters, through the real gateway and a real Redis.
//!
//! The table sends real-format requests (the WhatsApp and transcript fixtures)
//! to a gateway configured with small limits and asserts, for each case, every
//! answer, the whole documents in the stream (or that nothing was written) and
//! the `aduan_limit_exceeded_total` counter of the limit that refused. The
//! connection-level limits (header count, slow headers) and in-flight waits
//! need raw sockets and timing, and have their own tests below.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const APP_SECRET: &str = "rahasia-aplikasi-meta";
const TOKEN: &str = "cc-bogor-token-2026";

/// A WhatsApp instance without `raw` (so the meta fixtures' expected documents
/// apply as they are), a transcript instance, and a Twilio instance.
fn instances(limits: &str) -> String {
    format!(
        r#"
[[instances]]
name = "wa-jabar"
kind = "whatsapp"
keep_raw = false
app_secret = "{APP_SECRET}"
verify_token = "token-verifikasi-meta"

[[instances]]
name = "cc-bogor"
kind = "transcript"
keep_raw = false
tokens = ["{TOKEN}"]

[[instances]]
name = "twilio-jabar"
kind = "twilio"
auth_token = "twilio-test-token-jabar"
public_url = "https://lapor.example.go.id/"
keep_raw = false

{limits}
"#
    )
}

/// One request of a case.
enum Req {
    /// A signed WhatsApp webhook with a fixture body.
    WhatsApp(&'static str),
    /// A transcript: `plain.json` with this call id and caller phone.
    Transcript(&'static str, &'static str),
    /// Anything else: method, path, content type, body.
    Raw(&'static str, String, &'static str, Vec<u8>),
}

/// One request and what must come back.
struct Step {
    req: Req,
    status: u16,
    /// The whole answer body, when it is JSON worth asserting.
    answer: Option<Value>,
    /// Whether the answer carries `Retry-After`.
    retry_after: bool,
}

struct Case {
    label: &'static str,
    /// The `[limits]` section (and its sub-tables) for this case.
    limits: &'static str,
    steps: Vec<Step>,
    /// Every document in the stream afterwards.
    complaints: Vec<Value>,
    /// `limit` label that must have been counted, with the route.
    counted: Option<(&'static str, &'static str)>,
}

fn step(req: Req, status: u16) -> Step {
    Step {
        req,
        status,
        answer: None,
        retry_after: false,
    }
}

fn refused(req: Req, status: u16, error: &str) -> Step {
    Step {
        req,
        status,
        answer: Some(json!({ "error": error })),
        retry_after: false,
    }
}

fn throttled(req: Req, status: u16, error: &str) -> Step {
    Step {
        retry_after: true,
        ..refused(req, status, error)
    }
}

fn expected(rel: &str) -> Vec<Value> {
    match serde_json::from_slice(&common::fixture(&format!(
        "channels/meta/fixtures/whatsapp/{rel}"
    ))) {
        Ok(Value::Array(docs)) => docs,
        other => panic!("{rel}: expected documents: {other:?}"),
    }
}

/// The transcript fixture as a call with its own id and caller.
fn transcript_body(call_id: &str, phone: &str) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&common::fixture("channels/transcript/fixtures/plain.json"))
            .expect("fixture is JSON");
    body["call_id"] = call_id.into();
    body["caller"]["phone"] = phone.into();
    serde_json::to_vec(&body).expect("serializes")
}

/// The document `transcript_body(call_id, phone)` becomes on `cc-bogor`.
fn transcript_doc(call_id: &str, e164: &str) -> Value {
    json!({
        "schema": "aduan.complaint.v1",
        "id": "*",
        "received_at": "*",
        "sent_at": "2026-11-22T01:15:30.000Z",
        "channel": "call_center",
        "provider": "transcript",
        "instance": "cc-bogor",
        "external_id": call_id,
        "sender": {
            "id": format!("tel:{e164}"),
            "name": "Budi Santoso",
            "phone": e164,
            "email": null,
            "handle": null,
            "language": "id"
        },
        "recipient": null,
        "subject": "Infrastruktur Jalan",
        "text": "Penelepon melaporkan jalan berlubang di depan SDN 3 Cibinong. Lubang sudah ada sejak dua minggu dan sudah menyebabkan dua pengendara motor jatuh. Penelepon meminta segera diperbaiki sebelum musim hujan.",
        "language": "ind",
        "attachments": [],
        "location": null,
        "thread": {
            "conversation": format!("cc-bogor:tel:{e164}"),
            "in_reply_to": null,
            "references": []
        },
        "call": {
            "call_id": call_id,
            "agent_id": "AG-017",
            "agent_name": "Siti Rahayu",
            "started_at": "2026-11-22T01:15:30.000Z",
            "duration_seconds": 184,
            "direction": "inbound",
            "recording_url": null,
            "segments": []
        },
        "raw": null
    })
}

fn nested_json(depth: usize) -> Vec<u8> {
    let mut s = String::new();
    for _ in 0..depth {
        s.push_str("{\"a\":");
    }
    s.push('1');
    for _ in 0..depth {
        s.push('}');
    }
    s.into_bytes()
}

fn form_with_fields(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("Field{i}=Jalan+berlubang"))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn cases() -> Vec<Case> {
    use Req::*;
    vec![
        Case {
            label: "body over the route's own limit",
            limits: "[limits.body_limit_bytes]\ntranscripts = 400\n",
            steps: vec![refused(
                Transcript("BGR-1", "081234567890"),
                413,
                "too_large",
            )],
            complaints: vec![],
            counted: Some(("body_bytes", "transcripts")),
        },
        Case {
            label: "route override leaves other routes alone",
            limits: "[limits.body_limit_bytes]\ntranscripts = 400\n",
            steps: vec![step(WhatsApp("text.json"), 200)],
            complaints: expected("text.expected.json"),
            counted: None,
        },
        Case {
            label: "JSON nested deeper than the limit, before verification",
            limits: "[limits]\njson_max_depth = 12\n",
            steps: vec![refused(
                Raw(
                    "POST",
                    "/webhooks/whatsapp/wa-jabar".into(),
                    "application/json",
                    nested_json(13),
                ),
                413,
                "too_large",
            )],
            complaints: vec![],
            counted: Some(("json_depth", "whatsapp")),
        },
        Case {
            label: "JSON within the depth limit still reaches the adapter",
            limits: "[limits]\njson_max_depth = 12\n",
            steps: vec![step(WhatsApp("text.json"), 200)],
            complaints: expected("text.expected.json"),
            counted: None,
        },
        Case {
            label: "form body with too many fields",
            limits: "[limits]\nform_max_fields = 20\n",
            steps: vec![Step {
                answer: None,
                ..step(
                    Raw(
                        "POST",
                        "/webhooks/twilio/twilio-jabar".into(),
                        "application/x-www-form-urlencoded",
                        form_with_fields(21),
                    ),
                    413,
                )
            }],
            complaints: vec![],
            counted: Some(("form_fields", "twilio")),
        },
        Case {
            label: "query string with too many parameters",
            limits: "[limits]\nform_max_fields = 20\n",
            steps: vec![refused(
                Raw(
                    "GET",
                    format!(
                        "/webhooks/whatsapp/wa-jabar?{}",
                        String::from_utf8(form_with_fields(21)).expect("ascii")
                    ),
                    "text/plain",
                    Vec::new(),
                ),
                413,
                "too_large",
            )],
            complaints: vec![],
            counted: Some(("form_fields", "whatsapp")),
        },
        Case {
            label: "batch with more messages than allowed",
            limits: "[limits]\nmax_messages_per_request = 2\n",
            steps: vec![
                refused(WhatsApp("batch.json"), 413, "too_large"),
                step(WhatsApp("text.json"), 200),
            ],
            complaints: expected("text.expected.json"),
            counted: Some(("messages", "whatsapp")),
        },
        Case {
            label: "one sender over its rate; redeliveries are free; others go on",
            limits: "[limits.instances.cc-bogor]\nper_sender_per_minute = 2\n",
            steps: vec![
                step(Transcript("BGR-1", "081234567890"), 201),
                // Redelivered: answered like the first time, and takes no token.
                step(Transcript("BGR-1", "081234567890"), 201),
                step(Transcript("BGR-2", "081234567890"), 201),
                throttled(Transcript("BGR-3", "081234567890"), 429, "rate_limited"),
                step(Transcript("BGR-4", "085712345678"), 201),
            ],
            complaints: vec![
                transcript_doc("BGR-1", "+6281234567890"),
                transcript_doc("BGR-2", "+6281234567890"),
                transcript_doc("BGR-4", "+6285712345678"),
            ],
            counted: Some(("sender_rate", "transcripts")),
        },
        Case {
            label: "instance over its request rate",
            limits: "[limits.instances.cc-bogor]\nper_instance_rps = 1\nper_instance_burst = 1\n",
            steps: vec![
                step(Transcript("BGR-1", "081234567890"), 201),
                throttled(Transcript("BGR-2", "081234567890"), 429, "rate_limited"),
                // Another instance is not slowed by it.
                step(WhatsApp("text.json"), 200),
            ],
            complaints: vec![
                transcript_doc("BGR-1", "+6281234567890"),
                expected("text.expected.json").remove(0),
            ],
            counted: Some(("instance_rate", "transcripts")),
        },
        Case {
            label: "throttled WhatsApp sender answered 503 for Meta to retry",
            limits: "[limits]\nper_sender_per_minute = 1\n",
            steps: vec![
                step(WhatsApp("text.json"), 200),
                throttled(WhatsApp("reply.json"), 503, "rate_limited"),
            ],
            complaints: expected("text.expected.json"),
            counted: Some(("sender_rate", "whatsapp")),
        },
    ]
}

fn signature(body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(aduan_adapter::verify::hmac_sha256(
            APP_SECRET.as_bytes(),
            body
        ))
    )
}

fn request(app: &common::TestApp, req: &Req) -> reqwest::RequestBuilder {
    match req {
        Req::WhatsApp(name) => {
            let body = common::fixture(&format!("channels/meta/fixtures/whatsapp/{name}"));
            app.client
                .post(app.url("/webhooks/whatsapp/wa-jabar"))
                .header("content-type", "application/json")
                .header("x-hub-signature-256", signature(&body))
                .body(body)
        }
        Req::Transcript(call_id, phone) => app
            .client
            .post(app.url("/v1/transcripts"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(transcript_body(call_id, phone)),
        Req::Raw(method, path, content_type, body) => app
            .client
            .request(method.parse().expect("method"), app.url(path))
            .header("content-type", *content_type)
            .body(body.clone()),
    }
}

/// The value of the counter for `limit` on `route` in `/metrics`, 0 when absent.
async fn counted(app: &common::TestApp, limit: &str, route: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| {
            l.starts_with("aduan_limit_exceeded_total{")
                && l.contains(&format!("limit=\"{limit}\""))
                && l.contains(&format!("route=\"{route}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test]
async fn limits_table() {
    for case in cases() {
        let mut app = common::spawn_app(&instances(case.limits)).await;
        // The counter is process-wide; a case asserts that it grew.
        let before = match case.counted {
            Some((limit, route)) => counted(&app, limit, route).await,
            None => 0,
        };
        for (i, s) in case.steps.iter().enumerate() {
            let resp = request(&app, &s.req)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{} step {i}: {e}", case.label));
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").cloned();
            let body = resp.text().await.unwrap_or_default();
            assert_eq!(status, s.status, "{} step {i}: {body}", case.label);
            if let Some(answer) = &s.answer {
                let actual: Value = serde_json::from_str(&body)
                    .unwrap_or_else(|_| panic!("{} step {i}: not JSON: {body}", case.label));
                common::assert_json_matches(&actual, answer);
            }
            if s.retry_after {
                let secs: u64 = retry_after
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or_else(|| panic!("{} step {i}: Retry-After", case.label));
                assert!((1..=120).contains(&secs), "{} step {i}", case.label);
            }
        }
        let docs = app.complaints().await;
        common::assert_json_matches(&Value::Array(docs), &Value::Array(case.complaints));
        if let Some((limit, route)) = case.counted {
            assert!(
                counted(&app, limit, route).await > before,
                "{}: {limit} on {route} counted",
                case.label
            );
        }
        app.stop().await;
    }
}

/// Sends a request head and part of a body, then stalls: the request holds its
/// place in the listener until the socket is written to again or dropped.
async fn stalled_request(app: &common::TestApp, path: &str) -> tokio::net::TcpStream {
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nFrom=%2B62"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // Let the server read the head and enter the handler.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream
}

#[tokio::test]
async fn a_full_instance_refuses_at_once_but_twilio_waits_for_room() {
    let app = common::spawn_app(&instances(
        "[limits]\nmax_in_flight_per_instance = 1\ntwilio_wait_ms = 3000\nretry_after_seconds = 7\n",
    ))
    .await;

    // WhatsApp retries: refused at once with 503 and Retry-After.
    let held = stalled_request(&app, "/webhooks/whatsapp/wa-jabar").await;
    let resp = request(&app, &Req::WhatsApp("text.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    assert_eq!(
        resp.json::<Value>().await.expect("JSON"),
        json!({"error": "overloaded"})
    );
    drop(held);
    assert_eq!(app.stream_len().await, 0);

    // Twilio does not retry: the request waits until the stalled one is gone.
    let mut held = stalled_request(&app, "/webhooks/twilio/twilio-jabar").await;
    let body = common::fixture("channels/sms/fixtures/twilio/sms.form");
    let sig =
        String::from_utf8(common::fixture("channels/sms/fixtures/twilio/sms.sig")).expect("utf-8");
    let started = Instant::now();
    let waiting = app
        .client
        .post(app.url("/webhooks/twilio/twilio-jabar"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig.trim())
        .body(body)
        .send();
    let release = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Finishing the stalled body lets its request end (refused: not signed).
        held.write_all(&[b'0'; 90]).await.expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), held.read_to_end(&mut answer)).await;
    };
    let (resp, ()) = tokio::join!(waiting, release);
    let resp = resp.expect("sent");
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let docs = app.complaints().await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["external_id"], "SM3f1c9a7e2b4d6f8a0c2e4b6d8f0a1c3e");
    assert_eq!(docs[0]["instance"], "twilio-jabar");
}

#[tokio::test]
async fn too_many_headers_are_refused_with_431() {
    let app = common::spawn_app(&instances("[limits]\nmax_headers = 20\n")).await;
    let mut req = request(&app, &Req::WhatsApp("text.json"));
    for i in 0..30 {
        req = req.header(format!("x-tambahan-{i}"), "nilai");
    }
    let resp = req.send().await.expect("sent");
    assert_eq!(resp.status().as_u16(), 431);
    assert_eq!(app.stream_len().await, 0);
    assert!(counted(&app, "header_size", "any").await > 0);
}

#[tokio::test]
async fn a_request_head_over_its_size_is_refused_with_431() {
    let app = common::spawn_app(&instances("[limits]\nmax_header_bytes = 8192\n")).await;
    let resp = request(&app, &Req::WhatsApp("text.json"))
        .header("x-tambahan", "a".repeat(9000))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 431);
    assert_eq!(app.stream_len().await, 0);
    // Within the size, the same request goes through.
    let resp = request(&app, &Req::WhatsApp("text.json"))
        .header("x-tambahan", "a".repeat(4000))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);
    let docs = app.complaints().await;
    common::assert_json_matches(
        &Value::Array(docs),
        &Value::Array(expected("text.expected.json")),
    );
    assert!(counted(&app, "header_size", "any").await > 0);
}

#[tokio::test]
async fn a_client_too_slow_with_its_headers_is_disconnected() {
    let app = common::spawn_app(&instances("[limits]\nheader_read_timeout_seconds = 1\n")).await;
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /v1/transcripts HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "connection still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(counted(&app, "header_timeout", "any").await > 0);
}

#[test]
fn limits_with_unknown_routes_or_instances_are_configuration_errors() {
    let text = instances(
        "[limits]\nmax_header_bytes = 100\n[limits.body_limit_bytes]\nfax = 10\n[limits.instances.tidak-ada]\nper_sender_per_minute = 1\n",
    );
    let errors = match aduan::instances::check(&text, &[], "t.toml") {
        Ok(_) => panic!("accepted"),
        Err(e) => e.0,
    };
    let locations: Vec<&str> = errors.iter().map(|e| e.location.as_str()).collect();
    assert_eq!(
        locations,
        [
            "limits.max_header_bytes",
            "limits.body_limit_bytes.fax",
            "limits.instances.tidak-ada"
        ]
    );
}
