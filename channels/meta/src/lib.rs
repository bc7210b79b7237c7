//! Meta webhooks intake: the three channels Meta delivers with one handshake
//! and one signature scheme.
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

pub mod comments;
pub mod hub;
pub mod instagram;
pub mod messaging;
pub mod messenger;
pub mod whatsapp;

pub use hub::MetaConfig;
pub use instagram::Instagram;
pub use messenger::Messenger;
pub use whatsapp::WhatsApp;
