//! Backpressure and input limits: how much work the gateway takes on at once,
//! how fast each instance and each sender may go, and how big or deep a
//! request may be before any adapter looks at it.
//!
//! Everything here is cheap and runs before the expensive steps it protects:
//! admission before the body is read, the byte pre-scan before an adapter's
//! serde parse, the per-sender check before the append. Every refusal is
//! counted in `aduan_limit_exceeded_total{limit, route}`.
//!
//! - `buckets`: token buckets by key (instances, senders).
//! - `prescan`: the byte-level checks on a raw body.
//! - `per_client`: requests per client address per minute (public pages and lookups).

pub(crate) mod buckets;
pub mod per_client;
mod prescan;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aduan_adapter::{Complaint, Receipt};
use axum::http::{HeaderMap, Uri};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::settings::{InstanceLimits, LimitsConfig};
use crate::telemetry;
use buckets::Buckets;
pub use prescan::{json_depth_exceeds, prescan};

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener is working on `max_in_flight` requests.
    InFlight,
    /// The instance is working on its share of requests.
    InstanceInFlight,
    /// The instance is over its request rate; retry after the given time.
    InstanceRate(Duration),
    /// A sender is over its complaint rate; retry after the given time.
    SenderRate(Duration),
}

impl Refusal {
    /// The `limit` label of the metric.
    pub fn limit(&self) -> &'static str {
        match self {
            Refusal::InFlight => "in_flight",
            Refusal::InstanceInFlight => "instance_in_flight",
            Refusal::InstanceRate(_) => "instance_rate",
            Refusal::SenderRate(_) => "sender_rate",
        }
    }
}

/// A request's place in the listener and in its instance, given back when dropped.
#[derive(Debug)]
pub struct Admission {
    _listener: OwnedSemaphorePermit,
    _instance: OwnedSemaphorePermit,
}

/// Tokens taken from senders' buckets for complaints about to be appended:
/// given back for those that turn out to be redeliveries or were not stored.
#[derive(Debug, Default)]
#[must_use = "settle the tickets once the append's outcome is known"]
pub struct SenderTickets {
    taken: Vec<String>,
}

/// One instance's gate: its share of the listener, its rate, its senders.
struct Gate {
    in_flight: Arc<Semaphore>,
    rate: Option<Buckets>,
    senders: Option<Buckets>,
}

/// The limits in force, shared by every request.
pub struct Limiter {
    cfg: LimitsConfig,
    in_flight: Arc<Semaphore>,
    gates: HashMap<String, Gate>,
    /// For instances that were not known at start (never in practice; keeps lookups total).
    fallback: Gate,
}

impl Limiter {
    /// The limits for the named instances.
    pub fn new<'a>(cfg: LimitsConfig, instance_names: impl IntoIterator<Item = &'a str>) -> Self {
        let gates = instance_names
            .into_iter()
            .map(|name| (name.to_string(), Gate::new(&cfg, cfg.instances.get(name))))
            .collect();
        Limiter {
            in_flight: Arc::new(Semaphore::new(cfg.max_in_flight)),
            fallback: Gate::new(&cfg, None),
            gates,
            cfg,
        }
    }

    /// The settings these limits were built from.
    pub fn config(&self) -> &LimitsConfig {
        &self.cfg
    }

    fn gate(&self, instance: &str) -> &Gate {
        self.gates.get(instance).unwrap_or(&self.fallback)
    }

    /// Admits a request to `instance` on `route`, or says why not. A route that
    /// `waits` (Twilio: it does not retry a refused message) waits up to
    /// `twilio_wait_ms` for room; every other provider retries and is refused at once.
    pub async fn admit(
        &self,
        route: &'static str,
        instance: &str,
        waits: bool,
    ) -> Result<Admission, Refusal> {
        let gate = self.gate(instance);
        let result: Result<Admission, Refusal> = async {
            if let Some(rate) = &gate.rate {
                rate.take("", Instant::now())
                    .map_err(Refusal::InstanceRate)?;
            }
            let wait = waits.then(|| Duration::from_millis(self.cfg.twilio_wait_ms));
            let deadline = wait.map(|w| tokio::time::Instant::now() + w);
            let instance = acquire(&gate.in_flight, deadline)
                .await
                .ok_or(Refusal::InstanceInFlight)?;
            let listener = acquire(&self.in_flight, deadline)
                .await
                .ok_or(Refusal::InFlight)?;
            Ok(Admission {
                _listener: listener,
                _instance: instance,
            })
        }
        .await;
        if let Err(refusal) = &result {
            count(route, refusal.limit());
        }
        result
    }

    /// Takes one token per complaint from its sender's bucket. Complaints whose sender
    /// is over the limit are held back: the caller appends the rest and answers so that
    /// the provider retries the whole request later (the ones appended now are then
    /// redeliveries, which take no token).
    pub fn take_senders(
        &self,
        route: &'static str,
        instance: &str,
        complaints: Vec<Complaint>,
    ) -> (Vec<Complaint>, SenderTickets, Option<Refusal>) {
        let Some(senders) = &self.gate(instance).senders else {
            return (complaints, SenderTickets::default(), None);
        };
        let now = Instant::now();
        let mut kept = Vec::with_capacity(complaints.len());
        let mut tickets = SenderTickets::default();
        let mut wait: Option<Duration> = None;
        for complaint in complaints {
            match senders.take(&complaint.sender.id, now) {
                Ok(()) => {
                    tickets.taken.push(complaint.sender.id.clone());
                    kept.push(complaint);
                }
                Err(after) => wait = Some(wait.map_or(after, |w| w.max(after))),
            }
        }
        let refusal = wait.map(Refusal::SenderRate);
        if let Some(r) = &refusal {
            count(route, r.limit());
        }
        (kept, tickets, refusal)
    }

    /// Gives back the tokens of complaints that were redeliveries (`receipts` of the
    /// append) or, when the append failed (`None`), of all of them.
    pub fn settle(&self, instance: &str, tickets: SenderTickets, receipts: Option<&[Receipt]>) {
        let Some(senders) = &self.gate(instance).senders else {
            return;
        };
        for (i, sender) in tickets.taken.iter().enumerate() {
            let give_back = match receipts {
                None => true,
                Some(r) => r.get(i).is_none_or(|r| r.duplicate),
            };
            if give_back {
                senders.give_back(sender);
            }
        }
    }

    /// The body limit for `route`: the configured override, else the adapter's own, else
    /// the server's default.
    pub fn body_limit(&self, route: &str, adapter_own: Option<usize>, default: usize) -> usize {
        self.cfg
            .body_limit_bytes
            .get(route)
            .copied()
            .or(adapter_own)
            .unwrap_or(default)
    }

    /// The cheap checks on the raw request, before an adapter reads it: JSON nesting
    /// depth, form field count, query parameter count. `Err` is the `limit` label.
    pub fn prescan(
        &self,
        route: &'static str,
        headers: &HeaderMap,
        uri: &Uri,
        body: &[u8],
    ) -> Result<(), &'static str> {
        let result = prescan::prescan(&self.cfg, headers, uri, body);
        if let Err(limit) = result {
            count(route, limit);
        }
        result
    }

    /// Refuses a batch larger than `max_messages_per_request`.
    pub fn check_batch(&self, route: &'static str, messages: usize) -> Result<(), &'static str> {
        if messages > self.cfg.max_messages_per_request {
            count(route, "messages");
            return Err("messages");
        }
        Ok(())
    }
}

