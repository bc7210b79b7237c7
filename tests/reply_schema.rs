//! `schema/reply.v1.json` and `schema/delivery.v1.json` against the Rust
//! types of the contract: what `ReplyRequest` and `Delivery` write validates,
//! what they refuse the schemas refuse too (and a little more: the address and
//! content rules serde cannot express), and every example in `docs/replies.md`
//! validates and reads back into its type.

use std::sync::OnceLock;

use aduan_adapter::{
    Channel, DELIVERY_SCHEMA, Delivery, DeliveryError, DeliveryStatus, REPLY_SCHEMA,
    ReplyAttachment, ReplyRequest, Template, Timestamp,
};
use serde_json::{Value, json};

/// A file's text, by path from the repository root.
fn repo_file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn compile(rel: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&repo_file(rel)).expect("schema is JSON");
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{rel} compiles: {e}"))
}

fn reply_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| compile("schema/reply.v1.json"))
}

fn delivery_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| compile("schema/delivery.v1.json"))
}

fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors = errors(validator, doc);
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

fn assert_invalid(validator: &jsonschema::Validator, doc: &Value, what: &str) {
    assert!(
        !validator.is_valid(doc),
        "{what} validates but should not:\n{doc:#}"
    );
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("an RFC 3339 timestamp")
}

const COMPLAINT: &str = "01KBX4T9M2Q8R7ZP3N6V5W1HJD";

fn by_complaint() -> ReplyRequest {
    ReplyRequest {
        schema: None,
        reply_id: "rpl-20261123-0042".into(),
        complaint_id: Some(COMPLAINT.into()),
        channel: None,
        instance: None,
        to: None,
        text: Some("Laporan Anda sudah kami teruskan ke Dinas Perhubungan Kota Bogor.".into()),
        subject: None,
        template: None,
        attachments: Vec::new(),
    }
}

fn replies() -> Vec<(&'static str, ReplyRequest)> {
    let by_address = ReplyRequest {
        schema: Some(REPLY_SCHEMA.into()),
        reply_id: "rpl-20261123-0043".into(),
        complaint_id: None,
        channel: Some(Channel::Telegram),
        instance: Some("tg-bogor".into()),
        to: Some("538201947".into()),
        text: Some("Bapak Agus, mohon kirimkan foto lokasinya.".into()),
        ..by_complaint()
    };
    let template_only = ReplyRequest {
        reply_id: "rpl-20261125-0007".into(),
        text: None,
        template: Some(Template {
            name: "aduan_update".into(),
            language: "id".into(),
            params: vec!["LPR-7K3M-9QX2".into(), "selesai ditangani".into()],
        }),
        ..by_complaint()
    };
    let everything = ReplyRequest {
        schema: Some(REPLY_SCHEMA.into()),
        reply_id: "01KBX7N4DQ2W8R5T3Y6P9ZM1HC".into(),
        complaint_id: Some(COMPLAINT.into()),
        channel: Some(Channel::Email),
        instance: Some("pengaduan-kota".into()),
        to: Some("sri.wahyuni@example.id".into()),
        text: Some("Yth. Ibu Sri Wahyuni,\n\nlaporan Anda telah selesai ditangani.".into()),
        subject: Some("Re: Lampu jalan padam di Jl. Pajajaran".into()),
        template: Some(Template {
            name: "aduan_update".into(),
            language: "id".into(),
            params: Vec::new(),
        }),
        attachments: vec![
            ReplyAttachment {
                storage_key: Some("evidence/2026/11/23/8f3c0a.jpg".into()),
                url: None,
                content_type: Some("image/jpeg".into()),
                filename: Some("perbaikan.jpg".into()),
            },
            ReplyAttachment {
                storage_key: None,
                url: Some(
                    "https://pengaduan.bogorkota.example.id/berkas/surat-tanggapan.pdf".into(),
                ),
                content_type: Some("application/pdf".into()),
                filename: None,
            },
        ],
    };
    vec![
        ("by complaint", by_complaint()),
        ("by address", by_address),
        ("template only", template_only),
        ("every field", everything),
    ]
}

#[test]
fn replies_written_by_the_type_validate_and_read_back() {
    for (what, reply) in replies() {
        let doc = serde_json::to_value(&reply).expect("serializes");
        assert_valid(reply_schema(), &doc, what);
        let back: ReplyRequest = serde_json::from_value(doc).expect("reads back");
        assert_eq!(back, reply, "{what}");
    }
}

