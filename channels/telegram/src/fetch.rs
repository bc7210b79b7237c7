//! Fetching the files of Telegram messages for the gateway's media worker:
//! the attachment's `provider_ref` is a `file_id`; `getFile` answers its
//! `file_path`, and `GET {api_url}/file/bot<token>/<file_path>` the bytes.
//!
//! The download link is valid for at least an hour, so each attempt asks
//! `getFile` afresh and never keeps one; the `file_id` itself stays usable
//! far longer, and the lifetime setting is the horizon of retries. The Bot
//! API serves files up to 20 MB; a bigger one is refused as `file is too
//! big`, a permanent `too_large`.
//!
//! Both URLs hold the bot token. No error carries it: transport errors are
//! described by their kind alone (never with their URL) and every message
//! is masked once more before it leaves.
//!
//! | answer | error |
//! |---|---|
//! | `getFile` `file is too big` | permanent `too_large` |
//! | `getFile` `invalid file_id` | permanent `not_found` |
//! | `getFile` `… temporarily unavailable` | temporary `file_unavailable` |
//! | `getFile` `401` | permanent `unauthorized` |
//! | `getFile` with `retry_after`, `429`, `5xx` | temporary `telegram_<code>` (after `retry_after`) |
//! | `getFile` without a `file_path` | permanent `not_found` |
//! | download not a success | read by its status ([`FetchError::from_status`]) |
//! | transport failure, timeout | temporary `network`, `timeout` |

use std::fmt;
use std::time::Duration;

use aduan_adapter::media::{
    FetchError, Fetched, MediaFetcher, MediaHttp, MediaSink, declared_content_type, read_small,
    refusal, stream_into, transport_error,
};
use aduan_adapter::reply::retry_after;
use aduan_adapter::{Attachment, Secret};
use reqwest::Url;
use reqwest::header::USER_AGENT;
use serde::Deserialize;

/// The Bot API's host, the default `api_url`.
pub const API_URL: &str = "https://api.telegram.org";

/// Seven days of retries; a `file_id` outlives them.
pub const DEFAULT_LINK_LIFETIME_SECONDS: u64 = 7 * 24 * 3600;

/// The most of a `getFile` answer read; it is a few hundred bytes.
const MAX_ANSWER: usize = 64 * 1024;

const AGENT: &str = concat!("aduan-media/", env!("CARGO_PKG_VERSION"));

/// The media settings of a Telegram bot (`[instances.media]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramFetchConfig {
    /// The bot's token from BotFather.
    pub token: Secret,
    /// The Bot API base URL. Default `https://api.telegram.org`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// How long after the message its `file_id` is retried. Default seven days.
    #[serde(default = "default_link_lifetime")]
    pub link_lifetime_seconds: u64,
}

fn default_api_url() -> String {
    API_URL.into()
}

fn default_link_lifetime() -> u64 {
    DEFAULT_LINK_LIFETIME_SECONDS
}

/// Fetches the files of one bot's messages.
pub struct TelegramFetcher {
    /// `{api_url}/bot<token>/getFile`: it holds the token.
    get_file: Url,
    /// `{api_url}/file/bot<token>`: it holds the token.
    files: Url,
    token: Secret,
    lifetime: Duration,
}

impl fmt::Debug for TelegramFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramFetcher")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// A Bot API answer, read as far as `getFile` needs.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Option<File>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    file_path: Option<String>,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

