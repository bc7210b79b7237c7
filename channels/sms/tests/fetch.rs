//! The Twilio media fetcher against two stand-ins on 127.0.0.1: Twilio's
//! API, which wants HTTP Basic on a `MediaUrl` and redirects to signed
//! storage, and the storage, on another port, which must never see the
//! account's credentials.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_adapter::media::{FetchError, Fetched, MediaFetcher, MediaHttp, MediaSink};
use aduan_adapter::{Attachment, AttachmentKind, Secret};
use aduan_sms::{TwilioFetchConfig, TwilioFetcher};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "f2c1rahasiaTwilioJabar2026aa9b";
const MEDIA_PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/MM5ef8732a3c49700934481addd5ce1659/Media/ME85ebf7e12cb821f84b2e6cf4fb3c2b26";

// ---------------------------------------------------------------------------
// The stand-ins

/// One request a stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

/// What a stand-in answers.
#[derive(Clone, Debug)]
enum Mode {
    /// Twilio's API: `401` without the right Basic credentials, else a `307`
    /// to this location.
    Api { redirect_to: String },
    /// Storage: these bytes, after a delay.
    File { body: Vec<u8>, delay: Duration },
    /// This status, with these headers.
    Status(u16, Vec<(&'static str, &'static str)>),
}

#[derive(Clone)]
struct Shared {
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct StandIn {
    base: String,
    shared: Shared,
}

impl StandIn {
    async fn start(mode: Mode) -> StandIn {
        let shared = Shared {
            mode: Arc::new(Mutex::new(mode)),
            seen: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        StandIn {
            base: format!("http://{addr}"),
            shared,
        }
    }

    fn set(&self, mode: Mode) {
        *self.shared.mode.lock().expect("lock") = mode;
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }
}

fn basic() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    )
}

async fn answer(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    shared.seen.lock().expect("lock").push(Seen {
        path: uri.path().into(),
        query: uri.query().map(str::to_string),
        headers: headers.clone(),
    });
    let mode = shared.mode.lock().expect("lock").clone();
    match mode {
        Mode::Api { redirect_to } => {
            let authorized = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == basic());
            if !authorized {
                return (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", "Basic realm=\"Twilio API\"")],
                    r#"{"code":20003,"message":"Authenticate","status":401}"#,
                )
                    .into_response();
            }
            (StatusCode::TEMPORARY_REDIRECT, [("location", redirect_to)]).into_response()
        }
        Mode::File { body, delay } => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, [("content-type", "image/jpeg")], body).into_response()
        }
        Mode::Status(status, extra) => {
            let mut response = StatusCode::from_u16(status)
                .expect("status")
                .into_response();
            for (name, value) in extra {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        }
    }
}

/// Twilio's API redirecting to a storage stand-in holding `body`.
async fn twilio_and_storage(body: Vec<u8>, delay: Duration) -> (StandIn, StandIn) {
    let storage = StandIn::start(Mode::File { body, delay }).await;
    let api = StandIn::start(Mode::Api {
        redirect_to: format!(
            "{}/media.twiliocdn.com/ME85ebf7e12cb821f84b2e6cf4fb3c2b26?Expires=1795339200&Signature=c2lnbmVk",
            storage.base
        ),
    })
    .await;
    (api, storage)
}

// ---------------------------------------------------------------------------
// The sink

/// Collects what is written, refusing more than `cap` bytes as `too_large`.
#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    writes: usize,
    cap: Option<usize>,
}

#[async_trait::async_trait]
impl MediaSink for Buffer {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        if let Some(cap) = self.cap
            && self.bytes.len() + chunk.len() > cap
        {
            return Err(FetchError::permanent(
                "too_large",
                format!("over {cap} bytes"),
            ));
        }
        self.writes += 1;
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// Invented bytes of an MMS photo, `len` long.
fn photo(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 241) as u8).collect()
}

