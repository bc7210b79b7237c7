//! Meta channels end to end: WhatsApp, Messenger (with Page comments) and
//! Instagram, through the real gateway and a real Redis.
//!
//! Each case of the table sends one real-format request from
//! `channels/meta/fixtures/` and asserts the answer, the whole normalized
//! documents in the stream (from `<fixture>.expected.json`) or that nothing
//! was written, then sends the same request again, as Meta does for days,
//! and asserts the same answer and no new entry.

mod common;

use aduan_adapter::testkit::{Answer, META, Signing};
use common::table::{self, Case};
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

const WA: &str = "/webhooks/whatsapp/wa-jabar";
const FB: &str = "/webhooks/messenger/fb-bogor";
const IG: &str = "/webhooks/instagram/ig-bogor";
const FORBIDDEN: &str = r#"{"error":"bad_signature"}"#;

/// A fixture under `channels/meta/fixtures/` posted with the headers Meta
/// sends, signed as `sign` says.
fn post(label: &str, path: &str, fixture: &str, sign: Signing) -> Case {
    Case::post(label, path)
        .header("user-agent", "facebookexternalua")
        .json(common::fixtures("meta").bytes(fixture))
        .signed(META, APP_SECRET, sign)
}

/// A signed notification that adds the fixture's golden documents.
fn written(label: &str, path: &str, fixture: &str) -> Case {
    post(label, path, fixture, Signing::Good).adds_golden(common::fixtures("meta").golden(fixture))
}

/// A signed notification acknowledged with nothing written.
fn nothing(label: &str, path: &str, fixture: &str) -> Case {
    post(label, path, fixture, Signing::Good)
}

/// A signed notification refused as malformed for `reason`.
fn malformed(label: &str, path: &str, fixture: &str, reason: &str) -> Case {
    post(label, path, fixture, Signing::Good)
        .status(400)
        .answer(Answer::Json(
            json!({"error": "malformed", "reason": reason}),
        ))
}

/// A notification whose signature does not hold.
fn forged(label: &str, path: &str, fixture: &str, sign: Signing) -> Case {
    post(label, path, fixture, sign)
        .status(403)
        .answer(Answer::json(FORBIDDEN))
}

/// The verification handshake, answered with the challenge as plain text.
fn handshake(label: &str, path: &str, challenge: &str) -> Case {
    Case::get(label, path)
        .answer(Answer::text(challenge))
        .answer_type("text/plain")
}

/// A handshake refused with `status` and the JSON `answer`.
fn refused_handshake(label: &str, path: &str, status: u16, answer: &str) -> Case {
    Case::get(label, path)
        .status(status)
        .answer(Answer::json(answer))
}

