//! The local durable spool: where accepted complaints wait, fsynced, while
//! Redis is unreachable, failing or slower than its deadline.
//!
//! One redb file under `[spool] dir`. Records are keyed by a sequence number
//! in acceptance order. Writers never open transactions themselves: they hand
//! encoded records to one writer thread, which takes every write waiting at that
//! moment into a single transaction committed with `Durability::Immediate`
//! (group commit), so one fsync covers many requests and the spool path keeps
//! its throughput under concurrency. A caller is answered only after the commit
//! that holds its records returned.
//!
//! The forwarder reads the oldest records, appends them one by one through the
//! same atomic dedup-and-append step as the direct path ([`Redis::append`])
//! and deletes a record only after Redis answered for it. A complaint that
//! reached Redis before its spooled copy is forwarded is therefore recognized
//! as a duplicate and not written twice; it keeps the id it got at acceptance.
//! A record that cannot be decoded is moved to a quarantine table, counted
//! and logged (by sequence number only), never dropped.
//!
//! A part of a split message (concatenated SMS) that arrives while Redis is
//! away is spooled as a part: the forwarder holds it in Redis's fragment
//! store as the direct path would, and appends the whole message once its
//! last part is held.
//!
//! Opt-outs, opt-ins and delivery reports that arrive while Redis is away
//! are spooled too, as [`Event`]s in their place among the complaints, and
//! applied in that order: a citizen's `BERHENTI` is not lost to a provider
//! that does not retry.
//!
//! - `writer`: the writer thread and its group commit.
//! - `forward`: the forwarder task.
//! - `events`: opt-outs and delivery reports kept and applied in order.
//! - `record`: what a record holds, as written and as read.

mod events;
mod forward;
mod record;
mod writer;

pub use events::Event;
pub use forward::Target;
#[cfg(test)]
use record::{Body, Record};
use record::{Part, RecordRef, spooled_at};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use aduan_adapter::{Complaint, Fragment};
use redb::{
    ConcurrencyMode, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};
use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot};

#[cfg(doc)]
use crate::redis::Redis;
use crate::redis::RedisError;
use crate::settings::SpoolConfig;
use crate::telemetry::QuietLog;

use crate::telemetry::{
    SPOOL_BYTES as BYTES, SPOOL_DEPTH as DEPTH, SPOOL_FULL as FULL, SPOOL_OLDEST_AGE as OLDEST_AGE,
    SPOOL_QUARANTINED as QUARANTINED, SPOOL_WRITTEN as WRITTEN,
};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const QUARANTINE: TableDefinition<u64, &[u8]> = TableDefinition::new("quarantine");

/// Why the spool could not take or give back records.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool full ({0})")]
    Full(&'static str),
    #[error("spool storage failed: {0}")]
    Storage(String),
    #[error("spool is closed")]
    Closed,
    #[error("cannot encode complaint: {0}")]
    Encode(String),
    #[error(
        "spool file {path} is in use by another process (a running gateway forwards it by itself)"
    )]
    InUse { path: String },
    #[error("redis refused the forward: {0}")]
    Redis(#[from] RedisError),
}

impl SpoolError {
    fn storage(e: impl std::fmt::Display) -> Self {
        SpoolError::Storage(e.to_string())
    }
}

/// One caller's records and where to send the outcome.
struct Write {
    records: Vec<Vec<u8>>,
    done: oneshot::Sender<Result<(), SpoolError>>,
}

/// Counters shared by writers, the writer thread and the forwarder.
#[derive(Default)]
struct Shared {
    depth: AtomicU64,
    bytes: AtomicU64,
    quarantined: AtomicU64,
    /// Spool time of the oldest waiting record in ms since the epoch; 0 when empty.
    oldest_ms: AtomicI64,
    writer_alive: AtomicBool,
    /// Commits made by the writer thread and the time they took, in microseconds.
    commits: AtomicU64,
    commit_micros: AtomicU64,
    /// Woken after each commit so the forwarder starts at once.
    appended: Notify,
    /// Complaints forwarded by this process.
    drained: AtomicU64,
    /// (when, `drained` then), one sample per forwarder round, the last
    /// [`RATE_WINDOW`] of them: what the drain rate is computed over.
    drain_samples: std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, u64)>>,
}

