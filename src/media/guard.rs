//! The HTTP client the media worker hands to every fetcher (inside
//! [`MediaHttp`](aduan_adapter::media::MediaHttp)): one that cannot be
//! turned against the gateway's own network.
//!
//! Attachment URLs come from provider payloads (Messenger, Instagram, X and
//! Twilio give URLs, WhatsApp's media lookup answers one), and whoever can
//! get a payload accepted chooses them. Fetched blindly, a URL such as
//! `http://169.254.169.254/latest/meta-data/…` would read the cloud
//! metadata service (and its credentials) into the evidence store, and
//! `http://10.0.0.7:6379/` would probe internal hosts from inside: server-side
//! request forgery. So this client:
//!
//! - resolves names itself and drops every address that is not
//!   [`is_public`]; a name left with none fails with `forbidden_address`.
//!   The check is on the addresses the connection is actually made to, not
//!   on an earlier lookup, so DNS rebinding (a name that answers a public
//!   address to a first check and a private one to the connection) gains
//!   nothing;
//! - checks every redirect again: at most [`MAX_REDIRECTS`], only to
//!   `http` or `https`, and never to a literal address that is not public
//!   (literal addresses skip the resolver, so they are checked here, as
//!   [`MediaHttp::get`](aduan_adapter::media::MediaHttp::get) checks them
//!   in the first URL); a redirect to a name goes through the resolver;
//! - uses no proxy, not even one named in the environment: through a proxy
//!   the target's addresses would be resolved where this check cannot see;
//! - sends no `Referer` on redirects (a Telegram file URL holds the bot
//!   token) and, like every reqwest client, drops `Authorization` when a
//!   redirect leaves the host and port (Twilio's media URLs redirect to
//!   signed storage that must not see the account's credentials);
//! - never decompresses: the bytes stored are the bytes the provider sent,
//!   so their size is capped as they arrive (no decompression bomb) and the
//!   provider's SHA-256 is checked against what it actually sent.
//!
//! `allow_private` turns the address checks off, for tests and local
//! stand-ins only; schemes and the redirect limit are checked regardless.
//!
//! Refusals are [`FetchError`]s placed as the source of the transport
//! error; each fetcher finds one in the error's source chain and returns it
//! as it is, so the worker sees `forbidden_address`, `too_many_redirects`
//! or `bad_url` rather than a network error to retry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::media::{FetchError, is_public};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;

/// The most redirects one fetch follows.
pub const MAX_REDIRECTS: usize = 5;

/// The longest wait for the next bytes of an answer once connected: a
/// provider that stops sending frees the worker instead of holding it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The `User-Agent` of every fetch (WhatsApp's media host answers a request
/// without one with an error page instead of the file).
pub const USER_AGENT: &str = concat!("aduan-media/", env!("CARGO_PKG_VERSION"));

/// The media worker's client: a resolver that keeps only public addresses
/// and a redirect policy that checks each hop, both unless `allow_private`;
/// `connect_timeout` bounds each connection (name lookup included).
pub fn client(allow_private: bool, connect_timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(redirect_policy(allow_private))
        .no_proxy()
        .referer(false)
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .no_zstd()
        .connect_timeout(connect_timeout)
        .read_timeout(READ_TIMEOUT)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| format!("cannot build the media HTTP client: {e}"))
}

