//! The forwarder: the oldest records to Redis, in order, each still written once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aduan_adapter::{Complaint, Fragment};
use redb::{Database, Durability};
use tokio_util::sync::CancellationToken;

use super::record::{Body, Record};
use super::{QUARANTINE, RECORDS, Spool, SpoolError, read_oldest, spooled_at, with_db};
use crate::language::LanguageDetector;
use crate::outbound::reports::Reports;
use crate::redis::{Redis, RedisError};
use crate::telemetry;
use crate::telemetry::SPOOL_DRAINED as DRAINED;

/// Records forwarded after which an emptied spool file is compacted.
const COMPACT_AFTER: u64 = 1000;

/// Where the forwarder writes: Redis, the detector that names the language
/// of a split message made whole only now, and where opt-outs and delivery
/// reports are recorded (without it, a spooled one stops the forwarder, as
/// a Redis failure would, and waits).
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub redis: &'a Redis,
    pub language: &'a LanguageDetector,
    pub reports: Option<&'a Reports>,
}

impl Target<'_> {
    /// Appends a run of spooled complaints in one call. A redelivery found
    /// now is counted: the complaint was counted as accepted when spooled.
    async fn write_run(&self, complaints: &[Complaint]) -> Result<(), RedisError> {
        let receipts = self.redis.append(complaints).await?;
        for (complaint, receipt) in complaints.iter().zip(&receipts) {
            if receipt.duplicate {
                telemetry::duplicate(complaint.channel, &complaint.instance);
            }
        }
        Ok(())
    }

    /// Writes one record: a complaint through the atomic append, a part of a
    /// split message into the fragment store (and the whole message, when it
    /// was the last part), an event through [`Reports`].
    async fn write(&self, record: Record) -> Result<(), RedisError> {
        let (complaint, part) = match record.body {
            Body::Event(event) => {
                let Some(reports) = self.reports else {
                    return Err(RedisError::Unavailable(
                        "no place to record spooled opt-outs and reports".into(),
                    ));
                };
                return event.apply(reports).await;
            }
            Body::Complaint { complaint, part } => (complaint, part),
        };
        let Some(part) = part else {
            return self.write_run(std::slice::from_ref(&complaint)).await;
        };
        let fragment = Fragment {
            group: part.group,
            part: part.part,
            total: part.total,
            complaint,
        };
        let window = Duration::from_millis(part.window_ms);
        for held in self.redis.absorb(&[fragment], window).await? {
            if let Some(mut whole) = crate::assembly::assemble(held.parts, held.total) {
                self.language.stamp(&mut whole);
                let receipts = self.redis.append(std::slice::from_ref(&whole)).await?;
                telemetry::published("spool", std::slice::from_ref(&whole), &receipts);
            }
            // The complaint is durable: a group left behind is swept again at
            // its deadline, and that append is a duplicate.
            if let Err(e) = self.redis.release_fragments(&[held.key]).await {
                tracing::warn!(error = %e, "written split message not released; the sweeper will");
            }
        }
        Ok(())
    }
}

impl Spool {
    /// Forwards up to one batch of the oldest records to Redis, in order. Returns
    /// how many were forwarded (appended or found to be duplicates); `Ok(0)` means
    /// the spool is empty. Stops at the first Redis failure, keeping that record
    /// and every later one.
    pub async fn forward_once(&self, target: Target<'_>) -> Result<usize, SpoolError> {
        let db = self.db.clone();
        let limit = self.cfg.forward_batch.max(1);
        let batch = tokio::task::spawn_blocking(move || with_db(&db, |db| read_oldest(db, limit)))
            .await
            .map_err(SpoolError::storage)??;
        if batch.is_empty() {
            self.refresh_oldest();
            self.publish_gauges();
            return Ok(0);
        }
        // Keeps the age current while Redis stays away, when nothing else changes.
        if let Some(oldest) = batch.first().and_then(|(_, v)| spooled_at(v)) {
            self.shared.oldest_ms.store(oldest, Ordering::Relaxed);
        }
        self.publish_gauges();
        let mut forwarded = Vec::new();
        let mut broken = Vec::new();
        let mut failure = None;
        // Runs of whole complaints go to Redis as one append each; a part of a
        // split message is held on its own, in its place in the order.
        // The run's complaints, and the sequence number and size of each.
        let mut run: Vec<Complaint> = Vec::new();
        let mut run_at: Vec<(u64, u64)> = Vec::new();
        let mut records = batch
            .into_iter()
            .map(
                |(seq, bytes)| match serde_json::from_slice::<Record>(&bytes) {
                    Ok(record) => Ok((seq, bytes.len() as u64, record)),
                    Err(_) => Err((seq, bytes)),
                },
            )
            .peekable();
        while let Some(decoded) = records.next() {
            let (seq, size, record) = match decoded {
                Ok(r) => r,
                Err(undecodable) => {
                    broken.push(undecodable);
                    continue;
                }
            };
            let written = if let Body::Complaint {
                complaint,
                part: None,
            } = record.body
            {
                run.push(complaint);
                run_at.push((seq, size));
                let whole_follows =
                    matches!(records.peek(), Some(Ok((_, _, r))) if r.is_whole_complaint());
                if whole_follows {
                    continue;
                }
                target.write_run(&run).await.map(|()| {
                    run.clear();
                    forwarded.append(&mut run_at);
                })
            } else {
                target
                    .write(record)
                    .await
                    .map(|()| forwarded.push((seq, size)))
            };
            if let Err(e) = written {
                failure = Some(e);
                break;
            }
        }
        let done = forwarded.len();
        if !forwarded.is_empty() || !broken.is_empty() {
            let db = self.db.clone();
            let seqs: Vec<u64> = forwarded.iter().map(|(s, _)| *s).collect();
            let quarantine: Vec<(u64, Vec<u8>)> = broken.clone();
            tokio::task::spawn_blocking(move || {
                with_db(&db, |db| remove_and_quarantine(db, &seqs, &quarantine))
            })
            .await
            .map_err(SpoolError::storage)??;
            let freed: u64 = forwarded.iter().map(|(_, n)| n).sum::<u64>()
                + broken.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
            self.shared.bytes.fetch_sub(freed, Ordering::AcqRel);
            self.shared
                .depth
                .fetch_sub((done + broken.len()) as u64, Ordering::AcqRel);
            if !broken.is_empty() {
                self.shared
                    .quarantined
                    .fetch_add(broken.len() as u64, Ordering::Relaxed);
                for (seq, bytes) in &broken {
                    tracing::error!(
                        seq,
                        bytes = bytes.len(),
                        "spool record cannot be decoded; moved to quarantine"
                    );
                }
            }
            metrics::counter!(DRAINED).increment(done as u64);
            self.shared
                .drained
                .fetch_add(done as u64, Ordering::Relaxed);
            self.refresh_oldest();
            self.publish_gauges();
        }
        match failure {
            Some(e) if done == 0 && broken.is_empty() => Err(e.into()),
            Some(e) => {
                tracing::warn!(error = %e, forwarded = done, "spool forward interrupted");
                Ok(done + broken.len())
            }
            None => Ok(done + broken.len()),
        }
    }

