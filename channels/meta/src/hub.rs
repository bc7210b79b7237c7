//! What WhatsApp, Messenger and Instagram webhooks share.
//!
//! Meta delivers all three through the same Graph API webhook machinery: a
//! `GET` handshake (`hub.mode`, `hub.verify_token`, `hub.challenge`) when the
//! callback is registered, then `POST`s of JSON signed with the app secret in
//! `X-Hub-Signature-256`. This module holds that machinery once, plus the
//! decoding every adapter uses so that a bad body is refused with a short
//! reason that never echoes the body's content.

use std::str::FromStr;

use aduan_adapter::{Complaint, Context, Ignored, Outcome, Raw, Rejection, Reply, Request, Secret};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The header Meta signs every event notification with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The configuration of one Meta instance (any of `whatsapp`, `messenger`,
/// `instagram`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    /// The Meta app's App Secret (App settings, Basic). Every `POST` must carry
    /// `X-Hub-Signature-256` computed with it over the exact body. Give it as
    /// `env:NAME` or `file:/path` in production.
    pub app_secret: Secret,
    /// The Verify Token typed into the app's webhook settings. Meta sends it
    /// back in the `GET` handshake; the challenge is answered only when it matches.
    pub verify_token: Secret,
    /// The region (ISO 3166 alpha-2) for phone numbers written without a
    /// country code. WhatsApp senders always come with one, so this only
    /// matters for unusual forms. Default `ID`.
    #[serde(default = "default_region")]
    pub default_region: String,
}

fn default_region() -> String {
    aduan_adapter::phone::DEFAULT_REGION.to_string()
}

impl MetaConfig {
    /// Checks the settings that serde cannot: the region is a known one.
    pub fn validate(&self) -> Result<(), String> {
        let region = self.default_region.to_ascii_uppercase();
        if region.len() != 2 || phonenumber::country::Id::from_str(&region).is_err() {
            return Err(format!(
                "default_region `{}` is not an ISO 3166 alpha-2 region",
                self.default_region
            ));
        }
        Ok(())
    }
}

/// The handshake and signature check, keyed by one instance's secrets.
#[derive(Debug)]
pub struct Hub {
    app_secret: Secret,
    verify_token: Secret,
}

impl Hub {
    /// The hub of an instance whose settings passed [`MetaConfig::validate`].
    pub fn new(cfg: &MetaConfig) -> Self {
        Hub {
            app_secret: cfg.app_secret.clone(),
            verify_token: cfg.verify_token.clone(),
        }
    }

    /// Authenticates a request: the verify token for the `GET` handshake, the
    /// body signature for `POST`s. Other methods are not used by Meta.
    pub fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        match *req.method {
            http::Method::GET => self.verify_handshake(req),
            http::Method::POST => self.verify_signature(req.header(SIGNATURE_HEADER), req.body),
            _ => Err(Rejection::MethodNotAllowed),
        }
    }

    fn verify_handshake(&self, req: &Request<'_>) -> Result<(), Rejection> {
        let mut mode = None;
        let mut token = None;
        for (k, v) in req.query_pairs() {
            match k.as_str() {
                "hub.mode" => mode = Some(v),
                "hub.verify_token" => token = Some(v),
                _ => {}
            }
        }
        let token_ok = token.is_some_and(|t| self.verify_token.matches(t.as_bytes()));
        // Both checks run whatever the mode, so timing tells nothing about the token.
        if mode.as_deref() == Some("subscribe") && token_ok {
            Ok(())
        } else {
            Err(Rejection::Forbidden("verification failed"))
        }
    }

    /// Checks `sha256=<lowercase hex HMAC-SHA256(app secret, body)>` over the
    /// bytes exactly as received. Meta signs the escaped-unicode JSON it
    /// sends, so re-serializing the body would break the match.
    pub fn verify_signature(&self, header: Option<&str>, body: &[u8]) -> Result<(), Rejection> {
        let header = header.ok_or(Rejection::Forbidden("missing signature"))?;
        let given = header
            .strip_prefix("sha256=")
            .filter(|h| h.len() == 64)
            .ok_or(Rejection::Forbidden("malformed signature"))?;
        let expected = hex::encode(aduan_adapter::verify::hmac_sha256(
            self.app_secret.expose_bytes(),
            body,
        ));
        if aduan_adapter::verify::constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            Ok(())
        } else {
            Err(Rejection::Forbidden("wrong signature"))
        }
    }

    /// Answers a verified handshake with the challenge, as plain text.
    pub fn challenge(&self, req: &Request<'_>) -> Result<Outcome, Rejection> {
        match req.query("hub.challenge") {
            Some(c) if !c.is_empty() => Ok(Outcome::Reply(Reply::text(200, c))),
            _ => Err(Rejection::malformed("hub.challenge is missing")),
        }
    }
}

/// The envelope of every Meta event notification.
#[derive(Debug, Deserialize)]
pub struct Envelope<E> {
    /// The Meta product: `whatsapp_business_account`, `page`, `instagram`.
    pub object: String,
    /// One entry per account the notification is about.
    pub entry: Vec<E>,
}

