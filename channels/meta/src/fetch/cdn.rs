//! Attachments that arrive as CDN URLs: Messenger and Instagram messages
//! (`attachments[].payload.url`), Page and Instagram comments (`photo`,
//! `video`), and X's media URLs. The URL is fetched as given, without
//! credentials: the signature in its query is the authorization.
//!
//! Meta signs these URLs with an expiry (the `oe` parameter) some days
//! ahead, so the default lifetime is three days: long enough for retries
//! through an outage, short enough not to keep trying a URL that has
//! certainly expired (it then answers `403`, a permanent `http_403`).

use std::time::Duration;

use aduan_adapter::Attachment;
use aduan_adapter::media::{FetchError, Fetched, MediaFetcher, MediaHttp, MediaSink};
use reqwest::header::USER_AGENT;
use serde::Deserialize;

/// Three days, within the expiry Meta signs into its CDN URLs.
pub const DEFAULT_LINK_LIFETIME_SECONDS: u64 = 3 * 24 * 3600;

/// The media settings of an instance whose attachments are CDN URLs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnFetchConfig {
    /// How long after the message its URL is retried. Default three days.
    #[serde(default = "default_link_lifetime")]
    pub link_lifetime_seconds: u64,
}

impl Default for CdnFetchConfig {
    fn default() -> Self {
        CdnFetchConfig {
            link_lifetime_seconds: DEFAULT_LINK_LIFETIME_SECONDS,
        }
    }
}

fn default_link_lifetime() -> u64 {
    DEFAULT_LINK_LIFETIME_SECONDS
}

/// Fetches attachments by their URL, as given, without credentials.
#[derive(Debug)]
pub struct CdnFetcher {
    lifetime: Duration,
}

impl CdnFetcher {
    /// Checks the settings (a lifetime above zero).
    pub fn new(config: CdnFetchConfig) -> Result<Self, String> {
        Ok(CdnFetcher {
            lifetime: super::lifetime(config.link_lifetime_seconds)?,
        })
    }
}

#[async_trait::async_trait]
impl MediaFetcher for CdnFetcher {
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
        let what = "the media host";
        let response = http
            .get(url)?
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
            content_type: declared.or_else(|| attachment.content_type.clone()),
            expected_sha256: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_adapter::AttachmentKind;

    #[test]
    fn urls_without_a_stored_copy_are_fetchable() {
        let f = CdnFetcher::new(CdnFetchConfig::default()).expect("fetcher");
        assert_eq!(f.link_lifetime(), Duration::from_secs(3 * 24 * 3600));
        let mut a = Attachment::new(AttachmentKind::Image);
        assert!(!f.fetchable(&a));
        a.url = Some("https://scontent.xx.fbcdn.net/v/t1.15752-9/foto.jpg?oe=6790A1B2".into());
        assert!(f.fetchable(&a));
        a.storage_key = Some("sha256/ab/cd".into());
        assert!(!f.fetchable(&a));
        assert!(
            CdnFetcher::new(CdnFetchConfig {
                link_lifetime_seconds: 0
            })
            .is_err()
        );
    }
}
