//! Replies through the Messenger Platform's Send API, for Facebook Pages and
//! Instagram professional accounts alike, and replies to their comments.
//!
//! - A direct message (`RouteKind::Direct`, `to` a PSID or IGSID) goes to
//!   `POST /{page_id}/messages` as a `RESPONSE` within 24 hours of the
//!   citizen's last message, with the `HUMAN_AGENT` tag up to 7 days when
//!   the instance allows it, and not at all after.
//! - A comment (`RouteKind::Comment`, `to` the comment id) is answered
//!   privately, one message to its author through `/{page_id}/messages`
//!   within 7 days of the comment, or publicly under it
//!   (`/{comment_id}/comments` on Facebook, `/{comment_id}/replies` on
//!   Instagram).

use aduan_adapter::{Outgoing, ReplyRoute, ReplySender, RouteKind, SendError, Sent};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Answer, Graph, GraphError};

/// The longest Messenger text message.
pub const MESSENGER_MAX_CHARS: usize = 2000;

/// The longest Instagram text message: Meta's Instagram messaging pages say
/// "less than 1000 characters" (an older one "1000 bytes or less"), well
/// under Messenger's 2,000.
pub const INSTAGRAM_MAX_CHARS: usize = 999;

/// The longest Facebook comment.
pub const FACEBOOK_COMMENT_MAX_CHARS: usize = 8000;

/// The longest Instagram comment.
pub const INSTAGRAM_COMMENT_MAX_CHARS: usize = 2200;

/// Hours after the citizen's last message during which a `RESPONSE` may go.
pub const WINDOW_HOURS: u64 = 24;

/// Hours during which a `HUMAN_AGENT` reply or a private reply to a comment may go.
pub const HUMAN_AGENT_HOURS: u64 = 7 * 24;

/// Graph codes worth another attempt: 4, 17, 32 and 613 rate limits, 80006
/// the Messenger send limit.
const RETRYABLE: [i64; 5] = [4, 17, 32, 613, 80006];

/// Subcodes of a message outside the allowed window (with code 10).
const OUTSIDE_WINDOW: [i64; 3] = [2018278, 2018109, 2018065];

/// Graph code of a person who is not available (blocked the page, left).
const NOT_AVAILABLE: i64 = 551;

/// Graph code 100 with this subcode: no user matches the id.
const NO_MATCHING_USER: i64 = 2018001;

/// Which Meta product a sender speaks for: the paths of public comment
/// replies and the text limits differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// A Facebook Page: Messenger and Page comments.
    Messenger,
    /// An Instagram professional account: direct messages and comments.
    Instagram,
}

/// How a complaint made as a comment is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentReply {
    /// One private message to the comment's author (within 7 days, once).
    #[default]
    Private,
    /// A public reply under the comment.
    Public,
}

/// The sending settings of a Messenger or Instagram instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessengerSendConfig {
    /// A Page access token with `pages_messaging` (and
    /// `instagram_manage_messages` for Instagram). Give it as `env:NAME` or
    /// `file:/path`.
    pub access_token: aduan_adapter::Secret,
    /// The Page id; for Instagram the professional account's id, or `me`.
    pub page_id: String,
    /// Default `https://graph.facebook.com`.
    #[serde(default = "super::default_base_url")]
    pub base_url: String,
    /// Default `v21.0`.
    #[serde(default = "super::default_api_version")]
    pub api_version: String,
    /// Whether replies between 24 hours and 7 days go with the `HUMAN_AGENT`
    /// tag (the app needs Meta's Human Agent permission). Default `false`.
    #[serde(default)]
    pub human_agent: bool,
    /// `private` (default) or `public`.
    #[serde(default)]
    pub comment_reply: CommentReply,
}

/// Sends replies of one Page or Instagram account.
#[derive(Debug)]
pub struct MessengerSender {
    graph: Graph,
    platform: Platform,
    page_id: String,
    human_agent: bool,
    comment_reply: CommentReply,
}

/// One request: where it goes, what it says, and the field of the answer
/// that holds the id.
struct Request {
    segments: [String; 2],
    body: Value,
    id_field: &'static str,
}

impl MessengerSender {
    /// Checks the settings and builds the sender around the gateway's client.
    pub fn new(
        config: MessengerSendConfig,
        client: reqwest::Client,
        platform: Platform,
    ) -> Result<Self, String> {
        super::check_segment("page_id", &config.page_id)?;
        Ok(MessengerSender {
            graph: Graph::new(
                client,
                &config.base_url,
                &config.api_version,
                &config.access_token,
            )?,
            platform,
            page_id: config.page_id,
            human_agent: config.human_agent,
            comment_reply: config.comment_reply,
        })
    }

