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

use aduan_adapter::{Context, FieldError, Outcome, Timestamp};
use aduan_open311::{FormFields, Open311, Photo};
use axum::extract::{ConnectInfo, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::Web;
use super::page::{self, Field, Lang, escape};
use crate::ingest::{Door, IngestError};
use crate::instances::Instance;
use crate::server::AppState;

/// Longest text field accepted, in bytes (the description is the long one).
const MAX_TEXT_BYTES: usize = 20_000;

#[derive(serde::Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// What a submission carried besides the fields.
#[derive(Default)]
struct Posted {
    fields: FormFields,
    csrf: String,
    form_id: String,
    lang: Option<String>,
    photo: Option<Photo>,
    /// What is wrong with the photo, when something is.
    photo_problem: Option<PhotoProblem>,
}

#[derive(Clone, Copy)]
enum PhotoProblem {
    TooLarge,
    NotAnImage,
}

/// A form to show again: its fields, the problems and a status.
struct Again<'a> {
    status: StatusCode,
    posted: &'a Posted,
    problems: Vec<(String, String)>,
    notice: Option<&'static str>,
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let web = &state.web;
    let Some((_, form)) = web.forms.get(&name) else {
        return not_found(web);
    };
    let lang = Lang::of(q.lang.as_deref());
    let mut out = web.headers.clone();
    let (Some(csrf), Some(form_id)) = (web.csrf(&headers, &mut out), super::random_token()) else {
        return unavailable(web, lang);
    };
    let posted = Posted {
        csrf,
        form_id,
        ..Posted::default()
    };
    let body = form_page(web, &name, form, lang, &posted, &[], None);
    page::html(StatusCode::OK, out, body)
}

