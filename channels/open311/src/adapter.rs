//! The Open311 endpoint of one instance: which resource a request is for,
//! the `api_key` check, the read-only answers, normalization of a service
//! request into a Complaint, and the standard's answers.
//!
//! The gateway routes `/open311/v2/<instance>/<resource>` here and hands
//! over the full URI; the resource is the path after the instance's name.

use aduan_adapter::{
    Adapter, Attachment, AttachmentKind, Channel, Complaint, Context, Deferral, FieldError,
    Location, Outcome, Raw, Receipt, Rejection, Reply, Request, Secret,
};
use serde_json::{Value, json};

use crate::catalog::{self, Format, Rendered};
use crate::config::{Open311Config, ServiceConfig};
use crate::request::{NOT_FOUND, Params, ServiceRequest};

/// The `provider` of every complaint this channel produces.
pub const PROVIDER: &str = "open311";

/// The path every resource of an instance is under, before the instance's name.
pub const PATH_PREFIX: &str = "/open311/v2/";

/// The header a client names a request with, so that its retry is known as one.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Longest `Idempotency-Key`, in bytes.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The heading of the part of `text` that holds what the Complaint has no
/// field for: an address without coordinates, an address id, attribute answers.
pub const DETAILS_HEADING: &str = "[open311]";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    /// `services.{format}`
    Services(Format),
    /// `services/{service_code}.{format}`
    Definition(String, Format),
    /// `requests.{format}`
    Requests(Format),
    /// Anything else; the format when the name has a known extension.
    Unknown(Format),
}

impl Resource {
    /// The resource of `path` (a request's path, without its query).
    fn of(path: &str) -> Resource {
        let Some(rest) = path
            .strip_prefix(PATH_PREFIX)
            .and_then(|after| after.split_once('/'))
            .map(|(_instance, rest)| rest)
        else {
            return Resource::Unknown(Format::Json);
        };
        let (name, format) = match rest.rsplit_once('.') {
            Some((name, ext)) => match Format::from_extension(ext) {
                Some(format) => (name, format),
                None => return Resource::Unknown(Format::Json),
            },
            None => return Resource::Unknown(Format::Json),
        };
        match name.split_once('/') {
            None if name == "services" => Resource::Services(format),
            None if name == "requests" => Resource::Requests(format),
            Some(("services", code)) if !code.is_empty() && !code.contains('/') => {
                Resource::Definition(code.to_string(), format)
            }
            _ => Resource::Unknown(format),
        }
    }
}

/// One Open311 GeoReport v2 endpoint.
#[derive(Debug)]
pub struct Open311 {
    api_keys: Vec<Secret>,
    services: Vec<ServiceConfig>,
    jurisdiction_id: Option<String>,
    default_region: String,
    service_notice: String,
    list: Rendered,
    definitions: Vec<Rendered>,
}

impl Open311 {
    /// Validates the settings, renders the read-only answers once, and builds the adapter.
    pub fn new(cfg: Open311Config) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Open311 {
            list: catalog::service_list(&cfg.services),
            definitions: cfg
                .services
                .iter()
                .map(catalog::service_definition)
                .collect(),
            api_keys: cfg.api_keys,
            services: cfg.services,
            jurisdiction_id: cfg.jurisdiction_id.map(|j| j.trim().to_string()),
            default_region: cfg.default_region.to_ascii_uppercase(),
            service_notice: cfg.service_notice,
        })
    }

    /// The services offered, in the configured order.
    pub fn services(&self) -> &[ServiceConfig] {
        &self.services
    }

    /// What a citizen is told after a request is accepted.
    pub fn service_notice(&self) -> &str {
        &self.service_notice
    }

    /// The region national phone numbers are read in.
    pub fn default_region(&self) -> &str {
        &self.default_region
    }

    /// Whether a request naming `given` (or none) is for this endpoint's
    /// jurisdiction. Jurisdictions are domain names, so case does not count.
    fn serves(&self, given: Option<&str>) -> bool {
        match (given, &self.jurisdiction_id) {
            (Some(given), Some(ours)) => given.trim().eq_ignore_ascii_case(ours),
            _ => true,
        }
    }

    /// The answer to a `GET` of a read-only resource; errors in the format asked.
    fn read(&self, resource: &Resource, req: &Request<'_>) -> Reply {
        let format = match resource {
            Resource::Services(f)
            | Resource::Definition(_, f)
            | Resource::Requests(f)
            | Resource::Unknown(f) => *f,
        };
        let not_found = |what: &str| catalog::errors(404, format, &[format!("{what} {NOT_FOUND}")]);
        let jurisdiction = req.query("jurisdiction_id");
        let jurisdiction = jurisdiction.as_deref().filter(|j| !j.trim().is_empty());
        if !self.serves(jurisdiction) {
            return not_found("jurisdiction_id");
        }
        match resource {
            Resource::Services(format) => self.list.reply(*format),
            Resource::Definition(code, format) => {
                match self.services.iter().position(|s| s.service_code == *code) {
                    Some(i) => self.definitions[i].reply(*format),
                    None => not_found("service_code"),
                }
            }
            // Service requests are tracked in the complaint system, not here.
            Resource::Requests(format) => catalog::errors(
                405,
                *format,
                &["service requests are only posted here, not listed".to_string()],
            ),
            Resource::Unknown(_) => not_found("resource"),
        }
    }

    /// The complaint a checked request becomes.
    pub(crate) fn complaint(
        &self,
        sr: &ServiceRequest<'_>,
        external_id: String,
        raw: Option<Raw>,
        ctx: &Context<'_>,
    ) -> Complaint {
        let sender_id = sender_id(sr, &external_id);
        let mut c = Complaint::new(ctx, Channel::Web, PROVIDER, external_id, sender_id);
        c.sender.name = sr.name();
        c.sender.email = sr.email.clone();
        c.sender.phone = sr.phone.clone();
        c.recipient = self.jurisdiction_id.clone();
        c.subject = Some(sr.service.service_name.clone());
        c.text = text(sr);
        c.location = sr.position.map(|(latitude, longitude)| Location {
            latitude,
            longitude,
            name: None,
            address: sr.address_string.clone(),
        });
        c.attachments = sr.media_url.iter().map(|url| media(url)).collect();
        c.raw = raw;
        c
    }
}

