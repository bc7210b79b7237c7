//! Unit tests over the fixtures in `channels/transcript/fixtures/`: the
//! documents are the golden `<fixture>.expected.json` beside each, the files
//! the gateway's `tests/transcripts.rs` checks the stream against.

use aduan_adapter::testkit::{self, Answer, Case, Fixtures, OwnedRequest};
use aduan_adapter::{Adapter, Context, Receipt, Rejection, Timestamp};
use serde_json::{Value, json};

use crate::{Transcript, TranscriptConfig, Transcripts, Words, parse_transcript};

const TOKEN: &str = "cc-jakarta-2026-rotasi-1";
const NEXT_TOKEN: &str = "cc-jakarta-2026-rotasi-2";

fn fixtures() -> Fixtures {
    Fixtures::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

fn fixture(name: &str) -> Vec<u8> {
    fixtures().bytes(name)
}

fn ctx(keep_raw: bool) -> Context<'static> {
    Context {
        instance: "cc-jakarta",
        received_at: Timestamp::parse_rfc3339("2026-11-22T01:20:00.500Z").expect("valid timestamp"),
        keep_raw,
    }
}

fn adapter(extra: Value) -> Transcripts {
    let mut cfg = json!({"tokens": [TOKEN, NEXT_TOKEN]});
    if let (Some(cfg), Some(extra)) = (cfg.as_object_mut(), extra.as_object()) {
        cfg.extend(extra.clone());
    }
    let cfg: TranscriptConfig = serde_json::from_value(cfg).expect("valid settings");
    Transcripts::new(cfg).expect("valid settings")
}

/// `body` posted as JSON with `authorization`, or none.
fn request(authorization: Option<&str>, body: &[u8]) -> OwnedRequest {
    OwnedRequest::post("/v1/transcripts")
        .header_opt("authorization", authorization)
        .json(body)
}

/// `body` posted with the call center's token.
fn post(label: &str, body: &[u8]) -> Case {
    Case::new(label, request(Some(&testkit::bearer(TOKEN)), body))
}

/// Fixture `name` accepted (`201`) as the documents of its golden file.
fn accepted(name: &str) -> Case {
    post(name, &fixture(name))
        .status(201)
        .golden(fixtures().golden(name))
}

/// `body` refused for these field errors, every one of them, in order.
fn invalid(label: &str, body: &[u8], errors: &[(&str, &str)]) -> Case {
    let errors: Vec<Value> = errors
        .iter()
        .map(|(field, message)| json!({"field": field, "message": message}))
        .collect();
    post(label, body)
        .status(400)
        .answer(Answer::Json(json!({"error": "invalid", "errors": errors})))
}

/// Fixture `name` refused with the answer beside it, `<name>.answer.json`.
fn refused(name: &str) -> Case {
    post(name, &fixture(name))
        .status(400)
        .answer(fixtures().answer(name))
}

