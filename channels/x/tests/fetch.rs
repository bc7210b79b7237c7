//! The X media fetcher against stand-ins on 127.0.0.1: direct-message media
//! fetched with an OAuth 1.0a signature the stand-in checks, Tweet media
//! fetched as given without one, and what refusals, silence and a full
//! sink become.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_adapter::media::{FetchError, Fetched, MediaFetcher, MediaHttp, MediaSink};
use aduan_adapter::{Attachment, AttachmentKind, Secret};
use aduan_x::oauth;
use aduan_x::{XFetchConfig, XMediaFetcher};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

const CONSUMER_KEY: &str = "kunciKonsumenLaporBogor";
const CONSUMER_SECRET: &str = "rahasiaKonsumenLaporBogor2026";
const ACCESS_TOKEN: &str = "1460000000000000001-tokenAksesLaporBogor";
const TOKEN_SECRET: &str = "rahasiaTokenLaporBogor2026";
const DM_PATH: &str = "/1.1/ton/data/dm/1870000000000000001/1870000000000000002/aB3dE5fG.jpg";

// ---------------------------------------------------------------------------
// The stand-in

/// One request the stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    query: Option<String>,
    authorization: Option<String>,
}

#[derive(Clone)]
struct Shared {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    delay: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct StandIn {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    /// A stand-in answering every request with `status`, `headers` and
    /// `body` after `delay`.
    async fn start(
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: Vec<u8>,
        delay: Duration,
    ) -> StandIn {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            status,
            headers,
            body,
            delay,
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(answer).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        StandIn { port, seen }
    }

