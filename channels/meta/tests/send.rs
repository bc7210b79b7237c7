//! The WhatsApp and Messenger/Instagram senders against a stand-in of the
//! Graph API on 127.0.0.1: the requests they make (path, Bearer token,
//! whole JSON body), the reply windows they keep without asking, and what
//! every kind of answer (success, Graph errors, 429, 5xx, silence) becomes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_adapter::{
    Channel, Outgoing, ReplyRoute, ReplySender, Retry, RouteKind, SendError, Sent, Template,
    Timestamp,
};
use aduan_meta::{
    CommentReply, MessengerSendConfig, MessengerSender, Platform, WhatsAppSendConfig,
    WhatsAppSender,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const TOKEN: &str = "EAAGm0PX4ZCpsBAtokenrahasiaJabar2026";
const PHONE_NUMBER_ID: &str = "106540352242922";
const PAGE_ID: &str = "448242228374517";
const IG_ID: &str = "17841405822304914";
const CITIZEN_WA: &str = "6281234567890";
const CITIZEN_PSID: &str = "7104838652917823";
const WAMID_IN: &str = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBDNzE4RjA5QjI0QjA2RTQ0QTBA";
const WAMID_OUT: &str = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjVCQzM2NUQ1QkJCRUFBMjlCRQA=";

// ---------------------------------------------------------------------------
// The stand-in

/// One request the stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    body: Value,
}