impl TelegramFetcher {
    /// Checks the settings: a token that can be a path segment, an http(s)
    /// API URL without a query, a lifetime above zero.
    pub fn new(config: TelegramFetchConfig) -> Result<Self, String> {
        let token = config.token;
        let t = token.expose();
        if t.is_empty()
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
        {
            return Err("`token` must be the bot token from BotFather".into());
        }
        let base = Url::parse(config.api_url.trim_end_matches('/'))
            .ok()
            .filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && !u.cannot_be_a_base()
                    && u.query().is_none()
                    && u.fragment().is_none()
            })
            .ok_or("`api_url` must be an http(s) URL without a query")?;
        let with = |segments: &[&str]| -> Result<Url, String> {
            let mut url = base.clone();
            url.path_segments_mut()
                .map_err(|()| "`api_url` must be an http(s) URL without a query")?
                .pop_if_empty()
                .extend(segments);
            Ok(url)
        };
        let bot = format!("bot{t}");
        if config.link_lifetime_seconds == 0 {
            return Err("`link_lifetime_seconds` must be more than 0".into());
        }
        Ok(TelegramFetcher {
            get_file: with(&[&bot, "getFile"])?,
            files: with(&["file", &bot])?,
            lifetime: Duration::from_secs(config.link_lifetime_seconds),
            token,
        })
    }

    /// `message` with the token masked, should anything have echoed it.
    fn masked(&self, message: &str) -> String {
        message.replace(self.token.expose(), "***")
    }

    /// `e` with its message masked.
    fn clean(&self, e: FetchError) -> FetchError {
        FetchError {
            message: self.masked(&e.message),
            ..e
        }
    }

    /// The download URL of `file_path`, each of its segments a path segment.
    fn file_url(&self, file_path: &str) -> Result<Url, FetchError> {
        let segments: Vec<&str> = file_path.trim().split('/').collect();
        if segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(FetchError::permanent(
                "bad_file_path",
                "getFile answered a file path that is not a relative path",
            ));
        }
        let mut url = self.files.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        Ok(url)
    }

    async fn file_path(&self, file_id: &str, http: &MediaHttp) -> Result<String, FetchError> {
        let mut url = self.get_file.clone();
        url.query_pairs_mut().append_pair("file_id", file_id);
        let response = http
            .get(url.as_str())?
            .header(USER_AGENT, AGENT)
            .send()
            .await
            .map_err(|e| transport_error(&e, "the Bot API"))?;
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        let body = read_small(response, "the Bot API", MAX_ANSWER).await?;
        read_get_file(status, wait, &body)
    }
}

/// What a `getFile` answer says: the file's path, or why there is none.
fn read_get_file(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<String, FetchError> {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        if (200..300).contains(&status) {
            return Err(FetchError::temporary(
                "bad_response",
                format!("getFile answered HTTP {status} with something not the Bot API's"),
            ));
        }
        return Err(FetchError::from_status(status, retry_after));
    };
    if answer.ok {
        return answer
            .result
            .and_then(|f| f.file_path)
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| FetchError::permanent("not_found", "getFile named no file path"));
    }
    let code = answer.error_code.unwrap_or(status);
    let description = answer
        .description
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("error {code}"));
    if let Some(secs) = answer.parameters.and_then(|p| p.retry_after) {
        return Err(FetchError {
            retry_after: Some(Duration::from_secs(secs)),
            ..FetchError::temporary(format!("telegram_{code}"), description)
        });
    }
    let lower = description.to_ascii_lowercase();
    Err(if lower.contains("file is too big") {
        FetchError::permanent("too_large", description)
    } else if lower.contains("temporarily unavailable") {
        FetchError::temporary("file_unavailable", description)
    } else if lower.contains("file_id") || code == 404 {
        FetchError::permanent("not_found", description)
    } else if code == 401 {
        FetchError::permanent("unauthorized", "the Bot API refused the bot token")
    } else if matches!(code, 408 | 425 | 429) || code >= 500 {
        FetchError {
            retry_after,
            ..FetchError::temporary(format!("telegram_{code}"), description)
        }
    } else {
        FetchError::permanent(format!("telegram_{code}"), description)
    })
}

#[async_trait::async_trait]
impl MediaFetcher for TelegramFetcher {
    fn fetchable(&self, attachment: &Attachment) -> bool {
        attachment.provider_ref.is_some() && attachment.storage_key.is_none()
    }

    fn link_lifetime(&self) -> Duration {
        self.lifetime
    }

