//! Long polling: the gateway calls `getUpdates` itself.
//!
//! Only the replica holding the lease `telegram:<instance>` polls. Each turn
//! reads the stored offset, asks for the updates after it, publishes their
//! complaints, and only then stores the next offset. Telegram forgets an
//! update once a later call names a higher offset, and that happens only
//! with the stored offset, so a crash at any point re-fetches what was not
//! yet accepted; the gateway's exactly-once append drops what was.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Context, Host, Poller, Raw, Shutdown};
use serde::Serialize;
use teloxide::requests::{JsonRequest, Payload, Requester};
use teloxide::{Bot, RequestError};

use crate::normalize::{Normalized, Normalizer};
use crate::update::Update;

/// The first pause after a failure; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A Telegram bot polled with `getUpdates`.
pub struct TelegramPoller {
    instance: String,
    keep_raw: bool,
    bot: Bot,
    normalizer: Normalizer,
    /// Ask `getMe` for the username before polling (the config named none).
    learn_username: bool,
    pace: Pace,
}

/// How the poller calls `getUpdates` and how long its lease lasts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// Long-poll wait, seconds.
    pub timeout: u32,
    /// Most updates per call.
    pub limit: u8,
    pub lease_ttl: Duration,
}

/// `getUpdates`, answered as untyped JSON so that each update goes through
/// the same normalizer as a webhook body, and an update that teloxide's own
/// types would refuse cannot stall the queue.
#[derive(Serialize)]
struct GetUpdatesJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    limit: u8,
    timeout: u32,
}

impl Payload for GetUpdatesJson {
    type Output = Vec<serde_json::Value>;
    const NAME: &'static str = "getUpdates";

    fn timeout_hint(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.timeout.into()))
    }
}

impl TelegramPoller {
    pub(crate) fn new(
        instance: &str,
        keep_raw: bool,
        bot: Bot,
        normalizer: Normalizer,
        learn_username: bool,
        pace: Pace,
    ) -> Self {
        TelegramPoller {
            instance: instance.to_string(),
            keep_raw,
            bot,
            normalizer,
            learn_username,
            pace,
        }
    }

    async fn poll(mut self, host: Arc<dyn Host>, shutdown: Shutdown) {
        let name = format!("telegram:{}", self.instance);
        let mut backoff = MIN_BACKOFF;
        // A standby replica checks back often enough to take over well within one lease.
        let standby =
            (self.pace.lease_ttl / 3).clamp(Duration::from_millis(200), Duration::from_secs(10));
        let mut holding = false;

        while !shutdown.is_cancelled() {
            match host.lease(&name, self.pace.lease_ttl).await {
                Ok(true) => {
                    if !holding {
                        tracing::info!(instance = %self.instance, "telegram polling lease taken");
                    }
                    holding = true;
                }
                Ok(false) => {
                    if holding {
                        tracing::info!(instance = %self.instance, "telegram polling lease lost to another replica");
                    }
                    holding = false;
                    if !pause(standby, &shutdown).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(instance = %self.instance, error = %e, "telegram polling: lease unavailable");
                    if !self.back_off(&mut backoff, &shutdown).await {
                        break;
                    }
                    continue;
                }
            }

            if self.learn_username {
                let me = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    me = self.bot.get_me() => me,
                };
                match me {
                    Ok(me) => {
                        if let Some(username) = me.user.username.as_deref() {
                            self.normalizer = self.normalizer.clone().with_bot_username(username);
                        }
                        self.learn_username = false;
                    }
                    Err(e) => {
                        if !self.on_api_error(&e, &mut backoff, &shutdown).await {
                            break;
                        }
                        continue;
                    }
                }
            }

            match self.turn(&*host, &name, &shutdown).await {
                Ok(true) => backoff = MIN_BACKOFF,
                Ok(false) => break,
                Err(Failure::Api(e)) => {
                    if !self.on_api_error(&e, &mut backoff, &shutdown).await {
                        break;
                    }
                }
                Err(Failure::Host(what)) => {
                    tracing::warn!(instance = %self.instance, what, "telegram polling: gateway storage unavailable");
                    if !self.back_off(&mut backoff, &shutdown).await {
                        break;
                    }
                }
            }
        }

