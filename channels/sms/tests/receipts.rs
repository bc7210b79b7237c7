//! Delivery receipts and opt-out words through the SMS adapters alone:
//! every fixture under `fixtures/` put through `verify` and `parse` as the
//! gateway does, and everything it must come to, whole: the status reports
//! about the messages we sent, the consents, the acknowledged events and
//! the complaints (or the refusal, when nothing may be written).
//!
//! Twilio and Vonage signatures beside the fixtures were computed
//! independently with Python's `hmac` (see `fixtures/README.md`).

use aduan_adapter::testkit::{self, OwnedRequest, TWILIO_SIGNATURE_HEADER, basic_auth};
use aduan_adapter::{
    Adapter, Consent, DeliveryStatus, MessageRef, Outcome, ReportRef, StatusReport, Timestamp,
};
use aduan_sms::{GenericSms, Infobip, Twilio, Vonage};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim_end()
        .to_string()
}

/// Everything an accepted request carried.
#[derive(Debug, Default)]
struct Accepted {
    complaints: Vec<String>,
    ignored: Vec<&'static str>,
    reports: Vec<StatusReport>,
    consents: Vec<Consent>,
}

enum Expect {
    Accepted(Accepted),
    /// Refused with this status: nothing is written.
    Refused(u16),
}

struct Case {
    label: &'static str,
    request: OwnedRequest,
    expect: Expect,
}

fn case(label: &'static str, request: OwnedRequest, expect: Expect) -> Case {
    Case {
        label,
        request,
        expect,
    }
}

fn reports(reports: Vec<StatusReport>) -> Expect {
    Expect::Accepted(Accepted {
        reports,
        ..Accepted::default()
    })
}

fn ignored(reason: &'static str) -> Expect {
    Expect::Accepted(Accepted {
        ignored: vec![reason],
        ..Accepted::default()
    })
}

fn consents(consents: Vec<Consent>) -> Expect {
    Expect::Accepted(Accepted {
        consents,
        ..Accepted::default()
    })
}

/// Complaints, by their text.
fn complaints(texts: &[&str]) -> Expect {
    Expect::Accepted(Accepted {
        complaints: texts.iter().map(|t| t.to_string()).collect(),
        ..Accepted::default()
    })
}

fn report(id: &str, status: DeliveryStatus) -> StatusReport {
    StatusReport {
        about: ReportRef::Message(id.to_string()),
        reference: None,
        status,
        error: None,
        at: None,
    }
}

/// A report about a message the generic gateway names by our own `{id}`,
/// which is our reference of it too.
fn ours(report: StatusReport) -> StatusReport {
    let reference = match &report.about {
        ReportRef::Message(id) => MessageRef::parse(id),
        ReportRef::UpTo { .. } => None,
    };
    StatusReport {
        reference,
        ..report
    }
}

fn failed(id: &str, code: &str, message: &str) -> StatusReport {
    StatusReport {
        error: Some((code.to_string(), message.to_string())),
        ..report(id, DeliveryStatus::Failed)
    }
}

fn at(rfc3339: &str) -> Option<Timestamp> {
    Some(Timestamp::parse_rfc3339(rfc3339).expect("a timestamp"))
}

fn opt_out(to: &str, keyword: &str) -> Consent {
    Consent {
        to: to.to_string(),
        opted_out: true,
        keyword: keyword.to_string(),
    }
}

fn opt_in(to: &str, keyword: &str) -> Consent {
    Consent {
        opted_out: false,
        ..opt_out(to, keyword)
    }
}

