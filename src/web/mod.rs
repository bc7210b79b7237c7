//! The pages people use: the citizen form (`/lapor/<instance>`, for every
//! `open311` instance) and the call-center agent form (`/agent`, for the
//! `transcript` instances). Both post into the same intake as the machine
//! clients: the form's complaint goes through the ingest service like an
//! Open311 request, the agent's transcript through `/v1/transcripts`.
//!
//! - `page`: language, escaping, layout, security headers.
//! - `citizen`: the citizen form's submission; `citizen_page` renders it;
//!   `upload` reads its body as it arrives (`multipart`), the photo
//!   streamed to the blob store's staging directory.
//! - `agent`: sign-in, the transcript form and its submission; `session`:
//!   the agents' sessions in Redis.
//! - `guard`: the origin check and the signed CSRF tokens.
//!
//! What guards both lives here: every post from another origin is refused
//! before anything else, the CSRF token (signed by the gateway, in an
//! `HttpOnly`, `SameSite=Strict` cookie that the form must repeat), the
//! limit of posts per client address, and cookies (`Secure` whenever the
//! request came over TLS).

mod agent;
mod citizen;
mod citizen_page;
mod guard;
mod multipart;
mod page;
mod session;
mod upload;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use aduan_open311::Open311;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::ingest::Ingest;
use crate::instances::{Instance, Intake, TranscriptTokens};
use crate::limits::per_client::PerClient;
use crate::settings::WebConfig;

/// Posts a transcript document (its headers and body) to the transcript
/// intake, `/v1/transcripts`, and gives its answer: the agent form submits
/// through the same handler as a call center's software.
pub type PostTranscript = Arc<
    dyn Fn(
            HeaderMap,
            axum::body::Body,
        ) -> futures::future::BoxFuture<'static, axum::response::Response>
        + Send
        + Sync,
>;

/// The cookie holding a browser's CSRF token.
const CSRF_COOKIE: &str = "aduan_csrf";

/// Room for the citizen form's text fields beside the photo, in a post's
/// `Content-Length`.
const TEXT_ALLOWANCE: usize = 256 * 1024;

/// What the pages need: the ingest service, the forms' instances and the
/// transcript intake.
pub struct Web {
    cfg: WebConfig,
    ingest: Arc<Ingest>,
    /// Which call center a signed-in agent's token opens.
    tokens: TranscriptTokens,
    sessions: session::Sessions,
    keys: guard::Keys,
    /// `[web] public_origin`, parsed.
    public_origin: Option<url::Origin>,
    post_transcript: PostTranscript,
    /// The `open311` instances whose citizen form is served, by name.
    forms: HashMap<String, (Arc<Instance>, Arc<Open311>)>,
    /// Posts per client address per minute, on this replica.
    posts: PerClient,
    /// Places for citizen-form posts being read (`max_uploads`).
    uploads: Arc<Semaphore>,
    headers: HeaderMap,
}

