//! The open connections of one listener (HTTP or SMTP): how many there may
//! be, how long a new one may stay silent, how long an idle one is kept.
//!
//! A connection that never sends a byte, or a keep-alive connection left
//! idle, holds a file descriptor and nothing else; enough of them would
//! starve the process. So each listener keeps a table of its connections
//! with their last activity: a reaper closes those silent past the first-byte
//! timeout or idle past the idle timeout, and when the cap is reached the
//! oldest idle connection is closed to make room for the new one (a new one
//! is refused only when every connection is busy). A connection is busy
//! while a request is being answered (HTTP) or a message delivered (SMTP).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::telemetry::{self, QuietLog};

/// How one listener treats its connections.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// The `route` label of the metrics (`any` for HTTP, `smtp`).
    pub label: &'static str,
    /// Most connections open at once.
    pub max: usize,
    /// How long a new connection may stay silent; `None`: as long as it likes
    /// (SMTP, where the server speaks first and the session has its own timeout).
    pub first_byte: Option<Duration>,
    /// How long a connection may stay idle (no bytes either way, nothing in progress).
    pub idle: Option<Duration>,
}

/// What one connection did last, updated by its I/O.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last byte read or written.
    last_ms: AtomicU64,
    read_any: AtomicBool,
    busy: AtomicUsize,
}

impl Activity {
    fn touch(&self, read: bool) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
        if read && !self.read_any.load(Ordering::Relaxed) {
            self.read_any.store(true, Ordering::Relaxed);
        }
    }

    fn idle_for(&self, now: Instant) -> Duration {
        let last = self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) > 0
    }

    /// Marks the connection busy until the guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

/// A connection's busy mark; see [`Activity::busy`].
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch(false);
    }
}

struct Slot {
    opened: Instant,
    activity: Arc<Activity>,
    abort: Option<AbortHandle>,
}

struct Inner {
    policy: Policy,
    slots: Mutex<HashMap<u64, Slot>>,
    next: AtomicU64,
    /// Connections closed to make room, logged once a second: a flood of
    /// new connections closes one idle connection per connection.
    evicted: Arc<QuietLog>,
}

/// The table of one listener's connections.
#[derive(Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

/// One admitted connection's place in the table, given back when dropped.
pub struct Ticket {
    id: u64,
    inner: Arc<Inner>,
    activity: Arc<Activity>,
}

impl Ticket {
    /// The connection's activity, for its I/O wrapper and busy marks.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// The connection's number in its table, for [`Connections::attach`].
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.inner.slots.lock() {
            slots.remove(&self.id);
        }
    }
}

impl Connections {
    /// An empty table.
    pub fn new(policy: Policy) -> Self {
        let listener = policy.label;
        let evicted = QuietLog::summarizing(move |s| {
            tracing::info!(
                listener,
                count = s.count,
                oldest_idle_seconds = s.oldest_seconds(),
                "idle connections closed to make room"
            );
        });
        Connections {
            inner: Arc::new(Inner {
                policy,
                slots: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
                evicted,
            }),
        }
    }

    /// Closes `slot`'s connection to make room (`limit` says for what) and
    /// counts it; the log line is the summary of the second.
    fn evict(&self, slot: Slot, now: Instant, limit: &'static str) {
        let idle = slot.activity.idle_for(now);
        if let Some(abort) = slot.abort {
            abort.abort();
        }
        telemetry::limit_counted(self.inner.policy.label, limit);
        self.inner.evicted.tally(1, Some(idle));
    }

