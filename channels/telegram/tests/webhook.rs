//! The webhook adapter against the fixtures in `fixtures/`, without a gateway.
//!
//! Each case names a fixture and what it must become: the whole documents of
//! its golden `<fixture>.expected.json` (the files `tests/telegram.rs` checks
//! the stream against, here with the exact bytes kept in `raw`), an ignored
//! reason, or a rejection status.

use aduan_adapter::Adapter;
use aduan_adapter::testkit::{self, Case, Fixtures, OwnedRequest, TELEGRAM_SECRET_HEADER};
use aduan_telegram::{Intake, Telegram, TelegramConfig};

const SECRET: &str = "rahasia-webhook_123";

fn adapter(extra: &str) -> Telegram {
    let toml = format!("secret_token = \"{SECRET}\"\nbot_username = \"LaporCibinongBot\"\n{extra}");
    let cfg: TelegramConfig = toml_from(&toml);
    match aduan_telegram::build("tg-bogor", true, cfg) {
        Ok(Intake::Webhook(t)) => t,
        _ => panic!("webhook instance expected"),
    }
}

/// The config as the gateway would deserialize it.
fn toml_from(s: &str) -> TelegramConfig {
    toml::from_str(s).expect("valid config")
}

fn fixtures() -> Fixtures {
    Fixtures::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

/// Fixture `name` as Telegram posts it, with `token` in the secret-token header.
fn update(name: &str, token: Option<&str>) -> OwnedRequest {
    OwnedRequest::post("/webhooks/telegram/tg-bogor")
        .header_opt(TELEGRAM_SECRET_HEADER, token)
        .json(fixtures().bytes(name))
}

/// An update that becomes the documents of its golden file, `raw` kept.
fn written(name: &str) -> Case {
    Case::new(name, update(name, Some(SECRET)))
        .golden(fixtures().golden(name))
        .with(
            "raw",
            testkit::raw("application/json", &fixtures().bytes(name)),
        )
}

/// An update acknowledged and not written, for `reason`.
fn ignored(name: &str, reason: &'static str) -> Case {
    Case::new(name, update(name, Some(SECRET))).ignored(&[reason])
}

#[test]
fn fixtures_normalize() {
    testkit::run(
        &adapter(""),
        &testkit::context("tg-bogor", true),
        [
            written("message_text.json"),
            written("message_photo.json"),
            written("message_document.json"),
            written("message_voice.json"),
            written("message_audio.json"),
            written("message_video.json"),
            written("message_video_note.json"),
            written("message_sticker.json"),
            written("message_location.json"),
            written("message_venue.json"),
            written("message_contact.json"),
            written("message_reply.json"),
            written("edited_message.json"),
            ignored("command_start.json", "command"),
            ignored("group_chatter.json", "group"),
            ignored("group_mention.json", "group"),
            ignored("channel_post.json", "channel_post"),
            ignored("callback_query.json", "callback_query"),
            ignored("my_chat_member.json", "my_chat_member"),
            Case::new(
                "missing_chat.json",
                update("missing_chat.json", Some(SECRET)),
            )
            .status(400),
            Case::new("not_json.txt", update("not_json.txt", Some(SECRET))).status(400),
        ],
    );
}

#[test]
fn groups_when_enabled_only_what_addresses_the_bot() {
    let tg = adapter("allow_groups = true");
    testkit::run(
        &tg,
        &testkit::context("tg-grup", false),
        [
            Case::new("mention", update("group_mention.json", Some(SECRET)))
                .golden(fixtures().golden_variant("group_mention.json", "tg-grup")),
            Case::new(
                "reply to the bot",
                update("group_reply_to_bot.json", Some(SECRET)),
            )
            .golden(fixtures().golden_variant("group_reply_to_bot.json", "tg-grup")),
            ignored("group_chatter.json", "group_chatter"),
        ],
    );
    // A private chat reads the same as with groups off.
    testkit::run(
        &tg,
        &testkit::context("tg-bogor", false),
        [
            Case::new("private chat", update("message_text.json", Some(SECRET)))
                .golden(fixtures().golden("message_text.json")),
        ],
    );
}

#[test]
fn secret_token_is_required_and_exact() {
    let text = "message_text.json";
    let refused =
        |label: &str, token: Option<&str>| Case::new(label, update(text, token)).status(401);
    testkit::run(
        &adapter(""),
        &testkit::context("tg-bogor", false),
        [
            refused("no token", None),
            refused("another token", Some("rahasia-webhook_124")),
            refused("a prefix of the token", Some("rahasia-webhook_12")),
            Case::new("the token", update(text, Some(SECRET))).golden(fixtures().golden(text)),
        ],
    );
}

#[test]
fn the_check_can_be_turned_off_but_not_forgotten() {
    let cfg: TelegramConfig = toml_from("bot_username = \"LaporCibinongBot\"");
    assert!(aduan_telegram::build("tg-bogor", true, cfg).is_err());
    let cfg: TelegramConfig = toml_from("verify_secret_token = false");
    let Ok(Intake::Webhook(open)) = aduan_telegram::build("tg-bogor", true, cfg) else {
        panic!("webhook instance expected");
    };
    let request = update("message_text.json", None);
    assert!(testkit::handle(&open, &testkit::context("tg-bogor", true), &request).is_ok());
}

#[test]
fn config_is_validated() {
    for bad in [
        "secret_token = \"has space\"",
        "secret_token = \"ok\"\nbot_username = \"not a name\"",
        "mode = \"polling\"",
        "mode = \"polling\"\nbot_token = \"123:abc\"\npoll_timeout_seconds = 0",
        "mode = \"polling\"\nbot_token = \"123:abc\"\npoll_timeout_seconds = 30\nlease_seconds = 30",
        "mode = \"polling\"\nbot_token = \"123:abc\"\napi_url = \"not a url\"",
    ] {
        let cfg: TelegramConfig = toml_from(bad);
        assert!(aduan_telegram::build("tg", true, cfg).is_err(), "{bad}");
    }
    let unknown: Result<TelegramConfig, _> =
        toml::from_str("secret_token = \"ok\"\nsecret = \"typo\"");
    assert!(unknown.is_err());
}

#[test]
fn rejections_do_not_echo_the_body() {
    let tg = adapter("");
    let body = br#"{"update_id": 1, "message": {"message_id": 2, "chat": {"id": 3, "type": "private"}, "date": "Budi Santoso 081234567890"}}"#;
    let request = OwnedRequest::post("/webhooks/telegram/tg-bogor")
        .header(TELEGRAM_SECRET_HEADER, SECRET)
        .json(&body[..]);
    let err = tg
        .parse(&request.as_request(), &testkit::context("tg-bogor", true))
        .expect_err("malformed");
    let reply = tg.rejected(&err);
    let text = String::from_utf8(reply.body).expect("utf-8");
    assert_eq!(reply.status, 400);
    assert!(!text.contains("Budi") && !text.contains("0812"), "{text}");
}
