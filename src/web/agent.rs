//! `/agent`: the call-center agent form. An agent signs in with their call
//! center's token, which opens a session (`session`: a random id in an
//! `HttpOnly`, `SameSite=Strict` cookie scoped to `/agent`, `Secure` over
//! TLS; the token itself never leaves the gateway), types or pastes the
//! call, and submits it: the page posts it to `/v1/transcripts` with the
//! session's token, exactly as the call center's own software would, and
//! shows the tracking number, or that the call id was already sent.
//! Signing out ends the session in Redis, for every replica.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::Uri;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Web;
use super::page::{self, Field, Lang, escape};

/// The cookie holding the signed-in agent's session id.
const SESSION_COOKIE: &str = "aduan_agent";

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// The transcript form's fields, as typed.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct AgentForm {
    csrf: String,
    lang: Option<String>,
    agent_id: String,
    agent_name: String,
    call_id: String,
    caller_phone: String,
    caller_name: String,
    category: String,
    transcript: String,
    /// Each line of `transcript` is a turn, `Speaker: words`.
    turns: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInForm {
    csrf: String,
    lang: Option<String>,
    token: String,
}

/// The call center's token of the request's session, while it lasts.
async fn session(web: &Web, headers: &HeaderMap) -> Result<Option<String>, ()> {
    let Some(id) = super::cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    web.sessions.find(&id).await.map_err(|e| {
        tracing::warn!(error = %e, "agent session not read");
    })
}

/// The sign-in page saying the service is unavailable (sessions live in Redis).
fn sessions_unavailable(out: HeaderMap, lang: Lang, csrf: &str) -> Response {
    let notice = lang.pick(
        "Layanan sedang tidak tersedia. Coba lagi sebentar lagi.",
        "The service is unavailable. Try again in a moment.",
    );
    page::html(
        StatusCode::SERVICE_UNAVAILABLE,
        out,
        sign_in_page(lang, csrf, Some(notice)),
    )
}

pub async fn show(
    State(shared): State<Arc<Web>>,
    Query(q): Query<LangQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let web = shared.as_ref();
    let lang = Lang::of(q.lang.as_deref());
    let secure = web.secure(&headers, &uri);
    let Some((out, csrf)) = web.form_headers(&headers, secure).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let body = match session(web, &headers).await {
        Ok(Some(_)) => transcript_page(lang, &csrf, &AgentForm::default(), &[], None),
        Ok(None) => sign_in_page(lang, &csrf, None),
        Err(()) => return sessions_unavailable(out, lang, &csrf),
    };
    page::html(StatusCode::OK, out, body)
}

pub async fn sign_in(
    State(shared): State<Arc<Web>>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let web = shared.as_ref();
    let lang = Lang::of(form.lang.as_deref());
    let secure = web.secure(&headers, &uri);
    let Some((mut out, csrf)) = web.form_headers(&headers, secure).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let token = form.token.trim();
    let center = if !web.csrf_ok(&headers, &form.csrf).await {
        Err(lang.pick(
            "Halaman ini sudah kedaluwarsa. Masuk lagi.",
            "This page has expired. Sign in again.",
        ))
    } else {
        web.tokens
            .find(token)
            .ok_or(lang.pick("Token tidak dikenal.", "The token is not known."))
    };
    let center = match center {
        Ok(c) => c,
        Err(problem) => {
            let body = sign_in_page(lang, &csrf, Some(problem));
            return page::html(StatusCode::UNAUTHORIZED, out, body);
        }
    };
    let id = match web.sessions.open(center, token).await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "agent session not opened");
            return sessions_unavailable(out, lang, &csrf);
        }
    };
    let age = web.sessions.ttl().as_secs();
    out.append(
        header::SET_COOKIE,
        web.cookie(secure, SESSION_COOKIE, &id, "/agent", Some(age)),
    );
    see_other(out, lang)
}

pub async fn sign_out(
    State(shared): State<Arc<Web>>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let web = shared.as_ref();
    let lang = Lang::of(form.lang.as_deref());
    let mut out = web.headers.clone();
    if web.csrf_ok(&headers, &form.csrf).await {
        if let Some(id) = super::cookie(&headers, SESSION_COOKIE)
            && let Err(e) = web.sessions.close(&id).await
        {
            tracing::warn!(error = %e, "agent session not ended");
            let csrf = form.csrf.clone();
            return sessions_unavailable(out, lang, &csrf);
        }
        let secure = web.secure(&headers, &uri);
        out.append(
            header::SET_COOKIE,
            web.cookie(secure, SESSION_COOKIE, "", "/agent", Some(0)),
        );
    }
    see_other(out, lang)
}