/// Counts one refusal by a limit.
pub fn count(route: &'static str, limit: &'static str) {
    telemetry::limit_exceeded(route, limit);
}

/// Whole seconds, rounded up: what a `Retry-After` for `d` says.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A permit now, or by `deadline` when one is given.
async fn acquire(
    sem: &Arc<Semaphore>,
    deadline: Option<tokio::time::Instant>,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = sem.clone().try_acquire_owned() {
        return Some(p);
    }
    let deadline = deadline?;
    tokio::time::timeout_at(deadline, sem.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
}

impl Gate {
    fn new(cfg: &LimitsConfig, over: Option<&InstanceLimits>) -> Gate {
        let over = over.cloned().unwrap_or_default();
        let in_flight = over.max_in_flight.unwrap_or(cfg.max_in_flight_per_instance);
        let rps = over.per_instance_rps.unwrap_or(cfg.per_instance_rps);
        let burst = over.per_instance_burst.unwrap_or(cfg.per_instance_burst);
        let per_minute = over
            .per_sender_per_minute
            .unwrap_or(cfg.per_sender_per_minute);
        Gate {
            in_flight: Arc::new(Semaphore::new(in_flight.max(1))),
            rate: (rps > 0).then(|| {
                let burst = if burst == 0 {
                    rps.saturating_mul(2)
                } else {
                    burst
                };
                Buckets::new(f64::from(rps), f64::from(burst))
            }),
            senders: (per_minute > 0)
                .then(|| Buckets::new(f64::from(per_minute) / 60.0, f64::from(per_minute))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complaint(sender: &str) -> Complaint {
        let ctx = aduan_adapter::Context {
            instance: "t",
            received_at: aduan_adapter::Timestamp(chrono::Utc::now()),
            keep_raw: false,
        };
        Complaint::new(
            &ctx,
            aduan_adapter::Channel::Whatsapp,
            "meta_whatsapp",
            format!("x-{sender}"),
            sender.to_string(),
        )
    }

    #[test]
    fn redeliveries_give_their_sender_token_back() {
        let cfg = LimitsConfig {
            per_sender_per_minute: 1,
            ..LimitsConfig::default()
        };
        let limits = Limiter::new(cfg, ["wa"]);
        let (kept, tickets, refused) = limits.take_senders("whatsapp", "wa", vec![complaint("a")]);
        assert_eq!((kept.len(), refused), (1, None));
        let receipt = Receipt {
            id: "01J".into(),
            external_id: "x-a".into(),
            duplicate: true,
            tracking: None,
        };
        limits.settle("wa", tickets, Some(&[receipt]));
        let (kept, tickets, refused) =
            limits.take_senders("whatsapp", "wa", vec![complaint("a"), complaint("b")]);
        assert_eq!(kept.len(), 2);
        assert!(refused.is_none());
        limits.settle("wa", tickets, None);
        let (kept, _, refused) =
            limits.take_senders("whatsapp", "wa", vec![complaint("a"), complaint("a")]);
        assert_eq!(kept.len(), 1);
        assert!(matches!(refused, Some(Refusal::SenderRate(_))));
    }

    #[tokio::test]
    async fn a_full_instance_refuses_at_once_and_twilio_waits() {
        let cfg = LimitsConfig {
            max_in_flight_per_instance: 1,
            twilio_wait_ms: 200,
            ..LimitsConfig::default()
        };
        let limits = Limiter::new(cfg, ["wa", "sms"]);
        let held = limits.admit("whatsapp", "wa", false).await.expect("room");
        assert_eq!(
            limits.admit("whatsapp", "wa", false).await.err(),
            Some(Refusal::InstanceInFlight)
        );
        // Another instance still has room.
        let other = limits.admit("twilio", "sms", true).await.expect("room");
        let started = Instant::now();
        assert_eq!(
            limits.admit("twilio", "sms", true).await.err(),
            Some(Refusal::InstanceInFlight)
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
        drop((held, other));
    }
}
