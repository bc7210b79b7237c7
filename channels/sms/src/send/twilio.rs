//! Replies through Twilio's Messages API:
//! `POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json` with
//! HTTP Basic (Account SID and Auth Token) and a form of `To`, `From` or
//! `MessagingServiceSid`, `Body` and `StatusCallback` (the configured URL
//! with our reference in its query: `?reply_id=…&part=…`).
//!
//! A route to `whatsapp:+62…` is WhatsApp through Twilio: free-form `Body`
//! only within 24 hours of the citizen's last message; outside it (or for a
//! reply without text) an approved Content template goes instead, the
//! reply's own (`template.name` is its Content SID, `HX…`, and its params
//! the `ContentVariables` `{"1": …, "2": …}`) or else the instance's
//! `default_content_sid`, and without either the reply fails with
//! `window_closed` before anything is sent. Any other route is an SMS to an
//! E.164 number, counted into parts first (see [`super::segments`]).

use aduan_adapter::{Outgoing, ReplyRoute, ReplySender, Secret, SendError, Sent, Template};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::{Answer, Masks};

/// Twilio's API host, the default `base_url`.
pub const TWILIO_API_URL: &str = "https://api.twilio.com";

/// The longest WhatsApp `Body` Twilio takes; longer replies are split by
/// the gateway.
pub const WHATSAPP_MAX_CHARS: usize = 1600;

/// Hours after the citizen's last message during which WhatsApp free-form text may go.
pub const WINDOW_HOURS: u64 = 24;

/// The address prefix of WhatsApp through Twilio.
const WHATSAPP: &str = "whatsapp:";

/// 21610: the recipient texted STOP (unsubscribed).
const UNSUBSCRIBED: i64 = 21610;

/// 21211 invalid `To` number, 21614 not a mobile number.
const INVALID_RECIPIENT: [i64; 2] = [21211, 21614];

/// 63016: free-form WhatsApp message outside the 24-hour window.
const OUTSIDE_WINDOW: i64 = 63016;

/// 20429 too many requests, 63017 the account's WhatsApp rate limit.
const THROTTLED: [i64; 2] = [20429, 63017];

fn default_base_url() -> String {
    TWILIO_API_URL.to_string()
}

/// The sending settings of a Twilio instance (`[instances.reply]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSendConfig {
    /// The account's SID, `AC…`.
    pub account_sid: String,
    /// The account's Auth Token (`env:TWILIO_AUTH_TOKEN` or `file:/path`).
    pub auth_token: Secret,
    /// The number replies come from (`+6281100017080`; for WhatsApp routes
    /// it is sent as `whatsapp:+62…`). Exactly one of `from` and
    /// `messaging_service_sid`.
    #[serde(default)]
    pub from: Option<String>,
    /// A Messaging Service (`MG…`) that picks the sender.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Default `https://api.twilio.com`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The public URL of this instance's Twilio webhook, sent as
    /// `StatusCallback` so that delivery reports come back to it.
    #[serde(default)]
    pub status_callback: Option<String>,
    /// The Content template (`HX…`) sent on WhatsApp outside the 24-hour
    /// window when a reply brings none.
    #[serde(default)]
    pub default_content_sid: Option<String>,
    /// The most SMS parts a reply may take; longer ones fail with
    /// `too_long`. Default 3.
    #[serde(default = "super::default_max_parts")]
    pub max_parts: usize,
}

/// Who a message is from.
#[derive(Debug)]
enum From {
    Number(String),
    Service(String),
}

/// Sends replies of one Twilio account.
#[derive(Debug)]
pub struct TwilioSender {
    client: reqwest::Client,
    url: Url,
    /// `Basic …`, marked sensitive.
    auth: HeaderValue,
    from: From,
    status_callback: Option<String>,
    default_content_sid: Option<String>,
    max_parts: usize,
    masks: Masks,
}

