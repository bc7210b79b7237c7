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
    /// The attempt's outcome is unknown: the provider may have taken the
    /// message (the gateway stopped mid-send, or the answer was lost). Not
    /// tried again, so as not to send it twice; a provider report that
    /// names the message later makes it `sent`, `delivered` or `read`.
    Uncertain,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Uncertain => "uncertain",
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
    /// For an attempt's `sent`: how many messages the reply went out as,
    /// one id each in `provider_message_ids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
    /// The id of every message of the reply, in order: always with an
    /// attempt's `sent`, else only when there is more than one.
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

impl Outgoing<'_> {
    /// Our reference of this message, for the providers that echo one in
    /// their delivery reports; `None` for a reply id that is not a
    /// [`MessageRef`] (too long, or other characters).
    pub fn reference(&self) -> Option<MessageRef> {
        MessageRef::new(self.reply_id, self.part)
    }
}

/// Our own reference of one message sent: the reply id and the part. It
/// goes with the message where the provider echoes a value of ours in its
/// delivery reports (WhatsApp `biz_opaque_callback_data`, Infobip
/// `callbackData`, Vonage `client-ref`, Twilio's `StatusCallback` query), so
/// that a report finds its reply even when the provider's id never reached
/// us (the answer was lost).
///
/// Written `<reply_id>.<part>`, at most 40 characters (Vonage's limit), so
/// only a reply id of 1 to [`MessageRef::MAX_REPLY_ID`] letters, digits,
/// `-`, `_` and `:` has one: ULIDs, UUIDs, `ack:<ULID>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef {
    pub reply_id: String,
    /// The 0-based part of a text sent in parts.
    pub part: usize,
}

impl MessageRef {
    /// The longest reply id a reference carries.
    pub const MAX_REPLY_ID: usize = 36;

    /// The reference of `part` of `reply_id`, if that id can be one.
    pub fn new(reply_id: &str, part: usize) -> Option<Self> {
        (is_reference_id(reply_id) && part < 1000).then(|| MessageRef {
            reply_id: reply_id.to_string(),
            part,
        })
    }

    /// A reference as echoed back; `None` for anything else (a value the
    /// provider's own tools or another system set).
    pub fn parse(s: &str) -> Option<Self> {
        let (reply_id, part) = s.trim().rsplit_once('.')?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        MessageRef::new(reply_id, part.parse().ok()?)
    }
}

impl std::fmt::Display for MessageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.reply_id, self.part)
    }
}

fn is_reference_id(id: &str) -> bool {
    (1..=MessageRef::MAX_REPLY_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
}

/// The provider accepted a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Its id (of the last part, when the provider split it: Vonage).
    pub provider_message_id: String,
    /// The ids of the parts before the last, in order, when the provider
    /// split the message itself and named each part (Vonage's long SMS):
    /// their delivery reports match the reply too.
    pub earlier_ids: Vec<String>,
}

impl Sent {
    /// A message the provider accepted as one, with its id.
    pub fn new(provider_message_id: impl Into<String>) -> Self {
        Sent {
            provider_message_id: provider_message_id.into(),
            earlier_ids: Vec::new(),
        }
    }
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
    /// The request may have reached the provider before the failure (the
    /// connection broke or timed out after it went out): the message may
    /// have been sent. The gateway then records the reply `uncertain`
    /// rather than send it again, unless the instance's policy is to resend.
    pub maybe_sent: bool,
}

impl SendError {
    /// A failure that will not change on another attempt.
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError {
            code: code.into(),
            message: message.into(),
            retry: Retry::Never,
            opt_out: false,
            maybe_sent: false,
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
            maybe_sent: false,
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

    /// A network failure reaching the provider, before the request went out
    /// (no connection): nothing was sent.
    pub fn network(message: impl Into<String>) -> Self {
        SendError::temporary("network", message, None)
    }

    /// The answer was lost after the request went out (the connection broke,
    /// or the provider did not answer in time): the message may have been
    /// sent. Temporary, for the instances whose policy is to send again.
    pub fn answer_lost(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError {
            maybe_sent: true,
            ..SendError::temporary(code, message, None)
        }
    }

    /// The reading of a transport error of `reqwest`: a failure to connect
    /// sent nothing ([`SendError::network`]); any other (a timeout, a
    /// connection that broke, an answer cut off) may have come after the
    /// provider took the request ([`SendError::answer_lost`]). `message`
    /// describes it (the caller's words: reqwest's own name the URL, which
    /// may hold a credential).
    pub fn transport(e: &reqwest::Error, message: impl Into<String>) -> Self {
        if e.is_connect() || e.is_builder() {
            SendError::network(message)
        } else {
            SendError::answer_lost("network", message)
        }
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
    /// Our reference of the message, where the provider echoes it
    /// ([`MessageRef`]): the report finds its reply by it even when the
    /// provider's id is not known (an `uncertain` reply).
    pub reference: Option<MessageRef>,
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
    fn references_read_back_and_refuse_what_is_not_ours() {
        let r = MessageRef::new("ack:01KBX4T9M2Q8R7ZP3N6V5W1HJD", 2).expect("a reference");
        assert_eq!(r.to_string(), "ack:01KBX4T9M2Q8R7ZP3N6V5W1HJD.2");
        assert_eq!(MessageRef::parse(&r.to_string()), Some(r));
        let uuid = "0b6e2a4c-7d1f-4e3a-9c5b-8f2d1e0a6b7c";
        let long = MessageRef::new(uuid, 999).expect("a UUID fits");
        assert!(long.to_string().len() <= 40, "Vonage's client-ref takes 40");
        assert_eq!(
            MessageRef::parse("rpl-2026.1.0").map(|r| r.part),
            None,
            "a dot is not an id character"
        );
        for bad in [
            "",
            "rpl-1",
            "rpl-1.",
            ".0",
            "rpl 1.0",
            "rpl-1.1000",
            "callbackData",
        ] {
            assert_eq!(MessageRef::parse(bad), None, "{bad}");
        }
        assert_eq!(MessageRef::new(&"x".repeat(37), 0), None);
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
