//! Generic SMS gateways, at `/webhooks/sms/{instance}`: Kannel, Jasmin,
//! playSMS, Android SMS gateway apps and telco short-code platforms.
//!
//! Each platform names its fields differently, so the instance maps them:
//! sender, recipient, text, message id and timestamp (with its format). The
//! request may be a GET query, a POST form or a POST JSON object (dotted
//! names reach into nested objects). Authentication is a shared secret in a
//! header, a query parameter or Basic credentials.
//!
//! Delivery reports of our replies come to the same route and pass the
//! same check (so the reply's `dlr_url` carries the query secret or Basic
//! credentials): a request with `dlr_status_param` and without
//! `text_field` is a report about the message `dlr_id_param` names, its
//! status read through `dlr_statuses`. A whole message of an opt-out or
//! opt-in word is a consent.

use std::collections::BTreeMap;

use aduan_adapter::{
    Adapter, Context, DeliveryStatus, MessageRef, Outcome, Raw, Rejection, ReportRef, Request,
    Secret, StatusReport, Timestamp, content_id,
};
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;
use serde_json::Value;

use crate::common::{self, Common, Problems};
use crate::keyword::{ConsentWords, Keywords};

/// The `provider` of every complaint this adapter writes.
pub const PROVIDER: &str = "generic_sms";

/// Where the platform puts the shared secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenericAuth {
    /// The header `secret_header` carries `secret`.
    Header,
    /// The query parameter `secret_param` carries `secret`.
    Query,
    /// `Authorization: Basic` with `username` and `secret` as the password.
    Basic,
}