/// How far back the drain rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// What `aduan spool status` and `/readyz` report.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub depth: u64,
    pub bytes: u64,
    /// Seconds since the oldest waiting record was spooled; `None` when empty.
    pub oldest_age_seconds: Option<f64>,
    pub quarantined: u64,
    /// Complaints forwarded to Redis by the running gateway since it started;
    /// `None` when read from the file.
    pub drained_total: Option<u64>,
    /// Complaints forwarded per second over the last ten seconds; `None` when
    /// read from the file.
    pub drain_rate_per_second: Option<f64>,
}

/// The open spool.
pub struct Spool {
    db: Db,
    tx: mpsc::Sender<Write>,
    shared: Arc<Shared>,
    cfg: SpoolConfig,
    /// Complaints (and parts) spooled, logged once a second: during an
    /// outage every request is spooled.
    complaints_spooled: Arc<QuietLog>,
    /// Opt-outs, opt-ins and delivery reports spooled, likewise.
    events_spooled: Arc<QuietLog>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.cfg.path())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The open file. Every transaction runs under the read side of the lock;
/// compaction, which needs the file to itself, takes the write side.
type Db = Arc<std::sync::RwLock<Database>>;

/// Runs `f` on the open file (shared with the other transactions).
fn with_db<T>(
    db: &Db,
    f: impl FnOnce(&Database) -> Result<T, SpoolError>,
) -> Result<T, SpoolError> {
    let guard = db
        .read()
        .map_err(|_| SpoolError::Storage("spool lock poisoned".into()))?;
    f(&guard)
}

fn open_db(path: &Path) -> Result<Database, SpoolError> {
    // The exclusive mode commits in one phase (one fsync, checksummed pages); the
    // modes that share the file between processes commit in two and halve the
    // spool's throughput. `aduan spool status` asks a running gateway instead.
    let mut builder = Database::builder();
    builder.set_concurrency_mode(ConcurrencyMode::ExclusiveWriter);
    builder.create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => SpoolError::InUse {
            path: path.display().to_string(),
        },
        other => SpoolError::storage(other),
    })
}

impl Spool {
    /// Opens (or creates) the spool file and starts its writer thread. Must be
    /// called inside a tokio runtime. A crash mid-commit is repaired by redb on
    /// open: the torn transaction is discarded, every committed one is kept.
    pub fn open(cfg: &SpoolConfig) -> Result<Arc<Spool>, SpoolError> {
        std::fs::create_dir_all(&cfg.dir).map_err(SpoolError::storage)?;
        let file = open_db(&cfg.path())?;
        let shared = Arc::new(Shared::default());
        let next_seq = {
            let txn = file.begin_write().map_err(SpoolError::storage)?;
            let next = {
                let records = txn.open_table(RECORDS).map_err(SpoolError::storage)?;
                let quarantine = txn.open_table(QUARANTINE).map_err(SpoolError::storage)?;
                let mut bytes = 0u64;
                for item in records.iter().map_err(SpoolError::storage)? {
                    let (_, v) = item.map_err(SpoolError::storage)?;
                    bytes += v.value().len() as u64;
                }
                shared.depth.store(
                    records.len().map_err(SpoolError::storage)?,
                    Ordering::Relaxed,
                );
                shared.bytes.store(bytes, Ordering::Relaxed);
                shared.quarantined.store(
                    quarantine.len().map_err(SpoolError::storage)?,
                    Ordering::Relaxed,
                );
                let last_record = records
                    .last()
                    .map_err(SpoolError::storage)?
                    .map(|(k, _)| k.value());
                let last_quarantined = quarantine
                    .last()
                    .map_err(SpoolError::storage)?
                    .map(|(k, _)| k.value());
                last_record.max(last_quarantined).map_or(0, |n| n + 1)
            };
            txn.commit().map_err(SpoolError::storage)?;
            next
        };
        let db: Db = Arc::new(std::sync::RwLock::new(file));
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let spool = Arc::new(Spool {
            db: db.clone(),
            tx,
            shared: shared.clone(),
            cfg: cfg.clone(),
            complaints_spooled: QuietLog::summarizing(|s| {
                tracing::info!(
                    count = s.count,
                    oldest_age_seconds = s.oldest_seconds(),
                    "complaints spooled"
                );
            }),
            events_spooled: QuietLog::summarizing(|s| {
                tracing::info!(
                    count = s.count,
                    oldest_age_seconds = s.oldest_seconds(),
                    "opt-outs and delivery reports spooled"
                );
            }),
        });
        spool.refresh_oldest();
        shared.writer_alive.store(true, Ordering::Relaxed);
        let caps = writer::Caps {
            max_records: cfg.max_records,
            max_bytes: cfg.max_bytes,
            group_max: cfg.group_commit_max.max(1),
        };
        std::thread::Builder::new()
            .name("aduan-spool-writer".into())
            .spawn(move || writer::run(db, rx, shared, caps, next_seq))
            .map_err(SpoolError::storage)?;
        spool.publish_gauges();
        Ok(spool)
    }

