//! Settings of one `kind = "transcript"` instance (one call center).

use std::str::FromStr as _;

use aduan_adapter::Secret;
use serde::Deserialize;

/// Segments a transcript may hold unless configured otherwise: about a two-hour
/// call at one turn every second and a half.
pub const DEFAULT_MAX_SEGMENTS: usize = 5000;

/// Largest request body unless configured otherwise. A transcript at the default
/// segment limit with long turns stays well under it.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A call center that posts transcripts to `POST /v1/transcripts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptConfig {
    /// Bearer tokens this call center may present, each as `env:NAME`,
    /// `file:/path` or (for local use only) a literal. Several may be listed so
    /// that a token can be rotated without downtime. Every token must be unique
    /// across all transcript instances: the token is what tells call centers apart.
    pub tokens: Vec<Secret>,
    /// Region (ISO 3166 alpha-2) for caller numbers written without a country
    /// code, such as `0812-3456-7890`. Default `ID`.
    #[serde(default = "default_region")]
    pub default_region: String,
    /// Most segments accepted in one transcript; more is refused with `413`.
    /// Default 5000.
    #[serde(default = "default_max_segments")]
    pub max_segments: usize,
    /// Largest request body in bytes; more is refused with `413`. Default 2 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

fn default_region() -> String {
    aduan_adapter::phone::DEFAULT_REGION.to_string()
}

fn default_max_segments() -> usize {
    DEFAULT_MAX_SEGMENTS
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

impl TranscriptConfig {
    /// Checks what serde cannot: at least one token, distinct tokens, a
    /// two-letter region, non-zero limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.tokens.is_empty() {
            return Err("tokens: at least one token is required".to_string());
        }
        for (i, a) in self.tokens.iter().enumerate() {
            if self.tokens[..i].iter().any(|b| b.expose() == a.expose()) {
                return Err(format!("tokens[{i}]: the same token is listed twice"));
            }
        }
        let region = &self.default_region;
        if region.len() != 2
            || phonenumber::country::Id::from_str(&region.to_ascii_uppercase()).is_err()
        {
            return Err(format!(
                "default_region: expected an ISO 3166 alpha-2 code such as \"ID\", got {region:?}"
            ));
        }
        if self.max_segments == 0 {
            return Err("max_segments: must be at least 1".to_string());
        }
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes: must be at least 1".to_string());
        }
        Ok(())
    }
}
