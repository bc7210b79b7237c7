//! Twilio Programmable Messaging: SMS, MMS and WhatsApp senders on Twilio,
//! at `/webhooks/twilio/{instance}`.
//!
//! Authenticity is `X-Twilio-Signature`, computed exactly as Twilio's
//! reference validator does (twilio-python `RequestValidator`): HMAC-SHA1 of
//! the URL Twilio called followed by the sorted form parameters. Twilio is not
//! consistent about writing the port, so the URL is tried in the two forms the
//! validator tries ([`url_forms`]): without any port, and with the port it
//! names or else the scheme's default.
//! Answers are always TwiML: a `text/plain` body would be texted back to the citizen.
//!
//! The same route is the `StatusCallback` of our replies: a callback (with
//! `MessageStatus`) passes the same signature check and becomes a delivery
//! report, never a complaint. A whole SMS of an opt-out or opt-in word
//! (`STOP`, `DAFTAR`, …) is a consent, not a complaint.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use aduan_adapter::verify::{base64_encode, constant_time_eq, hmac_sha1, sha256_hex};
use aduan_adapter::{
    Adapter, Attachment, AttachmentKind, Channel, Complaint, Context, Deferral, DeliveryStatus,
    Location, MessageRef, Outcome, Receipt, Rejection, Reply, ReportRef, Request, Secret,
    StatusReport, phone,
};
use serde::Deserialize;

use crate::common::{self, Common, Params, Problems};
use crate::keyword::{ConsentWords, Keywords};

/// The `provider` of every complaint this adapter writes.
pub const PROVIDER: &str = "twilio";

/// The empty TwiML document: "accepted, send nothing back".
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// Twilio sends at most ten media items per message.
const MAX_MEDIA: usize = 10;

/// Configuration of a `kind = "twilio"` instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The account's Auth Token, which Twilio signs every request with
    /// (`env:TWILIO_AUTH_TOKEN` or `file:/run/secrets/twilio`).
    pub auth_token: Secret,
    /// The scheme, host and any path prefix under which Twilio reaches this
    /// gateway, e.g. `https://lapor.example.go.id` or
    /// `https://example.go.id/aduan` when a proxy strips `/aduan`. The request's
    /// path and query are appended to it to rebuild the signed URL.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Rebuild the signed URL from `X-Forwarded-Proto` and `X-Forwarded-Host`
    /// (or `Host`) instead of `public_url`. Only for gateways whose proxy sets
    /// these headers and strips any the client sent.
    #[serde(default)]
    pub trust_proxy: bool,
    /// Also accept `GET` webhooks (the number's webhook method set to GET in
    /// the Twilio console). Default: POST only.
    #[serde(default)]
    pub allow_get: bool,
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

fn default_region() -> String {
    aduan_adapter::phone::DEFAULT_REGION.to_string()
}

/// Where the signed URL's scheme and host come from.
#[derive(Debug)]
enum UrlSource {
    /// A configured base, without trailing slash.
    Base(String),
    /// The proxy's forwarding headers.
    Proxy,
}

/// The Twilio adapter.
#[derive(Debug)]
pub struct Twilio {
    auth_token: Secret,
    url: UrlSource,
    allow_get: bool,
    common: Common,
}

impl Twilio {
    /// Validates the configuration.
    pub fn new(cfg: TwilioConfig) -> Result<Self, String> {
        let url = match (cfg.public_url, cfg.trust_proxy) {
            (Some(_), true) => {
                return Err("set either public_url or trust_proxy, not both".to_string());
            }
            (None, false) => {
                return Err(
                    "public_url is required (the URL Twilio calls, for the signature), unless trust_proxy = true"
                        .to_string(),
                );
            }
            (None, true) => UrlSource::Proxy,
            (Some(base), false) => UrlSource::Base(check_public_url(&base)?),
        };
        Ok(Twilio {
            auth_token: cfg.auth_token,
            url,
            allow_get: cfg.allow_get,
            common: Common::new(
                &cfg.region,
                &cfg.keywords,
                &cfg.opt_out_keywords,
                &cfg.opt_in_keywords,
            )?,
        })
    }

