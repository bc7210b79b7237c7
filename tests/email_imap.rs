//! The IMAP poller against a real Dovecot: the one `./scripts/test` starts
//! (`scripts/lib/dovecot.sh`, which exports `DOVECOT_*`), or a private one
//! started here when those are not set. Messages are delivered with Python's
//! imaplib (`tests/email_imap/mailbox.py`) into a mailbox of this test's own.
//! The test covers a message waiting at start, a message arriving while the
//! poller is in IDLE, `\Seen` set only after acceptance, and a gateway
//! restart that neither loses nor repeats a message.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Dovecot's connection settings, and the private server to stop, if any.
struct Dovecot {
    env: Vec<(String, String)>,
    private: Option<PathBuf>,
}

impl Dovecot {
    fn get(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{key} not set"))
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(dir) = &self.private {
            let _ = std::process::Command::new("bash")
                .arg("-c")
                .arg(
                    ". scripts/lib/redis.sh; . scripts/lib/dovecot.sh; stop_private_dovecot \"$1\"",
                )
                .arg("stop")
                .arg(dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status();
        }
    }
}

const KEYS: [&str; 4] = [
    "DOVECOT_IMAPS_PORT",
    "DOVECOT_USER",
    "DOVECOT_PASSWORD",
    "DOVECOT_CA",
];

fn dovecot(dir: &Path) -> Dovecot {
    if KEYS.iter().all(|k| std::env::var(k).is_ok()) {
        return Dovecot {
            env: KEYS
                .iter()
                .map(|k| (k.to_string(), std::env::var(k).unwrap_or_default()))
                .collect(),
            private: None,
        };
    }
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(". scripts/lib/redis.sh; . scripts/lib/dovecot.sh; start_private_dovecot \"$1\" >&2 && env")
        .arg("start")
        .arg(dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "dovecot did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| KEYS.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Dovecot {
        env,
        private: Some(dir.to_path_buf()),
    }
}

fn mailbox(server: &Dovecot, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/email_imap/mailbox.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .envs(server.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "mailbox.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics unless each message `uids` of `folder` is flagged `\Seen`.
fn assert_seen(server: &Dovecot, folder: &str, uids: &[&str]) {
    let flags: Value = serde_json::from_str(&mailbox(server, &["flags", folder])).expect("json");
    for uid in uids {
        assert!(
            flags[*uid]
                .as_array()
                .is_some_and(|f| f.contains(&json!("\\Seen"))),
            "uid {uid}: {flags}"
        );
    }
}

fn eml(name: &str) -> String {
    format!(
        "{}/channels/email/fixtures/mime/{name}.eml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn config(server: &Dovecot, folder: &str, blobs: &Path) -> String {
    config_with(server, folder, blobs, "")
}

fn config_with(server: &Dovecot, folder: &str, blobs: &Path, extra: &str) -> String {
    format!(
        r#"
[blobs]
dir = "{blobs}"

[[instances]]
name = "kotak-pengaduan"
kind = "imap"
host = "127.0.0.1"
port = {port}
ca_file = "{ca}"
username = "{user}"
password = "{password}"
mailbox = "{folder}"
address = "pengaduan@lapor.example.go.id"
poll_interval_seconds = 60
{extra}
"#,
        blobs = blobs.display(),
        port = server.get("DOVECOT_IMAPS_PORT"),
        ca = server.get("DOVECOT_CA"),
        user = server.get("DOVECOT_USER"),
        password = server.get("DOVECOT_PASSWORD"),
    )
}

/// The corpus document as the poller gives it: `raw` is the message as the
/// server stores it, with CRLF line ends.
fn expected(fixture: &str, language: Value) -> Value {
    let mut doc: Value = serde_json::from_slice(&common::fixture(&format!(
        "channels/email/fixtures/mime/{fixture}.json"
    )))
    .expect("expected document");
    let source = common::fixture(&format!("channels/email/fixtures/mime/{fixture}.eml"));
    let mut stored = Vec::with_capacity(source.len() + 64);
    for &b in &source {
        if b == b'\n' {
            stored.push(b'\r');
        }
        stored.push(b);
    }
    doc["raw"] = serde_json::to_value(aduan_adapter::Raw::from_bytes("message/rfc822", &stored))
        .expect("raw");
    doc["id"] = json!("*");
    doc["received_at"] = json!("*");
    doc["provider"] = json!("imap");
    doc["instance"] = json!("kotak-pengaduan");
    doc["recipient"] = json!("pengaduan@lapor.example.go.id");
    doc["language"] = language;
    doc
}

async fn wait_for_len(app: &common::TestApp, n: usize, within: Duration) {
    let start = Instant::now();
    while app.stream_len().await < n {
        assert!(
            start.elapsed() < within,
            "{n} complaints not written within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn imap_poller_against_dovecot() {
    // The poller's warnings (connection, login, TLS) explain a failure here.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("aduan_email=debug,aduan=info")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = tempfile::tempdir().expect("tempdir");
    let server = dovecot(dir.path());
    let folder = common::unique("uji").replace('-', "_");
    mailbox(&server, &["create", &folder]);
    mailbox(&server, &["append", &folder, &eml("plain-indonesian")]);

    let namespace = common::unique("imap");
    let toml = config(&server, &folder, blobs.path());
    let mut app = common::spawn_app_with(&toml, &common::redis_url(), &namespace).await;

    // The message waiting at start.
    wait_for_len(&app, 1, Duration::from_secs(20)).await;
    let docs = app.complaints().await;
    common::assert_json_matches(&docs[0], &expected("plain-indonesian", json!("ind")));

    // A message arriving while the poller waits in IDLE (its polling interval
    // is 60 s, so only IDLE brings it this fast).
    tokio::time::sleep(Duration::from_millis(500)).await;
    mailbox(&server, &["append", &folder, &eml("reply")]);
    wait_for_len(&app, 2, Duration::from_secs(10)).await;
    let docs = app.complaints().await;
    common::assert_json_matches(&docs[1], &expected("reply", json!("ind")));

    // Marked \Seen once accepted.
    assert_seen(&server, &folder, &["1", "2"]);

    // Restart: mail delivered while the gateway is down is taken once; a
    // message whose \Seen flag was lost is not taken again (the UID cursor).
    app.stop().await;
    mailbox(&server, &["append", &folder, &eml("encoded-word-subject")]);
    mailbox(&server, &["append", &folder, &eml("auto-reply")]);
    mailbox(&server, &["unseen", &folder, "1"]);
    let mut app = common::spawn_app_with(&toml, &common::redis_url(), &namespace).await;
    wait_for_len(&app, 3, Duration::from_secs(20)).await;
    // Give a repeat every chance to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let docs = app.complaints().await;
    assert_eq!(
        docs.len(),
        3,
        "nothing lost, nothing repeated, auto-reply not written"
    );
    common::assert_json_matches(&docs[2], &expected("encoded-word-subject", json!(null)));
    assert_seen(&server, &folder, &["3", "4"]);
    app.stop().await;
}

/// With `move_to`, an accepted message leaves the mailbox for the folder;
/// its attachments are in the blob store before that.
#[tokio::test]
async fn imap_poller_moves_accepted_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = tempfile::tempdir().expect("tempdir");
    let server = dovecot(dir.path());
    let folder = common::unique("masuk").replace('-', "_");
    let done = format!("{folder}_diterima");
    mailbox(&server, &["create", &folder]);
    mailbox(&server, &["create", &done]);
    mailbox(&server, &["append", &folder, &eml("phone-photo")]);
    let toml = config_with(
        &server,
        &folder,
        blobs.path(),
        &format!("move_to = \"{done}\""),
    );
    let mut app = common::spawn_app(&toml).await;
    wait_for_len(&app, 1, Duration::from_secs(20)).await;
    let docs = app.complaints().await;
    common::assert_json_matches(&docs[0], &expected("phone-photo", json!(null)));
    let key = docs[0]["attachments"][0]["storage_key"]
        .as_str()
        .expect("storage_key");
    assert!(blobs.path().join(key).is_file(), "photo stored");
    let start = Instant::now();
    while mailbox(&server, &["count", &folder]).trim() != "0" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "message not moved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mailbox(&server, &["count", &done]).trim(), "1");
    app.stop().await;
}

/// Without IDLE (`idle = false`, as for a server that does not offer it) the
/// poller checks the mailbox every `poll_interval_seconds`: a message appended
/// after the first round arrives on a later one.
#[tokio::test]
async fn imap_poller_polls_when_idle_is_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = tempfile::tempdir().expect("tempdir");
    let server = dovecot(dir.path());
    let folder = common::unique("poll").replace('-', "_");
    mailbox(&server, &["create", &folder]);
    mailbox(&server, &["append", &folder, &eml("plain-indonesian")]);
    let toml = config(&server, &folder, blobs.path()).replace(
        "poll_interval_seconds = 60",
        "poll_interval_seconds = 1\nidle = false",
    );
    let mut app = common::spawn_app(&toml).await;
    wait_for_len(&app, 1, Duration::from_secs(20)).await;
    mailbox(&server, &["append", &folder, &eml("reply")]);
    wait_for_len(&app, 2, Duration::from_secs(10)).await;
    let docs = app.complaints().await;
    common::assert_json_matches(&docs[0], &expected("plain-indonesian", json!("ind")));
    common::assert_json_matches(&docs[1], &expected("reply", json!("ind")));
    app.stop().await;
}