/// `303 See Other` back to `/agent`.
fn see_other(mut headers: HeaderMap, lang: Lang) -> Response {
    let to = match lang {
        Lang::Id => "/agent",
        Lang::En => "/agent?lang=en",
    };
    headers.insert(header::LOCATION, HeaderValue::from_static(to));
    (StatusCode::SEE_OTHER, headers).into_response()
}

pub async fn submit(
    State(shared): State<Arc<Web>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<AgentForm>,
) -> Response {
    let web = shared.as_ref();
    let lang = Lang::of(form.lang.as_deref());
    let secure = web.secure(&headers, &uri);
    let Some((out, csrf)) = web.form_headers(&headers, secure).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let token = match session(web, &headers).await {
        Ok(t) => t,
        Err(()) => return sessions_unavailable(out, lang, &csrf),
    };
    let Some(token) = token else {
        let notice = lang.pick(
            "Masuk dulu untuk mengirim transkrip.",
            "Sign in to send a transcript.",
        );
        return page::html(
            StatusCode::UNAUTHORIZED,
            out,
            sign_in_page(lang, &csrf, Some(notice)),
        );
    };
    let again = |status, problems: &[(String, String)], notice: Option<&str>| {
        page::html(
            status,
            out.clone(),
            transcript_page(lang, &csrf, &form, problems, notice),
        )
    };
    if !web.allow_post(&headers, peer.map(|axum::Extension(p)| p)) {
        let notice = lang.pick(
            "Terlalu banyak kiriman. Tunggu satu menit, lalu kirim lagi.",
            "Too many submissions. Wait a minute, then send again.",
        );
        return again(StatusCode::TOO_MANY_REQUESTS, &[], Some(notice));
    }
    if !web.csrf_ok(&headers, &form.csrf).await {
        let notice = lang.pick(
            "Halaman ini sudah kedaluwarsa. Periksa isian, lalu kirim lagi.",
            "This page has expired. Check the form, then send it again.",
        );
        return again(StatusCode::FORBIDDEN, &[], Some(notice));
    }
    let document = match transcript_document(lang, &form) {
        Ok(d) => d,
        Err(problems) => return again(StatusCode::BAD_REQUEST, &problems, None),
    };
    let (status, answer) = post_transcript(web, &token, document).await;
    match status {
        StatusCode::CREATED => {
            let body = accepted_page(lang, &csrf, &form.call_id, &answer);
            page::html(StatusCode::CREATED, out, body)
        }
        StatusCode::BAD_REQUEST => {
            let problems = field_errors(&answer);
            again(StatusCode::BAD_REQUEST, &problems, None)
        }
        StatusCode::UNAUTHORIZED => {
            let notice = lang.pick(
                "Sesi berakhir. Masuk lagi.",
                "The session has ended. Sign in again.",
            );
            page::html(
                StatusCode::UNAUTHORIZED,
                out,
                sign_in_page(lang, &csrf, Some(notice)),
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            let notice = lang.pick("Transkrip terlalu panjang.", "The transcript is too long.");
            again(StatusCode::PAYLOAD_TOO_LARGE, &[], Some(notice))
        }
        other => {
            let notice = lang.pick(
                "Transkrip belum terkirim karena sistem sedang sibuk. Coba lagi sebentar lagi.",
                "The transcript was not sent: the system is busy. Try again in a moment.",
            );
            let status = if other.is_server_error() || other == StatusCode::TOO_MANY_REQUESTS {
                other
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            again(status, &[], Some(notice))
        }
    }
}

/// The transcript document the form describes.
fn transcript_document(lang: Lang, form: &AgentForm) -> Result<Value, Vec<(String, String)>> {
    let mut doc = Map::new();
    let put = |map: &mut Map<String, Value>, key: &str, value: &str| {
        if !value.trim().is_empty() {
            map.insert(key.to_string(), Value::from(value.trim()));
        }
    };
    put(&mut doc, "call_id", &form.call_id);
    let mut agent = Map::new();
    put(&mut agent, "id", &form.agent_id);
    put(&mut agent, "name", &form.agent_name);
    doc.insert("agent".into(), Value::Object(agent));
    let mut caller = Map::new();
    put(&mut caller, "phone", &form.caller_phone);
    put(&mut caller, "name", &form.caller_name);
    if !caller.is_empty() {
        doc.insert("caller".into(), Value::Object(caller));
    }
    put(&mut doc, "category", &form.category);
    if form.turns.is_some() {
        let mut segments = Vec::new();
        for (n, line) in form.transcript.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match line.split_once(':') {
                Some((speaker, words))
                    if !speaker.trim().is_empty() && !words.trim().is_empty() =>
                {
                    segments.push(json!({"speaker": speaker.trim(), "text": words.trim()}));
                }
                _ => {
                    let message = match lang {
                        Lang::Id => {
                            format!("Baris {} harus berbentuk \"Pembicara: kata-kata\".", n + 1)
                        }
                        Lang::En => format!("Line {} must read \"Speaker: words\".", n + 1),
                    };
                    return Err(vec![("transcript".into(), message)]);
                }
            }
        }
        if !segments.is_empty() {
            doc.insert("segments".into(), Value::Array(segments));
        }
    } else {
        put(&mut doc, "text", &form.transcript);
    }
    Ok(Value::Object(doc))
}

/// Posts `document` to the transcript intake with `token`; its status and JSON answer.
async fn post_transcript(web: &Web, token: &str, document: Value) -> (StatusCode, Value) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(v) => headers.insert(header::AUTHORIZATION, v),
        Err(_) => return (StatusCode::UNAUTHORIZED, Value::Null),
    };
    let response = (web.post_transcript)(headers, Body::from(document.to_string())).await;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The intake's field errors, as (form field, message).
