//! Replies through the WhatsApp Business Cloud API:
//! `POST /{api_version}/{phone_number_id}/messages`.
//!
//! Free-form text goes only within 24 hours of the citizen's last message;
//! outside that window, or for a reply without text, an approved template
//! goes instead (the reply's own, else the instance's default), and without
//! a template the reply fails with `window_closed` before anything is sent.
//!
//! Every message carries our reference (`<reply_id>.<part>`) as
//! `biz_opaque_callback_data`, which WhatsApp echoes in its status webhooks:
//! a report then finds its reply even when the send's answer was lost.

use aduan_adapter::{Outgoing, ReplyRoute, ReplySender, SendError, Sent, Template};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Answer, Graph, GraphError};

/// The longest WhatsApp text message.
pub const MAX_CHARS: usize = 4096;

/// Hours after the citizen's last message during which free-form text may go.
pub const WINDOW_HOURS: u64 = 24;

/// Graph codes worth another attempt: throttling (4, 80007, 130429, 131048,
/// 131056 per recipient pair), service trouble (133016, 131053 media upload).
const RETRYABLE: [i64; 7] = [4, 80007, 130429, 131048, 131056, 133016, 131053];

/// Graph codes of a recipient that cannot be reached on WhatsApp: 131026
/// undeliverable (no WhatsApp account, old client), 131021 recipient is the
/// sender, 1013 and 131030 not a valid or allowed number.
const INVALID_RECIPIENT: [i64; 4] = [131026, 131021, 1013, 131030];

/// Graph code of a free-form message outside the customer service window.
const RE_ENGAGEMENT: i64 = 131047;

/// The sending settings of a WhatsApp instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppSendConfig {
    /// A system user's access token with `whatsapp_business_messaging`. Give
    /// it as `env:NAME` or `file:/path`.
    pub access_token: aduan_adapter::Secret,
    /// The business number's id (WhatsApp Manager, API setup), not the number.
    pub phone_number_id: String,
    /// Default `https://graph.facebook.com`.
    #[serde(default = "super::default_base_url")]
    pub base_url: String,
    /// Default `v21.0`.
    #[serde(default = "super::default_api_version")]
    pub api_version: String,
    /// The template sent outside the 24-hour window when a reply brings
    /// none. Without it, such replies fail with `window_closed`.
    #[serde(default)]
    pub default_template: Option<Template>,
}

/// Sends replies of one WhatsApp business number.
#[derive(Debug)]
pub struct WhatsAppSender {
    graph: Graph,
    phone_number_id: String,
    default_template: Option<Template>,
}

impl WhatsAppSender {
    /// Checks the settings and builds the sender around the gateway's client.
    pub fn new(config: WhatsAppSendConfig, client: reqwest::Client) -> Result<Self, String> {
        super::check_segment("phone_number_id", &config.phone_number_id)?;
        if let Some(t) = &config.default_template {
            check_template("default_template", t)?;
        }
        Ok(WhatsAppSender {
            graph: Graph::new(
                client,
                &config.base_url,
                &config.api_version,
                &config.access_token,
            )?,
            phone_number_id: config.phone_number_id,
            default_template: config.default_template,
        })
    }

    /// The request body for `out`, with our reference in
    /// `biz_opaque_callback_data` (WhatsApp echoes it in the message's
    /// status webhooks), or why nothing may be sent.
    fn body(&self, out: &Outgoing<'_>) -> Result<Value, SendError> {
        let mut body = self.content(out)?;
        if let Some(reference) = out.reference() {
            body["biz_opaque_callback_data"] = json!(reference.to_string());
        }
        Ok(body)
    }

    /// The message itself: a text within the window, else a template.
    fn content(&self, out: &Outgoing<'_>) -> Result<Value, SendError> {
        let to = out.route.to.as_str();
        if to.is_empty() {
            return Err(SendError::permanent(
                "invalid_recipient",
                "the route has no WhatsApp id",
            ));
        }
        let open = super::within_hours(out, WINDOW_HOURS);
        if let (true, Some(text)) = (open, out.text) {
            let mut body = json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"body": text},
            });
            // Only the first part answers the citizen's message; the rest follow it.
            if let (Some(id), 0) = (&out.route.message_id, out.part) {
                body["context"] = json!({"message_id": id});
            }
            return Ok(body);
        }
        let Some(template) = out.template.or(self.default_template.as_ref()) else {
            return Err(if out.text.is_none() {
                SendError::permanent("missing_text", "the reply has neither text nor template")
            } else if out.last_inbound_at.is_none() {
                SendError::window_closed(
                    "the citizen's last message is not known and no template is configured",
                )
            } else {
                SendError::window_closed(
                    "more than 24 hours since the citizen's last message and no template is configured",
                )
            });
        };
        if out.part > 0 {
            // The template went with the first part and stands for the
            // whole reply; the rest of the text may not follow.
            return Err(SendError::window_closed(
                "outside the 24-hour window only the template, sent with the first part, may go",
            ));
        }
        let mut t = json!({
            "name": template.name,
            "language": {"code": template.language},
        });
        if !template.params.is_empty() {
            let parameters: Vec<Value> = template
                .params
                .iter()
                .map(|p| json!({"type": "text", "text": p}))
                .collect();
            t["components"] = json!([{"type": "body", "parameters": parameters}]);
        }
        Ok(json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": t,
        }))
    }

    /// What an answer means.
    fn read(&self, answer: &Answer, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        if answer.is_success() {
            return serde_json::from_slice::<Accepted>(&answer.body)
                .ok()
                .and_then(|a| a.messages.into_iter().next())
                .map(|m| m.id)
                .filter(|id| !id.is_empty())
                .map(Sent::new)
                .ok_or_else(|| {
                    SendError::temporary(
                        "bad_response",
                        format!(
                            "WhatsApp answered HTTP {} without a message id",
                            answer.status
                        ),
                        None,
                    )
                });
        }
        Err(match answer.graph_error() {
            Some(e @ GraphError { code: Some(_), .. }) => self.classify(&e, answer, out),
            _ => answer.by_status("WhatsApp"),
        })
    }

    fn classify(&self, e: &GraphError, answer: &Answer, out: &Outgoing<'_>) -> SendError {
        let code = e.code.unwrap_or_default();
        let message = self.graph.clean(&e.describe(), out.text);
        if code == RE_ENGAGEMENT {
            SendError::window_closed(message)
        } else if INVALID_RECIPIENT.contains(&code) {
            SendError::opted_out("invalid_recipient", message)
        } else if RETRYABLE.contains(&code)
            || matches!(answer.status, 408 | 429)
            || answer.status >= 500
        {
            SendError::temporary(code.to_string(), message, answer.retry_after())
        } else {
            SendError::permanent(code.to_string(), message)
        }
    }
}

#[async_trait::async_trait]
impl ReplySender for WhatsAppSender {
    fn max_chars(&self, _route: &ReplyRoute) -> usize {
        MAX_CHARS
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let body = self.body(out)?;
        let url = self.graph.url(&[&self.phone_number_id, "messages"]);
        let answer = self.graph.post(url, &body).await?;
        self.read(&answer, out)
    }
}

fn check_template(name: &str, t: &Template) -> Result<(), String> {
    if t.name.trim().is_empty() || t.language.trim().is_empty() {
        return Err(format!("{name} needs a name and a language"));
    }
    Ok(())
}

/// A successful send: `{"messages":[{"id":"wamid…"}]}`.
#[derive(Deserialize)]
struct Accepted {
    #[serde(default)]
    messages: Vec<AcceptedMessage>,
}

#[derive(Deserialize)]
struct AcceptedMessage {
    id: String,
}
