//! The SMTP listener: ESMTP with `SIZE`, `8BITMIME`, `PIPELINING`,
//! `ENHANCEDSTATUSCODES` and optional `STARTTLS`, for the `kind = "smtp"`
//! instances.
//!
//! The listener speaks the protocol and enforces its limits; the instances
//! (`aduan_email::SmtpIntake`) decide which recipients they serve and turn a
//! message into a complaint. A message is answered `250` only once its
//! attachments are on disk and its complaint is durably accepted; any
//! temporary failure is `451` so the sending server keeps it and retries, and
//! the dedup on `Message-ID` makes the retry write nothing new.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Context, Outcome, Rejection, Request, Timestamp};
use aduan_email::smtp::{MAIL_FROM_HEADER, MATCH_HEADER, RCPT_TO_HEADER};
use serde::Deserialize;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Instance;
use crate::server::AppState;
use crate::telemetry;

/// `[smtp]`: the listener for `kind = "smtp"` instances. It starts only when
/// at least one such instance is configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpListenerConfig {
    /// Address the SMTP listener binds. Default `0.0.0.0:2525`.
    pub listen: SocketAddr,
    /// The name the server gives in its greeting and `EHLO` answer. Default `aduan`.
    pub hostname: String,
    /// PEM certificate chain for `STARTTLS`; with `tls_key`. `STARTTLS` is offered only when set.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `STARTTLS`; with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Largest message accepted, in bytes, announced with `SIZE`. Default 25 MiB.
    pub max_message_bytes: usize,
    /// Most recipients of one message (`452 4.5.3` past it). Default 100.
    pub max_recipients: usize,
    /// Longest command line, in bytes including CRLF (`500 5.5.2` past it). Default 2048.
    pub max_line_bytes: usize,
    /// Most commands in a session without a message delivered (`421 4.7.0`
    /// past it). Default 1000.
    pub max_commands: usize,
    /// Seconds a client may stay silent before the session is closed (`421 4.4.2`). Default 300.
    pub idle_timeout_seconds: u64,
    /// Most sessions at once; more are turned away with `421 4.3.2`. Default 256.
    pub max_sessions: usize,
}

impl Default for SmtpListenerConfig {
    fn default() -> Self {
        SmtpListenerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 2525)),
            hostname: "aduan".into(),
            tls_cert: None,
            tls_key: None,
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
            max_line_bytes: 2048,
            max_commands: 1000,
            idle_timeout_seconds: 300,
            max_sessions: 256,
        }
    }
}

/// A running listener.
pub struct SmtpHandle {
    pub addr: SocketAddr,
    pub done: tokio::task::JoinHandle<()>,
}