fn field_errors(answer: &Value) -> Vec<(String, String)> {
    let Some(errors) = answer["errors"].as_array() else {
        let reason = answer["reason"].as_str().unwrap_or("invalid");
        return vec![("transcript".into(), reason.to_string())];
    };
    errors
        .iter()
        .map(|e| {
            let path = e["field"].as_str().unwrap_or("");
            let field = match path {
                "call_id" => "call_id",
                p if p.starts_with("agent") => "agent_id",
                "caller.phone" => "caller_phone",
                p if p.starts_with("caller") => "caller_name",
                "category" => "category",
                _ => "transcript",
            };
            let message = format!("{path}: {}", e["message"].as_str().unwrap_or("invalid"));
            (field.to_string(), message)
        })
        .collect()
}

fn sign_in_page(lang: Lang, csrf: &str, problem: Option<&str>) -> String {
    let problem = page::notice(problem);
    let token = Field {
        name: "token",
        label: lang.pick("Token pusat panggilan", "Call-center token"),
        value: "",
        hint: None,
        error: None,
        required: true,
        kind: "password",
        multiline: false,
        autocomplete: Some("current-password"),
    };
    let title = lang.pick("Masuk petugas", "Agent sign-in");
    let body = format!(
        "{nav}<h1>{title}</h1>{problem}\
<form method=\"post\" action=\"/agent/sign-in\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"lang\" value=\"{code}\">\
{token}<button type=\"submit\">{send}</button></form>",
        nav = nav(lang),
        csrf = escape(csrf),
        code = lang.code(),
        token = token.render(),
        send = lang.pick("Masuk", "Sign in"),
    );
    page::layout(lang, title, &body, None)
}

fn nav(lang: Lang) -> String {
    let other = lang.other();
    format!(
        "<nav><a href=\"/agent?lang={0}\" lang=\"{0}\">{1}</a></nav>",
        other.code(),
        other.name()
    )
}