#[derive(Deserialize)]
struct Head {
    object: Option<serde_json::Value>,
}

/// Decodes a notification whose `object` must be `object`.
///
/// A body of the wrong shape is refused with the JSON path that failed, never
/// with the value found there (it may be a citizen's message).
pub fn decode_envelope<E: DeserializeOwned>(
    body: &[u8],
    object: &str,
) -> Result<Vec<E>, Rejection> {
    let wrong_object = || Rejection::malformed(format!("object is not `{object}`"));
    match decode::<Envelope<E>>(body, "") {
        Ok(env) if env.object == object => Ok(env.entry),
        Ok(_) => Err(wrong_object()),
        Err(e) => {
            // A notification meant for another Meta product fails on its
            // shape first; name the real cause instead.
            if let Ok(Head {
                object: Some(found),
            }) = serde_json::from_slice::<Head>(body)
                && found.as_str() != Some(object)
            {
                return Err(wrong_object());
            }
            Err(e)
        }
    }
}

/// Decodes one part of a notification (`changes[].value` depends on `field`).
/// `at` is the part's path, used as a prefix in the reason.
pub fn decode_value<T: DeserializeOwned>(
    value: &serde_json::Value,
    at: &str,
) -> Result<T, Rejection> {
    // The plain decoder on the way that succeeds; the path-tracking one only
    // to explain a failure (it costs several times as much).
    T::deserialize(value)
        .or_else(|_| serde_path_to_error::deserialize(value).map_err(|e| shape_error(e, at)))
}

fn decode<T: DeserializeOwned>(body: &[u8], at: &str) -> Result<T, Rejection> {
    // serde reads a struct from an array too; Meta only ever sends an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Rejection::malformed("wrong type at the top level"));
    }
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    // Decoded again, tracking the path, only to explain what is wrong.
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        if e.inner().is_syntax() || e.inner().is_eof() {
            Rejection::malformed("body is not valid JSON")
        } else {
            shape_error(e, at)
        }
    })?;
    de.end()
        .map_err(|_| Rejection::malformed("body is not valid JSON"))?;
    Ok(value)
}

fn shape_error(e: serde_path_to_error::Error<serde_json::Error>, at: &str) -> Rejection {
    let path = join_path(at, &e.path().to_string());
    let inner = e.inner().to_string();
    // serde's "missing field `x`" names only our own field; any other message
    // may quote the offending value, so only its path is reported.
    if let Some(rest) = inner.strip_prefix("missing field ") {
        let field = rest.split(" at line").next().unwrap_or(rest);
        Rejection::malformed(format!("missing field {field} at {path}"))
    } else {
        Rejection::malformed(format!("wrong type at {path}"))
    }
}

fn join_path(at: &str, rest: &str) -> String {
    match (at.is_empty(), rest == ".") {
        (true, true) => "the top level".to_string(),
        (true, false) => rest.to_string(),
        (false, true) => at.to_string(),
        (false, false) => format!("{at}.{rest}"),
    }
}

/// The exact request bytes, when the instance keeps them.
pub fn raw(req: &Request<'_>, ctx: &Context<'_>) -> Option<Raw> {
    ctx.keep_raw
        .then(|| Raw::from_bytes(req.content_type(), req.body))
}

/// Complaints and acknowledged events gathered from one notification.
#[derive(Debug, Default)]
pub struct Batch {
    /// One per message a citizen wrote, in notification order.
    pub complaints: Vec<Complaint>,
    /// One per event acknowledged and not written.
    pub ignored: Vec<Ignored>,
    /// Delivery and read reports of messages the gateway sent.
    pub reports: Vec<aduan_adapter::StatusReport>,
}

impl Batch {
    /// Records an event that is acknowledged and not written.
    pub fn ignore(&mut self, reason: &'static str) {
        self.ignored.push(Ignored { reason });
    }

    /// The outcome for the gateway.
    pub fn into_outcome(self) -> Outcome {
        Outcome::Accept {
            complaints: self.complaints,
            ignored: self.ignored,
            reports: self.reports,
            consents: Vec::new(),
        }
    }
}

