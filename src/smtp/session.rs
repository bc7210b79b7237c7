//! One SMTP session: the command loop, `DATA` with dot-unstuffing, `STARTTLS`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio_util::sync::CancellationToken;

use super::{Server, Stream};
use crate::connections::Activity;
use crate::instances::Instance;

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

pub(super) struct Session<'s> {
    server: &'s Server,
    io: BufReader<Box<dyn Stream>>,
    out: Vec<u8>,
    tls: bool,
    greeted: bool,
    /// Marked busy while a message is received and delivered, so that the
    /// listener never closes this session to make room for another then.
    activity: Arc<Activity>,
    mail_from: Option<String>,
    /// Whether the transaction's MAIL asked for SMTPUTF8 (RFC 6531).
    smtputf8: bool,
    rcpts: Vec<(Arc<Instance>, String)>,
    /// Recipients accepted, counting those of the same instance.
    rcpt_count: usize,
    commands: usize,
}

impl<'s> Session<'s> {
    pub(super) fn new(
        server: &'s Server,
        stream: Box<dyn Stream>,
        activity: Arc<Activity>,
    ) -> Self {
        Session {
            server,
            io: BufReader::new(stream),
            out: Vec::with_capacity(512),
            tls: false,
            greeted: false,
            activity,
            mail_from: None,
            smtputf8: false,
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
        self.smtputf8 = false;
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

    /// Says why the session ends, and ends it.
    async fn close(&mut self, stop: Stop) -> std::io::Result<()> {
        self.reply(match stop {
            Stop::Idle => "421 4.4.2 Idle timeout, closing connection",
            Stop::Shutdown => "421 4.3.2 Service shutting down, try again later",
        });
        self.flush(true).await
    }

    pub(super) async fn run(&mut self, token: &CancellationToken) -> std::io::Result<()> {
        let greeting = format!("220 {} ESMTP aduan", self.server.cfg.hostname);
        self.reply(&greeting);
        self.flush(true).await?;
        let mut buf = Vec::with_capacity(256);
        loop {
            let max = self.server.cfg.max_line_bytes.max(512);
            let line = match self.read_line(&mut buf, max, token).await {
                Err(stop) => return self.close(stop).await,
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
            // A command line ends in CRLF and holds no other CR or LF: servers
            // and clients that disagree on where a line ends are how SMTP
            // smuggling works, so such a client is answered and cut off, as
            // Postfix does with `smtpd_forbid_bare_newline`.
            if !is_clean_command(&buf) {
                crate::telemetry::limit_exceeded("smtp", "bare_newline");
                self.reply("521 5.5.2 Bare CR or LF received, closing connection");
                return self.flush(true).await;
            }
            self.commands += 1;
            if self.commands > self.server.cfg.max_commands {
                self.reply("421 4.7.0 Too many commands, closing connection");
                return self.flush(true).await;
            }
            let text = String::from_utf8_lossy(&buf)
                .trim_end_matches("\r\n")
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
                            // A message cut off by shutdown is not accepted; the client retries.
                            Err(stop) => return self.close(stop).await,
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
            "SMTPUTF8".to_string(),
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
        let out_of_sequence = if !self.greeted {
            Some("503 5.5.1 Bad sequence of commands: EHLO first")
        } else if self.mail_from.is_some() {
            Some("503 5.5.1 Bad sequence of commands: nested MAIL")
        } else {
            None
        };
        let Some((address, params)) = self.path_arg(
            out_of_sequence,
            arg,
            "FROM:",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
            "501 5.1.7 Bad sender address syntax",
        ) else {
            return;
        };
        let mut smtputf8 = false;
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
                "SMTPUTF8" if value.is_empty() => smtputf8 = true,
                _ => {
                    self.reply("555 5.5.4 Unsupported MAIL parameter");
                    return;
                }
            }
        }
        self.mail_from = Some(address);
        self.smtputf8 = smtputf8;
        self.reply("250 2.1.0 Sender ok");
    }

    /// The path and parameters after `prefix` (`FROM:`, `TO:`), or `None` with
    /// a reply queued: `out_of_sequence` when the command may not come now,
    /// else `syntax` or `bad`.
    fn path_arg<'a>(
        &mut self,
        out_of_sequence: Option<&str>,
        arg: &'a str,
        prefix: &str,
        syntax: &str,
        bad: &str,
    ) -> Option<(String, &'a str)> {
        if let Some(reply) = out_of_sequence {
            self.reply(reply);
            return None;
        }
        let Some(rest) = strip_prefix_ci(arg, prefix) else {
            self.reply(syntax);
            return None;
        };
        // RFC 6531: a UTF-8 address is allowed in a transaction that MAIL
        // opened with SMTPUTF8; RCPT follows what MAIL said.
        let utf8 = if prefix == "FROM:" {
            rest.split_whitespace()
                .skip(1)
                .any(|p| p.eq_ignore_ascii_case("SMTPUTF8"))
        } else {
            self.smtputf8
        };
        let parsed = path(rest, utf8);
        if parsed.is_none() {
            self.reply(bad);
        }
        parsed
    }

    fn rcpt(&mut self, arg: &str) {
        let out_of_sequence = self
            .mail_from
            .is_none()
            .then_some("503 5.5.1 Bad sequence of commands: MAIL first");
        let Some((address, params)) = self.path_arg(
            out_of_sequence,
            arg,
            "TO:",
            "501 5.5.4 Syntax: RCPT TO:<address>",
            "501 5.1.3 Bad recipient address syntax",
        ) else {
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
        let _busy = self.activity.busy();
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
            // Only <CRLF>.<CRLF> ends the message: a dot line after a bare LF
            // or ending in one (`\n.\n`, `\n.\r\n`, `\r\n.\n`), or with bare CRs
            // (`\r.\r`, `\r\n.\r`), is message content. Another server would read
            // such a sequence differently; here it never ends the message, so
            // what follows it can never run as commands.
            if at_line_start {
                if piece == b".\r\n" {
                    break;
                }
                if piece.first() == Some(&b'.') {
                    piece = &piece[1..];
                }
            }
            at_line_start = complete && piece.ends_with(b"\r\n");
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

/// True for a command line that ends in CRLF and holds no other CR or LF.
fn is_clean_command(line: &[u8]) -> bool {
    line.strip_suffix(b"\r\n")
        .is_some_and(|l| !l.contains(&b'\r') && !l.contains(&b'\n'))
}

/// `<address> params` → the address (lower-cased domain kept as sent, source
/// route dropped) and the rest. `<>` is the null path. With `utf8`
/// (SMTPUTF8), the address may hold non-ASCII characters, never controls or
/// the replacement character of undecodable bytes.
fn path(s: &str, utf8: bool) -> Option<(String, &str)> {
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
    let allowed = |c: char| {
        c.is_ascii_graphic() || (utf8 && !c.is_ascii() && !c.is_control() && c != '\u{FFFD}')
    };
    let valid = address.len() <= 254
        && address.chars().all(allowed)
        && (address.is_empty() || address.contains('@'));
    valid.then(|| (address.to_string(), rest))
}

#[cfg(test)]
mod tests {
    use super::{is_clean_command, path};

    #[test]
    fn command_lines_end_in_crlf_alone() {
        assert!(is_clean_command(b"MAIL FROM:<a@b.id>\r\n"));
        for bad in [
            &b"MAIL FROM:<a@b.id>\n"[..],
            b"MAIL FROM:<a@b.id>\r",
            b"MAIL\rFROM:<a@b.id>\r\n",
            b"NOOP\nMAIL FROM:<a@b.id>\r\n",
        ] {
            assert!(!is_clean_command(bad), "{bad:?}");
        }
    }

    #[test]
    fn utf8_addresses_need_smtputf8() {
        assert_eq!(
            path("<budi@contoh.id>", false).map(|p| p.0).as_deref(),
            Some("budi@contoh.id")
        );
        assert_eq!(path("<siti@例え.jp>", false), None);
        assert_eq!(
            path("<siti@例え.jp> SMTPUTF8", true)
                .map(|p| p.0)
                .as_deref(),
            Some("siti@例え.jp")
        );
        assert_eq!(path("<si\u{FFFD}ti@contoh.id>", true), None);
        assert_eq!(path("<si\u{7}ti@contoh.id>", true), None);
    }

    #[test]
    fn paths_parse_with_and_without_brackets() {
        assert_eq!(
            path("<budi@example.id> SIZE=100", false),
            Some(("budi@example.id".into(), " SIZE=100"))
        );
        assert_eq!(path("<>", false), Some((String::new(), "")));
        assert_eq!(
            path("budi@example.id", false),
            Some(("budi@example.id".into(), ""))
        );
        assert_eq!(
            path("<@relay.example:budi@example.id>", false),
            Some(("budi@example.id".into(), ""))
        );
        assert_eq!(path("<tanpa-at>", false), None);
        assert_eq!(path("<budi@example.id", false), None);
    }
}
