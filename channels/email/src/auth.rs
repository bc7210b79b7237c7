//! HTTP Basic credentials, the only authenticity SendGrid Inbound Parse and
//! Postmark inbound offer (the credentials sit in the webhook URL).

use aduan_adapter::{Rejection, Request, Secret};
use base64::Engine as _;

/// Checks `Authorization: Basic …` against `username` and `password`.
/// Both parts are compared in constant time, and both are always compared, so
/// timing tells nothing about which one was wrong.
pub fn check_basic(req: &Request<'_>, username: &str, password: &Secret) -> Result<(), Rejection> {
    let header = req
        .header("authorization")
        .ok_or(Rejection::Unauthorized("missing credentials"))?;
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(Rejection::Unauthorized("malformed credentials"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Rejection::Unauthorized("expected Basic credentials"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| Rejection::Unauthorized("malformed credentials"))?;
    let colon = decoded
        .iter()
        .position(|b| *b == b':')
        .ok_or(Rejection::Unauthorized("malformed credentials"))?;
    let user_ok = aduan_adapter::verify::constant_time_eq(&decoded[..colon], username.as_bytes());
    let pass_ok = password.matches(&decoded[colon + 1..]);
    if user_ok & pass_ok {
        Ok(())
    } else {
        Err(Rejection::Unauthorized("wrong credentials"))
    }
}
