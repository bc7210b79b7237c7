//! Where a complaint came in, and why it was not taken: one error type for
//! every door, mapped once to an HTTP answer (in the `webhooks` door) and
//! once to an SMTP reply (in the `smtp` door).

use aduan_adapter::Rejection;

use crate::limits::Refusal;

/// The door a complaint came in by. Its label is the `route` label of metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// An HTTP route, by its segment (`whatsapp`, `transcripts`, …).
    Http(&'static str),
    /// The SMTP listener.
    Smtp,
    /// A polling channel (IMAP, Telegram long polling).
    Poll,
    /// `aduan import-transcripts`.
    Import,
}

impl Door {
    /// The `route` label of metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Door::Http(segment) => segment,
            Door::Smtp => "smtp",
            Door::Poll => "poll",
            Door::Import => "import",
        }
    }
}

/// Why a request, message or line was not (wholly) accepted. For every
/// variant but [`IngestError::Limited`] nothing was written; for `Limited`
/// the complaints of senders within their limit may have been, and the
/// provider's retry of the whole request finds those as redeliveries.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Refused by the adapter or by an input limit; answered in the provider's own form.
    #[error("refused: {0}")]
    Rejected(Rejection),
    /// Over a rate or concurrency limit: retry later.
    #[error("over the `{}` limit", .0.limit())]
    Limited(Refusal),
    /// Redis (with no spool to fall back to), the blob store or the fragment
    /// store failed: retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Redis failed and the spool is at its cap: retry later.
    #[error("redis unavailable and spool full ({0})")]
    SpoolFull(&'static str),
    /// The request deadline passed (a slow client's body or a stalled append).
    #[error("not done within the request deadline")]
    Timeout,
}

impl IngestError {
    /// A short, stable label for the `reason` metric label. Never contains input.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Rejected(r) => r.reason(),
            IngestError::Limited(r) => r.limit(),
            IngestError::Unavailable(_) => "unavailable",
            IngestError::SpoolFull(_) => "spool_full",
            IngestError::Timeout => "timeout",
        }
    }

    /// True when a retry of the same input may succeed.
    pub fn temporary(&self) -> bool {
        !matches!(self, IngestError::Rejected(_))
    }
}

impl From<Rejection> for IngestError {
    fn from(r: Rejection) -> Self {
        IngestError::Rejected(r)
    }
}

impl From<crate::pipeline::PublishError> for IngestError {
    fn from(e: crate::pipeline::PublishError) -> Self {
        match e {
            crate::pipeline::PublishError::SpoolFull(limit) => IngestError::SpoolFull(limit),
            other => IngestError::Unavailable(other.to_string()),
        }
    }
}