fn cases() -> Vec<Case> {
    use Signing::{Garbage, Missing, Tampered, WrongSecret};
    vec![
        // The verification handshake, the same for the three kinds.
        handshake(
            "whatsapp handshake",
            "/webhooks/whatsapp/wa-jabar?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=token-verifikasi-meta",
            "1158201444",
        ),
        handshake(
            "messenger handshake",
            "/webhooks/messenger/fb-bogor?hub.mode=subscribe&hub.challenge=845093120&hub.verify_token=token-verifikasi-meta",
            "845093120",
        ),
        handshake(
            "instagram handshake",
            "/webhooks/instagram/ig-bogor?hub.mode=subscribe&hub.challenge=20261122&hub.verify_token=token-verifikasi-meta",
            "20261122",
        ),
        refused_handshake(
            "handshake with a wrong token",
            "/webhooks/whatsapp/wa-jabar?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=token-salah",
            403,
            FORBIDDEN,
        ),
        refused_handshake(
            "handshake with another mode",
            "/webhooks/messenger/fb-bogor?hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=token-verifikasi-meta",
            403,
            FORBIDDEN,
        ),
        refused_handshake(
            "handshake without a token",
            "/webhooks/instagram/ig-bogor?hub.mode=subscribe&hub.challenge=1158201444",
            403,
            FORBIDDEN,
        ),
        refused_handshake(
            "handshake without a challenge",
            "/webhooks/whatsapp/wa-jabar?hub.mode=subscribe&hub.verify_token=token-verifikasi-meta",
            400,
            r#"{"error":"malformed","reason":"hub.challenge is missing"}"#,
        ),
        // WhatsApp messages.
        written("whatsapp text", WA, "whatsapp/text.json"),
        written("whatsapp image with caption", WA, "whatsapp/image.json"),
        written("whatsapp video", WA, "whatsapp/video.json"),
        written("whatsapp voice note", WA, "whatsapp/voice.json"),
        written("whatsapp document", WA, "whatsapp/document.json"),
        written("whatsapp sticker", WA, "whatsapp/sticker.json"),
        written("whatsapp location", WA, "whatsapp/location.json"),
        written("whatsapp button reply", WA, "whatsapp/button_reply.json"),
        written("whatsapp list reply", WA, "whatsapp/list_reply.json"),
        written(
            "whatsapp template button",
            WA,
            "whatsapp/template_button.json",
        ),
        written("whatsapp reply with context", WA, "whatsapp/reply.json"),
        written(
            "whatsapp business-scoped user id",
            WA,
            "whatsapp/bsuid.json",
        ),
        written(
            "whatsapp batch: two entries, a status between messages",
            WA,
            "whatsapp/batch.json",
        ),
        written(
            "whatsapp batch of two messages, both new to this gateway",
            WA,
            "whatsapp/batch_with_duplicate.json",
        ),
        written(
            "whatsapp long text (the benchmark body)",
            WA,
            "whatsapp/bench_text.json",
        ),
        written(
            "whatsapp escaped unicode, raw kept",
            "/webhooks/whatsapp/wa-raw",
            "whatsapp/non_ascii.json",
        ),
        // WhatsApp events that are not complaints.
        nothing("whatsapp statuses", WA, "whatsapp/status.json"),
        nothing("whatsapp errors", WA, "whatsapp/errors.json"),
        nothing("whatsapp reaction", WA, "whatsapp/reaction.json"),
        nothing(
            "whatsapp unsupported message",
            WA,
            "whatsapp/unsupported.json",
        ),
        nothing(
            "whatsapp account update",
            WA,
            "whatsapp/account_update.json",
        ),
        // WhatsApp bad input.
        malformed(
            "whatsapp body not JSON",
            WA,
            "whatsapp/not_json.txt",
            "body is not valid JSON",
        ),
        malformed(
            "whatsapp page object",
            WA,
            "whatsapp/wrong_object.json",
            "object is not `whatsapp_business_account`",
        ),
        malformed(
            "whatsapp message without id",
            WA,
            "whatsapp/missing_id.json",
            "missing field `id` at entry[0].changes[0].value.messages[0]",
        ),
        malformed(
            "whatsapp timestamp as a number",
            WA,
            "whatsapp/timestamp_number.json",
            "wrong type at entry[0].changes[0].value.messages[0].timestamp",
        ),
        malformed(
            "whatsapp text without text",
            WA,
            "whatsapp/text_without_body.json",
            "missing field `text` at entry[0].changes[0].value.messages[0]",
        ),
        // Signatures.
        forged("whatsapp tampered body", WA, "whatsapp/text.json", Tampered),
        forged(
            "whatsapp wrong secret",
            WA,
            "whatsapp/text.json",
            WrongSecret,
        ),
        forged(
            "whatsapp missing signature",
            WA,
            "whatsapp/text.json",
            Missing,
        ),
        forged(
            "whatsapp malformed signature",
            WA,
            "whatsapp/text.json",
            Garbage,
        ),
        forged(
            "escaped unicode body tampered",
            "/webhooks/whatsapp/wa-raw",
            "whatsapp/non_ascii.json",
            Tampered,
        ),
        forged(
            "messenger wrong secret",
            FB,
            "messenger/text.json",
            WrongSecret,
        ),
        forged(
            "messenger missing signature",
            FB,
            "messenger/feed_comment.json",
            Missing,
        ),
        forged(
            "instagram tampered body",
            IG,
            "instagram/text.json",
            Tampered,
        ),
        forged(
            "instagram wrong secret",
            IG,
            "instagram/comment.json",
            WrongSecret,
        ),
        // Messenger.
        written("messenger text", FB, "messenger/text.json"),
        written("messenger quick reply", FB, "messenger/quick_reply.json"),
        written("messenger image and file", FB, "messenger/attachments.json"),
        written("messenger sticker", FB, "messenger/sticker.json"),
        written("messenger reply", FB, "messenger/reply.json"),
        written("messenger legacy location", FB, "messenger/location.json"),
        written(
            "messenger batch: two entries and a read",
            FB,
            "messenger/batch.json",
        ),
        nothing("messenger echo", FB, "messenger/echo.json"),
        nothing("messenger delivery", FB, "messenger/delivery.json"),
        nothing("messenger read", FB, "messenger/read.json"),
        nothing("messenger reaction", FB, "messenger/reaction.json"),
        nothing("messenger postback", FB, "messenger/postback.json"),
        nothing("messenger standby", FB, "messenger/standby.json"),
        // Page feed comments.
        written("page comment", FB, "messenger/feed_comment.json"),
        written(
            "page reply comment with photo",
            FB,
            "messenger/feed_reply_photo.json",
        ),
        written(
            "page comment without its author",
            FB,
            "messenger/feed_comment_anonymous.json",
        ),
        nothing("page comment edited", FB, "messenger/feed_edited.json"),
        nothing("page comment removed", FB, "messenger/feed_remove.json"),
        nothing("page's own comment", FB, "messenger/feed_own_comment.json"),
        nothing("page post reaction", FB, "messenger/feed_reaction.json"),
        // Messenger bad input.
        malformed(
            "messenger whatsapp object",
            FB,
            "messenger/wrong_object.json",
            "object is not `page`",
        ),
        malformed(
            "messenger message without mid",
            FB,
            "messenger/missing_mid.json",
            "missing field `mid` at entry[0].messaging[0].message",
        ),
        malformed(
            "messenger timestamp as a string",
            FB,
            "messenger/timestamp_string.json",
            "wrong type at entry[0].messaging[0].timestamp",
        ),
        malformed(
            "page comment without post id",
            FB,
            "messenger/feed_missing_post.json",
            "missing field `post_id` at entry[0].changes[0].value",
        ),
        // Instagram.
        written("instagram text", IG, "instagram/text.json"),
        written("instagram image and video", IG, "instagram/image.json"),
        written(
            "instagram story mention",
            IG,
            "instagram/story_mention.json",
        ),
        written("instagram story reply", IG, "instagram/story_reply.json"),
        written("instagram reply", IG, "instagram/reply.json"),
        written("instagram comment", IG, "instagram/comment.json"),
        written(
            "instagram comment reply",
            IG,
            "instagram/comment_reply.json",
        ),
        written(
            "instagram batch: messages and a comment",
            IG,
            "instagram/batch.json",
        ),
        nothing("instagram echo", IG, "instagram/echo.json"),
        nothing("instagram deleted message", IG, "instagram/deleted.json"),
        nothing(
            "instagram unsupported message",
            IG,
            "instagram/unsupported.json",
        ),
        nothing("instagram heart", IG, "instagram/like_heart.json"),
        nothing("instagram reaction", IG, "instagram/reaction.json"),
        nothing("instagram own comment", IG, "instagram/own_comment.json"),
        nothing("instagram mention", IG, "instagram/mentions.json"),
        malformed(
            "instagram comment without media",
            IG,
            "instagram/comment_without_media.json",
            "missing field `media` at entry[0].changes[0].value",
        ),
        malformed(
            "instagram text as a list",
            IG,
            "instagram/wrong_type.json",
            "wrong type at entry[0].messaging[0].message.text",
        ),
        malformed(
            "instagram page object",
            IG,
            "messenger/text.json",
            "object is not `instagram`",
        ),
    ]
}