/// One answer the stand-in gives, in order.
#[derive(Clone, Debug)]
struct Script {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Script {
    fn json(status: u16, body: Value) -> Self {
        Script {
            status,
            headers: vec![("content-type", "application/json".to_string())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn text(status: u16, body: &str) -> Self {
        Script {
            status,
            headers: vec![("content-type", "text/html".to_string())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A Graph error answer.
    fn graph_error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> Self {
        let mut error = json!({
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AbCdEfGhIjK",
        });
        if let Some(sub) = subcode {
            error["error_subcode"] = sub.into();
        }
        Script::json(status, json!({ "error": error }))
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Script>>>,
}

struct Graph {
    url: String,
    shared: Shared,
}

impl Graph {
    async fn start(script: impl IntoIterator<Item = Script>) -> Graph {
        let shared = Shared::default();
        shared.script.lock().expect("lock").extend(script);
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Graph {
            url: format!("http://{addr}"),
            shared,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }

    fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "{seen:#?}");
        seen[0].clone()
    }
}

async fn answer(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.seen.lock().expect("lock").push(Seen {
        method,
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let next = shared.script.lock().expect("lock").pop_front();
    let Some(script) = next else {
        return (StatusCode::IM_A_TEAPOT, "no answer scripted").into_response();
    };
    tokio::time::sleep(script.delay).await;
    let mut response = (
        StatusCode::from_u16(script.status).expect("status"),
        script.body,
    )
        .into_response();
    for (name, value) in script.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

// ---------------------------------------------------------------------------
// Senders, routes and messages

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .expect("client")
}

fn whatsapp(graph: &Graph, default_template: Option<Value>) -> WhatsAppSender {
    let mut config = json!({
        "access_token": TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "base_url": graph.url,
    });
    if let Some(t) = default_template {
        config["default_template"] = t;
    }
    let config: WhatsAppSendConfig = serde_json::from_value(config).expect("config");
    WhatsAppSender::new(config, client()).expect("sender")
}

fn messenger(graph: &Graph, platform: Platform, extra: Value) -> MessengerSender {
    let mut config = json!({
        "access_token": TOKEN,
        "page_id": if platform == Platform::Instagram { IG_ID } else { PAGE_ID },
        "base_url": graph.url,
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let config: MessengerSendConfig = serde_json::from_value(config).expect("config");
    MessengerSender::new(config, client(), platform).expect("sender")
}

/// 2026-11-22T08:20:00Z.
fn now() -> Timestamp {
    Timestamp::from_unix_seconds(1_795_335_600).expect("in range")
}

fn hours_ago(hours: i64) -> Option<Timestamp> {
    Timestamp::from_unix_seconds(1_795_335_600 - hours * 3600)
}

fn route(channel: Channel, kind: RouteKind, to: &str, message_id: Option<&str>) -> ReplyRoute {
    ReplyRoute {
        complaint_id: "01JD8X3M7Q9K2V5R6T8W0Y1Z3A".to_string(),
        instance: "jabar".to_string(),
        channel,
        provider: "test".to_string(),
        kind,
        to: to.to_string(),
        message_id: message_id.map(str::to_string),
        recipient: None,
        subject: None,
        references: Vec::new(),
        last_inbound_at: now(),
    }
}

fn wa_route() -> ReplyRoute {
    route(
        Channel::Whatsapp,
        RouteKind::Direct,
        CITIZEN_WA,
        Some(WAMID_IN),
    )
}

fn out<'a>(
    route: &'a ReplyRoute,
    text: Option<&'a str>,
    template: Option<&'a Template>,
    last_inbound_at: Option<Timestamp>,
) -> Outgoing<'a> {
    Outgoing {
        reply_id: "balasan-0001",
        route,
        text,
        template,
        subject: None,
        part: 0,
        parts: 1,
        last_inbound_at,
        now: now(),
    }
}

fn sent(id: &str) -> Result<Sent, SendError> {
    Ok(Sent::new(id.to_string()))
}

fn wa_accepted(id: &str) -> Script {
    Script::json(
        200,
        json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": CITIZEN_WA, "wa_id": CITIZEN_WA}],
            "messages": [{"id": id}],
        }),
    )
}

fn assert_error(result: Result<Sent, SendError>, code: &str, retry: Retry, opt_out: bool) {
    match result {
        Err(e) => {
            assert_eq!(
                (e.code.as_str(), e.retry, e.opt_out),
                (code, retry, opt_out),
                "{e:?}"
            );
            assert!(!e.message.contains(TOKEN), "{e:?}");
        }
        Ok(s) => panic!("expected {code}, got {s:?}"),
    }
}

const TEXT: &str =
    "Terima kasih, Bu Siti. Laporan air PDAM di Griya Asri sudah diteruskan ke petugas.";

// ---------------------------------------------------------------------------
// WhatsApp

#[tokio::test]
async fn whatsapp_text_in_the_window_answers_the_message_with_its_first_part() {
    let graph = Graph::start([
        wa_accepted("wamid.KELUAR.satu"),
        wa_accepted("wamid.KELUAR.dua"),
    ])
    .await;
    let sender = whatsapp(&graph, None);
    let route = wa_route();
    let first = Outgoing {
        parts: 2,
        ..out(&route, Some("Bagian pertama."), None, hours_ago(23))
    };
    let second = Outgoing {
        part: 1,
        text: Some("Bagian kedua."),
        ..first
    };
    assert_eq!(sender.send(&first).await, sent("wamid.KELUAR.satu"));
    assert_eq!(sender.send(&second).await, sent("wamid.KELUAR.dua"));

    let seen = graph.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
        assert_eq!(s.query, None, "the token goes in the header only");
        assert_eq!(
            s.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
    }
    assert_eq!(
        seen[0].body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CITIZEN_WA,
            "type": "text",
            "text": {"body": "Bagian pertama."},
            "context": {"message_id": WAMID_IN},
            "biz_opaque_callback_data": "balasan-0001.0",
        })
    );
    assert_eq!(
        seen[1].body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CITIZEN_WA,
            "type": "text",
            "text": {"body": "Bagian kedua."},
            "biz_opaque_callback_data": "balasan-0001.1",
        })
    );
}

#[tokio::test]
async fn whatsapp_text_without_a_message_to_answer_has_no_context() {
    let graph = Graph::start([wa_accepted(WAMID_OUT)]).await;
    let route = route(Channel::Whatsapp, RouteKind::Direct, CITIZEN_WA, None);
    let result = whatsapp(&graph, None)
        .send(&out(&route, Some(TEXT), None, hours_ago(1)))
        .await;
    assert_eq!(result, sent(WAMID_OUT));
    assert!(graph.only().body.get("context").is_none());
}

#[tokio::test]
async fn whatsapp_outside_the_window_sends_the_replys_template() {
    let graph = Graph::start([wa_accepted(WAMID_OUT)]).await;
    // The instance's default is there, but the reply's own template wins.
    let sender = whatsapp(
        &graph,
        Some(json!({"name": "aduan_diterima", "language": "id"})),
    );
    let template = Template {
        name: "aduan_ditindaklanjuti".to_string(),
        language: "id".to_string(),
        params: vec!["Siti Rahmawati".to_string(), "LPR-7K3M-9QX2".to_string()],
    };
    let route = wa_route();
    let result = sender
        .send(&out(&route, Some(TEXT), Some(&template), hours_ago(25)))
        .await;
    assert_eq!(result, sent(WAMID_OUT));
    assert_eq!(
        graph.only().body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CITIZEN_WA,
            "type": "template",
            "template": {
                "name": "aduan_ditindaklanjuti",
                "language": {"code": "id"},
                "components": [{
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Siti Rahmawati"},
                        {"type": "text", "text": "LPR-7K3M-9QX2"},
                    ],
                }],
            },
            "biz_opaque_callback_data": "balasan-0001.0",
        })
    );
}

