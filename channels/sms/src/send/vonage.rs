//! Replies through the Vonage (Nexmo) SMS API: `POST {base_url}/sms/json`
//! with the form `api_key`, `api_secret`, `from`, `to` (digits, no `+`),
//! `text`, `type=unicode` when the text is not GSM-7, `status-report-req=1`,
//! the `callback` for delivery receipts and our `client-ref`.
//!
//! Vonage answers `200` whatever became of the message; it is sent when
//! every `messages[].status` is `"0"`. A long text is split by Vonage into
//! parts, each with its own `message-id` and its own delivery receipt: the
//! id of the **last** part is the message's id (its receipt tells the whole
//! message reached the handset) and the others are its `earlier_ids`, so
//! that every part's receipt finds the reply. Every request carries our
//! reference (`<reply_id>.<part>`) as `client-ref`, which Vonage echoes in
//! each receipt.

use aduan_adapter::{Outgoing, ReplyRoute, ReplySender, Secret, SendError, Sent};
use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::Value;

use super::{Answer, Encoding, Masks};

/// Vonage's SMS API host, the default `base_url`.
pub const VONAGE_API_URL: &str = "https://rest.nexmo.com";

/// The status of a message throttled (more than 30 requests a second).
const THROTTLED: &str = "1";

fn default_base_url() -> String {
    VONAGE_API_URL.to_string()
}

/// The sending settings of a Vonage instance (`[instances.reply]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VonageSendConfig {
    /// The account's API key.
    pub api_key: String,
    /// The account's API secret (`env:VONAGE_API_SECRET` or `file:/path`).
    pub api_secret: Secret,
    /// The sender: a number (`6281100017080`, a leading `+` is dropped) or
    /// an alphanumeric sender id where the operator allows one.
    pub from: String,
    /// Default `https://rest.nexmo.com`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The public URL of this instance's Vonage webhook, for delivery
    /// receipts; without it Vonage uses the account's default.
    #[serde(default)]
    pub callback: Option<String>,
    /// The most SMS parts a reply may take; longer ones fail with
    /// `too_long`. Default 3.
    #[serde(default = "super::default_max_parts")]
    pub max_parts: usize,
}

/// Sends replies of one Vonage account.
#[derive(Debug)]
pub struct VonageSender {
    client: reqwest::Client,
    url: Url,
    api_key: String,
    api_secret: Secret,
    from: String,
    callback: Option<String>,
    max_parts: usize,
    masks: Masks,
}

impl VonageSender {
    /// Checks the settings and builds the sender around the gateway's client.
    pub fn new(config: VonageSendConfig, client: reqwest::Client) -> Result<Self, String> {
        if config.api_key.trim().is_empty() {
            return Err("api_key is empty".to_string());
        }
        if config.api_secret.expose().trim().is_empty() {
            return Err("api_secret is empty".to_string());
        }
        let from = config.from.trim();
        let from = match from.strip_prefix('+') {
            Some(digits) if super::e164_digits(from).is_some() => digits,
            _ => from,
        };
        if from.is_empty() || from.chars().count() > 15 {
            return Err(
                "from must be a number or a sender id of at most 15 characters".to_string(),
            );
        }
        if let Some(url) = &config.callback {
            super::base_url("callback", url)?;
        }
        let base = super::base_url("base_url", &config.base_url)?;
        let mut masks = Masks::default();
        masks.add(config.api_secret.expose());
        Ok(VonageSender {
            client,
            url: super::join(&base, &["sms", "json"]),
            api_key: config.api_key,
            api_secret: config.api_secret,
            from: from.to_string(),
            callback: config.callback,
            max_parts: super::check_max_parts(config.max_parts)?,
            masks,
        })
    }

    /// The form for `out`, or why nothing may be sent.
    fn form(&self, out: &Outgoing<'_>) -> Result<String, SendError> {
        let to = super::e164_digits(out.route.to.trim()).ok_or_else(super::not_a_number)?;
        let (text, segments) = super::sms_text(out, self.max_parts)?;
        let mut pairs = vec![
            ("api_key", self.api_key.as_str()),
            ("api_secret", self.api_secret.expose()),
            ("from", self.from.as_str()),
            ("to", to),
            ("text", text),
        ];
        if segments.encoding == Encoding::Ucs2 {
            pairs.push(("type", "unicode"));
        }
        pairs.push(("status-report-req", "1"));
        if let Some(url) = &self.callback {
            pairs.push(("callback", url));
        }
        // Echoed in every part's delivery receipt.
        let reference = out.reference().map(|r| r.to_string());
        if let Some(reference) = &reference {
            pairs.push(("client-ref", reference));
        }
        Ok(super::form(&pairs))
    }

    /// What an answer means.
    fn read(&self, answer: &Answer, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        if !answer.is_success() {
            return Err(answer.by_status("Vonage"));
        }
        let messages: Vec<Message> = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("messages").and_then(Value::as_array).cloned())
            .map(|list| list.iter().map(Message::of).collect())
            .unwrap_or_default();
        if messages.is_empty() {
            return Err(super::bad_response(
                "Vonage",
                answer.status,
                "without messages[]",
            ));
        }
        let refused = messages.iter().find(|m| m.status != "0");
        let Some(refused) = refused else {
            let mut ids: Vec<String> = messages.iter().filter_map(|m| m.id.clone()).collect();
            let Some(last) = ids.pop() else {
                return Err(super::bad_response(
                    "Vonage",
                    answer.status,
                    "without a message-id",
                ));
            };
            return Ok(Sent {
                provider_message_id: last,
                earlier_ids: ids,
            });
        };
        let described = match &refused.error_text {
            Some(t) => format!("Vonage status {}: {t}", refused.status),
            None => format!("Vonage status {}", refused.status),
        };
        let message = self.masks.clean(&described, out.text);
        let accepted = messages.iter().any(|m| m.status == "0");
        Err(if refused.status == THROTTLED && !accepted {
            SendError::temporary(THROTTLED, message, answer.retry_after())
        } else if accepted {
            // Some parts went: another attempt would send them again.
            SendError::permanent(
                refused.status.clone(),
                format!("{message} (other parts of the message were accepted)"),
            )
        } else {
            SendError::permanent(refused.status.clone(), message)
        })
    }
}

/// One entry of `messages[]`: `status` and `message-id` come as strings,
/// numbers taken too.
struct Message {
    status: String,
    id: Option<String>,
    error_text: Option<String>,
}

impl Message {
    fn of(v: &Value) -> Message {
        let text = |name: &str| match v.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Message {
            status: text("status").unwrap_or_else(|| "unknown".to_string()),
            id: text("message-id"),
            error_text: text("error-text"),
        }
    }
}

#[async_trait::async_trait]
impl ReplySender for VonageSender {
    fn max_chars(&self, _route: &ReplyRoute) -> usize {
        super::SMS_MAX_CHARS
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let body = self.form(out)?;
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        let answer = super::exchange(request, "Vonage").await?;
        self.read(&answer, out)
    }
}
