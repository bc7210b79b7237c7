//! X Account Activity end to end, through the real gateway and a real Redis.
//!
//! Each case sends one request (the CRC check, or a real-format event body
//! from `channels/x/fixtures/`) and asserts the answer and the whole
//! normalized documents that reached the stream (`<fixture>.expected.json`),
//! or that nothing did. Every case is then sent again, as X retries, and must
//! get the same answer and add nothing.

mod common;

use aduan_adapter::verify::{base64_encode, hmac_sha256};
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

/// How a case's `POST` is signed.
#[derive(Clone, Copy, Debug)]
enum Sign {
    /// `x-twitter-webhooks-signature` over the body with the consumer secret.
    Good,
    /// Signed with another secret.
    WrongSecret,
    /// Signed over the fixture, then one byte of the body changed.
    Tampered,
    /// No signature header.
    Missing,
}

/// What the case leaves behind.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// These complaints, in order (`<fixture>.expected.json`); an empty answer.
    Written,
    /// Acknowledged with an empty answer, nothing written.
    Nothing,
    /// This JSON answer, nothing written.
    Answer(&'static str),
}

struct Case {
    label: &'static str,
    method: &'static str,
    /// Path and query, from the server root.
    path: &'static str,
    /// Fixture under `channels/x/fixtures/`.
    body: Option<&'static str>,
    sign: Sign,
    status: u16,
    expect: Expect,
}

const fn post(
    label: &'static str,
    body: &'static str,
    sign: Sign,
    status: u16,
    expect: Expect,
) -> Case {
    Case {
        label,
        method: "POST",
        path: PUPR,
        body: Some(body),
        sign,
        status,
        expect,
    }
}

const PUPR: &str = "/webhooks/x/x-pupr";
const FORBIDDEN: &str = r#"{"error":"bad_signature"}"#;
use Expect::{Answer, Nothing, Written};
use Sign::{Good, Missing, Tampered, WrongSecret};

const CASES: &[Case] = &[
    Case {
        label: "CRC check answers the known vector",
        method: "GET",
        path: "/webhooks/x/x-pupr?crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553",
        body: None,
        sign: Missing,
        status: 200,
        expect: Answer(
            r#"{"response_token":"sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="}"#,
        ),
    },
    Case {
        label: "CRC check without a token",
        method: "GET",
        path: PUPR,
        body: None,
        sign: Missing,
        status: 400,
        expect: Answer(r#"{"error":"malformed","reason":"missing crc_token"}"#),
    },
    post("DM with HTML entities", "dm_text.json", Good, 200, Written),
    post("DM with a photo", "dm_media.json", Good, 200, Written),
    post(
        "two DMs in one delivery",
        "dm_batch.json",
        Good,
        200,
        Written,
    ),
    post(
        "mention: extended text, reply, coordinates, media",
        "tweet_mention.json",
        Good,
        200,
        Written,
    ),
    post("the account's own DM", "dm_echo.json", Good, 200, Nothing),
    post(
        "the account's own Tweet",
        "tweet_own.json",
        Good,
        200,
        Nothing,
    ),
    post("favorite", "favorite.json", Good, 200, Nothing),
    post("follow", "follow.json", Good, 200, Nothing),
    post("typing indicator", "typing.json", Good, 200, Nothing),
    post(
        "DM without a sender",
        "dm_missing_sender.json",
        Good,
        400,
        Answer(r#"{"error":"malformed","reason":"missing field `sender_id` at line 21 column 7"}"#),
    ),
    post(
        "tampered body",
        "dm_text.json",
        Tampered,
        403,
        Answer(FORBIDDEN),
    ),
    post(
        "signed with another secret",
        "dm_text.json",
        WrongSecret,
        403,
        Answer(FORBIDDEN),
    ),
    post(
        "no signature",
        "dm_text.json",
        Missing,
        403,
        Answer(FORBIDDEN),
    ),
    Case {
        label: "raw kept byte for byte",
        method: "POST",
        path: "/webhooks/x/x-raw",
        body: Some("dm_text.json"),
        sign: Good,
        status: 200,
        expect: Written,
    },
];

fn signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        base64_encode(&hmac_sha256(secret.as_bytes(), body))
    )
}

