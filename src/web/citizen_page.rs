//! The citizen form's pages: the form (filled in again, with what to fix)
//! and the answer with the tracking number, in the page's language.

use aduan_adapter::FieldError;

use super::citizen::FormPage;
use super::page::{self, Field, Lang, escape};
use super::upload::{PhotoProblem, Posted};

/// Each field error as the page tells it, in the page's language.
pub(super) fn localized(lang: Lang, errors: &[FieldError]) -> Vec<(String, String)> {
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

pub(super) fn photo_message(lang: Lang, problem: PhotoProblem, max: usize) -> String {
    let mib = size_text(max);
    match problem {
        PhotoProblem::TooLarge => match lang {
            Lang::Id => format!("Foto terlalu besar: paling besar {mib}."),
            Lang::En => format!("The photo is too large: {mib} at most."),
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
pub(super) fn form_page(
    page: &FormPage<'_>,
    posted: &Posted,
    csrf: &str,
    problems: &[(String, String)],
    notice: Option<&str>,
) -> String {
    let FormPage {
        web,
        name,
        form,
        lang,
    } = *page;
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
    let mib = size_text(web.cfg.max_photo_bytes);
    let photo_hint = match lang {
        Lang::Id => format!("Opsional. JPEG, PNG, WebP atau GIF, paling besar {mib}."),
        Lang::En => format!("Optional. JPEG, PNG, WebP or GIF, {mib} at most."),
    };
    let (category_head, category_attrs) = Field {
        name: "category",
        label: lang.pick("Kategori", "Category"),
        value: "",
        hint: None,
        error: error("category"),
        required: true,
        kind: "",
        multiline: false,
        autocomplete: None,
    }
    .head();
    let (photo_head, photo_attrs) = Field {
        name: "photo",
        label: lang.pick("Foto", "Photo"),
        value: "",
        hint: Some(&photo_hint),
        error: error("photo"),
        required: false,
        kind: "file",
        multiline: false,
        autocomplete: None,
    }
    .head();
    let notice = page::notice(notice);
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
{category_head}<select {category_attrs}>{options}</select>\
{description_field}\
<fieldset><legend>{location_legend}</legend>{address_field}\
<input type=\"hidden\" id=\"latitude\" name=\"latitude\" value=\"{lat}\">\
<input type=\"hidden\" id=\"longitude\" name=\"longitude\" value=\"{long}\">\
<button type=\"button\" class=\"secondary\" id=\"geo\" hidden data-wait=\"{wait}\" data-done=\"{done}\" data-fail=\"{fail}\">{geo}</button>\
<p id=\"geo-status\" role=\"status\" aria-live=\"polite\"></p></fieldset>\
{photo_head}<input type=\"file\" {photo_attrs} accept=\"image/jpeg,image/png,image/webp,image/gif\">\
<button type=\"submit\">{send}</button></form>",
        inst = escape(name),
        other_code = other.code(),
        other_name = other.name(),
        intro = lang.pick(
            "Laporkan masalah layanan publik. Kolom bertanda * wajib diisi.",
            "Report a problem with a public service. Fields marked * are required."
        ),
        summary = page::error_summary(lang, problems),
        csrf = escape(csrf),
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
        send = lang.pick("Kirim aduan", "Send complaint"),
    );
    page::layout(lang, title, &body, Some(page::LOCATION_SCRIPT))
}

/// The answer to an accepted complaint: its tracking number and what happens next.
pub(super) fn accepted_page(page: &FormPage<'_>, receipt: &aduan_adapter::Receipt) -> String {
    let FormPage {
        name, form, lang, ..
    } = *page;
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

/// A size limit as a person reads it: `10 MB`, or `97 KB` under a
/// megabyte, rounded down so that a file of the size shown always fits.
fn size_text(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB {
        format!("{} MB", bytes / MIB)
    } else {
        format!("{} KB", bytes / 1024)
    }
}
