//! Inbound-email webhooks end to end: Mailgun, SendGrid and Postmark requests
//! (fixtures under `channels/email/fixtures/webhooks/`) through the real
//! gateway into the real Redis, each case asserting the whole document and
//! what is (or is not) written, and the attachment files in the blob store.

mod common;

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

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        aduan_adapter::verify::base64_encode(format!("{user}:{password}").as_bytes())
    )
}

/// The Mailgun form fixture with the signature fields appended.
fn mailgun_form(key: &str, timestamp: i64, signature: Option<&str>) -> Vec<u8> {
    let mut body = common::fixture("channels/email/fixtures/webhooks/mailgun-mime.form");
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
    let body = common::fixture("channels/email/fixtures/webhooks/mailgun-mime.multipart");
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

struct Case {
    label: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    /// The documents this request adds to the stream (none for refusals,
    /// automatic mail and redeliveries).
    written: Vec<Value>,
}

const FORM: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data; boundary=xYzZY";
const JSON: &str = "application/json";

fn cases() -> Vec<Case> {
    let now = chrono::Utc::now().timestamp();
    let sendgrid = || {
        vec![
            ("content-type", MULTIPART.to_string()),
            ("authorization", basic("sendgrid", "rahasia-sendgrid")),
        ]
    };
    let postmark = || {
        vec![
            ("content-type", JSON.to_string()),
            ("authorization", basic("postmark", "rahasia-postmark")),
        ]
    };
    let fx = |name: &str| common::fixture(&format!("channels/email/fixtures/webhooks/{name}"));
    let mailgun_doc = expected(
        "plain-indonesian",
        json!({"provider": "mailgun", "instance": "lapor-mailgun",
               "recipient": "pengaduan@mg.lapor.example.go.id", "language": "ind"}),
    );
    vec![
        Case {
            label: "mailgun: signed raw MIME",
            path: "/webhooks/email/lapor-mailgun",
            headers: vec![("content-type", FORM.into())],
            body: mailgun_form(SIGNING_KEY, now, None),
            status: 200,
            written: vec![mailgun_doc],
        },
        Case {
            label: "mailgun: the same request again (retry or replayed token) writes nothing",
            path: "/webhooks/email/lapor-mailgun",
            headers: vec![("content-type", FORM.into())],
            body: mailgun_form(SIGNING_KEY, now, None),
            status: 200,
            written: vec![],
        },
        Case {
            label: "mailgun: multipart form with an attachment",
            path: "/webhooks/email/lapor-mailgun",
            headers: vec![(
                "content-type",
                "multipart/form-data; boundary=mg-7d1f".into(),
            )],
            body: mailgun_multipart(now),
            status: 200,
            written: vec![expected(
                "phone-photo",
                json!({"provider": "mailgun", "instance": "lapor-mailgun",
                       "recipient": "pengaduan@mg.lapor.example.go.id", "language": null}),
            )],
        },
        Case {
            label: "mailgun: signed with another key",
            path: "/webhooks/email/lapor-mailgun",
            headers: vec![("content-type", FORM.into())],
            body: mailgun_form("kunci-lain", now, None),
            status: 403,
            written: vec![],
        },
        Case {
            label: "mailgun: tampered signature",
            path: "/webhooks/email/lapor-mailgun",
            headers: vec![("content-type", FORM.into())],
            body: mailgun_form(SIGNING_KEY, now, Some(&"0".repeat(64))),
            status: 403,
            written: vec![],
        },
        Case {
            label: "mailgun: stale timestamp",
            path: "/webhooks/email/lapor-mailgun",
            headers: vec![("content-type", FORM.into())],
            body: mailgun_form(SIGNING_KEY, now - 3600, None),
            status: 403,
            written: vec![],
        },
        Case {
            label: "mailgun: no signature fields",
            path: "/webhooks/email/lapor-mailgun",
            headers: vec![("content-type", FORM.into())],
            body: fx("mailgun-mime.form"),
            status: 403,
            written: vec![],
        },
        Case {
            label: "sendgrid: raw MIME with attachments",
            path: "/webhooks/email/lapor-sendgrid",
            headers: sendgrid(),
            body: fx("sendgrid-raw.multipart"),
            status: 200,
            written: vec![expected(
                "alternative-with-attachments",
                json!({"provider": "sendgrid", "instance": "lapor-sendgrid",
                       "recipient": "pengaduan@parse.lapor.example.go.id", "language": "ind"}),
            )],
        },
        Case {
            label: "sendgrid: redelivery",
            path: "/webhooks/email/lapor-sendgrid",
            headers: sendgrid(),
            body: fx("sendgrid-raw.multipart"),
            status: 200,
            written: vec![],
        },
        Case {
            label: "sendgrid: a bounce is acknowledged, not written",
            path: "/webhooks/email/lapor-sendgrid",
            headers: sendgrid(),
            body: fx("sendgrid-bounce.multipart"),
            status: 200,
            written: vec![],
        },
        Case {
            label: "sendgrid: parsed mode (no raw `email` field) is refused",
            path: "/webhooks/email/lapor-sendgrid",
            headers: sendgrid(),
            body: fx("sendgrid-parsed.multipart"),
            status: 400,
            written: vec![],
        },
        Case {
            label: "sendgrid: wrong password",
            path: "/webhooks/email/lapor-sendgrid",
            headers: vec![
                ("content-type", MULTIPART.into()),
                ("authorization", basic("sendgrid", "salah")),
            ],
            body: fx("sendgrid-raw.multipart"),
            status: 401,
            written: vec![],
        },
        Case {
            label: "sendgrid: no credentials",
            path: "/webhooks/email/lapor-sendgrid",
            headers: vec![("content-type", MULTIPART.into())],
            body: fx("sendgrid-raw.multipart"),
            status: 401,
            written: vec![],
        },
        Case {
            label: "sendgrid: truncated multipart body",
            path: "/webhooks/email/lapor-sendgrid",
            headers: sendgrid(),
            body: fx("sendgrid-raw.multipart")[..700].to_vec(),
            status: 400,
            written: vec![],
        },
        Case {
            label: "postmark: RawEmail",
            path: "/webhooks/email/lapor-postmark",
            headers: postmark(),
            body: fx("postmark-raw.json"),
            status: 200,
            written: vec![expected(
                "reply",
                json!({"provider": "postmark", "instance": "lapor-postmark",
                       "recipient": "pengaduan@inbound.lapor.example.go.id", "language": "ind"}),
            )],
        },
        Case {
            label: "postmark: parsed fields with an attachment",
            path: "/webhooks/email/lapor-postmark",
            headers: postmark(),
            body: fx("postmark-parsed.json"),
            status: 200,
            written: vec![{
                let mut doc = expected(
                    "phone-photo",
                    // Too short for a confident language detection.
                    json!({"provider": "postmark", "instance": "lapor-postmark",
                           "recipient": "pengaduan@inbound.lapor.example.go.id", "language": null}),
                );
                doc["raw"] = json!({
                    "content_type": "application/json",
                    "body": String::from_utf8(fx("postmark-parsed.json")).expect("utf-8"),
                });
                doc
            }],
        },
        Case {
            label: "postmark: redelivery of the parsed fields",
            path: "/webhooks/email/lapor-postmark",
            headers: postmark(),
            body: fx("postmark-parsed.json"),
            status: 200,
            written: vec![],
        },
        Case {
            label: "postmark: an auto-reply is acknowledged, not written",
            path: "/webhooks/email/lapor-postmark",
            headers: postmark(),
            body: fx("postmark-auto-reply.json"),
            status: 200,
            written: vec![],
        },
        Case {
            label: "postmark: attachment over the instance's limit",
            path: "/webhooks/email/lapor-kecil",
            headers: postmark(),
            body: fx("postmark-parsed.json"),
            status: 413,
            written: vec![],
        },
        Case {
            label: "postmark: not JSON",
            path: "/webhooks/email/lapor-postmark",
            headers: postmark(),
            body: b"From: budi@example.id\r\n\r\nisi".to_vec(),
            status: 400,
            written: vec![],
        },
        Case {
            label: "postmark: wrong password",
            path: "/webhooks/email/lapor-postmark",
            headers: vec![
                ("content-type", JSON.into()),
                ("authorization", basic("postmark", "rahasia-sendgrid")),
            ],
            body: fx("postmark-raw.json"),
            status: 401,
            written: vec![],
        },
    ]
}

#[tokio::test]
async fn email_webhooks_table() {
    let blobs = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(blobs.path())).await;
    let mut seen = 0usize;
    for case in cases() {
        eprintln!("case: {}", case.label);
        let mut req = app.client.post(app.url(case.path)).body(case.body.clone());
        for (k, v) in &case.headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, case.status, "{}: {body}", case.label);
        let all = app.complaints().await;
        let new = &all[seen..];
        assert_eq!(
            new.len(),
            case.written.len(),
            "{}: entries written",
            case.label
        );
        for (actual, expected) in new.iter().zip(&case.written) {
            common::assert_json_matches(actual, expected);
            for a in actual["attachments"].as_array().into_iter().flatten() {
                let key = a["storage_key"].as_str().expect("storage_key");
                let stored = std::fs::read(blobs.path().join(key)).expect("blob written");
                assert_eq!(
                    aduan_adapter::verify::sha256_hex(&stored),
                    a["sha256"].as_str().expect("sha256"),
                    "{}",
                    case.label
                );
            }
        }
        seen = all.len();
    }
    app.stop().await;
}
