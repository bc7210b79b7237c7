//! One reply to send: read from an outbound entry (or the retry set),
//! checked, and given its route. Everything wrong with an entry is found
//! here, before anything is claimed, as a permanent failure with its code.

use crate::redis::RedisError;
use aduan_adapter::{Channel, ReplyRequest, ReplyRoute, RouteKind, Timestamp};

/// A reply ready for its instance's lane.
#[derive(Clone, Debug)]
pub struct Job {
    pub entry_id: String,
    /// The reply as appended (kept for retries).
    pub json: String,
    pub reply: ReplyRequest,
    pub route: ReplyRoute,
    /// The citizen's window key (`""` when unknown).
    pub window_key: String,
    /// When the entry was appended (ms), from its id.
    pub enqueued_ms: i64,
}

/// Why an entry cannot be sent: a permanent failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// What the first look at an entry found.
pub enum Parsed {
    /// A reply by complaint id, whose route is still to be looked up.
    ByComplaint(ReplyRequest, String),
    /// A reply by (channel, instance, to).
    Direct(ReplyRequest, ReplyRoute),
    /// Refused, with the reply id when there was one.
    Refused(Option<String>, Refusal),
}

/// The time an entry was appended, from its id (`<ms>-<seq>`).
pub fn entry_ms(entry_id: &str) -> i64 {
    entry_id
        .split_once('-')
        .map_or(entry_id, |(ms, _)| ms)
        .parse()
        .unwrap_or(0)
}

/// Reads an entry's `reply` field.
pub fn parse(reply: Option<&str>, now: Timestamp) -> Parsed {
    let Some(text) = reply else {
        return Parsed::Refused(
            None,
            Refusal::new("malformed", "the entry has no `reply` field"),
        );
    };
    let reply: ReplyRequest = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            // The id, if the JSON got that far, lets the core system match the failure.
            let reply_id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("reply_id")?.as_str().map(str::to_string))
                .filter(|id| !id.is_empty());
            let (code, message) = if reply_id.is_none() && e.is_data() && !text.contains("reply_id")
            {
                ("missing_reply_id", "`reply_id` is required".to_string())
            } else {
                ("malformed", format!("not an aduan.reply.v1 document: {e}"))
            };
            return Parsed::Refused(reply_id, Refusal::new(code, message));
        }
    };
    if reply.reply_id.is_empty() {
        return Parsed::Refused(
            None,
            Refusal::new("missing_reply_id", "`reply_id` is empty"),
        );
    }
    let id = Some(reply.reply_id.clone());
    if let Some(schema) = &reply.schema
        && schema != aduan_adapter::REPLY_SCHEMA
    {
        return Parsed::Refused(
            id,
            Refusal::new("malformed", format!("unknown schema `{schema}`")),
        );
    }
    let has_text = reply.text.as_deref().is_some_and(|t| !t.trim().is_empty());
    if !has_text && reply.template.is_none() {
        return Parsed::Refused(
            id,
            Refusal::new("missing_text", "a reply needs `text` or `template`"),
        );
    }
    if let Some(complaint_id) = reply.complaint_id.clone().filter(|c| !c.is_empty()) {
        return Parsed::ByComplaint(reply, complaint_id);
    }
    match (reply.channel, reply.instance.clone(), reply.to.clone()) {
        (Some(channel), Some(instance), Some(to)) if !instance.is_empty() && !to.is_empty() => {
            let route = ReplyRoute {
                complaint_id: String::new(),
                instance,
                channel,
                provider: String::new(),
                kind: RouteKind::Direct,
                to,
                message_id: None,
                recipient: None,
                subject: None,
                references: Vec::new(),
                last_inbound_at: now,
            };
            Parsed::Direct(reply, route)
        }
        _ => Parsed::Refused(
            id,
            Refusal::new(
                "malformed",
                "a reply needs `complaint_id`, or `channel`, `instance` and `to`",
            ),
        ),
    }
}

/// The channels an instance kind can answer on.
pub fn channel_fits(kind: crate::settings::InstanceKind, channel: Channel) -> bool {
    use crate::settings::InstanceKind as K;
    match kind {
        K::Whatsapp => channel == Channel::Whatsapp,
        K::Messenger => channel == Channel::Facebook,
        K::Instagram => channel == Channel::Instagram,
        K::Telegram => channel == Channel::Telegram,
        K::X => channel == Channel::X,
        K::Twilio => matches!(channel, Channel::Sms | Channel::Whatsapp),
        K::Vonage | K::Infobip | K::Sms => channel == Channel::Sms,
        K::Mailgun | K::Sendgrid | K::Postmark | K::Smtp | K::Imap => channel == Channel::Email,
        K::Transcript => channel == Channel::CallCenter,
        K::Open311 => channel == Channel::Web,
    }
}

/// What a provider id we sent maps back to, for its reports.
pub(super) fn sent_index(job: &Job) -> Result<String, RedisError> {
    serde_json::to_string(&super::reports::SentRef {
        reply_id: job.reply.reply_id.clone(),
        complaint_id: Some(job.route.complaint_id.clone()).filter(|c| !c.is_empty()),
        channel: job.route.channel,
        to: job.route.to.clone(),
    })
    .map_err(|e| RedisError::Serialize(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_790_000_000).expect("time")
    }

    fn refused(json: Option<&str>) -> (Option<String>, &'static str) {
        match parse(json, now()) {
            Parsed::Refused(id, r) => (id, r.code),
            _ => panic!("accepted {json:?}"),
        }
    }

    #[test]
    fn every_malformed_entry_has_its_code() {
        assert_eq!(refused(None), (None, "malformed"));
        assert_eq!(refused(Some("{not json")), (None, "malformed"));
        assert_eq!(
            refused(Some(r#"{"text":"hai"}"#)),
            (None, "missing_reply_id")
        );
        assert_eq!(
            refused(Some(r#"{"reply_id":"","text":"hai"}"#)).1,
            "missing_reply_id"
        );
        assert_eq!(
            refused(Some(r#"{"reply_id":"r1","complaint_id":"c1"}"#)),
            (Some("r1".into()), "missing_text")
        );
        assert_eq!(
            refused(Some(r#"{"reply_id":"r1","complaint_id":"c1","txt":"x"}"#)),
            (Some("r1".into()), "malformed")
        );
        assert_eq!(
            refused(Some(r#"{"reply_id":"r1","text":"hai"}"#)),
            (Some("r1".into()), "malformed")
        );
        assert_eq!(
            refused(Some(
                r#"{"reply_id":"r1","schema":"x.v9","complaint_id":"c","text":"a"}"#
            ))
            .1,
            "malformed"
        );
    }

    #[test]
    fn a_reply_by_address_needs_no_stored_route() {
        let json =
            r#"{"reply_id":"r2","channel":"telegram","instance":"tg","to":"5011","text":"Halo"}"#;
        let Parsed::Direct(reply, route) = parse(Some(json), now()) else {
            panic!("refused");
        };
        assert_eq!(reply.reply_id, "r2");
        assert_eq!((route.instance.as_str(), route.to.as_str()), ("tg", "5011"));
        assert_eq!(route.channel, Channel::Telegram);
    }

    #[test]
    fn entry_ids_give_their_time() {
        assert_eq!(entry_ms("1790000000123-4"), 1_790_000_000_123);
        assert_eq!(entry_ms("garbage"), 0);
    }
}
