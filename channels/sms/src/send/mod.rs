//! Replies by SMS: the senders of Twilio (SMS, and WhatsApp through
//! Twilio), Vonage, Infobip and generic HTTP gateways (Kannel, Jasmin,
//! Android gateway apps).
//!
//! - [`twilio`]: [`TwilioSender`], the Messages API, with the WhatsApp
//!   24-hour window and Content templates outside it.
//! - [`vonage`]: [`VonageSender`], the SMS API with delivery receipts.
//! - [`infobip`]: [`InfobipSender`], `/sms/2/text/advanced`.
//! - [`generic`]: [`GenericSender`], one configurable HTTP request.
//! - [`segments`]: how many parts a text takes, GSM-7 or UCS-2.
//!
//! An SMS reply is sent in one request however long it is: the provider
//! splits it into concatenated parts, which the handset joins again. So
//! [`ReplySender::max_chars`](aduan_adapter::ReplySender::max_chars) is
//! [`SMS_MAX_CHARS`], more than any reply, and the sender itself counts the
//! parts and refuses with a permanent `too_long`, before any request, a text
//! that needs more than its `max_parts`.
//!
//! No error message carries a credential (each sender masks its own) or the
//! text sent; network failures are described by their kind alone, since the
//! URLs of some gateways hold credentials. Timeouts are the
//! [`reqwest::Client`]'s, which the gateway builds.

pub mod generic;
pub mod infobip;
pub mod segments;
pub mod twilio;
pub mod vonage;

use std::time::Duration;

use aduan_adapter::{Outgoing, SendError, reply};
use reqwest::Url;
use reqwest::header::HeaderMap;

pub use generic::{BodyFormat, GenericSendConfig, GenericSender, Method};
pub use infobip::{InfobipSendConfig, InfobipSender};
pub use segments::{Encoding, Segments};
pub use twilio::{TwilioSendConfig, TwilioSender};
pub use vonage::{VonageSendConfig, VonageSender};

/// What an SMS sender answers to `max_chars`: more than any reply, so the
/// gateway sends each reply in one request and the provider concatenates.
pub const SMS_MAX_CHARS: usize = 100_000;

/// The parts a reply may take unless configured (`max_parts`).
pub const DEFAULT_MAX_PARTS: usize = 3;

/// The most parts any concatenated SMS can have (its count is one byte).
pub const MAX_PARTS_LIMIT: usize = 255;

/// The most of an answer read; answers to a send are a few hundred bytes.
const MAX_ANSWER: usize = 64 * 1024;

/// The longest provider message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

pub(crate) fn default_max_parts() -> usize {
    DEFAULT_MAX_PARTS
}

/// Checks a configured `max_parts`.
pub(crate) fn check_max_parts(n: usize) -> Result<usize, String> {
    if (1..=MAX_PARTS_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "max_parts must be from 1 to {MAX_PARTS_LIMIT}, not {n}"
        ))
    }
}

/// The text of an SMS reply and what it takes, or why it cannot go: no
/// text (`missing_text`) or more parts than `max_parts` (`too_long`).
pub(crate) fn sms_text<'a>(
    out: &Outgoing<'a>,
    max_parts: usize,
) -> Result<(&'a str, Segments), SendError> {
    let text = out.text.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        SendError::permanent(
            "missing_text",
            "an SMS reply needs a text; templates are for WhatsApp",
        )
    })?;
    let seg = segments::count(text);
    if seg.parts > max_parts {
        let (encoding, unit) = match seg.encoding {
            Encoding::Gsm7 => ("GSM-7", "septets"),
            Encoding::Ucs2 => ("UCS-2", "UTF-16 units"),
        };
        return Err(SendError::permanent(
            "too_long",
            format!(
                "the text takes {} SMS parts ({encoding}, {} {unit}) and at most {max_parts} are allowed",
                seg.parts, seg.units
            ),
        ));
    }
    Ok((text, seg))
}

/// The digits of an E.164 number (`+6281234567890` → `6281234567890`), or
/// `None` when `to` is not one.
pub(crate) fn e164_digits(to: &str) -> Option<&str> {
    let digits = to.strip_prefix('+')?;
    let ok = (6..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then_some(digits)
}

/// The failure of a route whose address is no phone number (an
/// alphanumeric sender, a short code): nothing can be sent to it.
pub(crate) fn not_a_number() -> SendError {
    SendError::permanent(
        "invalid_recipient",
        "the route's address is not an E.164 phone number",
    )
}

/// Whether the citizen wrote less than `hours` hours before `out.now`; a
/// last message not known is outside every window.
pub(crate) fn within_hours(out: &Outgoing<'_>, hours: u64) -> bool {
    out.last_inbound_at.is_some_and(|last| {
        let age = (out.now.0 - last.0).to_std().unwrap_or(Duration::ZERO);
        age < Duration::from_secs(hours * 3600)
    })
}

/// A configured `base_url`: http(s), without query or fragment.
pub(crate) fn base_url(key: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim().trim_end_matches('/'))
        .map_err(|e| format!("{key} `{value}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("{key} `{value}` is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "{key} `{value}` must have no query, fragment or credentials"
        ));
    }
    Ok(url)
}

