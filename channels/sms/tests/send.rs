//! The Twilio, Vonage, Infobip and generic gateway senders against a
//! stand-in on 127.0.0.1: the requests they make (method, path, query,
//! credentials, whole form or JSON body), the rules they keep without
//! asking (the WhatsApp window, the count of SMS parts), and what every
//! kind of answer (success, provider errors, throttling with Retry-After,
//! 5xx, silence) becomes. No error and no `Debug` print carries a credential.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_adapter::{
    Channel, Outgoing, ReplyRoute, ReplySender, Retry, RouteKind, SendError, Sent, Template,
    Timestamp,
};
use aduan_sms::send::SMS_MAX_CHARS;
use aduan_sms::{
    GenericSendConfig, GenericSender, InfobipSendConfig, InfobipSender, TwilioSendConfig,
    TwilioSender, VonageSendConfig, VonageSender,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const ACCOUNT_SID: &str = "AC5f0d3e1b2a4c6e8f0a1b3c5d7e9f1a2b";
const AUTH_TOKEN: &str = "twilio-auth-token-jabar-2026";
const OUR_NUMBER: &str = "+6281100017080";
const CITIZEN: &str = "+6281234567890";
const CITIZEN_WA: &str = "whatsapp:+6281234567890";
const VONAGE_KEY: &str = "a1b2c3d4";
const VONAGE_SECRET: &str = "vonage-api-secret-jabar";
const INFOBIP_KEY: &str = "infobip-api-key-jabar-2026";
const GATEWAY_PASSWORD: &str = "sandi-kannel-jabar";
const BEARER: &str = "Bearer android-gateway-token-2026";
const CALLBACK: &str = "https://lapor.example.go.id/webhooks/twilio/twilio-jabar";

/// Every credential of these tests: none may show in an error or a `Debug` print.
const CREDENTIALS: [&str; 5] = [
    AUTH_TOKEN,
    VONAGE_SECRET,
    INFOBIP_KEY,
    GATEWAY_PASSWORD,
    "android-gateway-token-2026",
];

// ---------------------------------------------------------------------------
// The stand-in

/// One request the stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body read as a form, in order.
    fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    /// The query read as a form, in order.
    fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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
            headers: vec![("content-type", "text/plain".to_string())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
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

struct StandIn {
    url: String,
    shared: Shared,
}

impl StandIn {
    async fn start(script: impl IntoIterator<Item = Script>) -> StandIn {
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
        StandIn {
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
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
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
// Routes, messages and checks

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .expect("client")
}

/// 2026-11-22T08:20:00Z.
fn now() -> Timestamp {
    Timestamp::from_unix_seconds(1_795_335_600).expect("in range")
}

fn hours_ago(hours: i64) -> Option<Timestamp> {
    Timestamp::from_unix_seconds(1_795_335_600 - hours * 3600)
}

fn route(channel: Channel, to: &str) -> ReplyRoute {
    ReplyRoute {
        complaint_id: "01JD8X3M7Q9K2V5R6T8W0Y1Z3A".to_string(),
        instance: "sms-jabar".to_string(),
        channel,
        provider: "test".to_string(),
        kind: RouteKind::Direct,
        to: to.to_string(),
        message_id: Some("SM3f1c9a7e2b4d6f8a0c2e4b6d8f0a1c3e".to_string()),
        recipient: Some(OUR_NUMBER.to_string()),
        subject: None,
        references: Vec::new(),
        last_inbound_at: now(),
    }
}

fn sms_route() -> ReplyRoute {
    route(Channel::Sms, CITIZEN)
}

fn wa_route() -> ReplyRoute {
    route(Channel::Whatsapp, CITIZEN_WA)
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

fn assert_error(result: Result<Sent, SendError>, code: &str, retry: Retry, opt_out: bool) {
    match result {
        Err(e) => {
            assert_eq!(
                (e.code.as_str(), e.retry, e.opt_out),
                (code, retry, opt_out),
                "{e:?}"
            );
            assert_clean(&format!("{e} {e:?}"));
        }
        Ok(s) => panic!("expected {code}, got {s:?}"),
    }
}

/// Panics when `printed` shows a credential or the text sent.
fn assert_clean(printed: &str) {
    for secret in CREDENTIALS {
        assert!(!printed.contains(secret), "{printed}");
    }
    assert!(!printed.contains("Griya Asri"), "{printed}");
}

const TEXT: &str =
    "Terima kasih, Bu Siti. Laporan air PDAM di Griya Asri sudah diteruskan ke petugas.";

/// A GSM-7 reply of `n` characters.
fn gsm_text(n: usize) -> String {
    "Petugas Dinas PU akan memperbaiki jalan berlubang di Jl. Raya Cibinong "
        .chars()
        .cycle()
        .take(n)
        .collect()
}

// ---------------------------------------------------------------------------
// Twilio

fn twilio(stand_in: &StandIn, extra: Value) -> TwilioSender {
    let mut config = json!({
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "base_url": stand_in.url,
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    if config.get("messaging_service_sid").is_none() && config.get("from").is_none() {
        config["from"] = json!(OUR_NUMBER);
    }
    let config: TwilioSendConfig = serde_json::from_value(config).expect("config");
    TwilioSender::new(config, client()).expect("sender")
}

fn twilio_created(sid: &str) -> Script {
    Script::json(
        201,
        json!({
            "sid": sid, "status": "queued", "account_sid": ACCOUNT_SID,
            "to": CITIZEN, "from": OUR_NUMBER, "num_segments": "1",
        }),
    )
}

fn twilio_error(status: u16, code: i64, message: &str) -> Script {
    Script::json(
        status,
        json!({
            "code": code, "message": message, "status": status,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        }),
    )
}

fn basic(user: &str, password: &str) -> String {
    aduan_adapter::testkit::basic_auth(user, password)
}

#[tokio::test]
async fn twilio_sms_posts_the_form_with_basic_auth_and_the_status_callback() {
    let stand_in = StandIn::start([twilio_created("SM0f1e2d3c4b5a69788796a5b4c3d2e1f0")]).await;
    let sender = twilio(&stand_in, json!({"status_callback": CALLBACK}));
    let route = sms_route();
    assert_eq!(sender.max_chars(&route), SMS_MAX_CHARS);
    let result = sender.send(&out(&route, Some(TEXT), None, None)).await;
    assert_eq!(result, sent("SM0f1e2d3c4b5a69788796a5b4c3d2e1f0"));
    let seen = stand_in.only();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        seen.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(seen.query, None);
    assert_eq!(
        seen.header("authorization"),
        Some(basic(ACCOUNT_SID, AUTH_TOKEN).as_str())
    );
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.form(),
        pairs(&[
            ("To", CITIZEN),
            ("From", OUR_NUMBER),
            ("Body", TEXT),
            // Our reference rides in the callback's query.
            (
                "StatusCallback",
                &format!("{CALLBACK}?reply_id=balasan-0001&part=0"),
            ),
        ])
    );
}

#[tokio::test]
async fn twilio_messaging_service_replaces_from() {
    let stand_in = StandIn::start([twilio_created("SM1")]).await;
    let sender = twilio(
        &stand_in,
        json!({"messaging_service_sid": "MG9a8b7c6d5e4f30211203f4e5d6c7b8a9"}),
    );
    let route = sms_route();
    assert_eq!(
        sender.send(&out(&route, Some(TEXT), None, None)).await,
        sent("SM1")
    );
    assert_eq!(
        stand_in.only().form(),
        pairs(&[
            ("To", CITIZEN),
            ("MessagingServiceSid", "MG9a8b7c6d5e4f30211203f4e5d6c7b8a9"),
            ("Body", TEXT),
        ])
    );
}

#[tokio::test]
async fn twilio_whatsapp_in_the_window_sends_the_text() {
    let stand_in = StandIn::start([twilio_created("SM2")]).await;
    let sender = twilio(
        &stand_in,
        json!({"default_content_sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e"}),
    );
    let route = wa_route();
    assert_eq!(sender.max_chars(&route), 1600);
    assert_eq!(
        sender
            .send(&out(&route, Some(TEXT), None, hours_ago(23)))
            .await,
        sent("SM2")
    );
    assert_eq!(
        stand_in.only().form(),
        pairs(&[
            ("To", CITIZEN_WA),
            ("From", "whatsapp:+6281100017080"),
            ("Body", TEXT),
        ])
    );
}

#[tokio::test]
async fn twilio_whatsapp_outside_the_window_sends_the_replys_content_template() {
    let stand_in = StandIn::start([twilio_created("SM3")]).await;
    // The default is there, but the reply's own template wins.
    let sender = twilio(
        &stand_in,
        json!({"default_content_sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e"}),
    );
    let template = Template {
        name: "HX350d429d32e64a552466cafecbe95f3c".to_string(),
        language: "id".to_string(),
        params: vec!["Siti Rahmawati".to_string(), "LPR-7K3M-9QX2".to_string()],
    };
    let route = wa_route();
    assert_eq!(
        sender
            .send(&out(&route, Some(TEXT), Some(&template), hours_ago(25)))
            .await,
        sent("SM3")
    );
    let form = stand_in.only().form();
    assert_eq!(
        form[..3],
        pairs(&[
            ("To", CITIZEN_WA),
            ("From", "whatsapp:+6281100017080"),
            ("ContentSid", "HX350d429d32e64a552466cafecbe95f3c"),
        ])
    );
    assert_eq!(form[3].0, "ContentVariables");
    assert_eq!(
        serde_json::from_str::<Value>(&form[3].1).expect("JSON"),
        json!({"1": "Siti Rahmawati", "2": "LPR-7K3M-9QX2"})
    );
    assert_eq!(form.len(), 4, "no Body outside the window: {form:?}");
}

#[tokio::test]
async fn twilio_whatsapp_outside_the_window_falls_back_to_the_default_content() {
    let stand_in = StandIn::start([twilio_created("SM4"), twilio_created("SM5")]).await;
    let sender = twilio(
        &stand_in,
        json!({"default_content_sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e"}),
    );
    let route = wa_route();
    // A citizen not heard from, then one heard from exactly 24 hours ago.
    assert_eq!(
        sender.send(&out(&route, Some(TEXT), None, None)).await,
        sent("SM4")
    );
    assert_eq!(
        sender
            .send(&out(&route, Some(TEXT), None, hours_ago(24)))
            .await,
        sent("SM5")
    );
    let expected = pairs(&[
        ("To", CITIZEN_WA),
        ("From", "whatsapp:+6281100017080"),
        ("ContentSid", "HXb5b62575e6e4ff6129ad7c8efe1f983e"),
    ]);
    let seen = stand_in.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.form() == expected), "{seen:#?}");
}

#[tokio::test]
async fn twilio_whatsapp_without_a_template_fails_before_any_request() {
    let stand_in = StandIn::start([]).await;
    let sender = twilio(&stand_in, json!({}));
    let route = wa_route();
    for last in [hours_ago(25), hours_ago(24), None] {
        assert_error(
            sender.send(&out(&route, Some(TEXT), None, last)).await,
            "window_closed",
            Retry::Never,
            false,
        );
    }
    // A Cloud API template name is no Content SID.
    let meta_style = Template {
        name: "aduan_diterima".to_string(),
        language: "id".to_string(),
        params: vec![],
    };
    assert_error(
        sender
            .send(&out(&route, Some(TEXT), Some(&meta_style), hours_ago(30)))
            .await,
        "invalid_template",
        Retry::Never,
        false,
    );
    assert_error(
        sender.send(&out(&route, None, None, hours_ago(1))).await,
        "missing_text",
        Retry::Never,
        false,
    );
    // Outside the window the template stands for the whole reply.
    let sender = twilio(
        &stand_in,
        json!({"default_content_sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e"}),
    );
    let second = Outgoing {
        part: 1,
        parts: 2,
        ..out(&route, Some("Bagian kedua."), None, hours_ago(48))
    };
    assert_error(
        sender.send(&second).await,
        "window_closed",
        Retry::Never,
        false,
    );
    assert!(stand_in.seen().is_empty(), "{:#?}", stand_in.seen());
}

#[tokio::test]
async fn twilio_a_reply_without_text_is_its_template_even_in_the_window() {
    let stand_in = StandIn::start([twilio_created("SM6")]).await;
    let template = Template {
        name: "HX350d429d32e64a552466cafecbe95f3c".to_string(),
        language: "id".to_string(),
        params: vec![],
    };
    let route = wa_route();
    assert_eq!(
        twilio(&stand_in, json!({}))
            .send(&out(&route, None, Some(&template), hours_ago(1)))
            .await,
        sent("SM6")
    );
    assert_eq!(
        stand_in.only().form()[2],
        (
            "ContentSid".to_string(),
            "HX350d429d32e64a552466cafecbe95f3c".to_string()
        )
    );
}

#[tokio::test]
async fn twilio_sms_too_long_or_to_no_number_fails_before_any_request() {
    let stand_in = StandIn::start([twilio_created("SM7")]).await;
    let sender = twilio(&stand_in, json!({}));
    let route = sms_route();
    let long = gsm_text(153 * 3 + 1);
    assert_error(
        sender.send(&out(&route, Some(&long), None, None)).await,
        "too_long",
        Retry::Never,
        false,
    );
    let alphanumeric = route_to("PEMKOT");
    assert_error(
        sender
            .send(&out(&alphanumeric, Some(TEXT), None, None))
            .await,
        "invalid_recipient",
        Retry::Never,
        false,
    );
    let template = Template {
        name: "HX350d429d32e64a552466cafecbe95f3c".to_string(),
        language: "id".to_string(),
        params: vec![],
    };
    assert_error(
        sender.send(&out(&route, None, Some(&template), None)).await,
        "missing_text",
        Retry::Never,
        false,
    );
    assert!(stand_in.seen().is_empty());
    // Three full parts still go.
    let three = gsm_text(153 * 3);
    assert_eq!(
        sender.send(&out(&route, Some(&three), None, None)).await,
        sent("SM7")
    );
}

fn route_to(to: &str) -> ReplyRoute {
    route(Channel::Sms, to)
}

/// Sends one SMS through Twilio against a stand-in giving `answer`.
async fn twilio_answered(answer: Script) -> Result<Sent, SendError> {
    let stand_in = StandIn::start([answer]).await;
    let route = sms_route();
    let result = twilio(&stand_in, json!({}))
        .send(&out(&route, Some(TEXT), None, None))
        .await;
    assert_eq!(stand_in.seen().len(), 1);
    result
}

#[tokio::test]
async fn twilio_error_codes() {
    assert_error(
        twilio_answered(twilio_error(
            400,
            21610,
            "Attempt to send to unsubscribed recipient",
        ))
        .await,
        "opted_out",
        Retry::Never,
        true,
    );
    for code in [21211, 21614] {
        assert_error(
            twilio_answered(twilio_error(
                400,
                code,
                "The 'To' number is not a valid phone number.",
            ))
            .await,
            "invalid_recipient",
            Retry::Never,
            true,
        );
    }
    assert_error(
        twilio_answered(twilio_error(
            400,
            63016,
            "Failed to send freeform message because you are outside the allowed window.",
        ))
        .await,
        "window_closed",
        Retry::Never,
        false,
    );
    assert_error(
        twilio_answered(twilio_error(429, 20429, "Too Many Requests").header("retry-after", "7"))
            .await,
        "20429",
        Retry::Later(Some(Duration::from_secs(7))),
        false,
    );
    assert_error(
        twilio_answered(twilio_error(400, 63017, "Rate limit exceeded")).await,
        "63017",
        Retry::Later(None),
        false,
    );
    assert_error(
        twilio_answered(twilio_error(503, 20503, "Service Unavailable")).await,
        "20503",
        Retry::Later(None),
        false,
    );
    assert_error(
        twilio_answered(Script::text(502, "<html>Bad Gateway</html>")).await,
        "http_502",
        Retry::Later(None),
        false,
    );
    assert_error(
        twilio_answered(Script::text(429, "slow down").header("retry-after", "12")).await,
        "http_429",
        Retry::Later(Some(Duration::from_secs(12))),
        false,
    );
    let result = twilio_answered(twilio_error(
        400,
        21606,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number.",
    ))
    .await;
    let err = result.clone().expect_err("refused");
    assert!(
        err.message.contains("21606") && err.message.contains("'From'"),
        "{err:?}"
    );
    assert_error(result, "21606", Retry::Never, false);
    assert_error(
        twilio_answered(Script::json(201, json!({"status": "queued"}))).await,
        "bad_response",
        Retry::Later(None),
        false,
    );
}

#[tokio::test]
async fn twilio_never_shows_its_token() {
    // An answer quoting the token and the text back.
    let result = twilio_answered(twilio_error(
        401,
        20003,
        &format!("Authenticate with {AUTH_TOKEN} failed for: {TEXT}"),
    ))
    .await;
    let err = result.clone().expect_err("refused");
    assert!(err.message.contains("Authenticate with ***"), "{err:?}");
    assert_error(result, "20003", Retry::Never, false);
    let stand_in = StandIn::start([]).await;
    let sender = twilio(&stand_in, json!({}));
    assert_clean(&format!("{sender:?}"));
    let config: TwilioSendConfig = serde_json::from_value(json!({
        "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": OUR_NUMBER,
    }))
    .expect("config");
    assert_clean(&format!("{config:?}"));
}

#[tokio::test]
async fn twilio_settings_are_checked() {
    let build = |extra: Value| {
        let mut config = json!({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN});
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        serde_json::from_value::<TwilioSendConfig>(config)
            .map_err(|e| e.to_string())
            .and_then(|c| TwilioSender::new(c, client()))
    };
    assert!(build(json!({"from": OUR_NUMBER})).is_ok());
    assert!(build(json!({"from": "whatsapp:+6281100017080"})).is_ok());
    for bad in [
        json!({}),
        json!({"from": OUR_NUMBER, "messaging_service_sid": "MG1"}),
        json!({"from": "081100017080"}),
        json!({"from": OUR_NUMBER, "default_content_sid": "aduan_diterima"}),
        json!({"from": OUR_NUMBER, "max_parts": 0}),
        json!({"from": OUR_NUMBER, "status_callback": "lapor.example.go.id"}),
        json!({"from": OUR_NUMBER, "account_sid": "AC/../x"}),
        json!({"from": OUR_NUMBER, "media": true}),
    ] {
        let err = build(bad.clone()).expect_err("refused");
        assert_clean(&err);
        assert!(!err.is_empty(), "{bad}");
    }
}

// ---------------------------------------------------------------------------
// Vonage

fn vonage(stand_in: &StandIn, extra: Value) -> VonageSender {
    let mut config = json!({
        "api_key": VONAGE_KEY,
        "api_secret": VONAGE_SECRET,
        "from": OUR_NUMBER,
        "base_url": stand_in.url,
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let config: VonageSendConfig = serde_json::from_value(config).expect("config");
    VonageSender::new(config, client()).expect("sender")
}

fn vonage_sent(ids: &[&str]) -> Script {
    let messages: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "to": "6281234567890", "message-id": id, "status": "0",
                "remaining-balance": "12.34000000", "message-price": "0.02810000",
                "network": "51010",
            })
        })
        .collect();
    Script::json(
        200,
        json!({"message-count": ids.len().to_string(), "messages": messages}),
    )
}

fn vonage_status(status: &str, error_text: &str) -> Script {
    Script::json(
        200,
        json!({"message-count": "1", "messages": [{"status": status, "error-text": error_text}]}),
    )
}

#[tokio::test]
async fn vonage_gsm7_text_is_posted_without_a_type() {
    let stand_in = StandIn::start([vonage_sent(&["1B00000000C0A501"])]).await;
    let dlr = "https://lapor.example.go.id/webhooks/vonage/vonage-jabar";
    let sender = vonage(&stand_in, json!({"callback": dlr}));
    let route = sms_route();
    assert_eq!(sender.max_chars(&route), SMS_MAX_CHARS);
    assert_eq!(
        sender.send(&out(&route, Some(TEXT), None, None)).await,
        sent("1B00000000C0A501")
    );
    let seen = stand_in.only();
    assert_eq!(
        (seen.method.clone(), seen.path.as_str()),
        (Method::POST, "/sms/json")
    );
    assert_eq!(seen.query, None, "credentials stay out of the URL");
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.form(),
        pairs(&[
            ("api_key", VONAGE_KEY),
            ("api_secret", VONAGE_SECRET),
            ("from", "6281100017080"),
            ("to", "6281234567890"),
            ("text", TEXT),
            ("status-report-req", "1"),
            ("callback", dlr),
            ("client-ref", "balasan-0001.0"),
        ])
    );
}

#[tokio::test]
async fn vonage_text_outside_gsm7_goes_as_unicode() {
    let stand_in = StandIn::start([
        vonage_sent(&["1B00000000C0A502"]),
        vonage_sent(&["1B00000000C0A503"]),
    ])
    .await;
    let sender = vonage(&stand_in, json!({"from": "PEMKOT"}));
    let route = sms_route();
    for text in [
        "Terima kasih 🙏 aduan Anda sudah kami terima.",
        "Petugas datang hari Jum’at.",
    ] {
        sender
            .send(&out(&route, Some(text), None, None))
            .await
            .expect("sent");
    }
    for seen in stand_in.seen() {
        let form = seen.form();
        assert_eq!(form[2], ("from".to_string(), "PEMKOT".to_string()));
        assert!(
            form.contains(&("type".to_string(), "unicode".to_string())),
            "{form:?}"
        );
        assert!(!form.iter().any(|(k, _)| k == "callback"), "{form:?}");
    }
    // `€` and brackets are GSM-7 (extension table): no type.
    let stand_in = StandIn::start([vonage_sent(&["1B00000000C0A504"])]).await;
    vonage(&stand_in, json!({}))
        .send(&out(&route, Some("Denda [Perda 5/2019]: €20"), None, None))
        .await
        .expect("sent");
    assert!(!stand_in.only().form().iter().any(|(k, _)| k == "type"));
}

#[tokio::test]
async fn vonage_concatenated_text_answers_every_parts_id_the_last_first() {
    let stand_in = StandIn::start([vonage_sent(&[
        "1B00000000C0A601",
        "1B00000000C0A602",
        "1B00000000C0A603",
    ])])
    .await;
    let route = sms_route();
    let text = gsm_text(400);
    // The last part's id is the message's; the others' receipts match too.
    assert_eq!(
        vonage(&stand_in, json!({}))
            .send(&out(&route, Some(&text), None, None))
            .await,
        Ok(Sent {
            provider_message_id: "1B00000000C0A603".into(),
            earlier_ids: vec!["1B00000000C0A601".into(), "1B00000000C0A602".into()],
        })
    );
}

#[tokio::test]
async fn vonage_too_long_fails_before_any_request() {
    let stand_in = StandIn::start([]).await;
    let route = sms_route();
    // 3 × 67 UTF-16 units is the most in three UCS-2 parts.
    let text = format!("🙏 {}", gsm_text(67 * 3 - 2));
    assert_error(
        vonage(&stand_in, json!({}))
            .send(&out(&route, Some(&text), None, None))
            .await,
        "too_long",
        Retry::Never,
        false,
    );
    assert_error(
        vonage(&stand_in, json!({"max_parts": 1}))
            .send(&out(&route, Some(&gsm_text(161)), None, None))
            .await,
        "too_long",
        Retry::Never,
        false,
    );
    assert!(stand_in.seen().is_empty());
}

async fn vonage_answered(answer: Script) -> Result<Sent, SendError> {
    let stand_in = StandIn::start([answer]).await;
    let route = sms_route();
    let result = vonage(&stand_in, json!({}))
        .send(&out(&route, Some(TEXT), None, None))
        .await;
    assert_eq!(stand_in.seen().len(), 1);
    result
}

#[tokio::test]
async fn vonage_statuses() {
    assert_error(
        vonage_answered(vonage_status(
            "1",
            "Throughput Rate Exceeded - please wait [ 30 ] and retry",
        ))
        .await,
        "1",
        Retry::Later(None),
        false,
    );
    let result = vonage_answered(vonage_status(
        "4",
        &format!("Bad Credentials: {VONAGE_SECRET}"),
    ))
    .await;
    let err = result.clone().expect_err("refused");
    assert!(err.message.contains("Bad Credentials: ***"), "{err:?}");
    assert_error(result, "4", Retry::Never, false);
    assert_error(
        vonage_answered(vonage_status("15", "Illegal Sender Address - rejected")).await,
        "15",
        Retry::Never,
        false,
    );
    // One part accepted, the next throttled: sending again would repeat the first.
    let partial = Script::json(
        200,
        json!({"message-count": "2", "messages": [
            {"to": "6281234567890", "message-id": "1B00000000C0A701", "status": "0"},
            {"status": "1", "error-text": "Throughput Rate Exceeded"},
        ]}),
    );
    assert_error(vonage_answered(partial).await, "1", Retry::Never, false);
    assert_error(
        vonage_answered(Script::text(429, "Too Many Requests").header("retry-after", "2")).await,
        "http_429",
        Retry::Later(Some(Duration::from_secs(2))),
        false,
    );
    assert_error(
        vonage_answered(Script::text(500, "Internal Server Error")).await,
        "http_500",
        Retry::Later(None),
        false,
    );
    assert_error(
        vonage_answered(Script::json(
            200,
            json!({"message-count": "0", "messages": []}),
        ))
        .await,
        "bad_response",
        Retry::Later(None),
        false,
    );
    let stand_in = StandIn::start([]).await;
    assert_clean(&format!("{:?}", vonage(&stand_in, json!({}))));
}

// ---------------------------------------------------------------------------
// Infobip

fn infobip(stand_in: &StandIn, extra: Value) -> InfobipSender {
    let mut config = json!({
        "api_key": INFOBIP_KEY,
        "base_url": format!("{}/", stand_in.url),
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let config: InfobipSendConfig = serde_json::from_value(config).expect("config");
    InfobipSender::new(config, client()).expect("sender")
}

fn infobip_status(id: &str, group: &str, name: &str) -> Script {
    Script::json(
        200,
        json!({"bulkId": "2034072219640523072", "messages": [{
            "messageId": id, "to": "6281234567890",
            "status": {"groupId": 1, "groupName": group, "id": 26, "name": name,
                       "description": "Message sent to next instance"},
        }]}),
    )
}

#[tokio::test]
async fn infobip_posts_json_with_the_app_key() {
    let stand_in = StandIn::start([infobip_status(
        "4153180894423336539",
        "PENDING",
        "PENDING_ACCEPTED",
    )])
    .await;
    let notify = "https://lapor.example.go.id/webhooks/infobip/infobip-jabar";
    let sender = infobip(&stand_in, json!({"from": "PEMKOT", "notify_url": notify}));
    let route = sms_route();
    assert_eq!(
        sender.send(&out(&route, Some(TEXT), None, None)).await,
        sent("4153180894423336539")
    );
    let seen = stand_in.only();
    assert_eq!(
        (seen.method.clone(), seen.path.as_str()),
        (Method::POST, "/sms/2/text/advanced")
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("App {INFOBIP_KEY}").as_str())
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.json(),
        json!({"messages": [{
            "destinations": [{"to": "6281234567890"}],
            "from": "PEMKOT",
            "text": TEXT,
            "notifyUrl": notify,
            "callbackData": "balasan-0001.0",
        }]})
    );
}

#[tokio::test]
async fn infobip_without_sender_or_notify_url_sends_neither() {
    let stand_in = StandIn::start([infobip_status("41", "ACCEPTED", "ACCEPTED")]).await;
    let route = sms_route();
    assert_eq!(
        infobip(&stand_in, json!({}))
            .send(&out(&route, Some(TEXT), None, None))
            .await,
        sent("41")
    );
    assert_eq!(
        stand_in.only().json(),
        json!({"messages": [{"destinations": [{"to": "6281234567890"}], "text": TEXT,
                             "callbackData": "balasan-0001.0"}]})
    );
}

async fn infobip_answered(answer: Script) -> Result<Sent, SendError> {
    let stand_in = StandIn::start([answer]).await;
    let route = sms_route();
    let result = infobip(&stand_in, json!({}))
        .send(&out(&route, Some(TEXT), None, None))
        .await;
    assert_eq!(stand_in.seen().len(), 1);
    result
}

fn infobip_error(status: u16, id: &str, text: &str) -> Script {
    Script::json(
        status,
        json!({"requestError": {"serviceException": {"messageId": id, "text": text}}}),
    )
}

#[tokio::test]
async fn infobip_answers() {
    assert_error(
        infobip_answered(infobip_status("42", "REJECTED", "REJECTED_DESTINATION")).await,
        "REJECTED_DESTINATION",
        Retry::Never,
        false,
    );
    assert_error(
        infobip_answered(infobip_error(
            401,
            "UNAUTHORIZED",
            &format!("Invalid login details {INFOBIP_KEY}"),
        ))
        .await,
        "UNAUTHORIZED",
        Retry::Never,
        false,
    );
    assert_error(
        infobip_answered(
            infobip_error(429, "TOO_MANY_REQUESTS", "Too many requests").header("retry-after", "3"),
        )
        .await,
        "TOO_MANY_REQUESTS",
        Retry::Later(Some(Duration::from_secs(3))),
        false,
    );
    assert_error(
        infobip_answered(Script::text(503, "Service Unavailable")).await,
        "http_503",
        Retry::Later(None),
        false,
    );
    assert_error(
        infobip_answered(Script::json(200, json!({"bulkId": "1"}))).await,
        "bad_response",
        Retry::Later(None),
        false,
    );
    // The account's own base URL is required.
    let err = serde_json::from_value::<InfobipSendConfig>(json!({"api_key": INFOBIP_KEY}))
        .expect_err("no base_url");
    assert!(err.to_string().contains("base_url"), "{err}");
    let stand_in = StandIn::start([]).await;
    assert_clean(&format!("{:?}", infobip(&stand_in, json!({}))));
}

#[tokio::test]
async fn a_slow_or_absent_provider_is_a_network_error_without_the_url() {
    let slow = || twilio_created("SM8").after(Duration::from_secs(2));
    for result in [
        twilio_answered(slow()).await,
        vonage_answered(vonage_sent(&["1B0"]).after(Duration::from_secs(2))).await,
        infobip_answered(
            infobip_status("43", "PENDING", "PENDING_ENROUTE").after(Duration::from_secs(2)),
        )
        .await,
    ] {
        let err = result.clone().expect_err("timed out");
        assert!(!err.message.contains("127.0.0.1"), "{err:?}");
        assert_error(result, "network", Retry::Later(None), false);
    }
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config: VonageSendConfig = serde_json::from_value(json!({
        "api_key": VONAGE_KEY, "api_secret": VONAGE_SECRET, "from": OUR_NUMBER,
        "base_url": format!("http://127.0.0.1:{port}"),
    }))
    .expect("config");
    let route = sms_route();
    assert_error(
        VonageSender::new(config, client())
            .expect("sender")
            .send(&out(&route, Some(TEXT), None, None))
            .await,
        "network",
        Retry::Later(None),
        false,
    );
}

// ---------------------------------------------------------------------------
// Generic gateways

const KANNEL_DLR: &str =
    "https://lapor.example.go.id/webhooks/sms/kannel-jabar?secret=kannel-shared-secret&status=%d";

fn generic(config: Value) -> Result<GenericSender, String> {
    serde_json::from_value::<GenericSendConfig>(config)
        .map_err(|e| e.to_string())
        .and_then(|c| GenericSender::new(c, client()))
}

fn kannel(stand_in: &StandIn) -> GenericSender {
    generic(json!({
        "url": format!(
            "{}/cgi-bin/sendsms?username=aduan&password={{secret}}&from={{from}}&to={{to}}&text={{text}}&charset=UTF-8&dlr-mask=31&dlr-url={{dlr_url}}",
            stand_in.url
        ),
        "secret": GATEWAY_PASSWORD,
        "from": "1708",
        "success_body_contains": "Accepted",
        "dlr_url": KANNEL_DLR,
    }))
    .expect("sender")
}

#[tokio::test]
async fn kannel_sendsms_is_one_get_with_our_id_in_the_dlr_url() {
    let stand_in = StandIn::start([Script::text(202, "0: Accepted for delivery")]).await;
    let sender = kannel(&stand_in);
    let route = sms_route();
    assert_eq!(sender.max_chars(&route), SMS_MAX_CHARS);
    let text = "Terima kasih 🙏 aduan #1708 & foto sudah kami terima: 100% diproses.";
    assert_eq!(
        sender.send(&out(&route, Some(text), None, None)).await,
        sent("balasan-0001.0")
    );
    let seen = stand_in.only();
    assert_eq!(
        (seen.method.clone(), seen.path.as_str()),
        (Method::GET, "/cgi-bin/sendsms")
    );
    assert_eq!(seen.body, "");
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(
        seen.query_pairs(),
        pairs(&[
            ("username", "aduan"),
            ("password", GATEWAY_PASSWORD),
            ("from", "1708"),
            ("to", CITIZEN),
            ("text", text),
            ("charset", "UTF-8"),
            ("dlr-mask", "31"),
            ("dlr-url", &format!("{KANNEL_DLR}&id=balasan-0001.0"),),
        ])
    );
    // Values are percent-encoded: a space is never a `+` Kannel could read either way.
    assert!(
        seen.query
            .as_deref()
            .is_some_and(|q| q.contains("to=%2B6281234567890") && q.contains("status%3D%25d")),
        "{:?}",
        seen.query
    );
}

#[tokio::test]
async fn jasmin_posts_a_form_and_its_id_is_read_from_the_answer() {
    let stand_in = StandIn::start([Script::text(
        200,
        "Success \"07033084-5cfd-4812-90a4-e4d24ffb6e3d\"",
    )])
    .await;
    let dlr = "https://lapor.example.go.id/webhooks/sms/jasmin-jabar?secret=jasmin-shared-secret&ref={id}";
    let sender = generic(json!({
        "method": "POST",
        "url": format!("{}/send", stand_in.url),
        "body": "username=aduan&password={secret}&to={to_digits}&content={text}&dlr=yes&dlr-url={dlr_url}&dlr-level=3",
        "secret": GATEWAY_PASSWORD,
        "success_body_contains": "Success",
        "id_after": "Success \"",
        "dlr_url": dlr,
    }))
    .expect("sender");
    let route = sms_route();
    assert_eq!(
        sender.send(&out(&route, Some(TEXT), None, None)).await,
        sent("07033084-5cfd-4812-90a4-e4d24ffb6e3d")
    );
    let seen = stand_in.only();
    assert_eq!(
        (seen.method.clone(), seen.path.as_str()),
        (Method::POST, "/send")
    );
    assert_eq!(seen.query, None);
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.form(),
        pairs(&[
            ("username", "aduan"),
            ("password", GATEWAY_PASSWORD),
            ("to", "6281234567890"),
            ("content", TEXT),
            ("dlr", "yes"),
            (
                "dlr-url",
                "https://lapor.example.go.id/webhooks/sms/jasmin-jabar?secret=jasmin-shared-secret&ref=balasan-0001.0",
            ),
            ("dlr-level", "3"),
        ])
    );
}

#[tokio::test]
async fn android_gateway_takes_json_with_a_bearer_token() {
    let stand_in = StandIn::start([Script::json(
        202,
        json!({"id": "Ey6ECgOkVVFjz3CL48B8C", "state": "Pending"}),
    )])
    .await;
    let sender = generic(json!({
        "method": "POST",
        "url": format!("{}/3rdparty/v1/message", stand_in.url),
        "body": r#"{"message": "{text}", "phoneNumbers": ["{to}"], "withDeliveryReport": true}"#,
        "body_format": "json",
        "auth_header": BEARER,
        "success_status": 202,
        "id_after": "\"id\":\"",
    }))
    .expect("sender");
    let route = sms_route();
    let text = "Balasan \"resmi\" Dinas PU:\nJalan diperbaiki {minggu depan}.";
    assert_eq!(
        sender.send(&out(&route, Some(text), None, None)).await,
        sent("Ey6ECgOkVVFjz3CL48B8C")
    );
    let seen = stand_in.only();
    assert_eq!(seen.header("authorization"), Some(BEARER));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.json(),
        json!({"message": text, "phoneNumbers": [CITIZEN], "withDeliveryReport": true})
    );
}

