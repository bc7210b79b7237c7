//! Messenger Platform events (`entry[].messaging[]`), as Facebook Messenger
//! and Instagram direct messages both deliver them.
//!
//! Each event is one of a message, a delivery or read receipt, a reaction, a
//! postback, an edit…; only messages a citizen sent are complaints, and
//! delivery and read receipts of the page's own messages become
//! [`StatusReport`]s. Media
//! arrive as URLs (Meta's CDN), so attachments carry `url` and no
//! `provider_ref`.

use aduan_adapter::{
    Attachment, AttachmentKind, Channel, Complaint, Context, DeliveryStatus, Location, Outcome,
    Rejection, ReportRef, Request, StatusReport, Timestamp,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::hub::{self, Batch};

/// The entry of `page` and `instagram` notifications: messaging events,
/// standby events (another app holds the conversation), or field changes.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// The page or Instagram account the notification is about.
    pub id: String,
    /// Seconds for `changes` entries, milliseconds for `messaging` entries.
    pub time: Option<i64>,
    /// Events of conversations this app handles.
    #[serde(default)]
    pub messaging: Vec<Event>,
    /// Events of conversations another app holds (handover protocol): never complaints here.
    #[serde(default)]
    pub standby: Vec<IgnoredAny>,
    /// Changes of subscribed fields (`feed`, `comments`, …).
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// A field change (`feed`, `comments`, …): the value's shape depends on the field.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// The subscribed field that changed.
    pub field: String,
    /// The change, read once `field` says what it is.
    pub value: serde_json::Value,
}

/// Which channel a messaging event came through.
#[derive(Clone, Copy, Debug)]
pub struct Flavor {
    /// The complaints' `channel`.
    pub channel: Channel,
    /// The complaints' `provider`.
    pub provider: &'static str,
    /// The sender URN scheme: `facebook` or `instagram`.
    pub scheme: &'static str,
}

