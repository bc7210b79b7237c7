//! X (Twitter) accounts as a complaint channel, through the Account Activity API.
//!
//! One instance per subscribed account at `/webhooks/x/{instance}`:
//!
//! - `GET ?crc_token=…` is X's challenge-response check, answered with the
//!   HMAC of the token under the consumer secret.
//! - `POST` carries events, signed in `x-twitter-webhooks-signature`. Direct
//!   messages to the account and Tweets that mention it become Complaints;
//!   everything else is acknowledged and not written.
//!
//! [`event`] holds the payload types, [`text`] the entity decoding X's text needs.
//!
//! Replies go back through [`send`] (a DM, or a reply Tweet to a mention),
//! signed by [`oauth`] or with an OAuth 2.0 user token.
//!
//! The media of DMs and mentions is fetched for the gateway's media worker
//! by [`fetch`]: Tweet media as given, DM media signed with the account's
//! OAuth 1.0a keys.

pub mod event;
pub mod fetch;
pub mod oauth;
pub mod send;
pub mod text;

use aduan_adapter::verify::{base64_encode, constant_time_eq, hmac_sha256};
use aduan_adapter::{
    Adapter, Attachment, AttachmentKind, Channel, Complaint, Context, Ignored, Location, Outcome,
    Raw, Rejection, Reply, Request, Secret, Timestamp,
};
use serde::Deserialize;

use event::{Activity, DirectMessageEvent, Entities, Media, Tweet};

pub use fetch::{XFetchConfig, XMediaFetcher};
pub use send::{MentionReply, XSendConfig, XSender};

/// The `provider` of a complaint that came as a direct message.
pub const PROVIDER: &str = "x";

/// The `provider` of a complaint that came as a public Tweet mentioning the
/// account: a stored reply route can tell it from a DM and answer it as the
/// instance says (a DM, or a reply Tweet).
pub const MENTION_PROVIDER: &str = "x_mention";

/// The header X signs each POST body in.
pub const SIGNATURE_HEADER: &str = "x-twitter-webhooks-signature";

/// One subscribed X account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XConfig {
    /// The app's consumer secret (API secret): the key of the CRC answer and
    /// of every POST signature.
    pub consumer_secret: Secret,
    /// The numeric user id of the subscribed account, as a string. Its own
    /// DMs and Tweets are not complaints, and only Tweets mentioning it are.
    pub account_id: String,
}

/// An X account receiving Account Activity webhooks.
pub struct X {
    consumer_secret: Secret,
    account_id: String,
}