/// A resolver over the system's (`getaddrinfo` through tokio) that keeps
/// only the addresses a fetch may connect to.
#[derive(Clone, Copy, Debug)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = keep(found, allow_private)?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses of `found` that may be connected to. A lookup that found
/// addresses, none of them allowed, is `forbidden_address`; one that found
/// none at all is left to fail as the network error it is.
fn keep(
    found: impl IntoIterator<Item = SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, FetchError> {
    let found: Vec<SocketAddr> = found.into_iter().collect();
    if allow_private || found.is_empty() {
        return Ok(found);
    }
    let kept: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
    if kept.is_empty() {
        return Err(FetchError::permanent(
            "forbidden_address",
            "the host resolves only to addresses that are not on the public internet",
        ));
    }
    Ok(kept)
}

fn redirect_policy(allow_private: bool) -> Policy {
    Policy::custom(move |attempt| {
        match check_redirect(attempt.url(), attempt.previous().len(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    })
}

/// Whether a redirect to `next` may be followed when `requested` URLs (the
/// first one and each redirect so far) have been requested.
fn check_redirect(next: &Url, requested: usize, allow_private: bool) -> Result<(), FetchError> {
    // The first URL requested is not a redirect.
    if requested > MAX_REDIRECTS {
        return Err(FetchError::permanent(
            "too_many_redirects",
            format!("more than {MAX_REDIRECTS} redirects"),
        ));
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Err(FetchError::permanent(
            "bad_url",
            "a redirect leads to a scheme other than http or https",
        ));
    }
    let literal = match next.host() {
        Some(url::Host::Ipv4(a)) => Some(std::net::IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(std::net::IpAddr::V6(a)),
        Some(url::Host::Domain(_)) => None,
        None => {
            return Err(FetchError::permanent(
                "bad_url",
                "a redirect leads to a URL without a host",
            ));
        }
    };
    if let Some(addr) = literal
        && !allow_private
        && !is_public(addr)
    {
        return Err(FetchError::permanent(
            "forbidden_address",
            "a redirect leads to an address that is not on the public internet",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::str::FromStr;
    use std::sync::Mutex;

    use aduan_adapter::media::{MediaFetcher, MediaHttp, MediaSink};
    use aduan_adapter::{Attachment, AttachmentKind};
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    fn addr(s: &str) -> SocketAddr {
        SocketAddr::from_str(s).expect("socket address")
    }

    #[test]
    fn only_public_addresses_are_kept() {
        let found = [
            addr("127.0.0.1:0"),
            addr("10.20.30.40:0"),
            addr("169.254.169.254:0"),
            addr("157.240.1.1:0"),
            addr("[::1]:0"),
            addr("[fd12:3456::1]:0"),
            addr("[2a03:2880:f10c::1]:0"),
        ];
        assert_eq!(
            keep(found, false),
            Ok(vec![addr("157.240.1.1:0"), addr("[2a03:2880:f10c::1]:0")])
        );
        assert_eq!(keep(found, true).map(|k| k.len()), Ok(found.len()));
        let private = [addr("192.168.1.10:0"), addr("[::ffff:10.0.0.1]:0")];
        let e = keep(private, false).expect_err("no public address");
        assert_eq!((e.code.as_str(), e.temporary), ("forbidden_address", false));
        assert_eq!(keep(private, true), Ok(private.to_vec()));
        // Nothing found is a lookup failure, not a refusal.
        assert_eq!(keep([], false), Ok(Vec::new()));
    }

    #[test]
    fn redirects_are_checked_again() {
        let url = |s: &str| Url::parse(s).expect("url");
        let code = |next: &str, requested, allow| {
            check_redirect(&url(next), requested, allow)
                .err()
                .map(|e| (e.code, e.temporary))
        };
        let public = "https://scontent.xx.fbcdn.net/v/t1/foto.jpg";
        for requested in 1..=MAX_REDIRECTS {
            assert_eq!(code(public, requested, false), None, "{requested}");
        }
        assert_eq!(
            code(public, MAX_REDIRECTS + 1, false),
            Some(("too_many_redirects".into(), false))
        );
        assert_eq!(
            code(public, MAX_REDIRECTS + 1, true),
            Some(("too_many_redirects".into(), false))
        );
        for bad in [
            "ftp://files.example.net/x",
            "file:///etc/passwd",
            "gopher://x/",
        ] {
            assert_eq!(code(bad, 1, true), Some(("bad_url".into(), false)), "{bad}");
        }
        for private in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://127.0.0.1:6379/",
            "http://10.0.0.7/",
            "http://[::1]/",
            "http://[fd00::5]/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            assert_eq!(
                code(private, 1, false),
                Some(("forbidden_address".into(), false)),
                "{private}"
            );
            assert_eq!(code(private, 1, true), None, "{private}");
        }
        assert_eq!(code("http://157.240.1.1/x", 1, false), None);
        // A name is left to the resolver.
        assert_eq!(code("http://metadata.internal.example/", 1, false), None);
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        let refused = GuardedResolver {
            allow_private: false,
        }
        .resolve(Name::from_str("localhost").expect("name"))
        .await
        .err()
        .expect("localhost refused");
        let e = refused
            .downcast_ref::<FetchError>()
            .expect("the refusal is a FetchError");
        assert_eq!(e.code, "forbidden_address");
        let allowed: Vec<SocketAddr> = GuardedResolver {
            allow_private: true,
        }
        .resolve(Name::from_str("localhost").expect("name"))
        .await
        .expect("localhost allowed")
        .collect();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()), "{allowed:?}");
        assert!(!allowed.is_empty());
    }

    // -----------------------------------------------------------------
    // The client with real fetchers against stand-ins on 127.0.0.1.

    /// One request a stand-in received.
    #[derive(Clone, Debug)]
    struct Seen {
        path: String,
        headers: HeaderMap,
    }

    /// A stand-in answering every request with `answer(path, port)`; its
    /// port and what it saw.
    async fn stand_in(answer: fn(&str, u16) -> Response) -> (u16, Arc<Mutex<Vec<Seen>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let log = log.clone();
            async move {
                log.lock().expect("lock").push(Seen {
                    path: uri.path().to_string(),
                    headers,
                });
                answer(uri.path(), port)
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (port, seen)
    }

    /// Redirects `/hop/N` to `/hop/N-1` and answers `/hop/0` with the file.
    fn hops(path: &str, _port: u16) -> Response {
        match path
            .strip_prefix("/hop/")
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(0) => (StatusCode::OK, "foto jalan berlubang").into_response(),
            Some(n) => {
                (StatusCode::FOUND, [("location", format!("/hop/{}", n - 1))]).into_response()
            }
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }

    /// Collects the bytes written.
    #[derive(Default)]
    struct Buffer(Vec<u8>);

    #[async_trait::async_trait]
    impl MediaSink for Buffer {
        async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
            self.0.extend_from_slice(chunk);
            Ok(())
        }
    }

    fn http(allow_private: bool) -> MediaHttp {
        MediaHttp::new(
            client(allow_private, Duration::from_secs(2)).expect("client"),
            allow_private,
        )
    }

    fn cdn() -> aduan_meta::CdnFetcher {
        aduan_meta::CdnFetcher::new(aduan_meta::CdnFetchConfig::default()).expect("fetcher")
    }

    fn at(url: String) -> Attachment {
        Attachment {
            url: Some(url),
            ..Attachment::new(AttachmentKind::Image)
        }
    }

    #[tokio::test]
    async fn a_name_of_a_private_address_is_refused_before_connecting() {
        let (port, seen) = stand_in(hops).await;
        let mut sink = Buffer::default();
        let e = cdn()
            .fetch(
                &at(format!("http://localhost:{port}/hop/0")),
                &http(false),
                &mut sink,
            )
            .await
            .expect_err("refused");
        assert_eq!((e.code.as_str(), e.temporary), ("forbidden_address", false));
        assert!(seen.lock().expect("lock").is_empty());
        assert!(sink.0.is_empty());
        // Allowed for tests, the same fetch reaches the stand-in.
        cdn()
            .fetch(
                &at(format!("http://localhost:{port}/hop/0")),
                &http(true),
                &mut sink,
            )
            .await
            .expect("fetched");
        assert_eq!(sink.0, b"foto jalan berlubang");
    }

    #[tokio::test]
    async fn at_most_five_redirects_are_followed() {
        let (port, seen) = stand_in(hops).await;
        let mut sink = Buffer::default();
        cdn()
            .fetch(
                &at(format!("http://127.0.0.1:{port}/hop/5")),
                &http(true),
                &mut sink,
            )
            .await
            .expect("five redirects");
        assert_eq!(sink.0, b"foto jalan berlubang");
        assert_eq!(seen.lock().expect("lock").len(), 6);

        let mut sink = Buffer::default();
        let e = cdn()
            .fetch(
                &at(format!("http://127.0.0.1:{port}/hop/6")),
                &http(true),
                &mut sink,
            )
            .await
            .expect_err("six redirects");
        assert_eq!(
            (e.code.as_str(), e.temporary),
            ("too_many_redirects", false)
        );
        assert!(sink.0.is_empty());
    }

    #[tokio::test]
    async fn a_redirect_to_another_scheme_is_refused() {
        let (port, seen) = stand_in(|path, _| {
            let location = match path {
                "/ftp" => "ftp://files.example.net/foto.jpg",
                _ => "file:///etc/passwd",
            };
            (StatusCode::FOUND, [("location", location)]).into_response()
        })
        .await;
        let fetch = |path: &'static str| async move {
            let mut sink = Buffer::default();
            let e = cdn()
                .fetch(
                    &at(format!("http://127.0.0.1:{port}{path}")),
                    &http(true),
                    &mut sink,
                )
                .await
                .expect_err("refused");
            assert!(sink.0.is_empty());
            (e.code, e.temporary)
        };
        assert_eq!(fetch("/ftp").await, ("bad_url".into(), false));
        // A location without a host is not even a redirect to follow: the
        // redirect answer itself is what came, and it is no file.
        assert_eq!(fetch("/file").await, ("http_302".into(), false));
        assert_eq!(seen.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn credentials_and_the_referer_stay_with_the_first_host() {
        let (storage, stored) = stand_in(|_, _| (StatusCode::OK, "MMS foto").into_response()).await;
        // The redirect target's port is the path's first segment.
        let (api, asked) = stand_in(|path, _| {
            let port = path.trim_start_matches('/').split('/').next().unwrap_or("");
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(
                    "location",
                    format!("http://127.0.0.1:{port}/signed/ME0a1b2c"),
                )],
            )
                .into_response()
        })
        .await;
        let fetcher = aduan_sms::TwilioFetcher::new(aduan_sms::TwilioFetchConfig {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: aduan_adapter::Secret::literal("rahasia-twilio"),
            link_lifetime_seconds: aduan_sms::fetch::DEFAULT_LINK_LIFETIME_SECONDS,
            api_hosts: vec!["127.0.0.1".into()],
        })
        .expect("fetcher");
        let mut sink = Buffer::default();
        let a = Attachment {
            url: Some(format!("http://127.0.0.1:{api}/{storage}/Media/ME0a1b2c")),
            ..Attachment::new(AttachmentKind::Image)
        };
        fetcher
            .fetch(&a, &http(true), &mut sink)
            .await
            .expect("fetched");
        assert_eq!(sink.0, b"MMS foto");
        let asked = asked.lock().expect("lock").clone();
        assert!(asked[0].headers.contains_key("authorization"));
        let stored = stored.lock().expect("lock").clone();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].path, "/signed/ME0a1b2c");
        assert!(!stored[0].headers.contains_key("authorization"));
        assert!(!stored[0].headers.contains_key("referer"));
        assert_eq!(
            stored[0]
                .headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok()),
            Some(USER_AGENT)
        );
    }

    #[tokio::test]
    async fn bytes_are_stored_as_sent_without_decompression() {
        // Not gzip at all: a client that decompressed would fail on it.
        let (port, seen) = stand_in(|_, _| {
            (
                StatusCode::OK,
                [("content-encoding", "gzip"), ("content-type", "image/jpeg")],
                "\u{1f}\u{8b} bukan gzip",
            )
                .into_response()
        })
        .await;
        let mut sink = Buffer::default();
        cdn()
            .fetch(
                &at(format!("http://127.0.0.1:{port}/x")),
                &http(true),
                &mut sink,
            )
            .await
            .expect("fetched");
        assert_eq!(sink.0, "\u{1f}\u{8b} bukan gzip".as_bytes());
        let seen = seen.lock().expect("lock").clone();
        assert!(!seen[0].headers.contains_key("accept-encoding"));
    }
}
