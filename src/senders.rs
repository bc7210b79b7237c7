//! The one `match` from an instance kind to the sender that answers its
//! citizens, built from the instance's `[instances.reply]` table.
//!
//! The table's pacing and retry keys are the gateway's ([`ReplyPolicy`]);
//! the rest deserialize into the channel crate's sender settings, which
//! refuse unknown keys. Every sender shares one HTTP client.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aduan_adapter::ReplySender;
use serde::de::DeserializeOwned;

use crate::settings::{InstanceKind, InstanceSettings, ReplyPolicy};

/// A built sender and the policy it is paced by.
pub type Reply = (ReplyPolicy, Arc<dyn ReplySender>);

/// The HTTP client of every sender: connection reuse per provider host, and
/// a connect timeout; a send's own deadline is the worker's.
fn client() -> Result<reqwest::Client, String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let built = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .user_agent(concat!("aduan/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok(CLIENT.get_or_init(|| built).clone())
}

fn settings<T: DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    T::deserialize(table).map_err(|e| format!("reply: {}", e.message()))
}

/// Copies each `(from, to)` key of `source` into `table` when it lacks it:
/// credentials the instance already holds for its intake or its replies.
pub(crate) fn copy_missing(
    table: &mut toml::Table,
    source: Option<&toml::Table>,
    keys: &[(&str, &str)],
) {
    let Some(source) = source else {
        return;
    };
    for (from, to) in keys {
        if !table.contains_key(*to)
            && let Some(value) = source.get(*from)
        {
            table.insert((*to).into(), value.clone());
        }
    }
}

/// The sender of `def`, or `None` when it has no `[instances.reply]`.
pub fn build(def: &InstanceSettings) -> Result<Option<Reply>, String> {
    let Some(table) = def.reply.clone() else {
        return Ok(None);
    };
    let (policy, mut table) = ReplyPolicy::split(table)?;
    let client = client()?;
    let sender: Arc<dyn ReplySender> = match def.kind {
        InstanceKind::Whatsapp => {
            Arc::new(aduan_meta::WhatsAppSender::new(settings(table)?, client)?)
        }
        InstanceKind::Messenger => Arc::new(aduan_meta::MessengerSender::new(
            settings(table)?,
            client,
            aduan_meta::Platform::Messenger,
        )?),
        InstanceKind::Instagram => Arc::new(aduan_meta::MessengerSender::new(
            settings(table)?,
            client,
            aduan_meta::Platform::Instagram,
        )?),
        InstanceKind::Telegram => {
            // The bot's own token and Bot API, unless the reply table names others.
            copy_missing(
                &mut table,
                Some(&def.table),
                &[("bot_token", "token"), ("api_url", "api_url")],
            );
            Arc::new(aduan_telegram::TelegramSender::new(
                settings(table)?,
                client,
            )?)
        }
        InstanceKind::X => Arc::new(aduan_x::XSender::new(settings(table)?, client)?),
        InstanceKind::Twilio => {
            // The account's own auth token, unless the reply table names another.
            copy_missing(
                &mut table,
                Some(&def.table),
                &[("auth_token", "auth_token")],
            );
            Arc::new(aduan_sms::TwilioSender::new(settings(table)?, client)?)
        }
        InstanceKind::Vonage => Arc::new(aduan_sms::VonageSender::new(settings(table)?, client)?),
        InstanceKind::Infobip => Arc::new(aduan_sms::InfobipSender::new(settings(table)?, client)?),
        InstanceKind::Sms => Arc::new(aduan_sms::GenericSender::new(settings(table)?, client)?),
        InstanceKind::Smtp
        | InstanceKind::Imap
        | InstanceKind::Mailgun
        | InstanceKind::Sendgrid
        | InstanceKind::Postmark => Arc::new(aduan_email::EmailSender::new(settings(table)?)?),
        other => {
            return Err(format!(
                "reply: `{other}` instances have no channel to answer on"
            ));
        }
    };
    Ok(Some((policy, sender)))
}
