//! The one `match` from an instance kind to the fetcher that gets its
//! attachments, built from the instance's `[instances.media]` table.
//!
//! Fetching is on for an instance with that table (an empty one is enough
//! where the credentials are already configured): the table's own keys are
//! the gateway's ([`MediaPolicy`]) and the fetcher's; credentials the
//! instance already holds for its intake or its replies are used when the
//! table names none.

use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::media::{MediaFetcher, MediaHttp};
use serde::de::DeserializeOwned;

use crate::media::InstanceFetcher;
use crate::senders::copy_missing;
use crate::settings::{InstanceKind, InstanceSettings, MediaConfig, MediaPolicy};

fn settings<T: DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    T::deserialize(table).map_err(|e| format!("media: {}", e.message()))
}

/// The fetcher of `def`, or `None` when it has no `[instances.media]` (or
/// turns it off).
pub fn build(
    def: &InstanceSettings,
    media: &MediaConfig,
) -> Result<Option<InstanceFetcher>, String> {
    let Some(table) = def.media.clone() else {
        return Ok(None);
    };
    let (policy, mut table) = MediaPolicy::split(table)?;
    if !policy.enabled {
        return Ok(None);
    }
    let own = Some(&def.table);
    let reply = def.reply.as_ref();
    let fetcher: Arc<dyn MediaFetcher> = match def.kind {
        InstanceKind::Whatsapp => {
            copy_missing(
                &mut table,
                reply,
                &[
                    ("access_token", "access_token"),
                    ("base_url", "base_url"),
                    ("api_version", "api_version"),
                    ("phone_number_id", "phone_number_id"),
                ],
            );
            Arc::new(aduan_meta::WhatsAppFetcher::new(settings(table)?)?)
        }
        // Open311's `media_url` is a URL as given, like a Meta CDN link.
        InstanceKind::Messenger | InstanceKind::Instagram | InstanceKind::Open311 => {
            Arc::new(aduan_meta::CdnFetcher::new(settings(table)?)?)
        }
        InstanceKind::X => {
            // DM media is signed with the account's OAuth 1.0a keys.
            let keys = [
                "consumer_key",
                "consumer_secret",
                "access_token",
                "access_token_secret",
            ];
            let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (*k, *k)).collect();
            copy_missing(&mut table, reply, &pairs);
            Arc::new(aduan_x::XMediaFetcher::new(settings(table)?)?)
        }
        InstanceKind::Telegram => {
            copy_missing(
                &mut table,
                own,
                &[("bot_token", "token"), ("api_url", "api_url")],
            );
            copy_missing(
                &mut table,
                reply,
                &[("token", "token"), ("api_url", "api_url")],
            );
            Arc::new(aduan_telegram::TelegramFetcher::new(settings(table)?)?)
        }
        InstanceKind::Twilio => {
            copy_missing(&mut table, own, &[("auth_token", "auth_token")]);
            copy_missing(
                &mut table,
                reply,
                &[("account_sid", "account_sid"), ("auth_token", "auth_token")],
            );
            Arc::new(aduan_sms::TwilioFetcher::new(settings(table)?)?)
        }
        other => {
            return Err(format!(
                "media: `{other}` instances carry no attachments to fetch (email attachments are stored as they arrive)"
            ));
        }
    };
    let client =
        crate::media::guard::client(policy.allow_private_addresses, Duration::from_secs(10))?;
    Ok(Some(InstanceFetcher {
        fetcher,
        http: MediaHttp::new(client, policy.allow_private_addresses),
        max_bytes: policy.max_bytes.unwrap_or(media.max_bytes),
    }))
}