fn fetcher() -> TwilioFetcher {
    TwilioFetcher::new(TwilioFetchConfig {
        account_sid: ACCOUNT_SID.into(),
        auth_token: Secret::literal(AUTH_TOKEN),
        link_lifetime_seconds: 7 * 24 * 3600,
        api_hosts: vec!["127.0.0.1".into()],
    })
    .expect("fetcher")
}

fn http() -> MediaHttp {
    MediaHttp::new(reqwest::Client::new(), true)
}

/// An MMS photo as the webhook gives it: `MediaUrl0` and `MediaContentType0`.
fn mms_photo(api: &StandIn) -> Attachment {
    Attachment {
        content_type: Some("image/jpeg".into()),
        url: Some(format!("{}{MEDIA_PATH}", api.base)),
        ..Attachment::new(AttachmentKind::Image)
    }
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn the_media_url_is_fetched_with_basic_auth_and_the_storage_never_sees_it() {
    let bytes = photo(250 * 1024);
    let (api, storage) = twilio_and_storage(bytes.clone(), Duration::ZERO).await;
    let f = fetcher();
    let attachment = mms_photo(&api);
    assert!(f.fetchable(&attachment));
    assert_eq!(f.link_lifetime(), Duration::from_secs(7 * 24 * 3600));

    let mut sink = Buffer::default();
    let fetched = f
        .fetch(&attachment, &http(), &mut sink)
        .await
        .expect("fetched");
    assert_eq!(sink.bytes, bytes);
    assert!(sink.writes > 1, "streamed in chunks: {}", sink.writes);
    assert_eq!(
        fetched,
        Fetched {
            content_type: Some("image/jpeg".into()),
            expected_sha256: None,
        }
    );

    let asked = api.seen();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].path, MEDIA_PATH);
    assert_eq!(
        asked[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(basic().as_str())
    );
    let stored = storage.seen();
    assert_eq!(stored.len(), 1, "the redirect was followed");
    assert_eq!(
        stored[0].path,
        "/media.twiliocdn.com/ME85ebf7e12cb821f84b2e6cf4fb3c2b26"
    );
    assert_eq!(
        stored[0].query.as_deref(),
        Some("Expires=1795339200&Signature=c2lnbmVk")
    );
    assert!(
        !stored[0].headers.contains_key("authorization"),
        "{:?}",
        stored[0].headers
    );
    let all: String = format!("{:?}", stored[0].headers);
    assert!(!all.contains(AUTH_TOKEN));
}

#[tokio::test]
async fn wrong_credentials_are_refused_for_good() {
    let (api, storage) = twilio_and_storage(photo(10), Duration::ZERO).await;
    let f = TwilioFetcher::new(TwilioFetchConfig {
        account_sid: ACCOUNT_SID.into(),
        auth_token: Secret::literal("bukan-token-yang-benar"),
        link_lifetime_seconds: 3600,
        api_hosts: vec!["127.0.0.1".into()],
    })
    .expect("fetcher");
    let e = f
        .fetch(&mms_photo(&api), &http(), &mut Buffer::default())
        .await
        .expect_err("401");
    assert_eq!((e.code.as_str(), e.temporary), ("http_401", false));
    assert!(!e.message.contains("bukan-token"), "{}", e.message);
    assert!(storage.seen().is_empty());
}

#[tokio::test]
async fn deleted_media_is_not_found_and_throttling_waits() {
    let (api, _storage) = twilio_and_storage(photo(10), Duration::ZERO).await;
    api.set(Mode::Status(404, Vec::new()));
    let e = fetcher()
        .fetch(&mms_photo(&api), &http(), &mut Buffer::default())
        .await
        .expect_err("404");
    assert_eq!((e.code.as_str(), e.temporary), ("not_found", false));

    api.set(Mode::Status(429, vec![("retry-after", "20")]));
    let e = fetcher()
        .fetch(&mms_photo(&api), &http(), &mut Buffer::default())
        .await
        .expect_err("429");
    assert_eq!((e.code.as_str(), e.temporary), ("http_429", true));
    assert_eq!(e.retry_after, Some(Duration::from_secs(20)));

    api.set(Mode::Status(503, Vec::new()));
    let e = fetcher()
        .fetch(&mms_photo(&api), &http(), &mut Buffer::default())
        .await
        .expect_err("503");
    assert_eq!((e.code.as_str(), e.temporary), ("http_503", true));
}