/// Configuration of a `kind = "sms"` instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericSmsConfig {
    /// Where the secret travels: `header`, `query` or `basic`.
    pub auth: GenericAuth,
    /// The shared secret the platform sends.
    pub secret: Secret,
    /// The header carrying the secret with `auth = "header"`. Default `X-Aduan-Secret`.
    #[serde(default = "default_secret_header")]
    pub secret_header: String,
    /// The query parameter carrying the secret with `auth = "query"`. Default `secret`.
    /// It is removed from the `raw` copy of a GET request.
    #[serde(default = "default_secret_param")]
    pub secret_param: String,
    /// The Basic user name with `auth = "basic"`.
    #[serde(default)]
    pub username: Option<String>,
    /// The field holding the sender's number. Default `from`.
    #[serde(default = "default_sender_field")]
    pub sender_field: String,
    /// The field holding the number that was texted (often the short code). Default `to`.
    #[serde(default = "default_recipient_field")]
    pub recipient_field: String,
    /// The field holding the message. Default `text`.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// The field holding the platform's message id, if it sends one. Default
    /// `id`. When a request has none, the `sha256:` content id is used.
    #[serde(default = "default_id_field")]
    pub id_field: String,
    /// The field holding the time the platform received the SMS, if any.
    #[serde(default)]
    pub timestamp_field: Option<String>,
    /// How that time is written: `rfc3339` (default), `unix` (seconds),
    /// `unix_ms`, or a strftime pattern such as `%Y-%m-%d %H:%M:%S` (read as
    /// UTC unless the pattern has `%z`).
    #[serde(default = "default_timestamp_format")]
    pub timestamp_format: String,
    /// For messages without an id or timestamp: retries within this many
    /// seconds of each other count as one delivery. Default 600.
    #[serde(default = "default_content_dedup")]
    pub content_dedup_seconds: u64,
    /// The field of a delivery report that names the message: our `{id}`
    /// put into the reply's `dlr_url` (Kannel) or the gateway's own id
    /// (Jasmin). Default `id`. A POST report may carry it in the query.
    #[serde(default = "default_id_field")]
    pub dlr_id_param: String,
    /// The field holding a delivery report's status. A request with this
    /// field and without `text_field` is a delivery report. Default `status`
    /// (Kannel's `%d` in the `dlr_url`); Jasmin's is `message_status`.
    #[serde(default = "default_dlr_status_param")]
    pub dlr_status_param: String,
    /// The field holding a failed delivery's error code. Default `err`.
    #[serde(default = "default_dlr_error_param")]
    pub dlr_error_param: String,
    /// What each status value means: `sent`, `delivered`, `read`, `failed`
    /// or `ignore`; values not listed are ignored too. Default Kannel's
    /// `%d` (`1` delivered, `2` failed, `4` buffered: ignored, `8` submitted
    /// to the SMSC: sent, `16` rejected by the SMSC: failed) and the SMPP
    /// states Jasmin reports (`DELIVRD` delivered; `UNDELIV`, `EXPIRED`,
    /// `REJECTD`, `DELETED` failed; `ESME_ROK` sent; `ACCEPTD`, `ENROUTE`,
    /// `UNKNOWN` ignored). Matched in any case.
    #[serde(default = "default_dlr_statuses")]
    pub dlr_statuses: BTreeMap<String, DlrMeaning>,
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
fn default_secret_param() -> String {
    "secret".to_string()
}
fn default_sender_field() -> String {
    "from".to_string()
}
fn default_recipient_field() -> String {
    "to".to_string()
}
fn default_text_field() -> String {
    "text".to_string()
}
fn default_id_field() -> String {
    "id".to_string()
}
fn default_dlr_status_param() -> String {
    "status".to_string()
}
fn default_dlr_error_param() -> String {
    "err".to_string()
}
fn default_dlr_statuses() -> BTreeMap<String, DlrMeaning> {
    use DlrMeaning::{Delivered, Failed, Ignore, Sent};
    [
        ("1", Delivered),
        ("2", Failed),
        ("4", Ignore),
        ("8", Sent),
        ("16", Failed),
        ("DELIVRD", Delivered),
        ("UNDELIV", Failed),
        ("EXPIRED", Failed),
        ("REJECTD", Failed),
        ("DELETED", Failed),
        ("ESME_ROK", Sent),
        ("ACCEPTD", Ignore),
        ("ENROUTE", Ignore),
        ("UNKNOWN", Ignore),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
fn default_timestamp_format() -> String {
    "rfc3339".to_string()
}
fn default_content_dedup() -> u64 {
    600
}
fn default_region() -> String {
    aduan_adapter::phone::DEFAULT_REGION.to_string()
}

/// What a delivery report's status value means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DlrMeaning {
    Sent,
    Delivered,
    Read,
    Failed,
    /// Not final (buffered, en route): acknowledged, not reported.
    Ignore,
}

#[derive(Debug)]
enum Auth {
    Header(String),
    Query(String),
    Basic(String),
}

/// How the timestamp field is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeFormat {
    Rfc3339,
    UnixSeconds,
    UnixMillis,
    /// A strftime pattern; `true` when it carries an offset.
    Pattern(String, bool),
}

impl TimeFormat {
    fn new(format: &str) -> Result<Self, String> {
        Ok(match format {
            "rfc3339" => TimeFormat::Rfc3339,
            "unix" => TimeFormat::UnixSeconds,
            "unix_ms" => TimeFormat::UnixMillis,
            pattern => {
                if StrftimeItems::new(pattern).any(|i| matches!(i, Item::Error)) {
                    return Err(format!(
                        "timestamp_format: `{pattern}` is neither rfc3339, unix, unix_ms nor a strftime pattern"
                    ));
                }
                let offset = pattern.contains("%z") || pattern.contains("%:z");
                TimeFormat::Pattern(pattern.to_string(), offset)
            }
        })
    }

    fn parse(&self, s: &str) -> Option<Timestamp> {
        let s = s.trim();
        match self {
            TimeFormat::Rfc3339 => Timestamp::parse_rfc3339(s),
            TimeFormat::UnixSeconds => s.parse::<i64>().ok().and_then(Timestamp::from_unix_seconds),
            TimeFormat::UnixMillis => s.parse::<i64>().ok().and_then(Timestamp::from_unix_millis),
            TimeFormat::Pattern(p, true) => DateTime::parse_from_str(s, p)
                .ok()
                .map(|t| Timestamp(t.to_utc())),
            TimeFormat::Pattern(p, false) => NaiveDateTime::parse_from_str(s, p)
                .ok()
                .map(|t| Timestamp(t.and_utc())),
        }
    }
}

