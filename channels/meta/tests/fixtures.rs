//! Every fixture through the adapters alone, without the gateway: how many
//! complaints each request yields and which acknowledged events it counts.
//! The whole documents are asserted end to end in the root `tests/meta.rs`.

use aduan_adapter::{Adapter, Context, Ignored, Outcome, Rejection, Request, Timestamp};
use aduan_meta::{Instagram, Messenger, MetaConfig, WhatsApp};

const SECRET: &str = "rahasia-aplikasi-meta";

fn config() -> MetaConfig {
    serde_json::from_value(serde_json::json!({
        "app_secret": SECRET,
        "verify_token": "token-verifikasi-meta",
    }))
    .expect("config")
}

fn adapter(kind: &str) -> Box<dyn Adapter> {
    match kind {
        "whatsapp" => Box::new(WhatsApp::new(config()).expect("whatsapp")),
        "messenger" => Box::new(Messenger::new(config()).expect("messenger")),
        _ => Box::new(Instagram::new(config()).expect("instagram")),
    }
}

fn run(kind: &str, fixture: &str) -> Result<Outcome, Rejection> {
    let path = format!("{}/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut headers = http::HeaderMap::new();
    let sig = format!(
        "sha256={}",
        hex::encode(aduan_adapter::verify::hmac_sha256(SECRET.as_bytes(), &body))
    );
    headers.insert("x-hub-signature-256", sig.parse().expect("header"));
    headers.insert("content-type", "application/json".parse().expect("header"));
    let method = http::Method::POST;
    let uri: http::Uri = format!("/webhooks/{kind}/test").parse().expect("uri");
    let req = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    let ctx = Context {
        instance: "test",
        received_at: Timestamp::from_unix_seconds(1_763_800_000).expect("time"),
        keep_raw: true,
    };
    let adapter = adapter(kind);
    adapter.verify(&req)?;
    adapter.parse(&req, &ctx)
}

#[test]
fn each_fixture_yields_its_complaints_and_counted_events() {
    #[rustfmt::skip]
    let table: &[(&str, &str, usize, &[&str])] = &[
        ("whatsapp", "whatsapp/text.json", 1, &[]),
        ("whatsapp", "whatsapp/image.json", 1, &[]),
        ("whatsapp", "whatsapp/video.json", 1, &[]),
        ("whatsapp", "whatsapp/voice.json", 1, &[]),
        ("whatsapp", "whatsapp/document.json", 1, &[]),
        ("whatsapp", "whatsapp/sticker.json", 1, &[]),
        ("whatsapp", "whatsapp/location.json", 1, &[]),
        ("whatsapp", "whatsapp/button_reply.json", 1, &[]),
        ("whatsapp", "whatsapp/list_reply.json", 1, &[]),
        ("whatsapp", "whatsapp/template_button.json", 1, &[]),
        ("whatsapp", "whatsapp/reply.json", 1, &[]),
        ("whatsapp", "whatsapp/bsuid.json", 1, &[]),
        ("whatsapp", "whatsapp/batch.json", 3, &["status"]),
        ("whatsapp", "whatsapp/batch_with_duplicate.json", 2, &[]),
        ("whatsapp", "whatsapp/non_ascii.json", 1, &[]),
        ("whatsapp", "whatsapp/bench_text.json", 1, &[]),
        ("whatsapp", "whatsapp/status.json", 0, &["status", "status"]),
        ("whatsapp", "whatsapp/errors.json", 0, &["error"]),
        ("whatsapp", "whatsapp/reaction.json", 0, &["reaction"]),
        ("whatsapp", "whatsapp/unsupported.json", 0, &["unsupported"]),
        ("whatsapp", "whatsapp/account_update.json", 0, &["field"]),
        ("messenger", "messenger/text.json", 1, &[]),
        ("messenger", "messenger/quick_reply.json", 1, &[]),
        ("messenger", "messenger/attachments.json", 1, &[]),
        ("messenger", "messenger/sticker.json", 1, &[]),
        ("messenger", "messenger/reply.json", 1, &[]),
        ("messenger", "messenger/location.json", 1, &[]),
        ("messenger", "messenger/batch.json", 2, &["read"]),
        ("messenger", "messenger/echo.json", 0, &["echo"]),
        ("messenger", "messenger/delivery.json", 0, &["delivery"]),
        ("messenger", "messenger/read.json", 0, &["read"]),
        ("messenger", "messenger/reaction.json", 0, &["reaction"]),
        ("messenger", "messenger/postback.json", 0, &["postback"]),
        ("messenger", "messenger/standby.json", 0, &["standby"]),
        ("messenger", "messenger/feed_comment.json", 1, &[]),
        ("messenger", "messenger/feed_reply_photo.json", 1, &[]),
        ("messenger", "messenger/feed_comment_anonymous.json", 1, &[]),
        ("messenger", "messenger/feed_edited.json", 0, &["edit"]),
        ("messenger", "messenger/feed_remove.json", 0, &["removal"]),
        ("messenger", "messenger/feed_own_comment.json", 0, &["own_comment"]),
        ("messenger", "messenger/feed_reaction.json", 0, &["feed_item"]),
        ("instagram", "instagram/text.json", 1, &[]),
        ("instagram", "instagram/image.json", 1, &[]),
        ("instagram", "instagram/story_mention.json", 1, &[]),
        ("instagram", "instagram/story_reply.json", 1, &[]),
        ("instagram", "instagram/reply.json", 1, &[]),
        ("instagram", "instagram/comment.json", 1, &[]),
        ("instagram", "instagram/comment_reply.json", 1, &[]),
        ("instagram", "instagram/batch.json", 3, &[]),
        ("instagram", "instagram/echo.json", 0, &["echo"]),
        ("instagram", "instagram/deleted.json", 0, &["deleted"]),
        ("instagram", "instagram/unsupported.json", 0, &["unsupported"]),
        ("instagram", "instagram/like_heart.json", 0, &["reaction"]),
        ("instagram", "instagram/reaction.json", 0, &["reaction"]),
        ("instagram", "instagram/own_comment.json", 0, &["own_comment"]),
        ("instagram", "instagram/mentions.json", 0, &["field"]),
    ];
    for (kind, fixture, count, reasons) in table {
        match run(kind, fixture) {
            Ok(Outcome::Accept {
                complaints,
                ignored,
            }) => {
                assert_eq!(complaints.len(), *count, "{fixture}");
                let expected: Vec<Ignored> =
                    reasons.iter().map(|r| Ignored { reason: r }).collect();
                assert_eq!(ignored, expected, "{fixture}");
                for c in &complaints {
                    assert!(
                        c.id.is_empty() && c.language.is_none(),
                        "{fixture}: left to the gateway"
                    );
                    let raw = c.raw.as_ref().expect("raw kept");
                    assert_eq!(raw.content_type, "application/json", "{fixture}");
                }
            }
            other => panic!("{fixture}: {other:?}"),
        }
    }
}

#[test]
fn bad_input_is_malformed_with_a_reason_free_of_content() {
    #[rustfmt::skip]
    let table: &[(&str, &str, &str)] = &[
        ("whatsapp", "whatsapp/not_json.txt", "body is not valid JSON"),
        ("whatsapp", "whatsapp/wrong_object.json", "object is not `whatsapp_business_account`"),
        ("whatsapp", "whatsapp/missing_id.json", "missing field `id` at entry[0].changes[0].value.messages[0]"),
        ("whatsapp", "whatsapp/timestamp_number.json", "wrong type at entry[0].changes[0].value.messages[0].timestamp"),
        ("whatsapp", "whatsapp/text_without_body.json", "missing field `text` at entry[0].changes[0].value.messages[0]"),
        ("messenger", "messenger/wrong_object.json", "object is not `page`"),
        ("messenger", "messenger/missing_mid.json", "missing field `mid` at entry[0].messaging[0].message"),
        ("messenger", "messenger/timestamp_string.json", "wrong type at entry[0].messaging[0].timestamp"),
        ("messenger", "messenger/feed_missing_post.json", "missing field `post_id` at entry[0].changes[0].value"),
        ("instagram", "instagram/comment_without_media.json", "missing field `media` at entry[0].changes[0].value"),
        ("instagram", "instagram/wrong_type.json", "wrong type at entry[0].messaging[0].message.text"),
        ("instagram", "messenger/text.json", "object is not `instagram`"),
    ];
    for (kind, fixture, reason) in table {
        match run(kind, fixture) {
            Err(Rejection::Malformed(r)) => assert_eq!(r, *reason, "{fixture}"),
            other => panic!("{fixture}: {other:?}"),
        }
    }
}

#[test]
fn a_whatsapp_message_of_an_unknown_type_is_counted_not_refused() {
    // Meta adds message types over time; an unknown one must not make Meta
    // retry the whole batch for days.
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","messages":[{"from":"6281234567890","id":"wamid.X","timestamp":"1763798400","type":"hologram","hologram":{"id":"9"}}]}}]}]}"#;
    let headers = http::HeaderMap::new();
    let method = http::Method::POST;
    let uri: http::Uri = "/webhooks/whatsapp/test".parse().expect("uri");
    let req = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body,
    };
    let ctx = Context {
        instance: "test",
        received_at: Timestamp::from_unix_seconds(1_763_800_000).expect("time"),
        keep_raw: false,
    };
    match WhatsApp::new(config()).expect("adapter").parse(&req, &ctx) {
        Ok(Outcome::Accept {
            complaints,
            ignored,
        }) => {
            assert!(complaints.is_empty());
            assert_eq!(
                ignored,
                vec![Ignored {
                    reason: "unsupported"
                }]
            );
        }
        other => panic!("{other:?}"),
    }
}
