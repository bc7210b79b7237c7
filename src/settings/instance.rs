//! `[[instances]]`: the name, kind and own keys of each channel instance, as
//! data. What each kind's keys mean is its channel crate's business; they are
//! handed over untouched when the instance is built.

use std::collections::HashSet;
use std::fmt;

use super::ConfigError;

/// Every kind of instance the gateway can run. Closed: building an instance
/// is one `match` on this (in the `instances` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstanceKind {
    Transcript,
    Whatsapp,
    Messenger,
    Instagram,
    Telegram,
    X,
    Twilio,
    Vonage,
    Infobip,
    Sms,
    Mailgun,
    Sendgrid,
    Postmark,
    Smtp,
    Imap,
    Open311,
}

impl InstanceKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [InstanceKind; 16] = [
        InstanceKind::Transcript,
        InstanceKind::Whatsapp,
        InstanceKind::Messenger,
        InstanceKind::Instagram,
        InstanceKind::Telegram,
        InstanceKind::X,
        InstanceKind::Twilio,
        InstanceKind::Vonage,
        InstanceKind::Infobip,
        InstanceKind::Sms,
        InstanceKind::Mailgun,
        InstanceKind::Sendgrid,
        InstanceKind::Postmark,
        InstanceKind::Smtp,
        InstanceKind::Imap,
        InstanceKind::Open311,
    ];

    /// The name written in `kind = "…"`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceKind::Transcript => "transcript",
            InstanceKind::Whatsapp => "whatsapp",
            InstanceKind::Messenger => "messenger",
            InstanceKind::Instagram => "instagram",
            InstanceKind::Telegram => "telegram",
            InstanceKind::X => "x",
            InstanceKind::Twilio => "twilio",
            InstanceKind::Vonage => "vonage",
            InstanceKind::Infobip => "infobip",
            InstanceKind::Sms => "sms",
            InstanceKind::Mailgun => "mailgun",
            InstanceKind::Sendgrid => "sendgrid",
            InstanceKind::Postmark => "postmark",
            InstanceKind::Smtp => "smtp",
            InstanceKind::Imap => "imap",
            InstanceKind::Open311 => "open311",
        }
    }

    /// The kind named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<InstanceKind> {
        InstanceKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for InstanceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[instances]]` table: what every instance has, and the rest of its
/// keys for its channel crate to read.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    /// Unique name, `[a-z0-9-]+`.
    pub name: String,
    pub kind: InstanceKind,
    /// Keep the exact bytes received in `raw`. Default true.
    pub keep_raw: bool,
    /// Where it is written, for messages: `instances[2] "wa-jabar" (aduan.toml:40)`.
    pub location: String,
    /// `[instances.reply]`, when the instance answers citizens.
    pub reply: Option<toml::Table>,
    /// `[instances.ack]`, when complaints are acknowledged automatically.
    pub ack: Option<toml::Table>,
    /// `[instances.media]`: how attachments are fetched.
    pub media: Option<toml::Table>,
    /// `[instances.status]`: how citizens are told of a new status.
    pub status: Option<toml::Table>,
    /// The instance's own keys (everything but `name`, `kind`, `keep_raw` and `reply`).
    pub table: toml::Table,
}

impl InstanceSettings {
    /// Reads the `index`th table; `line` is ` (file:line)` or empty. Problems
    /// go to `errors`; `None` when the table cannot stand for an instance.
    pub(super) fn parse(
        index: usize,
        line: &str,
        value: toml::Value,
        names: &mut HashSet<String>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<InstanceSettings> {
        let mut location = format!("instances[{index}]{line}");
        let mut problem = |location: &str, message: String| {
            errors.push(ConfigError {
                location: location.to_string(),
                message,
            })
        };
        let toml::Value::Table(mut table) = value else {
            problem(&location, "must be a table".into());
            return None;
        };
        let name = match table.remove("name") {
            Some(toml::Value::String(n)) => n,
            Some(_) => {
                problem(&location, "`name` must be a string".into());
                return None;
            }
            None => {
                problem(&location, "missing `name`".into());
                return None;
            }
        };
        location = format!("instances[{index}] \"{name}\"{line}");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            problem(&location, "`name` must match [a-z0-9-]+".into());
        }
        if !names.insert(name.clone()) {
            problem(&location, format!("duplicate instance name `{name}`"));
        }
        let kind = match table.remove("kind") {
            Some(toml::Value::String(k)) => match InstanceKind::from_name(&k) {
                Some(kind) => kind,
                None => {
                    let known: Vec<&str> = InstanceKind::ALL.iter().map(|k| k.as_str()).collect();
                    problem(
                        &location,
                        format!("unknown kind `{k}`, expected one of: {}", known.join(", ")),
                    );
                    return None;
                }
            },
            _ => {
                problem(&location, "missing or non-string `kind`".into());
                return None;
            }
        };
        let keep_raw = match table.remove("keep_raw") {
            None => true,
            Some(toml::Value::Boolean(b)) => b,
            Some(_) => {
                problem(&location, "`keep_raw` must be true or false".into());
                true
            }
        };
        let mut sub_table = |key: &str| match table.remove(key) {
            None => None,
            Some(toml::Value::Table(t)) => Some(t),
            Some(_) => {
                problem(
                    &location,
                    format!("`{key}` must be a table ([instances.{key}])"),
                );
                None
            }
        };
        let reply = sub_table("reply");
        let ack = sub_table("ack");
        let media = sub_table("media");
        let status = sub_table("status");
        Some(InstanceSettings {
            name,
            kind,
            keep_raw,
            location,
            reply,
            ack,
            media,
            status,
            table,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::InstanceKind;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in InstanceKind::ALL {
            assert_eq!(InstanceKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(InstanceKind::from_name("fax"), None);
    }
}
