//! Every fixture through the adapters alone, without the gateway: the whole
//! documents each request yields (its golden `<fixture>.expected.json`, the
//! same file `tests/meta.rs` checks the stream against, here with the exact
//! bytes kept in `raw`), the acknowledged events it counts, and the reason
//! bad input is refused for.

use aduan_adapter::testkit::{self, Answer, Case, Fixtures, OwnedRequest, Signing};
use aduan_adapter::{Adapter, Outcome};
use aduan_meta::{Instagram, Messenger, MetaConfig, WhatsApp};
use serde_json::json;

const SECRET: &str = "rahasia-aplikasi-meta";

fn config() -> MetaConfig {
    serde_json::from_value(json!({
        "app_secret": SECRET,
        "verify_token": "token-verifikasi-meta",
    }))
    .expect("config")
}

fn fixtures() -> Fixtures {
    Fixtures::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

/// `fixture` posted and signed as Meta does, acknowledging `ignored`.
fn counted(fixture: &str, ignored: &[&'static str]) -> Case {
    let body = fixtures().bytes(fixture);
    let request = OwnedRequest::post("/webhooks/meta/test").json(body).signed(
        testkit::META,
        SECRET,
        Signing::Good,
    );
    Case::new(fixture, request).ignored(ignored)
}

/// Like [`counted`], yielding the documents of the fixture's golden file.
fn written(fixture: &str, ignored: &[&'static str]) -> Case {
    let body = fixtures().bytes(fixture);
    counted(fixture, ignored)
        .golden(fixtures().golden(fixture))
        .with("raw", testkit::raw("application/json", &body))
}

/// Like [`counted`], refused as malformed for `reason`.
fn malformed(fixture: &str, reason: &str) -> Case {
    counted(fixture, &[]).status(400).answer(Answer::Json(
        json!({"error": "malformed", "reason": reason}),
    ))
}

#[test]
fn each_fixture_yields_its_complaints_and_counted_events() {
    let whatsapp = WhatsApp::new(config()).expect("whatsapp");
    testkit::run(
        &whatsapp,
        &testkit::context("wa-jabar", true),
        [
            written("whatsapp/text.json", &[]),
            written("whatsapp/image.json", &[]),
            written("whatsapp/video.json", &[]),
            written("whatsapp/voice.json", &[]),
            written("whatsapp/document.json", &[]),
            written("whatsapp/sticker.json", &[]),
            written("whatsapp/location.json", &[]),
            written("whatsapp/button_reply.json", &[]),
            written("whatsapp/list_reply.json", &[]),
            written("whatsapp/template_button.json", &[]),
            written("whatsapp/reply.json", &[]),
            written("whatsapp/bsuid.json", &[]),
            written("whatsapp/batch.json", &["status"]),
            written("whatsapp/batch_with_duplicate.json", &[]),
            written("whatsapp/bench_text.json", &[]),
            counted("whatsapp/status.json", &["status", "status"]),
            counted("whatsapp/errors.json", &["error"]),
            counted("whatsapp/reaction.json", &["reaction"]),
            counted("whatsapp/unsupported.json", &["unsupported"]),
            counted("whatsapp/account_update.json", &["field"]),
        ],
    );
    // The instance that keeps the raw bytes has a golden file of its own.
    testkit::run(
        &whatsapp,
        &testkit::context("wa-raw", true),
        [written("whatsapp/non_ascii.json", &[])],
    );
    testkit::run(
        &Messenger::new(config()).expect("messenger"),
        &testkit::context("fb-bogor", true),
        [
            written("messenger/text.json", &[]),
            written("messenger/quick_reply.json", &[]),
            written("messenger/attachments.json", &[]),
            written("messenger/sticker.json", &[]),
            written("messenger/reply.json", &[]),
            written("messenger/location.json", &[]),
            written("messenger/batch.json", &["read"]),
            counted("messenger/echo.json", &["echo"]),
            counted("messenger/delivery.json", &["delivery"]),
            counted("messenger/read.json", &["read"]),
            counted("messenger/reaction.json", &["reaction"]),
            counted("messenger/postback.json", &["postback"]),
            counted("messenger/standby.json", &["standby"]),
            written("messenger/feed_comment.json", &[]),
            written("messenger/feed_reply_photo.json", &[]),
            written("messenger/feed_comment_anonymous.json", &[]),
            counted("messenger/feed_edited.json", &["edit"]),
            counted("messenger/feed_remove.json", &["removal"]),
            counted("messenger/feed_own_comment.json", &["own_comment"]),
            counted("messenger/feed_reaction.json", &["feed_item"]),
        ],
    );
    testkit::run(
        &Instagram::new(config()).expect("instagram"),
        &testkit::context("ig-bogor", true),
        [
            written("instagram/text.json", &[]),
            written("instagram/image.json", &[]),
            written("instagram/story_mention.json", &[]),
            written("instagram/story_reply.json", &[]),
            written("instagram/reply.json", &[]),
            written("instagram/comment.json", &[]),
            written("instagram/comment_reply.json", &[]),
            written("instagram/batch.json", &[]),
            counted("instagram/echo.json", &["echo"]),
            counted("instagram/deleted.json", &["deleted"]),
            counted("instagram/unsupported.json", &["unsupported"]),
            counted("instagram/like_heart.json", &["reaction"]),
            counted("instagram/reaction.json", &["reaction"]),
            counted("instagram/own_comment.json", &["own_comment"]),
            counted("instagram/mentions.json", &["field"]),
        ],
    );
}

#[test]
fn bad_input_is_malformed_with_a_reason_free_of_content() {
    let ctx = testkit::context("test", true);
    testkit::run(
        &WhatsApp::new(config()).expect("whatsapp"),
        &ctx,
        [
            malformed("whatsapp/not_json.txt", "body is not valid JSON"),
            malformed(
                "whatsapp/wrong_object.json",
                "object is not `whatsapp_business_account`",
            ),
            malformed(
                "whatsapp/missing_id.json",
                "missing field `id` at entry[0].changes[0].value.messages[0]",
            ),
            malformed(
                "whatsapp/timestamp_number.json",
                "wrong type at entry[0].changes[0].value.messages[0].timestamp",
            ),
            malformed(
                "whatsapp/text_without_body.json",
                "missing field `text` at entry[0].changes[0].value.messages[0]",
            ),
        ],
    );
    testkit::run(
        &Messenger::new(config()).expect("messenger"),
        &ctx,
        [
            malformed("messenger/wrong_object.json", "object is not `page`"),
            malformed(
                "messenger/missing_mid.json",
                "missing field `mid` at entry[0].messaging[0].message",
            ),
            malformed(
                "messenger/timestamp_string.json",
                "wrong type at entry[0].messaging[0].timestamp",
            ),
            malformed(
                "messenger/feed_missing_post.json",
                "missing field `post_id` at entry[0].changes[0].value",
            ),
        ],
    );
    testkit::run(
        &Instagram::new(config()).expect("instagram"),
        &ctx,
        [
            malformed(
                "instagram/comment_without_media.json",
                "missing field `media` at entry[0].changes[0].value",
            ),
            malformed(
                "instagram/wrong_type.json",
                "wrong type at entry[0].messaging[0].message.text",
            ),
            malformed("messenger/text.json", "object is not `instagram`"),
        ],
    );
}

#[test]
fn a_whatsapp_message_of_an_unknown_type_is_counted_not_refused() {
    // Meta adds message types over time; an unknown one must not make Meta
    // retry the whole batch for days.
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","messages":[{"from":"6281234567890","id":"wamid.X","timestamp":"1763798400","type":"hologram","hologram":{"id":"9"}}]}}]}]}"#;
    let request = OwnedRequest::post("/webhooks/whatsapp/test").json(&body[..]);
    let ctx = testkit::context("test", false);
    match WhatsApp::new(config())
        .expect("adapter")
        .parse(&request.as_request(), &ctx)
    {
        Ok(Outcome::Accept {
            complaints,
            ignored,
            ..
        }) => {
            assert!(complaints.is_empty());
            let reasons: Vec<&str> = ignored.iter().map(|i| i.reason).collect();
            assert_eq!(reasons, ["unsupported"]);
        }
        other => panic!("{other:?}"),
    }
}
