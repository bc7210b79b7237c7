//! Input hygiene across every adapter and every door.
//!
//! Each case takes a valid request in its provider's format (a fixture where
//! one exists, signed as the provider signs it), writes control characters,
//! decomposed Unicode, bidirectional controls and zero-width characters into
//! the fields people type (names, subjects, texts, captions, file names,
//! place names, ids where the provider allows anything), and runs `verify`
//! and `parse`. Every string of every document must then be NFC and hold no
//! control character (free text: none but line feed and tab), no
//! bidirectional control, no zero-width character outside free text and no
//! joiner where it joins nothing, and the document must validate against
//! `schema/complaint.v1.json`. The strings come from a small deterministic
//! generator, so a failure names a seed that reproduces it.
//!
//! The doors that bypass `Adapter::parse` are run too: the SMTP intake, the
//! MIME step the IMAP poller calls, the transcript import, the citizen
//! form's submission, and the update step the Telegram long-polling loop
//! calls.
//!
//! Last, the routes whose providers send one fixed content type answer `415`
//! to any other.

use std::path::PathBuf;
use std::sync::OnceLock;

use aduan_adapter::verify::{base64_encode, hmac_sha256};
use aduan_adapter::{Adapter, Context, Outcome, Rejection, Reply, Request, Timestamp};
use aduan_email::{Envelope, MailIntake as _, MimeLimits, SmtpEnvelope};
use serde_json::{Value, json};

/// Cases per adapter; each draws fresh strings.
const ROUNDS: u64 = 40;

const INSTANCE: &str = "hygiene";
const SECRET: &str = "rahasia-uji-kebersihan";
/// 2026-11-22T08:20:00Z, the clock handed to every adapter.
const NOW: i64 = 1_795_335_600;
const X_ACCOUNT: &str = "1460000000000000001";
const TWILIO_BASE: &str = "https://lapor.example.go.id";

// ---------------------------------------------------------------------------
// The generator.

/// Control characters: C0 (with the whitespace ones), an escape sequence, DEL, C1.
const CONTROLS: &[&str] = &[
    "\u{0}",
    "\u{1}",
    "\u{7}",
    "\u{8}",
    "\u{1b}[2J",
    "\u{7f}",
    "\u{80}",
    "\u{85}",
    "\u{9b}",
    "\u{9f}",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\u{b}",
    "\u{c}",
];

/// Control characters that a raw email header line can carry: no CR or LF.
const HEADER_CONTROLS: &[&str] = &[
    "\u{0}",
    "\u{1}",
    "\u{7}",
    "\u{8}",
    "\u{1b}[2J",
    "\u{7f}",
    "\u{b}",
    "\u{c}",
];

/// Bidirectional controls: embeddings, overrides, isolates and the three marks.
const BIDI: &[&str] = &[
    "\u{202a}", "\u{202b}", "\u{202c}", "\u{202d}", "\u{202e}", "\u{2066}", "\u{2067}", "\u{2068}",
    "\u{2069}", "\u{200e}", "\u{200f}", "\u{61c}",
];

/// Zero-width characters and joiners, alone and in an emoji sequence.
const ZERO_WIDTH: &[&str] = &[
    "\u{200b}",
    "\u{2060}",
    "\u{feff}",
    "\u{200c}",
    "\u{200d}",
    "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}",
];

/// Sequences that are not NFC: decomposed accents, jamo, canonical singletons,
/// marks out of canonical order, a lone combining mark.
const DECOMPOSED: &[&str] = &[
    "e\u{301}",
    "A\u{30a}",
    "o\u{308}",
    "n\u{303}",
    "\u{1100}\u{1161}",
    "\u{2126}",
    "\u{212b}",
    "i\u{302}\u{323}",
    "\u{301}",
];

/// xorshift64*: small, deterministic, good enough to spread insertions.
struct Gen(u64);

impl Gen {
    fn new(seed: u64) -> Self {
        Gen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    /// `base` with four to seven pieces inserted at random places: always at
    /// least one of `controls` (when given), one decomposed sequence, one
    /// bidirectional control and one zero-width character or joiner.
    fn inject(&mut self, base: &str, controls: &[&str]) -> String {
        // A lone combining mark (the last one) is NFC at the start of a
        // string, so the piece that makes every string non-NFC is another.
        let mut pieces = vec![
            self.pick(&DECOMPOSED[..DECOMPOSED.len() - 1]),
            self.pick(BIDI),
            self.pick(ZERO_WIDTH),
        ];
        if !controls.is_empty() {
            pieces.push(self.pick(controls));
        }
        for _ in 0..self.below(4) {
            let set = if controls.is_empty() || self.coin() {
                DECOMPOSED
            } else {
                controls
            };
            pieces.push(self.pick(set));
        }
        let mut chars: Vec<String> = base.chars().map(String::from).collect();
        for piece in pieces {
            let at = self.below(chars.len() + 1);
            chars.insert(at, piece.to_string());
        }
        chars.concat()
    }

    /// Control characters of every kind and decomposed sequences.
    fn dirty(&mut self, base: &str) -> String {
        self.inject(base, CONTROLS)
    }

    /// Decomposed sequences and invisible characters, no control character,
    /// for fields that refuse control characters.
    fn decomposed(&mut self, base: &str) -> String {
        self.inject(base, &[])
    }

    /// What a raw header line can hold: no CR or LF.
    fn header(&mut self, base: &str) -> String {
        self.inject(base, HEADER_CONTROLS)
    }
}

// ---------------------------------------------------------------------------
// What every document must be.

/// Fields whose value is free text: line feeds and tabs are allowed there.
fn is_free_text(path: &str) -> bool {
    path == "text"
        || (path.starts_with("attachments[") && path.ends_with("].caption"))
        || (path.starts_with("call.segments[") && path.ends_with("].text"))
}

/// Bidirectional controls: removed from every field.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

/// ZWNJ and ZWJ.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200c}' | '\u{200d}')
}

