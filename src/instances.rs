//! Channel instances: one explicit `match` from a configured `kind` to the
//! adapter (and poller) that serves it.
//!
//! Each arm deserializes the instance's own keys into the adapter's config
//! struct (which denies unknown keys) and builds the adapter. Nothing is
//! registered anywhere else.

use std::sync::Arc;

use aduan_adapter::{Adapter, Poller};
use serde::de::DeserializeOwned;

/// What a configured instance runs.
pub struct Built {
    /// The route segment under `/webhooks/` (or `transcripts` for `/v1/transcripts`).
    pub route: Option<&'static str>,
    pub adapter: Option<Arc<dyn Adapter>>,
    pub poller: Option<Box<dyn Poller>>,
}

impl Built {
    /// An adapter that providers push to at `/webhooks/<route>/{instance}`.
    pub fn push(route: &'static str, adapter: impl Adapter) -> Result<Built, String> {
        Ok(Built {
            route: Some(route),
            adapter: Some(Arc::new(adapter)),
            poller: None,
        })
    }

    /// A channel that fetches its own messages.
    pub fn poll(poller: Box<dyn Poller>) -> Result<Built, String> {
        Ok(Built {
            route: None,
            adapter: None,
            poller: Some(poller),
        })
    }

    /// Both: a webhook route and a poller (e.g. a bot that can be switched between the two).
    pub fn push_and_poll(
        route: &'static str,
        adapter: impl Adapter,
        poller: Option<Box<dyn Poller>>,
    ) -> Result<Built, String> {
        Ok(Built {
            route: Some(route),
            adapter: Some(Arc::new(adapter)),
            poller,
        })
    }
}

/// Deserializes an instance's own keys (everything but `name`, `kind`, `keep_raw`).
pub fn settings<T: DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    T::deserialize(table).map_err(|e| e.message().to_string())
}

/// Builds the instance of `kind` from its settings. `name` and `keep_raw`
/// are for pollers, which build their complaints without a request context.
pub fn build(kind: &str, name: &str, keep_raw: bool, table: toml::Table) -> Result<Built, String> {
    match kind {
        "telegram" => match aduan_telegram::build(name, keep_raw, settings(table)?)? {
            aduan_telegram::Intake::Webhook(bot) => Built::push("telegram", bot),
            aduan_telegram::Intake::Polling(poller) => Built::poll(Box::new(poller)),
        },
        "x" => Built::push("x", aduan_x::X::new(settings(table)?)?),
        "transcript" => Built::push(
            "transcripts",
            aduan_transcript::Transcripts::new(settings(table)?)?,
        ),
        "whatsapp" => Built::push("whatsapp", aduan_meta::WhatsApp::new(settings(table)?)?),
        "messenger" => Built::push("messenger", aduan_meta::Messenger::new(settings(table)?)?),
        "instagram" => Built::push("instagram", aduan_meta::Instagram::new(settings(table)?)?),
        "twilio" => Built::push("twilio", aduan_sms::Twilio::new(settings(table)?)?),
        "vonage" => Built::push("vonage", aduan_sms::Vonage::new(settings(table)?)?),
        "infobip" => Built::push("infobip", aduan_sms::Infobip::new(settings(table)?)?),
        "sms" => Built::push("sms", aduan_sms::GenericSms::new(settings(table)?)?),
        "mailgun" => Built::push("email", aduan_email::Mailgun::new(settings(table)?)?),
        "sendgrid" => Built::push("email", aduan_email::SendGrid::new(settings(table)?)?),
        "postmark" => Built::push("email", aduan_email::Postmark::new(settings(table)?)?),
        // No route: the gateway's SMTP listener hands these their messages.
        "smtp" => Ok(Built {
            route: None,
            adapter: Some(Arc::new(aduan_email::SmtpIntake::new(settings(table)?)?)),
            poller: None,
        }),
        "imap" => Built::poll(Box::new(aduan_email::ImapPoller::new(
            name,
            keep_raw,
            settings(table)?,
        )?)),
        other => Err(format!("unknown kind `{other}`")),
    }
}
