//! The interface every HTTP-push adapter implements.
//!
//! An adapter turns "bytes + headers" into Complaints. It does no I/O, never
//! touches Redis, and reads no clock but the one in [`Context`]. The gateway
//! owns the server, limits, the pipeline, the sink and the answers' transport.

use std::borrow::Cow;

use crate::{Complaint, Timestamp};

/// One HTTP request as received, before anything is decoded.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a http::Method,
    /// Path and query exactly as the client sent them.
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    /// The raw body. Signatures are checked over these bytes, never a re-serialization.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// A header's value as text, if present and valid visible ASCII/UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn media_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// Refuses a body that is not JSON by its media type, for providers whose
    /// documented content type is JSON: `application/json`, or a structured
    /// `application/*+json` type (RFC 6839), any parameters, any case. A
    /// request without `Content-Type` is refused too.
    pub fn require_json(&self) -> Result<(), Rejection> {
        let media = self.media_type();
        let structured = media
            .strip_prefix("application/")
            .is_some_and(|sub| sub.len() > "+json".len() && sub.ends_with("+json"));
        if media == "application/json" || structured {
            Ok(())
        } else {
            Err(Rejection::UnsupportedMediaType("application/json"))
        }
    }

    /// The full `Content-Type` header, or `application/octet-stream`.
    pub fn content_type(&self) -> &str {
        self.header("content-type")
            .unwrap_or("application/octet-stream")
    }

    /// Query-string parameters, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    }

    /// The first query parameter called `name`.
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Form-encoded body parameters, decoded, in order.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body).into_owned().collect()
    }

    /// Parameters of the request wherever the method puts them: the query
    /// string for `GET`, the form body for `POST`.
    pub fn params(&self) -> Vec<(String, String)> {
        if self.method == http::Method::GET {
            self.query_pairs()
        } else {
            self.form_pairs()
        }
    }
}

/// What the gateway hands an adapter besides the request.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The configured instance name that received the request.
    pub instance: &'a str,
    /// The acceptance clock: becomes `received_at`.
    pub received_at: Timestamp,
    /// Whether to keep the exact bytes in `raw`.
    pub keep_raw: bool,
}

/// A non-complaint event that was acknowledged and not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// A short label for metrics: `status`, `echo`, `reaction`, `command`, …
    pub reason: &'static str,
}

/// What a parsed request amounts to.
#[derive(Debug)]
pub enum Outcome {
    /// Complaints to append (possibly none) and the events acknowledged but not written.
    Accept {
        complaints: Vec<Complaint>,
        ignored: Vec<Ignored>,
        /// Delivery and read reports of messages the gateway sent; they go to
        /// `aduan:delivery`, never to the complaints stream.
        reports: Vec<crate::reply::StatusReport>,
        /// Opt-outs and opt-ins (SMS keywords): never complaints.
        consents: Vec<crate::reply::Consent>,
    },
    /// Complaints whose attachment bytes the gateway stores itself (email):
    /// the blobs are written before the complaints are appended.
    AcceptWithBlobs {
        complaints: Vec<Complaint>,
        ignored: Vec<Ignored>,
        blobs: Vec<Blob>,
    },
    /// Answer the request directly and write nothing (handshakes: Meta
    /// `hub.challenge`, X CRC).
    Reply(Reply),
    /// Parts of messages the provider split (concatenated SMS). The gateway
    /// holds parts durably and appends one complaint per group once all parts
    /// have arrived, or once the group's window passes.
    Fragments(Vec<Fragment>),
}

/// Attachment bytes for the gateway's content-addressed blob store.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The attachment's `storage_key` (`sha256/<hex>`).
    pub key: String,
    pub bytes: Vec<u8>,
}

/// One part of a split message.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// Identifies the whole message within the instance (e.g. sender + concat reference).
    pub group: String,
    /// 1-based part number.
    pub part: u32,
    /// How many parts the whole message has.
    pub total: u32,
    /// The part as a complaint: its `text` is the part's text. The assembled
    /// complaint takes the fields of the first part held (including its
    /// `external_id`, unique where `group` references are reused), the texts
    /// joined in part order.
    pub complaint: Complaint,
}

