//! Telegram end to end, through the real gateway and a real Redis.
//!
//! The webhook table sends each update of `channels/telegram/fixtures/` and
//! asserts the answer and the whole normalized documents in the stream
//! (`<fixture>.expected.json`), or that nothing was written; each case is
//! sent twice, as Telegram retries.
//!
//! The long-polling tests run the gateway against a Bot API stand-in on
//! 127.0.0.1 that serves `getUpdates` and `getMe`. Polled updates become the
//! very same documents as pushed ones (the instance has the same name), so
//! they are checked against the same expected files.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aduan_adapter::testkit::{self, Answer, TELEGRAM_SECRET_HEADER};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::table::{self, Case};
use redis::AsyncCommands;
use serde_json::{Value, json};

const SECRET: &str = "rahasia-webhook_123";
const TOKEN: &str = "7012345678:AAH-uji-token_stand-in";

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&common::fixtures("telegram").bytes(name)).expect("fixture is JSON")
}

/// The whole documents a fixture must become, for instance `tg-bogor`
/// without `raw`; with `ADUAN_BLESS=1` they are written from what the gateway
/// produced instead, for review.
fn expected(name: &str, actual: &[Value]) -> Value {
    testkit::expected_documents(
        &common::fixtures("telegram").golden(name),
        &Value::from(actual.to_vec()),
        &[],
    )
}

// ---------------------------------------------------------------------------
// Webhook

fn webhook_instances() -> String {
    format!(
        "[[instances]]\nname = \"tg-bogor\"\nkind = \"telegram\"\nkeep_raw = false\n\
         secret_token = \"{SECRET}\"\nbot_username = \"LaporCibinongBot\"\n\n\
         [[instances]]\nname = \"tg-grup\"\nkind = \"telegram\"\nkeep_raw = false\n\
         secret_token = \"{SECRET}\"\nbot_username = \"LaporCibinongBot\"\nallow_groups = true\n\n\
         [[instances]]\nname = \"tg-raw\"\nkind = \"telegram\"\n\
         secret_token = \"{SECRET}\"\nbot_username = \"LaporCibinongBot\"\n\n"
    )
}

/// Fixture `name` posted to `instance` as Telegram does, with `token` in the
/// secret-token header. Telegram repeats a delivery it saw no 2xx for: every
/// case is sent twice.
fn update(label: &str, instance: &str, name: &str, token: Option<&str>) -> Case {
    Case::post(label, format!("/webhooks/telegram/{instance}"))
        .header_opt(TELEGRAM_SECRET_HEADER, token)
        .json(common::fixtures("telegram").bytes(name))
        .redelivered()
}

/// An update answered with an empty `200` that adds its golden documents
/// (`<fixture>.<instance>.expected.json` on another instance than `tg-bogor`).
fn written(label: &str, instance: &str, name: &str) -> Case {
    let fixtures = common::fixtures("telegram");
    let golden = match instance {
        "tg-bogor" => fixtures.golden(name),
        other => fixtures.golden_variant(name, other),
    };
    update(label, instance, name, Some(SECRET))
        .answer(Answer::empty())
        .adds_golden(golden)
}

/// An update answered with an empty `200`, nothing written.
fn nothing(label: &str, instance: &str, name: &str) -> Case {
    update(label, instance, name, Some(SECRET)).answer(Answer::empty())
}

/// An update refused with `status` and the JSON `answer`.
fn refused(label: &str, name: &str, token: Option<&str>, status: u16, answer: &str) -> Case {
    update(label, "tg-bogor", name, token)
        .status(status)
        .answer(Answer::json(answer))
}

const UNAUTHORIZED: &str = r#"{"error":"unauthorized"}"#;

