//! End to end: SMS providers (Twilio, Vonage, Infobip, generic gateways)
//! through the real gateway into a real Redis stream.
//!
//! Payloads are the files under `channels/sms/fixtures/`; Twilio and Vonage
//! signatures next to them were computed independently (Python `hmac`) for
//! the tokens and URLs configured below. Every case asserts the answer and
//! the whole stream afterwards: what it added, or that it added nothing.

mod common;

use std::time::Duration;

use aduan_adapter::testkit::{Answer, TWILIO_SIGNATURE_HEADER, basic_auth};
use common::table::{self, Case};
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

/// A whole document: the SMS defaults, then `fields` over them.
fn doc(fields: Value) -> Value {
    let mut base = json!({
        "schema": "aduan.complaint.v1",
        "id": "*",
        "tracking": null,
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
    let post_body = |label, body: Vec<u8>, sig: &str| {
        Case::post(label, "/webhooks/twilio/twilio-jabar")
            .form(body)
            .header(
                TWILIO_SIGNATURE_HEADER,
                fixture_text(&format!("twilio/{sig}.sig")),
            )
            .answer_type("text/xml")
    };
    let post = |label, file: &str, sig: &str| {
        post_body(label, fixture(&format!("twilio/{file}.form")), sig)
    };
    let media = "https://api.twilio.com/2010-04-01/Accounts/AC5f0d3e1b2a4c6e8f0a1b3c5d7e9f1a2b/Messages/MM7a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b/Media/";
    let tampered = String::from_utf8(fixture("twilio/sms.form"))
        .expect("utf-8")
        .replace("Cibinong", "Cileungsi");
    let tampered = post_body("tampered body", tampered.into_bytes(), "sms").status(403);
    let get_query = fixture_text("twilio/sms_get.query");
    let cases = vec![
        post("signed SMS with keyword", "sms", "sms")
            .answer(Answer::text(EMPTY_TWIML))
            .adds(vec![twilio_sms("twilio-jabar")]),
        post("redelivery: same answer, nothing new", "sms", "sms").answer(Answer::text(EMPTY_TWIML)),
        post("signature over the URL with :443", "sms", "sms.port443").answer(Answer::text(EMPTY_TWIML)),
        post("MMS with two media", "mms", "mms").answer(Answer::text(EMPTY_TWIML)).adds(vec![doc(json!({
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
            .answer(Answer::text(EMPTY_TWIML))
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
            .answer(Answer::text(EMPTY_TWIML))
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
        post("status callback: a delivery report, never a complaint", "status", "status").answer(Answer::text(EMPTY_TWIML)),
        post("signed but no From", "missing_from", "missing_from").status(400),
        tampered,
        post("signed with another token", "sms", "sms.wrongtoken").status(403),
        post("signed for another URL", "sms", "sms.proxy").status(403),
        Case::post("no signature header", "/webhooks/twilio/twilio-jabar")
            .form(fixture("twilio/sms.form"))
            .status(403)
            .answer_type("text/xml"),
        Case::get(
            "GET where only POST is configured",
            format!("/webhooks/twilio/twilio-jabar?{get_query}"),
        )
            .header(TWILIO_SIGNATURE_HEADER, fixture_text("twilio/sms_get.sig"))
            .status(405)
            .answer_type("text/xml"),
        Case::post("behind a trusted proxy", "/webhooks/twilio/twilio-proxy")
            .form(fixture("twilio/sms.form"))
            .header(TWILIO_SIGNATURE_HEADER, fixture_text("twilio/sms.proxy.sig"))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "aduan.example.go.id")
            .answer_type("text/xml")
            .answer(Answer::text(EMPTY_TWIML))
            .adds(vec![twilio_sms("twilio-proxy")]),
        Case::post("proxy headers naming another host", "/webhooks/twilio/twilio-proxy")
            .form(fixture("twilio/sms.form"))
            .header(TWILIO_SIGNATURE_HEADER, fixture_text("twilio/sms.proxy.sig"))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "evil.example.com")
            .status(403)
            .answer_type("text/xml"),
        Case::get(
            "GET webhook signs only the URL",
            format!("/webhooks/twilio/twilio-get?{get_query}"),
        )
            .header(TWILIO_SIGNATURE_HEADER, fixture_text("twilio/sms_get.sig"))
            .answer_type("text/xml")
            .answer(Answer::text(EMPTY_TWIML))
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
    table::run(&app, cases).await;
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

/// A Vonage `GET` whose query string is fixture `file`.
fn vonage_get(label: &str, instance: &str, file: &str) -> Case {
    let query = fixture_text(file);
    Case::get(label, format!("/webhooks/vonage/{instance}?{query}"))
}

/// A Vonage message to the hotline on `instance` that kept `raw`, then
/// `fields` over it.
fn vonage_doc(instance: &str, raw: Value, fields: Value) -> Value {
    let mut base = json!({
        "provider": "vonage",
        "instance": instance,
        "recipient": "+6281100017080",
        "raw": raw
    });
    merge(&mut base, fields);
    doc(base)
}

/// A sender known by phone number alone.
fn tel(e164: &str) -> Value {
    json!({"id": format!("tel:{e164}"), "phone": e164})
}

/// The signed fixture of `method` as it is written.
fn vonage_signed(method: &str) -> Value {
    let message_id: String = format!("1A00000{}", method.to_uppercase())
        .chars()
        .take(16)
        .collect();
    vonage_doc(
        &format!("vonage-{method}"),
        raw_form(&format!("vonage/signed_{method}.query")),
        json!({
            "external_id": message_id,
            "sent_at": "2026-11-22T08:15:30.000Z",
            "sender": tel("+6281234567890"),
            "subject": "ADUAN",
            "text": "Lampu jalan mati di Jl. Pahlawan RT 04"
        }),
    )
}

#[tokio::test]
async fn vonage_table() {
    let app = common::spawn_app(VONAGE).await;
    let jabar = "/webhooks/vonage/vonage-jabar";
    let mut cases = vec![
        vonage_get("GET query", "vonage-jabar", "vonage/inbound.query").adds(vec![vonage_doc(
            "vonage-jabar",
            raw_form("vonage/inbound.query"),
            json!({
                "external_id": "1A0000000A1B2C3D",
                "sent_at": "2026-11-22T08:15:30.000Z",
                "sender": tel("+6281234567890"),
                "subject": "ADUAN",
                "text": "Lampu jalan mati di Jl. Pahlawan RT 04"
            }),
        )]),
        vonage_get("redelivery: nothing new", "vonage-jabar", "vonage/inbound.query"),
        Case::post("POST form, unicode with emoji", jabar)
            .form(fixture("vonage/unicode.form"))
            .adds(vec![vonage_doc(
                "vonage-jabar",
                raw_form("vonage/unicode.form"),
                json!({
                    "external_id": "1A0000000A1B2C3E",
                    "sent_at": "2026-11-22T08:20:00.000Z",
                    "sender": tel("+6285712345678"),
                    "subject": "LAPOR",
                    "text": "🙏 Saluran air tersumbat, banjir setinggi 30 cm di Perumahan Griya Asri"
                }),
            )]),
        Case::post("POST JSON", jabar)
            .json(fixture("vonage/inbound.json"))
            .adds(vec![vonage_doc(
                "vonage-jabar",
                json!({"content_type": "application/json", "body": fixture_text("vonage/inbound.json")}),
                json!({
                    "external_id": "1A0000000A1B2C3F",
                    "sent_at": "2026-11-22T08:25:00.000Z",
                    "sender": tel("+6281398765432"),
                    "text": "Jembatan kayu di Desa Sukamaju hampir roboh"
                }),
            )]),
        vonage_get(
            "delivery receipt: a report, never a complaint",
            "vonage-jabar",
            "vonage/dlr.query",
        ),
        vonage_get(
            "unparseable message-timestamp",
            "vonage-jabar",
            "vonage/bad_timestamp.query",
        )
        .status(400),
        vonage_get("no text", "vonage-jabar", "vonage/missing_text.query").status(400),
        Case::new("PUT is not Vonage", "PUT", jabar)
            .form(fixture("vonage/unicode.form"))
            .status(405),
    ];
    for method in ["md5hash", "md5", "sha1", "sha256", "sha512"] {
        let file = format!("vonage/signed_{method}.query");
        cases.push(
            vonage_get("signed, each algorithm", &format!("vonage-{method}"), &file)
                .adds(vec![vonage_signed(method)]),
        );
    }
    cases.extend([
        vonage_get(
            "text changed after signing",
            "vonage-sha256",
            "vonage/signed_tampered.query",
        )
        .status(403),
        vonage_get(
            "unsigned request to a signed instance",
            "vonage-sha256",
            "vonage/inbound.query",
        )
        .status(403),
        vonage_get(
            "signed with another secret",
            "vonage-wrong",
            "vonage/signed_sha256.query",
        )
        .status(403),
        vonage_get(
            "timestamp outside the window",
            "vonage-stale",
            "vonage/signed_sha256.query",
        )
        .status(403),
    ]);
    table::run(&app, cases).await;
}

const CONCAT: &str = r#"
[[instances]]
name = "vonage-concat"
kind = "vonage"
concat_window_seconds = 2
"#;

/// The `raw` of a message joined from the parts `files`: their forms, one a line.
fn parts_raw(files: &[&str]) -> Value {
    let bodies: Vec<String> = files
        .iter()
        .map(|f| fixture_text(&format!("vonage/{f}.form")))
        .collect();
    json!({"content_type": "application/x-www-form-urlencoded", "body": bodies.join("\n")})
}

/// Part `file` of a concatenated SMS, as Vonage posts it.
fn part(label: &str, file: &str) -> Case {
    Case::post(label, "/webhooks/vonage/vonage-concat")
        .form(fixture(&format!("vonage/{file}.form")))
}

#[tokio::test]
async fn vonage_concatenated_messages() {
    let app = common::spawn_app(CONCAT).await;
    let whole = vonage_doc(
        "vonage-concat",
        parts_raw(&["concat_1of3", "concat_2of3", "concat_3of3"]),
        json!({
            "external_id": "1B00000000C0A401",
            "sent_at": "2026-11-22T09:00:01.000Z",
            "sender": tel("+6281234567890"),
            "subject": "LAPOR",
            "text": "Sudah dua bulan air PDAM di Perumahan Bumi Indah Blok C tidak mengalir sama sekali. Warga terpaksa membeli air galon setiap hari dengan biaya sendiri. Kami sudah melapor ke kantor cabang tetapi belum ada tanggapan. Mohon bantuan agar segera ditangani karena ada banyak lansia dan balita di lingkungan kami."
        }),
    );
    table::run(
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
    let incomplete = vonage_doc(
        "vonage-concat",
        parts_raw(&["partial_1of3", "partial_3of3"]),
        json!({
            "external_id": "1B00000000D0B501",
            "sent_at": "2026-11-22T09:10:01.000Z",
            "sender": tel("+6285712345678"),
            "subject": "ADUAN [incomplete: 2 of 3 parts]",
            "text": "Pohon tumbang menutup jalan desa Cikaret, […]dan belum ada petugas datang."
        }),
    );
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
    table::run(
        &app,
        [part("part 3 redelivered after the flush", "partial_3of3")],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        app.stream_len().await,
        2,
        "nothing new after another window"
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
        Case::post(label, format!("/webhooks/infobip/{instance}"))
            .json(fixture(&format!("infobip/{file}.json")))
    };
    let good = basic_auth("infobip", "infobip-basic-password");
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
        .answer_type("application/json")
        .answer(Answer::Json(json!({"error": "invalid", "errors": [
            {"field": "results[0].receivedAt", "message": "not a timestamp like 2016-10-06T09:28:39.220+0000"},
            {"field": "results[1].text", "message": "missing"}
        ]}))),
        post("wrong password", "infobip-jabar", "two_messages")
            .header("authorization", basic_auth("infobip", "tebakan"))
            .status(401),
        post("no credentials", "infobip-jabar", "two_messages").status(401),
        post("secret in a header", "infobip-header", "two_messages")
            .header("x-infobip-secret", "infobip-header-secret")
            .adds(infobip_pair("infobip-header", false)),
        post("wrong header secret", "infobip-header", "two_messages")
            .header("x-infobip-secret", "infobip-header-secreT")
            .status(401),
        Case::get("GET is not Infobip", "/webhooks/infobip/infobip-jabar")
            .header("authorization", good)
            .status(405),
    ];
    table::run(&app, cases).await;
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
    let kannel_get =
        |label, query: String| Case::get(label, format!("/webhooks/sms/sms-kannel?{query}"));
    let playsms = |label| {
        Case::post(label, "/webhooks/sms/sms-playsms").form(fixture("generic/playsms.form"))
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
        Case::post("Android gateway JSON, secret header", "/webhooks/sms/sms-android")
            .json(fixture("generic/android.json"))
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
        Case::post("Android gateway without the header", "/webhooks/sms/sms-android")
            .json(fixture("generic/android.json"))
            .status(401),
        playsms("playSMS form, Basic auth")
            .header("authorization", basic_auth("playsms", "playsms-password"))
            .adds(vec![playsms_doc]),
        playsms("playSMS redelivery within the dedup window")
            .header("authorization", basic_auth("playsms", "playsms-password")),
        playsms("playSMS wrong user")
            .header("authorization", basic_auth("kannel", "playsms-password"))
            .status(401),
    ];
    table::run(&app, cases).await;
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
    let ready = app.readiness().await;
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
    table::run(
        &app,
        ["concat_1of3", "concat_2of3", "concat_3of3"].map(|file| part("redelivered part", file)),
    )
    .await;
    assert_eq!(app.stream_len().await, 1, "redelivered parts write nothing");
}