impl X {
    /// Validates the configuration.
    pub fn new(cfg: XConfig) -> Result<Self, String> {
        if cfg.account_id.is_empty() || !cfg.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err("`account_id` must be the account's numeric user id".into());
        }
        Ok(X {
            consumer_secret: cfg.consumer_secret,
            account_id: cfg.account_id,
        })
    }

    /// `sha256=` + base64 HMAC-SHA256 of `msg` under the consumer secret.
    fn sign(&self, msg: &[u8]) -> String {
        format!(
            "sha256={}",
            base64_encode(&hmac_sha256(self.consumer_secret.expose_bytes(), msg))
        )
    }

    fn direct_message(
        &self,
        ev: &DirectMessageEvent,
        activity: &Activity,
        ctx: &Context<'_>,
        raw: &Option<Raw>,
    ) -> Result<Complaint, &'static str> {
        if ev.kind != "message_create" {
            return Err("dm_event");
        }
        let Some(mc) = &ev.message_create else {
            return Err("dm_event");
        };
        if mc.sender_id == self.account_id {
            return Err("echo");
        }
        if mc.target.recipient_id != self.account_id {
            return Err("other_account");
        }
        let mut c = Complaint::new(
            ctx,
            Channel::X,
            PROVIDER,
            ev.id.clone(),
            format!("x:{}", mc.sender_id),
        );
        c.sent_at = ev
            .created_timestamp
            .as_deref()
            .and_then(|ms| ms.parse().ok())
            .and_then(Timestamp::from_unix_millis);
        if let Some(user) = activity.users.get(&mc.sender_id) {
            c.sender.name = user.name.clone();
            c.sender.handle = user.screen_name.as_ref().map(|s| format!("@{s}"));
        }
        c.recipient = Some(format!("x:{}", self.account_id));
        c.text = text::decode_entities(&mc.message_data.text);
        c.attachments = mc
            .message_data
            .attachment
            .as_ref()
            .and_then(|a| a.media.as_ref())
            .and_then(attachment)
            .into_iter()
            .collect();
        c.raw = raw.clone();
        Ok(c)
    }

    fn tweet(
        &self,
        tweet: &Tweet,
        ctx: &Context<'_>,
        raw: &Option<Raw>,
    ) -> Result<Complaint, &'static str> {
        if tweet.user.id_str == self.account_id {
            return Err("own_tweet");
        }
        if tweet.retweeted_status.is_some() {
            return Err("retweet");
        }
        let extended = tweet.extended_tweet.as_ref();
        let entity_sets = [
            tweet.entities.as_ref(),
            extended.and_then(|e| e.entities.as_ref()),
        ];
        let mentioned = tweet.in_reply_to_user_id_str.as_deref() == Some(&self.account_id)
            || entity_sets
                .iter()
                .flatten()
                .flat_map(|e| &e.user_mentions)
                .any(|m| m.id_str == self.account_id);
        if !mentioned {
            return Err("not_mentioned");
        }

        let mut c = Complaint::new(
            ctx,
            Channel::X,
            MENTION_PROVIDER,
            tweet.id_str.clone(),
            format!("x:{}", tweet.user.id_str),
        );
        c.sent_at = tweet
            .timestamp_ms
            .as_deref()
            .and_then(|ms| ms.parse().ok())
            .and_then(Timestamp::from_unix_millis)
            .or_else(|| tweet.created_at.as_deref().and_then(parse_created_at));
        c.sender.name = tweet.user.name.clone();
        c.sender.handle = tweet.user.screen_name.as_ref().map(|s| format!("@{s}"));
        c.recipient = Some(format!("x:{}", self.account_id));
        let full = extended
            .map(|e| e.full_text.as_str())
            .or(tweet.full_text.as_deref())
            .or(tweet.text.as_deref())
            .unwrap_or("");
        c.text = text::decode_entities(full);
        c.thread.in_reply_to = tweet.in_reply_to_status_id_str.clone();
        c.location = tweet.coordinates.as_ref().map(|p| Location {
            latitude: p.coordinates[1],
            longitude: p.coordinates[0],
            name: tweet.place.as_ref().and_then(|pl| pl.full_name.clone()),
            address: None,
        });
        // The extended form lists every medium; the classic one only the first.
        let media: &[Media] = [
            extended.and_then(|e| e.extended_entities.as_ref()),
            tweet.extended_entities.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|e: &Entities| e.media.as_slice())
        .find(|m| !m.is_empty())
        .unwrap_or(&[]);
        c.attachments = media.iter().filter_map(attachment).collect();
        c.raw = raw.clone();
        Ok(c)
    }
}

impl Adapter for X {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        match *req.method {
            // The CRC check is unsigned; its answer proves we hold the secret.
            http::Method::GET => Ok(()),
            http::Method::POST => {
                let Some(given) = req.header(SIGNATURE_HEADER) else {
                    return Err(Rejection::Forbidden("missing signature"));
                };
                if constant_time_eq(given.trim().as_bytes(), self.sign(req.body).as_bytes()) {
                    Ok(())
                } else {
                    Err(Rejection::Forbidden("wrong signature"))
                }
            }
            _ => Err(Rejection::MethodNotAllowed),
        }
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        if *req.method == http::Method::GET {
            let token = req
                .query("crc_token")
                .filter(|t| !t.is_empty())
                .ok_or_else(|| Rejection::malformed("missing crc_token"))?;
            return Ok(Outcome::Reply(Reply::json(
                200,
                &serde_json::json!({ "response_token": self.sign(token.as_bytes()) }),
            )));
        }

