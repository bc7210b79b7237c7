//! Replies through any SMS gateway with an HTTP API: Kannel `sendsms`,
//! Jasmin's HTTP API, Android SMS gateway apps, telco platforms. The
//! instance describes one request:
//!
//! - `method` and `url`, and for POST an optional `body` (`body_format`
//!   `form` or `json`), with the placeholders `{to}` (E.164, `+62…`),
//!   `{to_digits}` (without `+`), `{text}`, `{from}`, `{id}`, `{dlr_url}` and
//!   `{secret}`. Values are percent-encoded in the URL and in a form body
//!   and JSON-escaped in a JSON body (the template puts the quotes);
//! - `auth_header`, sent as `Authorization`;
//! - what success looks like: `success_status` (default any 2xx) and
//!   `success_body_contains` (Kannel answers `0: Accepted for delivery`,
//!   Jasmin `Success "<id>"`);
//! - where the gateway's message id is: after `id_after` in the answer
//!   (Jasmin: `Success "`), up to the next quote, space, comma, semicolon or
//!   brace.
//!
//! `{id}` is an id of our own for each message, `<reply_id>.<part>` (or, for
//! a reply id that is long or has other characters than letters, digits,
//! `-` and `_`, `h` and 24 hex digits of its SHA-256, then `.<part>`). It is
//! the provider id returned when the gateway names none, and it goes into
//! `dlr_url` (at its own `{id}`, or appended as `id=…`) so that a delivery
//! report names the message it is about.

use aduan_adapter::verify::sha256_hex;
use aduan_adapter::{Outgoing, ReplyRoute, ReplySender, Secret, SendError, Sent};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

use super::{Answer, Masks};

/// The longest part of an answer quoted in an error.
const MAX_QUOTED: usize = 200;

/// The HTTP method of the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Method {
    /// Everything in the URL (Kannel `sendsms`, Jasmin `/send`). The default.
    #[default]
    #[serde(rename = "GET", alias = "get")]
    Get,
    #[serde(rename = "POST", alias = "post")]
    Post,
}

/// How the `body` template is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`, values percent-encoded. The default.
    #[default]
    Form,
    /// `application/json`, values JSON-escaped.
    Json,
}

/// The sending settings of a generic SMS instance (`[instances.reply]`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericSendConfig {
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub method: Method,
    /// The request's URL, with placeholders, e.g.
    /// `http://kannel:13013/cgi-bin/sendsms?username=aduan&password={secret}&to={to}&text={text}&dlr-mask=31&dlr-url={dlr_url}`.
    pub url: String,
    /// The body template, POST only.
    #[serde(default)]
    pub body: Option<String>,
    /// `form` (default) or `json`.
    #[serde(default)]
    pub body_format: BodyFormat,
    /// Sent as `Authorization` (`Basic …`, `Bearer …`).
    #[serde(default)]
    pub auth_header: Option<Secret>,
    /// The value of `{secret}` (a gateway password in the URL or body).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// The value of `{from}`: the sender number or id.
    #[serde(default)]
    pub from: Option<String>,
    /// The one status that means success. Default: any 2xx.
    #[serde(default)]
    pub success_status: Option<u16>,
    /// Text a successful answer contains, e.g. `Accepted` or `Success`.
    #[serde(default)]
    pub success_body_contains: Option<String>,
    /// The gateway's message id follows this in its answer, e.g. `Success "`.
    /// Without it, or when the answer lacks it, the provider id is our `{id}`.
    #[serde(default)]
    pub id_after: Option<String>,
    /// The public URL delivery reports come to (this instance's
    /// `/webhooks/sms/{instance}` with its secret and, for Kannel,
    /// `status=%d`); the value of `{dlr_url}`, with our `{id}` in it.
    #[serde(default)]
    pub dlr_url: Option<String>,
    /// The most SMS parts a reply may take; longer ones fail with
    /// `too_long`. Default 3.
    #[serde(default = "super::default_max_parts")]
    pub max_parts: usize,
}

