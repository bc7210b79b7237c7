//! The blob store and `GET /v1/blobs/{storage_key}` end to end, through the
//! real gateway, on both backends: a local directory, and an S3 bucket on a
//! local S3-compatible server (`tests/common/blobs.rs`). Bearer tokens,
//! signed URLs, ranges, conditional requests, `HEAD`, unknown and malformed
//! keys and path traversal; `put_file`'s atomicity and idempotence, and
//! `delete`; `aduan blobs sign` and `aduan blobs delete`; an email
//! attachment read back by its `storage_key`.

mod common;
#[path = "common/blobs.rs"]
mod s3_server;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aduan::blobs::{BlobError, BlobStore};
use aduan_adapter::{Blob, Secret};
use common::TestApp;
use futures::TryStreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const READER: &str = "pembaca-sistem-inti-5b1e9c";
const SIGNING_KEY: &str = "kunci-tanda-tangan-uji-3d7a";

fn key_of(bytes: &[u8]) -> String {
    format!("sha256/{}", aduan_adapter::verify::sha256_hex(bytes))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Bytes that differ at every offset, so a wrong range cannot pass.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + i / 251) as u8).wrapping_add(seed))
        .collect()
}

fn local_section(dir: &Path) -> String {
    format!(
        "[blobs]\ndir = \"{}\"\nreaders = [\"{READER}\", \"pembaca-lain\"]\nsigning_key = \"{SIGNING_KEY}\"\n",
        dir.display()
    )
}

fn s3_section(endpoint: &str, bucket: &str, staging: &Path) -> String {
    format!(
        "[blobs]\nbackend = \"s3\"\nendpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\npath_style = true\n\
         prefix = \"bukti/\"\naccess_key_id = \"uji\"\nsecret_access_key = \"rahasia-uji\"\n\
         staging_dir = \"{}\"\nreaders = [\"{READER}\", \"pembaca-lain\"]\nsigning_key = \"{SIGNING_KEY}\"\n",
        staging.display()
    )
}

/// The store a `[blobs]` section describes, as the gateway builds it.
fn store_of(section: &str) -> BlobStore {
    let config = aduan::settings::Config::from_toml(section, &[], "blobs.toml")
        .unwrap_or_else(|e| panic!("blob configuration is invalid:\n{e}"));
    BlobStore::new(&config.blobs).expect("blob store")
}

async fn read_all(store: &BlobStore, key: &str) -> Option<Vec<u8>> {
    let body = store.get(key, None).await.expect("get")?;
    let chunks: Vec<_> = body.stream.try_collect().await.expect("read");
    Some(chunks.concat())
}

async fn stage(store: &BlobStore, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = store.staging_dir().join(name);
    tokio::fs::write(&path, bytes).await.expect("stage");
    path
}

/// A GET of `path` with `headers`.
async fn get(
    app: &TestApp,
    path: &str,
    headers: &[(header::HeaderName, &str)],
) -> reqwest::Response {
    request(app, reqwest::Method::GET, path, headers).await
}

async fn request(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(header::HeaderName, &str)],
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path));
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bearer(token: &str) -> (header::HeaderName, String) {
    (header::AUTHORIZATION, format!("Bearer {token}"))
}

fn header<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    body["error"].as_str().unwrap_or_default().to_string()
}