/// The id a client follows its request by: the tracking number the citizen
/// is also told on other channels, else the complaint id.
pub fn service_request_id(receipt: &Receipt) -> &str {
    receipt.tracking.as_deref().unwrap_or(&receipt.id)
}

/// `mailto:` when the citizen gave an email address, else `tel:` with the
/// phone number; else the client's own account or device id under
/// `georeport:` (a URN scheme is letters only); a request with none of
/// these is anonymous and its own conversation, named by its external id.
fn sender_id(sr: &ServiceRequest<'_>, external_id: &str) -> String {
    if let Some(email) = &sr.email {
        format!("mailto:{email}")
    } else if let Some(phone) = &sr.phone {
        format!("tel:{phone}")
    } else if let Some(account) = &sr.account_id {
        format!("georeport:account:{account}")
    } else if let Some(device) = &sr.device_id {
        format!("georeport:device:{device}")
    } else {
        let digest = aduan_adapter::verify::sha256_hex(external_id.as_bytes());
        format!("georeport:anonymous:{}", &digest[..16])
    }
}

/// The description, then under [`DETAILS_HEADING`] one `name: value` line
/// for each thing the Complaint has no field for: `address_string` when
/// there are no coordinates to hold it in `location`, `address_id`, and each
/// attribute answer as `attribute[code]: value` (a list value followed by its
/// name in parentheses, several values joined by `, `).
fn text(sr: &ServiceRequest<'_>) -> String {
    let mut lines = Vec::new();
    if sr.position.is_none()
        && let Some(address) = &sr.address_string
    {
        lines.push(format!("address_string: {address}"));
    }
    if let Some(id) = &sr.address_id {
        lines.push(format!("address_id: {id}"));
    }
    for answer in &sr.attributes {
        let values: Vec<String> = answer
            .values
            .iter()
            .zip(&answer.names)
            .map(|(value, name)| match name {
                Some(name) => format!("{value} ({name})"),
                None => value.clone(),
            })
            .collect();
        lines.push(format!("attribute[{}]: {}", answer.code, values.join(", ")));
    }
    if lines.is_empty() {
        sr.description.clone()
    } else {
        format!(
            "{}\n\n{DETAILS_HEADING}\n{}",
            sr.description,
            lines.join("\n")
        )
    }
}

/// `media_url` as an attachment the gateway has not fetched. The standard
/// says it is "eg an image"; a name ending like a video, a recording or a
/// document says otherwise.
fn media(url: &str) -> Attachment {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_ascii_lowercase())
        .unwrap_or_default();
    let ext = path.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    let kind = match ext {
        "mp4" | "mov" | "webm" | "3gp" | "mkv" => AttachmentKind::Video,
        "mp3" | "m4a" | "ogg" | "oga" | "opus" | "wav" | "aac" | "amr" => AttachmentKind::Audio,
        "pdf" | "doc" | "docx" | "odt" | "txt" => AttachmentKind::Document,
        _ => AttachmentKind::Image,
    };
    Attachment {
        url: Some(url.to_string()),
        ..Attachment::new(kind)
    }
}

