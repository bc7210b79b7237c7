//! `GET /lapor/<instance>`: the citizen form; `POST`: its submission.
//!
//! The page works without JavaScript (a plain multipart form; the location
//! button only appears when the browser can use it). A post is judged
//! before its body is read: over the client's posts per minute (`429`),
//! over the size limit by `Content-Length` (`413`), without a CSRF cookie the
//! gateway signed (`403`), or with every upload place taken (`503` with
//! `Retry-After`). Such a post has only its text fields read (they come
//! before the photo, and are small), to show the form again with them; the
//! rest of its body is read and dropped after the answer, so that the
//! browser sees it. A post taken has its photo streamed to the blob
//! store's staging directory, then is checked against the instance's
//! services like an Open311 request, and accepted through the ingest
//! service with its photo stored first. Whatever goes wrong, the citizen
//! sees the form again with what they typed and what to fix.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::{Context, Outcome, Timestamp};
use aduan_open311::{Open311, Photo};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::Web;
use super::citizen_page::{accepted_page, form_page, localized, photo_message};
use super::multipart::{self, Multipart, ReadError};
use super::page::{self, Lang, escape};
use super::upload::{self, PhotoProblem, Posted, StagedPhoto, Stop};
use crate::ingest::{Door, IngestError};
use crate::instances::Instance;

