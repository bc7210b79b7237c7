//! Settings of one `kind = "open311"` instance: the keys its clients
//! present, the services it offers and how their requests are read.

use std::collections::HashSet;
use std::str::FromStr as _;

use aduan_adapter::Secret;
use serde::Deserialize;

/// What an answer says about a request once it is accepted, unless configured otherwise.
pub const DEFAULT_SERVICE_NOTICE: &str =
    "Laporan Anda sudah kami terima dan akan diteruskan ke petugas yang berwenang.";

/// Longest service or attribute code. Codes travel in paths
/// (`services/{code}.json`) and form keys (`attribute[code]`).
const MAX_CODE_CHARS: usize = 64;

/// One Open311 GeoReport v2 endpoint, `/open311/v2/<instance>/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Open311Config {
    /// The keys clients send as `api_key` with every `POST requests.json`,
    /// each as `env:NAME`, `file:/path` or (for local use only) a literal.
    /// One per client (a FixMyStreet site, a city app) lets a client be cut
    /// off alone; several let a key be rotated without downtime.
    pub api_keys: Vec<Secret>,
    /// The service request types clients may report, in the order
    /// `services.json` lists them; at least one.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    /// The jurisdiction this endpoint serves (by convention its website's
    /// domain, `bogorkab.go.id`). When set, a request naming another
    /// jurisdiction is answered `404`; a request naming none is served. It
    /// becomes the complaint's `recipient`.
    #[serde(default)]
    pub jurisdiction_id: Option<String>,
    /// Region (ISO 3166 alpha-2) for `phone` numbers written without a
    /// country code, such as `0812-3456-7890`. Default `ID`.
    #[serde(default = "default_region")]
    pub default_region: String,
    /// The `service_notice` of every accepted request's answer: what the
    /// citizen can expect next. Default an Indonesian sentence saying the
    /// report was received and passed on.
    #[serde(default = "default_service_notice")]
    pub service_notice: String,
}

/// One service request type (`GET services.json` lists them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The unique code clients post as `service_code`: letters, digits,
    /// `.`, `_` and `-`, at most 64 characters.
    pub service_code: String,
    /// Its human-readable name; becomes the complaint's `subject`.
    pub service_name: String,
    /// A brief description of what is reported under it.
    #[serde(default)]
    pub description: String,
    /// The category clients group it under (`Infrastruktur`, `Kebersihan`).
    #[serde(default)]
    pub group: String,
    /// Synonyms of the name and group that help a citizen find it.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Extra questions a request of this type answers (`metadata: true`
    /// in the service list when there are any), in the order clients ask them.
    #[serde(default)]
    pub attributes: Vec<AttributeConfig>,
}

/// One extra question of a service (`GET services/{code}.json` lists them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    /// The code clients post the answer under, as `attribute[code]`:
    /// letters, digits, `.`, `_` and `-`, at most 64 characters.
    pub code: String,
    /// What kind of answer it takes.
    pub datatype: Datatype,
    /// Whether a request without an answer is refused.
    #[serde(default)]
    pub required: bool,
    /// The question, as shown to the citizen.
    pub description: String,
    /// A hint on the form of the answer (`dalam sentimeter`).
    #[serde(default)]
    pub datatype_description: Option<String>,
    /// The choices of a `singlevaluelist` or `multivaluelist`; none for other types.
    #[serde(default)]
    pub values: Vec<ValueConfig>,
}

/// The kinds of answer GeoReport v2 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    /// One line of text.
    String,
    /// A number.
    Number,
    /// An instant, RFC 3339 with an offset or `Z`.
    Datetime,
    /// Free text, line breaks allowed.
    Text,
    /// Exactly one of `values`, by key.
    Singlevaluelist,
    /// Any of `values`, by key, each as one `attribute[code][]`.
    Multivaluelist,
}

impl Datatype {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::String => "string",
            Datatype::Number => "number",
            Datatype::Datetime => "datetime",
            Datatype::Text => "text",
            Datatype::Singlevaluelist => "singlevaluelist",
            Datatype::Multivaluelist => "multivaluelist",
        }
    }

    /// Whether answers are chosen from a list of values.
    pub fn is_list(self) -> bool {
        matches!(self, Datatype::Singlevaluelist | Datatype::Multivaluelist)
    }
}

