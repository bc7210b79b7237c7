//! Replies to X users through API v2: a direct message, or a reply Tweet
//! under the Tweet that mentioned the account.
//!
//! - A DM complaint (provider [`PROVIDER`](crate::PROVIDER)) is answered by
//!   `POST /2/dm_conversations/with/{user id}/messages` `{"text"}`.
//! - A mention (provider [`MENTION_PROVIDER`](crate::MENTION_PROVIDER)) is
//!   answered the same way by default (`mention_reply = "dm"`): the citizen's
//!   reply stays private. With `mention_reply = "tweet"` it is answered in
//!   public by `POST /2/tweets` `{"text", "reply": {"in_reply_to_tweet_id"}}`;
//!   every part of a long reply answers the citizen's Tweet.
//!
//! Requests are signed with the account's OAuth 1.0a keys ([`oauth`])
//! or carry an OAuth 2.0 user token (`dm.write`, `tweet.write`) as `Bearer`.
//!
//! # Errors
//!
//! X answers a refusal with problem JSON (`title`, `detail`, `type`, and
//! sometimes `errors[]`); its words become the error's message.
//!
//! | answer | error |
//! |---|---|
//! | `429` | temporary `rate_limited`, after the latest of `Retry-After`, `x-rate-limit-reset`, and an exhausted 24-hour limit's `x-user-limit-24hour-reset` / `x-app-limit-24hour-reset` |
//! | `5xx`, `408`, `425` | temporary `http_<status>` (after `Retry-After` when given) |
//! | `401` | permanent `unauthorized` |
//! | `403` to a DM that says the user cannot receive our messages (the v2 problem `…/problems/not-authorized-for-resource`, "not permitted to send this Direct Message", `cannot send messages`, `not following you`, `blocked`, or X codes 150 / 349) | permanent `blocked`, an opt-out |
//! | any other `403` (missing permission or scope, replies restricted, duplicate Tweet) | permanent `forbidden` |
//! | `400` | permanent `invalid_request` |
//! | `404` | permanent `not_found` |
//! | a failure to connect | temporary `network` |
//! | a timeout or a connection that broke after the request went out | temporary `network`, which may have been sent: the gateway records the reply `uncertain` unless the policy is to resend |
//!
//! A generic `403` is never an opt-out: an app without DM permission would
//! otherwise opt every citizen out.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use aduan_adapter::reply::retry_after;
use aduan_adapter::{
    Outgoing, ReplyRoute, ReplySender, RouteKind, Secret, SendError, Sent, Timestamp,
};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::oauth::{self, OAuth1};

/// The most characters of one direct message.
pub const DM_MAX_CHARS: usize = 10_000;
/// The most characters of one reply Tweet (X weighs some characters double;
/// they are counted once here).
pub const TWEET_MAX_CHARS: usize = 280;

/// How a complaint that came as a mention is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MentionReply {
    /// A direct message to its author (default): the answer stays private.
    #[default]
    Dm,
    /// A public reply Tweet under the citizen's Tweet.
    Tweet,
}

/// The sending half of one X account (`[instances.reply]` of a
/// `kind = "x"` instance). Give either the four OAuth 1.0a keys or
/// `bearer_token`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XSendConfig {
    /// The API's base URL. Default `https://api.x.com`; a test stand-in can be named here.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// OAuth 1.0a: the app's API key.
    #[serde(default)]
    pub consumer_key: Option<Secret>,
    /// OAuth 1.0a: the app's API secret.
    #[serde(default)]
    pub consumer_secret: Option<Secret>,
    /// OAuth 1.0a: the account's access token.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// OAuth 1.0a: the account's access token secret.
    #[serde(default)]
    pub access_token_secret: Option<Secret>,
    /// OAuth 2.0: a user access token with `dm.write` (and `tweet.write` for reply Tweets).
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// `dm` (default) or `tweet`: how mentions are answered.
    #[serde(default)]
    pub mention_reply: MentionReply,
}

fn default_base_url() -> String {
    "https://api.x.com".into()
}

/// How requests are authorized.
enum Auth {
    OAuth1(OAuth1),
    Bearer(Secret),
}

/// Sends replies as one X account.
pub struct XSender {
    client: reqwest::Client,
    base: Url,
    auth: Auth,
    mention_reply: MentionReply,
}

impl fmt::Debug for XSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match self.auth {
            Auth::OAuth1(_) => "oauth1",
            Auth::Bearer(_) => "bearer",
        };
        f.debug_struct("XSender")
            .field("base_url", &self.base.as_str())
            .field("auth", &auth)
            .field("mention_reply", &self.mention_reply)
            .finish_non_exhaustive()
    }
}