    /// Reads the counters of the spool at `cfg` without forwarding anything. A
    /// missing file is an empty spool; a file a gateway has open is
    /// [`SpoolError::InUse`] (that gateway's `/readyz` reports the same figures).
    /// A file left by a crash is repaired first, as the gateway would on start.
    pub fn status_of(cfg: &SpoolConfig) -> Result<Status, SpoolError> {
        let path = cfg.path();
        if !path.exists() {
            return Ok(Status {
                depth: 0,
                bytes: 0,
                oldest_age_seconds: None,
                quarantined: 0,
                drained_total: None,
                drain_rate_per_second: None,
            });
        }
        // Opened for writing although only read: a file left by a killed gateway
        // must be repaired first, which a read-only handle cannot do.
        let db = open_db(&path)?;
        let txn = db.begin_read().map_err(SpoolError::storage)?;
        let count = |def| -> Result<u64, SpoolError> {
            match txn.open_table(def) {
                Ok(t) => t.len().map_err(SpoolError::storage),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
                Err(e) => Err(SpoolError::storage(e)),
            }
        };
        let depth = count(RECORDS)?;
        let quarantined = count(QUARANTINE)?;
        let (mut bytes, mut oldest) = (0u64, None);
        if depth > 0 {
            let records = txn.open_table(RECORDS).map_err(SpoolError::storage)?;
            for (i, item) in records.iter().map_err(SpoolError::storage)?.enumerate() {
                let (_, v) = item.map_err(SpoolError::storage)?;
                bytes += v.value().len() as u64;
                if i == 0 {
                    oldest = spooled_at(v.value());
                }
            }
        }
        Ok(Status {
            depth,
            bytes,
            oldest_age_seconds: oldest.map(age_seconds),
            quarantined,
            drained_total: None,
            drain_rate_per_second: None,
        })
    }

    /// The counters as this process sees them.
    pub fn status(&self) -> Status {
        let oldest = self.shared.oldest_ms.load(Ordering::Relaxed);
        Status {
            depth: self.shared.depth.load(Ordering::Relaxed),
            bytes: self.shared.bytes.load(Ordering::Relaxed),
            oldest_age_seconds: (oldest > 0).then(|| age_seconds(oldest)),
            quarantined: self.shared.quarantined.load(Ordering::Relaxed),
            drained_total: Some(self.shared.drained.load(Ordering::Relaxed)),
            drain_rate_per_second: Some(self.drain_rate()),
        }
    }

    /// Records how many were drained by now; called once per forwarder round.
    fn sample_drain(&self) {
        let now = std::time::Instant::now();
        let drained = self.shared.drained.load(Ordering::Relaxed);
        if let Ok(mut samples) = self.shared.drain_samples.lock() {
            samples.push_back((now, drained));
            while samples
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
            {
                samples.pop_front();
            }
        }
    }