        if holding && let Err(e) = host.release(&name).await {
            tracing::warn!(instance = %self.instance, error = %e, "telegram polling: lease not released");
        }
    }

    /// One `getUpdates` round. `Ok(false)` when shutdown interrupted it.
    async fn turn(
        &self,
        host: &dyn Host,
        name: &str,
        shutdown: &Shutdown,
    ) -> Result<bool, Failure> {
        let offset = match host.load_cursor(name).await {
            Ok(Some(v)) => match v.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    tracing::warn!(instance = %self.instance, "telegram polling: stored offset unreadable, starting from Telegram's");
                    None
                }
            },
            Ok(None) => None,
            Err(_) => return Err(Failure::Host("load offset")),
        };
        let request = JsonRequest::new(
            self.bot.clone(),
            GetUpdatesJson {
                offset,
                limit: self.pace.limit,
                timeout: self.pace.timeout,
            },
        );
        let updates = tokio::select! {
            _ = shutdown.cancelled() => return Ok(false),
            res = request => res.map_err(Failure::Api)?,
        };
        if updates.is_empty() {
            return Ok(true);
        }

        let ctx = Context {
            instance: &self.instance,
            received_at: host.now(),
            keep_raw: self.keep_raw,
        };
        let mut complaints = Vec::new();
        let mut ignored = Vec::new();
        let mut next = offset;
        for value in updates {
            let Some(id) = value.get("update_id").and_then(|v| v.as_i64()) else {
                ignored.push("malformed");
                continue;
            };
            next = Some(next.map_or(id + 1, |n| n.max(id + 1)));
            let raw = self.keep_raw.then(|| Raw {
                content_type: "application/json".into(),
                body: value.to_string(),
            });
            let normalized = serde_json::from_value::<Update>(value)
                .map_err(|e| e.to_string())
                .and_then(|u| {
                    self.normalizer
                        .update(&u, &ctx, raw)
                        .map_err(|e| e.to_string())
                });
            match normalized {
                Ok(Normalized::Complaint(c)) => complaints.push(*c),
                Ok(Normalized::Ignored(reason)) => ignored.push(reason),
                Err(_) => {
                    // Skipped rather than retried: Telegram would send it unchanged forever.
                    tracing::warn!(instance = %self.instance, update_id = id, "telegram polling: malformed update skipped");
                    ignored.push("malformed");
                }
            }
        }

        if !complaints.is_empty() {
            host.accept(aduan_adapter::Outcome::complaints(complaints))
                .await
                .map_err(|_| Failure::Host("publish"))?;
        }
        for reason in ignored {
            host.ignored(&self.instance, reason);
        }
        if let Some(next) = next
            && Some(next) != offset
        {
            host.store_cursor(name, &next.to_string())
                .await
                .map_err(|_| Failure::Host("store offset"))?;
        }
        Ok(true)
    }

    /// Waits as Telegram asks on 429, backs off otherwise. False on shutdown.
    async fn on_api_error(
        &self,
        e: &RequestError,
        backoff: &mut Duration,
        shutdown: &Shutdown,
    ) -> bool {
        if let RequestError::RetryAfter(secs) = e {
            tracing::info!(instance = %self.instance, retry_after = secs.seconds(), "telegram polling: rate limited");
            return pause(secs.duration(), shutdown).await;
        }
        tracing::warn!(instance = %self.instance, error = describe(e), "telegram polling: Bot API call failed");
        self.back_off(backoff, shutdown).await
    }

    async fn back_off(&self, backoff: &mut Duration, shutdown: &Shutdown) -> bool {
        let wait = *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        pause(wait, shutdown).await
    }
}

impl Poller for TelegramPoller {
    fn run(
        self: Box<Self>,
        host: Arc<dyn Host>,
        shutdown: Shutdown,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.poll(host, shutdown))
    }
}

enum Failure {
    Api(RequestError),
    /// Which storage step failed.
    Host(&'static str),
}

/// Sleeps for `d`; false when shutdown came first.
async fn pause(d: Duration, shutdown: &Shutdown) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// A loggable description: reqwest's errors name the URL, which holds the
/// bot token, and a JSON error quotes the body, which holds messages.
fn describe(e: &RequestError) -> String {
    match e {
        RequestError::Api(api) => format!("api: {api}"),
        RequestError::MigrateToChatId(_) => "chat migrated".into(),
        RequestError::RetryAfter(s) => format!("retry after {}s", s.seconds()),
        RequestError::Network(n) if n.is_timeout() => "network: timeout".into(),
        RequestError::Network(n) if n.is_connect() => "network: cannot connect".into(),
        RequestError::Network(n) => match n.status() {
            Some(status) => format!("network: HTTP {status}"),
            None => "network: request failed".into(),
        },
        RequestError::InvalidJson { .. } => "invalid JSON from the Bot API".into(),
        RequestError::Io(io) => format!("i/o: {}", io.kind()),
    }
}
