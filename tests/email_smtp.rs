//! The SMTP listener against real clients: Python's smtplib
//! (`tests/email_smtp/client.py`) for plain delivery, STARTTLS with a
//! certificate made at test time and with the self-signed one the listener
//! makes itself, an unknown recipient and oversize messages; a raw socket
//! for pipelining and a client that drops mid-DATA.
//! Each case checks the reply and exactly what reached Redis.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::smtp::Client;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

const MAX_MESSAGE: usize = 64 * 1024;

fn config(tls: &Path, blobs: &Path) -> String {
    format!(
        r#"
[smtp]
listen = "127.0.0.1:0"
hostname = "mx.uji.example.go.id"
tls_cert = "{cert}"
tls_key = "{key}"
max_message_bytes = {MAX_MESSAGE}
idle_timeout_seconds = 5

[blobs]
dir = "{blobs}"

[[instances]]
name = "pengaduan-kota"
kind = "smtp"
addresses = ["pengaduan@lapor.example.go.id"]

[[instances]]
name = "aduan-provinsi"
kind = "smtp"
domains = ["aduan.example.go.id", "lapor.example.go.id"]
"#,
        cert = tls.join("cert.pem").display(),
        key = tls.join("key.pem").display(),
        blobs = blobs.display(),
    )
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
fn write_certificate(dir: &Path) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate");
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).expect("write key");
}

fn mime(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("channels/email/fixtures/mime/{name}.eml"))
}

/// Runs one smtplib scenario and returns what it printed.
async fn smtplib(scenario: &str, port: u16, message: &Path, ca: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/email_smtp/client.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(scenario)
        .arg(port.to_string())
        .arg(message)
        .arg(ca.join("cert.pem"))
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{scenario}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("client prints JSON")
}

/// The corpus document for `fixture` as the listener produces it: `raw` holds
/// the message as it crossed the wire, with CRLF line ends.
fn expected(fixture: &str, instance: &str, recipient: &str, language: Value) -> Value {
    let mut doc = expected_as_sent(fixture, instance, recipient, language);
    let wire = wire(&common::fixture(&format!(
        "channels/email/fixtures/mime/{fixture}.eml"
    )));
    doc["raw"] =
        serde_json::to_value(aduan_adapter::Raw::from_bytes("message/rfc822", &wire)).expect("raw");
    doc
}

/// A fixture's bytes as a mail client sends them: every line ending in CRLF
/// (only `<CRLF>.<CRLF>` ends DATA).
fn wire(source: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(source.len() + 64);
    for &b in source {
        if b == b'\n' {
            wire.push(b'\r');
        }
        wire.push(b);
    }
    wire
}

/// The corpus document for `fixture` with `raw` the file's exact bytes.
fn expected_as_sent(fixture: &str, instance: &str, recipient: &str, language: Value) -> Value {
    let mut doc: Value = serde_json::from_slice(&common::fixture(&format!(
        "channels/email/fixtures/mime/{fixture}.json"
    )))
    .expect("expected document");
    doc["id"] = json!("*");
    doc["received_at"] = json!("*");
    doc["instance"] = json!(instance);
    doc["recipient"] = json!(recipient);
    doc["language"] = language;
    doc
}

