//! The sink a fetch writes into: a staging file on local disk, hashed and
//! counted as the bytes arrive, refused past its size limit, its first bytes
//! kept for sniffing. Nothing is held whole in memory.
//!
//! A fetch that fails removes its file; one cut short by a crash leaves it
//! (`<ulid>.part`), and [`sweep`] removes those at the worker's start.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aduan_adapter::media::{FetchError, MediaSink};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// How many first bytes are kept for [`super::sniff::sniff`].
const HEAD: usize = 512;

pub struct FileSink {
    path: PathBuf,
    file: tokio::fs::File,
    hasher: Sha256,
    size: u64,
    cap: u64,
    head: Vec<u8>,
}

/// What a finished sink holds.
pub struct Staged {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub head: Vec<u8>,
}

impl FileSink {
    /// A new staging file under `dir`, refusing more than `cap` bytes.
    pub async fn create(dir: &Path, cap: u64) -> Result<FileSink, FetchError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| FetchError::temporary("store", format!("staging directory: {e}")))?;
        let path = dir.join(format!("{}.part", ulid::Ulid::generate()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| FetchError::temporary("store", format!("staging file: {e}")))?;
        Ok(FileSink {
            path,
            file,
            hasher: Sha256::new(),
            size: 0,
            cap,
            head: Vec::with_capacity(HEAD),
        })
    }

    /// Where the staging file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and syncs the file; its digest and size.
    pub async fn finish(mut self) -> Result<Staged, FetchError> {
        let io = |e: std::io::Error| FetchError::temporary("store", format!("staging file: {e}"));
        self.file.flush().await.map_err(io)?;
        self.file.sync_all().await.map_err(io)?;
        Ok(Staged {
            path: self.path,
            sha256: hex::encode(self.hasher.finalize()),
            size: self.size,
            head: self.head,
        })
    }

    /// Removes the staging file (a failed or refused fetch).
    pub async fn discard(self) {
        let path = self.path.clone();
        drop(self.file);
        let _ = tokio::fs::remove_file(path).await;
    }
}

/// Removes the staging files under `dir` not written to for `stale`: what
/// downloads cut short by a crash left. A download under way writes to its
/// file far more often, so `stale` well above the fetch timeout spares the
/// files of other replicas sharing the directory. The number removed.
pub async fn sweep(dir: &Path, stale: Duration) -> usize {
    let dir = dir.to_path_buf();
    let swept = tokio::task::spawn_blocking(move || {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        let cutoff = SystemTime::now().checked_sub(stale);
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
            .filter(|e| {
                let modified = e.metadata().and_then(|m| m.modified()).ok();
                matches!((modified, cutoff), (Some(m), Some(c)) if m < c)
            })
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    });
    swept.await.unwrap_or(0)
}

#[async_trait::async_trait]
impl MediaSink for FileSink {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        self.size += chunk.len() as u64;
        if self.size > self.cap {
            return Err(FetchError::permanent(
                "too_large",
                format!("over the limit of {} bytes", self.cap),
            ));
        }
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| FetchError::temporary("store", format!("staging file: {e}")))
    }
}
