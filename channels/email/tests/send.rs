//! The email sender against a real SMTP server on 127.0.0.1 (aiosmtpd, run
//! by `tests/smtp_sink.py`): the message it writes (every header, the body
//! after decoding), plain SMTP, STARTTLS, SMTPS and AUTH, and what the
//! relay's refusals, a bad certificate and a closed port become.
//!
//! The server is Python's aiosmtpd: `ADUAN_PYTHON` names the interpreter
//! that imports it (`scripts/test` installs Debian's python3-aiosmtpd and
//! sets it); without it `python3`, then `/usr/bin/python3`, are tried. When
//! none can import aiosmtpd the tests fail, saying so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use aduan_adapter::{
    Channel, Outgoing, ReplyRoute, ReplySender, Retry, RouteKind, SendError, Sent, Timestamp,
};
use aduan_email::{EmailSendConfig, EmailSender};
use mail_parser::{HeaderValue, MessageParser};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const FROM: &str = "Layanan Aduan PDAM <aduan@pdam.example.id>";
const CITIZEN: &str = "sri.wahyuni@example.id";
const REPLY_ID: &str = "01JD8Z5K3M9QX2ABCDEFGHJKMN";
const PARENT: &str = "CAK7pRw3=Jx9+Yq@mail.example.id";
const THREAD: [&str; 2] = [
    "20260701093012.4F2A1@mail.example.id",
    "balasan-1.0@pdam.example.id",
];
const TEXT: &str = "Terima kasih, Bu Sri — laporan Anda sudah kami terima ✓\n\
    Petugas kami akan memeriksa pipa di Jl. Cempaka No. 12 besok pagi.\n\
    \n\
    Salam,\nLayanan Aduan PDAM";
const USER: &str = "aduan@pdam.example.id";
const PASSWORD: &str = "sandi-relay-Rahasia-2026";

// ---------------------------------------------------------------------------
// The SMTP server

/// The Python interpreter that can import aiosmtpd.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let candidates: Vec<String> = match std::env::var("ADUAN_PYTHON") {
            Ok(p) if !p.is_empty() => vec![p],
            _ => vec!["python3".to_string(), "/usr/bin/python3".to_string()],
        };
        for candidate in &candidates {
            let ok = std::process::Command::new(candidate)
                .args(["-c", "import aiosmtpd"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return candidate.clone();
            }
        }
        panic!(
            "these tests need Python's aiosmtpd, which none of {candidates:?} can import: \
             install Debian's python3-aiosmtpd (scripts/test does) or `pip install aiosmtpd`, \
             and point ADUAN_PYTHON at that interpreter"
        )
    })
}

/// One running sink: its port and the folder it writes messages to.
struct Sink {
    port: u16,
    dir: tempfile::TempDir,
    // Killed when the test ends; closing its stdin stops it too.
    _child: Child,
}

/// One message the sink took.
#[derive(Debug)]
struct Received {
    raw: Vec<u8>,
    envelope: Value,
}

impl Received {
    fn head(&self) -> String {
        let raw = String::from_utf8_lossy(&self.raw);
        raw.split("\r\n\r\n").next().unwrap_or_default().to_string()
    }

    /// Every header line as written, unfolded.
    fn header_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for line in self.head().split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = lines.last_mut() {
                    last.push(' ');
                    last.push_str(line.trim_start());
                }
            } else {
                lines.push(line.to_string());
            }
        }
        lines
    }

    /// The one header `name` as written (unfolded), without its name.
    fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let found: Vec<String> = self
            .header_lines()
            .into_iter()
            .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
            .collect();
        assert!(found.len() <= 1, "{name} appears twice: {found:?}");
        found.into_iter().next()
    }
}

