//! `POST requests.json`: the parameters of a service request, read from a
//! form (as the standard sends them) or a JSON object, then checked field by
//! field so that every problem is reported in one answer.
//!
//! The standard's "optional" means a parameter sent empty is the same as one
//! not sent, so an empty value is absent everywhere here. Names the standard
//! does not define are ignored, as its clients send extensions of their own.

use aduan_adapter::{FieldError, Rejection, Request, Timestamp};
use serde_json::Value;

use crate::config::{AttributeConfig, Datatype, ServiceConfig};

/// The message of a field error that stands for `404`: the field names
/// something (a service, a jurisdiction, a resource) that does not exist.
pub const NOT_FOUND: &str = "was not found";

/// Longest `media_url`, in bytes.
const MAX_URL_BYTES: usize = 2048;

/// Longest email address (RFC 5321 section 4.5.3.1.3, a path less its brackets).
const MAX_EMAIL_BYTES: usize = 254;

/// The names the standard gives a request's parameters; only these are read.
const KNOWN: [&str; 15] = [
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
];

/// The media types a request body may have: the standard's form, and JSON.
pub const ACCEPTED_MEDIA: &str = "application/x-www-form-urlencoded or application/json";

/// A request's parameters as sent: every value of each known name, and the
/// answers to attributes, before anything is checked.
#[derive(Debug, Default)]
pub struct Params {
    scalars: Vec<(&'static str, String)>,
    /// `attribute[code]` (or `attribute[code][]`) and its values, in the
    /// order the codes first appear.
    attributes: Vec<(String, Vec<String>)>,
    /// Values of the wrong JSON type, reported with the other field errors.
    errors: Vec<FieldError>,
    /// Read from the citizen form, not from an Open311 client: a location
    /// and the answers to required attributes may be left out (the citizen
    /// writes what matters into the description).
    from_form: bool,
}

impl Params {
    /// Reads the body of `req` by its media type. Another media type is
    /// `415`; a JSON body that is not an object is `400`.
    pub fn read(req: &Request<'_>) -> Result<Params, Rejection> {
        let media = req.media_type();
        if media == "application/x-www-form-urlencoded" {
            Ok(Params::from_form(req.body))
        } else if media == "application/json"
            || media
                .strip_prefix("application/")
                .is_some_and(|sub| sub.ends_with("+json"))
        {
            Params::from_json(req.body)
        } else {
            Err(Rejection::UnsupportedMediaType(ACCEPTED_MEDIA))
        }
    }

    /// The citizen form's fields, named as Open311 names them.
    pub fn from_web_form(pairs: &[(&str, &str)]) -> Params {
        let mut params = Params {
            from_form: true,
            ..Params::default()
        };
        for (name, value) in pairs {
            params.add(name, Some((*value).to_string()));
        }
        params
    }

    fn from_form(body: &[u8]) -> Params {
        let mut params = Params::default();
        for (name, value) in form_urlencoded::parse(body) {
            params.add(&name, Some(value.into_owned()));
        }
        params
    }

    fn from_json(body: &[u8]) -> Result<Params, Rejection> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| Rejection::malformed("the body is not JSON"))?;
        let Value::Object(object) = value else {
            return Err(Rejection::malformed("the body is not a JSON object"));
        };
        let mut params = Params::default();
        for (name, value) in object {
            if name == "attribute" {
                match value {
                    Value::Object(answers) => {
                        for (code, answer) in answers {
                            params.add_json_attribute(&code, answer);
                        }
                    }
                    Value::Null => {}
                    _ => params.fail("attribute", "must be an object of codes and values"),
                }
            } else if let Some(code) = attribute_code(&name) {
                params.add_json_attribute(code, value);
            } else if let Some(known) = known(&name) {
                match scalar(&value) {
                    Ok(text) => params.add(known, text),
                    Err(()) => params.fail(known, "must be a string"),
                }
            }
        }
        Ok(params)
    }

    fn add_json_attribute(&mut self, code: &str, answer: Value) {
        let name = attribute_field(code);
        let texts: Result<Vec<Option<String>>, ()> = match &answer {
            Value::Array(items) => items.iter().map(scalar).collect(),
            other => scalar(other).map(|t| vec![t]),
        };
        match texts {
            Ok(texts) => {
                for text in texts {
                    self.add_attribute(code, text);
                }
            }
            Err(()) => self.fail(&name, "must be a string or a list of strings"),
        }
    }

    /// One form pair or JSON member: a known scalar, an attribute answer, or
    /// nothing (an extension of a client's own).
    fn add(&mut self, name: &str, value: Option<String>) {
        if let Some(code) = attribute_code(name) {
            self.add_attribute(code, value);
        } else if let Some(known) = known(name)
            && let Some(value) = value.filter(|v| !v.trim().is_empty())
        {
            self.scalars.push((known, value));
        }
    }

    fn add_attribute(&mut self, code: &str, value: Option<String>) {
        let index = match self.attributes.iter().position(|(c, _)| c == code) {
            Some(i) => i,
            None => {
                self.attributes.push((code.to_string(), Vec::new()));
                self.attributes.len() - 1
            }
        };
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            self.attributes[index].1.push(value);
        }
    }

    fn fail(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError {
            field: field.to_string(),
            message: message.to_string(),
        });
    }

    /// The one value of `name`, trimmed, if it was sent; more than one is an error.
    pub fn one(&self, name: &str) -> Result<Option<&str>, FieldError> {
        let mut values = self
            .scalars
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.trim());
        let first = values.next();
        if values.next().is_some() {
            return Err(FieldError {
                field: name.to_string(),
                message: "was given more than once".to_string(),
            });
        }
        Ok(first)
    }
}