/// The client's `Idempotency-Key`, if it sent one: 1 to 255 visible ASCII characters.
fn idempotency_key(req: &Request<'_>) -> Result<Option<String>, Rejection> {
    let Some(value) = req.headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("").trim();
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Rejection::Invalid(vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "must be 1 to 255 visible ASCII characters".into(),
        }]));
    }
    Ok(Some(key.to_string()))
}

/// The body as kept in `raw`: as received less `api_key`, which must not
/// travel on into the stream. A form keeps every other pair byte for byte;
/// a JSON object is written again without the member.
fn raw_without_key(req: &Request<'_>) -> Raw {
    let content_type = req.content_type();
    if req.media_type() == "application/x-www-form-urlencoded" {
        let kept: Vec<&[u8]> = req
            .body
            .split(|&b| b == b'&')
            .filter(|pair| {
                let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
                form_urlencoded::parse(name)
                    .next()
                    .is_none_or(|(name, _)| name != "api_key")
            })
            .collect();
        return Raw::from_bytes(content_type, &kept.join(&b'&'));
    }
    match serde_json::from_slice::<Value>(req.body) {
        Ok(Value::Object(mut object)) => {
            object.remove("api_key");
            Raw::from_bytes(content_type, Value::Object(object).to_string().as_bytes())
        }
        // Unreachable: a body that is no JSON object is refused before this.
        _ => Raw::from_bytes(content_type, b""),
    }
}

impl Adapter for Open311 {
    /// A `POST requests.json` must carry one of the instance's `api_key`s
    /// in its body; reading the body for it, a media type other than a form
    /// or JSON is `415`. The read-only resources need no key. A key problem
    /// is an `Unauthorized` rejection (a credential, counted as one), which
    /// `rejected` answers `403` as the standard has it.
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        let resource = Resource::of(req.uri.path());
        if req.method != http::Method::POST || !matches!(resource, Resource::Requests(_)) {
            return Ok(());
        }
        let params = Params::read(req)?;
        let key = params
            .one("api_key")
            .map_err(|_| Rejection::Unauthorized("api_key was given more than once"))?
            .ok_or(Rejection::Unauthorized("api_key was not provided"))?;
        // Every key is compared, without stopping at a match, so the time
        // taken does not tell which one (or whether an early one) matched.
        let matched = self
            .api_keys
            .iter()
            .fold(false, |found, k| k.matches(key.as_bytes()) | found);
        if matched {
            Ok(())
        } else {
            Err(Rejection::Unauthorized("api_key is invalid"))
        }
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        let resource = Resource::of(req.uri.path());
        if req.method == http::Method::GET {
            return Ok(Outcome::Reply(self.read(&resource, req)));
        }
        match (&resource, req.method == http::Method::POST) {
            // The extension names the answer's format (`accepted_to`); the
            // body is the same form (or JSON) either way.
            (Resource::Requests(_), true) => {}
            (Resource::Unknown(_), _) => return Err(not_found("resource")),
            _ => return Err(Rejection::MethodNotAllowed),
        }
        let params = Params::read(req)?;
        let jurisdiction = params.one("jurisdiction_id").map_err(single)?;
        if !self.serves(jurisdiction) {
            return Err(not_found("jurisdiction_id"));
        }
        let sr = ServiceRequest::check(&params, &self.services, &self.default_region)
            .map_err(Rejection::Invalid)?;
        let external_id = match idempotency_key(req)? {
            Some(key) => key,
            None => {
                let parts = sr.canonical_parts();
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                aduan_adapter::content_id(&parts)
            }
        };
        let raw = ctx.keep_raw.then(|| raw_without_key(req));
        let complaint = self.complaint(&sr, external_id, raw, ctx);
        Ok(Outcome::complaints(vec![complaint]))
    }

    /// `201 Created` with `[{"service_request_id", "service_notice"}]`; the
    /// id is the complaint's tracking number (its id when the gateway gave
    /// it none), the first request's on a retry, so a client's retry of an
    /// accepted request gets the same answer and the same id.
    fn accepted(&self, receipts: &[Receipt]) -> Reply {
        let body: Vec<Value> = receipts
            .iter()
            .map(|r| json!({"service_request_id": service_request_id(r), "service_notice": self.service_notice}))
            .collect();
        json_reply(201, &Value::from(body))
    }

    /// [`Open311::accepted`] in the format the resource's extension names:
    /// `requests.xml` is answered `<service_requests><request>…`.
    fn accepted_to(&self, req: &Request<'_>, receipts: &[Receipt]) -> Reply {
        match answer_format(req) {
            Format::Json => self.accepted(receipts),
            Format::Xml => catalog::receipts(201, receipts, &self.service_notice),
        }
    }

    /// [`Open311::rejected`] in the format the resource's extension names.
    fn rejected_to(&self, req: &Request<'_>, rejection: &Rejection) -> Reply {
        let (status, descriptions) = refusal(rejection);
        catalog::errors(status, answer_format(req), &descriptions)
    }

    /// The standard's error list for what the gateway could not take now,
    /// in the format the resource's extension names: one entry whose `code`
    /// is the status, so a client tells a citizen who reports too often
    /// (`429`) from an outage (`503`).
    fn deferred_to(&self, req: &Request<'_>, status: u16, deferral: Deferral) -> Reply {
        let description = match deferral {
            Deferral::Overloaded => "the service is busy, try again later",
            Deferral::RateLimited => "too many requests, try again later",
            Deferral::Unavailable => "the service is unavailable, try again later",
            Deferral::Timeout => "the request took too long, try again",
        };
        catalog::errors(status, answer_format(req), &[description.to_string()])
    }

    /// The standard's `[{"code", "description"}]` with its statuses: `403`
    /// for a missing or wrong `api_key`, `404` for a service, jurisdiction or
    /// resource that does not exist, `400` for every other field error (one
    /// entry each), and the HTTP meaning of the rest (`405`, `413`, `415`).
    fn rejected(&self, rejection: &Rejection) -> Reply {
        let (status, descriptions) = refusal(rejection);
        catalog::errors(status, Format::Json, &descriptions)
    }
}

