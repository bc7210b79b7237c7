//! One update to one Complaint, or the reason it is not one.
//!
//! The webhook and the long-polling loop share this step, so an update reads
//! the same whichever way it arrived.

use aduan_adapter::{
    Attachment, AttachmentKind, Channel, Complaint, Context, Location, Raw, Rejection, Timestamp,
};

use crate::update::{Entity, Message, Update};

/// The `provider` of every Telegram complaint.
pub const PROVIDER: &str = "telegram";

/// What one update amounts to.
#[derive(Debug)]
pub enum Normalized {
    Complaint(Box<Complaint>),
    /// Acknowledged, not written; the label is for metrics.
    Ignored(&'static str),
}

/// The instance settings that shape normalization.
#[derive(Clone, Debug)]
pub struct Normalizer {
    /// The bot's username without `@`, as written, when known. Telegram
    /// usernames are case-insensitive, so every comparison ignores case.
    bot_username: Option<String>,
    allow_groups: bool,
    /// Region for national phone numbers in shared contacts.
    region: String,
}

impl Normalizer {
    pub fn new(bot_username: Option<&str>, allow_groups: bool, region: &str) -> Self {
        Normalizer {
            bot_username: bot_username
                .map(|u| u.trim_start_matches('@').to_string())
                .filter(|u| !u.is_empty()),
            allow_groups,
            region: region.to_string(),
        }
    }

    /// The bot's username, once learned from `getMe` when the config named none.
    pub fn with_bot_username(mut self, username: &str) -> Self {
        if self.bot_username.is_none() {
            self.bot_username = Some(username.to_string());
        }
        self
    }

    /// Normalizes one update. `raw` is what goes into the complaint's `raw`.
    pub fn update(
        &self,
        update: &Update,
        ctx: &Context<'_>,
        raw: Option<Raw>,
    ) -> Result<Normalized, Rejection> {
        if let Some(message) = &update.message {
            return Ok(self.message(message, false, ctx, raw));
        }
        if let Some(message) = &update.edited_message {
            if message.edit_date.is_none() {
                return Err(Rejection::malformed(
                    "edited_message: missing field `edit_date`",
                ));
            }
            return Ok(self.message(message, true, ctx, raw));
        }
        Ok(Normalized::Ignored(ignored_kind(update)))
    }

    fn message(
        &self,
        msg: &Message,
        edited: bool,
        ctx: &Context<'_>,
        raw: Option<Raw>,
    ) -> Normalized {
        match msg.chat.kind.as_str() {
            "private" => {}
            "group" | "supergroup" => {
                if !self.allow_groups {
                    return Normalized::Ignored("group");
                }
                if !self.addresses_bot(msg) {
                    return Normalized::Ignored("group_chatter");
                }
            }
            "channel" => return Normalized::Ignored("channel"),
            _ => return Normalized::Ignored("chat_type"),
        }
        // Messages posted on behalf of a chat (anonymous group admins) have no person behind them.
        let Some(from) = &msg.from else {
            return Normalized::Ignored("anonymous");
        };
        if from.is_bot {
            return Normalized::Ignored("bot");
        }
        if msg.text.as_deref().is_some_and(|t| t.starts_with('/')) {
            return Normalized::Ignored("command");
        }
        let attachments = attachments(msg);
        let location = location(msg);
        if msg.text.is_none()
            && msg.caption.is_none()
            && attachments.is_empty()
            && location.is_none()
            && msg.contact.is_none()
        {
            // Joins, leaves, pins, title changes and the like.
            return Normalized::Ignored("service");
        }

        let message_key = format!("{}:{}", msg.chat.id, msg.message_id);
        let sender_id = format!("telegram:{}", from.id);
        let (external_id, sent_at) = match (edited, msg.edit_date) {
            (true, Some(edit_date)) => (format!("{message_key}:edited:{edit_date}"), edit_date),
            _ => (message_key.clone(), msg.date),
        };
        let mut c = Complaint::new(ctx, Channel::Telegram, PROVIDER, external_id, sender_id);
        c.sent_at = Timestamp::from_unix_seconds(sent_at);
        c.sender.name = Some(match &from.last_name {
            Some(last) => format!("{} {last}", from.first_name),
            None => from.first_name.clone(),
        });
        c.sender.handle = from.username.as_ref().map(|u| format!("@{u}"));
        c.sender.language = from.language_code.clone();
        c.recipient = self.bot_username.as_ref().map(|u| format!("@{u}"));
        c.text = msg
            .text
            .clone()
            .or_else(|| msg.caption.clone())
            .unwrap_or_default();

        if let Some(contact) = &msg.contact {
            if contact.user_id == Some(from.id) {
                c.sender.phone =
                    aduan_adapter::phone::normalize(&contact.phone_number, &self.region);
            } else if c.text.is_empty() {
                // Someone else's number, e.g. the official who should call back: keep it readable.
                let name = match &contact.last_name {
                    Some(last) => format!("{} {last}", contact.first_name),
                    None => contact.first_name.clone(),
                };
                c.text = format!("{name} {}", contact.phone_number);
            }
        }
        c.attachments = attachments;
        c.location = location;
        c.thread.in_reply_to = if edited {
            Some(message_key)
        } else {
            msg.reply_to_message
                .as_ref()
                .map(|r| format!("{}:{}", r.chat.id, r.message_id))
        };
        c.raw = raw;
        // The long-polling loop hands this on without `Adapter::parse`, which
        // is where the webhook's complaints are sanitized.
        c.sanitize();
        Normalized::Complaint(Box::new(c))
    }

