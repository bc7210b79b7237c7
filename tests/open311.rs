//! Open311 GeoReport v2 end to end: the endpoints at `/open311/v2/<instance>/`
//! through the real gateway into a real Redis stream.
//!
//! The instances are `channels/open311/fixtures/instances.toml`; requests are
//! the fixtures beside it and each accepted one must add exactly its golden
//! `<fixture>.expected.json` to the stream (validated against the schema),
//! once: a client's retry of the same request is a duplicate with the same
//! `service_request_id`. Refused requests and every `GET` add nothing.

mod common;

use aduan_adapter::testkit::Answer;
use common::table::{self, Case};
use serde_json::{Value, json};

const BOGOR: &str = "/open311/v2/bogor-311";
const DEPOK: &str = "/open311/v2/depok-311";
const FMS_KEY: &str = "fms-bogor-2026-kunci-1";
const NOTICE: &str =
    "Laporan diteruskan ke Dinas PUPR Kabupaten Bogor; tindak lanjut paling lambat 3 hari kerja.";

/// The instances of the fixtures, and whatever sections a test adds.
fn config(extra: &str) -> String {
    format!(
        "{}\n{extra}",
        common::fixtures("open311").text("instances.toml")
    )
}

/// The body of fixture `name`, a form without its final line end.
fn body(name: &str) -> Vec<u8> {
    let fixtures = common::fixtures("open311");
    if name.ends_with(".form") {
        fixtures.text(name).into_bytes()
    } else {
        fixtures.bytes(name)
    }
}

/// Fixture `name` posted to `requests.json` with its media type.
fn post(label: &str, name: &str) -> Case {
    let case = Case::post(label, format!("{BOGOR}/requests.json"));
    if name.ends_with(".form") {
        case.form(body(name))
    } else {
        case.json(body(name))
    }
}

/// The answer to an accepted request, whatever its id.
fn created() -> Answer {
    Answer::Json(json!([{"service_request_id": "*", "service_notice": NOTICE}]))
}

/// Fixture `name` accepted with its golden documents, then sent again as a
/// client retries: the same answer, nothing added.
fn accepted(label: &str, name: &str) -> Case {
    post(label, name)
        .status(201)
        .answer_type("application/json")
        .answer(created())
        .adds_golden(common::fixtures("open311").golden(name))
        .redelivered()
}

/// The standard's error answer: one `{code, description}` per description.
fn errors(status: u16, descriptions: &[&str]) -> Answer {
    let list: Vec<Value> = descriptions
        .iter()
        .map(|d| json!({"code": status, "description": d}))
        .collect();
    Answer::Json(Value::from(list))
}

/// A form of `pairs`, as a client encodes it.
fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

/// A request that passes every check, with `name` set to `value` (or
/// removed, for `None`).
fn good_with(name: &str, value: Option<&str>) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = [
        ("api_key", FMS_KEY),
        ("service_code", "SAMPAH"),
        ("lat", "-6.4764"),
        ("long", "106.8283"),
        ("email", "rina.wulandari@example.id"),
        ("description", "Sampah menumpuk di depan pasar."),
    ]
    .into_iter()
    .filter(|(n, _)| *n != name)
    .collect();
    if let Some(value) = value {
        pairs.push((name, value));
    }
    form(&pairs)
}

/// `body` posted as a form, refused with `status` and these descriptions.
fn refused(label: &str, body: Vec<u8>, status: u16, descriptions: &[&str]) -> Case {
    Case::post(label, format!("{BOGOR}/requests.json"))
        .form(body)
        .status(status)
        .answer_type("application/json")
        .answer(errors(status, descriptions))
}

/// The `service_request_id` of an accepted request's answer.
fn request_id(body: &str) -> String {
    let answer: Value = serde_json::from_str(body).expect("the answer is JSON");
    answer[0]["service_request_id"]
        .as_str()
        .expect("a service_request_id")
        .to_string()
}