/// Everything the route promises, against whichever backend `store` is.
async fn route_behaviour(app: &TestApp, store: &BlobStore) {
    let token = bearer(READER);
    let auth = (token.0.clone(), token.1.as_str());

    // An email attachment (no content type) and a downloaded photo (typed).
    let mail = pattern(1000, 3);
    let mail_key = key_of(&mail);
    store
        .put_all(vec![Blob {
            key: mail_key.clone(),
            bytes: mail.clone(),
        }])
        .await
        .expect("put_all");
    let photo = pattern(70_000, 11);
    let photo_key = key_of(&photo);
    let staged = stage(store, "foto-1", &photo).await;
    store
        .put_file(&photo_key, &staged, "image/jpeg")
        .await
        .expect("put_file");
    let photo_path = format!("/v1/blobs/{photo_key}");
    let hex = &photo_key["sha256/".len()..];

    // A reader's token: the whole blob and its headers.
    let answer = get(app, &photo_path, std::slice::from_ref(&auth)).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let h = answer.headers().clone();
    assert_eq!(header(&h, &header::CONTENT_TYPE), "image/jpeg");
    assert_eq!(header(&h, &header::CONTENT_LENGTH), "70000");
    assert_eq!(header(&h, &header::ETAG), format!("\"{hex}\""));
    assert_eq!(header(&h, &header::ACCEPT_RANGES), "bytes");
    assert_eq!(header(&h, &header::CACHE_CONTROL), "private");
    assert_eq!(header(&h, &header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(
        answer.bytes().await.expect("body").as_ref(),
        photo.as_slice()
    );
    // The second reader's token works too; a blob stored without a type is octet-stream.
    let answer = get(
        app,
        &format!("/v1/blobs/{mail_key}"),
        &[(header::AUTHORIZATION, "bearer pembaca-lain")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        header(answer.headers(), &header::CONTENT_TYPE),
        "application/octet-stream"
    );
    assert_eq!(
        answer.bytes().await.expect("body").as_ref(),
        mail.as_slice()
    );

    // No credentials, a wrong token, another scheme.
    let answer = get(app, &photo_path, &[]).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(answer.headers(), &header::WWW_AUTHENTICATE),
        "Bearer"
    );
    let answer = get(
        app,
        &photo_path,
        &[(header::AUTHORIZATION, "Bearer pembaca-sistem-inti-5b1e9d")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(answer).await, "forbidden");
    // A scheme without a token is no credential.
    let answer = get(app, &photo_path, &[(header::AUTHORIZATION, "Bearer ")]).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let basic = format!(
        "Basic {}",
        aduan_adapter::verify::base64_encode(READER.as_bytes())
    );
    let answer = get(app, &photo_path, &[(header::AUTHORIZATION, basic.as_str())]).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);

    // Signed URLs: good, expired, another key's signature, a changed expiry.
    let secret = Secret::literal(SIGNING_KEY);
    let expires = now() + 600;
    let signed = aduan::blobs::signed_path(&photo_key, expires, &secret);
    let answer = get(app, &signed, &[]).await;
    assert_eq!(answer.status(), StatusCode::OK, "{signed}");
    assert_eq!(
        answer.bytes().await.expect("body").as_ref(),
        photo.as_slice()
    );
    let stale = aduan::blobs::signed_path(&photo_key, now() - 1, &secret);
    let answer = get(app, &stale, &[]).await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(answer).await, "signature_expired");
    let for_mail = aduan::blobs::sign(&mail_key, expires, &secret);
    let answer = get(
        app,
        &format!("{photo_path}?expires={expires}&signature={for_mail}"),
        &[],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(answer).await, "bad_signature");
    let sig = aduan::blobs::sign(&photo_key, expires, &secret);
    let later = expires + 3600;
    let answer = get(
        app,
        &format!("{photo_path}?expires={later}&signature={sig}"),
        &[],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(answer).await, "bad_signature");
    let other_secret = aduan::blobs::sign(&photo_key, expires, &Secret::literal("kunci-lain"));
    let answer = get(
        app,
        &format!("{photo_path}?expires={expires}&signature={other_secret}"),
        &[],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    for partial in [
        format!("{photo_path}?signature={sig}"),
        format!("{photo_path}?expires={expires}"),
        format!("{signed}&signature={sig}"),
    ] {
        let answer = get(app, &partial, &[]).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{partial}");
    }
    // The HMAC as another language computes it.
    let by_hand = hex::encode(aduan_adapter::verify::hmac_sha256(
        SIGNING_KEY.as_bytes(),
        format!("{photo_key}\n{expires}").as_bytes(),
    ));
    assert_eq!(sig, by_hand);

    // Ranges: exact bytes, open-ended, suffix, past the end, several (ignored).
    let answer = get(
        app,
        &photo_path,
        &[auth.clone(), (header::RANGE, "bytes=100-199")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(answer.headers(), &header::CONTENT_RANGE),
        "bytes 100-199/70000"
    );
    assert_eq!(header(answer.headers(), &header::CONTENT_LENGTH), "100");
    assert_eq!(
        answer.bytes().await.expect("body").as_ref(),
        &photo[100..200]
    );
    let answer = get(
        app,
        &photo_path,
        &[auth.clone(), (header::RANGE, "bytes=69990-")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(answer.headers(), &header::CONTENT_RANGE),
        "bytes 69990-69999/70000"
    );
    assert_eq!(
        answer.bytes().await.expect("body").as_ref(),
        &photo[69_990..]
    );
    let answer = get(
        app,
        &photo_path,
        &[auth.clone(), (header::RANGE, "bytes=-7")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(answer.headers(), &header::CONTENT_RANGE),
        "bytes 69993-69999/70000"
    );
    assert_eq!(
        answer.bytes().await.expect("body").as_ref(),
        &photo[69_993..]
    );
    let answer = get(
        app,
        &photo_path,
        &[auth.clone(), (header::RANGE, "bytes=69000-99999")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        answer.bytes().await.expect("body").as_ref(),
        &photo[69_000..]
    );
    let answer = get(
        app,
        &photo_path,
        &[auth.clone(), (header::RANGE, "bytes=70000-")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header(answer.headers(), &header::CONTENT_RANGE),
        "bytes */70000"
    );
    let answer = get(
        app,
        &photo_path,
        &[auth.clone(), (header::RANGE, "bytes=0-1,5-6")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.bytes().await.expect("body").len(), 70_000);
    // A signed URL takes a range as well.
    let answer = get(app, &signed, &[(header::RANGE, "bytes=0-0")]).await;
    assert_eq!(answer.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(answer.bytes().await.expect("body").as_ref(), &photo[..1]);

    // ETag: 304 when the client has it, whatever else it asks.
    let etag = format!("\"{hex}\"");
    let answer = get(
        app,
        &photo_path,
        &[auth.clone(), (header::IF_NONE_MATCH, etag.as_str())],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(answer.headers(), &header::ETAG), etag);
    assert!(answer.bytes().await.expect("body").is_empty());
    let answer = get(
        app,
        &photo_path,
        &[auth.clone(), (header::IF_NONE_MATCH, "\"lain\"")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let answer = get(app, &photo_path, &[(header::IF_NONE_MATCH, etag.as_str())]).await;
    assert_eq!(
        answer.status(),
        StatusCode::UNAUTHORIZED,
        "conditions come after credentials"
    );

    // HEAD: the headers of the GET, no body.
    let answer = request(
        app,
        reqwest::Method::HEAD,
        &photo_path,
        std::slice::from_ref(&auth),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(header(answer.headers(), &header::CONTENT_LENGTH), "70000");
    assert_eq!(
        header(answer.headers(), &header::CONTENT_TYPE),
        "image/jpeg"
    );
    assert_eq!(header(answer.headers(), &header::ETAG), etag);
    assert!(answer.bytes().await.expect("body").is_empty());
    let answer = request(
        app,
        reqwest::Method::HEAD,
        &photo_path,
        &[auth.clone(), (header::RANGE, "bytes=-10")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(answer.headers(), &header::CONTENT_RANGE),
        "bytes 69990-69999/70000"
    );
    let answer = request(app, reqwest::Method::HEAD, &photo_path, &[]).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);

    // Unknown and malformed keys.
    let unknown = key_of(b"tidak pernah disimpan");
    let answer = get(
        app,
        &format!("/v1/blobs/{unknown}"),
        std::slice::from_ref(&auth),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(answer).await, "not_found");
    let answer = get(
        app,
        &aduan::blobs::signed_path(&unknown, expires, &secret),
        &[],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let answer = request(
        app,
        reqwest::Method::HEAD,
        &format!("/v1/blobs/{unknown}"),
        std::slice::from_ref(&auth),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    for malformed in [
        format!("/v1/blobs/sha256/{}", hex.to_uppercase()),
        format!("/v1/blobs/sha256/{}", &hex[..63]),
        format!("/v1/blobs/{photo_key}/"),
        format!("/v1/blobs/{photo_key}.type"),
        format!("/v1/blobs/md5/{}", &hex[..32]),
        "/v1/blobs/sha256".to_string(),
        "/v1/blobs/staging".to_string(),
    ] {
        let answer = get(app, &malformed, std::slice::from_ref(&auth)).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{malformed}");
    }
    // Not a route for writes.
    let answer = app
        .client
        .put(app.url(&photo_path))
        .header(token.0.clone(), token.1.as_str())
        .body("x")
        .send()
        .await
        .expect("PUT");
    assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Deleted, a blob is gone for every reader.
    assert!(store.delete(&photo_key).await.expect("delete"));
    assert!(!store.exists(&photo_key).await.expect("exists"));
    let answer = get(app, &photo_path, std::slice::from_ref(&auth)).await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let answer = get(app, &signed, &[]).await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert!(!store.delete(&photo_key).await.expect("delete again"));
}

/// `put_file`: whole or nothing, once per key, checked against its key.
async fn put_file_behaviour(store: &BlobStore) {
    // Larger than one S3 part (8 MiB), so the bucket gets a multipart upload.
    let big = pattern(17 * 1024 * 1024 + 123, 29);
    let key = key_of(&big);
    let staged = stage(store, "video-1", &big).await;

    // Readers polling while it is stored see nothing, or all of it.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (store, key, done) = (store.clone(), key.clone(), done.clone());
        tokio::spawn(async move {
            let mut polls = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(bytes) = read_all(&store, &key).await {
                    assert_eq!(
                        bytes.len(),
                        17 * 1024 * 1024 + 123,
                        "a partial blob was visible"
                    );
                    assert_eq!(key_of(&bytes), key, "a blob was visible with other bytes");
                }
                polls += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            polls
        })
    };
    store
        .put_file(&key, &staged, "video/mp4")
        .await
        .expect("put_file");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        poller.await.expect("poller") > 0,
        "readers polled during the upload"
    );
    assert!(!staged.exists(), "the staged file is taken");
    assert_eq!(read_all(store, &key).await.as_deref(), Some(big.as_slice()));
    let info = store.stat(&key).await.expect("stat").expect("stored");
    assert_eq!(info.size, big.len() as u64);
    assert_eq!(info.content_type.as_deref(), Some("video/mp4"));
    // A range of the large object, from the store itself.
    let part = store
        .get(
            &key,
            Some(aduan::blobs::ByteRange::FromTo(9_000_000, 9_000_009)),
        )
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(
        (part.size, part.range.clone()),
        (big.len() as u64, 9_000_000..9_000_010)
    );
    let chunks: Vec<_> = part.stream.try_collect().await.expect("read");
    assert_eq!(chunks.concat(), &big[9_000_000..9_000_010]);

    // The same key again (a redelivery): nothing is written, not even the new type.
    let again = stage(store, "video-2", &big).await;
    store
        .put_file(&key, &again, "application/octet-stream")
        .await
        .expect("second put_file");
    assert!(!again.exists(), "the second staged file is removed");
    let info = store.stat(&key).await.expect("stat").expect("stored");
    assert_eq!(
        info.content_type.as_deref(),
        Some("video/mp4"),
        "the first write stands"
    );

    // Bytes that are not what the key names never become a blob, however large.
    let mut forged = big.clone();
    forged[17 * 1024 * 1024] ^= 1;
    let forged_key = format!("sha256/{}", "0f".repeat(32));
    let staged = stage(store, "video-3", &forged).await;
    assert!(matches!(
        store.put_file(&forged_key, &staged, "video/mp4").await,
        Err(BlobError::BadKey)
    ));
    assert!(staged.exists(), "a refused file is left to the caller");
    assert!(!store.exists(&forged_key).await.expect("exists"));
    assert!(store.get(&forged_key, None).await.expect("get").is_none());
    tokio::fs::remove_file(&staged).await.expect("remove");
    let small = stage(store, "foto-3", b"kecil").await;
    assert!(matches!(
        store.put_file(&forged_key, &small, "image/png").await,
        Err(BlobError::BadKey)
    ));
    assert!(!store.exists(&forged_key).await.expect("exists"));
    tokio::fs::remove_file(&small).await.expect("remove");
    // Malformed keys are refused before anything is read.
    for bad in ["sha256/../../etc/passwd", "sha256/ABC"] {
        assert!(matches!(
            store.put_file(bad, &staged, "image/png").await,
            Err(BlobError::BadKey)
        ));
        assert!(matches!(store.delete(bad).await, Err(BlobError::BadKey)));
    }

    // Deleted on request: gone, and deleting again says so.
    assert!(store.delete(&key).await.expect("delete"));
    assert!(!store.exists(&key).await.expect("exists"));
    assert!(read_all(store, &key).await.is_none());
    assert!(!store.delete(&key).await.expect("delete again"));
}

#[tokio::test]
async fn local_store_serves_blobs_by_token_and_signed_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let section = local_section(&dir.path().join("blobs"));
    let mut app = common::spawn_app(&section).await;
    let store = store_of(&section);
    route_behaviour(&app, &store).await;
    app.stop().await;
}

#[tokio::test]
async fn local_store_put_file_is_atomic_idempotent_and_deletable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = dir.path().join("blobs");
    let store = store_of(&local_section(&blobs));
    assert_eq!(store.staging_dir(), blobs.join("staging"));
    put_file_behaviour(&store).await;
    // A second put of a stored key leaves the very file that was there.
    let bytes = pattern(5000, 1);
    let key = key_of(&bytes);
    store
        .put_file(&key, &stage(&store, "a", &bytes).await, "image/png")
        .await
        .expect("put");
    let file = blobs.join(&key);
    let before = std::fs::metadata(&file).expect("stored file");
    store
        .put_file(&key, &stage(&store, "b", &bytes).await, "image/png")
        .await
        .expect("put again");
    let after = std::fs::metadata(&file).expect("stored file");
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    // Nothing temporary is left beside the blobs, nothing in staging.
    let names: Vec<String> = std::fs::read_dir(blobs.join("sha256"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let hex = &key["sha256/".len()..];
    let mut expected = vec![hex.to_string(), format!("{hex}.type")];
    expected.sort();
    let mut names = names;
    names.sort();
    assert_eq!(names, expected);
    assert_eq!(
        std::fs::read_dir(blobs.join("staging"))
            .expect("staging")
            .count(),
        0
    );
}

#[tokio::test]
async fn s3_store_serves_blobs_by_token_and_signed_url() {
    let server = s3_server::S3Server::start().await;
    server.create_bucket("aduan-bukti").await;
    let staging = tempfile::tempdir().expect("tempdir");
    let section = s3_section(&server.endpoint, "aduan-bukti", staging.path());
    let mut app = common::spawn_app(&section).await;
    let store = store_of(&section);
    route_behaviour(&app, &store).await;
    app.stop().await;
}

#[tokio::test]
async fn s3_store_put_file_is_atomic_idempotent_and_deletable() {
    let server = s3_server::S3Server::start().await;
    server.create_bucket("aduan-unggah").await;
    let staging = tempfile::tempdir().expect("tempdir");
    let store = store_of(&s3_section(
        &server.endpoint,
        "aduan-unggah",
        staging.path(),
    ));
    assert_eq!(store.staging_dir(), staging.path());
    put_file_behaviour(&store).await;
    // Objects are under the prefix, private: the server refuses an anonymous read.
    let bytes = pattern(3000, 5);
    let key = key_of(&bytes);
    store
        .put_all(vec![Blob {
            key: key.clone(),
            bytes: bytes.clone(),
        }])
        .await
        .expect("put_all");
    let anonymous = reqwest::get(format!("{}/aduan-unggah/bukti/{key}", server.endpoint))
        .await
        .expect("GET");
    assert!(
        matches!(
            anonymous.status(),
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED
        ),
        "an object is readable without credentials: {}",
        anonymous.status()
    );
    assert_eq!(
        read_all(&store, &key).await.as_deref(),
        Some(bytes.as_slice())
    );
}

#[tokio::test]
async fn s3_store_refuses_configurations_it_cannot_use() {
    for (section, problem) in [
        ("[blobs]\nbackend = \"s3\"\n", "blobs.bucket"),
        (
            "[blobs]\nbackend = \"s3\"\nbucket = \"b\"\naccess_key_id = \"x\"\n",
            "blobs.access_key_id",
        ),
        (
            "[blobs]\nbackend = \"s3\"\nbucket = \"b\"\nendpoint = \"ftp://x\"\n",
            "blobs.endpoint",
        ),
        (
            "[blobs]\nbackend = \"s3\"\nbucket = \"b\"\nprefix = \"a/../b\"\n",
            "blobs.prefix",
        ),
    ] {
        let errors = aduan::settings::Config::from_toml(section, &[], "blobs.toml")
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{section}"));
        assert!(errors.to_string().contains(problem), "{section}: {errors}");
    }
}

/// Sends `target` as the request line's path, byte for byte, and returns the
/// status code and the whole answer.
async fn raw_get(app: &TestApp, target: &str) -> (u16, String) {
    let addr = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {READER}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

#[tokio::test]
async fn paths_outside_the_store_are_never_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = dir.path().join("store").join("blobs");
    // A file beside the store that a traversal would reach.
    let secret = "rahasia-di-luar-penyimpanan";
    std::fs::create_dir_all(blobs.join("sha256")).expect("dirs");
    std::fs::write(dir.path().join("store").join("passwd"), secret).expect("outside file");
    std::fs::write(blobs.join("sha256").join("passwd"), secret).expect("inside, not a key");
    let mut app = common::spawn_app(&local_section(&blobs)).await;
    for target in [
        "/v1/blobs/../../etc/passwd",
        "/v1/blobs/../passwd",
        "/v1/blobs/sha256/../../passwd",
        "/v1/blobs/sha256/..%2f..%2fpasswd",
        "/v1/blobs/sha256/%2e%2e/%2e%2e/passwd",
        "/v1/blobs/sha256/passwd",
        "/v1/blobs/sha256/..",
        "/v1/blobs/sha256/",
        "/v1/blobs/%2fetc%2fpasswd",
        "/v1/blobs//etc/passwd",
    ] {
        let (status, text) = raw_get(&app, target).await;
        assert!(status == 404 || status == 400, "{target}: {status}");
        assert!(
            !text.contains(secret),
            "{target} read a file outside the store"
        );
        assert!(!text.contains("root:"), "{target} read /etc/passwd");
    }
    // A valid key still works through the same raw request.
    let bytes = b"bukti yang sah".to_vec();
    let key = key_of(&bytes);
    store_of(&local_section(&blobs))
        .put_all(vec![Blob {
            key: key.clone(),
            bytes,
        }])
        .await
        .expect("put_all");
    let (status, text) = raw_get(&app, &format!("/v1/blobs/{key}")).await;
    assert_eq!(status, 200);
    assert!(text.ends_with("bukti yang sah"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn email_attachments_are_read_back_by_their_storage_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let section = format!(
        "{}\n[[instances]]\nname = \"lapor-postmark\"\nkind = \"postmark\"\nusername = \"postmark\"\npassword = \"rahasia-postmark\"\n",
        local_section(&dir.path().join("blobs"))
    );
    let mut app = common::spawn_app(&section).await;
    let body = common::fixtures("email").bytes("webhooks/postmark-parsed.json");
    let answer = app
        .client
        .post(app.url("/webhooks/email/lapor-postmark"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::AUTHORIZATION,
            aduan_adapter::testkit::basic_auth("postmark", "rahasia-postmark"),
        )
        .body(body)
        .send()
        .await
        .expect("POST");
    assert!(answer.status().is_success(), "{}", answer.status());
    let docs = app.complaints().await;
    let attachments: Vec<_> = docs
        .iter()
        .flat_map(|d| d["attachments"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(!attachments.is_empty(), "the fixture carries attachments");
    for a in attachments {
        let key = a["storage_key"].as_str().expect("storage_key");
        let signed = aduan::blobs::signed_path(key, now() + 60, &Secret::literal(SIGNING_KEY));
        let answer = get(&app, &signed, &[]).await;
        assert_eq!(answer.status(), StatusCode::OK, "{key}");
        let bytes = answer.bytes().await.expect("body");
        assert_eq!(
            Some(aduan_adapter::verify::sha256_hex(&bytes).as_str()),
            a["sha256"].as_str()
        );
        if let Some(size) = a["size"].as_u64() {
            assert_eq!(bytes.len() as u64, size);
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_command_signs_urls_and_deletes_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = dir.path().join("blobs");
    let section = local_section(&blobs);
    let config = dir.path().join("aduan.toml");
    std::fs::write(&config, &section).expect("config file");
    let mut app = common::spawn_app(&section).await;
    let bytes = pattern(4096, 77);
    let key = key_of(&bytes);
    store_of(&section)
        .put_all(vec![Blob {
            key: key.clone(),
            bytes: bytes.clone(),
        }])
        .await
        .expect("put_all");

    let aduan = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_aduan"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run aduan");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let before = now();
    let (code, path, err) = aduan(&["blobs", "sign", &key, "--ttl", "10m"]);
    assert_eq!(code, Some(0), "{err}");
    let expires: u64 = path
        .split("expires=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no expiry in {path}"));
    assert!((before + 600..=now() + 600).contains(&expires), "{path}");
    assert_eq!(
        path,
        aduan::blobs::signed_path(&key, expires, &Secret::literal(SIGNING_KEY))
    );
    let answer = get(&app, &path, &[]).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.bytes().await.expect("body").as_ref(),
        bytes.as_slice()
    );

    let (code, url, _) = aduan(&[
        "blobs",
        "sign",
        &key,
        "--ttl",
        "30s",
        "--base",
        "https://aduan.example.go.id/",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        url.starts_with(&format!(
            "https://aduan.example.go.id/v1/blobs/{key}?expires="
        )),
        "{url}"
    );
    let (code, _, err) = aduan(&["blobs", "sign", &key, "--ttl", "10 minutes"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("10 minutes"), "{err}");
    let (code, _, err) = aduan(&["blobs", "sign", "sha256/../../etc/passwd"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not a storage key"), "{err}");

    let (code, out, err) = aduan(&["blobs", "delete", &key]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), format!("deleted {key}").as_str()),
        "{err}"
    );
    let answer = get(&app, &path, &[]).await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let (code, out, _) = aduan(&["blobs", "delete", &key]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), format!("absent {key}").as_str())
    );

    // Without a signing key there is nothing to sign with.
    std::fs::write(&config, format!("[blobs]\ndir = \"{}\"\n", blobs.display())).expect("config");
    let (code, _, err) = aduan(&["blobs", "sign", &key]);
    assert_ne!(code, Some(0));
    assert!(err.contains("signing_key"), "{err}");
    app.stop().await;
}
