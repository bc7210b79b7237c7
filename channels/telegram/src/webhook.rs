//! The webhook: `POST /webhooks/telegram/{instance}` with one update per request.

use aduan_adapter::{Adapter, Context, Outcome, Raw, Rejection, Request, Secret};

use crate::normalize::{Normalized, Normalizer};
use crate::update::Update;

/// The header Telegram fills with the `secret_token` given to `setWebhook`.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// A Telegram bot receiving updates by webhook.
pub struct Telegram {
    /// `None` when the instance turned the check off.
    secret_token: Option<Secret>,
    normalizer: Normalizer,
}

impl Telegram {
    /// `secret_token` is `None` only when the configuration turned the check off.
    pub(crate) fn new(secret_token: Option<Secret>, normalizer: Normalizer) -> Self {
        Telegram {
            secret_token,
            normalizer,
        }
    }
}

impl Adapter for Telegram {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        let Some(secret) = &self.secret_token else {
            return Ok(());
        };
        match req.headers.get(SECRET_HEADER) {
            Some(token) if secret.matches(token.as_bytes()) => Ok(()),
            Some(_) => Err(Rejection::Unauthorized("wrong secret token")),
            None => Err(Rejection::Unauthorized("missing secret token")),
        }
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        if req.method != http::Method::POST {
            return Err(Rejection::MethodNotAllowed);
        }
        // Telegram posts every update as `application/json`.
        req.require_json()?;
        let update = parse_update(req.body)?;
        let raw = ctx
            .keep_raw
            .then(|| Raw::from_bytes(req.content_type(), req.body));
        Ok(match self.normalizer.update(&update, ctx, raw)? {
            Normalized::Complaint(c) => Outcome::complaints(vec![*c]),
            Normalized::Ignored(reason) => Outcome::ignored(reason),
        })
    }
}

/// Decodes an update, with a reason that names the problem but never echoes the input.
pub(crate) fn parse_update(body: &[u8]) -> Result<Update, Rejection> {
    serde_json::from_slice(body).map_err(|e| Rejection::malformed(json_reason(&e)))
}

/// serde's messages may quote the offending value (a name, a phone number):
/// keep only the ones that name a field, and the position.
pub(crate) fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let head = msg.split(" at line ").next().unwrap_or("");
    match e.classify() {
        serde_json::error::Category::Data if head.starts_with("missing field") => {
            format!("{head} at line {} column {}", e.line(), e.column())
        }
        serde_json::error::Category::Data => format!(
            "unexpected value at line {} column {}",
            e.line(),
            e.column()
        ),
        serde_json::error::Category::Eof => "truncated JSON".into(),
        _ => format!("malformed JSON at line {} column {}", e.line(), e.column()),
    }
}