impl Sink {
    async fn start(args: &[&str]) -> Sink {
        let dir = tempfile::tempdir().expect("temporary folder");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP sink");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let read = tokio::time::timeout(
            Duration::from_secs(20),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.start_kill();
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), stderr.read_to_string(&mut err))
                        .await;
            }
            panic!("the SMTP sink did not start ({read:?}, printed {line:?}): {err}");
        };
        Sink {
            port,
            dir,
            _child: child,
        }
    }

    /// Every message received so far, in order.
    fn received(&self) -> Vec<Received> {
        let mut out = Vec::new();
        for n in 1.. {
            let json = self.dir.path().join(format!("{n}.json"));
            let Ok(envelope) = std::fs::read(&json) else {
                break;
            };
            out.push(Received {
                raw: std::fs::read(self.dir.path().join(format!("{n}.eml"))).expect("message"),
                envelope: serde_json::from_slice(&envelope).expect("envelope"),
            });
        }
        out
    }

    fn only(&self) -> Received {
        let mut all = self.received();
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1 in `dir`: (cert, key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    (cert, key)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

// ---------------------------------------------------------------------------
// Senders, routes and messages

fn sender(config: Value) -> EmailSender {
    let config: EmailSendConfig = serde_json::from_value(config).expect("config");
    EmailSender::new(config).expect("sender")
}

fn plain(port: u16) -> Value {
    json!({
        "relay_host": "127.0.0.1",
        "relay_port": port,
        "tls": "none",
        "from": FROM,
        "timeout_seconds": 5,
    })
}

fn route() -> ReplyRoute {
    ReplyRoute {
        complaint_id: "01JD8YQ4W2C7N5R3T6V8X0Z1A2".to_string(),
        instance: "pdam-email".to_string(),
        channel: Channel::Email,
        provider: "smtp".to_string(),
        kind: RouteKind::Direct,
        to: CITIZEN.to_string(),
        message_id: Some(PARENT.to_string()),
        recipient: Some("pengaduan@pdam.example.id".to_string()),
        subject: Some("Air PDAM mati tiga hari".to_string()),
        references: THREAD.iter().map(|s| s.to_string()).collect(),
        last_inbound_at: now(),
    }
}

fn now() -> Timestamp {
    Timestamp(chrono::Utc::now())
}

fn outgoing<'a>(route: &'a ReplyRoute, text: Option<&'a str>) -> Outgoing<'a> {
    Outgoing {
        reply_id: REPLY_ID,
        route,
        text,
        template: None,
        subject: None,
        part: 0,
        parts: 1,
        last_inbound_at: Some(route.last_inbound_at),
        now: now(),
    }
}

async fn send(sender: &EmailSender, out: &Outgoing<'_>) -> Result<Sent, SendError> {
    tokio::time::timeout(Duration::from_secs(30), sender.send(out))
        .await
        .expect("the send finishes")
}

fn bracketed(id: &str) -> String {
    format!("<{id}>")
}

// ---------------------------------------------------------------------------
// The message

#[tokio::test]
async fn a_reply_answers_the_citizens_message_in_its_thread() {
    let sink = Sink::start(&[]).await;
    let sender = sender(plain(sink.port));
    let route = route();
    let sent = send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect("sent");
    let id = format!("{REPLY_ID}.0@pdam.example.id");
    assert_eq!(sent.provider_message_id, id);

    let got = sink.only();
    assert_eq!(got.envelope["mail_from"], "aduan@pdam.example.id");
    assert_eq!(got.envelope["rcpt_tos"], json!([CITIZEN]));
    assert_eq!(got.envelope["encrypted"], false);
    assert_eq!(got.envelope["user"], Value::Null);

    // The headers as written.
    assert_eq!(got.header("Message-ID"), Some(bracketed(&id)));
    assert_eq!(got.header("In-Reply-To"), Some(bracketed(PARENT)));
    assert_eq!(
        got.header("References"),
        Some(format!("<{}> <{}> <{PARENT}>", THREAD[0], THREAD[1]))
    );
    assert_eq!(
        got.header("Subject").as_deref(),
        Some("Re: Air PDAM mati tiga hari")
    );
    assert_eq!(got.header("To").as_deref(), Some(CITIZEN));
    assert_eq!(
        got.header("From").as_deref(),
        Some("\"Layanan Aduan PDAM\" <aduan@pdam.example.id>")
    );
    assert_eq!(
        got.header("Content-Type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        got.header("Content-Transfer-Encoding").as_deref(),
        Some("quoted-printable")
    );
    assert_eq!(got.header("MIME-Version").as_deref(), Some("1.0"));
    assert!(got.raw.is_ascii(), "the message travels as 7-bit");

    // And as a mail client reads them.
    let parsed = MessageParser::default().parse(&got.raw).expect("parses");
    assert_eq!(parsed.message_id(), Some(id.as_str()));
    assert_eq!(parsed.in_reply_to().as_text(), Some(PARENT));
    match parsed.references() {
        HeaderValue::TextList(ids) => {
            assert_eq!(
                ids.iter().map(|s| s.as_ref()).collect::<Vec<&str>>(),
                [THREAD[0], THREAD[1], PARENT]
            )
        }
        other => panic!("References: {other:?}"),
    }
    let from = parsed.from().and_then(|f| f.first()).expect("From");
    assert_eq!(from.name(), Some("Layanan Aduan PDAM"));
    assert_eq!(from.address(), Some("aduan@pdam.example.id"));
    let date = parsed.date().expect("Date");
    let age = chrono::Utc::now().timestamp() - date.to_timestamp();
    assert!((0..60).contains(&age), "Date {date} is {age} s old");
    let body = parsed.body_text(0).expect("body");
    assert_eq!(body.replace("\r\n", "\n").trim_end(), TEXT);
}

#[tokio::test]
async fn the_replys_own_subject_and_a_message_without_thread() {
    let sink = Sink::start(&[]).await;
    let sender = sender(plain(sink.port));
    let mut route = route();
    route.message_id = None;
    route.references.clear();
    route.subject = None;
    let subject = "Tindak lanjut: pipa bocor di Jl. Cempaka — selesai";
    let mut out = outgoing(&route, Some("Pipa sudah diperbaiki."));
    out.subject = Some(subject);
    send(&sender, &out).await.expect("sent");
    // Without a subject of the reply or the complaint, the default one.
    out.subject = None;
    out.reply_id = "01JD8Z5K3M9QX2ABCDEFGHJKMP";
    send(&sender, &out).await.expect("sent");

    let got = sink.received();
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(g.header("In-Reply-To"), None);
        assert_eq!(g.header("References"), None);
    }
    let first = MessageParser::default().parse(&got[0].raw).expect("parses");
    assert_eq!(first.subject(), Some(subject));
    let raw_subject = got[0].header("Subject").expect("Subject");
    assert!(
        raw_subject.is_ascii() && raw_subject.contains("=?utf-8?"),
        "non-ASCII subjects are RFC 2047 words: {raw_subject}"
    );
    assert_eq!(got[1].header("Subject").as_deref(), Some("Re: Aduan Anda"));
    assert_eq!(
        first.body_text(0).expect("body").trim_end(),
        "Pipa sudah diperbaiki."
    );
    assert_eq!(
        got[0].header("Content-Transfer-Encoding").as_deref(),
        Some("7bit")
    );
}

#[tokio::test]
async fn a_subject_already_answering_is_not_prefixed_again() {
    let sink = Sink::start(&[]).await;
    let sender = sender(plain(sink.port));
    let mut route = route();
    route.subject = Some("RE: Lampu jalan padam".to_string());
    send(&sender, &outgoing(&route, Some("Sudah kami catat.")))
        .await
        .expect("sent");
    assert_eq!(
        sink.only().header("Subject").as_deref(),
        Some("RE: Lampu jalan padam")
    );
}

#[tokio::test]
async fn the_same_part_sent_again_keeps_its_message_id() {
    let sink = Sink::start(&[]).await;
    let sender = sender(plain(sink.port));
    let route = route();
    let mut out = outgoing(&route, Some(TEXT));
    let a = send(&sender, &out).await.expect("first");
    let b = send(&sender, &out).await.expect("again");
    out.part = 1;
    out.parts = 2;
    let c = send(&sender, &out).await.expect("second part");
    assert_eq!(a, b);
    assert_eq!(
        c.provider_message_id,
        format!("{REPLY_ID}.1@pdam.example.id")
    );

    // A reply id that cannot go into a header as is becomes a digest.
    out.reply_id = "balasan/2026 07 <1>";
    out.part = 0;
    let d = send(&sender, &out).await.expect("odd id");
    let (local, domain) = d.provider_message_id.split_once('@').expect("@");
    assert_eq!(domain, "pdam.example.id");
    let parts: Vec<&str> = local.split('.').collect();
    assert_eq!(parts.len(), 3, "{local}");
    assert_eq!(parts[0], "r");
    assert_eq!(parts[1].len(), 32);
    assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(parts[2], "0");

    let got = sink.received();
    assert_eq!(
        got.len(),
        4,
        "each send is delivered, over the pooled connection"
    );
    let ids: Vec<Option<String>> = got.iter().map(|g| g.header("Message-ID")).collect();
    assert_eq!(
        ids,
        [&a, &b, &c, &d].map(|s| Some(bracketed(&s.provider_message_id)))
    );
}

#[tokio::test]
async fn message_ids_unfit_for_a_header_are_left_out() {
    let sink = Sink::start(&[]).await;
    let mut config = plain(sink.port);
    config["message_id_domain"] = json!("balas.pdam.example.id");
    let sender = sender(config);
    let mut route = route();
    route.message_id = Some("rusak\r\nBcc: korban@example.id".to_string());
    route.references = vec![
        "<ok-1@mail.example.id>".to_string(),
        "dua kata@x".to_string(),
    ];
    let sent = send(&sender, &outgoing(&route, Some("Baik.")))
        .await
        .expect("sent");
    assert_eq!(
        sent.provider_message_id,
        format!("{REPLY_ID}.0@balas.pdam.example.id")
    );
    let got = sink.only();
    assert_eq!(got.header("In-Reply-To"), None);
    assert_eq!(
        got.header("References").as_deref(),
        Some("<ok-1@mail.example.id>")
    );
    assert_eq!(got.header("Bcc"), None);
    assert_eq!(got.envelope["rcpt_tos"], json!([CITIZEN]));
}

// ---------------------------------------------------------------------------
// Encryption and login

#[tokio::test]
async fn starttls_with_a_login() {
    let certs = tempfile::tempdir().expect("folder");
    let (cert, key) = certificate(certs.path());
    let sink = Sink::start(&[
        "--starttls",
        path(&cert),
        path(&key),
        "--auth",
        USER,
        PASSWORD,
    ])
    .await;
    let sender = sender(json!({
        "relay_host": "127.0.0.1",
        "relay_port": sink.port,
        "from": FROM,
        "username": USER,
        "password": PASSWORD,
        "accept_invalid_certs": true,
        "timeout_seconds": 5,
    }));
    let route = route();
    send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect("sent");
    let got = sink.only();
    assert_eq!(got.envelope["encrypted"], true);
    assert_eq!(got.envelope["user"], USER);
    assert_eq!(
        MessageParser::default()
            .parse(&got.raw)
            .and_then(|m| m.body_text(0).map(|b| b.replace("\r\n", "\n")))
            .as_deref()
            .map(str::trim_end),
        Some(TEXT)
    );
}

#[tokio::test]
async fn starttls_trusting_a_ca_file() {
    let certs = tempfile::tempdir().expect("folder");
    let (cert, key) = certificate(certs.path());
    let sink = Sink::start(&["--starttls", path(&cert), path(&key)]).await;
    let sender = sender(json!({
        "relay_host": "localhost",
        "relay_port": sink.port,
        "from": FROM,
        "ca_file": path(&cert),
        "timeout_seconds": 5,
    }));
    let route = route();
    send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect("sent");
    assert_eq!(sink.only().envelope["encrypted"], true);
}

#[tokio::test]
async fn an_untrusted_certificate_stops_the_send() {
    let certs = tempfile::tempdir().expect("folder");
    let (cert, key) = certificate(certs.path());
    let sink = Sink::start(&["--starttls", path(&cert), path(&key)]).await;
    let sender = sender(json!({
        "relay_host": "localhost",
        "relay_port": sink.port,
        "from": FROM,
        "timeout_seconds": 5,
    }));
    let route = route();
    let err = send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect_err("refused");
    assert_eq!(err.code, "network", "{err:?}");
    assert_eq!(err.retry, Retry::Later(None));
    assert!(err.message.contains("TLS"), "{err:?}");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_relay_without_starttls_gets_nothing() {
    let sink = Sink::start(&[]).await;
    let sender = sender(json!({
        "relay_host": "127.0.0.1",
        "relay_port": sink.port,
        "from": FROM,
        "username": USER,
        "password": PASSWORD,
        "accept_invalid_certs": true,
        "timeout_seconds": 5,
    }));
    let route = route();
    let err = send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect_err("refused");
    assert_eq!(err.code, "smtp_unsupported", "{err:?}");
    assert!(err.message.contains("STARTTLS"), "{err:?}");
    assert!(!err.message.contains(PASSWORD));
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn tls_from_the_first_byte() {
    let certs = tempfile::tempdir().expect("folder");
    let (cert, key) = certificate(certs.path());
    let sink = Sink::start(&["--tls", path(&cert), path(&key), "--auth", USER, PASSWORD]).await;
    let sender = sender(json!({
        "relay_host": "localhost",
        "relay_port": sink.port,
        "tls": "tls",
        "from": FROM,
        "username": USER,
        "password": PASSWORD,
        "ca_file": path(&cert),
        "timeout_seconds": 5,
    }));
    let route = route();
    send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect("sent");
    let got = sink.only();
    assert_eq!(got.envelope["encrypted"], true);
    assert_eq!(got.envelope["user"], USER);
}

#[tokio::test]
async fn a_wrong_password_is_permanent_and_not_repeated() {
    let certs = tempfile::tempdir().expect("folder");
    let (cert, key) = certificate(certs.path());
    let sink = Sink::start(&[
        "--starttls",
        path(&cert),
        path(&key),
        "--auth",
        USER,
        PASSWORD,
    ])
    .await;
    let wrong = "sandi-yang-Salah-2026";
    let sender = sender(json!({
        "relay_host": "127.0.0.1",
        "relay_port": sink.port,
        "from": FROM,
        "username": USER,
        "password": wrong,
        "accept_invalid_certs": true,
        "timeout_seconds": 5,
    }));
    let route = route();
    let err = send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect_err("refused");
    assert_eq!(err.code, "smtp_535", "{err:?}");
    assert!(err.is_permanent());
    assert!(err.message.starts_with("535 "), "{err:?}");
    assert!(!err.message.contains(wrong) && !err.message.contains(PASSWORD));
    assert!(sink.received().is_empty());
}

// ---------------------------------------------------------------------------
// Refusals and failures

#[tokio::test]
async fn a_451_is_temporary_with_the_relays_words() {
    let sink = Sink::start(&["--temp-fail", "sibuk@example.id"]).await;
    let sender = sender(plain(sink.port));
    let mut route = route();
    route.to = "sibuk@example.id".to_string();
    let err = send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect_err("refused");
    assert_eq!(err.code, "smtp_451", "{err:?}");
    assert_eq!(err.retry, Retry::Later(None));
    assert!(!err.opt_out);
    assert!(
        err.message.starts_with("451 ") && err.message.contains("sementara tidak tersedia"),
        "{err:?}"
    );
    assert!(sink.received().is_empty());

    // The connection the refusal left behind still serves the next message.
    route.to = CITIZEN.to_string();
    send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect("sent");
    assert_eq!(sink.only().envelope["rcpt_tos"], json!([CITIZEN]));
}

#[tokio::test]
async fn a_550_is_permanent_with_the_relays_words() {
    let sink = Sink::start(&["--perm-fail", "tidak.ada@example.id"]).await;
    let sender = sender(plain(sink.port));
    let mut route = route();
    route.to = "tidak.ada@example.id".to_string();
    let err = send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect_err("refused");
    assert_eq!(err.code, "smtp_550", "{err:?}");
    assert!(err.is_permanent());
    assert!(
        err.message.starts_with("550 ")
            && err
                .message
                .contains("Recipient address rejected: User unknown"),
        "{err:?}"
    );
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_closed_port_is_a_network_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let sender = sender(plain(port));
    let route = route();
    let err = send(&sender, &outgoing(&route, Some(TEXT)))
        .await
        .expect_err("nothing listens");
    assert_eq!(err.code, "network", "{err:?}");
    assert_eq!(err.retry, Retry::Later(None));
    assert!(
        err.message.contains(&format!("127.0.0.1:{port}")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_bad_address_or_no_text_fails_without_connecting() {
    // Nothing listens here: a connection attempt would be a network failure.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let sender = sender(plain(port));
    let mut route = route();
    for to in ["bukan-alamat", "", "sri@", "sri wahyuni@example.id"] {
        route.to = to.to_string();
        let err = send(&sender, &outgoing(&route, Some(TEXT)))
            .await
            .expect_err("no address");
        assert_eq!(err.code, "invalid_recipient", "{to}: {err:?}");
        assert!(err.is_permanent());
    }
    route.to = CITIZEN.to_string();
    let err = send(&sender, &outgoing(&route, None))
        .await
        .expect_err("no text");
    assert_eq!(err.code, "missing_text");
    assert!(err.is_permanent());
}

#[test]
fn a_sender_outliving_its_runtime_is_dropped_quietly() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (sender, sink) = runtime.block_on(async {
        let sink = Sink::start(&[]).await;
        let sender = sender(plain(sink.port));
        let route = route();
        send(&sender, &outgoing(&route, Some(TEXT)))
            .await
            .expect("sent");
        (sender, sink)
    });
    assert_eq!(sink.received().len(), 1);
    drop(runtime);
    // Its pooled connection would be closed on a task; there is no runtime left.
    drop(sender);
    drop(sink);
}

// ---------------------------------------------------------------------------
// Settings

fn build(config: Value) -> Result<EmailSender, String> {
    let config: EmailSendConfig =
        serde_json::from_value(config).map_err(|e| format!("config: {e}"))?;
    EmailSender::new(config)
}

#[test]
fn settings_are_checked() {
    let base = json!({"relay_host": "smtp.pdam.example.id", "from": FROM});
    let with = |extra: Value| {
        let mut c = base.clone();
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };

    // Defaults: STARTTLS on 587; the port follows the TLS mode.
    let s = build(base.clone()).expect("valid");
    let debug = format!("{s:?}");
    assert!(debug.contains("smtp.pdam.example.id:587"), "{debug}");
    assert!(debug.contains("Starttls"), "{debug}");
    assert!(format!("{:?}", build(with(json!({"tls": "tls"}))).expect("tls")).contains(":465"));
    assert!(format!("{:?}", build(with(json!({"tls": "none"}))).expect("none")).contains(":25"));
    assert!(
        format!(
            "{:?}",
            build(with(json!({"relay_port": 2525}))).expect("port")
        )
        .contains(":2525")
    );
    let s = build(with(json!({"username": USER, "password": PASSWORD}))).expect("login");
    assert!(!format!("{s:?}").contains(PASSWORD));

    let refused = |extra: Value, why: &str| {
        let err = build(with(extra.clone())).expect_err(&format!("{extra} refused"));
        assert!(err.contains(why), "{extra}: {err}");
    };
    refused(json!({"relay": "x"}), "unknown field");
    refused(json!({"tls": "ssl"}), "unknown variant");
    refused(json!({"username": USER}), "both username and password");
    refused(json!({"password": PASSWORD}), "both username and password");
    refused(
        json!({"tls": "none", "username": USER, "password": PASSWORD}),
        "unencrypted",
    );
    refused(
        json!({"tls": "none", "accept_invalid_certs": true}),
        "need tls",
    );
    refused(json!({"from": "Layanan Aduan PDAM"}), "not a mailbox");
    refused(json!({"from": "aduan@"}), "not a mailbox");
    refused(
        json!({"relay_host": "smtp://smtp.pdam.example.id"}),
        "relay_host",
    );
    refused(json!({"relay_host": " "}), "relay_host");
    refused(
        json!({"relay_host": "smtp.pdam.example.id:587"}),
        "relay_host",
    );
    build(with(json!({"relay_host": "::1", "tls": "none"}))).expect("IPv6 address");
    refused(json!({"relay_port": 0}), "relay_port");
    refused(json!({"timeout_seconds": 0}), "timeout_seconds");
    refused(
        json!({"message_id_domain": "pdam example.id"}),
        "message_id_domain",
    );
    refused(
        json!({"ca_file": "/nonexistent/aduan-ca.pem"}),
        "cannot read ca_file",
    );

    // On loopback a relay without TLS may take a login.
    build(json!({
        "relay_host": "127.0.0.1", "tls": "none", "from": FROM,
        "username": USER, "password": PASSWORD,
    }))
    .expect("loopback relay");
}
