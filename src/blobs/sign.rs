//! Signed, expiring blob URLs: `/v1/blobs/<key>?expires=<unix seconds>&signature=<hex>`
//! where the signature is the lowercase hex HMAC-SHA256, keyed by
//! `[blobs] signing_key`, of `<key>\n<expires>` (the key, one line feed,
//! the decimal expiry as written in the URL). Anyone holding the key can
//! mint them in any language; the gateway accepts one until `expires`.

use std::time::Duration;

use aduan_adapter::Secret;
use aduan_adapter::verify::{constant_time_eq, hmac_sha256};

/// The signature of `storage_key` valid until `expires` (Unix seconds), as
/// lowercase hex.
pub fn sign(storage_key: &str, expires: u64, secret: &Secret) -> String {
    signature_over(storage_key, &expires.to_string(), secret)
}

fn signature_over(storage_key: &str, expires: &str, secret: &Secret) -> String {
    let message = format!("{storage_key}\n{expires}");
    hex::encode(hmac_sha256(secret.expose_bytes(), message.as_bytes()))
}

/// The signed path of `storage_key`, valid until `expires` (Unix seconds):
/// `/v1/blobs/<key>?expires=<expires>&signature=<hex>`.
pub fn signed_path(storage_key: &str, expires: u64, secret: &Secret) -> String {
    format!(
        "/v1/blobs/{storage_key}?expires={expires}&signature={}",
        sign(storage_key, expires, secret)
    )
}

/// Why a signed URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the URL lacks `expires` or `signature`, or has one twice")]
    Incomplete,
    #[error("`expires` is not a number of seconds")]
    BadExpiry,
    #[error("the signed URL has expired")]
    Expired,
    #[error("the signature does not match")]
    Mismatch,
    #[error("no signing key is configured")]
    NoKey,
}

/// Checks a signed URL's `expires` and `signature` for `storage_key` at
/// `now` (Unix seconds): valid while `now < expires`. The signature is
/// compared in constant time.
pub fn verify_signature(
    storage_key: &str,
    expires: &str,
    signature: &str,
    secret: &Secret,
    now: u64,
) -> Result<(), SignatureError> {
    let digits =
        !expires.is_empty() && expires.len() <= 20 && expires.bytes().all(|b| b.is_ascii_digit());
    let deadline = digits
        .then(|| expires.parse::<u64>().ok())
        .flatten()
        .ok_or(SignatureError::BadExpiry)?;
    let expected = signature_over(storage_key, expires, secret);
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(SignatureError::Mismatch);
    }
    // Told only to those who hold a valid signature.
    if now >= deadline {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

/// Why a TTL was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration such as 30s, 10m, 2h or 1d")]
pub struct TtlError(String);

/// Reads a TTL: a positive whole number followed by `s`, `m`, `h` or `d`
/// (`30s`, `10m`, `2h`, `1d`); a bare number is seconds.
pub fn parse_ttl(text: &str) -> Result<Duration, TtlError> {
    let bad = || TtlError(text.to_string());
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    match n.checked_mul(scale) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn signatures_are_the_hmac_of_key_and_expiry() {
        let secret = Secret::literal("rahasia");
        // printf '<KEY>\n1700000000' | openssl dgst -sha256 -hmac rahasia
        let expected = "f5b3d976ce66204ffbef14d6e23d397f393355a674ceb3408e6b0e12790082f1";
        assert_eq!(sign(KEY, 1_700_000_000, &secret), expected);
        assert_eq!(
            signed_path(KEY, 1_700_000_000, &secret),
            format!("/v1/blobs/{KEY}?expires=1700000000&signature={expected}")
        );
        assert_eq!(
            verify_signature(KEY, "1700000000", expected, &secret, 1_699_999_999),
            Ok(())
        );
        assert_eq!(
            verify_signature(KEY, "1700000000", expected, &secret, 1_700_000_000),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify_signature(KEY, "1700000001", expected, &secret, 0),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(KEY, "1700000000", expected, &Secret::literal("lain"), 0),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(KEY, "1700000000", &expected.to_uppercase(), &secret, 0),
            Err(SignatureError::Mismatch)
        );
        for bad in ["", "-1", "+5", "1e9", "99999999999999999999999"] {
            assert_eq!(
                verify_signature(KEY, bad, expected, &secret, 0),
                Err(SignatureError::BadExpiry),
                "{bad}"
            );
        }
    }

    #[test]
    fn ttls_take_seconds_minutes_hours_and_days() {
        assert_eq!(parse_ttl("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_ttl("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_ttl("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("45"), Ok(Duration::from_secs(45)));
        for bad in [
            "",
            "0s",
            "m",
            "10x",
            "1.5h",
            "-5m",
            "10 m",
            "99999999999999999999d",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
