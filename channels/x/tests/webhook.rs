//! The X adapter against the fixtures in `fixtures/`, without a gateway.
//!
//! Whole documents through the gateway and Redis are asserted in the
//! gateway's `tests/x.rs`; here each case checks the fields it is about.

use aduan_adapter::verify::{base64_encode, hmac_sha256};
use aduan_adapter::{Adapter, Context, Outcome, Request, Timestamp};
use aduan_x::{X, XConfig};
use serde_json::{Value, json};

const SECRET: &str = "kunci-rahasia-konsumen-uji";
const ACCOUNT: &str = "1460000000000000001";

fn adapter(secret: &str) -> X {
    let cfg: XConfig = toml::from_str(&format!(
        "consumer_secret = \"{secret}\"\naccount_id = \"{ACCOUNT}\""
    ))
    .expect("valid config");
    X::new(cfg).expect("valid instance")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

fn sign(body: &[u8]) -> String {
    format!(
        "sha256={}",
        base64_encode(&hmac_sha256(SECRET.as_bytes(), body))
    )
}

fn call(
    x: &X,
    method: &str,
    uri: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Outcome, u16> {
    let method: http::Method = method.parse().expect("method");
    let uri: http::Uri = uri.parse().expect("uri");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        "application/json; charset=utf-8".parse().expect("header"),
    );
    if let Some(s) = signature {
        headers.insert("x-twitter-webhooks-signature", s.parse().expect("header"));
    }
    let req = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body,
    };
    let ctx = Context {
        instance: "x-pupr",
        received_at: Timestamp::from_unix_seconds(1_795_600_000).expect("time"),
        keep_raw: true,
    };
    x.verify(&req).map_err(|r| r.status())?;
    x.parse(&req, &ctx).map_err(|r| r.status())
}

fn post(x: &X, name: &str) -> Result<Outcome, u16> {
    let body = fixture(name);
    call(x, "POST", "/webhooks/x/x-pupr", Some(&sign(&body)), &body)
}

