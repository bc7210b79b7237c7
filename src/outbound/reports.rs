//! Delivery and read reports that arrive on the inbound webhooks (WhatsApp
//! `statuses`, Messenger and Instagram `delivery`/`read`, the SMS
//! providers' receipts), matched to the reply they are about and written to
//! `aduan:delivery`: by our own reference where the provider echoes it
//! (which also settles an `uncertain` reply), else through the provider id
//! recorded when the message was sent. Reports of messages this gateway did
//! not send are counted and dropped.

use std::sync::Arc;

use aduan_adapter::{
    Channel, Consent, DELIVERY_SCHEMA, Delivery, DeliveryError, MessageRef, ReportRef,
    StatusReport, Timestamp,
};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::redis::reports::{ByReference, Written};
use crate::redis::{Redis, RedisError};
use crate::telemetry;

/// What a sent provider id belongs to (stored at send, kept `report_days`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SentRef {
    pub reply_id: String,
    pub complaint_id: Option<String>,
    pub channel: Channel,
    pub to: String,
}

/// Writes matched reports to the delivery stream.
pub struct Reports {
    redis: Arc<Redis>,
    stream: String,
    events: String,
}

impl Reports {
    pub fn new(redis: Arc<Redis>, delivery_stream: &str, events_stream: &str) -> Self {
        Reports {
            redis,
            stream: delivery_stream.to_string(),
            events: events_stream.to_string(),
        }
    }

    /// Records opt-outs (later replies to the address fail as `opted_out`)
    /// and opt-ins, each with an event on the events stream.
    pub async fn consents(
        &self,
        instance: &str,
        channel: Channel,
        consents: &[Consent],
    ) -> Result<(), RedisError> {
        let at = Timestamp(Utc::now());
        let rows: Vec<(String, bool, String)> = consents
            .iter()
            .map(|c| {
                let event = serde_json::json!({
                    "type": if c.opted_out { "opt_out" } else { "opt_in" },
                    "instance": instance,
                    "channel": channel,
                    "to": c.to,
                    "keyword": c.keyword,
                    "at": at,
                });
                (c.to.clone(), c.opted_out, event.to_string())
            })
            .collect();
        // A reply is refused by the opt-out key of its own partition, which
        // is the conversation's and not known here: every partition gets
        // the key, the first the event.
        for part in self.redis.partitions() {
            let events = part.keys().named(&self.events);
            let events = (part.partition() == 0).then_some(events.as_str());
            part.record_consents(instance, events, &rows).await?;
        }
        Ok(())
    }

    /// Matches and writes `reports` of `instance`. An `Err` means Redis could
    /// not be reached: the provider should retry the webhook.
    ///
    /// A report that echoes our reference finds its reply by it, and settles
    /// an `uncertain` one; any other is matched by the provider id recorded
    /// at send. A report names no partition, so with partitions each lookup
    /// is made in every partition (one round trip each), and its delivery
    /// entry goes to the partition the reply was sent from.
    pub async fn record(&self, instance: &str, reports: &[StatusReport]) -> Result<(), RedisError> {
        let written = self.by_reference(instance, reports).await?;
        let rest: Vec<&StatusReport> = reports
            .iter()
            .zip(written)
            .filter(|(_, w)| !w)
            .map(|(r, _)| r)
            .collect();
        self.by_provider_id(instance, &rest).await
    }

