//! `GET /v1/status/{tracking}`: a complaint's status by its number, for
//! agency websites and apps. Only the public part is answered — status
//! labels, agency, public notes and dates — never the citizen's name,
//! contact or the text of the complaint. The number is read as people type
//! it (`tracking::normalize`); an unknown number, a malformed one and one
//! of another instance (`?instance=`) get the same `404`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use aduan_adapter::{PublicStatus, StatusKind, Timestamp};
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::limits::per_client::{PerClient, client_address};
use crate::redis::Redis;
use crate::redis::status::Stored;
use crate::settings::StatusConfig;

/// What the lookup route needs.
pub struct Lookup {
    redis: Arc<Redis>,
    limit: PerClient,
    cors: Vec<String>,
    /// The proxy header naming the client (`[web] client_address_header`).
    client_header: Option<String>,
}

impl Lookup {
    pub fn new(cfg: &StatusConfig, client_header: Option<String>, redis: Arc<Redis>) -> Lookup {
        Lookup {
            redis,
            limit: PerClient::new(cfg.lookups_per_minute),
            cors: cfg.cors_origins.clone(),
            client_header,
        }
    }

    /// The client's address, as the citizen form reads it; with none to
    /// count by (a proxy header missing), one shared count.
    fn client(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        client_address(self.client_header.as_deref(), headers, peer)
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// The public status of the complaint numbered `typed`, in `language`;
    /// `None` for every kind of "no such complaint here".
    pub async fn public(
        &self,
        typed: &str,
        instance: Option<&str>,
        language: &str,
    ) -> Result<Option<Value>, crate::redis::RedisError> {
        let Some(number) = crate::tracking::normalize(typed, self.redis.tracking_prefix()) else {
            return Ok(None);
        };
        let parts = self.redis.partitions();
        let count = parts.len().max(1) as u16;
        let p = crate::tracking::partition_of_number(&number, count).unwrap_or(0);
        let Some(redis) = parts.get(usize::from(p)) else {
            return Ok(None);
        };
        let Some((complaint_id, owner)) = redis.complaint_of_number(&number).await? else {
            return Ok(None);
        };
        if instance.is_some_and(|i| i != owner) {
            return Ok(None);
        }
        let stored = redis.status_of(&complaint_id).await?;
        Ok(Some(answer(&number, &complaint_id, &stored, language)))
    }
}

/// The JSON answer: the latest status and the timeline, oldest first.
pub fn answer(number: &str, complaint_id: &str, stored: &Stored, language: &str) -> Value {
    let read = |j: &String| serde_json::from_str::<PublicStatus>(j).ok();
    let mut history: Vec<PublicStatus> = stored.history.iter().filter_map(read).collect();
    history.sort_by_key(|s| s.at);
    let received_at = ulid::Ulid::from_string(complaint_id)
        .ok()
        .and_then(|u| Timestamp::from_unix_millis(u.timestamp_ms() as i64));
    let latest = stored.latest.as_ref().and_then(read);
    let (status, agency, updated_at) = match &latest {
        Some(s) => (s.status, s.agency.clone(), Some(s.at)),
        None => (StatusKind::Received, None, received_at),
    };
    let entry = |s: &PublicStatus| {
        json!({
            "status": s.status.as_str(),
            "label": s.status.label(language),
            "agency": s.agency,
            "note": s.note,
            "at": s.at,
        })
    };
    json!({
        "tracking": number,
        "status": status.as_str(),
        "label": status.label(language),
        "open311_status": status.open311(),
        "agency": agency,
        "received_at": received_at,
        "updated_at": updated_at,
        "history": history.iter().map(entry).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
struct Params {
    instance: Option<String>,
    lang: Option<String>,
}

/// The route, with its own state.
pub fn router(lookup: Arc<Lookup>) -> Router {
    Router::new()
        .route("/v1/status/{tracking}", get(status_json))
        .with_state(lookup)
}

async fn status_json(
    State(lookup): State<Arc<Lookup>>,
    Path(tracking): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let origin = allowed_origin(&lookup.cors, &headers);
    let client = lookup.client(&headers, peer.map(|axum::Extension(ConnectInfo(a))| a));
    let (status, body) = if !lookup.limit.allow(client) {
        crate::telemetry::status_lookup("limited");
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": "rate_limited"}),
        )
    } else {
        let language = match params.lang.as_deref() {
            Some("en" | "eng") => "eng",
            _ => "ind",
        };
        match lookup
            .public(&tracking, params.instance.as_deref(), language)
            .await
        {
            Ok(Some(v)) => {
                crate::telemetry::status_lookup("found");
                (StatusCode::OK, v)
            }
            Ok(None) => {
                crate::telemetry::status_lookup("not_found");
                (StatusCode::NOT_FOUND, json!({"error": "not_found"}))
            }
            Err(e) => {
                tracing::warn!(error = %e, "status lookup failed");
                crate::telemetry::status_lookup("unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "unavailable"}),
                )
            }
        }
    };
    let mut response = (status, axum::Json(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    }
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    response
}

/// The `Access-Control-Allow-Origin` for the request's `Origin`, when allowed.
fn allowed_origin(cors: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    if cors.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    cors.iter().any(|o| o == text).then(|| origin.clone())
}
