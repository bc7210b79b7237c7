//! The HTTP server: webhook routes for every push adapter, the transcript API,
//! health, readiness and metrics; pollers started beside it; graceful shutdown.
//!
//! The shared code here does everything but understand a payload: it finds the
//! instance, bounds the body, asks the adapter to verify and parse, appends
//! through the pipeline and answers the way the adapter says its provider expects.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aduan_adapter::{Adapter, Context, Outcome, Rejection, Reply, Request, Timestamp};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Instance};
use crate::host::RedisHost;
use crate::pipeline::Pipeline;
use crate::sink::RedisSink;
use crate::telemetry;

/// Seconds a provider is asked to wait before retrying when storage is unavailable.
const RETRY_AFTER_SECONDS: &str = "10";

/// Everything a request handler needs.
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    /// Where attachment bytes the gateway keeps itself are written.
    pub blobs: crate::blobs::BlobStore,
    /// Push instances by (route, name).
    routes: HashMap<(&'static str, String), Arc<Instance>>,
    /// Instances of the transcript API, tried in order by bearer token.
    transcripts: Vec<Arc<Instance>>,
    body_limit: usize,
    request_timeout: Duration,
    /// Backpressure, rate and input limits.
    pub limits: crate::limits::Limits,
    metrics: PrometheusHandle,
}

impl AppState {
    /// Indexes the configured instances and opens the spool; fails when no Redis
    /// URL can be parsed or the spool file cannot be opened.
    pub fn new(config: &Config, instances: &[Arc<Instance>]) -> anyhow::Result<Self> {
        let spool = crate::spool::Spool::open(&config.spool)?;
        let pipeline = Arc::new(
            Pipeline::with_spool(RedisSink::new(&config.redis)?, spool)
                .with_language(config.language.clone()),
        );
        let mut routes = HashMap::new();
        let mut transcripts = Vec::new();
        for inst in instances {
            match inst.route {
                Some("transcripts") => transcripts.push(inst.clone()),
                Some(route) => {
                    routes.insert((route, inst.name.clone()), inst.clone());
                }
                None => {}
            }
        }
        Ok(AppState {
            pipeline,
            blobs: crate::blobs::BlobStore::new(&config.blobs),
            routes,
            transcripts,
            body_limit: config.server.body_limit_bytes,
            request_timeout: Duration::from_secs(config.server.request_timeout_seconds),
            limits: crate::limits::Limits::new(
                config.limits.clone(),
                instances.iter().map(|i| i.name.as_str()),
            ),
            metrics: telemetry::metrics_handle(),
        })
    }
}

/// The router, apart from any listener, so tests can serve it on port 0.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/transcripts", post(transcripts))
        .route("/webhooks/{route}/{instance}", any(webhook))
        .fallback(|| async { error_reply(404, "not_found") })
        .with_state(state)
        // A bug must not drop the connection without an answer, nor show the
        // caller anything of the panic: a bare 500 and a log line.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                tracing::error!("request handler panicked");
                metrics::counter!(telemetry::REJECTED, "route" => "any", "instance" => "unknown", "reason" => "internal").increment(1);
                error_reply(500, "internal")
            },
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