    /// The URL as Twilio called it: scheme and host from the configuration or
    /// the proxy, path and query exactly as received. Its port, if any, is
    /// `public_url`'s or the forwarded host's; [`url_forms`] then varies it.
    fn called_url(&self, req: &Request<'_>) -> Result<String, Rejection> {
        let path = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        match &self.url {
            UrlSource::Base(base) => Ok(format!("{base}{path}")),
            UrlSource::Proxy => {
                let first = |name: &str| {
                    req.header(name)
                        .and_then(|v| v.split(',').next())
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                };
                // Twilio only calls public URLs, which are https unless the
                // operator configured otherwise; a proxy that omits the header
                // terminates TLS itself.
                let scheme = first("x-forwarded-proto").unwrap_or("https");
                if scheme != "https" && scheme != "http" {
                    return Err(Rejection::Forbidden("unusable X-Forwarded-Proto"));
                }
                let host = first("x-forwarded-host")
                    .or_else(|| first("host"))
                    .ok_or(Rejection::Forbidden("no host to rebuild the signed URL"))?;
                Ok(format!("{scheme}://{host}{path}"))
            }
        }
    }
}

fn check_public_url(base: &str) -> Result<String, String> {
    let trimmed = base.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|_| format!("public_url: `{base}` is not a URL"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("https") | Some("http"));
    if !scheme_ok || uri.authority().is_none() || uri.query().is_some() {
        return Err(format!(
            "public_url: `{base}` must be http(s)://host[:port][/prefix] without a query"
        ));
    }
    Ok(trimmed.to_string())
}

/// Twilio's signature: base64 HMAC-SHA1 of `url` followed by `name` + `value`
/// for each parameter. As twilio-python does, names are sorted and each name's
/// distinct values are sorted and written after their own copy of the name
/// (`Digits1234Digits5678`).
pub fn signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    base64_encode(&hmac_sha1(
        auth_token,
        signed_string(url, params).as_bytes(),
    ))
}

/// The text Twilio signs; see [`signature`].
pub fn signed_string(url: &str, params: &[(String, String)]) -> String {
    let mut grouped: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        grouped.entry(name).or_default().insert(value);
    }
    let mut signed = url.to_string();
    for (name, values) in grouped {
        for value in values {
            signed.push_str(name);
            signed.push_str(value);
        }
    }
    signed
}

/// Splits `url` into (`scheme://`, authority, rest).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let idx = url.find("://")? + 3;
    let (head, tail) = url.split_at(idx);
    let end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    let (authority, rest) = tail.split_at(end);
    Some((head, authority, rest))
}

