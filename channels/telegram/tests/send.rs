//! The Telegram sender against a stand-in of the Bot API on 127.0.0.1: the
//! request it makes, and how each scripted answer is read. No error may
//! carry the bot token, which is part of every method URL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_adapter::{
    Channel, Outgoing, ReplyRoute, ReplySender, Retry, RouteKind, SendError, Sent, Timestamp,
};
use aduan_telegram::{TelegramSendConfig, TelegramSender};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

const TOKEN: &str = "7012345678:AAHrahasiaLaporCibinong_Bot-9x";
const CHAT: &str = "512345678";

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    content_type: Option<String>,
    body: Value,
}

/// The stand-in's one answer to every request.
#[derive(Clone)]
struct Script {
    status: u16,
    body: String,
    delay: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn answer(
    State(s): State<Script>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    s.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    tokio::time::sleep(s.delay).await;
    (
        StatusCode::from_u16(s.status).unwrap(),
        [("content-type", "application/json")],
        s.body.clone(),
    )
}

/// A stand-in answering `status` and `body` after `delay`; its base URL and
/// what it saw.
async fn stand_in(status: u16, body: Value, delay: Duration) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Script {
        status,
        body: body.to_string(),
        delay,
        seen: seen.clone(),
    };
    let app = axum::Router::new().fallback(answer).with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn sender(api_url: &str) -> TelegramSender {
    let config: TelegramSendConfig =
        toml::from_str(&format!("token = \"{TOKEN}\"\napi_url = \"{api_url}\"")).unwrap();
    TelegramSender::new(config, client()).unwrap()
}

fn route(to: &str, message_id: Option<&str>) -> ReplyRoute {
    ReplyRoute {
        complaint_id: "01JD2S7Q7K3M9QX2TELEGRAM01".into(),
        instance: "tg-bogor".into(),
        channel: Channel::Telegram,
        provider: "telegram".into(),
        kind: RouteKind::Direct,
        to: to.into(),
        message_id: message_id.map(str::to_string),
        recipient: Some("@LaporCibinongBot".into()),
        subject: None,
        references: Vec::new(),
        last_inbound_at: Timestamp::from_unix_seconds(1_732_000_000).unwrap(),
    }
}

fn outgoing<'a>(route: &'a ReplyRoute, text: Option<&'a str>, part: usize) -> Outgoing<'a> {
    Outgoing {
        reply_id: "balasan-0001",
        route,
        text,
        template: None,
        subject: None,
        part,
        parts: 2,
        last_inbound_at: Some(route.last_inbound_at),
        now: Timestamp::from_unix_seconds(1_732_000_600).unwrap(),
    }
}

fn ok_answer(message_id: i64) -> Value {
    json!({"ok": true, "result": {
        "message_id": message_id,
        "from": {"id": 7012345678i64, "is_bot": true, "first_name": "Lapor Cibinong", "username": "LaporCibinongBot"},
        "chat": {"id": 512345678, "first_name": "Siti", "last_name": "Rahayu", "type": "private"},
        "date": 1732000601,
        "text": "Terima kasih, aduan Anda kami terima.",
        "some_field_of_a_later_api": {"kind": "new"}
    }})
}

/// Sends one part through a stand-in answering `status` and `body`.
async fn send_answered(status: u16, body: Value) -> (Result<Sent, SendError>, Vec<Seen>) {
    let (url, seen) = stand_in(status, body, Duration::ZERO).await;
    let r = route(CHAT, Some("4821"));
    let result = sender(&url)
        .send(&outgoing(
            &r,
            Some("Terima kasih, aduan Anda kami terima."),
            0,
        ))
        .await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

fn assert_no_token(e: &SendError) {
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(TOKEN), "token in {shown}");
    assert!(
        !shown.contains("AAHrahasia"),
        "part of the token in {shown}"
    );
}

#[tokio::test]
async fn the_first_part_answers_the_citizens_message() {
    let (result, seen) = send_answered(200, ok_answer(4822)).await;
    assert_eq!(result.unwrap().provider_message_id, "512345678:4822");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        seen[0].body,
        json!({
            "chat_id": 512345678,
            "text": "Terima kasih, aduan Anda kami terima.",
            "reply_parameters": {"message_id": 4821, "allow_sending_without_reply": true}
        })
    );
}

#[tokio::test]
async fn later_parts_and_routes_without_a_message_do_not_quote() {
    let (url, seen) = stand_in(200, ok_answer(4823), Duration::ZERO).await;
    let s = sender(&url);
    let quoted = route("-1001234567890", Some("4821"));
    s.send(&outgoing(&quoted, Some("bagian kedua"), 1))
        .await
        .unwrap();
    let bare = route("-1001234567890", None);
    s.send(&outgoing(&bare, Some("tanpa kutipan"), 0))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|s| s.body.clone()).collect::<Vec<_>>(),
        vec![
            json!({"chat_id": -1001234567890i64, "text": "bagian kedua"}),
            json!({"chat_id": -1001234567890i64, "text": "tanpa kutipan"}),
        ]
    );
}

