//! The guard's checks, and the client with real fetchers against stand-ins
//! on 127.0.0.1.

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
    let private = [
        addr("192.168.1.10:0"),
        addr("[::ffff:10.0.0.1]:0"),
        addr("[::ffff:169.254.169.254]:0"),
        // NAT64 of loopback and of the metadata service.
        addr("[64:ff9b::7f00:1]:0"),
        addr("[64:ff9b::a9fe:a9fe]:0"),
        // IPv4-compatible, site-local.
        addr("[::7f00:1]:0"),
        addr("[::a00:7]:0"),
        addr("[fec0::1]:0"),
    ];
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
        "http://[64:ff9b::7f00:1]/",
        "http://[64:ff9b::169.254.169.254]/",
        "http://[::127.0.0.1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.7]/",
        "http://[fec0::7]/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://LocalHost.../",
        "http://redis.localhost/",
        "http://API.LOCALHOST./",
    ] {
        assert_eq!(
            code(private, 1, false),
            Some(("forbidden_address".into(), false)),
            "{private}"
        );
        assert_eq!(code(private, 1, true), None, "{private}");
    }
    assert_eq!(code("http://157.240.1.1/x", 1, false), None);
    // A name is left to the resolver; one that only ends in the letters is a name.
    assert_eq!(code("http://metadata.internal.example/", 1, false), None);
    assert_eq!(code("http://notlocalhost./", 1, false), None);
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

/// `LOCALHOST.` once went to DNS, which (with no server answering) left
/// the fetch waiting out its whole timeout: now every spelling is
/// refused before any lookup.
#[tokio::test]
async fn localhost_names_are_refused_at_once_without_a_lookup() {
    for name in [
        "LOCALHOST.",
        "localhost..",
        "LocalHost...",
        "redis.localhost",
        "api.LOCALHOST.",
    ] {
        let started = std::time::Instant::now();
        let refused = GuardedResolver {
            allow_private: false,
        }
        .resolve(Name::from_str(name).expect("name"))
        .await
        .err()
        .unwrap_or_else(|| panic!("{name} refused"));
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{name}: {:?}",
            started.elapsed()
        );
        let e = refused.downcast_ref::<FetchError>().expect("a FetchError");
        assert_eq!((e.code.as_str(), e.temporary), ("forbidden_address", false));
    }
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
        Some(n) => (StatusCode::FOUND, [("location", format!("/hop/{}", n - 1))]).into_response(),
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
async fn a_trailing_dot_localhost_is_refused_in_well_under_a_second() {
    let (port, seen) = stand_in(hops).await;
    for host in ["LOCALHOST.", "localhost..", "Media.Localhost."] {
        let mut sink = Buffer::default();
        let started = std::time::Instant::now();
        let e = cdn()
            .fetch(
                &at(format!("http://{host}:{port}/hop/0")),
                &http(false),
                &mut sink,
            )
            .await
            .expect_err("refused");
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "{host}: {:?}",
            started.elapsed()
        );
        assert_eq!(
            (e.code.as_str(), e.temporary),
            ("forbidden_address", false),
            "{host}"
        );
        assert!(sink.0.is_empty());
    }
    assert!(seen.lock().expect("lock").is_empty());
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
