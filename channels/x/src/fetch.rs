//! Fetching the media of X direct messages and mentions for the gateway's
//! media worker.
//!
//! A Tweet's photos and videos are public CDN URLs (`pbs.twimg.com`,
//! `video.twimg.com`), fetched as given. A direct message's media lives on
//! `ton.twitter.com` and must be fetched with a request signed by the
//! account's OAuth 1.0a keys (X's "Retrieving media" guide for direct
//! messages); URLs on the `signed_hosts` are signed with them, over https
//! only (plain http only where the instance allows private addresses, for
//! local stand-ins), and never a URL elsewhere, so a signature is made only
//! for X.
//!
//! | answer | error |
//! |---|---|
//! | a URL on a signed host without the four keys configured | permanent `missing_credentials` |
//! | a URL on a signed host over plain http | permanent `insecure_url` |
//! | `404`, `410` | permanent `not_found` |
//! | `401`, `403` | permanent `http_401`, `http_403` |
//! | `429`, `5xx` | temporary `http_<status>`, after `Retry-After` |
//! | transport failure, timeout | temporary `network`, `timeout` |

use std::fmt;
use std::time::Duration;

use aduan_adapter::media::{
    FetchError, Fetched, MediaFetcher, MediaHttp, MediaSink, declared_content_type, refusal,
    stream_into, transport_error,
};
use aduan_adapter::{Attachment, Secret};
use serde::Deserialize;
use url::Url;

use crate::oauth::{self, OAuth1};

/// Seven days of retries: X's media URLs do not expire while the Tweet or
/// the message exists.
pub const DEFAULT_LINK_LIFETIME_SECONDS: u64 = 7 * 24 * 3600;

/// The host of direct-message media, the default `signed_hosts`.
pub const DM_MEDIA_HOST: &str = "ton.twitter.com";

const AGENT: &str = concat!("aduan-media/", env!("CARGO_PKG_VERSION"));

/// How errors name the media host.
const WHAT: &str = "X's media host";

/// The media settings of an X instance (`[instances.media]`). The four
/// OAuth 1.0a keys are those of the account, as for its replies; without
/// them only public media (Tweets) can be fetched.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XFetchConfig {
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
    /// The hosts (names, without port) whose URLs are fetched signed.
    /// Default `["ton.twitter.com"]`.
    #[serde(default = "default_signed_hosts")]
    pub signed_hosts: Vec<String>,
    /// How long after the message its media is retried. Default seven days.
    #[serde(default = "default_link_lifetime")]
    pub link_lifetime_seconds: u64,
}

impl Default for XFetchConfig {
    fn default() -> Self {
        XFetchConfig {
            consumer_key: None,
            consumer_secret: None,
            access_token: None,
            access_token_secret: None,
            signed_hosts: default_signed_hosts(),
            link_lifetime_seconds: DEFAULT_LINK_LIFETIME_SECONDS,
        }
    }
}

fn default_signed_hosts() -> Vec<String> {
    vec![DM_MEDIA_HOST.into()]
}

fn default_link_lifetime() -> u64 {
    DEFAULT_LINK_LIFETIME_SECONDS
}

/// Fetches the media of one X account's messages and mentions.
pub struct XMediaFetcher {
    keys: Option<OAuth1>,
    signed_hosts: Vec<String>,
    lifetime: Duration,
}

impl fmt::Debug for XMediaFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XMediaFetcher")
            .field("signed", &self.keys.is_some())
            .field("signed_hosts", &self.signed_hosts)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl XMediaFetcher {
    /// Checks the settings: all four keys or none, host names alone, a
    /// lifetime above zero.
    pub fn new(config: XFetchConfig) -> Result<Self, String> {
        let keys = match (
            config.consumer_key,
            config.consumer_secret,
            config.access_token,
            config.access_token_secret,
        ) {
            (
                Some(consumer_key),
                Some(consumer_secret),
                Some(access_token),
                Some(access_token_secret),
            ) => Some(OAuth1 {
                consumer_key,
                consumer_secret,
                access_token,
                access_token_secret,
            }),
            (None, None, None, None) => None,
            _ => {
                return Err("give all four of `consumer_key`, `consumer_secret`, \
                    `access_token` and `access_token_secret`, or none"
                    .into());
            }
        };
        let mut signed_hosts = Vec::with_capacity(config.signed_hosts.len());
        for host in &config.signed_hosts {
            let host = host.trim().to_ascii_lowercase();
            let alone = Url::parse(&format!("https://{host}/"))
                .ok()
                .filter(|u| u.host_str() == Some(host.as_str()) && u.port().is_none());
            if host.is_empty() || alone.is_none() {
                return Err(format!("signed_hosts: `{host}` is not a host name"));
            }
            signed_hosts.push(host);
        }
        if config.link_lifetime_seconds == 0 {
            return Err("link_lifetime_seconds must be more than 0".into());
        }
        Ok(XMediaFetcher {
            keys,
            signed_hosts,
            lifetime: Duration::from_secs(config.link_lifetime_seconds),
        })
    }

    /// The `Authorization` of a `GET` of `url`, when its host is signed for.
    fn authorization(&self, url: &Url, http: &MediaHttp) -> Result<Option<String>, FetchError> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.signed_hosts.contains(&host) {
            return Ok(None);
        }
        let Some(keys) = &self.keys else {
            return Err(FetchError::permanent(
                "missing_credentials",
                "direct-message media needs the account's OAuth 1.0a keys",
            ));
        };
        if url.scheme() != "https" && !http.allows_private() {
            return Err(FetchError::permanent(
                "insecure_url",
                "the media URL is not https; signed requests go only over TLS",
            ));
        }
        let nonce = oauth::nonce().map_err(|e| FetchError::temporary("nonce", e))?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Some(keys.authorization("GET", url, &[], &nonce, timestamp)))
    }
}