/// The generic SMS gateway adapter.
#[derive(Debug)]
pub struct GenericSms {
    auth: Auth,
    secret: Secret,
    sender_field: String,
    recipient_field: String,
    text_field: String,
    id_field: String,
    timestamp_field: Option<String>,
    time_format: TimeFormat,
    content_dedup_seconds: i64,
    dlr_id_param: String,
    dlr_status_param: String,
    dlr_error_param: String,
    /// Keys upper-cased.
    dlr_statuses: BTreeMap<String, DlrMeaning>,
    common: Common,
}

impl GenericSms {
    /// Validates the configuration.
    pub fn new(cfg: GenericSmsConfig) -> Result<Self, String> {
        let auth = match cfg.auth {
            GenericAuth::Header => Auth::Header(common::check_header_name(
                "secret_header",
                &cfg.secret_header,
            )?),
            GenericAuth::Query => {
                if cfg.secret_param.trim().is_empty() {
                    return Err("secret_param must not be empty".to_string());
                }
                Auth::Query(cfg.secret_param.clone())
            }
            GenericAuth::Basic => match &cfg.username {
                Some(u) if !u.is_empty() && !u.contains(':') => Auth::Basic(u.clone()),
                _ => {
                    return Err(
                        "username is required with auth = \"basic\" (and has no `:`)".to_string(),
                    );
                }
            },
        };
        if cfg.username.is_some() && !matches!(auth, Auth::Basic(_)) {
            return Err("username is only used with auth = \"basic\"".to_string());
        }
        for (key, value) in [
            ("sender_field", &cfg.sender_field),
            ("recipient_field", &cfg.recipient_field),
            ("text_field", &cfg.text_field),
            ("id_field", &cfg.id_field),
            ("dlr_id_param", &cfg.dlr_id_param),
            ("dlr_status_param", &cfg.dlr_status_param),
            ("dlr_error_param", &cfg.dlr_error_param),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{key} must not be empty"));
            }
        }
        if cfg.content_dedup_seconds == 0 {
            return Err("content_dedup_seconds must be above 0".to_string());
        }
        Ok(GenericSms {
            auth,
            secret: cfg.secret,
            sender_field: cfg.sender_field,
            recipient_field: cfg.recipient_field,
            text_field: cfg.text_field,
            id_field: cfg.id_field,
            timestamp_field: cfg.timestamp_field.filter(|f| !f.trim().is_empty()),
            time_format: TimeFormat::new(&cfg.timestamp_format)?,
            content_dedup_seconds: i64::try_from(cfg.content_dedup_seconds).unwrap_or(i64::MAX),
            dlr_id_param: cfg.dlr_id_param,
            dlr_status_param: cfg.dlr_status_param,
            dlr_error_param: cfg.dlr_error_param,
            dlr_statuses: cfg
                .dlr_statuses
                .into_iter()
                .map(|(k, v)| (k.trim().to_uppercase(), v))
                .collect(),
            common: Common::new(
                &cfg.region,
                &cfg.keywords,
                &cfg.opt_out_keywords,
                &cfg.opt_in_keywords,
            )?,
        })
    }
}

/// The request's fields, whichever way the platform sent them.
enum Fields {
    Pairs(Vec<(String, String)>),
    Json(Value),
}

impl Fields {
    fn of(req: &Request<'_>) -> Result<Fields, Rejection> {
        if req.method == http::Method::GET {
            return Ok(Fields::Pairs(req.query_pairs()));
        }
        if common::is_json(req) {
            let v: Value = serde_json::from_slice(req.body)
                .map_err(|_| Rejection::malformed("body is not JSON"))?;
            if !v.is_object() {
                return Err(Rejection::malformed("body is not a JSON object"));
            }
            return Ok(Fields::Json(v));
        }
        Ok(Fields::Pairs(req.form_pairs()))
    }

    /// The field `name` as text; for JSON, `a.b` reaches into nested objects.
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Fields::Pairs(pairs) => pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            Fields::Json(v) => {
                let found = v
                    .get(name)
                    .or_else(|| name.split('.').try_fold(v, |node, key| node.get(key)))?;
                match found {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }
            }
        }
    }
}

