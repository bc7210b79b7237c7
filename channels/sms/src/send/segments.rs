//! How many SMS parts a text takes (3GPP TS 23.038).
//!
//! A text written entirely in the GSM 7-bit default alphabet goes as GSM-7:
//! 160 septets in one part, 153 per part once it is concatenated (the
//! concatenation header takes the rest). The extension table's characters
//! (`^ { } \ [ ~ ] | €` and form feed) take two septets, an escape and the
//! character, and are never cut in two. Any other character (an emoji, a
//! curly quote, `ç`) makes the whole text UCS-2: 70 UTF-16 code units in one
//! part, 67 per part, a character outside the Basic Multilingual Plane
//! taking two units that stay in the same part.

/// Septets in a single GSM-7 SMS.
pub const GSM7_SINGLE: usize = 160;
/// Septets per part of a concatenated GSM-7 SMS.
pub const GSM7_PART: usize = 153;
/// UTF-16 code units in a single UCS-2 SMS.
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per part of a concatenated UCS-2 SMS.
pub const UCS2_PART: usize = 67;

/// The GSM 7-bit default alphabet, in code order (the escape, 0x1B, left out).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The characters of the default alphabet's extension table: two septets each.
const EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// How a text is encoded on the air.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The GSM 7-bit default alphabet and its extension table.
    Gsm7,
    /// UCS-2 (UTF-16 code units).
    Ucs2,
}

/// What a text takes as SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// The parts it is sent in: 1 for a text that fits a single SMS
    /// (the empty text included).
    pub parts: usize,
}

/// The septets `c` takes in GSM-7, or `None` when it is not in the alphabet.
pub fn gsm7_septets(c: char) -> Option<usize> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Whether every character of `text` can go as GSM-7.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_septets(c).is_some())
}

