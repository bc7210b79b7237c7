//! The webhook adapter against the fixtures in `fixtures/`, without a gateway.
//!
//! Each case names a fixture and what it must become: the complaint's fields
//! that the case is about, an ignored label, or a rejection status. The whole
//! documents, through the gateway and Redis, are asserted in the gateway's
//! `tests/telegram.rs`.

use aduan_adapter::{Adapter, Context, Outcome, Request, Timestamp};
use aduan_telegram::{Intake, Telegram, TelegramConfig};
use serde_json::{Value, json};

const SECRET: &str = "rahasia-webhook_123";

enum Expect {
    Complaint(Value),
    Ignored(&'static str),
    Status(u16),
}

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

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

fn run(adapter: &Telegram, token: Option<&str>, body: &[u8]) -> Result<Outcome, u16> {
    let method = http::Method::POST;
    let uri: http::Uri = "/webhooks/telegram/tg-bogor".parse().expect("uri");
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("header"));
    if let Some(t) = token {
        headers.insert(
            "x-telegram-bot-api-secret-token",
            t.parse().expect("header"),
        );
    }
    let req = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body,
    };
    let ctx = Context {
        instance: "tg-bogor",
        received_at: Timestamp::from_unix_seconds(1_795_600_000).expect("time"),
        keep_raw: true,
    };
    adapter.verify(&req).map_err(|r| r.status())?;
    adapter.parse(&req, &ctx).map_err(|r| r.status())
}

/// Every key of `expected` has the same value in `actual`.
fn assert_subset(actual: &Value, expected: &Value, label: &str) {
    for (k, v) in expected.as_object().expect("object") {
        assert_eq!(actual.get(k), Some(v), "{label}: field `{k}`");
    }
}

