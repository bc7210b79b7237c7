//! The X adapter against the fixtures in `fixtures/`, without a gateway.
//!
//! Each case's documents are the whole golden `<fixture>.expected.json`, the
//! files the gateway's `tests/x.rs` checks the stream against.

use aduan_adapter::testkit::{self, Answer, Case, Fixtures, OwnedRequest, Signing};
use aduan_adapter::{Adapter, Context};
use aduan_x::{X, XConfig};
use serde_json::json;

const SECRET: &str = "kunci-rahasia-konsumen-uji";
const ACCOUNT: &str = "1460000000000000001";
const PATH: &str = "/webhooks/x/x-pupr";

fn adapter(secret: &str) -> X {
    let cfg: XConfig = toml::from_str(&format!(
        "consumer_secret = \"{secret}\"\naccount_id = \"{ACCOUNT}\""
    ))
    .expect("valid config");
    X::new(cfg).expect("valid instance")
}

fn fixtures() -> Fixtures {
    Fixtures::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

/// The context of the instance the golden documents were written for.
fn ctx() -> Context<'static> {
    testkit::context("x-pupr", false)
}

/// `body` posted as X does, signed as `signing` says.
fn post(body: &[u8], signing: Signing) -> OwnedRequest {
    OwnedRequest::post(PATH)
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .signed(testkit::X, SECRET, signing)
}

/// `body` posted and signed with the instance's secret.
fn signed(label: &str, body: &[u8]) -> Case {
    Case::new(label, post(body, Signing::Good))
}

/// Fixture `name`, signed, becoming the documents of its golden file.
fn written(name: &str) -> Case {
    signed(name, &fixtures().bytes(name)).golden(fixtures().golden(name))
}

/// Fixture `name`, signed, acknowledged and not written for `reason`.
fn ignored(name: &str, reason: &'static str) -> Case {
    signed(name, &fixtures().bytes(name)).ignored(&[reason])
}

#[test]
fn crc_answer_matches_the_known_vector() {
    // providers.md section 7, [computed].
    let x = adapter("z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu");
    testkit::run(
        &x,
        &ctx(),
        [
            Case::new(
                "CRC check",
                OwnedRequest::get(
                    "/webhooks/x/x-pupr?crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553",
                ),
            )
            .content_type("application/json")
            .answer(Answer::Json(json!({
                "response_token": "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="
            }))),
            Case::new("CRC check without a token", OwnedRequest::get(PATH)).status(400),
        ],
    );
}

#[test]
fn signature_is_required_and_exact() {
    let body = fixtures().bytes("dm_text.json");
    let forged = |label: &str, signing: Signing| Case::new(label, post(&body, signing)).status(403);
    testkit::run(
        &adapter(SECRET),
        &ctx(),
        [
            forged("no signature", Signing::Missing),
            forged("tampered body", Signing::Tampered),
            forged("signed with another secret", Signing::WrongSecret),
            forged("not a signature", Signing::Garbage),
            written("dm_text.json"),
            Case::new("PUT", OwnedRequest::new("PUT", PATH).body(body.clone())).status(405),
        ],
    );
}

#[test]
fn direct_messages() {
    testkit::run(
        &adapter(SECRET),
        &ctx(),
        [
            written("dm_text.json"),
            written("dm_media.json"),
            ignored("dm_echo.json", "echo"),
            written("dm_batch.json"),
        ],
    );
}

#[test]
fn mentions() {
    testkit::run(
        &adapter(SECRET),
        &ctx(),
        [
            written("tweet_mention.json"),
            ignored("tweet_own.json", "own_tweet"),
        ],
    );
}

#[test]
fn other_events_are_acknowledged() {
    testkit::run(
        &adapter(SECRET),
        &ctx(),
        [
            ignored("favorite.json", "favorite"),
            ignored("follow.json", "follow"),
            ignored("typing.json", "typing"),
        ],
    );
}

#[test]
fn bad_bodies_are_refused_without_echo() {
    let x = adapter(SECRET);
    let bad = |label: &str, body: &[u8]| signed(label, body).status(400);
    testkit::run(
        &x,
        &ctx(),
        [
            bad(
                "a DM without a sender",
                &fixtures().bytes("dm_missing_sender.json"),
            ),
            bad("not JSON", b"not json"),
            bad("no events", b"{\"direct_message_events\": []}"),
            bad("a list", b"[]"),
        ],
    );
    let request = post(br#"{"for_user_id": 1460000000000000001}"#, Signing::Missing);
    let err = x
        .parse(&request.as_request(), &testkit::context("x-pupr", true))
        .expect_err("malformed");
    let text = String::from_utf8(x.rejected(&err).body).expect("utf-8");
    assert!(!text.contains("1460000000000000001"), "{text}");
}

#[test]
fn config_is_validated() {
    let bad: Result<XConfig, _> =
        toml::from_str("consumer_secret = \"s\"\naccount_id = \"1\"\nextra = 1");
    assert!(bad.is_err());
    let cfg: XConfig =
        toml::from_str("consumer_secret = \"s\"\naccount_id = \"@pupr_bogor\"").expect("parses");
    assert!(X::new(cfg).is_err());
}