/// Where one message goes.
enum Target<'a> {
    Dm { participant: &'a str },
    Tweet { in_reply_to: &'a str },
}

impl XSender {
    /// Validates `config` (exactly one complete set of credentials, an
    /// http(s) base URL) and builds the sender on `client`, whose timeout
    /// bounds each send.
    pub fn new(config: XSendConfig, client: reqwest::Client) -> Result<Self, String> {
        let base = Url::parse(config.base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && !u.cannot_be_a_base()
                    && u.query().is_none()
                    && u.fragment().is_none()
            })
            .ok_or("`base_url` must be an http(s) URL without a query")?;
        let XSendConfig {
            consumer_key,
            consumer_secret,
            access_token,
            access_token_secret,
            bearer_token,
            mention_reply,
            ..
        } = config;
        let oauth_keys = [
            ("consumer_key", consumer_key.is_some()),
            ("consumer_secret", consumer_secret.is_some()),
            ("access_token", access_token.is_some()),
            ("access_token_secret", access_token_secret.is_some()),
        ];
        let missing: Vec<&str> = oauth_keys
            .iter()
            .filter(|(_, given)| !given)
            .map(|(name, _)| *name)
            .collect();
        let auth = match (
            bearer_token,
            consumer_key,
            consumer_secret,
            access_token,
            access_token_secret,
        ) {
            (
                None,
                Some(consumer_key),
                Some(consumer_secret),
                Some(access_token),
                Some(access_token_secret),
            ) => Auth::OAuth1(OAuth1 {
                consumer_key,
                consumer_secret,
                access_token,
                access_token_secret,
            }),
            (Some(token), None, None, None, None) => {
                if http::HeaderValue::from_str(token.expose()).is_err() {
                    return Err("`bearer_token` must be a printable ASCII token".into());
                }
                Auth::Bearer(token)
            }
            (Some(_), ..) => {
                return Err(
                    "give either `bearer_token` (OAuth 2.0) or the OAuth 1.0a keys, not both"
                        .into(),
                );
            }
            (None, None, None, None, None) => {
                return Err("credentials missing: `consumer_key`, `consumer_secret`, \
                    `access_token` and `access_token_secret` (OAuth 1.0a), or `bearer_token` (OAuth 2.0)"
                    .into());
            }
            (None, ..) => {
                return Err(format!(
                    "OAuth 1.0a needs all four keys; missing: {}",
                    missing.join(", ")
                ));
            }
        };
        Ok(XSender {
            client,
            base,
            auth,
            mention_reply,
        })
    }

    fn target<'a>(&self, route: &'a ReplyRoute) -> Result<Target<'a>, SendError> {
        let dm = || {
            let user = route.to.as_str();
            if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SendError::permanent(
                    "invalid_recipient",
                    "the route's address is not an X user id",
                ));
            }
            Ok(Target::Dm { participant: user })
        };
        match (route.kind, self.mention_reply) {
            (RouteKind::Direct, _) | (RouteKind::Mention, MentionReply::Dm) => dm(),
            (RouteKind::Mention, MentionReply::Tweet) => match route.message_id.as_deref() {
                Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(Target::Tweet { in_reply_to: id })
                }
                _ => Err(SendError::permanent(
                    "invalid_message_id",
                    "a reply Tweet needs the id of the citizen's Tweet",
                )),
            },
            (RouteKind::Comment, _) => Err(SendError::permanent(
                "unsupported_route",
                "X has no comment replies",
            )),
        }
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn authorization(&self, url: &Url) -> Result<String, SendError> {
        match &self.auth {
            Auth::Bearer(token) => Ok(format!("Bearer {}", token.expose())),
            Auth::OAuth1(keys) => {
                let nonce = oauth::nonce().map_err(|e| SendError::temporary("nonce", e, None))?;
                let timestamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Ok(keys.authorization("POST", url, &[], &nonce, timestamp))
            }
        }
    }

    /// `message` with every credential masked, should anything have echoed one.
    fn masked(&self, message: &str) -> String {
        let secrets: Vec<&Secret> = match &self.auth {
            Auth::Bearer(token) => vec![token],
            Auth::OAuth1(k) => vec![
                &k.consumer_key,
                &k.consumer_secret,
                &k.access_token,
                &k.access_token_secret,
            ],
        };
        secrets
            .iter()
            .fold(message.to_string(), |m, s| m.replace(s.expose(), "***"))
    }

    /// `e` as a temporary failure, credentials masked; unless it failed to
    /// connect, the message may have gone ([`SendError::transport`]).
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
impl ReplySender for XSender {
    fn max_chars(&self, route: &ReplyRoute) -> usize {
        match (route.kind, self.mention_reply) {
            (RouteKind::Mention, MentionReply::Tweet) => TWEET_MAX_CHARS,
            _ => DM_MAX_CHARS,
        }
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let target = self.target(out.route)?;
        let text = out.text.ok_or_else(|| {
            SendError::permanent(
                "missing_text",
                "X has no message templates: the reply needs a text",
            )
        })?;
        let (url, body, dm) = match target {
            Target::Dm { participant } => (
                self.url(&["2", "dm_conversations", "with", participant, "messages"]),
                json!({ "text": text }),
                true,
            ),
            Target::Tweet { in_reply_to } => (
                self.url(&["2", "tweets"]),
                json!({ "text": text, "reply": { "in_reply_to_tweet_id": in_reply_to } }),
                false,
            ),
        };
        let authorization = self.authorization(&url)?;
        let response = self
            .client
            .post(url)
            .header(http::header::AUTHORIZATION, authorization)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.network(e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| self.network(e))?;
        read_answer(dm, status, &headers, &bytes, out.now).map_err(|e| SendError {
            message: self.masked(&e.message),
            ..e
        })
    }
}

