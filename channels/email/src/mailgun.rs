//! Mailgun Routes `forward()` to a URL ending in `mime`: the raw message in
//! `body-mime`, signed with the webhook signing key.

use aduan_adapter::{Adapter, Context, Outcome, Rejection, Request, Secret};
use serde::Deserialize;

use crate::form::Form;
use crate::mime::{Envelope, MimeLimits, complaint_from_mime};

/// `kind = "mailgun"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailgunConfig {
    /// The account's HTTP webhook signing key (not the API key). Use `env:` or `file:`.
    pub signing_key: Secret,
    /// How old a request's `timestamp` may be, in seconds, and how far in the
    /// future, to bound replays of a captured request. Default 300.
    #[serde(default = "default_freshness")]
    pub freshness_seconds: u64,
    /// Size and structure limits for each message.
    #[serde(default)]
    pub limits: MimeLimits,
}

fn default_freshness() -> u64 {
    300
}

/// The Mailgun inbound adapter.
#[derive(Debug)]
pub struct Mailgun {
    cfg: MailgunConfig,
}

impl Mailgun {
    /// Validates the configuration.
    pub fn new(cfg: MailgunConfig) -> Result<Self, String> {
        if cfg.freshness_seconds == 0 {
            return Err("freshness_seconds must be positive".into());
        }
        Ok(Mailgun { cfg })
    }

    /// The signature Mailgun sends for `timestamp` and `token`: hex
    /// HMAC-SHA256 of their concatenation under the signing key.
    pub fn signature(key: &[u8], timestamp: &str, token: &str) -> String {
        let mut msg = Vec::with_capacity(timestamp.len() + token.len());
        msg.extend_from_slice(timestamp.as_bytes());
        msg.extend_from_slice(token.as_bytes());
        hex::encode(aduan_adapter::verify::hmac_sha256(key, &msg))
    }
}

impl Adapter for Mailgun {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        if req.method != http::Method::POST {
            return Err(Rejection::MethodNotAllowed);
        }
        let form = Form::read(req).map_err(|_| Rejection::Forbidden("unsigned request"))?;
        let field = |name| form.text(name).filter(|v| !v.is_empty());
        let (Some(timestamp), Some(token), Some(signature)) =
            (field("timestamp"), field("token"), field("signature"))
        else {
            return Err(Rejection::Forbidden("missing signature"));
        };
        let expected = Mailgun::signature(self.cfg.signing_key.expose_bytes(), &timestamp, &token);
        if aduan_adapter::verify::constant_time_eq(
            expected.as_bytes(),
            signature.trim().to_ascii_lowercase().as_bytes(),
        ) {
            Ok(())
        } else {
            Err(Rejection::Forbidden("bad signature"))
        }
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        let form = Form::read(req)?;
        // The clock lives here, not in `verify`: an adapter reads no clock but the context's.
        let timestamp: i64 = form
            .text("timestamp")
            .and_then(|t| t.trim().parse().ok())
            .ok_or(Rejection::Forbidden("bad timestamp"))?;
        let age = ctx.received_at.0.timestamp() - timestamp;
        if age.unsigned_abs() > self.cfg.freshness_seconds {
            return Err(Rejection::Forbidden("stale timestamp"));
        }
        let mime = form.bytes("body-mime").ok_or_else(|| {
            Rejection::malformed(
                "expected the raw MIME form (`body-mime`): the route URL must end in `mime`",
            )
        })?;
        let envelope = Envelope {
            provider: "mailgun",
            mail_from: form.text("sender"),
            recipient: form
                .text("recipient")
                .and_then(|r| r.split(',').next().map(|s| s.trim().to_string())),
        };
        Ok(complaint_from_mime(mime, &envelope, ctx, &self.cfg.limits)?.into_outcome())
    }

    fn max_body_bytes(&self) -> Option<usize> {
        Some(webhook_body_limit(&self.cfg.limits))
    }
}

/// A form or JSON body carries the message encoded (URL-encoding, base64) and
/// sometimes twice (parsed fields beside the raw source).
pub(crate) fn webhook_body_limit(limits: &MimeLimits) -> usize {
    limits
        .max_message_bytes
        .saturating_mul(3)
        .saturating_add(64 * 1024)
}

#[cfg(test)]
mod tests {
    use super::Mailgun;

    #[test]
    fn signature_matches_the_documented_vector() {
        // providers.md section 8a, [computed].
        assert_eq!(
            Mailgun::signature(b"signing-key", "1700000000", &"a".repeat(50)),
            "0a113263b3550600c5b521ccaa6f4b5390af82540dc1cf1ead8d7ebdb9fee55e"
        );
    }
}
