//! The one path from an email to a Complaint, shared by every intake (SMTP,
//! IMAP, and the Mailgun, SendGrid and Postmark webhooks).
//!
//! Intakes that hold the MIME source call [`complaint_from_mime`]. Postmark
//! without `RawEmail` fills a [`Mail`] from its parsed fields and calls
//! [`Mail::into_outcome`], so both paths apply the same rules for identity,
//! threading, automatic-mail detection, attachments and limits.

use std::borrow::Cow;

use aduan_adapter::{
    Attachment, AttachmentKind, Blob, Channel, Complaint, Context, Outcome, Raw, Rejection,
    Timestamp,
};
use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders, PartType};

/// The transport's view of a message, next to its headers.
#[derive(Clone, Debug, Default)]
pub struct Envelope {
    /// The adapter that received it: `smtp`, `imap`, `mailgun`, `sendgrid`, `postmark`.
    pub provider: &'static str,
    /// The SMTP reverse-path (`MAIL FROM`): `None` when the intake does not
    /// know it, `Some("")` for the null reverse-path `<>` that bounces use.
    pub mail_from: Option<String>,
    /// The envelope recipient that selected the instance, when known.
    pub recipient: Option<String>,
}

/// Bounds on what one message may cost. Anything over them is refused whole.
///
/// In an instance's configuration: `limits = { max_message_bytes = 10485760 }`;
/// keys left out keep their defaults.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MimeLimits {
    /// The largest MIME source accepted, in bytes. Default 25 MiB.
    pub max_message_bytes: usize,
    /// The largest single attachment, in bytes (decoded). Default 10 MiB.
    pub max_attachment_bytes: usize,
    /// The largest sum of all attachments of one message, in bytes (decoded). Default 20 MiB.
    pub max_total_attachment_bytes: usize,
    /// The most attachments one message may carry. Default 20.
    pub max_attachments: usize,
    /// The deepest nesting of multiparts and attached messages. Default 8.
    pub max_depth: usize,
    /// The MIME source is kept in `raw` only up to this size; larger messages
    /// are accepted with `raw` null.
    pub max_raw_bytes: usize,
}

impl Default for MimeLimits {
    fn default() -> Self {
        MimeLimits {
            max_message_bytes: 25 * 1024 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024,
            max_total_attachment_bytes: 20 * 1024 * 1024,
            max_attachments: 20,
            max_depth: 8,
            max_raw_bytes: 1024 * 1024,
        }
    }
}

/// What a message amounts to.
#[derive(Debug)]
pub enum MimeOutcome {
    /// A complaint and the attachment bytes the gateway stores before appending it.
    Complaint {
        complaint: Box<Complaint>,
        blobs: Vec<Blob>,
    },
    /// Automatic mail (auto-reply, bounce, list traffic): acknowledged, not written.
    Ignored(&'static str),
}

impl MimeOutcome {
    /// The adapter-contract form of this outcome.
    pub fn into_outcome(self) -> Outcome {
        match self {
            MimeOutcome::Complaint { complaint, blobs } => Outcome::AcceptWithBlobs {
                complaints: vec![*complaint],
                ignored: Vec::new(),
                blobs,
            },
            MimeOutcome::Ignored(reason) => Outcome::ignored(reason),
        }
    }
}

/// One attachment before it is stored.
#[derive(Clone, Debug)]
pub struct MailPart<'a> {
    pub content_type: String,
    pub filename: Option<String>,
    pub bytes: Cow<'a, [u8]>,
}

/// An email as the normalizer needs it, whichever way it arrived.
#[derive(Clone, Debug, Default)]
pub struct Mail<'a> {
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    /// The first `To` address, used when the envelope recipient is unknown.
    pub to_address: Option<String>,
    pub subject: Option<String>,
    pub date: Option<Timestamp>,
    pub text: String,
    pub in_reply_to: Option<String>,
    /// Oldest first.
    pub references: Vec<String>,
    pub attachments: Vec<MailPart<'a>>,
    /// Why this is automatic mail, when it is.
    pub automatic: Option<&'static str>,
}