fn cases() -> Vec<Case> {
    vec![
        written("text", "tg-bogor", "message_text.json"),
        written("photo: the largest size", "tg-bogor", "message_photo.json"),
        written("document with caption", "tg-bogor", "message_document.json"),
        written("voice note", "tg-bogor", "message_voice.json"),
        written("audio", "tg-bogor", "message_audio.json"),
        written("video", "tg-bogor", "message_video.json"),
        written("video note", "tg-bogor", "message_video_note.json"),
        written("sticker", "tg-bogor", "message_sticker.json"),
        written("location", "tg-bogor", "message_location.json"),
        written("venue", "tg-bogor", "message_venue.json"),
        written(
            "the sender's own contact",
            "tg-bogor",
            "message_contact.json",
        ),
        written(
            "reply to an earlier message",
            "tg-bogor",
            "message_reply.json",
        ),
        written("edited message", "tg-bogor", "edited_message.json"),
        nothing("/start command", "tg-bogor", "command_start.json"),
        nothing(
            "group message, groups off",
            "tg-bogor",
            "group_mention.json",
        ),
        nothing("channel post", "tg-bogor", "channel_post.json"),
        nothing("callback query", "tg-bogor", "callback_query.json"),
        nothing(
            "bot blocked (my_chat_member)",
            "tg-bogor",
            "my_chat_member.json",
        ),
        written(
            "group message mentioning the bot, groups on",
            "tg-grup",
            "group_mention.json",
        ),
        written(
            "group reply to the bot, groups on",
            "tg-grup",
            "group_reply_to_bot.json",
        ),
        nothing("group chatter, groups on", "tg-grup", "group_chatter.json"),
        written("raw kept byte for byte", "tg-raw", "message_text.json"),
        refused(
            "message without chat",
            "missing_chat.json",
            Some(SECRET),
            400,
            r#"{"error":"malformed","reason":"missing field `chat` at line 15 column 3"}"#,
        ),
        refused(
            "not JSON",
            "not_json.txt",
            Some(SECRET),
            400,
            r#"{"error":"malformed","reason":"malformed JSON at line 1 column 1"}"#,
        ),
        refused(
            "wrong secret token",
            "message_voice.json",
            Some("rahasia-webhook_124"),
            401,
            UNAUTHORIZED,
        ),
        refused(
            "missing secret token",
            "message_voice.json",
            None,
            401,
            UNAUTHORIZED,
        ),
    ]
}

#[tokio::test]
async fn webhook_cases() {
    let mut app = common::spawn_app(&webhook_instances()).await;
    table::run(&app, cases()).await;
    app.stop().await;
}