/// `base` with `segments` appended to its path, each percent-encoded as needed.
pub(crate) fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// A value that goes into a URL path or a header: letters, digits and a
/// few marks, nothing that could change the path.
pub(crate) fn check_id(key: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && value != "."
        && value != "..";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key} `{value}` must be letters, digits, `_`, `-` or `.`"
        ))
    }
}

/// A form body: `name=value&…`, form-encoded.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Strings that never go into an error message: credentials, and the
/// values a gateway's configured request carries literally.
#[derive(Clone, Default)]
pub(crate) struct Masks(Vec<String>);

impl std::fmt::Debug for Masks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masks({})", self.0.len())
    }
}

impl Masks {
    /// Masks `value` from now on; values under four characters are too
    /// common to take out of a message (and too short to be a credential).
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.chars().count() >= 4 && !self.0.iter().any(|m| m == value) {
            self.0.push(value.to_string());
            // The longest first, so that a value containing another goes whole.
            self.0.sort_by_key(|m| std::cmp::Reverse(m.chars().count()));
        }
    }

    /// `message` made fit for an error: without any masked value or the
    /// text sent, and short.
    pub fn clean(&self, message: &str, text: Option<&str>) -> String {
        let mut m = message.to_string();
        for mask in &self.0 {
            m = m.replace(mask.as_str(), "***");
        }
        // A short text is likely a common word; only a longer one is taken
        // out, and it is there only if the provider quoted it.
        if let Some(text) = text.map(str::trim).filter(|t| t.chars().count() >= 12) {
            m = m.replace(text, "…");
        }
        truncate(m.trim(), MAX_MESSAGE_CHARS)
    }
}

/// An answer of a provider, read up to [`MAX_ANSWER`] bytes.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The seconds of the answer's `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        reply::retry_after(&self.headers)
    }

    /// Whether the status is one worth another attempt: 408, 425, 429, 5xx.
    pub fn is_temporary(&self) -> bool {
        matches!(self.status, 408 | 425 | 429) || self.status >= 500
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The generic reading of the status, for answers without a provider code.
    pub fn by_status(&self, provider: &str) -> SendError {
        SendError::from_status(
            self.status,
            self.retry_after(),
            &format!("{provider} answered HTTP {}", self.status),
        )
    }
}

/// Sends `request` and reads the answer. Only a failure to get one is an
/// error here; what the answer means is the caller's.
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    provider: &str,
) -> Result<Answer, SendError> {
    let mut response = request.send().await.map_err(|e| network(&e, provider))?;
    let status = response.status().as_u16();
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| network(&e, provider))? {
        let room = MAX_ANSWER - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER {
            break;
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A failure to get an answer, described by its kind alone: reqwest's own
/// description names the URL, which may hold credentials. Only a failure
/// to connect is sure to have sent nothing ([`SendError::transport`]).
fn network(e: &reqwest::Error, provider: &str) -> SendError {
    let what = if e.is_timeout() {
        format!("timed out waiting for {provider}")
    } else if e.is_connect() {
        format!("could not connect to {provider}")
    } else if e.is_body() || e.is_decode() {
        format!("{provider}'s answer broke off")
    } else {
        format!("the request to {provider} failed")
    };
    SendError::transport(e, what)
}

/// The error of a success answer the sender cannot read: the message may
/// or may not have gone, and the gateway's retry rules decide.
pub(crate) fn bad_response(provider: &str, status: u16, what: &str) -> SendError {
    SendError::temporary(
        "bad_response",
        format!("{provider} answered HTTP {status} {what}"),
        None,
    )
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_lose_their_plus() {
        assert_eq!(e164_digits("+6281234567890"), Some("6281234567890"));
        for bad in [
            "6281234567890",
            "+62 812 3456",
            "+0812345678",
            "+62",
            "LAPOR",
            "+1234567890123456",
            "whatsapp:+6281234567890",
        ] {
            assert_eq!(e164_digits(bad), None, "{bad}");
        }
    }

    #[test]
    fn masks_take_credentials_and_long_texts_out() {
        let mut masks = Masks::default();
        masks.add("kannel-pass-2026");
        masks.add("abc");
        let text = "Terima kasih, laporan Anda sudah kami teruskan.";
        let m = masks.clean(
            &format!("login kannel-pass-2026 failed for abc: {text}"),
            Some(text),
        );
        assert_eq!(m, "login *** failed for abc: …");
        assert_eq!(format!("{masks:?}"), "Masks(1)");
        assert_eq!(masks.clean(&"x".repeat(400), None).chars().count(), 301);
    }

    #[test]
    fn base_urls_are_plain_http() {
        assert!(base_url("base_url", "https://api.twilio.com/").is_ok());
        assert!(base_url("base_url", "http://127.0.0.1:9/prefix").is_ok());
        for bad in [
            "api.twilio.com",
            "ftp://x",
            "https://x/?k=1",
            "https://user:pw@x",
            "",
        ] {
            assert!(base_url("base_url", bad).is_err(), "{bad}");
        }
        let base = base_url("base_url", "http://127.0.0.1:9/prefix/").expect("url");
        assert_eq!(
            join(&base, &["sms", "json"]).as_str(),
            "http://127.0.0.1:9/prefix/sms/json"
        );
    }

    #[test]
    fn max_parts_is_bounded() {
        assert!(check_max_parts(0).is_err());
        assert!(check_max_parts(256).is_err());
        assert_eq!(check_max_parts(3), Ok(3));
    }
}
