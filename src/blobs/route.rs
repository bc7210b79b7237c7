//! `GET` and `HEAD /v1/blobs/{storage_key}`: the core system reads the
//! bytes the gateway stored, with a bearer token from `[blobs] readers` or a
//! signed, expiring URL (see `sign`).
//!
//! The key is taken from the request path exactly as sent, never decoded or
//! joined to anything unless it is `sha256/` and 64 lowercase hex digits;
//! anything else is `404` before the store is asked. Answers: `200`, `206`
//! for one byte range, `304` for a matching `If-None-Match`, `401` without
//! credentials, `403` for a wrong token or a bad or expired signature, `404`,
//! `416` for a range past the end, `503` when the store fails.

use std::sync::Arc;

use aduan_adapter::Secret;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{
    BlobError, BlobInfo, BlobStore, ByteRange, DEFAULT_CONTENT_TYPE, SignatureError, is_valid_key,
    verify_signature,
};
use crate::settings::BlobsConfig;

/// The path the route serves under.
pub const PATH_PREFIX: &str = "/v1/blobs/";

/// What the route needs: the store and the credentials it accepts.
#[derive(Debug, Clone)]
pub struct BlobRoute {
    store: BlobStore,
    readers: Vec<Secret>,
    signing_key: Option<Secret>,
}

impl BlobRoute {
    /// The route over `store` with the readers and signing key of `cfg`.
    pub fn new(store: BlobStore, cfg: &BlobsConfig) -> Self {
        BlobRoute {
            store,
            readers: cfg.readers.clone(),
            signing_key: cfg.signing_key.clone(),
        }
    }
}

/// `GET` and `HEAD /v1/blobs/{*storage_key}`, to merge into the gateway's router.
pub fn router<S: Clone + Send + Sync + 'static>(route: Arc<BlobRoute>) -> Router<S> {
    Router::new()
        .route("/v1/blobs/{*storage_key}", get(serve).head(serve))
        .with_state(route)
}

/// Why a request is not let in.
enum Denied {
    /// No credentials at all: `401`.
    Missing,
    /// Credentials that do not let the caller in: `403`.
    Forbidden(&'static str),
}

async fn serve(
    State(route): State<Arc<BlobRoute>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // Exactly as sent: a key is never percent-decoded, so `..%2f` stays what it is.
    let key = uri.path().strip_prefix(PATH_PREFIX).unwrap_or_default();
    match route.authorize(key, uri.query(), &headers) {
        Ok(()) => {}
        Err(Denied::Missing) => {
            let mut reply = error_reply(401, "unauthorized");
            reply
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return reply;
        }
        Err(Denied::Forbidden(reason)) => return error_reply(403, reason),
    }
    if !is_valid_key(key) {
        return error_reply(404, "not_found");
    }
    let etag = format!("\"{}\"", &key[super::KEY_PREFIX.len()..]);
    match answer(&route.store, key, &etag, method == Method::HEAD, &headers).await {
        Ok(response) => response,
        Err(BlobError::RangeNotSatisfiable { size }) => unsatisfiable(size),
        Err(e) => {
            tracing::warn!(error = %e, storage_key = key, "blob store read failed");
            error_reply(503, "unavailable")
        }
    }
}

impl BlobRoute {
    /// A bearer token if one is given, else a signature if the query has one.
    fn authorize(&self, key: &str, query: Option<&str>, headers: &HeaderMap) -> Result<(), Denied> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value
                .as_bytes()
                .split_at_checked(7)
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"bearer "))
                .map(|(_, token)| token.trim_ascii());
            let Some(token) = token else {
                return Err(Denied::Missing);
            };
            // Every reader is compared, so the time taken tells nothing of which.
            let known = self
                .readers
                .iter()
                .fold(false, |found, r| r.matches(token) | found);
            return if known {
                Ok(())
            } else {
                Err(Denied::Forbidden("forbidden"))
            };
        }
        let (mut expires, mut signature, mut repeated) = (None, None, false);
        for pair in query.unwrap_or_default().split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "expires" => &mut expires,
                "signature" => &mut signature,
                _ => continue,
            };
            repeated |= slot.replace(value).is_some();
        }
        if expires.is_none() && signature.is_none() {
            return Err(Denied::Missing);
        }
        let checked = match (&self.signing_key, expires, signature) {
            (None, _, _) => Err(SignatureError::NoKey),
            _ if repeated => Err(SignatureError::Incomplete),
            (Some(secret), Some(expires), Some(signature)) => {
                verify_signature(key, expires, signature, secret, unix_now())
            }
            _ => Err(SignatureError::Incomplete),
        };
        checked.map_err(|e| {
            Denied::Forbidden(match e {
                SignatureError::Expired => "signature_expired",
                _ => "bad_signature",
            })
        })
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The answer for a stored or missing, well-formed `key`.
async fn answer(
    store: &BlobStore,
    key: &str,
    etag: &str,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, BlobError> {
    let range = requested_range(headers, etag);
    let conditional = headers.contains_key(header::IF_NONE_MATCH);
    if head || conditional {
        let Some(info) = store.stat(key).await? else {
            return Ok(error_reply(404, "not_found"));
        };
        if none_match(headers, etag) {
            return Ok(not_modified(etag));
        }
        if head {
            let bounds = match range {
                Some(r) => Some(
                    r.resolve(info.size)
                        .ok_or(BlobError::RangeNotSatisfiable { size: info.size })?,
                ),
                None => None,
            };
            return Ok(respond(&info, bounds, etag, Body::empty()));
        }
    }
    let Some(body) = store.get(key, range).await? else {
        return Ok(error_reply(404, "not_found"));
    };
    let info = BlobInfo {
        size: body.size,
        content_type: body.content_type,
    };
    let bounds = range.map(|_| body.range);
    Ok(respond(&info, bounds, etag, Body::from_stream(body.stream)))
}

/// The `Range` asked for, unless `If-Range` names another version.
fn requested_range(headers: &HeaderMap, etag: &str) -> Option<ByteRange> {
    let range = ByteRange::parse(headers.get(header::RANGE)?.to_str().ok()?)?;
    match headers.get(header::IF_RANGE) {
        Some(v) if v.as_bytes() != etag.as_bytes() => None,
        _ => Some(range),
    }
}

/// Whether `If-None-Match` names this blob (`*`, or its tag, weak or strong).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn common_headers(response: &mut Response, etag: &str) {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Opened in a browser, a citizen's file runs nothing on the gateway's origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
}

