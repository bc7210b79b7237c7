//! Replies by email: one plain-text message per reply part, handed to the
//! instance's SMTP relay through lettre.
//!
//! The message answers the citizen's own: `In-Reply-To` names their
//! `Message-ID` and `References` carries the thread before it, so the reply
//! lands in the same conversation in their mail client. Each message gets a
//! `Message-ID` of our own, made from the reply's id and part number, so a
//! message sent again (a retry after an uncertain outcome) carries the same
//! id and mail clients can recognise it; that id, without angle brackets (the
//! form the email intake stores ids in), is the delivery's
//! `provider_message_id`.
//!
//! The relay's answer decides the outcome: a 4xx reply is temporary
//! (`smtp_451`, …), a 5xx reply permanent (`smtp_550`, …), both with the
//! relay's own words; a relay that cannot be reached, a failed TLS handshake
//! or a timeout is `network`. Credentials never appear in an error.

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aduan_adapter::{Outgoing, ReplyRoute, ReplySender, Secret, SendError, Sent};
use lettre::message::{Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, Error as SmtpError};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

/// The most characters one message carries: email replies are not split in
/// practice, this only bounds a runaway text.
pub const MAX_CHARS: usize = 100_000;

/// The subject of a reply when neither the reply nor the complaint has one.
pub const DEFAULT_SUBJECT: &str = "Re: Aduan Anda";

/// The most message ids in a `References` header: the thread's first and
/// the latest ones, as mail clients trim it.
const MAX_REFERENCES: usize = 20;

/// The longest relay answer kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// How the connection to the relay is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP upgraded by `STARTTLS`, which must be offered: without
    /// it nothing is sent (default port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (default port 465).
    Tls,
    /// No encryption at all (default port 25): only for a relay on the same
    /// host or a trusted private network. Credentials are refused with it
    /// unless the relay is on loopback, since they would cross in clear.
    None,
}

impl TlsMode {
    /// The port used when `relay_port` is not given.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        }
    }
}

fn default_timeout_seconds() -> u64 {
    30
}

/// The sending settings of an email instance (its `[instances.reply]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSendConfig {
    /// The relay's host name (or address), e.g. `smtp.pdam.example.id`; the
    /// relay's certificate must be valid for it.
    pub relay_host: String,
    /// Default by `tls`: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub relay_port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub tls: TlsMode,
    /// The relay login, as `env:NAME`, `file:/path` or a literal; with
    /// `password`, or neither for a relay that needs no login.
    #[serde(default)]
    pub username: Option<Secret>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The instance's own address, with or without a name:
    /// `"Layanan Aduan PDAM <aduan@pdam.example.id>"`. It is the `From` and
    /// the envelope sender.
    pub from: String,
    /// The right-hand side of our `Message-ID`s; default the `from` address's domain.
    #[serde(default)]
    pub message_id_domain: Option<String>,
    /// The name given in `EHLO`; default the `message_id_domain`.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// How long one step with the relay (connecting, each command, the
    /// message) may take; default 30. Keep it below the gateway's
    /// `send_timeout_ms`.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// A PEM file of certificates to trust besides the usual public roots,
    /// for a relay with a certificate of a private authority.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Accepts any certificate from the relay, even one that is expired,
    /// self-signed or for another name. Anyone between the gateway and the
    /// relay can then read the replies and the credentials: only for a test
    /// relay; prefer `ca_file`. Default false.
    #[serde(default)]
    pub accept_invalid_certs: bool,
}

/// Sends the replies of one email instance through its SMTP relay.
///
/// The transport keeps connections to the relay open between messages (a
/// small pool). It is made on the first send, inside the gateway's runtime.
pub struct EmailSender {
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    message_id_domain: String,
    relay: String,
    tls: TlsMode,
    /// The password, only to keep it out of error messages (a relay's
    /// answer may quote what it was given; the login, often the `from`
    /// address, is no secret).
    secrets: Vec<Secret>,
}

impl fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSender")
            .field("relay", &self.relay)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .field("message_id_domain", &self.message_id_domain)
            .finish_non_exhaustive()
    }
}

