//! The one MIME-to-Complaint path every email intake shares, on arbitrary
//! bytes, with the default limits and with tight ones.
#![no_main]

use aduan_adapter::{Context, Timestamp};
use aduan_email::{Envelope, MimeLimits, MimeOutcome, complaint_from_mime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The MIME path catches panics from mail-parser (its debug assertions)
        // and refuses the message; libFuzzer's own hook would abort before that
        // catch. A panic that escapes the target still aborts the run.
        // Taking it out leaves the standard hook, which only reports.
        drop(std::panic::take_hook());
    },
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let received = chrono::DateTime::from_timestamp(1_763_798_400, 0).expect("valid time");
    let ctx = Context {
        instance: "fuzz",
        received_at: Timestamp(received),
        keep_raw: true,
    };
    let envelope = Envelope {
        provider: "smtp",
        mail_from: Some("warga@example.id".into()),
        recipient: Some("lapor@example.go.id".into()),
    };
    let tight = MimeLimits {
        max_depth: 2,
        ..MimeLimits::default()
    };
    for limits in [MimeLimits::default(), tight] {
        if let Ok(outcome) = complaint_from_mime(data, &envelope, &ctx, &limits) {
            if let MimeOutcome::Complaint { complaint, .. } = outcome {
                let _ = serde_json::to_string(&complaint).expect("a complaint serializes");
            }
        }
    }
}