fn transcript_page(
    lang: Lang,
    csrf: &str,
    form: &AgentForm,
    problems: &[(String, String)],
    notice: Option<&str>,
) -> String {
    let error = |field: &str| {
        problems
            .iter()
            .find(|(t, _)| t == field)
            .map(|(_, m)| m.as_str())
    };
    let field = |name, label, value, required, kind, hint| Field {
        name,
        label,
        value,
        hint,
        error: error(name),
        required,
        kind,
        multiline: name == "transcript",
        autocomplete: Some("off"),
    };
    let notice = page::notice(notice);
    let checked = if form.turns.is_some() { " checked" } else { "" };
    let title = lang.pick("Kirim transkrip panggilan", "Send a call transcript");
    let fields = [
        field(
            "agent_id",
            lang.pick("Kode petugas", "Agent id"),
            &form.agent_id,
            true,
            "text",
            None,
        ),
        field(
            "agent_name",
            lang.pick("Nama petugas", "Agent name"),
            &form.agent_name,
            false,
            "text",
            None,
        ),
        field(
            "call_id",
            lang.pick("ID panggilan", "Call id"),
            &form.call_id,
            true,
            "text",
            Some(lang.pick(
                "Dari sistem telepon; dipakai untuk mencegah kiriman ganda.",
                "From the phone system; it keeps a call from being sent twice.",
            )),
        ),
        field(
            "caller_phone",
            lang.pick("Nomor penelepon", "Caller's phone number"),
            &form.caller_phone,
            false,
            "tel",
            None,
        ),
        field(
            "caller_name",
            lang.pick("Nama penelepon", "Caller's name"),
            &form.caller_name,
            false,
            "text",
            None,
        ),
        field(
            "category",
            lang.pick("Kategori", "Category"),
            &form.category,
            false,
            "text",
            None,
        ),
        field(
            "transcript",
            lang.pick("Transkrip", "Transcript"),
            &form.transcript,
            true,
            "text",
            Some(lang.pick(
                "Teks panggilan, atau satu giliran per baris: \"Petugas: …\".",
                "The call's text, or one turn per line: \"Agent: …\".",
            )),
        ),
    ];
    let fields: String = fields.iter().map(Field::render).collect();
    let body = format!(
        "{nav}<h1>{title}</h1>{notice}{summary}\
<form method=\"post\" action=\"/agent\" novalidate>\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"lang\" value=\"{code}\">\
{fields}\
<label><input type=\"checkbox\" name=\"turns\" value=\"1\"{checked}>{turns}</label>\
<button type=\"submit\">{send}</button></form>\
<form method=\"post\" action=\"/agent/sign-out\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"lang\" value=\"{code}\"><button type=\"submit\" class=\"secondary\">{out}</button></form>",
        nav = nav(lang),
        summary = page::error_summary(lang, problems),
        csrf = escape(csrf),
        code = lang.code(),
        turns = lang.pick(
            "Setiap baris adalah satu giliran bicara",
            "Each line is one speaker's turn"
        ),
        send = lang.pick("Kirim transkrip", "Send transcript"),
        out = lang.pick("Keluar", "Sign out"),
    );
    page::layout(lang, title, &body, None)
}

fn accepted_page(lang: Lang, csrf: &str, call_id: &str, answer: &Value) -> String {
    let number = answer["tracking"]
        .as_str()
        .or_else(|| answer["id"].as_str())
        .unwrap_or("");
    let duplicate = answer["duplicate"].as_bool().unwrap_or(false);
    let heading = if duplicate {
        lang.pick(
            "ID panggilan ini sudah pernah dikirim",
            "This call id was already sent",
        )
    } else {
        lang.pick("Transkrip diterima", "Transcript received")
    };
    let detail = if duplicate {
        lang.pick(
            "Tidak ada aduan baru yang dibuat; ini nomor pelacakan aduan yang pertama.",
            "No new complaint was made; this is the first complaint's tracking number.",
        )
    } else {
        lang.pick(
            "Berikan nomor ini kepada penelepon.",
            "Give this number to the caller.",
        )
    };
    let body = format!(
        "{nav}<div class=\"ok\" role=\"status\"><h1 id=\"outcome\" data-duplicate=\"{duplicate}\">{heading}</h1>\
<p>{call_label} {call}</p><p>{label}</p><p class=\"tracking\" id=\"tracking\">{number}</p><p>{detail}</p></div>\
<p><a href=\"/agent?lang={code}\">{next}</a></p>\
<form method=\"post\" action=\"/agent/sign-out\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"lang\" value=\"{code}\"><button type=\"submit\" class=\"secondary\">{out}</button></form>",
        nav = nav(lang),
        call_label = lang.pick("ID panggilan:", "Call id:"),
        call = escape(call_id),
        label = lang.pick("Nomor pelacakan:", "Tracking number:"),
        number = escape(number),
        code = lang.code(),
        csrf = escape(csrf),
        next = lang.pick("Kirim transkrip lain", "Send another transcript"),
        out = lang.pick("Keluar", "Sign out"),
    );
    page::layout(lang, heading, &body, None)
}
