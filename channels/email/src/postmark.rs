//! Postmark inbound: JSON, with the source in `RawEmail` when the server has
//! "Include raw email content" on, otherwise only the parsed fields. Basic
//! credentials in the URL.

use std::borrow::Cow;

use aduan_adapter::{Adapter, Context, Outcome, Raw, Rejection, Request, Secret, Timestamp};
use base64::Engine as _;
use serde::Deserialize;

use crate::mailgun::webhook_body_limit;
use crate::mime::{
    Envelope, Mail, MailPart, MimeLimits, automatic_mail, clean_id, complaint_from_mime,
    html_to_text, split_ids,
};

/// `kind = "postmark"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostmarkConfig {
    /// The user name in the inbound webhook URL (`https://USER:PASSWORD@host/…`).
    pub username: String,
    /// The password in the inbound webhook URL. Use `env:` or `file:`.
    pub password: Secret,
    /// Size and structure limits for each message.
    #[serde(default)]
    pub limits: MimeLimits,
}

/// The Postmark inbound adapter.
#[derive(Debug)]
pub struct Postmark {
    cfg: PostmarkConfig,
}

impl Postmark {
    /// Validates the configuration.
    pub fn new(cfg: PostmarkConfig) -> Result<Self, String> {
        if cfg.username.is_empty() || cfg.username.contains(':') {
            return Err("username must be non-empty and contain no `:`".into());
        }
        Ok(Postmark { cfg })
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Inbound {
    from: Option<String>,
    from_name: Option<String>,
    from_full: Option<Person>,
    to: Option<String>,
    to_full: Vec<Person>,
    original_recipient: Option<String>,
    subject: Option<String>,
    #[serde(rename = "MessageID")]
    message_id: Option<String>,
    date: Option<String>,
    text_body: Option<String>,
    html_body: Option<String>,
    headers: Vec<NameValue>,
    attachments: Vec<InboundAttachment>,
    raw_email: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Person {
    email: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InboundAttachment {
    name: Option<String>,
    content: String,
    content_type: Option<String>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Adapter for Postmark {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        crate::auth::check_basic(req, &self.cfg.username, &self.cfg.password)
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        if req.method != http::Method::POST {
            return Err(Rejection::MethodNotAllowed);
        }
        // Postmark posts inbound mail as `application/json` only.
        req.require_json()?;
        let inbound: Inbound = serde_json::from_slice(req.body)
            .map_err(|_| Rejection::malformed("body is not Postmark inbound JSON"))?;
        let limits = &self.cfg.limits;
        let recipient = non_empty(inbound.original_recipient.as_deref()).or_else(|| {
            inbound
                .to_full
                .first()
                .and_then(|p| non_empty(p.email.as_deref()))
        });
        let envelope = Envelope {
            provider: "postmark",
            mail_from: None,
            recipient,
        };
        if let Some(raw_email) = inbound.raw_email.as_deref().filter(|r| !r.is_empty()) {
            return Ok(
                complaint_from_mime(raw_email.as_bytes(), &envelope, ctx, limits)?.into_outcome(),
            );
        }
        let mail = mail_from_fields(&inbound, &envelope)?;
        let raw = (ctx.keep_raw && req.body.len() <= limits.max_raw_bytes)
            .then(|| Raw::from_bytes("application/json", req.body));
        let content_id = format!("sha256:{}", aduan_adapter::verify::sha256_hex(req.body));
        Ok(mail
            .into_outcome(&envelope, ctx, limits, raw, content_id)?
            .into_outcome())
    }

    fn max_body_bytes(&self) -> Option<usize> {
        Some(webhook_body_limit(&self.cfg.limits))
    }
}

/// The parsed fields as a [`Mail`]: the same rules then apply as to MIME.
fn mail_from_fields<'a>(inbound: &'a Inbound, envelope: &Envelope) -> Result<Mail<'a>, Rejection> {
    let header = |name: &str| {
        inbound
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    };
    let from_full = inbound.from_full.as_ref();
    let from_address = non_empty(from_full.and_then(|p| p.email.as_deref()))
        .or_else(|| non_empty(inbound.from.as_deref()))
        .map(|a| a.to_ascii_lowercase());
    let from_name = non_empty(from_full.and_then(|p| p.name.as_deref()))
        .or_else(|| non_empty(inbound.from_name.as_deref()));
    let automatic = automatic_mail(
        inbound
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str())),
        from_address.as_deref(),
        envelope,
        false,
    );
    let text = match non_empty(inbound.text_body.as_deref()) {
        Some(t) => t.replace("\r\n", "\n").trim_end().to_string(),
        None => inbound
            .html_body
            .as_deref()
            .map(html_to_text)
            .unwrap_or_default(),
    };
    let mut attachments = Vec::with_capacity(inbound.attachments.len());
    for a in &inbound.attachments {
        // The body limit bounds the decoded size; the per-attachment limits apply in `into_outcome`.
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(a.content.trim())
            .map_err(|_| Rejection::malformed("attachment content is not base64"))?;
        attachments.push(MailPart {
            content_type: non_empty(a.content_type.as_deref())
                .map(|c| c.to_ascii_lowercase())
                .unwrap_or_else(|| "application/octet-stream".into()),
            filename: non_empty(a.name.as_deref()),
            bytes: Cow::Owned(bytes),
        });
    }
    Ok(Mail {
        message_id: header("message-id")
            .and_then(clean_id)
            .or_else(|| non_empty(inbound.message_id.as_deref())),
        from_name,
        from_address,
        to_address: inbound
            .to_full
            .first()
            .and_then(|p| non_empty(p.email.as_deref()))
            .or_else(|| non_empty(inbound.to.as_deref()))
            .map(|a| a.to_ascii_lowercase()),
        subject: non_empty(inbound.subject.as_deref()),
        date: inbound
            .date
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d.trim()).ok())
            .map(|d| Timestamp(d.with_timezone(&chrono::Utc))),
        text,
        in_reply_to: header("in-reply-to").and_then(|v| split_ids(v).into_iter().next()),
        references: header("references").map(split_ids).unwrap_or_default(),
        attachments,
        automatic,
    })
}