#[tokio::test]
async fn smtp_listener_with_real_clients() {
    let tls = tempfile::tempdir().expect("tempdir");
    let blobs = tempfile::tempdir().expect("tempdir");
    write_certificate(tls.path());
    let mut app = common::spawn_app(&config(tls.path(), blobs.path())).await;
    let port = app.smtp_port();
    let ind = json!("ind");

    // Plain delivery: EHLO announces the extensions, the complaint is written.
    let out = smtplib("send", port, &mime("plain-indonesian"), tls.path()).await;
    assert_eq!(out["result"], 250);
    for ext in [
        "8bitmime",
        "enhancedstatuscodes",
        "pipelining",
        "size",
        "starttls",
    ] {
        assert!(
            out["features"]
                .as_array()
                .expect("features")
                .contains(&json!(ext)),
            "{ext} in {out}"
        );
    }
    let docs = app.complaints().await;
    assert_eq!(docs.len(), 1);
    let plain = expected(
        "plain-indonesian",
        "pengaduan-kota",
        "pengaduan@lapor.example.go.id",
        ind.clone(),
    );
    common::assert_json_matches(&docs[0], &plain);

    // The same message again (a retry after a lost 250): accepted, nothing new.
    let out = smtplib("send", port, &mime("plain-indonesian"), tls.path()).await;
    assert_eq!(out["result"], 250);
    assert_eq!(app.stream_len().await, 1);

    // STARTTLS with the test certificate; attachments stored before the 250.
    let out = smtplib(
        "starttls",
        port,
        &mime("alternative-with-attachments"),
        tls.path(),
    )
    .await;
    assert_eq!(out["starttls"], 220);
    assert!(
        !out["features_after_tls"]
            .as_array()
            .expect("features")
            .contains(&json!("starttls"))
    );
    let docs = app.complaints().await;
    assert_eq!(docs.len(), 2);
    common::assert_json_matches(
        &docs[1],
        &expected(
            "alternative-with-attachments",
            "pengaduan-kota",
            "pengaduan@lapor.example.go.id",
            ind.clone(),
        ),
    );
    for a in docs[1]["attachments"].as_array().expect("attachments") {
        let key = a["storage_key"].as_str().expect("key");
        assert!(blobs.path().join(key).is_file(), "{key} stored");
    }

    // One message to two instances: one complaint for each.
    let out = smtplib("two-instances", port, &mime("reply"), tls.path()).await;
    assert_eq!(out["result"], 250);
    let docs = app.complaints().await;
    assert_eq!(docs.len(), 4);
    common::assert_json_matches(
        &docs[2],
        &expected(
            "reply",
            "pengaduan-kota",
            "pengaduan@lapor.example.go.id",
            ind.clone(),
        ),
    );
    common::assert_json_matches(
        &docs[3],
        &expected(
            "reply",
            "aduan-provinsi",
            "apa.saja@aduan.example.go.id",
            ind.clone(),
        ),
    );

    // A bounce (null reverse-path) is acknowledged and not written.
    let out = smtplib("bounce", port, &mime("bounce"), tls.path()).await;
    assert_eq!(out["result"], 250);
    assert_eq!(app.stream_len().await, 4);

    // Refusals: nothing written.
    let out = smtplib(
        "unknown-recipient",
        port,
        &mime("plain-indonesian"),
        tls.path(),
    )
    .await;
    assert_eq!(out["result"], 550);
    let big = tempfile::NamedTempFile::new().expect("temp file");
    let mut message = common::fixture("channels/email/fixtures/mime/no-message-id.eml");
    message.extend(std::iter::repeat_n(b"Jalan berlubang lagi.\r\n".as_slice(), 4000).flatten());
    std::fs::write(big.path(), &message).expect("write");
    let out = smtplib("oversize-declared", port, big.path(), tls.path()).await;
    assert_eq!(out["result"], 552);
    let out = smtplib("oversize-undeclared", port, big.path(), tls.path()).await;
    assert_eq!(out["result"], 552);
    assert_eq!(app.stream_len().await, 4);

    // Pipelining: the whole transaction in one write, replies in order.
    let mut smtp = Client::connect(&app).await;
    assert!(smtp.greeting[0].starts_with("220 "));
    let windows = wire(&common::fixture(
        "channels/email/fixtures/mime/windows-1252.eml",
    ));
    let mut batch = b"EHLO klien.example.id\r\nMAIL FROM:<rudi.hartono@example.id> BODY=8BITMIME\r\nRCPT TO:<tidak.ada@example.id>\r\nRCPT TO:<pengaduan@lapor.example.go.id>\r\nDATA\r\n".to_vec();
    smtp.write(&batch).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let lines = smtp.reply().await;
        got.push(lines.last().cloned().unwrap_or_default()[..3].to_string());
    }
    assert_eq!(got, ["250", "250", "550", "250", "354"]);
    batch = windows.clone();
    batch.extend_from_slice(b".\r\nQUIT\r\n");
    smtp.write(&batch).await;
    assert!(smtp.reply().await[0].starts_with("250 2.0.0"));
    assert!(smtp.reply().await[0].starts_with("221"));
    let docs = app.complaints().await;
    assert_eq!(docs.len(), 5);
    let windows_doc = expected(
        "windows-1252",
        "pengaduan-kota",
        "pengaduan@lapor.example.go.id",
        ind.clone(),
    );
    common::assert_json_matches(&docs[4], &windows_doc);

    // A client that drops mid-DATA: nothing written.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(b"EHLO klien.example.id\r\nMAIL FROM:<warga@example.id>\r\nRCPT TO:<pengaduan@lapor.example.go.id>\r\nDATA\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("354") {
        let n = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
        )
        .await
        .expect("in time")
        .expect("read");
        assert!(n > 0, "server closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    let partial = common::fixture("channels/email/fixtures/mime/encoded-word-subject.eml");
    stream
        .write_all(&partial[..partial.len() / 2])
        .await
        .expect("write");
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.stream_len().await, 5);

    // Bad sequence and unknown commands get their codes; the session survives.
    let mut smtp = Client::connect(&app).await;
    for (command, code) in [
        ("MAIL FROM:<warga@example.id>\r\n", "503"),
        ("HELO klien.example.id\r\n", "250"),
        ("DATA\r\n", "503"),
        ("TERBANG\r\n", "500"),
        ("RCPT TO:<pengaduan@lapor.example.go.id>\r\n", "503"),
        ("NOOP\r\n", "250"),
    ] {
        let lines = smtp.send(command.as_bytes()).await;
        assert!(lines[0].starts_with(code), "{command:?} -> {lines:?}");
    }
    // An over-long command line closes the session with 500 5.5.2.
    let long = format!("NOOP {}\r\n", "x".repeat(4096));
    let lines = smtp.send(long.as_bytes()).await;
    assert!(lines[0].starts_with("500 5.5.2"), "{lines:?}");

    // Commands pipelined behind STARTTLS were sent in the clear: refused, closed.
    let mut smtp = Client::connect(&app).await;
    smtp.send(b"EHLO klien.example.id\r\n").await;
    let lines = smtp
        .send(b"STARTTLS\r\nMAIL FROM:<penyusup@example.id>\r\n")
        .await;
    assert!(lines[0].starts_with("554 5.5.1"), "{lines:?}");
    assert!(smtp.reply().await.is_empty(), "connection closed");

    // Idle clients are closed with 421 4.4.2.
    let mut smtp = Client::connect(&app).await;
    let lines = tokio::time::timeout(Duration::from_secs(15), smtp.reply())
        .await
        .expect("closed in time");
    assert!(lines[0].starts_with("421 4.4.2"), "{lines:?}");

    assert_eq!(app.stream_len().await, 5);
    app.stop().await;
}

