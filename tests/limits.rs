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

use aduan_adapter::testkit::{Answer, META, Signing, TWILIO_SIGNATURE_HEADER, bearer};
use common::table::{self, Case};
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

/// One limits case: a gateway with this `[limits]` section, the requests
/// it is sent and the counter of the limit that must have refused.
struct LimitCase {
    label: &'static str,
    /// The `[limits]` section (and its sub-tables) for this case.
    limits: &'static str,
    /// Each request and what it must come to, in order.
    steps: Vec<Case>,
    /// `limit` label that must have been counted, with the route.
    counted: Option<(&'static str, &'static str)>,
}

/// A signed WhatsApp webhook with a fixture body.
fn whatsapp(label: &str, name: &str) -> Case {
    Case::post(label, "/webhooks/whatsapp/wa-jabar")
        .json(common::fixtures("meta").bytes(&format!("whatsapp/{name}")))
        .signed(META, APP_SECRET, Signing::Good)
}

/// `whatsapp/text.json`, accepted as its golden documents.
fn whatsapp_text(label: &str) -> Case {
    whatsapp(label, "text.json").adds(text_documents())
}

/// A transcript: `plain.json` with this call id and caller phone.
fn transcript(label: &str, call_id: &str, phone: &str) -> Case {
    Case::post(label, "/v1/transcripts")
        .header("authorization", bearer(TOKEN))
        .json(transcript_body(call_id, phone))
}

/// A refusal with `status` and `{"error": error}`.
fn refused(case: Case, status: u16, error: &str) -> Case {
    case.status(status)
        .answer(Answer::Json(json!({ "error": error })))
}

/// A refusal that asks the provider to retry later.
fn throttled(case: Case, status: u16, error: &str) -> Case {
    refused(case, status, error).retry_after()
}

/// The golden documents of `whatsapp/text.json` on `wa-jabar`.
fn text_documents() -> Vec<Value> {
    let fixtures = common::fixtures("meta");
    match serde_json::from_slice(&fixtures.bytes("whatsapp/text.expected.json")) {
        Ok(Value::Array(docs)) => docs,
        other => panic!("whatsapp/text.expected.json: {other:?}"),
    }
}

/// The transcript fixture as a call with its own id and caller.
fn transcript_body(call_id: &str, phone: &str) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&common::fixtures("transcript").bytes("plain.json"))
            .expect("fixture is JSON");
    body["call_id"] = call_id.into();
    body["caller"]["phone"] = phone.into();
    serde_json::to_vec(&body).expect("serializes")
}