async fn kannel_answered(answer: Script) -> Result<Sent, SendError> {
    let stand_in = StandIn::start([answer]).await;
    let route = sms_route();
    let result = kannel(&stand_in)
        .send(&out(&route, Some(TEXT), None, None))
        .await;
    assert_eq!(stand_in.seen().len(), 1);
    result
}

#[tokio::test]
async fn generic_answers() {
    // Kannel answers 202 to a login it refuses, quoting nothing of use.
    let result = kannel_answered(Script::text(
        202,
        &format!("Authorization failed for aduan/{GATEWAY_PASSWORD}: {TEXT}"),
    ))
    .await;
    let err = result.clone().expect_err("refused");
    assert!(err.message.contains("Authorization failed"), "{err:?}");
    assert_error(result, "rejected", Retry::Never, false);
    assert_error(
        kannel_answered(Script::text(403, "Authorization failed for sendsms")).await,
        "http_403",
        Retry::Never,
        false,
    );
    assert_error(
        kannel_answered(Script::text(503, "Sending failed.")).await,
        "http_503",
        Retry::Later(None),
        false,
    );
    assert_error(
        kannel_answered(Script::text(429, "slow down").header("retry-after", "5")).await,
        "http_429",
        Retry::Later(Some(Duration::from_secs(5))),
        false,
    );
    assert_error(
        kannel_answered(
            Script::text(202, "0: Accepted for delivery").after(Duration::from_secs(2)),
        )
        .await,
        "network",
        Retry::Later(None),
        false,
    );
    // A configured status other than the answer's.
    let stand_in = StandIn::start([Script::json(200, json!({"id": "x"}))]).await;
    let sender = generic(json!({
        "method": "POST",
        "url": format!("{}/send", stand_in.url),
        "body": r#"{"to": "{to}", "text": "{text}"}"#,
        "body_format": "json",
        "success_status": 202,
    }))
    .expect("sender");
    let route = sms_route();
    assert_error(
        sender.send(&out(&route, Some(TEXT), None, None)).await,
        "rejected",
        Retry::Never,
        false,
    );
}

