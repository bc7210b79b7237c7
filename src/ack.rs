//! The automatic acknowledgement: the first answer a citizen gets, queued
//! inside the same atomic append as their complaint (`[instances.ack]`).
//!
//! Its text is a template with `{tracking}`, `{channel}`, `{received_at}`
//! (local time in the configured zone) and `{name}`. The tracking number
//! is written in by the append script itself, which picks it: the text is
//! rendered here with the first candidate, and the script swaps in the one
//! it took when that was already held.

use aduan_adapter::{Channel, Complaint};
use serde::Deserialize;

/// The Indonesian default, one GSM-7 SMS with the longest tracking number.
pub const DEFAULT_TEXT: &str = "Terima kasih, aduan Anda telah kami terima dengan nomor {tracking} \
pada {received_at}. Simpan nomor ini untuk menanyakan perkembangannya.";

/// The reply id of a complaint's acknowledgement; `ack:` is reserved for these.
pub fn reply_id(complaint_id: &str) -> String {
    format!("ack:{complaint_id}")
}

/// Whether `reply_id` is an acknowledgement's.
pub fn is_ack(reply_id: &str) -> bool {
    reply_id.starts_with("ack:")
}

/// `[instances.ack]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AckSettings {
    /// The template. Default [`DEFAULT_TEXT`].
    pub text: String,
    /// The zone `{received_at}` is shown in. Default `Asia/Jakarta` (WIB).
    pub time_zone: String,
    /// Send again when a replica died between the send and its record
    /// (a second "received" message beats none). Default true.
    pub resend_on_uncertain: bool,
}

impl Default for AckSettings {
    fn default() -> Self {
        AckSettings {
            text: DEFAULT_TEXT.into(),
            time_zone: "Asia/Jakarta".into(),
            resend_on_uncertain: true,
        }
    }
}

/// A built acknowledgement.
#[derive(Debug, Clone)]
pub struct Ack {
    text: String,
    zone: chrono_tz::Tz,
    pub resend_on_uncertain: bool,
}

const VARIABLES: [&str; 4] = ["tracking", "channel", "received_at", "name"];

impl Ack {
    pub fn new(table: toml::Table) -> Result<Ack, String> {
        let s = AckSettings::deserialize(toml::Value::Table(table))
            .map_err(|e| format!("ack: {}", e.message()))?;
        let zone: chrono_tz::Tz = s
            .time_zone
            .parse()
            .map_err(|_| format!("ack.time_zone: unknown zone `{}`", s.time_zone))?;
        // Every `{…}` must be a known variable: a typo would reach citizens.
        let mut rest = s.text.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                return Err("ack.text: `{` without `}`".into());
            };
            let name = &rest[open + 1..open + close];
            if !VARIABLES.contains(&name) {
                return Err(format!(
                    "ack.text: unknown variable `{{{name}}}`, expected one of: {}",
                    VARIABLES.join(", ")
                ));
            }
            rest = &rest[open + close + 1..];
        }
        if s.text.trim().is_empty() {
            return Err("ack.text must not be empty".into());
        }
        Ok(Ack {
            text: s.text,
            zone,
            resend_on_uncertain: s.resend_on_uncertain,
        })
    }

    /// The text for `c` with tracking number `tracking`.
    pub fn render(&self, c: &Complaint, tracking: &str) -> String {
        let local = c.received_at.0.with_timezone(&self.zone);
        let when = local.format("%d-%m-%Y %H:%M %Z").to_string();
        self.text
            .replace("{tracking}", tracking)
            .replace("{channel}", channel_name(c.channel))
            .replace("{received_at}", &when)
            .replace("{name}", c.sender.name.as_deref().unwrap_or(""))
    }

    /// The outbound entry's `reply` JSON for `c`.
    pub fn reply_json(&self, c: &Complaint, tracking: &str) -> String {
        serde_json::json!({
            "schema": aduan_adapter::REPLY_SCHEMA,
            "reply_id": reply_id(&c.id),
            "complaint_id": c.id,
            "text": self.render(c, tracking),
        })
        .to_string()
    }
}

/// How a channel is called in a message to the citizen.
fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Whatsapp => "WhatsApp",
        Channel::Telegram => "Telegram",
        Channel::Sms => "SMS",
        Channel::Email => "email",
        Channel::Facebook => "Facebook",
        Channel::Instagram => "Instagram",
        Channel::X => "X",
        Channel::CallCenter => "call center",
        Channel::Web => "web",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complaint() -> Complaint {
        let ctx = aduan_adapter::Context {
            instance: "sms-jabar",
            received_at: aduan_adapter::Timestamp::parse_rfc3339("2026-12-02T07:05:00Z")
                .expect("time"),
            keep_raw: false,
        };
        let mut c = Complaint::new(&ctx, Channel::Sms, "twilio", "SM1", "tel:+6281234567890");
        c.id = "01JD8Z5K3M9QX2ABCDEFGHJKMN".into();
        c.sender.name = Some("Dewi Lestari".into());
        c
    }

    #[test]
    fn the_default_is_one_plain_sms_in_local_time() {
        let ack = Ack::new(toml::Table::new()).expect("default");
        let text = ack.render(&complaint(), "ADU-7K3M-9QX2-ABCD-EFGH");
        assert!(text.contains("ADU-7K3M-9QX2-ABCD-EFGH"));
        assert!(text.contains("02-12-2026 14:05 WIB"), "{text}");
        assert!(
            text.chars().count() <= 160,
            "{} characters",
            text.chars().count()
        );
        assert!(text.is_ascii());
    }

    #[test]
    fn variables_are_filled_and_typos_refused() {
        let mut t = toml::Table::new();
        t.insert("text".into(), "{name} via {channel}: {tracking}".into());
        t.insert("time_zone".into(), "Asia/Seoul".into());
        let ack = Ack::new(t).expect("valid");
        assert_eq!(ack.render(&complaint(), "X-1"), "Dewi Lestari via SMS: X-1");
        let mut bad = toml::Table::new();
        bad.insert("text".into(), "nomor {trackng}".into());
        assert!(Ack::new(bad).unwrap_err().contains("trackng"));
        let mut zone = toml::Table::new();
        zone.insert("time_zone".into(), "Asia/Bandung".into());
        assert!(Ack::new(zone).is_err());
    }
}
