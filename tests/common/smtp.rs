//! A raw SMTP client for the tests that speak the protocol line by line:
//! pipelining, bad sequences, smuggling, limits. Real clients (smtplib) are
//! driven from `tests/email_smtp/client.py`.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::TestApp;

/// One SMTP connection to a test gateway.
pub struct Client {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    /// The lines of the greeting the server opened with.
    pub greeting: Vec<String>,
}

impl TestApp {
    /// The port of the gateway's SMTP listener.
    pub fn smtp_port(&self) -> u16 {
        self.running
            .as_ref()
            .and_then(|r| r.smtp_addr)
            .expect("smtp listener started")
            .port()
    }
}

impl Client {
    /// Connects to `app`'s SMTP listener and reads its greeting.
    pub async fn connect(app: &TestApp) -> Client {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", app.smtp_port()))
            .await
            .expect("connect");
        let (read, write) = stream.into_split();
        let mut client = Client {
            read: BufReader::new(read),
            write,
            greeting: Vec::new(),
        };
        client.greeting = client.reply().await;
        client
    }

    /// One reply (all its lines); empty when the server closed the connection.
    pub async fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.read.read_line(&mut line))
                .await
                .expect("reply in time")
                .expect("read");
            if n == 0 {
                return lines;
            }
            let done = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.trim_end().to_string());
            if done {
                return lines;
            }
        }
    }

    /// Writes `bytes` and reads the reply to the first command in them.
    pub async fn send(&mut self, bytes: &[u8]) -> Vec<String> {
        self.write(bytes).await;
        self.reply().await
    }

    /// Writes `bytes` without waiting for a reply (pipelining, a message body
    /// in parts).
    pub async fn write(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.expect("write");
    }

    /// True when the server closed the connection.
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.read.read_to_end(&mut rest)).await,
            Ok(Ok(0))
        )
    }
}
