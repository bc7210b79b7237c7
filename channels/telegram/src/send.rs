//! Replies to Telegram chats: `sendMessage` on the Bot API.
//!
//! The [`teloxide::Bot`] holds the token, the API URL and the HTTP client,
//! and the body is teloxide's own `SendMessage` payload. The request is sent
//! and its answer read here rather than through teloxide's requester, for
//! three reasons:
//!
//! - the answer's `error_code` (and the HTTP status) tell a refusal from a
//!   server fault: teloxide drops both, so a `500` and a `400` would read alike;
//! - teloxide waits ten seconds before it reads a `5xx` answer, which holds
//!   the chat's pacing for nothing: the gateway schedules retries itself;
//! - only the sent message's id is read, so a field that teloxide's `Message`
//!   type does not know yet cannot turn a message that was sent into a
//!   failure (and, retried, into a duplicate for the citizen).
//!
//! The bot token is part of every method URL. No error this sender returns
//! carries it: transport errors are rendered without their URL and every
//! message is masked once more before it leaves.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use aduan_adapter::reply::retry_after;
use aduan_adapter::{Outgoing, ReplyRoute, ReplySender, Secret, SendError, Sent};
use serde::Deserialize;
use teloxide::Bot;
use teloxide::payloads::SendMessage;
use teloxide::types::{ChatId, MessageId, ReplyParameters};

/// The most characters one Telegram message carries.
pub const MAX_CHARS: usize = 4096;

/// The sending half of one Telegram bot (`[instances.reply]` of a
/// `kind = "telegram"` instance).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSendConfig {
    /// The bot's token from BotFather.
    pub token: Secret,
    /// The Bot API base URL. Default `https://api.telegram.org`; a local Bot
    /// API server or a test stand-in can be named here.
    #[serde(default)]
    pub api_url: Option<String>,
}

/// Sends replies as the bot, one `sendMessage` per part.
pub struct TelegramSender {
    bot: Bot,
    /// `<api_url>/bot<token>/sendMessage`: it holds the token.
    send_url: reqwest::Url,
}

impl fmt::Debug for TelegramSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramSender")
            .field("api_url", &self.bot.api_url().as_str())
            .finish_non_exhaustive()
    }
}

impl TelegramSender {
    /// Validates `config` and builds the sender on `client` (whose timeout
    /// bounds each send).
    pub fn new(config: TelegramSendConfig, client: reqwest::Client) -> Result<Self, String> {
        let token = config.token.expose();
        if token.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err("`token` must be the bot token from BotFather".into());
        }
        let mut bot = Bot::with_client(token, client);
        if let Some(url) = &config.api_url {
            let url = reqwest::Url::parse(url)
                .ok()
                .filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && !u.cannot_be_a_base()
                        && u.query().is_none()
                })
                .ok_or("`api_url` must be an http(s) URL without a query")?;
            bot = bot.set_api_url(url);
        }
        let mut send_url = bot.api_url();
        send_url
            .path_segments_mut()
            .map_err(|()| "`api_url` must be an http(s) URL without a query")?
            .pop_if_empty()
            .push(&format!("bot{token}"))
            .push("sendMessage");
        Ok(TelegramSender { bot, send_url })
    }

    /// `message` with the token masked, should anything have echoed it.
    fn masked(&self, message: &str) -> String {
        message.replace(self.bot.token(), "***")
    }

    /// `e` as a temporary failure, without the URL that holds the token;
    /// unless it failed to connect, the message may have gone
    /// ([`SendError::transport`]).
    fn network(&self, e: reqwest::Error) -> SendError {
        let timed_out = e.is_timeout();
        let e = e.without_url();
        let mut message = if timed_out {
            format!("timed out: {e}")
        } else {
            e.to_string()
        };
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        SendError::transport(&e, self.masked(&message))
    }
}

#[async_trait::async_trait]
impl ReplySender for TelegramSender {
    fn max_chars(&self, _route: &ReplyRoute) -> usize {
        MAX_CHARS
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let chat: i64 = out.route.to.trim().parse().map_err(|_| {
            SendError::permanent(
                "invalid_recipient",
                "the route's address is not a Telegram chat id",
            )
        })?;
        let text = out.text.ok_or_else(|| {
            SendError::permanent(
                "missing_text",
                "Telegram has no message templates: the reply needs a text",
            )
        })?;
        let mut payload = SendMessage::new(ChatId(chat), text);
        // The first part answers the citizen's message; the rest follow it.
        if out.part == 0 {
            payload.reply_parameters = out
                .route
                .message_id
                .as_deref()
                .and_then(|id| id.parse::<i32>().ok())
                // Sent even if the citizen deleted the message meanwhile.
                .map(|id| ReplyParameters::new(MessageId(id)).allow_sending_without_reply());
        }
        let body = serde_json::to_vec(&payload)
            .map_err(|e| SendError::permanent("encoding", e.to_string()))?;

        let response = self
            .bot
            .client()
            .post(self.send_url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.network(e))?;
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        let bytes = response.bytes().await.map_err(|e| self.network(e))?;
        read_answer(chat, status, wait, &bytes).map_err(|e| SendError {
            message: self.masked(&e.message),
            ..e
        })
    }
}