#[test]
fn fixtures_normalize() {
    let budi = json!({"id": "telegram:418276345", "name": "Budi Santoso", "phone": null, "email": null, "handle": "@budisan", "language": "id"});
    let cases: Vec<(&str, Expect)> = vec![
        (
            "message_text.json",
            Expect::Complaint(json!({
                "external_id": "418276345:101",
                "sender": budi,
                "recipient": "@LaporCibinongBot",
                "sent_at": "2026-11-24T06:00:00.000Z",
                "text": "Jalan berlubang di depan SDN 3 Cibinong, sudah dua bulan belum diperbaiki. Mohon segera ditindaklanjuti.",
                "attachments": [],
                "thread": {"conversation": "tg-bogor:telegram:418276345", "in_reply_to": null, "references": []},
            })),
        ),
        (
            "message_photo.json",
            Expect::Complaint(json!({
                "text": "Foto lubang jalan di depan SDN 3 Cibinong",
                "attachments": [{"kind": "image", "content_type": "image/jpeg", "filename": null, "size": 104737, "sha256": null, "url": null, "provider_ref": "AgACAgUAAxkBAAIBZmc1_large", "storage_key": null, "caption": "Foto lubang jalan di depan SDN 3 Cibinong"}],
            })),
        ),
        (
            "message_document.json",
            Expect::Complaint(json!({
                "sender": {"id": "telegram:529384756", "name": "Siti Rahmawati", "phone": null, "email": null, "handle": null, "language": "id"},
                "attachments": [{"kind": "document", "content_type": "application/pdf", "filename": "surat-keluhan-rt05.pdf", "size": 48213, "sha256": null, "url": null, "provider_ref": "BQACAgUAAxkBAAIBZ2c1doc", "storage_key": null, "caption": "Surat keluhan warga RT 05 soal sampah"}],
            })),
        ),
        (
            "message_voice.json",
            Expect::Complaint(json!({
                "text": "",
                "attachments": [{"kind": "voice", "content_type": "audio/ogg", "filename": null, "size": 23110, "sha256": null, "url": null, "provider_ref": "AwACAgUAAxkBAAIBaGc1voice", "storage_key": null, "caption": null}],
            })),
        ),
        (
            "message_audio.json",
            Expect::Complaint(json!({
                "attachments": [{"kind": "audio", "content_type": "audio/mpeg", "filename": "rekaman-suara-bising.mp3", "size": 1048576, "sha256": null, "url": null, "provider_ref": "CQACAgUAAxkBAAIBaWc1audio", "storage_key": null, "caption": "Suara bising pabrik tiap malam"}],
            })),
        ),
        (
            "message_video.json",
            Expect::Complaint(json!({
                "attachments": [{"kind": "video", "content_type": "video/mp4", "filename": "banjir.mp4", "size": 5242880, "sha256": null, "url": null, "provider_ref": "BAACAgUAAxkBAAIBamc1video", "storage_key": null, "caption": "Banjir setinggi lutut di Jl. Mayor Oking"}],
            })),
        ),
        (
            "message_video_note.json",
            Expect::Complaint(json!({
                "attachments": [{"kind": "video", "content_type": null, "filename": null, "size": 402112, "sha256": null, "url": null, "provider_ref": "DQACAgUAAxkBAAIBa2c1note", "storage_key": null, "caption": null}],
            })),
        ),
        (
            "message_sticker.json",
            Expect::Complaint(json!({
                "attachments": [{"kind": "sticker", "content_type": "image/webp", "filename": null, "size": 30214, "sha256": null, "url": null, "provider_ref": "CAACAgUAAxkBAAIBbGc1stick", "storage_key": null, "caption": "😡"}],
            })),
        ),
        (
            "message_location.json",
            Expect::Complaint(json!({
                "text": "",
                "location": {"latitude": -6.481726, "longitude": 106.854312, "name": null, "address": null},
            })),
        ),
        (
            "message_venue.json",
            Expect::Complaint(json!({
                "location": {"latitude": -6.485301, "longitude": 106.842977, "name": "Pasar Cibinong", "address": "Jl. Tegar Beriman No. 1, Cibinong, Bogor"},
            })),
        ),
        (
            "message_contact.json",
            Expect::Complaint(json!({
                "sender": {"id": "telegram:529384756", "name": "Siti Rahmawati", "phone": "+6281234567890", "email": null, "handle": null, "language": "id"},
                "text": "",
            })),
        ),
        (
            "message_reply.json",
            Expect::Complaint(json!({
                "external_id": "418276345:112",
                "thread": {"conversation": "tg-bogor:telegram:418276345", "in_reply_to": "418276345:101", "references": []},
            })),
        ),
        (
            "edited_message.json",
            Expect::Complaint(json!({
                "external_id": "418276345:101:edited:1795500900",
                "sent_at": "2026-11-24T06:15:00.000Z",
                "text": "Jalan berlubang di depan SDN 3 Cibinong, sudah tiga bulan belum diperbaiki. Mohon segera ditindaklanjuti.",
                "thread": {"conversation": "tg-bogor:telegram:418276345", "in_reply_to": "418276345:101", "references": []},
            })),
        ),
        ("command_start.json", Expect::Ignored("command")),
        ("group_chatter.json", Expect::Ignored("group")),
        ("group_mention.json", Expect::Ignored("group")),
        ("channel_post.json", Expect::Ignored("channel_post")),
        ("callback_query.json", Expect::Ignored("callback_query")),
        ("my_chat_member.json", Expect::Ignored("my_chat_member")),
        ("missing_chat.json", Expect::Status(400)),
        ("not_json.txt", Expect::Status(400)),
    ];
    let tg = adapter("");
    for (name, expect) in cases {
        let body = fixture(name);
        let outcome = run(&tg, Some(SECRET), &body);
        match (expect, outcome) {
            (
                Expect::Complaint(fields),
                Ok(Outcome::Accept {
                    complaints,
                    ignored,
                }),
            ) => {
                assert_eq!(complaints.len(), 1, "{name}");
                assert!(ignored.is_empty(), "{name}");
                let doc = serde_json::to_value(&complaints[0]).expect("serializes");
                assert_subset(&doc, &fields, name);
                assert_subset(
                    &doc,
                    &json!({"schema": "aduan.complaint.v1", "id": "", "channel": "telegram", "provider": "telegram", "instance": "tg-bogor", "subject": null, "language": null, "call": null}),
                    name,
                );
                assert_eq!(
                    doc["raw"],
                    json!({"content_type": "application/json", "body": String::from_utf8(body).expect("utf-8")}),
                    "{name}: raw keeps the exact bytes"
                );
            }
            (
                Expect::Ignored(reason),
                Ok(Outcome::Accept {
                    complaints,
                    ignored,
                }),
            ) => {
                assert!(complaints.is_empty(), "{name}");
                assert_eq!(ignored.len(), 1, "{name}");
                assert_eq!(ignored[0].reason, reason, "{name}");
            }
            (Expect::Status(status), Err(got)) => assert_eq!(got, status, "{name}"),
            (_, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[test]
fn groups_when_enabled_only_what_addresses_the_bot() {
    let tg = adapter("allow_groups = true");
    let ok = |name: &str| match run(&tg, Some(SECRET), &fixture(name)) {
        Ok(Outcome::Accept { complaints, .. }) => complaints,
        other => panic!("{name}: {other:?}"),
    };
    let mention = ok("group_mention.json");
    assert_eq!(mention.len(), 1);
    assert_eq!(mention[0].external_id, "-1001987654321:2002");
    assert_eq!(mention[0].sender.id, "telegram:418276345");
    let reply = ok("group_reply_to_bot.json");
    assert_eq!(reply.len(), 1);
    assert_eq!(
        reply[0].thread.in_reply_to.as_deref(),
        Some("-1001987654321:2003")
    );
    assert!(ok("group_chatter.json").is_empty());
    // A private chat reads the same as with groups off.
    assert_eq!(ok("message_text.json").len(), 1);
}

#[test]
fn secret_token_is_required_and_exact() {
    let tg = adapter("");
    let body = fixture("message_text.json");
    assert_eq!(run(&tg, None, &body).err(), Some(401));
    assert_eq!(
        run(&tg, Some("rahasia-webhook_124"), &body).err(),
        Some(401)
    );
    assert_eq!(run(&tg, Some("rahasia-webhook_12"), &body).err(), Some(401));
    assert!(run(&tg, Some(SECRET), &body).is_ok());
}

#[test]
fn the_check_can_be_turned_off_but_not_forgotten() {
    let cfg: TelegramConfig = toml_from("bot_username = \"LaporCibinongBot\"");
    assert!(aduan_telegram::build("tg-bogor", true, cfg).is_err());
    let cfg: TelegramConfig = toml_from("verify_secret_token = false");
    let Ok(Intake::Webhook(open)) = aduan_telegram::build("tg-bogor", true, cfg) else {
        panic!("webhook instance expected");
    };
    assert!(run(&open, None, &fixture("message_text.json")).is_ok());
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
    let method = http::Method::POST;
    let uri: http::Uri = "/webhooks/telegram/tg-bogor".parse().expect("uri");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-telegram-bot-api-secret-token",
        SECRET.parse().expect("header"),
    );
    let req = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body,
    };
    let ctx = Context {
        instance: "tg-bogor",
        received_at: Timestamp::from_unix_seconds(1_795_600_000).expect("time"),
        keep_raw: true,
    };
    let err = tg.parse(&req, &ctx).expect_err("malformed");
    let reply = tg.rejected(&err);
    let text = String::from_utf8(reply.body).expect("utf-8");
    assert_eq!(reply.status, 400);
    assert!(!text.contains("Budi") && !text.contains("0812"), "{text}");
}
