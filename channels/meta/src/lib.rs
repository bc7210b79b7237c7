//! Meta channels: the three that Meta delivers with one handshake and one
//! signature scheme, and the replies that go back to them through the Graph
//! API.
//!
//! - [`hub`]: what the three share: configuration, the `hub.*` verification
//!   handshake, the `X-Hub-Signature-256` check and JSON decoding with short,
//!   data-free reasons.
//! - [`whatsapp`]: WhatsApp Business Cloud API messages.
//! - [`messaging`]: Messenger Platform `messaging[]` events, shared by
//!   Messenger and Instagram direct messages.
//! - [`comments`]: Facebook Page feed comments and Instagram comments.
//! - [`messenger`] and [`instagram`]: the adapters for the two `object`s that
//!   carry them.
//! - [`fetch`]: the attachments' bytes for the gateway's media worker:
//!   [`WhatsAppFetcher`] (media ids) and [`CdnFetcher`] (Messenger,
//!   Instagram and comment URLs).
//! - [`send`]: the replies, through the Graph API: [`WhatsAppSender`] and
//!   [`MessengerSender`] (Messenger and Instagram).

pub mod comments;
pub mod fetch;
pub mod hub;
pub mod instagram;
pub mod messaging;
pub mod messenger;
pub mod send;
pub mod whatsapp;

pub use fetch::{CdnFetchConfig, CdnFetcher, WhatsAppFetchConfig, WhatsAppFetcher};
pub use hub::MetaConfig;
pub use instagram::Instagram;
pub use messenger::Messenger;
pub use send::{
    CommentReply, MessengerSendConfig, MessengerSender, Platform, WhatsAppSendConfig,
    WhatsAppSender,
};
pub use whatsapp::WhatsApp;
