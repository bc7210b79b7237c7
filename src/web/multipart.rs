//! A `multipart/form-data` body (RFC 7578) read as it arrives, holding at
//! most one chunk of it and one part's head in memory, whatever is sent:
//! a preamble or a part's head that never ends is refused once it passes
//! [`MAX_HEAD`], not gathered. Every read waits until the post's deadline
//! at most, and the body is refused past its size limit when it came
//! without a `Content-Length` that said so first.

use axum::body::{Body, BodyDataStream, Bytes};
use bytes::{Buf, BytesMut};
use futures::StreamExt;
use tokio::time::Instant;

/// Longest preamble, or head of one part, taken.
const MAX_HEAD: usize = 16 * 1024;

/// Why a body could not be read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadError {
    /// Not multipart as browsers send it (or cut off).
    Malformed,
    /// Longer than the limit.
    TooLarge,
    /// Not sent in time.
    TimedOut,
}

/// One part's head: its field name and, for a file, the file's name.
#[derive(Debug, Default)]
pub(super) struct PartHead {
    pub(super) name: String,
    /// `Some` for a file field, even when empty (no file chosen).
    pub(super) filename: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a part's data (or the preamble, before the first part).
    Data,
    /// Just past a delimiter.
    Delimited,
    /// Past the closing delimiter.
    Done,
}

/// A multipart body being read.
pub(super) struct Multipart {
    body: BodyDataStream,
    buf: BytesMut,
    /// `\r\n--<boundary>`.
    delimiter: Vec<u8>,
    state: State,
    read: u64,
    limit: u64,
    deadline: Instant,
}

/// The boundary of a `multipart/form-data` content type.
pub(super) fn boundary(content_type: &str) -> Option<String> {
    let (essence, params) = content_type.split_once(';')?;
    if !essence.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        // RFC 2046: 1 to 70 characters.
        (!v.is_empty() && v.len() <= 70).then(|| v.to_string())
    })
}

impl Multipart {
    /// Reads `body` of `boundary`, at most `limit` bytes, until `deadline`.
    pub(super) fn new(body: Body, boundary: &str, limit: u64, deadline: Instant) -> Multipart {
        // The first delimiter has no line break before it: one is put in
        // front, so that every delimiter is found alike.
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(b"\r\n");
        Multipart {
            body: body.into_data_stream(),
            buf,
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            state: State::Data,
            read: 0,
            limit,
            deadline,
        }
    }

    /// Appends the next chunk of the body; `false` at its end.
    async fn fill(&mut self) -> Result<bool, ReadError> {
        let next = tokio::time::timeout_at(self.deadline, self.body.next())
            .await
            .map_err(|_| ReadError::TimedOut)?;
        match next {
            None => Ok(false),
            Some(Err(_)) => Err(ReadError::Malformed),
            Some(Ok(chunk)) => {
                self.read += chunk.len() as u64;
                if self.read > self.limit {
                    return Err(ReadError::TooLarge);
                }
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
        }
    }

    /// The next bytes of the current part's data; `None` at its end.
    pub(super) async fn chunk(&mut self) -> Result<Option<Bytes>, ReadError> {
        loop {
            if self.state != State::Data {
                return Ok(None);
            }
            if let Some(at) = memchr::memmem::find(&self.buf, &self.delimiter) {
                let data = self.buf.split_to(at).freeze();
                self.buf.advance(self.delimiter.len());
                self.state = State::Delimited;
                return Ok((!data.is_empty()).then_some(data));
            }
            // What could be the start of a delimiter stays for the next look.
            let keep = self.delimiter.len() - 1;
            if self.buf.len() > keep {
                let data = self.buf.split_to(self.buf.len() - keep).freeze();
                return Ok(Some(data));
            }
            if !self.fill().await? {
                return Err(ReadError::Malformed);
            }
        }
    }

    /// Skips what is left of the current part and reads the next one's
    /// head; `None` past the last part.
    pub(super) async fn next_part(&mut self) -> Result<Option<PartHead>, ReadError> {
        // The preamble or the rest of a part: skipped, not kept. A
        // preamble has no business being long.
        let preamble = self.read == 0;
        let mut skipped = 0usize;
        while let Some(data) = self.chunk().await? {
            skipped += data.len();
            if preamble && skipped > MAX_HEAD {
                return Err(ReadError::Malformed);
            }
        }
        if self.state == State::Done {
            return Ok(None);
        }
        self.need(2).await?;
        if self.buf.starts_with(b"--") {
            self.state = State::Done;
            return Ok(None);
        }
        // Transport padding (RFC 2046), then the line break.
        loop {
            let blanks = self
                .buf
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            self.buf.advance(blanks);
            if !self.buf.is_empty() {
                break;
            }
            if !self.fill().await? {
                return Err(ReadError::Malformed);
            }
        }
        self.need(2).await?;
        if !self.buf.starts_with(b"\r\n") {
            return Err(ReadError::Malformed);
        }
        self.buf.advance(2);
        let head = loop {
            if self.buf.starts_with(b"\r\n") {
                // A part without header lines.
                self.buf.advance(2);
                break BytesMut::new();
            }
            if let Some(at) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                let head = self.buf.split_to(at);
                self.buf.advance(4);
                break head;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Malformed);
            }
            if !self.fill().await? {
                return Err(ReadError::Malformed);
            }
        };
        self.state = State::Data;
        Ok(Some(parse_head(&head)))
    }

    /// Waits until at least `n` bytes are buffered.
    async fn need(&mut self, n: usize) -> Result<(), ReadError> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(ReadError::Malformed);
            }
        }
        Ok(())
    }

    /// Reads the rest of the body and drops it, up to `budget` more bytes
    /// and until the deadline: a client still sending then sees the answer
    /// given before its body was read, instead of a reset connection.
    pub(super) async fn drain(mut self, budget: u64) {
        self.buf = BytesMut::new();
        let mut left = budget;
        while let Ok(Some(Ok(chunk))) =
            tokio::time::timeout_at(self.deadline, self.body.next()).await
        {
            let Some(rest) = left.checked_sub(chunk.len() as u64) else {
                return;
            };
            left = rest;
        }
    }
}

