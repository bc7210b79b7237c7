//! What guards every post of the pages, before anything of its body is read:
//! the origin it came from and its CSRF token.
//!
//! **Origin.** A post whose `Origin` (or, without one, `Referer`) names
//! another site than the gateway's own is refused: the gateway's own is
//! `[web] public_origin` when set, else the scheme of the claimed origin
//! with the request's `Host`. A post with neither header is let through, as
//! OWASP's CSRF cheat sheet advises (some privacy tools strip both); the
//! token still guards it.
//!
//! **CSRF token.** A signed double-submit token, `<nonce>.<expiry>.<mac>`:
//! 16 random bytes in hex, the Unix second it expires at, and the hex
//! HMAC-SHA256 of both under the server's key. The page puts it in the
//! `aduan_csrf` cookie and repeats it in a hidden field; a post is taken
//! only when the cookie's token is one the gateway signed, unexpired, and
//! the field repeats it. A token of the right shape made up by someone else
//! (a cookie planted by another site or a sibling subdomain) is refused.
//!
//! **The key** is derived from `[web] secret` when it is set (the same on
//! every replica by configuration). Without it, the first replica that
//! needs a key makes a random one and stores it in Redis with `SET NX`
//! (`<prefix>:web:key`), and every replica uses the one stored. While
//! Redis cannot be reached for it, a replica signs with a key of its own
//! (random at start), which only that replica accepts: a post carried to
//! another replica then sees "this page has expired" and is sent again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aduan_adapter::verify::{constant_time_eq, hmac_sha256};
use axum::http::{HeaderMap, Uri, header};
use tokio::sync::OnceCell;

use crate::redis::Redis;
use crate::settings::WebConfig;

/// How long a CSRF token is good for: a working day's page left open, and then some.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token with less than this left is replaced when a page is served, so
/// that a form just opened does not expire while it is filled in.
const TOKEN_RENEW: Duration = Duration::from_secs(2 * 3600);

/// How often a replica without the shared key asks Redis for it again.
const KEY_RETRY: Duration = Duration::from_secs(5);

/// What the MAC covers before the nonce and expiry, so the key signs
/// nothing else by accident.
const MAC_CONTEXT: &[u8] = b"aduan-csrf/1\0";

/// The keys CSRF tokens are signed and checked with.
pub(super) struct Keys {
    /// From `[web] secret`.
    configured: Option<[u8; 32]>,
    /// The one stored in Redis, once read.
    shared: OnceCell<[u8; 32]>,
    /// This replica's own, while Redis cannot be reached (none when the
    /// system gave no random bytes: nothing is signed then).
    local: Option<[u8; 32]>,
    redis: Arc<Redis>,
    /// When Redis was last asked for the shared key (and failed).
    last_try: Mutex<Option<Instant>>,
}

impl Keys {
    pub(super) fn new(cfg: &WebConfig, redis: Arc<Redis>) -> Keys {
        let mut local = [0u8; 32];
        let local = getrandom::fill(&mut local).ok().map(|()| local);
        Keys {
            configured: cfg
                .secret
                .as_ref()
                .map(|s| hmac_sha256(s.expose_bytes(), b"aduan web csrf key")),
            shared: OnceCell::new(),
            local,
            redis,
            last_try: Mutex::new(None),
        }
    }

    /// The key new tokens are signed with.
    async fn signing(&self) -> Option<[u8; 32]> {
        if let Some(k) = self.configured {
            return Some(k);
        }
        self.shared().await.or(self.local)
    }

    /// Every key a token may have been signed with, the likeliest first.
    async fn accepted(&self) -> Vec<[u8; 32]> {
        if let Some(k) = self.configured {
            return vec![k];
        }
        let mut keys: Vec<[u8; 32]> = self.shared().await.into_iter().collect();
        keys.extend(self.local);
        keys
    }

