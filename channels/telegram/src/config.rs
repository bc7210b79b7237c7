//! The configuration of one Telegram bot instance.

use aduan_adapter::Secret;
use serde::Deserialize;

/// How updates reach the gateway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Telegram pushes updates to `/webhooks/telegram/{instance}`.
    #[default]
    Webhook,
    /// The gateway calls `getUpdates` itself; for deployments with no public URL.
    Polling,
}

/// One Telegram bot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// `webhook` (default) or `polling`.
    #[serde(default)]
    pub mode: Mode,
    /// The `secret_token` given to `setWebhook`; every webhook request must
    /// carry it in `X-Telegram-Bot-Api-Secret-Token`. Required in webhook mode
    /// unless `verify_secret_token = false`.
    #[serde(default)]
    pub secret_token: Option<Secret>,
    /// Set to `false` only behind a proxy that authenticates Telegram by other
    /// means: without the check anyone who knows the URL can inject updates.
    /// A warning is logged at start.
    #[serde(default = "default_true")]
    pub verify_secret_token: bool,
    /// The bot's token from BotFather. Required in polling mode.
    #[serde(default)]
    pub bot_token: Option<Secret>,
    /// The Bot API base URL; a local Bot API server or a test stand-in can be named here.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Accept messages from groups and supergroups, but only those that
    /// mention the bot or reply to it. Default `false`: only private chats.
    #[serde(default)]
    pub allow_groups: bool,
    /// The bot's username (with or without `@`): the complaint's `recipient`
    /// and the name looked for in group mentions. In polling mode it is
    /// learned from `getMe` when not given.
    #[serde(default)]
    pub bot_username: Option<String>,
    /// How long one `getUpdates` call waits for updates, in seconds (1 to 50).
    #[serde(default = "default_poll_timeout")]
    pub poll_timeout_seconds: u32,
    /// The most updates one `getUpdates` call returns (1 to 100).
    #[serde(default = "default_poll_limit")]
    pub poll_limit: u8,
    /// How long one replica's polling lease lasts without renewal, in seconds.
    /// Defaults to the poll timeout plus 30; must exceed the poll timeout.
    #[serde(default)]
    pub lease_seconds: Option<u64>,
    /// Region (ISO 3166 alpha-2) for national phone numbers in shared contacts.
    #[serde(default = "default_region")]
    pub default_region: String,
}

fn default_true() -> bool {
    true
}

fn default_api_url() -> String {
    "https://api.telegram.org".into()
}

fn default_poll_timeout() -> u32 {
    25
}

fn default_poll_limit() -> u8 {
    100
}

fn default_region() -> String {
    aduan_adapter::phone::DEFAULT_REGION.into()
}
