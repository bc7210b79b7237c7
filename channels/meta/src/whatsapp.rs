//! WhatsApp Business Cloud API webhooks (`object: whatsapp_business_account`).
//!
//! One notification carries entries, each with `changes`; a `messages` change
//! holds the business number's `metadata`, the senders' `contacts`, and either
//! `messages`, `statuses` or `errors`. Every message that a citizen wrote
//! becomes its own Complaint, keyed by its `wamid`; every status of a message
//! the gateway sent (`sent`, `delivered`, `read`, `failed`) becomes a
//! [`StatusReport`] about that `wamid`, with our reference when the status
//! echoes the `biz_opaque_callback_data` we sent. Media arrive as ids, not
//! URLs: fetching them needs the business's access token, so the id is kept
//! as `provider_ref` and the bytes are left to whoever holds that token.

use aduan_adapter::{
    Adapter, Attachment, AttachmentKind, Channel, Complaint, Context, DeliveryStatus, Location,
    MessageRef, Outcome, Rejection, ReportRef, Request, StatusReport, Timestamp, phone, text,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::hub::{self, Batch, Hub, MetaConfig};

/// The `provider` of WhatsApp complaints.
pub const PROVIDER: &str = "meta_whatsapp";

/// A WhatsApp Business Cloud API instance.
#[derive(Debug)]
pub struct WhatsApp {
    hub: Hub,
    region: String,
}

impl WhatsApp {
    /// Validates the settings and builds the adapter.
    pub fn new(cfg: MetaConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(WhatsApp {
            hub: Hub::new(&cfg),
            region: cfg.default_region.to_ascii_uppercase(),
        })
    }
}

impl Adapter for WhatsApp {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        self.hub.verify(req)
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        if req.method == http::Method::GET {
            return self.hub.challenge(req);
        }
        // Meta posts every notification as `application/json`.
        req.require_json()?;
        let entries: Vec<Entry> = hub::decode_envelope(req.body, "whatsapp_business_account")?;
        let mut batch = Batch::default();
        for (e, entry) in entries.iter().enumerate() {
            for (c, change) in entry.changes.iter().enumerate() {
                if change.field != "messages" {
                    batch.ignore("field");
                    continue;
                }
                let at = format!("entry[{e}].changes[{c}].value");
                let value: Value = hub::decode_value(&change.value, &at)?;
                self.read_value(&value, &at, req, ctx, &mut batch)?;
            }
        }
        Ok(batch.into_outcome())
    }
}

impl WhatsApp {
    fn read_value(
        &self,
        value: &Value,
        at: &str,
        req: &Request<'_>,
        ctx: &Context<'_>,
        batch: &mut Batch,
    ) -> Result<(), Rejection> {
        for (i, status) in value.statuses.iter().enumerate() {
            match read_status(status, &format!("{at}.statuses[{i}]"))? {
                Some(report) => batch.reports.push(report),
                // Statuses of other kinds (`deleted`, `warning`, …) say
                // nothing about delivery.
                None => batch.ignore("status"),
            }
        }
        for _ in &value.errors {
            batch.ignore("error");
        }
        let recipient = value.metadata.as_ref().and_then(|m| {
            m.display_phone_number
                .as_deref()
                .map(|n| phone::normalize(n, &self.region).unwrap_or_else(|| n.to_string()))
        });
        for (i, msg) in value.messages.iter().enumerate() {
            let at = format!("{at}.messages[{i}]");
            let Some(body) = read_body(msg, &at)? else {
                batch.ignore(match msg.kind.as_str() {
                    "reaction" => "reaction",
                    "system" => "system",
                    _ => "unsupported",
                });
                continue;
            };
            let mut complaint = self.complaint(msg, value, &at, ctx)?;
            complaint.recipient = recipient.clone();
            complaint.raw = hub::raw(req, ctx);
            match body {
                Body::Text(text) => complaint.text = text,
                Body::Media(attachment) => {
                    complaint.text = attachment.caption.clone().unwrap_or_default();
                    complaint.attachments.push(attachment);
                }
                Body::Location(location) => complaint.location = Some(location),
            }
            batch.complaints.push(complaint);
        }
        Ok(())
    }

