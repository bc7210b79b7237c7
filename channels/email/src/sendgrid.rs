//! SendGrid Inbound Parse with "POST the raw, full MIME message": the source
//! in the `email` field of a multipart form, Basic credentials in the URL.

use aduan_adapter::{Adapter, Context, Outcome, Rejection, Request, Secret};
use serde::Deserialize;

use crate::form::Form;
use crate::mailgun::webhook_body_limit;
use crate::mime::{Envelope, MimeLimits, complaint_from_mime};

/// `kind = "sendgrid"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendGridConfig {
    /// The user name in the Parse webhook URL (`https://USER:PASSWORD@host/…`).
    pub username: String,
    /// The password in the Parse webhook URL. Use `env:` or `file:`.
    pub password: Secret,
    /// Size and structure limits for each message.
    #[serde(default)]
    pub limits: MimeLimits,
}

/// The SendGrid Inbound Parse adapter.
#[derive(Debug)]
pub struct SendGrid {
    cfg: SendGridConfig,
}

impl SendGrid {
    /// Validates the configuration.
    pub fn new(cfg: SendGridConfig) -> Result<Self, String> {
        if cfg.username.is_empty() || cfg.username.contains(':') {
            return Err("username must be non-empty and contain no `:`".into());
        }
        Ok(SendGrid { cfg })
    }
}

/// SendGrid's `envelope` field.
#[derive(Deserialize)]
struct SmtpEnvelope {
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    from: Option<String>,
}

impl Adapter for SendGrid {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        crate::auth::check_basic(req, &self.cfg.username, &self.cfg.password)
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        if req.method != http::Method::POST {
            return Err(Rejection::MethodNotAllowed);
        }
        let form = Form::read(req)?;
        let mime = form.bytes("email").ok_or_else(|| {
            Rejection::malformed("expected the raw MIME message (`email`): enable \"POST the raw, full MIME message\"")
        })?;
        let smtp: Option<SmtpEnvelope> = form
            .bytes("envelope")
            .map(serde_json::from_slice)
            .transpose()
            .map_err(|_| Rejection::malformed("`envelope` is not the expected JSON"))?;
        let envelope = Envelope {
            provider: "sendgrid",
            mail_from: smtp.as_ref().and_then(|e| e.from.clone()),
            recipient: smtp.and_then(|e| e.to.into_iter().next()),
        };
        Ok(complaint_from_mime(mime, &envelope, ctx, &self.cfg.limits)?.into_outcome())
    }

    fn max_body_bytes(&self) -> Option<usize> {
        Some(webhook_body_limit(&self.cfg.limits))
    }
}
