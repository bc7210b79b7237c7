//! The test kit every channel crate's tests and the gateway's tests share.
//!
//! One provider family, one folder of real-format fixtures, and beside each
//! fixture the golden documents it must become (`<fixture>.expected.json`).
//! The kit holds what those tests would otherwise each write again:
//!
//! - the signatures providers put on their requests, built from the same
//!   [`crate::verify`] primitives the adapters check them with;
//! - [`OwnedRequest`], a request a test owns and an adapter borrows;
//! - [`Fixtures`], a fixture folder and the golden files beside it;
//! - the comparison of documents ([`assert_json_matches`], `"*"` matching any
//!   value) and the reading, or with `ADUAN_BLESS=1` rewriting, of golden
//!   files ([`expected_documents`]);
//! - [`Case`] and [`run`]: one table runner that puts fixture cases through an
//!   adapter's `verify` and `parse` and checks status, answer, ignored events
//!   and the whole documents.
//!
//! Compiled only with the `testkit` feature, which crates enable from their
//! `[dev-dependencies]`. Everything here panics on a difference: that is how
//! a test fails.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::verify::{base64_encode, hmac_sha1, hmac_sha256};
use crate::{Adapter, Context, Outcome, Raw, Receipt, Rejection, Request, Timestamp};

// ---------------------------------------------------------------------------
// Signatures

/// The header Meta (WhatsApp, Messenger, Instagram) signs its webhooks in.
pub const META_SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The header X signs Account Activity webhooks in.
pub const X_SIGNATURE_HEADER: &str = "x-twitter-webhooks-signature";
/// The header Twilio signs its webhooks in.
pub const TWILIO_SIGNATURE_HEADER: &str = "x-twilio-signature";
/// The header Telegram repeats the webhook's secret token in.
pub const TELEGRAM_SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Meta's `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the
/// raw body, keyed by the app secret.
pub fn meta_signature(app_secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(app_secret.as_bytes(), body))
    )
}

/// X's signature: `sha256=` and the base64 HMAC-SHA256 keyed by the consumer
/// secret, over the raw body (webhooks) or the `crc_token` (the CRC answer).
pub fn x_signature(consumer_secret: &str, message: &[u8]) -> String {
    format!(
        "sha256={}",
        base64_encode(&hmac_sha256(consumer_secret.as_bytes(), message))
    )
}

/// Twilio's `X-Twilio-Signature`: the base64 HMAC-SHA1, keyed by the auth
/// token, of the full URL followed by every parameter's name and value,
/// sorted by name (a `GET` signs the URL alone: give no parameters).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut signed = url.to_string();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    base64_encode(&hmac_sha1(auth_token.as_bytes(), signed.as_bytes()))
}

/// An `Authorization: Basic` value.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    )
}

/// An `Authorization: Bearer` value.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// How a test signs a request body: rightly, or in each way a signature
/// check must refuse.
#[derive(Clone, Copy, Debug)]
pub enum Signing {
    /// With the secret the instance is configured with.
    Good,
    /// With another secret.
    WrongSecret,
    /// Over the body, then one digit of the body changed (see [`tampered`]).
    Tampered,
    /// No signature at all.
    Missing,
    /// A value that is no signature of the scheme.
    Garbage,
}

/// A provider's body signature: the header it is sent in and how it is
/// computed from a secret and the raw body.
#[derive(Clone, Copy, Debug)]
pub struct Scheme {
    /// The header the signature is sent in.
    pub header: &'static str,
    /// The signature of a body (second argument) under a secret (first).
    pub sign: fn(&str, &[u8]) -> String,
}

/// Meta's `X-Hub-Signature-256`.
pub const META: Scheme = Scheme {
    header: META_SIGNATURE_HEADER,
    sign: meta_signature,
};

/// X's `x-twitter-webhooks-signature`.
pub const X: Scheme = Scheme {
    header: X_SIGNATURE_HEADER,
    sign: x_signature,
};

impl Signing {
    /// The body to send and the signature to send with it, for `body`
    /// signed in `scheme` with `secret`.
    pub fn apply(self, scheme: Scheme, secret: &str, body: &[u8]) -> (Vec<u8>, Option<String>) {
        let sign = scheme.sign;
        match self {
            Signing::Good => (body.to_vec(), Some(sign(secret, body))),
            Signing::WrongSecret => (body.to_vec(), Some(sign("rahasia-lain", body))),
            Signing::Tampered => (tampered(body), Some(sign(secret, body))),
            Signing::Missing => (body.to_vec(), None),
            Signing::Garbage => (body.to_vec(), Some("sha256=bukan-tanda-tangan".into())),
        }
    }
}