/// The explicit port of an authority (`host:8443` → `8443`), IPv6-aware.
fn port_of(authority: &str) -> Option<&str> {
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let colon = host_port.rfind(':')?;
    if host_port[colon..].contains(']') {
        return None;
    }
    let port = &host_port[colon + 1..];
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

/// `url` with a port: unchanged when it names one (whichever it is),
/// otherwise with the scheme's default added, `:443` for `https` (in any
/// case) and `:80` for any other scheme.
pub fn with_port(url: &str) -> String {
    let Some((head, authority, rest)) = split_url(url) else {
        return url.to_string();
    };
    if port_of(authority).is_some() {
        return url.to_string();
    }
    let port = if head.eq_ignore_ascii_case("https://") {
        443
    } else {
        80
    };
    format!("{head}{authority}:{port}{rest}")
}

/// `url` without a port: an explicit one is removed, the default port or
/// any other (`https://h:8443/x` becomes `https://h/x`).
pub fn without_port(url: &str) -> String {
    let Some((head, authority, rest)) = split_url(url) else {
        return url.to_string();
    };
    match port_of(authority) {
        Some(port) => {
            let host = &authority[..authority.len() - port.len() - 1];
            format!("{head}{host}{rest}")
        }
        None => url.to_string(),
    }
}

/// The two forms of `url` a signature is checked against, as twilio-python's
/// `RequestValidator.validate` builds them: [`without_port`], then
/// [`with_port`]. One of them is always `url` itself. A port other than the
/// default is never exchanged for the default: for `https://h:8443/x` the
/// forms are `https://h/x` and `https://h:8443/x`, not `https://h:443/x`.
pub fn url_forms(url: &str) -> [String; 2] {
    [without_port(url), with_port(url)]
}

/// Checks `signature` the way twilio-python's `RequestValidator.validate`
/// does: against both [`url_forms`] of `url`, accepted when either matches.
///
/// A JSON body comes with a `bodySHA256` query parameter: then only the URL is
/// signed and the body's hash must match too.
pub fn validate(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    body: &[u8],
    signature_b64: &str,
) -> bool {
    let body_hash = url.split_once('?').map(|(_, q)| q).and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "bodySHA256")
            .map(|(_, v)| v.into_owned())
    });
    let (params, body_ok) = match body_hash {
        Some(expected) => (
            &[][..],
            constant_time_eq(sha256_hex(body).as_bytes(), expected.as_bytes()),
        ),
        None => (params, true),
    };
    let [plain, ported] = url_forms(url).map(|form| signature(auth_token, &form, params));
    let given = signature_b64.as_bytes();
    // Both comparisons always run so that timing does not tell which URL form matched.
    let a = constant_time_eq(plain.as_bytes(), given);
    let b = constant_time_eq(ported.as_bytes(), given);
    body_ok && (a | b)
}

/// Twilio sometimes delivers a concatenated SMS as a base64 `Body`. Decodes it
/// when it looks like nothing a person would type: long, one base64 token,
/// and decoding to readable text that contains a space.
pub fn decode_possible_base64(body: &str) -> Cow<'_, str> {
    use base64::Engine as _;
    let compact: String = body.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let compact = compact.trim();
    if compact.len() < 60 || !compact.len().is_multiple_of(4) {
        return Cow::Borrowed(body);
    }
    let unpadded = compact.trim_end_matches('=');
    if compact.len() - unpadded.len() > 2
        || !unpadded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Cow::Borrowed(body);
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) else {
        return Cow::Borrowed(body);
    };
    match String::from_utf8(bytes) {
        Ok(text)
            if text.contains(' ')
                && !text
                    .chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            Cow::Owned(text)
        }
        _ => Cow::Borrowed(body),
    }
}

impl Adapter for Twilio {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        let is_get = req.method == http::Method::GET;
        if !(req.method == http::Method::POST || is_get && self.allow_get) {
            return Err(Rejection::MethodNotAllowed);
        }
        let given = req
            .header("x-twilio-signature")
            .ok_or(Rejection::Forbidden("missing X-Twilio-Signature"))?;
        let url = self.called_url(req)?;
        // With GET every parameter is already in the signed URL.
        let params = if is_get { Vec::new() } else { req.form_pairs() };
        if validate(
            self.auth_token.expose_bytes(),
            &url,
            &params,
            req.body,
            given,
        ) {
            Ok(())
        } else {
            Err(Rejection::Forbidden("bad X-Twilio-Signature"))
        }
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        let p = Params(req.params());
        // The same URL is the `StatusCallback` of our replies: their status
        // callbacks are reports, never complaints.
        let status = p.get("MessageStatus").or_else(|| p.get("SmsStatus"));
        if let Some(status) = status.filter(|s| *s != "received" && *s != "receiving") {
            return status_report(req, &p, status);
        }