impl Outcome {
    /// Nothing to write: one acknowledged event.
    pub fn ignored(reason: &'static str) -> Self {
        Outcome::Accept {
            complaints: Vec::new(),
            ignored: vec![Ignored { reason }],
            reports: Vec::new(),
            consents: Vec::new(),
        }
    }

    /// Complaints only.
    pub fn complaints(complaints: Vec<Complaint>) -> Self {
        Outcome::Accept {
            complaints,
            ignored: Vec::new(),
            reports: Vec::new(),
            consents: Vec::new(),
        }
    }
}

/// A field-level problem in a request body.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// JSON path of the field, e.g. `segments[2].speaker`.
    pub field: String,
    pub message: String,
}

/// Why a request was refused. Nothing is written for any of these.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// Missing or wrong credentials where the provider expects 401.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Missing, malformed or wrong signature where the provider expects 403.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The body is not what the provider sends.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A documented body with field errors; all of them are reported.
    #[error("invalid: {} field error(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// The method is not used by this provider.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body or one of its parts is over a limit.
    #[error("payload too large: {0}")]
    TooLarge(&'static str),
    /// The body's `Content-Type` is not one the provider sends; the value is
    /// the media type the route takes.
    #[error("unsupported media type, expected {0}")]
    UnsupportedMediaType(&'static str),
}

impl Rejection {
    /// The HTTP status for this rejection.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Unauthorized(_) => 401,
            Rejection::Forbidden(_) => 403,
            Rejection::Malformed(_) | Rejection::Invalid(_) => 400,
            Rejection::MethodNotAllowed => 405,
            Rejection::TooLarge(_) => 413,
            Rejection::UnsupportedMediaType(_) => 415,
        }
    }

    /// A short, stable label for the `reason` metric label. Never contains input.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Unauthorized(_) => "unauthorized",
            Rejection::Forbidden(_) => "bad_signature",
            Rejection::Malformed(_) => "malformed",
            Rejection::Invalid(_) => "invalid",
            Rejection::MethodNotAllowed => "method",
            Rejection::TooLarge(_) => "too_large",
            Rejection::UnsupportedMediaType(_) => "media_type",
        }
    }

    /// Shorthand for [`Rejection::Malformed`].
    pub fn malformed(reason: impl Into<String>) -> Self {
        Rejection::Malformed(reason.into())
    }
}

/// Why the gateway could not take a request now, whatever the request
/// says: the provider should send it again later. Unlike a [`Rejection`]
/// it is about the gateway, not the request; the gateway picks the status
/// (and adds `Retry-After`), the adapter the form of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deferral {
    /// Too many requests in flight, on the gateway or on the instance.
    Overloaded,
    /// Over an instance's or a sender's rate.
    RateLimited,
    /// Storage (Redis and the spool) cannot take it.
    Unavailable,
    /// Not done within the request deadline.
    Timeout,
}

impl Deferral {
    /// A short, stable label (`overloaded`, `rate_limited`, `unavailable`,
    /// `timeout`): the `error` of the gateway's default answer.
    pub fn reason(self) -> &'static str {
        match self {
            Deferral::Overloaded => "overloaded",
            Deferral::RateLimited => "rate_limited",
            Deferral::Unavailable => "unavailable",
            Deferral::Timeout => "timeout",
        }
    }
}

/// The outcome of one complaint's append, handed back to the adapter to build its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The complaint id: the first one's when `duplicate`.
    pub id: String,
    pub external_id: String,
    /// True when the complaint was already accepted earlier; nothing new was written.
    pub duplicate: bool,
    /// The complaint's tracking number (the first one's when `duplicate`),
    /// when the gateway knows it.
    pub tracking: Option<String>,
}