#[test]
fn null_is_the_same_as_a_field_left_out() {
    let doc = json!({
        "schema": null,
        "reply_id": "rpl-20261123-0042",
        "complaint_id": COMPLAINT,
        "channel": null,
        "instance": null,
        "to": null,
        "text": "Terima kasih.",
        "subject": null,
        "template": null
    });
    assert_valid(reply_schema(), &doc, "a reply with null fields");
    let reply: ReplyRequest = serde_json::from_value(doc).expect("serde reads nulls as absent");
    assert_eq!(reply.subject, None);
}

/// `(what, document, whether serde refuses it too)`.
fn bad_replies() -> Vec<(&'static str, Value, bool)> {
    vec![
        (
            "no reply_id",
            json!({"complaint_id": COMPLAINT, "text": "Terima kasih."}),
            true,
        ),
        (
            "an unknown field",
            json!({"reply_id": "r1", "complaint_id": COMPLAINT, "txt": "Terima kasih."}),
            true,
        ),
        (
            "an unknown field in the template",
            json!({"reply_id": "r1", "complaint_id": COMPLAINT,
                   "template": {"name": "aduan_update", "language": "id", "lang": "id"}}),
            true,
        ),
        (
            "a template without a language",
            json!({"reply_id": "r1", "complaint_id": COMPLAINT, "template": {"name": "aduan_update"}}),
            true,
        ),
        (
            "an unknown channel",
            json!({"reply_id": "r1", "channel": "line", "instance": "line-bogor", "to": "U1", "text": "Halo"}),
            true,
        ),
        (
            "reply_id not a string",
            json!({"reply_id": 42, "complaint_id": COMPLAINT, "text": "Halo"}),
            true,
        ),
        (
            "neither complaint_id nor an address",
            json!({"reply_id": "r1", "text": "Terima kasih."}),
            false,
        ),
        (
            "an address without to",
            json!({"reply_id": "r1", "channel": "telegram", "instance": "tg-bogor", "text": "Halo"}),
            false,
        ),
        (
            "a null complaint_id and no address",
            json!({"reply_id": "r1", "complaint_id": null, "text": "Halo"}),
            false,
        ),
        (
            "neither text nor template",
            json!({"reply_id": "r1", "complaint_id": COMPLAINT}),
            false,
        ),
        (
            "a text of only white space",
            json!({"reply_id": "r1", "complaint_id": COMPLAINT, "text": " \n "}),
            false,
        ),
        (
            "an empty complaint_id",
            json!({"reply_id": "r1", "complaint_id": "", "text": "Halo"}),
            false,
        ),
        (
            "an empty to",
            json!({"reply_id": "r1", "channel": "telegram", "instance": "tg-bogor", "to": "", "text": "Halo"}),
            false,
        ),
        (
            "an empty reply_id",
            json!({"reply_id": "", "complaint_id": COMPLAINT, "text": "Halo"}),
            false,
        ),
        (
            "another schema",
            json!({"schema": "aduan.reply.v2", "reply_id": "r1", "complaint_id": COMPLAINT, "text": "Halo"}),
            false,
        ),
        (
            "an attachment with neither storage_key nor url",
            json!({"reply_id": "r1", "complaint_id": COMPLAINT, "text": "Halo",
                   "attachments": [{"filename": "foto.jpg"}]}),
            false,
        ),
    ]
}

#[test]
fn bad_replies_are_refused() {
    for (what, doc, serde_refuses) in bad_replies() {
        assert_invalid(reply_schema(), &doc, what);
        let read = serde_json::from_value::<ReplyRequest>(doc);
        if serde_refuses {
            assert!(read.is_err(), "serde reads {what}");
        }
    }
}

fn sent() -> Delivery {
    Delivery {
        schema: DELIVERY_SCHEMA.into(),
        reply_id: "rpl-20261123-0042".into(),
        entry_id: Some("1795415400512-0".into()),
        complaint_id: Some(COMPLAINT.into()),
        instance: Some("wa-jabar".into()),
        channel: Some(Channel::Whatsapp),
        to: Some("6281234567890".into()),
        status: DeliveryStatus::Sent,
        provider_message_id: Some(
            "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ1RTk0QTg2QjJFRkQ3MDA5QQA=".into(),
        ),
        parts: Some(1),
        provider_message_ids: vec![
            "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ1RTk0QTg2QjJFRkQ3MDA5QQA=".into(),
        ],
        attempt: 1,
        error: None,
        next_attempt_at: None,
        at: ts("2026-11-23T06:30:00.874Z"),
    }
}

