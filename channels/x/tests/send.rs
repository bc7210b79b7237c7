//! The X sender against a stand-in of API v2 on 127.0.0.1: the requests it
//! makes (path, body, authorization) and how each scripted answer is read.
//! No error may carry a credential.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_adapter::{
    Channel, Outgoing, ReplyRoute, ReplySender, Retry, RouteKind, Secret, SendError, Sent,
    Timestamp,
};
use aduan_x::oauth::OAuth1;
use aduan_x::{XSendConfig, XSender};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

const CONSUMER_KEY: &str = "kunciKonsumenLaporJabar2024";
const CONSUMER_SECRET: &str = "rahasiaKonsumenLaporJabar2024BandungXyz";
const ACCESS_TOKEN: &str = "1460000000000000001-TokenAksesDinasPUPRBandung";
const ACCESS_TOKEN_SECRET: &str = "rahasiaTokenAksesDinasPUPRBandung99";
const BEARER: &str = "dG9rZW5QZW5nZ3VuYUxhcG9yQmFuZHVuZzoxOjE6YXQ6MQ";
const SECRETS: [&str; 5] = [
    CONSUMER_KEY,
    CONSUMER_SECRET,
    ACCESS_TOKEN,
    ACCESS_TOKEN_SECRET,
    BEARER,
];

/// The citizen (Dewi Lestari, @dewi_lestari_bdg) and the Tweet that mentioned the account.
const CITIZEN: &str = "1462345678901234567";
const TWEET: &str = "1861234567890123500";
/// The gateway's clock in every case.
const NOW: i64 = 1_732_000_000;

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    authorization: String,
    content_type: String,
    body: Value,
}

