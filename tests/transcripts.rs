//! End to end: call-center transcripts posted to `POST /v1/transcripts`, through
//! the real gateway into a real Redis stream.
//!
//! Payloads are the files under `channels/transcript/fixtures/`; each case
//! asserts the answer and the whole normalized document (or that nothing was
//! written).

mod common;

use aduan_adapter::testkit::{Answer, bearer};
use common::table::{self, Case};
use serde_json::{Value, json};

/// Tokens are literals here; deployments give them as `env:` or `file:`.
const JAKARTA_TOKEN: &str = "cc-jakarta-token-2026-a";
const JAKARTA_NEXT_TOKEN: &str = "cc-jakarta-token-2026-b";
const BANDUNG_TOKEN: &str = "cc-bandung-token-2026";

const INSTANCES: &str = r#"
[[instances]]
name = "cc-jakarta"
kind = "transcript"
tokens = ["cc-jakarta-token-2026-a", "cc-jakarta-token-2026-b"]
max_body_bytes = 16384

[[instances]]
name = "cc-bandung"
kind = "transcript"
tokens = ["cc-bandung-token-2026"]
max_segments = 50
keep_raw = false
"#;

fn fixture(name: &str) -> Vec<u8> {
    common::fixtures("transcript").bytes(name)
}

/// A transcript posted to `POST /v1/transcripts` as JSON with this
/// `Authorization`, or none.
fn transcript(label: &str, authorization: Option<&str>, body: Vec<u8>) -> Case {
    Case::post(label, "/v1/transcripts")
        .header_opt("authorization", authorization)
        .json(body)
}

/// Fixture `name` accepted with `token` as the golden documents beside it.
fn accepted(label: &str, token: &str, name: &str) -> Case {
    transcript(label, Some(&bearer(token)), fixture(name))
        .status(201)
        .answer(Answer::Json(
            json!({"id": "*", "tracking": "*", "duplicate": false}),
        ))
        .adds_golden(common::fixtures("transcript").golden(name))
}

/// A transcript refused with `status` and `answer`.
fn refused(
    label: &str,
    authorization: Option<&str>,
    body: Vec<u8>,
    status: u16,
    answer: Answer,
) -> Case {
    transcript(label, authorization, body)
        .status(status)
        .answer(answer)
}

/// The answer fixture `name` must get, beside it as `<name>.answer.json`.
fn answer(name: &str) -> Answer {
    common::fixtures("transcript").answer(name)
}

/// A transcript of `n` turns, each `turn_bytes` long.
fn long_transcript(call_id: &str, n: usize, turn_bytes: usize) -> Vec<u8> {
    let turn = "Air PDAM tidak mengalir ".repeat(turn_bytes / 24 + 1);
    let segments: Vec<Value> = (0..n)
        .map(|i| json!({"speaker": if i % 2 == 0 { "Agen" } else { "Penelepon" }, "text": &turn[..turn_bytes], "offset_seconds": i}))
        .collect();
    serde_json::to_vec(
        &json!({"call_id": call_id, "agent": {"id": "AG-017"}, "segments": segments}),
    )
    .expect("JSON")
}