    /// The key shared through Redis: read, or made and stored once.
    async fn shared(&self) -> Option<[u8; 32]> {
        if let Some(k) = self.shared.get() {
            return Some(*k);
        }
        {
            let Ok(mut last) = self.last_try.lock() else {
                return None;
            };
            if last.is_some_and(|t| t.elapsed() < KEY_RETRY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let fetched = tokio::time::timeout(self.redis.timeout() * 2, self.fetch_shared()).await;
        match fetched {
            Ok(Ok(key)) => Some(*self.shared.get_or_init(|| async { key }).await),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the web pages' key is not in Redis yet; signing with this replica's own");
                None
            }
            Err(_) => {
                tracing::warn!(
                    "Redis did not answer for the web pages' key; signing with this replica's own"
                );
                None
            }
        }
    }

    async fn fetch_shared(&self) -> Result<[u8; 32], crate::redis::RedisError> {
        use crate::redis::RedisError;
        let key = self.redis.keys().web_key();
        let mut conn = self.redis.connection().await?;
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| RedisError::Protocol(e.to_string()))?;
        // Only the first replica's key is kept; every replica then reads that one.
        let _: Option<String> = ::redis::cmd("SET")
            .arg(&key)
            .arg(hex::encode(fresh))
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("web", e))?;
        let stored: Option<String> = ::redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("web", e))?;
        let bytes = stored
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| RedisError::Protocol(format!("{key} is not a hex key")))?;
        bytes
            .try_into()
            .map_err(|_| RedisError::Protocol(format!("{key} is not 32 bytes")))
    }

    /// A new token, good for [`TOKEN_LIFETIME`].
    pub(super) async fn issue(&self) -> Option<String> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).ok()?;
        let expiry = now_secs().saturating_add(TOKEN_LIFETIME.as_secs());
        let signed = format!("{}.{expiry}", hex::encode(nonce));
        let mac = mac(&self.signing().await?, &signed);
        Some(format!("{signed}.{}", hex::encode(mac)))
    }

    /// How long `token` is still good for: `None` when it is not one this
    /// gateway signed, or has expired.
    pub(super) async fn remaining(&self, token: &str) -> Option<Duration> {
        let (signed, given) = token.rsplit_once('.')?;
        let (nonce, expiry) = signed.split_once('.')?;
        let well_formed = nonce.len() == 32
            && nonce.bytes().all(|b| b.is_ascii_hexdigit())
            && given.len() == 64
            && expiry.len() <= 20
            && expiry.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return None;
        }
        let given = hex::decode(given).ok()?;
        let expiry: u64 = expiry.parse().ok()?;
        let left = expiry.checked_sub(now_secs()).filter(|s| *s > 0)?;
        let valid = self
            .accepted()
            .await
            .iter()
            .any(|key| constant_time_eq(&mac(key, signed), &given));
        valid.then(|| Duration::from_secs(left))
    }

    /// Whether `token` is good and has long enough left to serve a new page with.
    pub(super) async fn fresh(&self, token: &str) -> bool {
        self.remaining(token).await.is_some_and(|d| d > TOKEN_RENEW)
    }
}

fn mac(key: &[u8; 32], signed: &str) -> [u8; 32] {
    let mut message = MAC_CONTEXT.to_vec();
    message.extend_from_slice(signed.as_bytes());
    hmac_sha256(key, &message)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a post may be the gateway's own page's: no `Origin` and no
/// `Referer`, or the one present names the gateway's own origin.
pub(super) fn same_origin(public: Option<&url::Origin>, headers: &HeaderMap, uri: &Uri) -> bool {
    let single = |name: header::HeaderName| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => v.to_str().map(Some).map_err(|_| ()),
            // Two of them: not something a browser sends.
            (Some(_), Some(_)) => Err(()),
        }
    };
    let claimed = match (single(header::ORIGIN), single(header::REFERER)) {
        (Err(()), _) => return false,
        (Ok(Some(origin)), _) => origin,
        (Ok(None), Ok(Some(referer))) => referer,
        (Ok(None), Ok(None)) => return true,
        (Ok(None), Err(())) => return false,
    };
    // `null` (an opaque origin) and anything else that is no URL is not ours.
    let Ok(claimed) = url::Url::parse(claimed) else {
        return false;
    };
    let claimed = claimed.origin();
    if let Some(public) = public {
        return &claimed == public;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let (Some(host), url::Origin::Tuple(scheme, _, _)) = (host, &claimed) else {
        return false;
    };
    // The request's own host, read as an origin of the claimed scheme, so
    // that a default port written or left out compares equal.
    url::Url::parse(&format!("{scheme}://{host}/"))
        .is_ok_and(|own| own.origin() == claimed && own.path() == "/")
}