#[tokio::test]
async fn whatsapp_outside_the_window_falls_back_to_the_default_template() {
    let graph = Graph::start([wa_accepted("wamid.A"), wa_accepted("wamid.B")]).await;
    let sender = whatsapp(
        &graph,
        Some(json!({"name": "aduan_diterima", "language": "id"})),
    );
    let route = wa_route();
    // A citizen not heard from, then one heard from 30 hours ago.
    assert_eq!(
        sender.send(&out(&route, Some(TEXT), None, None)).await,
        sent("wamid.A")
    );
    assert_eq!(
        sender
            .send(&out(&route, Some(TEXT), None, hours_ago(30)))
            .await,
        sent("wamid.B")
    );
    let expected = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CITIZEN_WA,
        "type": "template",
        // No parameters, no components.
        "template": {"name": "aduan_diterima", "language": {"code": "id"}},
        "biz_opaque_callback_data": "balasan-0001.0",
    });
    let seen = graph.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.body == expected), "{seen:#?}");
}

#[tokio::test]
async fn whatsapp_reply_without_text_is_its_template_even_in_the_window() {
    let graph = Graph::start([wa_accepted(WAMID_OUT)]).await;
    let template = Template {
        name: "aduan_diterima".to_string(),
        language: "en_US".to_string(),
        params: vec!["LPR-7K3M-9QX2".to_string()],
    };
    let route = wa_route();
    let result = whatsapp(&graph, None)
        .send(&out(&route, None, Some(&template), hours_ago(1)))
        .await;
    assert_eq!(result, sent(WAMID_OUT));
    let body = graph.only().body;
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["language"], json!({"code": "en_US"}));
    assert!(body.get("context").is_none());
}

#[tokio::test]
async fn whatsapp_closed_window_without_a_template_fails_before_any_request() {
    let graph = Graph::start([]).await;
    let sender = whatsapp(&graph, None);
    let route = wa_route();
    for last in [hours_ago(25), hours_ago(24), None] {
        assert_error(
            sender.send(&out(&route, Some(TEXT), None, last)).await,
            "window_closed",
            Retry::Never,
            false,
        );
    }
    assert_error(
        sender.send(&out(&route, None, None, hours_ago(1))).await,
        "missing_text",
        Retry::Never,
        false,
    );
    assert!(graph.seen().is_empty(), "{:#?}", graph.seen());
}

