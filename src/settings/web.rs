//! `[web]`: the citizen form (`/lapor/<instance>`) and the agent form (`/agent`).

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
    pub max_photo_bytes: usize,
    /// The gateway is reached over TLS (at a proxy in front of it): cookies
    /// carry `Secure`. Default false.
    pub behind_tls: bool,
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
            behind_tls: false,
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
