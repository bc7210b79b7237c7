//! An SMTP load generator for `scripts/bench`. It keeps N SMTP sessions busy
//! for a fixed time, each delivering message after message (the envelope and
//! `DATA` pipelined, as mail servers send them), and prints one JSON line of
//! results in the same shape as `loadgen`.
//!
//! ```text
//! smtp_loadgen <host:port> [--connections 50] [--seconds 10] [--size 20480] [--rcpt ADDRESS]
//! ```
//!
//! Every message has its own `Message-ID`, so none is a duplicate. It comes
//! from one of 20,000 citizens and its body is Indonesian text padded to
//! `--size` bytes. The latency recorded is from `MAIL FROM` to the `250` after
//! the final dot: the time until the message is durably accepted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use support::Tally;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

mod support;

struct Options {
    addr: String,
    connections: usize,
    seconds: u64,
    size: usize,
    rcpt: String,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or("missing host:port")?;
    let mut o = Options {
        addr,
        connections: 50,
        seconds: 10,
        size: 20 * 1024,
        rcpt: "pengaduan@bench.example.go.id".into(),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--connections" => o.connections = number()? as usize,
            "--seconds" => o.seconds = number()?,
            "--size" => o.size = number()? as usize,
            "--rcpt" => o.rcpt = value,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// A 20 KB-ish complaint: headers, then paragraphs of text up to `size`.
fn message(n: u64, run: &str, size: usize) -> Vec<u8> {
    let citizen = n % 20_000;
    let mut m = format!(
        "From: Warga {citizen} <warga{citizen}@example.id>\r\nTo: pengaduan@bench.example.go.id\r\n\
         Subject: Jalan berlubang di depan SDN 3 Cibinong\r\nDate: Sun, 22 Nov 2026 08:10:00 +0700\r\n\
         Message-ID: <bench-{run}-{n}@example.id>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    .into_bytes();
    let line = b"Jalan berlubang di depan SDN 3 Cibinong sudah dua minggu tidak diperbaiki.\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m
}

async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<String> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        // Multi-line replies continue with `250-`; the last line has a space.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line);
        }
    }
}

async fn session(
    o: Arc<Options>,
    counter: Arc<AtomicU64>,
    run: Arc<String>,
    deadline: Instant,
) -> Tally<String> {
    let mut tally = Tally::new();
    let result: std::io::Result<()> = async {
        let stream = tokio::net::TcpStream::connect(&o.addr).await?;
        stream.set_nodelay(true)?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        read_reply(&mut read).await?;
        write.write_all(b"EHLO bench.example.id\r\n").await?;
        read_reply(&mut read).await?;
        while Instant::now() < deadline {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let body = message(n, &run, o.size);
            let started = Instant::now();
            let mut batch = format!(
                "MAIL FROM:<warga{}@example.id> SIZE={}\r\nRCPT TO:<{}>\r\nDATA\r\n",
                n % 20_000,
                body.len(),
                o.rcpt
            )
            .into_bytes();
            write.write_all(&batch).await?;
            let mut failed = None;
            for _ in 0..3 {
                let r = read_reply(&mut read).await?;
                if !(r.starts_with("250") || r.starts_with("354")) {
                    failed.get_or_insert(r);
                }
            }
            if let Some(r) = failed {
                tally.errors += 1;
                tally.first_error.get_or_insert(r.trim().to_string());
                write.write_all(b"RSET\r\n").await?;
                read_reply(&mut read).await?;
                continue;
            }
            batch.clear();
            batch.extend_from_slice(&body);
            batch.extend_from_slice(b".\r\n");
            write.write_all(&batch).await?;
            let r = read_reply(&mut read).await?;
            if r.starts_with("250") {
                tally.ok += 1;
                let _ = tally
                    .hist
                    .record(started.elapsed().as_micros().max(1) as u64);
            } else {
                tally.errors += 1;
                tally.first_error.get_or_insert(r.trim().to_string());
            }
        }
        write.write_all(b"QUIT\r\n").await?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tally.errors += 1;
        tally.first_error.get_or_insert(e.to_string());
    }
    tally
}

#[tokio::main]
async fn main() {
    let o = Arc::new(support::options_or_exit("smtp_loadgen", parse_args()));
    let (tally, elapsed) = support::run(o.connections, o.seconds, |counter, run, deadline| {
        session(o.clone(), counter, run, deadline)
    })
    .await;
    println!(
        "{{\"kind\":\"smtp\",\"connections\":{},\"seconds\":{:.1},\"message_bytes\":{},{},\"first_error\":{}}}",
        o.connections,
        elapsed,
        o.size,
        tally.figures(elapsed),
        tally
            .first_error
            .map_or("null".to_string(), |s| serde_json::Value::String(s)
                .to_string())
    );
}
