//! What the citizen is told of a new status (`[instances.status]`): the
//! text per status with `{tracking}`, `{status}` (the localized label),
//! `{agency}`, `{note}` and `{updated_at}` (local time in the instance's
//! zone), and the WhatsApp template for outside the 24-hour window.

use std::collections::{HashMap, HashSet};

use aduan_adapter::{StatusKind, StatusUpdate};
use serde::Deserialize;

use crate::settings::{NoticeTemplate, StatusNoticeSettings};

/// The Indonesian default: one GSM-7 SMS when the note is short.
pub const DEFAULT_TEXT_IND: &str = "Aduan {tracking}: {status}. {note}";
/// The English default.
pub const DEFAULT_TEXT_ENG: &str = "Complaint {tracking}: {status}. {note}";

const VARIABLES: [&str; 5] = ["tracking", "status", "agency", "note", "updated_at"];

/// The reply id of a status entry's notification; `status:` is reserved for these.
pub fn reply_id(status_id: &str) -> String {
    format!("status:{status_id}")
}

/// One instance's notices, built.
#[derive(Debug, Clone)]
pub struct Notices {
    language: String,
    zone: chrono_tz::Tz,
    notify: HashSet<StatusKind>,
    texts: HashMap<StatusKind, String>,
    template: Option<NoticeTemplate>,
}

impl Notices {
    /// From `[instances.status]` (absent: every default).
    pub fn new(table: Option<toml::Table>) -> Result<Notices, String> {
        let s = match table {
            Some(t) => StatusNoticeSettings::deserialize(toml::Value::Table(t))
                .map_err(|e| format!("status: {}", e.message()))?,
            None => StatusNoticeSettings::default(),
        };
        if s.language != "ind" && s.language != "eng" {
            return Err(format!(
                "status.language: `{}` is not one of: ind, eng",
                s.language
            ));
        }
        let zone: chrono_tz::Tz = s
            .time_zone
            .parse()
            .map_err(|_| format!("status.time_zone: unknown zone `{}`", s.time_zone))?;
        let status = |name: &str, key: &str| {
            StatusKind::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = StatusKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "{key}: unknown status `{name}`, expected one of: {}",
                    known.join(", ")
                )
            })
        };
        let notify = match &s.notify {
            Some(names) => names
                .iter()
                .map(|n| status(n, "status.notify"))
                .collect::<Result<HashSet<_>, _>>()?,
            None => StatusKind::ALL
                .into_iter()
                .filter(|k| *k != StatusKind::Received)
                .collect(),
        };
        let mut texts = HashMap::new();
        for (name, text) in &s.texts {
            let kind = status(name, "status.texts")?;
            check_variables(text, &format!("status.texts.{name}"))?;
            texts.insert(kind, text.clone());
        }
        Ok(Notices {
            language: s.language,
            zone,
            notify,
            texts,
            template: s.template,
        })
    }

    /// Whether the citizen is told of `u`: the entry's own `notify`, else
    /// the instance's default for its status.
    pub fn notifies(&self, u: &StatusUpdate) -> bool {
        u.notify.unwrap_or_else(|| self.notify.contains(&u.status))
    }

    /// The language of the texts and labels (`ind` or `eng`).
    pub fn language(&self) -> &str {
        &self.language
    }

    /// The text for `u` of the complaint numbered `tracking`.
    pub fn render(&self, u: &StatusUpdate, tracking: &str) -> String {
        let default = if self.language == "ind" {
            DEFAULT_TEXT_IND
        } else {
            DEFAULT_TEXT_ENG
        };
        let text = self.texts.get(&u.status).map_or(default, String::as_str);
        let when =
            u.at.0
                .with_timezone(&self.zone)
                .format("%d-%m-%Y %H:%M %Z")
                .to_string();
        let rendered = text
            .replace("{tracking}", tracking)
            .replace("{status}", u.status.label(&self.language))
            .replace("{agency}", u.agency.as_deref().unwrap_or(""))
            .replace("{note}", u.public_note.as_deref().unwrap_or(""))
            .replace("{updated_at}", &when);
        // An empty variable leaves no trailing gap.
        rendered.trim().to_string()
    }

    /// The notification's `aduan.reply.v1` JSON for the complaint `complaint_id`.
    pub fn reply_json(&self, u: &StatusUpdate, complaint_id: &str, tracking: &str) -> String {
        let mut reply = serde_json::json!({
            "schema": aduan_adapter::REPLY_SCHEMA,
            "reply_id": reply_id(&u.status_id),
            "complaint_id": complaint_id,
            "text": self.render(u, tracking),
        });
        if let Some(t) = &self.template {
            reply["template"] = serde_json::json!({
                "name": t.name,
                "language": t.language,
                "params": [
                    tracking,
                    u.status.label(&self.language),
                    u.public_note.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or("-"),
                ],
            });
        }
        reply.to_string()
    }
}