    /// Writes the reports whose reference names a reply this instance sent
    /// (or left `uncertain`); says of each report whether it was written.
    async fn by_reference(
        &self,
        instance: &str,
        reports: &[StatusReport],
    ) -> Result<Vec<bool>, RedisError> {
        let mut written = vec![false; reports.len()];
        let referenced: Vec<(usize, &MessageRef)> = reports
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, r.reference.as_ref()?)))
            .collect();
        if referenced.is_empty() {
            return Ok(written);
        }
        let reply_ids: Vec<&str> = referenced
            .iter()
            .map(|(_, r)| r.reply_id.as_str())
            .collect();
        for part in self.redis.partitions() {
            let found = part.replies_found(&reply_ids).await?;
            let stream = part.keys().named(&self.stream);
            for ((i, reference), found) in referenced.iter().zip(found) {
                let Some(found) = found.filter(|f| {
                    matches!(f.state.as_str(), "sent" | "uncertain")
                        && f.instance.as_deref() == Some(instance)
                }) else {
                    continue;
                };
                let Some((index, sent)) = found.sent_index.and_then(|index| {
                    let sent = serde_json::from_str::<SentRef>(&index).ok()?;
                    Some((index, sent))
                }) else {
                    continue;
                };
                let report = &reports[*i];
                let id = match &report.about {
                    ReportRef::Message(id) => id.clone(),
                    ReportRef::UpTo { .. } => String::new(),
                };
                let delivery = delivery(instance, sent, report, Some(id.clone()));
                let json = serde_json::to_string(&delivery)
                    .map_err(|e| RedisError::Serialize(e.to_string()))?;
                let outcome = part
                    .report_by_reference(
                        &stream,
                        &ByReference {
                            reply_id: &reference.reply_id,
                            instance,
                            part: reference.part,
                            status: report.status.as_str(),
                            delivery: &json,
                            provider_message_id: &id,
                            sent_index: &index,
                            report_ttl: self.redis.report_ttl(),
                            state_ttl: self.redis.report_ttl(),
                        },
                    )
                    .await?;
                if outcome != Written::No {
                    written[*i] = true;
                    telemetry::report(instance, report.status.as_str());
                }
                if outcome == Written::Settled {
                    tracing::info!(instance, "an uncertain reply settled by a provider report");
                }
            }
        }
        Ok(written)
    }

    /// Writes the reports matched by the provider id recorded at send.
    async fn by_provider_id(
        &self,
        instance: &str,
        reports: &[&StatusReport],
    ) -> Result<(), RedisError> {
        let parts = self.redis.partitions();
        let mut lookups: Vec<(String, &StatusReport)> = Vec::new();
        for report in reports.iter().copied() {
            match &report.about {
                ReportRef::Message(id) => lookups.push((id.clone(), report)),
                ReportRef::UpTo {
                    recipient,
                    watermark,
                } => {
                    let mut ids = Vec::new();
                    for part in &parts {
                        ids.extend(
                            part.sent_up_to(instance, recipient, watermark.0.timestamp_millis())
                                .await?,
                        );
                    }
                    if ids.is_empty() {
                        telemetry::report(instance, "unmatched");
                    }
                    lookups.extend(ids.into_iter().map(|id| (id, report)));
                }
            }
        }
        let ids: Vec<&str> = lookups.iter().map(|(id, _)| id.as_str()).collect();
        let mut found: Vec<Option<(usize, String)>> = vec![None; ids.len()];
        for (p, part) in parts.iter().enumerate() {
            for (slot, sent) in found
                .iter_mut()
                .zip(part.sent_lookup(instance, &ids).await?)
            {
                if slot.is_none() {
                    *slot = sent.map(|s| (p, s));
                }
            }
        }
        let mut entries: Vec<Vec<(String, &'static str, String)>> = vec![Vec::new(); parts.len()];
        for ((id, report), sent) in lookups.iter().zip(found) {
            let Some((p, sent)) =
                sent.and_then(|(p, s)| Some((p, serde_json::from_str::<SentRef>(&s).ok()?)))
            else {
                telemetry::report(instance, "unmatched");
                continue;
            };
            telemetry::report(instance, report.status.as_str());
            let reply_id = sent.reply_id.clone();
            let delivery = delivery(instance, sent, report, Some(id.clone()));
            let json = serde_json::to_string(&delivery)
                .map_err(|e| RedisError::Serialize(e.to_string()))?;
            entries[p].push((reply_id, report.status.as_str(), json));
        }
        for (part, entries) in parts.iter().zip(entries) {
            part.add_deliveries(&part.keys().named(&self.stream), &entries)
                .await?;
        }
        Ok(())
    }
}

/// The delivery entry of `report` about a message sent for `sent`.
fn delivery(
    instance: &str,
    sent: SentRef,
    report: &StatusReport,
    provider_message_id: Option<String>,
) -> Delivery {
    Delivery {
        schema: DELIVERY_SCHEMA.into(),
        reply_id: sent.reply_id,
        entry_id: None,
        complaint_id: sent.complaint_id,
        instance: Some(instance.to_string()),
        channel: Some(sent.channel),
        to: Some(sent.to),
        status: report.status,
        provider_message_id: provider_message_id.filter(|id| !id.is_empty()),
        parts: None,
        provider_message_ids: Vec::new(),
        attempt: 0,
        error: report.error.as_ref().map(|(code, message)| DeliveryError {
            code: code.clone(),
            message: message.clone(),
            permanent: true,
        }),
        next_attempt_at: None,
        at: report.at.unwrap_or(Timestamp(Utc::now())),
    }
}
