//! The pages people use: the citizen form (`/lapor/<instance>`, for every
//! `open311` instance) and the call-center agent form (`/agent`, for the
//! `transcript` instances). Both post into the same intake as the machine
//! clients: the form's complaint goes through the ingest service like an
//! Open311 request, the agent's transcript through `/v1/transcripts`.
//!
//! - `page`: language, escaping, layout, security headers.
//! - `citizen`: the citizen form's submission; `citizen_page` renders it.
//! - `agent`: sign-in, the transcript form and its submission.
//!
//! What guards both lives here: the CSRF token (a random value in an
//! `HttpOnly`, `SameSite=Strict` cookie that the form must repeat, so a
//! replica needs no shared secret to check it), the limit of posts per
//! client address, and cookies.

mod agent;
mod citizen;
mod citizen_page;
mod page;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aduan_open311::Open311;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{get, post};

use crate::ingest::Ingest;
use crate::instances::{Instance, Intake, TranscriptTokens};
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

/// What the pages need: the ingest service, the forms' instances and the
/// transcript intake.
pub struct Web {
    cfg: WebConfig,
    ingest: Arc<Ingest>,
    /// Which call center a signed-in agent's token opens.
    tokens: TranscriptTokens,
    post_transcript: PostTranscript,
    /// The `open311` instances whose citizen form is served, by name.
    forms: HashMap<String, (Arc<Instance>, Arc<Open311>)>,
    posts: PerClient,
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
        let forms = if cfg.citizen_form {
            instances
                .iter()
                .filter_map(|i| Some((i.name.clone(), (i.clone(), i.form.clone()?))))
                .collect()
        } else {
            HashMap::new()
        };
        Web {
            ingest,
            tokens,
            post_transcript,
            posts: PerClient::new(cfg.submissions_per_minute),
            headers: page::security_headers(&cfg.frame_ancestors),
            forms,
            cfg: cfg.clone(),
        }
    }

    /// The client's address: the last one in the configured proxy header,
    /// else the connection's peer.
    fn client(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        if let Some(name) = &self.cfg.client_address_header {
            return headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok());
        }
        peer.map(|p| p.ip())
    }

    /// Whether one more post from this client fits in its minute.
    fn allow_post(&self, headers: &HeaderMap, peer: Option<ConnectInfo<SocketAddr>>) -> bool {
        match self.client(headers, peer.map(|ConnectInfo(a)| a)) {
            Some(ip) => self.posts.allow(ip),
            // No address to count by (a proxy header missing): one shared count.
            None => self.posts.allow(IpAddr::from([0, 0, 0, 0])),
        }
    }

    /// A `Set-Cookie` value with the pages' attributes.
    fn cookie(&self, name: &str, value: &str, path: &str, max_age: Option<u64>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if self.cfg.behind_tls {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
    }

    /// The headers of a page with a form: the security headers, and the
    /// cookie of a new CSRF token when the browser has none; and the token.
    fn form_headers(&self, request: &HeaderMap) -> Option<(HeaderMap, String)> {
        let mut out = self.headers.clone();
        if let Some(token) = cookie(request, CSRF_COOKIE).filter(|t| is_token(t)) {
            return Some((out, token));
        }
        let token = random_token()?;
        out.append(
            header::SET_COOKIE,
            self.cookie(CSRF_COOKIE, &token, "/", None),
        );
        Some((out, token))
    }

    /// Whether `submitted` repeats the browser's CSRF cookie.
    fn csrf_ok(request: &HeaderMap, submitted: &str) -> bool {
        cookie(request, CSRF_COOKIE).is_some_and(|t| {
            is_token(&t)
                && aduan_adapter::verify::constant_time_eq(t.as_bytes(), submitted.as_bytes())
        })
    }
}

/// The pages' routes.
pub fn router(web: Arc<Web>) -> Router {
    let photo_body = web.cfg.max_photo_bytes + 256 * 1024;
    let mut router = Router::new()
        .route(
            "/lapor/{instance}",
            get(citizen::show).post(citizen::submit),
        )
        .layer(DefaultBodyLimit::max(photo_body));
    if web.cfg.agent_form {
        router = router
            .route("/agent", get(agent::show).post(agent::submit))
            .route("/agent/sign-in", post(agent::sign_in))
            .route("/agent/sign-out", post(agent::sign_out));
    }
    router.with_state(web)
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

/// Posts per client address in fixed one-minute windows, on this replica.
struct PerClient {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Most addresses remembered before the expired ones are dropped.
const MAX_CLIENTS: usize = 100_000;

impl PerClient {
    fn new(per_minute: u32) -> PerClient {
        PerClient {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn allow(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let Ok(mut windows) = self.windows.lock() else {
            return false;
        };
        if windows.len() >= MAX_CLIENTS {
            windows.retain(|_, (start, _)| now.duration_since(*start) < minute);
        }
        if windows.len() >= MAX_CLIENTS {
            return false;
        }
        let entry = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= minute {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_posts_per_minute_and_no_more() {
        let limit = PerClient::new(2);
        let a = IpAddr::from([192, 0, 2, 1]);
        let b = IpAddr::from([192, 0, 2, 2]);
        assert!(limit.allow(a));
        assert!(limit.allow(a));
        assert!(!limit.allow(a));
        assert!(limit.allow(b));
    }

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

    #[test]
    fn the_token_must_repeat_the_cookie() {
        let token = random_token().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{CSRF_COOKIE}={token}")).unwrap(),
        );
        assert!(Web::csrf_ok(&h, &token));
        assert!(!Web::csrf_ok(&h, &random_token().unwrap()));
        assert!(!Web::csrf_ok(&HeaderMap::new(), &token));
    }
}
