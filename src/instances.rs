//! Channel instances: one explicit `match` from a configured kind to what
//! serves it (adapter, mail intake or poller) and how its route behaves.
//!
//! Each arm deserializes the instance's own keys into its channel crate's
//! config struct (which denies unknown keys) and builds it. Nothing is
//! registered anywhere else: the router, the limits and the SMTP listener
//! all read the built instances.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aduan_adapter::{Adapter, Poller};
use aduan_email::MailIntake;
use aduan_transcript::Transcripts;
use serde::de::DeserializeOwned;

use crate::settings::{Config, ConfigError, ConfigErrors, InstanceKind, InstanceSettings};

/// How an HTTP route behaves: its path segment and how its provider is answered
/// when the gateway cannot take the request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The segment under `/webhooks/` (`whatsapp`, `twilio`, …), `transcripts`
    /// for `/v1/transcripts`, or `open311` for `/open311/v2/`. Also the `route`
    /// label of metrics and the key of `[limits] body_limit_bytes`.
    pub segment: &'static str,
    /// The status a throttled request gets: `429` where the provider documents
    /// retrying it (the transcript API, Telegram, Vonage) and for Open311,
    /// whose clients (FixMyStreet's sender, city apps) retry any failure
    /// later and can tell a citizen who reports too often from an outage by
    /// it; `503` elsewhere (SendGrid retries only 5xx; Meta, X, Mailgun and
    /// Postmark retry any failure).
    pub throttle_status: u16,
    /// Whether a request waits for room instead of being refused at once when
    /// the listener or its instance is full (Twilio does not retry a refused message).
    pub waits_for_room: bool,
}

impl Route {
    const fn retried(segment: &'static str) -> Route {
        Route {
            segment,
            throttle_status: 503,
            waits_for_room: false,
        }
    }

    const fn throttled_with_429(segment: &'static str) -> Route {
        Route {
            segment,
            throttle_status: 429,
            waits_for_room: false,
        }
    }
}

/// What an instance runs.
pub enum Intake {
    /// A provider that pushes HTTP requests to its route.
    Push(Arc<dyn Adapter>),
    /// A call center posting to `/v1/transcripts` (or importing files).
    Transcript(Arc<Transcripts>),
    /// Mail delivered to the SMTP listener.
    Mail(Arc<dyn MailIntake>),
    /// A channel that fetches its own messages; taken by the server when it starts it.
    Poll(Mutex<Option<Box<dyn Poller>>>),
}

/// A configured channel instance, built and ready to serve.
pub struct Instance {
    pub name: String,
    pub kind: InstanceKind,
    /// Keep the exact bytes received in `raw`.
    pub keep_raw: bool,
    /// The HTTP route, for instances providers push to.
    pub route: Option<Route>,
    pub intake: Intake,
    /// The sender of replies and its pacing, when `[instances.reply]` is set.
    pub reply: Option<crate::senders::Reply>,
    /// The automatic acknowledgement, when `[instances.ack]` is set.
    pub ack: Option<Arc<crate::ack::Ack>>,
    /// What its citizens are told of a new status, when it can reply.
    pub status: Option<Arc<crate::status::Notices>>,
    /// The fetcher of the instance's attachments, when `[instances.media]` is set.
    pub media: Option<crate::media::InstanceFetcher>,
    /// The Open311 endpoint behind the instance's citizen form (`open311` only).
    pub form: Option<Arc<aduan_open311::Open311>>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// The adapter that answers HTTP requests for this instance, if any.
    pub fn adapter(&self) -> Option<&dyn Adapter> {
        match &self.intake {
            Intake::Push(a) => Some(a.as_ref()),
            Intake::Transcript(t) => Some(t.as_ref()),
            Intake::Mail(_) | Intake::Poll(_) => None,
        }
    }

    /// The `route` label of this instance's metrics: its HTTP route, else its door.
    pub fn label(&self) -> &'static str {
        match (&self.route, &self.intake) {
            (Some(route), _) => route.segment,
            (None, Intake::Mail(_)) => "smtp",
            (None, _) => "poll",
        }
    }
}

/// The route of each kind of instance that has one.
pub fn route_of(kind: InstanceKind) -> Option<Route> {
    match kind {
        InstanceKind::Transcript => Some(Route::throttled_with_429("transcripts")),
        InstanceKind::Whatsapp => Some(Route::retried("whatsapp")),
        InstanceKind::Messenger => Some(Route::retried("messenger")),
        InstanceKind::Instagram => Some(Route::retried("instagram")),
        InstanceKind::Telegram => Some(Route::throttled_with_429("telegram")),
        InstanceKind::X => Some(Route::retried("x")),
        InstanceKind::Twilio => Some(Route {
            waits_for_room: true,
            ..Route::retried("twilio")
        }),
        InstanceKind::Vonage => Some(Route::throttled_with_429("vonage")),
        InstanceKind::Infobip => Some(Route::retried("infobip")),
        InstanceKind::Sms => Some(Route::retried("sms")),
        InstanceKind::Mailgun | InstanceKind::Sendgrid | InstanceKind::Postmark => {
            Some(Route::retried("email"))
        }
        InstanceKind::Open311 => Some(Route::throttled_with_429("open311")),
        InstanceKind::Smtp | InstanceKind::Imap => None,
    }
}