/// The stand-in's one answer to every request.
#[derive(Clone)]
struct Script {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn answer(
    State(s): State<Script>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    s.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_string(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    tokio::time::sleep(s.delay).await;
    let mut response = (StatusCode::from_u16(s.status).unwrap(), s.body.clone()).into_response();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (k, v) in &s.headers {
        response.headers_mut().insert(*k, v.parse().unwrap());
    }
    response
}

struct StandIn {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn stand_in(status: u16, headers: &[(&'static str, &str)], body: Value) -> StandIn {
    stand_in_slow(status, headers, body, Duration::ZERO).await
}

async fn stand_in_slow(
    status: u16,
    headers: &[(&'static str, &str)],
    body: Value,
    delay: Duration,
) -> StandIn {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Script {
        status,
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.to_string(),
        delay,
        seen: seen.clone(),
    };
    let app = axum::Router::new().fallback(answer).with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    StandIn {
        url: format!("http://{addr}"),
        seen,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn oauth_config(base_url: &str, extra: &str) -> String {
    format!(
        "base_url = \"{base_url}\"\nconsumer_key = \"{CONSUMER_KEY}\"\n\
         consumer_secret = \"{CONSUMER_SECRET}\"\naccess_token = \"{ACCESS_TOKEN}\"\n\
         access_token_secret = \"{ACCESS_TOKEN_SECRET}\"\n{extra}"
    )
}

fn sender_from(toml: &str) -> Result<XSender, String> {
    let config: XSendConfig = toml::from_str(toml).map_err(|e| e.to_string())?;
    XSender::new(config, client())
}

fn sender(base_url: &str, extra: &str) -> XSender {
    sender_from(&oauth_config(base_url, extra)).unwrap()
}

fn route(kind: RouteKind, message_id: Option<&str>) -> ReplyRoute {
    ReplyRoute {
        complaint_id: "01JD2S7Q7K3M9QX2XMENTION01".into(),
        instance: "x-pupr".into(),
        channel: Channel::X,
        provider: match kind {
            RouteKind::Mention => aduan_x::MENTION_PROVIDER,
            _ => aduan_x::PROVIDER,
        }
        .into(),
        kind,
        to: CITIZEN.into(),
        message_id: message_id.map(str::to_string),
        recipient: Some("x:1460000000000000001".into()),
        subject: None,
        references: Vec::new(),
        last_inbound_at: Timestamp::from_unix_seconds(NOW - 600).unwrap(),
    }
}

fn outgoing<'a>(route: &'a ReplyRoute, text: Option<&'a str>) -> Outgoing<'a> {
    Outgoing {
        reply_id: "balasan-x-0001",
        route,
        text,
        template: None,
        subject: None,
        part: 0,
        parts: 1,
        last_inbound_at: Some(route.last_inbound_at),
        now: Timestamp::from_unix_seconds(NOW).unwrap(),
    }
}

const TEXT: &str =
    "Terima kasih, laporan jalan berlubang di Jl. Soekarno-Hatta sudah kami teruskan.";

fn dm_created() -> Value {
    json!({"data": {"dm_conversation_id": "1460000000000000001-1462345678901234567",
                    "dm_event_id": "1862000000000000042"}})
}

/// One DM through a stand-in answering `status`, `headers` and `body`.
async fn dm_answered(
    status: u16,
    headers: &[(&'static str, &str)],
    body: Value,
) -> Result<Sent, SendError> {
    let api = stand_in(status, headers, body).await;
    let r = route(RouteKind::Direct, Some("1861234567000000099"));
    sender(&api.url, "").send(&outgoing(&r, Some(TEXT))).await
}

fn assert_no_secret(e: &SendError) {
    let shown = format!("{e} {e:?}");
    for secret in SECRETS {
        assert!(!shown.contains(secret), "a credential in {shown}");
    }
}

/// The `k="v"` fields of an `OAuth …` header, decoded.
fn oauth_fields(header: &str) -> Vec<(String, String)> {
    let fields = header.strip_prefix("OAuth ").expect("an OAuth header");
    fields
        .split(", ")
        .map(|f| {
            let (k, v) = f.split_once('=').expect("k=v");
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .expect("quoted");
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test]
async fn a_dm_goes_to_the_citizens_conversation_signed() {
    let api = stand_in(201, &[], dm_created()).await;
    let r = route(RouteKind::Direct, Some("1861234567000000099"));
    let s = sender(&api.url, "");
    let sent = s.send(&outgoing(&r, Some(TEXT))).await.unwrap();
    assert_eq!(sent.provider_message_id, "1862000000000000042");
    s.send(&outgoing(&r, Some(TEXT))).await.unwrap();

    let seen = api.seen();
    assert_eq!(seen.len(), 2);
    let path = format!("/2/dm_conversations/with/{CITIZEN}/messages");
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].path, path);
    assert_eq!(seen[0].content_type, "application/json");
    assert_eq!(seen[0].body, json!({"text": TEXT}));

    // Well formed: the seven fields, sorted, a fresh nonce and the current time.
    let fields = oauth_fields(&seen[0].authorization);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "oauth_consumer_key",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_token",
            "oauth_version"
        ]
    );
    assert_eq!(field(&fields, "oauth_consumer_key"), CONSUMER_KEY);
    assert_eq!(field(&fields, "oauth_token"), ACCESS_TOKEN);
    assert_eq!(field(&fields, "oauth_signature_method"), "HMAC-SHA1");
    assert_eq!(field(&fields, "oauth_version"), "1.0");
    let timestamp: u64 = field(&fields, "oauth_timestamp").parse().unwrap();
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(timestamp.abs_diff(clock) <= 5, "{timestamp} vs {clock}");
    let nonce = field(&fields, "oauth_nonce");
    assert_ne!(
        nonce,
        field(&oauth_fields(&seen[1].authorization), "oauth_nonce")
    );

    // Signed over the URL the stand-in was asked for, and only that: the
    // same keys, nonce and time give the same header.
    let keys = OAuth1 {
        consumer_key: Secret::literal(CONSUMER_KEY),
        consumer_secret: Secret::literal(CONSUMER_SECRET),
        access_token: Secret::literal(ACCESS_TOKEN),
        access_token_secret: Secret::literal(ACCESS_TOKEN_SECRET),
    };
    let url = url::Url::parse(&format!("{}{path}", api.url)).unwrap();
    assert_eq!(
        keys.authorization("POST", &url, &[], nonce, timestamp),
        seen[0].authorization
    );
}

#[tokio::test]
async fn a_mention_is_answered_by_dm_by_default() {
    let api = stand_in(201, &[], dm_created()).await;
    let r = route(RouteKind::Mention, Some(TWEET));
    let s = sender(&api.url, "");
    assert_eq!(s.max_chars(&r), 10_000);
    let sent = s.send(&outgoing(&r, Some(TEXT))).await.unwrap();
    assert_eq!(sent.provider_message_id, "1862000000000000042");
    let seen = api.seen();
    assert_eq!(
        seen[0].path,
        format!("/2/dm_conversations/with/{CITIZEN}/messages")
    );
    assert_eq!(seen[0].body, json!({"text": TEXT}));
}

#[tokio::test]
async fn a_mention_can_be_answered_by_a_reply_tweet() {
    let api = stand_in(
        201,
        &[],
        json!({"data": {"id": "1862000000000000077", "text": TEXT, "edit_history_tweet_ids": ["1862000000000000077"]}}),
    )
    .await;
    let s = sender(&format!("{}/", api.url), "mention_reply = \"tweet\"");
    let mention = route(RouteKind::Mention, Some(TWEET));
    assert_eq!(s.max_chars(&mention), 280);
    assert_eq!(s.max_chars(&route(RouteKind::Direct, None)), 10_000);
    let sent = s.send(&outgoing(&mention, Some(TEXT))).await.unwrap();
    assert_eq!(sent.provider_message_id, "1862000000000000077");
    let seen = api.seen();
    assert_eq!(seen[0].path, "/2/tweets");
    assert_eq!(
        seen[0].body,
        json!({"text": TEXT, "reply": {"in_reply_to_tweet_id": TWEET}})
    );
    assert!(seen[0].authorization.starts_with("OAuth "));

    // A DM complaint on the same instance is still a DM.
    let api = stand_in(201, &[], dm_created()).await;
    let s = sender(&api.url, "mention_reply = \"tweet\"");
    let direct = route(RouteKind::Direct, Some("1861234567000000099"));
    s.send(&outgoing(&direct, Some(TEXT))).await.unwrap();
    assert_eq!(
        api.seen()[0].path,
        format!("/2/dm_conversations/with/{CITIZEN}/messages")
    );
}

#[tokio::test]
async fn a_bearer_token_is_sent_as_is() {
    let api = stand_in(201, &[], dm_created()).await;
    let s = sender_from(&format!(
        "base_url = \"{}\"\nbearer_token = \"{BEARER}\"",
        api.url
    ))
    .unwrap();
    let r = route(RouteKind::Direct, None);
    s.send(&outgoing(&r, Some(TEXT))).await.unwrap();
    assert_eq!(api.seen()[0].authorization, format!("Bearer {BEARER}"));
}

#[tokio::test]
async fn a_rate_limit_waits_for_its_reset() {
    let reset = (NOW + 120).to_string();
    let e = dm_answered(
        429,
        &[
            ("x-rate-limit-limit", "15"),
            ("x-rate-limit-remaining", "0"),
            ("x-rate-limit-reset", &reset),
        ],
        json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "rate_limited");
    assert_eq!(e.retry, Retry::Later(Some(Duration::from_secs(120))));
    assert_eq!(e.message, "Too Many Requests");
    assert_no_secret(&e);

    // A used-up daily limit outlasts the 15-minute window.
    let daily = (NOW + 40_000).to_string();
    let e = dm_answered(
        429,
        &[
            ("x-rate-limit-reset", &reset),
            ("x-user-limit-24hour-limit", "1000"),
            ("x-user-limit-24hour-remaining", "0"),
            ("x-user-limit-24hour-reset", &daily),
        ],
        json!({"title": "Too Many Requests", "status": 429}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.retry, Retry::Later(Some(Duration::from_secs(40_000))));
}

#[tokio::test]
async fn a_server_error_is_temporary() {
    let e = dm_answered(
        503,
        &[("retry-after", "7")],
        json!({"title": "Service Unavailable", "detail": "Service Unavailable", "status": 503}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "http_503");
    assert_eq!(e.retry, Retry::Later(Some(Duration::from_secs(7))));
    assert_no_secret(&e);
}

#[tokio::test]
async fn refusals_are_permanent_with_the_problem_in_the_message() {
    let e = dm_answered(
        400,
        &[],
        json!({"errors": [{"parameters": {"participant_id": [CITIZEN]}, "message": "The `participant_id` query parameter value is invalid"}],
               "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
               "type": "https://api.twitter.com/2/problems/invalid-request"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "invalid_request");
    assert!(e.is_permanent() && !e.opt_out);
    assert_eq!(
        e.message,
        "Invalid Request: One or more parameters to your request was invalid.: \
         The `participant_id` query parameter value is invalid"
    );
    assert_no_secret(&e);

    let e = dm_answered(
        401,
        &[],
        json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code.as_str(), e.retry), ("unauthorized", Retry::Never));
    assert_no_secret(&e);

    // An app without DM permission: forbidden, and nobody opted out.
    let e = dm_answered(
        403,
        &[],
        json!({"title": "Forbidden", "type": "about:blank", "status": 403, "detail": "Forbidden"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.opt_out, e.retry),
        ("forbidden", false, Retry::Never)
    );
    assert_no_secret(&e);
}

#[tokio::test]
async fn a_citizen_who_does_not_take_our_dms_opts_out() {
    let e = dm_answered(
        403,
        &[],
        json!({"title": "Forbidden", "status": 403, "type": "about:blank",
               "detail": "You cannot send messages to users who are not following you."}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.opt_out, e.retry),
        ("blocked", true, Retry::Never)
    );
    assert!(e.message.contains("not following you"), "{}", e.message);
    assert_no_secret(&e);
}

#[tokio::test]
async fn a_reply_tweet_refused_is_forbidden() {
    let api = stand_in(
        403,
        &[],
        json!({"title": "Forbidden", "status": 403, "type": "about:blank",
               "detail": "Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the author of the post you are replying to."}),
    )
    .await;
    let s = sender(&api.url, "mention_reply = \"tweet\"");
    let r = route(RouteKind::Mention, Some(TWEET));
    let e = s.send(&outgoing(&r, Some(TEXT))).await.unwrap_err();
    assert_eq!((e.code.as_str(), e.opt_out), ("forbidden", false));
    assert!(e.is_permanent());
    assert_no_secret(&e);
}

#[tokio::test]
async fn transport_failures_are_temporary() {
    let api = stand_in_slow(201, &[], dm_created(), Duration::from_secs(3)).await;
    let r = route(RouteKind::Direct, None);
    let e = sender(&api.url, "")
        .send(&outgoing(&r, Some(TEXT)))
        .await
        .unwrap_err();
    assert_eq!((e.code.as_str(), e.retry), ("network", Retry::Later(None)));
    assert!(e.message.starts_with("timed out"), "{}", e.message);
    assert_no_secret(&e);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = sender(&format!("http://{addr}"), "")
        .send(&outgoing(&r, Some(TEXT)))
        .await
        .unwrap_err();
    assert_eq!((e.code.as_str(), e.retry), ("network", Retry::Later(None)));
    assert_no_secret(&e);
}

#[tokio::test]
async fn what_cannot_be_sent_fails_before_sending() {
    let api = stand_in(201, &[], dm_created()).await;
    let dm = sender(&api.url, "");
    let tweet = sender(&api.url, "mention_reply = \"tweet\"");

    let mut r = route(RouteKind::Direct, None);
    r.to = "x:1462345678901234567".into();
    let e = dm.send(&outgoing(&r, Some(TEXT))).await.unwrap_err();
    assert_eq!(e.code, "invalid_recipient");
    let r = route(RouteKind::Mention, None);
    let e = tweet.send(&outgoing(&r, Some(TEXT))).await.unwrap_err();
    assert_eq!(e.code, "invalid_message_id");
    let r = route(RouteKind::Comment, Some(TWEET));
    let e = dm.send(&outgoing(&r, Some(TEXT))).await.unwrap_err();
    assert_eq!(e.code, "unsupported_route");
    let r = route(RouteKind::Direct, None);
    let e = dm.send(&outgoing(&r, None)).await.unwrap_err();
    assert_eq!(e.code, "missing_text");
    assert!(api.seen().is_empty());
}

#[test]
fn exactly_one_set_of_credentials_is_required() {
    let base = "base_url = \"https://api.x.com\"\n";
    let err = |toml: &str| sender_from(toml).unwrap_err();

    let e = err(&format!(
        "{base}consumer_key = \"{CONSUMER_KEY}\"\naccess_token = \"{ACCESS_TOKEN}\""
    ));
    assert_eq!(
        e,
        "OAuth 1.0a needs all four keys; missing: consumer_secret, access_token_secret"
    );
    let e = err(&oauth_config(
        "https://api.x.com",
        &format!("bearer_token = \"{BEARER}\""),
    ));
    assert!(e.contains("not both"), "{e}");
    let e = err(base);
    assert!(e.starts_with("credentials missing"), "{e}");
    let e = err(&oauth_config(
        "https://api.x.com",
        "mention_reply = \"reply\"",
    ));
    assert!(
        e.contains("mention_reply") || e.contains("unknown variant"),
        "{e}"
    );
    let e = err(&oauth_config("https://api.x.com", "account_id = \"1\""));
    assert!(e.contains("unknown field"), "{e}");
    let e = err(&oauth_config("api.x.com", ""));
    assert!(e.contains("base_url"), "{e}");
    for e in [
        err(&oauth_config(
            "https://api.x.com",
            &format!("bearer_token = \"{BEARER}\""),
        )),
        err(&format!("{base}consumer_key = \"{CONSUMER_KEY}\"")),
    ] {
        assert!(SECRETS.iter().all(|s| !e.contains(s)), "{e}");
    }

    // The default base URL, and a Debug that shows no credential.
    let config: XSendConfig = toml::from_str(&format!("bearer_token = \"{BEARER}\"")).unwrap();
    assert_eq!(config.base_url, "https://api.x.com");
    let s = XSender::new(config, client()).unwrap();
    let shown = format!("{s:?}");
    assert!(
        shown.contains("https://api.x.com") && shown.contains("bearer"),
        "{shown}"
    );
    assert!(!shown.contains(BEARER), "{shown}");
    let s = sender("https://api.x.com", "");
    assert!(
        SECRETS
            .iter()
            .all(|secret| !format!("{s:?}").contains(secret))
    );
}