        let activity: Activity =
            serde_json::from_slice(req.body).map_err(|e| Rejection::malformed(json_reason(&e)))?;
        if activity.for_user_id != self.account_id {
            // One app's webhook serves every account it subscribed; this instance is for one.
            return Ok(Outcome::ignored("other_account"));
        }
        let raw = ctx
            .keep_raw
            .then(|| Raw::from_bytes(req.content_type(), req.body));
        let mut complaints = Vec::new();
        let mut ignored = Vec::new();
        let mut sort = |r: Result<Complaint, &'static str>| match r {
            Ok(c) => complaints.push(c),
            Err(reason) => ignored.push(Ignored { reason }),
        };
        for ev in &activity.direct_message_events {
            sort(self.direct_message(ev, &activity, ctx, &raw));
        }
        for tweet in &activity.tweet_create_events {
            sort(self.tweet(tweet, ctx, &raw));
        }
        for (key, value) in &activity.other {
            if let Some(reason) = other_event(key) {
                let n = value.as_array().map_or(1, |a| a.len().max(1));
                ignored.extend(std::iter::repeat_n(Ignored { reason }, n));
            }
        }
        if complaints.is_empty() && ignored.is_empty() {
            ignored.push(Ignored { reason: "empty" });
        }
        Ok(Outcome::Accept {
            complaints,
            ignored,
            reports: Vec::new(),
            consents: Vec::new(),
        })
    }
}

/// The metrics label of an event array that is never a complaint.
fn other_event(key: &str) -> Option<&'static str> {
    Some(match key {
        "favorite_events" => "favorite",
        "follow_events" => "follow",
        "unfollow_events" => "unfollow",
        "block_events" => "block",
        "unblock_events" => "unblock",
        "mute_events" => "mute",
        "unmute_events" => "unmute",
        "user_event" => "user_event",
        "tweet_delete_events" => "tweet_delete",
        "direct_message_indicate_typing_events" => "typing",
        "direct_message_mark_read_events" => "read",
        k if k.ends_with("_events") => "other_event",
        _ => return None,
    })
}

/// A photo, video or GIF as an attachment; videos point at their best MP4.
fn attachment(media: &Media) -> Option<Attachment> {
    let kind = match media.kind.as_deref() {
        Some("photo") | None => AttachmentKind::Image,
        Some("video") | Some("animated_gif") => AttachmentKind::Video,
        Some(_) => AttachmentKind::Other,
    };
    let best_video = media.video_info.as_ref().and_then(|v| {
        v.variants
            .iter()
            .filter(|v| v.content_type.as_deref() == Some("video/mp4") && v.url.is_some())
            .max_by_key(|v| v.bitrate.unwrap_or(0))
    });
    let (url, content_type) = match best_video {
        Some(v) => (v.url.clone(), v.content_type.clone()),
        None => (media.media_url_https.clone(), None),
    };
    url.as_ref()?;
    Some(Attachment {
        content_type,
        url,
        provider_ref: media.id_str.clone(),
        ..Attachment::new(kind)
    })
}

/// v1.1 `created_at`: `Wed Oct 10 20:19:24 +0000 2018`.
fn parse_created_at(s: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_str(s, "%a %b %d %H:%M:%S %z %Y")
        .ok()
        .map(|t| Timestamp(t.with_timezone(&chrono::Utc)))
}

/// serde's messages may quote the offending value (a name, a message):
/// keep only the ones that name a field, and the position.
fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let head = msg.split(" at line ").next().unwrap_or("");
    match e.classify() {
        serde_json::error::Category::Data if head.starts_with("missing field") => {
            format!("{head} at line {} column {}", e.line(), e.column())
        }
        serde_json::error::Category::Data => format!(
            "unexpected value at line {} column {}",
            e.line(),
            e.column()
        ),
        serde_json::error::Category::Eof => "truncated JSON".into(),
        _ => format!("malformed JSON at line {} column {}", e.line(), e.column()),
    }
}