/// Every route name, once each: the keys `[limits] body_limit_bytes` accepts.
pub fn route_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for route in InstanceKind::ALL.into_iter().filter_map(route_of) {
        if !names.contains(&route.segment) {
            names.push(route.segment);
        }
    }
    names
}

/// Deserializes an instance's own keys into its channel crate's settings.
fn settings<T: DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    T::deserialize(table).map_err(|e| e.message().to_string())
}

/// Builds one instance from its settings.
pub fn build(def: &InstanceSettings) -> Result<Instance, String> {
    let (name, keep_raw, table) = (def.name.as_str(), def.keep_raw, def.table.clone());
    let push = |adapter: Arc<dyn Adapter>| Intake::Push(adapter);
    // The citizen form of an Open311 endpoint reads its services.
    let mut form = None;
    let intake = match def.kind {
        InstanceKind::Transcript => {
            Intake::Transcript(Arc::new(Transcripts::new(settings(table)?)?))
        }
        InstanceKind::Whatsapp => push(Arc::new(aduan_meta::WhatsApp::new(settings(table)?)?)),
        InstanceKind::Messenger => push(Arc::new(aduan_meta::Messenger::new(settings(table)?)?)),
        InstanceKind::Instagram => push(Arc::new(aduan_meta::Instagram::new(settings(table)?)?)),
        InstanceKind::Telegram => match aduan_telegram::build(name, keep_raw, settings(table)?)? {
            aduan_telegram::Intake::Webhook(bot) => push(Arc::new(bot)),
            aduan_telegram::Intake::Polling(poller) => {
                Intake::Poll(Mutex::new(Some(Box::new(poller))))
            }
        },
        InstanceKind::X => push(Arc::new(aduan_x::X::new(settings(table)?)?)),
        InstanceKind::Twilio => push(Arc::new(aduan_sms::Twilio::new(settings(table)?)?)),
        InstanceKind::Vonage => push(Arc::new(aduan_sms::Vonage::new(settings(table)?)?)),
        InstanceKind::Infobip => push(Arc::new(aduan_sms::Infobip::new(settings(table)?)?)),
        InstanceKind::Sms => push(Arc::new(aduan_sms::GenericSms::new(settings(table)?)?)),
        InstanceKind::Mailgun => push(Arc::new(aduan_email::Mailgun::new(settings(table)?)?)),
        InstanceKind::Sendgrid => push(Arc::new(aduan_email::SendGrid::new(settings(table)?)?)),
        InstanceKind::Postmark => push(Arc::new(aduan_email::Postmark::new(settings(table)?)?)),
        InstanceKind::Smtp => {
            Intake::Mail(Arc::new(aduan_email::SmtpIntake::new(settings(table)?)?))
        }
        InstanceKind::Imap => Intake::Poll(Mutex::new(Some(Box::new(
            aduan_email::ImapPoller::new(name, keep_raw, settings(table)?)?,
        )))),
        InstanceKind::Open311 => {
            let endpoint = Arc::new(aduan_open311::Open311::new(settings(table)?)?);
            form = Some(endpoint.clone());
            push(endpoint)
        }
    };
    // A polling Telegram bot has no webhook route.
    let route = match intake {
        Intake::Poll(_) => None,
        _ => route_of(def.kind),
    };
    let reply = crate::senders::build(def)?;
    let ack = match def.ack.clone() {
        Some(table) => {
            if reply.is_none() {
                return Err("ack: needs [instances.reply] to send it".into());
            }
            Some(Arc::new(crate::ack::Ack::new(table)?))
        }
        None => None,
    };
    // Status notices go out through the instance's sender: without one the
    // status is still kept and answered, but nobody is told.
    let status = match (&reply, def.status.clone()) {
        (None, Some(_)) => return Err("status: needs [instances.reply] to notify".into()),
        (None, None) => None,
        (Some(_), table) => Some(Arc::new(crate::status::Notices::new(table)?)),
    };
    Ok(Instance {
        name: def.name.clone(),
        kind: def.kind,
        keep_raw,
        route,
        intake,
        reply,
        ack,
        status,
        media: None,
        form,
    })
}

