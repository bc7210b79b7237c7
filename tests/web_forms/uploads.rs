//! The citizen form's body: refused before it is read when the head says
//! enough, a bounded number read at once, the photo streamed to disk (the
//! gateway binary's memory measured in `/proc`), and the machine intakes'
//! bodies capped by `Content-Length` before they are read.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const MIB: usize = 1024 * 1024;

/// A post's multipart body cut in three: the text fields and the photo's
/// head, the photo's bytes (not included), and the closing delimiter.
struct Parts {
    content_type: String,
    head: Vec<u8>,
    tail: Vec<u8>,
}

fn parts(fields: &[(&str, &str)]) -> Parts {
    let (content_type, whole) = multipart(fields, Some(b"@@PHOTO@@"));
    let at = whole
        .windows(9)
        .position(|w| w == b"@@PHOTO@@")
        .expect("the photo's place");
    Parts {
        content_type,
        head: whole[..at].to_vec(),
        tail: whole[at + 9..].to_vec(),
    }
}

/// A post on a connection of its own: its head and the first bytes of its
/// body are sent; the rest is up to the caller.
async fn start_post(
    addr: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
    content_type: &str,
    length: usize,
    first: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "POST /lapor/bogor-311 HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\n"
    );
    if let Some(c) = cookie {
        head.push_str(&format!("cookie: {c}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(first).await.expect("first bytes");
    stream
}

/// One response off `stream`: its status, headers (names lowercase) and body.
async fn response(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the connection closed without an answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.expect("read");
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    (status, headers, String::from_utf8_lossy(&body).to_string())
}

/// The answer within a few seconds: a post refused from its head alone is
/// answered while its body is still unsent.
async fn answer_soon(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, String) {
    tokio::time::timeout(Duration::from_secs(5), response(stream))
        .await
        .expect("answered before the body was sent")
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A photo of `size` bytes: a JPEG's first bytes, then filler.
fn photo_bytes(size: usize) -> Vec<u8> {
    let mut p = JPEG.to_vec();
    p.resize(size, 0x42);
    p
}

#[tokio::test]
async fn a_post_is_refused_from_its_head_before_its_body_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(
        dir.path(),
        "submissions_per_minute = 3\nmax_photo_bytes = 20971520",
    ))
    .await;
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let form = open_form(&app).await;
    let p = parts(&complete(&form));
    let whole = |photo: usize| p.head.len() + photo + p.tail.len();

    // Declared over the limit: 413, the photo named, what was typed kept.
    let mut s = start_post(
        &addr,
        Some(&form.cookie),
        &[],
        &p.content_type,
        whole(40 * MIB),
        &p.head,
    )
    .await;
    let (status, _, page) = answer_soon(&mut s).await;
    assert_eq!(status, 413);
    assert!(page.contains("href=\"#photo\"") && page.contains("value=\"Siti Rahayu\""));

    // Without a CSRF cookie, and with one of the right old shape that the
    // gateway never signed: 403 with the typing kept, before the 19 MiB photo.
    for cookie in [None, Some(format!("aduan_csrf={}", "a".repeat(32)))] {
        let mut s = start_post(
            &addr,
            cookie.as_deref(),
            &[],
            &p.content_type,
            whole(19 * MIB),
            &p.head,
        )
        .await;
        let (status, _, page) = answer_soon(&mut s).await;
        assert_eq!(status, 403, "{cookie:?}");
        assert!(page.contains("value=\"Siti Rahayu\""));
    }

    // Over the posts of this minute: 429, before the photo.
    let mut s = start_post(
        &addr,
        Some(&form.cookie),
        &[],
        &p.content_type,
        whole(19 * MIB),
        &p.head,
    )
    .await;
    let (status, _, page) = answer_soon(&mut s).await;
    assert_eq!(status, 429);
    assert!(page.contains("value=\"Siti Rahayu\""));

    assert_eq!(app.stream_len().await, 0, "nothing written");
    let staging = dir.path().join("staging");
    let left = std::fs::read_dir(&staging).map_or(0, |d| d.count());
    assert_eq!(left, 0, "nothing staged");
    app.stop().await;
}

#[tokio::test]
async fn posts_past_the_upload_cap_are_answered_503_until_a_place_frees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(
        dir.path(),
        "submissions_per_minute = 100\nmax_uploads = 2",
    ))
    .await;
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let form = open_form(&app).await;
    let photo = photo_bytes(300_000);
    let (half, rest) = photo.split_at(100_000);

    // Two posts that stop halfway through their photo hold both places.
    let mut held = Vec::new();
    for n in 0..2 {
        let id = format!("{n:032x}");
        let mut fields = complete(&form);
        fields.retain(|(k, _)| *k != "form_id");
        fields.push(("form_id", id.as_str()));
        let p = parts(&fields);
        let length = p.head.len() + photo.len() + p.tail.len();
        let mut s = start_post(
            &addr,
            Some(&form.cookie),
            &[],
            &p.content_type,
            length,
            &p.head,
        )
        .await;
        s.write_all(half).await.unwrap();
        held.push((s, p.tail));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A third: 503 with Retry-After, the typing kept, before its photo.
    let p = parts(&complete(&form));
    let length = p.head.len() + photo.len() + p.tail.len();
    let mut s = start_post(
        &addr,
        Some(&form.cookie),
        &[],
        &p.content_type,
        length,
        &p.head,
    )
    .await;
    let (status, headers, page) = answer_soon(&mut s).await;
    assert_eq!(status, 503);
    assert!(header(&headers, "retry-after").is_some_and(|v| v.parse::<u64>().is_ok()));
    assert!(page.contains("value=\"Siti Rahayu\""));
    // The photos of the posts under way are on disk, not in memory.
    let staged: Vec<_> = std::fs::read_dir(dir.path().join("staging"))
        .expect("the staging directory")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(staged.len(), 2, "one staging file per post under way");

    for (mut s, tail) in held {
        s.write_all(rest).await.unwrap();
        s.write_all(&tail).await.unwrap();
        let (status, _, page) = answer_soon(&mut s).await;
        assert_eq!(status, 201, "{page}");
    }
    // A place is free again.
    let (status, page) = post_form(&app, &form.cookie, &complete(&form), Some(&photo)).await;
    assert_eq!(status, 201, "{page}");

    let docs = app.tracked_complaints().await;
    assert_eq!(docs.len(), 3);
    for doc in &docs {
        let key = doc["attachments"][0]["storage_key"]
            .as_str()
            .expect("stored");
        assert_eq!(std::fs::read(dir.path().join(key)).unwrap(), photo);
        assert_eq!(doc["attachments"][0]["size"], 300_000);
    }
    let left = std::fs::read_dir(dir.path().join("staging")).map_or(0, |d| d.count());
    assert_eq!(left, 0, "no staging file left behind");
    app.stop().await;
}