impl Adapter for GenericSms {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        if req.method != http::Method::GET && req.method != http::Method::POST {
            return Err(Rejection::MethodNotAllowed);
        }
        match &self.auth {
            Auth::Header(name) => common::check_header(req, name, &self.secret),
            Auth::Basic(user) => common::check_basic(req, user, &self.secret),
            Auth::Query(param) => {
                let given = req
                    .query(param)
                    .ok_or(Rejection::Unauthorized("missing secret parameter"))?;
                if self.secret.matches(given.as_bytes()) {
                    Ok(())
                } else {
                    Err(Rejection::Unauthorized("bad secret"))
                }
            }
        }
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        let fields = Fields::of(req)?;
        // The gateway's delivery reports of our replies come to the same URL.
        if fields.get(&self.text_field).is_none()
            && let Some(status) = self.dlr_field(&fields, req, &self.dlr_status_param)
        {
            return self.delivery_report(&fields, req, &status);
        }
        let mut problems = Problems::default();
        let from = fields.get(&self.sender_field);
        let sender = from.as_deref().and_then(|f| self.common.sender(f));
        if sender.is_none() {
            problems.add(&self.sender_field, "missing");
        }
        let text = fields.get(&self.text_field);
        if text.is_none() {
            problems.add(&self.text_field, "missing");
        }
        let sent_at = match &self.timestamp_field {
            None => None,
            Some(field) => match fields.get(field).filter(|v| !v.trim().is_empty()) {
                None => None,
                Some(v) => {
                    let t = self.time_format.parse(&v);
                    if t.is_none() {
                        problems.add(field, "not in the configured timestamp_format");
                    }
                    t
                }
            },
        };
        problems.finish()?;
        let (Some(sender), Some(text)) = (sender, text) else {
            return Err(Rejection::malformed("missing sender or text"));
        };
        let recipient = self
            .common
            .recipient(fields.get(&self.recipient_field).as_deref());
        let external_id = match fields.get(&self.id_field).filter(|v| !v.trim().is_empty()) {
            Some(id) => id,
            None => {
                // Retries of one message carry the same timestamp; without
                // one, the acceptance time bucketed by `content_dedup_seconds`
                // stands in, so the same words sent again later are a new
                // complaint rather than a duplicate.
                let when = match sent_at {
                    Some(t) => t.to_rfc3339(),
                    None => format!(
                        "bucket:{}",
                        ctx.received_at
                            .0
                            .timestamp()
                            .div_euclid(self.content_dedup_seconds)
                    ),
                };
                content_id(&[
                    &sender.urn,
                    recipient.as_deref().unwrap_or(""),
                    &text,
                    &when,
                ])
            }
        };
        if let Some(consent) = self.common.consent(&sender, &text) {
            return Ok(common::accept(vec![], vec![], vec![], vec![consent]));
        }
        let mut c = self
            .common
            .complaint(ctx, PROVIDER, external_id, sender, &text);
        c.sent_at = sent_at;
        c.recipient = recipient;
        c.raw = match &self.auth {
            Auth::Query(param) if ctx.keep_raw && req.method == http::Method::GET => {
                Some(without_param(req.uri.query().unwrap_or(""), param))
            }
            _ => common::raw(ctx, req),
        };
        Ok(Outcome::complaints(vec![c]))
    }
}