#[tokio::test]
async fn whatsapp_template_goes_once_for_a_split_reply() {
    let graph = Graph::start([wa_accepted(WAMID_OUT)]).await;
    let sender = whatsapp(
        &graph,
        Some(json!({"name": "aduan_diterima", "language": "id"})),
    );
    let route = wa_route();
    let first = Outgoing {
        parts: 2,
        ..out(&route, Some("Bagian pertama."), None, hours_ago(48))
    };
    assert_eq!(sender.send(&first).await, sent(WAMID_OUT));
    let second = Outgoing {
        part: 1,
        text: Some("Bagian kedua."),
        ..first
    };
    assert_error(
        sender.send(&second).await,
        "window_closed",
        Retry::Never,
        false,
    );
    assert_eq!(graph.seen().len(), 1);
}

/// Sends one text in the window against a stand-in giving `answer`.
async fn whatsapp_answered(answer: Script) -> Result<Sent, SendError> {
    let graph = Graph::start([answer]).await;
    let route = wa_route();
    let result = whatsapp(&graph, None)
        .send(&out(&route, Some(TEXT), None, hours_ago(2)))
        .await;
    assert_eq!(graph.seen().len(), 1);
    result
}

#[tokio::test]
async fn whatsapp_throttling_is_temporary_with_the_retry_after() {
    assert_error(
        whatsapp_answered(
            Script::graph_error(429, 130429, None, "(#130429) Rate limit hit")
                .header("retry-after", "7"),
        )
        .await,
        "130429",
        Retry::Later(Some(Duration::from_secs(7))),
        false,
    );
    // A 429 of a proxy, not of Graph.
    assert_error(
        whatsapp_answered(Script::text(429, "<html>slow down</html>").header("retry-after", "12"))
            .await,
        "http_429",
        Retry::Later(Some(Duration::from_secs(12))),
        false,
    );
    // The code alone is enough, whatever the status.
    for code in [130429, 131056, 131048, 80007, 4, 133016, 131053] {
        assert_error(
            whatsapp_answered(Script::graph_error(400, code, None, "throttled")).await,
            &code.to_string(),
            Retry::Later(None),
            false,
        );
    }
}

#[tokio::test]
async fn whatsapp_server_errors_are_temporary() {
    assert_error(
        whatsapp_answered(Script::text(500, "<html>Internal Server Error</html>")).await,
        "http_500",
        Retry::Later(None),
        false,
    );
    assert_error(
        whatsapp_answered(Script::graph_error(
            503,
            2,
            None,
            "Service temporarily unavailable",
        ))
        .await,
        "2",
        Retry::Later(None),
        false,
    );
}

#[tokio::test]
async fn whatsapp_other_graph_errors_are_permanent_with_their_code() {
    let result = whatsapp_answered(Script::json(
        400,
        json!({"error": {
            "message": "(#100) Invalid parameter",
            "type": "OAuthException",
            "code": 100,
            "error_data": {"messaging_product": "whatsapp", "details": "Parameter 'to' is invalid"},
            "fbtrace_id": "AbCdEfGhIjK",
        }}),
    ))
    .await;
    let err = result.clone().expect_err("refused");
    assert!(
        err.message.contains("Invalid parameter") && err.message.contains("'to' is invalid"),
        "{err:?}"
    );
    assert_error(result, "100", Retry::Never, false);
    assert_error(
        whatsapp_answered(Script::text(404, "not found")).await,
        "http_404",
        Retry::Never,
        false,
    );
}

#[tokio::test]
async fn whatsapp_re_engagement_is_window_closed() {
    assert_error(
        whatsapp_answered(Script::graph_error(
            400,
            131047,
            None,
            "Re-engagement message",
        ))
        .await,
        "window_closed",
        Retry::Never,
        false,
    );
}