/// Builds every instance and checks what needs them all (limits naming
/// instances and routes, language candidates, transcript tokens). Every
/// problem comes back at once, with its location.
pub fn build_all(config: &Config) -> Result<Vec<Instance>, ConfigErrors> {
    let mut errors = Vec::new();
    let mut built = Vec::new();
    for def in &config.instances {
        match build(def).and_then(|mut instance| {
            instance.media = crate::fetchers::build(def, &config.media)?;
            Ok(instance)
        }) {
            Ok(instance) => built.push(instance),
            Err(message) => errors.push(ConfigError {
                location: format!("{} kind `{}`", def.location, def.kind),
                message,
            }),
        }
    }
    let names: HashSet<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    errors.extend(config.limits.check(&names, &route_names()));
    if let Err(message) = crate::language::LanguageDetector::new(&config.language) {
        errors.push(ConfigError {
            location: "language.candidates".into(),
            message,
        });
    }
    if let Err(e) = TranscriptTokens::index(&built.iter().collect::<Vec<_>>()) {
        errors.push(e);
    }
    if errors.is_empty() {
        Ok(built)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Parses and builds a configuration text, returning every problem of both
/// steps at once: what `aduan check-config` prints.
pub fn check(text: &str, env: &[(String, String)], origin: &str) -> Result<usize, ConfigErrors> {
    let (config, mut errors) = Config::parse(text, env, origin);
    finish_check(&config, &mut errors)
}

/// [`check`] of a file.
pub fn check_file(path: &std::path::Path) -> Result<usize, ConfigErrors> {
    let (config, mut errors) = Config::read(path);
    finish_check(&config, &mut errors)
}

fn finish_check(config: &Config, errors: &mut Vec<ConfigError>) -> Result<usize, ConfigErrors> {
    match build_all(config) {
        Ok(built) if errors.is_empty() => Ok(built.len()),
        Ok(_) => Err(ConfigErrors(std::mem::take(errors))),
        Err(more) => {
            errors.extend(more.0);
            Err(ConfigErrors(std::mem::take(errors)))
        }
    }
}

/// The transcript instances by bearer token, indexed once at start. Keyed by
/// the token's SHA-256, so that a lookup reveals nothing about a token by its
/// timing; the adapter's own constant-time check still runs after.
#[derive(Default)]
pub struct TranscriptTokens {
    by_digest: HashMap<[u8; 32], usize>,
}

impl TranscriptTokens {
    /// Indexes the transcript instances' tokens. Two instances listing one
    /// token is a configuration error: the token is what tells call centers apart.
    pub fn index(instances: &[&Instance]) -> Result<TranscriptTokens, ConfigError> {
        let mut by_digest = HashMap::new();
        for (i, inst) in instances.iter().enumerate() {
            let Intake::Transcript(t) = &inst.intake else {
                continue;
            };
            for token in t.tokens() {
                if let Some(other) = by_digest.insert(digest(token.expose_bytes()), i)
                    && other != i
                {
                    return Err(ConfigError {
                        location: format!("instances \"{}\"", inst.name),
                        message: format!(
                            "a token of this instance is also a token of `{}`; every call center needs its own",
                            instances[other].name
                        ),
                    });
                }
            }
        }
        Ok(TranscriptTokens { by_digest })
    }

    /// The index (into the instances it was built from) of the instance whose
    /// token is `token`.
    pub fn find(&self, token: &str) -> Option<usize> {
        self.by_digest.get(&digest(token.as_bytes())).copied()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match check(text, &[], "t.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn two_call_centers_may_not_share_a_token() {
        let errs = problems(
            "[[instances]]\nname = \"cc-bogor\"\nkind = \"transcript\"\ntokens = [\"rahasia-a\", \"rahasia-b\"]\n\
             [[instances]]\nname = \"cc-depok\"\nkind = \"transcript\"\ntokens = [\"rahasia-b\"]\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("cc-depok") && errs[0].contains("cc-bogor"),
            "{errs:?}"
        );
        assert!(problems(
            "[[instances]]\nname = \"cc-bogor\"\nkind = \"transcript\"\ntokens = [\"rahasia-a\"]\n\
             [[instances]]\nname = \"cc-depok\"\nkind = \"transcript\"\ntokens = [\"rahasia-b\"]\n",
        )
        .is_empty());
    }

    #[test]
    fn settings_and_build_problems_come_back_together() {
        let errs = problems(
            "[server]\nlisten = \"bukan alamat\"\n\
             [[instances]]\nname = \"wa-jabar\"\nkind = \"whatsapp\"\napp_secret = \"s\"\n",
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("server"), "{errs:?}");
        assert!(
            errs[1].contains("wa-jabar") && errs[1].contains("verify_token"),
            "{errs:?}"
        );
    }

    #[test]
    fn every_route_name_is_listed_once() {
        let names = route_names();
        assert!(names.contains(&"email") && names.contains(&"transcripts"));
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }
}