/// One messaging event.
#[derive(Debug, Deserialize)]
pub struct Event {
    sender: Option<Party>,
    recipient: Option<Party>,
    timestamp: Option<i64>,
    message: Option<Message>,
    delivery: Option<Delivery>,
    read: Option<Read>,
    reaction: Option<IgnoredAny>,
    postback: Option<IgnoredAny>,
    message_edit: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Party {
    id: String,
}

/// A delivery receipt (Messenger): the page's messages that reached the
/// citizen.
#[derive(Debug, Deserialize)]
struct Delivery {
    /// The messages delivered; Meta may leave them out.
    #[serde(default)]
    mids: Vec<String>,
    /// Every message sent before this time (milliseconds) was delivered.
    watermark: i64,
}

/// A read receipt: Messenger's `message_reads` carries a watermark,
/// Instagram's `messaging_seen` the id of the message seen.
#[derive(Debug, Deserialize)]
struct Read {
    /// Every message sent up to this time (milliseconds) was read.
    watermark: Option<i64>,
    mid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    mid: String,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    is_deleted: bool,
    #[serde(default)]
    is_unsupported: bool,
    reply_to: Option<ReplyTo>,
    #[serde(default)]
    attachments: Vec<MessageAttachment>,
}

#[derive(Debug, Deserialize)]
struct ReplyTo {
    mid: Option<String>,
    story: Option<Story>,
}

#[derive(Debug, Deserialize)]
struct Story {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessageAttachment {
    #[serde(rename = "type")]
    kind: String,
    title: Option<String>,
    payload: Option<Payload>,
}

#[derive(Debug, Deserialize)]
struct Payload {
    url: Option<String>,
    sticker_id: Option<IgnoredAny>,
    coordinates: Option<Coordinates>,
}

#[derive(Debug, Deserialize)]
struct Coordinates {
    lat: f64,
    long: f64,
}

/// Reads one comment change (`changes[].value` of the comment field) into the batch.
pub type CommentReader = fn(
    &Entry,
    &serde_json::Value,
    &str,
    &Request<'_>,
    &Context<'_>,
    &mut Batch,
) -> Result<(), Rejection>;

/// A whole Messenger-Platform notification (`object` `page` or `instagram`):
/// every entry's `messaging` events as `flavor`, its `standby` events ignored,
/// and its `changes` of `comment_field` read by `comments` (other fields ignored).
pub fn read_notification(
    req: &Request<'_>,
    ctx: &Context<'_>,
    object: &str,
    flavor: Flavor,
    comment_field: &str,
    comments: CommentReader,
) -> Result<Outcome, Rejection> {
    // Meta posts every notification as `application/json`.
    req.require_json()?;
    let entries: Vec<Entry> = hub::decode_envelope(req.body, object)?;
    let mut batch = Batch::default();
    for (e, entry) in entries.iter().enumerate() {
        let at = format!("entry[{e}]");
        read(&entry.messaging, &at, flavor, req, ctx, &mut batch)?;
        for _ in &entry.standby {
            batch.ignore("standby");
        }
        for (c, change) in entry.changes.iter().enumerate() {
            if change.field == comment_field {
                let at = format!("{at}.changes[{c}].value");
                comments(entry, &change.value, &at, req, ctx, &mut batch)?;
            } else {
                batch.ignore("field");
            }
        }
    }
    Ok(batch.into_outcome())
}

/// Turns the events of one entry into complaints and acknowledged events.
pub fn read(
    events: &[Event],
    at: &str,
    flavor: Flavor,
    req: &Request<'_>,
    ctx: &Context<'_>,
    batch: &mut Batch,
) -> Result<(), Rejection> {
    for (i, event) in events.iter().enumerate() {
        let at = format!("{at}.messaging[{i}]");
        let Some(message) = &event.message else {
            if !read_receipt(event, &at, batch)? {
                batch.ignore(other_event(event));
            }
            continue;
        };
        if message.is_echo {
            batch.ignore("echo");
            continue;
        }
        if message.is_deleted {
            batch.ignore("deleted");
            continue;
        }
        if message.is_unsupported {
            batch.ignore("unsupported");
            continue;
        }
        let sender = event
            .sender
            .as_ref()
            .ok_or_else(|| Rejection::malformed(format!("missing field `sender` at {at}")))?;
        let mut complaint = Complaint::new(
            ctx,
            flavor.channel,
            flavor.provider,
            message.mid.clone(),
            format!("{}:{}", flavor.scheme, sender.id),
        );
        complaint.sent_at = event.timestamp.and_then(Timestamp::from_unix_millis);
        complaint.recipient = event.recipient.as_ref().map(|r| r.id.clone());
        complaint.text = message.text.clone().unwrap_or_default();
        complaint.thread.in_reply_to = message.reply_to.as_ref().and_then(|r| {
            r.mid
                .clone()
                .or_else(|| r.story.as_ref().and_then(|s| s.id.clone()))
        });
        let mut hearts = 0;
        for a in &message.attachments {
            let url = a.payload.as_ref().and_then(|p| p.url.clone());
            let kind = match a.kind.as_str() {
                "location" => {
                    let c = a
                        .payload
                        .as_ref()
                        .and_then(|p| p.coordinates.as_ref())
                        .ok_or_else(|| {
                            Rejection::malformed(format!(
                                "location attachment without coordinates at {at}"
                            ))
                        })?;
                    complaint.location = Some(Location {
                        latitude: c.lat,
                        longitude: c.long,
                        name: a.title.clone(),
                        address: None,
                    });
                    continue;
                }
                // An Instagram heart is a reaction sent as a message.
                "like_heart" => {
                    hearts += 1;
                    continue;
                }
                "image" if a.payload.as_ref().is_some_and(|p| p.sticker_id.is_some()) => {
                    AttachmentKind::Sticker
                }
                "image" => AttachmentKind::Image,
                "video" => AttachmentKind::Video,
                "audio" => AttachmentKind::Audio,
                "file" => AttachmentKind::Document,
                // Story mentions, shared posts and reels, fallbacks: a link to look at.
                _ => AttachmentKind::Other,
            };
            complaint.attachments.push(Attachment {
                url,
                ..Attachment::new(kind)
            });
        }
        if complaint.text.is_empty()
            && complaint.attachments.is_empty()
            && complaint.location.is_none()
        {
            batch.ignore(if hearts > 0 { "reaction" } else { "empty" });
            continue;
        }
        complaint.raw = hub::raw(req, ctx);
        batch.complaints.push(complaint);
    }
    Ok(())
}

/// Turns a delivery or read receipt into reports; `false` for an event
/// that is neither.
///
/// A delivery names the messages delivered (one report each) or, without
/// them, only its watermark; a read names its watermark (Messenger) or the
/// message seen (Instagram). A watermark covers every message sent to the
/// event's sender, the citizen, up to it.
fn read_receipt(event: &Event, at: &str, batch: &mut Batch) -> Result<bool, Rejection> {
    let citizen = || {
        event
            .sender
            .as_ref()
            .map(|s| s.id.clone())
            .ok_or_else(|| Rejection::malformed(format!("missing field `sender` at {at}")))
    };
    let watermark = |ms: i64, part: &str| {
        Timestamp::from_unix_millis(ms).ok_or_else(|| {
            Rejection::malformed(format!("watermark is not Unix milliseconds at {at}.{part}"))
        })
    };
    if let Some(delivery) = &event.delivery {
        let upto = watermark(delivery.watermark, "delivery")?;
        if delivery.mids.is_empty() {
            batch.reports.push(StatusReport {
                about: ReportRef::UpTo {
                    recipient: citizen()?,
                    watermark: upto,
                },
                reference: None,
                status: DeliveryStatus::Delivered,
                error: None,
                at: Some(upto),
            });
        }
        for mid in &delivery.mids {
            batch.reports.push(StatusReport {
                about: ReportRef::Message(mid.clone()),
                reference: None,
                status: DeliveryStatus::Delivered,
                error: None,
                at: Some(upto),
            });
        }
        return Ok(true);
    }
    let Some(read) = &event.read else {
        return Ok(false);
    };
    let about = match (read.watermark, &read.mid) {
        (Some(ms), _) => ReportRef::UpTo {
            recipient: citizen()?,
            watermark: watermark(ms, "read")?,
        },
        (None, Some(mid)) => ReportRef::Message(mid.clone()),
        (None, None) => {
            return Err(Rejection::malformed(format!(
                "read without `watermark` or `mid` at {at}.read"
            )));
        }
    };
    let fallback = match &about {
        ReportRef::UpTo { watermark, .. } => Some(*watermark),
        ReportRef::Message(_) => None,
    };
    batch.reports.push(StatusReport {
        about,
        // Messenger echoes no value of ours in delivery and read events.
        reference: None,
        status: DeliveryStatus::Read,
        error: None,
        // When it was read: the event's time, else the watermark's.
        at: event
            .timestamp
            .and_then(Timestamp::from_unix_millis)
            .or(fallback),
    });
    Ok(true)
}

fn other_event(event: &Event) -> &'static str {
    if event.reaction.is_some() {
        "reaction"
    } else if event.postback.is_some() {
        "postback"
    } else if event.message_edit.is_some() {
        "edit"
    } else {
        "other"
    }
}