impl Web {
    pub fn new(
        cfg: &WebConfig,
        instances: &[Arc<Instance>],
        ingest: Arc<Ingest>,
        post_transcript: PostTranscript,
    ) -> Web {
        let transcripts: Vec<&Instance> = instances
            .iter()
            .filter(|i| matches!(i.intake, Intake::Transcript(_)))
            .map(|i| i.as_ref())
            .collect();
        // The server indexed these tokens already and refused a conflict.
        let tokens = TranscriptTokens::index(&transcripts).unwrap_or_default();
        // In the order `tokens` indexes them.
        let centers = transcripts
            .iter()
            .filter_map(|i| match &i.intake {
                Intake::Transcript(t) => Some((i.name.clone(), t.tokens().to_vec())),
                _ => None,
            })
            .collect();
        let forms = if cfg.citizen_form {
            instances
                .iter()
                .filter_map(|i| Some((i.name.clone(), (i.clone(), i.form.clone()?))))
                .collect()
        } else {
            HashMap::new()
        };
        let redis = ingest.redis().clone();
        let staging = ingest.blobs().staging_dir();
        // Photos of posts cut short by a crash; a post under way is far younger.
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(async move {
                crate::media::sink::sweep(&staging, Duration::from_secs(3600)).await;
            });
        }
        Web {
            ingest,
            tokens,
            sessions: session::Sessions::new(redis.clone(), cfg.agent_session_hours, centers),
            keys: guard::Keys::new(cfg, redis),
            public_origin: cfg
                .public_origin
                .as_deref()
                .and_then(|o| url::Url::parse(o).ok())
                .map(|u| u.origin()),
            post_transcript,
            posts: PerClient::new(cfg.submissions_per_minute),
            uploads: Arc::new(Semaphore::new(cfg.max_uploads.max(1))),
            headers: page::security_headers(&cfg.frame_ancestors),
            forms,
            cfg: cfg.clone(),
        }
    }

    /// The largest citizen-form post taken, by `Content-Length` or as read.
    fn post_limit(&self) -> u64 {
        (self.cfg.max_photo_bytes + TEXT_ALLOWANCE) as u64
    }

    /// The client's address: the last one in the configured proxy header,
    /// else the connection's peer.
    fn client(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        crate::limits::per_client::client_address(
            self.cfg.client_address_header.as_deref(),
            headers,
            peer,
        )
    }

    /// Whether one more post from this client fits in its minute.
    fn allow_post(&self, headers: &HeaderMap, peer: Option<ConnectInfo<SocketAddr>>) -> bool {
        match self.client(headers, peer.map(|ConnectInfo(a)| a)) {
            Some(ip) => self.posts.allow(ip),
            // No address to count by (a proxy header missing): one shared count.
            None => self.posts.allow(IpAddr::from([0, 0, 0, 0])),
        }
    }

    /// Whether cookies set in answer to this request carry `Secure`.
    fn secure(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        guard::over_tls(&self.cfg, headers, uri)
    }

    /// A `Set-Cookie` value with the pages' attributes.
    fn cookie(
        &self,
        secure: bool,
        name: &str,
        value: &str,
        path: &str,
        max_age: Option<u64>,
    ) -> HeaderValue {
        let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if secure {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
    }

    /// The headers of a page with a form: the security headers, and the
    /// cookie of a new CSRF token unless the browser holds a good one with
    /// time left; and the token.
    async fn form_headers(&self, request: &HeaderMap, secure: bool) -> Option<(HeaderMap, String)> {
        let mut out = self.headers.clone();
        if let Some(token) = cookie(request, CSRF_COOKIE)
            && self.keys.fresh(&token).await
        {
            return Some((out, token));
        }
        let token = self.keys.issue().await?;
        out.append(
            header::SET_COOKIE,
            self.cookie(secure, CSRF_COOKIE, &token, "/", None),
        );
        Some((out, token))
    }

    /// Whether the browser's CSRF cookie holds a token this gateway signed
    /// and that has not expired (checked before a post's body is read).
    async fn csrf_cookie_ok(&self, request: &HeaderMap) -> bool {
        match cookie(request, CSRF_COOKIE) {
            Some(token) => self.keys.remaining(&token).await.is_some(),
            None => false,
        }
    }

    /// Whether the cookie's token is good and `submitted` repeats it.
    async fn csrf_ok(&self, request: &HeaderMap, submitted: &str) -> bool {
        let Some(token) = cookie(request, CSRF_COOKIE) else {
            return false;
        };
        aduan_adapter::verify::constant_time_eq(token.as_bytes(), submitted.as_bytes())
            && self.keys.remaining(&token).await.is_some()
    }
}

/// The pages' routes.
pub fn router(web: Arc<Web>) -> Router {
    let mut router = Router::new().route(
        "/lapor/{instance}",
        get(citizen::show).post(citizen::submit),
    );
    if web.cfg.agent_form {
        router = router
            .route("/agent", get(agent::show).post(agent::submit))
            .route("/agent/sign-in", post(agent::sign_in))
            .route("/agent/sign-out", post(agent::sign_out));
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(
            web.clone(),
            same_origin_only,
        ))
        .with_state(web)
}

/// Refuses a post from another origin before its handler (and any of its
/// body) is reached: `403`, nothing read, nothing written.
async fn same_origin_only(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if reads || guard::same_origin(web.public_origin.as_ref(), request.headers(), request.uri()) {
        return next.run(request).await;
    }
    crate::telemetry::rejected("web", "unknown", "cross_origin");
    let body = page::layout(
        page::Lang::Id,
        "Ditolak",
        "<h1>Permintaan ditolak</h1><p>Kirim formulir dari halaman aduan ini sendiri.</p>\
<p lang=\"en\">The request was refused: send the form from this site's own page.</p>",
        None,
    );
    let mut headers = web.headers.clone();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    page::html(StatusCode::FORBIDDEN, headers, body)
}

/// The value of cookie `name` in the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// 128 random bits as 32 lowercase hex digits.
fn random_token() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

fn is_token(t: &str) -> bool {
    t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; aduan_csrf=x"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, "aduan_csrf").as_deref(), Some("x"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
