//! The HTTP door: webhook routes for every push adapter, the transcript API
//! and the Open311 endpoints. It does everything but understand a payload:
//! finds the instance, takes a place for the request, bounds and pre-scans
//! the body, asks the adapter to verify and parse, hands the outcome to the
//! ingest service and answers the way the adapter says its provider expects.
//!
//! [`error_response`] is the one mapping of an [`IngestError`] to an answer.

use std::sync::Arc;
use std::time::Instant;

use aduan_adapter::{Adapter, Context, Deferral, Outcome, Rejection, Reply, Request, Timestamp};
use aduan_transcript::Transcripts;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::ingest::{Door, IngestError};
use crate::instances::Instance;
use crate::limits::{self, Refusal};
use crate::state::AppState;
use crate::telemetry;

/// `/webhooks/{route}/{instance}`.
pub async fn webhook(
    State(state): State<Arc<AppState>>,
    Path((route, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let found = state
        .routes
        .get(&name)
        .filter(|i| i.route.is_some_and(|r| r.segment == route));
    let Some(inst) = found.cloned() else {
        telemetry::rejected("unknown", "unknown", "unknown_instance");
        return error_reply(404, "unknown_instance");
    };
    let started = Instant::now();
    let response = handle_in_time(&state, &inst, method, uri, headers, body).await;
    telemetry::request_took(inst.label(), started.elapsed());
    response
}

/// `/open311/v2/{instance}/{*resource}`: an Open311 GeoReport v2 endpoint,
/// at the path its clients expect rather than under `/webhooks/`. It is the
/// webhook door with the route `open311`; the adapter reads which resource
/// (`services.json`, `requests.json`, …) from the full URI.
pub async fn open311(
    state: State<Arc<AppState>>,
    Path((name, _resource)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = Path(("open311".to_string(), name));
    webhook(state, route, method, uri, headers, body).await
}

/// `POST /v1/transcripts`: the bearer token picks the call center.
pub async fn transcripts(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let probe = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &[],
    };
    let inst = Transcripts::presented_token(&probe)
        .and_then(|token| state.tokens.find(token))
        .and_then(|i| state.transcripts.get(i))
        .cloned();
    let response = match inst {
        None => {
            telemetry::rejected("transcripts", "unknown", "unauthorized");
            let mut r = error_reply(401, "unauthorized");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Some(inst) => handle_in_time(&state, &inst, method, uri, headers, body).await,
    };
    telemetry::request_took("transcripts", started.elapsed());
    response
}

/// [`handle`] within the request deadline; past it, `408` (a slow client's body
/// or a stalled append never holds a connection for longer).
async fn handle_in_time(
    state: &AppState,
    inst: &Instance,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(adapter) = inst.adapter() else {
        return error_reply(404, "unknown_instance");
    };
    let door = Door::Http(inst.label());
    let handled = tokio::time::timeout(
        state.request_timeout,
        handle(state, inst, adapter, door, &method, &uri, &headers, body),
    )
    .await;
    // The request head, for an adapter whose answer's form depends on it.
    let head = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &[],
    };
    match handled {
        Ok(Ok(reply)) => to_response(reply),
        Ok(Err(e)) => error_response(state, inst, adapter, &head, &e),
        Err(_) => {
            let e = IngestError::Timeout;
            state.ingest.refused(door, &inst.name, &e);
            error_response(state, inst, adapter, &head, &e)
        }
    }
}

/// The shared path of every push request.
#[allow(clippy::too_many_arguments)]
async fn handle(
    state: &AppState,
    inst: &Instance,
    adapter: &dyn Adapter,
    door: Door,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Reply, IngestError> {
    let ingest = &state.ingest;
    let _admission = ingest.admit(inst).await?;
    let route = door.label();
    let refuse = |rejection: Rejection| {
        let e = IngestError::Rejected(rejection);
        ingest.refused(door, &inst.name, &e);
        e
    };
    let limit = ingest
        .limits()
        .body_limit(route, adapter.max_body_bytes(), state.body_limit);
    let bytes = match read_body(body, headers, limit).await {
        Ok(b) => b,
        Err(rejection) => {
            if matches!(rejection, Rejection::TooLarge(_)) {
                limits::count(route, "body_bytes");
            }
            return Err(refuse(rejection));
        }
    };
    ingest
        .limits()
        .prescan(route, headers, uri, &bytes)
        .map_err(|limit| refuse(Rejection::TooLarge(limit)))?;
    let req = Request {
        method,
        uri,
        headers,
        body: &bytes,
    };
    adapter.verify(&req).map_err(refuse)?;
    let ctx = Context {
        instance: &inst.name,
        received_at: Timestamp(chrono::Utc::now()),
        keep_raw: inst.keep_raw,
    };
    match adapter.parse(&req, &ctx).map_err(refuse)? {
        Outcome::Reply(reply) => Ok(reply),
        outcome => {
            let receipts = ingest.accept(inst, outcome, door).await?;
            Ok(adapter.accepted_to(&req, &receipts))
        }
    }
}

/// The answer to everything the ingest service (or the door) refused, in
/// the adapter's own form (TwiML for Twilio, Open311's error list): a
/// rejection through [`Adapter::rejected_to`]; what the gateway could not
/// take now through [`Adapter::deferred_to`], with `429`/`503` and
/// `Retry-After` for limits, `503` and `Retry-After` while storage is
/// unavailable, `408` past the deadline.
pub fn error_response(
    state: &AppState,
    inst: &Instance,
    adapter: &dyn Adapter,
    head: &Request<'_>,
    error: &IngestError,
) -> Response {
    let deferred = match deferral_of(error, inst, state.ingest.retry_after_seconds()) {
        Ok(deferred) => deferred,
        Err(rejection) => return to_response(adapter.rejected_to(head, rejection)),
    };
    let mut response = to_response(adapter.deferred_to(head, deferred.status, deferred.deferral));
    if let Some(seconds) = deferred.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// How a request the gateway could not take now is answered.
#[derive(Debug, PartialEq, Eq)]
struct Deferred {
    status: u16,
    deferral: Deferral,
    retry_after: Option<u64>,
}

/// The status, reason and `Retry-After` of a refusal that is the gateway's
/// (`Ok`), or the rejection that is the adapter's to answer (`Err`).
/// `configured` is `[limits] retry_after_seconds`.
fn deferral_of<'e>(
    error: &'e IngestError,
    inst: &Instance,
    configured: u64,
) -> Result<Deferred, &'e Rejection> {
    let (status, deferral, retry_after) = match error {
        IngestError::Rejected(rejection) => return Err(rejection),
        IngestError::Limited(Refusal::InFlight | Refusal::InstanceInFlight) => {
            (503, Deferral::Overloaded, Some(configured))
        }
        IngestError::Limited(Refusal::InstanceRate(d) | Refusal::SenderRate(d)) => {
            let status = inst.route.map_or(503, |r| r.throttle_status);
            (
                status,
                Deferral::RateLimited,
                Some(limits::whole_seconds(*d)),
            )
        }
        IngestError::Unavailable(_) | IngestError::SpoolFull(_) => {
            (503, Deferral::Unavailable, Some(configured))
        }
        IngestError::Timeout => (408, Deferral::Timeout, None),
    };
    Ok(Deferred {
        status,
        deferral,
        retry_after,
    })
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

fn to_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = HeaderValue::from_str(&reply.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    (status, [(header::CONTENT_TYPE, content_type)], reply.body).into_response()
}

/// `{"error": reason}` with `status`.
pub fn error_reply(status: u16, reason: &'static str) -> Response {
    to_response(Reply::json(status, &serde_json::json!({"error": reason})))
}