#[async_trait::async_trait]
impl MediaFetcher for XMediaFetcher {
    fn fetchable(&self, attachment: &Attachment) -> bool {
        attachment.url.is_some() && attachment.storage_key.is_none()
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
        let url = attachment
            .url
            .as_deref()
            .map(str::trim)
            .ok_or_else(|| FetchError::permanent("bad_url", "the attachment has no URL"))?;
        let mut request = http.get(url)?;
        let parsed = Url::parse(url).map_err(|_| FetchError::permanent("bad_url", "not a URL"))?;
        if let Some(auth) = self.authorization(&parsed, http)? {
            let mut value = http::HeaderValue::from_str(&auth).map_err(|_| {
                FetchError::permanent("bad_url", "the signature cannot be a header")
            })?;
            value.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let response = request
            .header(http::header::USER_AGENT, AGENT)
            .send()
            .await
            .map_err(|e| transport_error(&e, WHAT))?;
        if !response.status().is_success() {
            return Err(refusal(&response));
        }
        let declared = declared_content_type(&response);
        stream_into(response, sink, WHAT).await?;
        Ok(Fetched {
            content_type: declared.or_else(|| attachment.content_type.clone()),
            expected_sha256: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> XFetchConfig {
        XFetchConfig {
            consumer_key: Some(Secret::literal("kunciKonsumen")),
            consumer_secret: Some(Secret::literal("rahasiaKonsumen")),
            access_token: Some(Secret::literal("1460000000000000001-tokenAkses")),
            access_token_secret: Some(Secret::literal("rahasiaToken")),
            ..XFetchConfig::default()
        }
    }

    #[test]
    fn only_dm_media_is_signed_and_only_over_tls() {
        let f = XMediaFetcher::new(keys()).expect("fetcher");
        let guarded = MediaHttp::new(reqwest::Client::new(), false);
        let url = |s: &str| Url::parse(s).expect("url");
        let dm = url(
            "https://ton.twitter.com/1.1/ton/data/dm/1870000000000000001/1870000000000000002/aB3dE5fG.jpg",
        );
        let auth = f
            .authorization(&dm, &guarded)
            .expect("signed")
            .expect("a signature");
        assert!(auth.starts_with("OAuth "), "{auth}");
        assert!(
            auth.contains("oauth_consumer_key=\"kunciKonsumen\""),
            "{auth}"
        );
        assert!(!auth.contains("rahasia"), "{auth}");
        for public in [
            "https://pbs.twimg.com/media/GdXyZ12aAAAbCdE.jpg",
            "https://video.twimg.com/ext_tw_video/1/pu/vid/720x1280/x.mp4",
            "https://ton.twitter.com.example.net/x",
        ] {
            assert_eq!(
                f.authorization(&url(public), &guarded),
                Ok(None),
                "{public}"
            );
        }
        let plain = url("http://ton.twitter.com/1.1/ton/data/dm/1/2/x.jpg");
        assert_eq!(
            f.authorization(&plain, &guarded).err().map(|e| e.code),
            Some("insecure_url".into())
        );
        let unsigned = XMediaFetcher::new(XFetchConfig::default()).expect("fetcher");
        assert_eq!(
            unsigned.authorization(&dm, &guarded).err().map(|e| e.code),
            Some("missing_credentials".into())
        );
        assert!(!format!("{f:?}").contains("rahasia"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = keys();
        c.access_token_secret = None;
        assert!(XMediaFetcher::new(c).is_err());
        for bad in ["ton.twitter.com:443", "https://ton.twitter.com", ""] {
            let mut c = keys();
            c.signed_hosts = vec![bad.into()];
            assert!(XMediaFetcher::new(c).is_err(), "{bad}");
        }
        let mut c = keys();
        c.link_lifetime_seconds = 0;
        assert!(XMediaFetcher::new(c).is_err());
    }
}