/// Parses `body` through the HTTP path and returns the one complaint as JSON.
fn parse_http(a: &Transcripts, body: &[u8], keep_raw: bool) -> Result<Value, Rejection> {
    let request = request(Some(&testkit::bearer(TOKEN)), body);
    match testkit::handle(a, &ctx(keep_raw), &request)? {
        aduan_adapter::Outcome::Accept {
            complaints,
            ignored,
            ..
        } => {
            assert!(ignored.is_empty());
            assert_eq!(complaints.len(), 1);
            Ok(serde_json::to_value(&complaints[0]).expect("serializable"))
        }
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[test]
fn plain_transcript_normalizes_to_the_whole_document() {
    testkit::run(&adapter(json!({})), &ctx(true), [accepted("plain.json")]);
}

#[test]
fn segments_render_one_line_per_turn() {
    // One line per turn, `Speaker: text`, and no raw with `keep_raw = false`.
    testkit::run(
        &adapter(json!({})),
        &ctx(false),
        [accepted("segments.json").with("raw", Value::Null)],
    );
}

#[test]
fn without_a_caller_the_agent_is_the_sender() {
    let bandung = Context {
        instance: "cc-bandung",
        ..ctx(false)
    };
    testkit::run(
        &adapter(json!({})),
        &bandung,
        [accepted("location_recording.json")],
    );
}

#[test]
fn every_field_error_is_reported_together() {
    testkit::run(
        &adapter(json!({})),
        &ctx(true),
        [refused("invalid_many.json")],
    );
}

#[test]
fn segment_errors_name_the_segment() {
    testkit::run(
        &adapter(json!({})),
        &ctx(true),
        [refused("invalid_segments.json")],
    );
}

#[test]
fn wrong_types_and_missing_words_are_reported() {
    testkit::run(
        &adapter(json!({})),
        &ctx(true),
        [refused("invalid_neither.json")],
    );
}

#[test]
fn other_shapes_are_field_errors() {
    let case = |body: Value, errors: &[(&str, &str)]| {
        let body = serde_json::to_vec(&body).expect("serializable");
        invalid(&String::from_utf8_lossy(&body), &body, errors)
    };
    testkit::run(
        &adapter(json!({})),
        &ctx(true),
        [
            case(
                json!({"call_id": " ", "agent": "AG-017", "text": ""}),
                &[
                    ("call_id", "must not be empty"),
                    ("agent", "must be an object"),
                    ("text", "must not be empty"),
                ],
            ),
            case(
                json!({"call_id": "c1", "agent": {"id": "a", "nama": "x"}, "segments": [], "caller": [], "location": {"latitude": 1}}),
                &[
                    ("agent.nama", "unknown field"),
                    ("caller", "must be an object"),
                    ("segments", "must not be empty"),
                    ("location.longitude", "is required"),
                ],
            ),
            case(
                json!({"call_id": "c\u{7}1", "agent": {"id": "a".repeat(129)}, "segments": "Agen: halo", "language": "bahasa indonesia", "category": 3, "duration_seconds": "60"}),
                &[
                    ("call_id", "must not contain control characters"),
                    ("agent.id", "must be at most 128 characters"),
                    ("duration_seconds", "must be a number"),
                    ("category", "must be a string"),
                    ("segments", "must be an array"),
                    (
                        "language",
                        "must be a language tag such as \"id\" or \"jv\"",
                    ),
                ],
            ),
            case(
                json!({"call_id": "c1", "agent": {"id": "a"}, "text": "t", "location": {"latitude": 0, "longitude": 180.5}, "recording_url": "rekaman/1.ogg"}),
                &[
                    ("recording_url", "must be an absolute http or https URL"),
                    ("location.longitude", "must be between -180 and 180"),
                ],
            ),
            case(
                json!({"call_id": "c1", "agent": {"id": "a"}, "text": "t", "k".repeat(100): 1, "a\nb": 2}),
                &[
                    ("a\u{fffd}b", "unknown field"),
                    (&*format!("{}…", "k".repeat(64)), "unknown field"),
                ],
            ),
        ],
    );
}

#[test]
fn nulls_and_blanks_are_absent() {
    let body = json!({
        "call_id": "JKT-1", "agent": {"id": "AG-1", "name": null},
        "caller": {"phone": "", "name": "  "}, "started_at": null, "duration_seconds": null,
        "direction": null, "category": "", "text": "  Sampah menumpuk di Pasar Minggu.\n",
        "segments": null, "recording_url": null, "location": null, "language": null
    });
    let got = parse_http(
        &adapter(json!({})),
        &serde_json::to_vec(&body).expect("json"),
        false,
    )
    .expect("accepted");
    assert_eq!(got["sender"]["id"], "agent:AG-1");
    assert_eq!(got["sender"]["phone"], Value::Null);
    assert_eq!(got["sender"]["name"], Value::Null);
    assert_eq!(got["subject"], Value::Null);
    assert_eq!(got["sent_at"], Value::Null);
    assert_eq!(got["text"], "Sampah menumpuk di Pasar Minggu.");
}

#[test]
fn malformed_json_is_malformed() {
    let malformed = |label: &str, body: &[u8]| {
        post(label, body)
            .status(400)
            .answer(Answer::Json(json!({"error": "malformed", "reason": "*"})))
    };
    testkit::run(
        &adapter(json!({})),
        &ctx(true),
        [
            malformed("malformed.json", &fixture("malformed.json")),
            malformed("empty", b""),
            malformed("a list", b"[1, 2]"),
            malformed("a string", b"\"JKT-1\""),
            malformed("not UTF-8", b"{\"call_id\": \"\xff\"}"),
        ],
    );
}

#[test]
fn caller_numbers_are_normalized_to_e164() {
    let national = adapter(json!({}));
    let korean = adapter(json!({"default_region": "kr"}));
    for (a, raw, e164) in [
        (&national, "0812-3456-7890", "+6281234567890"),
        (&national, "081234567890", "+6281234567890"),
        (&national, "6281234567890", "+6281234567890"),
        (&national, "+62 812 3456 7890", "+6281234567890"),
        (&national, "(021) 5790 1234", "+622157901234"),
        (&korean, "010-1234-5678", "+821012345678"),
        (&korean, "+6281234567890", "+6281234567890"),
    ] {
        let body =
            json!({"call_id": "c", "agent": {"id": "a"}, "caller": {"phone": raw}, "text": "t"});
        let got = parse_http(a, &serde_json::to_vec(&body).expect("json"), false).expect(raw);
        assert_eq!(got["sender"]["phone"], e164, "{raw}");
        assert_eq!(got["sender"]["id"], format!("tel:{e164}"), "{raw}");
    }
}

#[test]
fn too_many_segments_is_too_large() {
    let too_large = |label: &str, body: &[u8]| {
        post(label, body)
            .status(413)
            .answer(Answer::Json(json!({"error": "too_large"})))
    };
    let body = json!({"call_id": "c", "agent": {"id": "a"}, "segments": [
        {"speaker": "A", "text": "1"}, {"speaker": "B", "text": "2"}, {"speaker": "A", "text": "3"}
    ]});
    testkit::run(
        &adapter(json!({"max_segments": 2})),
        &ctx(true),
        [too_large(
            "three segments",
            &serde_json::to_vec(&body).expect("json"),
        )],
    );
    let small = adapter(json!({"max_body_bytes": 64}));
    testkit::run(
        &small,
        &ctx(true),
        [too_large("plain.json", &fixture("plain.json"))],
    );
    assert_eq!(small.max_body_bytes(), Some(64));
}

#[test]
fn bearer_tokens_are_checked() {
    let body = fixture("plain.json");
    let with =
        |label: &str, authorization: Option<&str>| Case::new(label, request(authorization, &body));
    let good = |label: &str, authorization: &str| {
        with(label, Some(authorization))
            .status(201)
            .golden(fixtures().golden("plain.json"))
    };
    let refused = |label: &str, authorization: Option<&str>| {
        with(label, authorization)
            .status(401)
            .answer(Answer::Json(json!({"error": "unauthorized"})))
    };
    testkit::run(
        &adapter(json!({})),
        &ctx(true),
        [
            good("the token", &format!("Bearer {TOKEN}")),
            good(
                "the next token, any case and spacing",
                &format!("bearer  {NEXT_TOKEN} "),
            ),
            refused("none", None),
            refused("empty", Some("")),
            refused("the scheme alone", Some("Bearer")),
            refused("the scheme and a space", Some("Bearer ")),
            refused("the token without a scheme", Some(TOKEN)),
            refused("Basic", Some(&format!("Basic {TOKEN}"))),
            refused("the token and more", Some(&format!("Bearer {TOKEN}x"))),
            refused(
                "a prefix of the token",
                Some("Bearer cc-jakarta-2026-rotasi-"),
            ),
        ],
    );
}

#[test]
fn only_post_is_parsed() {
    let put = OwnedRequest::new("PUT", "/v1/transcripts")
        .header("authorization", &testkit::bearer(TOKEN))
        .json(fixture("plain.json"));
    testkit::run(
        &adapter(json!({})),
        &ctx(true),
        [Case::new("PUT", put).status(405)],
    );
}

#[test]
fn the_receipt_is_201_with_the_id() {
    let a = adapter(json!({}));
    for duplicate in [false, true] {
        let reply = a.accepted(&[Receipt {
            id: "01JDQ7Z4V8W9X0Y1Z2A3B4C5D6".to_string(),
            external_id: "JKT-20261122-000123".to_string(),
            duplicate,
            tracking: Some("LPR-7K3M-9QX2".into()),
        }]);
        assert_eq!(reply.status, 201);
        assert_eq!(reply.content_type, "application/json");
        let body: Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(
            body,
            json!({"id": "01JDQ7Z4V8W9X0Y1Z2A3B4C5D6", "tracking": "LPR-7K3M-9QX2", "duplicate": duplicate})
        );
    }
}

#[test]
fn a_jsonl_line_parses_like_a_request() {
    let line = br#"{"call_id": "JKT-9", "agent": {"id": "AG-1"}, "caller": {"phone": "0812-3456-7890"}, "text": "Jalan berlubang di depan SDN 3 Cibinong"}"#;
    let mut with_newline = line.to_vec();
    with_newline.extend_from_slice(b"\r\n");
    let complaint = parse_transcript(&with_newline, &ctx(true)).expect("accepted");
    assert_eq!(complaint.external_id, "JKT-9");
    assert_eq!(complaint.sender.id, "tel:+6281234567890");
    assert_eq!(complaint.text, "Jalan berlubang di depan SDN 3 Cibinong");
    let raw = complaint.raw.expect("kept");
    assert_eq!(raw.content_type, "application/json");
    assert_eq!(raw.body.as_bytes(), line);
    assert!(matches!(
        parse_transcript(b"{\"call_id\": 1}", &ctx(true)),
        Err(Rejection::Invalid(_))
    ));
}

#[test]
fn transcript_words_keep_their_form() {
    let t = Transcript::from_json(&fixture("segments.json"), &Default::default()).expect("valid");
    assert!(matches!(&t.words, Words::Segments(s) if s.len() == 4));
    assert_eq!(t.readable_text().lines().count(), 4);
}

#[test]
fn settings_are_validated() {
    let build = |v: Value| -> Result<Transcripts, String> {
        let cfg: TranscriptConfig = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Transcripts::new(cfg)
    };
    assert!(build(json!({"tokens": [TOKEN]})).is_ok());
    for bad in [
        json!({"tokens": []}),
        json!({"tokens": [TOKEN, TOKEN]}),
        json!({"tokens": [TOKEN], "default_region": "Indonesia"}),
        json!({"tokens": [TOKEN], "default_region": "XX"}),
        json!({"tokens": [TOKEN], "max_segments": 0}),
        json!({"tokens": [TOKEN], "token": TOKEN}),
        json!({"tokens": ["env:ADUAN_TRANSCRIPT_TEST_UNSET_VARIABLE"]}),
        json!({}),
    ] {
        assert!(build(bad.clone()).is_err(), "{bad}");
    }
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let shown = format!("{:?}", adapter(json!({})));
    assert!(
        !shown.contains(TOKEN) && !shown.contains(NEXT_TOKEN),
        "{shown}"
    );
}

/// The published JSON Schema and the parser agree on the fixtures.
#[test]
fn the_schema_agrees_with_the_parser() {
    let schema: Value = serde_json::from_slice(
        &std::fs::read(format!(
            "{}/transcript.schema.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("schema file"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    for (name, valid) in [
        ("plain.json", true),
        ("segments.json", true),
        ("location_recording.json", true),
        ("invalid_many.json", false),
        ("invalid_segments.json", false),
        ("invalid_neither.json", false),
    ] {
        let body = fixture(name);
        let doc: Value = serde_json::from_slice(&body).expect("fixture is JSON");
        assert_eq!(validator.is_valid(&doc), valid, "schema on {name}");
        assert_eq!(
            Transcript::from_json(&body, &Default::default()).is_ok(),
            valid,
            "parser on {name}"
        );
    }
}