/// Each case on a gateway of its own, so that every written case shows its
/// fixture's documents whole, none of them a duplicate of another case's.
/// Meta redelivers until it sees a 200, for days: every case is sent twice.
#[tokio::test]
async fn meta_fixture_table() {
    table::run_each(&instances(), cases().into_iter().map(Case::redelivered)).await;
}

#[tokio::test]
async fn a_batch_with_one_duplicate_writes_only_the_new_message() {
    let mut app = common::spawn_app(&instances()).await;
    let golden: Value = serde_json::from_slice(
        &common::fixtures("meta").bytes("whatsapp/batch_with_duplicate.expected.json"),
    )
    .expect("golden documents");
    let answered = table::run(
        &app,
        [
            written("whatsapp text", WA, "whatsapp/text.json"),
            nothing(
                "the batch repeating it",
                WA,
                "whatsapp/batch_with_duplicate.json",
            )
            .adds(vec![golden[1].clone()]),
        ],
    )
    .await;
    let after = app.complaints().await;
    assert_eq!(after.len(), 2, "only the new message is appended");
    assert_eq!(
        after[0], answered[0].added[0],
        "the first complaint is untouched"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bench_fixture_is_signed_with_the_bench_secret() {
    let body = common::fixtures("meta").bytes("whatsapp/bench_text.json");
    assert!(
        (650..=760).contains(&body.len()),
        "about 700 bytes: {}",
        body.len()
    );
    let sig = common::fixtures("meta").text("whatsapp/bench_text.sig");
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
    table::run(
        &app,
        [Case::post("a body over the limit", WA)
            .json(body)
            .signed(META, APP_SECRET, Signing::Good)
            .status(413)],
    )
    .await;
    app.stop().await;
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
    table::run(
        &app,
        [
            // Two statuses, both reports: none is an ignored event.
            nothing("two statuses", path, "whatsapp/status.json"),
            // A `sent` status, a report, and a `deleted` one, ignored.
            nothing(
                "a sent and a deleted status",
                path,
                "whatsapp/status_sent.json",
            ),
            nothing("a reaction", path, "whatsapp/reaction.json"),
            // Three messages and a status.
            nothing("a batch", path, "whatsapp/batch.json").adds_any(3),
            malformed(
                "not JSON",
                path,
                "whatsapp/not_json.txt",
                "body is not valid JSON",
            ),
            forged("unsigned", path, "whatsapp/text.json", Signing::Missing),
        ],
    )
    .await;
    let metrics = app.metrics().await;
    let ignored = |reason| {
        common::counter(
            &metrics,
            "aduan_events_ignored_total",
            &[("instance", "wa-hitung"), ("reason", reason)],
        )
    };
    let rejected = |reason| {
        common::counter(
            &metrics,
            "aduan_requests_rejected_total",
            &[("instance", "wa-hitung"), ("reason", reason)],
        )
    };
    // Statuses of delivery are reports; only status_sent.json's `deleted` is ignored.
    assert_eq!(ignored("status"), 1.0, "{metrics}");
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
