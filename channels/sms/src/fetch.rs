//! Fetching the media of Twilio messages (MMS, and WhatsApp through
//! Twilio) for the gateway's media worker.
//!
//! Each attachment's `url` is a `MediaUrl{N}` of the webhook,
//! `https://api.twilio.com/2010-04-01/Accounts/AC…/Messages/MM…/Media/ME…`.
//! It is fetched with HTTP Basic (Account SID and Auth Token), which an
//! account that enforces HTTP auth on media requires, and answers with a
//! redirect to a signed URL of Twilio's storage, which is followed. The
//! client drops `Authorization` when a redirect leaves the host, so the
//! storage never sees the credentials.
//!
//! The credentials go only to the configured `api_hosts` and only over
//! https (plain http only where the instance allows private addresses, for
//! local stand-ins): a `MediaUrl` naming another host, as a forged payload
//! could, is refused as `untrusted_host` before any request.
//!
//! | answer | error |
//! |---|---|
//! | a URL on another host | permanent `untrusted_host` |
//! | a URL over plain http | permanent `insecure_url` |
//! | `404`, `410` (the media was deleted) | permanent `not_found` |
//! | `401`, `403` | permanent `http_401`, `http_403` |
//! | `429`, `5xx` | temporary `http_<status>`, after `Retry-After` |
//! | transport failure, timeout | temporary `network`, `timeout` |

use std::time::Duration;

use aduan_adapter::media::{
    FetchError, Fetched, MediaFetcher, MediaHttp, MediaSink, declared_content_type, refusal,
    stream_into, transport_error,
};
use aduan_adapter::{Attachment, Secret};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue, USER_AGENT};
use serde::Deserialize;

/// Seven days of retries: Twilio keeps a message's media until it is deleted.
pub const DEFAULT_LINK_LIFETIME_SECONDS: u64 = 7 * 24 * 3600;

/// The host of Twilio's `MediaUrl`s, the default `api_hosts`.
pub const TWILIO_API_HOST: &str = "api.twilio.com";

const AGENT: &str = concat!("aduan-media/", env!("CARGO_PKG_VERSION"));

/// How errors name the media host.
const WHAT: &str = "Twilio's media host";

/// The media settings of a Twilio instance (`[instances.media]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioFetchConfig {
    /// The account's SID, `AC…`.
    pub account_sid: String,
    /// The account's Auth Token (`env:TWILIO_AUTH_TOKEN` or `file:/path`).
    pub auth_token: Secret,
    /// How long after the message its media is retried. Default seven days.
    #[serde(default = "default_link_lifetime")]
    pub link_lifetime_seconds: u64,
    /// The hosts (names, without port) whose media URLs get the
    /// credentials; a URL elsewhere is refused. Default `["api.twilio.com"]`.
    #[serde(default = "default_api_hosts")]
    pub api_hosts: Vec<String>,
}

fn default_link_lifetime() -> u64 {
    DEFAULT_LINK_LIFETIME_SECONDS
}

fn default_api_hosts() -> Vec<String> {
    vec![TWILIO_API_HOST.into()]
}

/// Fetches the media of one Twilio account's messages.
pub struct TwilioFetcher {
    /// `Basic …`, marked sensitive.
    auth: HeaderValue,
    api_hosts: Vec<String>,
    lifetime: Duration,
}

