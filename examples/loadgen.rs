//! A load generator for `scripts/bench`: keeps N HTTP/1.1 keep-alive
//! connections busy for a fixed time (or paced to a fixed total rate), every
//! request a distinct delivery, and prints one JSON line of results.
//!
//! ```text
//! loadgen <kind> <url> [--connections 50] [--seconds 10] [--rate R] [--secret S] [--token T]
//! kind: raw | transcript | whatsapp | twilio | telegram
//! ```
//!
//! `raw` posts the WhatsApp body unsigned (for the bare baseline), `whatsapp`
//! signs it with `--secret` as Meta does, `transcript` posts a call transcript
//! with `--token`, `twilio` posts an inbound SMS form signed with `--token` as
//! the Auth Token over the URL as given (the instance's `public_url` must be its
//! scheme and authority). Each request carries a fresh message id, so none is a duplicate,
//! and comes from one of 20,000 citizens (like real traffic, and so that the
//! gateway's per-sender rate limit sees what it would in production).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use support::Tally;

mod support;

const WHATSAPP: &str = include_str!("../channels/meta/fixtures/whatsapp/bench_text.json");
const WAMID: &str = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBDNzE4RjA5QjI0QjA2RTQ0QTZZ";

#[derive(Clone)]
struct Options {
    kind: String,
    url: hyper::Uri,
    connections: usize,
    seconds: u64,
    rate: Option<f64>,
    secret: String,
    token: String,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().ok_or("missing kind")?;
    let url: hyper::Uri = args
        .next()
        .ok_or("missing url")?
        .parse()
        .map_err(|e| format!("url: {e}"))?;
    let mut o = Options {
        kind,
        url,
        connections: 50,
        seconds: 10,
        rate: None,
        secret: "bench-app-secret".into(),
        token: "bench-token".into(),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connections" => o.connections = value.parse().map_err(|_| "connections")?,
            "--seconds" => o.seconds = value.parse().map_err(|_| "seconds")?,
            "--rate" => o.rate = Some(value.parse().map_err(|_| "rate")?),
            "--secret" => o.secret = value,
            "--token" => o.token = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

/// Distinct senders the load is spread over.
const SENDERS: u64 = 20_000;

fn request(o: &Options, n: u64, run: &str) -> hyper::Request<Full<Bytes>> {
    let citizen = 10_000_000 + n % SENDERS;
    let builder = hyper::Request::post(o.url.clone()).header(
        "host",
        o.url.authority().map(|a| a.as_str()).unwrap_or("localhost"),
    );
    let (builder, body) = match o.kind.as_str() {
        "twilio" => {
            let sid = format!("SM{run:0>8}{n:024x}");
            let params: Vec<(String, String)> = [
                ("ToCountry", "ID".to_string()),
                ("SmsMessageSid", sid.clone()),
                ("NumMedia", "0".to_string()),
                ("SmsSid", sid.clone()),
                ("SmsStatus", "received".to_string()),
                (
                    "Body",
                    "LAPOR Jalan berlubang di depan SDN 3 Cibinong, sudah dua motor jatuh minggu ini"
                        .to_string(),
                ),
                ("FromCountry", "ID".to_string()),
                ("To", "+6281100017080".to_string()),
                ("NumSegments", "1".to_string()),
                ("MessageSid", sid),
                ("AccountSid", "AC5f0d3e1b2a4c6e8f0a1b3c5d7e9f1a2b".to_string()),
                ("From", format!("+62812{citizen}")),
                ("ApiVersion", "2010-04-01".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let sig = aduan_sms::twilio::signature(o.token.as_bytes(), &o.url.to_string(), &params);
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish();
            (
                builder
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-twilio-signature", sig),
                body,
            )
        }
        "telegram" => {
            // Message ids are unique per run: the process id in the high digits.
            let id = run.parse::<u64>().unwrap_or(0) * 1_000_000_000 + n;
            let body = format!(
                r#"{{"update_id":{id},"message":{{"message_id":{id},"from":{{"id":7{citizen},"is_bot":false,"first_name":"Budi","last_name":"Santoso","username":"budisantoso","language_code":"id"}},"chat":{{"id":7{citizen},"first_name":"Budi","last_name":"Santoso","username":"budisantoso","type":"private"}},"date":1795335330,"text":"Jalan berlubang di depan SDN 3 Cibinong, sudah dua motor jatuh minggu ini. Mohon segera diperbaiki. ({run})"}}}}"#
            );
            (
                builder
                    .header("content-type", "application/json")
                    .header("x-telegram-bot-api-secret-token", o.token.clone()),
                body,
            )
        }
        "transcript" => {
            let body = format!(
                r#"{{"call_id":"BENCH-{run}-{n}","agent":{{"id":"AG-017","name":"Siti Rahayu"}},"caller":{{"phone":"0812-{citizen}","name":"Budi Santoso"}},"started_at":"2026-11-22T08:15:30+07:00","duration_seconds":184,"direction":"inbound","category":"Infrastruktur Jalan","text":"Penelepon melaporkan jalan berlubang di depan SDN 3 Cibinong. Lubang sudah ada sejak dua minggu dan sudah menyebabkan dua pengendara motor jatuh."}}"#
            );
            (
                builder
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {}", o.token)),
                body,
            )
        }
        kind => {
            let body = WHATSAPP
                .trim_end()
                .replace(WAMID, &format!("wamid.BENCH{run}X{n:012}"))
                .replace("6281234567890", &format!("62812{citizen}"));
            let builder = builder.header("content-type", "application/json");
            if kind == "whatsapp" {
                let mac = aduan_adapter::verify::hmac_sha256(o.secret.as_bytes(), body.as_bytes());
                let sig = format!("sha256={}", hex::encode(mac));
                (builder.header("x-hub-signature-256", sig), body)
            } else {
                (builder, body)
            }
        }
    };
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| hyper::Request::new(Full::new(Bytes::new())))
}

async fn connection(
    o: Arc<Options>,
    counter: Arc<AtomicU64>,
    run: Arc<String>,
    deadline: Instant,
) -> Tally<u16> {
    let mut tally = Tally::new();
    let host = o.url.host().unwrap_or("127.0.0.1").to_string();
    let port = o.url.port_u16().unwrap_or(80);
    let pace = o
        .rate
        .map(|r| Duration::from_secs_f64(o.connections as f64 / r));
    'reconnect: while Instant::now() < deadline {
        let Ok(stream) = tokio::net::TcpStream::connect((host.as_str(), port)).await else {
            tally.errors += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = hyper_util::rt::TokioIo::new(stream);
        let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(io).await else {
            tally.errors += 1;
            continue;
        };
        tokio::spawn(conn);
        let mut next = Instant::now();
        while Instant::now() < deadline {
            if let Some(pace) = pace {
                next += pace;
                tokio::time::sleep_until(next.into()).await;
            }
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let req = request(&o, n, &run);
            let started = Instant::now();
            match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let _ = resp.into_body().collect().await;
                    let micros = started.elapsed().as_micros() as u64;
                    let _ = tally.hist.record(micros.max(1));
                    if status.is_success() {
                        tally.ok += 1;
                    } else {
                        tally.errors += 1;
                        tally.first_error.get_or_insert(status.as_u16());
                    }
                }
                Err(_) => {
                    tally.errors += 1;
                    continue 'reconnect;
                }
            }
        }
    }
    tally
}

#[tokio::main]
async fn main() {
    let o = Arc::new(support::options_or_exit("loadgen", parse_args()));
    let (tally, elapsed) = support::run(o.connections, o.seconds, |counter, run, deadline| {
        connection(o.clone(), counter, run, deadline)
    })
    .await;
    println!(
        "{{\"kind\":\"{}\",\"connections\":{},\"seconds\":{:.1},{},\"first_error_status\":{}}}",
        o.kind,
        o.connections,
        elapsed,
        tally.figures(elapsed),
        tally
            .first_error
            .map_or("null".to_string(), |s| s.to_string())
    );
}
