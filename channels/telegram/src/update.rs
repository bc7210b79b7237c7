//! The parts of the Bot API `Update` object that intake reads.
//!
//! These are the crate's own serde types rather than teloxide's: teloxide
//! turns an update it cannot parse into `UpdateKind::Error` and carries on,
//! while a webhook body that lacks `message_id` or `chat` must be answered
//! `400`. Unknown fields are allowed everywhere, since Telegram adds fields
//! to these objects in every Bot API release.

use serde::Deserialize;

/// One update, as pushed to the webhook or returned by `getUpdates`.
#[derive(Debug, Deserialize)]
pub struct Update {
    pub update_id: i64,
    pub message: Option<Message>,
    pub edited_message: Option<Message>,
    /// Every other key of the update, to name what was ignored.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A message in a chat.
#[derive(Debug, Deserialize)]
pub struct Message {
    pub message_id: i64,
    pub from: Option<User>,
    pub chat: Chat,
    /// Unix seconds.
    pub date: i64,
    /// Unix seconds; only on edited messages.
    pub edit_date: Option<i64>,
    pub reply_to_message: Option<Box<Message>>,
    pub text: Option<String>,
    pub caption: Option<String>,
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default)]
    pub caption_entities: Vec<Entity>,
    #[serde(default)]
    pub photo: Vec<PhotoSize>,
    pub document: Option<File>,
    pub animation: Option<File>,
    pub voice: Option<File>,
    pub audio: Option<File>,
    pub video: Option<File>,
    pub video_note: Option<File>,
    pub sticker: Option<Sticker>,
    pub location: Option<Point>,
    pub venue: Option<Venue>,
    pub contact: Option<Contact>,
}

/// A Telegram user or bot.
#[derive(Debug, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

/// The chat a message was posted in.
#[derive(Debug, Deserialize)]
pub struct Chat {
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A formatting or semantic span of a text (mentions, commands, links).
#[derive(Debug, Deserialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: String,
    /// In UTF-16 code units, as the Bot API counts.
    pub offset: usize,
    pub length: usize,
    /// Set on `text_mention`, for users without a username.
    pub user: Option<User>,
}

/// One size of a photo.
#[derive(Debug, Deserialize)]
pub struct PhotoSize {
    pub file_id: String,
    pub width: u32,
    pub height: u32,
    pub file_size: Option<u64>,
}

/// A document, voice note, audio, video, video note or animation.
#[derive(Debug, Deserialize)]
pub struct File {
    pub file_id: String,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub file_size: Option<u64>,
}

/// A sticker; its format decides the content type.
#[derive(Debug, Deserialize)]
pub struct Sticker {
    pub file_id: String,
    #[serde(default)]
    pub is_animated: bool,
    #[serde(default)]
    pub is_video: bool,
    pub file_size: Option<u64>,
    pub emoji: Option<String>,
}

/// A point on the map.
#[derive(Debug, Deserialize)]
pub struct Point {
    pub latitude: f64,
    pub longitude: f64,
}

/// A named place.
#[derive(Debug, Deserialize)]
pub struct Venue {
    pub location: Point,
    pub title: String,
    pub address: String,
}

/// A shared phone contact.
#[derive(Debug, Deserialize)]
pub struct Contact {
    pub phone_number: String,
    pub first_name: String,
    pub last_name: Option<String>,
    /// Set when the contact is a Telegram user.
    pub user_id: Option<i64>,
}
