//! Meta channels end to end: WhatsApp, Messenger (with Page comments) and
//! Instagram, through the real gateway and a real Redis.
//!
//! Each case of the table sends one real-format request from
//! `channels/meta/fixtures/` and asserts the answer, the whole normalized
//! documents in the stream (from `<fixture>.expected.json`) or that nothing
//! was written, then sends the same request again, as Meta does for days,
//! and asserts the same answer and no new entry.

mod common;

use serde_json::{Value, json};

const APP_SECRET: &str = "rahasia-aplikasi-meta";
const VERIFY_TOKEN: &str = "token-verifikasi-meta";

/// Four instances: one per kind without `raw` (so the expected documents stay
/// readable), and a WhatsApp one that keeps the exact bytes.
fn instances() -> String {
    let mut toml = String::new();
    for (name, kind, keep_raw) in [
        ("wa-jabar", "whatsapp", false),
        ("wa-raw", "whatsapp", true),
        ("fb-bogor", "messenger", false),
        ("ig-bogor", "instagram", false),
    ] {
        toml.push_str(&format!(
            "[[instances]]\nname = \"{name}\"\nkind = \"{kind}\"\nkeep_raw = {keep_raw}\n\
             app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n\n"
        ));
    }
    toml
}

/// How a case's `POST` is signed.
#[derive(Clone, Copy, Debug)]
enum Sign {
    /// `X-Hub-Signature-256` over the body with the instance's app secret.
    Good,
    /// Signed with another secret.
    WrongSecret,
    /// Signed over the fixture, then one byte of the body changed.
    Tampered,
    /// No signature header at all.
    Missing,
    /// A header that is not `sha256=<64 hex>`.
    Garbage,
}

