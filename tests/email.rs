//! Inbound-email webhooks end to end: Mailgun, SendGrid and Postmark requests
//! (fixtures under `channels/email/fixtures/webhooks/`) through the real
//! gateway into the real Redis, each case asserting the whole document and
//! what is (or is not) written, and the attachment files in the blob store.

mod common;

use aduan_adapter::testkit::{basic_auth, raw};
use common::table::{self, Case};
use serde_json::{Value, json};

const SIGNING_KEY: &str = "key-mailgun-uji-7f3a";
const TOKEN: &str = "c0ffee5e1d9a4b7e8f2a3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e";

fn config(blob_dir: &std::path::Path) -> String {
    format!(
        r#"
[blobs]
dir = "{}"

[[instances]]
name = "lapor-mailgun"
kind = "mailgun"
signing_key = "{SIGNING_KEY}"

[[instances]]
name = "lapor-sendgrid"
kind = "sendgrid"
username = "sendgrid"
password = "rahasia-sendgrid"

[[instances]]
name = "lapor-postmark"
kind = "postmark"
username = "postmark"
password = "rahasia-postmark"

[[instances]]
name = "lapor-kecil"
kind = "postmark"
username = "postmark"
password = "rahasia-postmark"
limits = {{ max_attachment_bytes = 100 }}
"#,
        blob_dir.display()
    )
}

/// The corpus document for `fixture` as this intake and instance produce it.
fn expected(fixture: &str, overrides: Value) -> Value {
    let mut doc: Value = serde_json::from_slice(&common::fixture(&format!(
        "channels/email/fixtures/mime/{fixture}.json"
    )))
    .expect("expected document");
    doc["id"] = json!("*");
    doc["received_at"] = json!("*");
    for (k, v) in overrides.as_object().expect("object") {
        doc[k] = v.clone();
    }
    doc
}

/// The Mailgun form fixture with the signature fields appended.
fn mailgun_form(key: &str, timestamp: i64, signature: Option<&str>) -> Vec<u8> {
    let mut body = fx("mailgun-mime.form");
    let ts = timestamp.to_string();
    let sig = signature
        .map(str::to_string)
        .unwrap_or_else(|| aduan_email::Mailgun::signature(key.as_bytes(), &ts, TOKEN));
    body.extend_from_slice(format!("&timestamp={ts}&token={TOKEN}&signature={sig}").as_bytes());
    body
}

