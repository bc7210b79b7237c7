//! Fetching attachments before the provider's link expires: the interface
//! every channel's media fetcher implements, and the guarded HTTP access
//! the gateway gives it.
//!
//! A fetcher knows its provider's way to the bytes (a media id to look up,
//! a file id, a URL needing credentials); it writes them into a
//! [`MediaSink`] the gateway provides, which hashes, caps and stores them as
//! they arrive, so no file is ever held whole in memory.

use std::net::IpAddr;
use std::time::Duration;

use crate::complaint::Attachment;

/// Why a fetch did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FetchError {
    /// A stable code: `not_found`, `too_large`, `sha256_mismatch`,
    /// `forbidden_address`, `network`, `http_<status>`, …
    pub code: String,
    /// For people; never a token.
    pub message: String,
    /// Whether another attempt may succeed (network, 5xx, throttling).
    pub temporary: bool,
    /// At least this long before the next attempt, when the provider said.
    pub retry_after: Option<Duration>,
}

impl FetchError {
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        FetchError {
            code: code.into(),
            message: message.into(),
            temporary: false,
            retry_after: None,
        }
    }

    pub fn temporary(code: impl Into<String>, message: impl Into<String>) -> Self {
        FetchError {
            temporary: true,
            ..FetchError::permanent(code, message)
        }
    }

    /// The generic reading of an HTTP status: 404/410 `not_found`, 408, 425,
    /// 429 and 5xx temporary, anything else permanent.
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> Self {
        match status {
            404 | 410 => {
                FetchError::permanent("not_found", format!("the provider answered {status}"))
            }
            408 | 425 | 429 | 500..=599 => FetchError {
                retry_after,
                ..FetchError::temporary(
                    format!("http_{status}"),
                    format!("the provider answered {status}"),
                )
            },
            _ => FetchError::permanent(
                format!("http_{status}"),
                format!("the provider answered {status}"),
            ),
        }
    }
}

/// Where a fetcher writes an attachment's bytes, in order.
#[async_trait::async_trait]
pub trait MediaSink: Send {
    /// Takes the next chunk. An `Err` (the attachment is over its size
    /// limit, or the store failed) ends the fetch with that error.
    async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError>;
}

/// What the provider said of the bytes a fetch wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The content type the provider declared for the download.
    pub content_type: Option<String>,
    /// The SHA-256 (hex) the provider gave for the file, to be checked
    /// against the bytes (WhatsApp).
    pub expected_sha256: Option<String>,
}

/// A channel's media fetcher, built per instance by its channel crate.
#[async_trait::async_trait]
pub trait MediaFetcher: Send + Sync {
    /// Whether the fetcher can get this attachment (it has the provider
    /// reference or URL the fetcher needs, and no `storage_key` yet).
    fn fetchable(&self, attachment: &Attachment) -> bool;

    /// How long after the complaint was received the provider's link or id
    /// stays usable: the horizon of retries.
    fn link_lifetime(&self) -> Duration;

    /// Fetches the bytes of `attachment` into `sink`.
    async fn fetch(
        &self,
        attachment: &Attachment,
        http: &MediaHttp,
        sink: &mut dyn MediaSink,
    ) -> Result<Fetched, FetchError>;
}

/// The HTTP access a fetcher is given: a client whose resolver refuses
/// loopback, private, link-local and metadata addresses (unless the
/// instance allows them, for tests), with each redirect checked again,
/// and the same check for addresses written into URLs.
#[derive(Clone, Debug)]
pub struct MediaHttp {
    client: reqwest::Client,
    allow_private: bool,
}

impl MediaHttp {
    /// Built by the gateway around a client with its guarded resolver.
    pub fn new(client: reqwest::Client, allow_private: bool) -> Self {
        MediaHttp {
            client,
            allow_private,
        }
    }

    /// A `GET` of `url` after checking its scheme and, when it names an
    /// address or a `localhost` name, that it may be reached.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, FetchError> {
        let parsed =
            url::Url::parse(url).map_err(|_| FetchError::permanent("bad_url", "not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::permanent(
                "bad_url",
                "only http and https are fetched",
            ));
        }
        let Some(host) = parsed.host() else {
            return Err(FetchError::permanent("bad_url", "the URL has no host"));
        };
        if !self.allow_private && is_private_host(&host) {
            return Err(FetchError::permanent(
                "forbidden_address",
                "the URL names an address that is not on the public internet",
            ));
        }
        Ok(self.client.get(parsed))
    }

    /// Whether private addresses are allowed (the instance's test setting).
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }
}

