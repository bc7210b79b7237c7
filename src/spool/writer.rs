//! The writer thread: every write waiting at one moment in one transaction
//! (group commit), so one fsync covers many requests.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use redb::Durability;
use tokio::sync::mpsc;

use super::{Db, RECORDS, Shared, SpoolError, Write, now_ms, with_db};
use crate::telemetry::{SPOOL_COMMITS as COMMITS, SPOOL_DEPTH as DEPTH};

/// What the writer thread enforces.
pub(super) struct Caps {
    pub max_records: u64,
    pub max_bytes: u64,
    pub group_max: usize,
}

/// The writer thread: one transaction per group of waiting writes.
pub(super) fn run(
    db: Db,
    mut rx: mpsc::Receiver<Write>,
    shared: Arc<Shared>,
    caps: Caps,
    mut next_seq: u64,
) {
    let Caps {
        max_records,
        max_bytes,
        group_max,
    } = caps;
    let mut group = Vec::with_capacity(group_max);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        // No waiting for a fuller group: whatever arrives during this commit's
        // fsync forms the next group, so groups grow by themselves as the disk slows.
        while group.len() < group_max {
            match rx.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        let start = next_seq;
        let began = std::time::Instant::now();
        let mut accepted = Vec::with_capacity(group.len());
        let committed = with_db(&db, |db| {
            let mut txn = db.begin_write().map_err(SpoolError::storage)?;
            txn.set_durability(Durability::Immediate)
                .map_err(SpoolError::storage)?;
            let mut depth = shared.depth.load(Ordering::Acquire);
            let mut bytes = shared.bytes.load(Ordering::Acquire);
            let (mut added, mut added_bytes) = (0u64, 0u64);
            {
                let mut table = txn.open_table(RECORDS).map_err(SpoolError::storage)?;
                for write in &group {
                    let n = write.records.len() as u64;
                    let b: u64 = write.records.iter().map(|r| r.len() as u64).sum();
                    if depth + n > max_records {
                        accepted.push(Some("max_records"));
                        continue;
                    }
                    if bytes + b > max_bytes {
                        accepted.push(Some("max_bytes"));
                        continue;
                    }
                    for record in &write.records {
                        table
                            .insert(next_seq, record.as_slice())
                            .map_err(SpoolError::storage)?;
                        next_seq += 1;
                    }
                    depth += n;
                    bytes += b;
                    added += n;
                    added_bytes += b;
                    accepted.push(None);
                }
            }
            // Counted before the commit: once committed, the forwarder may read and
            // delete these records at any moment, and its subtraction must never
            // come before this addition.
            shared.bytes.fetch_add(added_bytes, Ordering::AcqRel);
            let before = shared.depth.fetch_add(added, Ordering::AcqRel);
            if let Err(e) = txn.commit() {
                shared.bytes.fetch_sub(added_bytes, Ordering::AcqRel);
                shared.depth.fetch_sub(added, Ordering::AcqRel);
                return Err(SpoolError::storage(e));
            }
            Ok((added, before))
        });
        match committed {
            Ok((added, before)) => {
                shared.commits.fetch_add(1, Ordering::Relaxed);
                shared
                    .commit_micros
                    .fetch_add(began.elapsed().as_micros() as u64, Ordering::Relaxed);
                if added > 0 {
                    if before == 0 {
                        let _ = shared.oldest_ms.compare_exchange(
                            0,
                            now_ms(),
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    metrics::counter!(COMMITS).increment(1);
                    metrics::gauge!(DEPTH).set(shared.depth.load(Ordering::Relaxed) as f64);
                    shared.appended.notify_one();
                }
                for (write, full) in group.drain(..).zip(accepted) {
                    let _ = write.done.send(match full {
                        None => Ok(()),
                        Some(limit) => Err(SpoolError::Full(limit)),
                    });
                }
            }
            Err(e) => {
                next_seq = start;
                tracing::error!(error = %e, "spool commit failed");
                for write in group.drain(..) {
                    let _ = write.done.send(Err(SpoolError::Storage(e.to_string())));
                }
            }
        }
    }
    shared.writer_alive.store(false, Ordering::Relaxed);
}