/// Parses `mime` and normalizes it into a complaint, or recognizes it as
/// automatic mail that must not be written.
pub fn complaint_from_mime(
    mime: &[u8],
    envelope: &Envelope,
    ctx: &Context<'_>,
    limits: &MimeLimits,
) -> Result<MimeOutcome, Rejection> {
    if mime.len() > limits.max_message_bytes {
        return Err(Rejection::TooLarge("message over the size limit"));
    }
    if mime.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Rejection::malformed("empty message"));
    }
    // mail-parser has debug assertions that hostile input can trip (found by
    // the `mime` fuzz target); a panic here must not take a session or a
    // request down with it. The parser holds no state beyond this call.
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        MessageParser::default().parse(mime)
    }))
    .map_err(|_| Rejection::malformed("unparseable MIME structure"))?;
    let message = parsed.ok_or_else(|| Rejection::malformed("no message headers"))?;
    if depth(&message, 0, limits.max_depth) > limits.max_depth {
        return Err(Rejection::malformed("MIME nesting too deep"));
    }
    let mail = mail_from_message(&message, envelope)?;
    let raw = (ctx.keep_raw && mime.len() <= limits.max_raw_bytes)
        .then(|| Raw::from_bytes("message/rfc822", mime));
    let content_id = format!("sha256:{}", aduan_adapter::verify::sha256_hex(mime));
    mail.into_outcome(envelope, ctx, limits, raw, content_id)
}

/// The deepest nesting below `message`, counted in multiparts and attached
/// messages. Stops descending once past `limit`, so hostile input costs no
/// more than the limit allows.
fn depth(message: &Message<'_>, level: usize, limit: usize) -> usize {
    let mut deepest = level;
    // Part 0 is the root; parts list children by id, so walk with an explicit stack.
    let mut stack = vec![(0u32, level)];
    while let Some((id, at)) = stack.pop() {
        if at > limit {
            return at;
        }
        deepest = deepest.max(at);
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        match &part.body {
            PartType::Multipart(children) => {
                stack.extend(children.iter().map(|c| (*c, at + 1)));
            }
            PartType::Message(inner) => {
                deepest = deepest.max(depth(inner, at + 1, limit));
                if deepest > limit {
                    return deepest;
                }
            }
            _ => {}
        }
    }
    deepest
}

fn mail_from_message<'m>(
    message: &'m Message<'m>,
    envelope: &Envelope,
) -> Result<Mail<'m>, Rejection> {
    let from = message.from().and_then(|a| a.first());
    let from_address = from
        .and_then(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty());
    let from_name = from
        .and_then(|a| a.name())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let to_address = message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase());

    let is_report = message
        .content_type()
        .is_some_and(|ct| is_type(ct.ctype(), ct.subtype(), "multipart", "report"));
    let automatic = automatic_mail(
        message.headers_raw(),
        from_address.as_deref(),
        envelope,
        is_report,
    );

    let date = message
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| Timestamp::from_unix_seconds(d.to_timestamp()));

    let mut text = String::new();
    for id in &message.text_body {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        let piece = match &part.body {
            PartType::Text(t) => Cow::Borrowed(t.as_ref()),
            PartType::Html(h) => Cow::Owned(html_to_text(h)),
            _ => continue,
        };
        // Blank lines around a part are layout between parts, not the citizen's words.
        let piece = piece.trim_start_matches(['\r', '\n']).trim_end();
        if piece.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(piece);
    }

    let mut attachments = Vec::new();
    for id in &message.attachments {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let content_type = match part.content_type() {
            Some(ct) => match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            },
            None => match part.body {
                PartType::Message(_) => "message/rfc822".to_string(),
                PartType::Text(_) => "text/plain".to_string(),
                PartType::Html(_) => "text/html".to_string(),
                _ => "application/octet-stream".to_string(),
            },
        };
        attachments.push(MailPart {
            content_type,
            filename: part.attachment_name().map(str::to_string),
            bytes: Cow::Borrowed(part.contents()),
        });
    }

    Ok(Mail {
        message_id: message.message_id().and_then(clean_id),
        from_name,
        from_address,
        to_address,
        subject: message
            .subject()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        date,
        text: text.replace("\r\n", "\n"),
        in_reply_to: header_ids(message.in_reply_to()).into_iter().next(),
        references: header_ids(message.references()),
        attachments,
        automatic,
    })
}

