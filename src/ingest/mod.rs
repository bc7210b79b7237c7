//! The one door into the pipeline. Every intake (HTTP routes, the SMTP
//! listener, pollers, `import-transcripts`) hands what its adapter made of
//! a request to [`Ingest::accept`], which owns, in this order: storing the
//! attachment bytes the request carried, assembling split messages, the
//! batch and per-sender limits, the publish (Redis, or the spool), and the
//! counting and logging of what was accepted, duplicated or refused.
//!
//! - `error`: [`Door`] and [`IngestError`].
//! - `fragments`: split messages held until whole, and their sweeper.

mod error;
mod fragments;

use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Blob, Complaint, Consent, Fragment, Ignored, Outcome, Receipt, StatusReport};
use tokio_util::sync::CancellationToken;

pub use error::{Door, IngestError};
pub use fragments::FragmentError;

use crate::blobs::BlobStore;
use crate::instances::Instance;
use crate::limits::{Admission, Limiter};
use crate::outbound::reports::Reports;
use crate::pipeline::Pipeline;
use crate::redis::Redis;
use crate::settings::LimitsConfig;
use crate::spool::Event;
use crate::telemetry;

/// What a door hands over, taken apart.
struct Intake {
    complaints: Vec<Complaint>,
    ignored: Vec<Ignored>,
    reports: Vec<StatusReport>,
    consents: Vec<Consent>,
    blobs: Vec<Blob>,
    fragments: Vec<Fragment>,
}

impl From<Outcome> for Intake {
    fn from(outcome: Outcome) -> Self {
        let mut intake = Intake {
            complaints: Vec::new(),
            ignored: Vec::new(),
            reports: Vec::new(),
            consents: Vec::new(),
            blobs: Vec::new(),
            fragments: Vec::new(),
        };
        match outcome {
            Outcome::Accept {
                complaints,
                ignored,
                reports,
                consents,
            } => {
                (intake.complaints, intake.ignored) = (complaints, ignored);
                (intake.reports, intake.consents) = (reports, consents);
            }
            Outcome::AcceptWithBlobs {
                complaints,
                ignored,
                blobs,
            } => (intake.complaints, intake.ignored, intake.blobs) = (complaints, ignored, blobs),
            Outcome::Fragments(fragments) => intake.fragments = fragments,
            // A handshake is the door's to answer; there is nothing to write.
            Outcome::Reply(_) => {}
        }
        intake
    }
}

/// The ingest service, shared by every door.
pub struct Ingest {
    pipeline: Arc<Pipeline>,
    blobs: BlobStore,
    limiter: Limiter,
    /// Whether `import-transcripts` applies the per-sender limit.
    import_per_sender: bool,
    retry_after_seconds: u64,
    /// Where provider delivery reports go.
    reports: Option<Reports>,
}