/// Puts each case through `adapter` and checks all it came to.
fn run(adapter: &dyn Adapter, cases: Vec<Case>) {
    let ctx = testkit::context("sms-jabar", false);
    for Case {
        label,
        request,
        expect,
    } in cases
    {
        let result = testkit::handle(adapter, &ctx, &request);
        match (result, expect) {
            (
                Ok(Outcome::Accept {
                    complaints,
                    ignored,
                    reports,
                    consents,
                }),
                Expect::Accepted(expected),
            ) => {
                let texts: Vec<String> = complaints.iter().map(|c| c.text.clone()).collect();
                assert_eq!(texts, expected.complaints, "{label}: complaints");
                let reasons: Vec<&str> = ignored.iter().map(|i| i.reason).collect();
                assert_eq!(reasons, expected.ignored, "{label}: ignored");
                assert_eq!(reports, expected.reports, "{label}: reports");
                assert_eq!(consents, expected.consents, "{label}: consents");
            }
            (Err(rejection), Expect::Refused(status)) => {
                assert_eq!(rejection.status(), status, "{label}: {rejection}");
            }
            (other, _) => panic!("{label}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Twilio

const TWILIO_PATH: &str = "/webhooks/twilio/twilio-jabar";

fn twilio() -> Twilio {
    Twilio::new(
        serde_json::from_value(json!({
            "auth_token": "twilio-test-token-jabar",
            "public_url": "https://lapor.example.go.id",
        }))
        .expect("config"),
    )
    .expect("adapter")
}

/// The fixture `twilio/<name>.form`, signed with `twilio/<sig>.sig`.
fn twilio_post(name: &str, sig: &str) -> OwnedRequest {
    OwnedRequest::post(TWILIO_PATH)
        .form(fixture(&format!("twilio/{name}.form")))
        .header(
            TWILIO_SIGNATURE_HEADER,
            &fixture(&format!("twilio/{sig}.sig")),
        )
}

#[test]
fn twilio_status_callbacks_are_reports_and_stop_is_an_opt_out() {
    let tampered = fixture("twilio/status.form").replace("=delivered", "=failed");
    run(
        &twilio(),
        vec![
            case(
                "delivered",
                twilio_post("status", "status"),
                reports(vec![report(
                    "SM3f1c9a7e2b4d6f8a0c2e4b6d8f0a1c3e",
                    DeliveryStatus::Delivered,
                )]),
            ),
            case(
                "sent",
                twilio_post("status_sent", "status_sent"),
                reports(vec![report(
                    "SM7b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a",
                    DeliveryStatus::Sent,
                )]),
            ),
            case(
                "read on WhatsApp",
                twilio_post("status_read_whatsapp", "status_read_whatsapp"),
                reports(vec![report(
                    "SMb5f7d9e1a3c5e7a9b1d3f5c7e9a1b3d5",
                    DeliveryStatus::Read,
                )]),
            ),
            case(
                "undelivered with its error code",
                twilio_post("status_undelivered", "status_undelivered"),
                reports(vec![failed(
                    "SM8c2e4a6b8d0f2a4c6e8b0d2f4a6c8e0b",
                    "30003",
                    "Twilio reports the message undelivered (error 30003)",
                )]),
            ),
            case(
                "failed with Twilio's message",
                twilio_post("status_failed", "status_failed"),
                reports(vec![failed(
                    "SM9d3f5b7c9e1a3b5d7f9c1e3a5b7d9f1c",
                    "30008",
                    "Unknown error",
                )]),
            ),
            case(
                "queued: not a report",
                twilio_post("status_queued", "status_queued"),
                ignored("status"),
            ),
            case(
                "a status changed after signing",
                OwnedRequest::post(TWILIO_PATH)
                    .form(tampered)
                    .header(TWILIO_SIGNATURE_HEADER, &fixture("twilio/status.sig")),
                Expect::Refused(403),
            ),
            case(
                "a status callback without signature",
                OwnedRequest::post(TWILIO_PATH).form(fixture("twilio/status.form")),
                Expect::Refused(403),
            ),
            case(
                "STOP",
                twilio_post("stop", "stop"),
                consents(vec![opt_out("+6285712345678", "STOP")]),
            ),
            case(
                "daftar, in lower case and spaces",
                twilio_post("start", "start"),
                consents(vec![opt_in("+6285712345678", "DAFTAR")]),
            ),
            case(
                "stop inside a complaint",
                twilio_post("stop_in_sentence", "stop_in_sentence"),
                complaints(&["tolong stop pembuangan limbah ke Sungai Cileungsi"]),
            ),
            case(
                "an ordinary SMS",
                twilio_post("sms", "sms"),
                complaints(&[
                    "Jalan berlubang di depan SDN 3 Cibinong, sudah dua motor jatuh minggu ini",
                ]),
            ),
        ],
    );
}

#[test]
fn twilio_opt_out_words_are_configurable() {
    let adapter = Twilio::new(
        serde_json::from_value(json!({
            "auth_token": "twilio-test-token-jabar",
            "public_url": "https://lapor.example.go.id",
            "opt_out_keywords": [],
        }))
        .expect("config"),
    )
    .expect("adapter");
    run(
        &adapter,
        vec![
            case(
                "STOP is a complaint",
                twilio_post("stop", "stop"),
                complaints(&["STOP"]),
            ),
            case(
                "DAFTAR still opts in",
                twilio_post("start", "start"),
                consents(vec![opt_in("+6285712345678", "DAFTAR")]),
            ),
        ],
    );
}

// ---------------------------------------------------------------------------
// Vonage

fn vonage(config: Value) -> Vonage {
    Vonage::new(serde_json::from_value(config).expect("config")).expect("adapter")
}

fn vonage_get(name: &str) -> OwnedRequest {
    OwnedRequest::get(&format!(
        "/webhooks/vonage/vonage-jabar?{}",
        fixture(&format!("vonage/{name}.query"))
    ))
}

#[test]
fn vonage_receipts_are_reports_and_berhenti_is_an_opt_out() {
    run(
        &vonage(json!({})),
        vec![
            case(
                "delivered",
                vonage_get("dlr"),
                reports(vec![StatusReport {
                    at: at("2026-11-22T08:15:40Z"),
                    ..report("0C0000001A2B3C4D", DeliveryStatus::Delivered)
                }]),
            ),
            case(
                "failed with its err-code",
                vonage_get("dlr_failed"),
                reports(vec![StatusReport {
                    at: at("2026-11-22T08:16:10Z"),
                    ..failed(
                        "0C0000001A2B3C4E",
                        "6",
                        "Vonage reports the message failed (err-code 6)",
                    )
                }]),
            ),
            case(
                "expired",
                vonage_get("dlr_expired"),
                reports(vec![StatusReport {
                    at: at("2026-11-22T08:16:10Z"),
                    ..failed(
                        "0C0000001A2B3C4F",
                        "2",
                        "Vonage reports the message expired (err-code 2)",
                    )
                }]),
            ),
            case(
                "delivered, echoing our client-ref",
                vonage_get("dlr_client_ref"),
                reports(vec![StatusReport {
                    at: at("2026-11-22T08:15:40Z"),
                    reference: MessageRef::new("rpl-20261123-0042", 0),
                    ..report("0C0000001A2B3C60", DeliveryStatus::Delivered)
                }]),
            ),
            case(
                "buffered: not a report",
                vonage_get("dlr_buffered"),
                ignored("status"),
            ),
            case(
                "a POST form receipt",
                OwnedRequest::post("/webhooks/vonage/vonage-jabar")
                    .form(fixture("vonage/dlr.query")),
                reports(vec![StatusReport {
                    at: at("2026-11-22T08:15:40Z"),
                    ..report("0C0000001A2B3C4D", DeliveryStatus::Delivered)
                }]),
            ),
            case(
                "a receipt without messageId",
                OwnedRequest::get("/webhooks/vonage/vonage-jabar?status=delivered&err-code=0"),
                Expect::Refused(400),
            ),
            case(
                "Berhenti",
                vonage_get("stop"),
                consents(vec![opt_out("+6285712345678", "BERHENTI")]),
            ),
        ],
    );
}

#[test]
fn vonage_signed_receipts_are_checked_like_messages() {
    run(
        &vonage(json!({
            "signature_secret": "vonage-signature-secret-jabar",
            "signature_method": "sha256",
        })),
        vec![
            case(
                "signed receipt",
                vonage_get("dlr_signed_sha256"),
                reports(vec![StatusReport {
                    at: at("2026-11-22T08:16:10Z"),
                    ..report("0C0000001A2B3C51", DeliveryStatus::Delivered)
                }]),
            ),
            case(
                "status changed after signing",
                vonage_get("dlr_signed_tampered"),
                Expect::Refused(403),
            ),
            case("unsigned receipt", vonage_get("dlr"), Expect::Refused(403)),
        ],
    );
    // A stale signed receipt is refused too.
    run(
        &vonage(json!({
            "signature_secret": "vonage-signature-secret-jabar",
            "signature_method": "sha256",
            "signature_max_age_seconds": 60,
        })),
        vec![case(
            "stale",
            vonage_get("dlr_signed_sha256"),
            Expect::Refused(403),
        )],
    );
}

// ---------------------------------------------------------------------------
// Infobip

fn infobip() -> Infobip {
    Infobip::new(
        serde_json::from_value(json!({
            "auth": "basic",
            "username": "infobip-jabar",
            "secret": "infobip-webhook-secret",
        }))
        .expect("config"),
    )
    .expect("adapter")
}

fn infobip_post(name: &str, password: &str) -> OwnedRequest {
    OwnedRequest::post("/webhooks/infobip/infobip-jabar")
        .json(fixture(&format!("infobip/{name}.json")))
        .header("authorization", &basic_auth("infobip-jabar", password))
}

#[test]
fn infobip_delivery_reports_are_one_report_per_result() {
    let done = at("2026-11-22T08:16:10Z");
    run(
        &infobip(),
        vec![
            case(
                "delivered, undeliverable, expired, rejected and pending",
                infobip_post("reports", "infobip-webhook-secret"),
                Expect::Accepted(Accepted {
                    ignored: vec!["status"],
                    reports: vec![
                        StatusReport {
                            at: done,
                            ..report("4153180894423336539", DeliveryStatus::Delivered)
                        },
                        StatusReport {
                            at: done,
                            ..failed(
                                "4153180894423336540",
                                "EC_ABSENT_SUBSCRIBER",
                                "Absent Subscriber",
                            )
                        },
                        StatusReport {
                            at: done,
                            ..failed("4153180894423336541", "EXPIRED_EXPIRED", "Message expired")
                        },
                        StatusReport {
                            at: done,
                            ..failed(
                                "4153180894423336542",
                                "REJECTED_DESTINATION",
                                "Destination rejected",
                            )
                        },
                    ],
                    ..Accepted::default()
                }),
            ),
            case(
                "reports echoing our callbackData, and one that is not ours",
                infobip_post("report_callback", "infobip-webhook-secret"),
                reports(vec![
                    StatusReport {
                        at: done,
                        reference: MessageRef::new("ack:01KBX4T9M2Q8R7ZP3N6V5W1HJD", 0),
                        ..report("4153180894423336601", DeliveryStatus::Delivered)
                    },
                    StatusReport {
                        at: done,
                        ..report("4153180894423336602", DeliveryStatus::Delivered)
                    },
                ]),
            ),
            case(
                "reports with a wrong password",
                infobip_post("reports", "infobip-webhook-secreT"),
                Expect::Refused(401),
            ),
            case(
                "unreg beside a complaint",
                infobip_post("stop", "infobip-webhook-secret"),
                Expect::Accepted(Accepted {
                    complaints: vec!["Lampu PJU di Jl. Ahmad Yani padam".to_string()],
                    consents: vec![opt_out("+6285712345678", "UNREG")],
                    ..Accepted::default()
                }),
            ),
            case(
                "a report without messageId",
                OwnedRequest::post("/webhooks/infobip/infobip-jabar")
                    .json(r#"{"results":[{"status":{"groupName":"DELIVERED"}}]}"#)
                    .header(
                        "authorization",
                        &basic_auth("infobip-jabar", "infobip-webhook-secret"),
                    ),
                Expect::Refused(400),
            ),
        ],
    );
}

// ---------------------------------------------------------------------------
// Generic gateways

fn kannel(extra: Value) -> GenericSms {
    let mut config = json!({
        "auth": "query",
        "secret": "kannel-shared-secret",
        "timestamp_field": "ts",
        "timestamp_format": "%Y-%m-%d %H:%M:%S",
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    GenericSms::new(serde_json::from_value(config).expect("config")).expect("adapter")
}

fn kannel_get(query: &str) -> OwnedRequest {
    OwnedRequest::get(&format!("/webhooks/sms/sms-kannel?{query}"))
}

#[test]
fn kannel_dlrs_name_our_id_and_their_status() {
    run(
        &kannel(json!({})),
        vec![
            case(
                "1: delivered",
                kannel_get(&fixture("generic/kannel_dlr.query")),
                reports(vec![ours(report(
                    "balasan-0001.0",
                    DeliveryStatus::Delivered,
                ))]),
            ),
            case(
                "16: rejected by the SMSC",
                kannel_get(&fixture("generic/kannel_dlr_failed.query")),
                reports(vec![ours(failed(
                    "balasan-0002.0",
                    "16",
                    "the gateway reports status 16",
                ))]),
            ),
            case(
                "4: buffered",
                kannel_get(&fixture("generic/kannel_dlr_buffered.query")),
                ignored("status"),
            ),
            case(
                "8: submitted to the SMSC",
                kannel_get("secret=kannel-shared-secret&status=8&id=balasan-0004.0"),
                reports(vec![ours(report("balasan-0004.0", DeliveryStatus::Sent))]),
            ),
            case(
                "a DLR with the wrong secret",
                kannel_get(
                    &fixture("generic/kannel_dlr.query")
                        .replace("kannel-shared-secret", "tebak-tebakan"),
                ),
                Expect::Refused(401),
            ),
            case(
                "a DLR without our id",
                kannel_get("secret=kannel-shared-secret&status=1"),
                Expect::Refused(400),
            ),
            case(
                "STOP",
                kannel_get(&fixture("generic/kannel_stop.query")),
                consents(vec![opt_out("+6281234567890", "STOP")]),
            ),
            case(
                "an ordinary SMS",
                kannel_get(&fixture("generic/kannel.query")),
                complaints(&["Parkir liar di trotoar Jl. Sudirman depan Mall"]),
            ),
        ],
    );
}

#[test]
fn jasmin_dlrs_by_their_smpp_state() {
    let jasmin = GenericSms::new(
        serde_json::from_value(json!({
            "auth": "basic",
            "username": "jasmin",
            "secret": "jasmin-webhook-secret",
            "text_field": "content",
            "dlr_status_param": "message_status",
        }))
        .expect("config"),
    )
    .expect("adapter");
    let post = |password: &str| {
        OwnedRequest::post("/webhooks/sms/sms-jasmin")
            .form(fixture("generic/jasmin_dlr.form"))
            .header("authorization", &basic_auth("jasmin", password))
    };
    run(
        &jasmin,
        vec![
            case(
                "UNDELIV with its err",
                post("jasmin-webhook-secret"),
                reports(vec![failed(
                    "07033084-5cfd-4812-90a4-e4d24ffb6e3d",
                    "001",
                    "the gateway reports status UNDELIV (error 001)",
                )]),
            ),
            case("wrong password", post("tebakan"), Expect::Refused(401)),
            case(
                "id from the dlr_url's query",
                OwnedRequest::post("/webhooks/sms/sms-jasmin?id=balasan-0005.0")
                    .form("message_status=delivrd&level=2")
                    .header(
                        "authorization",
                        &basic_auth("jasmin", "jasmin-webhook-secret"),
                    ),
                reports(vec![ours(report(
                    "balasan-0005.0",
                    DeliveryStatus::Delivered,
                ))]),
            ),
        ],
    );
}

#[test]
fn dlr_statuses_are_configurable() {
    let adapter = kannel(json!({
        "dlr_status_param": "state",
        "dlr_id_param": "ref",
        "dlr_statuses": {"terkirim": "delivered", "dibaca": "read", "gagal": "failed"},
    }));
    run(
        &adapter,
        vec![
            case(
                "delivered",
                kannel_get("secret=kannel-shared-secret&state=TERKIRIM&ref=balasan-0006.0"),
                reports(vec![ours(report(
                    "balasan-0006.0",
                    DeliveryStatus::Delivered,
                ))]),
            ),
            case(
                "read",
                kannel_get("secret=kannel-shared-secret&state=dibaca&ref=balasan-0006.0"),
                reports(vec![ours(report("balasan-0006.0", DeliveryStatus::Read))]),
            ),
            case(
                "Kannel's 1 is no longer known",
                kannel_get("secret=kannel-shared-secret&state=1&ref=balasan-0006.0"),
                ignored("status"),
            ),
        ],
    );
    let bad = serde_json::from_value::<aduan_sms::GenericSmsConfig>(json!({
        "auth": "query", "secret": "s", "dlr_statuses": {"1": "terkirim"},
    }));
    assert!(bad.is_err());
}