/// The invisible characters `s` (the value at `path`) must not hold: any
/// bidirectional control; in free text U+FEFF; elsewhere U+200B, U+2060 and
/// U+FEFF, and a joiner that does not stand between two characters outside
/// ASCII (it joins nothing there).
fn invisible_left(path: &str, s: &str) -> Vec<char> {
    let chars: Vec<char> = s.chars().collect();
    let joinable = |c: Option<&char>| c.is_some_and(|c| !c.is_ascii() && !c.is_whitespace());
    let mut bad = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        let wrong = if is_bidi(c) {
            true
        } else if is_free_text(path) {
            c == '\u{feff}'
        } else if matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}') {
            true
        } else if is_joiner(c) {
            let before = chars[..i].iter().rev().find(|c| !is_joiner(**c));
            let after = chars[i + 1..].iter().find(|c| !is_joiner(**c));
            !(joinable(before) && joinable(after))
        } else {
            false
        };
        if wrong {
            bad.push(c);
        }
    }
    bad
}

/// Every string under `value`, with its path.
fn strings<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                strings(v, at, out);
            }
        }
        _ => {}
    }
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = repo().join("schema/complaint.v1.json");
        let schema: Value = serde_json::from_slice(&std::fs::read(&path).expect("schema file"))
            .expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("schema compiles")
    })
}

/// Panics unless every string of `doc` keeps the rules, and `doc` validates.
fn assert_clean(doc: &Value, case: &str) {
    let mut found = Vec::new();
    strings(doc, String::new(), &mut found);
    for (path, s) in found {
        // `raw` is the exact bytes received, by design.
        if path.starts_with("raw.") {
            continue;
        }
        let allowed = |c: char| is_free_text(&path) && (c == '\n' || c == '\t');
        let bad: Vec<char> = s
            .chars()
            .filter(|c| c.is_control() && !allowed(*c))
            .collect();
        assert!(bad.is_empty(), "{case}: {path} holds {bad:?} in {s:?}");
        let hidden = invisible_left(&path, s);
        assert!(
            hidden.is_empty(),
            "{case}: {path} holds {hidden:?} in {s:?}"
        );
        assert!(
            unicode_normalization::is_nfc(s),
            "{case}: {path} is not NFC: {s:?}"
        );
    }
    // The gateway assigns the id at acceptance; any ULID stands in for it.
    let mut doc = doc.clone();
    doc["id"] = "01JDAT3E4G5H6J7K8M9N0PQRST".into();
    let errors: Vec<String> = validator()
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{case}: {errors:?}");
}

// ---------------------------------------------------------------------------
// Requests.

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(rel: &str) -> Vec<u8> {
    let path = repo().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture's JSON with the strings at `edits` (JSON pointers) replaced.
fn edited(rel: &str, edits: &[(&str, String)]) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&fixture(rel)).expect("fixture is JSON");
    for (pointer, text) in edits {
        let slot = value
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{rel}: no {pointer}"));
        *slot = Value::String(text.clone());
    }
    serde_json::to_vec(&value).expect("serializes")
}

/// A form body from decoded pairs.
fn form(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A fixture form (or query) as decoded pairs, with `edits` replacing or adding values.
fn edited_form(rel: &str, edits: &[(&str, String)]) -> Vec<(String, String)> {
    let text = String::from_utf8(fixture(rel)).expect("fixture is text");
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(text.trim_end().as_bytes())
        .into_owned()
        .collect();
    for (name, value) in edits {
        match pairs.iter_mut().find(|(k, _)| k == name) {
            Some(pair) => pair.1 = value.clone(),
            None => pairs.push((name.to_string(), value.clone())),
        }
    }
    pairs
}

/// A request the test owns, lent out as a [`Request`].
struct Owned {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Owned {
    fn new(method: &str, uri: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(value).expect("header value"),
            );
        }
        Owned {
            method: method.parse().expect("method"),
            uri: uri.parse().expect("uri"),
            headers: map,
            body: body.into(),
        }
    }

    fn request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

fn ctx() -> Context<'static> {
    Context {
        instance: INSTANCE,
        received_at: Timestamp::from_unix_seconds(NOW).expect("in range"),
        keep_raw: true,
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    )
}

fn meta_signature(body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(SECRET.as_bytes(), body))
    )
}

/// The documents of an outcome, split-message parts included.
fn documents(outcome: Outcome) -> Vec<Value> {
    let complaints = match outcome {
        Outcome::Accept { complaints, .. } | Outcome::AcceptWithBlobs { complaints, .. } => {
            complaints
        }
        Outcome::Fragments(parts) => parts.into_iter().map(|p| p.complaint).collect(),
        Outcome::Reply(_) => Vec::new(),
    };
    complaints
        .iter()
        .map(|c| serde_json::to_value(c).expect("serializes"))
        .collect()
}

/// `verify` then `parse`, as the gateway calls them; the request must be accepted.
fn through(adapter: &dyn Adapter, req: &Owned, case: &str) -> Vec<Value> {
    let req = req.request();
    if let Err(e) = adapter.verify(&req) {
        panic!("{case}: refused by verify: {e:?}");
    }
    match adapter.parse(&req, &ctx()) {
        Ok(outcome) => documents(outcome),
        Err(e) => panic!("{case}: refused by parse: {e:?}"),
    }
}

// ---------------------------------------------------------------------------
// The adapters, built once with literal secrets.

fn config<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("valid configuration")
}

fn meta_config() -> aduan_meta::MetaConfig {
    config(json!({"app_secret": SECRET, "verify_token": "token-verifikasi"}))
}

struct Adapters {
    whatsapp: aduan_meta::WhatsApp,
    messenger: aduan_meta::Messenger,
    instagram: aduan_meta::Instagram,
    telegram: aduan_telegram::Telegram,
    x: aduan_x::X,
    transcripts: aduan_transcript::Transcripts,
    twilio: aduan_sms::Twilio,
    vonage: aduan_sms::Vonage,
    infobip: aduan_sms::Infobip,
    generic: aduan_sms::GenericSms,
    mailgun: aduan_email::Mailgun,
    sendgrid: aduan_email::SendGrid,
    postmark: aduan_email::Postmark,
    smtp: aduan_email::SmtpIntake,
    open311: aduan_open311::Open311,
}