/// Every `{…}` must be a known variable: a typo would reach citizens.
fn check_variables(text: &str, key: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("{key} must not be empty"));
    }
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("{key}: `{{` without `}}`"));
        };
        let name = &rest[open + 1..open + close];
        if !VARIABLES.contains(&name) {
            return Err(format!(
                "{key}: unknown variable `{{{name}}}`, expected one of: {}",
                VARIABLES.join(", ")
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(status: &str, note: Option<&str>) -> StatusUpdate {
        let mut v = serde_json::json!({"status_id": "st-9", "tracking": "ADU-7K3M-9QX2",
            "status": status, "agency": "Dinas PUPR", "at": "2026-12-08T03:00:00Z"});
        if let Some(n) = note {
            v["public_note"] = n.into();
        }
        StatusUpdate::parse(Some(&v.to_string())).expect("entry")
    }

    #[test]
    fn the_default_texts_fit_one_sms_and_name_the_status() {
        let n = Notices::new(None).expect("defaults");
        let text = n.render(&update("in_progress", None), "ADU-7K3M-9QX2");
        assert_eq!(text, "Aduan ADU-7K3M-9QX2: Sedang ditangani.");
        let text = n.render(
            &update("resolved", Some("Saluran sudah dibersihkan.")),
            "ADU-7K3M-9QX2",
        );
        assert_eq!(
            text,
            "Aduan ADU-7K3M-9QX2: Selesai. Saluran sudah dibersihkan."
        );
        assert!(text.len() <= 160);
        assert!(!n.notifies(&update("received", None)));
        assert!(n.notifies(&update("verified", None)));
    }

    #[test]
    fn instance_texts_zones_and_templates() {
        let table: toml::Table = toml::from_str(
            "language = \"eng\"\ntime_zone = \"Asia/Makassar\"\nnotify = [\"resolved\"]\n\
             template = { name = \"aduan_status\", language = \"en_US\" }\n\
             [texts]\nresolved = \"{tracking} is {status} by {agency} at {updated_at}\"\n",
        )
        .expect("toml");
        let n = Notices::new(Some(table)).expect("settings");
        let u = update("resolved", None);
        assert_eq!(
            n.render(&u, "ADU-7K3M-9QX2"),
            "ADU-7K3M-9QX2 is Resolved by Dinas PUPR at 08-12-2026 11:00 WITA"
        );
        assert!(!n.notifies(&update("in_progress", None)));
        let reply: serde_json::Value =
            serde_json::from_str(&n.reply_json(&u, "01KBX", "ADU-7K3M-9QX2")).expect("json");
        assert_eq!(reply["reply_id"], "status:st-9");
        assert_eq!(reply["template"]["params"][2], "-");
        for bad in [
            "language = \"jav\"",
            "notify = [\"lost\"]",
            "[texts]\nresolved = \"{nama}\"",
            "time_zone = \"Mars/Olympus\"",
        ] {
            let table: toml::Table = toml::from_str(bad).expect("toml");
            assert!(Notices::new(Some(table)).is_err(), "{bad}");
        }
    }
}
