//! `GET /lapor/<instance>`: the citizen form; `POST`: its submission.
//!
//! The page works without JavaScript (a plain multipart form; the location
//! button only appears when the browser can use it). A submission is read
//! whole (bounded by `max_photo_bytes`), checked against the instance's
//! services like an Open311 request, and accepted through the ingest
//! service with its photo stored first. Whatever goes wrong, the citizen
//! sees the form again with what they typed and what to fix.

use std::net::SocketAddr;
use std::sync::Arc;

use aduan_adapter::{Context, Outcome, Timestamp};
use aduan_open311::{FormFields, Open311, Photo};
use axum::extract::{ConnectInfo, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::Web;
use super::citizen_page::{accepted_page, form_page, localized, photo_message};
use super::page::{self, Lang, escape};
use crate::ingest::{Door, IngestError};
use crate::instances::Instance;

/// Longest text field accepted, in bytes (the description is the long one).
const MAX_TEXT_BYTES: usize = 20_000;

#[derive(serde::Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// What a submission carried besides the fields.
#[derive(Default)]
pub(super) struct Posted {
    pub(super) fields: FormFields,
    /// The CSRF token the form repeated.
    csrf: String,
    pub(super) form_id: String,
    lang: Option<String>,
    photo: Option<Photo>,
    /// What is wrong with the photo, when something is.
    photo_problem: Option<PhotoProblem>,
}

#[derive(Clone, Copy)]
pub(super) enum PhotoProblem {
    TooLarge,
    NotAnImage,
}

/// One instance's form being answered, in the page's language.
pub(super) struct FormPage<'a> {
    pub(super) web: &'a Web,
    /// The instance's name, in the form's address.
    pub(super) name: &'a str,
    pub(super) form: &'a Open311,
    pub(super) lang: Lang,
}

impl FormPage<'_> {
    /// The form again with what was typed, `problems` and `notice`, under
    /// a fresh token when the browser's cookie was lost.
    fn again(
        &self,
        request: &HeaderMap,
        posted: &Posted,
        status: StatusCode,
        problems: Vec<(String, String)>,
        notice: Option<&str>,
    ) -> Response {
        let Some((out, csrf)) = self.web.form_headers(request) else {
            return unavailable(self.web, self.lang);
        };
        let body = form_page(self, posted, &csrf, &problems, notice);
        page::html(status, out, body)
    }
}

pub async fn show(
    State(shared): State<Arc<Web>>,
    Path(name): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let web = shared.as_ref();
    let Some((_, form)) = web.forms.get(&name) else {
        return not_found(web);
    };
    let lang = Lang::of(q.lang.as_deref());
    let (Some((out, csrf)), Some(form_id)) = (web.form_headers(&headers), super::random_token())
    else {
        return unavailable(web, lang);
    };
    let posted = Posted {
        form_id,
        ..Posted::default()
    };
    let page = FormPage {
        web,
        name: &name,
        form,
        lang,
    };
    page::html(
        StatusCode::OK,
        out,
        form_page(&page, &posted, &csrf, &[], None),
    )
}

pub async fn submit(
    State(shared): State<Arc<Web>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let web = shared.as_ref();
    let Some((inst, form)) = web.forms.get(&name).cloned() else {
        return not_found(web);
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .cloned();
    let headers = request.headers().clone();
    let mut posted = match read(request, &shared, web.cfg.max_photo_bytes).await {
        Ok(p) => p,
        Err(status) => {
            let lang = Lang::En;
            let body = page::layout(
                lang,
                "Aduan",
                &format!(
                    "<h1>{}</h1><p><a href=\"/lapor/{}\">{}</a></p>",
                    "Formulir tidak terbaca / The form could not be read",
                    escape(&name),
                    "Kembali ke formulir / Back to the form"
                ),
                None,
            );
            return page::html(status, web.headers.clone(), body);
        }
    };
    // The photo moves into the complaint; a form shown again never carries it.
    let photo = posted.photo.take();
    let lang = Lang::of(posted.lang.as_deref());
    let page = FormPage {
        web,
        name: &name,
        form: &form,
        lang,
    };
    let again = |status, problems, notice| page.again(&headers, &posted, status, problems, notice);
    if !web.allow_post(&headers, peer) {
        let notice = lang.pick(
            "Terlalu banyak kiriman dari jaringan Anda. Tunggu satu menit, lalu kirim lagi.",
            "Too many submissions from your network. Wait a minute, then send again.",
        );
        return again(StatusCode::TOO_MANY_REQUESTS, vec![], Some(notice));
    }
    if !Web::csrf_ok(&headers, &posted.csrf) {
        let notice = lang.pick(
            "Halaman ini sudah kedaluwarsa. Periksa isian Anda, lalu kirim lagi.",
            "This page has expired. Check what you entered, then send it again.",
        );
        return again(StatusCode::FORBIDDEN, vec![], Some(notice));
    }
    let ctx = Context {
        instance: &inst.name,
        received_at: Timestamp(chrono::Utc::now()),
        keep_raw: false,
    };
    let checked = form.form_submission(&posted.fields, photo, &posted.form_id, &ctx);
    let mut problems = match &checked {
        Err(errors) => localized(lang, errors),
        Ok(_) => Vec::new(),
    };
    if let Some(p) = posted.photo_problem {
        problems.push((
            "photo".into(),
            photo_message(lang, p, web.cfg.max_photo_bytes),
        ));
    }
    let submission = match checked {
        Ok(s) if problems.is_empty() => s,
        _ => return again(StatusCode::BAD_REQUEST, problems, None),
    };
    match accept(web, &inst, submission).await {
        Ok(receipt) => {
            let body = accepted_page(&page, &receipt);
            page::html(StatusCode::CREATED, web.headers.clone(), body)
        }
        Err(e) => {
            let (status, notice) = match e {
                IngestError::Limited(_) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    lang.pick(
                        "Terlalu banyak aduan saat ini. Tunggu sebentar, lalu kirim lagi.",
                        "Too many complaints right now. Wait a moment, then send again.",
                    ),
                ),
                _ => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    lang.pick(
                        "Aduan Anda belum terkirim karena sistem sedang sibuk. Coba kirim lagi sebentar lagi.",
                        "Your complaint was not sent: the system is busy. Try again in a moment.",
                    ),
                ),
            };
            again(status, vec![], Some(notice))
        }
    }
}

