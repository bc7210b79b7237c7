//! WhatsApp media: `GET /{api_version}/{media-id}` with the Bearer token
//! answers `{"url","mime_type","sha256","file_size","id"}`; the `url`
//! (valid about five minutes) is then downloaded with the same token.
//!
//! The media id, the attachment's `provider_ref`, stays usable about seven
//! days after the message, so each attempt looks it up afresh and never
//! keeps a URL. The lookup's `sha256` is of the file's bytes; Meta has
//! written it as hex and, in webhooks, as base64, so it is passed on as
//! lowercase hex whichever it is, for the worker to check.
//!
//! | answer | error |
//! |---|---|
//! | lookup `404`, or Graph code 100 subcode 33 (no such object: the id expired) | permanent `not_found` |
//! | Graph code 190 (the token is invalid or expired) | permanent `unauthorized` |
//! | Graph throttling (4, 80007, 130429), `429`, `5xx` | temporary, after `Retry-After` when given |
//! | a lookup without a `url` | temporary `bad_response` |
//! | download not a success | read by its status ([`FetchError::from_status`]) |
//! | transport failure, timeout | temporary `network`, `timeout` |

use std::time::Duration;

use aduan_adapter::media::{FetchError, Fetched, MediaFetcher, MediaHttp, MediaSink};
use aduan_adapter::text::digest_hex;
use aduan_adapter::{Attachment, Secret};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue, USER_AGENT};
use serde::Deserialize;

use crate::send::{Answer, GraphError};

/// Seven days: how long Meta keeps the media of a received message.
pub const DEFAULT_LINK_LIFETIME_SECONDS: u64 = 7 * 24 * 3600;

/// Graph codes of throttling: worth another attempt later.
const THROTTLED: [i64; 3] = [4, 80007, 130429];

/// Graph code of an id that names nothing (or nothing this token may read).
const UNKNOWN_OBJECT: (i64, i64) = (100, 33);

/// Graph code of an invalid or expired access token.
const INVALID_TOKEN: i64 = 190;

/// The media settings of a WhatsApp instance (`[instances.media]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppFetchConfig {
    /// A system user's access token with `whatsapp_business_messaging`
    /// (`env:NAME` or `file:/path`).
    pub access_token: Secret,
    /// Default `https://graph.facebook.com`.
    #[serde(default = "crate::send::default_base_url")]
    pub base_url: String,
    /// Default `v21.0`.
    #[serde(default = "crate::send::default_api_version")]
    pub api_version: String,
    /// When set, each lookup names the business number's id
    /// (`?phone_number_id=`), and Meta answers only for media of that number.
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// How long after the message its media id is retried. Default seven days.
    #[serde(default = "default_link_lifetime")]
    pub link_lifetime_seconds: u64,
}

fn default_link_lifetime() -> u64 {
    DEFAULT_LINK_LIFETIME_SECONDS
}

/// Fetches WhatsApp media by id for one business account.
pub struct WhatsAppFetcher {
    /// `{base_url}/{api_version}`.
    root: Url,
    /// `Bearer <token>`, marked sensitive.
    auth: HeaderValue,
    token: Secret,
    phone_number_id: Option<String>,
    lifetime: Duration,
}

impl std::fmt::Debug for WhatsAppFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppFetcher")
            .field("root", &self.root.as_str())
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// The media lookup's answer.
#[derive(Deserialize)]
struct Lookup {
    url: Option<String>,
    mime_type: Option<String>,
    sha256: Option<String>,
}

impl WhatsAppFetcher {
    /// Checks the settings: an http(s) base URL without query, a plain
    /// version, a token a header can carry, a lifetime above zero.
    pub fn new(config: WhatsAppFetchConfig) -> Result<Self, String> {
        let base = config.base_url.trim_end_matches('/');
        let mut root =
            Url::parse(base).map_err(|e| format!("base_url `{base}` is not a URL: {e}"))?;
        if !matches!(root.scheme(), "http" | "https")
            || root.cannot_be_a_base()
            || root.query().is_some()
            || root.fragment().is_some()
        {
            return Err(format!(
                "base_url `{base}` must be an http(s) URL without query or fragment"
            ));
        }
        crate::send::check_segment("api_version", &config.api_version)?;
        if let Some(id) = &config.phone_number_id {
            crate::send::check_segment("phone_number_id", id)?;
        }
        root.path_segments_mut()
            .map_err(|()| format!("base_url `{base}` is not an http(s) URL"))?
            .pop_if_empty()
            .push(&config.api_version);
        let token = config.access_token;
        if token.expose().trim().is_empty() {
            return Err("access_token is empty".into());
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| "access_token has characters a header cannot carry".to_string())?;
        auth.set_sensitive(true);
        Ok(WhatsAppFetcher {
            root,
            auth,
            token,
            phone_number_id: config.phone_number_id,
            lifetime: super::lifetime(config.link_lifetime_seconds)?,
        })
    }