/// The encoding, size and number of parts of `text`.
pub fn count(text: &str) -> Segments {
    let (encoding, costs): (Encoding, Vec<usize>) = if is_gsm7(text) {
        (
            Encoding::Gsm7,
            text.chars().map(|c| gsm7_septets(c).unwrap_or(2)).collect(),
        )
    } else {
        (Encoding::Ucs2, text.chars().map(char::len_utf16).collect())
    };
    let (single, part) = match encoding {
        Encoding::Gsm7 => (GSM7_SINGLE, GSM7_PART),
        Encoding::Ucs2 => (UCS2_SINGLE, UCS2_PART),
    };
    let units: usize = costs.iter().sum();
    let parts = if units <= single {
        1
    } else {
        // A character is never cut across two parts: a part that cannot
        // take the next one whole is closed short.
        let mut parts = 1;
        let mut used = 0;
        for cost in costs {
            if used + cost > part {
                parts += 1;
                used = 0;
            }
            used += cost;
        }
        parts
    };
    Segments {
        encoding,
        units,
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_has_its_127_characters_and_ten_extensions() {
        assert_eq!(BASIC.chars().count(), 127);
        assert_eq!(EXTENSION.chars().count(), 10);
        assert!(BASIC.chars().all(|c| !EXTENSION.contains(c)));
        for c in ['@', '$', '¤', '_', 'é', 'Ñ', '¿', '\n', '\r'] {
            assert_eq!(gsm7_septets(c), Some(1), "{c:?}");
        }
        for c in ['€', '[', ']', '{', '}', '^', '~', '|', '\\', '\u{c}'] {
            assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
        }
        for c in ['`', 'ç', '’', '“', 'á', '🙏', '\t'] {
            assert_eq!(gsm7_septets(c), None, "{c:?}");
        }
    }

    fn seg(encoding: Encoding, units: usize, parts: usize) -> Segments {
        Segments {
            encoding,
            units,
            parts,
        }
    }

    #[test]
    fn indonesian_replies() {
        use Encoding::{Gsm7, Ucs2};
        let cases: &[(&str, Segments)] = &[
            (
                "Terima kasih, aduan Anda telah kami terima dengan nomor LPR-7K3M-9QX2.",
                seg(Gsm7, 70, 1),
            ),
            // An emoji outside the BMP is two units, and makes it all UCS-2.
            (
                "Terima kasih 🙏 aduan Anda sudah kami terima.",
                seg(Ucs2, 45, 1),
            ),
            // A curly apostrophe, as phones type it, is UCS-2 as well.
            ("Jum’at petugas datang ke lokasi.", seg(Ucs2, 32, 1)),
            // `€` and brackets are two septets each.
            ("Denda parkir liar [Perda 5/2019]: €20", seg(Gsm7, 40, 1)),
            ("", seg(Gsm7, 0, 1)),
        ];
        for (text, expected) in cases {
            assert_eq!(count(text), *expected, "{text:?}");
        }
    }

    /// A GSM-7 text of exactly `n` characters, made of Indonesian words.
    fn gsm_text(n: usize) -> String {
        let words = "Petugas Dinas PU akan memperbaiki jalan berlubang di Jl. Raya Cibinong ";
        words.chars().cycle().take(n).collect()
    }

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(count(&gsm_text(160)), seg(Encoding::Gsm7, 160, 1));
        assert_eq!(count(&gsm_text(161)), seg(Encoding::Gsm7, 161, 2));
        assert_eq!(count(&gsm_text(306)), seg(Encoding::Gsm7, 306, 2));
        assert_eq!(count(&gsm_text(307)), seg(Encoding::Gsm7, 307, 3));
        assert_eq!(count(&gsm_text(153 * 3)), seg(Encoding::Gsm7, 459, 3));
        assert_eq!(count(&gsm_text(153 * 3 + 1)), seg(Encoding::Gsm7, 460, 4));
    }

    #[test]
    fn extension_characters_count_twice_and_are_not_cut() {
        // 159 characters and one `€`: 161 septets, two parts.
        let text = format!("{}€", gsm_text(159));
        assert_eq!(count(&text), seg(Encoding::Gsm7, 161, 2));
        // 158 and one `€` still fit one SMS.
        assert_eq!(
            count(&format!("{}€", gsm_text(158))),
            seg(Encoding::Gsm7, 160, 1)
        );
        // 152 septets, then `[`: it cannot take the last septet of part
        // one, so part one closes at 152 and the text needs a third part at
        // 153 + 152 + 2 = 307 septets where 306 would otherwise fit in two.
        let text = format!("{}[{}", gsm_text(152), gsm_text(152));
        assert_eq!(count(&text), seg(Encoding::Gsm7, 306, 3));
        let text = format!("{}[{}", gsm_text(151), gsm_text(153));
        assert_eq!(count(&text), seg(Encoding::Gsm7, 306, 2));
    }

    #[test]
    fn ucs2_boundaries() {
        // 69 characters and one emoji of two units: 71 units.
        let base: String = gsm_text(68);
        assert_eq!(
            count(&format!("{base}é’")),
            seg(Encoding::Ucs2, 70, 1),
            "70 units in one"
        );
        assert_eq!(
            count(&format!("{base}🙏")),
            seg(Encoding::Ucs2, 70, 1),
            "an emoji is two units"
        );
        assert_eq!(count(&format!("{base}’🙏")), seg(Encoding::Ucs2, 71, 2));
        let long = format!("Mohon maaf 🙏 {}", gsm_text(187));
        assert_eq!(count(&long).units, 201);
        assert_eq!(count(&long).parts, 3);
        let longer = format!("Mohon maaf 🙏 {}", gsm_text(188));
        assert_eq!(count(&longer), seg(Encoding::Ucs2, 202, 4));
        // An emoji that would straddle two parts moves to the next one.
        let text = format!("{}’🙏{}", gsm_text(65), gsm_text(10));
        assert_eq!(count(&text), seg(Encoding::Ucs2, 78, 2));
        let text = format!("{}’🙏{}", gsm_text(65), gsm_text(66));
        assert_eq!(count(&text).units, 134);
        assert_eq!(count(&text).parts, 3, "66 + 68 cannot be two parts of 67");
    }
}