/// What the case leaves behind.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// These complaints, in order (`<fixture>.expected.json`).
    Written,
    /// An acknowledged request with nothing written.
    Nothing,
    /// A refusal: the answer's JSON body, nothing written.
    Refused(&'static str),
    /// A plain-text answer (the handshake), nothing written.
    Text(&'static str),
}

struct Case {
    label: &'static str,
    /// Path and query, from the server root.
    path: &'static str,
    /// Fixture under `channels/meta/fixtures/`.
    body: Option<&'static str>,
    sign: Sign,
    status: u16,
    expect: Expect,
}

const fn post(
    label: &'static str,
    path: &'static str,
    body: &'static str,
    status: u16,
    expect: Expect,
) -> Case {
    Case {
        label,
        path,
        body: Some(body),
        sign: Sign::Good,
        status,
        expect,
    }
}

const fn signed(label: &'static str, path: &'static str, body: &'static str, sign: Sign) -> Case {
    Case {
        label,
        path,
        body: Some(body),
        sign,
        status: 403,
        expect: Expect::Refused(r#"{"error":"bad_signature"}"#),
    }
}

const fn get(label: &'static str, path: &'static str, status: u16, expect: Expect) -> Case {
    Case {
        label,
        path,
        body: None,
        sign: Sign::Missing,
        status,
        expect,
    }
}

const WA: &str = "/webhooks/whatsapp/wa-jabar";
const FB: &str = "/webhooks/messenger/fb-bogor";
const IG: &str = "/webhooks/instagram/ig-bogor";
const FORBIDDEN: &str = r#"{"error":"bad_signature"}"#;
use Expect::{Nothing, Refused, Text, Written};

const CASES: &[Case] = &[
    // The verification handshake, the same for the three kinds.
    get(
        "whatsapp handshake",
        "/webhooks/whatsapp/wa-jabar?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=token-verifikasi-meta",
        200,
        Text("1158201444"),
    ),
    get(
        "messenger handshake",
        "/webhooks/messenger/fb-bogor?hub.mode=subscribe&hub.challenge=845093120&hub.verify_token=token-verifikasi-meta",
        200,
        Text("845093120"),
    ),
    get(
        "instagram handshake",
        "/webhooks/instagram/ig-bogor?hub.mode=subscribe&hub.challenge=20261122&hub.verify_token=token-verifikasi-meta",
        200,
        Text("20261122"),
    ),
    get(
        "handshake with a wrong token",
        "/webhooks/whatsapp/wa-jabar?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=token-salah",
        403,
        Refused(FORBIDDEN),
    ),
    get(
        "handshake with another mode",
        "/webhooks/messenger/fb-bogor?hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=token-verifikasi-meta",
        403,
        Refused(FORBIDDEN),
    ),
    get(
        "handshake without a token",
        "/webhooks/instagram/ig-bogor?hub.mode=subscribe&hub.challenge=1158201444",
        403,
        Refused(FORBIDDEN),
    ),
    get(
        "handshake without a challenge",
        "/webhooks/whatsapp/wa-jabar?hub.mode=subscribe&hub.verify_token=token-verifikasi-meta",
        400,
        Refused(r#"{"error":"malformed","reason":"hub.challenge is missing"}"#),
    ),
    // WhatsApp messages.
    post("whatsapp text", WA, "whatsapp/text.json", 200, Written),
    post(
        "whatsapp image with caption",
        WA,
        "whatsapp/image.json",
        200,
        Written,
    ),
    post("whatsapp video", WA, "whatsapp/video.json", 200, Written),
    post(
        "whatsapp voice note",
        WA,
        "whatsapp/voice.json",
        200,
        Written,
    ),
    post(
        "whatsapp document",
        WA,
        "whatsapp/document.json",
        200,
        Written,
    ),
    post(
        "whatsapp sticker",
        WA,
        "whatsapp/sticker.json",
        200,
        Written,
    ),
    post(
        "whatsapp location",
        WA,
        "whatsapp/location.json",
        200,
        Written,
    ),
    post(
        "whatsapp button reply",
        WA,
        "whatsapp/button_reply.json",
        200,
        Written,
    ),
    post(
        "whatsapp list reply",
        WA,
        "whatsapp/list_reply.json",
        200,
        Written,
    ),
    post(
        "whatsapp template button",
        WA,
        "whatsapp/template_button.json",
        200,
        Written,
    ),
    post(
        "whatsapp reply with context",
        WA,
        "whatsapp/reply.json",
        200,
        Written,
    ),
    post(
        "whatsapp business-scoped user id",
        WA,
        "whatsapp/bsuid.json",
        200,
        Written,
    ),
    post(
        "whatsapp batch: two entries, a status between messages",
        WA,
        "whatsapp/batch.json",
        200,
        Written,
    ),
    post(
        "whatsapp escaped unicode, raw kept",
        "/webhooks/whatsapp/wa-raw",
        "whatsapp/non_ascii.json",
        200,
        Written,
    ),
    // WhatsApp events that are not complaints.
    post(
        "whatsapp statuses",
        WA,
        "whatsapp/status.json",
        200,
        Nothing,
    ),
    post("whatsapp errors", WA, "whatsapp/errors.json", 200, Nothing),
    post(
        "whatsapp reaction",
        WA,
        "whatsapp/reaction.json",
        200,
        Nothing,
    ),
    post(
        "whatsapp unsupported message",
        WA,
        "whatsapp/unsupported.json",
        200,
        Nothing,
    ),
    post(
        "whatsapp account update",
        WA,
        "whatsapp/account_update.json",
        200,
        Nothing,
    ),
    // WhatsApp bad input.
    post(
        "whatsapp body not JSON",
        WA,
        "whatsapp/not_json.txt",
        400,
        Refused(r#"{"error":"malformed","reason":"body is not valid JSON"}"#),
    ),
    post(
        "whatsapp page object",
        WA,
        "whatsapp/wrong_object.json",
        400,
        Refused(r#"{"error":"malformed","reason":"object is not `whatsapp_business_account`"}"#),
    ),
    post(
        "whatsapp message without id",
        WA,
        "whatsapp/missing_id.json",
        400,
        Refused(
            r#"{"error":"malformed","reason":"missing field `id` at entry[0].changes[0].value.messages[0]"}"#,
        ),
    ),
    post(
        "whatsapp timestamp as a number",
        WA,
        "whatsapp/timestamp_number.json",
        400,
        Refused(
            r#"{"error":"malformed","reason":"wrong type at entry[0].changes[0].value.messages[0].timestamp"}"#,
        ),
    ),
    post(
        "whatsapp text without text",
        WA,
        "whatsapp/text_without_body.json",
        400,
        Refused(
            r#"{"error":"malformed","reason":"missing field `text` at entry[0].changes[0].value.messages[0]"}"#,
        ),
    ),
    // Signatures.
    signed(
        "whatsapp tampered body",
        WA,
        "whatsapp/text.json",
        Sign::Tampered,
    ),
    signed(
        "whatsapp wrong secret",
        WA,
        "whatsapp/text.json",
        Sign::WrongSecret,
    ),
    signed(
        "whatsapp missing signature",
        WA,
        "whatsapp/text.json",
        Sign::Missing,
    ),
    signed(
        "whatsapp malformed signature",
        WA,
        "whatsapp/text.json",
        Sign::Garbage,
    ),
    signed(
        "escaped unicode body tampered",
        "/webhooks/whatsapp/wa-raw",
        "whatsapp/non_ascii.json",
        Sign::Tampered,
    ),
    signed(
        "messenger wrong secret",
        FB,
        "messenger/text.json",
        Sign::WrongSecret,
    ),
    signed(
        "messenger missing signature",
        FB,
        "messenger/feed_comment.json",
        Sign::Missing,
    ),
    signed(
        "instagram tampered body",
        IG,
        "instagram/text.json",
        Sign::Tampered,
    ),
    signed(
        "instagram wrong secret",
        IG,
        "instagram/comment.json",
        Sign::WrongSecret,
    ),
    // Messenger.
    post("messenger text", FB, "messenger/text.json", 200, Written),
    post(
        "messenger quick reply",
        FB,
        "messenger/quick_reply.json",
        200,
        Written,
    ),
    post(
        "messenger image and file",
        FB,
        "messenger/attachments.json",
        200,
        Written,
    ),
    post(
        "messenger sticker",
        FB,
        "messenger/sticker.json",
        200,
        Written,
    ),
    post("messenger reply", FB, "messenger/reply.json", 200, Written),
    post(
        "messenger legacy location",
        FB,
        "messenger/location.json",
        200,
        Written,
    ),
    post(
        "messenger batch: two entries and a read",
        FB,
        "messenger/batch.json",
        200,
        Written,
    ),
    post("messenger echo", FB, "messenger/echo.json", 200, Nothing),
    post(
        "messenger delivery",
        FB,
        "messenger/delivery.json",
        200,
        Nothing,
    ),
    post("messenger read", FB, "messenger/read.json", 200, Nothing),
    post(
        "messenger reaction",
        FB,
        "messenger/reaction.json",
        200,
        Nothing,
    ),
    post(
        "messenger postback",
        FB,
        "messenger/postback.json",
        200,
        Nothing,
    ),
    post(
        "messenger standby",
        FB,
        "messenger/standby.json",
        200,
        Nothing,
    ),
    // Page feed comments.
    post(
        "page comment",
        FB,
        "messenger/feed_comment.json",
        200,
        Written,
    ),
    post(
        "page reply comment with photo",
        FB,
        "messenger/feed_reply_photo.json",
        200,
        Written,
    ),
    post(
        "page comment without its author",
        FB,
        "messenger/feed_comment_anonymous.json",
        200,
        Written,
    ),
    post(
        "page comment edited",
        FB,
        "messenger/feed_edited.json",
        200,
        Nothing,
    ),
    post(
        "page comment removed",
        FB,
        "messenger/feed_remove.json",
        200,
        Nothing,
    ),
    post(
        "page's own comment",
        FB,
        "messenger/feed_own_comment.json",
        200,
        Nothing,
    ),
    post(
        "page post reaction",
        FB,
        "messenger/feed_reaction.json",
        200,
        Nothing,
    ),
    // Messenger bad input.
    post(
        "messenger whatsapp object",
        FB,
        "messenger/wrong_object.json",
        400,
        Refused(r#"{"error":"malformed","reason":"object is not `page`"}"#),
    ),
    post(
        "messenger message without mid",
        FB,
        "messenger/missing_mid.json",
        400,
        Refused(
            r#"{"error":"malformed","reason":"missing field `mid` at entry[0].messaging[0].message"}"#,
        ),
    ),
    post(
        "messenger timestamp as a string",
        FB,
        "messenger/timestamp_string.json",
        400,
        Refused(
            r#"{"error":"malformed","reason":"wrong type at entry[0].messaging[0].timestamp"}"#,
        ),
    ),
    post(
        "page comment without post id",
        FB,
        "messenger/feed_missing_post.json",
        400,
        Refused(
            r#"{"error":"malformed","reason":"missing field `post_id` at entry[0].changes[0].value"}"#,
        ),
    ),
    // Instagram.
    post("instagram text", IG, "instagram/text.json", 200, Written),
    post(
        "instagram image and video",
        IG,
        "instagram/image.json",
        200,
        Written,
    ),
    post(
        "instagram story mention",
        IG,
        "instagram/story_mention.json",
        200,
        Written,
    ),
    post(
        "instagram story reply",
        IG,
        "instagram/story_reply.json",
        200,
        Written,
    ),
    post("instagram reply", IG, "instagram/reply.json", 200, Written),
    post(
        "instagram comment",
        IG,
        "instagram/comment.json",
        200,
        Written,
    ),
    post(
        "instagram comment reply",
        IG,
        "instagram/comment_reply.json",
        200,
        Written,
    ),
    post(
        "instagram batch: messages and a comment",
        IG,
        "instagram/batch.json",
        200,
        Written,
    ),
    post("instagram echo", IG, "instagram/echo.json", 200, Nothing),
    post(
        "instagram deleted message",
        IG,
        "instagram/deleted.json",
        200,
        Nothing,
    ),
    post(
        "instagram unsupported message",
        IG,
        "instagram/unsupported.json",
        200,
        Nothing,
    ),
    post(
        "instagram heart",
        IG,
        "instagram/like_heart.json",
        200,
        Nothing,
    ),
    post(
        "instagram reaction",
        IG,
        "instagram/reaction.json",
        200,
        Nothing,
    ),
    post(
        "instagram own comment",
        IG,
        "instagram/own_comment.json",
        200,
        Nothing,
    ),
    post(
        "instagram mention",
        IG,
        "instagram/mentions.json",
        200,
        Nothing,
    ),
    post(
        "instagram comment without media",
        IG,
        "instagram/comment_without_media.json",
        400,
        Refused(
            r#"{"error":"malformed","reason":"missing field `media` at entry[0].changes[0].value"}"#,
        ),
    ),
    post(
        "instagram text as a list",
        IG,
        "instagram/wrong_type.json",
        400,
        Refused(
            r#"{"error":"malformed","reason":"wrong type at entry[0].messaging[0].message.text"}"#,
        ),
    ),
    post(
        "instagram page object",
        IG,
        "messenger/text.json",
        400,
        Refused(r#"{"error":"malformed","reason":"object is not `instagram`"}"#),
    ),
];

fn fixture(rel: &str) -> Vec<u8> {
    common::fixture(&format!("channels/meta/fixtures/{rel}"))
}

fn signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(aduan_adapter::verify::hmac_sha256(secret.as_bytes(), body))
    )
}

/// The request a case describes: a `GET` handshake when there is no body,
/// otherwise a `POST` with the headers Meta sends.
fn request(app: &common::TestApp, case: &Case) -> reqwest::RequestBuilder {
    let url = app.url(case.path);
    let Some(body) = case.body else {
        return app.client.get(url);
    };
    let mut body = fixture(body);
    let header = match case.sign {
        Sign::Good => Some(signature(APP_SECRET, &body)),
        Sign::WrongSecret => Some(signature("rahasia-lain", &body)),
        Sign::Tampered => {
            let sig = signature(APP_SECRET, &body);
            // Turn the first digit of the body into another one: still valid
            // JSON, so only the signature can catch it.
            if let Some(b) = body.iter_mut().find(|b| b.is_ascii_digit()) {
                *b = if *b == b'9' { b'8' } else { *b + 1 };
            }
            Some(sig)
        }
        Sign::Missing => None,
        Sign::Garbage => Some("sha256=bukan-tanda-tangan".to_string()),
    };
    let mut req = app
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "facebookexternalua")
        .body(body);
    if let Some(h) = header {
        req = req.header("x-hub-signature-256", h);
    }
    req
}

fn expected_path(body: &str) -> String {
    format!(
        "channels/meta/fixtures/{}.expected.json",
        body.trim_end_matches(".json")
    )
}

#[tokio::test]
async fn meta_fixture_table() {
    let bless = std::env::var_os("ADUAN_BLESS").is_some();
    for case in CASES {
        let mut app = common::spawn_app(&instances()).await;
        let mut answers = Vec::new();
        // Meta redelivers until it sees a 200, for days: the second delivery
        // must get the same answer and write nothing new.
        for attempt in 0..2 {
            let resp = request(&app, case)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{}: request failed: {e}", case.label));
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = resp.text().await.unwrap_or_default();
            assert_eq!(
                status, case.status,
                "{} (attempt {attempt}): body {body}",
                case.label
            );
            answers.push(body.clone());
            match case.expect {
                Text(text) => {
                    assert_eq!(body, text, "{}", case.label);
                    assert!(
                        content_type.starts_with("text/plain"),
                        "{}: {content_type}",
                        case.label
                    );
                }
                Refused(json) => {
                    let actual: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let expected: Value =
                        serde_json::from_str(json).expect("expected answer is JSON");
                    assert_eq!(actual, expected, "{}", case.label);
                }
                Nothing | Written => {}
            }
            let complaints = app.complaints().await;
            match case.expect {
                Written => {
                    let rel = expected_path(case.body.unwrap_or_default());
                    if bless && attempt == 0 {
                        let generated = blank_generated(Value::Array(complaints.clone()));
                        let text = serde_json::to_string_pretty(&generated).expect("json") + "\n";
                        std::fs::write(
                            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&rel),
                            text,
                        )
                        .expect("write expected");
                    }
                    let expected: Value = serde_json::from_slice(&common::fixture(&rel))
                        .unwrap_or_else(|e| panic!("{}: {rel}: {e}", case.label));
                    let expected = blank_generated(expected);
                    common::assert_json_matches(&Value::Array(complaints), &expected);
                }
                _ => assert!(
                    complaints.is_empty(),
                    "{}: nothing is written, found {complaints:#?}",
                    case.label
                ),
            }
        }
        assert_eq!(
            answers[0], answers[1],
            "{}: a redelivery gets the same answer",
            case.label
        );
        app.stop().await;
    }
}

/// `id` and `received_at` are the gateway's own: any value matches.
fn blank_generated(mut expected: Value) -> Value {
    if let Some(list) = expected.as_array_mut() {
        for doc in list {
            doc["id"] = json!("*");
            doc["received_at"] = json!("*");
        }
    }
    expected
}

#[tokio::test]
async fn a_batch_with_one_duplicate_writes_only_the_new_message() {
    let mut app = common::spawn_app(&instances()).await;
    let send = |rel: &'static str| {
        let body = fixture(rel);
        app.client
            .post(app.url(WA))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature(APP_SECRET, &body))
            .body(body)
            .send()
    };
    let first = send("whatsapp/text.json").await.expect("first request");
    assert_eq!(first.status().as_u16(), 200);
    let before = app.complaints().await;
    assert_eq!(before.len(), 1);

    let second = send("whatsapp/batch_with_duplicate.json")
        .await
        .expect("second request");
    assert_eq!(second.status().as_u16(), 200);
    let after = app.complaints().await;
    assert_eq!(after.len(), 2, "only the new message is appended");
    assert_eq!(after[0], before[0], "the first complaint is untouched");
    assert_eq!(
        after[1]["external_id"],
        "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBDNzE4RjA5QjI0QjA2RTQ0QTAR"
    );
    assert_eq!(
        after[1]["text"],
        "Tadi pagi ada pengendara motor yang jatuh di lubang itu."
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bench_fixture_is_signed_with_the_bench_secret() {
    let body = fixture("whatsapp/bench_text.json");
    assert!(
        (650..=760).contains(&body.len()),
        "about 700 bytes: {}",
        body.len()
    );
    let sig = String::from_utf8(fixture("whatsapp/bench_text.sig")).expect("utf-8");
    let mut app = common::spawn_app(
        "[[instances]]\nname = \"bench\"\nkind = \"whatsapp\"\n\
         app_secret = \"bench-app-secret\"\nverify_token = \"bench-verify-token\"\n",
    )
    .await;
    let resp = app
        .client
        .post(app.url("/webhooks/whatsapp/bench"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sig.trim())
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let complaints = app.complaints().await;
    assert_eq!(complaints.len(), 1);
    assert_eq!(complaints[0]["provider"], "meta_whatsapp");
    app.stop().await;
}

#[tokio::test]
async fn a_huge_body_is_refused_before_anything_is_parsed() {
    let mut app = common::spawn_app(&instances()).await;
    // A valid, signed notification padded past the gateway's 1 MiB limit.
    let padding = "x".repeat(2 * 1024 * 1024);
    let body =
        format!(r#"{{"object":"whatsapp_business_account","entry":[],"padding":"{padding}"}}"#)
            .into_bytes();
    let resp = app
        .client
        .post(app.url(WA))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature(APP_SECRET, &body))
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(app.stream_len().await, 0);
    app.stop().await;
}

/// The value of the counter `name` whose labels include every one of `labels`.
fn counter(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn ignored_events_and_refusals_are_counted_by_reason() {
    // An instance name of its own: the metrics registry is shared by the process.
    let mut app = common::spawn_app(&format!(
        "[[instances]]\nname = \"wa-hitung\"\nkind = \"whatsapp\"\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n"
    ))
    .await;
    let path = "/webhooks/whatsapp/wa-hitung";
    for (rel, signed) in [
        ("whatsapp/status.json", true),
        ("whatsapp/reaction.json", true),
        ("whatsapp/batch.json", true),
        ("whatsapp/not_json.txt", true),
        ("whatsapp/text.json", false),
    ] {
        let body = fixture(rel);
        let mut req = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json");
        if signed {
            req = req.header("x-hub-signature-256", signature(APP_SECRET, &body));
        }
        req.body(body).send().await.expect("request");
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let ignored = |reason| {
        counter(
            &metrics,
            "aduan_events_ignored_total",
            &[("instance", "wa-hitung"), ("reason", reason)],
        )
    };
    let rejected = |reason| {
        counter(
            &metrics,
            "aduan_requests_rejected_total",
            &[("instance", "wa-hitung"), ("reason", reason)],
        )
    };
    // Two statuses in status.json, one more in batch.json.
    assert_eq!(ignored("status"), 3.0, "{metrics}");
    assert_eq!(ignored("reaction"), 1.0, "{metrics}");
    assert_eq!(rejected("malformed"), 1.0, "{metrics}");
    assert_eq!(rejected("bad_signature"), 1.0, "{metrics}");
    assert_eq!(
        app.stream_len().await,
        3,
        "only batch.json's three messages"
    );
    app.stop().await;
}