fn adapters() -> &'static Adapters {
    static ADAPTERS: OnceLock<Adapters> = OnceLock::new();
    ADAPTERS.get_or_init(|| {
        let telegram = match aduan_telegram::build(
            INSTANCE,
            true,
            config(json!({"secret_token": SECRET, "bot_username": "LaporBogorBot"})),
        ) {
            Ok(aduan_telegram::Intake::Webhook(bot)) => bot,
            _ => panic!("a webhook bot"),
        };
        Adapters {
            whatsapp: aduan_meta::WhatsApp::new(meta_config()).expect("whatsapp"),
            messenger: aduan_meta::Messenger::new(meta_config()).expect("messenger"),
            instagram: aduan_meta::Instagram::new(meta_config()).expect("instagram"),
            telegram,
            x: aduan_x::X::new(config(
                json!({"consumer_secret": SECRET, "account_id": X_ACCOUNT}),
            ))
            .expect("x"),
            transcripts: aduan_transcript::Transcripts::new(config(json!({"tokens": [SECRET]})))
                .expect("transcripts"),
            twilio: aduan_sms::Twilio::new(config(
                json!({"auth_token": SECRET, "public_url": TWILIO_BASE}),
            ))
            .expect("twilio"),
            vonage: aduan_sms::Vonage::new(config(json!({}))).expect("vonage"),
            infobip: aduan_sms::Infobip::new(config(
                json!({"username": "infobip", "secret": SECRET}),
            ))
            .expect("infobip"),
            generic: aduan_sms::GenericSms::new(config(json!({"auth": "query", "secret": SECRET})))
                .expect("generic sms"),
            mailgun: aduan_email::Mailgun::new(config(json!({"signing_key": SECRET})))
                .expect("mailgun"),
            sendgrid: aduan_email::SendGrid::new(config(
                json!({"username": "sendgrid", "password": SECRET}),
            ))
            .expect("sendgrid"),
            postmark: aduan_email::Postmark::new(config(
                json!({"username": "postmark", "password": SECRET}),
            ))
            .expect("postmark"),
            smtp: aduan_email::SmtpIntake::new(config(
                json!({"addresses": ["pengaduan@lapor.example.go.id"]}),
            ))
            .expect("smtp"),
            open311: aduan_open311::Open311::new(config(json!({
                "api_keys": [SECRET],
                "services": [{
                    "service_code": "SAMPAH",
                    "service_name": "Sampah tidak diangkut",
                    "description": "Sampah rumah tangga tidak diangkut sesuai jadwal.",
                    "group": "Kebersihan"
                }]
            })))
            .expect("open311"),
        }
    })
}

// ---------------------------------------------------------------------------
// One request per provider format, from the generator's strings.

const WA: &str = "/entry/0/changes/0/value";

fn whatsapp(g: &mut Gen) -> Vec<Owned> {
    let bodies = [
        edited(
            "channels/meta/fixtures/whatsapp/text.json",
            &[
                (
                    &format!("{WA}/contacts/0/profile/name"),
                    g.dirty("Siti Rahmawati"),
                ),
                (
                    &format!("{WA}/messages/0/text/body"),
                    g.dirty("Lampu jalan di Jl. Pajajaran mati."),
                ),
                (
                    &format!("{WA}/messages/0/id"),
                    g.dirty("wamid.HBgNNjI4MTIzNDU2Nzg5MBUC"),
                ),
            ],
        ),
        edited(
            "channels/meta/fixtures/whatsapp/document.json",
            &[
                (
                    &format!("{WA}/messages/0/document/caption"),
                    g.dirty("Bukti pembayaran PBB"),
                ),
                (
                    &format!("{WA}/messages/0/document/filename"),
                    g.dirty("bukti bayar.pdf"),
                ),
            ],
        ),
        edited(
            "channels/meta/fixtures/whatsapp/location.json",
            &[
                (
                    &format!("{WA}/messages/0/location/name"),
                    g.dirty("SDN 3 Cibinong"),
                ),
                (
                    &format!("{WA}/messages/0/location/address"),
                    g.dirty("Jl. Tegar Beriman No. 3"),
                ),
            ],
        ),
    ];
    bodies.into_iter().map(signed_meta("whatsapp")).collect()
}

fn signed_meta(kind: &'static str) -> impl Fn(Vec<u8>) -> Owned {
    move |body| {
        let sig = meta_signature(&body);
        Owned::new(
            "POST",
            &format!("/webhooks/{kind}/{INSTANCE}"),
            &[
                ("content-type", "application/json"),
                ("x-hub-signature-256", &sig),
            ],
            body,
        )
    }
}

fn messenger(g: &mut Gen) -> Vec<Owned> {
    let bodies = [
        edited(
            "channels/meta/fixtures/messenger/text.json",
            &[(
                "/entry/0/messaging/0/message/text",
                g.dirty("Lampu penerangan jalan mati total."),
            )],
        ),
        edited(
            "channels/meta/fixtures/messenger/feed_comment.json",
            &[
                (
                    "/entry/0/changes/0/value/from/name",
                    g.dirty("Budi Santoso"),
                ),
                (
                    "/entry/0/changes/0/value/message",
                    g.dirty("Jembatan di Desa Sukamaju retak."),
                ),
            ],
        ),
    ];
    bodies.into_iter().map(signed_meta("messenger")).collect()
}

fn instagram(g: &mut Gen) -> Vec<Owned> {
    let bodies = [
        edited(
            "channels/meta/fixtures/instagram/text.json",
            &[(
                "/entry/0/messaging/0/message/text",
                g.dirty("Trotoar dipakai parkir liar."),
            )],
        ),
        edited(
            "channels/meta/fixtures/instagram/comment.json",
            &[
                (
                    "/entry/0/changes/0/value/from/username",
                    g.dirty("warga.cibinong"),
                ),
                (
                    "/entry/0/changes/0/value/text",
                    g.dirty("Saluran air di RT 04 mampet."),
                ),
            ],
        ),
    ];
    bodies.into_iter().map(signed_meta("instagram")).collect()
}