fn is_type(ctype: &str, subtype: Option<&str>, want: &str, want_sub: &str) -> bool {
    ctype.eq_ignore_ascii_case(want) && subtype.is_some_and(|s| s.eq_ignore_ascii_case(want_sub))
}

/// Message ids of an `In-Reply-To` or `References` header, brackets removed.
fn header_ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => clean_id(t).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    }
}

/// A message id as stored: no angle brackets, no surrounding space.
pub(crate) fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Every message id in a `References`-style header value, in order.
pub(crate) fn split_ids(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter_map(clean_id)
        .collect()
}

/// Recognizes mail written by a machine in answer to other mail. Answering or
/// recording it would let the gateway loop with an auto-responder.
pub(crate) fn automatic_mail<'h>(
    headers: impl Iterator<Item = (&'h str, &'h str)>,
    from_address: Option<&str>,
    envelope: &Envelope,
    is_report: bool,
) -> Option<&'static str> {
    let daemon = |addr: &str| {
        let local = addr.split('@').next().unwrap_or("");
        local.eq_ignore_ascii_case("mailer-daemon")
    };
    if envelope.mail_from.as_deref() == Some("")
        || is_report
        || from_address.is_some_and(daemon)
        || envelope.mail_from.as_deref().is_some_and(daemon)
    {
        return Some("bounce");
    }
    let mut list = false;
    for (name, value) in headers {
        let value = value.trim();
        let token = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name.eq_ignore_ascii_case("auto-submitted") && !token.is_empty() && token != "no" {
            return Some("auto_reply");
        }
        if name.eq_ignore_ascii_case("x-autoreply") || name.eq_ignore_ascii_case("x-autorespond") {
            return Some("auto_reply");
        }
        if name.eq_ignore_ascii_case("precedence")
            && matches!(token.as_str(), "bulk" | "junk" | "list" | "auto_reply")
        {
            list = true;
        }
        if name.eq_ignore_ascii_case("list-id") {
            list = true;
        }
    }
    list.then_some("list")
}

/// HTML as readable text: paragraphs and lists kept, markup and styling dropped.
pub(crate) fn html_to_text(html: &str) -> String {
    // Wrapping would put line breaks the citizen never wrote into the complaint.
    const NO_WRAP: usize = 100_000;
    // The renderer's cost grows with the square of the nesting depth (80,000
    // nested `<div>`s, 400 KB, take most of a minute). No mail client nests
    // that deep, so deeper markup is read by the plain tag stripper instead.
    if nesting_depth(html) > MAX_HTML_DEPTH {
        return collapse_blank_lines(&strip_tags(html));
    }
    html2text::config::plain_no_decorate()
        .no_table_borders()
        .string_from_read(html.as_bytes(), NO_WRAP)
        .map(|t| collapse_blank_lines(&t))
        .unwrap_or_default()
}

/// Deeper HTML than this skips the renderer (see [`html_to_text`]).
const MAX_HTML_DEPTH: usize = 200;

/// Elements that never have a closing tag, so never nest.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// The tag names of `html`, in order, with whether each one closes.
fn tags(html: &str) -> impl Iterator<Item = (bool, &str, bool)> {
    html.split('<').skip(1).filter_map(|rest| {
        let end = rest.find('>')?;
        let tag = &rest[..end];
        let closing = tag.starts_with('/');
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let self_closing = tag.ends_with('/');
        Some((closing, name, self_closing))
    })
}