impl std::fmt::Debug for GenericSendConfig {
    /// The URL and body templates may hold credentials written into them:
    /// only the URL's scheme, host and path are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericSendConfig")
            .field("method", &self.method)
            .field("url", &redacted(&self.url))
            .field("body", &self.body.as_ref().map(|_| "…"))
            .field("body_format", &self.body_format)
            .field("auth_header", &self.auth_header)
            .field("secret", &self.secret)
            .field("from", &self.from)
            .field("success_status", &self.success_status)
            .field("success_body_contains", &self.success_body_contains)
            .field("id_after", &self.id_after)
            .field("dlr_url", &self.dlr_url.as_deref().map(redacted))
            .field("max_parts", &self.max_parts)
            .finish()
    }
}

/// `url` without its query and credentials: `http://kannel:13013/cgi-bin/sendsms?…`.
fn redacted(url: &str) -> String {
    let (head, cut) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], true),
        None => (url, false),
    };
    let head = match authority(head) {
        Some((scheme, authority, path)) => match authority.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}{path}"),
            None => head.to_string(),
        },
        None => head.to_string(),
    };
    if cut { format!("{head}?…") } else { head }
}

/// `(scheme, authority, rest)` of `url`.
fn authority(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    Some((scheme, authority, path))
}

/// A placeholder of the templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    To,
    ToDigits,
    Text,
    From,
    Id,
    DlrUrl,
    Secret,
}

impl Var {
    fn named(name: &str) -> Option<Var> {
        Some(match name {
            "to" => Var::To,
            "to_digits" => Var::ToDigits,
            "text" => Var::Text,
            "from" => Var::From,
            "id" => Var::Id,
            "dlr_url" => Var::DlrUrl,
            "secret" => Var::Secret,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Var(Var),
}

/// A template cut into literal text and placeholders, so that a value is
/// never read again for placeholders (a citizen's `{id}` stays as written).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Template(Vec<Piece>);

impl Template {
    /// Reads `{name}` placeholders; braces around anything else (JSON
    /// objects) are literal, but `{word}` of an unknown lower-case name is
    /// refused as a likely typo.
    fn parse(key: &str, s: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
                .count();
            if name_len > 0 && after[name_len..].starts_with('}') {
                let name = &after[..name_len];
                let var = Var::named(name)
                    .ok_or_else(|| format!("{key}: unknown placeholder `{{{name}}}`"))?;
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Var(var));
                rest = &after[name_len + 1..];
            } else {
                literal.push('{');
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template(pieces))
    }

    fn uses(&self, var: Var) -> bool {
        self.0.contains(&Piece::Var(var))
    }

    fn render(&self, value: impl Fn(Var) -> String, escape: fn(&str) -> String) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Var(v) => out.push_str(&escape(&value(*v))),
            }
        }
        out
    }
}

/// Percent-encodes everything but the unreserved characters (RFC 3986), so
/// that the value is safe anywhere in a URL and in a form.
fn percent(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inside of a JSON string holding `value`.
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

fn verbatim(value: &str) -> String {
    value.to_string()
}

/// Sends replies through one generic SMS gateway.
pub struct GenericSender {
    client: reqwest::Client,
    method: Method,
    url: Template,
    body: Option<(Template, BodyFormat)>,
    auth: Option<HeaderValue>,
    secret: Option<Secret>,
    from: String,
    success_status: Option<u16>,
    success_body_contains: Option<String>,
    id_after: Option<String>,
    dlr_url: Option<Template>,
    max_parts: usize,
    masks: Masks,
    /// The URL's scheme, host and path, for `Debug`.
    shown_url: String,
}

impl std::fmt::Debug for GenericSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericSender")
            .field("method", &self.method)
            .field("url", &self.shown_url)
            .field("body_format", &self.body.as_ref().map(|(_, f)| f))
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .field("max_parts", &self.max_parts)
            .finish_non_exhaustive()
    }
}

