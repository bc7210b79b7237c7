//! `[status]` and each instance's `[instances.status]`: the status loop, from
//! the core system's status entries to the citizen and the public.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[status]`: the worker that applies the core system's status entries, and
/// the public lookup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// Whether this replica applies status entries. Default true.
    pub enabled: bool,
    /// The stream the core system appends status entries to (per partition,
    /// like the complaints). Default `aduan:status`.
    pub stream: String,
    /// The consumer group the replicas share. Default `aduan`.
    pub group: String,
    /// This replica's consumer name. Default: host name and process id.
    pub consumer: Option<String>,
    /// How long an entry may stay pending with a replica before another
    /// takes it over. Default 60 s.
    pub claim_idle_seconds: u64,
    /// Entries applied at once on this replica. Default 64.
    pub concurrency: usize,
    /// Lookups of `GET /v1/status/{tracking}` per client address per minute
    /// (per replica); 0 turns the limit off. Default 30.
    pub lookups_per_minute: u32,
    /// Origins whose pages may read `GET /v1/status/{tracking}` (CORS), e.g.
    /// `https://lapor.bogorkota.go.id`; `["*"]` for any. Default none.
    pub cors_origins: Vec<String>,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            enabled: true,
            stream: "aduan:status".into(),
            group: "aduan".into(),
            consumer: None,
            claim_idle_seconds: 60,
            concurrency: 64,
            lookups_per_minute: 30,
            cors_origins: Vec::new(),
        }
    }
}

impl StatusConfig {
    /// Values that cannot work, as (key, problem).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.stream.is_empty() {
            out.push(("status.stream", "must not be empty"));
        }
        if self.group.is_empty() {
            out.push(("status.group", "must not be empty"));
        }
        if self.claim_idle_seconds == 0 {
            out.push(("status.claim_idle_seconds", "must be positive"));
        }
        if self.concurrency == 0 {
            out.push(("status.concurrency", "must be positive"));
        }
        out
    }
}

/// `[instances.status]`: how the instance's citizens are told of a new status.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusNoticeSettings {
    /// The language of the default texts and of `{status}`: `ind` or `eng`. Default `ind`.
    pub language: String,
    /// The zone `{updated_at}` is shown in. Default `Asia/Jakarta` (WIB).
    pub time_zone: String,
    /// The statuses the citizen is told of when an entry does not say
    /// (`notify`). Default every status but `received` (the acknowledgement
    /// already said so).
    pub notify: Option<Vec<String>>,
    /// A text per status (`in_progress = "…"`), in place of the default;
    /// variables `{tracking}`, `{status}`, `{agency}`, `{note}`, `{updated_at}`.
    pub texts: BTreeMap<String, String>,
    /// The approved WhatsApp template sent outside the 24-hour window:
    /// `{ name, language }`; its parameters are the number, the status and
    /// the note (`-` when there is none).
    pub template: Option<NoticeTemplate>,
}

/// A WhatsApp template named in `[instances.status]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeTemplate {
    /// The template's name (a Content SID `HX…` on Twilio).
    pub name: String,
    /// Its language code (`id`, `en_US`).
    pub language: String,
}

impl Default for StatusNoticeSettings {
    fn default() -> Self {
        StatusNoticeSettings {
            language: "ind".into(),
            time_zone: "Asia/Jakarta".into(),
            notify: None,
            texts: BTreeMap::new(),
            template: None,
        }
    }
}