async fn send(app: &common::TestApp, case: &Case) -> (u16, String) {
    let mut req = app
        .client
        .request(case.method.parse().expect("method"), app.url(case.path));
    if let Some(name) = case.body {
        let fixture = common::fixture(&format!("channels/x/fixtures/{name}"));
        let mut body = fixture.clone();
        let sig = match case.sign {
            Good => Some(signature(SECRET, &body)),
            WrongSecret => Some(signature("kunci-lain", &body)),
            Tampered => {
                let at = body.len() / 2;
                body[at] ^= 0x01;
                Some(signature(SECRET, &fixture))
            }
            Missing => None,
        };
        if let Some(sig) = sig {
            req = req.header("x-twitter-webhooks-signature", sig);
        }
        req = req.header("content-type", "application/json").body(body);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// The expected documents of a case; with `ADUAN_BLESS=1` they are written
/// from what the gateway produced instead, for review.
fn expected(case: &Case, actual: &[Value]) -> Value {
    let name = case.body.expect("written cases have a body");
    let suffix = if case.path.ends_with("x-raw") {
        ".raw"
    } else {
        ""
    };
    let rel = format!(
        "channels/x/fixtures/{}{suffix}.expected.json",
        name.trim_end_matches(".json")
    );
    common::expected_documents(&rel, actual)
}

#[tokio::test]
async fn x_cases() {
    let mut app = common::spawn_app(&instances()).await;
    for case in CASES {
        let label = case.label;
        let before = app.stream_len().await;
        let (status, body) = send(&app, case).await;
        assert_eq!(status, case.status, "{label}: status");
        let docs = app.complaints().await;
        let new = &docs[before..];
        match case.expect {
            Written => {
                assert_eq!(body, "", "{label}: answer");
                assert!(!new.is_empty(), "{label}: something written");
                common::assert_json_matches(&Value::from(new.to_vec()), &expected(case, new));
            }
            Nothing => {
                assert_eq!(body, "", "{label}: answer");
                assert!(new.is_empty(), "{label}: nothing written");
            }
            Answer(json) => {
                let got: Value = serde_json::from_str(&body).expect("JSON answer");
                let want: Value = serde_json::from_str(json).expect("JSON expectation");
                assert_eq!(got, want, "{label}: answer");
                assert!(new.is_empty(), "{label}: nothing written");
            }
        }

        // X retries: the same request gets the same answer and writes nothing new.
        let after = app.stream_len().await;
        let (again_status, again_body) = send(&app, case).await;
        assert_eq!(
            (again_status, again_body),
            (status, body),
            "{label}: redelivery"
        );
        assert_eq!(
            app.stream_len().await,
            after,
            "{label}: redelivery adds nothing"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn raw_is_the_exact_body() {
    let mut app = common::spawn_app(&instances()).await;
    let case = CASES
        .iter()
        .find(|c| c.path.ends_with("x-raw"))
        .expect("raw case");
    let (status, _) = send(&app, case).await;
    assert_eq!(status, 200);
    let docs = app.complaints().await;
    let fixture = common::fixture("channels/x/fixtures/dm_text.json");
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
    let mut activity: Value =
        serde_json::from_slice(&common::fixture("channels/x/fixtures/dm_text.json"))
            .expect("fixture is JSON");
    activity["direct_message_events"][0]["message_create"]["message_data"]["text"] =
        "Lampu jalan mati. ".repeat(70_000).into();
    let body = activity.to_string().into_bytes();
    let res = app
        .client
        .post(app.url(PUPR))
        .header("content-type", "application/json")
        .header("x-twitter-webhooks-signature", signature(SECRET, &body))
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 413);
    assert_eq!(app.stream_len().await, 0, "nothing written");
    app.stop().await;
}