    async fn fetch(
        &self,
        attachment: &Attachment,
        http: &MediaHttp,
        sink: &mut dyn MediaSink,
    ) -> Result<Fetched, FetchError> {
        let file_id = attachment
            .provider_ref
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| FetchError::permanent("bad_file_id", "the attachment has no file_id"))?;
        let file_path = self
            .file_path(file_id, http)
            .await
            .map_err(|e| self.clean(e))?;
        let url = self.file_url(&file_path)?;
        let what = "Telegram's file server";
        let response = http
            .get(url.as_str())
            .map_err(|e| self.clean(e))?
            .header(USER_AGENT, AGENT)
            .send()
            .await
            .map_err(|e| self.clean(transport_error(&e, what)))?;
        if !response.status().is_success() {
            return Err(refusal(&response));
        }
        let declared = declared_content_type(&response);
        stream_into(response, sink, what)
            .await
            .map_err(|e| self.clean(e))?;
        Ok(Fetched {
            // The message's own type (Telegram re-encodes photos as JPEG,
            // voice notes are OGG/Opus) says more than the file server's,
            // which is mostly `application/octet-stream`.
            content_type: attachment.content_type.clone().or(declared),
            expected_sha256: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "7012345678:AAHrahasiaLaporCibinong_Bot-9x";

    fn fetcher(api_url: &str) -> Result<TelegramFetcher, String> {
        TelegramFetcher::new(TelegramFetchConfig {
            token: Secret::literal(TOKEN),
            api_url: api_url.into(),
            link_lifetime_seconds: DEFAULT_LINK_LIFETIME_SECONDS,
        })
    }

    #[test]
    fn urls_hold_the_token_and_the_file_path_segments() {
        let f = fetcher(API_URL).expect("fetcher");
        assert_eq!(
            f.get_file.as_str(),
            format!("https://api.telegram.org/bot{TOKEN}/getFile")
        );
        assert_eq!(
            f.file_url("photos/file_12.jpg").expect("url").as_str(),
            format!("https://api.telegram.org/file/bot{TOKEN}/photos/file_12.jpg")
        );
        assert_eq!(
            f.file_url("voice/file 3?.oga").expect("url").as_str(),
            format!("https://api.telegram.org/file/bot{TOKEN}/voice/file%203%3F.oga")
        );
        for bad in ["../getMe", "photos//x", "/etc/passwd", "photos/."] {
            assert_eq!(
                f.file_url(bad).err().map(|e| e.code),
                Some("bad_file_path".into()),
                "{bad}"
            );
        }
        assert!(!format!("{f:?}").contains("AAH"));
        let local = fetcher("http://127.0.0.1:8081/").expect("fetcher");
        assert_eq!(
            local.get_file.as_str(),
            format!("http://127.0.0.1:8081/bot{TOKEN}/getFile")
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            "api.telegram.org",
            "ftp://x",
            "https://api.telegram.org/?x=1",
        ] {
            assert!(fetcher(bad).is_err(), "{bad}");
        }
        let e = TelegramFetcher::new(TelegramFetchConfig {
            token: Secret::literal("7012345678:AAH/../x"),
            api_url: API_URL.into(),
            link_lifetime_seconds: 60,
        })
        .expect_err("bad token");
        assert!(!e.contains("AAH"), "{e}");
        assert!(
            TelegramFetcher::new(TelegramFetchConfig {
                token: Secret::literal(TOKEN),
                api_url: API_URL.into(),
                link_lifetime_seconds: 0,
            })
            .is_err()
        );
    }

    #[test]
    fn get_file_answers_are_read_by_their_words() {
        let read = |status, body: &str| read_get_file(status, None, body.as_bytes());
        assert_eq!(
            read(
                200,
                r#"{"ok":true,"result":{"file_id":"AgAC","file_unique_id":"AQAD","file_size":104737,"file_path":"photos/file_7.jpg"}}"#
            ),
            Ok("photos/file_7.jpg".into())
        );
        let code = |r: Result<String, FetchError>| r.err().map(|e| (e.code, e.temporary));
        assert_eq!(
            code(read(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: file is too big"}"#
            )),
            Some(("too_large".into(), false))
        );
        assert_eq!(
            code(read(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: invalid file_id"}"#
            )),
            Some(("not_found".into(), false))
        );
        assert_eq!(
            code(read(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: wrong file_id or the file is temporarily unavailable"}"#
            )),
            Some(("file_unavailable".into(), true))
        );
        assert_eq!(
            code(read(
                401,
                r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#
            )),
            Some(("unauthorized".into(), false))
        );
        assert_eq!(
            code(read(200, r#"{"ok":true,"result":{"file_id":"AgAC"}}"#)),
            Some(("not_found".into(), false))
        );
        assert_eq!(
            code(read(502, "<html>Bad Gateway</html>")),
            Some(("http_502".into(), true))
        );
        assert_eq!(
            code(read(200, "<html>ok</html>")),
            Some(("bad_response".into(), true))
        );
        let e = read(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 14","parameters":{"retry_after":14}}"#,
        )
        .expect_err("throttled");
        assert_eq!(
            (e.code.as_str(), e.temporary, e.retry_after),
            ("telegram_429", true, Some(Duration::from_secs(14)))
        );
    }
}
