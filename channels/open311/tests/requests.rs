//! The Open311 adapter against the fixtures in `fixtures/`, without a gateway.
//!
//! The instances are those of `fixtures/instances.toml`, read as the gateway
//! reads them. Each accepted request must become the whole documents of its
//! golden `<fixture>.expected.json` (the files `tests/open311.rs` checks the
//! stream against); each refused one the standard's error answer; each
//! `GET` the answer files under `fixtures/answers/`.

use aduan_adapter::testkit::{self, Answer, Case, Fixtures, OwnedRequest};
use aduan_adapter::{Adapter, Context, Outcome};
use aduan_open311::{Open311, Open311Config};
use serde::Deserialize as _;
use serde_json::{Value, json};

const FMS_KEY: &str = "fms-bogor-2026-kunci-1";
const APP_KEY: &str = "app-kota-2026";
const BOGOR: &str = "/open311/v2/bogor-311";
const NOTICE: &str =
    "Laporan diteruskan ke Dinas PUPR Kabupaten Bogor; tindak lanjut paling lambat 3 hari kerja.";

fn fixtures() -> Fixtures {
    Fixtures::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

/// The settings of instance `name` in `fixtures/instances.toml`: its table
/// less the keys the gateway reads itself.
fn settings(name: &str) -> Open311Config {
    let text = fixtures().text("instances.toml");
    let doc: toml::Table = toml::from_str(&text).expect("instances.toml is TOML");
    let instances = doc["instances"].as_array().expect("[[instances]]");
    let mut table = instances
        .iter()
        .filter_map(toml::Value::as_table)
        .find(|t| t.get("name").and_then(toml::Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no instance {name}"))
        .clone();
    for key in ["name", "kind", "keep_raw"] {
        table.remove(key);
    }
    Open311Config::deserialize(table).expect("valid settings")
}

fn bogor() -> Open311 {
    Open311::new(settings("bogor-311")).expect("valid settings")
}

fn ctx(keep_raw: bool) -> Context<'static> {
    testkit::context("bogor-311", keep_raw)
}

/// The body of fixture `name`, a form without its final line end.
fn body(name: &str) -> Vec<u8> {
    if name.ends_with(".form") {
        fixtures().text(name).into_bytes()
    } else {
        fixtures().bytes(name)
    }
}

/// Fixture `name` posted to `requests.json` with its media type.
fn post(name: &str) -> OwnedRequest {
    let request = OwnedRequest::post(&format!("{BOGOR}/requests.json"));
    if name.ends_with(".form") {
        request.form(body(name))
    } else {
        request.json(body(name))
    }
}

/// The answer to an accepted request.
fn created() -> Answer {
    Answer::Json(json!([{"service_request_id": "*", "service_notice": NOTICE}]))
}

/// Fixture `name` accepted as the documents of its golden file.
fn accepted(name: &str) -> Case {
    Case::new(name, post(name))
        .status(201)
        .content_type("application/json")
        .answer(created())
        .golden(fixtures().golden(name))
}

/// The standard's error answer: one `{code, description}` per description.
fn errors(status: u16, descriptions: &[&str]) -> Answer {
    let list: Vec<Value> = descriptions
        .iter()
        .map(|d| json!({"code": status, "description": d}))
        .collect();
    Answer::Json(Value::from(list))
}

/// `request` refused with `status` and these descriptions.
fn refused(label: &str, request: OwnedRequest, status: u16, descriptions: &[&str]) -> Case {
    Case::new(label, request)
        .status(status)
        .content_type("application/json")
        .answer(errors(status, descriptions))
}

/// A form body of `pairs`, encoded as a client encodes it.
fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

/// The pairs of a request that passes every check, with `api_key`.
fn good(key: &str) -> Vec<(&str, &str)> {
    vec![
        ("api_key", key),
        ("service_code", "SAMPAH"),
        ("lat", "-6.4764"),
        ("long", "106.8283"),
        ("description", "Sampah menumpuk di depan pasar."),
    ]
}

/// `good(FMS_KEY)` with `name` set to `value` (or removed, for `None`).
fn good_with(name: &str, value: Option<&str>) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = good(FMS_KEY)
        .into_iter()
        .filter(|(n, _)| *n != name)
        .collect();
    if let Some(value) = value {
        pairs.push((name, value));
    }
    form(&pairs)
}

fn post_form(pairs: Vec<u8>) -> OwnedRequest {
    OwnedRequest::post(&format!("{BOGOR}/requests.json")).form(pairs)
}

#[test]
fn fixtures_normalize() {
    testkit::run(
        &bogor(),
        &ctx(false),
        [
            accepted("pothole.form"),
            accepted("rubbish.json"),
            accepted("streetlight_device.form"),
            accepted("account.json"),
            accepted("anonymous.json"),
        ],
    );
}

#[test]
fn an_idempotency_key_is_the_external_id() {
    let request = post("pothole.form").header("Idempotency-Key", "fms-4821-percobaan");
    testkit::run(
        &bogor(),
        &ctx(false),
        [Case::new("pothole with a key", request)
            .status(201)
            .answer(created())
            .golden(fixtures().golden("pothole.form"))
            .with("external_id", json!("fms-4821-percobaan"))],
    );
}

#[test]
fn raw_keeps_the_body_without_the_api_key() {
    // A form keeps every other pair byte for byte.
    let form = fixtures().text("pothole.form");
    let without = form
        .split('&')
        .filter(|pair| !pair.starts_with("api_key="))
        .collect::<Vec<_>>()
        .join("&");
    // A JSON object is written again without the member.
    let mut json: Value = serde_json::from_slice(&body("rubbish.json")).expect("JSON");
    json.as_object_mut().expect("object").remove("api_key");
    testkit::run(
        &bogor(),
        &ctx(true),
        [
            accepted("pothole.form").with(
                "raw",
                testkit::raw("application/x-www-form-urlencoded", without.as_bytes()),
            ),
            accepted("rubbish.json").with(
                "raw",
                testkit::raw("application/json", json.to_string().as_bytes()),
            ),
        ],
    );
}

#[test]
fn the_same_request_twice_is_the_same_complaint() {
    let once = |request: &OwnedRequest| match testkit::handle(&bogor(), &ctx(false), request) {
        Ok(Outcome::Accept { complaints, .. }) => complaints[0].external_id.clone(),
        other => panic!("accepted expected, got {other:?}"),
    };
    let first = once(&post("anonymous.json"));
    assert!(first.starts_with("sha256:"), "{first}");
    assert_eq!(once(&post("anonymous.json")), first);
    // The same fields as a form are the same request.
    let pairs = form(&[
        ("api_key", APP_KEY),
        ("service_code", "SAMPAH"),
        ("lat", "-6.4764"),
        ("long", "106.8283"),
        (
            "description",
            "Ada yang membuang sampah ke sungai di bawah jembatan setiap malam.",
        ),
    ]);
    assert_eq!(once(&post_form(pairs)), first);
    // Another description is another request.
    assert_ne!(
        once(&post_form(good_with("description", Some("Lain.")))),
        first
    );
}

#[test]
fn keys_are_checked_before_anything_else() {
    testkit::run(
        &bogor(),
        &ctx(false),
        [
            refused(
                "missing api_key",
                post_form(good_with("api_key", None)),
                403,
                &["api_key was not provided"],
            ),
            refused(
                "empty api_key",
                post_form(good_with("api_key", Some(""))),
                403,
                &["api_key was not provided"],
            ),
            refused(
                "wrong api_key",
                post_form(form(&good("fms-bogor-2025-kunci-lama"))),
                403,
                &["api_key is invalid"],
            ),
            refused(
                "a prefix of a key",
                post_form(form(&good("fms-bogor-2026-kunci-"))),
                403,
                &["api_key is invalid"],
            ),
            refused(
                "api_key twice",
                post_form(form(&[good(FMS_KEY), vec![("api_key", APP_KEY)]].concat())),
                403,
                &["api_key was given more than once"],
            ),
            refused(
                "api_key in JSON, wrong",
                OwnedRequest::post(&format!("{BOGOR}/requests.json"))
                    .json(r#"{"api_key": "salah", "service_code": "SAMPAH"}"#),
                403,
                &["api_key is invalid"],
            ),
            // Without a key, even a body with every other problem is 403.
            refused(
                "missing api_key, nothing else right",
                post_form(form(&[("service_code", "TIDAK-ADA")])),
                403,
                &["api_key was not provided"],
            ),
        ],
    );
}

#[test]
fn field_errors_are_reported_together() {
    testkit::run(
        &bogor(),
        &ctx(false),
        [
            Case::new("invalid_fields.form", post("invalid_fields.form"))
                .status(400)
                .answer(fixtures().answer("invalid_fields.form")),
            Case::new("missing_location.form", post("missing_location.form"))
                .status(400)
                .answer(fixtures().answer("missing_location.form")),
            refused(
                "missing description",
                post_form(good_with("description", None)),
                400,
                &["description was not provided"],
            ),
            refused(
                "blank description",
                post_form(good_with("description", Some(" \n "))),
                400,
                &["description was not provided"],
            ),
            refused(
                "lat not a number",
                post_form(good_with("lat", Some("enam koma empat"))),
                400,
                &["lat must be a number between -90 and 90"],
            ),
            refused(
                "long out of range",
                post_form(good_with("long", Some("186.83"))),
                400,
                &["long must be a number between -180 and 180"],
            ),
            refused(
                "lat without long",
                post_form(good_with("long", None)),
                400,
                &["long is required with lat"],
            ),
            refused(
                "missing service_code",
                post_form(good_with("service_code", None)),
                400,
                &["service_code was not provided"],
            ),
            refused(
                "a required attribute missing",
                post_form(form(&[
                    ("api_key", FMS_KEY),
                    ("service_code", "PJU-MATI"),
                    ("address_string", "Gang Masjid, Cibinong"),
                    ("description", "Lampu mati."),
                    ("attribute[kondisi][]", ""),
                ])),
                400,
                &["attribute[kondisi] is required"],
            ),
            refused(
                "a list value the service does not have",
                post_form(form(&[
                    ("api_key", FMS_KEY),
                    ("service_code", "PJU-MATI"),
                    ("address_string", "Gang Masjid, Cibinong"),
                    ("description", "Lampu mati."),
                    ("attribute[kondisi][]", "mati"),
                    ("attribute[kondisi][]", "padam"),
                ])),
                400,
                &["attribute[kondisi] must be one of the service's values"],
            ),
            refused(
                "a single value given twice",
                post_form(form(&[
                    ("api_key", FMS_KEY),
                    ("service_code", "JALAN-RUSAK"),
                    ("address_id", "BGR-1"),
                    ("description", "Jalan rusak."),
                    ("attribute[kedalaman]", "10"),
                    ("attribute[kedalaman]", "12"),
                ])),
                400,
                &["attribute[kedalaman] takes one value"],
            ),
            refused(
                "wrong JSON types",
                OwnedRequest::post(&format!("{BOGOR}/requests.json")).json(
                    r#"{"api_key": "app-kota-2026", "service_code": "JALAN-RUSAK", "address_id": "BGR-1",
                        "description": true, "email": ["a@example.id"],
                        "attribute": {"kedalaman": {"cm": 5}}, "tambahan": {"diabaikan": true}}"#,
                ),
                400,
                // In the order of the members' names, as JSON objects are read.
                &[
                    "attribute[kedalaman] must be a string or a list of strings",
                    "description must be a string",
                    "email must be a string",
                ],
            ),
            refused(
                "an Idempotency-Key that is no key",
                post_form(form(&good(FMS_KEY))).header("Idempotency-Key", &"k".repeat(256)),
                400,
                &["Idempotency-Key must be 1 to 255 visible ASCII characters"],
            ),
            refused(
                "truncated JSON",
                post("malformed.json"),
                400,
                &["the body is not JSON"],
            ),
            refused(
                "JSON that is not an object",
                OwnedRequest::post(&format!("{BOGOR}/requests.json"))
                    .json(r#"[{"api_key": "app-kota-2026"}]"#),
                400,
                &["the body is not a JSON object"],
            ),
        ],
    );
}

#[test]
fn what_does_not_exist_is_404() {
    testkit::run(
        &bogor(),
        &ctx(false),
        [
            refused(
                "unknown service_code",
                post_form(good_with("service_code", Some("BANJIR"))),
                404,
                &["service_code was not found"],
            ),
            refused(
                "another jurisdiction",
                post_form(good_with("jurisdiction_id", Some("depok.go.id"))),
                404,
                &["jurisdiction_id was not found"],
            ),
            refused(
                "a resource the standard does not have",
                OwnedRequest::post(&format!("{BOGOR}/tokens/123.json")).form(form(&good(FMS_KEY))),
                404,
                &["resource was not found"],
            ),
        ],
    );
}

#[test]
fn other_media_types_and_methods_are_refused() {
    let media = "the body must be application/x-www-form-urlencoded or application/json";
    testkit::run(
        &bogor(),
        &ctx(false),
        [
            refused(
                "plain text",
                OwnedRequest::post(&format!("{BOGOR}/requests.json"))
                    .header("content-type", "text/plain")
                    .body(form(&good(FMS_KEY))),
                415,
                &[media],
            ),
            refused(
                "multipart",
                OwnedRequest::post(&format!("{BOGOR}/requests.json"))
                    .header("content-type", "multipart/form-data; boundary=x")
                    .body("--x--"),
                415,
                &[media],
            ),
            refused(
                "no content type",
                OwnedRequest::post(&format!("{BOGOR}/requests.json")).body(form(&good(FMS_KEY))),
                415,
                &[media],
            ),
            refused(
                "PUT requests.json",
                OwnedRequest::new("PUT", &format!("{BOGOR}/requests.json"))
                    .form(form(&good(FMS_KEY))),
                405,
                &["method not allowed"],
            ),
            refused(
                "POST services.json",
                OwnedRequest::post(&format!("{BOGOR}/services.json")).form(form(&good(FMS_KEY))),
                405,
                &["method not allowed"],
            ),
        ],
    );
}

/// A `GET` of `path` under the instance answered `status` with the answer
/// file `answers/<file>`.
fn read(path: &str, status: u16, file: &str) -> Case {
    let answer = if file.ends_with(".xml") {
        Answer::text(
            &String::from_utf8(fixtures().bytes(&format!("answers/{file}"))).expect("UTF-8"),
        )
    } else {
        Answer::Json(
            serde_json::from_slice(&fixtures().bytes(&format!("answers/{file}"))).expect("JSON"),
        )
    };
    let content_type = if file.ends_with(".xml") {
        "text/xml; charset=utf-8"
    } else {
        "application/json; charset=utf-8"
    };
    Case::new(path, OwnedRequest::get(&format!("{BOGOR}/{path}")))
        .status(status)
        .content_type(content_type)
        .answer(answer)
}

#[test]
fn services_and_definitions_are_answered_and_write_nothing() {
    testkit::run(
        &bogor(),
        &ctx(false),
        [
            read("services.json", 200, "services.json"),
            read("services.xml", 200, "services.xml"),
            read(
                "services.json?jurisdiction_id=bogorkab.go.id",
                200,
                "services.json",
            ),
            read("services.xml?jurisdiction_id=", 200, "services.xml"),
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
            read("services.csv", 404, "unknown_resource.json"),
        ],
    );
}

#[test]
fn settings_problems_are_reported() {
    let problem = |extra: &str| {
        let text = format!("api_keys = [\"k\"]\n{extra}");
        let cfg: Open311Config = toml::from_str(&text).expect("valid TOML");
        Open311::new(cfg).expect_err("refused")
    };
    let service = "[[services]]\nservice_code = \"A\"\nservice_name = \"A\"\n";
    assert_eq!(problem(""), "services: at least one service is required");
    assert_eq!(
        problem(&format!("{service}{service}")),
        "services[1].service_code: `A` is listed twice"
    );
    assert!(
        problem("[[services]]\nservice_code = \"a/b\"\nservice_name = \"A\"\n")
            .starts_with("services[0].service_code: expected 1 to 64 letters")
    );
    assert_eq!(
        problem(&format!(
            "{service}[[services.attributes]]\ncode = \"x\"\ndatatype = \"singlevaluelist\"\ndescription = \"X?\"\n"
        )),
        "services[0].attributes[0].values: a singlevaluelist needs at least one value"
    );
    assert_eq!(
        problem(&format!(
            "{service}[[services.attributes]]\ncode = \"x\"\ndatatype = \"number\"\ndescription = \"X?\"\nvalues = [{{ key = \"1\", name = \"satu\" }}]\n"
        )),
        "services[0].attributes[0].values: only a singlevaluelist or multivaluelist has values"
    );
    assert!(problem(&format!("default_region = \"XX\"\n{service}")).starts_with("default_region"));
    let cfg: Result<Open311Config, _> =
        toml::from_str(&format!("api_keys = [\"k\"]\nkunci = 1\n{service}"));
    assert!(cfg.is_err(), "unknown keys are refused");
    let cfg: Open311Config =
        toml::from_str(&format!("api_keys = [\"k\", \"k\"]\n{service}")).expect("TOML");
    assert_eq!(
        Open311::new(cfg).expect_err("refused"),
        "api_keys[1]: the same key is listed twice"
    );
}

#[test]
fn a_refusal_of_verify_has_the_standard_shape() {
    // The gateway counts and answers what `verify` refuses with the
    // adapter's own form; the form must hold the standard's shape there too.
    let adapter = bogor();
    let request = post_form(good_with("api_key", None));
    let refusal = adapter.verify(&request.as_request()).expect_err("refused");
    let reply = adapter.rejected(&refusal);
    assert_eq!(reply.status, 403);
    errors(403, &["api_key was not provided"]).check("rejected", &reply.body);
}
