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
//! same atomic dedup-and-append step as the direct path ([`RedisSink::append`])
//! and deletes a record only after Redis answered for it. A complaint that
//! reached Redis before its spooled copy is forwarded is therefore recognized
//! as a duplicate and not written twice; it keeps the id it got at acceptance.
//! A record that cannot be decoded is moved to a quarantine table, counted
//! and logged (by sequence number only), never dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use aduan_adapter::Complaint;
use redb::{
    ConcurrencyMode, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::sink::{RedisSink, SinkError};

/// Complaints waiting in the spool (gauge).
pub const DEPTH: &str = "aduan_spool_depth";
/// Bytes of the records waiting in the spool (gauge).
pub const BYTES: &str = "aduan_spool_bytes";
/// Age in seconds of the oldest waiting record, 0 when empty (gauge).
pub const OLDEST_AGE: &str = "aduan_spool_oldest_age_seconds";
/// Records moved to quarantine because they could not be decoded (gauge).
pub const QUARANTINED: &str = "aduan_spool_quarantined";
/// Complaints written to the spool (counter).
pub const WRITTEN: &str = "aduan_spool_written_total";
/// Complaints forwarded from the spool and confirmed by Redis (counter); its
/// rate is the drain rate.
pub const DRAINED: &str = "aduan_spool_drained_total";
/// Group commits (counter); `WRITTEN / COMMITS` is the mean batch size.
pub const COMMITS: &str = "aduan_spool_commits_total";
/// Writes refused because the spool was full (counter).
pub const FULL: &str = "aduan_spool_full_total";

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const QUARANTINE: TableDefinition<u64, &[u8]> = TableDefinition::new("quarantine");

/// The spool's file inside `[spool] dir`.
pub const FILE_NAME: &str = "spool.redb";

/// `[spool]`: the local durable spool used while Redis is unavailable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Directory holding the spool file (`spool.redb`); created when missing. Each
    /// gateway process needs its own. Default `data/spool`.
    pub dir: PathBuf,
    /// Most bytes of waiting records; past it the gateway answers `503` with
    /// `Retry-After` instead of accepting. Default 1 GiB.
    pub max_bytes: u64,
    /// Most waiting complaints; past it, `503` with `Retry-After`. Default 1,000,000.
    pub max_records: u64,
    /// Most writes (requests) grouped into one commit. Default 1024.
    pub group_commit_max: usize,
    /// Writes that may wait for the writer before callers wait for room. Default 8192.
    pub queue_capacity: usize,
    /// Records the forwarder reads, forwards and deletes per round. Default 512.
    pub forward_batch: usize,
    /// How long the forwarder waits before trying Redis again after a failure. Default 500 ms.
    pub retry_interval_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: PathBuf::from("data/spool"),
            max_bytes: 1 << 30,
            max_records: 1_000_000,
            group_commit_max: 1024,
            queue_capacity: 8192,
            forward_batch: 512,
            retry_interval_ms: 500,
        }
    }
}

impl SpoolConfig {
    /// Problems with the values, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.dir.as_os_str().is_empty() {
            out.push(("spool.dir", "must not be empty"));
        }
        for (key, value) in [
            ("spool.max_bytes", self.max_bytes),
            ("spool.max_records", self.max_records),
            ("spool.group_commit_max", self.group_commit_max as u64),
            ("spool.queue_capacity", self.queue_capacity as u64),
            ("spool.forward_batch", self.forward_batch as u64),
            ("spool.retry_interval_ms", self.retry_interval_ms),
        ] {
            if value == 0 {
                out.push((key, "must be positive"));
            }
        }
        out
    }

    /// The spool file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }
}

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
    Redis(#[from] SinkError),
}

impl SpoolError {
    fn storage(e: impl std::fmt::Display) -> Self {
        SpoolError::Storage(e.to_string())
    }
}

