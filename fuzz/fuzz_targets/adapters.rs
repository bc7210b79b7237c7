//! Every push adapter's `verify` and `parse` on an arbitrary request, plus the
//! gateway's byte pre-scan that runs before them.
//!
//! Input layout (seeds are built this way by `fuzz/seed.sh`):
//! - byte 0: which instance kind (index into `KINDS`, wrapping);
//! - byte 1: flags: bit 0 signs the request with the instance's real
//!   credentials (so `parse` sees bodies that pass `verify`), bits 1–2 pick
//!   the method, bit 3 turns `keep_raw` off;
//! - then text up to the first empty line: the path and query on the first
//!   line, one `name: value` header per following line;
//! - the rest is the body.
//!
//! Nothing may panic; a correctly signed Meta or X `POST` must verify.
#![no_main]

use std::sync::OnceLock;

use aduan_adapter::verify::{base64_encode, hmac_sha256};
use aduan_adapter::{Adapter, Context, Outcome, Request, Timestamp};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "rahasia-fuzz";

/// Instance kinds and their settings, all secrets literal.
const KINDS: &[(&str, &str)] = &[
    (
        "whatsapp",
        "app_secret = \"rahasia-fuzz\"\nverify_token = \"token-fuzz\"",
    ),
    (
        "messenger",
        "app_secret = \"rahasia-fuzz\"\nverify_token = \"token-fuzz\"",
    ),
    (
        "instagram",
        "app_secret = \"rahasia-fuzz\"\nverify_token = \"token-fuzz\"",
    ),
    (
        "telegram",
        "secret_token = \"rahasia-fuzz\"\nbot_username = \"LaporFuzzBot\"\nallow_groups = true",
    ),
    (
        "x",
        "consumer_secret = \"rahasia-fuzz\"\naccount_id = \"835740314006511618\"",
    ),
    ("transcript", "tokens = [\"rahasia-fuzz\"]"),
    (
        "twilio",
        "auth_token = \"rahasia-fuzz\"\npublic_url = \"https://lapor.example.go.id/\"",
    ),
    ("vonage", ""),
    ("vonage", "signature_secret = \"rahasia-fuzz\""),
    (
        "infobip",
        "username = \"infobip\"\nsecret = \"rahasia-fuzz\"",
    ),
    ("sms", "auth = \"query\"\nsecret = \"rahasia-fuzz\""),
    ("mailgun", "signing_key = \"rahasia-fuzz\""),
    (
        "sendgrid",
        "username = \"sendgrid\"\npassword = \"rahasia-fuzz\"",
    ),
    (
        "postmark",
        "username = \"postmark\"\npassword = \"rahasia-fuzz\"",
    ),
];

fn adapters() -> &'static Vec<Box<dyn Adapter>> {
    static ADAPTERS: OnceLock<Vec<Box<dyn Adapter>>> = OnceLock::new();
    ADAPTERS.get_or_init(|| {
        KINDS
            .iter()
            .map(|(kind, settings)| {
                let text = format!("[[instances]]\nname = \"fuzz\"\nkind = \"{kind}\"\n{settings}\n");
                let config = aduan::settings::Config::from_toml(&text, &[], "fuzz.toml")
                    .unwrap_or_else(|e| panic!("{kind}: {e}"));
                let built = aduan::instances::build(&config.instances[0])
                    .unwrap_or_else(|e| panic!("{kind}: {e}"));
                let adapter = match built.intake {
                    aduan::instances::Intake::Push(a) => a,
                    aduan::instances::Intake::Transcript(t) => t as std::sync::Arc<dyn Adapter>,
                    _ => panic!("{kind}: a push adapter expected"),
                };
                Box::new(Shared(adapter)) as Box<dyn Adapter>
            })
            .collect()
    })
}

/// Lets the `Arc` the builder returns sit in the static table.
struct Shared(std::sync::Arc<dyn Adapter>);

