//! End to end: SMS providers (Twilio, Vonage, Infobip, generic gateways)
//! through the real gateway into a real Redis stream.
//!
//! Payloads are the files under `channels/sms/fixtures/`; Twilio and Vonage
//! signatures next to them were computed independently (Python `hmac`) for
//! the tokens and URLs configured below. Every case asserts the answer and
//! the whole stream afterwards: what it added, or that it added nothing.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

const FIXTURES: &str = "channels/sms/fixtures";

fn fixture(name: &str) -> Vec<u8> {
    common::fixture(&format!("{FIXTURES}/{name}"))
}

fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name))
        .expect("UTF-8 fixture")
        .trim_end()
        .to_string()
}

const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// One request and what it must leave behind.
struct Case {
    label: &'static str,
    method: reqwest::Method,
    /// Path (with any query string) under the gateway.
    path: String,
    headers: Vec<(&'static str, String)>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// The answer's content type must start with this.
    answer_type: &'static str,
    /// The exact answer body, when it matters to the provider.
    answer: Option<&'static str>,
    /// The documents this request appends, in order (none for refusals,
    /// ignored events and redeliveries).
    adds: Vec<Value>,
}

impl Case {
    fn new(label: &'static str, method: reqwest::Method, path: impl Into<String>) -> Self {
        Case {
            label,
            method,
            path: path.into(),
            headers: Vec::new(),
            content_type: None,
            body: Vec::new(),
            status: 200,
            answer_type: "",
            answer: None,
            adds: Vec::new(),
        }
    }
    fn form(mut self, file: &str) -> Self {
        self.content_type = Some("application/x-www-form-urlencoded");
        self.body = fixture(file);
        self
    }
    fn json(mut self, file: &str) -> Self {
        self.content_type = Some("application/json");
        self.body = fixture(file);
        self
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    fn answer_type(mut self, t: &'static str) -> Self {
        self.answer_type = t;
        self
    }
    fn answer(mut self, body: &'static str) -> Self {
        self.answer = Some(body);
        self
    }
    fn adds(mut self, docs: Vec<Value>) -> Self {
        self.adds = docs;
        self
    }
}

/// Runs the table in order, checking the whole stream after every case.
async fn run(app: &common::TestApp, cases: Vec<Case>) {
    let mut expected: Vec<Value> = Vec::new();
    for case in cases {
        let mut req = app
            .client
            .request(case.method.clone(), app.url(&case.path))
            .body(case.body.clone());
        if let Some(ct) = case.content_type {
            req = req.header("content-type", ct);
        }
        for (name, value) in &case.headers {
            req = req.header(*name, value);
        }
        let response = req.send().await.expect("request sent");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response.text().await.expect("answer body");
        assert_eq!(
            status, case.status,
            "{}: status (answer {body})",
            case.label
        );
        assert!(
            content_type.starts_with(case.answer_type),
            "{}: answer type {content_type}",
            case.label
        );
        if let Some(answer) = case.answer {
            assert_eq!(body, answer, "{}: answer body", case.label);
        }
        expected.extend(case.adds);
        let actual = app.complaints().await;
        assert_eq!(
            actual.len(),
            expected.len(),
            "{}: stream length\n{actual:#?}",
            case.label
        );
        for (a, e) in actual.iter().zip(&expected) {
            common::assert_json_matches(a, e);
        }
    }
}

/// A whole document: the SMS defaults, then `fields` over them.
fn doc(fields: Value) -> Value {
    let mut base = json!({
        "schema": "aduan.complaint.v1",
        "id": "*",
        "received_at": "*",
        "sent_at": null,
        "channel": "sms",
        "provider": null,
        "instance": null,
        "external_id": null,
        "sender": {"id": null, "name": null, "phone": null, "email": null, "handle": null, "language": null},
        "recipient": null,
        "subject": null,
        "text": "",
        "language": null,
        "attachments": [],
        "location": null,
        "thread": {"conversation": null, "in_reply_to": null, "references": []},
        "call": null,
        "raw": null
    });
    // Language detection is the gateway's own, not the channel's: expect what it says.
    let detected = aduan::language::detect_language(fields["text"].as_str().unwrap_or(""));
    base["language"] = json!(detected);
    merge(&mut base, fields);
    let instance = base["instance"].as_str().unwrap_or("").to_string();
    let sender = base["sender"]["id"].as_str().unwrap_or("").to_string();
    if base["thread"]["conversation"].is_null() {
        base["thread"]["conversation"] = json!(format!("{instance}:{sender}"));
    }
    base
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn raw_form(file: &str) -> Value {
    json!({"content_type": "application/x-www-form-urlencoded", "body": fixture_text(file)})
}

// ---------------------------------------------------------------- Twilio

const TWILIO: &str = r#"
[[instances]]
name = "twilio-jabar"
kind = "twilio"
auth_token = "twilio-test-token-jabar"
public_url = "https://lapor.example.go.id/"

[[instances]]
name = "twilio-proxy"
kind = "twilio"
auth_token = "twilio-test-token-jabar"
trust_proxy = true

[[instances]]
name = "twilio-get"
kind = "twilio"
auth_token = "twilio-test-token-jabar"
public_url = "https://lapor.example.go.id"
allow_get = true
keep_raw = false
"#;

fn twilio_sms(instance: &str) -> Value {
    doc(json!({
        "provider": "twilio",
        "instance": instance,
        "external_id": "SM3f1c9a7e2b4d6f8a0c2e4b6d8f0a1c3e",
        "sender": {"id": "tel:+6281234567890", "phone": "+6281234567890"},
        "recipient": "+6281100017080",
        "subject": "LAPOR",
        "text": "Jalan berlubang di depan SDN 3 Cibinong, sudah dua motor jatuh minggu ini",
        "raw": raw_form("twilio/sms.form")
    }))
}

#[tokio::test]
async fn twilio_table() {
    let app = common::spawn_app(TWILIO).await;
    let post = |label, file: &str, sig: &str| {
        Case::new(
            label,
            reqwest::Method::POST,
            "/webhooks/twilio/twilio-jabar",
        )
        .form(&format!("twilio/{file}.form"))
        .header(
            "x-twilio-signature",
            fixture_text(&format!("twilio/{sig}.sig")),
        )
        .answer_type("text/xml")
    };
    let media = "https://api.twilio.com/2010-04-01/Accounts/AC5f0d3e1b2a4c6e8f0a1b3c5d7e9f1a2b/Messages/MM7a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b/Media/";
    let mut tampered = post("tampered body", "sms", "sms").status(403);
    tampered.body = String::from_utf8(tampered.body)
        .expect("utf-8")
        .replace("Cibinong", "Cileungsi")
        .into_bytes();
    let get_query = fixture_text("twilio/sms_get.query");
    let cases = vec![
        post("signed SMS with keyword", "sms", "sms")
            .answer(EMPTY_TWIML)
            .adds(vec![twilio_sms("twilio-jabar")]),
        post("redelivery: same answer, nothing new", "sms", "sms").answer(EMPTY_TWIML),
        post("signature over the URL with :443", "sms", "sms.port443").answer(EMPTY_TWIML),
        post("MMS with two media", "mms", "mms").answer(EMPTY_TWIML).adds(vec![doc(json!({
            "provider": "twilio",
            "instance": "twilio-jabar",
            "external_id": "MM7a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b",
            "sender": {"id": "tel:+6285712345678", "phone": "+6285712345678"},
            "recipient": "+6281100017080",
            "text": "Sampah menumpuk di Pasar Anyar Tangerang, sudah seminggu tidak diangkut",
            "attachments": [
                {"kind": "image", "content_type": "image/jpeg", "filename": null, "size": null, "sha256": null,
                 "url": format!("{media}ME1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a"), "provider_ref": null, "storage_key": null, "caption": null},
                {"kind": "video", "content_type": "video/mp4", "filename": null, "size": null, "sha256": null,
                 "url": format!("{media}ME2c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b"), "provider_ref": null, "storage_key": null, "caption": null}
            ],
            "raw": raw_form("twilio/mms.form")
        }))]),
        post("WhatsApp location via Twilio", "whatsapp_location", "whatsapp_location")
            .answer(EMPTY_TWIML)
            .adds(vec![doc(json!({
                "channel": "whatsapp",
                "provider": "twilio",
                "instance": "twilio-jabar",
                "external_id": "SM9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
                "sender": {"id": "whatsapp:6281398765432", "name": "Dewi Lestari", "phone": "+6281398765432"},
                "recipient": "+6281100017080",
                "location": {"latitude": -6.4815, "longitude": 106.854, "name": "SDN 3 Cibinong",
                             "address": "Jl. Raya Cibinong No. 12, Bogor"},
                "raw": raw_form("twilio/whatsapp_location.form")
            }))]),
        post("base64 body of a concatenated SMS", "base64", "base64")
            .answer(EMPTY_TWIML)
            .adds(vec![doc(json!({
                "provider": "twilio",
                "instance": "twilio-jabar",
                "external_id": "MM4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c",
                "sender": {"id": "tel:+6281234567890", "phone": "+6281234567890"},
                "recipient": "+6281100017080",
                "subject": "LAPOR",
                "text": "Lampu penerangan jalan di Jl. Merdeka depan Puskesmas Kecamatan Sukajadi mati total sejak tiga minggu, warga takut keluar malam. Mohon segera diperbaiki.",
                "raw": raw_form("twilio/base64.form")
            }))]),
        post("status callback: acknowledged, not written", "status", "status").answer(EMPTY_TWIML),
        post("signed but no From", "missing_from", "missing_from").status(400),
        tampered,
        post("signed with another token", "sms", "sms.wrongtoken").status(403),
        post("signed for another URL", "sms", "sms.proxy").status(403),
        Case::new("no signature header", reqwest::Method::POST, "/webhooks/twilio/twilio-jabar")
            .form("twilio/sms.form")
            .status(403)
            .answer_type("text/xml"),
        Case::new("GET where only POST is configured", reqwest::Method::GET,
                  format!("/webhooks/twilio/twilio-jabar?{get_query}"))
            .header("x-twilio-signature", fixture_text("twilio/sms_get.sig"))
            .status(405)
            .answer_type("text/xml"),
        Case::new("behind a trusted proxy", reqwest::Method::POST, "/webhooks/twilio/twilio-proxy")
            .form("twilio/sms.form")
            .header("x-twilio-signature", fixture_text("twilio/sms.proxy.sig"))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "aduan.example.go.id")
            .answer_type("text/xml")
            .answer(EMPTY_TWIML)
            .adds(vec![twilio_sms("twilio-proxy")]),
        Case::new("proxy headers naming another host", reqwest::Method::POST, "/webhooks/twilio/twilio-proxy")
            .form("twilio/sms.form")
            .header("x-twilio-signature", fixture_text("twilio/sms.proxy.sig"))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "evil.example.com")
            .status(403)
            .answer_type("text/xml"),
        Case::new("GET webhook signs only the URL", reqwest::Method::GET,
                  format!("/webhooks/twilio/twilio-get?{get_query}"))
            .header("x-twilio-signature", fixture_text("twilio/sms_get.sig"))
            .answer_type("text/xml")
            .answer(EMPTY_TWIML)
            .adds(vec![doc(json!({
                "provider": "twilio",
                "instance": "twilio-get",
                "external_id": "SM5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a",
                "sender": {"id": "tel:+6281234567890", "phone": "+6281234567890"},
                "recipient": "+6281100017080",
                "subject": "ADUAN",
                "text": "pungli di kantor kelurahan"
            }))]),
    ];
    run(&app, cases).await;
}

// ---------------------------------------------------------------- Vonage

const VONAGE: &str = r#"
[[instances]]
name = "vonage-jabar"
kind = "vonage"

[[instances]]
name = "vonage-md5hash"
kind = "vonage"
signature_secret = "vonage-signature-secret-jabar"
signature_max_age_seconds = 315360000

[[instances]]
name = "vonage-md5"
kind = "vonage"
signature_secret = "vonage-signature-secret-jabar"
signature_method = "md5"
signature_max_age_seconds = 315360000

[[instances]]
name = "vonage-sha1"
kind = "vonage"
signature_secret = "vonage-signature-secret-jabar"
signature_method = "sha1"
signature_max_age_seconds = 315360000

[[instances]]
name = "vonage-sha256"
kind = "vonage"
signature_secret = "vonage-signature-secret-jabar"
signature_method = "sha256"
signature_max_age_seconds = 315360000

[[instances]]
name = "vonage-sha512"
kind = "vonage"
signature_secret = "vonage-signature-secret-jabar"
signature_method = "sha512"
signature_max_age_seconds = 315360000

[[instances]]
name = "vonage-wrong"
kind = "vonage"
signature_secret = "some-other-secret"
signature_method = "sha256"
signature_max_age_seconds = 315360000

[[instances]]
name = "vonage-stale"
kind = "vonage"
signature_secret = "vonage-signature-secret-jabar"
signature_method = "sha256"
signature_max_age_seconds = 3600
"#;

fn vonage_get(instance: &str, file: &str) -> Case {
    let query = fixture_text(file);
    Case::new(
        "",
        reqwest::Method::GET,
        format!("/webhooks/vonage/{instance}?{query}"),
    )
}

fn vonage_signed(method: &str) -> Value {
    let file = format!("vonage/signed_{method}.query");
    let message_id: String = format!("1A00000{}", method.to_uppercase())
        .chars()
        .take(16)
        .collect();
    doc(json!({
        "provider": "vonage",
        "instance": format!("vonage-{method}"),
        "external_id": message_id,
        "sent_at": "2026-11-22T08:15:30.000Z",
        "sender": {"id": "tel:+6281234567890", "phone": "+6281234567890"},
        "recipient": "+6281100017080",
        "subject": "ADUAN",
        "text": "Lampu jalan mati di Jl. Pahlawan RT 04",
        "raw": raw_form(&file)
    }))
}

#[tokio::test]
async fn vonage_table() {
    let app = common::spawn_app(VONAGE).await;
    let labelled = |mut c: Case, label| {
        c.label = label;
        c
    };
    let mut cases = vec![
        labelled(
            vonage_get("vonage-jabar", "vonage/inbound.query"),
            "GET query",
        )
        .adds(vec![doc(json!({
            "provider": "vonage",
            "instance": "vonage-jabar",
            "external_id": "1A0000000A1B2C3D",
            "sent_at": "2026-11-22T08:15:30.000Z",
            "sender": {"id": "tel:+6281234567890", "phone": "+6281234567890"},
            "recipient": "+6281100017080",
            "subject": "ADUAN",
            "text": "Lampu jalan mati di Jl. Pahlawan RT 04",
            "raw": raw_form("vonage/inbound.query")
        }))]),
        labelled(
            vonage_get("vonage-jabar", "vonage/inbound.query"),
            "redelivery: nothing new",
        ),
        Case::new(
            "POST form, unicode with emoji",
            reqwest::Method::POST,
            "/webhooks/vonage/vonage-jabar",
        )
        .form("vonage/unicode.form")
        .adds(vec![doc(json!({
            "provider": "vonage",
            "instance": "vonage-jabar",
            "external_id": "1A0000000A1B2C3E",
            "sent_at": "2026-11-22T08:20:00.000Z",
            "sender": {"id": "tel:+6285712345678", "phone": "+6285712345678"},
            "recipient": "+6281100017080",
            "subject": "LAPOR",
            "text": "🙏 Saluran air tersumbat, banjir setinggi 30 cm di Perumahan Griya Asri",
            "raw": raw_form("vonage/unicode.form")
        }))]),
        Case::new(
            "POST JSON",
            reqwest::Method::POST,
            "/webhooks/vonage/vonage-jabar",
        )
        .json("vonage/inbound.json")
        .adds(vec![doc(json!({
            "provider": "vonage",
            "instance": "vonage-jabar",
            "external_id": "1A0000000A1B2C3F",
            "sent_at": "2026-11-22T08:25:00.000Z",
            "sender": {"id": "tel:+6281398765432", "phone": "+6281398765432"},
            "recipient": "+6281100017080",
            "text": "Jembatan kayu di Desa Sukamaju hampir roboh",
            "raw": {"content_type": "application/json", "body": fixture_text("vonage/inbound.json")}
        }))]),
        labelled(
            vonage_get("vonage-jabar", "vonage/dlr.query"),
            "delivery receipt: acknowledged, not written",
        ),
        labelled(
            vonage_get("vonage-jabar", "vonage/bad_timestamp.query"),
            "unparseable message-timestamp",
        )
        .status(400),
        labelled(
            vonage_get("vonage-jabar", "vonage/missing_text.query"),
            "no text",
        )
        .status(400),
        Case::new(
            "PUT is not Vonage",
            reqwest::Method::PUT,
            "/webhooks/vonage/vonage-jabar",
        )
        .form("vonage/unicode.form")
        .status(405),
    ];
    for method in ["md5hash", "md5", "sha1", "sha256", "sha512"] {
        let file = format!("vonage/signed_{method}.query");
        cases.push(
            labelled(
                vonage_get(&format!("vonage-{method}"), &file),
                "signed, each algorithm",
            )
            .adds(vec![vonage_signed(method)]),
        );
    }
    cases.extend([
        labelled(
            vonage_get("vonage-sha256", "vonage/signed_tampered.query"),
            "text changed after signing",
        )
        .status(403),
        labelled(
            vonage_get("vonage-sha256", "vonage/inbound.query"),
            "unsigned request to a signed instance",
        )
        .status(403),
        labelled(
            vonage_get("vonage-wrong", "vonage/signed_sha256.query"),
            "signed with another secret",
        )
        .status(403),
        labelled(
            vonage_get("vonage-stale", "vonage/signed_sha256.query"),
            "timestamp outside the window",
        )
        .status(403),
    ]);
    run(&app, cases).await;
}

const CONCAT: &str = r#"
[[instances]]
name = "vonage-concat"
kind = "vonage"
concat_window_seconds = 2
"#;

#[tokio::test]
async fn vonage_concatenated_messages() {
    let app = common::spawn_app(CONCAT).await;
    let part = |label, file: &str| {
        Case::new(
            label,
            reqwest::Method::POST,
            "/webhooks/vonage/vonage-concat",
        )
        .form(&format!("vonage/{file}.form"))
    };
    let raws: Vec<String> = (1..=3)
        .map(|i| fixture_text(&format!("vonage/concat_{i}of3.form")))
        .collect();
    let whole = doc(json!({
        "provider": "vonage",
        "instance": "vonage-concat",
        "external_id": "1B00000000C0A401",
        "sent_at": "2026-11-22T09:00:01.000Z",
        "sender": {"id": "tel:+6281234567890", "phone": "+6281234567890"},
        "recipient": "+6281100017080",
        "subject": "LAPOR",
        "text": "Sudah dua bulan air PDAM di Perumahan Bumi Indah Blok C tidak mengalir sama sekali. Warga terpaksa membeli air galon setiap hari dengan biaya sendiri. Kami sudah melapor ke kantor cabang tetapi belum ada tanggapan. Mohon bantuan agar segera ditangani karena ada banyak lansia dan balita di lingkungan kami.",
        "raw": {"content_type": "application/x-www-form-urlencoded", "body": raws.join("\n")}
    }));
    run(
        &app,
        vec![
            part("part 3 first: held", "concat_3of3"),
            part("part 1: held", "concat_1of3"),
            part(
                "part 1 again: a duplicate part changes nothing",
                "concat_1of3",
            ),
            part("part 2 completes the message", "concat_2of3").adds(vec![whole]),
            part(
                "part 2 redelivered after the message was written",
                "concat_2of3",
            ),
            part("a message missing its part 2: part 1", "partial_1of3"),
            part("part 3", "partial_3of3"),
        ],
    )
    .await;

    // Part 2 never comes: once the window passes, the parts held are written as one.
    let raws = [
        fixture_text("vonage/partial_1of3.form"),
        fixture_text("vonage/partial_3of3.form"),
    ];
    let incomplete = doc(json!({
        "provider": "vonage",
        "instance": "vonage-concat",
        "external_id": "1B00000000D0B501",
        "sent_at": "2026-11-22T09:10:01.000Z",
        "sender": {"id": "tel:+6285712345678", "phone": "+6285712345678"},
        "recipient": "+6281100017080",
        "subject": "ADUAN [incomplete: 2 of 3 parts]",
        "text": "Pohon tumbang menutup jalan desa Cikaret, […]dan belum ada petugas datang.",
        "raw": {"content_type": "application/x-www-form-urlencoded", "body": raws.join("\n")}
    }));
    let mut docs = Vec::new();
    for _ in 0..40 {
        docs = app.complaints().await;
        if docs.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        docs.len(),
        2,
        "the incomplete message is written after its window"
    );
    common::assert_json_matches(&docs[1], &incomplete);

    // A late part of a message already written is not held again.
    run_more(
        &app,
        part("part 3 redelivered after the flush", "partial_3of3"),
        2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        app.stream_len().await,
        2,
        "nothing new after another window"
    );
}

/// Sends one more case when the stream already holds `before` documents.
async fn run_more(app: &common::TestApp, case: Case, before: usize) {
    let mut req = app
        .client
        .request(case.method.clone(), app.url(&case.path))
        .body(case.body.clone());
    if let Some(ct) = case.content_type {
        req = req.header("content-type", ct);
    }
    let response = req.send().await.expect("request sent");
    assert_eq!(response.status().as_u16(), case.status, "{}", case.label);
    assert_eq!(
        app.stream_len().await,
        before + case.adds.len(),
        "{}",
        case.label
    );
}

// ---------------------------------------------------------------- Infobip

const INFOBIP: &str = r#"
[[instances]]
name = "infobip-jabar"
kind = "infobip"
username = "infobip"
secret = "infobip-basic-password"

[[instances]]
name = "infobip-header"
kind = "infobip"
auth = "header"
secret_header = "X-Infobip-Secret"
secret = "infobip-header-secret"
keep_raw = false
"#;

/// `Authorization: Basic` for the credentials used below (base64 written out
/// so the test needs no encoder).
fn basic(user: &str, password: &str) -> String {
    let encoded = match (user, password) {
        ("infobip", "infobip-basic-password") => "aW5mb2JpcDppbmZvYmlwLWJhc2ljLXBhc3N3b3Jk",
        ("infobip", "tebakan") => "aW5mb2JpcDp0ZWJha2Fu",
        ("playsms", "playsms-password") => "cGxheXNtczpwbGF5c21zLXBhc3N3b3Jk",
        ("kannel", "playsms-password") => "a2FubmVsOnBsYXlzbXMtcGFzc3dvcmQ=",
        other => panic!("no encoding written out for {other:?}"),
    };
    format!("Basic {encoded}")
}

fn infobip_pair(instance: &str, raw: bool) -> Vec<Value> {
    let raw = if raw {
        json!({"content_type": "application/json", "body": fixture_text("infobip/two_messages.json")})
    } else {
        Value::Null
    };
    vec![
        doc(json!({
            "provider": "infobip",
            "instance": instance,
            "external_id": "817790313235066447",
            "sent_at": "2026-11-22T08:05:00.123Z",
            "sender": {"id": "tel:+6281234567890", "phone": "+6281234567890"},
            "recipient": "628111708",
            "subject": "LAPOR",
            "text": "Pungutan liar di loket pembuatan KTP Kecamatan Cibinong",
            "raw": raw.clone()
        })),
        doc(json!({
            "provider": "infobip",
            "instance": instance,
            "external_id": "817790313235066448",
            "sent_at": "2026-11-22T08:07:30.000Z",
            "sender": {"id": "tel:+6287812345678", "phone": "+6287812345678"},
            "recipient": "628111708",
            "text": "Antrian BPJS di RSUD sangat panjang, pasien menunggu 6 jam",
            "raw": raw
        })),
    ]
}

#[tokio::test]
async fn infobip_table() {
    let app = common::spawn_app(INFOBIP).await;
    let post = |label, instance: &str, file: &str| {
        Case::new(
            label,
            reqwest::Method::POST,
            format!("/webhooks/infobip/{instance}"),
        )
        .json(&format!("infobip/{file}.json"))
    };
    let good = basic("infobip", "infobip-basic-password");
    let cases = vec![
        post(
            "two messages in one request",
            "infobip-jabar",
            "two_messages",
        )
        .header("authorization", good.clone())
        .adds(infobip_pair("infobip-jabar", true)),
        post("redelivery: nothing new", "infobip-jabar", "two_messages")
            .header("authorization", good.clone()),
        post("no results", "infobip-jabar", "empty").header("authorization", good.clone()),
        post(
            "a missing text and a bad receivedAt refuse the request",
            "infobip-jabar",
            "invalid",
        )
        .header("authorization", good.clone())
        .status(400)
        .answer_type("application/json"),
        post("wrong password", "infobip-jabar", "two_messages")
            .header("authorization", basic("infobip", "tebakan"))
            .status(401),
        post("no credentials", "infobip-jabar", "two_messages").status(401),
        post("secret in a header", "infobip-header", "two_messages")
            .header("x-infobip-secret", "infobip-header-secret")
            .adds(infobip_pair("infobip-header", false)),
        post("wrong header secret", "infobip-header", "two_messages")
            .header("x-infobip-secret", "infobip-header-secreT")
            .status(401),
        Case::new(
            "GET is not Infobip",
            reqwest::Method::GET,
            "/webhooks/infobip/infobip-jabar",
        )
        .header("authorization", good)
        .status(405),
    ];
    run(&app, cases).await;
    let app_answer = app
        .client
        .post(app.url("/webhooks/infobip/infobip-jabar"))
        .header("authorization", basic("infobip", "infobip-basic-password"))
        .header("content-type", "application/json")
        .body(fixture("infobip/invalid.json"))
        .send()
        .await
        .expect("sent")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(
        app_answer,
        json!({"error": "invalid", "errors": [
            {"field": "results[0].receivedAt", "message": "not a timestamp like 2016-10-06T09:28:39.220+0000"},
            {"field": "results[1].text", "message": "missing"}
        ]})
    );
}

// ---------------------------------------------------------------- generic

const GENERIC: &str = r#"
[[instances]]
name = "sms-kannel"
kind = "sms"
auth = "query"
secret = "kannel-shared-secret"
timestamp_field = "ts"
timestamp_format = "%Y-%m-%d %H:%M:%S"

[[instances]]
name = "sms-android"
kind = "sms"
auth = "header"
secret = "android-gateway-secret"
sender_field = "payload.phoneNumber"
text_field = "payload.message"
id_field = "payload.messageId"
timestamp_field = "payload.receivedAt"

[[instances]]
name = "sms-playsms"
kind = "sms"
auth = "basic"
username = "playsms"
secret = "playsms-password"
text_field = "message"
keywords = ["ADUAN"]
"#;

#[tokio::test]
async fn generic_table() {
    let app = common::spawn_app(GENERIC).await;
    let kannel = fixture_text("generic/kannel.query");
    let kannel_get = |label, query: String| {
        Case::new(
            label,
            reqwest::Method::GET,
            format!("/webhooks/sms/sms-kannel?{query}"),
        )
    };
    let playsms = |label| {
        Case::new(label, reqwest::Method::POST, "/webhooks/sms/sms-playsms")
            .form("generic/playsms.form")
    };
    let playsms_doc = doc(json!({
        "provider": "generic_sms",
        "instance": "sms-playsms",
        "external_id": "*",
        "sender": {"id": "tel:+6281398765432", "phone": "+6281398765432"},
        "recipient": "1708",
        "subject": "ADUAN",
        "text": "Guru honorer belum digaji 3 bulan di SDN 1 Ciomas",
        "raw": raw_form("generic/playsms.form")
    }));
    let cases = vec![
        kannel_get("Kannel GET, secret in the query, no id", kannel.clone()).adds(vec![doc(json!({
            "provider": "generic_sms",
            "instance": "sms-kannel",
            // sha256 of the sender, recipient, text and timestamp, NUL-separated.
            "external_id": "sha256:6f4c63fb9326fcae655be30adde4e46414ea9cf4299ee09f5af69052654c9a3b",
            "sent_at": "2026-11-22T08:30:00.000Z",
            "sender": {"id": "tel:+6281234567890", "phone": "+6281234567890"},
            "recipient": "1708",
            "subject": "LAPOR",
            "text": "Parkir liar di trotoar Jl. Sudirman depan Mall",
            // The secret is not copied into the stream.
            "raw": {"content_type": "application/x-www-form-urlencoded",
                    "body": kannel.replace("&secret=kannel-shared-secret", "")}
        }))]),
        kannel_get("redelivery: same content id, nothing new", kannel.clone()),
        kannel_get("wrong secret", kannel.replace("kannel-shared-secret", "tebak")).status(401),
        kannel_get("no secret", kannel.replace("&secret=kannel-shared-secret", "")).status(401),
        kannel_get("no text", kannel.replace("text=", "teks=")).status(400),
        kannel_get("timestamp not in the configured format", kannel.replace("2026-11-22", "22-11-2026")).status(400),
        Case::new("Android gateway JSON, secret header", reqwest::Method::POST, "/webhooks/sms/sms-android")
            .json("generic/android.json")
            .header("x-aduan-secret", "android-gateway-secret")
            .adds(vec![doc(json!({
                "provider": "generic_sms",
                "instance": "sms-android",
                "external_id": "abc-123-def",
                "sent_at": "2026-11-22T08:40:00.000Z",
                "sender": {"id": "tel:+6285712345678", "phone": "+6285712345678"},
                "text": "Lampu lalu lintas di perempatan Ciawi mati 🚦",
                "raw": {"content_type": "application/json", "body": fixture_text("generic/android.json")}
            }))]),
        Case::new("Android gateway without the header", reqwest::Method::POST, "/webhooks/sms/sms-android")
            .json("generic/android.json")
            .status(401),
        playsms("playSMS form, Basic auth")
            .header("authorization", basic("playsms", "playsms-password"))
            .adds(vec![playsms_doc]),
        playsms("playSMS redelivery within the dedup window")
            .header("authorization", basic("playsms", "playsms-password")),
        playsms("playSMS wrong user")
            .header("authorization", basic("kannel", "playsms-password"))
            .status(401),
    ];
    run(&app, cases).await;
    let docs = app.complaints().await;
    let id = docs[2]["external_id"].as_str().unwrap_or("");
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "content id {id}"
    );
}

