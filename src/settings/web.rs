//! `[web]`: the citizen form (`/lapor/<instance>`) and the agent form (`/agent`).

use aduan_adapter::Secret;
use serde::Deserialize;

/// `[web]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve `/lapor/<instance>` for every `open311` instance. Default true.
    pub citizen_form: bool,
    /// Serve `/agent` for the call centers (`transcript` instances). Default true.
    pub agent_form: bool,
    /// Form posts accepted per client address per minute, on this replica.
    /// Default 10.
    pub submissions_per_minute: u32,
    /// Largest photo with the citizen form. Default 10 MiB, as for email attachments.
    /// A post whose `Content-Length` is over it and 256 KiB (for the text
    /// fields) is refused `413` before its body is read.
    pub max_photo_bytes: usize,
    /// Citizen-form posts whose body is being read at once, on this replica;
    /// one more is answered `503` with `Retry-After`. Default 8.
    pub max_uploads: usize,
    /// Seconds a citizen-form post has to send its whole body; a slower one
    /// is answered `408` and its place given up. Default 120.
    pub upload_timeout_seconds: u64,
    /// The gateway is reached over TLS (at a proxy in front of it): cookies
    /// carry `Secure`. Default false.
    pub behind_tls: bool,
    /// The origin browsers reach the pages at (`https://aduan.example.go.id`).
    /// A post whose `Origin` (or `Referer`) names another is refused. Default
    /// none: the request's own `Host`.
    pub public_origin: Option<String>,
    /// The key the CSRF tokens are signed with (`env:`/`file:` reference),
    /// the same on every replica. Default none: a random key made once and
    /// kept in Redis for all replicas.
    pub secret: Option<Secret>,
    /// The header a trusted proxy writes the client's address into
    /// (`x-forwarded-for`: the last address in it is used). Default none:
    /// the connection's peer address.
    pub client_address_header: Option<String>,
    /// Origins allowed to show the citizen form in a frame
    /// (`https://pupr.bogorkab.go.id`). Default none: only the gateway itself.
    pub frame_ancestors: Vec<String>,
    /// How long an agent stays signed in. Default 12 hours.
    pub agent_session_hours: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            citizen_form: true,
            agent_form: true,
            submissions_per_minute: 10,
            max_photo_bytes: 10 * 1024 * 1024,
            max_uploads: 8,
            upload_timeout_seconds: 120,
            behind_tls: false,
            public_origin: None,
            secret: None,
            client_address_header: None,
            frame_ancestors: Vec::new(),
            agent_session_hours: 12,
        }
    }
}

impl WebConfig {
    /// Values that cannot work, as (key, problem).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.submissions_per_minute == 0 {
            out.push(("web.submissions_per_minute", "must be positive"));
        }
        if self.max_photo_bytes == 0 {
            out.push(("web.max_photo_bytes", "must be positive"));
        }
        if self.max_uploads == 0 {
            out.push(("web.max_uploads", "must be positive"));
        }
        if self.upload_timeout_seconds == 0 {
            out.push(("web.upload_timeout_seconds", "must be positive"));
        }
        if let Some(origin) = &self.public_origin
            && !is_origin(origin)
        {
            out.push((
                "web.public_origin",
                "must be an origin such as https://aduan.example.go.id (scheme, host, optional port; no path)",
            ));
        }
        if self.agent_session_hours == 0 {
            out.push(("web.agent_session_hours", "must be positive"));
        }
        let origin_ok = |o: &String| {
            (o.starts_with("https://") || o.starts_with("http://"))
                && !o.contains([' ', ';', ',', '\'', '"'])
        };
        if !self.frame_ancestors.iter().all(origin_ok) {
            out.push((
                "web.frame_ancestors",
                "each must be an origin such as https://pupr.example.go.id",
            ));
        }
        out
    }
}

/// Whether `o` is a serialized origin: `http(s)://host[:port]`, nothing after.
fn is_origin(o: &str) -> bool {
    let Ok(url) = url::Url::parse(o) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url
            .origin()
            .ascii_serialization()
            .eq_ignore_ascii_case(o.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_origin_is_an_origin_and_nothing_more() {
        for good in ["https://aduan.example.go.id", "http://127.0.0.1:8080"] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "aduan.example.go.id",
            "https://aduan.example.go.id/lapor",
            "ftp://aduan.example.go.id",
            "https://aduan.example.go.id?x=1",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
