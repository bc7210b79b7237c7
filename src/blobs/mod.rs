//! The content-addressed store for attachment bytes the gateway keeps itself
//! (email attachments, and the media worker's downloads). A blob's key is
//! `sha256/<hex>` of its bytes, so writing the same attachment twice, from a
//! redelivery or from two citizens, is one file.
//!
//! Blobs are written durably before the complaint or event that names them
//! is written: a consumer that reads a `storage_key` always finds the bytes.
//! A crash between the two leaves an unreferenced blob, which is harmless.
//!
//! [`BlobStore`] is the one surface the rest of the gateway uses, over a
//! backend chosen by `[blobs] backend`:
//! - `local`: a directory, `<dir>/sha256/<hex>` (the default).
//! - `s3`: an S3-compatible bucket; the key is the object name (after `prefix`).
//!
//! - `route`: `GET /v1/blobs/{storage_key}` for the core system, by bearer
//!   token or signed URL.
//! - `sign`: signed, expiring blob URLs, and the TTLs they are minted with.

mod local;
pub mod route;
mod s3;
mod sign;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aduan_adapter::Blob;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::settings::{BlobBackend, BlobsConfig};

pub use sign::{SignatureError, TtlError, parse_ttl, sign, signed_path, verify_signature};

/// What every storage key starts with.
pub const KEY_PREFIX: &str = "sha256/";

/// The content type served for a blob stored without one.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Why a blob could not be stored or read. A complaint whose blobs cannot be
/// stored is not accepted either.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob key is not `sha256/<hex>` of its bytes")]
    BadKey,
    #[error("blob store configuration: {0}")]
    Config(String),
    #[error("range not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable {
        /// The blob's whole size.
        size: u64,
    },
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store: {0}")]
    Remote(String),
}

/// Whether `key` is a storage key: `sha256/` and 64 lowercase hex digits,
/// nothing else.
pub fn is_valid_key(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The hex digest a valid key names.
fn digest_of(key: &str) -> Result<&str, BlobError> {
    if is_valid_key(key) {
        Ok(&key[KEY_PREFIX.len()..])
    } else {
        Err(BlobError::BadKey)
    }
}

/// The content type as stored: a `type/subtype` of visible ASCII with any
/// parameters, lowercased type, at most 255 bytes; anything else is dropped
/// (and served as [`DEFAULT_CONTENT_TYPE`]).
pub fn normalize_content_type(content_type: &str) -> Option<String> {
    let ct = content_type.trim();
    let (essence, params) = match ct.split_once(';') {
        Some((e, p)) => (e.trim(), Some(p.trim())),
        None => (ct, None),
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let (kind, sub) = essence.split_once('/')?;
    let visible = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !(token(kind) && token(sub) && params.is_none_or(visible)) || ct.len() > 255 {
        return None;
    }
    let essence = essence.to_ascii_lowercase();
    Some(match params {
        Some(p) if !p.is_empty() => format!("{essence}; {p}"),
        _ => essence,
    })
}

/// One range of a `Range: bytes=…` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b`: from `a` to `b`, both included.
    FromTo(u64, u64),
    /// `bytes=a-`: from `a` to the end.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Reads a `Range` header of a single byte range. `None` for other units,
    /// several ranges or anything malformed: such a header is ignored and the
    /// whole blob served.
    pub fn parse(header: &str) -> Option<ByteRange> {
        let spec = header.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let number = |s: &str| {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, false) => Some(ByteRange::Suffix(number(last)?)),
            (false, true) => Some(ByteRange::From(number(first)?)),
            (false, false) => {
                let (a, b) = (number(first)?, number(last)?);
                (a <= b).then_some(ByteRange::FromTo(a, b))
            }
            (true, true) => None,
        }
    }

    /// The bytes this range selects of a blob of `size` bytes, as a half-open
    /// range; `None` when it selects none (the answer is then `416`).
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            ByteRange::FromTo(a, b) if a < size => Some(a..b.min(size - 1) + 1),
            ByteRange::From(a) if a < size => Some(a..size),
            ByteRange::Suffix(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
            _ => None,
        }
    }
}