/// When attachments cannot be stored, the message is refused with a
/// temporary failure (`451 4.3.0`) so the sending server retries; a malformed
/// message is refused for good (`554 5.6.0`). Nothing is written.
#[tokio::test]
async fn storage_failure_is_451_and_malformed_is_554() {
    let tls = tempfile::tempdir().expect("tempdir");
    write_certificate(tls.path());
    // A blob directory under a regular file can never be created.
    let not_a_dir = tempfile::NamedTempFile::new().expect("temp file");
    let mut app = common::spawn_app(&config(tls.path(), &not_a_dir.path().join("blobs"))).await;
    let mut smtp = Client::connect(&app).await;
    smtp.write(b"EHLO klien.example.id\r\nMAIL FROM:<dewi.lestari@example.id>\r\nRCPT TO:<pengaduan@lapor.example.go.id>\r\nDATA\r\n").await;
    let mut last = Vec::new();
    for _ in 0..4 {
        last = smtp.reply().await;
    }
    assert!(last[0].starts_with("354"), "{last:?}");
    let mut message = wire(&common::fixture(
        "channels/email/fixtures/mime/phone-photo.eml",
    ));
    message.extend_from_slice(b".\r\n");
    let lines = smtp.send(&message).await;
    assert!(lines[0].starts_with("451 4.3.0"), "{lines:?}");

    // On the same session, a message nested deeper than the limit is a
    // permanent 554 5.6.0.
    smtp.write(
        b"MAIL FROM:<warga@example.id>\r\nRCPT TO:<pengaduan@lapor.example.go.id>\r\nDATA\r\n",
    )
    .await;
    for code in ["250", "250", "354"] {
        let lines = smtp.reply().await;
        assert!(lines[0].starts_with(code), "{lines:?}");
    }
    let mut nested = String::from(
        "From: warga@example.id\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n",
    );
    for i in 1..30 {
        nested.push_str(&format!(
            "--b{}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n",
            i - 1
        ));
    }
    nested.push_str("--b29\r\nContent-Type: text/plain\r\n\r\ndalam\r\n.\r\n");
    let lines = smtp.send(nested.as_bytes()).await;
    assert!(lines[0].starts_with("554 5.6.0"), "{lines:?}");
    assert_eq!(app.stream_len().await, 0);
    app.stop().await;
}