#[tokio::test]
async fn a_photo_that_is_no_image_is_not_written_and_a_large_one_is_streamed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(dir.path(), "max_photo_bytes = 2000000")).await;
    let form = open_form(&app).await;
    // Sniffed from its first bytes: refused, the typing kept, nothing staged or stored.
    let mut exe = b"MZ\x90\x00".to_vec();
    exe.resize(1_500_000, 0);
    let (status, page) = post_form(&app, &form.cookie, &complete(&form), Some(&exe)).await;
    assert_eq!(status, 400);
    assert!(page.contains("href=\"#photo\"") && page.contains("value=\"Siti Rahayu\""));
    // Over `max_photo_bytes` but within the post's limit: read and dropped.
    let big = photo_bytes(2_100_000);
    let (status, page) = post_form(&app, &form.cookie, &complete(&form), Some(&big)).await;
    assert_eq!(status, 400);
    assert!(page.contains("href=\"#photo\""));
    assert_eq!(app.stream_len().await, 0);
    let stored = std::fs::read_dir(dir.path().join("sha256")).map_or(0, |d| d.count());
    assert_eq!(stored, 0, "no blob stored");
    // Just under it: stored whole.
    let fits = photo_bytes(1_999_000);
    let (status, _) = post_form(&app, &form.cookie, &complete(&form), Some(&fits)).await;
    assert_eq!(status, 201);
    let docs = app.tracked_complaints().await;
    let key = docs[0]["attachments"][0]["storage_key"].as_str().unwrap();
    assert_eq!(std::fs::read(dir.path().join(key)).unwrap(), fits);
    let left = std::fs::read_dir(dir.path().join("staging")).map_or(0, |d| d.count());
    assert_eq!(left, 0);
    app.stop().await;
}