/// The known parameter `name` is, as the static name.
fn known(name: &str) -> Option<&'static str> {
    KNOWN.into_iter().find(|k| *k == name)
}

/// The code of an `attribute[code]` or `attribute[code][]` name.
fn attribute_code(name: &str) -> Option<&str> {
    let inner = name.strip_prefix("attribute[")?;
    let inner = inner.strip_suffix("[]").unwrap_or(inner);
    inner
        .strip_suffix(']')
        .filter(|code| !code.contains(['[', ']']))
}

/// A JSON value as the text a form would have carried: strings as they
/// are, numbers in their JSON form, `null` absent; anything else is not a value.
fn scalar(value: &Value) -> Result<Option<String>, ()> {
    match value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Null => Ok(None),
        _ => Err(()),
    }
}

/// `attribute[code]` for an error, with the code only when it is one a
/// service could define (an error never echoes arbitrary input).
fn attribute_field(code: &str) -> String {
    if code_fits(code) {
        format!("attribute[{code}]")
    } else {
        "attribute[…]".to_string()
    }
}

fn code_fits(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// An attribute's answer, checked against its definition when the service has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The attribute's code.
    pub code: String,
    /// The values as sent, in order (several only for a `multivaluelist`).
    pub values: Vec<String>,
    /// For list attributes, each value's name as the service defines it.
    pub names: Vec<Option<String>>,
}

/// A service request whose every field has been checked.
#[derive(Debug)]
pub struct ServiceRequest<'s> {
    /// The service it is a request for.
    pub service: &'s ServiceConfig,
    /// `lat` and `long`, in degrees.
    pub position: Option<(f64, f64)>,
    /// The address as the citizen wrote it.
    pub address_string: Option<String>,
    /// The jurisdiction's own id of the address.
    pub address_id: Option<String>,
    /// What the citizen reports.
    pub description: String,
    /// Lower-cased.
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    /// The citizen's given name.
    pub first_name: Option<String>,
    /// The citizen's family name.
    pub last_name: Option<String>,
    /// The client device's id.
    pub device_id: Option<String>,
    /// The citizen's account with the client.
    pub account_id: Option<String>,
    /// A photo or other media of the issue, an absolute `http(s)` URL.
    pub media_url: Option<String>,
    /// The service's attributes in their defined order, then any others
    /// the client sent, in its order.
    pub attributes: Vec<Answer>,
}

