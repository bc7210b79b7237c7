//! Every fixture through the adapters alone, without the gateway: the whole
//! documents each request yields (its golden `<fixture>.expected.json`, the
//! same file `tests/meta.rs` checks the stream against, here with the exact
//! bytes kept in `raw`), the acknowledged events it counts, the delivery
//! and read reports it carries, and the reason bad input is refused for.

use aduan_adapter::testkit::{self, Answer, Case, Fixtures, OwnedRequest, Signing};
use aduan_adapter::{
    Adapter, DeliveryStatus, MessageRef, Outcome, ReportRef, StatusReport, Timestamp,
};
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
            written("whatsapp/batch.json", &[]),
            written("whatsapp/batch_with_duplicate.json", &[]),
            written("whatsapp/bench_text.json", &[]),
            counted("whatsapp/status.json", &[]),
            counted("whatsapp/status_sent.json", &["status"]),
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
            written("messenger/batch.json", &[]),
            counted("messenger/echo.json", &["echo"]),
            counted("messenger/delivery.json", &[]),
            counted("messenger/delivery_watermark.json", &[]),
            counted("messenger/read.json", &[]),
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
            counted("instagram/read.json", &[]),
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
            malformed(
                "whatsapp/status_missing_id.json",
                "missing field `id` at entry[0].changes[0].value.statuses[0]",
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
                "messenger/read_without_sender.json",
                "missing field `sender` at entry[0].messaging[0]",
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

/// The reports and the ignored events of `fixture`, signed as Meta does.
fn reports_of(adapter: &dyn Adapter, fixture: &str) -> (Vec<StatusReport>, Vec<&'static str>) {
    let request = OwnedRequest::post("/webhooks/meta/test")
        .json(fixtures().bytes(fixture))
        .signed(testkit::META, SECRET, Signing::Good);
    match testkit::handle(adapter, &testkit::context("test", false), &request) {
        Ok(Outcome::Accept {
            reports, ignored, ..
        }) => (reports, ignored.iter().map(|i| i.reason).collect()),
        other => panic!("{fixture}: {other:?}"),
    }
}

fn seconds(s: i64) -> Option<Timestamp> {
    Timestamp::from_unix_seconds(s)
}

fn millis(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms).expect("in range")
}

fn report(about: ReportRef, status: DeliveryStatus, at: Option<Timestamp>) -> StatusReport {
    StatusReport {
        about,
        reference: None,
        status,
        error: None,
        at,
    }
}

fn message(id: &str) -> ReportRef {
    ReportRef::Message(id.to_string())
}

#[test]
fn whatsapp_statuses_are_reports_about_the_wamid_sent() {
    let whatsapp = WhatsApp::new(config()).expect("whatsapp");
    let (reports, ignored) = reports_of(&whatsapp, "whatsapp/status.json");
    assert!(ignored.is_empty());
    assert_eq!(
        reports,
        [
            report(
                message("wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjVCQzM2NUQ1QkJCRUFBMjlCRQA="),
                DeliveryStatus::Read,
                seconds(1_763_798_460),
            ),
            StatusReport {
                error: Some(("131047".to_string(), "Re-engagement message".to_string())),
                ..report(
                    message("wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjVCQzM2NUQ1QkJCRUFBMjlCRgA="),
                    DeliveryStatus::Failed,
                    seconds(1_763_798_461),
                )
            },
        ]
    );

    // `sent` is a report; `deleted` says nothing about delivery.
    let (reports, ignored) = reports_of(&whatsapp, "whatsapp/status_sent.json");
    assert_eq!(ignored, ["status"]);
    assert_eq!(
        reports,
        [report(
            message("wamid.HBgNNjI4NTcxMjM0NTY3OBUCABEYEjQ2QTdCMEMyRjNBMUQ5RTg3RgA="),
            DeliveryStatus::Sent,
            seconds(1_763_798_520),
        )]
    );

    // The `biz_opaque_callback_data` we sent comes back as our reference;
    // one set by other tools is no reference of ours.
    let (reports, ignored) = reports_of(&whatsapp, "whatsapp/status_reference.json");
    assert!(ignored.is_empty());
    assert_eq!(
        reports,
        [
            StatusReport {
                reference: MessageRef::new("rpl-20261123-0042", 1),
                ..report(
                    message("wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ1RTk0QTg2QjJFRkQ3MDA5QQA="),
                    DeliveryStatus::Delivered,
                    seconds(1_763_798_530),
                )
            },
            report(
                message("wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ1RTk0QTg2QjJFRkQ3MDA5QgA="),
                DeliveryStatus::Read,
                seconds(1_763_798_590),
            ),
        ]
    );

    // A status between messages: three complaints and one report.
    let (reports, ignored) = reports_of(&whatsapp, "whatsapp/batch.json");
    assert!(ignored.is_empty());
    assert_eq!(
        reports,
        [report(
            message("wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjVCQzM2NUQ1QkJCRUFBMjlCRQA="),
            DeliveryStatus::Delivered,
            seconds(1_763_798_402),
        )]
    );

    // A complaint carries no reports.
    let (reports, _) = reports_of(&whatsapp, "whatsapp/text.json");
    assert!(reports.is_empty());
}