impl GenericSender {
    /// Checks the settings and builds the sender around the gateway's client.
    pub fn new(config: GenericSendConfig, client: reqwest::Client) -> Result<Self, String> {
        let url = Template::parse("url", config.url.trim())?;
        // With placeholders filled, the URL must be one.
        let sample = url.render(|_| "x".to_string(), percent);
        let parsed = reqwest::Url::parse(&sample)
            .map_err(|_| format!("url `{}` is not a URL", redacted(&config.url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "url `{}` is not an http(s) URL",
                redacted(&config.url)
            ));
        }
        let body = match (config.method, &config.body) {
            (Method::Get, Some(_)) => return Err("body is for method = \"POST\" only".to_string()),
            (_, None) => None,
            (Method::Post, Some(b)) => Some((Template::parse("body", b)?, config.body_format)),
        };
        let uses = |var: Var| url.uses(var) || body.as_ref().is_some_and(|(t, _)| t.uses(var));
        if !uses(Var::Text) {
            return Err("neither url nor body has `{text}`".to_string());
        }
        if !uses(Var::To) && !uses(Var::ToDigits) {
            return Err("neither url nor body has `{to}` or `{to_digits}`".to_string());
        }
        for (var, set, key) in [
            (Var::From, config.from.is_some(), "from"),
            (Var::Secret, config.secret.is_some(), "secret"),
            (Var::DlrUrl, config.dlr_url.is_some(), "dlr_url"),
        ] {
            match (uses(var), set) {
                (true, false) => return Err(format!("`{{{key}}}` is used but {key} is not set")),
                (false, true) => return Err(format!("{key} is set but `{{{key}}}` is not used")),
                _ => {}
            }
        }
        let dlr_url = match &config.dlr_url {
            None => None,
            Some(d) => {
                let d = d.trim();
                if !(d.starts_with("https://") || d.starts_with("http://")) {
                    return Err(format!("dlr_url `{}` is not an http(s) URL", redacted(d)));
                }
                let mut t = Template::parse("dlr_url", d)?;
                if t.0
                    .iter()
                    .any(|p| matches!(p, Piece::Var(v) if *v != Var::Id))
                {
                    return Err("dlr_url takes no placeholder but `{id}`".to_string());
                }
                if !t.uses(Var::Id) {
                    let joiner = if d.contains('?') { "&" } else { "?" };
                    t.0.push(Piece::Literal(format!("{joiner}id=")));
                    t.0.push(Piece::Var(Var::Id));
                }
                Some(t)
            }
        };
        if matches!(config.success_status, Some(s) if !(100..=599).contains(&s)) {
            return Err("success_status must be an HTTP status".to_string());
        }
        let mut masks = Masks::default();
        let auth = match &config.auth_header {
            None => None,
            Some(secret) => {
                let value = secret.expose().trim();
                masks.add(value);
                if let Some((_, token)) = value.split_once(' ') {
                    masks.add(token);
                }
                let mut h = HeaderValue::from_str(value)
                    .map_err(|_| "auth_header has characters a header cannot carry".to_string())?;
                h.set_sensitive(true);
                Some(h)
            }
        };
        if let Some(s) = &config.secret {
            masks.add(s.expose());
            masks.add(&percent(s.expose()));
        }
        mask_literals(&mut masks, &config.url, config.body.as_deref());
        Ok(GenericSender {
            client,
            method: config.method,
            shown_url: redacted(&config.url),
            url,
            body,
            auth,
            secret: config.secret,
            from: config.from.unwrap_or_default(),
            success_status: config.success_status,
            success_body_contains: config.success_body_contains.filter(|s| !s.is_empty()),
            id_after: config.id_after.filter(|s| !s.is_empty()),
            dlr_url,
            max_parts: super::check_max_parts(config.max_parts)?,
            masks,
        })
    }