#[tokio::test]
async fn whatsapp_invalid_recipients_are_opt_outs() {
    for code in [131026, 131021, 1013, 131030] {
        assert_error(
            whatsapp_answered(Script::graph_error(
                400,
                code,
                None,
                "Message undeliverable",
            ))
            .await,
            "invalid_recipient",
            Retry::Never,
            true,
        );
    }
}

#[tokio::test]
async fn whatsapp_success_without_a_message_id_is_a_bad_response() {
    assert_error(
        whatsapp_answered(Script::json(200, json!({"messaging_product": "whatsapp"}))).await,
        "bad_response",
        Retry::Later(None),
        false,
    );
    assert_error(
        whatsapp_answered(Script::text(200, "OK")).await,
        "bad_response",
        Retry::Later(None),
        false,
    );
}

#[tokio::test]
async fn a_slow_graph_is_a_network_error_without_the_url() {
    let result = whatsapp_answered(wa_accepted(WAMID_OUT).after(Duration::from_secs(2))).await;
    let err = result.clone().expect_err("timed out");
    assert!(
        !err.message.contains("127.0.0.1") && !err.message.contains(PHONE_NUMBER_ID),
        "{err:?}"
    );
    assert_error(result, "network", Retry::Later(None), false);
    // The request went out: the message may have been sent.
    assert!(err.maybe_sent, "{err:?}");
}

#[tokio::test]
async fn an_unreachable_graph_is_a_network_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config: WhatsAppSendConfig = serde_json::from_value(json!({
        "access_token": TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
        "base_url": format!("http://127.0.0.1:{port}"),
    }))
    .expect("config");
    let sender = WhatsAppSender::new(config, client()).expect("sender");
    let route = wa_route();
    let result = sender
        .send(&out(&route, Some(TEXT), None, hours_ago(1)))
        .await;
    // Nothing could have been sent without a connection.
    assert!(result.as_ref().is_err_and(|e| !e.maybe_sent), "{result:?}");
    assert_error(result, "network", Retry::Later(None), false);
}

#[tokio::test]
async fn the_token_is_never_in_an_error_or_a_debug_print() {
    // Graph quotes a malformed token back in its message.
    let result = whatsapp_answered(Script::graph_error(
        401,
        190,
        None,
        &format!("Malformed access token {TOKEN}"),
    ))
    .await;
    let err = result.clone().expect_err("refused");
    assert!(err.message.contains("Malformed access token"), "{err:?}");
    assert!(!err.to_string().contains(TOKEN));
    assert_error(result, "190", Retry::Never, false);

    let graph = Graph::start([]).await;
    assert!(!format!("{:?}", whatsapp(&graph, None)).contains(TOKEN));
    assert!(!format!("{:?}", messenger(&graph, Platform::Messenger, json!({}))).contains(TOKEN));
}

#[tokio::test]
async fn whatsapp_settings_have_defaults_and_are_checked() {
    let config: WhatsAppSendConfig = serde_json::from_value(json!({
        "access_token": TOKEN,
        "phone_number_id": PHONE_NUMBER_ID,
    }))
    .expect("config");
    assert_eq!(config.base_url, "https://graph.facebook.com");
    assert_eq!(config.api_version, "v21.0");
    assert_eq!(config.default_template, None);
    assert!(
        serde_json::from_value::<WhatsAppSendConfig>(json!({
            "access_token": TOKEN,
            "phone_number_id": PHONE_NUMBER_ID,
            "phone_number": "6281180001234",
        }))
        .is_err()
    );
    let sender = WhatsAppSender::new(config.clone(), client()).expect("sender");
    assert_eq!(sender.max_chars(&wa_route()), 4096);
    for bad in [
        json!({"phone_number_id": "1065/../me"}),
        json!({"base_url": "graph.facebook.com"}),
        json!({"api_version": ""}),
        json!({"default_template": {"name": "", "language": "id"}}),
    ] {
        let mut c = json!({"access_token": TOKEN, "phone_number_id": PHONE_NUMBER_ID});
        if let (Some(c), Some(b)) = (c.as_object_mut(), bad.as_object()) {
            c.extend(b.clone());
        }
        let config: WhatsAppSendConfig = serde_json::from_value(c).expect("config");
        let err = WhatsAppSender::new(config, client()).expect_err("bad settings");
        assert!(!err.contains(TOKEN), "{err}");
    }
}