fn telegram_bodies(g: &mut Gen) -> Vec<Vec<u8>> {
    let dir = "channels/telegram/fixtures";
    vec![
        edited(
            &format!("{dir}/message_text.json"),
            &[
                ("/message/from/first_name", g.dirty("Budi")),
                ("/message/from/username", g.dirty("budi_s")),
                ("/message/text", g.dirty("Sampah menumpuk di pasar.")),
            ],
        ),
        edited(
            &format!("{dir}/message_document.json"),
            &[
                ("/message/from/last_name", g.dirty("Rahmawati")),
                ("/message/caption", g.dirty("Surat keluhan warga")),
                ("/message/document/file_name", g.dirty("surat keluhan.pdf")),
            ],
        ),
        edited(
            &format!("{dir}/message_venue.json"),
            &[
                ("/message/venue/title", g.dirty("Pasar Cibinong")),
                ("/message/venue/address", g.dirty("Jl. Tegar Beriman No. 1")),
            ],
        ),
    ]
}

fn telegram(g: &mut Gen) -> Vec<Owned> {
    telegram_bodies(g)
        .into_iter()
        .map(|body| {
            Owned::new(
                "POST",
                &format!("/webhooks/telegram/{INSTANCE}"),
                &[
                    ("content-type", "application/json"),
                    ("x-telegram-bot-api-secret-token", SECRET),
                ],
                body,
            )
        })
        .collect()
}

fn x(g: &mut Gen) -> Vec<Owned> {
    let dm = "/direct_message_events/0/message_create/message_data/text";
    let bodies = [
        edited(
            "channels/x/fixtures/dm_text.json",
            &[
                (dm, g.dirty("Lampu jalan di Jl. Raya Bogor mati.")),
                ("/users/1234567890123456789/name", g.dirty("Dewi Lestari")),
                (
                    "/users/1234567890123456789/screen_name",
                    g.dirty("dewilestari"),
                ),
            ],
        ),
        edited(
            "channels/x/fixtures/tweet_mention.json",
            &[
                (
                    "/tweet_create_events/0/extended_tweet/full_text",
                    g.dirty("@pupr_bogor Jalan berlubang di depan SDN 3."),
                ),
                ("/tweet_create_events/0/user/name", g.dirty("Andi Wijaya")),
            ],
        ),
    ];
    bodies
        .into_iter()
        .map(|body| {
            let sig = format!(
                "sha256={}",
                base64_encode(&hmac_sha256(SECRET.as_bytes(), &body))
            );
            Owned::new(
                "POST",
                &format!("/webhooks/x/{INSTANCE}"),
                &[
                    ("content-type", "application/json"),
                    ("x-twitter-webhooks-signature", &sig),
                ],
                body,
            )
        })
        .collect()
}

fn transcript_bodies(g: &mut Gen) -> Vec<Vec<u8>> {
    let dir = "channels/transcript/fixtures";
    vec![
        edited(
            &format!("{dir}/plain.json"),
            &[
                // Ids refuse control characters outright (`400`); their
                // composition is still normalized.
                ("/call_id", g.decomposed("JKT-20261122-000123")),
                ("/agent/name", g.dirty("Siti Rahayu")),
                ("/caller/name", g.dirty("Budi Santoso")),
                ("/category", g.dirty("Infrastruktur Jalan")),
                ("/text", g.dirty("Penelepon melaporkan jalan berlubang.")),
            ],
        ),
        edited(
            &format!("{dir}/location_recording.json"),
            &[
                ("/segments/0/speaker", g.dirty("Agen")),
                ("/segments/0/text", g.dirty("Kami menindaklanjuti laporan.")),
                ("/segments/1/text", g.dirty("Betul, sudah seminggu padam.")),
                ("/location/name", g.dirty("Halte Kiaracondong")),
                ("/location/address", g.dirty("Jl. Soekarno-Hatta")),
            ],
        ),
    ]
}

fn transcript(g: &mut Gen) -> Vec<Owned> {
    let auth = format!("Bearer {SECRET}");
    transcript_bodies(g)
        .into_iter()
        .map(|body| {
            Owned::new(
                "POST",
                "/v1/transcripts",
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body,
            )
        })
        .collect()
}

fn twilio(g: &mut Gen) -> Vec<Owned> {
    let forms = [
        edited_form(
            "channels/sms/fixtures/twilio/sms.form",
            &[
                ("Body", g.dirty("LAPOR Jalan berlubang di depan SDN 3")),
                ("ProfileName", g.dirty("Budi Santoso")),
            ],
        ),
        edited_form(
            "channels/sms/fixtures/twilio/whatsapp_location.form",
            &[
                ("ProfileName", g.dirty("Dewi Lestari")),
                ("Label", g.dirty("SDN 3 Cibinong")),
                ("Address", g.dirty("Jl. Raya Cibinong No. 12")),
            ],
        ),
    ];
    let path = format!("/webhooks/twilio/{INSTANCE}");
    forms
        .into_iter()
        .map(|pairs| {
            let sig = aduan_sms::twilio::signature(
                SECRET.as_bytes(),
                &format!("{TWILIO_BASE}{path}"),
                &pairs,
            );
            Owned::new(
                "POST",
                &path,
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("x-twilio-signature", &sig),
                ],
                form(&pairs),
            )
        })
        .collect()
}

fn vonage(g: &mut Gen) -> Vec<Owned> {
    let single = edited_form(
        "channels/sms/fixtures/vonage/inbound.query",
        &[("text", g.dirty("ADUAN#Lampu jalan mati di Jl. Pahlawan"))],
    );
    // The middle part of a split message: the gateway joins the parts' texts.
    let part = edited_form(
        "channels/sms/fixtures/vonage/concat_2of3.form",
        &[("text", g.dirty("ri. Kami sudah melapor ke kantor cabang"))],
    );
    vec![
        Owned::new(
            "GET",
            &format!("/webhooks/vonage/{INSTANCE}?{}", form(&single)),
            &[],
            Vec::new(),
        ),
        Owned::new(
            "POST",
            &format!("/webhooks/vonage/{INSTANCE}"),
            &[("content-type", "application/x-www-form-urlencoded")],
            form(&part),
        ),
    ]
}

