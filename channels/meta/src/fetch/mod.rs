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

use aduan_adapter::media::{FetchError, MediaSink};
use aduan_adapter::reply::retry_after;

pub use cdn::{CdnFetchConfig, CdnFetcher};
pub use whatsapp::{WhatsAppFetchConfig, WhatsAppFetcher};

/// The `User-Agent` of every fetch: WhatsApp's media host answers a
/// request without one with an error page instead of the file.
pub(crate) const USER_AGENT: &str = concat!("aduan-media/", env!("CARGO_PKG_VERSION"));

/// The most of a JSON answer (a media lookup) read; such answers are a few
/// hundred bytes.
const MAX_ANSWER: usize = 64 * 1024;

/// A transport failure as a fetch error. A refusal of the gateway's guarded
/// client (a [`FetchError`] in the source chain: `forbidden_address`,
/// `too_many_redirects`, `bad_url`) is returned as it is; a timeout is a
/// temporary `timeout`, anything else a temporary `network`, described by
/// its kind alone so that no URL reaches the message.
pub(crate) fn transport(e: &reqwest::Error, what: &str) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<FetchError>() {
            return refused.clone();
        }
        source = s.source();
    }
    if e.is_timeout() {
        return FetchError::temporary("timeout", format!("timed out waiting for {what}"));
    }
    if e.is_redirect() {
        return FetchError::permanent("too_many_redirects", format!("{what} redirected too often"));
    }
    let message = if e.is_connect() {
        format!("could not connect to {what}")
    } else if e.is_body() || e.is_decode() {
        format!("the answer of {what} broke off")
    } else {
        format!("the request to {what} failed")
    };
    FetchError::temporary("network", message)
}

/// The fetch error of an answer that is not a success: its status read the
/// generic way, after its `Retry-After` when given.
pub(crate) fn refusal(response: &reqwest::Response) -> FetchError {
    FetchError::from_status(response.status().as_u16(), retry_after(response.headers()))
}

/// The answer's declared content type, if it is readable and says more
/// than `application/octet-stream` (which only says "bytes": the type the
/// webhook gave is then the better one).
pub(crate) fn content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .filter(|v| {
            !v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/octet-stream")
        })
        .map(str::to_string)
}

/// Writes the body of `response` into `sink` chunk by chunk; a sink error
/// (over the size limit, the store failed) ends the fetch as it is.
pub(crate) async fn stream(
    mut response: reqwest::Response,
    sink: &mut dyn MediaSink,
    what: &str,
) -> Result<(), FetchError> {
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e, what))? {
        sink.write(&chunk).await?;
    }
    Ok(())
}

/// The body of a small answer, up to [`MAX_ANSWER`] bytes.
pub(crate) async fn read_small(
    mut response: reqwest::Response,
    what: &str,
) -> Result<Vec<u8>, FetchError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e, what))? {
        let room = MAX_ANSWER - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() == MAX_ANSWER {
            break;
        }
    }
    Ok(bytes)
}

/// A lifetime setting in seconds, refused when zero.
pub(crate) fn lifetime(seconds: u64) -> Result<std::time::Duration, String> {
    if seconds == 0 {
        return Err("link_lifetime_seconds must be more than 0".into());
    }
    Ok(std::time::Duration::from_secs(seconds))
}