/// `sent()` without what only an attempt's `sent` names.
fn unsent() -> Delivery {
    Delivery {
        parts: None,
        provider_message_ids: Vec::new(),
        ..sent()
    }
}

fn deliveries() -> Vec<(&'static str, Delivery)> {
    let report = |status| Delivery {
        entry_id: None,
        status,
        attempt: 0,
        at: ts("2026-11-23T06:31:12.045Z"),
        ..unsent()
    };
    vec![
        ("sent", sent()),
        (
            "sent in parts",
            Delivery {
                parts: Some(2),
                provider_message_ids: vec!["m_part1".into(), "m_part2".into()],
                provider_message_id: Some("m_part2".into()),
                channel: Some(Channel::Facebook),
                instance: Some("fb-bogor".into()),
                to: Some("6723918450123456".into()),
                ..sent()
            },
        ),
        (
            "uncertain",
            Delivery {
                status: DeliveryStatus::Uncertain,
                provider_message_id: None,
                error: Some(DeliveryError {
                    code: "uncertain".into(),
                    message: "the provider's answer was lost (timeout: the provider did not answer in time); it may have been sent, so it is not sent again".into(),
                    permanent: true,
                }),
                ..unsent()
            },
        ),
        (
            "uncertain after a part was sent",
            Delivery {
                status: DeliveryStatus::Uncertain,
                provider_message_ids: vec!["m_part1".into(), "m_part2".into()],
                provider_message_id: Some("m_part2".into()),
                error: Some(DeliveryError {
                    code: "uncertain".into(),
                    message: "an earlier attempt was interrupted after it may have been sent; it may have been sent, so it is not sent again".into(),
                    permanent: true,
                }),
                ..unsent()
            },
        ),
        (
            "retrying",
            Delivery {
                status: DeliveryStatus::Retrying,
                provider_message_id: None,
                error: Some(DeliveryError {
                    code: "130429".into(),
                    message: "Rate limit hit".into(),
                    permanent: false,
                }),
                next_attempt_at: Some(ts("2026-11-23T06:30:03.120+00:00")),
                ..unsent()
            },
        ),
        (
            "failed",
            Delivery {
                status: DeliveryStatus::Failed,
                provider_message_id: None,
                attempt: 2,
                error: Some(DeliveryError {
                    code: "window_closed".into(),
                    message: "the citizen's last message is older than 24 hours".into(),
                    permanent: true,
                }),
                ..unsent()
            },
        ),
        (
            "failed without a reply_id",
            Delivery {
                reply_id: String::new(),
                complaint_id: None,
                instance: None,
                channel: None,
                to: None,
                status: DeliveryStatus::Failed,
                provider_message_id: None,
                attempt: 0,
                error: Some(DeliveryError {
                    code: "missing_reply_id".into(),
                    message: "the reply has no reply_id".into(),
                    permanent: true,
                }),
                ..unsent()
            },
        ),
        (
            "failed, reported",
            Delivery {
                error: Some(DeliveryError {
                    code: "131026".into(),
                    message: "Message undeliverable".into(),
                    permanent: true,
                }),
                ..report(DeliveryStatus::Failed)
            },
        ),
        ("delivered", report(DeliveryStatus::Delivered)),
        ("read", report(DeliveryStatus::Read)),
    ]
}

#[test]
fn deliveries_written_by_the_type_validate_and_read_back() {
    for (what, delivery) in deliveries() {
        let doc = serde_json::to_value(&delivery).expect("serializes");
        assert_valid(delivery_schema(), &doc, what);
        let back: Delivery = serde_json::from_value(doc).expect("reads back");
        assert_eq!(back, delivery, "{what}");
    }
}

/// `sent()` as JSON, with `change` applied to it.
fn sent_but(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut doc = serde_json::to_value(sent()).expect("serializes");
    change(doc.as_object_mut().expect("an object"));
    doc
}