/// What an answer says became of a DM (`dm`) or reply Tweet: HTTP `status`,
/// its headers and body, read at `now` (the gateway's clock, which schedules
/// the retry).
fn read_answer(
    dm: bool,
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Sent, SendError> {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        let field = if dm { "dm_event_id" } else { "id" };
        return match answer
            .pointer(&format!("/data/{field}"))
            .and_then(Value::as_str)
        {
            Some(id) if !id.is_empty() => Ok(Sent::new(id.to_string())),
            // Most likely sent: failing it without a retry cannot duplicate it.
            _ => Err(SendError::permanent(
                "unexpected_answer",
                format!(
                    "HTTP {status} without a {field}: {}",
                    describe(&answer, status)
                ),
            )),
        };
    }
    let message = describe(&answer, status);
    Err(match status {
        429 => SendError::temporary("rate_limited", message, rate_limit_wait(headers, now)),
        401 => SendError::permanent("unauthorized", message),
        403 if dm && cannot_receive_dms(&answer) => SendError::opted_out("blocked", message),
        403 => SendError::permanent("forbidden", message),
        400 => SendError::permanent("invalid_request", message),
        404 => SendError::permanent("not_found", message),
        _ => SendError::from_status(status, retry_after(headers), &message),
    })
}

/// The most an error message quotes of the provider's words.
const MAX_MESSAGE: usize = 500;

/// `title: detail; errors[].message …` of a problem answer, or the status.
fn describe<'a>(answer: &'a Value, status: u16) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let mut add = |s: Option<&'a str>| {
        if let Some(s) = s.map(str::trim).filter(|s| !s.is_empty())
            && !parts.contains(&s)
        {
            parts.push(s);
        }
    };
    add(answer.get("title").and_then(Value::as_str));
    add(answer.get("detail").and_then(Value::as_str));
    for e in answer
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add(e.get("message").and_then(Value::as_str));
        add(e.get("detail").and_then(Value::as_str));
    }
    let mut message = if parts.is_empty() {
        format!("HTTP {status}")
    } else {
        parts.join(": ")
    };
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// The v2 problem of a DM the recipient does not take from this account
/// (`detail`: "You are not permitted to send this Direct Message"): their
/// DM settings, a block, or no conversation they would accept. A missing
/// permission of the app is another problem (`oauth1-permissions`,
/// `client-forbidden`, `unsupported-authentication`).
const NOT_AUTHORIZED_FOR_RESOURCE: &str = "/problems/not-authorized-for-resource";

/// Whether a `403` to a DM says this user cannot receive our messages
/// (rather than that the app lacks a permission).
fn cannot_receive_dms(answer: &Value) -> bool {
    let problem = answer.get("type").and_then(Value::as_str).is_some_and(|t| {
        t.trim_end_matches('/')
            .ends_with(NOT_AUTHORIZED_FOR_RESOURCE)
    });
    let errors = answer.get("errors").and_then(Value::as_array);
    // X's codes: 150 "not following you", 349 "cannot send messages to this user".
    let coded = errors
        .into_iter()
        .flatten()
        .any(|e| matches!(e.get("code").and_then(Value::as_u64), Some(150 | 349)));
    let text = describe(answer, 403).to_lowercase();
    problem
        || coded
        || [
            "cannot send messages",
            "can't send messages",
            "not following you",
            "not permitted to send this direct message",
            "blocked",
        ]
        .iter()
        .any(|phrase| text.contains(phrase))
}