/// While Redis is away, the parts of a split message are accepted into the
/// spool (Vonage gets its `200`, not a `503` it would retry for a day); once
/// Redis answers, the forwarder holds them and the whole message is written once.
#[tokio::test]
async fn parts_are_spooled_while_redis_is_down_and_joined_when_it_returns() {
    let mut redis = common::private_redis::PrivateRedis::stopped();
    let app = common::spawn_app_with(CONCAT, &redis.url(), &common::unique("concat-spool")).await;
    for file in ["concat_3of3", "concat_1of3", "concat_2of3"] {
        let resp = app
            .client
            .post(app.url("/webhooks/vonage/vonage-concat"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(fixture(&format!("vonage/{file}.form")))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "{file} taken while Redis is down");
    }
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["spool"]["depth"], 3, "the three parts wait: {ready}");

    redis.restart().await;
    let mut docs = Vec::new();
    for _ in 0..80 {
        docs = app.complaints().await;
        if !docs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(docs.len(), 1, "one complaint for the three parts");
    assert_eq!(docs[0]["external_id"], "1B00000000C0A401");
    assert!(
        docs[0]["text"].as_str().is_some_and(
            |t| t.starts_with("Sudah dua bulan air PDAM") && t.ends_with("lingkungan kami.")
        ),
        "{}",
        docs[0]
    );
    // The same parts again, now that Redis answers: nothing new.
    for file in ["concat_1of3", "concat_2of3", "concat_3of3"] {
        let resp = app
            .client
            .post(app.url("/webhooks/vonage/vonage-concat"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(fixture(&format!("vonage/{file}.form")))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(app.stream_len().await, 1, "redelivered parts write nothing");
}
