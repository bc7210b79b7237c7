//! Owned requests and contexts for the adapters' unit tests.

use aduan_adapter::{Context, Request, Timestamp};

/// The parts of a request, owned so a test can borrow a [`Request`] from them.
pub struct Owned {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Owned {
    pub fn new(method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(v).expect("header value"),
            );
        }
        Owned {
            method: method.parse().expect("method"),
            uri: uri.parse().expect("uri"),
            headers: map,
            body: body.to_vec(),
        }
    }

    pub fn request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// A context at 2026-11-22T08:20:00Z.
pub fn ctx(instance: &str) -> Context<'_> {
    Context {
        instance,
        received_at: Timestamp::from_unix_seconds(1_795_335_600).expect("in range"),
        keep_raw: true,
    }
}

/// A fixture's text, by path under `channels/sms/fixtures/`.
pub fn fixture(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim_end()
        .to_string()
}
