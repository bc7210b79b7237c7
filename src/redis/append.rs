//! The atomic "seen before? else append" step, for many complaints at once.
//!
//! The duplicate check and the `XADD` run inside one Lua script, so two
//! replicas (or a provider retry racing its original) can never both append.
//! The dedup key stores the first complaint's id, which a duplicate gets back.
//!
//! Concurrent requests' complaints share script calls: every append is handed
//! to one task that sends whatever is waiting (up to [`BATCH_MAX`] complaints)
//! as one call, and while that call is out, gathers the next. An idle gateway
//! sends a lone complaint at once; a busy one pays one round trip and one
//! script run for many. When a call fails, every append in it fails and its
//! callers fall back to the spool for exactly their own complaints.

use std::sync::Arc;

use aduan_adapter::{Complaint, Receipt};
use tokio::sync::{mpsc, oneshot};

use super::{Link, Redis, RedisError, Ttls, scripts};
use crate::telemetry;

/// Most complaints one script call carries (an append of more is sent whole).
pub const BATCH_MAX: usize = 256;

/// Appends waiting for the task before callers wait for room.
const QUEUE: usize = 4096;

/// One complaint as the script takes it.
struct Item {
    dedup_key: String,
    route_key: String,
    window_key: String,
    /// The three tracking candidates and their keys.
    tracking: [String; 3],
    tracking_keys: [String; 3],
    route: String,
    /// The acknowledgement's outbound entry, rendered with the first
    /// candidate (`""` when the instance sends none).
    ack: String,
    /// The media job (`""` when nothing is to be fetched).
    media: String,
    /// When the citizen's message counts as written, for the reply window.
    window_ms: i64,
    id: String,
    channel: &'static str,
    instance: String,
    schema: String,
    json: String,
}

/// Per complaint: whether it was appended, the id it is known by, and its
/// tracking number.
type Outcome = (bool, String, Option<String>);

/// One caller's complaints, and where their outcome goes.
pub(super) struct Job {
    items: Vec<Item>,
    done: oneshot::Sender<Result<Vec<Outcome>, RedisError>>,
}

impl Redis {
    /// Appends each complaint unless its (instance, external_id) was seen within
    /// the window, in order, with its reply route, tracking number and (for
    /// instances that send one) its acknowledgement. Complaints must already
    /// carry their id.
    ///
    /// With partitions, each complaint goes to its conversation's partition,
    /// and each partition's share is one script call there, all at once.
    /// When any share fails the whole call fails: its callers spool every
    /// complaint, and those that did arrive are duplicates when forwarded.
    pub async fn append(&self, complaints: &[Complaint]) -> Result<Vec<Receipt>, RedisError> {
        if !self.splits() {
            return self.append_here(complaints).await;
        }
        let mut shares: std::collections::BTreeMap<u16, (Vec<usize>, Vec<Complaint>)> =
            std::collections::BTreeMap::new();
        for (i, c) in complaints.iter().enumerate() {
            let share = shares.entry(self.partition_for(c)).or_default();
            share.0.push(i);
            share.1.push(c.clone());
        }
        let calls = shares
            .iter()
            .map(|(p, (_, cs))| self.part(*p).append_here(cs));
        let results = futures::future::join_all(calls).await;
        let mut receipts: Vec<Option<Receipt>> = vec![None; complaints.len()];
        for ((_, (at, _)), result) in shares.iter().zip(results) {
            for (i, receipt) in at.iter().zip(result?) {
                receipts[*i] = Some(receipt);
            }
        }
        receipts
            .into_iter()
            .map(|r| r.ok_or_else(|| RedisError::Protocol("a complaint got no receipt".into())))
            .collect()
    }

    /// Appends in this partition (see [`Redis::append`]).
    async fn append_here(&self, complaints: &[Complaint]) -> Result<Vec<Receipt>, RedisError> {
        if complaints.is_empty() {
            return Ok(Vec::new());
        }
        let serialize = |e: serde_json::Error| RedisError::Serialize(e.to_string());
        let mut items = Vec::with_capacity(complaints.len());
        for c in complaints {
            let tracking = self.candidates(&c.id);
            // The document carries the first candidate; the script swaps in
            // another when that one is taken.
            let json = if c.tracking.as_deref() == Some(tracking[0].as_str()) {
                serde_json::to_string(c).map_err(serialize)?
            } else {
                let mut stamped = c.clone();
                stamped.tracking = Some(tracking[0].clone());
                serde_json::to_string(&stamped).map_err(serialize)?
            };
            let route = crate::reply_route::of(c);
            let window_key = route
                .as_ref()
                .map_or_else(String::new, |r| self.keys.window(&r.instance, &r.to));
            let ack = match (&route, self.acks.get(&c.instance)) {
                (Some(_), Some(ack)) => ack.reply_json(c, &tracking[0]),
                _ => String::new(),
            };
            let media = match self.fetchers.get(&c.instance) {
                Some(fetcher) => crate::media_job::job_json(c, fetcher.as_ref()),
                None => String::new(),
            };
            items.push(Item {
                dedup_key: self.keys.dedup(&c.instance, &c.external_id),
                route_key: self.keys.route(&c.id),
                window_key,
                tracking_keys: tracking.clone().map(|t| self.keys.tracking(&t)),
                tracking,
                route: match &route {
                    Some(r) => serde_json::to_string(r).map_err(serialize)?,
                    None => String::new(),
                },
                ack,
                media,
                // The window counts from the provider's time of the message.
                window_ms: crate::reply_route::window_at(c).0.timestamp_millis(),
                id: c.id.clone(),
                channel: c.channel.as_str(),
                instance: c.instance.clone(),
                schema: c.schema.clone(),
                json,
            });
        }
        let appender = self
            .appender
            .get_or_init(|| async {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(run(
                    self.link.clone(),
                    Streams {
                        complaints: self.keys.stream(),
                        outbound: self.keys.named(&self.outbound_stream),
                        media: self.keys.named(&self.media_stream),
                    },
                    self.ttls,
                    rx,
                ));
                tx
            })
            .await;
        let (done, outcome) = oneshot::channel();
        let stopped = || RedisError::Unavailable("the append task stopped".into());
        appender
            .send(Job { items, done })
            .await
            .map_err(|_| stopped())?;
        let results = outcome.await.map_err(|_| stopped())??;
        Ok(complaints
            .iter()
            .zip(results)
            .map(|(c, (appended, id, tracking))| Receipt {
                id,
                external_id: c.external_id.clone(),
                duplicate: !appended,
                tracking,
            })
            .collect())
    }
}