    /// The complaint's envelope: who, when, and what it answers.
    fn complaint(
        &self,
        msg: &Message,
        value: &Value,
        at: &str,
        ctx: &Context<'_>,
    ) -> Result<Complaint, Rejection> {
        let wa_id = msg.from.as_deref().filter(|f| !f.is_empty());
        let bsuid = msg.from_user_id.as_deref().filter(|f| !f.is_empty());
        // The phone number is the identity citizens and agencies know; a
        // business-scoped id stands in only for users who hide their number.
        let id = wa_id
            .or(bsuid)
            .ok_or_else(|| Rejection::malformed(format!("missing field `from` at {at}")))?;
        let sent_at = msg
            .timestamp
            .parse::<i64>()
            .ok()
            .and_then(Timestamp::from_unix_seconds)
            .ok_or_else(|| {
                Rejection::malformed(format!("timestamp is not Unix seconds at {at}"))
            })?;
        let mut complaint = Complaint::new(
            ctx,
            Channel::Whatsapp,
            PROVIDER,
            msg.id.clone(),
            format!("whatsapp:{id}"),
        );
        complaint.sent_at = Some(sent_at);
        complaint.sender.phone = wa_id.and_then(|n| phone::normalize(n, &self.region));
        if let Some(contact) = value.contact_of(wa_id, bsuid) {
            let profile = contact.profile.as_ref();
            complaint.sender.name = profile
                .and_then(|p| p.name.clone())
                .filter(|n| !n.is_empty());
            complaint.sender.handle = profile
                .and_then(|p| p.username.as_deref())
                .filter(|u| !u.is_empty())
                .map(|u| format!("@{}", u.trim_start_matches('@')));
        }
        complaint.thread.in_reply_to = msg.context.as_ref().and_then(|c| c.id.clone());
        Ok(complaint)
    }
}

/// The report a status gives, `None` for a status that is not about
/// delivery. Its error, for `failed`, is the first of `errors[]`.
fn read_status(status: &Status, at: &str) -> Result<Option<StatusReport>, Rejection> {
    let kind = match status.status.as_str() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => return Ok(None),
    };
    let at_time = match &status.timestamp {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .ok()
                .and_then(Timestamp::from_unix_seconds)
                .ok_or_else(|| {
                    Rejection::malformed(format!("timestamp is not Unix seconds at {at}"))
                })?,
        ),
    };
    let error = match kind {
        DeliveryStatus::Failed => status.errors.first().map(|e| {
            let code = match &e.code {
                Some(ErrorCode::Number(n)) => n.to_string(),
                Some(ErrorCode::Text(s)) if !s.is_empty() => s.clone(),
                _ => "unknown".to_string(),
            };
            let title = e
                .title
                .clone()
                .filter(|t| !t.is_empty())
                .or_else(|| e.message.clone())
                .unwrap_or_default();
            (code, title)
        }),
        _ => None,
    };
    Ok(Some(StatusReport {
        about: ReportRef::Message(status.id.clone()),
        reference: status
            .biz_opaque_callback_data
            .as_deref()
            .and_then(MessageRef::parse),
        status: kind,
        error,
        at: at_time,
    }))
}

/// What a message says, once its type is known.
enum Body {
    Text(String),
    Media(Attachment),
    Location(Location),
}

/// Reads the part of `msg` its `type` names; `None` for types that are not
/// complaints (reactions, system notices, unsupported content).
fn read_body(msg: &Message, at: &str) -> Result<Option<Body>, Rejection> {
    let missing = |part: &str| Rejection::malformed(format!("missing field `{part}` at {at}"));
    let body = match msg.kind.as_str() {
        "text" => {
            let text = msg.text.as_ref().ok_or_else(|| missing("text"))?;
            Body::Text(text.body.clone())
        }
        "image" | "video" | "audio" | "document" | "sticker" => {
            let media = match msg.kind.as_str() {
                "image" => &msg.image,
                "video" => &msg.video,
                "audio" => &msg.audio,
                "document" => &msg.document,
                _ => &msg.sticker,
            };
            let media = media.as_ref().ok_or_else(|| missing(&msg.kind))?;
            Body::Media(media.attachment(&msg.kind))
        }
        "location" => {
            let l = msg.location.as_ref().ok_or_else(|| missing("location"))?;
            Body::Location(Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name.clone(),
                address: l.address.clone(),
            })
        }
        "interactive" => {
            let i = msg
                .interactive
                .as_ref()
                .ok_or_else(|| missing("interactive"))?;
            let reply = match i.kind.as_str() {
                "button_reply" => i.button_reply.as_ref(),
                "list_reply" => i.list_reply.as_ref(),
                // Flow submissions (`nfm_reply`) carry form data, not words.
                _ => return Ok(None),
            };
            let reply = reply.ok_or_else(|| missing(&i.kind))?;
            Body::Text(reply.title.clone())
        }
        "button" => {
            let b = msg.button.as_ref().ok_or_else(|| missing("button"))?;
            Body::Text(b.text.clone())
        }
        _ => return Ok(None),
    };
    Ok(Some(body))
}