/// What is known of a stored blob without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The whole blob's size in bytes.
    pub size: u64,
    /// The content type it was stored with, if any.
    pub content_type: Option<String>,
}

/// A stored blob being read: what it is, and its bytes (or the requested
/// range of them) as a stream, never held whole in memory.
pub struct BlobBody {
    /// The whole blob's size in bytes.
    pub size: u64,
    /// The content type it was stored with, if any.
    pub content_type: Option<String>,
    /// The bytes `stream` yields, of `0..size`.
    pub range: Range<u64>,
    /// The bytes, in order.
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
}

impl fmt::Debug for BlobBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobBody")
            .field("size", &self.size)
            .field("content_type", &self.content_type)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// What a backend does; [`BlobStore`] checks keys before calling it.
#[async_trait::async_trait]
trait Backend: Send + Sync + fmt::Debug {
    async fn put_all(&self, blobs: Vec<Blob>) -> Result<(), BlobError>;
    async fn put_file(
        &self,
        key: &str,
        staged: &Path,
        content_type: Option<String>,
    ) -> Result<(), BlobError>;
    fn staging_dir(&self) -> PathBuf;
    async fn stat(&self, key: &str) -> Result<Option<BlobInfo>, BlobError>;
    async fn get(&self, key: &str, range: Option<ByteRange>)
    -> Result<Option<BlobBody>, BlobError>;
    async fn delete(&self, key: &str) -> Result<bool, BlobError>;
}

/// The blob store: a local directory or an S3-compatible bucket, as
/// `[blobs] backend` says. Cheap to clone; clones share one backend.
#[derive(Debug, Clone)]
pub struct BlobStore {
    backend: Arc<dyn Backend>,
}

impl BlobStore {
    /// The store `cfg` describes. Fails on a configuration problem (an `s3`
    /// store without a bucket, an endpoint that is not a URL); nothing is
    /// contacted or created yet.
    pub fn new(cfg: &BlobsConfig) -> Result<Self, BlobError> {
        if let Some((key, message)) = cfg.problems().first() {
            return Err(BlobError::Config(format!("{key}: {message}")));
        }
        let backend: Arc<dyn Backend> = match cfg.backend {
            BlobBackend::Local => Arc::new(local::LocalBackend::new(cfg)),
            BlobBackend::S3 => Arc::new(s3::S3Backend::new(cfg)?),
        };
        Ok(BlobStore { backend })
    }

    /// Writes every blob durably: on return each is on disk (file and
    /// directory entry fsynced) or in the bucket. A blob already stored is
    /// not written again. A key that is not the SHA-256 of its bytes is
    /// refused ([`BlobError::BadKey`]).
    pub async fn put_all(&self, blobs: Vec<Blob>) -> Result<(), BlobError> {
        if blobs.is_empty() {
            return Ok(());
        }
        self.backend.put_all(blobs).await
    }

    /// Stores the file `staged` (in [`BlobStore::staging_dir`], written and
    /// hashed by the caller) as `key` with `content_type`. The file's bytes
    /// are checked against the key ([`BlobError::BadKey`] when they differ).
    /// The blob appears whole or not at all: the local store fsyncs the file
    /// and renames it into place, the bucket receives one PUT, or a
    /// multipart upload completed only after its last part. When `key` is
    /// already stored nothing is written.
    ///
    /// On success the staged file is gone (moved into the store, or removed);
    /// on error it is left for the caller to remove.
    pub async fn put_file(
        &self,
        key: &str,
        staged: &Path,
        content_type: &str,
    ) -> Result<(), BlobError> {
        digest_of(key)?;
        self.backend
            .put_file(key, staged, normalize_content_type(content_type))
            .await
    }

    /// A directory for downloads in progress, on the same file system as the
    /// local store (so [`BlobStore::put_file`] is a rename). Created when
    /// missing, as far as it can be; writing into it reports any failure.
    pub fn staging_dir(&self) -> PathBuf {
        let dir = self.backend.staging_dir();
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    /// Whether `key` is stored. `false` for a malformed key.
    pub async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        Ok(self.stat(key).await?.is_some())
    }

