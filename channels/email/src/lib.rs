//! Email intake for aduan.
//!
//! - [`mime`]: the one MIME-to-Complaint path every intake shares.
//! - [`form`]: the form bodies (multipart or URL-encoded) the webhooks post.

pub mod form;
pub mod mime;

pub use mime::{Envelope, Mail, MailPart, MimeLimits, MimeOutcome, complaint_from_mime};