impl std::fmt::Debug for TwilioFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioFetcher")
            .field("api_hosts", &self.api_hosts)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl TwilioFetcher {
    /// Checks the settings: an account SID, a token a header can carry, at
    /// least one API host, a lifetime above zero.
    pub fn new(config: TwilioFetchConfig) -> Result<Self, String> {
        use base64::Engine as _;
        crate::send::check_id("account_sid", &config.account_sid)?;
        if config.auth_token.expose().trim().is_empty() {
            return Err("auth_token is empty".into());
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            config.account_sid,
            config.auth_token.expose()
        ));
        let mut auth = HeaderValue::from_str(&format!("Basic {basic}"))
            .map_err(|_| "auth_token has characters a header cannot carry".to_string())?;
        auth.set_sensitive(true);
        let mut api_hosts = Vec::with_capacity(config.api_hosts.len());
        for host in &config.api_hosts {
            let host = host.trim().to_ascii_lowercase();
            // A host name alone: it reads back the same as a URL's host.
            let alone = Url::parse(&format!("https://{host}/"))
                .ok()
                .filter(|u| u.host_str() == Some(host.as_str()) && u.port().is_none());
            if host.is_empty() || alone.is_none() {
                return Err(format!("api_hosts: `{host}` is not a host name"));
            }
            api_hosts.push(host);
        }
        if api_hosts.is_empty() {
            return Err("api_hosts names no host".into());
        }
        if config.link_lifetime_seconds == 0 {
            return Err("link_lifetime_seconds must be more than 0".into());
        }
        Ok(TwilioFetcher {
            auth,
            api_hosts,
            lifetime: Duration::from_secs(config.link_lifetime_seconds),
        })
    }

    /// Whether `url` may be given the credentials.
    fn check(&self, url: &str, http: &MediaHttp) -> Result<(), FetchError> {
        let parsed = Url::parse(url).map_err(|_| FetchError::permanent("bad_url", "not a URL"))?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.api_hosts.contains(&host) {
            return Err(FetchError::permanent(
                "untrusted_host",
                "the media URL is not on a configured Twilio API host",
            ));
        }
        if parsed.scheme() != "https" && !http.allows_private() {
            return Err(FetchError::permanent(
                "insecure_url",
                "the media URL is not https; the credentials go only over TLS",
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl MediaFetcher for TwilioFetcher {
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
        let request = http.get(url)?;
        self.check(url, http)?;
        let response = request
            .header(AUTHORIZATION, self.auth.clone())
            .header(USER_AGENT, AGENT)
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

    fn config() -> TwilioFetchConfig {
        TwilioFetchConfig {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: Secret::literal("rahasia-twilio"),
            link_lifetime_seconds: DEFAULT_LINK_LIFETIME_SECONDS,
            api_hosts: default_api_hosts(),
        }
    }

    #[test]
    fn credentials_go_only_to_twilio_over_tls() {
        let f = TwilioFetcher::new(config()).expect("fetcher");
        let guarded = MediaHttp::new(reqwest::Client::new(), false);
        let code = |url: &str, http: &MediaHttp| f.check(url, http).err().map(|e| e.code);
        let media = "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/MM1/Media/ME1";
        assert_eq!(code(media, &guarded), None);
        assert_eq!(
            code(&media.replace("api.twilio", "API.Twilio"), &guarded),
            None
        );
        for other in [
            "https://api.twilio.com.attacker.example/x",
            "https://media.example.net/ME1",
            "https://user@evil.example/api.twilio.com",
        ] {
            assert_eq!(
                code(other, &guarded),
                Some("untrusted_host".into()),
                "{other}"
            );
        }
        assert_eq!(
            code(&media.replace("https", "http"), &guarded),
            Some("insecure_url".into())
        );
        let testing = MediaHttp::new(reqwest::Client::new(), true);
        assert_eq!(code(&media.replace("https", "http"), &testing), None);
        assert!(!format!("{f:?}").contains("rahasia"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = config();
        c.account_sid = "AC../x".into();
        assert!(TwilioFetcher::new(c).is_err());
        let mut c = config();
        c.api_hosts = Vec::new();
        assert!(TwilioFetcher::new(c).is_err());
        let mut c = config();
        c.api_hosts = vec!["https://api.twilio.com/".into()];
        assert!(TwilioFetcher::new(c).is_err());
        let mut c = config();
        c.link_lifetime_seconds = 0;
        assert!(TwilioFetcher::new(c).is_err());
        let mut c = config();
        c.auth_token = Secret::literal("  ");
        assert!(TwilioFetcher::new(c).is_err());
        for bad in [
            "api.twilio.com:443",
            "user@api.twilio.com",
            "api.twilio.com/x",
            "",
        ] {
            let mut c = config();
            c.api_hosts = vec![bad.into()];
            assert!(TwilioFetcher::new(c).is_err(), "{bad}");
        }
        let mut c = config();
        c.api_hosts = vec!["127.0.0.1".into(), "[::1]".into(), "API.Twilio.com".into()];
        assert!(TwilioFetcher::new(c).is_ok());
    }
}