    fn lookup_url(&self, media_id: &str) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.push(media_id);
        }
        if let Some(id) = &self.phone_number_id {
            url.query_pairs_mut().append_pair("phone_number_id", id);
        }
        url
    }

    /// A failed lookup's error, from the Graph error in its body if any.
    async fn lookup_refusal(&self, response: reqwest::Response) -> FetchError {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let fallback = super::refusal(&response);
        let Ok(body) = super::read_small(response, "the Graph API").await else {
            return fallback;
        };
        let answer = Answer {
            status,
            headers,
            body,
        };
        let Some(e @ GraphError { code: Some(_), .. }) = answer.graph_error() else {
            return fallback;
        };
        let code = e.code.unwrap_or_default();
        let message = self.masked(&e.describe());
        if status == 404 || (code, e.error_subcode.unwrap_or_default()) == UNKNOWN_OBJECT {
            FetchError::permanent("not_found", message)
        } else if code == INVALID_TOKEN {
            FetchError::permanent("unauthorized", message)
        } else if THROTTLED.contains(&code) || matches!(status, 408 | 425 | 429) || status >= 500 {
            FetchError {
                retry_after: answer.retry_after(),
                ..FetchError::temporary(format!("graph_{code}"), message)
            }
        } else {
            FetchError {
                message,
                ..fallback
            }
        }
    }

    /// `message` without the token, should the provider have echoed it.
    fn masked(&self, message: &str) -> String {
        message.replace(self.token.expose(), "***")
    }
}

#[async_trait::async_trait]
impl MediaFetcher for WhatsAppFetcher {
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
        let media_id = attachment
            .provider_ref
            .as_deref()
            .map(str::trim)
            .ok_or_else(|| {
                FetchError::permanent("bad_media_id", "the attachment has no media id")
            })?;
        if !crate::send::is_segment(media_id) {
            return Err(FetchError::permanent(
                "bad_media_id",
                "the media id is not a Graph id",
            ));
        }
        let what = "the Graph API";
        let response = http
            .get(self.lookup_url(media_id).as_str())?
            .header(AUTHORIZATION, self.auth.clone())
            .header(USER_AGENT, super::USER_AGENT)
            .send()
            .await
            .map_err(|e| super::transport(&e, what))?;
        if !response.status().is_success() {
            return Err(self.lookup_refusal(response).await);
        }
        let body = super::read_small(response, what).await?;
        let lookup: Lookup = serde_json::from_slice(&body).map_err(|_| {
            FetchError::temporary("bad_response", "the media lookup's answer is not its JSON")
        })?;
        let url = lookup.url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            FetchError::temporary("bad_response", "the media lookup answered no URL")
        })?;

        let what = "WhatsApp's media host";
        let response = http
            .get(url.trim())?
            .header(AUTHORIZATION, self.auth.clone())
            .header(USER_AGENT, super::USER_AGENT)
            .send()
            .await
            .map_err(|e| super::transport(&e, what))?;
        if !response.status().is_success() {
            return Err(super::refusal(&response));
        }
        let declared = super::content_type(&response);
        super::stream(response, sink, what).await?;
        Ok(Fetched {
            content_type: lookup
                .mime_type
                .filter(|m| !m.trim().is_empty())
                .or(declared)
                .or_else(|| attachment.content_type.clone()),
            expected_sha256: lookup
                .sha256
                .as_deref()
                .and_then(digest_hex)
                .or_else(|| attachment.sha256.as_deref().and_then(digest_hex)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_like: &[(&str, &str)]) -> WhatsAppFetchConfig {
        let mut map = serde_json::Map::new();
        map.insert("access_token".into(), "EAAGrahasia".into());
        for (k, v) in toml_like {
            map.insert((*k).into(), (*v).into());
        }
        serde_json::from_value(map.into()).expect("config")
    }

    #[test]
    fn defaults_and_lookup_urls() {
        let f = WhatsAppFetcher::new(config(&[])).expect("fetcher");
        assert_eq!(f.link_lifetime(), Duration::from_secs(7 * 24 * 3600));
        assert_eq!(
            f.lookup_url("1037543291543636").as_str(),
            "https://graph.facebook.com/v21.0/1037543291543636"
        );
        let f = WhatsAppFetcher::new(config(&[
            ("base_url", "http://127.0.0.1:9/graph/"),
            ("phone_number_id", "106540352242922"),
        ]))
        .expect("fetcher");
        assert_eq!(
            f.lookup_url("1037543291543636").as_str(),
            "http://127.0.0.1:9/graph/v21.0/1037543291543636?phone_number_id=106540352242922"
        );
        assert!(!format!("{f:?}").contains("EAAGrahasia"));
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            ("base_url", "graph.facebook.com"),
            ("base_url", "https://graph.facebook.com/?access_token=x"),
            ("api_version", "v21.0/../me"),
            ("phone_number_id", "1065/x"),
        ] {
            assert!(WhatsAppFetcher::new(config(&[bad])).is_err(), "{bad:?}");
        }
        let mut c = config(&[]);
        c.link_lifetime_seconds = 0;
        assert!(WhatsAppFetcher::new(c).is_err());
        let mut c = config(&[]);
        c.access_token = Secret::literal("EAAG\nrahasia");
        let e = WhatsAppFetcher::new(c).expect_err("bad token");
        assert!(!e.contains("rahasia"), "{e}");
        let unknown: Result<WhatsAppFetchConfig, _> =
            serde_json::from_value(serde_json::json!({"access_token": "t", "acess_token": "t"}));
        assert!(unknown.is_err());
    }
}