#[tokio::test]
async fn open311_and_transcript_bodies_are_refused_by_their_length_before_they_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(dir.path(), "")).await;
    let addr = app.base_url.trim_start_matches("http://").to_string();
    for (path, content_type, auth) in [
        (
            "/open311/v2/bogor-311/requests.json",
            "application/x-www-form-urlencoded",
            String::new(),
        ),
        (
            "/v1/transcripts",
            "application/json",
            format!("authorization: Bearer {TOKEN}\r\n"),
        ),
    ] {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {content_type}\r\n{auth}content-length: {}\r\n\r\n",
            50 * MIB
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let (status, _, _) = answer_soon(&mut s).await;
        assert_eq!(status, 413, "{path}");
    }
    assert_eq!(app.stream_len().await, 0);
    app.stop().await;
}

/// The gateway binary as a child process, so that its memory can be read.
struct Gateway {
    child: Child,
    port: u16,
}

impl Gateway {
    fn start(ns: &str, dir: &std::path::Path, web: &str) -> Gateway {
        let port = common::private_redis::free_port();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[redis]\nurl = \"{}\"\nstream = \"test:{ns}:complaints\"\n\
             key_prefix = \"test:{ns}\"\n[spool]\ndir = \"{}\"\n[log]\nlevel = \"warn\"\n{}",
            common::redis_url(),
            dir.join("spool").display(),
            config(dir, web)
        );
        let path = dir.join("aduan.toml");
        std::fs::write(&path, text).expect("config");
        let child = Command::new(env!("CARGO_BIN_EXE_aduan"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gateway binary starts");
        Gateway { child, port }
    }

    async fn ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("http://127.0.0.1:{}/healthz", self.port))
            .await
            .map_or(true, |r| r.status() != 200)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "gateway did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `VmHWM` (peak resident set) and `VmRSS` of the process, in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .expect("a memory field")
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a whole post of a `photo`-byte photo, the filler sent chunk by
/// chunk; its status and `Retry-After`. A post answered before it was
/// sent whole stops sending and reads the answer.
async fn send_post(
    addr: String,
    cookie: Option<String>,
    p: Parts,
    photo: usize,
    filler: &'static [u8],
) -> (u16, Option<String>) {
    let length = p.head.len() + photo + p.tail.len();
    let mut s = start_post(
        &addr,
        cookie.as_deref(),
        &[],
        &p.content_type,
        length,
        &p.head,
    )
    .await;
    let mut sent = 0;
    let mut first = JPEG.to_vec();
    first.resize(filler.len(), 0x42);
    while sent < photo {
        let chunk = if sent == 0 { &first[..] } else { filler };
        let n = chunk.len().min(photo - sent);
        if s.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        sent += n;
    }
    if sent == photo {
        let _ = s.write_all(&p.tail).await;
    }
    let (status, headers, _) = tokio::time::timeout(Duration::from_secs(120), response(&mut s))
        .await
        .expect("an answer");
    (status, header(&headers, "retry-after").map(str::to_string))
}

#[tokio::test]
async fn sixty_four_posts_of_20_mib_raise_the_gateways_peak_memory_by_under_32_mib() {
    let ns = common::unique("webrss");
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = Gateway::start(
        &ns,
        dir.path(),
        "submissions_per_minute = 1000\nmax_photo_bytes = 25165824",
    );
    gateway.ready().await;
    let base = format!("http://127.0.0.1:{}", gateway.port);
    let addr = base.trim_start_matches("http://").to_string();
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{base}/lapor/bogor-311"))
        .send()
        .await
        .unwrap();
    let cookie = cookies(&page)
        .into_iter()
        .find(|c| c.starts_with("aduan_csrf="))
        .and_then(|c| c.split(';').next().map(str::to_string))
        .expect("a CSRF cookie");
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    let fields = |id: &str| {
        let form = Form {
            cookie: cookie.clone(),
            csrf: csrf.clone(),
            form_id: id.to_string(),
        };
        parts(&complete(&form))
    };
    // A few posts first, taken and refused, so that what any post needs
    // (connections, threads, the allocator's first pages) is in place: what
    // is measured is what the load adds.
    static FILLER: [u8; 64 * 1024] = [0x42; 64 * 1024];
    let mut warm = tokio::task::JoinSet::new();
    for n in 900..903 {
        let p = fields(&format!("{n:032x}"));
        warm.spawn(send_post(
            addr.clone(),
            Some(cookie.clone()),
            p,
            MIB,
            &FILLER,
        ));
    }
    warm.spawn(send_post(
        addr.clone(),
        None,
        fields(&format!("{:032x}", 903)),
        MIB,
        &FILLER,
    ));
    let mut warmed = Vec::new();
    while let Some(done) = warm.join_next().await {
        warmed.push(done.expect("a post").0);
    }
    warmed.sort();
    assert_eq!(warmed, [201, 201, 201, 403]);
    let (peak_before, rss_before) = gateway.memory();

    let mut posts = tokio::task::JoinSet::new();
    for n in 0..64 {
        let p = fields(&format!("{n:032x}"));
        posts.spawn(send_post(
            addr.clone(),
            Some(cookie.clone()),
            p,
            20 * MIB,
            &FILLER,
        ));
    }
    // And 16 without a CSRF cookie.
    for n in 64..80 {
        let p = fields(&format!("{n:032x}"));
        posts.spawn(send_post(addr.clone(), None, p, 20 * MIB, &FILLER));
    }
    let (mut created, mut busy, mut expired) = (0, 0, 0);
    while let Some(done) = posts.join_next().await {
        let (status, retry_after) = done.expect("a post");
        match status {
            201 => created += 1,
            503 => {
                assert!(retry_after.is_some(), "503 without Retry-After");
                busy += 1;
            }
            403 => expired += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    let (peak_after, rss_after) = gateway.memory();
    let grew = peak_after.saturating_sub(peak_before);
    eprintln!(
        "created {created}, busy {busy}, refused {expired}; VmHWM {peak_before} -> {peak_after} KiB, VmRSS {rss_before} -> {rss_after} KiB"
    );
    assert!(
        grew < 32 * 1024,
        "the peak resident set grew by {grew} KiB (VmHWM {peak_before} -> {peak_after})"
    );
    assert_eq!(expired, 16, "every post without a cookie refused");
    assert_eq!(created + busy, 64);
    assert!(created >= 1);

    // Each post taken is one complaint, its 20 MiB photo stored.
    let redis = redis::Client::open(common::redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let reply: redis::streams::StreamRangeReply =
        redis::AsyncCommands::xrange_all(&mut conn, format!("test:{ns}:complaints"))
            .await
            .unwrap();
    assert_eq!(reply.ids.len(), created + 3);
    let last = reply.ids.last().expect("an entry");
    let doc: Value =
        serde_json::from_str(&last.get::<String>("complaint").expect("complaint")).expect("json");
    let key = doc["attachments"][0]["storage_key"]
        .as_str()
        .expect("stored");
    let size = std::fs::metadata(dir.path().join(key))
        .expect("the blob")
        .len();
    assert_eq!(size, (20 * MIB) as u64);
}
