//! Where a complaint's replies go, worked out from the complaint itself
//! when it is appended (the same route whether it came straight from a
//! provider or out of the spool).

use aduan_adapter::{Channel, Complaint, ReplyRoute, RouteKind, Timestamp};

/// When the citizen's message counts as written, for the reply windows:
/// the provider's own time of it when given and not after the gateway
/// received it (a clock ahead, or a forged time, cannot stretch a window),
/// else when the gateway received it. So a webhook the provider delivers
/// hours late, or a spooled message forwarded later, opens no fresh window.
pub fn window_at(c: &Complaint) -> Timestamp {
    match c.sent_at {
        Some(sent) if sent.0 <= c.received_at.0 => sent,
        _ => c.received_at,
    }
}

/// The route of `c`, or `None` for a channel the gateway cannot answer on
/// (call-center transcripts, web and Open311 reports).
pub fn of(c: &Complaint) -> Option<ReplyRoute> {
    let scheme_less = |urn: &str| {
        urn.split_once(':')
            .map_or(urn, |(_, rest)| rest)
            .to_string()
    };
    let mut kind = RouteKind::Direct;
    let mut message_id = Some(c.external_id.clone());
    let mut subject = None;
    let mut references = Vec::new();
    let to = match c.channel {
        Channel::Whatsapp | Channel::Sms => match c.provider.as_str() {
            // Twilio addresses WhatsApp users as `whatsapp:+62…`.
            aduan_sms::twilio::PROVIDER if c.channel == Channel::Whatsapp => c
                .sender
                .phone
                .as_ref()
                .map_or_else(|| c.sender.id.clone(), |p| format!("whatsapp:{p}")),
            aduan_meta::whatsapp::PROVIDER => scheme_less(&c.sender.id),
            _ => c
                .sender
                .phone
                .clone()
                .unwrap_or_else(|| scheme_less(&c.sender.id)),
        },
        Channel::Telegram => {
            // The external id is `<chat id>:<message id>[:edited:…]`: a reply
            // goes to the chat (a group, or the citizen's private chat).
            let mut parts = c.external_id.split(':');
            let chat = parts.next().unwrap_or_default().to_string();
            message_id = parts.next().map(str::to_string);
            chat
        }
        Channel::Facebook | Channel::Instagram => {
            let own_thread = format!("{}:{}", c.instance, c.sender.id);
            if c.provider == aduan_meta::comments::FEED_PROVIDER
                || c.thread.conversation != own_thread
            {
                kind = RouteKind::Comment;
                c.external_id.clone()
            } else {
                scheme_less(&c.sender.id)
            }
        }
        Channel::X => {
            if c.provider == aduan_x::MENTION_PROVIDER {
                kind = RouteKind::Mention;
            }
            scheme_less(&c.sender.id)
        }
        Channel::Email => {
            subject = c.subject.clone();
            // A message without a `Message-ID` has a content id instead: there
            // is nothing to refer to.
            if c.external_id.starts_with("sha256:") {
                message_id = None;
            }
            // A message without `References` but answering one message has
            // that one as its thread (RFC 5322, section 3.6.4).
            references = if c.thread.references.is_empty() {
                c.thread.in_reply_to.iter().cloned().collect()
            } else {
                c.thread.references.clone()
            };
            c.sender.email.clone()?
        }
        Channel::CallCenter | Channel::Web => return None,
    };
    if to.is_empty() {
        return None;
    }
    Some(ReplyRoute {
        complaint_id: c.id.clone(),
        instance: c.instance.clone(),
        channel: c.channel,
        provider: c.provider.clone(),
        kind,
        to,
        message_id,
        recipient: c.recipient.clone(),
        subject,
        references,
        last_inbound_at: window_at(c),
    })
}
