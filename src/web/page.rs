//! What both pages share: the language, escaping, the layout with its one
//! inline style sheet and script, and the security headers they are served
//! with. No page loads anything from elsewhere.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::Digest as _;

/// The page's language: Indonesian unless `lang=en` is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Id,
    En,
}

impl Lang {
    /// `lang=en` (query or form field) picks English; anything else Indonesian.
    pub fn of(value: Option<&str>) -> Lang {
        match value {
            Some(v) if v.eq_ignore_ascii_case("en") => Lang::En,
            _ => Lang::Id,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    /// The other language, for the page's switch link.
    pub fn other(self) -> Lang {
        match self {
            Lang::Id => Lang::En,
            Lang::En => Lang::Id,
        }
    }

    /// The language's own name.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Id => "Bahasa Indonesia",
            Lang::En => "English",
        }
    }

    /// `id` or `en` text.
    pub fn pick(self, id: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }
}

/// Text escaped for HTML content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The style of both pages: system fonts, one column, large touch targets,
/// contrast of at least 4.5:1, a visible focus ring.
const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;background:#f4f5f7}\
main{max-width:36rem;margin:0 auto;padding:1rem;background:#fff;min-height:100vh}\
h1{font-size:1.5rem;margin:.5rem 0 1rem}\
label,legend{display:block;font-weight:600;margin-top:1rem}\
fieldset{border:1px solid #6b6b6b;border-radius:.25rem;margin:1rem 0 0;padding:.5rem .75rem .75rem}\
fieldset legend{margin:0;padding:0 .25rem}\
input,select,textarea{display:block;width:100%;font:inherit;padding:.6rem;margin-top:.25rem;border:1px solid #595959;border-radius:.25rem;background:#fff;color:#1a1a1a}\
input[type=checkbox]{display:inline;width:auto;margin-right:.5rem}\
textarea{min-height:8rem}\
.hint{display:block;font-weight:400;color:#4a4a4a;font-size:.9rem}\
.field-error{display:block;color:#a30000;font-weight:600}\
[aria-invalid=true]{border:2px solid #a30000}\
button{font:inherit;font-weight:600;padding:.75rem 1.25rem;margin-top:1.25rem;border:0;border-radius:.25rem;background:#0b4f8a;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#0b4f8a;border:2px solid #0b4f8a}\
:focus-visible{outline:3px solid #f2a900;outline-offset:2px}\
.summary{border:2px solid #a30000;padding:.5rem 1rem;margin-bottom:1rem}\
.summary a{color:#a30000}\
.ok{border:2px solid #1d6b32;padding:.5rem 1rem}\
.tracking{font-size:1.75rem;font-weight:700;letter-spacing:.05em;font-family:ui-monospace,monospace}\
a{color:#0b4f8a}\
nav{text-align:right;font-size:.9rem}";

/// The citizen form's "use my location" button: shown only when JavaScript
/// and geolocation are there; it fills the two hidden coordinate fields.
pub const LOCATION_SCRIPT: &str = "(function(){var b=document.getElementById('geo');\
if(!b||!navigator.geolocation)return;b.hidden=false;\
b.addEventListener('click',function(){var s=document.getElementById('geo-status');\
s.textContent=b.getAttribute('data-wait');\
navigator.geolocation.getCurrentPosition(function(p){\
document.getElementById('latitude').value=p.coords.latitude.toFixed(6);\
document.getElementById('longitude').value=p.coords.longitude.toFixed(6);\
s.textContent=b.getAttribute('data-done');},\
function(){s.textContent=b.getAttribute('data-fail');},{timeout:15000});});})();";

/// A whole page: `title`, then `body` (already HTML), with `script` when given.
pub fn layout(lang: Lang, title: &str, body: &str, script: Option<&str>) -> String {
    let script = script
        .map(|s| format!("<script>{s}</script>"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main>{script}</body></html>",
        lang = lang.code(),
        title = escape(title),
    )
}

/// `sha256-…` of an inline script or style, for the Content-Security-Policy.
fn source_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The headers every page goes out with: nothing from elsewhere, only the
/// page's own style and script (by hash), forms posted only to the gateway,
/// framed only by `frame_ancestors`, never cached.
pub fn security_headers(frame_ancestors: &[String]) -> HeaderMap {
    let ancestors = if frame_ancestors.is_empty() {
        "'self'".to_string()
    } else {
        format!("'self' {}", frame_ancestors.join(" "))
    };
    let policy = format!(
        "default-src 'none'; style-src {}; script-src {}; img-src 'self'; \
form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}",
        source_hash(STYLE),
        source_hash(LOCATION_SCRIPT),
    );
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
}

/// An HTML answer with `headers` (security headers and cookies).
pub fn html(status: StatusCode, mut headers: HeaderMap, page: String) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    (status, headers, page).into_response()
}

/// A labelled text input (or `textarea` when `multiline`), marked invalid
/// with its message when `error` is given.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub error: Option<&'a str>,
    pub required: bool,
    /// `text`, `tel`, `email`, … (ignored for a textarea).
    pub kind: &'a str,
    pub multiline: bool,
    pub autocomplete: Option<&'a str>,
}

impl Field<'_> {
    /// The label (with its hint and error) and the attributes of the
    /// field's control, for a control of any kind (`select`, file input).
    pub fn head(&self) -> (String, String) {
        let mut described = Vec::new();
        let hint = self.hint.map(|h| {
            described.push(format!("{}-hint", self.name));
            format!(
                "<span class=\"hint\" id=\"{}-hint\">{}</span>",
                self.name,
                escape(h)
            )
        });
        let error = self.error.map(|e| {
            described.push(format!("{}-error", self.name));
            format!(
                "<span class=\"field-error\" id=\"{}-error\">{}</span>",
                self.name,
                escape(e)
            )
        });
        let mut attrs = format!("id=\"{0}\" name=\"{0}\"", self.name);
        if self.required {
            attrs.push_str(" required aria-required=\"true\"");
        }
        if self.error.is_some() {
            attrs.push_str(" aria-invalid=\"true\"");
        }
        if !described.is_empty() {
            attrs.push_str(&format!(" aria-describedby=\"{}\"", described.join(" ")));
        }
        if let Some(a) = self.autocomplete {
            attrs.push_str(&format!(" autocomplete=\"{a}\""));
        }
        let head = format!(
            "<label for=\"{}\">{}{}</label>{}{}",
            self.name,
            escape(self.label),
            if self.required { " *" } else { "" },
            hint.unwrap_or_default(),
            error.unwrap_or_default(),
        );
        (head, attrs)
    }

    /// The field with its text input or textarea.
    pub fn render(&self) -> String {
        let (head, attrs) = self.head();
        if self.multiline {
            format!("{head}<textarea {attrs}>{}</textarea>", escape(self.value))
        } else {
            format!(
                "{head}<input type=\"{}\" {attrs} value=\"{}\">",
                self.kind,
                escape(self.value)
            )
        }
    }
}

/// A message above a form (expired page, limit, busy), when there is one.
pub fn notice(text: Option<&str>) -> String {
    text.map(|t| {
        format!(
            "<div class=\"summary\" role=\"alert\"><p>{}</p></div>",
            escape(t)
        )
    })
    .unwrap_or_default()
}

/// The box above a form listing what to fix, each a link to its field.
pub fn error_summary(lang: Lang, problems: &[(String, String)]) -> String {
    if problems.is_empty() {
        return String::new();
    }
    let items: String = problems
        .iter()
        .map(|(field, message)| {
            format!(
                "<li><a href=\"#{}\">{}</a></li>",
                escape(field),
                escape(message)
            )
        })
        .collect();
    format!(
        "<div class=\"summary\" role=\"alert\" tabindex=\"-1\" id=\"problems\"><h2>{}</h2><ul>{items}</ul></div>",
        lang.pick(
            "Periksa kembali isian berikut",
            "Please check the following"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_policy_names_the_inline_style_and_script_by_hash() {
        let headers = security_headers(&["https://pupr.example.go.id".to_string()]);
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains(&source_hash(STYLE)));
        assert!(policy.contains(&source_hash(LOCATION_SCRIPT)));
        assert!(policy.contains("frame-ancestors 'self' https://pupr.example.go.id"));
        assert!(!policy.contains("unsafe-inline"));
    }
}
