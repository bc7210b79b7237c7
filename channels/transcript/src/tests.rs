//! Unit tests over the fixtures in `channels/transcript/fixtures/`.

use aduan_adapter::{Adapter, Context, Outcome, Receipt, Rejection, Request, Timestamp};
use serde_json::{Value, json};

use crate::{Transcript, TranscriptConfig, Transcripts, Words, parse_transcript};

const TOKEN: &str = "cc-jakarta-2026-rotasi-1";
const NEXT_TOKEN: &str = "cc-jakarta-2026-rotasi-2";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn received_at() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-22T01:20:00.500Z").expect("valid timestamp")
}

fn ctx(keep_raw: bool) -> Context<'static> {
    Context {
        instance: "cc-jakarta",
        received_at: received_at(),
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

fn post<'a>(
    method: &'a http::Method,
    uri: &'a http::Uri,
    headers: &'a http::HeaderMap,
    body: &'a [u8],
) -> Request<'a> {
    Request {
        method,
        uri,
        headers,
        body,
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, value.parse().expect("valid header value"));
    }
    map
}

/// Parses `body` through the HTTP path and returns the one complaint as JSON.
fn parse_http(a: &Transcripts, body: &[u8], keep_raw: bool) -> Result<Value, Rejection> {
    let uri: http::Uri = "/v1/transcripts".parse().expect("valid uri");
    let h = headers(&[
        ("authorization", &format!("Bearer {TOKEN}")),
        ("content-type", "application/json"),
    ]);
    let req = post(&http::Method::POST, &uri, &h, body);
    a.verify(&req)?;
    match a.parse(&req, &ctx(keep_raw))? {
        Outcome::Accept {
            complaints,
            ignored,
        } => {
            assert!(ignored.is_empty());
            assert_eq!(complaints.len(), 1);
            Ok(serde_json::to_value(&complaints[0]).expect("serializable"))
        }
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn errors(r: Result<Value, Rejection>) -> Vec<(String, String)> {
    match r {
        Err(Rejection::Invalid(errors)) => {
            errors.into_iter().map(|e| (e.field, e.message)).collect()
        }
        other => panic!("expected field errors, got {other:?}"),
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(f, m)| (f.to_string(), m.to_string()))
        .collect()
}

#[test]
fn plain_transcript_normalizes_to_the_whole_document() {
    let body = fixture("plain.json");
    let got = parse_http(&adapter(json!({})), &body, true).expect("accepted");
    let expected = json!({
        "schema": "aduan.complaint.v1",
        "id": "",
        "received_at": "2026-11-22T01:20:00.500Z",
        "sent_at": "2026-11-22T01:15:30.000Z",
        "channel": "call_center",
        "provider": "transcript",
        "instance": "cc-jakarta",
        "external_id": "JKT-20261122-000123",
        "sender": {
            "id": "tel:+6281234567890",
            "name": "Budi Santoso",
            "phone": "+6281234567890",
            "email": null,
            "handle": null,
            "language": "id"
        },
        "recipient": null,
        "subject": "Infrastruktur Jalan",
        "text": "Penelepon melaporkan jalan berlubang di depan SDN 3 Cibinong. Lubang sudah ada sejak dua minggu dan sudah menyebabkan dua pengendara motor jatuh. Penelepon meminta segera diperbaiki sebelum musim hujan.",
        "language": null,
        "attachments": [],
        "location": null,
        "thread": {
            "conversation": "cc-jakarta:tel:+6281234567890",
            "in_reply_to": null,
            "references": []
        },
        "call": {
            "call_id": "JKT-20261122-000123",
            "agent_id": "AG-017",
            "agent_name": "Siti Rahayu",
            "started_at": "2026-11-22T01:15:30.000Z",
            "duration_seconds": 184.0,
            "direction": "inbound",
            "recording_url": null,
            "segments": []
        },
        "raw": {
            "content_type": "application/json",
            "body": String::from_utf8(body.clone()).expect("utf-8 fixture")
        }
    });
    assert_eq!(got, expected);
}

#[test]
fn segments_render_one_line_per_turn() {
    let got = parse_http(&adapter(json!({})), &fixture("segments.json"), false).expect("accepted");
    assert_eq!(
        got["text"],
        "Agen: Selamat pagi, layanan pengaduan 1708, dengan Rudi, ada yang bisa dibantu?\n\
         Penelepon: Pagi Pak. Saya mau melapor, antrean BPJS di Puskesmas Kecamatan Sukmajaya sudah tiga hari sistemnya mati.\n\
         Agen: Baik Bu, pengaduan kami catat dan kami teruskan ke Dinas Kesehatan Kota Depok.\n\
         Penelepon: Terima kasih Pak."
    );
    assert_eq!(
        got["call"],
        json!({
            "call_id": "JKT-20261122-000124",
            "agent_id": "AG-022",
            "agent_name": "Rudi Hartono",
            "started_at": "2026-11-22T02:02:11.250Z",
            "duration_seconds": 96.5,
            "direction": "inbound",
            "recording_url": null,
            "segments": [
                {"speaker": "Agen", "text": "Selamat pagi, layanan pengaduan 1708, dengan Rudi, ada yang bisa dibantu?", "offset_seconds": 0.0},
                {"speaker": "Penelepon", "text": "Pagi Pak. Saya mau melapor, antrean BPJS di Puskesmas Kecamatan Sukmajaya sudah tiga hari sistemnya mati.", "offset_seconds": 4.2},
                {"speaker": "Agen", "text": "Baik Bu, pengaduan kami catat dan kami teruskan ke Dinas Kesehatan Kota Depok.", "offset_seconds": 31.8},
                {"speaker": "Penelepon", "text": "Terima kasih Pak.", "offset_seconds": 44.0}
            ]
        })
    );
    assert_eq!(got["sender"]["id"], "tel:+6285711223344");
    assert_eq!(got["subject"], "Pelayanan Kesehatan");
    assert_eq!(got["raw"], Value::Null, "keep_raw = false");
}

#[test]
fn without_a_caller_the_agent_is_the_sender() {
    let got = parse_http(
        &adapter(json!({})),
        &fixture("location_recording.json"),
        false,
    )
    .expect("accepted");
    assert_eq!(
        got["sender"],
        json!({"id": "agent:bdg-agent-04", "name": null, "phone": null, "email": null, "handle": null, "language": "id"})
    );
    assert_eq!(
        got["thread"]["conversation"],
        "cc-jakarta:agent:bdg-agent-04"
    );
    assert_eq!(
        got["location"],
        json!({
            "latitude": -6.9383,
            "longitude": 107.6475,
            "name": "Halte Kiaracondong",
            "address": "Jl. Soekarno-Hatta, Kiaracondong, Kota Bandung, Jawa Barat"
        })
    );
    assert_eq!(
        got["call"]["recording_url"],
        "https://rekaman.callcenter.example.id/2026/11/21/BDG-7f3a9c21.ogg"
    );
    assert_eq!(got["call"]["direction"], "outbound");
    assert_eq!(got["call"]["agent_name"], Value::Null);
    assert_eq!(got["call"]["segments"][0]["offset_seconds"], Value::Null);
    assert_eq!(got["sent_at"], "2026-11-21T23:47:05.000Z");
    assert_eq!(
        got["text"],
        "Agen: Kami menindaklanjuti laporan lampu jalan padam di Jalan Soekarno-Hatta.\n\
         Warga: Betul, sudah seminggu padam, di dekat halte Kiaracondong. Malam hari sangat gelap."
    );
}

#[test]
fn every_field_error_is_reported_together() {
    let got = errors(parse_http(
        &adapter(json!({})),
        &fixture("invalid_many.json"),
        true,
    ));
    assert_eq!(
        got,
        pairs(&[
            ("priority", "unknown field"),
            ("call_id", "is required"),
            ("agent.id", "is required"),
            ("caller.phone", "must be a phone number"),
            ("caller.name", "must be a string"),
            (
                "started_at",
                "must be an RFC 3339 timestamp such as 2026-11-22T08:15:30+07:00"
            ),
            ("duration_seconds", "must be at least 0"),
            ("direction", "must be \"inbound\" or \"outbound\""),
            ("segments[0].speaker", "is required"),
            ("text", "give either text or segments, not both"),
            ("location.latitude", "must be between -90 and 90"),
            ("location.longitude", "must be a number"),
        ])
    );
}

#[test]
fn segment_errors_name_the_segment() {
    let got = errors(parse_http(
        &adapter(json!({})),
        &fixture("invalid_segments.json"),
        true,
    ));
    assert_eq!(
        got,
        pairs(&[
            ("segments[1].speaker", "must not be empty"),
            ("segments[1].offset_seconds", "must be at least 0"),
            ("segments[2]", "must be an object"),
            ("segments[3].confidence", "unknown field"),
            ("segments[3].text", "must be a string"),
        ])
    );
}

#[test]
fn wrong_types_and_missing_words_are_reported() {
    let got = errors(parse_http(
        &adapter(json!({})),
        &fixture("invalid_neither.json"),
        true,
    ));
    assert_eq!(
        got,
        pairs(&[
            ("call_id", "must be a string"),
            ("text", "either text or segments is required"),
            ("recording_url", "must be an absolute http or https URL"),
        ])
    );
}

#[test]
fn other_shapes_are_field_errors() {
    let a = adapter(json!({}));
    let cases: &[(Value, &[(&str, &str)])] = &[
        (
            json!({"call_id": " ", "agent": "AG-017", "text": ""}),
            &[
                ("call_id", "must not be empty"),
                ("agent", "must be an object"),
                ("text", "must not be empty"),
            ],
        ),
        (
            json!({"call_id": "c1", "agent": {"id": "a", "nama": "x"}, "segments": [], "caller": [], "location": {"latitude": 1}}),
            &[
                ("agent.nama", "unknown field"),
                ("caller", "must be an object"),
                ("segments", "must not be empty"),
                ("location.longitude", "is required"),
            ],
        ),
        (
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
        (
            json!({"call_id": "c1", "agent": {"id": "a"}, "text": "t", "location": {"latitude": 0, "longitude": 180.5}, "recording_url": "rekaman/1.ogg"}),
            &[
                ("recording_url", "must be an absolute http or https URL"),
                ("location.longitude", "must be between -180 and 180"),
            ],
        ),
        (
            json!({"call_id": "c1", "agent": {"id": "a"}, "text": "t", "k".repeat(100): 1, "a\nb": 2}),
            &[
                ("a\u{fffd}b", "unknown field"),
                (&*format!("{}…", "k".repeat(64)), "unknown field"),
            ],
        ),
    ];
    for (body, expected) in cases {
        let body = serde_json::to_vec(body).expect("serializable");
        assert_eq!(
            errors(parse_http(&a, &body, true)),
            pairs(expected),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
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
    let a = adapter(json!({}));
    for body in [
        fixture("malformed.json"),
        b"".to_vec(),
        b"[1, 2]".to_vec(),
        b"\"JKT-1\"".to_vec(),
        b"{\"call_id\": \"\xff\"}".to_vec(),
    ] {
        match parse_http(&a, &body, true) {
            Err(Rejection::Malformed(_)) => {}
            other => panic!("{}: {other:?}", String::from_utf8_lossy(&body)),
        }
    }
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
    let a = adapter(json!({"max_segments": 2}));
    let body = json!({"call_id": "c", "agent": {"id": "a"}, "segments": [
        {"speaker": "A", "text": "1"}, {"speaker": "B", "text": "2"}, {"speaker": "A", "text": "3"}
    ]});
    let body = serde_json::to_vec(&body).expect("json");
    assert!(matches!(
        parse_http(&a, &body, true),
        Err(Rejection::TooLarge(_))
    ));
    let small = adapter(json!({"max_body_bytes": 64}));
    assert!(matches!(
        parse_http(&small, &fixture("plain.json"), true),
        Err(Rejection::TooLarge(_))
    ));
    assert_eq!(small.max_body_bytes(), Some(64));
}

#[test]
fn bearer_tokens_are_checked() {
    let a = adapter(json!({}));
    let uri: http::Uri = "/v1/transcripts".parse().expect("uri");
    let body = fixture("plain.json");
    let check = |auth: Option<&str>| {
        let h = match auth {
            Some(v) => headers(&[("authorization", v)]),
            None => headers(&[]),
        };
        a.verify(&post(&http::Method::POST, &uri, &h, &body))
            .map_err(|e| e.reason())
    };
    assert_eq!(check(Some(&format!("Bearer {TOKEN}"))), Ok(()));
    assert_eq!(check(Some(&format!("bearer  {NEXT_TOKEN} "))), Ok(()));
    for bad in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some(TOKEN),
        Some(&*format!("Basic {TOKEN}")),
        Some(&*format!("Bearer {TOKEN}x")),
        Some("Bearer cc-jakarta-2026-rotasi-"),
    ] {
        assert_eq!(check(bad), Err("unauthorized"), "{bad:?}");
    }
}

#[test]
fn only_post_is_parsed() {
    let a = adapter(json!({}));
    let uri: http::Uri = "/v1/transcripts".parse().expect("uri");
    let h = headers(&[]);
    let body = fixture("plain.json");
    let req = post(&http::Method::PUT, &uri, &h, &body);
    assert!(matches!(
        a.parse(&req, &ctx(true)),
        Err(Rejection::MethodNotAllowed)
    ));
}

#[test]
fn the_receipt_is_201_with_the_id() {
    let a = adapter(json!({}));
    for duplicate in [false, true] {
        let reply = a.accepted(&[Receipt {
            id: "01JDQ7Z4V8W9X0Y1Z2A3B4C5D6".to_string(),
            external_id: "JKT-20261122-000123".to_string(),
            duplicate,
        }]);
        assert_eq!(reply.status, 201);
        assert_eq!(reply.content_type, "application/json");
        let body: Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(
            body,
            json!({"id": "01JDQ7Z4V8W9X0Y1Z2A3B4C5D6", "duplicate": duplicate})
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
