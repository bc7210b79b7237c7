//! The directory backend: `<dir>/sha256/<hex>` holds the bytes and, when a
//! content type was given, `<dir>/sha256/<hex>.type` holds it. Every file
//! appears by a rename after an fsync, so a reader finds a whole blob or
//! none; the type is in place before the bytes.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use aduan_adapter::Blob;
use futures::StreamExt as _;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::{Backend, BlobBody, BlobError, BlobInfo, ByteRange, check_digest, digest_of};
use crate::settings::BlobsConfig;

/// Chunk size of reads (hashing a staged file, streaming a blob).
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(super) struct LocalBackend {
    dir: PathBuf,
    staging: PathBuf,
}

impl LocalBackend {
    /// A store under `cfg.dir`; directories are created on first write.
    pub(super) fn new(cfg: &BlobsConfig) -> Self {
        LocalBackend {
            dir: cfg.dir.clone(),
            staging: cfg
                .staging_dir
                .clone()
                .unwrap_or_else(|| cfg.dir.join("staging")),
        }
    }

    /// The file of a valid key.
    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        Ok(self.dir.join("sha256").join(digest_of(key)?))
    }

    /// The content type's file beside the blob's.
    fn type_path(blob: &Path) -> PathBuf {
        blob.with_extension("type")
    }

    /// Writes one blob: temporary file, fsync, rename, fsync of the directory.
    fn put(&self, blob: &Blob) -> Result<(), BlobError> {
        let path = self.path(&blob.key)?;
        check_digest(&blob.key, &blob.bytes)?;
        if path.exists() {
            return Ok(());
        }
        let dir = parent(&path)?;
        std::fs::create_dir_all(dir)?;
        write_atomically(dir, &path, &blob.bytes)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    /// Moves a staged file into place after checking its digest.
    fn put_staged(
        &self,
        key: &str,
        staged: &Path,
        content_type: Option<&str>,
    ) -> Result<(), BlobError> {
        let path = self.path(key)?;
        if path.exists() {
            std::fs::remove_file(staged)?;
            return Ok(());
        }
        let mut file = std::fs::File::open(staged)?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        if hex::encode(hasher.finalize()) != digest_of(key)? {
            return Err(BlobError::BadKey);
        }
        file.sync_all()?;
        drop(file);
        let dir = parent(&path)?;
        std::fs::create_dir_all(dir)?;
        if let Some(ct) = content_type {
            write_atomically(dir, &Self::type_path(&path), ct.as_bytes())?;
        }
        match std::fs::rename(staged, &path) {
            Ok(()) => {}
            // A staging directory on another file system: copy, then rename.
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                let tmp = temporary(dir);
                let copied = std::fs::copy(staged, &tmp)
                    .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
                    .and_then(|()| std::fs::rename(&tmp, &path));
                if let Err(e) = copied {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e.into());
                }
                std::fs::remove_file(staged)?;
            }
            Err(e) => return Err(e.into()),
        }
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    /// The content type recorded for the blob at `path`.
    async fn content_type(path: &Path) -> Result<Option<String>, BlobError> {
        match tokio::fs::read_to_string(Self::type_path(path)).await {
            Ok(ct) => Ok(super::normalize_content_type(&ct)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(LocalBackend) -> Result<T, BlobError> + Send + 'static,
    ) -> impl Future<Output = Result<T, BlobError>> {
        let store = self.clone();
        async move {
            tokio::task::spawn_blocking(move || work(store))
                .await
                .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
        }
    }
}

#[async_trait::async_trait]
impl Backend for LocalBackend {
    async fn put_all(&self, blobs: Vec<Blob>) -> Result<(), BlobError> {
        self.blocking(move |store| blobs.iter().try_for_each(|blob| store.put(blob)))
            .await
    }

    async fn put_file(
        &self,
        key: &str,
        staged: &Path,
        content_type: Option<String>,
    ) -> Result<(), BlobError> {
        let (key, staged) = (key.to_string(), staged.to_path_buf());
        self.blocking(move |store| store.put_staged(&key, &staged, content_type.as_deref()))
            .await
    }

    fn staging_dir(&self) -> PathBuf {
        self.staging.clone()
    }

    async fn stat(&self, key: &str) -> Result<Option<BlobInfo>, BlobError> {
        let path = self.path(key)?;
        let meta = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(BlobInfo {
            size: meta.len(),
            content_type: Self::content_type(&path).await?,
        }))
    }

    async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, BlobError> {
        let path = self.path(key)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Ok(None);
        }
        let size = meta.len();
        let range = match range {
            None => 0..size,
            Some(r) => r
                .resolve(size)
                .ok_or(BlobError::RangeNotSatisfiable { size })?,
        };
        if range.start > 0 {
            file.seek(std::io::SeekFrom::Start(range.start)).await?;
        }
        let reader = file.take(range.end - range.start);
        Ok(Some(BlobBody {
            size,
            content_type: Self::content_type(&path).await?,
            range,
            stream: tokio_util::io::ReaderStream::with_capacity(reader, CHUNK).boxed(),
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        let path = self.path(key)?;
        self.blocking(move |_| {
            let existed = match std::fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(e.into()),
            };
            match std::fs::remove_file(LocalBackend::type_path(&path)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            if existed {
                std::fs::File::open(parent(&path)?)?.sync_all()?;
            }
            Ok(existed)
        })
        .await
    }
}

fn parent(path: &Path) -> Result<&Path, BlobError> {
    path.parent().ok_or(BlobError::BadKey)
}

/// A fresh temporary name in `dir`, which no key can name.
fn temporary(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        ulid::Ulid::generate()
    ))
}

