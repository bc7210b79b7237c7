//! `POST /v1/transcripts`: the bearer-token check, normalization of a
//! validated transcript into a Complaint, and the `201` receipt.
//!
//! The route carries no instance name: the gateway offers the request to every
//! transcript instance's [`Adapter::verify`] and keeps the one whose token
//! matches, so `verify` looks at nothing but the `Authorization` header.

use aduan_adapter::{
    Adapter, Call, Channel, Complaint, Context, Outcome, Raw, Receipt, Rejection, Reply, Request,
    Secret,
};

use crate::body::{Rules, Transcript, Words};
use crate::config::{DEFAULT_MAX_BODY_BYTES, TranscriptConfig};

/// The `provider` of every complaint this channel produces.
pub const PROVIDER: &str = "transcript";

/// What `raw.content_type` says for lines of a bulk import.
const JSON: &str = "application/json";

/// One call center's transcript endpoint.
#[derive(Debug)]
pub struct Transcripts {
    tokens: Vec<Secret>,
    rules: Rules,
    max_body_bytes: usize,
}

impl Transcripts {
    /// Validates the settings and builds the adapter.
    pub fn new(cfg: TranscriptConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Transcripts {
            rules: Rules {
                default_region: cfg.default_region.to_ascii_uppercase(),
                max_segments: cfg.max_segments,
            },
            max_body_bytes: cfg.max_body_bytes,
            tokens: cfg.tokens,
        })
    }

    /// The bearer tokens this call center presents.
    pub fn tokens(&self) -> &[Secret] {
        &self.tokens
    }

    /// The token of a request's `Authorization: Bearer` header, if it has one.
    pub fn presented_token<'a>(req: &'a Request<'_>) -> Option<&'a str> {
        bearer(req)
    }

    /// Parses one transcript given outside HTTP (a line of a bulk import),
    /// with this instance's settings. A trailing line break is not part of it.
    pub fn parse_line(&self, line: &[u8], ctx: &Context<'_>) -> Result<Complaint, Rejection> {
        let line = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if line.len() > self.max_body_bytes {
            return Err(Rejection::TooLarge("transcript too large"));
        }
        self.complaint(line, JSON, ctx)
    }

    fn complaint(
        &self,
        body: &[u8],
        content_type: &str,
        ctx: &Context<'_>,
    ) -> Result<Complaint, Rejection> {
        let transcript = Transcript::from_json(body, &self.rules)?;
        let raw = ctx.keep_raw.then(|| Raw::from_bytes(content_type, body));
        Ok(normalize(transcript, raw, ctx))
    }
}

/// Parses one transcript (a line of a bulk import) with the default settings:
/// caller numbers in region `ID`, at most 5000 segments, at most 2 MiB.
pub fn parse_transcript(line: &[u8], ctx: &Context<'_>) -> Result<Complaint, Rejection> {
    let defaults = Transcripts {
        tokens: Vec::new(),
        rules: Rules::default(),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
    };
    defaults.parse_line(line, ctx)
}

/// The Complaint for a validated transcript.
fn normalize(t: Transcript, raw: Option<Raw>, ctx: &Context<'_>) -> Complaint {
    let text = t.readable_text();
    // A caller's number identifies the citizen across calls; without one the
    // agent who took the call is the only stable identity there is.
    let sender_id = match &t.caller_phone {
        Some(phone) => format!("tel:{phone}"),
        None => format!("agent:{}", t.agent_id),
    };
    let mut c = Complaint::new(ctx, Channel::CallCenter, PROVIDER, &t.call_id, sender_id);
    c.sender.phone = t.caller_phone;
    c.sender.name = t.caller_name;
    c.sender.language = t.language;
    c.sent_at = t.started_at;
    c.subject = t.category;
    c.text = text;
    c.location = t.location;
    c.call = Some(Call {
        call_id: t.call_id,
        agent_id: Some(t.agent_id),
        agent_name: t.agent_name,
        started_at: t.started_at,
        duration_seconds: t.duration_seconds,
        direction: t.direction,
        recording_url: t.recording_url,
        segments: match t.words {
            Words::Text(_) => Vec::new(),
            Words::Segments(segments) => segments,
        },
    });
    c.raw = raw;
    // An import hands this on without `Adapter::parse`, which is where the
    // HTTP route's complaints are sanitized.
    c.sanitize();
    c
}

/// The token of an `Authorization: Bearer <token>` header. The scheme name is
/// case-insensitive (RFC 9110 section 11.1).
fn bearer<'a>(req: &'a Request<'_>) -> Option<&'a str> {
    let value = req.header("authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Adapter for Transcripts {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        let token = bearer(req).ok_or(Rejection::Unauthorized("missing bearer token"))?;
        // Every token is compared, without stopping at a match, so the time
        // taken does not tell which one (or whether an early one) matched.
        let matched = self
            .tokens
            .iter()
            .fold(false, |found, t| t.matches(token.as_bytes()) | found);
        if matched {
            Ok(())
        } else {
            Err(Rejection::Unauthorized("wrong bearer token"))
        }
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        if req.method != http::Method::POST {
            return Err(Rejection::MethodNotAllowed);
        }
        // A call center's form post or plain text is refused for what it is,
        // not as a JSON syntax error.
        req.require_json()?;
        if req.body.len() > self.max_body_bytes {
            return Err(Rejection::TooLarge("transcript too large"));
        }
        let content_type = req.content_type();
        let complaint = self.complaint(req.body, content_type, ctx)?;
        Ok(Outcome::complaints(vec![complaint]))
    }

    /// `201 Created` with the complaint id, also for a resend of a call
    /// already accepted (then `duplicate` is true and the id is the first one's).
    fn accepted(&self, receipts: &[Receipt]) -> Reply {
        let body = match receipts.first() {
            Some(r) => {
                serde_json::json!({"id": r.id, "tracking": r.tracking, "duplicate": r.duplicate})
            }
            // Unreachable: every accepted transcript is exactly one complaint.
            None => serde_json::json!({"id": null, "tracking": null, "duplicate": false}),
        };
        Reply::json(201, &body)
    }

    fn max_body_bytes(&self) -> Option<usize> {
        Some(self.max_body_bytes)
    }
}
