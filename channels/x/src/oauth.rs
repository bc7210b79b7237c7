//! OAuth 1.0a request signing (HMAC-SHA1), the user-context authentication
//! of X's API.
//!
//! The signature covers the method, the URL without its query, and every
//! `oauth_*`, query and form parameter, percent-encoded and sorted. A JSON
//! body is not a parameter and is not signed.

use aduan_adapter::Secret;
use aduan_adapter::verify::{base64_encode, hmac_sha1};
use url::Url;

/// The four keys of an app acting for one account.
#[derive(Clone, Debug)]
pub struct OAuth1 {
    /// The app's API key.
    pub consumer_key: Secret,
    /// The app's API secret.
    pub consumer_secret: Secret,
    /// The account's access token.
    pub access_token: Secret,
    /// The account's access token secret.
    pub access_token_secret: Secret,
}

impl OAuth1 {
    /// The `Authorization` header of a `method` request to `url` (whose query
    /// is signed) with the form parameters `form` (none for a JSON body),
    /// under the given `nonce` and `timestamp` (Unix seconds).
    pub fn authorization(
        &self,
        method: &str,
        url: &Url,
        form: &[(&str, &str)],
        nonce: &str,
        timestamp: u64,
    ) -> String {
        let timestamp = timestamp.to_string();
        let mut oauth = vec![
            ("oauth_consumer_key", self.consumer_key.expose()),
            ("oauth_nonce", nonce),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", timestamp.as_str()),
            ("oauth_token", self.access_token.expose()),
            ("oauth_version", "1.0"),
        ];
        let mut params = oauth.clone();
        params.extend_from_slice(form);
        let signature = sign(
            &base_string(method, url, &params),
            self.consumer_secret.expose(),
            self.access_token_secret.expose(),
        );
        oauth.push(("oauth_signature", &signature));
        oauth.sort_unstable();
        let fields: Vec<String> = oauth
            .iter()
            .map(|(k, v)| format!("{}=\"{}\"", percent_encode(k), percent_encode(v)))
            .collect();
        format!("OAuth {}", fields.join(", "))
    }
}

/// The signature base string: the method, the URL without query or
/// fragment, and the parameters (those given and those of the URL's query),
/// each part percent-encoded and joined with `&`.
pub fn base_string(method: &str, url: &Url, params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .chain(
            url.query_pairs()
                .map(|(k, v)| (percent_encode(&k), percent_encode(&v))),
        )
        .collect();
    encoded.sort_unstable();
    let parameters: Vec<String> = encoded.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // `Url` has already lowercased the scheme and host and left out a default port.
    let mut base_url = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        base_url.push_str(&format!(":{port}"));
    }
    base_url.push_str(url.path());
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode(&base_url),
        percent_encode(&parameters.join("&"))
    )
}

/// The base64 HMAC-SHA1 of `base` under the signing key
/// `<consumer secret>&<token secret>`, both percent-encoded.
pub fn sign(base: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!(
        "{}&{}",
        percent_encode(consumer_secret),
        percent_encode(token_secret)
    );
    base64_encode(&hmac_sha1(key.as_bytes(), base.as_bytes()))
}

/// RFC 3986 percent-encoding of the UTF-8 bytes of `s`: everything but
/// `A-Z a-z 0-9 - . _ ~`, as `%XX` in upper case.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A fresh nonce: 32 hexadecimal digits from the operating system's random source.
pub fn nonce() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random nonce: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of X's "Creating a signature" page
    // (docs.x.com/fundamentals/authentication/oauth-1-0a/creating-a-signature):
    // its published inputs and outputs are the test vector.
    const CONSUMER_KEY: &str = "xvz1evFS4wEEPTGEFPHBog";
    const CONSUMER_SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw";
    const TOKEN: &str = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb";
    const TOKEN_SECRET: &str = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE";
    const NONCE: &str = "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg";
    const TIMESTAMP: u64 = 1318622958;
    const STATUS: &str = "Hello Ladies + Gentlemen, a signed OAuth request!";
    const BASE: &str = "POST&https%3A%2F%2Fapi.x.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521";
    const SIGNATURE: &str = "Ls93hJiZbQ3akF3HF3x1Bz8/zU4=";

    fn keys() -> OAuth1 {
        OAuth1 {
            consumer_key: Secret::literal(CONSUMER_KEY),
            consumer_secret: Secret::literal(CONSUMER_SECRET),
            access_token: Secret::literal(TOKEN),
            access_token_secret: Secret::literal(TOKEN_SECRET),
        }
    }

    fn url() -> Url {
        Url::parse("https://api.x.com/1.1/statuses/update.json?include_entities=true")
            .expect("valid URL")
    }

    #[test]
    fn base_string_is_the_published_one() {
        let params = [
            ("status", STATUS),
            ("oauth_consumer_key", CONSUMER_KEY),
            ("oauth_nonce", NONCE),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            ("oauth_token", TOKEN),
            ("oauth_version", "1.0"),
        ];
        assert_eq!(base_string("post", &url(), &params), BASE);
    }

    #[test]
    fn signature_is_the_published_one() {
        assert_eq!(sign(BASE, CONSUMER_SECRET, TOKEN_SECRET), SIGNATURE);
    }

    #[test]
    fn header_carries_the_published_signature() {
        let header = keys().authorization("POST", &url(), &[("status", STATUS)], NONCE, TIMESTAMP);
        assert_eq!(
            header,
            "OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\", \
             oauth_nonce=\"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\", \
             oauth_signature=\"Ls93hJiZbQ3akF3HF3x1Bz8%2FzU4%3D\", \
             oauth_signature_method=\"HMAC-SHA1\", \
             oauth_timestamp=\"1318622958\", \
             oauth_token=\"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\", \
             oauth_version=\"1.0\""
        );
    }

    #[test]
    fn a_json_body_and_a_default_port_are_not_signed() {
        let keys = keys();
        let dm =
            Url::parse("https://api.x.com/2/dm_conversations/with/1462345678901234567/messages")
                .expect("valid URL");
        let same = Url::parse(
            "https://API.x.com:443/2/dm_conversations/with/1462345678901234567/messages",
        )
        .expect("valid URL");
        let a = keys.authorization("POST", &dm, &[], NONCE, TIMESTAMP);
        assert_eq!(a, keys.authorization("POST", &same, &[], NONCE, TIMESTAMP));
        // Another port is another URL.
        let other = Url::parse(
            "https://api.x.com:8443/2/dm_conversations/with/1462345678901234567/messages",
        )
        .expect("valid URL");
        assert_ne!(a, keys.authorization("POST", &other, &[], NONCE, TIMESTAMP));
        assert!(
            base_string("POST", &other, &[])
                .starts_with("POST&https%3A%2F%2Fapi.x.com%3A8443%2F2%2F")
        );
    }

    #[test]
    fn percent_encoding_follows_rfc_3986() {
        // The examples of X's "Percent encoding parameters" page.
        assert_eq!(
            percent_encode("Ladies + Gentlemen"),
            "Ladies%20%2B%20Gentlemen"
        );
        assert_eq!(
            percent_encode("An encoded string!"),
            "An%20encoded%20string%21"
        );
        assert_eq!(
            percent_encode("Dogs, Cats & Mice"),
            "Dogs%2C%20Cats%20%26%20Mice"
        );
        assert_eq!(percent_encode("☃"), "%E2%98%83");
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
    }

    #[test]
    fn nonces_differ() {
        let a = nonce().expect("random source");
        let b = nonce().expect("random source");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
