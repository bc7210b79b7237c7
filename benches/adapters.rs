//! A regression guard for the per-complaint work, not a timed test: each
//! channel's verify, parse and normalize of one real-format request, and the
//! JSON encoding of the complaint it makes, as the gateway does them on the
//! hot path; and the language detection of its text. Run with
//! `cargo bench --bench adapters`; compare against the figures in
//! docs/performance.md on the same machine.

use std::hint::black_box;

use aduan::instances::{Intake, build};
use aduan::language::LanguageDetector;
use aduan::settings::Config;
use aduan_adapter::testkit::{self, OwnedRequest};
use aduan_adapter::{Adapter, Outcome};
use criterion::{Criterion, criterion_group, criterion_main};

fn fixture(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The adapter of the one instance `toml` configures.
fn adapter(toml: &str) -> std::sync::Arc<dyn Adapter> {
    let config = Config::from_toml(toml, &[], "bench.toml").expect("valid settings");
    match build(&config.instances[0]).expect("builds").intake {
        Intake::Push(a) => a,
        Intake::Transcript(t) => t,
        _ => panic!("a push instance"),
    }
}

/// Verify, parse, and encode every complaint, as the gateway does.
fn ingest(adapter: &dyn Adapter, request: &OwnedRequest, instance: &str) -> usize {
    let req = request.as_request();
    adapter.verify(&req).expect("verified");
    let ctx = testkit::context(instance, true);
    let Outcome::Accept { complaints, .. } = adapter.parse(&req, &ctx).expect("parsed") else {
        panic!("complaints expected");
    };
    complaints
        .iter()
        .map(|c| serde_json::to_vec(c).expect("encodes").len())
        .sum()
}

fn channels(c: &mut Criterion) {
    let whatsapp = adapter(
        "[[instances]]\nname = \"wa-bench\"\nkind = \"whatsapp\"\napp_secret = \"bench-app-secret\"\nverify_token = \"v\"\n",
    );
    let body = fixture("channels/meta/fixtures/whatsapp/bench_text.json");
    let signed = OwnedRequest::post("/webhooks/whatsapp/wa-bench")
        .json(body.clone())
        .header(
            "x-hub-signature-256",
            &testkit::meta_signature("bench-app-secret", &body),
        );
    c.bench_function("whatsapp: verify, parse, encode", |b| {
        b.iter(|| black_box(ingest(whatsapp.as_ref(), &signed, "wa-bench")))
    });

    let twilio = adapter(
        "[[instances]]\nname = \"twilio-jabar\"\nkind = \"twilio\"\nauth_token = \"twilio-test-token-jabar\"\npublic_url = \"https://lapor.example.go.id\"\n",
    );
    let form = OwnedRequest::post("/webhooks/twilio/twilio-jabar")
        .form(fixture("channels/sms/fixtures/twilio/sms.form"))
        .header(
            "x-twilio-signature",
            String::from_utf8(fixture("channels/sms/fixtures/twilio/sms.sig"))
                .expect("signature is text")
                .trim(),
        );
    c.bench_function("twilio: verify, parse, encode", |b| {
        b.iter(|| black_box(ingest(twilio.as_ref(), &form, "twilio-jabar")))
    });

    let telegram = adapter(
        "[[instances]]\nname = \"tg-bench\"\nkind = \"telegram\"\nsecret_token = \"bench-telegram-secret\"\n",
    );
    let update = OwnedRequest::post("/webhooks/telegram/tg-bench")
        .json(fixture("channels/telegram/fixtures/message_text.json"))
        .header("x-telegram-bot-api-secret-token", "bench-telegram-secret");
    c.bench_function("telegram: verify, parse, encode", |b| {
        b.iter(|| black_box(ingest(telegram.as_ref(), &update, "tg-bench")))
    });

    let transcripts = adapter(
        "[[instances]]\nname = \"cc-bench\"\nkind = \"transcript\"\ntokens = [\"bench-token\"]\n",
    );
    let call = OwnedRequest::post("/v1/transcripts")
        .json(
            r#"{"call_id":"BENCH-1","agent":{"id":"AG-017","name":"Siti Rahayu"},"caller":{"phone":"0812-3456-7890","name":"Budi Santoso"},"started_at":"2026-11-22T08:15:30+07:00","duration_seconds":184,"direction":"inbound","category":"Infrastruktur Jalan","text":"Penelepon melaporkan jalan berlubang di depan SDN 3 Cibinong. Lubang sudah ada sejak dua minggu dan sudah menyebabkan dua pengendara motor jatuh."}"#,
        )
        .header("authorization", &testkit::bearer("bench-token"));
    c.bench_function("transcript: verify, parse, encode", |b| {
        b.iter(|| black_box(ingest(transcripts.as_ref(), &call, "cc-bench")))
    });

    let detector = LanguageDetector::default();
    let text = "Jalan berlubang di depan SDN 3 Cibinong sudah dua minggu belum diperbaiki, \
                sudah ada dua pengendara motor yang jatuh. Mohon segera ditindaklanjuti.";
    c.bench_function("language: detect among the default candidates", |b| {
        b.iter(|| black_box(detector.detect(black_box(text))))
    });
}

criterion_group!(benches, channels);
criterion_main!(benches);
