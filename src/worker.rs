//! The stream worker: the consumer-group machinery every stream job runs on
//! (replies, media jobs). Per partition it ensures the group, reads with a
//! block on a connection of its own, takes over a dead consumer's entries by
//! following the `XAUTOCLAIM` cursor, and pauses on errors with a logged
//! reason. It never acknowledges: a job acknowledges an entry when its
//! outcome is recorded (the reply worker in the same script as the record),
//! and an entry whose outcome could not be recorded stays pending for a
//! takeover.
//!
//! A worker has room for a fixed number of entries in flight (a semaphore
//! shared by its partitions); a read or a takeover waits for room for what it
//! may take, and hands the job the entries with one permit each.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::redis::Redis;
use crate::redis::replies::{Entry, Streams};

/// How long a read blocks for new entries.
const BLOCK: Duration = Duration::from_secs(2);

/// What a stream worker runs: the handling of the entries it read or took over.
pub trait StreamJob: Send + Sync + 'static {
    /// Takes `entries` with `room` holding one permit per entry; a permit
    /// dropped frees room for the next read.
    fn take(
        self: Arc<Self>,
        entries: Vec<Entry>,
        room: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send;
}

/// How a worker reads: what it is called in logs, how many entries it may
/// hold and read at once, and when a pending entry counts as abandoned.
#[derive(Clone)]
pub struct Reading {
    pub name: &'static str,
    pub room: Arc<Semaphore>,
    /// The most permits `room` ever holds (what it was made with).
    pub capacity: usize,
    /// Entries per read (at most `capacity`).
    pub per_read: usize,
    /// `XAUTOCLAIM` takes entries idle this long.
    pub claim_idle: Duration,
}

/// One partition's reader and takeover loops for `job`.
pub fn spawn<J: StreamJob>(
    reading: &Reading,
    redis: Arc<Redis>,
    streams: Streams,
    job: Arc<J>,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let driver = Arc::new(Driver {
        reading: reading.clone(),
        redis,
        streams,
        job,
    });
    vec![
        tokio::spawn(driver.clone().read_loop(stop.clone())),
        tokio::spawn(driver.takeover_loop(stop.clone())),
    ]
}

/// Runs `job` on every partition of `redis` until `stop`: `on` makes one
/// partition's job and gives the streams it reads.
pub async fn run_partitions<J: StreamJob>(
    reading: &Reading,
    redis: &Arc<Redis>,
    stop: &CancellationToken,
    on: impl Fn(Arc<Redis>) -> (Arc<J>, Streams),
) {
    let mut loops = Vec::new();
    for part in redis.partitions() {
        let (job, streams) = on(part.clone());
        loops.extend(spawn(reading, part, streams, job, stop));
    }
    for task in loops {
        let _ = task.await;
    }
}

/// Hands each entry to `process` on a task of its own, holding one permit
/// of `room` until it is done.
pub fn spawn_each<J, F, Fut>(
    job: Arc<J>,
    entries: Vec<Entry>,
    mut room: OwnedSemaphorePermit,
    process: F,
) where
    J: Send + Sync + 'static,
    F: Fn(Arc<J>, Entry) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for entry in entries {
        let Some(slot) = room.split(1) else { return };
        let work = process(job.clone(), entry);
        tokio::spawn(async move {
            work.await;
            drop(slot);
        });
    }
}

struct Driver<J> {
    reading: Reading,
    redis: Arc<Redis>,
    streams: Streams,
    job: Arc<J>,
}

impl<J: StreamJob> Driver<J> {
    fn per_read(&self) -> usize {
        self.reading.per_read.clamp(1, self.reading.capacity.max(1))
    }

    async fn read_loop(self: Arc<Self>, stop: CancellationToken) {
        let name = self.reading.name;
        let count = self.per_read();
        let mut conn = None;
        let mut grouped = false;
        // Our own pending entries (an earlier run's) are read first, then new ones.
        let mut pending = true;
        while !stop.is_cancelled() {
            if !grouped {
                match self.redis.ensure_group(&self.streams).await {
                    Ok(()) => grouped = true,
                    Err(e) => {
                        tracing::warn!(worker = name, error = %e, "consumer group not ready");
                        pause(&stop, Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            if conn.is_none() {
                match self.redis.blocking_connection(BLOCK).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(worker = name, error = %e, "no connection to read on");
                        pause(&stop, Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            // Room for a whole read before reading it.
            let Ok(mut room) = self
                .reading
                .room
                .clone()
                .acquire_many_owned(count as u32)
                .await
            else {
                return;
            };
            let read = tokio::select! {
                r = self.redis.read_outbound(c, &self.streams, count, BLOCK, pending) => r,
                _ = stop.cancelled() => return,
            };
            match read {
                Ok(entries) => {
                    if pending && entries.len() < count {
                        pending = false;
                    }
                    if let Some(taken) = room.split(entries.len())
                        && !entries.is_empty()
                    {
                        drop(room);
                        self.job.clone().take(entries, taken).await;
                    }
                }
                Err(e) => {
                    drop(room);
                    tracing::warn!(worker = name, error = %e, "stream read failed");
                    if e.to_string().contains("NOGROUP") {
                        grouped = false;
                    }
                    pause(&stop, Duration::from_millis(500)).await;
                }
            }
        }
    }

    async fn takeover_loop(self: Arc<Self>, stop: CancellationToken) {
        let name = self.reading.name;
        let idle = self.reading.claim_idle;
        let every = (idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(15));
        // What a takeover takes at once leaves the reader its room: a batch
        // that needed the read's permits would wait for its block to end.
        let count = self
            .per_read()
            .max(16)
            .min(self.reading.capacity.saturating_sub(self.per_read()).max(1));
        while !stop.is_cancelled() {
            pause(&stop, every).await;
            let mut cursor = "0-0".to_string();
            loop {
                let (next, entries) = match self
                    .redis
                    .autoclaim(&self.streams, idle, &cursor, count)
                    .await
                {
                    Ok(found) => found,
                    // This round ends; the next one starts over.
                    Err(e) => {
                        tracing::warn!(worker = name, error = %e, "takeover failed");
                        break;
                    }
                };
                if !entries.is_empty() {
                    let Ok(room) = self
                        .reading
                        .room
                        .clone()
                        .acquire_many_owned(entries.len() as u32)
                        .await
                    else {
                        return;
                    };
                    self.job.clone().take(entries, room).await;
                }
                if next == "0-0" || stop.is_cancelled() {
                    break;
                }
                cursor = next;
            }
        }
    }
}

/// Sleeps `d`, or less if `stop` comes first.
pub async fn pause(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.cancelled() => {}
    }
}