fn infobip(g: &mut Gen) -> Vec<Owned> {
    let body = edited(
        "channels/sms/fixtures/infobip/two_messages.json",
        &[
            (
                "/results/0/text",
                g.dirty("LAPOR Pungutan liar di loket KTP"),
            ),
            ("/results/1/text", g.dirty("Antrian BPJS sangat panjang")),
            ("/results/1/messageId", g.dirty("817790313235066448")),
        ],
    );
    vec![Owned::new(
        "POST",
        &format!("/webhooks/infobip/{INSTANCE}"),
        &[
            ("authorization", &basic("infobip", SECRET)),
            ("content-type", "application/json"),
        ],
        body,
    )]
}

fn open311(g: &mut Gen) -> Vec<Owned> {
    let body = json!({
        "api_key": SECRET,
        "service_code": "SAMPAH",
        "lat": -6.4817,
        "long": 106.8540,
        "address_string": g.dirty("Pasar Cibinong, Jl. Mayor Oking"),
        "email": "dewi.lestari@example.id",
        "first_name": g.dirty("Dewi"),
        "last_name": g.dirty("Lestari"),
        "description": g.dirty("Sampah menumpuk di samping pasar sejak tiga hari"),
        "attribute": {"catatan": g.dirty("bau sampai ke rumah warga")},
    });
    vec![Owned::new(
        "POST",
        &format!("/open311/v2/{INSTANCE}/requests.json"),
        &[("content-type", "application/json")],
        serde_json::to_vec(&body).expect("serializes"),
    )]
}

fn generic(g: &mut Gen) -> Vec<Owned> {
    let body = json!({
        "from": "0812-3456-7890",
        "to": "1708",
        "id": g.dirty("abc-123-def"),
        "text": g.dirty("Lampu lalu lintas di perempatan Ciawi mati"),
    });
    vec![Owned::new(
        "POST",
        &format!("/webhooks/sms/{INSTANCE}?secret={SECRET}"),
        &[("content-type", "application/json")],
        serde_json::to_vec(&body).expect("serializes"),
    )]
}

/// An RFC 2047 encoded word: carries any character, CR and LF included,
/// through a header.
fn encoded_word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", base64_encode(text.as_bytes()))
}

/// A message with a dirty sender name, subject, Message-ID, body and
/// attachment name; headers sometimes raw, sometimes encoded.
fn mime(g: &mut Gen) -> Vec<u8> {
    let name = if g.coin() {
        g.header("Budi Santoso")
    } else {
        encoded_word(&g.dirty("Budi Santoso"))
    };
    let subject = if g.coin() {
        g.header("Jalan berlubang di depan SDN 3")
    } else {
        encoded_word(&g.dirty("Jalan berlubang di depan SDN 3"))
    };
    let message_id = g.header("CAH7x9k2Lq0");
    let filename = encoded_word(&g.dirty("foto jalan.jpg"));
    let body = g.dirty("Selamat pagi,\nJalan berlubang sudah dua minggu.\nMohon ditindaklanjuti.");
    let mut m = String::new();
    m.push_str(&format!("From: {name} <budi.santoso@example.id>\r\n"));
    m.push_str("To: pengaduan@lapor.example.go.id\r\n");
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str("Date: Sun, 22 Nov 2026 08:10:00 +0700\r\n");
    m.push_str(&format!("Message-ID: <{message_id}@mail.example.id>\r\n"));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("Content-Type: multipart/mixed; boundary=\"batas\"\r\n\r\n");
    m.push_str("--batas\r\nContent-Type: text/plain; charset=UTF-8\r\n");
    m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    m.push_str(&base64_encode(body.as_bytes()));
    m.push_str("\r\n--batas\r\nContent-Type: image/jpeg\r\n");
    m.push_str(&format!(
        "Content-Disposition: attachment; filename=\"{filename}\"\r\n"
    ));
    m.push_str("Content-Transfer-Encoding: base64\r\n\r\n/9j/4AAQSkZJRgABAQ==\r\n--batas--\r\n");
    m.into_bytes()
}

fn mailgun(g: &mut Gen) -> Vec<Owned> {
    let timestamp = NOW.to_string();
    let token = "a".repeat(50);
    let signature = aduan_email::Mailgun::signature(SECRET.as_bytes(), &timestamp, &token);
    let mime = String::from_utf8(mime(g)).expect("the generated MIME is UTF-8");
    let pairs = [
        ("timestamp", timestamp),
        ("token", token),
        ("signature", signature),
        ("recipient", "pengaduan@lapor.example.go.id".to_string()),
        ("sender", "budi.santoso@example.id".to_string()),
        ("body-mime", mime),
    ]
    .map(|(k, v)| (k.to_string(), v));
    vec![Owned::new(
        "POST",
        &format!("/webhooks/email/{INSTANCE}"),
        &[("content-type", "application/x-www-form-urlencoded")],
        form(&pairs),
    )]
}

fn sendgrid(g: &mut Gen) -> Vec<Owned> {
    let mut body = Vec::new();
    body.extend_from_slice(b"--kirim\r\nContent-Disposition: form-data; name=\"envelope\"\r\n\r\n");
    body.extend_from_slice(
        br#"{"to":["pengaduan@lapor.example.go.id"],"from":"budi.santoso@example.id"}"#,
    );
    body.extend_from_slice(
        b"\r\n--kirim\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n",
    );
    body.extend_from_slice(&mime(g));
    body.extend_from_slice(b"\r\n--kirim--\r\n");
    vec![Owned::new(
        "POST",
        &format!("/webhooks/email/{INSTANCE}"),
        &[
            ("authorization", &basic("sendgrid", SECRET)),
            ("content-type", "multipart/form-data; boundary=kirim"),
        ],
        body,
    )]
}