    /// Complaints forwarded per second over the samples of the last ten seconds.
    fn drain_rate(&self) -> f64 {
        let Ok(samples) = self.shared.drain_samples.lock() else {
            return 0.0;
        };
        let now = std::time::Instant::now();
        let drained = self.shared.drained.load(Ordering::Relaxed);
        match samples.front() {
            Some((t, then)) if now.duration_since(*t) > Duration::from_millis(100) => {
                drained.saturating_sub(*then) as f64 / now.duration_since(*t).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Group commits made since the spool was opened, and their total duration.
    pub fn commits(&self) -> (u64, Duration) {
        (
            self.shared.commits.load(Ordering::Relaxed),
            Duration::from_micros(self.shared.commit_micros.load(Ordering::Relaxed)),
        )
    }

    /// True while records wait. New complaints then go to the spool too, so that
    /// the stream keeps acceptance order.
    pub fn is_empty(&self) -> bool {
        self.shared.depth.load(Ordering::Acquire) == 0
    }

    /// True when a write would be taken: the writer runs and there is room.
    pub fn writable(&self) -> bool {
        self.shared.writer_alive.load(Ordering::Relaxed)
            && self.shared.depth.load(Ordering::Relaxed) < self.cfg.max_records
            && self.shared.bytes.load(Ordering::Relaxed) < self.cfg.max_bytes
    }

    /// Writes `complaints` durably, in order. Returns once the commit holding
    /// them is on disk; they are then forwarded to Redis by [`Spool::forward`].
    pub async fn put(&self, complaints: &[Complaint]) -> Result<(), SpoolError> {
        let spooled_at_ms = now_ms();
        let records = complaints
            .iter()
            .map(|complaint| RecordRef {
                spooled_at_ms,
                complaint: Some(complaint),
                part: None,
                event: None,
            })
            .collect();
        self.write(records).await?;
        self.tally(&self.complaints_spooled, complaints.len());
        Ok(())
    }

    /// Counts `count` records just spooled in `log`'s summary of the second,
    /// with the age of the oldest record waiting.
    fn tally(&self, log: &Arc<QuietLog>, count: usize) {
        let oldest = self.shared.oldest_ms.load(Ordering::Relaxed);
        let age = (oldest > 0).then(|| Duration::from_millis((now_ms() - oldest).max(0) as u64));
        log.tally(count as u64, age);
    }

    /// Writes parts of split messages durably, in order; the forwarder holds
    /// them in Redis as if they had just arrived, with the group's `window`.
    pub async fn put_fragments(
        &self,
        fragments: &[Fragment],
        window: Duration,
    ) -> Result<(), SpoolError> {
        let spooled_at_ms = now_ms();
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let records = fragments
            .iter()
            .map(|f| RecordRef {
                spooled_at_ms,
                complaint: Some(&f.complaint),
                part: Some(Part {
                    group: f.group.clone(),
                    part: f.part,
                    total: f.total,
                    window_ms,
                }),
                event: None,
            })
            .collect();
        self.write(records).await?;
        self.tally(&self.complaints_spooled, fragments.len());
        Ok(())
    }

    async fn write(&self, records: Vec<RecordRef<'_>>) -> Result<(), SpoolError> {
        let count = records.len() as u64;
        let mut encoded = Vec::with_capacity(records.len());
        for record in &records {
            encoded
                .push(serde_json::to_vec(record).map_err(|e| SpoolError::Encode(e.to_string()))?);
        }
        let (done, outcome) = oneshot::channel();
        self.tx
            .send(Write {
                records: encoded,
                done,
            })
            .await
            .map_err(|_| SpoolError::Closed)?;
        let result = outcome.await.map_err(|_| SpoolError::Closed)?;
        if matches!(result, Err(SpoolError::Full(_))) {
            metrics::counter!(FULL).increment(1);
        } else if result.is_ok() {
            metrics::counter!(WRITTEN).increment(count);
        }
        result
    }

    fn refresh_oldest(&self) {
        let oldest = with_db(&self.db, |db| read_oldest(db, 1))
            .ok()
            .and_then(|b| b.first().and_then(|(_, v)| spooled_at(v)))
            .unwrap_or(0);
        self.shared.oldest_ms.store(oldest, Ordering::Relaxed);
    }

    fn publish_gauges(&self) {
        let s = self.status();
        metrics::gauge!(DEPTH).set(s.depth as f64);
        metrics::gauge!(BYTES).set(s.bytes as f64);
        metrics::gauge!(OLDEST_AGE).set(s.oldest_age_seconds.unwrap_or(0.0));
        metrics::gauge!(QUARANTINED).set(s.quarantined as f64);
    }

    /// Writes raw bytes as a record, bypassing encoding: how tests stand in for
    /// a record damaged on disk.
    #[doc(hidden)]
    pub async fn put_raw_for_test(&self, bytes: &[u8]) -> Result<(), SpoolError> {
        let (done, outcome) = oneshot::channel();
        self.tx
            .send(Write {
                records: vec![bytes.to_vec()],
                done,
            })
            .await
            .map_err(|_| SpoolError::Closed)?;
        outcome.await.map_err(|_| SpoolError::Closed)?
    }
}

fn age_seconds(spooled_at_ms: i64) -> f64 {
    ((now_ms() - spooled_at_ms).max(0) as f64) / 1000.0
}

fn read_oldest(db: &Database, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, SpoolError> {
    let txn = db.begin_read().map_err(SpoolError::storage)?;
    let table = match txn.open_table(RECORDS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(SpoolError::storage(e)),
    };
    let mut out = Vec::new();
    for item in table.iter().map_err(SpoolError::storage)?.take(limit) {
        let (k, v) = item.map_err(SpoolError::storage)?;
        out.push((k.value(), v.value().to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
