//! Idle-connection exhaustion: a flood of connections that never send a
//! byte, far past the listener's cap, while `/healthz` and a signed webhook
//! keep being answered; the silent connections are closed after the
//! first-byte timeout, idle keep-alive ones after the idle timeout, and the
//! oldest idle one makes room when the cap is reached.

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const APP_SECRET: &str = "rahasia-aplikasi-uji";

fn config() -> String {
    format!(
        "[limits]\nmax_connections = 40\nfirst_byte_timeout_ms = 600\nidle_timeout_ms = 1500\n\n\
         [[instances]]\nname = \"wa-idle\"\nkind = \"whatsapp\"\napp_secret = \"{APP_SECRET}\"\nverify_token = \"v\"\n"
    )
}

async fn metric(app: &common::TestApp, limit: &str) -> u64 {
    let text = reqwest::get(app.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| {
            l.starts_with("aduan_limit_exceeded_total{")
                && l.contains(&format!("limit=\"{limit}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// True when the server closed `stream` (read returns end of file).
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn a_flood_of_silent_connections_does_not_starve_the_gateway() {
    let app = common::spawn_app(&config()).await;
    let addr = app.running.as_ref().expect("running").addr;
    let mut flood = Vec::new();
    for _ in 0..400 {
        flood.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Each answer on a fresh connection: the cap makes room for it.
    for _ in 0..5 {
        let fresh = reqwest::Client::new();
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            fresh.get(app.url("/healthz")).send(),
        )
        .await
        .expect("healthz answered in time")
        .expect("healthz");
        assert_eq!(resp.status(), 200);
    }
    let body = common::fixture("channels/meta/fixtures/whatsapp/text.json");
    let signature = format!(
        "sha256={}",
        hex::encode(aduan_adapter::verify::hmac_sha256(
            APP_SECRET.as_bytes(),
            &body
        ))
    );
    let resp = reqwest::Client::new()
        .post(app.url("/webhooks/whatsapp/wa-idle"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.stream_len().await,
        1,
        "the webhook's complaint is stored"
    );
    // Each connection past the cap closed an idle one, unless the first-byte
    // timeout had already closed some while the flood was still connecting.
    let made_room = metric(&app, "connections").await + metric(&app, "first_byte_timeout").await;
    assert!(made_room >= 360, "the cap made room: {made_room}");

    // The silent ones still open are closed once the first-byte timeout passes.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut open = 0;
    for stream in &mut flood {
        if !closed(stream).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "every silent connection was closed");
    assert!(metric(&app, "first_byte_timeout").await > 0);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = common::spawn_app(&config()).await;
    let addr = app.running.as_ref().expect("running").addr;
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut answer = [0u8; 256];
    let n = idle.read(&mut answer).await.expect("read");
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    // Kept alive, then closed after the idle timeout.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "closed within 5 s");
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "not before the idle timeout"
    );
    assert!(metric(&app, "idle_timeout").await > 0);
}

#[tokio::test]
async fn at_the_smtp_session_cap_the_oldest_idle_session_makes_room() {
    let app = common::spawn_app(
        "[smtp]\nlisten = \"127.0.0.1:0\"\nmax_sessions = 3\n\n\
         [[instances]]\nname = \"surel-idle\"\nkind = \"smtp\"\ndomains = [\"lapor.example.go.id\"]\n",
    )
    .await;
    let addr = app
        .running
        .as_ref()
        .and_then(|r| r.smtp_addr)
        .expect("smtp listener");
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut greeting = [0u8; 128];
        let n = s.read(&mut greeting).await.expect("greeting");
        assert!(greeting[..n].starts_with(b"220"));
        sessions.push(s);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut fourth = TcpStream::connect(addr).await.expect("connect");
    let mut greeting = [0u8; 128];
    let n = fourth.read(&mut greeting).await.expect("greeting");
    assert!(
        greeting[..n].starts_with(b"220"),
        "{}",
        String::from_utf8_lossy(&greeting[..n])
    );
    assert!(
        closed(&mut sessions[0]).await,
        "the oldest idle session was closed"
    );
    assert!(!closed(&mut sessions[2]).await, "the newest stays");
}

/// The real binary with few file descriptors (`prlimit --nofile=160`) and a
/// connection cap far above them: a flood of silent connections runs the
/// process out of descriptors, an idle connection gives its one up for each
/// new one, `/healthz` is still answered, and the failed accepts are logged
/// at most once a second.
#[tokio::test]
async fn out_of_descriptors_the_gateway_still_answers_and_logs_little() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::private_redis::free_port();
    let config = dir.path().join("aduan.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_seconds = 1\n\
             [redis]\nurl = \"redis://127.0.0.1:1\"\n\
             [spool]\ndir = \"{}\"\n\
             [limits]\nmax_connections = 10000\nfirst_byte_timeout_ms = 60000\n\
             [log]\nlevel = \"warn\"\n",
            dir.path().join("spool").display()
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.path().join("aduan.log")).expect("log file");
    let mut child = std::process::Command::new("prlimit")
        .arg("--nofile=160:160")
        .arg(env!("CARGO_BIN_EXE_aduan"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prlimit (util-linux) runs the gateway");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..600 {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => flood.push(s),
            Err(_) => break,
        }
    }
    for _ in 0..5 {
        let resp = tokio::time::timeout(
            Duration::from_secs(10),
            reqwest::Client::new().get(format!("{base}/healthz")).send(),
        )
        .await
        .expect("healthz answered in time")
        .expect("healthz");
        assert_eq!(resp.status(), 200);
    }
    // One line a second at most, from the first failure on.
    let seconds = started.elapsed().as_secs() + 1;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(dir.path().join("aduan.log")).expect("log");
    let accept_lines = text.lines().filter(|l| l.contains("accept failed")).count() as u64;
    assert!(
        accept_lines > 0,
        "the flood did run the gateway out of descriptors:\n{text}"
    );
    assert!(
        accept_lines <= seconds + 1,
        "{accept_lines} accept lines in about {seconds} s:\n{text}"
    );
    drop(flood);
}