/// The Mailgun multipart fixture (a message with an attachment) with the
/// signature fields added as parts before the closing delimiter.
fn mailgun_multipart(timestamp: i64) -> Vec<u8> {
    let body = fx("mailgun-mime.multipart");
    let closing = b"--mg-7d1f--\r\n";
    let mut out = body[..body.len() - closing.len()].to_vec();
    let ts = timestamp.to_string();
    let sig = aduan_email::Mailgun::signature(SIGNING_KEY.as_bytes(), &ts, TOKEN);
    for (name, value) in [
        ("timestamp", ts.as_str()),
        ("token", TOKEN),
        ("signature", &sig),
    ] {
        out.extend_from_slice(
            format!(
                "--mg-7d1f\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(closing);
    out
}

const FORM: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data; boundary=xYzZY";
const JSON: &str = "application/json";
const MAILGUN: &str = "/webhooks/email/lapor-mailgun";
const SENDGRID: &str = "/webhooks/email/lapor-sendgrid";
const POSTMARK: &str = "/webhooks/email/lapor-postmark";

/// `body` posted to `path` with a content type and, where given, credentials.
fn post(label: &str, path: &str, content_type: &str, auth: Option<String>, body: Vec<u8>) -> Case {
    Case::post(label, path)
        .header("content-type", content_type)
        .header_opt("authorization", auth.as_deref())
        .body(body)
}

fn fx(name: &str) -> Vec<u8> {
    common::fixtures("email").bytes(&format!("webhooks/{name}"))
}

fn cases() -> Vec<Case> {
    let now = chrono::Utc::now().timestamp();
    let sendgrid = |label: &str, body: Vec<u8>| {
        post(
            label,
            SENDGRID,
            MULTIPART,
            Some(basic_auth("sendgrid", "rahasia-sendgrid")),
            body,
        )
    };
    let postmark = |label: &str, path: &str, body: Vec<u8>| {
        post(
            label,
            path,
            JSON,
            Some(basic_auth("postmark", "rahasia-postmark")),
            body,
        )
    };
    let mailgun = |label: &str, body: Vec<u8>| post(label, MAILGUN, FORM, None, body);
    let mailgun_doc = expected(
        "plain-indonesian",
        json!({"provider": "mailgun", "instance": "lapor-mailgun",
               "recipient": "pengaduan@mg.lapor.example.go.id", "language": "ind"}),
    );
    vec![
        mailgun(
            "mailgun: signed raw MIME",
            mailgun_form(SIGNING_KEY, now, None),
        )
        .adds(vec![mailgun_doc]),
        mailgun(
            "mailgun: the same request again (retry or replayed token) writes nothing",
            mailgun_form(SIGNING_KEY, now, None),
        ),
        post(
            "mailgun: multipart form with an attachment",
            MAILGUN,
            "multipart/form-data; boundary=mg-7d1f",
            None,
            mailgun_multipart(now),
        )
        .adds(vec![expected(
            "phone-photo",
            json!({"provider": "mailgun", "instance": "lapor-mailgun",
                   "recipient": "pengaduan@mg.lapor.example.go.id", "language": null}),
        )]),
        mailgun(
            "mailgun: signed with another key",
            mailgun_form("kunci-lain", now, None),
        )
        .status(403),
        mailgun(
            "mailgun: tampered signature",
            mailgun_form(SIGNING_KEY, now, Some(&"0".repeat(64))),
        )
        .status(403),
        mailgun(
            "mailgun: stale timestamp",
            mailgun_form(SIGNING_KEY, now - 3600, None),
        )
        .status(403),
        mailgun("mailgun: no signature fields", fx("mailgun-mime.form")).status(403),
        sendgrid(
            "sendgrid: raw MIME with attachments",
            fx("sendgrid-raw.multipart"),
        )
        .adds(vec![expected(
            "alternative-with-attachments",
            json!({"provider": "sendgrid", "instance": "lapor-sendgrid",
                       "recipient": "pengaduan@parse.lapor.example.go.id", "language": "ind"}),
        )]),
        sendgrid("sendgrid: redelivery", fx("sendgrid-raw.multipart")),
        sendgrid(
            "sendgrid: a bounce is acknowledged, not written",
            fx("sendgrid-bounce.multipart"),
        ),
        sendgrid(
            "sendgrid: parsed mode (no raw `email` field) is refused",
            fx("sendgrid-parsed.multipart"),
        )
        .status(400),
        post(
            "sendgrid: wrong password",
            SENDGRID,
            MULTIPART,
            Some(basic_auth("sendgrid", "salah")),
            fx("sendgrid-raw.multipart"),
        )
        .status(401),
        post(
            "sendgrid: no credentials",
            SENDGRID,
            MULTIPART,
            None,
            fx("sendgrid-raw.multipart"),
        )
        .status(401),
        sendgrid(
            "sendgrid: truncated multipart body",
            fx("sendgrid-raw.multipart")[..700].to_vec(),
        )
        .status(400),
        postmark("postmark: RawEmail", POSTMARK, fx("postmark-raw.json")).adds(vec![expected(
            "reply",
            json!({"provider": "postmark", "instance": "lapor-postmark",
                   "recipient": "pengaduan@inbound.lapor.example.go.id", "language": "ind"}),
        )]),
        postmark(
            "postmark: parsed fields with an attachment",
            POSTMARK,
            fx("postmark-parsed.json"),
        )
        .adds(vec![expected(
            "phone-photo",
            // Too short for a confident language detection.
            json!({"provider": "postmark", "instance": "lapor-postmark",
                   "recipient": "pengaduan@inbound.lapor.example.go.id", "language": null,
                   "raw": raw(JSON, &fx("postmark-parsed.json"))}),
        )]),
        postmark(
            "postmark: redelivery of the parsed fields",
            POSTMARK,
            fx("postmark-parsed.json"),
        ),
        postmark(
            "postmark: an auto-reply is acknowledged, not written",
            POSTMARK,
            fx("postmark-auto-reply.json"),
        ),
        postmark(
            "postmark: attachment over the instance's limit",
            "/webhooks/email/lapor-kecil",
            fx("postmark-parsed.json"),
        )
        .status(413),
        postmark(
            "postmark: not JSON",
            POSTMARK,
            b"From: budi@example.id\r\n\r\nisi".to_vec(),
        )
        .status(400),
        post(
            "postmark: wrong password",
            POSTMARK,
            JSON,
            Some(basic_auth("postmark", "rahasia-sendgrid")),
            fx("postmark-raw.json"),
        )
        .status(401),
    ]
}

#[tokio::test]
async fn email_webhooks_table() {
    let blobs = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(blobs.path())).await;
    table::run(&app, cases()).await;
    // Every attachment written is in the blob store, under its digest.
    for doc in app.complaints().await {
        for a in doc["attachments"].as_array().into_iter().flatten() {
            let key = a["storage_key"].as_str().expect("storage_key");
            let stored = std::fs::read(blobs.path().join(key)).expect("blob written");
            assert_eq!(
                aduan_adapter::verify::sha256_hex(&stored),
                a["sha256"].as_str().expect("sha256"),
                "{}",
                doc["external_id"]
            );
        }
    }
    app.stop().await;
}