        let mut problems = Problems::default();
        let sid = p
            .non_blank("MessageSid")
            .or_else(|| p.non_blank("SmsMessageSid"))
            .or_else(|| p.non_blank("SmsSid"));
        if sid.is_none() {
            problems.add("MessageSid", "missing");
        }
        let from = p.non_blank("From");
        if from.is_none() {
            problems.add("From", "missing");
        }
        let num_media = match p.non_blank("NumMedia") {
            None => 0,
            Some(n) => match n.trim().parse::<usize>() {
                Ok(n) if n <= MAX_MEDIA => n,
                _ => {
                    problems.add("NumMedia", "not a number from 0 to 10");
                    0
                }
            },
        };
        let mut attachments = Vec::with_capacity(num_media);
        for i in 0..num_media {
            let Some(url) = p.non_blank(&format!("MediaUrl{i}")) else {
                problems.add(format!("MediaUrl{i}"), "missing");
                continue;
            };
            let content_type = p.non_blank(&format!("MediaContentType{i}"));
            let mut a = Attachment::new(
                content_type
                    .map(AttachmentKind::from_content_type)
                    .unwrap_or(AttachmentKind::Other),
            );
            a.content_type = content_type.map(str::to_string);
            a.url = Some(url.to_string());
            attachments.push(a);
        }
        let location = location(&p, &mut problems);
        let body = p.get("Body");
        if body.is_none() && attachments.is_empty() && location.is_none() {
            problems.add("Body", "missing");
        }
        problems.finish()?;
        let (Some(sid), Some(from)) = (sid, from) else {
            return Err(Rejection::malformed("missing MessageSid or From"));
        };

        let mut text = decode_possible_base64(body.unwrap_or("")).into_owned();
        if text.is_empty() {
            // A WhatsApp quick-reply button tapped without a body.
            if let Some(button) = p.non_blank("ButtonText") {
                text = button.to_string();
            }
        }
        let mut c = match from.strip_prefix("whatsapp:") {
            Some(number) => {
                let e164 = phone::normalize(number, &self.common.region);
                let digits = e164
                    .as_deref()
                    .or_else(|| p.non_blank("WaId"))
                    .unwrap_or(number)
                    .trim()
                    .trim_start_matches('+')
                    .to_string();
                let mut c = Complaint::new(
                    ctx,
                    Channel::Whatsapp,
                    PROVIDER,
                    sid,
                    format!("whatsapp:{digits}"),
                );
                c.sender.phone = e164;
                self.common.set_text(&mut c, &text);
                c
            }
            None => {
                let sender = self
                    .common
                    .sender(from)
                    .ok_or_else(|| Rejection::malformed("blank From"))?;
                if attachments.is_empty()
                    && location.is_none()
                    && let Some(consent) = self.common.consent(&sender, &text)
                {
                    return Ok(common::accept(vec![], vec![], vec![], vec![consent]));
                }
                self.common.complaint(ctx, PROVIDER, sid, sender, &text)
            }
        };
        c.sender.name = p.non_blank("ProfileName").map(str::to_string);
        c.recipient = self.common.recipient(
            p.get("To")
                .map(|to| to.strip_prefix("whatsapp:").unwrap_or(to)),
        );
        c.attachments = attachments;
        c.location = location;
        c.thread.in_reply_to = p.non_blank("OriginalRepliedMessageSid").map(str::to_string);
        c.raw = common::raw(ctx, req);
        Ok(Outcome::complaints(vec![c]))
    }

    fn accepted(&self, _receipts: &[Receipt]) -> Reply {
        twiml(200, None)
    }

    /// Refusals are TwiML too: Twilio logs the status, and a body it did read
    /// must never be something it would text to the citizen.
    fn rejected(&self, rejection: &Rejection) -> Reply {
        twiml(rejection.status(), Some(rejection.reason()))
    }

    /// What the gateway could not take now (over a limit, storage away, past
    /// the deadline) is TwiML as well, for the same reason.
    fn deferred_to(&self, _req: &Request<'_>, status: u16, deferral: Deferral) -> Reply {
        twiml(status, Some(deferral.reason()))
    }
}