/// One choice of a list attribute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueConfig {
    /// What the client posts.
    pub key: String,
    /// What the citizen is shown.
    pub name: String,
}

fn default_region() -> String {
    aduan_adapter::phone::DEFAULT_REGION.to_string()
}

fn default_service_notice() -> String {
    DEFAULT_SERVICE_NOTICE.to_string()
}

impl Open311Config {
    /// Checks what serde cannot: at least one key and no key twice, at least
    /// one service, codes that are unique and fit a path, list attributes
    /// with distinct values and others with none, a known region. The first
    /// problem is reported, with where it is.
    pub fn validate(&self) -> Result<(), String> {
        if self.api_keys.is_empty() {
            return Err("api_keys: at least one key is required".into());
        }
        for (i, a) in self.api_keys.iter().enumerate() {
            if self.api_keys[..i].iter().any(|b| b.expose() == a.expose()) {
                return Err(format!("api_keys[{i}]: the same key is listed twice"));
            }
        }
        if self.services.is_empty() {
            return Err("services: at least one service is required".into());
        }
        let mut codes = HashSet::new();
        for (i, service) in self.services.iter().enumerate() {
            let at = format!("services[{i}]");
            check_code(&service.service_code).map_err(|e| format!("{at}.service_code: {e}"))?;
            if !codes.insert(service.service_code.as_str()) {
                return Err(format!(
                    "{at}.service_code: `{}` is listed twice",
                    service.service_code
                ));
            }
            if service.service_name.trim().is_empty() {
                return Err(format!("{at}.service_name: must not be empty"));
            }
            service.validate_attributes(&at)?;
        }
        if self
            .jurisdiction_id
            .as_deref()
            .is_some_and(|j| j.trim().is_empty())
        {
            return Err("jurisdiction_id: must not be empty when given".into());
        }
        let region = &self.default_region;
        if region.len() != 2
            || phonenumber::country::Id::from_str(&region.to_ascii_uppercase()).is_err()
        {
            return Err(format!(
                "default_region: expected an ISO 3166 alpha-2 code such as \"ID\", got {region:?}"
            ));
        }
        Ok(())
    }
}

impl ServiceConfig {
    fn validate_attributes(&self, at: &str) -> Result<(), String> {
        let mut codes = HashSet::new();
        for (j, attribute) in self.attributes.iter().enumerate() {
            let at = format!("{at}.attributes[{j}]");
            check_code(&attribute.code).map_err(|e| format!("{at}.code: {e}"))?;
            if !codes.insert(attribute.code.as_str()) {
                return Err(format!("{at}.code: `{}` is listed twice", attribute.code));
            }
            if attribute.description.trim().is_empty() {
                return Err(format!("{at}.description: must not be empty"));
            }
            match (attribute.datatype.is_list(), attribute.values.is_empty()) {
                (true, true) => {
                    return Err(format!(
                        "{at}.values: a {} needs at least one value",
                        attribute.datatype.as_str()
                    ));
                }
                (false, false) => {
                    return Err(format!(
                        "{at}.values: only a singlevaluelist or multivaluelist has values"
                    ));
                }
                _ => {}
            }
            let mut keys = HashSet::new();
            for (k, value) in attribute.values.iter().enumerate() {
                if value.key.trim().is_empty() || value.name.trim().is_empty() {
                    return Err(format!("{at}.values[{k}]: key and name must not be empty"));
                }
                if !keys.insert(value.key.as_str()) {
                    return Err(format!(
                        "{at}.values[{k}].key: `{}` is listed twice",
                        value.key
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `code` can stand in a path and a form key unescaped.
fn check_code(code: &str) -> Result<(), String> {
    let fits = !code.is_empty()
        && code.chars().count() <= MAX_CODE_CHARS
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if fits {
        Ok(())
    } else {
        Err(format!(
            "expected 1 to {MAX_CODE_CHARS} letters, digits, `.`, `_` or `-`, got {code:?}"
        ))
    }
}
