//! The citizen form (`/lapor/<instance>`) and the agent form (`/agent`):
//! their guards and outcomes over HTTP, then both pages driven in headless
//! Chromium (`tests/browser/forms.py`, with axe-core's accessibility check),
//! each outcome found in Redis.
//!
//! `uploads`: the citizen form's body, read as it arrives; `sessions`: the
//! CSRF tokens, the origin check and the agents' sessions.
//!
//! The browser test needs what `scripts/test` installs: Debian's `chromium`
//! and `chromium-driver`, a Python with `selenium` (`ADUAN_BROWSER_PYTHON`)
//! and axe-core's `axe.min.js` (`ADUAN_AXE_JS`). Missing, it fails.

mod common;
#[path = "web_forms/sessions.rs"]
mod sessions;
#[path = "web_forms/uploads.rs"]
mod uploads;

use common::TestApp;
use serde_json::Value;

const TOKEN: &str = "pusat-panggilan-bogor-2026";
/// A JPEG's first bytes, then filler: what the form sniffs as a photo.
const JPEG: &[u8] =
    b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00foto-jalan-berlubang";

fn config(blobs: &std::path::Path, web: &str) -> String {
    format!(
        "{}\n[[instances]]\nname = \"cc-bogor\"\nkind = \"transcript\"\ntokens = [\"{TOKEN}\"]\n\n\
         [blobs]\ndir = \"{}\"\n\n[web]\n{web}\n",
        common::fixtures("open311").text("instances.toml"),
        blobs.display()
    )
}

/// The value of `name="…" value="…"` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("the field is on the page") + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The `name=value` of each `Set-Cookie`.
fn cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.to_string())
        .collect()
}

/// A fetched form: its CSRF cookie and hidden fields.
struct Form {
    cookie: String,
    csrf: String,
    form_id: String,
}

async fn open_form(app: &TestApp) -> Form {
    let response = app.get("/lapor/bogor-311").await;
    assert_eq!(response.status(), 200);
    let set = cookies(&response);
    let cookie = set
        .iter()
        .find(|c| c.starts_with("aduan_csrf="))
        .expect("a CSRF cookie")
        .clone();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let page = response.text().await.expect("page");
    Form {
        cookie: cookie.split(';').next().unwrap_or_default().to_string(),
        csrf: hidden(&page, "csrf"),
        form_id: hidden(&page, "form_id"),
    }
}

