//! The parts of an Account Activity payload that intake reads.
//!
//! Unknown fields are allowed everywhere: X adds to these objects freely.

use std::collections::HashMap;

use serde::Deserialize;

/// One POST body: the subscribed account and one or more event arrays.
#[derive(Debug, Deserialize)]
pub struct Activity {
    pub for_user_id: String,
    #[serde(default)]
    pub direct_message_events: Vec<DirectMessageEvent>,
    #[serde(default)]
    pub tweet_create_events: Vec<Tweet>,
    /// DM payloads describe the users they name.
    #[serde(default)]
    pub users: HashMap<String, DmUser>,
    /// Every other key, to count what was ignored.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A direct-message event; only `message_create` carries a message.
#[derive(Debug, Deserialize)]
pub struct DirectMessageEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// Unix milliseconds, as a string.
    pub created_timestamp: Option<String>,
    pub message_create: Option<MessageCreate>,
}

#[derive(Debug, Deserialize)]
pub struct MessageCreate {
    pub target: Target,
    pub sender_id: String,
    pub message_data: MessageData,
}

#[derive(Debug, Deserialize)]
pub struct Target {
    pub recipient_id: String,
}

#[derive(Debug, Deserialize)]
pub struct MessageData {
    #[serde(default)]
    pub text: String,
    pub attachment: Option<DmAttachment>,
}

#[derive(Debug, Deserialize)]
pub struct DmAttachment {
    pub media: Option<Media>,
}

/// A photo, video or GIF attached to a DM or a Tweet.
#[derive(Debug, Deserialize)]
pub struct Media {
    pub id_str: Option<String>,
    pub media_url_https: Option<String>,
    /// `photo`, `video` or `animated_gif`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub video_info: Option<VideoInfo>,
}

#[derive(Debug, Deserialize)]
pub struct VideoInfo {
    #[serde(default)]
    pub variants: Vec<VideoVariant>,
}

#[derive(Debug, Deserialize)]
pub struct VideoVariant {
    pub content_type: Option<String>,
    pub url: Option<String>,
    pub bitrate: Option<u64>,
}

/// A user as DM payloads describe them.
#[derive(Debug, Deserialize)]
pub struct DmUser {
    pub name: Option<String>,
    pub screen_name: Option<String>,
}

/// A v1.1 Tweet object.
#[derive(Debug, Deserialize)]
pub struct Tweet {
    pub id_str: String,
    #[serde(default)]
    pub text: Option<String>,
    pub full_text: Option<String>,
    pub extended_tweet: Option<ExtendedTweet>,
    pub user: TweetUser,
    /// `Wed Oct 10 20:19:24 +0000 2018`.
    pub created_at: Option<String>,
    /// Unix milliseconds, as a string.
    pub timestamp_ms: Option<String>,
    pub in_reply_to_status_id_str: Option<String>,
    pub in_reply_to_user_id_str: Option<String>,
    pub entities: Option<Entities>,
    pub extended_entities: Option<Entities>,
    pub coordinates: Option<Coordinates>,
    pub place: Option<Place>,
    /// Present on retweets: the retweeted Tweet.
    pub retweeted_status: Option<serde_json::Value>,
}

/// Tweets longer than 140 characters carry their full form here.
#[derive(Debug, Deserialize)]
pub struct ExtendedTweet {
    pub full_text: String,
    pub entities: Option<Entities>,
    pub extended_entities: Option<Entities>,
}

#[derive(Debug, Deserialize)]
pub struct TweetUser {
    pub id_str: String,
    pub name: Option<String>,
    pub screen_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Entities {
    #[serde(default)]
    pub user_mentions: Vec<Mention>,
    #[serde(default)]
    pub media: Vec<Media>,
}

#[derive(Debug, Deserialize)]
pub struct Mention {
    pub id_str: String,
}

/// GeoJSON point: `coordinates` is `[longitude, latitude]`.
#[derive(Debug, Deserialize)]
pub struct Coordinates {
    pub coordinates: [f64; 2],
}

#[derive(Debug, Deserialize)]
pub struct Place {
    pub full_name: Option<String>,
}
