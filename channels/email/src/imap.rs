//! The IMAP mailbox poller (`kind = "imap"`): one mailbox per instance.
//!
//! One replica at a time polls a mailbox (a lease through the host). New
//! messages are found by UID above the cursor, which is stored through the
//! host as `<UIDVALIDITY>:<last UID>`, and are read without being marked
//! (`BODY.PEEK[]`). Each message goes through the shared MIME path. Then its
//! attachments are stored and its complaint is published, and only after that
//! is it flagged `\Seen` (or moved) and the cursor advanced. A crash anywhere
//! in between repeats the message at worst, and the dedup on `Message-ID`
//! makes the repeat write nothing. Between rounds the poller waits in `IDLE`
//! where the server offers it, and polls otherwise. Any failure closes the
//! connection and reconnects with exponential backoff.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Context, Host, Poller, Secret, Shutdown};
use futures_util::TryStreamExt as _;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::mime::{Envelope, MimeLimits, MimeOutcome, complaint_from_mime};

/// How the connection is secured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS, port 993).
    #[default]
    Implicit,
    /// No TLS at all: only for a server on the same host or a test.
    None,
}

/// `kind = "imap"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    /// The IMAP server's host name (also the TLS server name).
    pub host: String,
    /// The server's port. Default 993 with TLS, 143 without.
    pub port: Option<u16>,
    /// `implicit` (default) or `none`.
    #[serde(default)]
    pub tls: TlsMode,
    /// A PEM file of extra certificates to trust, beside the public roots (an
    /// internal CA, or a test server's own certificate).
    pub ca_file: Option<PathBuf>,
    /// Login name.
    pub username: String,
    /// Password. Use `env:` or `file:`.
    pub password: Secret,
    /// The mailbox to read. Default `INBOX`.
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    /// Move each accepted message to this mailbox instead of flagging it `\Seen`.
    pub move_to: Option<String>,
    /// The address this mailbox receives, used as `recipient`. IMAP has no
    /// envelope, so without it `recipient` is the message's first `To`.
    pub address: Option<String>,
    /// Seconds between checks when the server has no `IDLE`, and the longest
    /// wait in `IDLE` before checking again. Default 30.
    #[serde(default = "default_poll")]
    pub poll_interval_seconds: u64,
    /// Use `IDLE` when the server offers it. Default true.
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Most messages read per round. Default 50.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Size and structure limits for each message.
    #[serde(default)]
    pub limits: MimeLimits,
}

fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_poll() -> u64 {
    30
}
fn default_true() -> bool {
    true
}
fn default_batch() -> usize {
    50
}

/// The poller for one mailbox.
pub struct ImapPoller {
    instance: String,
    keep_raw: bool,
    cfg: ImapConfig,
    tls: Option<(
        tokio_rustls::TlsConnector,
        tokio_rustls::rustls::pki_types::ServerName<'static>,
    )>,
}

impl ImapPoller {
    /// Validates the configuration and prepares TLS.
    pub fn new(instance: &str, keep_raw: bool, cfg: ImapConfig) -> Result<Self, String> {
        if cfg.host.trim().is_empty() {
            return Err("`host` must not be empty".into());
        }
        if cfg.poll_interval_seconds == 0 || cfg.batch_size == 0 {
            return Err("`poll_interval_seconds` and `batch_size` must be positive".into());
        }
        if cfg.mailbox.is_empty() || cfg.move_to.as_deref() == Some(cfg.mailbox.as_str()) {
            return Err("`mailbox` must be set and differ from `move_to`".into());
        }
        let tls = match cfg.tls {
            TlsMode::None => None,
            TlsMode::Implicit => Some(tls_connector(&cfg)?),
        };
        Ok(ImapPoller {
            instance: instance.to_string(),
            keep_raw,
            cfg,
            tls,
        })
    }

    /// The instance this poller serves.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn port(&self) -> u16 {
        self.cfg.port.unwrap_or(match self.cfg.tls {
            TlsMode::Implicit => 993,
            TlsMode::None => 143,
        })
    }

    fn lease_name(&self) -> String {
        format!("imap:{}", self.instance)
    }
}

fn tls_connector(
    cfg: &ImapConfig,
) -> Result<
    (
        tokio_rustls::TlsConnector,
        tokio_rustls::rustls::pki_types::ServerName<'static>,
    ),
    String,
> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &cfg.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(cfg.host.clone())
        .map_err(|_| format!("`{}` is not a valid TLS server name", cfg.host))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

/// TCP or TLS, as the session sees it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

type Session = async_imap::Session<Box<dyn Io>>;

/// Why a round stopped: the connection is dropped and retried after a backoff.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("imap: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Host(#[from] aduan_adapter::HostError),
    #[error("{0}")]
    Other(String),
}

/// The lease outlives a round by a margin; rounds renew it.
const LEASE_TTL: Duration = Duration::from_secs(90);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl Poller for ImapPoller {
    fn run(
        self: Box<Self>,
        host: Arc<dyn Host>,
        shutdown: Shutdown,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let poller = *self;
            let mut backoff = Duration::from_secs(1);
            while !shutdown.is_cancelled() {
                match host.lease(&poller.lease_name(), LEASE_TTL).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // Another replica polls this mailbox; check again later.
                        sleep_or_shutdown(LEASE_TTL / 3, &shutdown).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(instance = %poller.instance, error = %e, "imap lease unavailable");
                        sleep_or_shutdown(backoff, &shutdown).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
                match poller.connected(&*host, &shutdown, &mut backoff).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(instance = %poller.instance, error = %e, retry_in = ?backoff, "imap session failed");
                        sleep_or_shutdown(backoff, &shutdown).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            let _ = host.release(&poller.lease_name()).await;
        })
    }
}