/// A Bot API answer, read only as far as a send needs.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

/// What a `sendMessage` answer says became of the message sent to `chat`:
/// HTTP `status`, its `Retry-After`, and the body.
fn read_answer(
    chat: i64,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Sent, SendError> {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        if (200..300).contains(&status) {
            // Most likely sent: failing it without a retry cannot duplicate it.
            return Err(SendError::permanent(
                "unexpected_answer",
                format!("HTTP {status} with an answer that is not the Bot API's"),
            ));
        }
        return Err(SendError::from_status(
            status,
            retry_after,
            &format!("HTTP {status} without a Bot API answer"),
        ));
    };
    if answer.ok {
        let result = answer.result.unwrap_or_default();
        let Some(message_id) = result.get("message_id").and_then(|v| v.as_i64()) else {
            return Err(SendError::permanent(
                "unexpected_answer",
                "the Bot API accepted the message but named no message id",
            ));
        };
        let chat = result
            .pointer("/chat/id")
            .and_then(|v| v.as_i64())
            .unwrap_or(chat);
        return Ok(Sent::new(format!("{chat}:{message_id}")));
    }

    let code = answer.error_code.unwrap_or(status);
    let description = answer
        .description
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("error {code}"));
    let parameters = answer.parameters.unwrap_or(Parameters {
        retry_after: None,
        migrate_to_chat_id: None,
    });
    if let Some(secs) = parameters.retry_after {
        return Err(SendError::temporary(
            format!("telegram_{code}"),
            description,
            Some(Duration::from_secs(secs)),
        ));
    }
    if let Some(to) = parameters.migrate_to_chat_id {
        return Err(SendError::permanent(
            "chat_migrated",
            format!("{description} (the group is now the supergroup {to})"),
        ));
    }
    let lower = description.to_ascii_lowercase();
    Err(match code {
        // Blocked, deactivated, kicked, or never started: no message reaches them.
        403 => SendError::opted_out("blocked", description),
        400 if lower.contains("chat not found") => SendError::opted_out("blocked", description),
        400 if lower.contains("message is too long") => {
            SendError::permanent("too_long", description)
        }
        401 => SendError::permanent("unauthorized", "the Bot API refused the bot token"),
        408 | 425 | 429 => {
            SendError::temporary(format!("telegram_{code}"), description, retry_after)
        }
        c if c >= 500 => SendError::temporary(format!("telegram_{code}"), description, retry_after),
        _ => SendError::permanent(format!("telegram_{code}"), description),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_adapter::Retry;

    fn read(status: u16, body: &str) -> Result<Sent, SendError> {
        read_answer(-1001234567890, status, None, body.as_bytes())
    }

    #[test]
    fn a_sent_message_is_named_by_chat_and_id() {
        let sent = read(
            200,
            r#"{"ok":true,"result":{"message_id":77,"chat":{"id":-1001234567890,"type":"supergroup"},"date":1732000000,"text":"Terima kasih"}}"#,
        );
        assert_eq!(
            sent.map(|s| s.provider_message_id).as_deref(),
            Ok("-1001234567890:77")
        );
    }

    #[test]
    fn an_accepted_message_without_an_id_is_not_retried() {
        let e = read(200, r#"{"ok":true,"result":true}"#).unwrap_err();
        assert_eq!(e.code, "unexpected_answer");
        assert!(e.is_permanent());
        let e = read(200, "<html>ok</html>").unwrap_err();
        assert_eq!(e.code, "unexpected_answer");
        assert!(e.is_permanent());
    }

    #[test]
    fn api_errors_are_read_by_their_code() {
        let e = read(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
        )
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.opt_out), ("blocked", true));
        let e = read(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.opt_out, e.is_permanent()),
            ("too_long", false, true)
        );
        let e = read(
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "unauthorized");
        assert!(e.is_permanent());
        let e = read(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009876543210}}"#).unwrap_err();
        assert_eq!(e.code, "chat_migrated");
        assert!(e.message.contains("-1009876543210"));
        let e = read(502, "<html>Bad Gateway</html>").unwrap_err();
        assert_eq!((e.code.as_str(), e.retry), ("http_502", Retry::Later(None)));
    }

    #[test]
    fn a_server_error_with_an_api_answer_is_temporary() {
        let e = read(
            500,
            r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.retry),
            ("telegram_500", Retry::Later(None))
        );
    }
}