#[tokio::test]
async fn form_and_json_requests_land_in_the_stream_once() {
    let mut app = common::spawn_app(&config("")).await;
    let answered = table::run(
        &app,
        [
            accepted("a FixMyStreet-style form", "pothole.form"),
            accepted("JSON with an address only", "rubbish.json"),
            accepted("an address id, a device, a list", "streetlight_device.form"),
            accepted("JSON numbers and attributes", "account.json"),
            accepted("anonymous", "anonymous.json"),
        ],
    )
    .await;
    // The id the client is given is the complaint's tracking number.
    let tracked = app.tracked_complaints().await;
    for a in &answered {
        let id = a.added[0]["id"].as_str().expect("an id");
        let doc = tracked
            .iter()
            .find(|d| d["id"] == id)
            .expect("the complaint");
        assert_eq!(
            request_id(&a.body),
            doc["tracking"].as_str().expect("a tracking number"),
            "{}",
            a.label
        );
    }
    assert_eq!(app.stream_len().await, 5);
    app.stop().await;
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_is_a_duplicate() {
    let mut app = common::spawn_app(&config("")).await;
    let keyed = |label: &str, body: Vec<u8>| {
        Case::post(label, format!("{BOGOR}/requests.json"))
            .header("Idempotency-Key", "fms-4821-percobaan-1")
            .form(body)
            .status(201)
            .answer(created())
    };
    let answered = table::run(
        &app,
        [
            keyed("first", body("pothole.form"))
                .adds(vec![json!("*")])
                .redelivered(),
            // The key names the request: a retry whose body the client
            // built again (another description) is still the first request.
            keyed(
                "the same key, the body built again",
                good_with("api_key", Some(FMS_KEY)),
            ),
            // Without the key, that body is a request of its own.
            Case::post("another request", format!("{BOGOR}/requests.json"))
                .form(good_with("api_key", Some(FMS_KEY)))
                .status(201)
                .answer(created())
                .adds(vec![json!("*")]),
        ],
    )
    .await;
    let first = &answered[0].added[0];
    assert_eq!(first["external_id"], "fms-4821-percobaan-1");
    assert_eq!(first["sender"]["id"], "mailto:budi.santoso@example.id");
    let id = request_id(&answered[0].body);
    assert_eq!(request_id(&answered[1].body), id);
    assert_ne!(request_id(&answered[2].body), id);
    assert_eq!(app.stream_len().await, 2);
    app.stop().await;
}

#[tokio::test]
async fn refused_requests_write_nothing() {
    let media = "the body must be application/x-www-form-urlencoded or application/json";
    let mut app = common::spawn_app(&config("")).await;
    let fixtures = common::fixtures("open311");
    table::run(
        &app,
        [
            refused(
                "missing api_key",
                good_with("api_key", None),
                403,
                &["api_key was not provided"],
            ),
            refused(
                "wrong api_key",
                good_with("api_key", Some("depok-kunci-2026")),
                403,
                &["api_key is invalid"],
            ),
            refused(
                "unknown service_code",
                good_with("service_code", Some("BANJIR")),
                404,
                &["service_code was not found"],
            ),
            refused(
                "missing service_code",
                good_with("service_code", None),
                400,
                &["service_code was not provided"],
            ),
            post("missing location", "missing_location.form")
                .status(400)
                .answer(fixtures.answer("missing_location.form")),
            post("every field error at once", "invalid_fields.form")
                .status(400)
                .answer(fixtures.answer("invalid_fields.form")),
            refused(
                "missing description",
                good_with("description", None),
                400,
                &["description was not provided"],
            ),
            refused(
                "lat not a number",
                good_with("lat", Some("-6,4764")),
                400,
                &["lat must be a number between -90 and 90"],
            ),
            refused(
                "long out of range",
                good_with("long", Some("-200")),
                400,
                &["long must be a number between -180 and 180"],
            ),
            refused(
                "another jurisdiction",
                good_with("jurisdiction_id", Some("depok.go.id")),
                404,
                &["jurisdiction_id was not found"],
            ),
            Case::post("plain text", format!("{BOGOR}/requests.json"))
                .header("content-type", "text/plain; charset=utf-8")
                .body(good_with("api_key", Some(FMS_KEY)))
                .status(415)
                .answer(errors(415, &[media])),
            post("truncated JSON", "malformed.json")
                .status(400)
                .answer(errors(400, &["the body is not JSON"])),
            Case::post("an unknown instance", "/open311/v2/tidak-ada/requests.json")
                .form(good_with("api_key", Some(FMS_KEY)))
                .status(404)
                .answer(Answer::json(r#"{"error": "unknown_instance"}"#)),
        ],
    )
    .await;
    assert_eq!(app.stream_len().await, 0);
    let metrics = app.metrics().await;
    let rejected = |reason: &str| {
        common::counter(
            &metrics,
            "aduan_requests_rejected_total",
            &[
                ("route", "open311"),
                ("instance", "bogor-311"),
                ("reason", reason),
            ],
        )
    };
    assert_eq!(rejected("unauthorized"), 2.0, "{metrics}");
    assert_eq!(rejected("media_type"), 1.0);
    app.stop().await;
}

/// A `GET` of `path` under the instance answered `status` with the answer
/// file `answers/<file>`, adding nothing.
fn read(path: &str, status: u16, file: &str) -> Case {
    let bytes = common::fixtures("open311").bytes(&format!("answers/{file}"));
    let (answer, content_type) = if file.ends_with(".xml") {
        (
            Answer::text(&String::from_utf8(bytes).expect("UTF-8")),
            "text/xml; charset=utf-8",
        )
    } else {
        (
            Answer::Json(serde_json::from_slice(&bytes).expect("JSON")),
            "application/json; charset=utf-8",
        )
    };
    Case::get(path, format!("{BOGOR}/{path}"))
        .status(status)
        .answer_type(content_type)
        .answer(answer)
}

#[tokio::test]
async fn services_and_definitions_are_answered_and_nothing_is_written() {
    let mut app = common::spawn_app(&config("")).await;
    table::run(
        &app,
        [
            read("services.json", 200, "services.json"),
            read("services.xml", 200, "services.xml"),
            read(
                "services.xml?jurisdiction_id=bogorkab.go.id",
                200,
                "services.xml",
            ),
            read("services/JALAN-RUSAK.json", 200, "JALAN-RUSAK.json"),
            read("services/JALAN-RUSAK.xml", 200, "JALAN-RUSAK.xml"),
            read("services/SAMPAH.json", 200, "SAMPAH.json"),
            read("services/BANJIR.json", 404, "unknown_service.json"),
            read("services/BANJIR.xml", 404, "unknown_service.xml"),
            read(
                "services.xml?jurisdiction_id=depok.go.id",
                404,
                "unknown_jurisdiction.xml",
            ),
            read("requests.json", 405, "requests_get.json"),
            read("discovery.json", 404, "unknown_resource.json"),
            Case::get("an unknown instance", "/open311/v2/tidak-ada/services.json")
                .status(404)
                .answer(Answer::json(r#"{"error": "unknown_instance"}"#)),
            Case::get("the instance alone", BOGOR)
                .status(404)
                .answer(Answer::json(r#"{"error": "not_found"}"#)),
        ],
    )
    .await;
    assert_eq!(app.stream_len().await, 0);
    app.stop().await;
}

#[tokio::test]
async fn raw_keeps_the_request_without_its_api_key() {
    let mut app = common::spawn_app(&config("")).await;
    let sent = form(&[
        ("service_code", "SAMPAH"),
        ("api_key", "depok-kunci-2026"),
        ("address_string", "Jl. Margonda Raya, Depok"),
        ("phone", "0857-1122-3344"),
        ("description", "Tumpukan sampah di trotoar."),
    ]);
    let answered = table::run(
        &app,
        [Case::post("kept raw", format!("{DEPOK}/requests.json"))
            .form(sent)
            .status(201)
            .adds_any(1)],
    )
    .await;
    let doc = &answered[0].added[0];
    assert_eq!(
        doc["raw"],
        json!({
            "content_type": "application/x-www-form-urlencoded",
            "body": "service_code=SAMPAH&address_string=Jl.+Margonda+Raya%2C+Depok\
                     &phone=0857-1122-3344&description=Tumpukan+sampah+di+trotoar."
        })
    );
    assert_eq!(
        doc["recipient"],
        Value::Null,
        "depok-311 names no jurisdiction"
    );
    assert_eq!(doc["sender"]["id"], "tel:+6285711223344");
    app.stop().await;
}

#[tokio::test]
async fn a_citizen_over_the_sender_limit_is_told_to_wait() {
    let mut app = common::spawn_app(&config(
        "[limits.instances.bogor-311]\nper_sender_per_minute = 1\n",
    ))
    .await;
    table::run(
        &app,
        [
            Case::post("first report", format!("{BOGOR}/requests.json"))
                .form(good_with("description", Some("Sampah di depan pasar.")))
                .status(201)
                .adds_any(1),
            Case::post("the same citizen again", format!("{BOGOR}/requests.json"))
                .form(good_with("description", Some("Sampah di belakang pasar.")))
                .status(429)
                .retry_after()
                .answer_type("application/json")
                .answer(errors(429, &["too many requests, try again later"])),
        ],
    )
    .await;
    app.stop().await;
}

/// A client that speaks XML (FixMyStreet's stock sender) posts to
/// `requests.xml` and reads `<service_requests>` back; its refusals come as
/// `<errors>`. The complaint is the same as for `requests.json`.
#[tokio::test]
async fn requests_xml_is_answered_in_xml() {
    let mut app = common::spawn_app(&config("")).await;
    let resp = app
        .client
        .post(app.url(&format!("{BOGOR}/requests.xml")))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", "fms-xml-1")
        .body(good_with("api_key", Some(FMS_KEY)))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 201);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/xml")),
        "{:?}",
        resp.headers()
    );
    let answer = resp.text().await.expect("body");
    let docs = app.tracked_complaints().await;
    assert_eq!(docs.len(), 1);
    let id = docs[0]["tracking"].as_str().expect("tracking");
    assert!(
        answer.contains("<service_requests>")
            && answer.contains("<request>")
            && answer.contains(&format!("<service_request_id>{id}</service_request_id>")),
        "{answer}"
    );
    assert_eq!(docs[0]["provider"], "open311");

    // Another instance, so that the refusal counts apart from the other tests'.
    let refused = app
        .client
        .post(app.url(&format!("{DEPOK}/requests.xml")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(good_with("api_key", Some("kunci-salah")))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 403);
    let text = refused.text().await.expect("body");
    assert!(
        text.contains("<errors>") && text.contains("<code>403</code>"),
        "{text}"
    );
    assert_eq!(app.stream_len().await, 1, "a refusal writes nothing");
    app.stop().await;
}