impl Adapter for Shared {
    fn verify(&self, req: &Request<'_>) -> Result<(), aduan_adapter::Rejection> {
        self.0.verify(req)
    }
    fn decode(
        &self,
        req: &Request<'_>,
        ctx: &Context<'_>,
    ) -> Result<Outcome, aduan_adapter::Rejection> {
        self.0.decode(req, ctx)
    }
}

fuzz_target!(
    init: {
        // The MIME path catches panics from mail-parser (its debug assertions)
        // and refuses the message; libFuzzer's own hook would abort before that
        // catch. A panic that escapes the target still aborts the run.
        // Taking it out leaves the standard hook, which only reports.
        drop(std::panic::take_hook());
    },
    |data: &[u8]| run(data)
);

fn run(data: &[u8]) {
    let [kind, flags, rest @ ..] = data else {
        return;
    };
    let index = usize::from(*kind) % KINDS.len();
    let (kind_name, _) = KINDS[index];
    let sign = flags & 1 == 1;
    let method = match (flags >> 1) & 3 {
        0 => Method::POST,
        1 => Method::GET,
        2 => Method::PUT,
        _ => Method::DELETE,
    };
    let keep_raw = flags & 8 == 0;
    let split = rest.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (&rest[..0], rest),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let uri: Uri = lines
        .next()
        .and_then(|l| Uri::try_from(l).ok())
        .unwrap_or_else(|| Uri::from_static("/"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    if sign {
        sign_request(kind_name, &mut headers, body);
    }

    let _ = aduan::limits::prescan(&Default::default(), &headers, &uri, body);

    let req = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body,
    };
    let adapter = &adapters()[index];
    let verified = adapter.verify(&req);
    if sign
        && method == Method::POST
        && matches!(kind_name, "whatsapp" | "messenger" | "instagram" | "x")
    {
        assert!(
            verified.is_ok(),
            "{kind_name}: a correct signature was refused"
        );
    }
    let received = chrono::DateTime::from_timestamp(1_763_798_400, 0).expect("valid time");
    let ctx = Context {
        instance: "fuzz",
        received_at: Timestamp(received),
        keep_raw,
    };
    let outcome = adapter.parse(&req, &ctx);
    if let Ok(outcome) = outcome {
        let complaints = match &outcome {
            Outcome::Accept { complaints, .. } | Outcome::AcceptWithBlobs { complaints, .. } => {
                complaints.iter().collect::<Vec<_>>()
            }
            Outcome::Fragments(parts) => parts.iter().map(|p| &p.complaint).collect(),
            Outcome::Reply(_) => Vec::new(),
        };
        for c in complaints {
            assert_eq!(c.instance, "fuzz");
            let json = serde_json::to_string(c).expect("a complaint serializes");
            assert!(json.contains("\"schema\":\"aduan.complaint.v1\""));
        }
    }
}

/// Adds the credentials `kind` checks, computed over this body.
fn sign_request(kind: &str, headers: &mut HeaderMap, body: &[u8]) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::try_from(value) {
            headers.insert(name, v);
        }
    };
    match kind {
        "whatsapp" | "messenger" | "instagram" => set(
            "x-hub-signature-256",
            format!("sha256={}", hex(&hmac_sha256(SECRET.as_bytes(), body))),
        ),
        "x" => set(
            "x-twitter-webhooks-signature",
            format!(
                "sha256={}",
                base64_encode(&hmac_sha256(SECRET.as_bytes(), body))
            ),
        ),
        "telegram" => set("x-telegram-bot-api-secret-token", SECRET.to_string()),
        "transcript" => set("authorization", format!("Bearer {SECRET}")),
        "infobip" => set(
            "authorization",
            format!(
                "Basic {}",
                base64_encode(format!("infobip:{SECRET}").as_bytes())
            ),
        ),
        "sendgrid" | "postmark" => set(
            "authorization",
            format!(
                "Basic {}",
                base64_encode(format!("{kind}:{SECRET}").as_bytes())
            ),
        ),
        _ => {}
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