/// Whether `addr` is on the public internet: not loopback, private,
/// link-local (which holds cloud metadata at 169.254.169.254), shared
/// (100.64/10), unspecified, multicast, documentation, unique-local or
/// site-local. An IPv4-mapped address (`::ffff:a.b.c.d`) is judged as the
/// IPv4 address it is. Prefixes that carry an IPv4 address to a translator
/// or a tunnel are never public: IPv4-compatible `::a.b.c.d` (deprecated,
/// and `::1` is one), NAT64 `64:ff9b::/96` and its local-use `64:ff9b:1::/48`,
/// whose translator sits inside the network and may reach what the address
/// embeds; so is the discard prefix `100::/64`.
pub fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = a.segments();
            let compatible = s[..6] == [0; 6];
            let translated = s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0;
            let nat64 = s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1);
            let discard = s[..4] == [0x100, 0, 0, 0];
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || compatible
                || translated
                || nat64
                || discard
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// Whether `name` is `localhost` or a name under it (RFC 6761: all of them
/// are loopback), in any case and with any number of trailing dots. Such a
/// name is refused before any lookup: `localhost.` is not in `/etc/hosts`,
/// so the system resolver asks DNS for it, and with no DNS server answering
/// a fetch waited out its whole timeout instead of being refused.
pub fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    let Some(at) = name.len().checked_sub("localhost".len()) else {
        return false;
    };
    name.is_char_boundary(at)
        && name[at..].eq_ignore_ascii_case("localhost")
        && (at == 0 || name[..at].ends_with('.'))
}

/// Whether a URL's `host` may not be fetched: a literal address that is not
/// [`is_public`], or a [`is_local_name`]. Other names are judged by the
/// addresses they resolve to.
pub fn is_private_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(a) => !is_public(IpAddr::V4(*a)),
        url::Host::Ipv6(a) => !is_public(IpAddr::V6(*a)),
        url::Host::Domain(name) => is_local_name(name),
    }
}

/// A transport failure as a fetch error. A refusal of the gateway's guarded
/// client (a [`FetchError`] in the source chain: `forbidden_address`,
/// `too_many_redirects`, `bad_url`) is returned as it is; a timeout is a
/// temporary `timeout`, anything else a temporary `network`, described by
/// its kind and `what` (the host's name for people) alone, so that no URL,
/// and no token in one, reaches the message.
pub fn transport_error(e: &reqwest::Error, what: &str) -> FetchError {
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
pub fn refusal(response: &reqwest::Response) -> FetchError {
    FetchError::from_status(
        response.status().as_u16(),
        crate::reply::retry_after(response.headers()),
    )
}

/// The answer's declared content type, if it is readable and says more
/// than `application/octet-stream` (which only says "bytes": the type the
/// webhook gave is then the better one).
pub fn declared_content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
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
pub async fn stream_into(
    mut response: reqwest::Response,
    sink: &mut dyn MediaSink,
    what: &str,
) -> Result<(), FetchError> {
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, what))?
    {
        sink.write(&chunk).await?;
    }
    Ok(())
}

/// The body of a small answer (a media lookup, `getFile`), up to `max` bytes.
pub async fn read_small(
    mut response: reqwest::Response,
    what: &str,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, what))?
    {
        let room = max - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() == max {
            break;
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            // IPv4-compatible, the deprecated other way to embed IPv4.
            "::127.0.0.1",
            "::10.0.0.1",
            "::8.8.8.8",
            // IPv4-translated (SIIT).
            "::ffff:0:127.0.0.1",
            // NAT64, well-known and local-use prefixes.
            "64:ff9b::127.0.0.1",
            "64:ff9b::169.254.169.254",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::a00:1",
            // Site-local (deprecated, still routed inside some networks).
            "fec0::1",
            "feff:ffff::1",
            "100::1",
        ] {
            assert!(!is_public(private.parse().expect("addr")), "{private}");
        }
        for public in [
            "8.8.8.8",
            "157.240.1.1",
            "2a03:2880::1",
            "::ffff:157.240.1.1",
            "64:ff9c::1",
            "fe7f::1",
        ] {
            assert!(is_public(public.parse().expect("addr")), "{public}");
        }
    }

    #[test]
    fn localhost_names_are_local_in_every_spelling() {
        for local in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "LOCALHOST.",
            "LocalHost...",
            "redis.localhost",
            "Api.Internal.LOCALHOST..",
        ] {
            assert!(is_local_name(local), "{local}");
        }
        for name in [
            "notlocalhost",
            "localhost.example.id",
            "localhostx.",
            "xn--localhost",
            "",
            "...",
            "lapor.example.go.id.",
        ] {
            assert!(!is_local_name(name), "{name}");
        }
    }

    #[test]
    fn literal_addresses_in_urls_are_checked() {
        let http = MediaHttp::new(reqwest::Client::new(), false);
        for url in [
            "http://127.0.0.1/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://[64:ff9b::7f00:1]/x",
            "http://[::127.0.0.1]/x",
            "http://[fec0::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://LOCALHOST./x",
            "http://localhost../x",
            "http://cdn.localhost/x",
        ] {
            assert_eq!(
                http.get(url).err().map(|e| e.code),
                Some("forbidden_address".into())
            );
        }
        assert_eq!(
            http.get("file:///etc/passwd").err().map(|e| e.code),
            Some("bad_url".into())
        );
        assert!(http.get("https://lookaside.fbsbx.com/x").is_ok());
        assert!(
            MediaHttp::new(reqwest::Client::new(), true)
                .get("http://127.0.0.1/x")
                .is_ok()
        );
    }
}