/// Binds and starts the listener when any `kind = "smtp"` instance exists.
pub async fn start(
    cfg: &SmtpListenerConfig,
    instances: &[Arc<Instance>],
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<SmtpHandle>> {
    let smtp: Vec<Arc<Instance>> = instances
        .iter()
        .filter(|i| i.kind == "smtp" && i.adapter.is_some())
        .cloned()
        .collect();
    if smtp.is_empty() {
        return Ok(None);
    }
    let tls = tls_acceptor(cfg)?;
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let server = Arc::new(Server {
        cfg: cfg.clone(),
        tls,
        instances: smtp,
        state,
        sessions: Arc::new(tokio::sync::Semaphore::new(cfg.max_sessions.max(1))),
    });
    tracing::info!(%addr, starttls = server.tls.is_some(), "smtp listening");
    let done = tokio::spawn(server.serve(listener, shutdown));
    Ok(Some(SmtpHandle { addr, done }))
}

fn tls_acceptor(cfg: &SmtpListenerConfig) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = match (&cfg.tls_cert, &cfg.tls_key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => anyhow::bail!("smtp.tls_cert and smtp.tls_key must be given together"),
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("smtp.tls_cert {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("smtp.tls_key {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

struct Server {
    cfg: SmtpListenerConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    instances: Vec<Arc<Instance>>,
    state: Arc<AppState>,
    sessions: Arc<tokio::sync::Semaphore>,
}

/// Plain TCP before `STARTTLS`, TLS after.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

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
            let Ok(permit) = self.sessions.clone().try_acquire_owned() else {
                let _ = socket
                    .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                    .await;
                continue;
            };
            let server = self.clone();
            let token = shutdown.clone();
            sessions.spawn(async move {
                let mut session = Session::new(&server, Box::new(socket));
                if let Err(e) = session.run(&token).await {
                    tracing::debug!(error = %e, "smtp session ended with an error");
                }
                drop(permit);
            });
            // Reap finished sessions so the set does not grow with the connection count.
            while sessions.try_join_next().is_some() {}
        }
        // Sessions see the same cancellation between commands; a message being
        // delivered finishes first.
        while sessions.join_next().await.is_some() {}
    }

    /// The instance serving `rcpt`: exact addresses first, then domains.
    fn instance_for(&self, rcpt: &str) -> Option<Arc<Instance>> {
        let method = http::Method::POST;
        let uri = http::Uri::from_static("/smtp");
        let rcpt_value = http::HeaderValue::from_str(rcpt).ok()?;
        for exact in [true, false] {
            let mut headers = http::HeaderMap::new();
            headers.insert(RCPT_TO_HEADER, rcpt_value.clone());
            if exact {
                headers.insert(MATCH_HEADER, http::HeaderValue::from_static("address"));
            }
            let probe = Request {
                method: &method,
                uri: &uri,
                headers: &headers,
                body: &[],
            };
            let found = self
                .instances
                .iter()
                .find(|i| i.adapter.as_ref().is_some_and(|a| a.verify(&probe).is_ok()));
            if let Some(inst) = found {
                return Some(inst.clone());
            }
        }
        None
    }

    /// Normalizes the message for each instance it is addressed to, stores
    /// attachments, publishes; answers with the reply line for `DATA`.
    async fn deliver(
        &self,
        data: &[u8],
        mail_from: &str,
        to: &[(Arc<Instance>, String)],
    ) -> &'static str {
        let method = http::Method::POST;
        let uri = http::Uri::from_static("/smtp");
        let received_at = Timestamp(chrono::Utc::now());
        // Every instance's parse first: a message refused for one is written for none.
        let mut complaints = Vec::new();
        let mut blobs = Vec::new();
        for (inst, rcpt) in to {
            let Some(adapter) = inst.adapter.as_ref() else {
                return "451 4.3.0 Temporary failure, try again later";
            };
            let mut headers = http::HeaderMap::new();
            let (Ok(from), Ok(rcpt)) = (
                http::HeaderValue::from_str(mail_from),
                http::HeaderValue::from_str(rcpt),
            ) else {
                return "501 5.1.7 Bad address syntax";
            };
            headers.insert(MAIL_FROM_HEADER, from);
            headers.insert(RCPT_TO_HEADER, rcpt);
            let req = Request {
                method: &method,
                uri: &uri,
                headers: &headers,
                body: data,
            };
            let ctx = Context {
                instance: &inst.name,
                received_at,
                keep_raw: inst.keep_raw,
            };
            match adapter.parse(&req, &ctx) {
                Ok(Outcome::AcceptWithBlobs {
                    complaints: c,
                    ignored,
                    blobs: b,
                }) => {
                    count_ignored(&inst.name, &ignored);
                    complaints.extend(c);
                    blobs.extend(b);
                }
                Ok(Outcome::Accept {
                    complaints: c,
                    ignored,
                }) => {
                    count_ignored(&inst.name, &ignored);
                    complaints.extend(c);
                }
                Ok(_) => return "554 5.3.0 Message not accepted",
                Err(rejection) => {
                    count_rejected(&inst.name, rejection.reason());
                    return match rejection {
                        Rejection::TooLarge(_) => {
                            "552 5.3.4 Message or attachment exceeds the size limit"
                        }
                        _ => "554 5.6.0 Message content not accepted",
                    };
                }
            }
        }
        if let Err(e) = self.state.blobs.put_all(blobs).await {
            tracing::warn!(error = %e, "smtp attachments not stored");
            return "451 4.3.0 Temporary failure, try again later";
        }
        if !complaints.is_empty()
            && let Err(e) = self.state.pipeline.publish(complaints).await
        {
            tracing::warn!(error = %e, "smtp message not accepted");
            return "451 4.3.0 Temporary failure, try again later";
        }
        "250 2.0.0 Message accepted"
    }
}

fn count_ignored(instance: &str, ignored: &[aduan_adapter::Ignored]) {
    for event in ignored {
        metrics::counter!(telemetry::IGNORED, "route" => "smtp", "instance" => instance.to_string(), "reason" => event.reason).increment(1);
    }
}

fn count_rejected(instance: &str, reason: &'static str) {
    metrics::counter!(telemetry::REJECTED, "route" => "smtp", "instance" => instance.to_string(), "reason" => reason).increment(1);
}

/// How one read of a line ended.
enum Line {
    Complete,
    TooLong,
    Eof,
}

/// What stops a session early.
enum Stop {
    Idle,
    Shutdown,
}