pub async fn submit(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let web = &state.web;
    let Some((inst, form)) = web.forms.get(&name).cloned() else {
        return not_found(web);
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .cloned();
    let headers = request.headers().clone();
    let posted = match read(request, &state, web.cfg.max_photo_bytes).await {
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
    let lang = Lang::of(posted.lang.as_deref());
    let again = |status, problems, notice| Again {
        status,
        posted: &posted,
        problems,
        notice,
    };
    if !web.allow_post(&headers, peer) {
        let notice = lang.pick(
            "Terlalu banyak kiriman dari jaringan Anda. Tunggu satu menit, lalu kirim lagi.",
            "Too many submissions from your network. Wait a minute, then send again.",
        );
        return show_again(
            web,
            &name,
            &form,
            &headers,
            lang,
            again(StatusCode::TOO_MANY_REQUESTS, vec![], Some(notice)),
        );
    }
    if !Web::csrf_ok(&headers, &posted.csrf) {
        let notice = lang.pick(
            "Halaman ini sudah kedaluwarsa. Periksa isian Anda, lalu kirim lagi.",
            "This page has expired. Check what you entered, then send it again.",
        );
        return show_again(
            web,
            &name,
            &form,
            &headers,
            lang,
            again(StatusCode::FORBIDDEN, vec![], Some(notice)),
        );
    }
    let mut problems: Vec<(String, String)> = Vec::new();
    if let Some(p) = posted.photo_problem {
        problems.push((
            "photo".into(),
            photo_message(lang, p, web.cfg.max_photo_bytes),
        ));
    }
    let ctx = Context {
        instance: &inst.name,
        received_at: Timestamp(chrono::Utc::now()),
        keep_raw: false,
    };
    let checked = form.form_submission(&posted.fields, posted.photo.clone(), &posted.form_id, &ctx);
    let submission = match checked {
        Ok(s) if problems.is_empty() => s,
        Ok(_) => {
            return show_again(
                web,
                &name,
                &form,
                &headers,
                lang,
                again(StatusCode::BAD_REQUEST, problems, None),
            );
        }
        Err(errors) => {
            problems.splice(0..0, localized(lang, &errors));
            return show_again(
                web,
                &name,
                &form,
                &headers,
                lang,
                again(StatusCode::BAD_REQUEST, problems, None),
            );
        }
    };
    match accept(&state, &inst, submission).await {
        Ok(receipt) => {
            let body = accepted_page(&name, &form, lang, &receipt);
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
            show_again(
                web,
                &name,
                &form,
                &headers,
                lang,
                again(status, vec![], Some(notice)),
            )
        }
    }
}

/// Takes a place, stores the photo and appends the complaint.
async fn accept(
    state: &AppState,
    inst: &Instance,
    submission: aduan_open311::Submission,
) -> Result<aduan_adapter::Receipt, IngestError> {
    let _admission = state.ingest.admit(inst).await?;
    let outcome = Outcome::AcceptWithBlobs {
        complaints: vec![submission.complaint],
        ignored: Vec::new(),
        blobs: submission.blobs,
    };
    let receipts = state
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
async fn read(request: Request, state: &Arc<AppState>, max: usize) -> Result<Posted, StatusCode> {
    let mut multipart = Multipart::from_request(request, state)
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

/// The form again, with a fresh token when the browser's cookie was lost.
fn show_again(
    web: &Web,
    name: &str,
    form: &Open311,
    headers: &HeaderMap,
    lang: Lang,
    again: Again<'_>,
) -> Response {
    let mut out = web.headers.clone();
    let Some(csrf) = web.csrf(headers, &mut out) else {
        return unavailable(web, lang);
    };
    let posted = Posted {
        csrf,
        fields: again.posted.fields.clone(),
        form_id: again.posted.form_id.clone(),
        ..Posted::default()
    };
    let body = form_page(
        web,
        name,
        form,
        lang,
        &posted,
        &again.problems,
        again.notice,
    );
    page::html(again.status, out, body)
}

/// Each field error as the page tells it, in the page's language.
fn localized(lang: Lang, errors: &[FieldError]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for e in errors {
        let (target, message) = match e.field.as_str() {
            "name" => ("name", lang.pick("Isi nama Anda.", "Enter your name.")),
            "contact" => (
                "contact",
                lang.pick(
                    "Isi nomor HP (mis. 0812 3456 7890) atau alamat email yang benar.",
                    "Enter a valid phone number (e.g. 0812 3456 7890) or email address.",
                ),
            ),
            "category" => (
                "category",
                lang.pick("Pilih kategori aduan.", "Choose a category."),
            ),
            "description" => (
                "description",
                lang.pick("Tuliskan uraian aduan Anda.", "Describe the problem."),
            ),
            "location" | "address" => (
                "address",
                lang.pick(
                    "Lokasi tidak terbaca. Isi alamat atau patokan saja.",
                    "The location could not be read. Enter an address or landmark instead.",
                ),
            ),
            _ => (
                "description",
                lang.pick("Periksa isian Anda.", "Check what you entered."),
            ),
        };
        if !out.iter().any(|(t, _)| t == target) {
            out.push((target.to_string(), message.to_string()));
        }
    }
    out
}

fn photo_message(lang: Lang, problem: PhotoProblem, max: usize) -> String {
    let mib = max.div_ceil(1024 * 1024);
    match problem {
        PhotoProblem::TooLarge => match lang {
            Lang::Id => format!("Foto terlalu besar: paling besar {mib} MB."),
            Lang::En => format!("The photo is too large: {mib} MB at most."),
        },
        PhotoProblem::NotAnImage => lang
            .pick(
                "Foto harus berupa gambar JPEG, PNG, WebP atau GIF.",
                "The photo must be a JPEG, PNG, WebP or GIF image.",
            )
            .to_string(),
    }
}

/// The form, filled with `posted`, listing `problems` above it.
fn form_page(
    web: &Web,
    name: &str,
    form: &Open311,
    lang: Lang,
    posted: &Posted,
    problems: &[(String, String)],
    notice: Option<&str>,
) -> String {
    let f = &posted.fields;
    let error = |field: &str| {
        problems
            .iter()
            .find(|(t, _)| t == field)
            .map(|(_, m)| m.as_str())
    };
    let text = |name, label, value, hint, kind, autocomplete| Field {
        name,
        label,
        value,
        hint,
        error: error(name),
        required: matches!(name, "name" | "contact" | "description"),
        kind,
        multiline: name == "description",
        autocomplete,
    };
    let mut options = format!(
        "<option value=\"\">{}</option>",
        lang.pick("— Pilih kategori —", "— Choose a category —")
    );
    for s in form.services() {
        let selected = if s.service_code == f.category {
            " selected"
        } else {
            ""
        };
        options.push_str(&format!(
            "<option value=\"{}\"{selected}>{}</option>",
            escape(&s.service_code),
            escape(&s.service_name)
        ));
    }
    let category_error = error("category")
        .map(|e| {
            format!(
                "<span class=\"field-error\" id=\"category-error\">{}</span>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let category_attrs = if category_error.is_empty() {
        String::new()
    } else {
        " aria-invalid=\"true\" aria-describedby=\"category-error\"".to_string()
    };
    let photo_error = error("photo")
        .map(|e| {
            format!(
                "<span class=\"field-error\" id=\"photo-error\">{}</span>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let photo_attrs = if photo_error.is_empty() {
        " aria-describedby=\"photo-hint\""
    } else {
        " aria-invalid=\"true\" aria-describedby=\"photo-hint photo-error\""
    };
    let mib = web.cfg.max_photo_bytes.div_ceil(1024 * 1024);
    let photo_hint = match lang {
        Lang::Id => format!("Opsional. JPEG, PNG, WebP atau GIF, paling besar {mib} MB."),
        Lang::En => format!("Optional. JPEG, PNG, WebP or GIF, {mib} MB at most."),
    };
    let notice = notice
        .map(|n| {
            format!(
                "<div class=\"summary\" role=\"alert\"><p>{}</p></div>",
                escape(n)
            )
        })
        .unwrap_or_default();
    let other = lang.other();
    let title = lang.pick("Sampaikan aduan", "Submit a complaint");
    let body = format!(
        "<nav><a href=\"/lapor/{inst}?lang={other_code}\" lang=\"{other_code}\">{other_name}</a></nav>\
<h1>{title}</h1>\
<p>{intro}</p>{notice}{summary}\
<form method=\"post\" action=\"/lapor/{inst}\" enctype=\"multipart/form-data\" novalidate>\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"form_id\" value=\"{form_id}\">\
<input type=\"hidden\" name=\"lang\" value=\"{lang_code}\">\
{name_field}{contact_field}\
<label for=\"category\">{category_label} *</label>{category_error}\
<select id=\"category\" name=\"category\" required aria-required=\"true\"{category_attrs}>{options}</select>\
{description_field}\
<fieldset><legend>{location_legend}</legend>{address_field}\
<input type=\"hidden\" id=\"latitude\" name=\"latitude\" value=\"{lat}\">\
<input type=\"hidden\" id=\"longitude\" name=\"longitude\" value=\"{long}\">\
<button type=\"button\" class=\"secondary\" id=\"geo\" hidden data-wait=\"{wait}\" data-done=\"{done}\" data-fail=\"{fail}\">{geo}</button>\
<p id=\"geo-status\" role=\"status\" aria-live=\"polite\"></p></fieldset>\
<label for=\"photo\">{photo_label}</label><span class=\"hint\" id=\"photo-hint\">{photo_hint}</span>{photo_error}\
<input type=\"file\" id=\"photo\" name=\"photo\" accept=\"image/jpeg,image/png,image/webp,image/gif\"{photo_attrs}>\
<button type=\"submit\">{send}</button></form>",
        inst = escape(name),
        other_code = other.code(),
        other_name = other.name(),
        intro = lang.pick(
            "Laporkan masalah layanan publik. Kolom bertanda * wajib diisi.",
            "Report a problem with a public service. Fields marked * are required."
        ),
        summary = page::error_summary(lang, problems),
        csrf = escape(&posted.csrf),
        form_id = escape(&posted.form_id),
        lang_code = lang.code(),
        name_field = text(
            "name",
            lang.pick("Nama lengkap", "Full name"),
            &f.name,
            None,
            "text",
            Some("name")
        )
        .render(),
        contact_field = text(
            "contact",
            lang.pick("Nomor HP atau email", "Phone number or email"),
            &f.contact,
            Some(lang.pick(
                "Untuk mengirim nomor pelacakan dan tanggapan petugas.",
                "We send the tracking number and the agency's replies here."
            )),
            "text",
            Some("tel")
        )
        .render(),
        category_label = lang.pick("Kategori", "Category"),
        description_field = text(
            "description",
            lang.pick("Uraian aduan", "What is the problem?"),
            &f.description,
            Some(lang.pick("Apa, di mana, sejak kapan.", "What, where, since when.")),
            "text",
            None
        )
        .render(),
        location_legend = lang.pick("Lokasi (opsional)", "Location (optional)"),
        address_field = text(
            "address",
            lang.pick("Alamat atau patokan", "Address or landmark"),
            &f.address,
            None,
            "text",
            Some("street-address")
        )
        .render(),
        lat = escape(&f.latitude),
        long = escape(&f.longitude),
        wait = lang.pick("Mencari lokasi…", "Finding your location…"),
        done = lang.pick("Lokasi Anda ditambahkan.", "Your location was added."),
        fail = lang.pick(
            "Lokasi tidak tersedia. Isi alamat saja.",
            "Location unavailable. Enter an address instead."
        ),
        geo = lang.pick("Gunakan lokasi saya", "Use my location"),
        photo_label = lang.pick("Foto", "Photo"),
        send = lang.pick("Kirim aduan", "Send complaint"),
    );
    page::layout(lang, title, &body, Some(page::LOCATION_SCRIPT))
}

/// The answer to an accepted complaint: its tracking number and what happens next.
fn accepted_page(
    name: &str,
    form: &Open311,
    lang: Lang,
    receipt: &aduan_adapter::Receipt,
) -> String {
    let number = aduan_open311::adapter::service_request_id(receipt);
    let heading = if receipt.duplicate {
        lang.pick(
            "Aduan ini sudah kami terima",
            "We already have this complaint",
        )
    } else {
        lang.pick(
            "Aduan Anda telah diterima",
            "Your complaint has been received",
        )
    };
    let body = format!(
        "<div class=\"ok\" role=\"status\"><h1>{heading}</h1>\
<p>{label}</p><p class=\"tracking\" id=\"tracking\">{number}</p></div>\
<h2>{next}</h2><p>{steps}</p><p>{notice}</p>\
<p><a href=\"/lapor/{inst}?lang={code}\">{again}</a></p>",
        label = lang.pick("Nomor pelacakan:", "Tracking number:"),
        number = escape(number),
        next = lang.pick("Apa selanjutnya", "What happens next"),
        steps = lang.pick(
            "Simpan nomor ini. Petugas akan menindaklanjuti aduan Anda dan mengirim tanggapan melalui nomor HP atau email yang Anda berikan. Sebutkan nomor ini setiap kali menanyakan aduan Anda.",
            "Keep this number. The agency will follow up your complaint and reply to the phone number or email you gave. Quote this number whenever you ask about it."
        ),
        notice = escape(form.service_notice()),
        inst = escape(name),
        code = lang.code(),
        again = lang.pick("Kirim aduan lain", "Send another complaint"),
    );
    page::layout(lang, heading, &body, None)
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
