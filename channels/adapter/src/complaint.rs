//! The Complaint document, schema `aduan.complaint.v1`.
//!
//! Every adapter normalizes into this one type. Unknown objects serialize as
//! `null` and unknown lists as `[]`: no field is ever absent from the JSON.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The value of the `schema` field.
pub const SCHEMA: &str = "aduan.complaint.v1";

/// An instant, serialized as RFC 3339 UTC with millisecond precision
/// (`2026-11-22T08:15:30.123Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The instant `secs` seconds after the Unix epoch, if representable.
    pub fn from_unix_seconds(secs: i64) -> Option<Self> {
        Utc.timestamp_opt(secs, 0).single().map(Timestamp)
    }

    /// The instant `ms` milliseconds after the Unix epoch, if representable.
    pub fn from_unix_millis(ms: i64) -> Option<Self> {
        Utc.timestamp_millis_opt(ms).single().map(Timestamp)
    }

    /// Parses any RFC 3339 timestamp and converts it to UTC.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| Timestamp(t.with_timezone(&Utc)))
    }

    /// The wire form: RFC 3339, UTC, milliseconds, `Z` suffix.
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

/// The channel a citizen used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Whatsapp,
    Telegram,
    Sms,
    Email,
    Facebook,
    Instagram,
    X,
    CallCenter,
    Web,
}

impl Channel {
    /// The name used on the wire, in the stream entry and in metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Telegram => "telegram",
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Facebook => "facebook",
            Channel::Instagram => "instagram",
            Channel::X => "x",
            Channel::CallCenter => "call_center",
            Channel::Web => "web",
        }
    }
}

/// The normalized complaint. See SPEC section 3 and `schema/complaint.v1.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Complaint {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// ULID assigned by the gateway at acceptance. Adapters leave it empty;
    /// a redelivered duplicate keeps the first one.
    pub id: String,
    /// The short number the citizen is given (`LPR-7K3M-9QX2`), chosen by
    /// the gateway when it appends the complaint; `null` from adapters.
    #[serde(default)]
    pub tracking: Option<String>,
    /// When the gateway accepted the request (the clock handed to the adapter).
    pub received_at: Timestamp,
    /// The provider's own timestamp for the message.
    pub sent_at: Option<Timestamp>,
    pub channel: Channel,
    /// The adapter that parsed it, e.g. `meta_whatsapp`, `twilio`, `transcript`.
    pub provider: String,
    /// The configured instance name that received it.
    pub instance: String,
    /// The provider's message id, or `sha256:<hex>` of the canonical content.
    pub external_id: String,
    pub sender: Sender,
    /// The number, address, bot or page that was contacted.
    pub recipient: Option<String>,
    pub subject: Option<String>,
    /// The message as plain text; `""` when there is none.
    pub text: String,
    /// Detected language of `text` when detection is confident.
    pub language: Option<String>,
    pub attachments: Vec<Attachment>,
    pub location: Option<Location>,
    pub thread: Thread,
    pub call: Option<Call>,
    pub raw: Option<Raw>,
}

impl Complaint {
    /// A complaint with every optional field empty. Adapters fill in the rest.
    pub fn new(
        ctx: &crate::Context<'_>,
        channel: Channel,
        provider: &str,
        external_id: impl Into<String>,
        sender_id: impl Into<String>,
    ) -> Self {
        let sender_id = sender_id.into();
        Complaint {
            schema: SCHEMA.to_string(),
            id: String::new(),
            tracking: None,
            received_at: ctx.received_at,
            sent_at: None,
            channel,
            provider: provider.to_string(),
            instance: ctx.instance.to_string(),
            external_id: external_id.into(),
            thread: Thread {
                conversation: format!("{}:{}", ctx.instance, sender_id),
                in_reply_to: None,
                references: Vec::new(),
            },
            sender: Sender {
                id: sender_id,
                ..Sender::default()
            },
            recipient: None,
            subject: None,
            text: String::new(),
            language: None,
            attachments: Vec::new(),
            location: None,
            call: None,
            raw: None,
        }
    }
}

