//! The WhatsApp and CDN media fetchers against stand-ins of the Graph API,
//! WhatsApp's media host and a CDN on 127.0.0.1: the requests they make
//! (path, Bearer token), the bytes they stream into the sink, what they say
//! of them, and what every kind of answer (404, Graph errors, 429, 5xx,
//! silence, a full sink) becomes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_adapter::media::{FetchError, Fetched, MediaFetcher, MediaHttp, MediaSink};
use aduan_adapter::{Attachment, AttachmentKind, Secret};
use aduan_meta::{CdnFetchConfig, CdnFetcher, WhatsAppFetchConfig, WhatsAppFetcher};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const TOKEN: &str = "EAAGm0PX4ZCpsBAmediarahasiaJabar2026";
const MEDIA_ID: &str = "1037543291543636";
/// The SHA-256 WhatsApp gives, as hex and as the base64 of the same bytes.
const SHA256_HEX: &str = "1f6c0a0e2d7b6f8c9e4d3a2b1c0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29";
const SHA256_B64: &str = "H2wKDi17b4yeTTorHA+ejXxrWk8+LRwLmo9+bVxLOik=";

// ---------------------------------------------------------------------------
// The stand-in

/// One request the stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    user_agent: Option<String>,
}

/// The answer to one path.
#[derive(Clone, Debug)]
struct Script {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Script {
    fn json(status: u16, body: Value) -> Self {
        Script {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    fn bytes(content_type: &str, body: Vec<u8>) -> Self {
        Script {
            status: 200,
            headers: vec![("content-type", content_type.into())],
            body,
            delay: Duration::ZERO,
        }
    }

    fn status(status: u16) -> Self {
        Script {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

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
        self.headers.push((name, value.into()));
        self
    }

    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Clone, Default)]
struct Shared {
    routes: Arc<Mutex<HashMap<String, Script>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct StandIn {
    base: String,
    shared: Shared,
}

impl StandIn {
    async fn start() -> StandIn {
        let shared = Shared::default();
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

    fn route(&self, path: &str, script: Script) {
        self.shared
            .routes
            .lock()
            .expect("lock")
            .insert(path.into(), script);
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }
}

async fn answer(
    axum::extract::State(shared): axum::extract::State<Shared>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    shared.seen.lock().expect("lock").push(Seen {
        path: uri.path().into(),
        query: uri.query().map(str::to_string),
        authorization: header("authorization"),
        user_agent: header("user-agent"),
    });
    let script = shared.routes.lock().expect("lock").get(uri.path()).cloned();
    let Some(script) = script else {
        return StatusCode::NOT_FOUND.into_response();
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
// The sink

/// Collects what is written, refusing more than `cap` bytes as `too_large`.
#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    writes: usize,
    cap: Option<usize>,
}

impl Buffer {
    fn capped(cap: usize) -> Buffer {
        Buffer {
            cap: Some(cap),
            ..Buffer::default()
        }
    }
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
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn http() -> MediaHttp {
    MediaHttp::new(reqwest::Client::new(), true)
}

fn whatsapp(base: &str) -> WhatsAppFetcher {
    WhatsAppFetcher::new(WhatsAppFetchConfig {
        access_token: Secret::literal(TOKEN),
        base_url: base.into(),
        api_version: "v21.0".into(),
        phone_number_id: None,
        link_lifetime_seconds: 7 * 24 * 3600,
    })
    .expect("fetcher")
}

/// A WhatsApp image as the webhook gives it: the media id, its type, and
/// the digest the webhook wrote.
fn wa_image(sha256: Option<&str>) -> Attachment {
    Attachment {
        content_type: Some("image/jpeg".into()),
        sha256: sha256.map(str::to_string),
        provider_ref: Some(MEDIA_ID.into()),
        caption: Some("Jalan berlubang di Jl. Merdeka".into()),
        ..Attachment::new(AttachmentKind::Image)
    }
}

/// The lookup's answer for a file at `url`.
fn lookup(url: &str, sha256: Option<&str>) -> Script {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": "image/jpeg",
        "file_size": "303833",
        "id": MEDIA_ID,
    });
    if let Some(sha) = sha256 {
        body["sha256"] = sha.into();
    }
    Script::json(200, body)
}

const LOOKUP: &str = "/v21.0/1037543291543636";
const DOWNLOAD: &str = "/whatsapp_business/attachments/";

async fn fetch_wa(
    graph: &StandIn,
    attachment: &Attachment,
    sink: &mut Buffer,
) -> Result<Fetched, FetchError> {
    whatsapp(&graph.base).fetch(attachment, &http(), sink).await
}

// ---------------------------------------------------------------------------
// WhatsApp

#[tokio::test]
async fn a_media_id_is_looked_up_then_downloaded_with_the_token() {
    let graph = StandIn::start().await;
    let file = photo(300 * 1024);
    graph.route(
        LOOKUP,
        lookup(&format!("{}{DOWNLOAD}", graph.base), Some(SHA256_HEX)),
    );
    graph.route(DOWNLOAD, Script::bytes("image/jpeg", file.clone()));
    let attachment = wa_image(None);
    let f = whatsapp(&graph.base);
    assert!(f.fetchable(&attachment));
    assert_eq!(f.link_lifetime(), Duration::from_secs(7 * 24 * 3600));

    let mut sink = Buffer::default();
    let fetched = f
        .fetch(&attachment, &http(), &mut sink)
        .await
        .expect("fetched");
    assert_eq!(sink.bytes, file);
    assert!(sink.writes > 1, "streamed in chunks: {}", sink.writes);
    // Passed on for the worker to check, not checked here: the invented
    // digest is not that of the bytes.
    assert_eq!(
        fetched,
        Fetched {
            content_type: Some("image/jpeg".into()),
            expected_sha256: Some(SHA256_HEX.into()),
        }
    );
    let seen = graph.seen();
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        [LOOKUP, DOWNLOAD]
    );
    let bearer = format!("Bearer {TOKEN}");
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some(bearer.as_str()),
            "{}",
            s.path
        );
        assert!(
            s.user_agent
                .as_deref()
                .is_some_and(|u| u.starts_with("aduan-media/")),
            "{s:?}"
        );
    }
}

#[tokio::test]
async fn the_digest_is_lowercase_hex_whichever_way_it_is_written() {
    for given in [SHA256_B64, &SHA256_HEX.to_ascii_uppercase()] {
        let graph = StandIn::start().await;
        graph.route(
            LOOKUP,
            lookup(&format!("{}{DOWNLOAD}", graph.base), Some(given)),
        );
        graph.route(DOWNLOAD, Script::bytes("image/jpeg", photo(10)));
        let fetched = fetch_wa(&graph, &wa_image(None), &mut Buffer::default())
            .await
            .expect("fetched");
        assert_eq!(
            fetched.expected_sha256.as_deref(),
            Some(SHA256_HEX),
            "{given}"
        );
    }
}

#[tokio::test]
async fn without_a_digest_in_the_lookup_the_webhooks_is_passed_on() {
    let graph = StandIn::start().await;
    graph.route(LOOKUP, lookup(&format!("{}{DOWNLOAD}", graph.base), None));
    graph.route(DOWNLOAD, Script::bytes("image/jpeg", photo(10)));
    let fetched = fetch_wa(&graph, &wa_image(Some(SHA256_HEX)), &mut Buffer::default())
        .await
        .expect("fetched");
    assert_eq!(fetched.expected_sha256.as_deref(), Some(SHA256_HEX));
}

#[tokio::test]
async fn the_business_number_is_named_when_configured() {
    let graph = StandIn::start().await;
    graph.route(LOOKUP, lookup(&format!("{}{DOWNLOAD}", graph.base), None));
    graph.route(DOWNLOAD, Script::bytes("image/jpeg", photo(10)));
    let f = WhatsAppFetcher::new(WhatsAppFetchConfig {
        access_token: Secret::literal(TOKEN),
        base_url: graph.base.clone(),
        api_version: "v21.0".into(),
        phone_number_id: Some("106540352242922".into()),
        link_lifetime_seconds: 3600,
    })
    .expect("fetcher");
    f.fetch(&wa_image(None), &http(), &mut Buffer::default())
        .await
        .expect("fetched");
    assert_eq!(
        graph.seen()[0].query.as_deref(),
        Some("phone_number_id=106540352242922")
    );
    assert_eq!(f.link_lifetime(), Duration::from_secs(3600));
}

#[tokio::test]
async fn an_expired_media_id_is_not_found_for_good() {
    // Unknown to the stand-in: a bare 404.
    let graph = StandIn::start().await;
    let e = fetch_wa(&graph, &wa_image(None), &mut Buffer::default())
        .await
        .expect_err("404");
    assert_eq!((e.code.as_str(), e.temporary), ("not_found", false));
    assert_eq!(graph.seen().len(), 1, "no download after a failed lookup");

    // Graph's own words for an id that names nothing.
    let graph = StandIn::start().await;
    graph.route(
        LOOKUP,
        Script::graph_error(
            400,
            100,
            Some(33),
            "Unsupported get request. Object with ID '1037543291543636' does not exist",
        ),
    );
    let e = fetch_wa(&graph, &wa_image(None), &mut Buffer::default())
        .await
        .expect_err("unknown object");
    assert_eq!((e.code.as_str(), e.temporary), ("not_found", false));
    assert!(e.message.contains("does not exist"), "{}", e.message);
}

#[tokio::test]
async fn an_invalid_token_is_permanent_and_not_repeated() {
    let graph = StandIn::start().await;
    graph.route(
        LOOKUP,
        Script::graph_error(401, 190, None, &format!("Malformed access token {TOKEN}")),
    );
    let e = fetch_wa(&graph, &wa_image(None), &mut Buffer::default())
        .await
        .expect_err("bad token");
    assert_eq!((e.code.as_str(), e.temporary), ("unauthorized", false));
    assert!(!e.message.contains(TOKEN), "{}", e.message);
    assert!(
        e.message.contains("Malformed access token"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn throttling_waits_as_told() {
    let graph = StandIn::start().await;
    graph.route(
        LOOKUP,
        Script::graph_error(429, 80007, None, "Rate limit hit").header("retry-after", "30"),
    );
    let e = fetch_wa(&graph, &wa_image(None), &mut Buffer::default())
        .await
        .expect_err("throttled");
    assert!(e.temporary);
    assert_eq!(e.code, "graph_80007");
    assert_eq!(e.retry_after, Some(Duration::from_secs(30)));

    // A 503 without a Graph body is read by its status.
    let graph = StandIn::start().await;
    graph.route(LOOKUP, Script::status(503).header("retry-after", "7"));
    let e = fetch_wa(&graph, &wa_image(None), &mut Buffer::default())
        .await
        .expect_err("unavailable");
    assert_eq!((e.code.as_str(), e.temporary), ("http_503", true));
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_failed_download_is_read_by_its_status() {
    let graph = StandIn::start().await;
    graph.route(LOOKUP, lookup(&format!("{}{DOWNLOAD}", graph.base), None));
    graph.route(DOWNLOAD, Script::status(500));
    let mut sink = Buffer::default();
    let e = fetch_wa(&graph, &wa_image(None), &mut sink)
        .await
        .expect_err("500");
    assert_eq!((e.code.as_str(), e.temporary), ("http_500", true));
    assert!(sink.bytes.is_empty());

    graph.route(DOWNLOAD, Script::status(403));
    let e = fetch_wa(&graph, &wa_image(None), &mut Buffer::default())
        .await
        .expect_err("403");
    assert_eq!((e.code.as_str(), e.temporary), ("http_403", false));
}

#[tokio::test]
async fn a_lookup_without_a_url_is_a_bad_response() {
    let graph = StandIn::start().await;
    graph.route(
        LOOKUP,
        Script::json(200, json!({"id": MEDIA_ID, "mime_type": "image/jpeg"})),
    );
    let e = fetch_wa(&graph, &wa_image(None), &mut Buffer::default())
        .await
        .expect_err("no url");
    assert_eq!((e.code.as_str(), e.temporary), ("bad_response", true));
    graph.route(
        LOOKUP,
        Script::bytes("text/html", b"<html>maaf</html>".to_vec()),
    );
    let e = fetch_wa(&graph, &wa_image(None), &mut Buffer::default())
        .await
        .expect_err("not json");
    assert_eq!(e.code, "bad_response");
}

#[tokio::test]
async fn a_slow_lookup_times_out() {
    let graph = StandIn::start().await;
    graph.route(
        LOOKUP,
        lookup(&format!("{}{DOWNLOAD}", graph.base), None).after(Duration::from_secs(2)),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let e = whatsapp(&graph.base)
        .fetch(
            &wa_image(None),
            &MediaHttp::new(client, true),
            &mut Buffer::default(),
        )
        .await
        .expect_err("slow");
    assert_eq!((e.code.as_str(), e.temporary), ("timeout", true));
    assert!(!e.message.contains("127.0.0.1"), "{}", e.message);
}

#[tokio::test]
async fn a_full_sink_ends_the_fetch_with_its_error() {
    let graph = StandIn::start().await;
    graph.route(LOOKUP, lookup(&format!("{}{DOWNLOAD}", graph.base), None));
    graph.route(DOWNLOAD, Script::bytes("video/mp4", photo(1024 * 1024)));
    let mut sink = Buffer::capped(100 * 1024);
    let e = fetch_wa(&graph, &wa_image(None), &mut sink)
        .await
        .expect_err("too large");
    assert_eq!(e, FetchError::permanent("too_large", "over 102400 bytes"));
    assert!(sink.bytes.len() <= 100 * 1024);
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_a_network_error_without_its_url() {
    // A port just freed: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let e = whatsapp(&base)
        .fetch(&wa_image(None), &http(), &mut Buffer::default())
        .await
        .expect_err("refused");
    assert_eq!((e.code.as_str(), e.temporary), ("network", true));
    assert!(!e.message.contains("127.0.0.1"), "{}", e.message);
    assert!(!e.message.contains(MEDIA_ID), "{}", e.message);
}

#[tokio::test]
async fn private_addresses_are_refused_before_any_request() {
    let graph = StandIn::start().await;
    graph.route(LOOKUP, lookup(&format!("{}{DOWNLOAD}", graph.base), None));
    let guarded = MediaHttp::new(reqwest::Client::new(), false);
    let e = whatsapp(&graph.base)
        .fetch(&wa_image(None), &guarded, &mut Buffer::default())
        .await
        .expect_err("refused");
    assert_eq!((e.code.as_str(), e.temporary), ("forbidden_address", false));

    let cdn = CdnFetcher::new(CdnFetchConfig::default()).expect("fetcher");
    let e = cdn
        .fetch(
            &cdn_image(&format!("{}/foto.jpg", graph.base)),
            &guarded,
            &mut Buffer::default(),
        )
        .await
        .expect_err("refused");
    assert_eq!(e.code, "forbidden_address");
    assert!(graph.seen().is_empty());
}

#[tokio::test]
async fn an_attachment_without_a_media_id_is_not_whatsapps() {
    let f = whatsapp("https://graph.facebook.com");
    let mut a = wa_image(None);
    a.storage_key = Some("sha256/1f/6c/1f6c0a0e".into());
    assert!(!f.fetchable(&a), "already stored");
    a.storage_key = None;
    a.provider_ref = None;
    a.url = Some("https://lookaside.fbsbx.com/x".into());
    assert!(!f.fetchable(&a));
    a.provider_ref = Some("../../me/accounts".into());
    let e = f
        .fetch(&a, &http(), &mut Buffer::default())
        .await
        .expect_err("not an id");
    assert_eq!((e.code.as_str(), e.temporary), ("bad_media_id", false));
}

// ---------------------------------------------------------------------------
// CDN URLs (Messenger, Instagram, comments)

fn cdn_image(url: &str) -> Attachment {
    Attachment {
        url: Some(url.into()),
        ..Attachment::new(AttachmentKind::Image)
    }
}

#[tokio::test]
async fn a_cdn_url_is_fetched_as_given_without_credentials() {
    let cdn = StandIn::start().await;
    let path = "/v/t1.15752-9/462051234_foto_n.jpg";
    let file = photo(200 * 1024);
    cdn.route(path, Script::bytes("image/png", file.clone()));
    let f = CdnFetcher::new(CdnFetchConfig::default()).expect("fetcher");
    let attachment = cdn_image(&format!(
        "{}{path}?_nc_cat=104&oh=00_AYBrahasia&oe=6790A1B2",
        cdn.base
    ));
    assert!(f.fetchable(&attachment));
    assert_eq!(f.link_lifetime(), Duration::from_secs(3 * 24 * 3600));
    let mut sink = Buffer::default();
    let fetched = f
        .fetch(&attachment, &http(), &mut sink)
        .await
        .expect("fetched");
    assert_eq!(sink.bytes, file);
    assert_eq!(
        fetched,
        Fetched {
            content_type: Some("image/png".into()),
            expected_sha256: None,
        }
    );
    let seen = cdn.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].query.as_deref(),
        Some("_nc_cat=104&oh=00_AYBrahasia&oe=6790A1B2")
    );
    assert_eq!(seen[0].authorization, None);
}

#[tokio::test]
async fn an_expired_cdn_url_is_refused_for_good() {
    let cdn = StandIn::start().await;
    cdn.route(
        "/expired.jpg",
        Script {
            status: 403,
            ..Script::bytes("text/plain", b"URL signature expired".to_vec())
        },
    );
    let f = CdnFetcher::new(CdnFetchConfig {
        link_lifetime_seconds: 86_400,
    })
    .expect("fetcher");
    let mut sink = Buffer::default();
    let e = f
        .fetch(
            &cdn_image(&format!("{}/expired.jpg", cdn.base)),
            &http(),
            &mut sink,
        )
        .await
        .expect_err("403");
    assert_eq!((e.code.as_str(), e.temporary), ("http_403", false));
    assert!(sink.bytes.is_empty(), "an error page is not the file");
    let e = f
        .fetch(
            &cdn_image(&format!("{}/gone.jpg", cdn.base)),
            &http(),
            &mut sink,
        )
        .await
        .expect_err("404");
    assert_eq!((e.code.as_str(), e.temporary), ("not_found", false));
}

#[tokio::test]
async fn the_cdn_fetcher_keeps_the_webhooks_type_when_the_host_says_only_bytes() {
    let cdn = StandIn::start().await;
    cdn.route(
        "/audio",
        Script::bytes("application/octet-stream", photo(64)),
    );
    let f = CdnFetcher::new(CdnFetchConfig::default()).expect("fetcher");
    let mut a = cdn_image(&format!("{}/audio", cdn.base));
    a.content_type = Some("audio/mp4".into());
    let fetched = f
        .fetch(&a, &http(), &mut Buffer::default())
        .await
        .expect("fetched");
    assert_eq!(fetched.content_type.as_deref(), Some("audio/mp4"));
}

#[tokio::test]
async fn a_slow_cdn_times_out_and_a_config_with_a_typo_is_refused() {
    let cdn = StandIn::start().await;
    cdn.route(
        "/slow.jpg",
        Script::bytes("image/jpeg", photo(10)).after(Duration::from_secs(2)),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let e = CdnFetcher::new(CdnFetchConfig::default())
        .expect("fetcher")
        .fetch(
            &cdn_image(&format!("{}/slow.jpg", cdn.base)),
            &MediaHttp::new(client, true),
            &mut Buffer::default(),
        )
        .await
        .expect_err("slow");
    assert_eq!((e.code.as_str(), e.temporary), ("timeout", true));
    let typo: Result<CdnFetchConfig, _> = serde_json::from_value(json!({"link_lifetime_secs": 60}));
    assert!(typo.is_err());
}