impl EmailSender {
    /// Checks the settings and prepares the transport; nothing connects yet.
    pub fn new(config: EmailSendConfig) -> Result<Self, String> {
        let host = config.relay_host.trim().to_string();
        if host.is_empty()
            || host.contains("://")
            || host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
            || (host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err())
        {
            return Err(format!(
                "relay_host `{}` must be a host name or address, without scheme or port",
                config.relay_host
            ));
        }
        let port = config
            .relay_port
            .unwrap_or_else(|| config.tls.default_port());
        if port == 0 {
            return Err("relay_port must not be 0".to_string());
        }
        let from: Mailbox = config
            .from
            .trim()
            .parse()
            .map_err(|e| format!("from `{}` is not a mailbox: {e}", config.from))?;
        let message_id_domain = match &config.message_id_domain {
            Some(d) => d.trim().to_ascii_lowercase(),
            None => from.email.domain().to_ascii_lowercase(),
        };
        if !is_domain(&message_id_domain) {
            return Err(format!(
                "message_id_domain `{message_id_domain}` must be an ASCII domain name \
                 (set message_id_domain when the from address's domain is not one)"
            ));
        }
        let hello_name = match &config.hello_name {
            Some(h) => h.trim().to_ascii_lowercase(),
            None => message_id_domain.clone(),
        };
        if !is_domain(&hello_name) {
            return Err(format!("hello_name `{hello_name}` must be a domain name"));
        }
        if !(1..=600).contains(&config.timeout_seconds) {
            return Err("timeout_seconds must be between 1 and 600".to_string());
        }
        let credentials = match (&config.username, &config.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (None, None) => None,
            _ => return Err("give both username and password, or neither".to_string()),
        };
        if config.tls == TlsMode::None {
            if credentials.is_some() && !is_loopback(&host) {
                return Err(format!(
                    "tls = \"none\" would send the credentials to {host} unencrypted; \
                     use starttls or tls"
                ));
            }
            if config.accept_invalid_certs || config.ca_file.is_some() {
                return Err(
                    "accept_invalid_certs and ca_file need tls = \"starttls\" or \"tls\""
                        .to_string(),
                );
            }
        }

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .hello_name(ClientId::Domain(hello_name))
            .timeout(Some(Duration::from_secs(config.timeout_seconds)));
        if config.tls != TlsMode::None {
            let mut params = TlsParameters::builder(host.clone())
                .dangerous_accept_invalid_certs(config.accept_invalid_certs);
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read ca_file {path}: {}", e.kind()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("ca_file {path} holds no usable PEM certificate: {e}"))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build()
                .map_err(|e| format!("TLS settings for {host}: {e}"))?;
            builder = builder.tls(match config.tls {
                TlsMode::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        } else {
            builder = builder.tls(Tls::None);
        }
        let mut secrets = Vec::new();
        if let Some((user, password)) = credentials {
            builder = builder.credentials(Credentials::new(
                user.expose().to_string(),
                password.expose().to_string(),
            ));
            secrets.push(password);
        }
        Ok(EmailSender {
            builder,
            transport: OnceLock::new(),
            from,
            message_id_domain,
            relay: format!("{host}:{port}"),
            tls: config.tls,
            secrets,
        })
    }

    /// Our `Message-ID` for `out`, without angle brackets:
    /// `<reply_id>.<part>@<domain>` when the reply id is 1 to 64 letters,
    /// digits, `-` and `_` (a ULID, a UUID), else
    /// `r.<32 hex digits of its SHA-256>.<part>@<domain>`. The same reply
    /// part always gets the same id.
    pub fn message_id(&self, out: &Outgoing<'_>) -> String {
        let id = out.reply_id;
        let safe = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if safe {
            format!("{id}.{}@{}", out.part, self.message_id_domain)
        } else {
            let digest = aduan_adapter::verify::sha256_hex(id.as_bytes());
            format!(
                "r.{}.{}@{}",
                &digest[..32],
                out.part,
                self.message_id_domain
            )
        }
    }

    /// The message for `out`, and our id for it; or why it cannot be sent.
    fn message(&self, out: &Outgoing<'_>) -> Result<(Message, String), SendError> {
        let route = out.route;
        let to: Address = route.to.trim().parse().map_err(|_| {
            SendError::permanent(
                "invalid_recipient",
                "the route's address is not an email address",
            )
        })?;
        let text = out
            .text
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| SendError::permanent("missing_text", "an email reply needs text"))?;
        let id = self.message_id(out);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(subject(out.subject, route.subject.as_deref()))
            .message_id(Some(format!("<{id}>")))
            .date(SystemTime::from(out.now.0));
        let parent = route.message_id.as_deref().filter(|m| is_message_id(m));
        if let Some(parent) = parent {
            builder = builder.in_reply_to(format!("<{parent}>"));
        }
        let references = references(&route.references, parent);
        if !references.is_empty() {
            builder = builder.references(references);
        }
        let message = builder
            .singlepart(SinglePart::plain(text.to_string()))
            .map_err(|e| SendError::permanent("invalid_message", e.to_string()))?;
        Ok((message, id))
    }

    fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        self.transport
            .get_or_init(|| self.builder.clone().build())
            .clone()
    }