    /// Gives the file back the room of the records forwarded since it grew:
    /// a spool that held a long outage's backlog would otherwise keep its
    /// size on disk. Waits for the commit under way, and holds writers off
    /// while it runs (they wait; nothing is refused).
    pub async fn compact(&self) -> Result<(), SpoolError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = db
                .write()
                .map_err(|_| SpoolError::Storage("spool lock poisoned".into()))?;
            while file.compact().map_err(SpoolError::storage)? {}
            Ok(())
        })
        .await
        .map_err(SpoolError::storage)?
    }

    /// Forwards until the spool is empty or Redis fails; the count forwarded.
    pub async fn drain(&self, target: Target<'_>) -> Result<usize, SpoolError> {
        let mut total = 0;
        loop {
            match self.forward_once(target).await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    /// The forwarder task: drains whenever records wait, retries Redis every
    /// `retry_interval_ms` while it fails, refreshes the gauges each second.
    pub async fn forward(
        self: Arc<Self>,
        redis: Arc<Redis>,
        language: LanguageDetector,
        reports: Reports,
        shutdown: CancellationToken,
    ) {
        let target = Target {
            redis: &redis,
            language: &language,
            reports: Some(&reports),
        };
        let retry = Duration::from_millis(self.cfg.retry_interval_ms.max(1));
        let mut failing = false;
        // Records forwarded since the file was last compacted.
        let mut since_compaction = 0u64;
        loop {
            self.sample_drain();
            let wait = match self.forward_once(target).await {
                Ok(0) => {
                    if failing {
                        tracing::info!("spool drained; redis answers again");
                        failing = false;
                    }
                    if since_compaction >= COMPACT_AFTER && self.is_empty() {
                        match self.compact().await {
                            Ok(()) => {
                                tracing::info!(forwarded = since_compaction, "spool file compacted")
                            }
                            Err(e) => tracing::warn!(error = %e, "spool file not compacted"),
                        }
                        since_compaction = 0;
                    }
                    None
                }
                Ok(n) => {
                    since_compaction += n as u64;
                    continue;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, depth = self.shared.depth.load(Ordering::Relaxed), "spool cannot forward yet");
                        failing = true;
                    }
                    Some(retry)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.shared.appended.notified(), if wait.is_none() => {}
                _ = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(1))) => {}
            }
        }
    }
}

pub(super) fn remove_and_quarantine(
    db: &Database,
    forwarded: &[u64],
    broken: &[(u64, Vec<u8>)],
) -> Result<(), SpoolError> {
    let mut txn = db.begin_write().map_err(SpoolError::storage)?;
    txn.set_durability(Durability::Immediate)
        .map_err(SpoolError::storage)?;
    {
        let mut records = txn.open_table(RECORDS).map_err(SpoolError::storage)?;
        for seq in forwarded {
            records.remove(*seq).map_err(SpoolError::storage)?;
        }
        let mut quarantine = txn.open_table(QUARANTINE).map_err(SpoolError::storage)?;
        for (seq, bytes) in broken {
            quarantine
                .insert(*seq, bytes.as_slice())
                .map_err(SpoolError::storage)?;
            records.remove(*seq).map_err(SpoolError::storage)?;
        }
    }
    txn.commit().map_err(SpoolError::storage)
}
