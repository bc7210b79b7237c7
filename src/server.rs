//! The gateway as a whole: building everything from the settings, the HTTP
//! router, readiness and metrics, the pollers, the SMTP listener and the
//! spool's forwarder started beside it, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::outbound::Outbound;
use crate::outbound::reports::Reports;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio_util::sync::CancellationToken;

use crate::blobs::BlobStore;
use crate::ingest::Ingest;
use crate::instances::{Instance, Intake};
use crate::language::LanguageDetector;
use crate::pipeline::Pipeline;
use crate::poll::PollHost;
use crate::redis::Redis;
use crate::settings::Config;
use crate::spool::Spool;
pub use crate::state::AppState;
use crate::{telemetry, webhooks};

/// The router, apart from any listener, so tests can serve it on port 0.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/transcripts", post(webhooks::transcripts))
        .route("/webhooks/{route}/{instance}", any(webhooks::webhook))
        .route("/open311/v2/{instance}/{*resource}", any(webhooks::open311))
        // --- blobs: GET and HEAD /v1/blobs/{*storage_key} (src/blobs/route.rs)
        .merge(crate::blobs::route::router(state.blobs.clone()))
        // --- end blobs
        .fallback(|| async { webhooks::error_reply(404, "not_found") })
        .with_state(state.clone())
        .merge(crate::web::router(web_pages(&state)))
        .merge(crate::status::lookup::router(state.status.clone()))
        // A bug must not drop the connection without an answer, nor show the
        // caller anything of the panic: a bare 500 and a log line.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                tracing::error!("request handler panicked");
                telemetry::rejected("any", "unknown", "internal");
                webhooks::error_reply(500, "internal")
            },
        ))
}

/// The citizen and agent forms over the instances, the ingest service and
/// the transcript handler.
fn web_pages(state: &Arc<AppState>) -> Arc<crate::web::Web> {
    let to_intake = state.clone();
    let post: crate::web::PostTranscript = Arc::new(move |headers, body| {
        let state = to_intake.clone();
        Box::pin(async move {
            let uri = axum::http::Uri::from_static("/v1/transcripts");
            webhooks::transcripts(State(state), axum::http::Method::POST, uri, headers, body).await
        })
    });
    let instances: Vec<Arc<Instance>> = state
        .routes
        .values()
        .chain(&state.transcripts)
        .cloned()
        .collect();
    Arc::new(crate::web::Web::new(
        &state.web,
        &instances,
        state.ingest.clone(),
        post,
    ))
}

/// A started gateway.
pub struct Running {
    /// The HTTP listener's address.
    pub addr: SocketAddr,
    /// The SMTP listener's address, when `kind = "smtp"` instances are configured.
    pub smtp_addr: Option<SocketAddr>,
    /// Cancel to shut down; then await `done`.
    pub shutdown: CancellationToken,
    pub done: tokio::task::JoinHandle<()>,
    pub state: Arc<AppState>,
}

impl Running {
    /// Stops accepting, lets in-flight requests and pollers finish, returns when drained.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.done.await;
    }
}

/// The ingest service over Redis and (when `with_spool`) the spool, as every
/// command that accepts complaints builds it.
pub fn ingest(
    config: &Config,
    instances: &[Arc<Instance>],
    spool: Option<Arc<Spool>>,
) -> anyhow::Result<Arc<Ingest>> {
    let language =
        LanguageDetector::new(&config.language).map_err(|e| anyhow::anyhow!("language: {e}"))?;
    let acks = instances
        .iter()
        .filter_map(|i| Some((i.name.clone(), i.ack.clone()?)))
        .collect();
    let fetchers = instances
        .iter()
        .filter_map(|i| Some((i.name.clone(), i.media.as_ref()?.fetcher.clone())))
        .collect();
    let redis = Arc::new(
        Redis::new(&config.redis)?
            .with_outbound(&config.outbound)
            .with_tracking(&config.tracking)
            .with_acks(acks)
            .with_media(&config.media.stream, fetchers),
    );
    let reports = Reports::new(
        redis.clone(),
        &config.outbound.delivery_stream,
        &config.outbound.events_stream,
    );
    let pipeline = Arc::new(Pipeline::new(redis, spool, language));
    Ok(Arc::new(
        Ingest::new(
            pipeline,
            BlobStore::new(&config.blobs)?,
            &config.limits,
            instances.iter().map(|i| i.name.as_str()),
        )
        .with_reports(reports),
    ))
}