    /// `message` made fit for an error: without the password, on one line, short.
    fn clean(&self, message: &str) -> String {
        let mut m: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        for secret in self.secrets.iter().filter(|s| !s.expose().is_empty()) {
            m = m.replace(secret.expose(), "***");
        }
        truncate(m.trim(), MAX_MESSAGE_CHARS)
    }

    /// What a failure of lettre's means.
    fn classify(&self, e: &SmtpError) -> SendError {
        let detail = self.clean(&root_cause(e));
        if let Some(code) = e.status() {
            let message = format!("{code} {detail}").trim().to_string();
            return if e.is_permanent() {
                SendError::permanent(format!("smtp_{code}"), message)
            } else {
                SendError::temporary(format!("smtp_{code}"), message, None)
            };
        }
        let with = |what: &str| {
            if detail.is_empty() {
                format!("{what} {}", self.relay)
            } else {
                format!("{what} {}: {detail}", self.relay)
            }
        };
        if e.is_timeout() {
            SendError::network(format!(
                "timed out talking to the SMTP relay {}",
                self.relay
            ))
        } else if is_tls(e) {
            SendError::network(with("TLS failed with the SMTP relay"))
        } else if e.is_client() {
            // The relay lacks what the message or the settings need
            // (STARTTLS, an AUTH mechanism, 8BITMIME): it may be fixed there.
            SendError::temporary("smtp_unsupported", with("the SMTP relay"), None)
        } else if e.is_response() {
            SendError::temporary(
                "smtp_response",
                with("unreadable answer from the SMTP relay"),
                None,
            )
        } else {
            SendError::network(with("could not talk to the SMTP relay"))
        }
    }
}

/// The description of the innermost cause of `e`: the relay's own words for
/// a refusal, the operating system's or the TLS library's for a failure.
fn root_cause(e: &SmtpError) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if std::ptr::addr_eq(cause, e) {
        return String::new();
    }
    cause.to_string()
}

/// Whether `e` is a TLS failure: lettre's own, or rustls's inside a
/// connection error (a certificate that is not trusted, a failed handshake).
fn is_tls(e: &SmtpError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<SmtpError>().is_some_and(SmtpError::is_tls)
            || c.downcast_ref::<tokio_rustls::rustls::Error>().is_some()
            || c.downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>())
        {
            return true;
        }
        cause = c.source();
    }
    false
}

impl Drop for EmailSender {
    fn drop(&mut self) {
        // The pool closes its connections on a task of the runtime; without
        // one (the sender outlived it) they are left to the process's end.
        if let Some(transport) = self.transport.take()
            && tokio::runtime::Handle::try_current().is_err()
        {
            std::mem::forget(transport);
        }
    }
}