/// Starts the HTTP server on `listener` and every configured poller.
pub async fn start(
    mut config: Config,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    // The instances move out to be shared by the handlers; the rest of the
    // configuration stays where it is.
    let instances: Vec<Arc<Instance>> = std::mem::take(&mut config.instances)
        .into_iter()
        .map(Arc::new)
        .collect();
    let state = Arc::new(AppState::new(&config, &instances)?);
    let shutdown = CancellationToken::new();
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);

    let host: Arc<dyn aduan_adapter::Host> =
        Arc::new(RedisHost::new(state.pipeline.clone()).with_blobs(state.blobs.clone()));
    let mut pollers = tokio::task::JoinSet::new();
    for inst in &instances {
        let poller = inst.poller.lock().ok().and_then(|mut p| p.take());
        if let Some(poller) = poller {
            tracing::info!(instance = %inst.name, kind = %inst.kind, "starting poller");
            pollers.spawn(poller.run(host.clone(), shutdown.child_token()));
        }
    }
    // Split messages whose window passed are written by whichever replica sweeps first.
    pollers.spawn(crate::fragments::sweep(
        state.pipeline.clone(),
        shutdown.child_token(),
    ));
    if let Some(spool) = state.pipeline.spool() {
        pollers.spawn(
            spool
                .clone()
                .forward(state.pipeline.shared_sink(), shutdown.child_token()),
        );
    }

    let smtp = crate::smtp::start(
        &config.smtp,
        &instances,
        state.clone(),
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
/// takes writes.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let redis = state.pipeline.sink().ping().await;
    let spool = state.pipeline.spool().map(|s| (s.writable(), s.status()));
    let ready = redis || spool.as_ref().is_some_and(|(writable, _)| *writable);
    let body = serde_json::json!({
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

async fn webhook(
    State(state): State<Arc<AppState>>,
    Path((route, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some((route, inst)) = state
        .routes
        .get_key_value(&(route_key(&route), name))
        .map(|((r, _), i)| (*r, i.clone()))
    else {
        metrics::counter!(telemetry::REJECTED, "route" => "unknown", "instance" => "unknown", "reason" => "unknown_instance").increment(1);
        return error_reply(404, "unknown_instance");
    };
    let started = Instant::now();
    let response = handle_in_time(&state, route, &inst, method, uri, headers, body).await;
    metrics::histogram!(telemetry::LATENCY, "route" => route).record(started.elapsed());
    response
}

/// Interns a path segment as one of the routes' static names. `transcripts`
/// is among them but no webhook instance is registered under it.
fn route_key(segment: &str) -> &'static str {
    crate::limits::ROUTES
        .iter()
        .find(|r| **r == segment)
        .copied()
        .unwrap_or("unknown")
}

async fn transcripts(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    // The bearer token picks the call center: the first instance whose adapter
    // accepts the credentials serves the request.
    let probe = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &[],
    };
    let inst = state
        .transcripts
        .iter()
        .find(|i| i.adapter.as_ref().is_some_and(|a| a.verify(&probe).is_ok()))
        .cloned();
    let response = match inst {
        None => {
            count_rejected("transcripts", "unknown", "unauthorized");
            let mut r = error_reply(401, "unauthorized");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Some(inst) => {
            handle_in_time(&state, "transcripts", &inst, method, uri, headers, body).await
        }
    };
    metrics::histogram!(telemetry::LATENCY, "route" => "transcripts").record(started.elapsed());
    response
}

/// [`handle`] within the request deadline; past it, `408` (a slow client's body
/// or a stalled append never holds a connection for longer).
async fn handle_in_time(
    state: &AppState,
    route: &'static str,
    inst: &Instance,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match tokio::time::timeout(
        state.request_timeout,
        handle(state, route, inst, method, uri, headers, body),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => {
            count_rejected(route, &inst.name, "timeout");
            error_reply(408, "timeout")
        }
    }
}

/// The shared path of every push request.
async fn handle(
    state: &AppState,
    route: &'static str,
    inst: &Instance,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(adapter) = inst.adapter.as_ref() else {
        return error_reply(404, "unknown_instance");
    };
    let _admission = match state.limits.admit(route, &inst.name).await {
        Ok(a) => a,
        Err(refusal) => return state.limits.refusal_response(route, refusal),
    };
    let limit = state
        .limits
        .body_limit(route, adapter.max_body_bytes(), state.body_limit);
    let bytes = match read_body(body, &headers, limit).await {
        Ok(b) => b,
        Err(rejection) => {
            if matches!(rejection, Rejection::TooLarge(_)) {
                crate::limits::count(route, "body_bytes");
            }
            return reject(route, inst, adapter.as_ref(), rejection);
        }
    };
    if let Err(limit) = state.limits.prescan(route, &headers, &uri, &bytes) {
        return reject(route, inst, adapter.as_ref(), Rejection::TooLarge(limit));
    }
    let req = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &bytes,
    };
    if let Err(rejection) = adapter.verify(&req) {
        return reject(route, inst, adapter.as_ref(), rejection);
    }
    let ctx = Context {
        instance: &inst.name,
        received_at: Timestamp(chrono::Utc::now()),
        keep_raw: inst.keep_raw,
    };
    let outcome = match adapter.parse(&req, &ctx) {
        Ok(o) => o,
        Err(rejection) => return reject(route, inst, adapter.as_ref(), rejection),
    };
    let (complaints, ignored) = match outcome {
        Outcome::Reply(reply) => return to_response(reply),
        Outcome::Accept {
            complaints,
            ignored,
        } => (complaints, ignored),
        Outcome::Fragments(fragments) => {
            let window = adapter.fragment_window();
            return match crate::fragments::accept(&state.pipeline, fragments, window).await {
                Ok(receipts) => to_response(adapter.accepted(&receipts)),
                Err(e) => {
                    tracing::warn!(instance = %inst.name, error = %e, "message parts not held");
                    count_rejected(route, &inst.name, "unavailable");
                    let mut r = error_reply(503, "unavailable");
                    r.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from_static(RETRY_AFTER_SECONDS),
                    );
                    r
                }
            };
        }
        Outcome::AcceptWithBlobs {
            complaints,
            ignored,
            blobs,
        } => {
            // Attachments first: a complaint in the stream always finds its files.
            if let Err(e) = state.blobs.put_all(blobs).await {
                tracing::warn!(instance = %inst.name, error = %e, "attachments not stored");
                count_rejected(route, &inst.name, "unavailable");
                let mut r = error_reply(503, "unavailable");
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
                return r;
            }
            (complaints, ignored)
        }
    };
    for event in &ignored {
        metrics::counter!(telemetry::IGNORED, "route" => route, "instance" => inst.name.clone(), "reason" => event.reason).increment(1);
    }
    if let Err(limit) = state.limits.check_batch(route, complaints.len()) {
        return reject(route, inst, adapter.as_ref(), Rejection::TooLarge(limit));
    }
    let (complaints, tickets, throttled) = state.limits.take_senders(route, &inst.name, complaints);
    if complaints.is_empty() {
        return match throttled {
            Some(refusal) => state.limits.refusal_response(route, refusal),
            None => to_response(adapter.accepted(&[])),
        };
    }
    let published = state.pipeline.publish(complaints).await;
    state.limits.settle(
        &inst.name,
        tickets,
        published.as_ref().ok().map(Vec::as_slice),
    );
    match published {
        // The provider retries the whole request for the senders held back; what was
        // appended now is then a redelivery.
        Ok(receipts) => match throttled {
            Some(refusal) => state.limits.refusal_response(route, refusal),
            None => to_response(adapter.accepted(&receipts)),
        },
        Err(e) => {
            tracing::warn!(instance = %inst.name, error = %e, "complaints not accepted");
            let reason = match e {
                crate::pipeline::PublishError::SpoolFull(_) => "spool_full",
                _ => "unavailable",
            };
            count_rejected(route, &inst.name, reason);
            let mut r = error_reply(503, "unavailable");
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
            r
        }
    }
}

/// Reads the whole body, refusing more than `limit` bytes (by `Content-Length`
/// before reading, and while reading for chunked bodies).
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<axum::body::Bytes, Rejection> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Rejection::TooLarge("body"));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        if inner
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            Rejection::TooLarge("body")
        } else {
            Rejection::malformed("body could not be read")
        }
    })
}

fn reject(
    route: &'static str,
    inst: &Instance,
    adapter: &dyn Adapter,
    rejection: Rejection,
) -> Response {
    count_rejected(route, &inst.name, rejection.reason());
    tracing::info!(instance = %inst.name, route, reason = rejection.reason(), "request refused");
    to_response(adapter.rejected(&rejection))
}

fn count_rejected(route: &'static str, instance: &str, reason: &'static str) {
    metrics::counter!(telemetry::REJECTED, "route" => route, "instance" => instance.to_string(), "reason" => reason).increment(1);
}

fn to_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = HeaderValue::from_str(&reply.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    (status, [(header::CONTENT_TYPE, content_type)], reply.body).into_response()
}

fn error_reply(status: u16, reason: &'static str) -> Response {
    to_response(Reply::json(status, &serde_json::json!({"error": reason})))
}