// ---------------------------------------------------------------------------
// Messenger and Instagram

fn fb_route(kind: RouteKind, to: &str) -> ReplyRoute {
    route(Channel::Facebook, kind, to, None)
}

fn fb_accepted(mid: &str) -> Script {
    Script::json(
        200,
        json!({"recipient_id": CITIZEN_PSID, "message_id": mid}),
    )
}

const MID: &str =
    "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN20";

#[tokio::test]
async fn messenger_answers_in_the_window_as_a_response() {
    let graph = Graph::start([fb_accepted(MID)]).await;
    let route = fb_route(RouteKind::Direct, CITIZEN_PSID);
    let result = messenger(&graph, Platform::Messenger, json!({}))
        .send(&out(&route, Some(TEXT), None, hours_ago(23)))
        .await;
    assert_eq!(result, sent(MID));
    let seen = graph.only();
    assert_eq!(seen.path, format!("/v21.0/{PAGE_ID}/messages"));
    assert_eq!(seen.query, None);
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(
        seen.body,
        json!({
            "recipient": {"id": CITIZEN_PSID},
            "messaging_type": "RESPONSE",
            "message": {"text": TEXT},
        })
    );
}

#[tokio::test]
async fn messenger_human_agent_tag_reaches_seven_days() {
    let graph = Graph::start([fb_accepted(MID)]).await;
    let route = fb_route(RouteKind::Direct, CITIZEN_PSID);
    let sender = messenger(&graph, Platform::Messenger, json!({"human_agent": true}));
    assert_eq!(
        sender
            .send(&out(&route, Some(TEXT), None, hours_ago(72)))
            .await,
        sent(MID)
    );
    assert_eq!(
        graph.only().body,
        json!({
            "recipient": {"id": CITIZEN_PSID},
            "messaging_type": "MESSAGE_TAG",
            "tag": "HUMAN_AGENT",
            "message": {"text": TEXT},
        })
    );
    // Eight days is past even the tag; nothing is asked.
    assert_error(
        sender
            .send(&out(&route, Some(TEXT), None, hours_ago(8 * 24)))
            .await,
        "window_closed",
        Retry::Never,
        false,
    );
    assert_eq!(graph.seen().len(), 1);
}

#[tokio::test]
async fn messenger_without_human_agent_closes_after_a_day() {
    let graph = Graph::start([]).await;
    let route = fb_route(RouteKind::Direct, CITIZEN_PSID);
    let sender = messenger(&graph, Platform::Messenger, json!({}));
    for last in [hours_ago(72), hours_ago(25), None] {
        assert_error(
            sender.send(&out(&route, Some(TEXT), None, last)).await,
            "window_closed",
            Retry::Never,
            false,
        );
    }
    assert_error(
        sender.send(&out(&route, None, None, hours_ago(1))).await,
        "missing_text",
        Retry::Never,
        false,
    );
    let mention = fb_route(RouteKind::Mention, CITIZEN_PSID);
    assert_error(
        sender
            .send(&out(&mention, Some(TEXT), None, hours_ago(1)))
            .await,
        "unsupported_route",
        Retry::Never,
        false,
    );
    assert!(graph.seen().is_empty(), "{:#?}", graph.seen());
}