/// The status and the descriptions of the standard's error document for a refusal.
fn refusal(rejection: &Rejection) -> (u16, Vec<String>) {
    match rejection {
        Rejection::Invalid(errors) if errors.iter().all(|e| e.message == NOT_FOUND) => {
            (404, described(errors))
        }
        Rejection::Invalid(errors) => (400, described(errors)),
        Rejection::Forbidden(reason) | Rejection::Unauthorized(reason) => {
            (403, vec![reason.to_string()])
        }
        Rejection::Malformed(reason) => (400, vec![reason.clone()]),
        Rejection::MethodNotAllowed => (405, vec!["method not allowed".to_string()]),
        Rejection::TooLarge(_) => (413, vec!["the request is too large".to_string()]),
        Rejection::UnsupportedMediaType(expected) => {
            (415, vec![format!("the body must be {expected}")])
        }
    }
}

/// The format a request's answer is asked in: its resource's extension,
/// JSON when it names none.
fn answer_format(req: &Request<'_>) -> Format {
    match Resource::of(req.uri.path()) {
        Resource::Services(f)
        | Resource::Definition(_, f)
        | Resource::Requests(f)
        | Resource::Unknown(f) => f,
    }
}

fn described(errors: &[FieldError]) -> Vec<String> {
    errors
        .iter()
        .map(|e| format!("{} {}", e.field, e.message))
        .collect()
}

fn not_found(what: &str) -> Rejection {
    Rejection::Invalid(vec![FieldError {
        field: what.to_string(),
        message: NOT_FOUND.to_string(),
    }])
}

fn single(e: FieldError) -> Rejection {
    Rejection::Invalid(vec![e])
}

fn json_reply(status: u16, value: &Value) -> Reply {
    Reply {
        status,
        content_type: Format::Json.content_type().into(),
        body: value.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Format, Resource};

    #[test]
    fn resources_are_read_from_the_path_after_the_instance() {
        let of = Resource::of;
        assert_eq!(
            of("/open311/v2/bogor/services.json"),
            Resource::Services(Format::Json)
        );
        assert_eq!(
            of("/open311/v2/bogor/services.xml"),
            Resource::Services(Format::Xml)
        );
        assert_eq!(
            of("/open311/v2/services/services/JALAN-01.json"),
            Resource::Definition("JALAN-01".into(), Format::Json)
        );
        assert_eq!(
            of("/open311/v2/bogor/services/a.b.xml"),
            Resource::Definition("a.b".into(), Format::Xml)
        );
        assert_eq!(
            of("/open311/v2/bogor/requests.json"),
            Resource::Requests(Format::Json)
        );
        assert_eq!(
            of("/open311/v2/bogor/requests/12.json"),
            Resource::Unknown(Format::Json)
        );
        assert_eq!(
            of("/open311/v2/bogor/services.csv"),
            Resource::Unknown(Format::Json)
        );
        assert_eq!(of("/open311/v2/bogor"), Resource::Unknown(Format::Json));
        assert_eq!(
            of("/webhooks/open311/bogor"),
            Resource::Unknown(Format::Json)
        );
    }
}