/// `body` with its first digit turned into another: still the same JSON or
/// form shape, so that only the signature can tell it was changed.
pub fn tampered(body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    let digit = body
        .iter_mut()
        .find(|b| b.is_ascii_digit())
        .expect("a body to tamper with holds a digit");
    *digit = if *digit == b'9' { b'8' } else { *digit + 1 };
    body
}

/// The `raw` member of a document that kept `body` as sent.
pub fn raw(content_type: &str, body: &[u8]) -> Value {
    serde_json::to_value(Raw::from_bytes(content_type, body)).expect("raw serializes")
}

// ---------------------------------------------------------------------------
// Requests and contexts

/// An HTTP request a test owns, so that an adapter can borrow it as a
/// [`Request`]. Built from literals: a bad method, URI or header is the
/// test's own mistake and panics.
#[derive(Clone, Debug)]
pub struct OwnedRequest {
    /// `GET`, `POST`, or the method a case is about.
    pub method: http::Method,
    /// Path and query, as a provider's request line has them.
    pub uri: http::Uri,
    /// Every header, repeated names kept.
    pub headers: http::HeaderMap,
    /// The exact bytes sent, which signatures are computed over.
    pub body: Vec<u8>,
}

impl OwnedRequest {
    /// A request without headers or body.
    pub fn new(method: &str, uri: &str) -> Self {
        OwnedRequest {
            method: method.parse().expect("a valid method"),
            uri: uri.parse().expect("a valid URI"),
            headers: http::HeaderMap::new(),
            body: Vec::new(),
        }
    }

    /// A `GET`.
    pub fn get(uri: &str) -> Self {
        OwnedRequest::new("GET", uri)
    }

    /// A `POST`.
    pub fn post(uri: &str) -> Self {
        OwnedRequest::new("POST", uri)
    }

    /// Adds a header (repeated names are kept, as on the wire).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            http::HeaderValue::from_str(value).expect("a valid header value"),
        );
        self
    }

    /// Adds a header where there is a value (a signature a case may leave out).
    pub fn header_opt(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.header(name, value),
            None => self,
        }
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON body with its content type.
    pub fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    /// A form body with its content type.
    pub fn form(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// Signs the body set so far in `scheme` with `secret`, as `signing`
    /// says (which may change the body or leave the header out).
    pub fn signed(mut self, scheme: Scheme, secret: &str, signing: Signing) -> Self {
        let (body, signature) = signing.apply(scheme, secret, &self.body);
        self.body = body;
        self.header_opt(scheme.header, signature.as_deref())
    }

    /// The request as adapters take it.
    pub fn as_request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// The acceptance time of the kit's contexts: 2026-11-22T08:20:00Z.
pub fn received_at() -> Timestamp {
    Timestamp::from_unix_seconds(1_795_335_600).expect("in range")
}

/// A context for `instance` at [`received_at`].
pub fn context(instance: &str, keep_raw: bool) -> Context<'_> {
    Context {
        instance,
        received_at: received_at(),
        keep_raw,
    }
}

/// What the gateway does with a request up to the append: `verify`, then
/// `parse`.
pub fn handle(
    adapter: &dyn Adapter,
    ctx: &Context<'_>,
    request: &OwnedRequest,
) -> Result<Outcome, Rejection> {
    let req = request.as_request();
    adapter.verify(&req)?;
    let outcome = adapter.parse(&req, ctx)?;
    // A redelivery must land on the partition the first delivery did: the
    // conversation key may depend on the delivery alone, not on when it came.
    if let Ok(again) = adapter.parse(&req, &later(ctx)) {
        assert_eq!(
            conversations(&outcome),
            conversations(&again),
            "the conversation key depends on more than the delivery"
        );
    }
    Ok(outcome)
}

/// `ctx` a day and a millisecond later, as a provider's redelivery comes.
pub fn later<'a>(ctx: &Context<'a>) -> Context<'a> {
    Context {
        received_at: Timestamp(ctx.received_at.0 + chrono::Duration::milliseconds(86_400_001)),
        ..*ctx
    }
}