#[tokio::test]
async fn an_api_url_with_a_path_keeps_it() {
    let (url, seen) = stand_in(200, ok_answer(1), Duration::ZERO).await;
    let r = route(CHAT, None);
    sender(&format!("{url}/telegram/"))
        .send(&outgoing(&r, Some("halo"), 0))
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap()[0].path,
        format!("/telegram/bot{TOKEN}/sendMessage")
    );
}

#[tokio::test]
async fn flood_control_is_retried_after_the_given_seconds() {
    let (result, _) = send_answered(
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 17",
               "parameters": {"retry_after": 17}}),
    )
    .await;
    let e = result.unwrap_err();
    assert_eq!(e.code, "telegram_429");
    assert_eq!(e.retry, Retry::Later(Some(Duration::from_secs(17))));
    assert!(!e.opt_out);
    assert_no_token(&e);
}

#[tokio::test]
async fn a_blocked_or_deactivated_citizen_opts_out() {
    for description in [
        "Forbidden: bot was blocked by the user",
        "Forbidden: user is deactivated",
    ] {
        let (result, _) = send_answered(
            403,
            json!({"ok": false, "error_code": 403, "description": description}),
        )
        .await;
        let e = result.unwrap_err();
        assert_eq!(e.code, "blocked");
        assert!(e.opt_out && e.is_permanent());
        assert_eq!(e.message, description);
        assert_no_token(&e);
    }
}

#[tokio::test]
async fn a_bad_request_is_permanent_with_its_description() {
    let (result, _) = send_answered(
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: message text is empty"}),
    )
    .await;
    let e = result.unwrap_err();
    assert_eq!(e.code, "telegram_400");
    assert_eq!(e.message, "Bad Request: message text is empty");
    assert!(e.is_permanent() && !e.opt_out);
    assert_no_token(&e);
}

#[tokio::test]
async fn a_server_error_is_temporary() {
    let (result, _) = send_answered(
        500,
        json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}),
    )
    .await;
    let e = result.unwrap_err();
    assert_eq!(e.code, "telegram_500");
    assert_eq!(e.retry, Retry::Later(None));
    assert_no_token(&e);
}

#[tokio::test]
async fn a_slow_answer_is_a_network_failure_without_the_token() {
    let (url, _) = stand_in(200, ok_answer(1), Duration::from_secs(3)).await;
    let r = route(CHAT, None);
    let e = sender(&url)
        .send(&outgoing(&r, Some("halo"), 0))
        .await
        .unwrap_err();
    assert_eq!(e.code, "network");
    assert!(e.message.starts_with("timed out"), "{}", e.message);
    assert_eq!(e.retry, Retry::Later(None));
    assert_no_token(&e);
}

#[tokio::test]
async fn an_unreachable_api_is_a_network_failure_without_the_token() {
    // A port that was just free: nothing listens on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = route(CHAT, None);
    let e = sender(&format!("http://{addr}"))
        .send(&outgoing(&r, Some("halo"), 0))
        .await
        .unwrap_err();
    assert_eq!(e.code, "network");
    assert!(!e.is_permanent());
    assert_no_token(&e);
}

#[tokio::test]
async fn bad_routes_and_template_only_replies_fail_before_sending() {
    let (url, seen) = stand_in(200, ok_answer(1), Duration::ZERO).await;
    let s = sender(&url);
    let r = route("@siti_rahayu", None);
    let e = s.send(&outgoing(&r, Some("halo"), 0)).await.unwrap_err();
    assert_eq!(e.code, "invalid_recipient");
    assert!(e.is_permanent());
    let r = route(CHAT, None);
    let e = s.send(&outgoing(&r, None, 0)).await.unwrap_err();
    assert_eq!(e.code, "missing_text");
    assert!(e.is_permanent());
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn the_config_is_checked() {
    assert!(
        toml::from_str::<TelegramSendConfig>(&format!("token = \"{TOKEN}\"\nmode = \"x\""))
            .is_err()
    );
    let bad_url: TelegramSendConfig = toml::from_str(&format!(
        "token = \"{TOKEN}\"\napi_url = \"ftp://example.org\""
    ))
    .unwrap();
    assert!(TelegramSender::new(bad_url, client()).is_err());
    let default: TelegramSendConfig = toml::from_str(&format!("token = \"{TOKEN}\"")).unwrap();
    let s = TelegramSender::new(default, client()).unwrap();
    assert_eq!(s.max_chars(&route(CHAT, None)), 4096);
    let shown = format!("{s:?}");
    assert!(shown.contains("https://api.telegram.org"), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
}
