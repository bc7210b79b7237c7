//! A local S3-compatible server for the blob store's tests: the command in
//! `ADUAN_S3_SERVER` (default `python3 -m moto.server`, which `scripts/test`
//! finds or installs), given `-H 127.0.0.1 -p PORT`, one per test, stopped
//! when dropped. A server that cannot be started fails the test: the S3
//! backend is never skipped.

use std::time::Duration;

/// A running S3-compatible server on loopback.
pub struct S3Server {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    log: std::path::PathBuf,
}

impl S3Server {
    /// Starts the server and waits until it answers.
    pub async fn start() -> S3Server {
        let command =
            std::env::var("ADUAN_S3_SERVER").unwrap_or_else(|_| "python3 -m moto.server".into());
        let mut words = command.split_whitespace();
        let program = words.next().unwrap_or_else(|| {
            panic!("ADUAN_S3_SERVER is empty: it must name an S3 server command")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let log = std::env::temp_dir().join(format!("aduan-s3-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("server log file");
        let child = tokio::process::Command::new(program)
            .args(words)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the S3 test server `{command}`: {e}. Run ./scripts/test, which \
                     installs moto, or set ADUAN_S3_SERVER to a command serving S3 on `-H HOST -p PORT`"
                )
            });
        let mut server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "the S3 test server `{command}` exited ({status}) before answering:\n{}",
                    server.log_text()
                );
            }
            if client.get(&server.endpoint).send().await.is_ok() {
                return server;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "the S3 test server `{command}` did not answer on {} within 60 s:\n{}",
                    server.endpoint,
                    server.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates `bucket` (the server accepts any credentials).
    pub async fn create_bucket(&self, bucket: &str) {
        let answer = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("create bucket");
        assert!(
            answer.status().is_success(),
            "creating bucket {bucket}: {}",
            answer.status()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.log);
    }
}
