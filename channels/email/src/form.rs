//! Form bodies as the email webhooks send them: `multipart/form-data`
//! (SendGrid always, Mailgun with attachments) or URL-encoded (Mailgun).
//!
//! The multipart reader is deliberately small and synchronous: the whole body
//! is already in memory and bounded by the gateway's body limit, so it only
//! has to split parts and read each part's `Content-Disposition`.

use aduan_adapter::{Rejection, Request};

/// The most parts one form may have; SendGrid's raw mode sends about a dozen.
const MAX_PARTS: usize = 256;

/// One form field. `value` is the exact bytes sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: String,
    pub filename: Option<String>,
    pub value: std::borrow::Cow<'a, [u8]>,
}

/// A decoded form body.
#[derive(Clone, Debug, Default)]
pub struct Form<'a> {
    pub fields: Vec<Field<'a>>,
}

impl<'a> Form<'a> {
    /// Reads the request body according to its media type.
    pub fn read(req: &Request<'a>) -> Result<Form<'a>, Rejection> {
        match req.media_type().as_str() {
            "multipart/form-data" => {
                let boundary = boundary(req.content_type())
                    .ok_or_else(|| Rejection::malformed("multipart body without a boundary"))?;
                multipart(req.body, &boundary)
            }
            "application/x-www-form-urlencoded" => Ok(Form {
                fields: form_urlencoded::parse(req.body)
                    .map(|(k, v)| Field {
                        name: k.into_owned(),
                        filename: None,
                        value: std::borrow::Cow::Owned(v.into_owned().into_bytes()),
                    })
                    .collect(),
            }),
            _ => Err(Rejection::UnsupportedMediaType(
                "multipart/form-data or application/x-www-form-urlencoded",
            )),
        }
    }

    /// The first field called `name`, as bytes.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_ref())
    }

    /// The first field called `name`, as text (lossy for invalid UTF-8).
    pub fn text(&self, name: &str) -> Option<String> {
        self.bytes(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        (!v.is_empty() && v.len() <= 200).then(|| v.to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Splits a multipart body into fields (RFC 7578).
pub fn multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Form<'a>, Rejection> {
    let delimiter = format!("--{boundary}").into_bytes();
    // Every delimiter after the first is preceded by CRLF (or a bare LF from lax senders).
    let mut pos = find(body, &delimiter, 0)
        .ok_or_else(|| Rejection::malformed("multipart boundary not found"))?;
    let mut fields = Vec::new();
    loop {
        let after = pos + delimiter.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let start = skip_line(body, after)
            .ok_or_else(|| Rejection::malformed("truncated multipart body"))?;
        let next = find(body, &delimiter, start)
            .ok_or_else(|| Rejection::malformed("unterminated multipart body"))?;
        let mut end = next;
        if end > start && body[end - 1] == b'\n' {
            end -= 1;
            if end > start && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        fields.push(part(&body[start..end])?);
        if fields.len() > MAX_PARTS {
            return Err(Rejection::TooLarge("too many form parts"));
        }
        pos = next;
    }
    Ok(Form { fields })
}

/// The index just past the end of the line starting at `from`.
fn skip_line(body: &[u8], from: usize) -> Option<usize> {
    body[from..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|p| from + p + 1)
}

fn part(bytes: &[u8]) -> Result<Field<'_>, Rejection> {
    let (head, value) = match find(bytes, b"\r\n\r\n", 0) {
        Some(i) => (&bytes[..i], &bytes[i + 4..]),
        None => match find(bytes, b"\n\n", 0) {
            Some(i) => (&bytes[..i], &bytes[i + 2..]),
            None => return Err(Rejection::malformed("multipart part without headers")),
        },
    };
    let head = String::from_utf8_lossy(head);
    let disposition = head
        .lines()
        .find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then(|| v.to_string())
        })
        .ok_or_else(|| Rejection::malformed("multipart part without Content-Disposition"))?;
    let name = param(&disposition, "name")
        .ok_or_else(|| Rejection::malformed("multipart part without a name"))?;
    Ok(Field {
        name,
        filename: param(&disposition, "filename"),
        value: std::borrow::Cow::Borrowed(value),
    })
}

/// A parameter of a `Content-Disposition` value, quoted or not.
fn param(disposition: &str, want: &str) -> Option<String> {
    let mut rest = disposition;
    while let Some(semi) = rest.find(';') {
        rest = &rest[semi + 1..];
        let trimmed = rest.trim_start();
        let Some((k, v)) = trimmed.split_once('=') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case(want) {
            continue;
        }
        let v = v.trim_start();
        if let Some(quoted) = v.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '"' => return Some(out),
                    c => out.push(c),
                }
            }
            return Some(out);
        }
        return Some(v.split(';').next().unwrap_or("").trim().to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_fields_and_keeps_values_exact() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\npengaduan@lapor.example.go.id\r\n--XyZ\r\nContent-Disposition: form-data; name=\"email\"; filename=\"a; b.eml\"\r\nContent-Type: message/rfc822\r\n\r\nFrom: a\r\n\r\nline\r\n\r\n--XyZ--\r\n";
        let form = multipart(body, "XyZ").expect("parses");
        assert_eq!(form.fields.len(), 2);
        assert_eq!(
            form.text("to").as_deref(),
            Some("pengaduan@lapor.example.go.id")
        );
        assert_eq!(form.bytes("email"), Some(&b"From: a\r\n\r\nline\r\n"[..]));
        assert_eq!(form.fields[1].filename.as_deref(), Some("a; b.eml"));
    }

    #[test]
    fn refuses_truncated_bodies() {
        for body in [
            &b""[..],
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue",
            b"--XyZ\r\n\r\nvalue\r\n--XyZ--",
            b"--XyZ",
        ] {
            assert!(multipart(body, "XyZ").is_err());
        }
    }

    #[test]
    fn reads_the_boundary_parameter() {
        assert_eq!(
            boundary("multipart/form-data; charset=utf-8; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("multipart/form-data"), None);
    }
}