/// The conversation key of each complaint and part an outcome appends, in order.
pub fn conversations(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Accept { complaints, .. } | Outcome::AcceptWithBlobs { complaints, .. } => {
            complaints
                .iter()
                .map(|c| c.thread.conversation.clone())
                .collect()
        }
        Outcome::Fragments(parts) => parts
            .iter()
            .map(|f| f.complaint.thread.conversation.clone())
            .collect(),
        Outcome::Reply(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Fixtures and golden documents

/// A folder of fixtures: request bodies, and beside each the golden
/// documents it must become, `<name without extension>.expected.json` (or
/// `<name>.<variant>.expected.json` for another instance's view of it), or
/// the answer it must get, `<name without extension>.answer.json`.
#[derive(Clone, Debug)]
pub struct Fixtures {
    dir: PathBuf,
}

impl Fixtures {
    /// The fixtures under `dir` (an absolute path, usually from
    /// `env!("CARGO_MANIFEST_DIR")`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Fixtures { dir: dir.into() }
    }

    /// The path of fixture `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The bytes of fixture `name`.
    pub fn bytes(&self, name: &str) -> Vec<u8> {
        let path = self.path(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// Fixture `name` as text without its final line end, as signature files
    /// and query strings are used.
    pub fn text(&self, name: &str) -> String {
        String::from_utf8(self.bytes(name))
            .unwrap_or_else(|_| panic!("fixture {name} is not UTF-8"))
            .trim_end()
            .to_string()
    }

    /// The golden documents of fixture `name`: `<stem>.expected.json`.
    pub fn golden(&self, name: &str) -> PathBuf {
        self.path(&format!("{}.expected.json", stem(name)))
    }

    /// The answer fixture `name` must get, where the answer is what the
    /// case is about (field errors, for one): `<stem>.answer.json`.
    pub fn answer(&self, name: &str) -> Answer {
        let file = format!("{}.answer.json", stem(name));
        Answer::Json(
            serde_json::from_slice(&self.bytes(&file))
                .unwrap_or_else(|e| panic!("{file} is not JSON: {e}")),
        )
    }

    /// The golden documents of fixture `name` on another instance:
    /// `<stem>.<variant>.expected.json`.
    pub fn golden_variant(&self, name: &str, variant: &str) -> PathBuf {
        self.path(&format!("{}.{variant}.expected.json", stem(name)))
    }
}

/// `name` without its extension (`whatsapp/text.json` → `whatsapp/text`).
fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => stem,
        _ => name,
    }
}

/// Whether `ADUAN_BLESS` asks for golden files to be rewritten.
pub fn blessing() -> bool {
    std::env::var_os("ADUAN_BLESS").is_some()
}

/// The documents the golden file at `path` holds (a list of documents, or
/// one document; a file of one document is blessed as one).
///
/// With `ADUAN_BLESS=1` the file is first written from `actual`, for a
/// reviewer to check in the diff: `id` and `received_at` become `"*"`
/// (they are the gateway's and differ on every run), and each field named in
/// `kept` keeps the value the file already has for that document (`null`
/// when it has none), for fields a test sets over the golden documents.
pub fn expected_documents(path: &Path, actual: &Value, kept: &[&str]) -> Value {
    if blessing() {
        bless(path, actual, kept);
    }
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (ADUAN_BLESS=1 writes it)",
            path.display()
        )
    });
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Writes the golden file at `path` from `actual`, as [`expected_documents`] says.
fn bless(path: &Path, actual: &Value, kept: &[&str]) {
    let before: Option<Value> = std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let mut blessed = match (actual, &before) {
        // A file of one document stays one document.
        (Value::Array(docs), Some(Value::Object(_))) if docs.len() == 1 => docs[0].clone(),
        _ => actual.clone(),
    };
    match &mut blessed {
        Value::Array(docs) => {
            for (i, doc) in docs.iter_mut().enumerate() {
                let old = before.as_ref().and_then(|b| b.get(i));
                bless_document(doc, old, kept);
            }
        }
        doc => bless_document(doc, before.as_ref(), kept),
    }
    let text = serde_json::to_string_pretty(&blessed).expect("documents serialize") + "\n";
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn bless_document(doc: &mut Value, before: Option<&Value>, kept: &[&str]) {
    doc["id"] = "*".into();
    doc["received_at"] = "*".into();
    for field in kept {
        doc[*field] = before
            .and_then(|b| b.get(*field))
            .cloned()
            .unwrap_or(Value::Null);
    }
}

/// Exact equality, except that `"*"` in `expected` matches any non-null
/// value. Panics naming the first place the documents differ.
pub fn assert_json_matches(actual: &Value, expected: &Value) {
    if let Some(at) = difference(actual, expected) {
        panic!("documents differ at {at}\nactual:   {actual:#}\nexpected: {expected:#}");
    }
}

/// Where `actual` first differs from `expected` (see [`assert_json_matches`]),
/// as a JSON path; `None` when they match.
pub fn difference(actual: &Value, expected: &Value) -> Option<String> {
    difference_at(actual, expected, "$")
}

fn difference_at(actual: &Value, expected: &Value, path: &str) -> Option<String> {
    match (actual, expected) {
        (a, Value::String(s)) if s == "*" => a
            .is_null()
            .then(|| format!("{path} (expected a value, got null)")),
        (Value::Object(a), Value::Object(e)) => {
            a.keys()
                .chain(e.keys())
                .find_map(|key| match (a.get(key), e.get(key)) {
                    (Some(av), Some(ev)) => difference_at(av, ev, &format!("{path}.{key}")),
                    _ => Some(format!("{path}.{key} (present on one side only)")),
                })
        }
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return Some(format!("{path} (length {} vs {})", a.len(), e.len()));
            }
            a.iter()
                .zip(e)
                .enumerate()
                .find_map(|(i, (av, ev))| difference_at(av, ev, &format!("{path}[{i}]")))
        }
        // `184` and `184.0` are the same number on the wire.
        (Value::Number(a), Value::Number(e)) => {
            (a.as_f64() != e.as_f64()).then(|| format!("{path} ({a} vs {e})"))
        }
        (a, e) => (a != e).then(|| format!("{path} ({a} vs {e})")),
    }
}

