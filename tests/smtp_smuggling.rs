//! SMTP smuggling: a message that hides a second transaction behind an
//! end-of-data marker another server would read differently (`\n.\n`,
//! `\r.\r`, `\n.\r\n`, `\r\n.\n`, `\r\n.\r`) stays one message here: only
//! `<CRLF>.<CRLF>` ends DATA, and the hidden commands never run. Command lines
//! with a bare CR or LF are refused with `521` and the connection closed.
//! Internationalized addresses are taken with SMTPUTF8 (RFC 6531).

mod common;

use common::smtp::Client;

const CONFIG: &str = r#"
[smtp]
listen = "127.0.0.1:0"
hostname = "mx.uji.example.go.id"
idle_timeout_seconds = 5

[[instances]]
name = "pengaduan-kota"
kind = "smtp"
domains = ["lapor.example.go.id"]
"#;

fn message(from: &str, smuggled_end: &str, n: usize) -> String {
    format!(
        "From: {from}\r\nTo: aduan@lapor.example.go.id\r\nSubject: Jalan rusak {n}\r\n\
         Message-ID: <asli-{n}@example.id>\r\n\r\n\
         Jalan di depan pasar rusak parah.{smuggled_end}MAIL FROM:<palsu@example.id>\r\n\
         RCPT TO:<aduan@lapor.example.go.id>\r\nDATA\r\nFrom: palsu@example.id\r\n\
         Subject: Pesan selundupan\r\nMessage-ID: <selundupan-{n}@example.id>\r\n\r\n\
         Ini tidak boleh menjadi aduan.\r\n.\r\n"
    )
}

#[tokio::test]
async fn every_smuggling_variant_stays_one_message() {
    let app = common::spawn_app(CONFIG).await;
    let mut client = Client::connect(&app).await;
    client.send(b"EHLO klien.example.id\r\n").await;
    let variants = ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r"];
    for (n, end) in variants.iter().enumerate() {
        let reply = client
            .send(
                b"MAIL FROM:<warga@example.id>\r\nRCPT TO:<aduan@lapor.example.go.id>\r\nDATA\r\n",
            )
            .await;
        assert!(reply[0].starts_with("250"), "{end:?}: {reply:?}");
        client.reply().await;
        let start = client.reply().await;
        assert!(start[0].starts_with("354"), "{end:?}: {start:?}");
        let answer = client
            .send(message("Warga <warga@example.id>", end, n).as_bytes())
            .await;
        assert!(answer[0].starts_with("250"), "{end:?}: {answer:?}");
        // Nothing was left over to run as commands: the next command is answered alone.
        let noop = client.send(b"NOOP\r\n").await;
        assert_eq!(noop, ["250 2.0.0 Ok"], "{end:?}");
    }
    let docs = app.complaints().await;
    assert_eq!(docs.len(), variants.len(), "one complaint per message");
    for doc in &docs {
        assert_eq!(doc["sender"]["id"], "mailto:warga@example.id", "{doc}");
        assert!(
            doc["text"]
                .as_str()
                .is_some_and(|t| t.contains("Ini tidak boleh menjadi aduan")),
            "the smuggled part is content of the one message: {doc}"
        );
    }
}

#[tokio::test]
async fn bare_line_endings_in_commands_close_the_connection() {
    let app = common::spawn_app(CONFIG).await;
    for command in [
        &b"EHLO klien.example.id\n"[..],
        b"EHLO klien.example.id\r",
        b"EHLO klien\rexample.id\r\n",
    ] {
        let mut client = Client::connect(&app).await;
        let mut bytes = command.to_vec();
        if !bytes.ends_with(b"\n") {
            // A bare CR at the end: the line ends at the next LF the client sends.
            bytes.extend_from_slice(b"NOOP\r\n");
        }
        let reply = client.send(&bytes).await;
        assert!(reply[0].starts_with("521 5.5.2"), "{command:?}: {reply:?}");
        assert!(client.closed().await, "{command:?}: connection closed");
    }
    // After a clean EHLO, a MAIL line with a bare LF inside is refused the same way.
    let mut client = Client::connect(&app).await;
    client.send(b"EHLO klien.example.id\r\n").await;
    let reply = client
        .send(b"MAIL FROM:<warga@example.id>\nRCPT TO:<aduan@lapor.example.go.id>\r\n")
        .await;
    assert!(reply[0].starts_with("521 5.5.2"), "{reply:?}");
    assert!(client.closed().await);
    assert_eq!(app.stream_len().await, 0);
}

#[tokio::test]
async fn internationalized_addresses_are_taken_with_smtputf8() {
    let app = common::spawn_app(CONFIG).await;
    let mut client = Client::connect(&app).await;
    let ehlo = client.send(b"EHLO klien.example.id\r\n").await;
    assert!(ehlo.iter().any(|l| l.ends_with("SMTPUTF8")), "{ehlo:?}");
    // Without SMTPUTF8 a UTF-8 address is a syntax error.
    let refused = client
        .send("MAIL FROM:<dédé@contoh.id>\r\n".as_bytes())
        .await;
    assert!(refused[0].starts_with("501"), "{refused:?}");
    let reply = client
        .send("MAIL FROM:<dédé@contoh.id> SMTPUTF8\r\nRCPT TO:<pengaduan@lapor.example.go.id>\r\nDATA\r\n".as_bytes())
        .await;
    assert!(reply[0].starts_with("250"), "{reply:?}");
    assert!(client.reply().await[0].starts_with("250"));
    assert!(client.reply().await[0].starts_with("354"));
    let body = "From: Dédé Suryadi <dédé@contoh.id>\r\nTo: pengaduan@lapor.example.go.id\r\n\
                Subject: Sampah menumpuk\r\nMessage-ID: <utf8-1@contoh.id>\r\n\
                Content-Type: text/plain; charset=utf-8\r\n\r\n\
                Sampah menumpuk di depan balai desa sejak seminggu.\r\n.\r\n";
    let answer = client.send(body.as_bytes()).await;
    assert!(answer[0].starts_with("250"), "{answer:?}");
    let docs = app.complaints().await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["sender"]["email"], "dédé@contoh.id", "{}", docs[0]);
}