#[async_trait::async_trait]
impl ReplySender for EmailSender {
    fn max_chars(&self, _route: &ReplyRoute) -> usize {
        MAX_CHARS
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, SendError> {
        let (message, id) = self.message(out)?;
        let transport = self.transport();
        // The SMTP dialogue runs on its own task: a caller that stops waiting
        // must not cut it mid-command, or the pooled connection would go
        // back to the pool out of step with the relay.
        let result = tokio::spawn(async move { transport.send(message).await })
            .await
            .map_err(|_| SendError::network("the SMTP send was interrupted"))?;
        match result {
            Ok(_) => Ok(Sent::new(id)),
            Err(e) => Err(self.classify(&e)),
        }
    }
}

/// The subject of a reply: the reply's own; else `Re: ` and the
/// complaint's, unless that already starts with `Re:` or `Aw:` (any case);
/// else [`DEFAULT_SUBJECT`]. Line breaks become spaces.
pub fn subject(own: Option<&str>, complaint: Option<&str>) -> String {
    let one_line = |s: &str| {
        s.split(['\r', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    if let Some(own) = own.map(one_line).filter(|s| !s.is_empty()) {
        return own;
    }
    match complaint.map(one_line).filter(|s| !s.is_empty()) {
        Some(s) => {
            let head = s.get(..3).map(str::to_ascii_lowercase);
            if matches!(head.as_deref(), Some("re:" | "aw:")) {
                s
            } else {
                format!("Re: {s}")
            }
        }
        None => DEFAULT_SUBJECT.to_string(),
    }
}

/// The `References` value: the thread's ids and the citizen's message, each
/// in angle brackets, separated by spaces; `""` when there are none.
fn references(thread: &[String], parent: Option<&str>) -> String {
    let mut ids: Vec<&str> = thread
        .iter()
        .map(|r| r.trim().trim_start_matches('<').trim_end_matches('>'))
        .filter(|r| is_message_id(r))
        .collect();
    if let Some(parent) = parent
        && ids.last() != Some(&parent)
    {
        ids.push(parent);
    }
    if ids.len() > MAX_REFERENCES {
        let tail = ids.split_off(ids.len() - (MAX_REFERENCES - 1));
        ids.truncate(1);
        ids.extend(tail);
    }
    ids.iter()
        .map(|id| format!("<{id}>"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A message id, as stored without brackets, that can go into a header as
/// is: printable ASCII without spaces or brackets, of a sane length.
fn is_message_id(id: &str) -> bool {
    (1..=250).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// An ASCII domain name: labels of letters, digits and `-`, joined by dots.
fn is_domain(d: &str) -> bool {
    (1..=253).contains(&d.len())
        && d.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert_eq!(
            subject(Some("Tindak lanjut aduan"), Some("Air mati")),
            "Tindak lanjut aduan"
        );
        assert_eq!(subject(None, Some("Air mati")), "Re: Air mati");
        assert_eq!(subject(Some("  "), Some("Air mati")), "Re: Air mati");
        assert_eq!(subject(None, Some("RE: Air mati")), "RE: Air mati");
        assert_eq!(subject(None, Some("re:Air mati")), "re:Air mati");
        assert_eq!(subject(None, Some("Aw: Wasser")), "Aw: Wasser");
        assert_eq!(subject(None, Some("Reklame liar")), "Re: Reklame liar");
        assert_eq!(subject(None, Some("Jalan\r\n rusak")), "Re: Jalan rusak");
        assert_eq!(subject(None, None), DEFAULT_SUBJECT);
        assert_eq!(subject(None, Some(" ")), DEFAULT_SUBJECT);
        assert_eq!(subject(None, Some("é")), "Re: é");
    }

    #[test]
    fn references_end_with_the_parent_once() {
        let thread = vec!["a@x.example.id".to_string(), "<b@x.example.id>".to_string()];
        assert_eq!(
            references(&thread, Some("c@x.example.id")),
            "<a@x.example.id> <b@x.example.id> <c@x.example.id>"
        );
        assert_eq!(
            references(&thread, Some("b@x.example.id")),
            "<a@x.example.id> <b@x.example.id>"
        );
        assert_eq!(references(&[], Some("c@x")), "<c@x>");
        assert_eq!(references(&[], None), "");
        let bad = vec![
            "a b@x".to_string(),
            "ok@x".to_string(),
            "\r\nX: y".to_string(),
        ];
        assert_eq!(references(&bad, None), "<ok@x>");
    }

    #[test]
    fn long_threads_keep_the_first_and_the_latest() {
        let thread: Vec<String> = (0..30).map(|i| format!("m{i}@x")).collect();
        let refs = references(&thread, Some("p@x"));
        let ids: Vec<&str> = refs.split(' ').collect();
        assert_eq!(ids.len(), MAX_REFERENCES);
        assert_eq!(ids[0], "<m0@x>");
        assert_eq!(ids[1], "<m12@x>");
        assert_eq!(ids[MAX_REFERENCES - 1], "<p@x>");
    }

    #[test]
    fn errors_never_carry_the_password() {
        let sender = EmailSender::new(EmailSendConfig {
            relay_host: "smtp.pdam.example.id".to_string(),
            relay_port: None,
            tls: TlsMode::Starttls,
            username: Some(Secret::literal("aduan@pdam.example.id")),
            password: Some(Secret::literal("Rahasia-Relay-77")),
            from: "aduan@pdam.example.id".to_string(),
            message_id_domain: None,
            hello_name: None,
            timeout_seconds: 30,
            ca_file: None,
            accept_invalid_certs: false,
        })
        .expect("sender");
        assert_eq!(
            sender.clean("535 bad login aduan@pdam.example.id/Rahasia-Relay-77\r\nlagi"),
            "535 bad login aduan@pdam.example.id/***  lagi"
        );
        assert!(!format!("{sender:?}").contains("Rahasia"));
    }

    #[test]
    fn domains_and_loopback() {
        assert!(is_domain("pdam.example.id"));
        assert!(!is_domain("pdam..example.id"));
        assert!(!is_domain("-pdam.example.id"));
        assert!(!is_domain("pdam.example.id>"));
        assert!(!is_domain("pdäm.example.id"));
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("LOCALHOST"));
        assert!(!is_loopback("smtp.example.id"));
    }
}