/// The per-sender limit applies to mail as to webhooks: a second message from
/// one citizen within the limit's minute is a temporary `451 4.7.1`, which the
/// sending server retries later; only the first is written.
#[tokio::test]
async fn the_per_sender_limit_applies_to_smtp() {
    let tls = tempfile::tempdir().expect("tempdir");
    write_certificate(tls.path());
    let blobs = tempfile::tempdir().expect("tempdir");
    let app = common::spawn_app(&format!(
        "[limits]\nper_sender_per_minute = 1\n{}",
        config(tls.path(), blobs.path())
    ))
    .await;
    let mut smtp = Client::connect(&app).await;
    smtp.send(b"EHLO klien.example.id\r\n").await;
    let mut answers = Vec::new();
    for n in 1..=2 {
        smtp.write(b"MAIL FROM:<yuni.astuti@example.id>\r\nRCPT TO:<pengaduan@lapor.example.go.id>\r\nDATA\r\n").await;
        for _ in 0..3 {
            smtp.reply().await;
        }
        let body = format!(
            "From: Yuni Astuti <yuni.astuti@example.id>\r\nTo: pengaduan@lapor.example.go.id\r\n\
             Subject: Lampu jalan mati\r\nMessage-ID: <aduan-{n}@example.id>\r\n\r\n\
             Lampu jalan di depan rumah nomor {n} mati sejak minggu lalu.\r\n.\r\n"
        );
        answers.push(smtp.send(body.as_bytes()).await.remove(0));
    }
    assert!(answers[0].starts_with("250"), "{answers:?}");
    assert!(answers[1].starts_with("451 4.7.1"), "{answers:?}");
    assert_eq!(app.stream_len().await, 1);
}

/// `[smtp]` without a certificate, keeping its own in `tls_dir`, and one
/// instance; `extra` goes into `[smtp]`.
fn config_without_certificate(tls_dir: &Path, blobs: &Path, extra: &str) -> String {
    format!(
        r#"
[smtp]
listen = "127.0.0.1:0"
hostname = "mx.uji.example.go.id"
tls_dir = "{tls_dir}"
{extra}

[blobs]
dir = "{blobs}"

[[instances]]
name = "pengaduan-kota"
kind = "smtp"
addresses = ["pengaduan@lapor.example.go.id"]
"#,
        tls_dir = tls_dir.display(),
        blobs = blobs.display(),
    )
}

/// The SHA-256 of the DER certificate in a PEM file, as a client sees it.
fn certificate_sha256(pem: &Path) -> String {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    let der = CertificateDer::from_pem_file(pem).expect("a PEM certificate");
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(der.as_ref()))
}