    /// In a group the bot hears only what is meant for it: a mention or a reply to it.
    fn addresses_bot(&self, msg: &Message) -> bool {
        let Some(bot) = &self.bot_username else {
            return false;
        };
        let replies_to_bot = msg
            .reply_to_message
            .as_ref()
            .and_then(|r| r.from.as_ref())
            .is_some_and(|u| {
                u.is_bot
                    && u.username
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(bot))
            });
        let mentions = |text: Option<&String>, entities: &[Entity]| {
            text.is_some_and(|t| {
                entities.iter().any(|e| match e.kind.as_str() {
                    "mention" => utf16_slice(t, e.offset, e.length)
                        .is_some_and(|m| m.trim_start_matches('@').eq_ignore_ascii_case(bot)),
                    "text_mention" => e
                        .user
                        .as_ref()
                        .and_then(|u| u.username.as_deref())
                        .is_some_and(|n| n.eq_ignore_ascii_case(bot)),
                    _ => false,
                })
            })
        };
        replies_to_bot
            || mentions(msg.text.as_ref(), &msg.entities)
            || mentions(msg.caption.as_ref(), &msg.caption_entities)
    }
}

/// The metrics label of an update that carries no message.
fn ignored_kind(update: &Update) -> &'static str {
    const KNOWN: &[&str] = &[
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    ];
    KNOWN
        .iter()
        .find(|k| update.other.contains_key(**k))
        .copied()
        .unwrap_or("other_update")
}

/// The message's one media item, if any. Only the largest photo size is an
/// attachment; the others stay in `raw`.
fn attachments(msg: &Message) -> Vec<Attachment> {
    let caption = msg.caption.clone();
    let file = |kind: AttachmentKind, f: &crate::update::File| Attachment {
        content_type: f.mime_type.clone(),
        filename: f.file_name.clone(),
        size: f.file_size,
        provider_ref: Some(f.file_id.clone()),
        caption: caption.clone(),
        ..Attachment::new(kind)
    };
    let largest_photo = msg
        .photo
        .iter()
        .enumerate()
        // Ties go to the later entry: Telegram lists sizes smallest first.
        .max_by_key(|(i, p)| (u64::from(p.width) * u64::from(p.height), *i))
        .map(|(_, p)| p);
    let one = if let Some(p) = largest_photo {
        Attachment {
            // Telegram re-encodes every photo as JPEG.
            content_type: Some("image/jpeg".into()),
            size: p.file_size,
            provider_ref: Some(p.file_id.clone()),
            caption: caption.clone(),
            ..Attachment::new(AttachmentKind::Image)
        }
    } else if let Some(a) = &msg.animation {
        // An animation also arrives as `document`; the animation is the better description.
        file(AttachmentKind::Video, a)
    } else if let Some(d) = &msg.document {
        file(AttachmentKind::Document, d)
    } else if let Some(v) = &msg.voice {
        file(AttachmentKind::Voice, v)
    } else if let Some(a) = &msg.audio {
        file(AttachmentKind::Audio, a)
    } else if let Some(v) = &msg.video {
        file(AttachmentKind::Video, v)
    } else if let Some(v) = &msg.video_note {
        file(AttachmentKind::Video, v)
    } else if let Some(s) = &msg.sticker {
        let content_type = if s.is_animated {
            "application/x-tgsticker"
        } else if s.is_video {
            "video/webm"
        } else {
            "image/webp"
        };
        Attachment {
            content_type: Some(content_type.into()),
            size: s.file_size,
            provider_ref: Some(s.file_id.clone()),
            caption: s.emoji.clone(),
            ..Attachment::new(AttachmentKind::Sticker)
        }
    } else {
        return Vec::new();
    };
    vec![one]
}

/// A venue wins over the bare location Telegram sends with it.
fn location(msg: &Message) -> Option<Location> {
    if let Some(v) = &msg.venue {
        return Some(Location {
            latitude: v.location.latitude,
            longitude: v.location.longitude,
            name: Some(v.title.clone()),
            address: Some(v.address.clone()),
        });
    }
    msg.location.as_ref().map(|p| Location {
        latitude: p.latitude,
        longitude: p.longitude,
        name: None,
        address: None,
    })
}

/// The part of `text` an entity covers; the Bot API counts in UTF-16 code units.
fn utf16_slice(text: &str, offset: usize, length: usize) -> Option<String> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let end = offset.checked_add(length)?;
    units
        .get(offset..end)
        .and_then(|s| String::from_utf16(s).ok())
}

#[cfg(test)]
mod tests {
    use super::utf16_slice;

    #[test]
    fn entity_offsets_count_utf16_units() {
        // The emoji takes two UTF-16 units, so the mention starts at 3.
        let text = "🚧 @LaporBot jalan rusak";
        assert_eq!(utf16_slice(text, 3, 9).as_deref(), Some("@LaporBot"));
        assert_eq!(utf16_slice(text, 100, 2), None);
        assert_eq!(utf16_slice(text, usize::MAX, 2), None);
    }
}
