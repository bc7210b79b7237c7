//! X Account Activity end to end, through the real gateway and a real Redis.
//!
//! Each case sends one request (the CRC check, or a real-format event body
//! from `channels/x/fixtures/`) and asserts the answer and the whole
//! normalized documents that reached the stream (`<fixture>.expected.json`),
//! or that nothing did. Every case is then sent again, as X retries, and must
//! get the same answer and add nothing.

mod common;

use aduan_adapter::testkit::{Answer, Signing, X};
use common::table::{self, Case};
use serde_json::Value;

/// The consumer secret of X's own CRC example (providers.md section 7), so
/// that the handshake case checks the known answer.
const SECRET: &str = "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu";
const ACCOUNT: &str = "1460000000000000001";

/// One instance without `raw`, so that the expected documents stay readable,
/// and one that keeps the exact bytes.
fn instances() -> String {
    let mut toml = String::new();
    for (name, keep_raw) in [("x-pupr", false), ("x-raw", true)] {
        toml.push_str(&format!(
            "[[instances]]\nname = \"{name}\"\nkind = \"x\"\nkeep_raw = {keep_raw}\n\
             consumer_secret = \"{SECRET}\"\naccount_id = \"{ACCOUNT}\"\n\n"
        ));
    }
    toml
}

const PUPR: &str = "/webhooks/x/x-pupr";
const FORBIDDEN: &str = r#"{"error":"bad_signature"}"#;

/// Fixture `name` under `channels/x/fixtures/` posted to `path`, signed as
/// `sign` says. X retries: every case is sent twice.
fn post(label: &str, path: &str, name: &str, sign: Signing) -> Case {
    Case::post(label, path)
        .json(common::fixtures("x").bytes(name))
        .signed(X, SECRET, sign)
        .redelivered()
}

/// A signed event answered with an empty `200` that adds its golden
/// documents (`<fixture>.raw.expected.json` on the instance keeping `raw`).
fn written(label: &str, path: &str, name: &str) -> Case {
    let fixtures = common::fixtures("x");
    let golden = if path.ends_with("x-raw") {
        fixtures.golden_variant(name, "raw")
    } else {
        fixtures.golden(name)
    };
    post(label, path, name, Signing::Good)
        .answer(Answer::empty())
        .adds_golden(golden)
}

/// A signed event answered with an empty `200`, nothing written.
fn nothing(label: &str, name: &str) -> Case {
    post(label, PUPR, name, Signing::Good).answer(Answer::empty())
}

/// An event refused with `status` and the JSON `answer`.
fn refused(label: &str, name: &str, sign: Signing, status: u16, answer: &str) -> Case {
    post(label, PUPR, name, sign)
        .status(status)
        .answer(Answer::json(answer))
}

fn cases() -> Vec<Case> {
    use Signing::{Good, Missing, Tampered, WrongSecret};
    vec![
        Case::get(
            "CRC check answers the known vector",
            "/webhooks/x/x-pupr?crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553",
        )
        .answer(Answer::json(
            r#"{"response_token":"sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="}"#,
        ))
        .redelivered(),
        Case::get("CRC check without a token", PUPR)
            .status(400)
            .answer(Answer::json(
                r#"{"error":"malformed","reason":"missing crc_token"}"#,
            ))
            .redelivered(),
        written("DM with HTML entities", PUPR, "dm_text.json"),
        written("DM with a photo", PUPR, "dm_media.json"),
        written("two DMs in one delivery", PUPR, "dm_batch.json"),
        written(
            "mention: extended text, reply, coordinates, media",
            PUPR,
            "tweet_mention.json",
        ),
        nothing("the account's own DM", "dm_echo.json"),
        nothing("the account's own Tweet", "tweet_own.json"),
        nothing("favorite", "favorite.json"),
        nothing("follow", "follow.json"),
        nothing("typing indicator", "typing.json"),
        refused(
            "DM without a sender",
            "dm_missing_sender.json",
            Good,
            400,
            r#"{"error":"malformed","reason":"missing field `sender_id` at line 21 column 7"}"#,
        ),
        refused("tampered body", "dm_text.json", Tampered, 403, FORBIDDEN),
        refused(
            "signed with another secret",
            "dm_text.json",
            WrongSecret,
            403,
            FORBIDDEN,
        ),
        refused("no signature", "dm_text.json", Missing, 403, FORBIDDEN),
        written(
            "raw kept byte for byte",
            "/webhooks/x/x-raw",
            "dm_text.json",
        ),
    ]
}

#[tokio::test]
async fn x_cases() {
    let mut app = common::spawn_app(&instances()).await;
    table::run(&app, cases()).await;
    app.stop().await;
}

#[tokio::test]
async fn raw_is_the_exact_body() {
    let mut app = common::spawn_app(&instances()).await;
    let answered = table::run(
        &app,
        [written(
            "raw kept byte for byte",
            "/webhooks/x/x-raw",
            "dm_text.json",
        )],
    )
    .await;
    let docs = &answered[0].added;
    let fixture = common::fixtures("x").bytes("dm_text.json");
    assert_eq!(docs.len(), 1);
    assert_eq!(
        docs[0]["raw"]["body"].as_str(),
        std::str::from_utf8(&fixture).ok()
    );
    assert_eq!(docs[0]["raw"]["content_type"], "application/json");
    app.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_refused() {
    let mut app = common::spawn_app(&instances()).await;
    let mut activity: Value = serde_json::from_slice(&common::fixtures("x").bytes("dm_text.json"))
        .expect("fixture is JSON");
    activity["direct_message_events"][0]["message_create"]["message_data"]["text"] =
        "Lampu jalan mati. ".repeat(70_000).into();
    let body = activity.to_string().into_bytes();
    table::run(
        &app,
        [Case::post("oversize event", PUPR)
            .json(body)
            .signed(X, SECRET, Signing::Good)
            .status(413)],
    )
    .await;
    app.stop().await;
}