#[tokio::test]
async fn generic_too_long_or_no_number_fails_before_any_request() {
    let stand_in = StandIn::start([]).await;
    let sender = kannel(&stand_in);
    let route = sms_route();
    assert_error(
        sender
            .send(&out(&route, Some(&gsm_text(460)), None, None))
            .await,
        "too_long",
        Retry::Never,
        false,
    );
    assert_error(
        sender
            .send(&out(&route_to("081234567890"), Some(TEXT), None, None))
            .await,
        "invalid_recipient",
        Retry::Never,
        false,
    );
    assert!(stand_in.seen().is_empty());
}

#[tokio::test]
async fn generic_settings_are_checked_and_never_printed() {
    let url = "http://gw.example.id/send?user=aduan&pass=sandi-kannel-jabar&to={to}&text={text}";
    let config: GenericSendConfig = serde_json::from_value(json!({
        "url": url, "auth_header": BEARER,
    }))
    .expect("config");
    assert_clean(&format!("{config:?}"));
    let sender = GenericSender::new(config, client()).expect("sender");
    assert_clean(&format!("{sender:?}"));
    assert!(format!("{sender:?}").contains("http://gw.example.id/send?…"));

    let base = "http://gw.example.id/send?to={to}&text={text}";
    for (bad, why) in [
        (json!({"url": base, "body": "a=b"}), "body"),
        (
            json!({"url": "http://gw/send?to={to}&text={txt}"}),
            "placeholder",
        ),
        (json!({"url": "http://gw/send?to={to}"}), "{text}"),
        (json!({"url": "http://gw/send?text={text}"}), "{to}"),
        (json!({"url": format!("{base}&from={{from}}")}), "from"),
        (json!({"url": base, "from": "1708"}), "from"),
        (json!({"url": base, "dlr_url": KANNEL_DLR}), "dlr_url"),
        (
            json!({"url": format!("{base}&dlr={{dlr_url}}"), "dlr_url": "lapor.example.go.id/dlr"}),
            "dlr_url",
        ),
        (json!({"url": "ftp://gw/send?to={to}&text={text}"}), "http"),
        (json!({"url": base, "method": "PUT"}), "PUT"),
        (json!({"url": base, "success_status": 42}), "success_status"),
    ] {
        let err = generic(bad.clone()).expect_err("refused");
        assert!(err.contains(why), "{bad}: {err}");
    }
}