/// What a record holds: the complaint as accepted (id, language and all) and
/// when it was spooled.
#[derive(Serialize, Deserialize)]
struct Record {
    spooled_at_ms: i64,
    complaint: Complaint,
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
    db: Arc<Database>,
    tx: mpsc::Sender<Write>,
    shared: Arc<Shared>,
    cfg: SpoolConfig,
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
        let db = Arc::new(open_db(&cfg.path())?);
        let shared = Arc::new(Shared::default());
        let next_seq = {
            let txn = db.begin_write().map_err(SpoolError::storage)?;
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
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let spool = Arc::new(Spool {
            db: db.clone(),
            tx,
            shared: shared.clone(),
            cfg: cfg.clone(),
        });
        spool.refresh_oldest();
        shared.writer_alive.store(true, Ordering::Relaxed);
        let limits = Limits {
            max_records: cfg.max_records,
            max_bytes: cfg.max_bytes,
            group_max: cfg.group_commit_max.max(1),
        };
        std::thread::Builder::new()
            .name("aduan-spool-writer".into())
            .spawn(move || writer_loop(db, rx, shared, limits, next_seq))
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
        let mut records = Vec::with_capacity(complaints.len());
        for complaint in complaints {
            #[derive(Serialize)]
            struct RecordRef<'a> {
                spooled_at_ms: i64,
                complaint: &'a Complaint,
            }
            let bytes = serde_json::to_vec(&RecordRef {
                spooled_at_ms,
                complaint,
            })
            .map_err(|e| SpoolError::Encode(e.to_string()))?;
            records.push(bytes);
        }
        let (done, outcome) = oneshot::channel();
        self.tx
            .send(Write { records, done })
            .await
            .map_err(|_| SpoolError::Closed)?;
        let result = outcome.await.map_err(|_| SpoolError::Closed)?;
        if matches!(result, Err(SpoolError::Full(_))) {
            metrics::counter!(FULL).increment(1);
        } else if result.is_ok() {
            metrics::counter!(WRITTEN).increment(complaints.len() as u64);
        }
        result
    }

    /// Forwards up to one batch of the oldest records to Redis, in order. Returns
    /// how many were forwarded (appended or found to be duplicates); `Ok(0)` means
    /// the spool is empty. Stops at the first Redis failure, keeping that record
    /// and every later one.
    pub async fn forward_once(&self, sink: &RedisSink) -> Result<usize, SpoolError> {
        let db = self.db.clone();
        let limit = self.cfg.forward_batch.max(1);
        let batch = tokio::task::spawn_blocking(move || read_oldest(&db, limit))
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
        for (seq, bytes) in batch {
            let record: Record = match serde_json::from_slice(&bytes) {
                Ok(r) => r,
                Err(_) => {
                    broken.push((seq, bytes));
                    continue;
                }
            };
            match sink.append(std::slice::from_ref(&record.complaint)).await {
                Ok(receipts) => {
                    let duplicate = receipts.first().is_some_and(|r| r.duplicate);
                    let labels = [
                        ("channel", record.complaint.channel.as_str().to_string()),
                        ("instance", record.complaint.instance.clone()),
                    ];
                    // Counted as accepted when spooled; only a redelivery found now is news.
                    if duplicate {
                        metrics::counter!(crate::telemetry::DUPLICATES, &labels).increment(1);
                    }
                    forwarded.push((seq, bytes.len() as u64));
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let done = forwarded.len();
        if !forwarded.is_empty() || !broken.is_empty() {
            let db = self.db.clone();
            let seqs: Vec<u64> = forwarded.iter().map(|(s, _)| *s).collect();
            let quarantine: Vec<(u64, Vec<u8>)> = broken.clone();
            tokio::task::spawn_blocking(move || remove_and_quarantine(&db, &seqs, &quarantine))
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

    /// Forwards until the spool is empty or Redis fails; the count forwarded.
    pub async fn drain(&self, sink: &RedisSink) -> Result<usize, SpoolError> {
        let mut total = 0;
        loop {
            match self.forward_once(sink).await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    /// The forwarder task: drains whenever records wait, retries Redis every
    /// `retry_interval_ms` while it fails, refreshes the gauges each second.
    pub async fn forward(self: Arc<Self>, sink: Arc<RedisSink>, shutdown: CancellationToken) {
        let retry = Duration::from_millis(self.cfg.retry_interval_ms.max(1));
        let mut failing = false;
        loop {
            self.sample_drain();
            let wait = match self.forward_once(&sink).await {
                Ok(0) => {
                    if failing {
                        tracing::info!("spool drained; redis answers again");
                        failing = false;
                    }
                    None
                }
                Ok(_) => continue,
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

    fn refresh_oldest(&self) {
        let oldest = read_oldest(&self.db, 1)
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

/// The spool time of an encoded record, without decoding the complaint.
fn spooled_at(bytes: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Head {
        spooled_at_ms: i64,
    }
    serde_json::from_slice::<Head>(bytes)
        .ok()
        .map(|h| h.spooled_at_ms)
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

fn remove_and_quarantine(
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

/// What the writer thread enforces.
struct Limits {
    max_records: u64,
    max_bytes: u64,
    group_max: usize,
}

/// The writer thread: one transaction per group of waiting writes.
fn writer_loop(
    db: Arc<Database>,
    mut rx: mpsc::Receiver<Write>,
    shared: Arc<Shared>,
    limits: Limits,
    mut next_seq: u64,
) {
    let Limits {
        max_records,
        max_bytes,
        group_max,
    } = limits;
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
        let committed = (|| -> Result<(u64, u64), SpoolError> {
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
        })();
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

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_adapter::{Channel, Context, Timestamp};

    fn complaint(external_id: &str) -> Complaint {
        let ctx = Context {
            instance: "cc-depok",
            received_at: Timestamp(chrono::Utc::now()),
            keep_raw: false,
        };
        let mut c = Complaint::new(
            &ctx,
            Channel::CallCenter,
            "transcript",
            external_id,
            "agent:AG-7",
        );
        c.id = ulid::Ulid::generate().to_string();
        c.text = "Jalan berlubang di depan SDN 3 Cibinong".into();
        c
    }

    fn config(dir: &Path) -> SpoolConfig {
        SpoolConfig {
            dir: dir.to_path_buf(),
            ..SpoolConfig::default()
        }
    }

    fn read_all(spool: &Spool) -> Vec<Complaint> {
        read_oldest(&spool.db, usize::MAX)
            .expect("read")
            .into_iter()
            .map(|(_, b)| {
                serde_json::from_slice::<Record>(&b)
                    .expect("record")
                    .complaint
            })
            .collect()
    }

    /// The status once the writer thread of a dropped spool let go of the file.
    async fn status_when_closed(cfg: &SpoolConfig) -> Status {
        for _ in 0..250 {
            match Spool::status_of(cfg) {
                Ok(s) => return s,
                Err(SpoolError::InUse { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("status: {e}"),
            }
        }
        panic!("spool file still in use");
    }

    #[tokio::test]
    async fn concurrent_writes_are_kept_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        let spool = Spool::open(&cfg).expect("open");
        assert!(spool.is_empty());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let spool = spool.clone();
            tasks.spawn(async move { spool.put(&[complaint(&format!("call-{i}"))]).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("task").expect("put");
        }
        spool
            .put(&[complaint("last-a"), complaint("last-b")])
            .await
            .expect("put");
        assert_eq!(spool.status().depth, 202);
        assert!(spool.status().oldest_age_seconds.is_some());
        let all = read_all(&spool);
        assert_eq!(all[200].external_id, "last-a");
        assert_eq!(all[201].external_id, "last-b");
        drop(spool);
        // The writer thread lets go of the file once the last handle is dropped.
        let reopened = loop {
            match Spool::open(&cfg) {
                Ok(s) => break s,
                Err(SpoolError::InUse { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("reopen: {e}"),
            }
        };
        assert_eq!(reopened.status().depth, 202);
        assert_eq!(read_all(&reopened).len(), 202);
        assert!(matches!(
            Spool::status_of(&cfg),
            Err(SpoolError::InUse { .. })
        ));
        drop(reopened);
        let status = status_when_closed(&cfg).await;
        assert_eq!(status.depth, 202);
        assert_eq!(status.quarantined, 0);
    }

    #[tokio::test]
    async fn past_the_cap_writes_are_refused_and_nothing_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = SpoolConfig {
            max_records: 3,
            ..config(dir.path())
        };
        let spool = Spool::open(&cfg).expect("open");
        spool
            .put(&[complaint("a"), complaint("b")])
            .await
            .expect("room for two");
        assert!(spool.writable());
        let err = spool
            .put(&[complaint("c"), complaint("d")])
            .await
            .expect_err("no room for two more");
        assert!(matches!(err, SpoolError::Full("max_records")), "{err}");
        spool.put(&[complaint("c")]).await.expect("room for one");
        assert!(!spool.writable());
        assert_eq!(
            read_all(&spool)
                .iter()
                .map(|c| c.external_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[tokio::test]
    async fn byte_cap_is_enforced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = SpoolConfig {
            max_bytes: 100,
            ..config(dir.path())
        };
        let spool = Spool::open(&cfg).expect("open");
        let err = spool.put(&[complaint("a")]).await.expect_err("too big");
        assert!(matches!(err, SpoolError::Full("max_bytes")), "{err}");
        assert!(spool.is_empty());
    }

    #[tokio::test]
    async fn an_undecodable_record_is_quarantined_not_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        let spool = Spool::open(&cfg).expect("open");
        spool.put_raw_for_test(b"{not json").await.expect("raw");
        // Redis at a closed port: the broken record is still moved aside, the good one waits.
        spool.put(&[complaint("good")]).await.expect("put");
        let sink = RedisSink::new(&crate::config::RedisConfig {
            url: "redis://127.0.0.1:1".into(),
            command_timeout_ms: 200,
            ..Default::default()
        })
        .expect("sink");
        let moved = spool.forward_once(&sink).await.expect("quarantine counts");
        assert_eq!(moved, 1);
        let status = spool.status();
        assert_eq!((status.depth, status.quarantined), (1, 1));
        assert!(matches!(
            spool.forward_once(&sink).await,
            Err(SpoolError::Redis(_))
        ));
        assert_eq!(read_all(&spool)[0].external_id, "good");
        drop(spool);
        let status = status_when_closed(&cfg).await;
        assert_eq!((status.depth, status.quarantined), (1, 1));
    }

    #[test]
    fn zero_limits_are_reported() {
        let cfg = SpoolConfig {
            max_records: 0,
            forward_batch: 0,
            ..SpoolConfig::default()
        };
        let keys: Vec<_> = cfg.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["spool.max_records", "spool.forward_batch"]);
    }
}