/// How long to wait after a `429`: the latest of `Retry-After`, the
/// endpoint window's `x-rate-limit-reset`, and the reset of a 24-hour limit
/// that is used up (`x-user-limit-24hour-*`, `x-app-limit-24hour-*`). Resets
/// are Unix seconds, compared with `now`; one already past waits a second.
fn rate_limit_wait(headers: &http::HeaderMap, now: Timestamp) -> Option<Duration> {
    let number = |name: &str| -> Option<i64> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    };
    let until = |reset: i64| {
        let secs = reset.saturating_sub(now.0.timestamp()).max(1);
        Duration::from_secs(u64::try_from(secs).unwrap_or(1))
    };
    let mut waits: Vec<Duration> = retry_after(headers).into_iter().collect();
    waits.extend(number("x-rate-limit-reset").map(until));
    for limit in ["x-user-limit-24hour", "x-app-limit-24hour"] {
        if number(&format!("{limit}-remaining")) == Some(0) {
            waits.extend(number(&format!("{limit}-reset")).map(until));
        }
    }
    waits.into_iter().max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_adapter::Retry;

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_732_000_000).expect("valid time")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn rate_limit_waits_for_the_latest_reset() {
        let h = headers(&[
            ("x-rate-limit-reset", "1732000120"),
            ("x-rate-limit-remaining", "0"),
        ]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(120)));
        let h = headers(&[("retry-after", "30")]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(30)));
        let h = headers(&[
            ("x-rate-limit-reset", "1732000120"),
            ("x-user-limit-24hour-remaining", "0"),
            ("x-user-limit-24hour-reset", "1732050000"),
        ]);
        assert_eq!(
            rate_limit_wait(&h, now()),
            Some(Duration::from_secs(50_000))
        );
        // A 24-hour limit with room left is not the one that refused.
        let h = headers(&[
            ("x-rate-limit-reset", "1732000120"),
            ("x-app-limit-24hour-remaining", "12"),
            ("x-app-limit-24hour-reset", "1732050000"),
        ]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(120)));
        let h = headers(&[("x-rate-limit-reset", "1731999000")]);
        assert_eq!(rate_limit_wait(&h, now()), Some(Duration::from_secs(1)));
        assert_eq!(rate_limit_wait(&headers(&[]), now()), None);
    }

    #[test]
    fn problems_are_described_by_title_and_detail() {
        let v = json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                       "type": "https://api.twitter.com/2/problems/invalid-request",
                       "errors": [{"message": "$.text: is missing but it is required"}]});
        assert_eq!(
            describe(&v, 400),
            "Invalid Request: One or more parameters to your request was invalid.: $.text: is missing but it is required"
        );
        assert_eq!(
            describe(&json!({"title": "Forbidden", "detail": "Forbidden"}), 403),
            "Forbidden"
        );
        assert_eq!(describe(&Value::Null, 502), "HTTP 502");
        let long = json!({"detail": "x".repeat(2000)});
        assert_eq!(describe(&long, 400).chars().count(), MAX_MESSAGE + 1);
    }

    #[test]
    fn only_a_403_about_the_user_is_an_opt_out() {
        let h = http::HeaderMap::new();
        let read = |dm, body: Value| read_answer(dm, 403, &h, body.to_string().as_bytes(), now());
        let e = read(
            true,
            json!({"errors": [{"code": 349, "message": "You cannot send messages to this user."}]}),
        )
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.opt_out), ("blocked", true));
        let e = read(true, json!({"title": "Forbidden", "detail": "Forbidden", "type": "about:blank", "status": 403}))
            .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.opt_out, e.retry),
            ("forbidden", false, Retry::Never)
        );
        // API v2's problem for a DM the recipient does not take.
        let e = read(
            true,
            json!({"title": "Forbidden", "type": "https://api.twitter.com/2/problems/not-authorized-for-resource",
                   "detail": "You are not permitted to send this Direct Message", "status": 403}),
        )
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.opt_out), ("blocked", true));
        // An app without DM permission is not the citizen's doing.
        let e = read(
            true,
            json!({"title": "Forbidden", "type": "https://api.twitter.com/2/problems/oauth1-permissions",
                   "detail": "Your client app is not configured with the appropriate oauth1 app permissions for this endpoint.", "status": 403}),
        )
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.opt_out), ("forbidden", false));
        // The same words about a reply Tweet are not about DMs.
        let e = read(
            false,
            json!({"detail": "You cannot send messages to this user."}),
        )
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.opt_out), ("forbidden", false));
    }

    #[test]
    fn a_success_without_an_id_is_not_retried() {
        let h = http::HeaderMap::new();
        let e = read_answer(true, 201, &h, br#"{"data":{"id":"1"}}"#, now()).unwrap_err();
        assert_eq!(e.code, "unexpected_answer");
        assert!(e.is_permanent());
        let sent = read_answer(
            false,
            201,
            &h,
            br#"{"data":{"id":"1862000000000000001","text":"t"}}"#,
            now(),
        );
        assert_eq!(
            sent.map(|s| s.provider_message_id).as_deref(),
            Ok("1862000000000000001")
        );
    }
}