/// The streams one append writes.
struct Streams {
    complaints: String,
    outbound: String,
    media: String,
}

/// The task: one script call at a time, each carrying every append that
/// waited for the one before.
async fn run(link: Arc<Link>, streams: Streams, ttls: Ttls, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut count = first.items.len();
        jobs.push(first);
        while count < BATCH_MAX {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.items.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!(telemetry::APPEND_BATCH).record(count as f64);
        match call(&link, &streams, ttls, &jobs, count).await {
            Ok(mut results) => {
                for job in jobs.drain(..) {
                    let rest = results.split_off(job.items.len().min(results.len()));
                    let mine = std::mem::replace(&mut results, rest);
                    let _ = job.done.send(Ok(mine));
                }
            }
            Err(e) => {
                for job in jobs.drain(..) {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One script call for every item of `jobs`, in order.
async fn call(
    link: &Link,
    streams: &Streams,
    ttls: Ttls,
    jobs: &[Job],
    count: usize,
) -> Result<Vec<Outcome>, RedisError> {
    let mut conn = link.connection().await?;
    let mut invocation = scripts::APPEND_BATCH.prepare_invoke();
    invocation
        .key(&streams.complaints)
        .key(&streams.outbound)
        .key(&streams.media)
        .arg(ttls.dedup_ms)
        .arg(ttls.route_ms)
        .arg(ttls.window_ms)
        .arg(ttls.tracking_ms);
    for item in jobs.iter().flat_map(|j| &j.items) {
        // A complaint without a route still passes its keys; the script
        // touches its route and window keys only when it has one.
        invocation
            .key(&item.dedup_key)
            .key(&item.route_key)
            .key(if item.window_key.is_empty() {
                &item.route_key
            } else {
                &item.window_key
            });
        for key in &item.tracking_keys {
            invocation.key(key);
        }
        invocation
            .arg(&item.id)
            .arg(item.channel)
            .arg(&item.instance)
            .arg(&item.schema)
            .arg(&item.json)
            .arg(&item.route)
            .arg(item.window_ms)
            .arg(&item.tracking[0])
            .arg(&item.tracking[1])
            .arg(&item.tracking[2])
            .arg(&item.ack)
            .arg(&item.media);
    }
    let reply: Vec<::redis::Value> =
        tokio::time::timeout(link.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| RedisError::Timeout(link.timeout))?
            .map_err(|e| RedisError::Unavailable(e.to_string()))?;
    let outcomes = decode_reply(&reply, count)?;
    if let Some((replicas, wait)) = link.wait {
        // Durable only once replicas have it: an append the replicas did not
        // confirm is spooled, and forwarded as a duplicate if it survived.
        let confirmed = tokio::time::timeout(
            wait + link.timeout,
            conn.wait(&streams.complaints, replicas, wait),
        )
        .await
        .map_err(|_| RedisError::Timeout(wait + link.timeout))?
        .map_err(|e| RedisError::command("wait", e))?;
        if confirmed < i64::from(replicas) {
            telemetry::redis_error("wait");
            return Err(RedisError::Unavailable(format!(
                "{confirmed} of {replicas} replicas confirmed the append"
            )));
        }
    }
    Ok(outcomes)
}

/// `count` triples of (1 appended | 0 duplicate, id, tracking or `""`).
fn decode_reply(reply: &[::redis::Value], count: usize) -> Result<Vec<Outcome>, RedisError> {
    if reply.len() != count * 3 {
        return Err(RedisError::Protocol(format!(
            "{} values for {count} complaints",
            reply.len()
        )));
    }
    let text = |v: &::redis::Value, what: &str| match v {
        ::redis::Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        ::redis::Value::SimpleString(s) => Ok(s.clone()),
        other => Err(RedisError::Protocol(format!("{what} {other:?}"))),
    };
    reply
        .chunks(3)
        .map(|triple| {
            let appended = match &triple[0] {
                ::redis::Value::Int(n) => *n == 1,
                other => return Err(RedisError::Protocol(format!("flag {other:?}"))),
            };
            let id = text(&triple[1], "id")?;
            let tracking = Some(text(&triple[2], "tracking")?).filter(|t| !t.is_empty());
            Ok((appended, id, tracking))
        })
        .collect()
}