impl TwilioSender {
    /// Checks the settings and builds the sender around the gateway's client.
    pub fn new(config: TwilioSendConfig, client: reqwest::Client) -> Result<Self, String> {
        use base64::Engine as _;
        super::check_id("account_sid", &config.account_sid)?;
        let from = match (config.from, config.messaging_service_sid) {
            (Some(from), None) => {
                let number = from.strip_prefix(WHATSAPP).unwrap_or(&from).trim();
                if super::e164_digits(number).is_none() {
                    return Err(format!("from `{from}` is not an E.164 number"));
                }
                From::Number(number.to_string())
            }
            (None, Some(sid)) => {
                super::check_id("messaging_service_sid", &sid)?;
                From::Service(sid)
            }
            _ => {
                return Err("set exactly one of from and messaging_service_sid".to_string());
            }
        };
        if let Some(sid) = &config.default_content_sid {
            check_content_sid("default_content_sid", sid)?;
        }
        if let Some(url) = &config.status_callback {
            super::base_url("status_callback", url)?;
        }
        let base = super::base_url("base_url", &config.base_url)?;
        let url = super::join(
            &base,
            &[
                "2010-04-01",
                "Accounts",
                &config.account_sid,
                "Messages.json",
            ],
        );
        if config.auth_token.expose().trim().is_empty() {
            return Err("auth_token is empty".to_string());
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            config.account_sid,
            config.auth_token.expose()
        ));
        let mut auth = HeaderValue::from_str(&format!("Basic {basic}"))
            .map_err(|_| "auth_token has characters a header cannot carry".to_string())?;
        auth.set_sensitive(true);
        let mut masks = Masks::default();
        masks.add(config.auth_token.expose());
        masks.add(&basic);
        Ok(TwilioSender {
            client,
            url,
            auth,
            from,
            status_callback: config.status_callback,
            default_content_sid: config.default_content_sid,
            max_parts: super::check_max_parts(config.max_parts)?,
            masks,
        })
    }

    /// The form for `out`, or why nothing may be sent.
    fn form(&self, out: &Outgoing<'_>) -> Result<Vec<(&'static str, String)>, SendError> {
        let to = out.route.to.trim();
        let (whatsapp, number) = match to.strip_prefix(WHATSAPP) {
            Some(number) => (true, number),
            None => (false, to),
        };
        if super::e164_digits(number).is_none() {
            return Err(super::not_a_number());
        }
        let mut form = vec![("To", to.to_string())];
        match &self.from {
            From::Number(n) if whatsapp => form.push(("From", format!("{WHATSAPP}{n}"))),
            From::Number(n) => form.push(("From", n.clone())),
            From::Service(sid) => form.push(("MessagingServiceSid", sid.clone())),
        }
        if whatsapp {
            self.whatsapp_content(out, &mut form)?;
        } else {
            let (text, _) = super::sms_text(out, self.max_parts)?;
            form.push(("Body", text.to_string()));
        }
        if let Some(url) = &self.status_callback {
            form.push(("StatusCallback", status_callback(url, out)));
        }
        Ok(form)
    }

    /// The text or the template of a WhatsApp message, by the window.
    fn whatsapp_content(
        &self,
        out: &Outgoing<'_>,
        form: &mut Vec<(&'static str, String)>,
    ) -> Result<(), SendError> {
        let text = out.text.filter(|t| !t.trim().is_empty());
        if let (true, Some(text)) = (super::within_hours(out, WINDOW_HOURS), text) {
            form.push(("Body", text.to_string()));
            return Ok(());
        }
        let (sid, params): (&str, &[String]) = match (out.template, &self.default_content_sid) {
            (Some(t), _) => (content_sid_of(t)?, &t.params),
            (None, Some(sid)) => (sid, &[]),
            (None, None) => {
                return Err(if text.is_none() {
                    SendError::permanent("missing_text", "the reply has neither text nor template")
                } else if out.last_inbound_at.is_none() {
                    SendError::window_closed(
                        "the citizen's last message is not known and no Content template is configured",
                    )
                } else {
                    SendError::window_closed(
                        "more than 24 hours since the citizen's last message and no Content template is configured",
                    )
                });
            }
        };
        if out.part > 0 {
            // The template went with the first part and stands for the
            // whole reply; the rest of the text may not follow.
            return Err(SendError::window_closed(
                "outside the 24-hour window only the template, sent with the first part, may go",
            ));
        }
        form.push(("ContentSid", sid.to_string()));
        if !params.is_empty() {
            let variables: serde_json::Map<String, Value> = params
                .iter()
                .enumerate()
                .map(|(i, p)| ((i + 1).to_string(), Value::String(p.clone())))
                .collect();
            form.push(("ContentVariables", Value::Object(variables).to_string()));
        }
        Ok(())
    }

    /// What an answer means.
    fn read(&self, answer: &Answer, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        if answer.is_success() {
            return serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|v| v.get("sid").and_then(Value::as_str).map(str::to_string))
                .filter(|sid| !sid.is_empty())
                .map(Sent::new)
                .ok_or_else(|| {
                    super::bad_response("Twilio", answer.status, "without a message sid")
                });
        }
        let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
        let code = body.as_ref().and_then(|b| match b.get("code") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        });
        let Some(code) = code else {
            return Err(answer.by_status("Twilio"));
        };
        let described = body
            .as_ref()
            .and_then(|b| b.get("message"))
            .and_then(Value::as_str)
            .filter(|m| !m.trim().is_empty())
            .map_or_else(
                || format!("Twilio error {code} (HTTP {})", answer.status),
                |m| format!("Twilio error {code}: {m}"),
            );
        let message = self.masks.clean(&described, out.text);
        Err(if code == UNSUBSCRIBED {
            SendError::opted_out("opted_out", message)
        } else if INVALID_RECIPIENT.contains(&code) {
            SendError::opted_out("invalid_recipient", message)
        } else if code == OUTSIDE_WINDOW {
            SendError::window_closed(message)
        } else if THROTTLED.contains(&code) || answer.is_temporary() {
            SendError::temporary(code.to_string(), message, answer.retry_after())
        } else {
            SendError::permanent(code.to_string(), message)
        })
    }
}

