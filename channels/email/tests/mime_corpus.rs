//! The MIME corpus: each fixture under `fixtures/mime/` next to the whole
//! document it must normalize to (`<name>.json`), or the reason it is not a
//! complaint, or the rejection it earns.
//!
//! `ADUAN_BLESS=1 cargo test -p aduan-email --test mime_corpus` rewrites the
//! expected documents from the current output, for review in the diff.

use std::path::PathBuf;

use aduan_adapter::testkit::{self, Documents};
use aduan_adapter::{Context, Timestamp};
use aduan_email::{Envelope, MimeLimits, MimeOutcome, complaint_from_mime};

enum Expect {
    Complaint,
    Ignored(&'static str),
}

struct Case {
    fixture: &'static str,
    mail_from: Option<&'static str>,
    recipient: Option<&'static str>,
    expect: Expect,
}

const fn case(fixture: &'static str, expect: Expect) -> Case {
    Case {
        fixture,
        mail_from: Some("warga@example.id"),
        recipient: Some("pengaduan@lapor.example.go.id"),
        expect,
    }
}

fn cases() -> Vec<Case> {
    use Expect::*;
    vec![
        case("plain-indonesian", Complaint),
        case("html-only-webmail", Complaint),
        case("alternative-with-attachments", Complaint),
        case("phone-photo", Complaint),
        case("windows-1252", Complaint),
        case("iso-8859-1", Complaint),
        case("encoded-word-subject", Complaint),
        case("forwarded", Complaint),
        case("reply", Complaint),
        case("html-inline-image", Complaint),
        // A sender's name with an override that shows it as another
        // ("Siti Rahayu Dinas Kota"), a subject and a text holding a byte
        // order mark, word joiners, isolates and marks: all removed, the
        // zero-width space and the emoji's joiners of the text kept.
        case("bidi-spoofed-sender", Complaint),
        // No Message-ID: the content id names it; no envelope recipient: `To` does.
        Case {
            recipient: None,
            ..case("no-message-id", Complaint)
        },
        case("auto-reply", Ignored("auto_reply")),
        case("bounce", Ignored("bounce")),
        case("list-traffic", Ignored("list")),
        // A bounce is recognized by its null reverse-path alone.
        Case {
            mail_from: Some(""),
            ..case("plain-indonesian", Ignored("bounce"))
        },
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/mime")
}

fn ctx() -> Context<'static> {
    Context {
        instance: "pengaduan-kota",
        received_at: Timestamp::parse_rfc3339("2026-11-30T01:02:03.456Z").expect("valid"),
        keep_raw: true,
    }
}

#[test]
fn corpus_normalizes_to_the_expected_documents() {
    for case in cases() {
        let mime = std::fs::read(dir().join(format!("{}.eml", case.fixture))).expect("fixture");
        let envelope = Envelope {
            provider: "smtp",
            mail_from: case.mail_from.map(str::to_string),
            recipient: case.recipient.map(str::to_string),
        };
        let got = complaint_from_mime(&mime, &envelope, &ctx(), &MimeLimits::default());
        let again = complaint_from_mime(
            &mime,
            &envelope,
            &testkit::later(&ctx()),
            &MimeLimits::default(),
        );
        match (case.expect, got) {
            (Expect::Complaint, Ok(MimeOutcome::Complaint { complaint, blobs })) => {
                // A redelivery keeps its conversation key, and so its partition.
                let Ok(MimeOutcome::Complaint {
                    complaint: later, ..
                }) = again
                else {
                    panic!(
                        "{}: the same message later is not a complaint",
                        case.fixture
                    )
                };
                assert_eq!(
                    complaint.thread.conversation, later.thread.conversation,
                    "{}",
                    case.fixture
                );
                for a in &complaint.attachments {
                    let key = a.storage_key.as_deref().expect("stored");
                    let blob = blobs.iter().find(|b| b.key == key).expect("blob");
                    assert_eq!(
                        a.sha256.as_deref(),
                        Some(aduan_adapter::verify::sha256_hex(&blob.bytes).as_str())
                    );
                    assert_eq!(a.size, Some(blob.bytes.len() as u64));
                }
                let actual = serde_json::to_value(&complaint).expect("serializes");
                let golden = Documents::Golden(dir().join(format!("{}.json", case.fixture)));
                testkit::assert_documents(
                    case.fixture,
                    &ctx(),
                    &[actual],
                    &golden,
                    &Default::default(),
                );
            }
            (Expect::Ignored(reason), Ok(MimeOutcome::Ignored(got))) => {
                assert_eq!(got, reason, "{}", case.fixture)
            }
            (_, other) => panic!("{}: unexpected {other:?}", case.fixture),
        }
    }
}

fn smtp_envelope() -> Envelope {
    Envelope {
        provider: "smtp",
        mail_from: Some("warga@example.id".to_string()),
        recipient: Some("pengaduan@lapor.example.go.id".to_string()),
    }
}

/// Bad input is refused with a status, never a panic or a partial document.
#[test]
fn bad_input_is_refused() {
    let limits = MimeLimits::default();
    let mut nested =
        String::from("From: a@example.id\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n");
    for i in 1..40 {
        nested.push_str(&format!(
            "--b{}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n",
            i - 1
        ));
    }
    nested.push_str("--b39\r\nContent-Type: text/plain\r\n\r\ndalam\r\n");
    let photo = std::fs::read(dir().join("phone-photo.eml")).expect("fixture");
    let small = MimeLimits {
        max_attachment_bytes: 100,
        ..MimeLimits::default()
    };
    let few = MimeLimits {
        max_attachments: 0,
        ..MimeLimits::default()
    };
    let tiny = MimeLimits {
        max_message_bytes: 500,
        ..MimeLimits::default()
    };
    let cases: Vec<(&str, Vec<u8>, &MimeLimits, u16)> = vec![
        ("empty", Vec::new(), &limits, 400),
        ("blank", b"\r\n\r\n".to_vec(), &limits, 400),
        ("nesting too deep", nested.into_bytes(), &limits, 400),
        ("message over the limit", photo.clone(), &tiny, 413),
        ("attachment over the limit", photo.clone(), &small, 413),
        ("too many attachments", photo, &few, 413),
    ];
    for (label, mime, limits, status) in cases {
        match complaint_from_mime(&mime, &smtp_envelope(), &ctx(), limits) {
            Err(r) => assert_eq!(r.status(), status, "{label}"),
            Ok(other) => panic!("{label}: accepted {other:?}"),
        }
    }
    let no_sender = b"Subject: tanpa pengirim\r\n\r\nisi\r\n";
    let envelope = Envelope {
        mail_from: None,
        ..smtp_envelope()
    };
    let refused = complaint_from_mime(no_sender, &envelope, &ctx(), &limits);
    assert!(
        matches!(refused, Err(ref r) if r.status() == 400),
        "{refused:?}"
    );
}

/// Hostile bodies end as text in bounded time: deep HTML, binary noise, an
/// unknown charset.
#[test]
fn hostile_bodies_still_normalize() {
    let mut html = String::from("From: a@example.id\r\nContent-Type: text/html\r\n\r\n");
    html.push_str(&"<div>".repeat(200_000));
    html.push_str("dalam");
    let mut noise =
        b"From: a@example.id\r\nContent-Type: text/plain; charset=x-unknown-9\r\n\r\n".to_vec();
    noise.extend((0..=255u8).cycle().take(4096));
    for mime in [html.into_bytes(), noise] {
        let out = complaint_from_mime(&mime, &smtp_envelope(), &ctx(), &MimeLimits::default());
        assert!(matches!(out, Ok(MimeOutcome::Complaint { .. })), "{out:?}");
    }
}