#[test]
fn bad_deliveries_are_refused() {
    let retrying = |m: &mut serde_json::Map<String, Value>| {
        m.insert("status".into(), json!("retrying"));
        m.insert(
            "error".into(),
            json!({"code": "network", "message": "timed out", "permanent": false}),
        );
        m.insert("next_attempt_at".into(), json!("2026-11-23T06:30:03.120Z"));
    };
    // (what, document, whether serde refuses it too)
    let cases: Vec<(&str, Value, bool)> = vec![
        (
            "a bad status",
            sent_but(|m| {
                m.insert("status".into(), json!("queued"));
            }),
            true,
        ),
        (
            "a negative attempt",
            sent_but(|m| {
                m.insert("attempt".into(), json!(-1));
            }),
            true,
        ),
        (
            "a fractional attempt",
            sent_but(|m| {
                m.insert("attempt".into(), json!(1.5));
            }),
            true,
        ),
        (
            "at not a timestamp",
            sent_but(|m| {
                m.insert("at".into(), json!("23/11/2026 06:30"));
            }),
            true,
        ),
        (
            "no reply_id",
            sent_but(|m| {
                m.remove("reply_id");
            }),
            true,
        ),
        (
            "an error without permanent",
            sent_but(|m| {
                m.insert("status".into(), json!("failed"));
                m.insert(
                    "error".into(),
                    json!({"code": "blocked", "message": "blocked"}),
                );
            }),
            true,
        ),
        (
            "another schema",
            sent_but(|m| {
                m.insert("schema".into(), json!("aduan.delivery.v2"));
            }),
            false,
        ),
        (
            "no error field",
            sent_but(|m| {
                m.remove("error");
            }),
            false,
        ),
        (
            "an unknown field",
            sent_but(|m| {
                m.insert("tries".into(), json!(1));
            }),
            false,
        ),
        (
            "next_attempt_at not in UTC milliseconds",
            sent_but(|m| {
                retrying(m);
                m.insert("next_attempt_at".into(), json!("2026-11-23T13:30:03+07:00"));
            }),
            false,
        ),
        (
            "retrying without next_attempt_at",
            sent_but(|m| {
                retrying(m);
                m.insert("next_attempt_at".into(), Value::Null);
            }),
            false,
        ),
        (
            "retrying with a permanent error",
            sent_but(|m| {
                retrying(m);
                m.insert(
                    "error".into(),
                    json!({"code": "network", "message": "timed out", "permanent": true}),
                );
            }),
            false,
        ),
        (
            "failed without an error",
            sent_but(|m| {
                m.insert("status".into(), json!("failed"));
            }),
            false,
        ),
        (
            "failed with a temporary error",
            sent_but(|m| {
                m.insert("status".into(), json!("failed"));
                m.insert(
                    "error".into(),
                    json!({"code": "network", "message": "timed out", "permanent": false}),
                );
            }),
            false,
        ),
        (
            "sent without a provider message id",
            sent_but(|m| {
                m.insert("provider_message_id".into(), Value::Null);
            }),
            false,
        ),
        (
            "sent with a next attempt",
            sent_but(|m| {
                m.insert("next_attempt_at".into(), json!("2026-11-23T06:30:03.120Z"));
            }),
            false,
        ),
        (
            "a report with an attempt number",
            sent_but(|m| {
                m.insert("status".into(), json!("read"));
            }),
            false,
        ),
        (
            "an empty provider_message_ids",
            sent_but(|m| {
                m.insert("provider_message_ids".into(), json!([]));
            }),
            false,
        ),
        (
            "an attempt's sent without its parts",
            sent_but(|m| {
                m.remove("parts");
            }),
            false,
        ),
        (
            "an attempt's sent without its provider_message_ids",
            sent_but(|m| {
                m.remove("provider_message_ids");
            }),
            false,
        ),
        (
            "zero parts",
            sent_but(|m| {
                m.insert("parts".into(), json!(0));
            }),
            false,
        ),
        (
            "uncertain without an error",
            sent_but(|m| {
                m.insert("status".into(), json!("uncertain"));
            }),
            false,
        ),
        (
            "uncertain as if it would be tried again",
            sent_but(|m| {
                m.insert("status".into(), json!("uncertain"));
                m.insert(
                    "error".into(),
                    json!({"code": "uncertain", "message": "lost", "permanent": false}),
                );
            }),
            false,
        ),
        (
            "uncertain under another code",
            sent_but(|m| {
                m.insert("status".into(), json!("uncertain"));
                m.insert(
                    "error".into(),
                    json!({"code": "network", "message": "lost", "permanent": true}),
                );
            }),
            false,
        ),
    ];
    for (what, doc, serde_refuses) in cases {
        assert_invalid(delivery_schema(), &doc, what);
        if serde_refuses {
            assert!(
                serde_json::from_value::<Delivery>(doc).is_err(),
                "serde reads {what}"
            );
        }
    }
}

