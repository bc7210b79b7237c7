//! Replies through the Graph API: what the WhatsApp Cloud API and the
//! Messenger Platform's Send API (Messenger and Instagram) share.
//!
//! - [`whatsapp`]: [`WhatsAppSender`], texts inside the 24-hour window and
//!   templates outside it.
//! - [`messenger`]: [`MessengerSender`], direct messages (24 hours, 7 days
//!   with the `HUMAN_AGENT` tag) and replies to comments, private or public.
//!
//! Both post JSON with the access token as a Bearer header, so it is never
//! part of a URL, and read the Graph error body
//! `{"error":{"message","type","code","error_subcode","error_data"}}` into a
//! [`SendError`] whose message never carries the
//! token. Timeouts are the [`reqwest::Client`]'s, which the gateway builds.

pub mod messenger;
pub mod whatsapp;

use std::time::Duration;

use aduan_adapter::{Outgoing, SendError, Timestamp, reply};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;

pub use messenger::{CommentReply, MessengerSendConfig, MessengerSender, Platform};
pub use whatsapp::{WhatsAppSendConfig, WhatsAppSender};

/// The Graph API host, the default `base_url`.
pub const GRAPH_URL: &str = "https://graph.facebook.com";

/// The Graph API version used unless configured, the default `api_version`.
pub const API_VERSION: &str = "v21.0";

/// The most of an answer read; Graph answers to a send are a few hundred bytes.
const MAX_ANSWER: usize = 64 * 1024;

/// The longest provider message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

pub(crate) fn default_base_url() -> String {
    GRAPH_URL.to_string()
}

pub(crate) fn default_api_version() -> String {
    API_VERSION.to_string()
}

/// The Graph API of one account: where to post and with which token.
#[derive(Debug)]
pub(crate) struct Graph {
    client: reqwest::Client,
    /// `{base_url}/{api_version}`, without a trailing slash.
    root: Url,
    /// `Bearer <token>`, marked sensitive.
    auth: HeaderValue,
    /// The token itself, only to keep it out of error messages.
    token: aduan_adapter::Secret,
}

/// An answer of the Graph API, read up to [`MAX_ANSWER`] bytes.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Graph {
    /// Checks the settings that make up the URL and the header.
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        api_version: &str,
        token: &aduan_adapter::Secret,
    ) -> Result<Self, String> {
        let mut root = Url::parse(base_url.trim_end_matches('/'))
            .map_err(|e| format!("base_url `{base_url}` is not a URL: {e}"))?;
        if !matches!(root.scheme(), "http" | "https") || root.cannot_be_a_base() {
            return Err(format!("base_url `{base_url}` is not an http(s) URL"));
        }
        if root.query().is_some() || root.fragment().is_some() {
            return Err(format!(
                "base_url `{base_url}` has a query or fragment; the token goes in a header"
            ));
        }
        check_segment("api_version", api_version)?;
        root.path_segments_mut()
            .map_err(|()| format!("base_url `{base_url}` is not an http(s) URL"))?
            .pop_if_empty()
            .push(api_version);
        if token.expose().trim().is_empty() {
            return Err("access_token is empty".to_string());
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| "access_token has characters a header cannot carry".to_string())?;
        auth.set_sensitive(true);
        Ok(Graph {
            client,
            root,
            auth,
            token: token.clone(),
        })
    }

    /// `{root}/{segments…}`, each segment percent-encoded as needed.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    /// Posts `body` as JSON. Only a failure to get an answer is an error
    /// here; what the answer means is the caller's.
    pub async fn post(&self, url: Url, body: &serde_json::Value) -> Result<Answer, SendError> {
        let mut response = self
            .client
            .post(url)
            .header(AUTHORIZATION, self.auth.clone())
            .json(body)
            .send()
            .await
            .map_err(network)?;
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            let room = MAX_ANSWER - bytes.len();
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if bytes.len() == MAX_ANSWER {
                break;
            }
        }
        Ok(Answer {
            status,
            headers,
            body: bytes,
        })
    }

    /// `message` made fit for an error: without the token or the text sent,
    /// and short.
    pub fn clean(&self, message: &str, text: Option<&str>) -> String {
        let mut m = message.replace(self.token.expose(), "***");
        // A short text is likely to be a common word; only a longer one is
        // taken out, and it can only be there if the provider quoted it.
        if let Some(text) = text.map(str::trim).filter(|t| t.chars().count() >= 12) {
            m = m.replace(text, "…");
        }
        truncate(&m, MAX_MESSAGE_CHARS)
    }
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The seconds of the answer's `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        reply::retry_after(&self.headers)
    }

    /// The Graph error the body holds, if it holds one.
    pub fn graph_error(&self) -> Option<GraphError> {
        serde_json::from_slice::<ErrorBody>(&self.body)
            .ok()
            .map(|b| b.error)
    }

    /// The generic reading of an answer without a Graph error code.
    pub fn by_status(&self, what: &str) -> SendError {
        SendError::from_status(
            self.status,
            self.retry_after(),
            &format!("{what} answered HTTP {}", self.status),
        )
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: GraphError,
}