/// Takes a place, stores the photo and appends the complaint.
async fn accept(
    web: &Web,
    inst: &Instance,
    submission: aduan_open311::Submission,
) -> Result<aduan_adapter::Receipt, IngestError> {
    let _admission = web.ingest.admit(inst).await?;
    let outcome = Outcome::AcceptWithBlobs {
        complaints: vec![submission.complaint],
        ignored: Vec::new(),
        blobs: submission.blobs,
    };
    let receipts = web
        .ingest
        .accept(inst, outcome, Door::Http(inst.label()))
        .await?;
    receipts
        .into_iter()
        .next()
        .ok_or_else(|| IngestError::Unavailable("the complaint was not written".into()))
}

/// Reads the multipart body: text fields bounded, the photo up to `max`
/// bytes (the rest is read and dropped so the fields after it still count).
async fn read(request: Request, web: &Arc<Web>, max: usize) -> Result<Posted, StatusCode> {
    let mut multipart = Multipart::from_request(request, web)
        .await
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    let mut posted = Posted::default();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            // The body was cut off past the limit while dropping a photo
            // that was too large: what came before it is kept.
            Err(_) if matches!(posted.photo_problem, Some(PhotoProblem::TooLarge)) => break,
            Err(e) => return Err(e.status()),
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "photo" {
            let filename = field
                .file_name()
                .filter(|f| !f.is_empty())
                .map(str::to_string);
            let mut bytes = Vec::new();
            let mut too_large = false;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if bytes.len() + chunk.len() > max {
                            too_large = true;
                            bytes = Vec::new();
                        } else if !too_large {
                            bytes.extend_from_slice(&chunk);
                        }
                    }
                    Ok(None) => break,
                    Err(_) if too_large => break,
                    Err(e) => return Err(e.status()),
                }
            }
            if too_large {
                posted.photo_problem = Some(PhotoProblem::TooLarge);
            } else if !bytes.is_empty() {
                match crate::media::sniff::sniff(&bytes).filter(|t| t.starts_with("image/")) {
                    Some(content_type) => {
                        posted.photo = Some(Photo {
                            bytes,
                            content_type: content_type.to_string(),
                            filename,
                        });
                    }
                    None => posted.photo_problem = Some(PhotoProblem::NotAnImage),
                }
            }
            continue;
        }
        let text = field.text().await.map_err(|e| e.status())?;
        if text.len() > MAX_TEXT_BYTES {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        match name.as_str() {
            "csrf" => posted.csrf = text,
            "form_id" => posted.form_id = text,
            "lang" => posted.lang = Some(text),
            other => {
                if let Some(slot) = posted.fields.field_mut(other) {
                    *slot = text;
                }
            }
        }
    }
    // A page without its id (an old copy, a hand-made post) gets one.
    if !super::is_token(&posted.form_id) {
        posted.form_id = super::random_token().ok_or(StatusCode::SERVICE_UNAVAILABLE)?;
    }
    Ok(posted)
}

fn not_found(web: &Web) -> Response {
    let body = page::layout(
        Lang::Id,
        "Tidak ditemukan",
        "<h1>Halaman tidak ditemukan</h1><p lang=\"en\">Page not found.</p>",
        None,
    );
    page::html(StatusCode::NOT_FOUND, web.headers.clone(), body)
}

fn unavailable(web: &Web, lang: Lang) -> Response {
    let body = page::layout(
        lang,
        "Aduan",
        lang.pick(
            "<h1>Layanan sedang tidak tersedia</h1><p>Coba lagi sebentar lagi.</p>",
            "<h1>The service is unavailable</h1><p>Try again in a moment.</p>",
        ),
        None,
    );
    page::html(StatusCode::SERVICE_UNAVAILABLE, web.headers.clone(), body)
}