#[tokio::test]
async fn a_media_url_on_another_host_gets_no_credentials() {
    let (api, _storage) = twilio_and_storage(photo(10), Duration::ZERO).await;
    let mut attachment = mms_photo(&api);
    // Another name of the same stand-in: not a configured host.
    attachment.url = attachment.url.map(|u| u.replace("127.0.0.1", "localhost"));
    let e = fetcher()
        .fetch(&attachment, &http(), &mut Buffer::default())
        .await
        .expect_err("untrusted");
    assert_eq!((e.code.as_str(), e.temporary), ("untrusted_host", false));
    assert!(api.seen().is_empty());
}

#[tokio::test]
async fn slow_storage_times_out() {
    let (api, _storage) = twilio_and_storage(photo(10), Duration::from_secs(2)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let e = fetcher()
        .fetch(
            &mms_photo(&api),
            &MediaHttp::new(client, true),
            &mut Buffer::default(),
        )
        .await
        .expect_err("slow");
    assert_eq!((e.code.as_str(), e.temporary), ("timeout", true));
    assert!(!e.message.contains("127.0.0.1"), "{}", e.message);
}

#[tokio::test]
async fn an_unreachable_api_is_a_network_error_without_its_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let attachment = Attachment {
        url: Some(format!("{base}{MEDIA_PATH}")),
        ..Attachment::new(AttachmentKind::Image)
    };
    let e = fetcher()
        .fetch(&attachment, &http(), &mut Buffer::default())
        .await
        .expect_err("refused");
    assert_eq!((e.code.as_str(), e.temporary), ("network", true));
    assert!(
        !e.message.contains("127.0.0.1") && !e.message.contains("ME85"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_full_sink_ends_the_fetch_with_its_error() {
    let (api, _storage) = twilio_and_storage(photo(1024 * 1024), Duration::ZERO).await;
    let mut sink = Buffer {
        cap: Some(128 * 1024),
        ..Buffer::default()
    };
    let e = fetcher()
        .fetch(&mms_photo(&api), &http(), &mut sink)
        .await
        .expect_err("too large");
    assert_eq!(e, FetchError::permanent("too_large", "over 131072 bytes"));
    assert!(sink.bytes.len() <= 128 * 1024);
}

#[tokio::test]
async fn private_addresses_are_refused_before_any_request() {
    let (api, storage) = twilio_and_storage(photo(10), Duration::ZERO).await;
    let e = fetcher()
        .fetch(
            &mms_photo(&api),
            &MediaHttp::new(reqwest::Client::new(), false),
            &mut Buffer::default(),
        )
        .await
        .expect_err("refused");
    assert_eq!((e.code.as_str(), e.temporary), ("forbidden_address", false));
    assert!(api.seen().is_empty() && storage.seen().is_empty());
}

#[tokio::test]
async fn the_config_is_strict_and_defaults_to_twilios_host() {
    let config: TwilioFetchConfig = serde_json::from_value(serde_json::json!({
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
    }))
    .expect("config");
    assert_eq!(config.api_hosts, ["api.twilio.com"]);
    assert_eq!(config.link_lifetime_seconds, 7 * 24 * 3600);
    let typo: Result<TwilioFetchConfig, _> = serde_json::from_value(serde_json::json!({
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "api_host": "api.twilio.com",
    }));
    assert!(typo.is_err());
    let f = TwilioFetcher::new(config).expect("fetcher");
    let mut a = Attachment::new(AttachmentKind::Image);
    assert!(!f.fetchable(&a));
    a.url = Some(format!("https://api.twilio.com{MEDIA_PATH}"));
    assert!(f.fetchable(&a));
    a.storage_key = Some("sha256/0b/ee/0bee89b0".into());
    assert!(!f.fetchable(&a));
}