/// An estimate of how deep the elements of `html` nest; stops counting once
/// past the limit.
fn nesting_depth(html: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for (closing, name, self_closing) in tags(html) {
        if name.is_empty() || name.starts_with('!') || name.starts_with('?') {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if !self_closing && !VOID_ELEMENTS.iter().any(|v| v.eq_ignore_ascii_case(name)) {
            depth += 1;
            deepest = deepest.max(depth);
            if deepest > MAX_HTML_DEPTH {
                break;
            }
        }
    }
    deepest
}

/// Text of `html` with every tag dropped, block tags as line breaks, and the
/// common entities decoded. Linear in the input, for markup too deep to render.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim_start_matches('/');
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        if ["br", "p", "div", "li", "tr", "h1", "h2", "h3", "blockquote"]
            .iter()
            .any(|b| b.eq_ignore_ascii_case(name))
        {
            out.push('\n');
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Trailing spaces dropped and runs of blank lines (empty paragraphs, `<br>`
/// spacers) folded into one.
fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

impl Mail<'_> {
    /// Applies the shared rules and produces the complaint (or the ignored
    /// event). `raw` is what goes into the document's `raw`; `content_id` is
    /// the `external_id` used when the message has no `Message-ID`.
    pub fn into_outcome(
        self,
        envelope: &Envelope,
        ctx: &Context<'_>,
        limits: &MimeLimits,
        raw: Option<Raw>,
        content_id: String,
    ) -> Result<MimeOutcome, Rejection> {
        if let Some(reason) = self.automatic {
            return Ok(MimeOutcome::Ignored(reason));
        }
        let address = self
            .from_address
            .clone()
            .or_else(|| {
                envelope
                    .mail_from
                    .as_deref()
                    .map(|a| a.trim().to_ascii_lowercase())
            })
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Rejection::malformed("no sender address"))?;
        if self.attachments.len() > limits.max_attachments {
            return Err(Rejection::TooLarge("too many attachments"));
        }
        let external_id = self.message_id.clone().unwrap_or(content_id);
        let mut complaint = Complaint::new(
            ctx,
            Channel::Email,
            envelope.provider,
            external_id.clone(),
            format!("mailto:{address}"),
        );
        complaint.sender.name = self.from_name;
        complaint.sender.email = Some(address);
        complaint.recipient = envelope
            .recipient
            .as_deref()
            .map(|r| r.trim().to_ascii_lowercase())
            .or(self.to_address)
            .filter(|r| !r.is_empty());
        complaint.subject = self.subject;
        complaint.sent_at = self.date;
        complaint.text = self.text;
        complaint.thread.conversation = self
            .references
            .first()
            .or(self.in_reply_to.as_ref())
            .cloned()
            .unwrap_or(external_id);
        complaint.thread.in_reply_to = self.in_reply_to;
        complaint.thread.references = self.references;
        complaint.raw = raw;

        let mut blobs: Vec<Blob> = Vec::new();
        let mut total = 0usize;
        for part in self.attachments {
            let size = part.bytes.len();
            if size > limits.max_attachment_bytes {
                return Err(Rejection::TooLarge("attachment over the size limit"));
            }
            total += size;
            if total > limits.max_total_attachment_bytes {
                return Err(Rejection::TooLarge("attachments over the total size limit"));
            }
            let digest = aduan_adapter::verify::sha256_hex(&part.bytes);
            let key = format!("sha256/{digest}");
            let kind = if part.content_type.starts_with("message/") {
                AttachmentKind::Document
            } else {
                AttachmentKind::from_content_type(&part.content_type)
            };
            let mut attachment = Attachment::new(kind);
            attachment.content_type = Some(part.content_type);
            attachment.filename = part.filename;
            attachment.size = Some(size as u64);
            attachment.sha256 = Some(digest);
            attachment.storage_key = Some(key.clone());
            complaint.attachments.push(attachment);
            // The same picture attached twice is stored once.
            if !blobs.iter().any(|b| b.key == key) {
                blobs.push(Blob {
                    key,
                    bytes: part.bytes.into_owned(),
                });
            }
        }
        // The SMTP listener and the IMAP poller hand this on without
        // `Adapter::parse`, which is where the webhooks' complaints are sanitized.
        complaint.sanitize();
        Ok(MimeOutcome::Complaint {
            complaint: Box::new(complaint),
            blobs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_without_void_or_closed_elements() {
        assert_eq!(nesting_depth("<p>a<br>b<img src=x></p><p>c</p>"), 1);
        assert_eq!(nesting_depth("<div><div><span>x</span></div></div>"), 3);
        assert!(nesting_depth(&"<div>".repeat(10_000)) > MAX_HTML_DEPTH);
    }

    #[test]
    fn deep_markup_is_stripped_not_rendered() {
        let html = format!("{}Sampah &amp; banjir<br>di RW 07", "<div>".repeat(5_000));
        assert_eq!(html_to_text(&html), "Sampah & banjir\ndi RW 07");
    }
}
