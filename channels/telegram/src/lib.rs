//! Telegram bots as a complaint channel.
//!
//! A bot instance receives updates one of two ways, chosen in its config:
//!
//! - [`webhook`]: Telegram pushes each update to `/webhooks/telegram/{instance}`,
//!   authenticated by the `X-Telegram-Bot-Api-Secret-Token` header.
//! - [`poll`]: the gateway calls `getUpdates` through teloxide's client, for
//!   deployments that have no public URL.
//!
//! Both hand every update to [`normalize`], which reads it with the crate's own
//! [`update`] types and produces the Complaint. [`config`] holds the instance settings.
//!
//! Replies go back through [`send`]: `sendMessage` to the complaint's chat.
//! The files of messages are fetched for the gateway's media worker by
//! [`fetch`]: `getFile`, then the file URL.

pub mod config;
pub mod fetch;
pub mod normalize;
pub mod poll;
pub mod send;
pub mod update;
pub mod webhook;

use std::time::Duration;

pub use config::{Mode, TelegramConfig};
pub use fetch::{TelegramFetchConfig, TelegramFetcher};
pub use normalize::{Normalized, Normalizer};
pub use poll::TelegramPoller;
pub use send::{TelegramSendConfig, TelegramSender};
pub use webhook::Telegram;

/// What a configured bot instance runs.
pub enum Intake {
    Webhook(Telegram),
    Polling(TelegramPoller),
}

/// Validates `cfg` and builds the instance's webhook adapter or poller.
pub fn build(instance: &str, keep_raw: bool, cfg: TelegramConfig) -> Result<Intake, String> {
    if let Some(u) = &cfg.bot_username {
        let u = u.trim_start_matches('@');
        if u.is_empty() || !u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err("`bot_username` must be a Telegram username".into());
        }
    }
    let normalizer = Normalizer::new(
        cfg.bot_username.as_deref(),
        cfg.allow_groups,
        &cfg.default_region,
    );
    match cfg.mode {
        Mode::Webhook => {
            let secret = match (cfg.verify_secret_token, cfg.secret_token) {
                (true, None) => {
                    return Err(
                        "`secret_token` is required unless `verify_secret_token = false`".into(),
                    );
                }
                (true, Some(s)) => {
                    let valid = (1..=256).contains(&s.expose().len())
                        && s.expose()
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !valid {
                        return Err(
                            "`secret_token` must be 1 to 256 characters from A-Z a-z 0-9 _ -"
                                .into(),
                        );
                    }
                    Some(s)
                }
                (false, _) => {
                    tracing::warn!(
                        instance,
                        "telegram webhook secret token check is off: anyone who knows the URL can submit updates"
                    );
                    None
                }
            };
            Ok(Intake::Webhook(Telegram::new(secret, normalizer)))
        }
        Mode::Polling => {
            let token = cfg
                .bot_token
                .ok_or("`bot_token` is required in polling mode")?;
            if !(1..=50).contains(&cfg.poll_timeout_seconds) {
                return Err("`poll_timeout_seconds` must be between 1 and 50".into());
            }
            if !(1..=100).contains(&cfg.poll_limit) {
                return Err("`poll_limit` must be between 1 and 100".into());
            }
            let timeout = u64::from(cfg.poll_timeout_seconds);
            let lease = cfg.lease_seconds.unwrap_or(timeout + 30);
            if lease <= timeout {
                return Err("`lease_seconds` must exceed `poll_timeout_seconds`".into());
            }
            let api_url = url::Url::parse(&cfg.api_url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
                .ok_or("`api_url` must be an http(s) URL")?;
            // The client's own timeout must outlast the long poll it waits on.
            let client = teloxide::net::default_reqwest_settings()
                .timeout(Duration::from_secs(timeout + 15))
                .build()
                .map_err(|_| "cannot build the Bot API client")?;
            let bot = teloxide::Bot::with_client(token.expose(), client).set_api_url(api_url);
            Ok(Intake::Polling(TelegramPoller::new(
                instance,
                keep_raw,
                bot,
                normalizer,
                cfg.bot_username.is_none(),
                poll::Pace {
                    timeout: cfg.poll_timeout_seconds,
                    limit: cfg.poll_limit,
                    lease_ttl: Duration::from_secs(lease),
                },
            )))
        }
    }
}