#[derive(Debug, Deserialize)]
struct Entry {
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    field: String,
    value: serde_json::Value,
}

/// The value of a `messages` change.
#[derive(Debug, Deserialize)]
struct Value {
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    statuses: Vec<Status>,
    #[serde(default)]
    errors: Vec<IgnoredAny>,
}

impl Value {
    /// The contact entry describing a message's sender.
    fn contact_of(&self, wa_id: Option<&str>, bsuid: Option<&str>) -> Option<&Contact> {
        self.contacts
            .iter()
            .find(|c| wa_id.is_some() && c.wa_id.as_deref() == wa_id)
            .or_else(|| {
                self.contacts
                    .iter()
                    .find(|c| bsuid.is_some() && c.user_id.as_deref() == bsuid)
            })
            // Single-sender notifications sometimes omit the id on the contact.
            .or_else(|| match self.contacts.as_slice() {
                [only] if only.wa_id.is_none() && only.user_id.is_none() => Some(only),
                _ => None,
            })
    }
}

/// The status of a message the business sent.
#[derive(Debug, Deserialize)]
struct Status {
    /// The `wamid` the send was answered with.
    id: String,
    status: String,
    timestamp: Option<String>,
    #[serde(default)]
    errors: Vec<StatusError>,
    /// The value we sent as `biz_opaque_callback_data`, echoed back.
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StatusError {
    code: Option<ErrorCode>,
    title: Option<String>,
    message: Option<String>,
}

/// Meta writes error codes as numbers; a string is taken as it is.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ErrorCode {
    Number(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
struct Metadata {
    display_phone_number: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Contact {
    wa_id: Option<String>,
    user_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Debug, Deserialize)]
struct Profile {
    name: Option<String>,
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    from: Option<String>,
    from_user_id: Option<String>,
    id: String,
    timestamp: String,
    #[serde(rename = "type")]
    kind: String,
    context: Option<MessageContext>,
    text: Option<Text>,
    image: Option<Media>,
    video: Option<Media>,
    audio: Option<Media>,
    document: Option<Media>,
    sticker: Option<Media>,
    location: Option<WaLocation>,
    interactive: Option<Interactive>,
    button: Option<Button>,
}

#[derive(Debug, Deserialize)]
struct MessageContext {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Text {
    body: String,
}

#[derive(Debug, Deserialize)]
struct Media {
    id: String,
    mime_type: Option<String>,
    sha256: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
    #[serde(default)]
    voice: bool,
}

impl Media {
    fn attachment(&self, kind: &str) -> Attachment {
        let kind = match kind {
            "image" => AttachmentKind::Image,
            "video" => AttachmentKind::Video,
            "audio" if self.voice => AttachmentKind::Voice,
            "audio" => AttachmentKind::Audio,
            "document" => AttachmentKind::Document,
            _ => AttachmentKind::Sticker,
        };
        Attachment {
            content_type: self.mime_type.clone(),
            filename: self.filename.clone(),
            // WhatsApp writes the digest in base64; the document's is lowercase hex.
            sha256: self.sha256.as_deref().and_then(text::digest_hex),
            provider_ref: Some(self.id.clone()),
            caption: self.caption.clone().filter(|c| !c.is_empty()),
            ..Attachment::new(kind)
        }
    }
}

#[derive(Debug, Deserialize)]
struct WaLocation {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Interactive {
    #[serde(rename = "type")]
    kind: String,
    button_reply: Option<Choice>,
    list_reply: Option<Choice>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    title: String,
}

#[derive(Debug, Deserialize)]
struct Button {
    text: String,
}
