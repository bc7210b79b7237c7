//! Fetching the attachments of Meta's channels before their links expire,
//! for the gateway's media worker.
//!
//! - [`whatsapp`]: [`WhatsAppFetcher`]: a WhatsApp media id is looked up on
//!   the Graph API (`GET /{version}/{media-id}`), then the URL it answers is
//!   downloaded with the same Bearer token.
//! - [`cdn`]: [`CdnFetcher`]: Messenger, Instagram and Page comment
//!   attachments are signed CDN URLs, fetched as given without credentials
//!   (X's media URLs can be fetched the same way).
//!
//! Every request goes through [`MediaHttp::get`](aduan_adapter::media::MediaHttp::get),
//! whose client refuses addresses off the public internet; the bytes go to
//! the sink chunk by chunk as they arrive.

pub mod cdn;
pub mod whatsapp;

use aduan_adapter::media::FetchError;

pub use cdn::{CdnFetchConfig, CdnFetcher};
pub use whatsapp::{WhatsAppFetchConfig, WhatsAppFetcher};

/// The `User-Agent` of every fetch: WhatsApp's media host answers a
/// request without one with an error page instead of the file.
pub(crate) const USER_AGENT: &str = concat!("aduan-media/", env!("CARGO_PKG_VERSION"));

/// The most of a JSON answer (a media lookup) read; such answers are a few
/// hundred bytes.
const MAX_ANSWER: usize = 64 * 1024;

pub(crate) use aduan_adapter::media::{
    declared_content_type as content_type, refusal, stream_into as stream,
    transport_error as transport,
};

/// The body of a small answer, up to [`MAX_ANSWER`] bytes.
pub(crate) async fn read_small(
    response: reqwest::Response,
    what: &str,
) -> Result<Vec<u8>, FetchError> {
    aduan_adapter::media::read_small(response, what, MAX_ANSWER).await
}

/// A lifetime setting in seconds, refused when zero.
pub(crate) fn lifetime(seconds: u64) -> Result<std::time::Duration, String> {
    if seconds == 0 {
        return Err("link_lifetime_seconds must be more than 0".into());
    }
    Ok(std::time::Duration::from_secs(seconds))
}
