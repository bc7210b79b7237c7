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
    if let Some(e164) = indonesian_mobile(&cleaned, region) {
        return Some(e164);
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

/// The common case without the general parser: an Indonesian mobile number
/// (national number `8[1-35-9]` and 7 to 10 more digits, the mobile pattern
/// of libphonenumber's metadata for `ID`) written as `+62…`, `0062…`, or, in
/// region `ID`, `62…` or `0…`. Anything else is `None` and goes to the
/// parser; where this answers, it answers what the parser would (a test
/// compares the two over every form and length).
fn indonesian_mobile(cleaned: &str, region: &str) -> Option<String> {
    let national = if let Some(rest) = cleaned.strip_prefix("+62") {
        rest
    } else if let Some(rest) = cleaned.strip_prefix("0062") {
        rest
    } else if !region.eq_ignore_ascii_case("ID") {
        return None;
    } else if let Some(rest) = cleaned.strip_prefix("62") {
        rest
    } else {
        cleaned.strip_prefix('0')?
    };
    let bytes = national.as_bytes();
    let mobile = (9..=12).contains(&bytes.len())
        && bytes[0] == b'8'
        && matches!(bytes[1], b'1'..=b'3' | b'5'..=b'9')
        && bytes.iter().all(u8::is_ascii_digit);
    mobile.then(|| format!("+62{national}"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    /// The general parser alone, as `normalize` was before its fast path.
    fn parsed(raw: &str, region: &str) -> Option<String> {
        use std::str::FromStr;
        let region_id = phonenumber::country::Id::from_str(region).ok();
        let attempts: Vec<String> = if raw.starts_with('+') {
            vec![raw.to_string()]
        } else if let Some(rest) = raw.strip_prefix("00") {
            vec![format!("+{rest}")]
        } else {
            vec![raw.to_string(), format!("+{raw}")]
        };
        attempts.into_iter().find_map(|attempt| {
            let number = if attempt.starts_with('+') {
                phonenumber::parse(None, &attempt)
            } else {
                phonenumber::parse(region_id, &attempt)
            }
            .ok()?;
            phonenumber::is_valid(&number)
                .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
        })
    }

    #[test]
    fn the_fast_path_answers_what_the_parser_answers() {
        // Every second digit, every length around the mobile range, every
        // written form; the other digits from a fixed pseudo-random sequence.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut digit = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'0' + (seed % 10) as u8)
        };
        let mut answered = 0;
        for second in '0'..='9' {
            for len in 7..=14 {
                for _ in 0..6 {
                    let national: String = std::iter::once('8')
                        .chain(std::iter::once(second))
                        .chain((2..len).map(|_| digit()))
                        .collect();
                    for form in [
                        format!("+62{national}"),
                        format!("0062{national}"),
                        format!("62{national}"),
                        format!("0{national}"),
                    ] {
                        for region in ["ID", "MY"] {
                            let fast = super::indonesian_mobile(&form, region);
                            if fast.is_some() {
                                answered += 1;
                                assert_eq!(fast, parsed(&form, region), "{form} in {region}");
                            }
                        }
                    }
                }
            }
        }
        assert!(answered > 500, "the fast path answered {answered} forms");
    }

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