    fn name(&self) -> &'static str {
        match self.platform {
            Platform::Messenger => "Messenger",
            Platform::Instagram => "Instagram",
        }
    }

    /// The request for `out`, or why nothing may be sent.
    fn request(&self, out: &Outgoing<'_>) -> Result<Request, SendError> {
        let text = out
            .text
            .ok_or_else(|| SendError::permanent("missing_text", "the reply has no text"))?;
        let to = out.route.to.as_str();
        if to.is_empty() {
            return Err(SendError::permanent(
                "invalid_recipient",
                "the route has no recipient",
            ));
        }
        let messages = || [self.page_id.clone(), "messages".to_string()];
        match (out.route.kind, self.comment_reply) {
            (RouteKind::Direct, _) => {
                let mut body = json!({
                    "recipient": {"id": to},
                    "message": {"text": text},
                });
                if super::within_hours(out, WINDOW_HOURS) {
                    body["messaging_type"] = "RESPONSE".into();
                } else if self.human_agent && super::within_hours(out, HUMAN_AGENT_HOURS) {
                    body["messaging_type"] = "MESSAGE_TAG".into();
                    body["tag"] = "HUMAN_AGENT".into();
                } else {
                    return Err(SendError::window_closed(
                        match (out.last_inbound_at, self.human_agent) {
                            (None, _) => "the citizen's last message is not known",
                            (Some(_), true) => "more than 7 days since the citizen's last message",
                            (Some(_), false) => {
                                "more than 24 hours since the citizen's last message"
                            }
                        },
                    ));
                }
                Ok(Request {
                    segments: messages(),
                    body,
                    id_field: "message_id",
                })
            }
            (RouteKind::Comment, CommentReply::Private) => {
                if !super::within_hours(out, HUMAN_AGENT_HOURS) {
                    return Err(SendError::window_closed(
                        "a comment is answered privately only within 7 days",
                    ));
                }
                if out.parts > 1 {
                    // Meta takes one private reply per comment.
                    return Err(SendError::permanent(
                        "too_long",
                        format!(
                            "a private reply to a comment is one message; this reply needs {}",
                            out.parts
                        ),
                    ));
                }
                Ok(Request {
                    segments: messages(),
                    body: json!({
                        "recipient": {"comment_id": to},
                        "message": {"text": text},
                    }),
                    id_field: "message_id",
                })
            }
            (RouteKind::Comment, CommentReply::Public) => {
                if !super::is_segment(to) {
                    return Err(SendError::permanent(
                        "invalid_recipient",
                        "the comment id is not a Graph id",
                    ));
                }
                let edge = match self.platform {
                    Platform::Messenger => "comments",
                    Platform::Instagram => "replies",
                };
                Ok(Request {
                    segments: [to.to_string(), edge.to_string()],
                    body: json!({"message": text}),
                    id_field: "id",
                })
            }
            (RouteKind::Mention, _) => Err(SendError::permanent(
                "unsupported_route",
                format!("{} replies go to messages and comments only", self.name()),
            )),
        }
    }

    /// What an answer means.
    fn read(&self, answer: &Answer, id_field: &str, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        if answer.is_success() {
            return serde_json::from_slice::<serde_json::Map<String, Value>>(&answer.body)
                .ok()
                .and_then(|m| m.get(id_field).and_then(Value::as_str).map(str::to_string))
                .filter(|id| !id.is_empty())
                .map(Sent::new)
                .ok_or_else(|| {
                    SendError::temporary(
                        "bad_response",
                        format!(
                            "{} answered HTTP {} without `{id_field}`",
                            self.name(),
                            answer.status
                        ),
                        None,
                    )
                });
        }
        Err(match answer.graph_error() {
            Some(e @ GraphError { code: Some(_), .. }) => self.classify(&e, answer, out),
            _ => answer.by_status(self.name()),
        })
    }

    fn classify(&self, e: &GraphError, answer: &Answer, out: &Outgoing<'_>) -> SendError {
        let code = e.code.unwrap_or_default();
        let sub = e.error_subcode;
        let message = self.graph.clean(&e.describe(), out.text);
        if sub.is_some_and(|s| OUTSIDE_WINDOW.contains(&s)) {
            SendError::window_closed(message)
        } else if code == NOT_AVAILABLE {
            SendError::opted_out("blocked", message)
        } else if code == 100 && sub == Some(NO_MATCHING_USER) {
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
impl ReplySender for MessengerSender {
    fn max_chars(&self, route: &ReplyRoute) -> usize {
        match (route.kind, self.comment_reply, self.platform) {
            (RouteKind::Comment, CommentReply::Public, Platform::Messenger) => {
                FACEBOOK_COMMENT_MAX_CHARS
            }
            (RouteKind::Comment, CommentReply::Public, Platform::Instagram) => {
                INSTAGRAM_COMMENT_MAX_CHARS
            }
            (_, _, Platform::Messenger) => MESSENGER_MAX_CHARS,
            (_, _, Platform::Instagram) => INSTAGRAM_MAX_CHARS,
        }
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let request = self.request(out)?;
        let [a, b] = &request.segments;
        let url = self.graph.url(&[a, b]);
        let answer = self.graph.post(url, &request.body).await?;
        self.read(&answer, request.id_field, out)
    }
}