#[tokio::test]
async fn instagram_direct_messages_go_to_the_account() {
    let graph = Graph::start([fb_accepted("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE")]).await;
    let route = route(
        Channel::Instagram,
        RouteKind::Direct,
        "1254459154682919",
        None,
    );
    let sender = messenger(&graph, Platform::Instagram, json!({}));
    assert_eq!(sender.max_chars(&route), 999);
    let result = sender
        .send(&out(&route, Some(TEXT), None, hours_ago(2)))
        .await;
    assert_eq!(result, sent("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE"));
    let seen = graph.only();
    assert_eq!(seen.path, format!("/v21.0/{IG_ID}/messages"));
    assert_eq!(seen.body["recipient"], json!({"id": "1254459154682919"}));
}

const FB_COMMENT: &str = "448242228374517_1029384756102938";
const IG_COMMENT: &str = "17912345678901234";

#[tokio::test]
async fn comments_are_answered_privately_within_seven_days() {
    let graph = Graph::start([fb_accepted(MID)]).await;
    let route = fb_route(RouteKind::Comment, FB_COMMENT);
    let sender = messenger(&graph, Platform::Messenger, json!({}));
    assert_eq!(sender.max_chars(&route), 2000);
    assert_eq!(
        sender
            .send(&out(&route, Some(TEXT), None, hours_ago(6 * 24)))
            .await,
        sent(MID)
    );
    let seen = graph.only();
    assert_eq!(seen.path, format!("/v21.0/{PAGE_ID}/messages"));
    assert_eq!(
        seen.body,
        json!({
            "recipient": {"comment_id": FB_COMMENT},
            "message": {"text": TEXT},
        })
    );
    // Past seven days, or a reply of two messages: nothing is asked.
    assert_error(
        sender
            .send(&out(&route, Some(TEXT), None, hours_ago(8 * 24)))
            .await,
        "window_closed",
        Retry::Never,
        false,
    );
    let split = Outgoing {
        parts: 2,
        ..out(&route, Some(TEXT), None, hours_ago(1))
    };
    assert_error(sender.send(&split).await, "too_long", Retry::Never, false);
    assert_eq!(graph.seen().len(), 1);
}

#[tokio::test]
async fn comments_are_answered_publicly_on_facebook_and_instagram() {
    let graph = Graph::start([
        Script::json(200, json!({"id": "1029384756102938_5647382910"})),
        Script::json(200, json!({"id": "17998877665544332"})),
    ])
    .await;
    let public = json!({"comment_reply": "public"});

    let fb = fb_route(RouteKind::Comment, FB_COMMENT);
    let sender = messenger(&graph, Platform::Messenger, public.clone());
    assert_eq!(sender.max_chars(&fb), 8000);
    // A public reply has no window.
    assert_eq!(
        sender
            .send(&out(&fb, Some(TEXT), None, hours_ago(30 * 24)))
            .await,
        sent("1029384756102938_5647382910")
    );

    let ig = route(Channel::Instagram, RouteKind::Comment, IG_COMMENT, None);
    let sender = messenger(&graph, Platform::Instagram, public);
    assert_eq!(sender.max_chars(&ig), 2200);
    assert_eq!(
        sender.send(&out(&ig, Some(TEXT), None, None)).await,
        sent("17998877665544332")
    );

    let seen = graph.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, format!("/v21.0/{FB_COMMENT}/comments"));
    assert_eq!(seen[1].path, format!("/v21.0/{IG_COMMENT}/replies"));
    for s in &seen {
        assert_eq!(s.body, json!({"message": TEXT}));
        assert_eq!(
            s.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
    }
}

#[tokio::test]
async fn a_public_reply_to_an_odd_comment_id_is_not_sent() {
    let graph = Graph::start([]).await;
    let route = fb_route(RouteKind::Comment, "123/../me/feed");
    let sender = messenger(
        &graph,
        Platform::Messenger,
        json!({"comment_reply": "public"}),
    );
    assert_error(
        sender
            .send(&out(&route, Some(TEXT), None, hours_ago(1)))
            .await,
        "invalid_recipient",
        Retry::Never,
        false,
    );
    assert!(graph.seen().is_empty());
}

