//! The Telegram file fetcher against a stand-in of the Bot API and its file
//! server on 127.0.0.1: `getFile`, then the download, streamed into the
//! sink; files too big for the Bot API, unknown files, throttling, silence.
//! No error may carry the bot token, which is part of both URLs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_adapter::media::{FetchError, Fetched, MediaFetcher, MediaHttp, MediaSink};
use aduan_adapter::{Attachment, AttachmentKind};
use aduan_telegram::{TelegramFetchConfig, TelegramFetcher};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const TOKEN: &str = "7012345678:AAHrahasiaLaporCibinong_Bot-9x";
const FILE_ID: &str = "AwACAgUAAxkBAAIBQmdVoiceNoteBogor2026";
const FILE_PATH: &str = "voice/file_42.oga";

// ---------------------------------------------------------------------------
// The stand-in

/// One request the stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    query: Option<String>,
}

/// The answer to one path.
#[derive(Clone, Debug)]
struct Script {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    delay: Duration,
}

impl Script {
    fn json(status: u16, body: Value) -> Self {
        Script {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    fn file(body: Vec<u8>) -> Self {
        Script {
            status: 200,
            content_type: "application/octet-stream",
            body,
            delay: Duration::ZERO,
        }
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

struct BotApi {
    base: String,
    shared: Shared,
}

impl BotApi {
    async fn start() -> BotApi {
        let shared = Shared::default();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        BotApi {
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

    /// `getFile` answering `body`.
    fn get_file(&self, status: u16, body: Value) {
        self.route(&format!("/bot{TOKEN}/getFile"), Script::json(status, body));
    }

    /// The file server holding `body` at [`FILE_PATH`].
    fn file(&self, script: Script) {
        self.route(&format!("/file/bot{TOKEN}/{FILE_PATH}"), script);
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }
}

async fn answer(axum::extract::State(shared): axum::extract::State<Shared>, uri: Uri) -> Response {
    shared.seen.lock().expect("lock").push(Seen {
        path: uri.path().into(),
        query: uri.query().map(str::to_string),
    });
    let script = shared.routes.lock().expect("lock").get(uri.path()).cloned();
    let Some(script) = script else {
        return (
            StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            json!({"ok": false, "error_code": 404, "description": "Not Found"}).to_string(),
        )
            .into_response();
    };
    tokio::time::sleep(script.delay).await;
    (
        StatusCode::from_u16(script.status).expect("status"),
        [("content-type", script.content_type)],
        script.body,
    )
        .into_response()
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

/// Invented bytes of a voice note, `len` long.
fn voice(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 17 % 253) as u8).collect()
}

fn fetcher(api_url: &str) -> TelegramFetcher {
    let config: TelegramFetchConfig =
        toml::from_str(&format!("token = \"{TOKEN}\"\napi_url = \"{api_url}\"")).expect("config");
    TelegramFetcher::new(config).expect("fetcher")
}

fn http() -> MediaHttp {
    MediaHttp::new(reqwest::Client::new(), true)
}

/// A voice note as the update gives it.
fn voice_note() -> Attachment {
    Attachment {
        content_type: Some("audio/ogg".into()),
        size: Some(300_000),
        provider_ref: Some(FILE_ID.into()),
        ..Attachment::new(AttachmentKind::Voice)
    }
}

fn found() -> Value {
    json!({"ok": true, "result": {
        "file_id": FILE_ID,
        "file_unique_id": "AgADvoice42",
        "file_size": 300000,
        "file_path": FILE_PATH,
    }})
}

/// Neither the token nor its secret half is in `e`.
fn assert_clean(e: &FetchError) {
    let secret_half = TOKEN.split(':').nth(1).unwrap_or(TOKEN);
    assert!(
        !e.message.contains(secret_half) && !e.code.contains(secret_half),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_file_id_is_resolved_then_downloaded() {
    let api = BotApi::start().await;
    api.get_file(200, found());
    let bytes = voice(300_000);
    api.file(Script::file(bytes.clone()));
    let f = fetcher(&api.base);
    let attachment = voice_note();
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
            content_type: Some("audio/ogg".into()),
            expected_sha256: None,
        }
    );
    let seen = api.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, format!("/bot{TOKEN}/getFile"));
    let query: Vec<(String, String)> =
        form_urlencoded_pairs(seen[0].query.as_deref().unwrap_or_default());
    assert_eq!(query, [("file_id".to_string(), FILE_ID.to_string())]);
    assert_eq!(seen[1].path, format!("/file/bot{TOKEN}/{FILE_PATH}"));
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

#[tokio::test]
async fn without_a_type_in_the_message_the_servers_is_kept_unless_it_says_only_bytes() {
    let api = BotApi::start().await;
    api.get_file(200, found());
    api.file(Script {
        content_type: "audio/ogg",
        ..Script::file(voice(10))
    });
    let mut a = voice_note();
    a.content_type = None;
    let fetched = fetcher(&api.base)
        .fetch(&a, &http(), &mut Buffer::default())
        .await
        .expect("fetched");
    assert_eq!(fetched.content_type.as_deref(), Some("audio/ogg"));

    api.file(Script::file(voice(10)));
    let fetched = fetcher(&api.base)
        .fetch(&a, &http(), &mut Buffer::default())
        .await
        .expect("fetched");
    assert_eq!(fetched.content_type, None);
}

#[tokio::test]
async fn a_file_too_big_for_the_bot_api_is_too_large_for_good() {
    let api = BotApi::start().await;
    api.get_file(
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: file is too big"}),
    );
    let e = fetcher(&api.base)
        .fetch(&voice_note(), &http(), &mut Buffer::default())
        .await
        .expect_err("too big");
    assert_eq!((e.code.as_str(), e.temporary), ("too_large", false));
    assert_eq!(api.seen().len(), 1, "nothing downloaded");
}

#[tokio::test]
async fn an_unknown_file_is_not_found_and_a_vanished_one_too() {
    let api = BotApi::start().await;
    api.get_file(
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}),
    );
    let e = fetcher(&api.base)
        .fetch(&voice_note(), &http(), &mut Buffer::default())
        .await
        .expect_err("unknown");
    assert_eq!((e.code.as_str(), e.temporary), ("not_found", false));

    // getFile answers, but the file server no longer has it.
    api.get_file(200, found());
    api.shared
        .routes
        .lock()
        .expect("lock")
        .retain(|p, _| p.contains("getFile"));
    let mut sink = Buffer::default();
    let e = fetcher(&api.base)
        .fetch(&voice_note(), &http(), &mut sink)
        .await
        .expect_err("gone");
    assert_eq!((e.code.as_str(), e.temporary), ("not_found", false));
    assert!(sink.bytes.is_empty(), "an error answer is not the file");
    assert_clean(&e);
}

#[tokio::test]
async fn throttling_waits_as_told() {
    let api = BotApi::start().await;
    api.get_file(
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 9", "parameters": {"retry_after": 9}}),
    );
    let e = fetcher(&api.base)
        .fetch(&voice_note(), &http(), &mut Buffer::default())
        .await
        .expect_err("throttled");
    assert!(e.temporary);
    assert_eq!(e.retry_after, Some(Duration::from_secs(9)));
}

#[tokio::test]
async fn a_refused_token_is_permanent_and_never_quoted() {
    let api = BotApi::start().await;
    api.get_file(
        401,
        json!({"ok": false, "error_code": 401, "description": format!("Unauthorized: bot{TOKEN}")}),
    );
    let e = fetcher(&api.base)
        .fetch(&voice_note(), &http(), &mut Buffer::default())
        .await
        .expect_err("unauthorized");
    assert_eq!((e.code.as_str(), e.temporary), ("unauthorized", false));
    assert_clean(&e);

    // Any other refusal keeps Telegram's words, masked.
    api.get_file(
        400,
        json!({"ok": false, "error_code": 400, "description": format!("Bad Request: bot{TOKEN} is odd")}),
    );
    let e = fetcher(&api.base)
        .fetch(&voice_note(), &http(), &mut Buffer::default())
        .await
        .expect_err("odd");
    assert_eq!((e.code.as_str(), e.temporary), ("telegram_400", false));
    assert!(e.message.contains("is odd"), "{}", e.message);
    assert_clean(&e);
}

#[tokio::test]
async fn a_slow_bot_api_times_out_without_the_token() {
    let api = BotApi::start().await;
    api.route(
        &format!("/bot{TOKEN}/getFile"),
        Script::json(200, found()).after(Duration::from_secs(2)),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let e = fetcher(&api.base)
        .fetch(
            &voice_note(),
            &MediaHttp::new(client, true),
            &mut Buffer::default(),
        )
        .await
        .expect_err("slow");
    assert_eq!((e.code.as_str(), e.temporary), ("timeout", true));
    assert_clean(&e);
}

#[tokio::test]
async fn a_bot_api_that_cannot_be_reached_is_a_network_error_without_the_token() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let e = fetcher(&base)
        .fetch(&voice_note(), &http(), &mut Buffer::default())
        .await
        .expect_err("refused");
    assert_eq!((e.code.as_str(), e.temporary), ("network", true));
    assert_clean(&e);
    assert!(!e.message.contains("127.0.0.1"), "{}", e.message);
}

#[tokio::test]
async fn a_full_sink_ends_the_fetch_with_its_error() {
    let api = BotApi::start().await;
    api.get_file(200, found());
    api.file(Script::file(voice(1024 * 1024)));
    let mut sink = Buffer {
        cap: Some(64 * 1024),
        ..Buffer::default()
    };
    let e = fetcher(&api.base)
        .fetch(&voice_note(), &http(), &mut sink)
        .await
        .expect_err("too large");
    assert_eq!(e, FetchError::permanent("too_large", "over 65536 bytes"));
    assert!(sink.bytes.len() <= 64 * 1024);
}

#[tokio::test]
async fn private_addresses_are_refused_before_any_request() {
    let api = BotApi::start().await;
    api.get_file(200, found());
    let e = fetcher(&api.base)
        .fetch(
            &voice_note(),
            &MediaHttp::new(reqwest::Client::new(), false),
            &mut Buffer::default(),
        )
        .await
        .expect_err("refused");
    assert_eq!((e.code.as_str(), e.temporary), ("forbidden_address", false));
    assert!(api.seen().is_empty());
}

#[tokio::test]
async fn only_files_not_yet_stored_are_fetched_and_configs_are_strict() {
    let f = fetcher("https://api.telegram.org");
    let mut a = voice_note();
    a.storage_key = Some("sha256/9f/86/9f86d081".into());
    assert!(!f.fetchable(&a));
    a.storage_key = None;
    a.provider_ref = None;
    assert!(!f.fetchable(&a));
    let typo: Result<TelegramFetchConfig, _> =
        toml::from_str(&format!("token = \"{TOKEN}\"\napi_ur = \"https://x\""));
    assert!(typo.is_err());
    let defaults: TelegramFetchConfig =
        toml::from_str(&format!("token = \"{TOKEN}\"")).expect("config");
    assert_eq!(defaults.api_url, "https://api.telegram.org");
    assert_eq!(defaults.link_lifetime_seconds, 7 * 24 * 3600);
}
