//! Infobip inbound SMS (`MO_JSON_2` forwarding), at `/webhooks/infobip/{instance}`.
//!
//! One POST carries `results[]`, each its own message and its own Complaint.
//! Classic forwarding is not signed, so the instance authenticates Infobip by
//! a shared secret: Basic credentials in the webhook URL, or a header set in
//! the subscription's security settings.

use aduan_adapter::{
    Adapter, Attachment, AttachmentKind, Context, Outcome, Rejection, Request, Secret, Timestamp,
};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;

use crate::common::{self, Common, Problems};
use crate::keyword::Keywords;

/// The `provider` of every complaint this adapter writes.
pub const PROVIDER: &str = "infobip";

/// How Infobip proves it is Infobip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InfobipAuth {
    /// `Authorization: Basic` with `username` and `secret` as the password.
    #[default]
    Basic,
    /// The header `secret_header` carries `secret`.
    Header,
}

/// Configuration of a `kind = "infobip"` instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfobipConfig {
    /// `basic` (default) or `header`.
    #[serde(default)]
    pub auth: InfobipAuth,
    /// The Basic user name Infobip sends; required with `auth = "basic"`.
    #[serde(default)]
    pub username: Option<String>,
    /// The shared secret: the Basic password, or the header's value.
    pub secret: Secret,
    /// The header that carries the secret with `auth = "header"`. Default `X-Aduan-Secret`.
    #[serde(default = "default_secret_header")]
    pub secret_header: String,
    /// Region for numbers written without a country code (ISO 3166). Default `ID`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Leading keywords stripped from the text into `subject`, matched
    /// case-insensitively. Default `["LAPOR", "ADUAN"]`; `[]` turns stripping off.
    #[serde(default = "Keywords::default_list")]
    pub keywords: Vec<String>,
}

fn default_secret_header() -> String {
    "X-Aduan-Secret".to_string()
}

fn default_region() -> String {
    aduan_adapter::phone::DEFAULT_REGION.to_string()
}

#[derive(Debug)]
enum Auth {
    Basic { username: String },
    Header { name: String },
}

/// The Infobip adapter.
#[derive(Debug)]
pub struct Infobip {
    auth: Auth,
    secret: Secret,
    common: Common,
}

impl Infobip {
    /// Validates the configuration.
    pub fn new(cfg: InfobipConfig) -> Result<Self, String> {
        let auth = match cfg.auth {
            InfobipAuth::Basic => match cfg.username {
                Some(u) if !u.is_empty() && !u.contains(':') => Auth::Basic { username: u },
                _ => {
                    return Err(
                        "username is required with auth = \"basic\" (and has no `:`)".to_string(),
                    );
                }
            },
            InfobipAuth::Header => {
                if cfg.username.is_some() {
                    return Err("username is only used with auth = \"basic\"".to_string());
                }
                Auth::Header {
                    name: common::check_header_name("secret_header", &cfg.secret_header)?,
                }
            }
        };
        Ok(Infobip {
            auth,
            secret: cfg.secret,
            common: Common::new(&cfg.region, &cfg.keywords)?,
        })
    }
}

/// `receivedAt`: Infobip writes the offset without a colon
/// (`2016-10-06T09:28:39.220+0000`); RFC 3339 is taken too.
pub fn parse_received_at(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|t| Timestamp(t.to_utc()))
        .or_else(|| Timestamp::parse_rfc3339(s))
}

/// A scalar as text: Infobip ids are strings, but some accounts send numbers.
fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Adapter for Infobip {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        if req.method != http::Method::POST {
            return Err(Rejection::MethodNotAllowed);
        }
        match &self.auth {
            Auth::Basic { username } => common::check_basic(req, username, &self.secret),
            Auth::Header { name } => common::check_header(req, name, &self.secret),
        }
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        // Infobip forwards inbound messages as `application/json` only.
        req.require_json()?;
        let body: Value = serde_json::from_slice(req.body)
            .map_err(|_| Rejection::malformed("body is not JSON"))?;
        let Some(results) = body.get("results").and_then(Value::as_array) else {
            return Err(Rejection::malformed("no results[]"));
        };
        if results.is_empty() {
            return Ok(Outcome::ignored("empty"));
        }
        let raw = common::raw(ctx, req);
        let mut problems = Problems::default();
        let mut complaints = Vec::with_capacity(results.len());
        for (i, r) in results.iter().enumerate() {
            let at = |field: &str| format!("results[{i}].{field}");
            let id = text_of(r.get("messageId")).filter(|s| !s.trim().is_empty());
            if id.is_none() {
                problems.add(at("messageId"), "missing");
            }
            let from = text_of(r.get("from")).and_then(|f| self.common.sender(&f));
            if from.is_none() {
                problems.add(at("from"), "missing");
            }
            let (text, attachments) = match message_segments(r) {
                Some(found) => found,
                None => match r.get("text").and_then(Value::as_str) {
                    Some(t) => (t.to_string(), Vec::new()),
                    None => {
                        problems.add(at("text"), "missing");
                        (String::new(), Vec::new())
                    }
                },
            };
            let sent_at = match r.get("receivedAt") {
                None | Some(Value::Null) => None,
                Some(v) => {
                    let t = v.as_str().and_then(parse_received_at);
                    if t.is_none() {
                        problems.add(
                            at("receivedAt"),
                            "not a timestamp like 2016-10-06T09:28:39.220+0000",
                        );
                    }
                    t
                }
            };
            let (Some(id), Some(from)) = (id, from) else {
                continue;
            };
            let mut c = self.common.complaint(ctx, PROVIDER, id, from, &text);
            c.sent_at = sent_at;
            c.recipient = self.common.recipient(text_of(r.get("to")).as_deref());
            c.attachments = attachments;
            c.raw = raw.clone();
            complaints.push(c);
        }
        // One bad message refuses the whole request: Infobip resends it as a
        // whole, and accepting part of it would make that resend ambiguous.
        problems.finish()?;
        Ok(Outcome::complaints(complaints))
    }
}