/// The field name and file name of a part's head.
fn parse_head(head: &[u8]) -> PartHead {
    let text = String::from_utf8_lossy(head);
    let disposition = text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(value)
    });
    let mut out = PartHead::default();
    let Some(disposition) = disposition else {
        return out;
    };
    let mut params = split_params(disposition).into_iter();
    if !params
        .next()
        .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("form-data"))
    {
        return out;
    }
    for (key, value) in params {
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => out.name = value.unwrap_or_default(),
            "filename" => out.filename = Some(value.unwrap_or_default()),
            _ => {}
        }
    }
    out
}

/// `a; k="v"; j=w` as (`a`, None), (`k`, `v`), (`j`, `w`); quoted values
/// may hold `;` and `\"`.
fn split_params(value: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == ';' || c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut val = None;
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            let mut v = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                v.push(n);
                            }
                        }
                        '"' => break,
                        c => v.push(c),
                    }
                }
                while chars.peek().is_some_and(|c| *c != ';') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                v = v.trim().to_string();
            }
            val = Some(v);
        }
        if !key.trim().is_empty() || val.is_some() {
            out.push((key.trim().to_string(), val));
        }
        if chars.next().is_none() {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn body_of(chunks: Vec<&'static [u8]>) -> Body {
        let stream = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        );
        Body::from_stream(stream)
    }

    fn reader(chunks: Vec<&'static [u8]>, limit: u64) -> Multipart {
        let deadline = Instant::now() + Duration::from_secs(5);
        Multipart::new(body_of(chunks), "XyZ", limit, deadline)
    }

    async fn all(mut m: Multipart) -> Result<Vec<(String, Option<String>, Vec<u8>)>, ReadError> {
        let mut out = Vec::new();
        while let Some(head) = m.next_part().await? {
            let mut data = Vec::new();
            while let Some(c) = m.chunk().await? {
                data.extend_from_slice(&c);
            }
            out.push((head.name, head.filename, data));
        }
        Ok(out)
    }

    #[tokio::test]
    async fn parts_are_read_whatever_the_chunks_are_cut_at() {
        let whole: &'static [u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
--XyZ\r\ncontent-disposition: form-data; name=\"photo\"; filename=\"a \\\"b\\\"; c.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\
\xFF\xD8\xFF\r\n--X\r\n--XyZ\r\nContent-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n--XyZ--\r\n";
        for cut in 1..whole.len() {
            let (a, b) = whole.split_at(cut);
            let got = all(reader(vec![a, b], 10_000)).await.expect("read");
            assert_eq!(
                got,
                vec![
                    ("csrf".into(), None, b"abc".to_vec()),
                    (
                        "photo".into(),
                        Some("a \"b\"; c.jpg".into()),
                        b"\xFF\xD8\xFF\r\n--X".to_vec()
                    ),
                    ("empty".into(), None, Vec::new()),
                ],
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn a_body_without_end_or_over_its_limit_is_refused() {
        let cut: &'static [u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc";
        assert_eq!(
            all(reader(vec![cut], 10_000)).await,
            Err(ReadError::Malformed)
        );
        let long: &'static [u8] =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabcdefghij\r\n--XyZ--";
        assert_eq!(all(reader(vec![long], 20)).await, Err(ReadError::TooLarge));
        let no_boundary: &'static [u8] = &[b'x'; 40_000];
        assert_eq!(
            all(reader(vec![no_boundary], 100_000)).await,
            Err(ReadError::Malformed),
            "a preamble is not gathered"
        );
    }

    #[tokio::test]
    async fn a_head_that_never_ends_is_refused_not_gathered() {
        let mut head = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nX: ".to_vec();
        head.resize(40_000, b'y');
        let head: &'static [u8] = head.leak();
        assert_eq!(
            all(reader(vec![head], 100_000)).await,
            Err(ReadError::Malformed)
        );
    }

    #[test]
    fn the_boundary_is_read_off_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=----WebKitFormBoundaryQ").as_deref(),
            Some("----WebKitFormBoundaryQ")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }
}