/// A status callback: `sent`, `delivered`, `read`, `undelivered` and
/// `failed` are reports about the message `MessageSid`; the steps before
/// (`queued`, `accepted`, `sending`, `scheduled`) and any other status are
/// acknowledged as `status`. Twilio's callbacks carry no time of their own.
/// The `reply_id` and `part` of the callback URL's query are our reference.
fn status_report(req: &Request<'_>, p: &Params, status: &str) -> Result<Outcome, Rejection> {
    let delivery = match status {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "undelivered" | "failed" => DeliveryStatus::Failed,
        _ => return Ok(Outcome::ignored("status")),
    };
    let sid = p
        .non_blank("MessageSid")
        .or_else(|| p.non_blank("SmsSid"))
        .ok_or_else(|| common::missing("MessageSid"))?;
    // Our reference, from the query of the per-message `StatusCallback`.
    let reference = match (req.query("reply_id"), req.query("part")) {
        (Some(reply_id), Some(part)) => MessageRef::parse(&format!("{reply_id}.{part}")),
        _ => None,
    };
    let error = (delivery == DeliveryStatus::Failed).then(|| {
        let code = p.non_blank("ErrorCode").map(str::trim);
        let message = match (p.non_blank("ErrorMessage"), code) {
            (Some(m), _) => m.trim().to_string(),
            (None, Some(code)) => format!("Twilio reports the message {status} (error {code})"),
            (None, None) => format!("Twilio reports the message {status}"),
        };
        (code.unwrap_or(status).to_string(), message)
    });
    Ok(common::accept(
        vec![],
        vec![],
        vec![StatusReport {
            about: ReportRef::Message(sid.trim().to_string()),
            reference,
            status: delivery,
            error,
            at: None,
        }],
        vec![],
    ))
}

/// An empty TwiML answer; `note` (a fixed reason label, never input) goes in an XML comment.
fn twiml(status: u16, note: Option<&'static str>) -> Reply {
    let body = match note {
        None => EMPTY_TWIML.to_string(),
        Some(note) => EMPTY_TWIML.replace("<Response/>", &format!("<!-- {note} --><Response/>")),
    };
    Reply {
        status,
        content_type: Cow::Borrowed("text/xml"),
        body: body.into_bytes(),
    }
}