impl Ingest {
    /// The service over `pipeline`, with the limits of the named instances.
    pub fn new<'a>(
        pipeline: Arc<Pipeline>,
        blobs: BlobStore,
        limits: &LimitsConfig,
        instance_names: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Ingest {
            pipeline,
            blobs,
            limiter: Limiter::new(limits.clone(), instance_names),
            import_per_sender: limits.import_per_sender,
            retry_after_seconds: limits.retry_after_seconds.max(1),
            reports: None,
        }
    }

    /// Writes provider delivery reports through `reports` (without it they
    /// are counted and dropped).
    pub fn with_reports(mut self, reports: Reports) -> Self {
        self.reports = Some(reports);
        self
    }

    /// The limits in force (admission and input limits are checked by the
    /// HTTP door before a body is read).
    pub fn limits(&self) -> &Limiter {
        &self.limiter
    }

    /// The `Retry-After` every door gives when storage is unavailable or the
    /// gateway is full: `[limits] retry_after_seconds`.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after_seconds
    }

    /// The blob store attachments are written to.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The pipeline, for readiness and the spool's forwarder.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Redis, for pollers' leases and cursors.
    pub fn redis(&self) -> &Arc<Redis> {
        self.pipeline.redis()
    }

    /// Takes a place for one request to `instance` on its route, before its
    /// body is read; refused ones are counted.
    pub async fn admit(&self, instance: &Instance) -> Result<Admission, IngestError> {
        let (segment, waits) = instance
            .route
            .map_or((instance.label(), false), |r| (r.segment, r.waits_for_room));
        self.limiter
            .admit(segment, &instance.name, waits)
            .await
            .map_err(IngestError::Limited)
    }

    /// Accepts what `instance`'s adapter made of one request, message or line.
    /// `Ok` carries the receipts of the complaints written (a held part of a
    /// split message writes none yet); on `Err` the door answers so that the
    /// provider retries (or gives up, for a rejection).
    pub async fn accept(
        &self,
        instance: &Instance,
        outcome: Outcome,
        door: Door,
    ) -> Result<Vec<Receipt>, IngestError> {
        let result = self.accept_counted(instance, outcome, door).await;
        if let Err(e) = &result {
            self.refused(door, &instance.name, e);
        }
        result
    }

    async fn accept_counted(
        &self,
        instance: &Instance,
        outcome: Outcome,
        door: Door,
    ) -> Result<Vec<Receipt>, IngestError> {
        let label = door.label();
        let intake = Intake::from(outcome);
        for event in &intake.ignored {
            telemetry::ignored(label, &instance.name, event.reason);
        }
        if !intake.consents.is_empty() {
            let counted: Vec<&'static str> = intake
                .consents
                .iter()
                .map(|c| if c.opted_out { "opt_out" } else { "opt_in" })
                .collect();
            let event = Event::Consents {
                instance: instance.name.clone(),
                channel: aduan_adapter::Channel::Sms,
                consents: intake.consents,
            };
            self.record(instance, &event).await?;
            for reason in counted {
                telemetry::ignored(label, &instance.name, reason);
            }
        }
        if !intake.reports.is_empty() {
            if self.reports.is_some() {
                let event = Event::Reports {
                    instance: instance.name.clone(),
                    reports: intake.reports,
                };
                self.record(instance, &event).await?;
            } else {
                for _ in &intake.reports {
                    telemetry::report(&instance.name, "unmatched");
                }
            }
        }
        // Attachments first: a complaint in the stream always finds its files.
        if let Err(e) = self.blobs.put_all(intake.blobs).await {
            tracing::warn!(instance = %instance.name, error = %e, "attachments not stored");
            return Err(IngestError::Unavailable(e.to_string()));
        }
        if !intake.fragments.is_empty() {
            let window = instance
                .adapter()
                .map_or(Duration::from_secs(600), |a| a.fragment_window());
            let (complaints, receipts) = fragments::accept(
                &self.pipeline,
                intake.fragments,
                window,
            )
            .await
            .map_err(|e| {
                tracing::warn!(instance = %instance.name, error = %e, "message parts not held");
                match e {
                    FragmentError::Publish(p) => IngestError::from(p),
                    FragmentError::Redis(r) => IngestError::Unavailable(r.to_string()),
                }
            })?;
            telemetry::published(label, &complaints, &receipts);
            return Ok(receipts);
        }
        let complaints = intake.complaints;
        self.limiter
            .check_batch(label, complaints.len())
            .map_err(|limit| IngestError::Rejected(aduan_adapter::Rejection::TooLarge(limit)))?;
        let (mut complaints, tickets, throttled) =
            if door == Door::Import && !self.import_per_sender {
                (complaints, Default::default(), None)
            } else {
                self.limiter.take_senders(label, &instance.name, complaints)
            };
        if complaints.is_empty() {
            return match throttled {
                Some(refusal) => Err(IngestError::Limited(refusal)),
                None => Ok(Vec::new()),
            };
        }
        let published = self.pipeline.publish(&mut complaints).await;
        self.limiter.settle(
            &instance.name,
            tickets,
            published.as_ref().ok().map(Vec::as_slice),
        );
        let receipts = published.map_err(|e| {
            tracing::warn!(instance = %instance.name, error = %e, "complaints not accepted");
            IngestError::from(e)
        })?;
        telemetry::published(label, &complaints, &receipts);
        // The provider retries the whole request for the senders held back; what
        // was appended now is then a redelivery.
        match throttled {
            Some(refusal) => Err(IngestError::Limited(refusal)),
            None => Ok(receipts),
        }
    }

    /// Records opt-outs, opt-ins or delivery reports: in Redis, or in the
    /// spool, in their place among the complaints, while it holds records
    /// or when Redis fails. Nothing a citizen said is lost to a provider
    /// that does not retry (Twilio): it is answered as accepted either way.
    async fn record(&self, instance: &Instance, event: &Event) -> Result<(), IngestError> {
        let Some(reports) = &self.reports else {
            return Err(IngestError::Unavailable(
                "opt-outs and reports cannot be recorded".into(),
            ));
        };
        if !self.pipeline.spooling() {
            let Err(e) = event.apply(reports).await else {
                return Ok(());
            };
            telemetry::redis_error("events");
            if self.pipeline.spool().is_none() {
                return Err(IngestError::Unavailable(e.to_string()));
            }
            tracing::warn!(instance = %instance.name, error = %e, "redis failed; opt-outs or reports spooled");
        }
        Ok(self.pipeline.spool_event(event).await?)
    }

    /// Where the spool's records go: Redis, and the reports for its events.
    pub fn spool_target(&self) -> crate::spool::Target<'_> {
        crate::spool::Target {
            redis: self.pipeline.redis(),
            language: self.pipeline.language(),
            reports: self.reports.as_ref(),
        }
    }

    /// Counts and logs a refusal at `door`. Limits count their own refusals.
    pub fn refused(&self, door: Door, instance: &str, error: &IngestError) {
        if !matches!(error, IngestError::Limited(_)) {
            telemetry::rejected(door.label(), instance, error.reason());
        }
    }

    /// Forwards what waits in the spool, while Redis answers; how many records
    /// still wait. For a command that exits (an import): a gateway's forwarder
    /// does this by itself.
    pub async fn drain_spool(&self) -> usize {
        let Some(spool) = self.pipeline.spool() else {
            return 0;
        };
        if spool.is_empty() {
            return 0;
        }
        if let Err(e) = spool.drain(self.spool_target()).await {
            tracing::warn!(error = %e, "spooled complaints stay in the spool");
        }
        spool.status().depth as usize
    }

    /// Runs the split-message sweeper until `shutdown`; every replica runs one.
    pub async fn sweep_fragments(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(fragments::SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = chrono::Utc::now().timestamp_millis();
            match fragments::sweep_once(&self.pipeline, now).await {
                Ok((complaints, _)) if complaints.is_empty() => {}
                Ok((complaints, receipts)) => {
                    telemetry::published("sweep", &complaints, &receipts);
                    tracing::info!(
                        groups = complaints.len(),
                        "split messages written after their window"
                    );
                }
                // Redis being away is reported by the append path; retry next tick.
                Err(e) => tracing::debug!(error = %e, "fragment sweep failed"),
            }
        }
    }
}
