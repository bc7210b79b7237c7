//! Infobip inbound SMS (`MO_JSON_2` forwarding), at `/webhooks/infobip/{instance}`.
//!
//! One POST carries `results[]`, each its own message and its own Complaint.
//! Classic forwarding is not signed, so the instance authenticates Infobip by
//! a shared secret: Basic credentials in the webhook URL, or a header set in
//! the subscription's security settings.
//!
//! Delivery reports of our replies come to the same route, authenticated
//! alike: each result with a `status` object is a report. A whole message
//! of an opt-out or opt-in word is a consent.

use aduan_adapter::{
    Adapter, Attachment, AttachmentKind, Context, DeliveryStatus, Ignored, MessageRef, Outcome,
    Rejection, ReportRef, Request, Secret, StatusReport, Timestamp,
};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;

use crate::common::{self, Common, Problems};
use crate::keyword::{ConsentWords, Keywords};

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
    /// Whole messages (trimmed, any case) by which a citizen stops replies:
    /// such a message is an opt-out, not a complaint. Default
    /// `["STOP", "BERHENTI", "UNREG"]`; `[]` turns them off.
    #[serde(default = "ConsentWords::default_opt_out")]
    pub opt_out_keywords: Vec<String>,
    /// Whole messages by which a citizen asks for replies again. Default
    /// `["START", "DAFTAR"]`.
    #[serde(default = "ConsentWords::default_opt_in")]
    pub opt_in_keywords: Vec<String>,
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
            common: Common::new(
                &cfg.region,
                &cfg.keywords,
                &cfg.opt_out_keywords,
                &cfg.opt_in_keywords,
            )?,
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
        let (mut ignored, mut reports, mut consents) = (Vec::new(), Vec::new(), Vec::new());
        for (i, r) in results.iter().enumerate() {
            let at = |field: &str| format!("results[{i}].{field}");
            // Delivery reports of our replies come to the same URL, each
            // result with a `status` object where a message has `text`.
            if r.get("status").is_some_and(Value::is_object) {
                match delivery_report(r) {
                    Report::Of(report) => reports.push(report),
                    Report::Pending => ignored.push(Ignored { reason: "status" }),
                    Report::NoId => problems.add(at("messageId"), "missing"),
                }
                continue;
            }
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
            if attachments.is_empty()
                && let Some(consent) = self.common.consent(&from, &text)
            {
                consents.push(consent);
                continue;
            }
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
        Ok(common::accept(complaints, ignored, reports, consents))
    }
}

/// What one delivery report result amounts to.
enum Report {
    Of(StatusReport),
    /// Not final yet (`PENDING`), or a group this gateway does not read.
    Pending,
    NoId,
}

/// A delivery report result: the group `DELIVERED`, or `UNDELIVERABLE`,
/// `EXPIRED` and `REJECTED` with the error's (else the status's) name and
/// description, about `messageId` at `doneAt`, with our reference when it
/// echoes the `callbackData` we sent.
fn delivery_report(r: &Value) -> Report {
    let Some(id) = text_of(r.get("messageId")).filter(|s| !s.trim().is_empty()) else {
        return Report::NoId;
    };
    let status = r.get("status");
    let field = |v: Option<&Value>, name: &str| {
        v.and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let group = field(status, "groupName").unwrap_or_default();
    let delivery = match group.as_str() {
        "DELIVERED" => DeliveryStatus::Delivered,
        "UNDELIVERABLE" | "EXPIRED" | "REJECTED" => DeliveryStatus::Failed,
        _ => return Report::Pending,
    };
    let error = (delivery == DeliveryStatus::Failed).then(|| {
        // `error` says why; an `OK` group there (or none) leaves the status to say it.
        let e = r
            .get("error")
            .filter(|e| field(Some(e), "groupName").is_some_and(|g| g != "OK"));
        let code = field(e, "name")
            .or_else(|| field(status, "name"))
            .unwrap_or_else(|| group.clone());
        let message = field(e, "description")
            .or_else(|| field(status, "description"))
            .unwrap_or_else(|| format!("Infobip reports the message {group}"));
        (code, message)
    });
    Report::Of(StatusReport {
        about: ReportRef::Message(id.trim().to_string()),
        reference: r
            .get("callbackData")
            .and_then(Value::as_str)
            .and_then(MessageRef::parse),
        status: delivery,
        error,
        at: r
            .get("doneAt")
            .and_then(Value::as_str)
            .and_then(parse_received_at),
    })
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
            opt_out_keywords: ConsentWords::default_opt_out(),
            opt_in_keywords: ConsentWords::default_opt_in(),
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
            opt_out_keywords: ConsentWords::default_opt_out(),
            opt_in_keywords: ConsentWords::default_opt_in(),
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
            opt_out_keywords: ConsentWords::default_opt_out(),
            opt_in_keywords: ConsentWords::default_opt_in(),
        };
        assert!(Infobip::new(cfg(InfobipAuth::Basic, None)).is_err());
        assert!(Infobip::new(cfg(InfobipAuth::Basic, Some("a:b"))).is_err());
        assert!(Infobip::new(cfg(InfobipAuth::Basic, Some("infobip"))).is_ok());
        assert!(Infobip::new(cfg(InfobipAuth::Header, Some("x"))).is_err());
        assert!(Infobip::new(cfg(InfobipAuth::Header, None)).is_ok());
    }
}