/// Whether the request reached the gateway over TLS, as far as it can
/// tell: `behind_tls`, an `https` public origin, an `https` request URI, or
/// a proxy's `X-Forwarded-Proto: https` / `Forwarded: proto=https`. (A
/// client claiming TLS falsely only makes its own cookies stricter.)
pub(super) fn over_tls(cfg: &WebConfig, headers: &HeaderMap, uri: &Uri) -> bool {
    let forwarded_https = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        })
        || headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([';', ',']))
            .any(|p| p.trim().eq_ignore_ascii_case("proto=https"));
    cfg.behind_tls
        || cfg
            .public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"))
        || uri.scheme_str() == Some("https")
        || forwarded_https
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_the_gateways_own_origin_passes() {
        let uri = Uri::from_static("/lapor/x");
        let ok = |pairs: &[(&'static str, &'static str)]| same_origin(None, &headers(pairs), &uri);
        assert!(ok(&[("host", "aduan.example.go.id")]), "neither header");
        assert!(ok(&[
            ("host", "aduan.example.go.id"),
            ("origin", "https://aduan.example.go.id")
        ]));
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ]));
        assert!(ok(&[
            ("host", "aduan.example.go.id:443"),
            ("origin", "https://aduan.example.go.id")
        ]));
        assert!(ok(&[
            ("host", "aduan.example.go.id"),
            ("referer", "https://aduan.example.go.id/lapor/x?lang=en")
        ]));
        for refused in [
            &[
                ("host", "aduan.example.go.id"),
                ("origin", "https://evil.example"),
            ][..],
            &[("host", "aduan.example.go.id"), ("origin", "null")],
            &[
                ("host", "aduan.example.go.id"),
                ("origin", "https://aduan.example.go.id.evil.example"),
            ],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8081"),
            ],
            &[
                ("host", "aduan.example.go.id"),
                ("referer", "https://evil.example/aduan.example.go.id"),
            ],
            &[
                ("host", "aduan.example.go.id"),
                ("origin", "https://aduan.example.go.id"),
                ("origin", "https://evil.example"),
            ],
            &[
                ("host", "evil.example/x"),
                ("origin", "https://evil.example"),
            ],
            &[("origin", "https://aduan.example.go.id")],
        ] {
            assert!(!ok(refused), "{refused:?}");
        }
    }

    fn keys_with_secret(secret: &str) -> Keys {
        let cfg = WebConfig {
            secret: Some(aduan_adapter::Secret::literal(secret)),
            ..WebConfig::default()
        };
        // Never contacted: the configured secret makes the key.
        let redis = Redis::new(&crate::settings::RedisConfig::default()).expect("redis client");
        Keys::new(&cfg, Arc::new(redis))
    }

    #[tokio::test]
    async fn only_tokens_the_gateway_signed_and_unexpired_are_good() {
        let keys = keys_with_secret("rahasia-web");
        let token = keys.issue().await.expect("a token");
        assert!(keys.fresh(&token).await);
        let left = keys.remaining(&token).await.expect("good");
        assert!(left > TOKEN_LIFETIME - Duration::from_secs(60) && left <= TOKEN_LIFETIME);
        // Another gateway's key, a changed MAC, a changed expiry, old shapes.
        let other = keys_with_secret("rahasia-lain").issue().await.unwrap();
        let (signed, mac_hex) = token.rsplit_once('.').unwrap();
        let flipped = format!(
            "{signed}.{}{}",
            if mac_hex.starts_with('0') { '1' } else { '0' },
            &mac_hex[1..]
        );
        let (nonce, _) = signed.split_once('.').unwrap();
        let later = format!("{nonce}.{}.{mac_hex}", now_secs() + 10 * 24 * 3600);
        for forged in [
            other,
            flipped,
            later,
            "a".repeat(32),
            format!(
                "{}.{}.{}",
                "a".repeat(32),
                now_secs() + 3600,
                "b".repeat(64)
            ),
            String::new(),
        ] {
            assert_eq!(keys.remaining(&forged).await, None, "{forged}");
        }
        // Signed, but expired.
        let key = keys.signing().await.unwrap();
        let old = format!("{nonce}.{}", now_secs() - 1);
        let expired = format!("{old}.{}", hex::encode(mac(&key, &old)));
        assert_eq!(keys.remaining(&expired).await, None);
        // Signed, with little time left: good, but not served with a new page.
        let soon = format!("{nonce}.{}", now_secs() + 600);
        let soon = format!("{soon}.{}", hex::encode(mac(&key, &soon)));
        assert!(keys.remaining(&soon).await.is_some());
        assert!(!keys.fresh(&soon).await);
    }

    #[test]
    fn a_public_origin_replaces_the_host() {
        let public = url::Url::parse("https://aduan.example.go.id")
            .unwrap()
            .origin();
        let uri = Uri::from_static("/agent");
        let h = headers(&[
            ("host", "10.0.0.7:8080"),
            ("origin", "https://aduan.example.go.id"),
        ]);
        assert!(same_origin(Some(&public), &h, &uri));
        let h = headers(&[
            ("host", "10.0.0.7:8080"),
            ("origin", "http://10.0.0.7:8080"),
        ]);
        assert!(!same_origin(Some(&public), &h, &uri));
    }

    #[test]
    fn tls_is_seen_behind_a_proxy_that_says_so() {
        let cfg = WebConfig::default();
        let uri = Uri::from_static("/agent");
        assert!(!over_tls(&cfg, &HeaderMap::new(), &uri));
        assert!(over_tls(
            &cfg,
            &headers(&[("x-forwarded-proto", "https")]),
            &uri
        ));
        assert!(over_tls(
            &cfg,
            &headers(&[("forwarded", "for=192.0.2.1;proto=https")]),
            &uri
        ));
        assert!(!over_tls(
            &cfg,
            &headers(&[("x-forwarded-proto", "http")]),
            &uri
        ));
        let behind = WebConfig {
            behind_tls: true,
            ..WebConfig::default()
        };
        assert!(over_tls(&behind, &HeaderMap::new(), &uri));
    }
}