// ---------------------------------------------------------------------------
// Answers

/// An answer body a case expects.
#[derive(Clone, Debug)]
pub enum Answer {
    /// This JSON, `"*"` matching any value.
    Json(Value),
    /// These exact bytes, as text.
    Text(String),
}

impl Answer {
    /// A JSON answer, written as JSON text.
    pub fn json(text: &str) -> Self {
        Answer::Json(serde_json::from_str(text).expect("the expected answer is JSON"))
    }

    /// An exact text answer.
    pub fn text(text: &str) -> Self {
        Answer::Text(text.to_string())
    }

    /// An empty answer.
    pub fn empty() -> Self {
        Answer::text("")
    }

    /// Panics unless `body` is this answer.
    pub fn check(&self, label: &str, body: &[u8]) {
        match self {
            Answer::Json(expected) => {
                let actual: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
                    panic!(
                        "{label}: the answer is not JSON ({e}): {}",
                        String::from_utf8_lossy(body)
                    )
                });
                if let Some(at) = difference(&actual, expected) {
                    panic!(
                        "{label}: the answer differs at {at}\nactual:   {actual}\nexpected: {expected}"
                    );
                }
            }
            Answer::Text(expected) => assert_eq!(
                String::from_utf8_lossy(body),
                expected.as_str(),
                "{label}: answer"
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// The adapter table runner

/// The documents a case must yield.
#[derive(Clone, Debug)]
pub enum Documents {
    /// None at all.
    None,
    /// Those of a golden file: every document a request yields, in order.
    Golden(PathBuf),
    /// These.
    Inline(Vec<Value>),
}

/// One fixture case: a request and everything it must come to.
#[derive(Clone, Debug)]
pub struct Case {
    /// Names the case in every failure.
    pub label: String,
    /// What is put through `verify` and `parse`.
    pub request: OwnedRequest,
    /// The status the gateway would answer: the adapter's accepted answer
    /// or reply, or the rejection's.
    pub status: u16,
    /// The answer body, where the case is about it.
    pub answer: Option<Answer>,
    /// What the answer's content type must start with, where it matters.
    pub content_type: Option<String>,
    /// The acknowledged events that are not complaints, by reason, in order.
    pub ignored: Vec<&'static str>,
    /// The complaints the request must yield, whole.
    pub documents: Documents,
    /// Fields set over every expected document, for what differs from the
    /// golden documents in this context (`raw` kept, for one).
    pub patch: Map<String, Value>,
}

impl Case {
    /// A case that must be accepted (`200`) with nothing written, until told otherwise.
    pub fn new(label: impl Into<String>, request: OwnedRequest) -> Self {
        Case {
            label: label.into(),
            request,
            status: 200,
            answer: None,
            content_type: None,
            ignored: Vec::new(),
            documents: Documents::None,
            patch: Map::new(),
        }
    }

    /// The status the request must get.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The answer body the request must get.
    pub fn answer(mut self, answer: Answer) -> Self {
        self.answer = Some(answer);
        self
    }

    /// What the answer's content type must start with.
    pub fn content_type(mut self, prefix: &str) -> Self {
        self.content_type = Some(prefix.to_string());
        self
    }

    /// The events acknowledged and not written, by reason.
    pub fn ignored(mut self, reasons: &[&'static str]) -> Self {
        self.ignored = reasons.to_vec();
        self
    }

    /// The documents of the golden file at `path`.
    pub fn golden(mut self, path: PathBuf) -> Self {
        self.documents = Documents::Golden(path);
        self
    }

    /// These documents.
    pub fn documents(mut self, documents: Vec<Value>) -> Self {
        self.documents = Documents::Inline(documents);
        self
    }

    /// Sets `field` to `value` in every expected document.
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.patch.insert(field.to_string(), value);
        self
    }
}

/// Puts each case through `adapter` as the gateway would (`verify`, then
/// `parse` with `ctx`) and checks the status, the answer, the ignored events
/// and the whole documents; panics with the case's label at the first
/// difference.
///
/// Expected documents are what reaches the stream; the adapter's own are
/// compared with the gateway's fields as the adapter leaves them: `id`
/// empty, `language` null (the gateway detects it) and `received_at` the
/// context's.
pub fn run(adapter: &dyn Adapter, ctx: &Context<'_>, cases: impl IntoIterator<Item = Case>) {
    for case in cases {
        run_case(adapter, ctx, &case);
    }
}

fn run_case(adapter: &dyn Adapter, ctx: &Context<'_>, case: &Case) {
    let label = case.label.as_str();
    let (reply, ignored, documents) = match handle(adapter, ctx, &case.request) {
        Ok(Outcome::Accept {
            complaints,
            ignored,
            ..
        })
        | Ok(Outcome::AcceptWithBlobs {
            complaints,
            ignored,
            ..
        }) => {
            let receipts: Vec<Receipt> = complaints
                .iter()
                .map(|c| Receipt {
                    id: c.id.clone(),
                    external_id: c.external_id.clone(),
                    duplicate: false,
                    tracking: None,
                })
                .collect();
            (adapter.accepted(&receipts), ignored, to_values(&complaints))
        }
        Ok(Outcome::Fragments(parts)) => {
            let complaints: Vec<_> = parts.into_iter().map(|p| p.complaint).collect();
            (adapter.accepted(&[]), Vec::new(), to_values(&complaints))
        }
        Ok(Outcome::Reply(reply)) => (reply, Vec::new(), Vec::new()),
        Err(rejection) => (adapter.rejected(&rejection), Vec::new(), Vec::new()),
    };
    assert_eq!(
        reply.status,
        case.status,
        "{label}: status (answer {})",
        String::from_utf8_lossy(&reply.body)
    );
    if let Some(prefix) = &case.content_type {
        assert!(
            reply.content_type.starts_with(prefix.as_str()),
            "{label}: content type {}",
            reply.content_type
        );
    }
    if let Some(answer) = &case.answer {
        answer.check(label, &reply.body);
    }
    let reasons: Vec<&str> = ignored.iter().map(|i| i.reason).collect();
    assert_eq!(reasons, case.ignored, "{label}: ignored events");
    assert_documents(label, ctx, &documents, &case.documents, &case.patch);
}

fn to_values(complaints: &[crate::Complaint]) -> Vec<Value> {
    complaints
        .iter()
        .map(|c| serde_json::to_value(c).expect("complaints serialize"))
        .collect()
}

/// Compares the documents an adapter produced in `ctx` with `documents`,
/// `patch` set over each expected one, as [`run`] does; for tables over an
/// adapter's parts that are not a whole [`Adapter`] (the MIME reader, for one).
pub fn assert_documents(
    label: &str,
    ctx: &Context<'_>,
    actual: &[Value],
    documents: &Documents,
    patch: &Map<String, Value>,
) {
    let mut expected = match documents {
        Documents::None => Vec::new(),
        Documents::Inline(docs) => docs.clone(),
        Documents::Golden(path) => {
            let mut kept = vec!["language"];
            kept.extend(patch.keys().map(String::as_str));
            match expected_documents(path, &Value::from(actual.to_vec()), &kept) {
                Value::Array(docs) if !docs.is_empty() => docs,
                doc @ Value::Object(_) => vec![doc],
                other => panic!("{label}: {} holds no documents: {other}", path.display()),
            }
        }
    };
    let received_at = serde_json::to_value(ctx.received_at).expect("timestamps serialize");
    for doc in &mut expected {
        for (field, value) in patch {
            doc[field.as_str()] = value.clone();
        }
        doc["id"] = "".into();
        doc["language"] = Value::Null;
        doc["received_at"] = received_at.clone();
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{label}: documents\n{actual:#?}"
    );
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        if let Some(at) = difference(a, e) {
            panic!("{label}: document {i} differs at {at}\nactual:   {a:#}\nexpected: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_signature_answers_the_known_crc_vector() {
        // X's own CRC example (providers.md section 7).
        assert_eq!(
            x_signature(
                "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu",
                b"9b4507b3-9040-4669-9ca3-6b94edb50553"
            ),
            "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="
        );
    }

    #[test]
    fn twilio_signature_sorts_the_parameters() {
        // Computed independently with Python's hmac.
        let params = [
            ("From", "+6281234567890"),
            ("Body", "Jalan rusak"),
            ("MessageSid", "SM1"),
        ];
        assert_eq!(
            twilio_signature(
                "twilio-test-token-jabar",
                "https://lapor.example.go.id/webhooks/twilio/twilio-jabar",
                &params
            ),
            "AzxATys3OlyKm15b2uZikOd6VUg="
        );
    }

    #[test]
    fn meta_signature_is_hex_after_its_prefix() {
        // providers.md section 4, [computed].
        assert_eq!(
            meta_signature(
                "app_secret",
                br#"{"object":"whatsapp_business_account","entry":[]}"#
            ),
            "sha256=c236c758c9b2bd40b388a550eeca09eaca72384dd0aa5e7c31d19cddac5bba46"
        );
    }

    #[test]
    fn a_tampered_body_keeps_its_shape() {
        assert_eq!(tampered(br#"{"id":"19"}"#), br#"{"id":"29"}"#);
        assert_eq!(tampered(b"a=9"), b"a=8");
    }

    #[test]
    fn a_star_matches_any_value_but_null() {
        let expected = serde_json::json!({"id": "*", "n": 184, "list": ["a"]});
        let good = serde_json::json!({"id": "01J", "n": 184.0, "list": ["a"]});
        assert_eq!(difference(&good, &expected), None);
        let null = serde_json::json!({"id": null, "n": 184, "list": ["a"]});
        assert_eq!(
            difference(&null, &expected).as_deref(),
            Some("$.id (expected a value, got null)")
        );
        let extra = serde_json::json!({"id": "x", "n": 184, "list": ["a"], "more": 1});
        assert_eq!(
            difference(&extra, &expected).as_deref(),
            Some("$.more (present on one side only)")
        );
        let longer = serde_json::json!({"id": "x", "n": 184, "list": ["a", "b"]});
        assert_eq!(
            difference(&longer, &expected).as_deref(),
            Some("$.list (length 2 vs 1)")
        );
    }

    #[test]
    fn blessing_writes_stars_keeps_kept_fields_and_the_file_shape() {
        let path =
            std::env::temp_dir().join(format!("aduan-testkit-bless-{}.json", std::process::id()));
        let actual = serde_json::json!([{"id": "01J", "received_at": "2026-11-22T08:20:00.000Z",
            "language": null, "raw": {"body": "x"}, "text": "baru"}]);
        // A new file: a list, the kept fields null.
        let _ = std::fs::remove_file(&path);
        bless(&path, &actual, &["language", "raw"]);
        let written: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("written")).expect("JSON");
        assert_eq!(
            written,
            serde_json::json!([{"id": "*", "received_at": "*", "language": null, "raw": null, "text": "baru"}])
        );
        // A file of one document: it stays one, the kept fields as they were.
        std::fs::write(
            &path,
            r#"{"id": "", "language": "ind", "raw": null, "text": "lama"}"#,
        )
        .expect("written");
        bless(&path, &actual, &["language", "raw"]);
        let written: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("written")).expect("JSON");
        assert_eq!(
            written,
            serde_json::json!({"id": "*", "received_at": "*", "language": "ind", "raw": null, "text": "baru"})
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn golden_names_sit_beside_the_fixture() {
        let f = Fixtures::new("/f");
        assert_eq!(
            f.golden("whatsapp/text.json"),
            PathBuf::from("/f/whatsapp/text.expected.json")
        );
        assert_eq!(
            f.golden_variant("message_text.json", "tg-raw"),
            PathBuf::from("/f/message_text.tg-raw.expected.json")
        );
    }
}
