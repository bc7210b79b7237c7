//! The cheap byte-level checks on a raw request, before an adapter's serde
//! parse: query and form field counts, JSON nesting depth.

use axum::http::{HeaderMap, Uri, header};

use crate::settings::LimitsConfig;

/// The byte-level checks behind [`Limits::prescan`].
pub fn prescan(
    cfg: &LimitsConfig,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<(), &'static str> {
    if let Some(query) = uri.query()
        && field_count(query.as_bytes()) > cfg.form_max_fields
    {
        return Err("form_fields");
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media_type == "application/x-www-form-urlencoded" {
        if field_count(body) > cfg.form_max_fields {
            return Err("form_fields");
        }
    } else if (media_type.ends_with("json") || looks_like_json(body))
        && json_depth_exceeds(body, cfg.json_max_depth)
    {
        return Err("json_depth");
    }
    Ok(())
}

/// Fields in a `a=1&b=2` string: empty pieces between `&`s are not fields.
fn field_count(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .count()
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// True when arrays and objects nest deeper than `max` anywhere in `body`. Brackets
/// inside strings do not count; the bytes need not be valid JSON (the adapter's parse
/// decides that), so this never fails on anything else.
pub fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_depth_counts_brackets_outside_strings_only() {
        assert!(!json_depth_exceeds(br#"{"a":[{"b":1}]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[\"[[[["}"#, 1));
        assert!(json_depth_exceeds(&[b'['; 10_000], 32));
        // Unbalanced closers never underflow into a pass for what follows.
        assert!(json_depth_exceeds(b"]]]]]]][[[[", 3));
    }

    #[test]
    fn prescan_counts_form_fields_and_query_parameters() {
        let cfg = LimitsConfig {
            form_max_fields: 3,
            ..LimitsConfig::default()
        };
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let uri: Uri = "/webhooks/sms/x".parse().expect("uri");
        assert_eq!(prescan(&cfg, &form, &uri, b"a=1&b=2&&c=3"), Ok(()));
        assert_eq!(
            prescan(&cfg, &form, &uri, b"a=1&b=2&c=3&d=4"),
            Err("form_fields")
        );
        let long: Uri = "/webhooks/sms/x?a=1&b=2&c=3&d=4".parse().expect("uri");
        assert_eq!(
            prescan(&cfg, &HeaderMap::new(), &long, b""),
            Err("form_fields")
        );
    }
}