/// The fenced blocks of a Markdown text: (info string, content).
fn fenced_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (fence, open.take()) {
            (Some(info), None) => open = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(block)) => blocks.push(block),
            (None, Some((info, mut content))) => {
                content.push_str(line);
                content.push('\n');
                open = Some((info, content));
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    blocks
}

#[test]
fn every_example_in_the_docs_is_valid() {
    let docs = repo_file("docs/replies.md");
    let blocks = fenced_blocks(&docs);
    let mut replies = Vec::new();
    let mut deliveries = Vec::new();
    let mut events = Vec::new();
    for (info, content) in &blocks {
        match info.as_str() {
            "json" => {
                let doc: Value = serde_json::from_str(content)
                    .unwrap_or_else(|e| panic!("a json block is not JSON: {e}\n{content}"));
                if doc["schema"] == DELIVERY_SCHEMA {
                    deliveries.push(doc);
                } else if doc["type"].is_string() {
                    events.push(doc);
                } else {
                    replies.push(doc);
                }
            }
            "sh" => {
                for line in content.lines() {
                    if let Some(rest) = line.split("XADD aduan:outbound '*' reply '").nth(1) {
                        let json = rest.strip_suffix('\'').expect("the reply is quoted");
                        replies.push(
                            serde_json::from_str(json).expect("the one-liner's reply is JSON"),
                        );
                    }
                }
            }
            "toml" => {
                toml::from_str::<toml::Table>(content)
                    .unwrap_or_else(|e| panic!("a toml block does not parse: {e}"));
            }
            _ => {}
        }
    }

    assert!(
        replies.len() >= 4,
        "the docs show {} replies",
        replies.len()
    );
    assert!(
        replies.iter().any(|r| r["template"].is_object()),
        "the docs show a template reply"
    );
    assert!(
        replies.iter().any(|r| r["to"].is_string()),
        "the docs show a reply by address"
    );
    for doc in &replies {
        assert_valid(reply_schema(), doc, "a reply in docs/replies.md");
        serde_json::from_value::<ReplyRequest>(doc.clone())
            .unwrap_or_else(|e| panic!("a reply in docs/replies.md does not read: {e}\n{doc:#}"));
    }

    for status in [
        "sent",
        "retrying",
        "uncertain",
        "failed",
        "delivered",
        "read",
    ] {
        assert!(
            deliveries.iter().any(|d| d["status"] == status),
            "the docs show no {status} delivery"
        );
    }
    assert!(
        deliveries
            .iter()
            .any(|d| d.get("provider_message_ids").is_some()),
        "the docs show a text sent in parts"
    );
    assert!(
        deliveries
            .iter()
            .filter(|d| d["status"] == "sent" && d["attempt"] != 0)
            .all(|d| d["parts"].as_u64()
                == d["provider_message_ids"].as_array().map(|a| a.len() as u64)),
        "every attempt's sent in the docs names its parts"
    );
    for doc in &deliveries {
        assert_valid(delivery_schema(), doc, "a delivery in docs/replies.md");
        let delivery: Delivery = serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
            panic!("a delivery in docs/replies.md does not read: {e}\n{doc:#}")
        });
        // Exactly what the gateway writes: nothing left out, nothing in another form.
        assert_eq!(
            &serde_json::to_value(&delivery).expect("serializes"),
            doc,
            "a delivery in docs/replies.md is not in the written form"
        );
    }

    assert_eq!(events.len(), 1, "the docs show one opt_out event");
    for event in &events {
        let mut keys: Vec<&str> = event
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "at",
                "channel",
                "code",
                "complaint_id",
                "instance",
                "reply_id",
                "to",
                "type"
            ]
        );
        assert_eq!(event["type"], "opt_out");
        assert!(matches!(
            event["code"].as_str(),
            Some("blocked" | "invalid_recipient")
        ));
        serde_json::from_value::<Channel>(event["channel"].clone()).expect("a channel");
        ts(event["at"].as_str().expect("at is a string"));
    }
}
