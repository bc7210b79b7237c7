//! Replies through Infobip's SMS API: `POST {base_url}/sms/2/text/advanced`
//! with `Authorization: App <api key>` and the JSON
//! `{"messages":[{"destinations":[{"to":"62812…"}],"from":…,"text":…,"notifyUrl":…,"callbackData":…}]}`,
//! `callbackData` being our reference (`<reply_id>.<part>`), which Infobip
//! echoes in the message's delivery reports.
//!
//! The answer holds each message's `messageId` and `status`: the groups
//! `PENDING` and `ACCEPTED` mean it was taken; `REJECTED` (or any other
//! group) is a permanent failure with the status's name as its code.

use aduan_adapter::{Outgoing, ReplyRoute, ReplySender, Secret, SendError, Sent};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Answer, Masks};

/// The sending settings of an Infobip instance (`[instances.reply]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfobipSendConfig {
    /// An API key with the SMS scope (`env:INFOBIP_API_KEY` or `file:/path`).
    pub api_key: Secret,
    /// The account's own API host, e.g. `https://xyz123.api.infobip.com`
    /// (Infobip gives every account its own).
    pub base_url: String,
    /// The sender: a number or an alphanumeric sender id; without it, the
    /// account's default.
    #[serde(default)]
    pub from: Option<String>,
    /// The public URL of this instance's Infobip webhook, for delivery reports.
    #[serde(default)]
    pub notify_url: Option<String>,
    /// The most SMS parts a reply may take; longer ones fail with
    /// `too_long`. Default 3.
    #[serde(default = "super::default_max_parts")]
    pub max_parts: usize,
}

/// Sends replies of one Infobip account.
#[derive(Debug)]
pub struct InfobipSender {
    client: reqwest::Client,
    url: Url,
    /// `App <key>`, marked sensitive.
    auth: HeaderValue,
    from: Option<String>,
    notify_url: Option<String>,
    max_parts: usize,
    masks: Masks,
}

impl InfobipSender {
    /// Checks the settings and builds the sender around the gateway's client.
    pub fn new(config: InfobipSendConfig, client: reqwest::Client) -> Result<Self, String> {
        let base = super::base_url("base_url", &config.base_url)?;
        if config.api_key.expose().trim().is_empty() {
            return Err("api_key is empty".to_string());
        }
        let mut auth = HeaderValue::from_str(&format!("App {}", config.api_key.expose().trim()))
            .map_err(|_| "api_key has characters a header cannot carry".to_string())?;
        auth.set_sensitive(true);
        if let Some(url) = &config.notify_url {
            super::base_url("notify_url", url)?;
        }
        let from = config
            .from
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty());
        let mut masks = Masks::default();
        masks.add(config.api_key.expose());
        Ok(InfobipSender {
            client,
            url: super::join(&base, &["sms", "2", "text", "advanced"]),
            auth,
            from,
            notify_url: config.notify_url,
            max_parts: super::check_max_parts(config.max_parts)?,
            masks,
        })
    }

    /// The body for `out`, or why nothing may be sent.
    fn body(&self, out: &Outgoing<'_>) -> Result<Value, SendError> {
        let to = super::e164_digits(out.route.to.trim()).ok_or_else(super::not_a_number)?;
        let (text, _) = super::sms_text(out, self.max_parts)?;
        let mut message = json!({
            "destinations": [{"to": to}],
            "text": text,
        });
        if let Some(from) = &self.from {
            message["from"] = json!(from);
        }
        if let Some(url) = &self.notify_url {
            message["notifyUrl"] = json!(url);
        }
        // Echoed in the message's delivery reports.
        if let Some(reference) = out.reference() {
            message["callbackData"] = json!(reference.to_string());
        }
        Ok(json!({ "messages": [message] }))
    }

    /// What an answer means.
    fn read(&self, answer: &Answer, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
        if !answer.is_success() {
            // `{"requestError":{"serviceException":{"messageId","text"}}}`
            let exception = body
                .as_ref()
                .and_then(|b| b.pointer("/requestError/serviceException"));
            let code = exception
                .and_then(|e| e.get("messageId"))
                .and_then(Value::as_str)
                .filter(|c| super::check_id("code", c).is_ok());
            let Some(code) = code else {
                return Err(answer.by_status("Infobip"));
            };
            let text = exception
                .and_then(|e| e.get("text"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let message = self.masks.clean(
                &format!("Infobip {code} (HTTP {}): {text}", answer.status),
                out.text,
            );
            return Err(if answer.is_temporary() {
                SendError::temporary(code, message, answer.retry_after())
            } else {
                SendError::permanent(code, message)
            });
        }
        let first = body
            .as_ref()
            .and_then(|b| b.get("messages"))
            .and_then(Value::as_array)
            .and_then(|m| m.first());
        let Some(first) = first else {
            return Err(super::bad_response(
                "Infobip",
                answer.status,
                "without messages[]",
            ));
        };
        let status = first.get("status");
        let group = status
            .and_then(|s| s.get("groupName"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matches!(group, "PENDING" | "ACCEPTED") {
            let name = status
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .filter(|n| super::check_id("name", n).is_ok())
                .unwrap_or(if group.is_empty() { "unknown" } else { group });
            let description = status
                .and_then(|s| s.get("description"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let message = self.masks.clean(
                &format!("Infobip status {name} ({group}): {description}"),
                out.text,
            );
            return Err(SendError::permanent(name, message));
        }
        match first.get("messageId") {
            Some(Value::String(id)) if !id.is_empty() => Ok(Sent::new(id.clone())),
            Some(Value::Number(n)) => Ok(Sent::new(n.to_string())),
            _ => Err(super::bad_response(
                "Infobip",
                answer.status,
                "without a messageId",
            )),
        }
    }
}

#[async_trait::async_trait]
impl ReplySender for InfobipSender {
    fn max_chars(&self, _route: &ReplyRoute) -> usize {
        super::SMS_MAX_CHARS
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let body = self.body(out)?;
        let request = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .json(&body);
        let answer = super::exchange(request, "Infobip").await?;
        self.read(&answer, out)
    }
}
