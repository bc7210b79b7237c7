//! A stand-in for the providers' send APIs on loopback: the Graph API
//! (WhatsApp, Messenger, Instagram), the Telegram Bot API, and the SMS
//! APIs of Twilio, Vonage, Infobip and a Kannel-style `sendsms`. It
//! records every request (JSON bodies, form bodies and query strings) and
//! answers as the provider does, or as the test scripts it to (errors,
//! throttling, slowness).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request the stand-in received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    /// The body read as JSON; `Null` when it is not JSON.
    pub body: Value,
    /// The body's pairs when it is a form (`application/x-www-form-urlencoded`).
    pub form: Vec<(String, String)>,
    /// The query string's pairs, decoded.
    pub query: Vec<(String, String)>,
    /// The body as received.
    pub raw: Vec<u8>,
    /// What the stand-in answered: its status and body (JSON, or a JSON
    /// string for a text answer).
    pub answered: (u16, Value),
    pub at: std::time::Instant,
}

impl Seen {
    /// The first value of form field `name`.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }

    /// The first value of query parameter `name`.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    /// The value of header `name`, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn pairs(encoded: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(encoded)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// A `text/plain` answer instead of the JSON `body`.
    pub text: Option<String>,
    pub delay: Duration,
}

impl Scripted {
    pub fn status(status: u16, body: Value) -> Self {
        Scripted {
            status,
            headers: Vec::new(),
            body,
            text: None,
            delay: Duration::ZERO,
        }
    }

    /// A `text/plain` answer (Kannel's `sendsms`).
    pub fn text(status: u16, text: &str) -> Self {
        Scripted {
            text: Some(text.to_string()),
            ..Scripted::status(status, Value::Null)
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

#[derive(Default)]
struct Inner {
    seen: Vec<Seen>,
    script: VecDeque<Scripted>,
    next_id: u64,
}

/// The running stand-in.
#[derive(Clone)]
pub struct StandIn {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(answer).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests with these, in order, then as the provider does.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.inner.lock().expect("lock").script.extend(answers);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().expect("lock").seen.clone()
    }

    /// Waits until `n` requests arrived (or panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("the stand-in saw {} requests, expected {n}", seen.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form { pairs(&raw) } else { Vec::new() };
    let query = pairs(uri.query().unwrap_or("").as_bytes());
    let path = uri.path().to_string();
    let scripted = {
        let mut inner = inner.lock().expect("lock");
        inner.next_id += 1;
        let id = inner.next_id;
        let scripted = inner
            .script
            .pop_front()
            .unwrap_or_else(|| success(&path, &body, &form, id));
        let answered = match &scripted.text {
            Some(t) => Value::String(t.clone()),
            None => scripted.body.clone(),
        };
        inner.seen.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            headers,
            body: body.clone(),
            form,
            query,
            raw: raw.to_vec(),
            answered: (scripted.status, answered),
            at: std::time::Instant::now(),
        });
        scripted
    };
    if !scripted.delay.is_zero() {
        tokio::time::sleep(scripted.delay).await;
    }
    let status = StatusCode::from_u16(scripted.status).unwrap_or(StatusCode::OK);
    let mut response = match scripted.text {
        Some(text) => (status, text).into_response(),
        None => (status, axum::Json(scripted.body)).into_response(),
    };
    for (k, v) in scripted.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}

/// What the provider answers a successful send at `path`.
fn success(path: &str, body: &Value, form: &[(String, String)], n: u64) -> Scripted {
    if path.starts_with("/2010-04-01/Accounts/") && path.ends_with("/Messages.json") {
        // Twilio: 201 Created, the message queued under its new sid.
        return Scripted::status(
            201,
            json!({"sid": format!("SM{n:032x}"), "status": "queued",
                   "to": first(form, "To"), "from": first(form, "From"),
                   "body": first(form, "Body"), "num_segments": "1"}),
        );
    }
    if path.ends_with("/sms/json") {
        // Vonage: 200 with every part's status, "0" for accepted.
        return Scripted::status(
            200,
            json!({"message-count": "1", "messages": [{
                "to": first(form, "to"), "message-id": format!("1A00{n:012X}"), "status": "0",
                "remaining-balance": "3.14159265", "message-price": "0.03330000", "network": "51010"
            }]}),
        );
    }
    if path.ends_with("/sms/2/text/advanced") {
        let to = body.pointer("/messages/0/destinations/0/to").cloned();
        return Scripted::status(
            200,
            json!({"bulkId": format!("bulk-{n}"), "messages": [{
                "messageId": format!("4{n:017}"), "to": to,
                "status": {"groupId": 1, "groupName": "PENDING", "id": 26,
                           "name": "PENDING_ACCEPTED", "description": "Message sent to next instance"}
            }]}),
        );
    }
    if path.ends_with("/cgi-bin/sendsms") {
        return Scripted::text(202, "0: Accepted for delivery");
    }
    Scripted::status(200, graph_or_telegram(path, body, n))
}

/// The Graph API's or the Bot API's answer to a send.
fn graph_or_telegram(path: &str, body: &Value, n: u64) -> Value {
    if path.ends_with("/sendMessage") {
        let chat = body.get("chat_id").cloned().unwrap_or(Value::Null);
        return json!({"ok": true, "result": {
            "message_id": 9000 + n, "date": 1_790_000_000,
            "chat": {"id": chat, "type": "private"}, "text": body.get("text")
        }});
    }
    if body.get("messaging_product").is_some() {
        return json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
            "messages": [{"id": format!("wamid.OUT{n:06}")}]
        });
    }
    if path.ends_with("/comments") || path.ends_with("/replies") {
        return json!({"id": format!("comment_{n}")});
    }
    json!({"recipient_id": "psid", "message_id": format!("m_OUT{n:06}")})
}

/// The Graph API's error answer.
pub fn graph_error(status: u16, code: i64, message: &str) -> Scripted {
    Scripted::status(
        status,
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Atrace"}}),
    )
}

/// A provider that takes each request whole and then drops the connection
/// without a word: the answer to a send is lost after the request arrived,
/// as when a gateway or a proxy dies mid-exchange.
#[derive(Clone)]
pub struct HangUp {
    pub addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl HangUp {
    pub async fn start() -> HangUp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    if let Some(body) = read_request(stream).await {
                        seen.lock().expect("lock").push(body);
                    }
                    // Dropped here: the connection closes, nothing answered.
                });
            }
        });
        HangUp { addr, bodies }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The JSON bodies of the requests taken so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().expect("lock").clone()
    }
}

/// Reads one HTTP/1.1 request (its headers, then `Content-Length` bytes)
/// and gives its body as JSON (`Null` when it is not JSON).
async fn read_request(mut stream: tokio::net::TcpStream) -> Option<Value> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = buf.len().min(head_end + length);
    Some(serde_json::from_slice(&buf[head_end..end]).unwrap_or(Value::Null))
}