struct Session<'s> {
    server: &'s Server,
    io: BufReader<Box<dyn Stream>>,
    out: Vec<u8>,
    tls: bool,
    greeted: bool,
    mail_from: Option<String>,
    rcpts: Vec<(Arc<Instance>, String)>,
    /// Recipients accepted, counting those of the same instance.
    rcpt_count: usize,
    commands: usize,
}

impl<'s> Session<'s> {
    fn new(server: &'s Server, stream: Box<dyn Stream>) -> Self {
        Session {
            server,
            io: BufReader::new(stream),
            out: Vec::with_capacity(512),
            tls: false,
            greeted: false,
            mail_from: None,
            rcpts: Vec::new(),
            rcpt_count: 0,
            commands: 0,
        }
    }

    fn reply(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Sends queued replies. With pipelining the client may have sent several
    /// commands at once; their replies go out together once none is left unread.
    async fn flush(&mut self, force: bool) -> std::io::Result<()> {
        if self.out.is_empty() || (!force && !self.io.buffer().is_empty()) {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let stream = self.io.get_mut();
        stream.write_all(&out).await?;
        stream.flush().await?;
        self.out = out;
        self.out.clear();
        Ok(())
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpts.clear();
        self.rcpt_count = 0;
    }

    async fn read_line(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
        token: &CancellationToken,
    ) -> Result<std::io::Result<Line>, Stop> {
        buf.clear();
        let idle = Duration::from_secs(self.server.cfg.idle_timeout_seconds.max(1));
        let mut limited = (&mut self.io).take(max as u64 + 1);
        let read = limited.read_until(b'\n', buf);
        let result = tokio::select! {
            _ = token.cancelled() => return Err(Stop::Shutdown),
            r = tokio::time::timeout(idle, read) => r,
        };
        Ok(match result {
            Err(_) => return Err(Stop::Idle),
            Ok(Err(e)) => Err(e),
            Ok(Ok(0)) => Ok(Line::Eof),
            Ok(Ok(_)) if buf.ends_with(b"\n") => Ok(Line::Complete),
            Ok(Ok(_)) if buf.len() > max => Ok(Line::TooLong),
            Ok(Ok(_)) => Ok(Line::Eof),
        })
    }

    async fn run(&mut self, token: &CancellationToken) -> std::io::Result<()> {
        let greeting = format!("220 {} ESMTP aduan", self.server.cfg.hostname);
        self.reply(&greeting);
        self.flush(true).await?;
        let mut buf = Vec::with_capacity(256);
        loop {
            let max = self.server.cfg.max_line_bytes.max(512);
            let line = match self.read_line(&mut buf, max, token).await {
                Err(Stop::Idle) => {
                    self.reply("421 4.4.2 Idle timeout, closing connection");
                    return self.flush(true).await;
                }
                Err(Stop::Shutdown) => {
                    self.reply("421 4.3.2 Service shutting down, try again later");
                    return self.flush(true).await;
                }
                Ok(r) => r?,
            };
            match line {
                Line::Eof => return Ok(()),
                Line::TooLong => {
                    self.reply("500 5.5.2 Line too long");
                    return self.flush(true).await;
                }
                Line::Complete => {}
            }
            self.commands += 1;
            if self.commands > self.server.cfg.max_commands {
                self.reply("421 4.7.0 Too many commands, closing connection");
                return self.flush(true).await;
            }
            let text = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let (verb, arg) = match text.split_once(' ') {
                Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
                None => (text.to_ascii_uppercase(), String::new()),
            };
            match verb.as_str() {
                "EHLO" | "HELO" => self.hello(&verb, &arg),
                "MAIL" => self.mail(&arg),
                "RCPT" => self.rcpt(&arg),
                "DATA" => {
                    if !arg.is_empty() {
                        self.reply("501 5.5.4 DATA takes no parameters");
                    } else if self.mail_from.is_none() {
                        self.reply("503 5.5.1 Bad sequence of commands: MAIL first");
                    } else if self.rcpts.is_empty() {
                        self.reply("554 5.5.1 No valid recipients");
                    } else {
                        self.reply("354 2.0.0 Start mail input; end with <CRLF>.<CRLF>");
                        self.flush(true).await?;
                        match self.data(&mut buf, token).await {
                            Err(Stop::Idle) => {
                                self.reply("421 4.4.2 Idle timeout, closing connection");
                                return self.flush(true).await;
                            }
                            // A message cut off by shutdown is not accepted; the client retries.
                            Err(Stop::Shutdown) => {
                                self.reply("421 4.3.2 Service shutting down, try again later");
                                return self.flush(true).await;
                            }
                            Ok(Ok(true)) => {}
                            Ok(Ok(false)) => return Ok(()),
                            Ok(Err(e)) => return Err(e),
                        }
                    }
                }
                "RSET" => {
                    self.reset();
                    self.reply("250 2.0.0 Ok");
                }
                "NOOP" => self.reply("250 2.0.0 Ok"),
                "VRFY" => self.reply("252 2.5.0 Cannot verify, but will accept"),
                "HELP" => self.reply("214 2.0.0 See RFC 5321"),
                "QUIT" => {
                    self.reply("221 2.0.0 Bye");
                    return self.flush(true).await;
                }
                "STARTTLS" => {
                    if self.start_tls().await? {
                        continue;
                    }
                    return Ok(());
                }
                _ => self.reply("500 5.5.2 Command unrecognized"),
            }
            self.flush(false).await?;
        }
    }

    fn hello(&mut self, verb: &str, arg: &str) {
        if arg.is_empty() {
            self.reply("501 5.5.4 Hostname required");
            return;
        }
        self.reset();
        self.greeted = true;
        let host = self.server.cfg.hostname.clone();
        if verb == "HELO" {
            self.reply(&format!("250 {host}"));
            return;
        }
        let mut lines = vec![
            host,
            format!("SIZE {}", self.server.cfg.max_message_bytes),
            "8BITMIME".to_string(),
            "PIPELINING".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.server.tls.is_some() && !self.tls {
            lines.push("STARTTLS".to_string());
        }
        let last = lines.len() - 1;
        for (i, l) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.reply(&format!("250{sep}{l}"));
        }
    }

    fn mail(&mut self, arg: &str) {
        if !self.greeted {
            self.reply("503 5.5.1 Bad sequence of commands: EHLO first");
            return;
        }
        if self.mail_from.is_some() {
            self.reply("503 5.5.1 Bad sequence of commands: nested MAIL");
            return;
        }
        let Some(rest) = strip_prefix_ci(arg, "FROM:") else {
            self.reply("501 5.5.4 Syntax: MAIL FROM:<address>");
            return;
        };
        let Some((address, params)) = path(rest) else {
            self.reply("501 5.1.7 Bad sender address syntax");
            return;
        };
        for param in params.split_whitespace() {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<u64>() {
                    Ok(n) if n > self.server.cfg.max_message_bytes as u64 => {
                        self.reply("552 5.3.4 Message size exceeds fixed maximum message size");
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        self.reply("501 5.5.4 Bad SIZE parameter");
                        return;
                    }
                },
                "BODY"
                    if value.eq_ignore_ascii_case("7BIT")
                        || value.eq_ignore_ascii_case("8BITMIME") => {}
                _ => {
                    self.reply("555 5.5.4 Unsupported MAIL parameter");
                    return;
                }
            }
        }
        self.mail_from = Some(address);
        self.reply("250 2.1.0 Sender ok");
    }

    fn rcpt(&mut self, arg: &str) {
        if self.mail_from.is_none() {
            self.reply("503 5.5.1 Bad sequence of commands: MAIL first");
            return;
        }
        let Some(rest) = strip_prefix_ci(arg, "TO:") else {
            self.reply("501 5.5.4 Syntax: RCPT TO:<address>");
            return;
        };
        let Some((address, params)) = path(rest) else {
            self.reply("501 5.1.3 Bad recipient address syntax");
            return;
        };
        if !params.trim().is_empty() {
            self.reply("555 5.5.4 Unsupported RCPT parameter");
            return;
        }
        if address.is_empty() {
            self.reply("501 5.1.3 Bad recipient address syntax");
            return;
        }
        if self.rcpt_count >= self.server.cfg.max_recipients {
            self.reply("452 4.5.3 Too many recipients");
            return;
        }
        let Some(inst) = self.server.instance_for(&address) else {
            self.reply("550 5.1.1 Recipient address rejected: mailbox unavailable");
            return;
        };
        self.rcpt_count += 1;
        // One complaint per instance, whatever the number of its addresses listed.
        if !self.rcpts.iter().any(|(i, _)| Arc::ptr_eq(i, &inst)) {
            self.rcpts.push((inst, address));
        }
        self.reply("250 2.1.5 Recipient ok");
    }

    /// Reads the message up to the lone dot, then delivers it. `Ok(false)`
    /// when the client went away mid-message: nothing is written.
    async fn data(
        &mut self,
        buf: &mut Vec<u8>,
        token: &CancellationToken,
    ) -> Result<std::io::Result<bool>, Stop> {
        let max = self.server.cfg.max_message_bytes;
        let mut message = Vec::new();
        let mut oversize = false;
        let mut at_line_start = true;
        // Text lines are read in bounded chunks: a line longer than a chunk is
        // carried over, so memory stays bounded by the message size limit.
        const CHUNK: usize = 64 * 1024;
        loop {
            let line = match self.read_line(buf, CHUNK, token).await? {
                Ok(l) => l,
                Err(e) => return Ok(Err(e)),
            };
            let complete = match line {
                Line::Eof => return Ok(Ok(false)),
                Line::Complete => true,
                Line::TooLong => false,
            };
            let mut piece: &[u8] = buf;
            if at_line_start {
                if piece == b".\r\n" || piece == b".\n" {
                    break;
                }
                if piece.first() == Some(&b'.') {
                    piece = &piece[1..];
                }
            }
            at_line_start = complete;
            if message.len() + piece.len() > max {
                oversize = true;
            }
            if !oversize {
                message.extend_from_slice(piece);
            }
        }
        let mail_from = self.mail_from.take().unwrap_or_default();
        let rcpts = std::mem::take(&mut self.rcpts);
        self.rcpt_count = 0;
        let answer = if oversize {
            "552 5.3.4 Message size exceeds fixed maximum message size"
        } else {
            self.server.deliver(&message, &mail_from, &rcpts).await
        };
        // The command limit guards against sessions that talk without
        // delivering; a mail server reusing its connection starts afresh.
        if answer.starts_with("250") {
            self.commands = 0;
        }
        self.reply(answer);
        Ok(Ok(true))
    }

    /// Upgrades the connection. `Ok(false)` when the handshake failed and the
    /// connection is gone.
    async fn start_tls(&mut self) -> std::io::Result<bool> {
        let Some(acceptor) = self.server.tls.clone().filter(|_| !self.tls) else {
            self.reply("454 4.7.0 TLS not available");
            self.flush(true).await?;
            return Ok(true);
        };
        // Commands pipelined after STARTTLS were sent in the clear and could be
        // an injection; refuse rather than run them inside the TLS session.
        if !self.io.buffer().is_empty() {
            self.reply("554 5.5.1 Commands pipelined after STARTTLS");
            self.flush(true).await?;
            return Ok(false);
        }
        self.reply("220 2.0.0 Ready to start TLS");
        self.flush(true).await?;
        let placeholder: Box<dyn Stream> = Box::new(tokio::io::duplex(1).0);
        let plain = std::mem::replace(&mut self.io, BufReader::new(placeholder)).into_inner();
        match acceptor.accept(plain).await {
            Ok(tls) => {
                self.io = BufReader::new(Box::new(tls));
                self.tls = true;
                self.greeted = false;
                self.reset();
                Ok(true)
            }
            Err(e) => {
                tracing::debug!(error = %e, "smtp tls handshake failed");
                Ok(false)
            }
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `<address> params` → the address (lower-cased domain kept as sent, source
/// route dropped) and the rest. `<>` is the null path.
fn path(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let (inner, rest) = if let Some(body) = s.strip_prefix('<') {
        let end = body.find('>')?;
        (&body[..end], &body[end + 1..])
    } else {
        // Lenient: some clients omit the brackets.
        match s.split_once(' ') {
            Some((a, r)) => (a, r),
            None => (s, ""),
        }
    };
    // A source route (`@relay:user@host`) is obsolete; only the mailbox counts.
    let address = match inner.rsplit_once(':') {
        Some((route, mailbox)) if route.starts_with('@') => mailbox,
        _ => inner,
    };
    let valid = address.len() <= 254
        && address.bytes().all(|b| b.is_ascii_graphic())
        && (address.is_empty() || address.contains('@'));
    valid.then(|| (address.to_string(), rest))
}

#[cfg(test)]
mod tests {
    use super::path;

    #[test]
    fn paths_parse_with_and_without_brackets() {
        assert_eq!(
            path("<budi@example.id> SIZE=100"),
            Some(("budi@example.id".into(), " SIZE=100"))
        );
        assert_eq!(path("<>"), Some((String::new(), "")));
        assert_eq!(
            path("budi@example.id"),
            Some(("budi@example.id".into(), ""))
        );
        assert_eq!(
            path("<@relay.example:budi@example.id>"),
            Some(("budi@example.id".into(), ""))
        );
        assert_eq!(path("<tanpa-at>"), None);
        assert_eq!(path("<budi@example.id"), None);
    }
}