/// No certificate configured: the listener makes a self-signed one at its
/// first start (its key 0600) and offers STARTTLS with it; a client that
/// encrypts as sending servers do (opportunistically, without verifying)
/// completes the handshake and delivers. After a restart it is shown the
/// same certificate.
#[tokio::test]
async fn starttls_without_a_configured_certificate_is_self_signed_and_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    let data = tempfile::tempdir().expect("tempdir");
    let blobs = tempfile::tempdir().expect("tempdir");
    let tls_dir = data.path().join("smtp-tls");
    let config = config_without_certificate(&tls_dir, blobs.path(), "");
    let ns = common::unique("smtp-self-signed");
    let mut app = common::spawn_app_with(&config, &common::redis_url(), &ns).await;
    let key = tls_dir.join(aduan::smtp::tls::KEY_FILE);
    let cert = tls_dir.join(aduan::smtp::tls::CERT_FILE);
    assert_eq!(
        std::fs::metadata(&key)
            .expect("key kept")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let out = smtplib(
        "opportunistic",
        app.smtp_port(),
        &mime("plain-indonesian"),
        &tls_dir,
    )
    .await;
    assert!(
        out["features"]
            .as_array()
            .expect("features")
            .contains(&json!("starttls")),
        "{out}"
    );
    assert_eq!(out["starttls"], 220, "{out}");
    assert!(
        out["tls_version"]
            .as_str()
            .is_some_and(|v| v == "TLSv1.3" || v == "TLSv1.2"),
        "{out}"
    );
    assert_eq!(out["result"], 250, "{out}");
    let seen = out["certificate_sha256"]
        .as_str()
        .expect("a certificate")
        .to_string();
    assert_eq!(
        seen,
        certificate_sha256(&cert),
        "the kept certificate is served"
    );
    let docs = app.complaints().await;
    assert_eq!(docs.len(), 1);
    common::assert_json_matches(
        &docs[0],
        &expected(
            "plain-indonesian",
            "pengaduan-kota",
            "pengaduan@lapor.example.go.id",
            json!("ind"),
        ),
    );
    let (cert_pem, key_pem) = (
        std::fs::read(&cert).expect("cert"),
        std::fs::read(&key).expect("key"),
    );
    app.stop().await;
    // The spool directory of the namespace goes with the app.
    drop(app);

    let mut app = common::spawn_app_with(&config, &common::redis_url(), &ns).await;
    let out = smtplib("opportunistic", app.smtp_port(), &mime("reply"), &tls_dir).await;
    assert_eq!(
        (out["starttls"].clone(), out["result"].clone()),
        (json!(220), json!(250)),
        "{out}"
    );
    assert_eq!(
        out["certificate_sha256"],
        seen.as_str(),
        "the same certificate after a restart"
    );
    assert_eq!(std::fs::read(&cert).expect("cert"), cert_pem);
    assert_eq!(std::fs::read(&key).expect("key"), key_pem);
    let docs = app.complaints().await;
    assert_eq!(docs.len(), 2);
    assert_eq!(
        docs[1]["external_id"],
        expected_as_sent(
            "reply",
            "pengaduan-kota",
            "pengaduan@lapor.example.go.id",
            Value::Null
        )["external_id"]
    );
    app.stop().await;
}

/// `starttls = false`: no STARTTLS in the `EHLO` answer, the command is
/// refused, and no certificate is made.
#[tokio::test]
async fn starttls_can_be_turned_off() {
    let data = tempfile::tempdir().expect("tempdir");
    let blobs = tempfile::tempdir().expect("tempdir");
    let tls_dir = data.path().join("smtp-tls");
    let mut app = common::spawn_app(&config_without_certificate(
        &tls_dir,
        blobs.path(),
        "starttls = false",
    ))
    .await;
    let mut smtp = Client::connect(&app).await;
    let ehlo = smtp.send(b"EHLO klien.example.id\r\n").await;
    assert!(ehlo[0].starts_with("250"), "{ehlo:?}");
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    let refused = smtp.send(b"STARTTLS\r\n").await;
    assert!(refused[0].starts_with("454 4.7.0"), "{refused:?}");
    assert!(!tls_dir.exists());
    app.stop().await;
}
