//! Phone numbers as SMS providers write them, to the identities a Complaint carries.
//!
//! Providers disagree on the form (`+6281…`, `6281…`, `081…`, `whatsapp:+62…`)
//! and some senders are not numbers at all (alphanumeric sender ids, short
//! codes). Valid numbers become E.164 through [`aduan_adapter::phone`]; anything
//! else is kept as written so that the sender stays identifiable.

use std::str::FromStr;

use aduan_adapter::phone;

/// Checks a configured default region (ISO 3166 alpha-2, e.g. `ID`, `KR`).
pub fn check_region(region: &str) -> Result<String, String> {
    let upper = region.trim().to_ascii_uppercase();
    phonenumber::country::Id::from_str(&upper)
        .map(|_| upper)
        .map_err(|_| format!("region: `{region}` is not an ISO 3166 country code"))
}

/// Who sent an SMS: the `tel:` URN and, when the sender is a real number, its E.164 form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Number {
    /// `tel:+6281234567890`, or `tel:` + the sender as written when it is not a number.
    pub urn: String,
    /// E.164 when the sender is a valid phone number.
    pub e164: Option<String>,
}

/// The identity of a sender given as `raw`, with `region` for national forms.
/// `None` when `raw` is blank.
pub fn sender(raw: &str, region: &str) -> Option<Number> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    match phone::normalize(trimmed, region) {
        Some(e164) => Some(Number {
            urn: format!("tel:{e164}"),
            e164: Some(e164),
        }),
        // Alphanumeric ids and short codes: spaces are dropped so that
        // `PT ABC` and `PTABC` from the same operator stay one sender.
        None => Some(Number {
            urn: format!(
                "tel:{}",
                trimmed
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
            ),
            e164: None,
        }),
    }
}

/// The number that was contacted, for `recipient`: E.164 when it is a full
/// number, otherwise as written (short codes such as `1708`). `None` when blank.
pub fn recipient(raw: &str, region: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    Some(phone::normalize(trimmed, region).unwrap_or_else(|| trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_table() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            (
                "081234567890",
                "ID",
                "tel:+6281234567890",
                Some("+6281234567890"),
            ),
            (
                "0812-3456-7890",
                "ID",
                "tel:+6281234567890",
                Some("+6281234567890"),
            ),
            (
                "6281234567890",
                "ID",
                "tel:+6281234567890",
                Some("+6281234567890"),
            ),
            (
                "+6281234567890",
                "ID",
                "tel:+6281234567890",
                Some("+6281234567890"),
            ),
            (
                "+62 812-3456-7890",
                "ID",
                "tel:+6281234567890",
                Some("+6281234567890"),
            ),
            (
                "006281234567890",
                "ID",
                "tel:+6281234567890",
                Some("+6281234567890"),
            ),
            (
                "+62 21 3456789",
                "ID",
                "tel:+62213456789",
                Some("+62213456789"),
            ),
            (
                "021-3456789",
                "ID",
                "tel:+62213456789",
                Some("+62213456789"),
            ),
            (
                "+14158675309",
                "ID",
                "tel:+14158675309",
                Some("+14158675309"),
            ),
            (
                "447911123456",
                "ID",
                "tel:+447911123456",
                Some("+447911123456"),
            ),
            (
                "+639171234567",
                "ID",
                "tel:+639171234567",
                Some("+639171234567"),
            ),
            (
                "010-1234-5678",
                "KR",
                "tel:+821012345678",
                Some("+821012345678"),
            ),
            ("TELKOMSEL", "ID", "tel:TELKOMSEL", None),
            ("PT ABC", "ID", "tel:PTABC", None),
            ("1708", "ID", "tel:1708", None),
        ];
        for (raw, region, urn, e164) in cases {
            let got = sender(raw, region).unwrap();
            if e164.is_some() {
                assert_eq!(got.urn, *urn, "{raw}");
            }
            assert_eq!(got.e164.as_deref(), *e164, "{raw} in {region}");
        }
        assert_eq!(sender("  ", "ID"), None);
    }

    #[test]
    fn recipients_keep_short_codes() {
        assert_eq!(recipient("1708", "ID").as_deref(), Some("1708"));
        assert_eq!(
            recipient("62811000111", "ID").as_deref(),
            Some("+62811000111")
        );
        assert_eq!(recipient("", "ID"), None);
    }

    #[test]
    fn regions_are_checked() {
        assert_eq!(check_region("id").unwrap(), "ID");
        assert!(check_region("XX").is_err());
    }
}
