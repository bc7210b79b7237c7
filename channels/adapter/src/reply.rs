//! The way back to the citizen: the `aduan.reply.v1` entries the core system
//! appends to `aduan:outbound`, the `aduan.delivery.v1` entries the gateway
//! writes to `aduan:delivery`, the reply route stored with each complaint,
//! and the interface every channel's sender implements.
//!
//! A sender does one thing: send one message (one part of a reply) to a
//! provider and say what became of it. Claims, pacing, retries and records
//! are the gateway's; the reply windows and the provider's error codes are
//! the sender's, since only it knows them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::complaint::{Channel, Timestamp};

/// The value of a reply's `schema` field.
pub const REPLY_SCHEMA: &str = "aduan.reply.v1";
/// The value of a delivery's `schema` field.
pub const DELIVERY_SCHEMA: &str = "aduan.delivery.v1";

/// One reply of the core system (`aduan:outbound`, field `reply`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// Optional on input; [`REPLY_SCHEMA`] when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The core system's id for this reply: one `reply_id` is sent
    /// successfully at most once.
    pub reply_id: String,
    /// The complaint answered: its stored route says where the reply goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_id: Option<String>,
    /// With `instance` and `to`, instead of `complaint_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The address on the channel: the citizen's number, chat id, PSID, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The message, plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Email only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A WhatsApp template, used when the 24-hour window is closed (or always
    /// when `text` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<ReplyAttachment>,
}

/// A provider-approved message template (WhatsApp).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    /// Its language code, e.g. `id` or `en_US`.
    pub language: String,
    /// The body's `{{1}}`, `{{2}}`, … in order.
    #[serde(default)]
    pub params: Vec<String>,
}

/// A file to send with a reply, where the channel can send media.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyAttachment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// What became of a reply (or of one of its messages at the provider).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The provider accepted it.
    Sent,
    /// The provider reports it reached the citizen's device.
    Delivered,
    /// The provider reports the citizen read it.
    Read,
    /// It will not be sent (permanent), or the provider reports it was not delivered.
    Failed,
    /// A temporary failure; another attempt follows at `next_attempt_at`.
    Retrying,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Retrying => "retrying",
        }
    }
}

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryError {
    /// A stable code: ours (`window_closed`, `blocked`, `unknown_complaint`, …)
    /// or the provider's own (`131047`, `21610`, …).
    pub code: String,
    /// A description for people; never a token or a citizen's text.
    pub message: String,
    /// True when the reply will not be tried again.
    pub permanent: bool,
}

/// One attempt's outcome or one provider report (`aduan:delivery`, field `delivery`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Always [`DELIVERY_SCHEMA`].
    pub schema: String,
    /// The reply's id; `""` only for an outbound entry that had none.
    pub reply_id: String,
    /// The `aduan:outbound` entry the attempt was for; `None` for a provider report.
    pub entry_id: Option<String>,
    pub complaint_id: Option<String>,
    pub instance: Option<String>,
    pub channel: Option<Channel>,
    pub to: Option<String>,
    pub status: DeliveryStatus,
    /// The provider's id of the message sent (of the last part, for a split
    /// text; every part's id is in `provider_message_ids`).
    pub provider_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_message_ids: Vec<String>,
    /// 1 for the first attempt; 0 for a provider report.
    pub attempt: u32,
    pub error: Option<DeliveryError>,
    /// For `retrying`: when the next attempt is due.
    pub next_attempt_at: Option<Timestamp>,
    pub at: Timestamp,
}

/// How a complaint is answered on its channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// A private conversation: chat, DM, SMS, email.
    Direct,
    /// A public comment under a post (Facebook, Instagram).
    Comment,
    /// A public mention (X).
    Mention,
}

/// Where a complaint's replies go, stored atomically with the complaint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyRoute {
    pub complaint_id: String,
    pub instance: String,
    pub channel: Channel,
    /// The adapter that parsed the complaint (`meta_whatsapp`, `twilio`, …).
    pub provider: String,
    pub kind: RouteKind,
    /// The address on the channel: WhatsApp id, chat id, PSID, comment id,
    /// X user id, E.164 number, email address.
    pub to: String,
    /// The citizen's message a reply answers (wamid, Telegram message id,
    /// tweet id, email `Message-ID`), when the channel can refer to it.
    #[serde(default)]
    pub message_id: Option<String>,
    /// Our own address, number, page or bot the citizen contacted.
    #[serde(default)]
    pub recipient: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    /// The email thread's earlier `Message-ID`s, oldest first.
    #[serde(default)]
    pub references: Vec<String>,
    /// When the citizen's message was accepted.
    pub last_inbound_at: Timestamp,
}

/// One message to send: one part of a reply.
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    pub reply_id: &'a str,
    pub route: &'a ReplyRoute,
    /// This part's text; `None` for a template-only reply.
    pub text: Option<&'a str>,
    pub template: Option<&'a Template>,
    pub subject: Option<&'a str>,
    /// 0-based part number and the number of parts.
    pub part: usize,
    pub parts: usize,
    /// The citizen's last message on this (instance, address), for the reply
    /// windows; `None` when not known (expired or never seen).
    pub last_inbound_at: Option<Timestamp>,
    pub now: Timestamp,
}

/// The provider accepted a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub provider_message_id: String,
}

/// Whether a failed send may be tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Permanent: never again.
    Never,
    /// Temporary: again, after at least this long when the provider said so.
    Later(Option<Duration>),
}