/// A multipart body of `fields` and, when given, the photo.
fn multipart(fields: &[(&str, &str)], photo: Option<&[u8]>) -> (String, Vec<u8>) {
    let boundary = "----aduanbatas7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some(bytes) = photo {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"jalan.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(
    app: &TestApp,
    cookie: &str,
    fields: &[(&str, &str)],
    photo: Option<&[u8]>,
) -> (u16, String) {
    let (content_type, body) = multipart(fields, photo);
    let response = app
        .client
        .post(app.url("/lapor/bogor-311"))
        .header("content-type", content_type)
        .header("cookie", cookie)
        .body(body)
        .send()
        .await
        .expect("posted");
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

fn complete(form: &Form) -> Vec<(&str, &str)> {
    vec![
        ("csrf", form.csrf.as_str()),
        ("form_id", form.form_id.as_str()),
        ("name", "Siti Rahayu"),
        ("contact", "0812-3456-7890"),
        ("category", "JALAN-RUSAK"),
        (
            "description",
            "Lubang besar di Jl. Pajajaran depan SD Negeri 3.",
        ),
        ("address", "Jl. Pajajaran No. 12, Bogor"),
    ]
}

/// The text of `<p class="tracking" id="tracking">…</p>`.
fn tracking_on(page: &str) -> String {
    let start = page
        .find("id=\"tracking\">")
        .expect("a tracking number on the page")
        + 14;
    page[start..]
        .split('<')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_citizen_form_becomes_one_complaint_with_its_photo_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(dir.path(), "")).await;
    let page = app.get("/lapor/bogor-311").await;
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.starts_with("default-src 'none'") && !policy.contains("unsafe-inline"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"id\"") && html.contains("Jalan rusak atau berlubang"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );

    let form = open_form(&app).await;
    let (status, answer) = post_form(&app, &form.cookie, &complete(&form), Some(JPEG)).await;
    assert_eq!(status, 201, "{answer}");
    let number = tracking_on(&answer);
    // The same page sent twice (a double tap) is the same complaint.
    let (status, again) = post_form(&app, &form.cookie, &complete(&form), Some(JPEG)).await;
    assert_eq!(status, 201);
    assert_eq!(tracking_on(&again), number);
    assert!(again.contains("sudah kami terima"));

    let docs = app.tracked_complaints().await;
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_eq!(doc["tracking"], number.as_str());
    assert_eq!(doc["channel"], "web");
    assert_eq!(doc["provider"], "web_form");
    assert_eq!(doc["sender"]["phone"], "+6281234567890");
    assert_eq!(doc["subject"], "Jalan rusak atau berlubang");
    let photo = &doc["attachments"][0];
    assert_eq!(photo["content_type"], "image/jpeg");
    let key = photo["storage_key"].as_str().expect("stored");
    assert_eq!(std::fs::read(dir.path().join(key)).expect("the blob"), JPEG);
    app.stop().await;
}

#[tokio::test]
async fn a_refused_form_says_what_to_fix_and_keeps_what_was_typed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(
        dir.path(),
        "submissions_per_minute = 5\nmax_photo_bytes = 100000",
    ))
    .await;
    let form = open_form(&app).await;

    // No description, and a file that is no image.
    let mut fields = complete(&form);
    fields.retain(|(k, _)| *k != "description");
    let (status, page) =
        post_form(&app, &form.cookie, &fields, Some(b"MZ\x90\x00 not a photo")).await;
    assert_eq!(status, 400);
    assert!(page.contains("href=\"#description\"") && page.contains("href=\"#photo\""));
    assert!(
        page.contains("value=\"Siti Rahayu\"") && page.contains("value=\"JALAN-RUSAK\" selected")
    );

    // A photo over `max_photo_bytes`, past the body limit too: refused by its
    // `Content-Length` (413) before the photo is read, named, the rest kept.
    let mut big = JPEG.to_vec();
    big.resize(600_000, 0x55);
    let (status, page) = post_form(&app, &form.cookie, &complete(&form), Some(&big)).await;
    assert_eq!(status, 413);
    assert!(page.contains("href=\"#photo\"") && page.contains("paling besar 97 KB"));
    assert!(page.contains("value=\"Siti Rahayu\""));

    // Without the cookie's token: 403, nothing written, the typing kept.
    let (status, page) = post_form(
        &app,
        "aduan_csrf=00000000000000000000000000000000",
        &complete(&form),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(page.contains("value=\"Siti Rahayu\""));

    // An unknown category and a bad phone number are named, in English when asked.
    let mut fields = complete(&form);
    fields.retain(|(k, _)| *k != "category" && *k != "contact");
    fields.extend([("category", "TIDAK-ADA"), ("contact", "12"), ("lang", "en")]);
    let (status, page) = post_form(&app, &form.cookie, &fields, None).await;
    assert_eq!(status, 400);
    assert!(page.contains("<html lang=\"en\"") && page.contains("href=\"#category\""));

    // The fifth post of this minute is the last one taken from this address.
    let (status, _) = post_form(&app, &form.cookie, &complete(&form), None).await;
    assert_eq!(status, 201);
    let (status, page) = post_form(&app, &form.cookie, &complete(&form), None).await;
    assert_eq!(status, 429);
    assert!(page.contains("value=\"Siti Rahayu\""));
    assert_eq!(app.tracked_complaints().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_agent_signs_in_and_a_call_sent_twice_is_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(dir.path(), "behind_tls = true")).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = app.get("/agent").await;
    let csrf_cookie = cookies(&page)[0].split(';').next().unwrap().to_string();
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    let sign_in = |token: &'static str| {
        no_redirects
            .post(app.url("/agent/sign-in"))
            .header("cookie", csrf_cookie.clone())
            .form(&[("csrf", csrf.as_str()), ("token", token)])
            .send()
    };
    assert_eq!(sign_in("salah").await.unwrap().status(), 401);
    let signed = sign_in(TOKEN).await.unwrap();
    assert_eq!(signed.status(), 303);
    let session = cookies(&signed)
        .into_iter()
        .find(|c| c.starts_with("aduan_agent="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/agent"] {
        assert!(session.contains(attribute), "{session}");
    }
    let both = format!("{csrf_cookie}; {}", session.split(';').next().unwrap());
    let send = || {
        app.client
            .post(app.url("/agent"))
            .header("cookie", both.clone())
            .form(&[
                ("csrf", csrf.as_str()),
                ("agent_id", "agt-017"),
                ("call_id", "call-2026-12-02-0042"),
                ("caller_phone", "0857 1122 3344"),
                ("transcript", "Penelepon: Air PDAM mati sejak kemarin."),
                ("turns", "1"),
            ])
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first = first.text().await.unwrap();
    let second = send().await.unwrap().text().await.unwrap();
    assert!(second.contains("data-duplicate=\"true\""));
    assert_eq!(tracking_on(&first), tracking_on(&second));
    let docs = app.tracked_complaints().await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["channel"], "call_center");
    assert_eq!(docs[0]["tracking"], tracking_on(&first).as_str());
    // Without a session the form asks to sign in, and nothing is sent.
    let anonymous = app
        .client
        .post(app.url("/agent"))
        .header("cookie", csrf_cookie.clone())
        .form(&[
            ("csrf", csrf.as_str()),
            ("call_id", "x"),
            ("agent_id", "a"),
            ("transcript", "t"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn both_pages_work_in_headless_chromium_and_pass_axe() {
    let python = std::env::var("ADUAN_BROWSER_PYTHON").unwrap_or_else(|_| "python3".into());
    let axe = std::env::var("ADUAN_AXE_JS")
        .expect("ADUAN_AXE_JS names axe-core's axe.min.js (scripts/test installs it)");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = common::spawn_app(&config(dir.path(), "")).await;
    let photo = dir.path().join("jalan.jpg");
    std::fs::write(&photo, JPEG).unwrap();
    let mut command = tokio::process::Command::new(python);
    command.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/browser/forms.py"
    ));
    command.args([
        "--base",
        &app.url(""),
        "--instance",
        "bogor-311",
        "--token",
        TOKEN,
    ]);
    command.args([
        "--axe",
        &axe,
        "--photo",
        &photo.to_string_lossy(),
        "--call-id",
        "call-browser-1",
    ]);
    if let Ok(shots) = std::env::var("ADUAN_SCREENSHOTS") {
        command.args(["--shots", &shots]);
    }
    let out = command.output().await.expect("the browser script runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "the browser script printed no report:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(report.get("error").is_none(), "{report:#}");
    for (page, violations) in report["axe"].as_object().expect("axe results") {
        assert_eq!(violations, &Value::Array(vec![]), "axe on {page}");
    }
    let citizen = &report["citizen"];
    assert_eq!(citizen["problems"], serde_json::json!(["description"]));
    assert_eq!(citizen["kept_name"], "Siti Rahayu");
    assert_eq!(citizen["kept_category"], "JALAN-RUSAK");
    assert_eq!(
        citizen["geo_button_shown"], true,
        "with JavaScript on, the location button appears"
    );
    let agent = &report["agent"];
    assert_eq!(agent["first"]["duplicate"], false);
    assert_eq!(agent["again"]["duplicate"], true);
    assert_eq!(agent["again"]["tracking"], agent["first"]["tracking"]);

    let docs = app.tracked_complaints().await;
    assert_eq!(docs.len(), 2, "one complaint from each page");
    let web = docs
        .iter()
        .find(|d| d["channel"] == "web")
        .expect("the form's complaint");
    assert_eq!(web["tracking"], citizen["tracking"]);
    let key = web["attachments"][0]["storage_key"]
        .as_str()
        .expect("the photo was stored");
    assert_eq!(std::fs::read(dir.path().join(key)).unwrap(), JPEG);
    let call = docs
        .iter()
        .find(|d| d["channel"] == "call_center")
        .expect("the call");
    assert_eq!(call["tracking"], agent["first"]["tracking"]);
    app.stop().await;
}

#[tokio::test]
async fn an_open311_media_url_is_fetched_into_the_store() {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let photos = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/foto/lubang.jpg",
        get(|| async { ([("content-type", "image/jpeg")], JPEG) }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let dir = tempfile::tempdir().expect("tempdir");
    let ns = common::unique("webmedia");
    let config = format!(
        "[outbound]\nevents_stream = \"test:{ns}:events\"\nstream = \"test:{ns}:outbound\"\n\
         delivery_stream = \"test:{ns}:delivery\"\n\n[media]\nstream = \"test:{ns}:media\"\n\n\
         [blobs]\ndir = \"{}\"\n\n\
         [[instances]]\nname = \"kota-311\"\nkind = \"open311\"\napi_keys = [\"kunci-kota\"]\n\n\
         [[instances.services]]\nservice_code = \"JALAN\"\nservice_name = \"Jalan rusak\"\n\n\
         [instances.media]\nallow_private_addresses = true\n",
        dir.path().display()
    );
    let mut app = common::spawn_app_with(&config, &common::redis_url(), &ns).await;
    let media_url = format!("http://{photos}/foto/lubang.jpg");
    let answer = app
        .client
        .post(app.url("/open311/v2/kota-311/requests.json"))
        .form(&[
            ("api_key", "kunci-kota"),
            ("service_code", "JALAN"),
            ("lat", "-6.5944"),
            ("long", "106.7892"),
            ("description", "Lubang di depan pasar."),
            ("media_url", media_url.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let mut conn = app.conn().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let stored = loop {
        let reply: redis::streams::StreamRangeReply =
            redis::AsyncCommands::xrange_all(&mut conn, format!("{}:events", app.prefix))
                .await
                .expect("xrange");
        let found = reply
            .ids
            .iter()
            .filter_map(|e| e.get::<String>("event"))
            .filter_map(|s| serde_json::from_str::<Value>(&s).ok())
            .find(|e| e["type"] == "attachment_stored");
        if let Some(event) = found {
            break event;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no attachment_stored event"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let key = stored["storage_key"].as_str().expect("a storage key");
    assert_eq!(std::fs::read(dir.path().join(key)).unwrap(), JPEG);
    assert_eq!(stored["content_type"], "image/jpeg");
    app.stop().await;
}