/// Who sent the complaint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    /// Channel-scoped stable URN: `tel:+62…`, `whatsapp:62…`, `telegram:123`,
    /// `mailto:…`, `facebook:<psid>`, `instagram:<igsid>`, `x:<id>`, `agent:<id>`.
    pub id: String,
    pub name: Option<String>,
    /// E.164 whenever a phone number is known.
    pub phone: Option<String>,
    /// Lower-cased address.
    pub email: Option<String>,
    /// `@username` where the channel has one.
    pub handle: Option<String>,
    /// Language the provider reports (Telegram `language_code`).
    pub language: Option<String>,
}

/// What kind of file an attachment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    Image,
    Audio,
    Voice,
    Video,
    Document,
    Sticker,
    Other,
}

impl AttachmentKind {
    /// Guesses the kind from a MIME type (`image/jpeg` → `Image`).
    pub fn from_content_type(ct: &str) -> Self {
        let major = ct
            .split('/')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match major.as_str() {
            "image" => AttachmentKind::Image,
            "audio" => AttachmentKind::Audio,
            "video" => AttachmentKind::Video,
            "application" | "text" => AttachmentKind::Document,
            _ => AttachmentKind::Other,
        }
    }
}

/// A file that came with the complaint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: AttachmentKind,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    /// Size in bytes when known.
    pub size: Option<u64>,
    /// Hex or provider-given digest of the bytes when known.
    pub sha256: Option<String>,
    /// Where the bytes can be fetched, when the provider gives a URL.
    pub url: Option<String>,
    /// The provider's media id when bytes are not fetched (WhatsApp media id, Telegram `file_id`).
    pub provider_ref: Option<String>,
    /// Set when the gateway stored the bytes itself.
    pub storage_key: Option<String>,
    pub caption: Option<String>,
}

impl Attachment {
    /// An attachment of `kind` with every other field unknown.
    pub fn new(kind: AttachmentKind) -> Self {
        Attachment {
            kind,
            content_type: None,
            filename: None,
            size: None,
            sha256: None,
            url: None,
            provider_ref: None,
            storage_key: None,
            caption: None,
        }
    }
}

/// A place the citizen shared, in degrees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub name: Option<String>,
    pub address: Option<String>,
}

/// How the complaint relates to others.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    /// `<instance>:<sender.id>` for chats, the root `Message-ID` for email.
    pub conversation: String,
    pub in_reply_to: Option<String>,
    /// Email `References`, oldest first.
    pub references: Vec<String>,
}

/// A call-center transcript's structure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub call_id: String,
    pub agent_id: Option<String>,
    pub agent_name: Option<String>,
    pub started_at: Option<Timestamp>,
    pub duration_seconds: Option<f64>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    pub recording_url: Option<String>,
    pub segments: Vec<Segment>,
}

/// One turn of a transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub speaker: String,
    pub text: String,
    pub offset_seconds: Option<f64>,
}

/// The exact bytes received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Raw {
    /// The request's content type; suffixed `;base64` when `body` is base64.
    pub content_type: String,
    pub body: String,
}

impl Raw {
    /// Keeps `body` as text when it is UTF-8, as base64 otherwise.
    pub fn from_bytes(content_type: &str, body: &[u8]) -> Self {
        match std::str::from_utf8(body) {
            Ok(text) => Raw {
                content_type: content_type.to_string(),
                body: text.to_string(),
            },
            Err(_) => {
                use base64::Engine as _;
                Raw {
                    content_type: format!("{content_type};base64"),
                    body: base64::engine::general_purpose::STANDARD.encode(body),
                }
            }
        }
    }
}

/// `sha256:` + hex digest of `parts`, for providers that give no message id.
///
/// Parts are separated by a NUL byte so that `("ab", "c")` and `("a", "bc")`
/// do not collide.
pub fn content_id(parts: &[&str]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}
