//! Inputs the fuzz targets (`fuzz/`, see `docs/fuzzing.md`) found to crash the
//! MIME path, kept as files under `fixtures/regressions/`. Each must come back
//! as a complaint or a refusal, never a panic, in debug and release builds.

use std::path::PathBuf;

use aduan_adapter::{Context, Rejection, Timestamp};
use aduan_email::{Envelope, MimeLimits, complaint_from_mime};

fn regression(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/regressions")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(mime: &[u8]) -> Result<(), Rejection> {
    let received = chrono::DateTime::from_timestamp(1_763_798_400, 0).expect("valid time");
    let ctx = Context {
        instance: "pengaduan-kota",
        received_at: Timestamp(received),
        keep_raw: true,
    };
    let envelope = Envelope {
        provider: "smtp",
        mail_from: Some("warga@example.id".into()),
        recipient: Some("pengaduan@lapor.example.go.id".into()),
    };
    complaint_from_mime(mime, &envelope, &ctx, &MimeLimits::default()).map(|_| ())
}

/// An attached message whose part lies outside the boundary that should hold
/// it: the MIME parser trips its own debug assertion on it.
#[test]
fn rfc822_part_outside_its_boundary_is_not_a_panic() {
    match run(&regression("rfc822-part-outside-its-boundary.eml")) {
        Ok(()) | Err(Rejection::Malformed(_)) => {}
        Err(other) => panic!("unexpected answer: {other:?}"),
    }
}