#[derive(serde::Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
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
    async fn again(
        &self,
        request: &HeaderMap,
        secure: bool,
        posted: &Posted,
        status: StatusCode,
        problems: Vec<(String, String)>,
        notice: Option<&str>,
    ) -> Response {
        let Some((out, csrf)) = self.web.form_headers(request, secure).await else {
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
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let web = shared.as_ref();
    let Some((_, form)) = web.forms.get(&name) else {
        return not_found(web);
    };
    let lang = Lang::of(q.lang.as_deref());
    let secure = web.secure(&headers, &uri);
    let (Some((out, csrf)), Some(form_id)) = (
        web.form_headers(&headers, secure).await,
        super::random_token(),
    ) else {
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

/// Why a post was refused before its body was read.
#[derive(Clone, Copy)]
enum Early {
    TooLarge,
    RateLimited,
    Expired,
    Busy,
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
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned();
    let secure = web.secure(&headers, &parts.uri);
    let Some(boundary) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart::boundary)
    else {
        return unreadable(web, &name, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    };
    let limit = web.post_limit();
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(web.cfg.upload_timeout_seconds);
    let mut body = Multipart::new(body, &boundary, limit, deadline);

    // Everything that needs no byte of the body is judged first.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut slot = None;
    // Every post counts towards the client's minute, refused or not.
    let early = if !web.allow_post(&headers, peer) {
        Some(Early::RateLimited)
    } else if declared.is_some_and(|n| n > limit) {
        Some(Early::TooLarge)
    } else if !web.csrf_cookie_ok(&headers).await {
        Some(Early::Expired)
    } else {
        slot = web.uploads.clone().try_acquire_owned().ok();
        slot.is_none().then_some(Early::Busy)
    };
    let mut posted = Posted::default();
    if let Some(early) = early {
        // The text fields only (they come before the photo), to give them back.
        let _ = upload::text_fields(&mut body, &mut posted).await;
        tokio::spawn(body.drain(limit.saturating_mul(2)));
        return refused_early(web, &name, &form, &headers, secure, &mut posted, early).await;
    }
    let staging = web.ingest.blobs().staging_dir();
    let read = upload::read(
        &mut body,
        &mut posted,
        &staging,
        web.cfg.max_photo_bytes as u64,
    )
    .await;
    let photo = match read {
        Ok(photo) => photo,
        Err(stop) => {
            drop(slot);
            return refused_reading(web, &name, &form, &headers, secure, &mut posted, stop).await;
        }
    };
    drop(body);
    let lang = Lang::of(posted.lang.as_deref());
    // A page without its id (an old copy, a hand-made post) gets one.
    if !super::is_token(&posted.form_id) {
        let Some(id) = super::random_token() else {
            return unavailable(web, lang);
        };
        posted.form_id = id;
    }
    let page = FormPage {
        web,
        name: &name,
        form: &form,
        lang,
    };
    let outcome = judge(web, &inst, &form, &headers, &posted, photo).await;
    drop(slot);
    match outcome {
        Judged::Accepted(receipt) => {
            let body = accepted_page(&page, &receipt);
            page::html(StatusCode::CREATED, web.headers.clone(), body)
        }
        Judged::Again(status, problems, notice) => {
            page.again(&headers, secure, &posted, status, problems, notice)
                .await
        }
    }
}

/// What became of a post read whole.
enum Judged {
    Accepted(aduan_adapter::Receipt),
    Again(StatusCode, Vec<(String, String)>, Option<&'static str>),
}

/// Checks the token and the fields, then stores the photo and appends the complaint.
async fn judge(
    web: &Web,
    inst: &Instance,
    form: &Open311,
    headers: &HeaderMap,
    posted: &Posted,
    photo: Option<StagedPhoto>,
) -> Judged {
    let lang = Lang::of(posted.lang.as_deref());
    if !web.csrf_ok(headers, &posted.csrf).await {
        let notice = lang.pick(
            "Halaman ini sudah kedaluwarsa. Periksa isian Anda, lalu kirim lagi.",
            "This page has expired. Check what you entered, then send it again.",
        );
        return Judged::Again(StatusCode::FORBIDDEN, vec![], Some(notice));
    }
    let ctx = Context {
        instance: &inst.name,
        received_at: Timestamp(chrono::Utc::now()),
        keep_raw: false,
    };
    let described = photo.as_ref().map(|p| Photo {
        sha256: p.sha256.clone(),
        size: p.size,
        content_type: p.content_type.to_string(),
        filename: p.filename.clone(),
    });
    let checked = form.form_submission(&posted.fields, described, &posted.form_id, &ctx);
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
        _ => return Judged::Again(StatusCode::BAD_REQUEST, problems, None),
    };
    match accept(web, inst, submission, photo).await {
        Ok(receipt) => Judged::Accepted(receipt),
        Err(IngestError::Limited(_)) => Judged::Again(
            StatusCode::TOO_MANY_REQUESTS,
            vec![],
            Some(lang.pick(
                "Terlalu banyak aduan saat ini. Tunggu sebentar, lalu kirim lagi.",
                "Too many complaints right now. Wait a moment, then send again.",
            )),
        ),
        Err(_) => Judged::Again(
            StatusCode::SERVICE_UNAVAILABLE,
            vec![],
            Some(lang.pick(
                "Aduan Anda belum terkirim karena sistem sedang sibuk. Coba kirim lagi sebentar lagi.",
                "Your complaint was not sent: the system is busy. Try again in a moment.",
            )),
        ),
    }
}

/// Takes a place, stores the photo and appends the complaint.
async fn accept(
    web: &Web,
    inst: &Instance,
    submission: aduan_open311::Submission,
    photo: Option<StagedPhoto>,
) -> Result<aduan_adapter::Receipt, IngestError> {
    let _admission = web.ingest.admit(inst).await?;
    // The photo first: a complaint in the stream always finds its file.
    if let Some(photo) = &photo {
        let key = format!("sha256/{}", photo.sha256);
        let stored = web
            .ingest
            .blobs()
            .put_file(&key, &photo.path, photo.content_type)
            .await;
        if let Err(e) = stored {
            tracing::warn!(instance = %inst.name, error = %e, "photo not stored");
            return Err(IngestError::Unavailable(e.to_string()));
        }
    }
    let outcome = Outcome::Accept {
        complaints: vec![submission.complaint],
        ignored: Vec::new(),
        reports: Vec::new(),
        consents: Vec::new(),
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

/// The form again for a post refused before its body was read.
async fn refused_early(
    web: &Web,
    name: &str,
    form: &Open311,
    headers: &HeaderMap,
    secure: bool,
    posted: &mut Posted,
    early: Early,
) -> Response {
    let lang = Lang::of(posted.lang.as_deref());
    let page = FormPage {
        web,
        name,
        form,
        lang,
    };
    let (status, problems, notice) = match early {
        Early::TooLarge => {
            posted.photo_problem = Some(PhotoProblem::TooLarge);
            let message = photo_message(lang, PhotoProblem::TooLarge, web.cfg.max_photo_bytes);
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                vec![("photo".to_string(), message)],
                None,
            )
        }
        Early::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            vec![],
            Some(lang.pick(
                "Terlalu banyak kiriman dari jaringan Anda. Tunggu satu menit, lalu kirim lagi.",
                "Too many submissions from your network. Wait a minute, then send again.",
            )),
        ),
        Early::Expired => (
            StatusCode::FORBIDDEN,
            vec![],
            Some(lang.pick(
                "Halaman ini sudah kedaluwarsa. Periksa isian Anda, lalu kirim lagi.",
                "This page has expired. Check what you entered, then send it again.",
            )),
        ),
        Early::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            vec![],
            Some(lang.pick(
                "Sistem sedang menerima banyak kiriman. Tunggu sebentar, lalu kirim lagi.",
                "The system is receiving many submissions. Wait a moment, then send again.",
            )),
        ),
    };
    let mut response = page
        .again(headers, secure, posted, status, problems, notice)
        .await;
    if matches!(early, Early::Busy) {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(web.ingest.retry_after_seconds()),
        );
    }
    response
}

/// The answer to a post whose body could not be read to its end.
async fn refused_reading(
    web: &Web,
    name: &str,
    form: &Open311,
    headers: &HeaderMap,
    secure: bool,
    posted: &mut Posted,
    stop: Stop,
) -> Response {
    let lang = Lang::of(posted.lang.as_deref());
    let page = FormPage {
        web,
        name,
        form,
        lang,
    };
    let (status, notice) = match stop {
        Stop::Read(ReadError::Malformed) => {
            return unreadable(web, name, StatusCode::BAD_REQUEST);
        }
        Stop::Read(ReadError::TooLarge) | Stop::TextTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            lang.pick(
                "Isian terlalu panjang. Persingkat uraian Anda, lalu kirim lagi.",
                "What you entered is too long. Shorten the description, then send again.",
            ),
        ),
        Stop::Read(ReadError::TimedOut) => (
            StatusCode::REQUEST_TIMEOUT,
            lang.pick(
                "Pengiriman terlalu lama. Coba lagi, mungkin dengan foto yang lebih kecil.",
                "Sending took too long. Try again, perhaps with a smaller photo.",
            ),
        ),
        Stop::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            lang.pick(
                "Aduan Anda belum terkirim karena sistem sedang sibuk. Coba kirim lagi sebentar lagi.",
                "Your complaint was not sent: the system is busy. Try again in a moment.",
            ),
        ),
    };
    page.again(headers, secure, posted, status, vec![], Some(notice))
        .await
}

/// A body that is no form: a plain page back to it.
fn unreadable(web: &Web, name: &str, status: StatusCode) -> Response {
    let body = page::layout(
        Lang::En,
        "Aduan",
        &format!(
            "<h1>{}</h1><p><a href=\"/lapor/{}\">{}</a></p>",
            "Formulir tidak terbaca / The form could not be read",
            escape(name),
            "Kembali ke formulir / Back to the form"
        ),
        None,
    );
    page::html(status, web.headers.clone(), body)
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