    async fn photo(body: Vec<u8>) -> StandIn {
        StandIn::start(
            200,
            vec![("content-type", "image/jpeg")],
            body,
            Duration::ZERO,
        )
        .await
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn answer(State(s): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    s.seen.lock().expect("lock").push(Seen {
        path: uri.path().into(),
        query: uri.query().map(str::to_string),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    tokio::time::sleep(s.delay).await;
    let mut response = (StatusCode::from_u16(s.status).expect("status"), s.body).into_response();
    for (name, value) in s.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
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

/// Invented bytes of a photo, `len` long.
fn photo(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 % 239) as u8).collect()
}

/// A fetcher that signs for 127.0.0.1 (standing in for ton.twitter.com).
fn signing() -> XMediaFetcher {
    XMediaFetcher::new(XFetchConfig {
        consumer_key: Some(Secret::literal(CONSUMER_KEY)),
        consumer_secret: Some(Secret::literal(CONSUMER_SECRET)),
        access_token: Some(Secret::literal(ACCESS_TOKEN)),
        access_token_secret: Some(Secret::literal(TOKEN_SECRET)),
        signed_hosts: vec!["127.0.0.1".into()],
        link_lifetime_seconds: 7 * 24 * 3600,
    })
    .expect("fetcher")
}

fn http() -> MediaHttp {
    MediaHttp::new(reqwest::Client::new(), true)
}

fn image(url: String) -> Attachment {
    Attachment {
        url: Some(url),
        provider_ref: Some("1870000000000000002".into()),
        ..Attachment::new(AttachmentKind::Image)
    }
}

/// The parameters of an `OAuth k="v", …` header, percent-decoded.
fn oauth_params(header: &str) -> Vec<(String, String)> {
    header
        .strip_prefix("OAuth ")
        .unwrap_or_default()
        .split(", ")
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let v = v.trim_matches('"');
            let decoded = url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            (k.to_string(), decoded)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn dm_media_is_fetched_with_a_valid_oauth1_signature() {
    let bytes = photo(200 * 1024);
    let ton = StandIn::photo(bytes.clone()).await;
    let url = format!("http://127.0.0.1:{}{DM_PATH}?name=orig", ton.port);
    let f = signing();
    let attachment = image(url.clone());
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

    let seen = ton.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, DM_PATH);
    assert_eq!(seen[0].query.as_deref(), Some("name=orig"));
    let header = seen[0].authorization.clone().expect("signed");
    let params = oauth_params(&header);
    let get = |k: &str| {
        params
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("oauth_consumer_key"), CONSUMER_KEY);
    assert_eq!(get("oauth_token"), ACCESS_TOKEN);
    assert_eq!(get("oauth_signature_method"), "HMAC-SHA1");
    // The signature covers GET, the URL and its query, under both secrets.
    let signed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "oauth_signature")
        .cloned()
        .collect();
    let pairs: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let base = oauth::base_string("GET", &url::Url::parse(&url).expect("url"), &pairs);
    assert_eq!(
        get("oauth_signature"),
        oauth::sign(&base, CONSUMER_SECRET, TOKEN_SECRET)
    );
    assert!(!header.contains(CONSUMER_SECRET) && !header.contains(TOKEN_SECRET));
}

#[tokio::test]
async fn tweet_media_is_fetched_as_given_without_a_signature() {
    let pbs = StandIn::photo(photo(1000)).await;
    // `localhost` is not a signed host: the stand-in plays pbs.twimg.com.
    let f = signing();
    let mut sink = Buffer::default();
    f.fetch(
        &image(format!(
            "http://localhost:{}/media/GdXyZ12aAAAbCdE.jpg",
            pbs.port
        )),
        &http(),
        &mut sink,
    )
    .await
    .expect("fetched");
    assert_eq!(sink.bytes, photo(1000));
    let seen = pbs.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization, None);

    // Without keys, public media is still fetched.
    let unsigned = XMediaFetcher::new(XFetchConfig::default()).expect("fetcher");
    unsigned
        .fetch(
            &image(format!("http://localhost:{}/media/x.jpg", pbs.port)),
            &http(),
            &mut Buffer::default(),
        )
        .await
        .expect("fetched");
}

#[tokio::test]
async fn dm_media_without_keys_is_refused_before_any_request() {
    let ton = StandIn::photo(photo(10)).await;
    let f = XMediaFetcher::new(XFetchConfig {
        signed_hosts: vec!["127.0.0.1".into()],
        ..XFetchConfig::default()
    })
    .expect("fetcher");
    let e = f
        .fetch(
            &image(format!("http://127.0.0.1:{}{DM_PATH}", ton.port)),
            &http(),
            &mut Buffer::default(),
        )
        .await
        .expect_err("no keys");
    assert_eq!(
        (e.code.as_str(), e.temporary),
        ("missing_credentials", false)
    );
    assert!(ton.seen().is_empty());
}

#[tokio::test]
async fn refusals_are_read_by_their_status() {
    for (status, headers, code, temporary, wait) in [
        (404, vec![], "not_found", false, None),
        (403, vec![], "http_403", false, None),
        (429, vec![("retry-after", "60")], "http_429", true, Some(60)),
        (503, vec![], "http_503", true, None),
    ] {
        let ton = StandIn::start(status, headers, Vec::new(), Duration::ZERO).await;
        let e = signing()
            .fetch(
                &image(format!("http://127.0.0.1:{}{DM_PATH}", ton.port)),
                &http(),
                &mut Buffer::default(),
            )
            .await
            .expect_err("refused");
        assert_eq!(
            (e.code.as_str(), e.temporary, e.retry_after),
            (code, temporary, wait.map(Duration::from_secs)),
            "{status}"
        );
        assert!(!e.message.contains(CONSUMER_KEY) && !e.message.contains(ACCESS_TOKEN));
    }
}

#[tokio::test]
async fn a_slow_host_times_out_and_an_absent_one_is_a_network_error() {
    let slow = StandIn::start(
        200,
        vec![("content-type", "image/jpeg")],
        photo(10),
        Duration::from_secs(2),
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let e = signing()
        .fetch(
            &image(format!("http://127.0.0.1:{}{DM_PATH}", slow.port)),
            &MediaHttp::new(client, true),
            &mut Buffer::default(),
        )
        .await
        .expect_err("slow");
    assert_eq!((e.code.as_str(), e.temporary), ("timeout", true));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let e = signing()
        .fetch(
            &image(format!("http://127.0.0.1:{port}{DM_PATH}")),
            &http(),
            &mut Buffer::default(),
        )
        .await
        .expect_err("absent");
    assert_eq!((e.code.as_str(), e.temporary), ("network", true));
    assert!(
        !e.message.contains("127.0.0.1") && !e.message.contains("ton"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_full_sink_ends_the_fetch_with_its_error() {
    let ton = StandIn::photo(photo(1024 * 1024)).await;
    let mut sink = Buffer {
        cap: Some(32 * 1024),
        ..Buffer::default()
    };
    let e = signing()
        .fetch(
            &image(format!("http://127.0.0.1:{}{DM_PATH}", ton.port)),
            &http(),
            &mut sink,
        )
        .await
        .expect_err("too large");
    assert_eq!(e, FetchError::permanent("too_large", "over 32768 bytes"));
    assert!(sink.bytes.len() <= 32 * 1024);
}

#[tokio::test]
async fn private_addresses_are_refused_before_any_request() {
    let ton = StandIn::photo(photo(10)).await;
    let e = signing()
        .fetch(
            &image(format!("http://127.0.0.1:{}{DM_PATH}", ton.port)),
            &MediaHttp::new(reqwest::Client::new(), false),
            &mut Buffer::default(),
        )
        .await
        .expect_err("refused");
    assert_eq!((e.code.as_str(), e.temporary), ("forbidden_address", false));
    assert!(ton.seen().is_empty());
}

#[tokio::test]
async fn the_config_is_strict() {
    let defaults: XFetchConfig = toml::from_str("").expect("config");
    assert_eq!(defaults.signed_hosts, ["ton.twitter.com"]);
    assert_eq!(defaults.link_lifetime_seconds, 7 * 24 * 3600);
    assert!(toml::from_str::<XFetchConfig>("signed_host = [\"ton.twitter.com\"]").is_err());
    let f = XMediaFetcher::new(defaults).expect("fetcher");
    let mut a = image("https://pbs.twimg.com/media/GdXyZ12aAAAbCdE.jpg".into());
    assert!(f.fetchable(&a));
    a.storage_key = Some("sha256/aa/bb/aabb".into());
    assert!(!f.fetchable(&a));
    a.storage_key = None;
    a.url = None;
    assert!(!f.fetchable(&a));
}