/// The document `transcript_body(call_id, phone)` becomes on `cc-bogor`: the
/// fixture's golden document on another instance, for another call and caller.
fn transcript_doc(call_id: &str, e164: &str) -> Value {
    let fixtures = common::fixtures("transcript");
    let golden: Value =
        serde_json::from_slice(&fixtures.bytes("plain.expected.json")).expect("golden documents");
    let mut doc = golden[0].clone();
    doc["instance"] = "cc-bogor".into();
    doc["external_id"] = call_id.into();
    doc["sender"]["id"] = format!("tel:{e164}").into();
    doc["sender"]["phone"] = e164.into();
    doc["thread"]["conversation"] = format!("cc-bogor:tel:{e164}").into();
    doc["call"]["call_id"] = call_id.into();
    doc["raw"] = Value::Null;
    doc
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

fn cases() -> Vec<LimitCase> {
    vec![
        LimitCase {
            label: "body over the route's own limit",
            limits: "[limits.body_limit_bytes]\ntranscripts = 400\n",
            steps: vec![refused(
                transcript("a transcript over 400 bytes", "BGR-1", "081234567890"),
                413,
                "too_large",
            )],
            counted: Some(("body_bytes", "transcripts")),
        },
        LimitCase {
            label: "route override leaves other routes alone",
            limits: "[limits.body_limit_bytes]\ntranscripts = 400\n",
            steps: vec![whatsapp_text("a WhatsApp text")],
            counted: None,
        },
        LimitCase {
            label: "JSON nested deeper than the limit, before verification",
            limits: "[limits]\njson_max_depth = 12\n",
            steps: vec![refused(
                Case::post("13 levels", "/webhooks/whatsapp/wa-jabar").json(nested_json(13)),
                413,
                "too_large",
            )],
            counted: Some(("json_depth", "whatsapp")),
        },
        LimitCase {
            label: "JSON within the depth limit still reaches the adapter",
            limits: "[limits]\njson_max_depth = 12\n",
            steps: vec![whatsapp_text("a WhatsApp text")],
            counted: None,
        },
        LimitCase {
            label: "form body with too many fields",
            limits: "[limits]\nform_max_fields = 20\n",
            steps: vec![
                Case::post("21 fields", "/webhooks/twilio/twilio-jabar")
                    .form(form_with_fields(21))
                    .status(413),
            ],
            counted: Some(("form_fields", "twilio")),
        },
        LimitCase {
            label: "query string with too many parameters",
            limits: "[limits]\nform_max_fields = 20\n",
            steps: vec![refused(
                Case::get(
                    "21 parameters",
                    format!(
                        "/webhooks/whatsapp/wa-jabar?{}",
                        String::from_utf8(form_with_fields(21)).expect("ascii")
                    ),
                )
                .header("content-type", "text/plain"),
                413,
                "too_large",
            )],
            counted: Some(("form_fields", "whatsapp")),
        },
        LimitCase {
            label: "batch with more messages than allowed",
            limits: "[limits]\nmax_messages_per_request = 2\n",
            steps: vec![
                refused(whatsapp("a batch of three", "batch.json"), 413, "too_large"),
                whatsapp_text("one message"),
            ],
            counted: Some(("messages", "whatsapp")),
        },
        LimitCase {
            label: "one sender over its rate; redeliveries are free; others go on",
            limits: "[limits.instances.cc-bogor]\nper_sender_per_minute = 2\n",
            steps: vec![
                transcript("first call", "BGR-1", "081234567890")
                    .status(201)
                    .adds(vec![transcript_doc("BGR-1", "+6281234567890")]),
                // Redelivered: answered like the first time, and takes no token.
                transcript("first call redelivered", "BGR-1", "081234567890").status(201),
                transcript("second call", "BGR-2", "081234567890")
                    .status(201)
                    .adds(vec![transcript_doc("BGR-2", "+6281234567890")]),
                throttled(
                    transcript("third call", "BGR-3", "081234567890"),
                    429,
                    "rate_limited",
                ),
                transcript("another caller", "BGR-4", "085712345678")
                    .status(201)
                    .adds(vec![transcript_doc("BGR-4", "+6285712345678")]),
            ],
            counted: Some(("sender_rate", "transcripts")),
        },
        LimitCase {
            label: "instance over its request rate",
            limits: "[limits.instances.cc-bogor]\nper_instance_rps = 1\nper_instance_burst = 1\n",
            steps: vec![
                transcript("first call", "BGR-1", "081234567890")
                    .status(201)
                    .adds(vec![transcript_doc("BGR-1", "+6281234567890")]),
                throttled(
                    transcript("second call at once", "BGR-2", "081234567890"),
                    429,
                    "rate_limited",
                ),
                // Another instance is not slowed by it.
                whatsapp_text("a WhatsApp text"),
            ],
            counted: Some(("instance_rate", "transcripts")),
        },
        LimitCase {
            label: "throttled WhatsApp sender answered 503 for Meta to retry",
            limits: "[limits]\nper_sender_per_minute = 1\n",
            steps: vec![
                whatsapp_text("first message"),
                throttled(
                    whatsapp("second message", "reply.json"),
                    503,
                    "rate_limited",
                ),
            ],
            counted: Some(("sender_rate", "whatsapp")),
        },
    ]
}

/// The value of the counter for `limit` on `route` in `/metrics`, 0 when absent.
async fn counted(app: &common::TestApp, limit: &str, route: &str) -> f64 {
    common::counter(
        &app.metrics().await,
        "aduan_limit_exceeded_total",
        &[("limit", limit), ("route", route)],
    )
}

#[tokio::test]
async fn limits_table() {
    for case in cases() {
        let mut app = common::spawn_app(&instances(case.limits)).await;
        // The counter is process-wide; a case asserts that it grew.
        let before = match case.counted {
            Some((limit, route)) => counted(&app, limit, route).await,
            None => 0.0,
        };
        let label = case.label;
        let steps = case.steps.into_iter().map(|step| step.prefixed(label));
        table::run(&app, steps).await;
        if let Some((limit, route)) = case.counted {
            assert!(
                counted(&app, limit, route).await > before,
                "{label}: {limit} on {route} counted",
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
    let resp = whatsapp("", "text.json")
        .request(&app)
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
    let sms = common::fixtures("sms");
    let started = Instant::now();
    let waiting = Case::post("", "/webhooks/twilio/twilio-jabar")
        .header(TWILIO_SIGNATURE_HEADER, sms.text("twilio/sms.sig"))
        .form(sms.bytes("twilio/sms.form"))
        .request(&app)
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
    let crowded = (0..30).fold(whatsapp("30 more headers", "text.json"), |case, i| {
        case.header(&format!("x-tambahan-{i}"), "nilai")
    });
    table::run(&app, [crowded.status(431)]).await;
    assert!(counted(&app, "header_size", "any").await > 0.0);
}

#[tokio::test]
async fn a_request_head_over_its_size_is_refused_with_431() {
    let app = common::spawn_app(&instances("[limits]\nmax_header_bytes = 8192\n")).await;
    table::run(
        &app,
        [
            whatsapp("a 9000-byte header", "text.json")
                .header("x-tambahan", "a".repeat(9000))
                .status(431),
            // Within the size, the same request goes through.
            whatsapp_text("a 4000-byte header").header("x-tambahan", "a".repeat(4000)),
        ],
    )
    .await;
    assert!(counted(&app, "header_size", "any").await > 0.0);
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
    assert!(counted(&app, "header_timeout", "any").await > 0.0);
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
