//! A stand-in for the providers' send APIs on loopback: the Graph API
//! (WhatsApp, Messenger, Instagram) and the Telegram Bot API. It records
//! every request and answers as the provider does, or as the test scripts
//! it to (errors, throttling, slowness).

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
    pub body: Value,
    pub at: std::time::Instant,
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub delay: Duration,
}

impl Scripted {
    pub fn status(status: u16, body: Value) -> Self {
        Scripted {
            status,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
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
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    let (scripted, id) = {
        let mut inner = inner.lock().expect("lock");
        inner.seen.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            headers,
            body: body.clone(),
            at: std::time::Instant::now(),
        });
        inner.next_id += 1;
        (inner.script.pop_front(), inner.next_id)
    };
    let scripted = scripted.unwrap_or_else(|| Scripted::status(200, success(&path, &body, id)));
    if !scripted.delay.is_zero() {
        tokio::time::sleep(scripted.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(scripted.status).unwrap_or(StatusCode::OK),
        axum::Json(scripted.body),
    )
        .into_response();
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
fn success(path: &str, body: &Value, n: u64) -> Value {
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