    /// Lets the table close connection `id` by aborting the task serving it
    /// (the task holds the connection's [`Ticket`]).
    pub fn attach(&self, id: u64, abort: AbortHandle) {
        if let Ok(mut slots) = self.inner.slots.lock()
            && let Some(slot) = slots.get_mut(&id)
        {
            slot.abort = Some(abort);
        }
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.inner.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// True when none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A place for a new connection: at the cap, the oldest idle connection
    /// is closed first; `None` when every open connection is busy.
    pub fn admit(&self) -> Option<Ticket> {
        let now = Instant::now();
        let mut slots = self.inner.slots.lock().ok()?;
        if slots.len() >= self.inner.policy.max {
            let oldest = slots
                .iter()
                .filter(|(_, s)| !s.activity.is_busy())
                .max_by_key(|(_, s)| s.activity.idle_for(now))
                .map(|(id, _)| *id)?;
            if let Some(slot) = slots.remove(&oldest) {
                self.evict(slot, now, "connections");
            }
        }
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            epoch: now,
            last_ms: AtomicU64::new(0),
            read_any: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
        });
        slots.insert(
            id,
            Slot {
                opened: now,
                activity: activity.clone(),
                abort: None,
            },
        );
        Some(Ticket {
            id,
            inner: self.inner.clone(),
            activity,
        })
    }

    /// Closes the connection idle longest, if one is idle: when the process is
    /// out of file descriptors, the next accept then has one. True if one was closed.
    pub fn evict_idle(&self) -> bool {
        let now = Instant::now();
        let Ok(mut slots) = self.inner.slots.lock() else {
            return false;
        };
        let oldest = slots
            .iter()
            .filter(|(_, s)| !s.activity.is_busy())
            .max_by_key(|(_, s)| s.activity.idle_for(now))
            .map(|(id, _)| *id);
        let Some(slot) = oldest.and_then(|id| slots.remove(&id)) else {
            return false;
        };
        self.evict(slot, now, "descriptors");
        true
    }

    /// Closes the connections silent past the first-byte timeout or idle past
    /// the idle timeout; how many.
    pub fn reap(&self, now: Instant) -> usize {
        let policy = self.inner.policy;
        let Ok(mut slots) = self.inner.slots.lock() else {
            return 0;
        };
        let mut closed = Vec::new();
        for (id, slot) in slots.iter() {
            let a = &slot.activity;
            let silent = policy.first_byte.is_some_and(|limit| {
                !a.read_any.load(Ordering::Relaxed)
                    && now.saturating_duration_since(slot.opened) > limit
            });
            let idle = policy
                .idle
                .is_some_and(|limit| !a.is_busy() && a.idle_for(now) > limit);
            if silent || idle {
                closed.push((
                    *id,
                    if silent {
                        "first_byte_timeout"
                    } else {
                        "idle_timeout"
                    },
                ));
            }
        }
        for (id, limit) in &closed {
            if let Some(slot) = slots.remove(id)
                && let Some(abort) = slot.abort
            {
                abort.abort();
            }
            metrics::counter!(telemetry::LIMIT_EXCEEDED, "limit" => *limit, "route" => policy.label)
                .increment(1);
        }
        closed.len()
    }

    /// Runs [`Connections::reap`] a few times a second until `shutdown`.
    pub async fn reaper(self, shutdown: CancellationToken) {
        let policy = self.inner.policy;
        let shortest = [policy.first_byte, policy.idle]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(1));
        let every = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let closed = self.reap(Instant::now());
            if closed > 0 {
                tracing::debug!(
                    closed,
                    listener = policy.label,
                    "silent or idle connections closed"
                );
            }
        }
    }
}

/// A stream whose reads and writes mark its connection active.
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Wraps `inner`, reporting to `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Tracked { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch(true);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(false);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// True for an accept that failed because the process or the system is out
/// of file descriptors.
pub fn out_of_descriptors(e: &std::io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::MFILE.raw_os_error())
        || code == Some(rustix::io::Errno::NFILE.raw_os_error())
}

/// Raises the soft limit on open files to the hard one, and warns when even
/// that is below what the connection caps need.
pub fn raise_file_limit(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let target = limit.maximum;
    if limit.current != target {
        let raised = Rlimit {
            current: target,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    match now {
        Some(n) if n < needed => tracing::warn!(
            limit = n,
            needed,
            "the open-file limit is below what the connection caps need; lower [limits] max_connections or raise the limit"
        ),
        _ => tracing::debug!(limit = ?now, "open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: usize) -> Policy {
        Policy {
            label: "any",
            max,
            first_byte: Some(Duration::from_millis(100)),
            idle: Some(Duration::from_millis(300)),
        }
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let table = Connections::new(policy(2));
        let a = table.admit().expect("room");
        let id = a.id();
        let task_a = tokio::spawn(async move {
            let _ticket = a;
            std::future::pending::<()>().await
        });
        table.attach(id, task_a.abort_handle());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let b = table.admit().expect("room");
        let _busy = b.activity().busy();
        let c = table.admit().expect("a is idle and oldest: closed");
        assert!(task_a.await.is_err_and(|e| e.is_cancelled()));
        assert_eq!(table.len(), 2);
        // Both left are busy or new: c is idle, so a fourth closes c.
        let _d = table.admit().expect("c makes room");
        let _busy_d = _d.activity().busy();
        assert!(table.admit().is_none(), "every connection busy: refused");
        drop((b, c));
    }

    #[tokio::test]
    async fn silent_and_idle_connections_are_reaped() {
        let table = Connections::new(policy(10));
        let silent = table.admit().expect("room");
        let talking = table.admit().expect("room");
        talking.activity().touch(true);
        let busy = table.admit().expect("room");
        busy.activity().touch(true);
        let _mark = busy.activity().busy();
        let start = Instant::now();
        assert_eq!(table.reap(start), 0);
        assert_eq!(
            table.reap(start + Duration::from_millis(150)),
            1,
            "the silent one"
        );
        assert_eq!(
            table.reap(start + Duration::from_millis(400)),
            1,
            "the idle one"
        );
        assert_eq!(table.len(), 1, "the busy one stays");
        drop((silent, talking));
    }
}
