//! What every SMS instance shares: the default region for phone numbers, the
//! keyword lists, and the steps that turn a sender and a text into a
//! Complaint, or into a [`Consent`] when the whole text is an opt-out or
//! opt-in word.

use aduan_adapter::{
    Channel, Complaint, Consent, Context, FieldError, Outcome, Raw, Rejection, StatusReport,
};

use crate::keyword::{ConsentWords, Keywords};
use crate::number::{self, Number};

/// Settings resolved from the keys every SMS kind accepts (`region`,
/// `keywords`, `opt_out_keywords`, `opt_in_keywords`).
#[derive(Clone, Debug)]
pub struct Common {
    /// ISO 3166 alpha-2, upper case.
    pub region: String,
    pub keywords: Keywords,
    pub consent_words: ConsentWords,
}

impl Common {
    /// Validates the shared keys.
    pub fn new(
        region: &str,
        keywords: &[String],
        opt_out_keywords: &[String],
        opt_in_keywords: &[String],
    ) -> Result<Self, String> {
        Ok(Common {
            region: number::check_region(region)?,
            keywords: Keywords::new(keywords)?,
            consent_words: ConsentWords::new(opt_out_keywords, opt_in_keywords)?,
        })
    }

    /// The citizen's opt-out or opt-in when `text`, as a whole, is one of
    /// the configured words. `to` is the address replies to `sender` go to:
    /// its E.164 number, or the sender as written when it is none.
    pub fn consent(&self, sender: &Number, text: &str) -> Option<Consent> {
        let (opted_out, keyword) = self.consent_words.read(text)?;
        let to = sender.e164.clone().unwrap_or_else(|| {
            sender
                .urn
                .strip_prefix("tel:")
                .unwrap_or(&sender.urn)
                .to_string()
        });
        Some(Consent {
            to,
            opted_out,
            keyword,
        })
    }

    /// The sender's identity, or `None` when blank.
    pub fn sender(&self, raw: &str) -> Option<Number> {
        number::sender(raw, &self.region)
    }

    /// The contacted number as `recipient`.
    pub fn recipient(&self, raw: Option<&str>) -> Option<String> {
        raw.and_then(|r| number::recipient(r, &self.region))
    }

    /// A Complaint on the `sms` channel from `sender`, with `text` split into
    /// keyword (`subject`) and message.
    pub fn complaint(
        &self,
        ctx: &Context<'_>,
        provider: &str,
        external_id: impl Into<String>,
        sender: Number,
        text: &str,
    ) -> Complaint {
        let mut c = Complaint::new(ctx, Channel::Sms, provider, external_id, sender.urn);
        c.sender.phone = sender.e164;
        self.set_text(&mut c, text);
        c
    }

    /// Puts `text` into the complaint, its leading keyword into `subject`.
    pub fn set_text(&self, complaint: &mut Complaint, text: &str) {
        let stripped = self.keywords.strip(text);
        complaint.subject = stripped.keyword;
        complaint.text = stripped.text;
    }
}

/// An accepted outcome of everything one request carried.
pub fn accept(
    complaints: Vec<Complaint>,
    ignored: Vec<aduan_adapter::Ignored>,
    reports: Vec<StatusReport>,
    consents: Vec<Consent>,
) -> Outcome {
    Outcome::Accept {
        complaints,
        ignored,
        reports,
        consents,
    }
}

/// The refusal of a request that lacks `field`.
pub fn missing(field: &str) -> Rejection {
    Rejection::Invalid(vec![FieldError {
        field: field.to_string(),
        message: "missing".to_string(),
    }])
}

/// Decoded request parameters (query or form), in order received.
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, unless it is blank.
    pub fn non_blank(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }
}

/// Collects every field problem of a request so that all are reported at once.
#[derive(Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    /// Records that `field` is wrong.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// `Err(Invalid)` when anything was recorded.
    pub fn finish(self) -> Result<(), Rejection> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Rejection::Invalid(self.0))
        }
    }
}

/// The exact bytes received, or `None` when the instance turns `raw` off.
/// For `GET` the query string is what the provider sent, so that is kept.
pub fn raw(ctx: &Context<'_>, req: &aduan_adapter::Request<'_>) -> Option<Raw> {
    if !ctx.keep_raw {
        return None;
    }
    if req.method == http::Method::GET {
        Some(Raw::from_bytes(
            "application/x-www-form-urlencoded",
            req.uri.query().unwrap_or("").as_bytes(),
        ))
    } else {
        Some(Raw::from_bytes(req.content_type(), req.body))
    }
}

/// Whether the body is JSON, by media type or, for platforms that send none,
/// by its first byte.
pub fn is_json(req: &aduan_adapter::Request<'_>) -> bool {
    let media = req.media_type();
    if media == "application/json" || media.ends_with("+json") {
        return true;
    }
    media.is_empty()
        && req
            .body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{')
}

/// The user and password of an `Authorization: Basic …` header.
pub fn basic_credentials(req: &aduan_adapter::Request<'_>) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = req.header("authorization")?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Checks Basic credentials against the configured user and secret, both in
/// constant time. `Unauthorized` when missing or wrong.
pub fn check_basic(
    req: &aduan_adapter::Request<'_>,
    username: &str,
    secret: &aduan_adapter::Secret,
) -> Result<(), Rejection> {
    let (user, password) =
        basic_credentials(req).ok_or(Rejection::Unauthorized("missing Basic credentials"))?;
    let user_ok = aduan_adapter::verify::constant_time_eq(user.as_bytes(), username.as_bytes());
    let password_ok = secret.matches(password.as_bytes());
    if user_ok & password_ok {
        Ok(())
    } else {
        Err(Rejection::Unauthorized("bad Basic credentials"))
    }
}

/// Checks a shared secret carried in header `name`.
pub fn check_header(
    req: &aduan_adapter::Request<'_>,
    name: &str,
    secret: &aduan_adapter::Secret,
) -> Result<(), Rejection> {
    let given = req
        .header(name)
        .ok_or(Rejection::Unauthorized("missing secret header"))?;
    if secret.matches(given.as_bytes()) {
        Ok(())
    } else {
        Err(Rejection::Unauthorized("bad secret"))
    }
}

/// Checks that a configured header name is one HTTP accepts.
pub fn check_header_name(key: &str, name: &str) -> Result<String, String> {
    http::HeaderName::from_bytes(name.trim().as_bytes())
        .map(|h| h.as_str().to_string())
        .map_err(|_| format!("{key}: `{name}` is not a valid header name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consents_go_to_the_address_replies_go_to() {
        let c = Common::new(
            "ID",
            &Keywords::default_list(),
            &ConsentWords::default_opt_out(),
            &ConsentWords::default_opt_in(),
        )
        .expect("valid");
        let national = c.sender("081234567890").expect("a sender");
        assert_eq!(
            c.consent(&national, " Stop "),
            Some(Consent {
                to: "+6281234567890".to_string(),
                opted_out: true,
                keyword: "STOP".to_string(),
            })
        );
        let short_code = c.sender("PT ABC").expect("a sender");
        assert_eq!(
            c.consent(&short_code, "START").map(|k| (k.to, k.opted_out)),
            Some(("PTABC".to_string(), false))
        );
        assert_eq!(c.consent(&national, "LAPOR stop pungli"), None);
        assert!(Common::new("ID", &[], &["STOP".into()], &["stop".into()]).is_err());
    }
}