fn postmark(g: &mut Gen) -> Vec<Owned> {
    let parsed = edited(
        "channels/email/fixtures/webhooks/postmark-parsed.json",
        &[
            ("/FromName", g.dirty("Dewi Lestari")),
            ("/FromFull/Name", g.dirty("Dewi Lestari")),
            ("/Subject", g.dirty("Pohon tumbang")),
            ("/TextBody", g.dirty("Pohon tumbang menutup jalan.\r\n")),
            ("/Attachments/0/Name", g.dirty("IMG_0042.JPG")),
            (
                "/Headers/1/Value",
                format!("<{}@example.id>", g.header("6E0D4C0A")),
            ),
        ],
    );
    let raw = String::from_utf8(mime(g)).expect("the generated MIME is UTF-8");
    let raw = edited(
        "channels/email/fixtures/webhooks/postmark-raw.json",
        &[("/RawEmail", raw)],
    );
    [parsed, raw]
        .into_iter()
        .map(|body| {
            Owned::new(
                "POST",
                &format!("/webhooks/email/{INSTANCE}"),
                &[
                    ("authorization", &basic("postmark", SECRET)),
                    ("content-type", "application/json"),
                ],
                body,
            )
        })
        .collect()
}

/// Every HTTP-push adapter with its requests.
fn push_cases(g: &mut Gen) -> Vec<(&'static str, &'static dyn Adapter, Vec<Owned>)> {
    let a = adapters();
    vec![
        ("whatsapp", &a.whatsapp as &dyn Adapter, whatsapp(g)),
        ("messenger", &a.messenger, messenger(g)),
        ("instagram", &a.instagram, instagram(g)),
        ("telegram", &a.telegram, telegram(g)),
        ("x", &a.x, x(g)),
        ("transcript", &a.transcripts, transcript(g)),
        ("twilio", &a.twilio, twilio(g)),
        ("vonage", &a.vonage, vonage(g)),
        ("infobip", &a.infobip, infobip(g)),
        ("generic_sms", &a.generic, generic(g)),
        ("mailgun", &a.mailgun, mailgun(g)),
        ("sendgrid", &a.sendgrid, sendgrid(g)),
        ("postmark", &a.postmark, postmark(g)),
        ("open311", &a.open311, open311(g)),
    ]
}

// ---------------------------------------------------------------------------
// The properties.

#[test]
fn every_push_adapter_gives_clean_documents() {
    for seed in 0..ROUNDS {
        let mut g = Gen::new(seed);
        for (kind, adapter, requests) in push_cases(&mut g) {
            for (i, req) in requests.iter().enumerate() {
                let case = format!("{kind} request {i}, seed {seed}");
                let docs = through(adapter, req, &case);
                assert!(!docs.is_empty(), "{case}: no complaint");
                for doc in &docs {
                    assert_clean(doc, &case);
                }
            }
        }
    }
}

#[test]
fn the_doors_beside_parse_give_clean_documents() {
    let a = adapters();
    for seed in 0..ROUNDS {
        let mut g = Gen::new(seed);
        let case = |door: &str| format!("{door}, seed {seed}");

        // The SMTP listener: the intake's own interface, not `Adapter`.
        let envelope = SmtpEnvelope {
            mail_from: "budi.santoso@example.id",
            recipient: "pengaduan@lapor.example.go.id",
        };
        let outcome = a
            .smtp
            .parse_message(&mime(&mut g), envelope, &ctx())
            .unwrap_or_else(|e| panic!("{}: {e:?}", case("smtp")));
        let docs = documents(outcome);
        assert_eq!(docs.len(), 1, "{}", case("smtp"));
        assert_clean(&docs[0], &case("smtp"));

        // The IMAP poller's step.
        let envelope = Envelope {
            provider: "imap",
            mail_from: None,
            recipient: Some("pengaduan@lapor.example.go.id".into()),
        };
        let outcome = aduan_email::complaint_from_mime(
            &mime(&mut g),
            &envelope,
            &ctx(),
            &MimeLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e:?}", case("imap")))
        .into_outcome();
        for doc in documents(outcome) {
            assert_clean(&doc, &case("imap"));
        }

        // `aduan import-transcripts`, one line at a time.
        for body in transcript_bodies(&mut g) {
            let complaint = a
                .transcripts
                .parse_line(&body, &ctx())
                .unwrap_or_else(|e| panic!("{}: {e:?}", case("import")));
            let doc = serde_json::to_value(&complaint).expect("serializes");
            assert_clean(&doc, &case("import"));
        }

        // The citizen form (`/lapor/<instance>`), which builds its complaint
        // itself instead of through `parse`.
        let fields = aduan_open311::FormFields {
            name: g.dirty("Dewi Lestari"),
            contact: "dewi.lestari@example.id".into(),
            category: "SAMPAH".into(),
            description: g.dirty("Sampah menumpuk di samping pasar"),
            address: g.dirty("Pasar Cibinong, Jl. Mayor Oking"),
            ..Default::default()
        };
        let submission = a
            .open311
            .form_submission(&fields, None, "01JDAT3E4G5H6J7K8M9N0PQRST", &ctx())
            .unwrap_or_else(|e| panic!("{}: {e:?}", case("citizen form")));
        let doc = serde_json::to_value(&submission.complaint).expect("serializes");
        assert_clean(&doc, &case("citizen form"));

        // The Telegram long-polling loop's step.
        let normalizer = aduan_telegram::Normalizer::new(Some("LaporBogorBot"), false, "ID");
        for body in telegram_bodies(&mut g) {
            let update: aduan_telegram::update::Update =
                serde_json::from_slice(&body).expect("an update");
            match normalizer.update(&update, &ctx(), None) {
                Ok(aduan_telegram::Normalized::Complaint(c)) => {
                    let doc = serde_json::to_value(&*c).expect("serializes");
                    assert_clean(&doc, &case("telegram polling"));
                }
                other => panic!("{}: {other:?}", case("telegram polling")),
            }
        }
    }
}

