//! Split messages (concatenated SMS) through the ingest service: parts held
//! in Redis until the whole message has arrived, then appended as one
//! complaint; groups whose window passed are written by the sweeper that
//! every replica runs.
//!
//! Groups and claims stay in Redis until their complaint is durably
//! appended, so a crash in between only delays the complaint; appends are
//! idempotent because the assembled `external_id` is the first held part's,
//! so replicas sweeping the same group write it once. While Redis is away
//! (or the spool still holds records) parts go to the spool as parts, and its
//! forwarder holds them in Redis when it answers again.

use std::time::Duration;

use aduan_adapter::{Complaint, Fragment, Receipt};

use crate::assembly::assemble;
use crate::pipeline::{Pipeline, PublishError};
use crate::redis::RedisError;
use crate::redis::fragments::{Claimed, METRIC};

/// How often the sweeper looks for groups whose window has passed.
pub const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// Groups assembled per sweep round, so one round stays short.
const SWEEP_BATCH: isize = 100;

/// How long a claim may take before another replica takes it over.
const CLAIM_RETRY_MS: i64 = 60_000;

/// Why parts could not be held or a group written. Nothing was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum FragmentError {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Holds the parts (in Redis, else in the spool), appends the messages they
/// complete and releases those groups. Returns the complaints written and
/// their receipts (possibly none).
pub async fn accept(
    pipeline: &Pipeline,
    fragments: Vec<Fragment>,
    window: Duration,
) -> Result<(Vec<Complaint>, Vec<Receipt>), FragmentError> {
    if pipeline.spooling() {
        pipeline.spool_fragments(&fragments, window).await?;
        return Ok((Vec::new(), Vec::new()));
    }
    let redis = pipeline.redis();
    let completed = match redis.absorb(&fragments, window).await {
        Ok(c) => c,
        Err(e) => {
            pipeline.redis_failed(e)?;
            pipeline.spool_fragments(&fragments, window).await?;
            return Ok((Vec::new(), Vec::new()));
        }
    };
    let mut wholes = Vec::new();
    let mut groups = Vec::new();
    for held in completed {
        if let Some(whole) = assemble(held.parts, held.total) {
            wholes.push(whole);
            groups.push(held.key);
        }
    }
    if wholes.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let receipts = pipeline.publish(&mut wholes).await?;
    // The complaints are durable: a group left behind is only swept again
    // at its deadline, and that append is a duplicate.
    if let Err(e) = redis.release_fragments(&groups).await {
        tracing::warn!(error = %e, "written split message not released; the sweeper will");
    }
    Ok((wholes, receipts))
}

/// Appends every group whose window has passed at `now_ms`, complete or
/// not, and releases it. Returns the complaints written and their receipts.
pub async fn sweep_once(
    pipeline: &Pipeline,
    now_ms: i64,
) -> Result<(Vec<Complaint>, Vec<Receipt>), FragmentError> {
    let redis = pipeline.redis();
    let mut written = (Vec::new(), Vec::new());
    for member in redis.due_fragments(now_ms, SWEEP_BATCH).await? {
        // Claiming moves the group out of the way first: a part arriving
        // while it is being written starts a group of its own instead of
        // joining one whose complaint is already on its way.
        let held = match redis
            .claim_fragments(&member, now_ms + CLAIM_RETRY_MS)
            .await?
        {
            Claimed::Gone => continue,
            Claimed::Group(Ok(held)) => held,
            Claimed::Group(Err(key)) => {
                tracing::warn!("unreadable held group skipped");
                redis.unindex_fragments(&key).await?;
                continue;
            }
        };
        let complete = (1..=held.total).all(|n| held.parts.contains_key(&n));
        if let Some(mut whole) = assemble(held.parts, held.total) {
            let receipts = pipeline.publish(std::slice::from_mut(&mut whole)).await?;
            // A complete group here was counted when its last part came.
            if !complete {
                metrics::counter!(METRIC, "outcome" => "expired").increment(1);
            }
            written.0.push(whole);
            written.1.extend(receipts);
        }
        redis
            .release_fragments(std::slice::from_ref(&held.key))
            .await?;
    }
    Ok(written)
}
