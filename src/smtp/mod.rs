//! The SMTP listener: ESMTP with `SIZE`, `8BITMIME`, `PIPELINING`,
//! `ENHANCEDSTATUSCODES` and `STARTTLS` (unless turned off), for the
//! `kind = "smtp"` instances.
//!
//! The listener speaks the protocol and enforces its limits; the instances
//! (`aduan_email::MailIntake`) decide which recipients they serve and turn a
//! message into a complaint, which goes through the ingest service. A message is answered `250` only once its
//! attachments are on disk and its complaint is durably accepted; any
//! temporary failure is `451` so the sending server keeps it and retries, and
//! the dedup on `Message-ID` makes the retry write nothing new.
//!
//! - `session`: one client's session, command by command.
//! - [`tls`]: the certificate of `STARTTLS`, configured or self-signed and kept.

mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Context, Outcome, Rejection, Timestamp};
use aduan_email::{Match, SmtpEnvelope};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::connections::{Connections, Policy, Tracked};
use crate::ingest::{Door, Ingest, IngestError};
use crate::instances::{Instance, Intake};
use crate::settings::SmtpListenerConfig;
use session::Session;

/// A running listener.
pub struct SmtpHandle {
    pub addr: SocketAddr,
    pub done: tokio::task::JoinHandle<()>,
}

/// Binds and starts the listener when any `kind = "smtp"` instance exists.
pub async fn start(
    cfg: &SmtpListenerConfig,
    instances: &[Arc<Instance>],
    ingest: Arc<Ingest>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<SmtpHandle>> {
    let smtp: Vec<Arc<Instance>> = instances
        .iter()
        .filter(|i| matches!(i.intake, Intake::Mail(_)))
        .cloned()
        .collect();
    if smtp.is_empty() {
        return Ok(None);
    }
    let tls = tls::acceptor(cfg)?;
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let server = Arc::new(Server {
        cfg: cfg.clone(),
        tls,
        instances: smtp,
        ingest,
        sessions: Connections::new(Policy {
            label: "smtp",
            max: cfg.max_sessions.max(1),
            // The server speaks first; a session's silence is bounded by
            // its own idle timeout, with a 421 to say so.
            first_byte: None,
            idle: None,
        }),
    });
    tracing::info!(%addr, starttls = server.tls.is_some(), "smtp listening");
    let done = tokio::spawn(server.serve(listener, shutdown));
    Ok(Some(SmtpHandle { addr, done }))
}

struct Server {
    cfg: SmtpListenerConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    instances: Vec<Arc<Instance>>,
    ingest: Arc<Ingest>,
    /// Open sessions: at `max_sessions` the one idle longest makes room.
    sessions: Connections,
}

impl Server {
    async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let mut sessions = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            let (mut socket, _peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "smtp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let Some(ticket) = self.sessions.admit() else {
                let _ = socket
                    .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                    .await;
                continue;
            };
            let server = self.clone();
            let token = shutdown.clone();
            let id = ticket.id();
            let abort = sessions.spawn(async move {
                let activity = ticket.activity().clone();
                let stream = Tracked::new(socket, activity.clone());
                let mut session = Session::new(&server, Box::new(stream), activity);
                if let Err(e) = session.run(&token).await {
                    tracing::debug!(error = %e, "smtp session ended with an error");
                }
                drop(ticket);
            });
            self.sessions.attach(id, abort);
            // Reap finished sessions so the set does not grow with the connection count.
            while sessions.try_join_next().is_some() {}
        }
        // Sessions see the same cancellation between commands; a message being
        // delivered finishes first.
        while sessions.join_next().await.is_some() {}
    }

    /// The instance serving `rcpt`: exact addresses first, then domains.
    fn instance_for(&self, rcpt: &str) -> Option<Arc<Instance>> {
        let claim = |inst: &Arc<Instance>| match &inst.intake {
            Intake::Mail(mail) => mail.claims(rcpt),
            _ => None,
        };
        let exact = self
            .instances
            .iter()
            .find(|i| claim(i) == Some(Match::Address));
        exact
            .or_else(|| self.instances.iter().find(|i| claim(i).is_some()))
            .cloned()
    }

    /// Normalizes the message for each instance it is addressed to and hands
    /// each outcome to the ingest service; answers with the reply line for `DATA`.
    async fn deliver(
        &self,
        data: &[u8],
        mail_from: &str,
        to: &[(Arc<Instance>, String)],
    ) -> &'static str {
        let received_at = Timestamp(chrono::Utc::now());
        // Every instance's parse first: a message refused for one is written for none.
        let mut outcomes = Vec::with_capacity(to.len());
        for (inst, rcpt) in to {
            let Intake::Mail(mail) = &inst.intake else {
                return reply(&IngestError::Unavailable("not a mail instance".into()));
            };
            let ctx = Context {
                instance: &inst.name,
                received_at,
                keep_raw: inst.keep_raw,
            };
            let envelope = SmtpEnvelope {
                mail_from,
                recipient: rcpt,
            };
            match mail.parse_message(data, envelope, &ctx) {
                Ok(Outcome::Reply(_)) => return "554 5.3.0 Message not accepted",
                Ok(outcome) => outcomes.push((inst, outcome)),
                Err(rejection) => {
                    let e = IngestError::Rejected(rejection);
                    self.ingest.refused(Door::Smtp, &inst.name, &e);
                    return reply(&e);
                }
            }
        }
        // A failure after another instance's complaint was written is answered
        // as temporary: the retry finds that one a duplicate (its Message-ID).
        for (inst, outcome) in outcomes {
            if let Err(e) = self.ingest.accept(inst, outcome, Door::Smtp).await {
                tracing::warn!(error = %e, "smtp message not accepted");
                return reply(&e);
            }
        }
        "250 2.0.0 Message accepted"
    }
}

/// The one mapping of an ingest refusal to an SMTP reply: a permanent `5xx`
/// for what a retry cannot fix, a temporary `4xx` (the sending server keeps
/// the message and retries) for everything else.
pub fn reply(error: &IngestError) -> &'static str {
    match error {
        IngestError::Rejected(Rejection::TooLarge(_)) => {
            "552 5.3.4 Message or attachment exceeds the size limit"
        }
        IngestError::Rejected(_) => "554 5.6.0 Message content not accepted",
        IngestError::Limited(_) => "451 4.7.1 Too many messages, try again later",
        IngestError::Unavailable(_) | IngestError::SpoolFull(_) | IngestError::Timeout => {
            "451 4.3.0 Temporary failure, try again later"
        }
    }
}

/// Plain TCP before `STARTTLS`, TLS after.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