/// Writes `bytes` to `path` by a synced temporary file in `dir` and a rename.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), BlobError> {
    let tmp = temporary(dir);
    let written = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create_new(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::super::BlobStore;
    use super::*;
    use futures::TryStreamExt as _;

    fn blob(bytes: &[u8]) -> Blob {
        Blob {
            key: format!("sha256/{}", aduan_adapter::verify::sha256_hex(bytes)),
            bytes: bytes.to_vec(),
        }
    }

    fn store(dir: &Path) -> BlobStore {
        BlobStore::new(&BlobsConfig {
            dir: dir.to_path_buf(),
            ..BlobsConfig::default()
        })
        .expect("store")
    }

    async fn read(store: &BlobStore, key: &str, range: Option<ByteRange>) -> Vec<u8> {
        let body = store.get(key, range).await.expect("get").expect("stored");
        let chunks: Vec<_> = body.stream.try_collect().await.expect("read");
        chunks.concat()
    }

    #[tokio::test]
    async fn writes_once_by_content_and_refuses_wrong_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let photo = blob(b"foto jalan berlubang");
        store
            .put_all(vec![photo.clone(), photo.clone()])
            .await
            .expect("stored");
        let path = dir.path().join(&photo.key);
        assert_eq!(std::fs::read(&path).expect("file"), photo.bytes);
        let entries = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .count();
        assert_eq!(entries, 1, "no temporary files left");
        assert_eq!(read(&store, &photo.key, None).await, photo.bytes);
        let info = store.stat(&photo.key).await.expect("stat").expect("stored");
        assert_eq!((info.size, info.content_type), (20, None));

        let lying = Blob {
            key: photo.key.clone(),
            bytes: b"lain".to_vec(),
        };
        assert!(matches!(
            store.put_all(vec![lying]).await,
            Err(BlobError::BadKey)
        ));
        for key in ["sha256/../../etc/passwd", "md5/abc", "sha256/ABC"] {
            assert!(store.get(key, None).await.expect("get").is_none(), "{key}");
            assert!(!store.exists(key).await.expect("exists"), "{key}");
        }
    }

    #[tokio::test]
    async fn staged_files_move_into_place_with_their_type() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let staging = store.staging_dir();
        assert_eq!(staging, dir.path().join("staging"));
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let key = format!("sha256/{}", aduan_adapter::verify::sha256_hex(&bytes));
        let staged = staging.join("download-1");
        std::fs::write(&staged, &bytes).expect("stage");
        store
            .put_file(&key, &staged, "Image/JPEG")
            .await
            .expect("stored");
        assert!(!staged.exists(), "the staged file is moved");
        assert_eq!(read(&store, &key, None).await, bytes);
        assert_eq!(
            read(&store, &key, Some(ByteRange::FromTo(10, 19))).await,
            &bytes[10..20]
        );
        assert_eq!(
            read(&store, &key, Some(ByteRange::Suffix(5))).await,
            &bytes[bytes.len() - 5..]
        );
        let info = store.stat(&key).await.expect("stat").expect("stored");
        assert_eq!(info.content_type.as_deref(), Some("image/jpeg"));
        assert!(matches!(
            store.get(&key, Some(ByteRange::From(200_000))).await,
            Err(BlobError::RangeNotSatisfiable { size: 200_000 })
        ));

        // A wrong digest is refused and the staged file left to the caller.
        let other = staging.join("download-2");
        std::fs::write(&other, b"bukan ini").expect("stage");
        let wrong = format!("sha256/{}", "0".repeat(64));
        assert!(matches!(
            store.put_file(&wrong, &other, "image/png").await,
            Err(BlobError::BadKey)
        ));
        assert!(other.exists());
        assert!(!store.exists(&wrong).await.expect("exists"));

        assert!(store.delete(&key).await.expect("delete"));
        assert!(!store.delete(&key).await.expect("delete again"));
        assert!(store.get(&key, None).await.expect("get").is_none());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("sha256"))
            .expect("list")
            .collect();
        assert!(left.is_empty(), "the type file goes with the blob");
    }
}