    /// The request for `out` and our id for it, or why nothing may be sent.
    fn request(&self, out: &Outgoing<'_>) -> Result<(reqwest::RequestBuilder, String), SendError> {
        let to = out.route.to.trim();
        let digits = super::e164_digits(to).ok_or_else(super::not_a_number)?;
        let (text, _) = super::sms_text(out, self.max_parts)?;
        let id = message_id(out.reply_id, out.part);
        let dlr_url = self
            .dlr_url
            .as_ref()
            .map(|t| t.render(|_| id.clone(), verbatim))
            .unwrap_or_default();
        let value = |var: Var| match var {
            Var::To => to.to_string(),
            Var::ToDigits => digits.to_string(),
            Var::Text => text.to_string(),
            Var::From => self.from.clone(),
            Var::Id => id.clone(),
            Var::DlrUrl => dlr_url.clone(),
            Var::Secret => self
                .secret
                .as_ref()
                .map(|s| s.expose().to_string())
                .unwrap_or_default(),
        };
        let url = self.url.render(value, percent);
        let mut request = match self.method {
            Method::Get => self.client.get(url),
            Method::Post => self.client.post(url),
        };
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some((template, format)) = &self.body {
            let (content_type, escape): (&str, fn(&str) -> String) = match format {
                BodyFormat::Form => ("application/x-www-form-urlencoded", percent),
                BodyFormat::Json => ("application/json", json_escaped),
            };
            request = request
                .header(CONTENT_TYPE, content_type)
                .body(template.render(value, escape));
        }
        Ok((request, id))
    }

    /// What an answer means.
    fn read(&self, answer: &Answer, out: &Outgoing<'_>, id: String) -> Result<Sent, SendError> {
        let text = answer.text();
        let quoted = || {
            let cleaned = self.masks.clean(&text, out.text);
            super::truncate(&cleaned, MAX_QUOTED)
        };
        let success = match self.success_status {
            Some(s) => answer.status == s,
            None => answer.is_success(),
        };
        if !success {
            let message = format!("the gateway answered HTTP {}: {}", answer.status, quoted());
            return Err(if answer.is_success() {
                SendError::permanent("rejected", message)
            } else {
                SendError::from_status(answer.status, answer.retry_after(), message.trim())
            });
        }
        if let Some(expected) = &self.success_body_contains
            && !text.contains(expected.as_str())
        {
            return Err(SendError::permanent(
                "rejected",
                format!("the gateway's answer lacks `{expected}`: {}", quoted()),
            ));
        }
        let theirs = self.id_after.as_ref().and_then(|after| {
            let start = text.find(after.as_str())? + after.len();
            let id: String = text[start..]
                .chars()
                .take_while(|c| {
                    !c.is_whitespace() && !matches!(c, '"' | '\'' | ',' | ';' | '}' | ']')
                })
                .take(128)
                .collect();
            (!id.is_empty()).then_some(id)
        });
        Ok(Sent::new(theirs.unwrap_or(id)))
    }
}

/// Our id of part `part` of reply `reply_id`; see the module's description.
pub fn message_id(reply_id: &str, part: usize) -> String {
    let plain = !reply_id.is_empty()
        && reply_id.len() <= 48
        && reply_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if plain {
        format!("{reply_id}.{part}")
    } else {
        format!("h{}.{part}", &sha256_hex(reply_id.as_bytes())[..24])
    }
}

/// Masks the values written literally into the URL's query, a form body
/// or a JSON body's strings: a gateway's user name and password often are.
fn mask_literals(masks: &mut Masks, url: &str, body: Option<&str>) {
    if let Some((_, query)) = url.split_once('?') {
        mask_pairs(masks, query);
    }
    if let Some((_, authority, _)) = authority(url)
        && let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        masks.add(password);
    }
    let Some(body) = body else {
        return;
    };
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) => mask_strings(masks, &json),
        Err(_) => mask_pairs(masks, body),
    }
}