#[tokio::test]
async fn webhook_check_can_be_turned_off() {
    let mut app = common::spawn_app(
        "[[instances]]\nname = \"tg-bogor\"\nkind = \"telegram\"\nkeep_raw = false\n\
         verify_secret_token = false\nbot_username = \"LaporCibinongBot\"\n",
    )
    .await;
    table::run(
        &app,
        [
            update("no secret token", "tg-bogor", "message_text.json", None)
                .adds_golden(common::fixtures("telegram").golden("message_text.json")),
        ],
    )
    .await;
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Long polling against a Bot API stand-in

/// One call the stand-in answered.
#[derive(Clone, Debug)]
struct Call {
    method: String,
    offset: Option<i64>,
    at: Instant,
}

/// A local Bot API for one bot. It keeps every update it was given and
/// answers `getUpdates` with those at or after `offset`, as the Bot API
/// does; it does not forget confirmed ones, so a client that asked with a
/// stale offset would get them again and a duplicate would show.
#[derive(Default)]
struct BotApi {
    updates: Mutex<Vec<Value>>,
    calls: Mutex<Vec<Call>>,
    /// Answer the next `getUpdates` with 429 and this `retry_after`.
    throttle: Mutex<Option<u32>>,
    /// Answer the next `getUpdates` with 409, as Telegram does when another
    /// client polls the same bot or a webhook is set.
    conflict: Mutex<bool>,
    /// `getUpdates` calls being answered now, and the most there ever were:
    /// two replicas polling one bot would overlap.
    polling_now: Mutex<(u32, u32)>,
}

impl BotApi {
    fn push(&self, fixture: &str) {
        self.updates
            .lock()
            .expect("lock")
            .push(fixture_json(fixture));
    }

    fn calls(&self, method: &str) -> Vec<Call> {
        self.calls
            .lock()
            .expect("lock")
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .cloned()
            .collect()
    }
}

async fn bot_api(
    State(api): State<Arc<BotApi>>,
    Path((bot, method)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    if bot != format!("bot{TOKEN}") {
        let answer = json!({"ok": false, "error_code": 401, "description": "Unauthorized"});
        return (StatusCode::UNAUTHORIZED, axum::Json(answer)).into_response();
    }
    let params: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let offset = params.get("offset").and_then(Value::as_i64);
    api.calls.lock().expect("lock").push(Call {
        method: method.clone(),
        offset,
        at: Instant::now(),
    });
    // Method names are case-insensitive in the Bot API; teloxide sends `GetMe`.
    match method.to_ascii_lowercase().as_str() {
        "getme" => axum::Json(json!({"ok": true, "result": {
            "id": 7012345678u64, "is_bot": true, "first_name": "LAPOR Cibinong",
            "username": "LaporCibinongBot", "can_join_groups": true,
            "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false,
        }}))
        .into_response(),
        "getupdates" => {
            if let Some(secs) = api.throttle.lock().expect("lock").take() {
                let answer = json!({"ok": false, "error_code": 429,
                    "description": format!("Too Many Requests: retry after {secs}"),
                    "parameters": {"retry_after": secs}});
                return (StatusCode::TOO_MANY_REQUESTS, axum::Json(answer)).into_response();
            }
            if std::mem::take(&mut *api.conflict.lock().expect("lock")) {
                let answer = json!({"ok": false, "error_code": 409,
                    "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"});
                return (StatusCode::CONFLICT, axum::Json(answer)).into_response();
            }
            {
                let mut now = api.polling_now.lock().expect("lock");
                now.0 += 1;
                now.1 = now.1.max(now.0);
            }
            let limit = params.get("limit").and_then(Value::as_u64).unwrap_or(100) as usize;
            let pending = || -> Vec<Value> {
                let mut all: Vec<Value> = api
                    .updates
                    .lock()
                    .expect("lock")
                    .iter()
                    .filter(|u| offset.is_none_or(|o| u["update_id"].as_i64() >= Some(o)))
                    .cloned()
                    .collect();
                all.sort_by_key(|u| u["update_id"].as_i64());
                all.truncate(limit);
                all
            };
            let mut result = pending();
            if result.is_empty() {
                // A short long poll keeps the tests quick.
                tokio::time::sleep(Duration::from_millis(300)).await;
                result = pending();
            }
            api.polling_now.lock().expect("lock").0 -= 1;
            axum::Json(json!({"ok": true, "result": result})).into_response()
        }
        _ => {
            let answer = json!({"ok": false, "error_code": 404, "description": "Not Found"});
            (StatusCode::NOT_FOUND, axum::Json(answer)).into_response()
        }
    }
}

/// Starts the stand-in on 127.0.0.1:0; returns it and its base URL.
async fn spawn_bot_api() -> (Arc<BotApi>, String) {
    let api = Arc::new(BotApi::default());
    let router = axum::Router::new()
        .route("/{bot}/{method}", axum::routing::post(bot_api))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (api, format!("http://{addr}"))
}

/// A polling instance named like the webhook one, so the documents match.
fn polling_instance(api_url: &str, with_username: bool) -> String {
    let username = if with_username {
        "bot_username = \"LaporCibinongBot\"\n"
    } else {
        ""
    };
    format!(
        "[[instances]]\nname = \"tg-bogor\"\nkind = \"telegram\"\nkeep_raw = false\nmode = \"polling\"\n\
         bot_token = \"{TOKEN}\"\napi_url = \"{api_url}\"\npoll_timeout_seconds = 1\nlease_seconds = 3\n{username}"
    )
}

/// Waits until the stream holds `n` entries (10 s at most).
async fn wait_for_entries(app: &common::TestApp, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.stream_len().await < n {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} entries"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the stand-in has been asked for updates from `offset`, in
/// a `getUpdates` call after the first `since` ones.
async fn wait_for_offset(api: &BotApi, since: usize, offset: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !api
        .calls("getUpdates")
        .iter()
        .skip(since)
        .any(|c| c.offset == Some(offset))
    {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for offset {offset}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cursor(app: &common::TestApp) -> Option<String> {
    let mut conn = app.conn().await;
    conn.get(format!("{}:cursor:telegram:tg-bogor", app.prefix))
        .await
        .expect("GET")
}

/// Checks each document against the expected file of the fixture it came from.
fn assert_documents(docs: &[Value], fixtures: &[&str]) {
    assert_eq!(docs.len(), fixtures.len(), "one document per complaint");
    for (doc, name) in docs.iter().zip(fixtures) {
        let want = expected(name, std::slice::from_ref(doc));
        common::assert_json_matches(&Value::from(vec![doc.clone()]), &want);
    }
}

#[tokio::test]
async fn polling_ingests_each_update_once_and_confirms_after_acceptance() {
    let (api, url) = spawn_bot_api().await;
    for f in [
        "message_text.json",
        "message_photo.json",
        "callback_query.json",
        "edited_message.json",
    ] {
        api.push(f);
    }
    let mut app = common::spawn_app(&polling_instance(&url, true)).await;
    wait_for_entries(&app, 3).await;
    wait_for_offset(&api, 0, 512340020).await;
    // More polls after the last update must not bring anything again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.stop().await;

    let docs = app.complaints().await;
    assert_documents(
        &docs,
        &[
            "message_text.json",
            "message_photo.json",
            "edited_message.json",
        ],
    );
    assert_eq!(cursor(&app).await.as_deref(), Some("512340020"));
    let offsets: Vec<Option<i64>> = api.calls("getUpdates").iter().map(|c| c.offset).collect();
    assert_eq!(
        offsets[0], None,
        "the first poll starts from Telegram's own position"
    );
    assert!(
        offsets[1..].iter().all(|o| *o == Some(512340020)),
        "every later poll confirms the batch: {offsets:?}"
    );
    assert!(api.calls("getMe").is_empty(), "username was configured");
}

#[tokio::test]
async fn polling_resumes_after_a_restart_without_loss_or_duplicate() {
    let (api, url) = spawn_bot_api().await;
    let namespace = common::unique("tg-restart");
    let config = polling_instance(&url, true);
    api.push("message_text.json");
    api.push("message_photo.json");

    let mut first = common::spawn_replica(&config, &namespace, "first").await;
    wait_for_entries(&first, 2).await;
    wait_for_offset(&api, 0, 512340003).await;
    first.stop().await;
    let polls_before_restart = api.calls("getUpdates").len();

    // Updates that arrive while no gateway runs.
    api.push("message_voice.json");
    api.push("message_reply.json");

    let mut second = common::spawn_replica(&config, &namespace, "second").await;
    wait_for_entries(&second, 4).await;
    wait_for_offset(&api, polls_before_restart, 512340013).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.stop().await;

    let after_restart = &api.calls("getUpdates")[polls_before_restart..];
    assert_eq!(
        after_restart[0].offset,
        Some(512340003),
        "the restarted gateway resumes from the stored offset"
    );
    assert_documents(
        &second.complaints().await,
        &[
            "message_text.json",
            "message_photo.json",
            "message_voice.json",
            "message_reply.json",
        ],
    );

    // A crash between publishing and storing the offset: the next gateway
    // fetches the same updates again and the stream still holds each once.
    let mut conn = second.conn().await;
    let _: () = conn
        .del(format!("{}:cursor:telegram:tg-bogor", second.prefix))
        .await
        .expect("DEL");
    let polls_before_crash_restart = api.calls("getUpdates").len();
    let mut third = common::spawn_replica(&config, &namespace, "third").await;
    wait_for_offset(&api, polls_before_crash_restart, 512340013).await;
    let refetched = api.calls("getUpdates")[polls_before_crash_restart..]
        .iter()
        .any(|c| c.offset.is_none());
    assert!(
        refetched,
        "the gateway without an offset asked from the start"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    third.stop().await;
    assert_eq!(
        third.stream_len().await,
        4,
        "re-fetched updates are not appended again"
    );
    assert_eq!(cursor(&third).await.as_deref(), Some("512340013"));
}

#[tokio::test]
async fn two_gateways_polling_one_bot_ingest_each_update_once() {
    let (api, url) = spawn_bot_api().await;
    let namespace = common::unique("tg-pair");
    let config = polling_instance(&url, true);
    let mut a = common::spawn_replica(&config, &namespace, "a").await;
    let mut b = common::spawn_replica(&config, &namespace, "b").await;

    let fixtures = [
        "message_text.json",
        "message_photo.json",
        "message_document.json",
        "message_location.json",
        "message_venue.json",
    ];
    for f in fixtures {
        api.push(f);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_entries(&a, 5).await;
    wait_for_offset(&api, 0, 512340011).await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    let mut conn = a.conn().await;
    let holder: Option<String> = conn
        .get(format!("{}:lease:telegram:tg-bogor", a.prefix))
        .await
        .expect("GET");
    assert!(holder.is_some(), "one gateway holds the polling lease");
    assert_eq!(
        api.polling_now.lock().expect("lock").1,
        1,
        "never two getUpdates calls at once"
    );

    // Whichever replica held the lease, the other one carries on once `a` is gone.
    a.stop().await;
    let polls_before = api.calls("getUpdates").len();
    // Update ids keep growing, as Telegram's do.
    api.push("message_reply.json");
    api.push("edited_message.json");
    wait_for_entries(&b, 7).await;
    wait_for_offset(&api, polls_before, 512340014).await;
    b.stop().await;
    assert_documents(
        &b.complaints().await,
        &[
            "message_text.json",
            "message_photo.json",
            "message_document.json",
            "message_location.json",
            "message_venue.json",
            "message_reply.json",
            "edited_message.json",
        ],
    );
}

/// Runs a polling gateway until it ingested `message_text.json`, the
/// stand-in answering its first poll as `fault` set it up; returns the
/// stand-in, the stopped gateway and the time between the first two polls.
async fn polled_after(
    fault: impl FnOnce(&BotApi),
    with_username: bool,
) -> (Arc<BotApi>, common::TestApp, Duration) {
    let (api, url) = spawn_bot_api().await;
    fault(&api);
    api.push("message_text.json");
    let mut app = common::spawn_app(&polling_instance(&url, with_username)).await;
    wait_for_entries(&app, 1).await;
    app.stop().await;
    let polls = api.calls("getUpdates");
    assert!(polls.len() >= 2);
    let waited = polls[1].at.duration_since(polls[0].at);
    (api, app, waited)
}

#[tokio::test]
async fn polling_honours_retry_after_and_learns_the_username() {
    let (api, app, waited) =
        polled_after(|api| *api.throttle.lock().expect("lock") = Some(2), false).await;
    assert!(
        waited >= Duration::from_secs(2),
        "the poll after a 429 waited {waited:?}, less than retry_after"
    );
    assert_eq!(api.calls("getMe").len(), 1, "the username is asked once");
    // The learned username fills `recipient` exactly like a configured one.
    assert_documents(&app.complaints().await, &["message_text.json"]);
}

/// The gateway's own host, with the first `publish` failing as if Redis and
/// the spool were both unavailable, and a log of what the poller asked.
struct FlakyHost {
    inner: aduan::poll::PollHost,
    failures_left: Mutex<u32>,
    log: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl aduan_adapter::Host for FlakyHost {
    async fn accept(
        &self,
        outcome: aduan_adapter::Outcome,
    ) -> Result<Vec<aduan_adapter::Receipt>, aduan_adapter::HostError> {
        let fail = {
            let mut left = self.failures_left.lock().expect("lock");
            let fail = *left > 0;
            *left = left.saturating_sub(1);
            fail
        };
        if fail {
            self.log.lock().expect("lock").push("publish failed".into());
            return Err(aduan_adapter::HostError("storage unavailable".into()));
        }
        let receipts = self.inner.accept(outcome).await?;
        self.log
            .lock()
            .expect("lock")
            .push(format!("published {}", receipts.len()));
        Ok(receipts)
    }

    fn ignored(&self, instance: &str, reason: &'static str) {
        self.inner.ignored(instance, reason)
    }

    async fn lease(&self, name: &str, ttl: Duration) -> Result<bool, aduan_adapter::HostError> {
        self.inner.lease(name, ttl).await
    }

    async fn release(&self, name: &str) -> Result<(), aduan_adapter::HostError> {
        self.inner.release(name).await
    }

    async fn load_cursor(&self, name: &str) -> Result<Option<String>, aduan_adapter::HostError> {
        self.inner.load_cursor(name).await
    }

    async fn store_cursor(&self, name: &str, value: &str) -> Result<(), aduan_adapter::HostError> {
        self.log
            .lock()
            .expect("lock")
            .push(format!("stored {value}"));
        self.inner.store_cursor(name, value).await
    }

    fn now(&self) -> aduan_adapter::Timestamp {
        self.inner.now()
    }
}

#[tokio::test]
async fn polling_stores_the_offset_only_after_the_publish_succeeded() {
    let (api, url) = spawn_bot_api().await;
    api.push("message_text.json");
    api.push("message_photo.json");
    // A gateway for its pipeline and Redis keys; the poller runs beside it on a flaky host.
    let mut app = common::spawn_app(&format!(
        "[[instances]]\nname = \"tg-webhook\"\nkind = \"telegram\"\nsecret_token = \"{SECRET}\"\n"
    ))
    .await;
    let ingest = app.running.as_ref().expect("running").state.ingest.clone();
    // The poller's instance, as the gateway would have built it.
    let instance = Arc::new(aduan::instances::Instance {
        name: "tg-bogor".into(),
        kind: aduan::settings::InstanceKind::Telegram,
        keep_raw: false,
        route: None,
        intake: aduan::instances::Intake::Poll(Mutex::new(None)),
        reply: None,
        ack: None,
        status: None,
        media: None,
        form: None,
    });
    let host = Arc::new(FlakyHost {
        inner: aduan::poll::PollHost::new(ingest, instance),
        failures_left: Mutex::new(1),
        log: Mutex::new(Vec::new()),
    });
    let cfg: aduan_telegram::TelegramConfig =
        toml::from_str(&polling_instance(&url, true).replace(
            "[[instances]]\nname = \"tg-bogor\"\nkind = \"telegram\"\nkeep_raw = false\n",
            "",
        ))
        .expect("polling settings");
    let Ok(aduan_telegram::Intake::Polling(poller)) = aduan_telegram::build("tg-bogor", false, cfg)
    else {
        panic!("a poller expected");
    };
    let shutdown = aduan_adapter::Shutdown::new();
    let running = tokio::spawn(aduan_adapter::Poller::run(
        Box::new(poller),
        host.clone(),
        shutdown.clone(),
    ));

    wait_for_entries(&app, 2).await;
    wait_for_offset(&api, 0, 512340003).await;
    shutdown.cancel();
    running.await.expect("poller stops");
    app.stop().await;

    assert_eq!(
        *host.log.lock().expect("lock"),
        ["publish failed", "published 2", "stored 512340003"],
        "nothing is confirmed before the complaints are accepted"
    );
    let offsets: Vec<Option<i64>> = api.calls("getUpdates").iter().map(|c| c.offset).collect();
    assert_eq!(
        offsets[..2],
        [None, None],
        "after the failure the same updates are fetched again: {offsets:?}"
    );
    assert_documents(
        &app.complaints().await,
        &["message_text.json", "message_photo.json"],
    );
}

#[tokio::test]
async fn oversize_updates_are_refused() {
    let mut app = common::spawn_app(&webhook_instances()).await;
    // A valid update whose text alone is past the gateway's 1 MiB default.
    let mut update = fixture_json("message_text.json");
    update["message"]["text"] = "Jalan rusak. ".repeat(90_000).into();
    table::run(
        &app,
        [Case::post("oversize update", "/webhooks/telegram/tg-bogor")
            .header(TELEGRAM_SECRET_HEADER, SECRET)
            .json(update.to_string())
            .status(413)],
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn polling_backs_off_after_an_error_and_recovers() {
    let (_api, app, waited) =
        polled_after(|api| *api.conflict.lock().expect("lock") = true, true).await;
    assert!(
        waited >= Duration::from_millis(500),
        "the poll after an error came after {waited:?}, without backing off"
    );
    assert_documents(&app.complaints().await, &["message_text.json"]);
}

/// The per-sender limit applies to polled updates as to webhooks: over it, the
/// batch is not acknowledged (its offset is not stored) and is fetched again
/// later, when the redelivered complaint is recognized and nothing is lost.
#[tokio::test]
async fn polling_keeps_to_the_per_sender_limit() {
    let (api, url) = spawn_bot_api().await;
    api.push("message_text.json");
    api.push("message_photo.json");
    let app = common::spawn_app(&format!(
        "[limits]\nper_sender_per_minute = 1\n\n{}",
        polling_instance(&url, true)
    ))
    .await;
    wait_for_entries(&app, 1).await;
    // Several polls later the second update is still held back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.calls("getUpdates").len() < 3 {
        assert!(Instant::now() < deadline, "the batch is fetched again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.stream_len().await,
        1,
        "the sender's second message waits"
    );
    assert_eq!(cursor(&app).await, None, "the batch is not acknowledged");
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("aduan_limit_exceeded_total{")
                && l.contains("limit=\"sender_rate\"")
                && l.contains("route=\"poll\"")),
        "{metrics}"
    );
}