fn accepted(outcome: Result<Outcome, u16>) -> (Vec<Value>, Vec<&'static str>) {
    match outcome {
        Ok(Outcome::Accept {
            complaints,
            ignored,
        }) => (
            complaints
                .iter()
                .map(|c| serde_json::to_value(c).expect("serializes"))
                .collect(),
            ignored.iter().map(|i| i.reason).collect(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn crc_answer_matches_the_known_vector() {
    // providers.md section 7, [computed].
    let x = adapter("z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu");
    let Ok(Outcome::Reply(reply)) = call(
        &x,
        "GET",
        "/webhooks/x/x-pupr?crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553",
        None,
        b"",
    ) else {
        panic!("CRC reply expected");
    };
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "application/json");
    let body: Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(
        body,
        json!({"response_token": "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="})
    );
    assert_eq!(
        call(&x, "GET", "/webhooks/x/x-pupr", None, b"").err(),
        Some(400)
    );
}

#[test]
fn signature_is_required_and_exact() {
    let x = adapter(SECRET);
    let body = fixture("dm_text.json");
    let uri = "/webhooks/x/x-pupr";
    assert_eq!(call(&x, "POST", uri, None, &body).err(), Some(403));
    let mut tampered = body.clone();
    let at = tampered.len() - 10;
    tampered[at] ^= 1;
    assert_eq!(
        call(&x, "POST", uri, Some(&sign(&body)), &tampered).err(),
        Some(403)
    );
    let wrong = adapter("kunci-lain");
    assert_eq!(
        call(&wrong, "POST", uri, Some(&sign(&body)), &body).err(),
        Some(403)
    );
    assert_eq!(
        call(&x, "POST", uri, Some("sha256=AAAA"), &body).err(),
        Some(403)
    );
    assert!(call(&x, "POST", uri, Some(&sign(&body)), &body).is_ok());
    assert_eq!(call(&x, "PUT", uri, None, &body).err(), Some(405));
}

#[test]
fn direct_messages() {
    let x = adapter(SECRET);
    let (c, ignored) = accepted(post(&x, "dm_text.json"));
    assert!(ignored.is_empty());
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["external_id"], "1861234567890123401");
    assert_eq!(
        c[0]["sender"],
        json!({"id": "x:1234567890123456789", "name": "Dewi Lestari", "phone": null, "email": null, "handle": "@dewilestari", "language": null})
    );
    assert_eq!(
        c[0]["text"],
        "Lampu jalan di Jl. Raya Bogor & Jl. Pemda mati total > 1 minggu. Mohon diperbaiki."
    );
    assert_eq!(c[0]["sent_at"], "2026-11-24T06:00:00.123Z");
    assert_eq!(c[0]["recipient"], "x:1460000000000000001");
    assert_eq!(c[0]["subject"], Value::Null);
    assert_eq!(
        c[0]["thread"]["conversation"],
        "x-pupr:x:1234567890123456789"
    );

    let (c, _) = accepted(post(&x, "dm_media.json"));
    assert_eq!(
        c[0]["attachments"],
        json!([{"kind": "image", "content_type": null, "filename": null, "size": null, "sha256": null, "url": "https://pbs.twimg.com/dm_photo/1861234567000000001/drainase.jpg", "provider_ref": "1861234567000000001", "storage_key": null, "caption": null}])
    );

    let (c, ignored) = accepted(post(&x, "dm_echo.json"));
    assert!(c.is_empty());
    assert_eq!(ignored, ["echo"]);

    let (c, _) = accepted(post(&x, "dm_batch.json"));
    let ids: Vec<&str> = c.iter().filter_map(|c| c["external_id"].as_str()).collect();
    assert_eq!(ids, ["1861234567890123404", "1861234567890123405"]);
    assert_eq!(c[0]["sender"]["handle"], "@aguswib");
    assert_eq!(c[1]["sender"]["handle"], "@dewilestari");
}

#[test]
fn mentions() {
    let x = adapter(SECRET);
    let (c, ignored) = accepted(post(&x, "tweet_mention.json"));
    assert!(ignored.is_empty());
    assert_eq!(c.len(), 1);
    let t = &c[0];
    assert_eq!(t["external_id"], "1861234567890123500");
    assert_eq!(t["sender"]["id"], "x:1357924680135792468");
    assert_eq!(t["sender"]["handle"], "@aguswib");
    assert_eq!(t["sent_at"], "2026-11-24T06:05:00.000Z");
    assert_eq!(t["subject"], Value::Null);
    assert_eq!(
        t["text"],
        "@pupr_bogor Jalan berlubang di depan SDN 3 Cibinong sudah dua bulan & makin parah, tiap hujan jadi kolam. Kapan diperbaiki? Ini fotonya, tolong segera ditindaklanjuti sebelum ada korban. https://t.co/Pq12Rs34Tu"
    );
    assert_eq!(t["thread"]["in_reply_to"], "1861234567890123000");
    assert_eq!(
        t["location"],
        json!({"latitude": -6.481726, "longitude": 106.854312, "name": "Cibinong, Indonesia", "address": null})
    );
    let urls: Vec<&str> = t["attachments"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["url"].as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "https://pbs.twimg.com/media/GdLubang1.jpg",
            "https://video.twimg.com/ext_tw_video/1861234567000000003/pu/vid/720x1280/genangan.mp4"
        ]
    );
    assert_eq!(t["attachments"][1]["kind"], "video");
    assert_eq!(t["attachments"][1]["content_type"], "video/mp4");

    let (c, ignored) = accepted(post(&x, "tweet_own.json"));
    assert!(c.is_empty());
    assert_eq!(ignored, ["own_tweet"]);
}

#[test]
fn other_events_are_acknowledged() {
    let x = adapter(SECRET);
    for (name, reason) in [
        ("favorite.json", "favorite"),
        ("follow.json", "follow"),
        ("typing.json", "typing"),
    ] {
        let (c, ignored) = accepted(post(&x, name));
        assert!(c.is_empty(), "{name}");
        assert_eq!(ignored, [reason], "{name}");
    }
}

#[test]
fn bad_bodies_are_refused_without_echo() {
    let x = adapter(SECRET);
    assert_eq!(post(&x, "dm_missing_sender.json").err(), Some(400));
    for body in [&b"not json"[..], b"{\"direct_message_events\": []}", b"[]"] {
        assert_eq!(
            call(&x, "POST", "/webhooks/x/x-pupr", Some(&sign(body)), body).err(),
            Some(400)
        );
    }
    let body = br#"{"for_user_id": 1460000000000000001}"#;
    let method = http::Method::POST;
    let uri: http::Uri = "/webhooks/x/x-pupr".parse().expect("uri");
    let headers = http::HeaderMap::new();
    let req = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body,
    };
    let ctx = Context {
        instance: "x-pupr",
        received_at: Timestamp::from_unix_seconds(1_795_600_000).expect("time"),
        keep_raw: true,
    };
    let err = x.parse(&req, &ctx).expect_err("malformed");
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