/// `200` for the whole blob, `206` for `bounds` of it.
fn respond(
    info: &BlobInfo,
    bounds: Option<std::ops::Range<u64>>,
    etag: &str,
    body: Body,
) -> Response {
    let content_type = info
        .content_type
        .as_deref()
        .and_then(|ct| HeaderValue::from_str(ct).ok())
        .unwrap_or(HeaderValue::from_static(DEFAULT_CONTENT_TYPE));
    let (status, length) = match &bounds {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end - r.start),
        None => (StatusCode::OK, info.size),
    };
    let mut response = (status, body).into_response();
    common_headers(&mut response, etag);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some(r) = bounds
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            r.start,
            r.end.saturating_sub(1),
            info.size
        ))
    {
        headers.insert(header::CONTENT_RANGE, v);
    }
    response
}

fn not_modified(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    common_headers(&mut response, etag);
    response
}

fn unsatisfiable(size: u64) -> Response {
    let mut response = error_reply(416, "range_not_satisfiable");
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}

/// The gateway's JSON refusal, `{"error": reason}`: the blob route answers
/// as every other route does.
fn error_reply(status: u16, reason: &'static str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(serde_json::json!({"error": reason}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), HeaderValue::from_str(value).expect("value"));
        }
        h
    }

    #[test]
    fn if_none_match_takes_lists_wildcards_and_weak_tags() {
        let etag = "\"abc\"";
        for value in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            assert!(
                none_match(&headers(&[(header::IF_NONE_MATCH, value)]), etag),
                "{value}"
            );
        }
        assert!(!none_match(
            &headers(&[(header::IF_NONE_MATCH, "\"abd\"")]),
            etag
        ));
        assert!(!none_match(&HeaderMap::new(), etag));
    }

    #[test]
    fn a_range_is_ignored_when_if_range_names_another_version() {
        let etag = "\"abc\"";
        let range = (header::RANGE, "bytes=0-1");
        assert_eq!(
            requested_range(&headers(std::slice::from_ref(&range)), etag),
            Some(ByteRange::FromTo(0, 1))
        );
        assert_eq!(
            requested_range(
                &headers(&[range.clone(), (header::IF_RANGE, "\"abc\"")]),
                etag
            ),
            Some(ByteRange::FromTo(0, 1))
        );
        assert_eq!(
            requested_range(&headers(&[range, (header::IF_RANGE, "\"old\"")]), etag),
            None
        );
    }
}