/// Unix seconds or milliseconds as Meta writes them in `time` fields: page
/// `changes` entries carry seconds, `messaging` entries milliseconds.
pub fn seconds_or_millis(t: i64) -> Option<aduan_adapter::Timestamp> {
    // 10^11 seconds is the year 5138; anything above is milliseconds.
    if t.abs() >= 100_000_000_000 {
        aduan_adapter::Timestamp::from_unix_millis(t)
    } else {
        aduan_adapter::Timestamp::from_unix_seconds(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        Hub {
            app_secret: Secret::literal("app_secret"),
            verify_token: Secret::literal("rahasia-verifikasi"),
        }
    }

    fn get(uri: &str) -> (http::Method, http::Uri, http::HeaderMap) {
        (
            http::Method::GET,
            uri.parse().expect("test uri"),
            http::HeaderMap::new(),
        )
    }

    #[test]
    fn signature_matches_the_providers_md_vector() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let sig = "sha256=c236c758c9b2bd40b388a550eeca09eaca72384dd0aa5e7c31d19cddac5bba46";
        assert!(hub().verify_signature(Some(sig), body).is_ok());
    }

    #[test]
    fn signature_failures_are_forbidden() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let good = "sha256=c236c758c9b2bd40b388a550eeca09eaca72384dd0aa5e7c31d19cddac5bba46";
        let cases: [(Option<&str>, &[u8], &str); 6] = [
            (None, body, "missing signature"),
            (Some("c236c758"), body, "malformed signature"),
            (
                Some("sha1=c236c758c9b2bd40b388a550eeca09eaca72384dd0aa5e7c31d19cddac5bba46"),
                body,
                "malformed signature",
            ),
            (Some("sha256=c236"), body, "malformed signature"),
            (
                Some(good),
                br#"{"object":"whatsapp_business_account","entry":[ ]}"#,
                "wrong signature",
            ),
            (
                Some("sha256=C236C758C9B2BD40B388A550EECA09EACA72384DD0AA5E7C31D19CDDAC5BBA46"),
                body,
                "wrong signature",
            ),
        ];
        for (header, body, reason) in cases {
            match hub().verify_signature(header, body) {
                Err(Rejection::Forbidden(r)) => assert_eq!(r, reason, "{header:?}"),
                other => panic!("{header:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn handshake_answers_the_challenge_only_with_the_token() {
        let ok = "/webhooks/whatsapp/jabar?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=rahasia-verifikasi";
        let (m, u, h) = get(ok);
        let req = Request {
            method: &m,
            uri: &u,
            headers: &h,
            body: b"",
        };
        assert!(hub().verify(&req).is_ok());
        match hub().challenge(&req) {
            Ok(Outcome::Reply(r)) => {
                assert_eq!(r.status, 200);
                assert_eq!(r.body, b"1158201444");
                assert!(r.content_type.starts_with("text/plain"));
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "/w?hub.mode=subscribe&hub.challenge=1&hub.verify_token=salah",
            "/w?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=rahasia-verifikasi",
            "/w?hub.challenge=1&hub.verify_token=rahasia-verifikasi",
            "/w?hub.mode=subscribe&hub.challenge=1",
            "/w",
        ] {
            let (m, u, h) = get(bad);
            let req = Request {
                method: &m,
                uri: &u,
                headers: &h,
                body: b"",
            };
            assert!(
                matches!(hub().verify(&req), Err(Rejection::Forbidden(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn other_methods_are_not_allowed() {
        let (_, u, h) = get("/w");
        let m = http::Method::PUT;
        let req = Request {
            method: &m,
            uri: &u,
            headers: &h,
            body: b"",
        };
        assert!(matches!(
            hub().verify(&req),
            Err(Rejection::MethodNotAllowed)
        ));
    }

    #[derive(Debug, Deserialize)]
    struct Item {
        #[allow(dead_code)]
        id: String,
    }

    #[test]
    fn bad_bodies_get_short_reasons_without_content() {
        let cases: [(&[u8], &str); 8] = [
            (b"{\"object\":", "body is not valid JSON"),
            (
                b"{\"object\":\"page\",\"entry\":[]} trailing",
                "body is not valid JSON",
            ),
            (
                br#"{"object":"page","entry":[]}"#,
                "object is not `instagram`",
            ),
            (
                br#"{"object":"instagram","entry":[{"id":"Budi Santoso"},{"id":12}]}"#,
                "wrong type at entry[1].id",
            ),
            (
                br#"{"object":"instagram","entry":[{}]}"#,
                "missing field `id` at entry[0]",
            ),
            (b"\"Budi\"", "wrong type at the top level"),
            (br#"["instagram",[]]"#, "wrong type at the top level"),
            (
                br#"{"entry":[]}"#,
                "missing field `object` at the top level",
            ),
        ];
        for (body, reason) in cases {
            match decode_envelope::<Item>(body, "instagram") {
                Err(Rejection::Malformed(r)) => assert_eq!(r, reason),
                other => panic!("{other:?}"),
            }
        }
        match decode_envelope::<Item>(br#"{"object":"page","entry":[{"x":1}]}"#, "instagram") {
            Err(Rejection::Malformed(r)) => assert_eq!(r, "object is not `instagram`"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_checks_the_region() {
        let parse = |s: &str| -> MetaConfig { serde_json::from_str(s).expect("config") };
        let cfg = parse(r#"{"app_secret":"a","verify_token":"b"}"#);
        assert_eq!(cfg.default_region, "ID");
        assert!(cfg.validate().is_ok());
        assert!(
            parse(r#"{"app_secret":"a","verify_token":"b","default_region":"kr"}"#)
                .validate()
                .is_ok()
        );
        assert!(
            parse(r#"{"app_secret":"a","verify_token":"b","default_region":"XX"}"#)
                .validate()
                .is_err()
        );
        assert!(
            serde_json::from_str::<MetaConfig>(
                r#"{"app_secret":"a","verify_token":"b","extra":1}"#
            )
            .is_err()
        );
    }
}
