//! The SMTP intake as an instance: which recipients it answers for, and the
//! normalization of a message the gateway's SMTP listener received.
//!
//! The listener speaks SMTP; this adapter only decides. It hands the envelope
//! over in two request headers that exist only between the listener and the
//! adapter (an SMTP instance has no HTTP route, so no client can set them).

use aduan_adapter::{Adapter, Context, Outcome, Rejection, Request};
use serde::Deserialize;

use crate::mime::{Envelope, MimeLimits, complaint_from_mime};

/// Carries the SMTP reverse-path (`MAIL FROM`); empty for the null path `<>`.
pub const MAIL_FROM_HEADER: &str = "x-aduan-smtp-mail-from";
/// Carries the one envelope recipient (`RCPT TO`) this instance answers for.
pub const RCPT_TO_HEADER: &str = "x-aduan-smtp-rcpt-to";
/// With the value `address`, `verify` accepts exact addresses only. The
/// listener asks every instance this first, so that an address listed by one
/// instance wins over another instance's whole domain.
pub const MATCH_HEADER: &str = "x-aduan-smtp-match";

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

impl Adapter for SmtpIntake {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        let exact_only = req.header(MATCH_HEADER) == Some("address");
        match req.header(RCPT_TO_HEADER).and_then(|r| self.matches(r)) {
            Some(Match::Address) => Ok(()),
            Some(Match::Domain) if !exact_only => Ok(()),
            _ => Err(Rejection::Forbidden(
                "recipient not served by this instance",
            )),
        }
    }

    fn parse(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        let envelope = Envelope {
            provider: "smtp",
            mail_from: req.header(MAIL_FROM_HEADER).map(str::to_string),
            recipient: req.header(RCPT_TO_HEADER).map(str::to_string),
        };
        Ok(complaint_from_mime(req.body, &envelope, ctx, &self.limits)?.into_outcome())
    }

    fn max_body_bytes(&self) -> Option<usize> {
        Some(self.limits.max_message_bytes)
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
