//! The gateway itself, independent of any provider: health, readiness,
//! metrics, unknown routes, recovery after a Redis restart, graceful shutdown
//! and `check-config`. The transcript channel serves as the example channel.

mod common;

use std::time::Duration;

use common::private_redis::PrivateRedis;
use common::{spawn_app, spawn_app_with, unique};
use serde_json::{Value, json};

const TOKEN: &str = "uji-token-pusat-panggilan";

fn instances() -> String {
    format!("[[instances]]\nname = \"cc-bogor\"\nkind = \"transcript\"\ntokens = [\"{TOKEN}\"]\n")
}

fn transcript(call_id: &str) -> Value {
    json!({
        "call_id": call_id,
        "agent": {"id": "AG-017", "name": "Siti Rahayu"},
        "caller": {"phone": "0812-3456-7890", "name": "Budi Santoso"},
        "started_at": "2026-11-22T08:15:00+07:00",
        "duration_seconds": 184,
        "direction": "inbound",
        "category": "Infrastruktur jalan",
        "text": "Jalan berlubang di depan SDN 3 Cibinong sudah dua bulan belum diperbaiki."
    })
}

async fn post_transcript(app: &common::TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/transcripts"))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app(&instances()).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"state": "ready", "redis": "ok", "spool": {
            "state": "ok", "depth": 0, "bytes": 0, "oldest_age_seconds": null, "quarantined": 0,
            "drained_total": 0, "drain_rate_per_second": 0.0
        }})
    );

    let call = unique("call");
    assert_eq!(
        post_transcript(&app, &transcript(&call)).await.status(),
        201
    );
    assert_eq!(
        post_transcript(&app, &transcript(&call)).await.status(),
        201
    );
    let bad = app
        .client
        .post(app.url("/v1/transcripts"))
        .bearer_auth("salah")
        .json(&transcript(&call))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), 401);

    let text = app.metrics().await;
    for needle in [
        "aduan_complaints_accepted_total{channel=\"call_center\",instance=\"cc-bogor\"}",
        "aduan_complaints_duplicate_total{channel=\"call_center\",instance=\"cc-bogor\"}",
        "aduan_requests_rejected_total{route=\"transcripts\",instance=\"unknown\",reason=\"unauthorized\"}",
        "aduan_request_duration_seconds_bucket{route=\"transcripts\"",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    assert!(!text.contains(TOKEN), "a token leaked into metrics");
}

#[tokio::test]
async fn unknown_instances_and_routes_are_404_and_write_nothing() {
    let app = spawn_app(&instances()).await;
    for path in [
        "/webhooks/whatsapp/tidak-ada",
        "/webhooks/nope/cc-bogor",
        "/v2/anything",
    ] {
        let r = app
            .client
            .post(app.url(path))
            .body("{}")
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 404, "{path}");
    }
    assert_eq!(app.stream_len().await, 0);
}

#[tokio::test]
async fn recovers_after_redis_restarts_without_a_gateway_restart() {
    let mut redis = PrivateRedis::start().await;
    let app = spawn_app_with(&instances(), &redis.url(), &unique("restart")).await;
    let first = unique("call");
    assert_eq!(
        post_transcript(&app, &transcript(&first)).await.status(),
        201
    );

    redis.kill();
    redis.restart().await;
    // The first request after the restart may find the old connection dead; the
    // gateway must answer 503 (never 2xx without storing: 201 from the spool is
    // fine) and recover by itself.
    let second = unique("call");
    let mut statuses = Vec::new();
    for _ in 0..50 {
        let s = post_transcript(&app, &transcript(&second))
            .await
            .status()
            .as_u16();
        statuses.push(s);
        if s == 201 {
            break;
        }
        assert_eq!(s, 503, "only 201 or 503 are acceptable: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(statuses.last(), Some(&201), "{statuses:?}");

    let mut conn = redis.connection().await;
    // A call spooled while the connection was re-established reaches the stream
    // when the spool forwarder runs.
    let mut len = 0usize;
    for _ in 0..50 {
        len = redis::cmd("XLEN")
            .arg(&app.stream)
            .query_async(&mut conn)
            .await
            .expect("xlen");
        if len >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(len, 2, "both calls stored exactly once");
}

#[tokio::test]
async fn graceful_shutdown_finishes_an_in_flight_request() {
    let mut app = spawn_app(&instances()).await;
    let call = unique("call");
    let body = serde_json::to_vec(&transcript(&call)).expect("json");
    // Send the headers and half the body, start the shutdown, then finish the body.
    let addr = app.running.as_ref().expect("running").addr;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST /v1/transcripts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body[..body.len() / 2])
        .await
        .expect("half");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let running = app.running.take().expect("running");
    running.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are refused once shutdown began.
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener still accepting after shutdown"
    );
    stream
        .write_all(&body[body.len() / 2..])
        .await
        .expect("rest");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), running.done)
        .await
        .expect("drained in time")
        .expect("server task");
    assert_eq!(app.stream_len().await, 1);
}

fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("aduan.toml");
    std::fs::write(&path, text).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aduan"))
        .arg("check-config")
        .arg(&path)
        .env_remove("ADUAN_CONFIG")
        .output()
        .expect("run aduan");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn check_config_reports_each_class_of_error_at_once() {
    let (ok, out) = check_config(&format!(
        r#"
[server]
listen = "tidak-valid"
body_limit_bytes = "besar"

[redis]
stream = "aduan:complaints"
typo = 1

[[instances]]
name = "cc-bogor"
kind = "transcript"
tokens = ["env:ADUAN_TEST_UNSET_TOKEN_VAR"]

[[instances]]
name = "cc-bogor"
kind = "transcript"
tokens = ["{TOKEN}"]
warna = "merah"

[[instances]]
name = "Cc Bogor"
kind = "faks"
"#
    ));
    assert!(!ok, "check-config must fail:\n{out}");
    for needle in [
        "server:",                    // bad value
        "typo",                       // unknown key in a section
        "ADUAN_TEST_UNSET_TOKEN_VAR", // unresolvable secret
        "duplicate instance name `cc-bogor`",
        "warna",      // unknown key in an instance
        "[a-z0-9-]+", // bad name
        "unknown kind `faks`",
        ":10)",
        ":15)",
        ":21)", // locations: instance header lines
        "7 problem(s)",
    ] {
        assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    }
    assert!(!out.contains(TOKEN), "a secret leaked:\n{out}");
}

#[test]
fn check_config_accepts_the_shipped_default() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aduan"))
        .arg("check-config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config/aduan.toml"))
        .output()
        .expect("run aduan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_append_script_is_reloaded_after_a_script_flush() {
    let redis = PrivateRedis::start().await;
    let app = spawn_app_with(&instances(), &redis.url(), &unique("noscript")).await;
    let first = unique("call");
    let r = post_transcript(&app, &transcript(&first)).await;
    assert_eq!(r.status(), 201);
    let first_id = r.json::<Value>().await.expect("json")["id"].clone();

    // Redis forgets every cached script (as after a restart without
    // persistence or a failover): the next EVALSHA answers NOSCRIPT.
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("SCRIPT FLUSH");

    let second = unique("call");
    assert_eq!(
        post_transcript(&app, &transcript(&second)).await.status(),
        201
    );
    let again = post_transcript(&app, &transcript(&first)).await;
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["duplicate"], json!(true));
    assert_eq!(again["id"], first_id, "a duplicate keeps the first id");

    let len: usize = redis::cmd("XLEN")
        .arg(&app.stream)
        .query_async(&mut conn)
        .await
        .expect("xlen");
    assert_eq!(len, 2);
}