#[test]
fn whatsapp_failure_without_a_title_keeps_the_message() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","statuses":[{"id":"wamid.GAGAL","status":"failed","timestamp":"1763798461","recipient_id":"6281234567890","errors":[{"code":131026,"message":"Message undeliverable"}]},{"id":"wamid.TERKIRIM","status":"sent","recipient_id":"6281234567890","errors":[{"code":1}]}]}}]}]}"#;
    let request = OwnedRequest::post("/webhooks/whatsapp/test").json(&body[..]);
    let ctx = testkit::context("test", false);
    match WhatsApp::new(config())
        .expect("adapter")
        .parse(&request.as_request(), &ctx)
    {
        Ok(Outcome::Accept { reports, .. }) => assert_eq!(
            reports,
            [
                StatusReport {
                    error: Some(("131026".to_string(), "Message undeliverable".to_string())),
                    ..report(
                        message("wamid.GAGAL"),
                        DeliveryStatus::Failed,
                        seconds(1_763_798_461)
                    )
                },
                // Errors are kept for failures only; no timestamp, no time.
                report(message("wamid.TERKIRIM"), DeliveryStatus::Sent, None),
            ]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn messenger_and_instagram_receipts_are_reports() {
    let messenger = Messenger::new(config()).expect("messenger");
    let citizen = "7104838652917823";
    let (reports, ignored) = reports_of(&messenger, "messenger/delivery.json");
    assert!(ignored.is_empty());
    let delivered = |mid: &str| {
        report(
            message(mid),
            DeliveryStatus::Delivered,
            Some(millis(1_763_798_399_000)),
        )
    };
    assert_eq!(
        reports,
        [
            delivered(
                "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN07"
            ),
            delivered(
                "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN08"
            ),
        ]
    );

    // Without `mids`, the watermark covers what was sent to the citizen.
    let (reports, _) = reports_of(&messenger, "messenger/delivery_watermark.json");
    assert_eq!(
        reports,
        [report(
            ReportRef::UpTo {
                recipient: citizen.to_string(),
                watermark: millis(1_763_798_399_000),
            },
            DeliveryStatus::Delivered,
            Some(millis(1_763_798_399_000)),
        )]
    );

    // A read is up to its watermark, at the event's time.
    let (reports, ignored) = reports_of(&messenger, "messenger/read.json");
    assert!(ignored.is_empty());
    assert_eq!(
        reports,
        [report(
            ReportRef::UpTo {
                recipient: citizen.to_string(),
                watermark: millis(1_763_798_399_000),
            },
            DeliveryStatus::Read,
            Some(millis(1_763_798_399_871)),
        )]
    );

    // Two complaints and the read between them.
    let (reports, _) = reports_of(&messenger, "messenger/batch.json");
    assert_eq!(
        reports,
        [report(
            ReportRef::UpTo {
                recipient: citizen.to_string(),
                watermark: millis(1_763_798_390_000),
            },
            DeliveryStatus::Read,
            Some(millis(1_763_798_399_871)),
        )]
    );

    // Instagram's `messaging_seen` names the message seen.
    let instagram = Instagram::new(config()).expect("instagram");
    let (reports, ignored) = reports_of(&instagram, "instagram/read.json");
    assert!(ignored.is_empty());
    assert_eq!(
        reports,
        [report(
            message(
                "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk5MjEyOTk2NTc3NzY3MzozMTk0NTQ006"
            ),
            DeliveryStatus::Read,
            Some(millis(1_763_798_459_871)),
        )]
    );
}

#[test]
fn a_read_without_watermark_or_mid_is_malformed() {
    let body = br#"{"object":"page","entry":[{"id":"448242228374517","messaging":[{"sender":{"id":"7104838652917823"},"recipient":{"id":"448242228374517"},"timestamp":1763798399871,"read":{}}]}]}"#;
    let request = OwnedRequest::post("/webhooks/messenger/test").json(&body[..]);
    let ctx = testkit::context("test", false);
    match Messenger::new(config())
        .expect("adapter")
        .parse(&request.as_request(), &ctx)
    {
        Err(aduan_adapter::Rejection::Malformed(reason)) => assert_eq!(
            reason,
            "read without `watermark` or `mid` at entry[0].messaging[0].read"
        ),
        other => panic!("{other:?}"),
    }
}
