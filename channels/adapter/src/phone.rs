//! Phone numbers to E.164.
//!
//! Citizens and providers write numbers in many forms; Indonesian ones alone
//! come as `0812-3456-7890`, `62812…`, `+62 812 …`. Every form that names a
//! valid number ends as `+6281234567890`.

use std::str::FromStr;

use phonenumber::country;

/// The region used when a number has no country code; configurable per instance.
pub const DEFAULT_REGION: &str = "ID";

/// Normalizes `raw` to E.164 using `region` (ISO 3166 alpha-2) for national
/// forms. Returns `None` when `raw` is not a plausible phone number.
pub fn normalize(raw: &str, region: &str) -> Option<String> {
    let cleaned: String = raw
        .trim()
        .trim_start_matches("tel:")
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    if cleaned.is_empty() || cleaned.len() > 20 {
        return None;
    }
    let digits = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let region_id = country::Id::from_str(&region.to_ascii_uppercase()).ok();

    // Try the number as written first; providers often drop the `+`
    // (`6281234567890`), so a digits-only form that is not valid in the
    // region is retried as international.
    let attempts: Vec<String> = if cleaned.starts_with('+') {
        vec![cleaned.clone()]
    } else if let Some(rest) = cleaned.strip_prefix("00") {
        vec![format!("+{rest}")]
    } else {
        vec![cleaned.clone(), format!("+{cleaned}")]
    };
    for attempt in attempts {
        let parsed = if attempt.starts_with('+') {
            phonenumber::parse(None, &attempt)
        } else {
            phonenumber::parse(region_id, &attempt)
        };
        if let Ok(number) = parsed
            && phonenumber::is_valid(&number)
        {
            return Some(number.format().mode(phonenumber::Mode::E164).to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn indonesian_forms_end_as_e164() {
        for raw in [
            "0812-3456-7890",
            "081234567890",
            "6281234567890",
            "+6281234567890",
            "+62 812-3456-7890",
            "(0812) 3456 7890",
            "tel:+6281234567890",
            "006281234567890",
        ] {
            assert_eq!(
                normalize(raw, "ID").as_deref(),
                Some("+6281234567890"),
                "{raw}"
            );
        }
    }

    #[test]
    fn foreign_numbers_keep_their_country() {
        assert_eq!(
            normalize("+14158675309", "ID").as_deref(),
            Some("+14158675309")
        );
        assert_eq!(
            normalize("447911123456", "ID").as_deref(),
            Some("+447911123456")
        );
        assert_eq!(
            normalize("010-1234-5678", "KR").as_deref(),
            Some("+821012345678")
        );
    }

    #[test]
    fn non_numbers_are_refused() {
        for raw in ["", "LAPOR", "12", "+62abc", "1708"] {
            assert_eq!(normalize(raw, "ID"), None, "{raw}");
        }
    }
}