#[test]
fn the_generator_writes_what_the_rules_remove() {
    // Guards the properties above against passing vacuously.
    let mut g = Gen::new(7);
    for _ in 0..100 {
        let s = g.dirty("Budi Santoso");
        assert!(s.chars().any(char::is_control), "{s:?}");
        assert!(!unicode_normalization::is_nfc(&s), "{s:?}");
        assert!(s.chars().any(is_bidi), "{s:?}");
        assert!(
            s.contains(['\u{200b}', '\u{2060}', '\u{feff}', '\u{200c}', '\u{200d}']),
            "{s:?}"
        );
        let h = g.header("Budi");
        assert!(!h.contains(['\r', '\n']), "{h:?}");
        assert!(h.chars().any(is_bidi), "{h:?}");
        let d = g.decomposed("JKT");
        assert!(d.chars().all(|c| !c.is_control()));
        assert!(d.chars().any(is_bidi), "{d:?}");
    }
}

/// NUL and other control bytes in an SMTP `From:` and `Subject:` once went
/// into `sender.id` and `subject` as they came.
#[test]
fn control_bytes_in_smtp_headers_are_removed() {
    let mime = b"From: Bu\x07di \x1b[2JSantoso <\xff\xfe\x00bin@example.id>\r\n\
        To: pengaduan@lapor.example.go.id\r\n\
        Subject: Saluran\x00 air\x08 tersumbat\x0b di Jl. Raya Bogor\r\n\
        Message-ID: <nul\x01@example.id>\r\n\
        Content-Type: text/plain; charset=UTF-8\r\n\r\n\
        Saluran air tersumbat\x00 sejak kemarin.\r\nMohon\x1b[31m dicek.\r\n";
    let envelope = SmtpEnvelope {
        mail_from: "bin@example.id",
        recipient: "pengaduan@lapor.example.go.id",
    };
    let outcome = adapters()
        .smtp
        .parse_message(mime, envelope, &ctx())
        .expect("accepted");
    let docs = documents(outcome);
    let doc = &docs[0];
    assert_clean(doc, "smtp");
    assert_eq!(doc["sender"]["id"], "mailto:\u{fffd}\u{fffd}bin@example.id");
    assert_eq!(doc["sender"]["email"], "\u{fffd}\u{fffd}bin@example.id");
    assert_eq!(doc["sender"]["name"], "Budi [2JSantoso");
    assert_eq!(doc["subject"], "Saluran air tersumbat di Jl. Raya Bogor");
    assert_eq!(doc["external_id"], "nul@example.id");
    assert_eq!(
        doc["text"],
        "Saluran air tersumbat sejak kemarin.\nMohon[31m dicek."
    );
}

#[test]
fn decomposed_names_become_nfc_and_line_breaks_in_names_become_spaces() {
    let body = edited(
        "channels/meta/fixtures/whatsapp/text.json",
        &[
            (
                &format!("{WA}/contacts/0/profile/name"),
                "Jose\u{301}\r\nRamos\u{0}".into(),
            ),
            (
                &format!("{WA}/messages/0/text/body"),
                "Jalan\u{0} rusak\r\nparah\tsekali\u{85}".into(),
            ),
        ],
    );
    let docs = through(
        &adapters().whatsapp,
        &signed_meta("whatsapp")(body),
        "whatsapp",
    );
    assert_eq!(docs[0]["sender"]["name"], "Jos\u{e9} Ramos");
    assert_eq!(docs[0]["text"], "Jalan rusak\nparah\tsekali");
}

/// A profile name with a right-to-left override displayed as another name
/// ("Siti Rahayu Dinas Kota") on an agent's screen; a text held a byte
/// order mark, an isolate and a mark.
#[test]
fn bidirectional_controls_and_zero_width_characters_leave_names_and_texts() {
    let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
    let body = edited(
        "channels/meta/fixtures/whatsapp/text.json",
        &[
            (
                &format!("{WA}/contacts/0/profile/name"),
                "Siti\u{200b} Rahayu \u{202e}atoK sinaD\u{202c}\u{200d}".into(),
            ),
            (
                &format!("{WA}/messages/0/text/body"),
                format!("\u{feff}Lampu \u{2066}mati\u{2069}\u{200f} {family} Terima\u{200b}kasih"),
            ),
        ],
    );
    let docs = through(
        &adapters().whatsapp,
        &signed_meta("whatsapp")(body),
        "whatsapp",
    );
    assert_eq!(docs[0]["sender"]["name"], "Siti Rahayu atoK sinaD");
    assert_eq!(
        docs[0]["text"],
        format!("Lampu mati {family} Terima\u{200b}kasih").as_str()
    );
    assert_clean(&docs[0], "whatsapp");
}

#[test]
fn whatsapp_media_digests_become_lowercase_hex() {
    let hex = "139d544b821b13ebea14f1b0fe18577222e415c2966e3a3511c4196055232202";
    let sha256 = format!("{WA}/messages/0/document/sha256");
    for (given, expected) in [
        // As WhatsApp sends it: base64 of the 32 bytes.
        ("E51US4IbE+vqFPGw/hhXciLkFcKWbjo1EcQZYFUjIgI=", Some(hex)),
        (&hex.to_uppercase(), Some(hex)),
        (hex, Some(hex)),
        ("IMAGE_HASH", None),
    ] {
        let body = edited(
            "channels/meta/fixtures/whatsapp/document.json",
            &[(&sha256, given.to_string())],
        );
        let docs = through(&adapters().whatsapp, &signed_meta("whatsapp")(body), given);
        assert_eq!(
            docs[0]["attachments"][0]["sha256"].as_str(),
            expected,
            "{given}"
        );
        assert_clean(&docs[0], given);
    }
}

// ---------------------------------------------------------------------------
// Media types.