/// A send that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SendError {
    pub code: String,
    /// Never a token, never the citizen's text.
    pub message: String,
    pub retry: Retry,
    /// The citizen opted out (blocked the bot, texted STOP, number invalid):
    /// an `opt_out` event goes to `aduan:events`.
    pub opt_out: bool,
}

impl SendError {
    /// A failure that will not change on another attempt.
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError {
            code: code.into(),
            message: message.into(),
            retry: Retry::Never,
            opt_out: false,
        }
    }

    /// A failure worth another attempt, after `after` when the provider said.
    pub fn temporary(
        code: impl Into<String>,
        message: impl Into<String>,
        after: Option<Duration>,
    ) -> Self {
        SendError {
            code: code.into(),
            message: message.into(),
            retry: Retry::Later(after),
            opt_out: false,
        }
    }

    /// A permanent failure because the citizen cannot or will not be reached.
    pub fn opted_out(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError {
            opt_out: true,
            ..SendError::permanent(code, message)
        }
    }

    /// The reply window is closed and nothing else may be sent.
    pub fn window_closed(message: impl Into<String>) -> Self {
        SendError::permanent("window_closed", message)
    }

    /// A network failure or timeout reaching the provider.
    pub fn network(message: impl Into<String>) -> Self {
        SendError::temporary("network", message, None)
    }

    /// The generic reading of an HTTP status that the provider's own codes
    /// did not explain: 408, 425, 429 and 5xx are temporary (429 honouring
    /// `Retry-After` seconds), any other status permanent.
    pub fn from_status(status: u16, retry_after: Option<Duration>, message: &str) -> Self {
        let code = format!("http_{status}");
        if matches!(status, 408 | 425 | 429) || status >= 500 {
            SendError::temporary(code, message, retry_after)
        } else {
            SendError::permanent(code, message)
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.retry == Retry::Never
    }
}

/// The seconds of an HTTP `Retry-After` header (the delta form; an HTTP
/// date is not used by the providers we send to).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A channel's sender, built per instance by its channel crate.
#[async_trait::async_trait]
pub trait ReplySender: Send + Sync {
    /// The most characters one message on `route` may carry (an X reply
    /// tweet carries fewer than a DM); longer texts are split.
    fn max_chars(&self, route: &ReplyRoute) -> usize;

    /// Sends one message. Window rules are checked here, without calling the
    /// provider when the answer is known.
    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError>;
}

/// Which sent messages a report is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportRef {
    /// The one message the provider gave this id when we sent it.
    Message(String),
    /// Every message sent to `recipient` (the route's `to`) up to `watermark`
    /// (Messenger and Instagram `read` events carry no message ids).
    UpTo {
        recipient: String,
        watermark: Timestamp,
    },
}

/// A delivery or read report that arrived on an inbound webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub about: ReportRef,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: DeliveryStatus,
    /// The provider's error code and title, for `failed`.
    pub error: Option<(String, String)>,
    pub at: Option<Timestamp>,
}

/// A citizen's word on whether they may be messaged: an SMS of `STOP`,
/// `BERHENTI` or `UNREG` (opt-out), or `START`/`DAFTAR` (opt back in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The address replies go to (the route's `to`: E.164 for SMS).
    pub to: String,
    /// True for an opt-out, false for opting back in.
    pub opted_out: bool,
    /// The keyword as received, upper-cased (`STOP`).
    pub keyword: String,
}

/// Splits `text` into parts of at most `limit` characters, at whitespace
/// where there is any within a part, else at the limit. Whitespace at a
/// split is dropped; no part is empty. A text within the limit is one part.
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        // Byte index just past the `limit`-th character, or the end.
        let end = rest
            .char_indices()
            .nth(limit)
            .map_or(rest.len(), |(i, _)| i);
        if end == rest.len() {
            parts.push(rest.to_string());
            break;
        }
        let cut = rest[..end]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, _)| i)
            .filter(|&i| i > 0)
            .unwrap_or(end);
        parts.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_text("Terima kasih", 4096), vec!["Terima kasih"]);
        assert!(split_text("   ", 10).is_empty());
    }

    #[test]
    fn splits_on_words_within_the_limit() {
        let parts = split_text("satu dua tiga empat lima", 9);
        assert_eq!(parts, vec!["satu dua", "tiga", "empat", "lima"]);
        assert!(parts.iter().all(|p| p.chars().count() <= 9));
    }

    #[test]
    fn a_word_longer_than_the_limit_is_cut() {
        assert_eq!(
            split_text("abcdefghij kl", 4),
            vec!["abcd", "efgh", "ij", "kl"]
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        let text = "é".repeat(10);
        let parts = split_text(&text, 4);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn http_statuses_read_generically() {
        assert!(!SendError::from_status(429, None, "x").is_permanent());
        assert!(!SendError::from_status(503, None, "x").is_permanent());
        assert!(SendError::from_status(400, None, "x").is_permanent());
        assert!(SendError::from_status(404, None, "x").is_permanent());
    }

    #[test]
    fn reply_rejects_unknown_fields() {
        let ok: ReplyRequest =
            serde_json::from_str(r#"{"reply_id":"r1","complaint_id":"c","text":"hai"}"#)
                .expect("valid reply");
        assert_eq!(ok.text.as_deref(), Some("hai"));
        assert!(serde_json::from_str::<ReplyRequest>(r#"{"reply_id":"r1","txt":"hai"}"#).is_err());
    }
}