fn cases() -> Vec<Case> {
    let jakarta = bearer(JAKARTA_TOKEN);
    let bandung = bearer(BANDUNG_TOKEN);
    let unauthorized = || Answer::json(r#"{"error": "unauthorized"}"#);
    let too_large = || Answer::json(r#"{"error": "too_large"}"#);
    vec![
        accepted("plain-text transcript", JAKARTA_TOKEN, "plain.json"),
        accepted(
            "segmented transcript with the rotated-in token",
            JAKARTA_NEXT_TOKEN,
            "segments.json",
        ),
        accepted(
            "location and recording, another call center, raw not kept",
            BANDUNG_TOKEN,
            "location_recording.json",
        ),
        refused(
            "every field error in one answer",
            Some(&jakarta),
            fixture("invalid_many.json"),
            400,
            answer("invalid_many.json"),
        ),
        refused(
            "segment errors",
            Some(&jakarta),
            fixture("invalid_segments.json"),
            400,
            answer("invalid_segments.json"),
        ),
        refused(
            "wrong types, neither text nor segments",
            Some(&bandung),
            fixture("invalid_neither.json"),
            400,
            answer("invalid_neither.json"),
        ),
        refused(
            "truncated JSON",
            Some(&jakarta),
            fixture("malformed.json"),
            400,
            Answer::json(r#"{"error": "malformed", "reason": "*"}"#),
        ),
        refused(
            "wrong token",
            Some(&bearer("cc-jakarta-token-2025")),
            fixture("plain.json"),
            401,
            unauthorized(),
        ),
        refused(
            "truncated token",
            Some("Bearer cc-jakarta-token-2026-"),
            fixture("segments.json"),
            401,
            unauthorized(),
        ),
        refused(
            "missing Authorization",
            None,
            fixture("plain.json"),
            401,
            unauthorized(),
        ),
        refused(
            "Basic instead of Bearer",
            Some("Basic Y2MtamFrYXJ0YTpjYy1qYWthcnRhLXRva2VuLTIwMjYtYQ=="),
            fixture("plain.json"),
            401,
            unauthorized(),
        ),
        refused(
            "body over the instance's limit",
            Some(&jakarta),
            long_transcript("JKT-20261122-000200", 40, 500),
            413,
            too_large(),
        ),
        refused(
            "more segments than the instance allows",
            Some(&bandung),
            long_transcript("BDG-20261122-000201", 51, 10),
            413,
            too_large(),
        ),
        Case::get("GET is not a transcript", "/v1/transcripts")
            .header("authorization", &jakarta)
            .header("content-type", "application/json")
            .status(405),
    ]
}

/// Each case on a gateway of its own: an accepted call is the only entry.
#[tokio::test]
async fn transcript_cases() {
    for answered in table::run_each(INSTANCES, cases()).await {
        if answered.status == 201 {
            let answer: Value = serde_json::from_str(&answered.body).expect("JSON answer");
            assert_eq!(
                answer["id"], answered.added[0]["id"],
                "{}: the answer names the stored id",
                answered.label
            );
        }
    }
}

/// Posts `body` with `token`; returns the status and the JSON answer.
async fn post(app: &common::TestApp, token: &str, body: Vec<u8>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/v1/transcripts"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let answer = response.json().await.expect("JSON answer");
    (status, answer)
}

/// The documents of fixture `name`'s golden file.
fn golden(name: &str) -> Vec<Value> {
    match serde_json::from_slice(&fixture(&format!(
        "{}.expected.json",
        name.trim_end_matches(".json")
    ))) {
        Ok(Value::Array(docs)) => docs,
        other => panic!("{name}: golden documents: {other:?}"),
    }
}

#[tokio::test]
async fn a_resent_call_is_stored_once_with_the_same_id() {
    let mut app = common::spawn_app(INSTANCES).await;
    let plain = fixture("plain.json");
    let (status, first) = post(&app, JAKARTA_TOKEN, plain.clone()).await;
    assert_eq!((status, &first["duplicate"]), (201, &json!(false)));
    let (status, again) = post(&app, JAKARTA_NEXT_TOKEN, plain.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(
        again,
        json!({"id": first["id"], "tracking": first["tracking"], "duplicate": true})
    );
    assert!(
        first["tracking"]
            .as_str()
            .is_some_and(|t| t.starts_with("ADU-"))
    );

    // A corrected transcript of the same call is still the same call.
    let mut corrected: Value = serde_json::from_slice(&plain).expect("JSON fixture");
    corrected["text"] =
        json!("Koreksi: jalan berlubang di depan SDN 3 Cibinong, dua lubang besar.");
    let (status, resent) = post(
        &app,
        JAKARTA_TOKEN,
        serde_json::to_vec(&corrected).expect("JSON"),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        resent,
        json!({"id": first["id"], "tracking": first["tracking"], "duplicate": true})
    );

    let stored = app.complaints().await;
    assert_eq!(stored.len(), 1);
    common::assert_json_matches(&stored[0], &golden("plain.json")[0]);
    assert_eq!(stored[0]["id"], first["id"]);

    // Another call center's call with the same id is a different call.
    let mut elsewhere: Value = serde_json::from_slice(&plain).expect("JSON fixture");
    elsewhere["caller"] = Value::Null;
    let (status, other) = post(
        &app,
        BANDUNG_TOKEN,
        serde_json::to_vec(&elsewhere).expect("JSON"),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(other["duplicate"], json!(false));
    assert_ne!(other["id"], first["id"]);
    let stored = app.complaints().await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1]["instance"], "cc-bandung");
    assert_eq!(stored[1]["sender"]["id"], "agent:AG-017");
    app.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_posts_of_one_call_write_one_entry() {
    let mut app = common::spawn_app(INSTANCES).await;
    let body = fixture("segments.json");
    let answers =
        futures::future::join_all((0..50).map(|_| post(&app, JAKARTA_TOKEN, body.clone()))).await;
    let first_id = &answers[0].1["id"];
    let mut originals = 0;
    for (status, answer) in &answers {
        assert_eq!(*status, 201, "{answer}");
        assert_eq!(
            &answer["id"], first_id,
            "every answer names the same complaint"
        );
        if answer["duplicate"] == json!(false) {
            originals += 1;
        }
    }
    assert_eq!(originals, 1, "exactly one post was the original");
    let stored = app.complaints().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(&stored[0]["id"], first_id);
    common::assert_json_matches(&stored[0], &golden("segments.json")[0]);
    app.stop().await;
}