/// The MMS form: `message[]` segments of text (`value`) and media (`url`).
fn message_segments(r: &Value) -> Option<(String, Vec<Attachment>)> {
    let segments = r.get("message")?.as_array()?;
    let mut texts = Vec::new();
    let mut attachments = Vec::new();
    for s in segments {
        let content_type = s.get("contentType").and_then(Value::as_str);
        if let Some(url) = s.get("url").and_then(Value::as_str) {
            let mut a = Attachment::new(
                content_type
                    .map(AttachmentKind::from_content_type)
                    .unwrap_or(AttachmentKind::Other),
            );
            a.content_type = content_type.map(str::to_string);
            a.url = Some(url.to_string());
            attachments.push(a);
        } else if let Some(v) = s.get("value").and_then(Value::as_str) {
            texts.push(v);
        }
    }
    Some((texts.join("\n"), attachments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Owned, ctx, fixture};

    #[test]
    fn mms_segments_give_text_and_media() {
        let a = Infobip::new(InfobipConfig {
            auth: InfobipAuth::Basic,
            username: Some("infobip".into()),
            secret: Secret::literal("rahasia"),
            secret_header: default_secret_header(),
            region: "ID".into(),
            keywords: Keywords::default_list(),
        })
        .expect("valid config");
        let body = serde_json::json!({"results": [{
            "messageId": "mms-1", "from": "6281234567890", "to": "628111708",
            "receivedAt": "2026-11-22T15:05:00.000+0700",
            "message": [
                {"contentType": "text/plain", "value": "LAPOR Got mampet"},
                {"contentType": "image/jpeg", "url": "https://mms.example.com/1.jpg"}
            ]
        }]})
        .to_string();
        let r = Owned::new(
            "POST",
            "/",
            &[
                ("authorization", "Basic aW5mb2JpcDpyYWhhc2lh"),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        );
        assert!(a.verify(&r.request()).is_ok());
        let Ok(Outcome::Accept { complaints, .. }) = a.parse(&r.request(), &ctx("ib")) else {
            panic!("accepted");
        };
        let c = &complaints[0];
        assert_eq!(
            (c.subject.as_deref(), c.text.as_str()),
            (Some("LAPOR"), "Got mampet")
        );
        assert_eq!(c.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(
            c.attachments[0].url.as_deref(),
            Some("https://mms.example.com/1.jpg")
        );
    }

    #[test]
    fn each_result_is_a_complaint() {
        let a = Infobip::new(InfobipConfig {
            auth: InfobipAuth::Header,
            username: None,
            secret: Secret::literal("rahasia"),
            secret_header: "X-Infobip-Secret".into(),
            region: "ID".into(),
            keywords: Keywords::default_list(),
        })
        .expect("valid config");
        let body = fixture("infobip/two_messages.json");
        let r = Owned::new(
            "POST",
            "/",
            &[
                ("x-infobip-secret", "rahasia"),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        );
        assert!(a.verify(&r.request()).is_ok());
        let Ok(Outcome::Accept { complaints, .. }) = a.parse(&r.request(), &ctx("ib")) else {
            panic!("accepted");
        };
        assert_eq!(complaints.len(), 2);
        assert_eq!(
            complaints[0].sender.phone.as_deref(),
            Some("+6281234567890")
        );
        assert_eq!(complaints[0].subject.as_deref(), Some("LAPOR"));
        assert_eq!(
            complaints[0].sent_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-22T08:05:00.123Z")
        );
        assert_eq!(complaints[1].external_id, "817790313235066448");
        let wrong = Owned::new(
            "POST",
            "/",
            &[("x-infobip-secret", "rahasiA")],
            body.as_bytes(),
        );
        assert!(matches!(
            a.verify(&wrong.request()),
            Err(Rejection::Unauthorized(_))
        ));
    }

    #[test]
    fn infobip_offsets() {
        for (raw, expected) in [
            ("2016-10-06T09:28:39.220+0000", "2016-10-06T09:28:39.220Z"),
            ("2026-11-22T15:05:00.000+0700", "2026-11-22T08:05:00.000Z"),
            ("2026-11-22T15:05:00+07:00", "2026-11-22T08:05:00.000Z"),
            ("2026-11-22T08:05:00Z", "2026-11-22T08:05:00.000Z"),
        ] {
            assert_eq!(
                parse_received_at(raw).map(|t| t.to_rfc3339()).as_deref(),
                Some(expected),
                "{raw}"
            );
        }
        assert_eq!(parse_received_at("06/10/2016 09:28"), None);
    }

    #[test]
    fn basic_auth_needs_a_username() {
        let cfg = |auth, username: Option<&str>| InfobipConfig {
            auth,
            username: username.map(str::to_string),
            secret: Secret::literal("s"),
            secret_header: default_secret_header(),
            region: "ID".into(),
            keywords: vec![],
        };
        assert!(Infobip::new(cfg(InfobipAuth::Basic, None)).is_err());
        assert!(Infobip::new(cfg(InfobipAuth::Basic, Some("a:b"))).is_err());
        assert!(Infobip::new(cfg(InfobipAuth::Basic, Some("infobip"))).is_ok());
        assert!(Infobip::new(cfg(InfobipAuth::Header, Some("x"))).is_err());
        assert!(Infobip::new(cfg(InfobipAuth::Header, None)).is_ok());
    }
}