impl<'s> ServiceRequest<'s> {
    /// Checks `params` against the `services` offered. A missing or unknown
    /// `service_code` is reported alone (nothing else can be checked
    /// without the service); otherwise every field error at once.
    pub fn check(
        params: &Params,
        services: &'s [ServiceConfig],
        region: &str,
    ) -> Result<ServiceRequest<'s>, Vec<FieldError>> {
        let mut r = Reader {
            params,
            errors: params.errors.clone(),
        };
        let service = match r.text("service_code") {
            None if r.errors.is_empty() => {
                return Err(vec![error("service_code", "was not provided")]);
            }
            None => return Err(r.errors),
            Some(code) => match services.iter().find(|s| s.service_code == code) {
                Some(service) => service,
                None => return Err(vec![error("service_code", NOT_FOUND)]),
            },
        };
        let position = r.position();
        let address_string = r.text("address_string");
        let address_id = r.identifier("address_id");
        if !params.from_form
            && position.is_none()
            && address_string.is_none()
            && address_id.is_none()
            && !r.failed_on(&["lat", "long"])
        {
            r.fail(
                "location",
                "was not provided: send lat and long, address_string or address_id",
            );
        }
        let description = r.text("description");
        if description.is_none() && !r.failed_on(&["description"]) {
            r.fail("description", "was not provided");
        }
        let email = r.email();
        let phone = r.phone(region);
        let first_name = r.text("first_name");
        let last_name = r.text("last_name");
        let device_id = r.identifier("device_id");
        let account_id = r.identifier("account_id");
        let media_url = r.media_url();
        let attributes = r.attributes(service);
        match description {
            Some(description) if r.errors.is_empty() => Ok(ServiceRequest {
                service,
                position,
                address_string,
                address_id,
                description,
                email,
                phone,
                first_name,
                last_name,
                device_id,
                account_id,
                media_url,
                attributes,
            }),
            _ => Err(r.errors),
        }
    }

    /// The citizen's name from `first_name` and `last_name`.
    pub fn name(&self) -> Option<String> {
        match (&self.first_name, &self.last_name) {
            (Some(first), Some(last)) => Some(format!("{first} {last}")),
            (Some(one), None) | (None, Some(one)) => Some(one.clone()),
            (None, None) => None,
        }
    }

    /// What identifies the request when the client gives no key of its
    /// own: every checked field, in a fixed order.
    pub fn canonical_parts(&self) -> Vec<String> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let (lat, long) = self
            .position
            .map(|(lat, long)| (lat.to_string(), long.to_string()))
            .unwrap_or_default();
        let mut parts = vec![
            self.service.service_code.clone(),
            lat,
            long,
            opt(&self.address_string),
            opt(&self.address_id),
            self.description.clone(),
            opt(&self.email),
            opt(&self.phone),
            opt(&self.first_name),
            opt(&self.last_name),
            opt(&self.device_id),
            opt(&self.account_id),
            opt(&self.media_url),
        ];
        let mut answers: Vec<String> = self
            .attributes
            .iter()
            .map(|a| format!("{}={}", a.code, a.values.join("\u{1f}")))
            .collect();
        answers.sort();
        parts.extend(answers);
        parts
    }
}

fn error(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// Reads fields of `params`, gathering every problem.
struct Reader<'p> {
    params: &'p Params,
    errors: Vec<FieldError>,
}