async fn sleep_or_shutdown(d: Duration, shutdown: &Shutdown) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.cancelled() => {}
    }
}

impl ImapPoller {
    async fn connect(&self) -> Result<Session, RoundError> {
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((self.cfg.host.as_str(), self.port())),
        )
        .await
        .map_err(|_| RoundError::Other("connect timed out".into()))??;
        let stream: Box<dyn Io> = match &self.tls {
            Some((connector, name)) => Box::new(
                tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| RoundError::Other("TLS handshake timed out".into()))??,
            ),
            None => Box::new(tcp),
        };
        let mut client = async_imap::Client::new(stream);
        // The server speaks first.
        client
            .read_response()
            .await?
            .ok_or_else(|| RoundError::Other("server closed before greeting".into()))?;
        let session = client
            .login(&self.cfg.username, self.cfg.password.expose())
            .await
            .map_err(|(e, _)| e)?;
        Ok(session)
    }

    /// One connection's life: rounds of fetching, waiting in between, until
    /// shutdown (`Ok`) or a failure (`Err`, to reconnect).
    async fn connected(
        &self,
        host: &dyn Host,
        shutdown: &Shutdown,
        backoff: &mut Duration,
    ) -> Result<(), RoundError> {
        let mut session = self.connect().await?;
        let can_idle = self.cfg.idle && session.capabilities().await?.has_str("IDLE");
        let mailbox = session.select(&self.cfg.mailbox).await?;
        let validity = mailbox
            .uid_validity
            .ok_or_else(|| RoundError::Other("server gave no UIDVALIDITY".into()))?;
        let wait = Duration::from_secs(self.cfg.poll_interval_seconds).min(LEASE_TTL / 3);
        tracing::info!(instance = %self.instance, idle = can_idle, "imap mailbox open");
        loop {
            if !host.lease(&self.lease_name(), LEASE_TTL).await? {
                let _ = session.logout().await;
                return Ok(());
            }
            let more = self.round(&mut session, host, validity).await?;
            *backoff = Duration::from_secs(1);
            if shutdown.is_cancelled() {
                let _ = session.logout().await;
                return Ok(());
            }
            if more {
                continue;
            }
            if can_idle {
                let mut idle = session.idle();
                idle.init().await?;
                let (wait_fut, stop) = idle.wait_with_timeout(wait);
                tokio::select! {
                    r = wait_fut => { r?; }
                    _ = shutdown.cancelled() => {}
                }
                drop(stop);
                session = idle.done().await?;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => {}
                }
                // Keeps the connection alive and lets the server report new mail.
                session.noop().await?;
            }
            if shutdown.is_cancelled() {
                let _ = session.logout().await;
                return Ok(());
            }
        }
    }

    /// Reads, publishes and marks new messages. True when more are waiting
    /// than one batch took.
    async fn round(
        &self,
        session: &mut Session,
        host: &dyn Host,
        validity: u32,
    ) -> Result<bool, RoundError> {
        let cursor_name = format!("imap:{}", self.instance);
        let last = match host.load_cursor(&cursor_name).await? {
            Some(c) => match c.split_once(':') {
                Some((v, uid)) if v == validity.to_string() => uid.parse::<u32>().unwrap_or(0),
                // A new UIDVALIDITY renumbers the mailbox: start over; \Seen and
                // the dedup keep what was already taken from being written twice.
                _ => 0,
            },
            None => 0,
        };
        let query = match self.cfg.move_to {
            Some(_) => format!("UID {}:*", last.saturating_add(1)),
            None => format!("UID {}:* UNSEEN", last.saturating_add(1)),
        };
        let found: HashSet<u32> = session.uid_search(&query).await?;
        // `n:*` always matches the highest UID, even when it is below n.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > last).collect();
        uids.sort_unstable();
        let more = uids.len() > self.cfg.batch_size;
        uids.truncate(self.cfg.batch_size);
        for uid in uids {
            self.take(session, host, uid).await?;
            host.store_cursor(&cursor_name, &format!("{validity}:{uid}"))
                .await?;
        }
        Ok(more)
    }

    /// One message: fetch, normalize, store, publish, then mark.
    async fn take(
        &self,
        session: &mut Session,
        host: &dyn Host,
        uid: u32,
    ) -> Result<(), RoundError> {
        let fetches: Vec<_> = session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
            .await?
            .try_collect()
            .await?;
        let Some(body) = fetches.iter().find_map(|f| f.body()) else {
            // Expunged meanwhile: nothing to take.
            return Ok(());
        };
        let envelope = Envelope {
            provider: "imap",
            mail_from: None,
            recipient: self.cfg.address.clone(),
        };
        let ctx = Context {
            instance: &self.instance,
            received_at: host.now(),
            keep_raw: self.keep_raw,
        };
        match complaint_from_mime(body, &envelope, &ctx, &self.cfg.limits) {
            Ok(MimeOutcome::Complaint { complaint, blobs }) => {
                host.accept(aduan_adapter::Outcome::AcceptWithBlobs {
                    complaints: vec![*complaint],
                    ignored: Vec::new(),
                    blobs,
                })
                .await?;
            }
            Ok(MimeOutcome::Ignored(reason)) => host.ignored(&self.instance, reason),
            Err(rejection) => {
                // Left unread in the mailbox for a person to look at; the
                // cursor moves past it so it does not stop the messages after it.
                tracing::warn!(instance = %self.instance, uid, reason = rejection.reason(), "imap message refused");
                host.ignored(&self.instance, rejection.reason());
                return Ok(());
            }
        }
        match &self.cfg.move_to {
            Some(folder) => session.uid_mv(uid.to_string(), folder).await?,
            None => {
                let _: Vec<_> = session
                    .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                    .await?
                    .try_collect()
                    .await?;
            }
        }
        Ok(())
    }
}
