//! The content-addressed store for attachment bytes the gateway keeps itself
//! (email). A blob's key is `sha256/<hex>` of its bytes, so writing the same
//! attachment twice, from a redelivery or from two citizens, is one file.
//!
//! Blobs are written durably before the complaint that names them is
//! appended: a consumer that reads a `storage_key` always finds the file. A
//! crash between the two leaves an unreferenced blob, which is harmless. An
//! S3-compatible store can replace the directory behind the same [`BlobStore`]
//! surface: the key is already the object name.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::settings::BlobsConfig;
use aduan_adapter::Blob;

/// Why a blob could not be stored. The complaint is then not accepted either.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob key is not `sha256/<hex>` of its bytes")]
    BadKey,
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
}

/// A directory of blobs named by their SHA-256.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// A store under `dir`; the directory is created on first write.
    pub fn new(cfg: &BlobsConfig) -> Self {
        BlobStore {
            dir: cfg.dir.clone(),
        }
    }

    /// The file a key names, if the key is well-formed.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        let hex = key.strip_prefix("sha256/")?;
        let well_formed = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| self.dir.join("sha256").join(hex))
    }

    /// Writes every blob durably (file and directory entry fsynced). Returns
    /// once all are on disk.
    pub async fn put_all(&self, blobs: Vec<Blob>) -> Result<(), BlobError> {
        if blobs.is_empty() {
            return Ok(());
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            for blob in &blobs {
                store.put(blob)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
    }

    /// Writes one blob: temporary file, fsync, rename, fsync of the directory.
    fn put(&self, blob: &Blob) -> Result<(), BlobError> {
        let path = self.path(&blob.key).ok_or(BlobError::BadKey)?;
        // The key is trusted only if it really is the digest: a wrong key would
        // let one attachment's bytes stand in for another's.
        if blob.key["sha256/".len()..] != aduan_adapter::verify::sha256_hex(&blob.bytes) {
            return Err(BlobError::BadKey);
        }
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().ok_or(BlobError::BadKey)?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            ulid::Ulid::generate()
        ));
        let written = write_synced(&tmp, &blob.bytes).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create_new(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(bytes: &[u8]) -> Blob {
        Blob {
            key: format!("sha256/{}", aduan_adapter::verify::sha256_hex(bytes)),
            bytes: bytes.to_vec(),
        }
    }

    #[tokio::test]
    async fn writes_once_by_content_and_refuses_wrong_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::new(&BlobsConfig {
            dir: dir.path().to_path_buf(),
        });
        let photo = blob(b"foto jalan berlubang");
        store
            .put_all(vec![photo.clone(), photo.clone()])
            .await
            .expect("stored");
        let path = store.path(&photo.key).expect("path");
        assert_eq!(std::fs::read(&path).expect("file"), photo.bytes);
        let entries = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .count();
        assert_eq!(entries, 1, "no temporary files left");

        let lying = Blob {
            key: photo.key.clone(),
            bytes: b"lain".to_vec(),
        };
        assert!(store.put_all(vec![lying]).await.is_err());
        for key in ["sha256/../../etc/passwd", "md5/abc", "sha256/ABC"] {
            assert!(store.path(key).is_none(), "{key}");
        }
    }
}