#[async_trait::async_trait]
impl ReplySender for TwilioSender {
    fn max_chars(&self, route: &ReplyRoute) -> usize {
        if route.to.starts_with(WHATSAPP) {
            WHATSAPP_MAX_CHARS
        } else {
            super::SMS_MAX_CHARS
        }
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let pairs = self.form(out)?;
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let request = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(super::form(&borrowed));
        let answer = super::exchange(request, "Twilio").await?;
        self.read(&answer, out)
    }
}

/// The per-message `StatusCallback`: the configured URL (which has no
/// query) with our reference as `reply_id` and `part`, so that the
/// message's status callbacks name their reply even when its sid never
/// reached us. Twilio signs the URL it calls, query included, and the
/// webhook checks the signature over the URL as called.
fn status_callback(url: &str, out: &Outgoing<'_>) -> String {
    match out.reference() {
        Some(r) => format!(
            "{url}?{}",
            super::form(&[("reply_id", &r.reply_id), ("part", &r.part.to_string())])
        ),
        None => url.to_string(),
    }
}

/// The Content SID a reply's template names, or a permanent
/// `invalid_template` when it names none (a WhatsApp Cloud API template
/// name, say): Twilio would only refuse it.
fn content_sid_of(t: &Template) -> Result<&str, SendError> {
    check_content_sid("template.name", &t.name).map_err(|_| {
        SendError::permanent(
            "invalid_template",
            "the reply's template name is not a Twilio Content SID (HX…)",
        )
    })?;
    Ok(t.name.as_str())
}

fn check_content_sid(key: &str, sid: &str) -> Result<(), String> {
    super::check_id(key, sid)?;
    if sid.starts_with("HX") {
        Ok(())
    } else {
        Err(format!("{key} `{sid}` is not a Content SID (HX…)"))
    }
}
