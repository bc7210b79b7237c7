//! Email intake for aduan.
//!
//! - [`mime`]: the one MIME-to-Complaint path every intake shares.
//! - [`mailgun`], [`sendgrid`], [`postmark`]: the inbound-email webhooks
//!   (`/webhooks/email/{instance}`).
//! - [`imap`]: the IMAP mailbox poller.
//! - [`smtp`]: SMTP instances: the recipients they serve, what the listener hands them.
//! - [`send`]: replies by SMTP through the instance's relay.
//! - [`form`]: the form bodies (multipart or URL-encoded) the webhooks post.
//! - [`auth`]: Basic credentials for the webhooks that have no signature.

pub mod auth;
pub mod form;
pub mod imap;
pub mod mailgun;
pub mod mime;
pub mod postmark;
pub mod send;
pub mod sendgrid;
pub mod smtp;

pub use imap::{ImapConfig, ImapPoller};
pub use mailgun::{Mailgun, MailgunConfig};
pub use mime::{Envelope, Mail, MailPart, MimeLimits, MimeOutcome, complaint_from_mime};
pub use postmark::{Postmark, PostmarkConfig};
pub use send::{EmailSendConfig, EmailSender, TlsMode};
pub use sendgrid::{SendGrid, SendGridConfig};
pub use smtp::{MailIntake, Match, SmtpConfig, SmtpEnvelope, SmtpIntake};