impl Reader<'_> {
    fn fail(&mut self, field: &str, message: &str) {
        self.errors.push(error(field, message));
    }

    /// Whether one of `fields` already has an error.
    fn failed_on(&self, fields: &[&str]) -> bool {
        self.errors
            .iter()
            .any(|e| fields.contains(&e.field.as_str()))
    }

    /// The value of `name`, trimmed; free text, which may hold anything.
    fn text(&mut self, name: &str) -> Option<String> {
        match self.params.one(name) {
            Ok(value) => value.map(str::to_string),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// The value of `name`, which becomes part of an identifier or a URN
    /// and so may hold no control character.
    fn identifier(&mut self, name: &str) -> Option<String> {
        let value = self.text(name)?;
        if value.chars().any(char::is_control) {
            self.fail(name, "must not contain control characters");
            return None;
        }
        Some(value)
    }

    fn position(&mut self) -> Option<(f64, f64)> {
        let lat = self.coordinate("lat", 90.0);
        let long = self.coordinate("long", 180.0);
        match (lat, long) {
            (Some(Some(lat)), Some(Some(long))) => Some((lat, long)),
            (Some(Some(_)), None) => {
                self.fail("long", "is required with lat");
                None
            }
            (None, Some(Some(_))) => {
                self.fail("lat", "is required with long");
                None
            }
            _ => None,
        }
    }

    /// `None` when not sent, `Some(None)` when sent and wrong (reported).
    fn coordinate(&mut self, name: &str, bound: f64) -> Option<Option<f64>> {
        let raw = self.text(name)?;
        let value = raw
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && v.abs() <= bound);
        if value.is_none() {
            self.fail(
                name,
                &format!("must be a number between -{bound} and {bound}"),
            );
        }
        Some(value)
    }

    fn email(&mut self) -> Option<String> {
        let email = self.identifier("email")?;
        let plausible = email.len() <= MAX_EMAIL_BYTES
            && !email.contains(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if plausible {
            Some(email.to_lowercase())
        } else {
            self.fail("email", "is not an email address");
            None
        }
    }

    fn phone(&mut self, region: &str) -> Option<String> {
        let raw = self.text("phone")?;
        let e164 = aduan_adapter::phone::normalize(&raw, region);
        if e164.is_none() {
            self.fail("phone", "is not a phone number");
        }
        e164
    }

    fn media_url(&mut self) -> Option<String> {
        let raw = self.identifier("media_url")?;
        let absolute = raw.len() <= MAX_URL_BYTES
            && url::Url::parse(&raw)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if absolute {
            Some(raw)
        } else {
            self.fail("media_url", "must be an absolute http or https URL");
            None
        }
    }

    fn attributes(&mut self, service: &ServiceConfig) -> Vec<Answer> {
        let sent = &self.params.attributes;
        let mut answers = Vec::new();
        for definition in &service.attributes {
            // An answer of the wrong JSON type is reported as that alone.
            if self.failed_on(&[&format!("attribute[{}]", definition.code)]) {
                continue;
            }
            let values = sent
                .iter()
                .find(|(code, _)| *code == definition.code)
                .map(|(_, values)| values.as_slice())
                .unwrap_or_default();
            if let Some(answer) = self.answer(definition, values) {
                answers.push(answer);
            }
        }
        // Answers to attributes the service does not define are kept as sent:
        // clients add questions of their own, and the citizen answered them.
        for (code, values) in sent {
            if service.attributes.iter().any(|a| a.code == *code) || values.is_empty() {
                continue;
            }
            if !code_fits(code) {
                self.fail(
                    "attribute[…]",
                    "must have a code of letters, digits, `.`, `_` or `-`",
                );
                continue;
            }
            answers.push(Answer {
                code: code.clone(),
                values: values.iter().map(|v| v.trim().to_string()).collect(),
                names: vec![None; values.len()],
            });
        }
        answers
    }

    fn answer(&mut self, definition: &AttributeConfig, values: &[String]) -> Option<Answer> {
        let field = format!("attribute[{}]", definition.code);
        let values: Vec<String> = values.iter().map(|v| v.trim().to_string()).collect();
        if values.is_empty() {
            if definition.required && !self.params.from_form {
                self.fail(&field, "is required");
            }
            return None;
        }
        if values.len() > 1 && definition.datatype != Datatype::Multivaluelist {
            self.fail(&field, "takes one value");
            return None;
        }
        let mut names = Vec::with_capacity(values.len());
        for value in &values {
            let fits = match definition.datatype {
                Datatype::String | Datatype::Text => true,
                Datatype::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
                Datatype::Datetime => Timestamp::parse_rfc3339(value).is_some(),
                Datatype::Singlevaluelist | Datatype::Multivaluelist => true,
            };
            if !fits {
                let message = match definition.datatype {
                    Datatype::Number => "must be a number",
                    _ => "must be an RFC 3339 date and time",
                };
                self.fail(&field, message);
                return None;
            }
            if definition.datatype.is_list() {
                match definition.values.iter().find(|v| v.key == *value) {
                    Some(v) => names.push(Some(v.name.clone())),
                    None => {
                        self.fail(&field, "must be one of the service's values");
                        return None;
                    }
                }
            } else {
                names.push(None);
            }
        }
        Some(Answer {
            code: definition.code.clone(),
            values,
            names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Params, attribute_code};

    #[test]
    fn attribute_names_give_their_code() {
        assert_eq!(attribute_code("attribute[kedalaman]"), Some("kedalaman"));
        assert_eq!(attribute_code("attribute[jenis][]"), Some("jenis"));
        assert_eq!(attribute_code("attribute[a][b]"), None);
        assert_eq!(attribute_code("attribute[]"), Some(""));
        assert_eq!(attribute_code("attributes[a]"), None);
    }

    #[test]
    fn empty_values_are_absent_and_repeats_are_errors() {
        let params = Params::from_form(
            b"email=&description=a&description=b&attribute[x][]=1&attribute[x][]=2",
        );
        assert_eq!(params.one("email"), Ok(None));
        assert!(params.one("description").is_err());
        assert_eq!(
            params.attributes,
            vec![("x".to_string(), vec!["1".to_string(), "2".to_string()])]
        );
    }
}