/// Sends one direct message in the window against a stand-in giving `answer`.
async fn messenger_answered(answer: Script) -> Result<Sent, SendError> {
    let graph = Graph::start([answer]).await;
    let route = fb_route(RouteKind::Direct, CITIZEN_PSID);
    let result = messenger(&graph, Platform::Messenger, json!({}))
        .send(&out(&route, Some(TEXT), None, hours_ago(2)))
        .await;
    assert_eq!(graph.seen().len(), 1);
    result
}

#[tokio::test]
async fn messenger_graph_errors_are_read_by_code() {
    let cases: [(Script, &str, Retry, bool); 12] = [
        (
            Script::graph_error(
                400,
                613,
                None,
                "Calls to this api have exceeded the rate limit.",
            )
            .header("retry-after", "30"),
            "613",
            Retry::Later(Some(Duration::from_secs(30))),
            false,
        ),
        (
            Script::graph_error(400, 4, None, "Application request limit reached"),
            "4",
            Retry::Later(None),
            false,
        ),
        (
            Script::graph_error(400, 80006, None, "There have been too many messages"),
            "80006",
            Retry::Later(None),
            false,
        ),
        (
            Script::graph_error(400, 17, None, "User request limit reached"),
            "17",
            Retry::Later(None),
            false,
        ),
        (
            Script::graph_error(400, 32, None, "Page request limit reached"),
            "32",
            Retry::Later(None),
            false,
        ),
        (
            Script::graph_error(500, 2, None, "An unexpected error has occurred."),
            "2",
            Retry::Later(None),
            false,
        ),
        (
            Script::text(502, "Bad Gateway"),
            "http_502",
            Retry::Later(None),
            false,
        ),
        (
            Script::graph_error(
                400,
                10,
                Some(2018278),
                "This message is sent outside of allowed window.",
            ),
            "window_closed",
            Retry::Never,
            false,
        ),
        (
            Script::graph_error(400, 10, Some(2018109), "outside of allowed window"),
            "window_closed",
            Retry::Never,
            false,
        ),
        (
            Script::graph_error(
                400,
                551,
                Some(1545041),
                "This person isn't available right now.",
            ),
            "blocked",
            Retry::Never,
            true,
        ),
        (
            Script::graph_error(400, 100, Some(2018001), "No matching user found"),
            "invalid_recipient",
            Retry::Never,
            true,
        ),
        (
            Script::graph_error(
                400,
                100,
                None,
                "(#100) Param recipient[id] must be a valid ID",
            ),
            "100",
            Retry::Never,
            false,
        ),
    ];
    for (answer, code, retry, opt_out) in cases {
        assert_error(messenger_answered(answer).await, code, retry, opt_out);
    }
    assert_error(
        messenger_answered(Script::json(200, json!({"recipient_id": CITIZEN_PSID}))).await,
        "bad_response",
        Retry::Later(None),
        false,
    );
}

#[tokio::test]
async fn messenger_settings_have_defaults() {
    let config: MessengerSendConfig = serde_json::from_value(json!({
        "access_token": TOKEN,
        "page_id": "me",
    }))
    .expect("config");
    assert_eq!(config.base_url, "https://graph.facebook.com");
    assert_eq!(config.api_version, "v21.0");
    assert!(!config.human_agent);
    assert_eq!(config.comment_reply, CommentReply::Private);
    assert!(MessengerSender::new(config, client(), Platform::Instagram).is_ok());
    assert!(
        serde_json::from_value::<MessengerSendConfig>(json!({
            "access_token": TOKEN,
            "page_id": PAGE_ID,
            "comment_reply": "both",
        }))
        .is_err()
    );
    assert!(
        serde_json::from_value::<MessengerSendConfig>(json!({
            "access_token": TOKEN,
            "page_id": PAGE_ID,
            "human_agent_days": 7,
        }))
        .is_err()
    );
}