    /// The size and content type of `key`, or `None` when it is not stored
    /// (or malformed: nothing is looked up then).
    pub async fn stat(&self, key: &str) -> Result<Option<BlobInfo>, BlobError> {
        if !is_valid_key(key) {
            return Ok(None);
        }
        self.backend.stat(key).await
    }

    /// Reads `key`, whole or the `range` of it, as a stream. `None` when it is
    /// not stored (or malformed); [`BlobError::RangeNotSatisfiable`] when the
    /// range selects no byte of it.
    pub async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, BlobError> {
        if !is_valid_key(key) {
            return Ok(None);
        }
        self.backend.get(key, range).await
    }

    /// Deletes `key` (a citizen's file, on request): `true` when it was
    /// stored. References to it in complaints and events stay, and then
    /// answer `404`.
    pub async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        digest_of(key)?;
        self.backend.delete(key).await
    }
}

/// Checks that `bytes` are what `key` names.
fn check_digest(key: &str, bytes: &[u8]) -> Result<(), BlobError> {
    if digest_of(key)? == aduan_adapter::verify::sha256_hex(bytes) {
        Ok(())
    } else {
        // A wrong key would let one attachment's bytes stand in for another's.
        Err(BlobError::BadKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sha256_and_lowercase_hex_only() {
        let hex = "ab".repeat(32);
        assert!(is_valid_key(&format!("sha256/{hex}")));
        for key in [
            "sha256/../../etc/passwd".to_string(),
            "md5/abc".into(),
            format!("sha256/{}", hex.to_uppercase()),
            format!("sha256/{hex}0"),
            format!("sha256/{}", &hex[1..]),
            format!("sha256//{}", &hex[1..]),
            format!("/sha256/{hex}"),
            format!("sha256/{}g", &hex[1..]),
            String::new(),
        ] {
            assert!(!is_valid_key(&key), "{key}");
        }
    }

    #[test]
    fn ranges_parse_and_resolve_as_rfc_9110_says() {
        use ByteRange::*;
        assert_eq!(ByteRange::parse("bytes=0-9"), Some(FromTo(0, 9)));
        assert_eq!(ByteRange::parse("bytes=5-"), Some(From(5)));
        assert_eq!(ByteRange::parse("bytes=-3"), Some(Suffix(3)));
        for ignored in [
            "bytes=9-0",
            "bytes=-",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(ByteRange::parse(ignored), None, "{ignored}");
        }
        assert_eq!(FromTo(0, 9).resolve(100), Some(0..10));
        assert_eq!(FromTo(90, 200).resolve(100), Some(90..100));
        assert_eq!(FromTo(100, 200).resolve(100), None);
        assert_eq!(From(99).resolve(100), Some(99..100));
        assert_eq!(From(100).resolve(100), None);
        assert_eq!(Suffix(10).resolve(100), Some(90..100));
        assert_eq!(Suffix(1000).resolve(100), Some(0..100));
        assert_eq!(Suffix(0).resolve(100), None);
        assert_eq!(Suffix(5).resolve(0), None);
        assert_eq!(From(0).resolve(0), None);
    }

    #[test]
    fn content_types_are_kept_only_when_well_formed() {
        assert_eq!(
            normalize_content_type("Image/JPEG").as_deref(),
            Some("image/jpeg")
        );
        assert_eq!(
            normalize_content_type("audio/ogg; codecs=opus").as_deref(),
            Some("audio/ogg; codecs=opus")
        );
        for bad in [
            "",
            "jpeg",
            "image/",
            "/jpeg",
            "text/html\r\nSet-Cookie: x=1",
            "image/jp eg",
        ] {
            assert_eq!(normalize_content_type(bad), None, "{bad:?}");
        }
        assert_eq!(
            normalize_content_type(&format!("a/{}", "b".repeat(300))),
            None
        );
    }
}
