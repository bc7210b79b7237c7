//! The SMTP intake as an instance: which recipients it answers for, and the
//! normalization of a message the gateway's SMTP listener received.
//!
//! The listener speaks SMTP; this intake only decides, through its own
//! interface ([`MailIntake`]): an SMTP message is not an HTTP request.

use aduan_adapter::{Context, Outcome, Rejection};
use serde::Deserialize;

use crate::mime::{Envelope, MimeLimits, complaint_from_mime};

/// The SMTP envelope of one delivered message, as far as one instance is concerned.
#[derive(Clone, Copy, Debug)]
pub struct SmtpEnvelope<'a> {
    /// The reverse-path (`MAIL FROM`); empty for the null path `<>`.
    pub mail_from: &'a str,
    /// The one envelope recipient (`RCPT TO`) this instance answers for.
    pub recipient: &'a str,
}

/// What the gateway's SMTP listener asks of an email instance.
pub trait MailIntake: Send + Sync + 'static {
    /// Whether (and how well) this instance receives mail for `recipient`.
    /// The listener prefers an instance that lists the exact address over one
    /// that takes the recipient's whole domain.
    fn claims(&self, recipient: &str) -> Option<Match>;

    /// Normalizes one message delivered to `envelope.recipient`.
    fn parse_message(
        &self,
        message: &[u8],
        envelope: SmtpEnvelope<'_>,
        ctx: &Context<'_>,
    ) -> Result<Outcome, Rejection>;

    /// The largest message this instance takes.
    fn max_message_bytes(&self) -> usize;
}

/// `kind = "smtp"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Recipient addresses this instance receives, e.g. `["pengaduan@lapor.example.go.id"]`.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Recipient domains this instance receives whole, e.g. `["lapor.example.go.id"]`.
    /// An exact address of another instance wins over a domain.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Size and structure limits for each message.
    #[serde(default)]
    pub limits: MimeLimits,
}

/// An SMTP instance: the addresses and domains it answers for.
#[derive(Debug)]
pub struct SmtpIntake {
    addresses: Vec<String>,
    domains: Vec<String>,
    limits: MimeLimits,
}

/// How well a recipient matches an instance; exact addresses beat domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    Domain,
    Address,
}

impl SmtpIntake {
    /// Validates the configuration: at least one address or domain, each plausible.
    pub fn new(cfg: SmtpConfig) -> Result<Self, String> {
        if cfg.addresses.is_empty() && cfg.domains.is_empty() {
            return Err("list at least one of `addresses` or `domains`".into());
        }
        let mut addresses = Vec::new();
        for a in &cfg.addresses {
            let a = a.trim().to_ascii_lowercase();
            match a.split_once('@') {
                Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                    addresses.push(a)
                }
                _ => return Err(format!("`{a}` in `addresses` is not an email address")),
            }
        }
        let mut domains = Vec::new();
        for d in &cfg.domains {
            let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
            if d.is_empty() || d.contains('@') {
                return Err(format!("`{d}` in `domains` is not a domain"));
            }
            domains.push(d);
        }
        Ok(SmtpIntake {
            addresses,
            domains,
            limits: cfg.limits,
        })
    }

    /// Whether (and how well) `recipient` belongs to this instance.
    pub fn matches(&self, recipient: &str) -> Option<Match> {
        let r = recipient.trim().to_ascii_lowercase();
        if self.addresses.contains(&r) {
            return Some(Match::Address);
        }
        let domain = r.rsplit_once('@').map(|(_, d)| d)?;
        self.domains
            .iter()
            .any(|d| d == domain)
            .then_some(Match::Domain)
    }

    /// The limits messages to this instance must keep to.
    pub fn limits(&self) -> &MimeLimits {
        &self.limits
    }
}

impl MailIntake for SmtpIntake {
    fn claims(&self, recipient: &str) -> Option<Match> {
        self.matches(recipient)
    }

    fn parse_message(
        &self,
        message: &[u8],
        envelope: SmtpEnvelope<'_>,
        ctx: &Context<'_>,
    ) -> Result<Outcome, Rejection> {
        let envelope = Envelope {
            provider: "smtp",
            mail_from: Some(envelope.mail_from.to_string()),
            recipient: Some(envelope.recipient.to_string()),
        };
        Ok(complaint_from_mime(message, &envelope, ctx, &self.limits)?.into_outcome())
    }

    fn max_message_bytes(&self) -> usize {
        self.limits.max_message_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intake() -> SmtpIntake {
        SmtpIntake::new(SmtpConfig {
            addresses: vec!["Pengaduan@Lapor.Example.go.id".into()],
            domains: vec!["aduan.example.go.id".into()],
            limits: MimeLimits::default(),
        })
        .expect("valid")
    }

    #[test]
    fn recipients_match_by_address_or_domain() {
        let i = intake();
        assert_eq!(
            i.matches("pengaduan@lapor.example.go.id"),
            Some(Match::Address)
        );
        assert_eq!(
            i.matches("siapa.saja@ADUAN.example.go.id"),
            Some(Match::Domain)
        );
        assert_eq!(i.matches("lain@lapor.example.go.id"), None);
        assert_eq!(i.matches("tanpa-domain"), None);
    }

    #[test]
    fn configuration_needs_a_recipient() {
        let empty = SmtpConfig {
            addresses: vec![],
            domains: vec![],
            limits: MimeLimits::default(),
        };
        assert!(SmtpIntake::new(empty).is_err());
    }
}