/// A valid, authenticated request of each provider whose documented content
/// type is JSON, with `content_type` as its `Content-Type` (none for `None`).
fn json_requests(content_type: Option<&str>) -> Vec<(&'static str, &'static dyn Adapter, Owned)> {
    let a = adapters();
    let with = |mut headers: Vec<(&'static str, String)>| {
        if let Some(ct) = content_type {
            headers.push(("content-type", ct.to_string()));
        }
        headers
    };
    let owned = |path: &str, headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Owned::new("POST", path, &headers, body)
    };
    let meta = |kind: &'static str, rel: &str| {
        let body = fixture(rel);
        let headers = with(vec![("x-hub-signature-256", meta_signature(&body))]);
        owned(&format!("/webhooks/{kind}/{INSTANCE}"), headers, body)
    };
    vec![
        (
            "whatsapp",
            &a.whatsapp as &dyn Adapter,
            meta("whatsapp", "channels/meta/fixtures/whatsapp/text.json"),
        ),
        (
            "messenger",
            &a.messenger,
            meta("messenger", "channels/meta/fixtures/messenger/text.json"),
        ),
        (
            "instagram",
            &a.instagram,
            meta("instagram", "channels/meta/fixtures/instagram/text.json"),
        ),
        (
            "telegram",
            &a.telegram,
            owned(
                "/webhooks/telegram/hygiene",
                with(vec![("x-telegram-bot-api-secret-token", SECRET.into())]),
                fixture("channels/telegram/fixtures/message_text.json"),
            ),
        ),
        (
            "transcript",
            &a.transcripts,
            owned(
                "/v1/transcripts",
                with(vec![("authorization", format!("Bearer {SECRET}"))]),
                fixture("channels/transcript/fixtures/plain.json"),
            ),
        ),
        (
            "infobip",
            &a.infobip,
            owned(
                "/webhooks/infobip/hygiene",
                with(vec![("authorization", basic("infobip", SECRET))]),
                fixture("channels/sms/fixtures/infobip/two_messages.json"),
            ),
        ),
        (
            "postmark",
            &a.postmark,
            owned(
                "/webhooks/email/hygiene",
                with(vec![("authorization", basic("postmark", SECRET))]),
                fixture("channels/email/fixtures/webhooks/postmark-parsed.json"),
            ),
        ),
    ]
}

#[test]
fn json_routes_answer_415_to_any_other_media_type() {
    for content_type in [
        None,
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonl"),
        Some("application/+json"),
        Some("text/json"),
    ] {
        for (kind, adapter, req) in json_requests(content_type) {
            let req = req.request();
            assert!(adapter.verify(&req).is_ok(), "{kind}: credentials");
            let refused = adapter
                .parse(&req, &ctx())
                .expect_err(&format!("{kind} {content_type:?}"));
            assert!(
                matches!(refused, Rejection::UnsupportedMediaType("application/json")),
                "{kind} {content_type:?}: {refused:?}"
            );
            assert_eq!(refused.status(), 415);
            assert_eq!(refused.reason(), "media_type");
            let reply = adapter.rejected(&refused);
            assert_eq!(reply.status, 415, "{kind}");
            assert_eq!(
                serde_json::from_slice::<Value>(&reply.body).expect("JSON answer"),
                json!({"error": "media_type", "expected": "application/json"}),
                "{kind}"
            );
        }
    }
}

#[test]
fn json_routes_take_json_with_any_parameters_and_structured_suffixes() {
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/vnd.callcenter.transcript+json",
    ] {
        for (kind, adapter, req) in json_requests(Some(content_type)) {
            let docs = through(adapter, &req, &format!("{kind} {content_type}"));
            assert!(!docs.is_empty(), "{kind} {content_type}");
        }
    }
}

#[test]
fn sendgrid_answers_415_to_a_body_that_is_not_a_form() {
    let req = Owned::new(
        "POST",
        "/webhooks/email/hygiene",
        &[
            ("authorization", &basic("sendgrid", SECRET)),
            ("content-type", "application/json"),
        ],
        br#"{"email":"From: a@example.id"}"#.to_vec(),
    );
    let sendgrid = &adapters().sendgrid;
    assert!(sendgrid.verify(&req.request()).is_ok());
    let refused = sendgrid
        .parse(&req.request(), &ctx())
        .expect_err("not a form");
    assert_eq!(refused.status(), 415);
    assert_eq!(
        Reply::rejection(&refused).body,
        br#"{"error":"media_type","expected":"multipart/form-data or application/x-www-form-urlencoded"}"#
    );
}

#[test]
fn a_wrong_media_type_is_told_only_to_an_authenticated_caller() {
    // The gateway verifies first: without credentials the answer is the
    // provider's 401 or 403, whatever the body's type.
    for (kind, adapter, req) in json_requests(Some("text/plain")) {
        let mut unsigned = req;
        for name in [
            "authorization",
            "x-hub-signature-256",
            "x-telegram-bot-api-secret-token",
        ] {
            unsigned.headers.remove(name);
        }
        let refused = adapter.verify(&unsigned.request()).expect_err(kind);
        assert!(matches!(refused.status(), 401 | 403), "{kind}: {refused:?}");
    }
}

#[test]
fn the_schema_says_the_same_rules() {
    let docs = through(
        &adapters().whatsapp,
        &signed_meta("whatsapp")(fixture("channels/meta/fixtures/whatsapp/image.json")),
        "whatsapp image",
    );
    let mut doc = docs[0].clone();
    doc["id"] = "01JDAT3E4G5H6J7K8M9N0PQRST".into();
    assert!(validator().is_valid(&doc));
    let with = |pointer: &str, value: &str| {
        let mut d = doc.clone();
        *d.pointer_mut(pointer).expect(pointer) = value.into();
        validator().is_valid(&d)
    };
    assert!(with("/text", "Sampah\nmenumpuk\tdi kali"));
    assert!(with("/attachments/0/caption", "baris satu\nbaris dua"));
    for (pointer, value) in [
        ("/text", "Sampah\u{0}menumpuk"),
        ("/text", "Sampah\r\nmenumpuk"),
        ("/attachments/0/caption", "foto\u{1b}[2J"),
        ("/sender/name", "Siti\nRahmawati"),
        ("/sender/id", "whatsapp:62812\u{0}"),
        ("/sender/name", "Siti\u{85}"),
        ("/external_id", "wamid.\u{7f}"),
        ("/thread/conversation", "hygiene:\twhatsapp"),
        (
            "/attachments/0/sha256",
            "B29814CF5792E684CD75D6A7FCE7A67A11887E312F87CA2AC2496D81F365FF72",
        ),
        (
            "/attachments/0/sha256",
            "spgUz1eS5oTNddan/OemehGIfjEvh8oqwkltgfNl/3I=",
        ),
    ] {
        assert!(!with(pointer, value), "{pointer} = {value:?} passed");
    }
}
