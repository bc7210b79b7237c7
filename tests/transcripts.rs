//! End to end: call-center transcripts posted to `POST /v1/transcripts`, through
//! the real gateway into a real Redis stream.
//!
//! Payloads are the files under `channels/transcript/fixtures/`; each case
//! asserts the answer and the whole normalized document (or that nothing was
//! written).

mod common;

use serde_json::{Value, json};

/// Tokens are literals here; deployments give them as `env:` or `file:`.
const JAKARTA_TOKEN: &str = "cc-jakarta-token-2026-a";
const JAKARTA_NEXT_TOKEN: &str = "cc-jakarta-token-2026-b";
const BANDUNG_TOKEN: &str = "cc-bandung-token-2026";

const INSTANCES: &str = r#"
[[instances]]
name = "cc-jakarta"
kind = "transcript"
tokens = ["cc-jakarta-token-2026-a", "cc-jakarta-token-2026-b"]
max_body_bytes = 16384

[[instances]]
name = "cc-bandung"
kind = "transcript"
tokens = ["cc-bandung-token-2026"]
max_segments = 50
keep_raw = false
"#;

const FIXTURES: &str = "channels/transcript/fixtures";

fn fixture(name: &str) -> Vec<u8> {
    common::fixture(&format!("{FIXTURES}/{name}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 fixture")
}

/// How a case authenticates.
enum Auth {
    Bearer(&'static str),
    Header(&'static str),
    None,
}

struct Case {
    label: &'static str,
    method: reqwest::Method,
    auth: Auth,
    body: Vec<u8>,
    status: u16,
    /// The whole answer body, `"*"` matching any value.
    answer: Option<Value>,
    /// Every document in the stream afterwards.
    complaints: Vec<Value>,
}

async fn send(
    app: &common::TestApp,
    method: reqwest::Method,
    auth: &Auth,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url("/v1/transcripts"))
        .header("content-type", "application/json")
        .body(body);
    match auth {
        Auth::Bearer(token) => req = req.bearer_auth(token),
        Auth::Header(value) => req = req.header("authorization", *value),
        Auth::None => {}
    }
    req.send().await.expect("request sent")
}

async fn post(app: &common::TestApp, token: &'static str, body: Vec<u8>) -> (u16, Value) {
    let response = send(app, reqwest::Method::POST, &Auth::Bearer(token), body).await;
    let status = response.status().as_u16();
    let answer = response.json().await.expect("JSON answer");
    (status, answer)
}

fn plain_complaint(raw_body: &str) -> Value {
    json!({
        "schema": "aduan.complaint.v1",
        "id": "*",
        "received_at": "*",
        "sent_at": "2026-11-22T01:15:30.000Z",
        "channel": "call_center",
        "provider": "transcript",
        "instance": "cc-jakarta",
        "external_id": "JKT-20261122-000123",
        "sender": {
            "id": "tel:+6281234567890",
            "name": "Budi Santoso",
            "phone": "+6281234567890",
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
            "conversation": "cc-jakarta:tel:+6281234567890",
            "in_reply_to": null,
            "references": []
        },
        "call": {
            "call_id": "JKT-20261122-000123",
            "agent_id": "AG-017",
            "agent_name": "Siti Rahayu",
            "started_at": "2026-11-22T01:15:30.000Z",
            "duration_seconds": 184,
            "direction": "inbound",
            "recording_url": null,
            "segments": []
        },
        "raw": {"content_type": "application/json", "body": raw_body}
    })
}

fn segmented_complaint(raw_body: &str) -> Value {
    json!({
        "schema": "aduan.complaint.v1",
        "id": "*",
        "received_at": "*",
        "sent_at": "2026-11-22T02:02:11.250Z",
        "channel": "call_center",
        "provider": "transcript",
        "instance": "cc-jakarta",
        "external_id": "JKT-20261122-000124",
        "sender": {
            "id": "tel:+6285711223344",
            "name": "Dewi Lestari",
            "phone": "+6285711223344",
            "email": null,
            "handle": null,
            "language": null
        },
        "recipient": null,
        "subject": "Pelayanan Kesehatan",
        "text": "Agen: Selamat pagi, layanan pengaduan 1708, dengan Rudi, ada yang bisa dibantu?\nPenelepon: Pagi Pak. Saya mau melapor, antrean BPJS di Puskesmas Kecamatan Sukmajaya sudah tiga hari sistemnya mati.\nAgen: Baik Bu, pengaduan kami catat dan kami teruskan ke Dinas Kesehatan Kota Depok.\nPenelepon: Terima kasih Pak.",
        "language": "ind",
        "attachments": [],
        "location": null,
        "thread": {
            "conversation": "cc-jakarta:tel:+6285711223344",
            "in_reply_to": null,
            "references": []
        },
        "call": {
            "call_id": "JKT-20261122-000124",
            "agent_id": "AG-022",
            "agent_name": "Rudi Hartono",
            "started_at": "2026-11-22T02:02:11.250Z",
            "duration_seconds": 96.5,
            "direction": "inbound",
            "recording_url": null,
            "segments": [
                {"speaker": "Agen", "text": "Selamat pagi, layanan pengaduan 1708, dengan Rudi, ada yang bisa dibantu?", "offset_seconds": 0},
                {"speaker": "Penelepon", "text": "Pagi Pak. Saya mau melapor, antrean BPJS di Puskesmas Kecamatan Sukmajaya sudah tiga hari sistemnya mati.", "offset_seconds": 4.2},
                {"speaker": "Agen", "text": "Baik Bu, pengaduan kami catat dan kami teruskan ke Dinas Kesehatan Kota Depok.", "offset_seconds": 31.8},
                {"speaker": "Penelepon", "text": "Terima kasih Pak.", "offset_seconds": 44}
            ]
        },
        "raw": {"content_type": "application/json", "body": raw_body}
    })
}

fn located_complaint() -> Value {
    json!({
        "schema": "aduan.complaint.v1",
        "id": "*",
        "received_at": "*",
        "sent_at": "2026-11-21T23:47:05.000Z",
        "channel": "call_center",
        "provider": "transcript",
        "instance": "cc-bandung",
        "external_id": "BDG-7f3a9c21",
        "sender": {
            "id": "agent:bdg-agent-04",
            "name": null,
            "phone": null,
            "email": null,
            "handle": null,
            "language": "id"
        },
        "recipient": null,
        "subject": "Penerangan Jalan Umum",
        "text": "Agen: Kami menindaklanjuti laporan lampu jalan padam di Jalan Soekarno-Hatta.\nWarga: Betul, sudah seminggu padam, di dekat halte Kiaracondong. Malam hari sangat gelap.",
        "language": null,
        "attachments": [],
        "location": {
            "latitude": -6.9383,
            "longitude": 107.6475,
            "name": "Halte Kiaracondong",
            "address": "Jl. Soekarno-Hatta, Kiaracondong, Kota Bandung, Jawa Barat"
        },
        "thread": {
            "conversation": "cc-bandung:agent:bdg-agent-04",
            "in_reply_to": null,
            "references": []
        },
        "call": {
            "call_id": "BDG-7f3a9c21",
            "agent_id": "bdg-agent-04",
            "agent_name": null,
            "started_at": "2026-11-21T23:47:05.000Z",
            "duration_seconds": 240,
            "direction": "outbound",
            "recording_url": "https://rekaman.callcenter.example.id/2026/11/21/BDG-7f3a9c21.ogg",
            "segments": [
                {"speaker": "Agen", "text": "Kami menindaklanjuti laporan lampu jalan padam di Jalan Soekarno-Hatta.", "offset_seconds": null},
                {"speaker": "Warga", "text": "Betul, sudah seminggu padam, di dekat halte Kiaracondong. Malam hari sangat gelap.", "offset_seconds": null}
            ]
        },
        "raw": null
    })
}

fn invalid(errors: &[(&str, &str)]) -> Option<Value> {
    let errors: Vec<Value> = errors
        .iter()
        .map(|(field, message)| json!({"field": field, "message": message}))
        .collect();
    Some(json!({"error": "invalid", "errors": errors}))
}

/// A transcript of `n` turns, each `turn_bytes` long.
fn long_transcript(call_id: &str, n: usize, turn_bytes: usize) -> Vec<u8> {
    let turn = "Air PDAM tidak mengalir ".repeat(turn_bytes / 24 + 1);
    let segments: Vec<Value> = (0..n)
        .map(|i| json!({"speaker": if i % 2 == 0 { "Agen" } else { "Penelepon" }, "text": &turn[..turn_bytes], "offset_seconds": i}))
        .collect();
    serde_json::to_vec(
        &json!({"call_id": call_id, "agent": {"id": "AG-017"}, "segments": segments}),
    )
    .expect("JSON")
}

fn cases() -> Vec<Case> {
    let plain = fixture("plain.json");
    let segmented = fixture("segments.json");
    let accepted = Some(json!({"id": "*", "duplicate": false}));
    vec![
        Case {
            label: "plain-text transcript",
            method: reqwest::Method::POST,
            auth: Auth::Bearer(JAKARTA_TOKEN),
            body: plain.clone(),
            status: 201,
            answer: accepted.clone(),
            complaints: vec![plain_complaint(&text(&plain))],
        },
        Case {
            label: "segmented transcript with the rotated-in token",
            method: reqwest::Method::POST,
            auth: Auth::Bearer(JAKARTA_NEXT_TOKEN),
            body: segmented.clone(),
            status: 201,
            answer: accepted.clone(),
            complaints: vec![segmented_complaint(&text(&segmented))],
        },
        Case {
            label: "location and recording, another call center, raw not kept",
            method: reqwest::Method::POST,
            auth: Auth::Bearer(BANDUNG_TOKEN),
            body: fixture("location_recording.json"),
            status: 201,
            answer: accepted.clone(),
            complaints: vec![located_complaint()],
        },
        Case {
            label: "every field error in one answer",
            method: reqwest::Method::POST,
            auth: Auth::Bearer(JAKARTA_TOKEN),
            body: fixture("invalid_many.json"),
            status: 400,
            answer: invalid(&[
                ("priority", "unknown field"),
                ("call_id", "is required"),
                ("agent.id", "is required"),
                ("caller.phone", "must be a phone number"),
                ("caller.name", "must be a string"),
                (
                    "started_at",
                    "must be an RFC 3339 timestamp such as 2026-11-22T08:15:30+07:00",
                ),
                ("duration_seconds", "must be at least 0"),
                ("direction", "must be \"inbound\" or \"outbound\""),
                ("segments[0].speaker", "is required"),
                ("text", "give either text or segments, not both"),
                ("location.latitude", "must be between -90 and 90"),
                ("location.longitude", "must be a number"),
            ]),
            complaints: vec![],
        },
        Case {
            label: "segment errors",
            method: reqwest::Method::POST,
            auth: Auth::Bearer(JAKARTA_TOKEN),
            body: fixture("invalid_segments.json"),
            status: 400,
            answer: invalid(&[
                ("segments[1].speaker", "must not be empty"),
                ("segments[1].offset_seconds", "must be at least 0"),
                ("segments[2]", "must be an object"),
                ("segments[3].confidence", "unknown field"),
                ("segments[3].text", "must be a string"),
            ]),
            complaints: vec![],
        },
        Case {
            label: "wrong types, neither text nor segments",
            method: reqwest::Method::POST,
            auth: Auth::Bearer(BANDUNG_TOKEN),
            body: fixture("invalid_neither.json"),
            status: 400,
            answer: invalid(&[
                ("call_id", "must be a string"),
                ("text", "either text or segments is required"),
                ("recording_url", "must be an absolute http or https URL"),
            ]),
            complaints: vec![],
        },
        Case {
            label: "truncated JSON",
            method: reqwest::Method::POST,
            auth: Auth::Bearer(JAKARTA_TOKEN),
            body: fixture("malformed.json"),
            status: 400,
            answer: Some(json!({"error": "malformed", "reason": "*"})),
            complaints: vec![],
        },
        Case {
            label: "wrong token",
            method: reqwest::Method::POST,
            auth: Auth::Bearer("cc-jakarta-token-2025"),
            body: plain.clone(),
            status: 401,
            answer: Some(json!({"error": "unauthorized"})),
            complaints: vec![],
        },
        Case {
            label: "truncated token",
            method: reqwest::Method::POST,
            auth: Auth::Header("Bearer cc-jakarta-token-2026-"),
            body: segmented.clone(),
            status: 401,
            answer: Some(json!({"error": "unauthorized"})),
            complaints: vec![],
        },
        Case {
            label: "missing Authorization",
            method: reqwest::Method::POST,
            auth: Auth::None,
            body: plain.clone(),
            status: 401,
            answer: Some(json!({"error": "unauthorized"})),
            complaints: vec![],
        },
        Case {
            label: "Basic instead of Bearer",
            method: reqwest::Method::POST,
            auth: Auth::Header("Basic Y2MtamFrYXJ0YTpjYy1qYWthcnRhLXRva2VuLTIwMjYtYQ=="),
            body: plain.clone(),
            status: 401,
            answer: Some(json!({"error": "unauthorized"})),
            complaints: vec![],
        },
        Case {
            label: "body over the instance's limit",
            method: reqwest::Method::POST,
            auth: Auth::Bearer(JAKARTA_TOKEN),
            body: long_transcript("JKT-20261122-000200", 40, 500),
            status: 413,
            answer: Some(json!({"error": "too_large"})),
            complaints: vec![],
        },
        Case {
            label: "more segments than the instance allows",
            method: reqwest::Method::POST,
            auth: Auth::Bearer(BANDUNG_TOKEN),
            body: long_transcript("BDG-20261122-000201", 51, 10),
            status: 413,
            answer: Some(json!({"error": "too_large"})),
            complaints: vec![],
        },
        Case {
            label: "GET is not a transcript",
            method: reqwest::Method::GET,
            auth: Auth::Bearer(JAKARTA_TOKEN),
            body: Vec::new(),
            status: 405,
            answer: None,
            complaints: vec![],
        },
    ]
}

#[tokio::test]
async fn transcript_cases() {
    for case in cases() {
        let mut app = common::spawn_app(INSTANCES).await;
        let response = send(&app, case.method, &case.auth, case.body).await;
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("answer body");
        assert_eq!(
            status,
            case.status,
            "{}: status, answer {}",
            case.label,
            String::from_utf8_lossy(&body)
        );
        if let Some(expected) = &case.answer {
            let answer: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{}: answer is not JSON: {e}", case.label));
            common::assert_json_matches(&answer, expected);
        }
        let stored = app.complaints().await;
        assert_eq!(
            stored.len(),
            case.complaints.len(),
            "{}: entries written",
            case.label
        );
        for (got, expected) in stored.iter().zip(&case.complaints) {
            common::assert_json_matches(got, expected);
        }
        if status == 201 {
            let answer: Value = serde_json::from_slice(&body).expect("JSON answer");
            assert_eq!(
                answer["id"], stored[0]["id"],
                "{}: the answer names the stored id",
                case.label
            );
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn a_resent_call_is_stored_once_with_the_same_id() {
    let mut app = common::spawn_app(INSTANCES).await;
    let plain = fixture("plain.json");
    let (status, first) = post(&app, JAKARTA_TOKEN, plain.clone()).await;
    assert_eq!((status, &first["duplicate"]), (201, &json!(false)));
    let (status, again) = post(&app, JAKARTA_NEXT_TOKEN, plain.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(again, json!({"id": first["id"], "duplicate": true}));

    // A corrected transcript of the same call is still the same call.
    let mut corrected: Value = serde_json::from_slice(&plain).expect("JSON fixture");
    corrected["text"] =
        json!("Koreksi: jalan berlubang di depan SDN 3 Cibinong, dua lubang besar.");
    let (status, resent) = post(
        &app,
        JAKARTA_TOKEN,
        serde_json::to_vec(&corrected).expect("JSON"),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(resent, json!({"id": first["id"], "duplicate": true}));

    let stored = app.complaints().await;
    assert_eq!(stored.len(), 1);
    common::assert_json_matches(&stored[0], &plain_complaint(&text(&plain)));
    assert_eq!(stored[0]["id"], first["id"]);

    // Another call center's call with the same id is a different call.
    let mut elsewhere: Value = serde_json::from_slice(&plain).expect("JSON fixture");
    elsewhere["caller"] = Value::Null;
    let (status, other) = post(
        &app,
        BANDUNG_TOKEN,
        serde_json::to_vec(&elsewhere).expect("JSON"),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(other["duplicate"], json!(false));
    assert_ne!(other["id"], first["id"]);
    let stored = app.complaints().await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1]["instance"], "cc-bandung");
    assert_eq!(stored[1]["sender"]["id"], "agent:AG-017");
    app.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_posts_of_one_call_write_one_entry() {
    let mut app = common::spawn_app(INSTANCES).await;
    let body = fixture("segments.json");
    let answers =
        futures::future::join_all((0..50).map(|_| post(&app, JAKARTA_TOKEN, body.clone()))).await;
    let first_id = &answers[0].1["id"];
    let mut originals = 0;
    for (status, answer) in &answers {
        assert_eq!(*status, 201, "{answer}");
        assert_eq!(
            &answer["id"], first_id,
            "every answer names the same complaint"
        );
        if answer["duplicate"] == json!(false) {
            originals += 1;
        }
    }
    assert_eq!(originals, 1, "exactly one post was the original");
    let stored = app.complaints().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(&stored[0]["id"], first_id);
    common::assert_json_matches(&stored[0], &segmented_complaint(&text(&body)));
    app.stop().await;
}