/// An HTTP answer, independent of any server library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: Cow<'static, str>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A `200` with an empty plain-text body.
    pub fn ok() -> Self {
        Reply::text(200, "")
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            content_type: Cow::Borrowed("text/plain; charset=utf-8"),
            body: body.into().into_bytes(),
        }
    }

    /// The gateway's default answer to a request it defers: `{"error": reason}`.
    pub fn deferral(status: u16, deferral: Deferral) -> Self {
        Reply::json(status, &serde_json::json!({"error": deferral.reason()}))
    }

    /// A JSON answer.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Reply {
            status,
            content_type: Cow::Borrowed("application/json"),
            body: value.to_string().into_bytes(),
        }
    }

    /// The gateway's default answer to a rejection: `{"error": reason}` or,
    /// for field errors, `{"error": "invalid", "errors": [...]}`.
    pub fn rejection(rejection: &Rejection) -> Self {
        let body = match rejection {
            Rejection::Invalid(errors) => {
                serde_json::json!({"error": "invalid", "errors": errors})
            }
            Rejection::Malformed(reason) => {
                serde_json::json!({"error": "malformed", "reason": reason})
            }
            Rejection::UnsupportedMediaType(expected) => {
                serde_json::json!({"error": "media_type", "expected": expected})
            }
            other => serde_json::json!({"error": other.reason()}),
        };
        Reply::json(rejection.status(), &body)
    }
}

/// A channel adapter for a provider that pushes HTTP requests.
///
/// The gateway calls [`Adapter::verify`], then [`Adapter::parse`], appends the
/// complaints, and answers with [`Adapter::accepted`]. Anything refused is
/// answered with [`Adapter::rejected`].
///
/// An adapter implements [`Adapter::decode`]; `parse` is provided and is not
/// overridden, so that the input hygiene of [`crate::text`] applies to every
/// complaint of every adapter.
pub trait Adapter: Send + Sync + 'static {
    /// Checks the request's authenticity (signature, token, credentials).
    /// Runs before anything is parsed.
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection>;

    /// The adapter's own reading of a verified request: complaints, ignored
    /// events, or a direct reply. Called through [`Adapter::parse`].
    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection>;

    /// Turns a verified request into complaints, ignored events, or a direct
    /// reply: [`Adapter::decode`], then [`Outcome::sanitize`] on what it returned.
    fn parse(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        self.decode(req, ctx).map(Outcome::sanitized)
    }

    /// The provider's expected success answer once everything is durably accepted.
    fn accepted(&self, _receipts: &[Receipt]) -> Reply {
        Reply::ok()
    }

    /// The answer to a refused request.
    fn rejected(&self, rejection: &Rejection) -> Reply {
        Reply::rejection(rejection)
    }

    /// [`Adapter::accepted`] for a provider whose answer's form depends on
    /// the request (Open311 answers `requests.xml` in XML). The gateway calls
    /// this one; the default is `accepted`.
    fn accepted_to(&self, _req: &Request<'_>, receipts: &[Receipt]) -> Reply {
        self.accepted(receipts)
    }

    /// [`Adapter::rejected`] for a provider whose answer's form depends on
    /// the request; `req` carries the method, URI and headers (its body may
    /// be empty: not every refusal comes after the body was read). The
    /// gateway calls this one; the default is `rejected`.
    fn rejected_to(&self, _req: &Request<'_>, rejection: &Rejection) -> Reply {
        self.rejected(rejection)
    }

    /// The answer, with `status`, to a request the gateway could not take
    /// now (over a limit, storage away, past the deadline), in the form the
    /// provider reads (TwiML for Twilio, Open311's error list). `req`
    /// carries the method, URI and headers; its body may be empty. The
    /// gateway adds `Retry-After`. The default is [`Reply::deferral`].
    fn deferred_to(&self, _req: &Request<'_>, status: u16, deferral: Deferral) -> Reply {
        Reply::deferral(status, deferral)
    }

    /// The largest body this adapter accepts, when it differs from the gateway's default.
    fn max_body_bytes(&self) -> Option<usize> {
        None
    }

    /// How long the gateway holds the parts of a split message
    /// ([`Outcome::Fragments`]) before writing those received as one
    /// complaint marked incomplete.
    fn fragment_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(600)
    }
}