/// `Latitude`/`Longitude` (with `Label` and `Address`) of a shared location.
fn location(p: &Params, problems: &mut Problems) -> Option<Location> {
    let (lat, lon) = (p.non_blank("Latitude"), p.non_blank("Longitude"));
    if lat.is_none() && lon.is_none() {
        return None;
    }
    let degrees = |name: &str, v: Option<&str>, limit: f64, problems: &mut Problems| match v
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        Some(d) if d.is_finite() && d.abs() <= limit => Some(d),
        _ => {
            problems.add(name, format!("not a number of degrees within ±{limit}"));
            None
        }
    };
    let latitude = degrees("Latitude", lat, 90.0, problems);
    let longitude = degrees("Longitude", lon, 180.0, problems);
    Some(Location {
        latitude: latitude?,
        longitude: longitude?,
        name: p.non_blank("Label").map(str::to_string),
        address: p.non_blank("Address").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Owned, ctx, fixture};

    fn jabar(public_url: Option<&str>, trust_proxy: bool) -> Twilio {
        Twilio::new(TwilioConfig {
            auth_token: Secret::literal("twilio-test-token-jabar"),
            public_url: public_url.map(str::to_string),
            trust_proxy,
            allow_get: false,
            region: "ID".into(),
            keywords: Keywords::default_list(),
            opt_out_keywords: ConsentWords::default_opt_out(),
            opt_in_keywords: ConsentWords::default_opt_in(),
        })
        .expect("valid config")
    }

    fn signed_post(path: &str, form: &str, sig: &str, extra: &[(&str, &str)]) -> Owned {
        let mut headers = vec![
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-twilio-signature", sig),
        ];
        headers.extend_from_slice(extra);
        Owned::new("POST", path, &headers, form.as_bytes())
    }

    #[test]
    fn fixture_signatures_verify_against_the_configured_url() {
        let form = fixture("twilio/sms.form");
        let path = "/webhooks/twilio/twilio-jabar";
        let base = jabar(Some("https://lapor.example.go.id/"), false);
        for sig in ["sms", "sms.port443"] {
            let sig = fixture(&format!("twilio/{sig}.sig"));
            let r = signed_post(path, &form, &sig, &[]);
            assert!(base.verify(&r.request()).is_ok());
        }
        let wrong = fixture("twilio/sms.wrongtoken.sig");
        let r = signed_post(path, &form, &wrong, &[]);
        assert!(matches!(
            base.verify(&r.request()),
            Err(Rejection::Forbidden(_))
        ));

        let proxy = jabar(None, true);
        let sig = fixture("twilio/sms.proxy.sig");
        let r = signed_post(
            "/webhooks/twilio/twilio-proxy",
            &form,
            &sig,
            &[
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "aduan.example.go.id"),
            ],
        );
        assert!(proxy.verify(&r.request()).is_ok());
        let r = signed_post(
            "/webhooks/twilio/twilio-proxy",
            &form,
            &sig,
            &[("host", "aduan.example.go.id")],
        );
        assert!(
            proxy.verify(&r.request()).is_ok(),
            "Host and https by default"
        );
        let r = Owned::new("PUT", "/webhooks/twilio/twilio-jabar", &[], b"");
        assert!(matches!(
            base.verify(&r.request()),
            Err(Rejection::MethodNotAllowed)
        ));
    }

    #[test]
    fn whatsapp_senders_and_locations() {
        let form = fixture("twilio/whatsapp_location.form");
        let r = Owned::new(
            "POST",
            "/webhooks/twilio/twilio-jabar",
            &[("content-type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        );
        let a = jabar(Some("https://lapor.example.go.id"), false);
        let Ok(Outcome::Accept { complaints, .. }) = a.parse(&r.request(), &ctx("twilio-jabar"))
        else {
            panic!("accepted");
        };
        let c = &complaints[0];
        assert_eq!(c.channel, Channel::Whatsapp);
        assert_eq!(c.sender.id, "whatsapp:6281398765432");
        assert_eq!(c.sender.phone.as_deref(), Some("+6281398765432"));
        assert_eq!(c.sender.name.as_deref(), Some("Dewi Lestari"));
        assert_eq!(c.recipient.as_deref(), Some("+6281100017080"));
        assert_eq!(c.thread.conversation, "twilio-jabar:whatsapp:6281398765432");
        let loc = c.location.as_ref().expect("location");
        assert_eq!((loc.latitude, loc.longitude), (-6.4815, 106.854));
        assert_eq!(loc.name.as_deref(), Some("SDN 3 Cibinong"));
        assert_eq!(c.text, "");
    }

    #[test]
    fn status_callbacks_and_bad_fields() {
        let a = jabar(Some("https://lapor.example.go.id"), false);
        let parse = |body: &str| {
            let r = Owned::new("POST", "/x", &[], body.as_bytes());
            a.parse(&r.request(), &ctx("twilio-jabar"))
        };
        let Ok(Outcome::Accept {
            complaints,
            ignored,
            reports,
            consents,
        }) = parse(&fixture("twilio/status.form"))
        else {
            panic!("accepted");
        };
        assert!(complaints.is_empty() && ignored.is_empty() && consents.is_empty());
        assert_eq!(
            reports,
            [aduan_adapter::StatusReport {
                about: ReportRef::Message("SM3f1c9a7e2b4d6f8a0c2e4b6d8f0a1c3e".into()),
                reference: None,
                status: DeliveryStatus::Delivered,
                error: None,
                at: None,
            }]
        );
        // The per-message StatusCallback's query names our reply and part.
        let r = Owned::new(
            "POST",
            "/x?reply_id=rpl-20261124-0150&part=0",
            &[],
            fixture("twilio/status.form").as_bytes(),
        );
        let Ok(Outcome::Accept { reports, .. }) = a.parse(&r.request(), &ctx("twilio-jabar"))
        else {
            panic!("accepted");
        };
        assert_eq!(
            reports[0].reference,
            MessageRef::new("rpl-20261124-0150", 0),
            "{reports:?}"
        );
        assert!(matches!(
            parse("MessageStatus=queued&MessageSid=SM1"),
            Ok(Outcome::Accept { ref ignored, ref reports, .. }) if reports.is_empty() && ignored[0].reason == "status"
        ));
        assert!(matches!(
            parse("MessageStatus=delivered"),
            Err(Rejection::Invalid(e)) if e[0].field == "MessageSid"
        ));
        let Err(Rejection::Invalid(errors)) = parse(
            "MessageSid=SM1&From=%2B6281234567890&NumMedia=2&MediaUrl0=https%3A%2F%2Fa&Latitude=200&Longitude=1",
        ) else {
            panic!("invalid");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["MediaUrl1", "Latitude"]);
        assert!(matches!(parse("Body=hai"), Err(Rejection::Invalid(e)) if e.len() == 2));
    }

    #[test]
    fn refusals_are_twiml() {
        let a = jabar(Some("https://lapor.example.go.id"), false);
        let reply = a.rejected(&Rejection::Forbidden("bad X-Twilio-Signature"));
        assert_eq!(reply.status, 403);
        assert_eq!(reply.content_type, "text/xml");
        assert_eq!(
            String::from_utf8(reply.body).unwrap(),
            r#"<?xml version="1.0" encoding="UTF-8"?><!-- bad_signature --><Response/>"#
        );
        let ok = a.accepted(&[]);
        assert_eq!((ok.status, ok.body), (200, EMPTY_TWIML.as_bytes().to_vec()));
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn official() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn official_vector() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature(b"12345", url, &official()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(validate(
            b"12345",
            url,
            &official(),
            b"",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn ports_are_tried_both_ways() {
        let with_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature(b"12345", with_443, &official()),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        let with_80 = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature(b"12345", with_80, &official()),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        );
        // A signature made over either form validates against either form.
        for url in [
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        ] {
            for sig in [
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ] {
                assert!(
                    validate(b"12345", url, &official(), b"", sig),
                    "{url} {sig}"
                );
            }
        }
        assert!(validate(
            b"12345",
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &official(),
            b"",
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        ));
    }

    #[test]
    fn port_helpers() {
        assert_eq!(with_port("https://a.id/x?y=1"), "https://a.id:443/x?y=1");
        assert_eq!(with_port("http://a.id"), "http://a.id:80");
        assert_eq!(with_port("https://a.id:8443/x"), "https://a.id:8443/x");
        assert_eq!(without_port("https://a.id:8443/x"), "https://a.id/x");
        assert_eq!(without_port("https://a.id/x:1"), "https://a.id/x:1");
        assert_eq!(without_port("http://[::1]:80/x"), "http://[::1]/x");
        assert_eq!(with_port("http://[::1]/x"), "http://[::1]:80/x");
    }

    #[test]
    fn exactly_two_url_forms_are_tried() {
        for (url, forms) in [
            ("https://a.id/x", ["https://a.id/x", "https://a.id:443/x"]),
            (
                "https://a.id:443/x",
                ["https://a.id/x", "https://a.id:443/x"],
            ),
            (
                "https://a.id:8443/x",
                ["https://a.id/x", "https://a.id:8443/x"],
            ),
            (
                "http://a.id/x?y=1",
                ["http://a.id/x?y=1", "http://a.id:80/x?y=1"],
            ),
            ("http://a.id:443/x", ["http://a.id/x", "http://a.id:443/x"]),
            ("HTTPS://a.id/x", ["HTTPS://a.id/x", "HTTPS://a.id:443/x"]),
            (
                "https://[::1]:8443/x",
                ["https://[::1]/x", "https://[::1]:8443/x"],
            ),
            (
                "https://a.id/x?at=12:30",
                ["https://a.id/x?at=12:30", "https://a.id:443/x?at=12:30"],
            ),
        ] {
            assert_eq!(url_forms(url), forms.map(str::to_string), "{url}");
        }
        let signed = |url: &str| signature(b"12345", url, &official());
        // A non-default port: signatures over it or over no port pass, one
        // over the default port does not.
        let configured = "https://a.id:8443/x";
        assert!(validate(
            b"12345",
            configured,
            &official(),
            b"",
            &signed("https://a.id:8443/x")
        ));
        assert!(validate(
            b"12345",
            configured,
            &official(),
            b"",
            &signed("https://a.id/x")
        ));
        assert!(!validate(
            b"12345",
            configured,
            &official(),
            b"",
            &signed("https://a.id:443/x")
        ));
        // No port configured: a signature over another port does not pass.
        let configured = "https://a.id/x";
        assert!(!validate(
            b"12345",
            configured,
            &official(),
            b"",
            &signed("https://a.id:8443/x")
        ));
        assert!(!validate(
            b"12345",
            configured,
            &official(),
            b"",
            &signed("https://a.id:80/x")
        ));
    }

    #[test]
    fn computed_vector() {
        let params = pairs(&[
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("From", "+639171234567"),
            ("To", "+15005550006"),
            ("Body", "Pothole on Rizal Ave"),
            ("NumMedia", "0"),
        ]);
        assert_eq!(
            signature(
                b"test_auth_token",
                "https://example.org/hooks/twilio/sms",
                &params
            ),
            "y+Pzg2ZQbVaZ0XnBxfVg1o3w2zE="
        );
    }

    #[test]
    fn repeated_keys_follow_the_reference() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let mut params = official();
        params.retain(|(k, _)| k != "Digits");
        params.extend(pairs(&[
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]));
        // Each distinct value after its own copy of the name, values sorted
        // (not courier's `Digits56781234`).
        assert_eq!(
            signed_string(url, &params),
            "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDE\
             Caller+14158675309Digits1234Digits5678From+14158675309To+18005551212"
        );
        // Computed independently in Python following `compute_signature`.
        assert_eq!(
            signature(b"12345", url, &params),
            "1F55Y6EDsEviuHKQm9BIkrznRZk="
        );
    }

    #[test]
    fn tampering_fails() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        let mut changed = official();
        changed[2].1 = "9999".to_string();
        assert!(!validate(b"12345", url, &changed, b"", good));
        assert!(!validate(b"54321", url, &official(), b"", good));
        assert!(!validate(
            b"12345",
            "https://mycompany.com/myapp.php?foo=2&bar=2",
            &official(),
            b"",
            good
        ));
        assert!(!validate(b"12345", url, &official(), b"", ""));
    }

    #[test]
    fn json_bodies_are_checked_by_hash() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let url = format!(
            "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={}",
            sha256_hex(body)
        );
        let sig = signature(b"12345", &url, &[]);
        assert!(validate(b"12345", &url, &[], body, &sig));
        assert!(!validate(b"12345", &url, &[], b"{}", &sig));
    }

    #[test]
    fn base64_bodies_are_decoded_only_when_they_look_encoded() {
        let text = "Jalan berlubang di depan SDN 3 Cibinong sudah tiga bulan tidak diperbaiki, mohon ditindaklanjuti";
        let encoded = base64_encode(text.as_bytes());
        assert_eq!(decode_possible_base64(&encoded), text);
        for plain in [
            "Jalan rusak",
            "TERIMAKASIH",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(decode_possible_base64(plain), plain);
        }
    }

    #[test]
    fn config_needs_a_url_source() {
        let cfg = |public_url: Option<&str>, trust_proxy| TwilioConfig {
            auth_token: Secret::literal("t"),
            public_url: public_url.map(str::to_string),
            trust_proxy,
            allow_get: false,
            region: "ID".into(),
            keywords: vec![],
            opt_out_keywords: ConsentWords::default_opt_out(),
            opt_in_keywords: ConsentWords::default_opt_in(),
        };
        assert!(Twilio::new(cfg(None, false)).is_err());
        assert!(Twilio::new(cfg(Some("https://a.id"), true)).is_err());
        assert!(Twilio::new(cfg(Some("ftp://a.id"), false)).is_err());
        assert!(Twilio::new(cfg(Some("https://a.id/?x=1"), false)).is_err());
        assert!(Twilio::new(cfg(Some("https://a.id/aduan/"), false)).is_ok());
        assert!(Twilio::new(cfg(None, true)).is_ok());
    }
}