/// The `error` object of a Graph API answer.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphError {
    pub message: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub code: Option<i64>,
    pub error_subcode: Option<i64>,
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorData {
    pub details: Option<String>,
}

impl GraphError {
    /// A description for people: the message, its details, its type and
    /// subcode, as far as given.
    pub fn describe(&self) -> String {
        let mut s = self
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "Graph API error".to_string());
        if let Some(details) = self
            .error_data
            .as_ref()
            .and_then(|d| d.details.as_deref())
            .filter(|d| !d.is_empty())
        {
            s.push_str(": ");
            s.push_str(details);
        }
        match (&self.kind, self.error_subcode) {
            (Some(kind), Some(sub)) => s.push_str(&format!(" ({kind}, subcode {sub})")),
            (Some(kind), None) => s.push_str(&format!(" ({kind})")),
            (None, Some(sub)) => s.push_str(&format!(" (subcode {sub})")),
            (None, None) => {}
        }
        s
    }
}

/// A failure to get an answer, described by its kind alone: the URL holds
/// no secret, but the kind is all the gateway needs. Only a failure to
/// connect is sure to have sent nothing ([`SendError::transport`]).
fn network(e: reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timed out waiting for the Graph API"
    } else if e.is_connect() {
        "could not connect to the Graph API"
    } else if e.is_body() || e.is_decode() {
        "the Graph API's answer broke off"
    } else {
        "the request to the Graph API failed"
    };
    SendError::transport(&e, what)
}

/// The age of the citizen's last message at `out.now`; `None` when it is
/// not known. A time after `now` (clocks apart) is an age of zero.
pub(crate) fn age(out: &Outgoing<'_>) -> Option<Duration> {
    let last: Timestamp = out.last_inbound_at?;
    Some((out.now.0 - last.0).to_std().unwrap_or(Duration::ZERO))
}

/// Whether the citizen wrote less than `hours` hours before `out.now`.
pub(crate) fn within_hours(out: &Outgoing<'_>, hours: u64) -> bool {
    age(out).is_some_and(|a| a < Duration::from_secs(hours * 3600))
}

/// A part of a URL path taken from the configuration or a route: a Graph
/// id (`6281…`, `me`, `1784…_1234`) or a version, nothing that could change
/// the path.
pub(crate) fn is_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && s != "."
        && s != ".."
}

pub(crate) fn check_segment(name: &str, value: &str) -> Result<(), String> {
    if is_segment(value) {
        Ok(())
    } else {
        Err(format!(
            "{name} `{value}` must be letters, digits, `_`, `-` or `.`"
        ))
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_adapter::Secret;

    fn graph(base: &str) -> Result<Graph, String> {
        Graph::new(
            reqwest::Client::new(),
            base,
            "v21.0",
            &Secret::literal("EAAGrahasia"),
        )
    }

    #[test]
    fn urls_are_built_from_segments() {
        let g = graph("https://graph.facebook.com/").expect("graph");
        assert_eq!(
            g.url(&["106540352242922", "messages"]).as_str(),
            "https://graph.facebook.com/v21.0/106540352242922/messages"
        );
        let g = graph("http://127.0.0.1:9/prefix").expect("graph");
        assert_eq!(
            g.url(&["me", "messages"]).as_str(),
            "http://127.0.0.1:9/prefix/v21.0/me/messages"
        );
    }

    #[test]
    fn bad_settings_are_refused_without_the_token() {
        for base in [
            "graph.facebook.com",
            "ftp://x",
            "https://g/?access_token=x",
            "",
        ] {
            assert!(graph(base).is_err(), "{base}");
        }
        let err = Graph::new(
            reqwest::Client::new(),
            GRAPH_URL,
            "v21.0/../x",
            &Secret::literal("t"),
        )
        .expect_err("bad version");
        assert!(err.contains("api_version"));
        let err = Graph::new(
            reqwest::Client::new(),
            GRAPH_URL,
            "v21.0",
            &Secret::literal("EAAG\nrahasia"),
        )
        .expect_err("bad token");
        assert!(!err.contains("rahasia"));
    }

    #[test]
    fn errors_lose_the_token_and_the_text() {
        let g = graph(GRAPH_URL).expect("graph");
        let text = "Jalan berlubang di Jl. Merdeka sudah diperbaiki.";
        let m = g.clean(
            &format!("Malformed access token EAAGrahasia, text: {text}"),
            Some(text),
        );
        assert!(!m.contains("EAAGrahasia") && !m.contains("Merdeka"), "{m}");
        assert_eq!(g.clean(&"x".repeat(400), None).chars().count(), 301);
    }

    #[test]
    fn segments_are_plain_ids() {
        for ok in ["6281234567890", "me", "17841405822304914_1234", "v21.0"] {
            assert!(is_segment(ok), "{ok}");
        }
        for bad in ["", "..", "a/b", "a?b", "a b", "a%2fb"] {
            assert!(!is_segment(bad), "{bad}");
        }
    }
}
