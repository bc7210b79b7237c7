//! Tracking numbers: the short form of a complaint id a citizen can read
//! out on the phone or type into an SMS (`LPR-7K3M-9QX2`).
//!
//! A number is Crockford base32 of the ULID's random part, with a prefix.
//! Eight characters (40 bits) make the first choice; the atomic append
//! takes the first of three that no other complaint holds: the first eight,
//! the last eight, then all sixteen (80 bits), and the whole id should even
//! those be taken. So a number is never given twice, and it is the same for
//! the same complaint id wherever it is worked out (the pipeline, the spool's
//! forwarder).

use ulid::Ulid;

/// Crockford's base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The three candidates for the complaint `id`, best first.
pub fn candidates(prefix: &str, id: &str) -> [String; 3] {
    let entropy = match Ulid::from_string(id) {
        Ok(u) => u.random(),
        // Not a ULID (never from the pipeline): a digest of it serves as well.
        Err(_) => {
            let digest = aduan_adapter::verify::sha256_hex(id.as_bytes());
            u128::from_str_radix(&digest[..20], 16).unwrap_or(0)
        }
    };
    // 80 bits, as sixteen 5-bit characters, most significant first.
    let chars: Vec<char> = (0..16)
        .rev()
        .map(|i| ALPHABET[((entropy >> (i * 5)) & 31) as usize] as char)
        .collect();
    let group = |from: usize, n: usize| -> String {
        chars[from..from + n]
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    };
    let with_prefix = |s: String| {
        if prefix.is_empty() {
            s
        } else {
            format!("{prefix}-{s}")
        }
    };
    [
        with_prefix(group(0, 8)),
        with_prefix(group(8, 8)),
        with_prefix(group(0, 16)),
    ]
}

/// Whether `prefix` can start a tracking number: 1–8 ASCII capitals or digits.
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= 8
        && prefix
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_short_distinct_and_stable() {
        let id = Ulid::generate().to_string();
        let [a, b, c] = candidates("LPR", &id);
        assert_eq!(candidates("LPR", &id), [a.clone(), b.clone(), c.clone()]);
        assert_eq!(a.len(), "LPR-7K3M-9QX2".len());
        assert!(a.starts_with("LPR-") && b.starts_with("LPR-"));
        assert_ne!(a, b);
        assert_eq!(c.len(), "LPR-".len() + 16 + 3);
        assert!(c.starts_with(&a));
        let body = |t: &str| t["LPR-".len()..].to_string();
        for ch in body(&a)
            .chars()
            .chain(body(&b).chars())
            .filter(|c| *c != '-')
        {
            assert!(ALPHABET.contains(&(ch as u8)), "{ch}");
        }
    }

    #[test]
    fn the_entropy_is_what_is_shown() {
        // A ULID whose random part is all ones shows as all `Z`.
        let id = Ulid::from_parts(1_790_000_000_000, (1u128 << 80) - 1).to_string();
        assert_eq!(candidates("", &id)[0], "ZZZZ-ZZZZ");
        let id = Ulid::from_parts(1_790_000_000_000, 0).to_string();
        assert_eq!(candidates("A", &id)[1], "A-0000-0000");
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(valid_prefix("LPR") && valid_prefix("") && valid_prefix("EP2"));
        assert!(!valid_prefix("lpr") && !valid_prefix("LPR-") && !valid_prefix("ABCDEFGHI"));
    }
}
