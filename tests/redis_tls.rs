//! `rediss://` with a password, against a real redis-server serving TLS
//! only, with a certificate of a CA made for the test: trusted through
//! `[redis] tls_ca`, refused without it.

mod common;

use std::process::Command;
use std::time::Duration;

use aduan::redis::Redis;
use aduan::settings::RedisConfig;
use aduan_adapter::{Complaint, Secret};
use common::private_redis::free_port;

const PASSWORD: &str = "kata-sandi-tls";

struct TlsRedis {
    dir: std::path::PathBuf,
    port: u16,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("redis.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (installed by ./scripts/test)");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, a certificate for 127.0.0.1 signed by it, and a redis-server
/// that speaks TLS only and wants a password.
async fn start() -> TlsRedis {
    let dir = std::env::temp_dir().join(common::unique("aduan-tls"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=aduan test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.crt",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
    let port = free_port();
    let status = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--tls-cert-file", "srv.crt", "--tls-key-file", "srv.key"])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args([
            "--requirepass",
            PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--daemonize",
            "yes",
            "--pidfile",
            "redis.pid",
            "--logfile",
            "redis.log",
        ])
        .current_dir(&dir)
        .status()
        .expect("redis-server");
    assert!(status.success());
    let server = TlsRedis { dir, port };
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("redis-server with TLS did not start");
}

fn complaint() -> Complaint {
    common::whatsapp_complaint(
        "wa-aceh",
        "wamid.TLS1",
        "whatsapp:6281360001234",
        "Jembatan di Desa Lampineung retak, mohon diperiksa.",
    )
}

fn config(server: &TlsRedis, tls_ca: Option<std::path::PathBuf>) -> RedisConfig {
    RedisConfig {
        url: Secret::literal(format!("rediss://:{PASSWORD}@127.0.0.1:{}", server.port)),
        stream: "uji-tls:complaints".into(),
        key_prefix: "uji-tls".into(),
        command_timeout_ms: 2000,
        tls_ca,
        ..RedisConfig::default()
    }
}

#[tokio::test]
async fn appends_over_tls_with_the_configured_ca_and_a_password() {
    let server = start().await;
    let redis = Redis::new(&config(&server, Some(server.dir.join("ca.crt")))).expect("config");
    let receipts = redis.append(&[complaint()]).await.expect("append over TLS");
    assert!(!receipts[0].duplicate);
    let mut conn = redis.connection().await.expect("connection");
    let len: usize = redis::cmd("XLEN")
        .arg("uji-tls:complaints")
        .query_async(&mut conn)
        .await
        .expect("XLEN");
    assert_eq!(len, 1);

    // The system's roots do not know the test CA: no connection.
    let untrusted = Redis::new(&config(&server, None)).expect("config");
    assert!(untrusted.append(&[complaint()]).await.is_err());
    // Nor does a wrong password get in.
    let mut wrong = config(&server, Some(server.dir.join("ca.crt")));
    wrong.url = Secret::literal(format!("rediss://:salah@127.0.0.1:{}", server.port));
    assert!(
        Redis::new(&wrong)
            .expect("config")
            .append(&[complaint()])
            .await
            .is_err()
    );
}