/// Builds every instance from `config`, then starts the HTTP server on
/// `listener` and every configured poller.
pub async fn start(config: Config, listener: tokio::net::TcpListener) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    crate::connections::raise_file_limit(
        (config.limits.max_connections + config.smtp.max_sessions) as u64 + 256,
    );
    let instances: Vec<Arc<Instance>> = crate::instances::build_all(&config)
        .map_err(|e| anyhow::anyhow!("configuration:\n{e}"))?
        .into_iter()
        .map(Arc::new)
        .collect();
    let spool = Spool::open(&config.spool)?;
    let ingest = ingest(&config, &instances, Some(spool.clone()))?;
    let state = Arc::new(AppState::new(&config, ingest.clone(), &instances)?);
    let shutdown = CancellationToken::new();
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);

    let mut pollers = tokio::task::JoinSet::new();
    for inst in &instances {
        let Intake::Poll(slot) = &inst.intake else {
            continue;
        };
        if let Some(poller) = slot.lock().ok().and_then(|mut p| p.take()) {
            tracing::info!(instance = %inst.name, kind = %inst.kind, "starting poller");
            let host = Arc::new(PollHost::new(ingest.clone(), inst.clone()));
            pollers.spawn(poller.run(host, shutdown.child_token()));
        }
    }
    // Consumers find every partition's streams in one key.
    let (redis, delivery, events, status) = (
        ingest.pipeline().redis().clone(),
        config.outbound.delivery_stream.clone(),
        config.outbound.events_stream.clone(),
        config.status.stream.clone(),
    );
    let stop = shutdown.child_token();
    pollers.spawn(async move {
        while redis
            .publish_layout(&delivery, &events, &status)
            .await
            .is_err()
        {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    // Split messages whose window passed are written by whichever replica sweeps first.
    pollers.spawn(ingest.clone().sweep_fragments(shutdown.child_token()));
    let pipeline = ingest.pipeline();
    let spooled_events = Reports::new(
        pipeline.redis().clone(),
        &config.outbound.delivery_stream,
        &config.outbound.events_stream,
    );
    pollers.spawn(spool.forward(
        pipeline.redis().clone(),
        pipeline.language().clone(),
        spooled_events,
        shutdown.child_token(),
    ));

    // Attachments: this replica joins the consumer group of `aduan:media`.
    let fetchers = instances
        .iter()
        .filter_map(|i| Some((i.name.clone(), i.media.clone()?)))
        .collect();
    if let Some(worker) = crate::media::MediaWorker::new(
        &config.media,
        &config.outbound.events_stream,
        fetchers,
        pipeline.redis().clone(),
        ingest.blobs().clone(),
    ) {
        pollers.spawn(worker.run(shutdown.child_token()));
    }
    // Status: this replica joins the consumer group of `aduan:status`.
    let notices = instances
        .iter()
        .filter_map(|i| Some((i.name.clone(), i.status.clone()?)))
        .collect();
    if let Some(worker) = crate::status::StatusWorker::new(
        &config.status,
        &config.outbound.events_stream,
        notices,
        pipeline.redis().clone(),
    ) {
        pollers.spawn(worker.run(shutdown.child_token()));
    }
    // Replies: this replica joins the consumer group of `aduan:outbound`.
    if let Some(outbound) = Outbound::new(&config.outbound, &instances, pipeline.redis().clone()) {
        pollers.spawn(outbound.run(shutdown.child_token()));
    }

    let smtp = crate::smtp::start(
        &config.smtp,
        &instances,
        ingest.clone(),
        shutdown.child_token(),
    )
    .await?;
    let smtp_addr = smtp.as_ref().map(|s| s.addr);

    let router = app(state.clone());
    let token = shutdown.clone();
    let limits = config.limits.clone();
    let done = tokio::spawn(async move {
        crate::listener::serve(listener, router, &limits, token, grace).await;
        if let Some(smtp) = smtp {
            let _ = tokio::time::timeout(grace, smtp.done).await;
        }
        // Pollers got the same cancellation; give them the grace period to finish a batch.
        let drained = tokio::time::timeout(grace, async {
            while pollers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("pollers did not stop within the grace period");
        }
    });
    tracing::info!(%addr, instances = instances.len(), "gateway listening");
    Ok(Running {
        addr,
        smtp_addr,
        shutdown,
        done,
        state,
    })
}

/// Ready when a complaint can be durably accepted: Redis answers, or the spool
/// takes writes. Redis is asked anew on every call. `state` says which:
/// `ready` (Redis answers, nothing waits), `catching_up` (Redis answers and
/// the spool is being forwarded: see its depth and age), `spooling` (Redis
/// is away, complaints go to the spool) or `unavailable`.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let redis = state.ingest.redis().ping().await;
    let spool = state
        .ingest
        .pipeline()
        .spool()
        .map(|s| (s.writable(), s.status()));
    let writable = spool.as_ref().is_some_and(|(writable, _)| *writable);
    let waiting = spool.as_ref().is_some_and(|(_, status)| status.depth > 0);
    let ready = redis || writable;
    let summary = match (redis, waiting, writable) {
        (true, false, _) => "ready",
        (true, true, _) => "catching_up",
        (false, _, true) => "spooling",
        (false, _, false) => "unavailable",
    };
    let body = serde_json::json!({
        "state": summary,
        "redis": if redis { "ok" } else { "unreachable" },
        "spool": spool.map(|(writable, status)| serde_json::json!({
            "state": if writable { "ok" } else { "unwritable" },
            "depth": status.depth,
            "bytes": status.bytes,
            "oldest_age_seconds": status.oldest_age_seconds,
            "quarantined": status.quarantined,
            "drained_total": status.drained_total,
            "drain_rate_per_second": status.drain_rate_per_second,
        })),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
