//! The HTTP accept loop, with the connection-level limits `axum::serve` does not
//! expose: header count, request head size and the time a client has to send
//! its headers (slow-loris); how many connections may be open, how long a new
//! one may stay silent and an idle one is kept (`crate::connections`).
//! Otherwise it serves the router as `axum::serve` would, HTTP/1 and HTTP/2,
//! and shuts down gracefully.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::connections::{Connections, Policy, Tracked};
use crate::settings::LimitsConfig;
use crate::telemetry;

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets open
/// connections finish their requests (bounded by `grace`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cfg: &LimitsConfig,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(cfg.header_read_timeout_seconds))
        .max_headers(cfg.max_headers)
        .max_buf_size(cfg.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();
    let connections = Connections::new(Policy {
        label: "any",
        max: cfg.max_connections,
        first_byte: Some(Duration::from_millis(cfg.first_byte_timeout_ms)),
        idle: Some(Duration::from_millis(cfg.idle_timeout_ms)),
    });
    tokio::spawn(connections.clone().reaper(shutdown.clone()));
    let accept_failures = telemetry::QuietLog::default();

    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors: an idle connection gives its one up,
                    // so that health checks and webhooks are still answered.
                    // Either way, back off instead of spinning, and say so
                    // once a second, not per attempt.
                    let freed = crate::connections::out_of_descriptors(&e) && connections.evict_idle();
                    if let Some(held_back) = accept_failures.allow() {
                        tracing::warn!(error = %e, held_back, "accept failed");
                    }
                    if !freed {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Every open connection is answering a request: this one waits for
        // nothing, it is closed.
        let Some(ticket) = connections.admit() else {
            telemetry::limit_exceeded("any", "connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = ticket.activity().clone();
        let router = router.clone();
        let service =
            tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                let req = req.map(axum::body::Body::new);
                let busy = activity.busy();
                let router = router.clone();
                async move {
                    let response = router.oneshot(req).await;
                    drop(busy);
                    response.map_err(|e: Infallible| match e {})
                }
            });
        let io = Tracked::new(stream, ticket.activity().clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        let conn = graceful.watch(conn.into_owned());
        let id = ticket.id();
        let task = tokio::spawn(async move {
            let _ticket = ticket;
            if let Err(e) = conn.await {
                count_connection_error(e.as_ref());
            }
        });
        connections.attach(id, task.abort_handle());
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period");
    }
}

/// Counts connections closed for a head that was too large or too slow. Other
/// connection errors (a client going away) are routine and only traced.
fn count_connection_error(e: &(dyn std::error::Error + 'static)) {
    let Some(e) = e.downcast_ref::<hyper::Error>() else {
        tracing::debug!("connection closed with an error");
        return;
    };
    if e.is_parse_too_large() {
        telemetry::limit_exceeded("any", "header_size");
    } else if e.is_timeout() {
        telemetry::limit_exceeded("any", "header_timeout");
    } else {
        tracing::debug!(error = %e, "connection closed with an error");
    }
}
