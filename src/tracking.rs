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
    candidates_in(prefix, id, 0, 1)
}

/// The candidates for `id` in partition `partition` of `count`: each
/// 40-bit half is moved to the nearest value below it that is `partition`
/// modulo `count`, so partitions (each of which keeps its own numbers
/// unique) never offer one another's numbers, and a number tells its
/// partition. With one partition these are [`candidates`].
pub fn candidates_in(prefix: &str, id: &str, partition: u16, count: u16) -> [String; 3] {
    let raw = match Ulid::from_string(id) {
        Ok(u) => u.random(),
        // Not a ULID (never from the pipeline): a digest of it serves as well.
        Err(_) => {
            let digest = aduan_adapter::verify::sha256_hex(id.as_bytes());
            u128::from_str_radix(&digest[..20], 16).unwrap_or(0)
        }
    };
    let entropy = if count > 1 {
        const HALF: u128 = (1 << 40) - 1;
        let (n, p) = (u128::from(count), u128::from(partition % count));
        let fit = |v: u128| {
            let moved = v - v % n + p;
            if moved > HALF { moved - n } else { moved }
        };
        let raw = raw & ((1 << 80) - 1);
        (fit(raw >> 40) << 40) | fit(raw & HALF)
    } else {
        raw
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

/// The partition (of `count`) that gave out `number`, from its last eight
/// characters (either half tells it); `None` when it is not one of ours.
pub fn partition_of_number(number: &str, count: u16) -> Option<u16> {
    let mut groups = number.rsplit('-');
    let (low, high) = (groups.next()?, groups.next()?);
    if low.len() != 4 || high.len() != 4 {
        return None;
    }
    let mut value: u64 = 0;
    for c in high.bytes().chain(low.bytes()) {
        let digit = ALPHABET.iter().position(|&a| a == c)?;
        value = (value << 5) | digit as u64;
    }
    Some((value % u64::from(count.max(1))) as u16)
}

/// A number as a person typed or read it out, in the form the gateway gave
/// it: case, spaces and dashes do not matter, the prefix may be left out,
/// and the letters Crockford's alphabet leaves out for their likeness are
/// read as the digits they look like (O as 0, I and L as 1). `None` when
/// what is left is not 8 or 16 characters of the alphabet.
pub fn normalize(input: &str, prefix: &str) -> Option<String> {
    let squeezed: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    let body = squeezed.strip_prefix(prefix).unwrap_or(&squeezed);
    let mut chars = Vec::with_capacity(16);
    for c in body.chars() {
        let c = match c {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        chars.push(c);
    }
    if chars.len() != 8 && chars.len() != 16 {
        return None;
    }
    let groups: Vec<String> = chars.chunks(4).map(|g| g.iter().collect()).collect();
    let number = groups.join("-");
    Some(if prefix.is_empty() {
        number
    } else {
        format!("{prefix}-{number}")
    })
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

    #[test]
    fn a_number_is_read_as_people_type_it() {
        for typed in [
            "ADU-7K3M-9QX2",
            "adu-7k3m-9qx2",
            " ADU 7K3M 9QX2 ",
            "ADU7K3M9QX2",
            "7K3M9QX2",
            "7k3m-9qx2",
        ] {
            assert_eq!(
                normalize(typed, "ADU").as_deref(),
                Some("ADU-7K3M-9QX2"),
                "{typed}"
            );
        }
        assert_eq!(
            normalize("LPR-1O2I-3L45", "LPR").as_deref(),
            Some("LPR-1021-3145")
        );
        assert_eq!(
            normalize("ADU-Q8R7-ZP3N-6V5W-1HJD", "ADU").as_deref(),
            Some("ADU-Q8R7-ZP3N-6V5W-1HJD")
        );
        for bad in [
            "",
            "ADU-7K3M",
            "ADU-7K3M-9QX2-U",
            "ADU-7K3M-9QU2",
            "ADU-7K3M-9QX2!",
        ] {
            assert_eq!(normalize(bad, "ADU"), None, "{bad}");
        }
    }
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
    fn partitions_never_offer_one_anothers_numbers() {
        for _ in 0..200 {
            let id = Ulid::generate().to_string();
            let mut seen = std::collections::HashSet::new();
            for p in 0..3 {
                let numbers = candidates_in("EP", &id, p, 3);
                for n in &numbers {
                    assert_eq!(partition_of_number(n, 3), Some(p), "{n}");
                    assert!(seen.insert(n.clone()), "{n} offered twice");
                }
                assert!(numbers[2].starts_with(&numbers[0]));
            }
        }
        let id = Ulid::from_parts(1_790_000_000_000, (1u128 << 80) - 1).to_string();
        assert_eq!(
            partition_of_number(&candidates_in("", &id, 2, 3)[0], 3),
            Some(2)
        );
        assert_eq!(candidates_in("A", &id, 0, 1), candidates("A", &id));
        assert_eq!(partition_of_number("not-a-number", 3), None);
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(valid_prefix("LPR") && valid_prefix("") && valid_prefix("EP2"));
        assert!(!valid_prefix("lpr") && !valid_prefix("LPR-") && !valid_prefix("ABCDEFGHI"));
    }
}
