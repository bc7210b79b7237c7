//! X escapes `&`, `<` and `>` in Tweet and DM text as HTML entities; a
//! complaint's `text` is plain text, so they are turned back.

/// Decodes named (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`) and numeric
/// (`&#39;`, `&#x1F6A7;`) character references. Anything else, including a
/// lone `&`, is kept as written.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // References are short; a `;` further away belongs to ordinary text.
        let decoded = rest.as_bytes()[1..rest.len().min(12)]
            .iter()
            .position(|&b| b == b';')
            .and_then(|semi| {
                let name = &rest[1..semi + 1];
                reference(name).map(|c| (c, semi + 2))
            });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn reference(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_entities;

    #[test]
    fn entities_become_characters() {
        assert_eq!(
            decode_entities("Hello World &amp; good wishes."),
            "Hello World & good wishes."
        );
        assert_eq!(
            decode_entities("&lt;b&gt; &quot;rusak&quot; &#39;parah&#39; &#x1F6A7;"),
            "<b> \"rusak\" 'parah' 🚧"
        );
        assert_eq!(decode_entities("&amp;🚧🚧🚧"), "&🚧🚧🚧");
        // Escaped once, decoded once: `&amp;lt;` is the text `&lt;`.
        assert_eq!(decode_entities("&amp;lt;"), "&lt;");
    }

    #[test]
    fn other_ampersands_stay() {
        for s in [
            "R&D",
            "a & b",
            "&",
            "&;",
            "&unknown;",
            "&#xZZ;",
            "&#99999999;",
            "Jl. A&B; blok 3",
            "&am",
            "&🚧🚧🚧;",
        ] {
            assert_eq!(decode_entities(s), s);
        }
    }
}