impl GenericSms {
    /// A delivery report field: from the body, else (for a POST) from the
    /// query, where a `dlr_url` may have put it. Blank counts as absent.
    fn dlr_field(&self, fields: &Fields, req: &Request<'_>, name: &str) -> Option<String> {
        fields
            .get(name)
            .or_else(|| {
                (req.method != http::Method::GET)
                    .then(|| req.query(name))
                    .flatten()
            })
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A report about the message `dlr_id_param` names, by what
    /// `dlr_statuses` says `status` means; an `ignore` or unlisted value is
    /// acknowledged as `status`.
    fn delivery_report(
        &self,
        fields: &Fields,
        req: &Request<'_>,
        status: &str,
    ) -> Result<Outcome, Rejection> {
        let delivery = match self.dlr_statuses.get(&status.to_uppercase()) {
            Some(DlrMeaning::Sent) => DeliveryStatus::Sent,
            Some(DlrMeaning::Delivered) => DeliveryStatus::Delivered,
            Some(DlrMeaning::Read) => DeliveryStatus::Read,
            Some(DlrMeaning::Failed) => DeliveryStatus::Failed,
            Some(DlrMeaning::Ignore) | None => return Ok(Outcome::ignored("status")),
        };
        let id = self
            .dlr_field(fields, req, &self.dlr_id_param)
            .ok_or_else(|| common::missing(&self.dlr_id_param))?;
        let error = (delivery == DeliveryStatus::Failed).then(|| {
            let code = self.dlr_field(fields, req, &self.dlr_error_param);
            let message = match &code {
                Some(code) => format!("the gateway reports status {status} (error {code})"),
                None => format!("the gateway reports status {status}"),
            };
            (code.unwrap_or_else(|| status.to_string()), message)
        });
        Ok(common::accept(
            vec![],
            vec![],
            vec![StatusReport {
                // A report naming our own `{id}` names our reference too.
                reference: MessageRef::parse(&id),
                about: ReportRef::Message(id),
                status: delivery,
                error,
                at: None,
            }],
            vec![],
        ))
    }
}

/// The query string as received, minus the pairs named `param`: the secret
/// must not travel on into the stream.
fn without_param(query: &str, param: &str) -> Raw {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            let decoded: String = form_urlencoded::parse(name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            decoded != param
        })
        .collect();
    Raw::from_bytes(
        "application/x-www-form-urlencoded",
        kept.join("&").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Owned, ctx, fixture};

    fn android() -> GenericSms {
        GenericSms::new(GenericSmsConfig {
            auth: GenericAuth::Header,
            secret: Secret::literal("android-gateway-secret"),
            secret_header: default_secret_header(),
            secret_param: default_secret_param(),
            username: None,
            sender_field: "payload.phoneNumber".into(),
            recipient_field: default_recipient_field(),
            text_field: "payload.message".into(),
            id_field: "payload.messageId".into(),
            timestamp_field: Some("payload.receivedAt".into()),
            timestamp_format: default_timestamp_format(),
            content_dedup_seconds: 600,
            dlr_id_param: default_id_field(),
            dlr_status_param: default_dlr_status_param(),
            dlr_error_param: default_dlr_error_param(),
            dlr_statuses: default_dlr_statuses(),
            region: "ID".into(),
            keywords: Keywords::default_list(),
            opt_out_keywords: ConsentWords::default_opt_out(),
            opt_in_keywords: ConsentWords::default_opt_in(),
        })
        .expect("valid config")
    }

    #[test]
    fn mapped_json_fields() {
        let body = fixture("generic/android.json");
        let r = Owned::new(
            "POST",
            "/",
            &[
                ("content-type", "application/json"),
                ("x-aduan-secret", "android-gateway-secret"),
            ],
            body.as_bytes(),
        );
        let a = android();
        assert!(a.verify(&r.request()).is_ok());
        let Ok(Outcome::Accept { complaints, .. }) = a.parse(&r.request(), &ctx("sms")) else {
            panic!("accepted");
        };
        let c = &complaints[0];
        assert_eq!(c.external_id, "abc-123-def");
        assert_eq!(c.sender.id, "tel:+6285712345678");
        assert_eq!(c.text, "Lampu lalu lintas di perempatan Ciawi mati 🚦");
        assert_eq!(
            c.sent_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-22T08:40:00.000Z")
        );
    }

