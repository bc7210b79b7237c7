//! The contract between aduan's channel adapters and the gateway that hosts them.
//!
//! - [`complaint`]: the `aduan.complaint.v1` document every adapter produces.
//! - [`adapter`]: the push interface, `verify` then `parse`, with no I/O.
//! - [`poll`]: what polling channels (IMAP, Telegram long polling) are offered.
//! - [`reply`]: the way back: replies, deliveries, reply routes and the sender interface.
//! - [`status`]: the status loop: the `aduan.status.v1` entries of the core system.
//! - [`secret`]: configuration secrets given as `env:`/`file:` references.
//! - [`verify`]: constant-time comparison and the HMAC primitives providers use.
//! - [`media`]: fetching attachments before their links expire (fetchers, guarded HTTP).
//! - [`phone`]: phone numbers to E.164.
//! - [`text`]: input hygiene, the one normalization of every string in a Complaint.
//! - `testkit` (feature `testkit`, tests only): provider signatures, golden
//!   expected documents and the one table runner every channel's tests use.

pub mod adapter;
pub mod complaint;
pub mod media;
pub mod phone;
pub mod poll;
pub mod reply;
pub mod secret;
pub mod status;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod text;
pub mod verify;

pub use adapter::{
    Adapter, Blob, Context, Deferral, FieldError, Fragment, Ignored, Outcome, Receipt, Rejection,
    Reply, Request,
};
pub use complaint::{
    Attachment, AttachmentKind, Call, Channel, Complaint, Location, Raw, SCHEMA, Segment, Sender,
    Thread, Timestamp, content_id,
};
pub use poll::{Host, HostError, Poller, Shutdown};
pub use reply::{
    Consent, DELIVERY_SCHEMA, Delivery, DeliveryError, DeliveryStatus, MessageRef, Outgoing,
    REPLY_SCHEMA, ReplyAttachment, ReplyRequest, ReplyRoute, ReplySender, ReportRef, Retry,
    RouteKind, SendError, Sent, StatusReport, Template,
};
pub use secret::{Secret, SecretError};
pub use status::{PublicStatus, STATUS_SCHEMA, StatusKind, StatusRejection, StatusUpdate};