/// Masks the literal values of `name=value&…`, as written and decoded.
fn mask_pairs(masks: &mut Masks, pairs: &str) {
    for pair in pairs.split('&') {
        if let Some((_, value)) = pair.split_once('=')
            && !value.contains('{')
        {
            let decoded: String = form_urlencoded::parse(format!("v={value}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect();
            masks.add(&decoded);
            masks.add(value);
        }
    }
}

/// Masks the strings of a JSON template that hold no placeholder.
fn mask_strings(masks: &mut Masks, v: &serde_json::Value) {
    match v {
        serde_json::Value::String(s) if !s.contains('{') => masks.add(s),
        serde_json::Value::Array(a) => a.iter().for_each(|v| mask_strings(masks, v)),
        serde_json::Value::Object(o) => o.values().for_each(|v| mask_strings(masks, v)),
        _ => {}
    }
}

#[async_trait::async_trait]
impl ReplySender for GenericSender {
    fn max_chars(&self, _route: &ReplyRoute) -> usize {
        super::SMS_MAX_CHARS
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let (request, id) = self.request(out)?;
        let answer = super::exchange(request, "the SMS gateway").await?;
        self.read(&answer, out, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_read_once() {
        let t = Template::parse("url", "http://gw/send?to={to}&text={text}").expect("template");
        let out = t.render(
            |v| match v {
                Var::To => "+6281234567890".to_string(),
                _ => "{to} 100% & lunas".to_string(),
            },
            percent,
        );
        assert_eq!(
            out,
            "http://gw/send?to=%2B6281234567890&text=%7Bto%7D%20100%25%20%26%20lunas"
        );
        let json = Template::parse("body", r#"{"phone":"{to}","message":"{text}","n":{}}"#)
            .expect("template");
        assert_eq!(
            json.render(|_| "Kata \"selesai\"\n".to_string(), json_escaped),
            r#"{"phone":"Kata \"selesai\"\n","message":"Kata \"selesai\"\n","n":{}}"#
        );
        assert!(Template::parse("url", "http://gw/?to={too}").is_err());
        assert_eq!(
            Template::parse("url", "{ {To} {}").expect("literal").0,
            vec![Piece::Literal("{ {To} {}".to_string())]
        );
    }

    #[test]
    fn our_ids_are_safe_in_urls() {
        assert_eq!(message_id("balasan-0001", 0), "balasan-0001.0");
        let odd = message_id("balasan/0001?x=1", 2);
        assert!(
            odd.starts_with('h') && odd.ends_with(".2") && odd.len() == 27,
            "{odd}"
        );
        assert_ne!(odd, message_id("balasan/0001?x=2", 2));
        assert_eq!(message_id(&"a".repeat(49), 0).len(), 27);
    }

    #[test]
    fn urls_are_shown_without_their_query_or_credentials() {
        assert_eq!(
            redacted("http://kannel:13013/cgi-bin/sendsms?username=u&password=p"),
            "http://kannel:13013/cgi-bin/sendsms?…"
        );
        assert_eq!(
            redacted("https://user:pw@gw.example.id/send"),
            "https://…@gw.example.id/send"
        );
        assert_eq!(
            redacted("https://gw.example.id/send"),
            "https://gw.example.id/send"
        );
    }

    #[test]
    fn literal_values_are_masked() {
        let mut masks = Masks::default();
        mask_literals(
            &mut masks,
            "http://u:sandi-url@gw/send?username=aduan&password=sandi%2Brahasia&to={to}",
            Some(r#"{"token":"tok-rahasia-1","to":"{to}"}"#),
        );
        let m = masks.clean(
            "aduan sandi+rahasia sandi%2Brahasia tok-rahasia-1 sandi-url",
            None,
        );
        assert_eq!(m, "*** *** *** *** ***");
    }
}