    #[test]
    fn content_ids_without_an_id() {
        let a = android();
        let body = |text: &str| {
            serde_json::json!({"payload": {"phoneNumber": "081234567890", "message": text}})
                .to_string()
        };
        let id = |text: &str, at: i64| {
            let b = body(text);
            let r = Owned::new(
                "POST",
                "/",
                &[("content-type", "application/json")],
                b.as_bytes(),
            );
            let mut cx = ctx("sms");
            cx.received_at = Timestamp::from_unix_seconds(at).expect("in range");
            match a.parse(&r.request(), &cx) {
                Ok(Outcome::Accept { complaints, .. }) => complaints[0].external_id.clone(),
                other => panic!("{other:?}"),
            }
        };
        let first = id("LAPOR jalan rusak", 1_795_335_600);
        assert!(first.starts_with("sha256:"));
        assert_eq!(
            first,
            id("LAPOR jalan rusak", 1_795_335_600 + 599),
            "same window"
        );
        assert_ne!(
            first,
            id("LAPOR jalan rusak", 1_795_335_600 + 600),
            "next window"
        );
        assert_ne!(first, id("LAPOR jalan berlubang", 1_795_335_600));
    }

    #[test]
    fn config_checks() {
        let cfg = |f: &dyn Fn(&mut GenericSmsConfig)| {
            let mut c = GenericSmsConfig {
                auth: GenericAuth::Basic,
                secret: Secret::literal("s"),
                secret_header: default_secret_header(),
                secret_param: default_secret_param(),
                username: Some("gw".into()),
                sender_field: default_sender_field(),
                recipient_field: default_recipient_field(),
                text_field: default_text_field(),
                id_field: default_id_field(),
                timestamp_field: None,
                timestamp_format: default_timestamp_format(),
                content_dedup_seconds: 600,
                dlr_id_param: default_id_field(),
                dlr_status_param: default_dlr_status_param(),
                dlr_error_param: default_dlr_error_param(),
                dlr_statuses: default_dlr_statuses(),
                region: "ID".into(),
                keywords: vec![],
                opt_out_keywords: ConsentWords::default_opt_out(),
                opt_in_keywords: ConsentWords::default_opt_in(),
            };
            f(&mut c);
            GenericSms::new(c)
        };
        assert!(cfg(&|_| {}).is_ok());
        assert!(cfg(&|c| c.username = None).is_err());
        assert!(
            cfg(&|c| c.auth = GenericAuth::Query).is_err(),
            "username without basic"
        );
        assert!(cfg(&|c| c.timestamp_format = "%Q".into()).is_err());
        assert!(cfg(&|c| c.region = "ZZ".into()).is_err());
        assert!(cfg(&|c| c.text_field = " ".into()).is_err());
        assert!(
            cfg(&|c| c.secret_header = "bad header".into()).is_ok(),
            "unused with basic"
        );
    }

    #[test]
    fn time_formats() {
        let cases = [
            ("rfc3339", "2026-11-22T15:05:00+07:00"),
            ("unix", "1795334700"),
            ("unix_ms", "1795334700000"),
            ("%Y-%m-%d %H:%M:%S", "2026-11-22 08:05:00"),
            ("%d/%m/%Y %H:%M:%S %z", "22/11/2026 15:05:00 +0700"),
        ];
        for (format, value) in cases {
            let f = TimeFormat::new(format).unwrap();
            assert_eq!(
                f.parse(value).map(|t| t.to_rfc3339()).as_deref(),
                Some("2026-11-22T08:05:00.000Z"),
                "{format}"
            );
        }
        assert!(TimeFormat::new("%Q").is_err());
        assert_eq!(TimeFormat::new("unix").unwrap().parse("kemarin"), None);
    }

    #[test]
    fn secrets_leave_the_raw_query() {
        let raw = without_param(
            "from=%2B6281234567890&secret=s3cr3t&text=Jalan+rusak&secret=x",
            "secret",
        );
        assert_eq!(raw.body, "from=%2B6281234567890&text=Jalan+rusak");
    }

    #[test]
    fn json_fields_reach_into_objects() {
        let f = Fields::Json(serde_json::json!({
            "payload": {"phoneNumber": "+6281234567890", "message": "Lampu mati", "n": 7},
            "a.b": "flat wins"
        }));
        assert_eq!(
            f.get("payload.phoneNumber").as_deref(),
            Some("+6281234567890")
        );
        assert_eq!(f.get("payload.n").as_deref(), Some("7"));
        assert_eq!(f.get("a.b").as_deref(), Some("flat wins"));
        assert_eq!(f.get("payload"), None);
    }
}
