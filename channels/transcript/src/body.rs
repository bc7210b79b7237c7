//! The transcript document a call center posts, and its validation.
//!
//! The body is read into a `serde_json::Value` and checked field by field
//! rather than deserialized into a struct: serde stops at the first problem,
//! while an agent fixing a rejected transcript needs every problem at once.

use aduan_adapter::{FieldError, Location, Rejection, Segment, Timestamp, phone};
use serde_json::{Map, Value};

/// Longest `call_id` or `agent.id`, in characters. They become dedup keys and
/// URNs, so they are kept short.
pub const MAX_ID_CHARS: usize = 128;

/// Longest `recording_url`, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

const TOP_FIELDS: &[&str] = &[
    "call_id",
    "agent",
    "caller",
    "started_at",
    "duration_seconds",
    "direction",
    "category",
    "text",
    "segments",
    "recording_url",
    "location",
    "language",
];
const AGENT_FIELDS: &[&str] = &["id", "name"];
const CALLER_FIELDS: &[&str] = &["phone", "name"];
const SEGMENT_FIELDS: &[&str] = &["speaker", "text", "offset_seconds"];
const LOCATION_FIELDS: &[&str] = &["latitude", "longitude", "name", "address"];

/// What a transcript is checked against, from the instance's settings.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Region for caller numbers without a country code (ISO 3166 alpha-2).
    pub default_region: String,
    /// Most segments accepted; more is [`Rejection::TooLarge`].
    pub max_segments: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            default_region: phone::DEFAULT_REGION.to_string(),
            max_segments: crate::config::DEFAULT_MAX_SEGMENTS,
        }
    }
}

/// The words of the call: one plain text, or turns by speaker.
#[derive(Clone, Debug, PartialEq)]
pub enum Words {
    /// The whole call as one plain text.
    Text(String),
    /// Turns in the order given.
    Segments(Vec<Segment>),
}

/// A validated transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// The call center's id for the call; the complaint's `external_id`.
    pub call_id: String,
    /// The agent who took or made the call.
    pub agent_id: String,
    pub agent_name: Option<String>,
    /// The caller's number in E.164.
    pub caller_phone: Option<String>,
    pub caller_name: Option<String>,
    /// When the call started.
    pub started_at: Option<Timestamp>,
    pub duration_seconds: Option<f64>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// The call center's category; the complaint's `subject`.
    pub category: Option<String>,
    /// What was said.
    pub words: Words,
    /// An absolute `http`/`https` URL of the recording.
    pub recording_url: Option<String>,
    /// The place the complaint is about.
    pub location: Option<Location>,
    /// The language the call center reports for the call (BCP 47 tag).
    pub language: Option<String>,
}

impl Transcript {
    /// Validates `body`. Not JSON → [`Rejection::Malformed`]; too many segments
    /// → [`Rejection::TooLarge`]; any field problem → [`Rejection::Invalid`]
    /// listing every one of them.
    pub fn from_json(body: &[u8], rules: &Rules) -> Result<Transcript, Rejection> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Rejection::malformed(format!("body is not valid JSON: {e}")))?;
        let Value::Object(top) = &value else {
            return Err(Rejection::malformed("body must be a JSON object"));
        };
        // Refused before anything else so that an oversized transcript costs
        // no per-segment work.
        if let Some(Value::Array(segments)) = top.get("segments")
            && segments.len() > rules.max_segments
        {
            return Err(Rejection::TooLarge("too many segments"));
        }
        Check::default().transcript(top, rules)
    }

    /// The transcript as readable text: the plain text as given, or one line
    /// per segment as `Speaker: text`.
    pub fn readable_text(&self) -> String {
        match &self.words {
            Words::Text(text) => text.clone(),
            Words::Segments(segments) => render_segments(segments),
        }
    }
}

/// One line per segment, `Speaker: text`, in the order given.
pub fn render_segments(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&s.speaker);
        out.push_str(": ");
        out.push_str(&s.text);
    }
    out
}

/// The errors found so far.
#[derive(Default)]
struct Check {
    errors: Vec<FieldError>,
}

/// `parent.key`, or `key` at the top level.
fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A field's value, with JSON `null` read as absent.
fn present<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|v| !v.is_null())
}

impl Check {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Reports keys the format does not define. Sorted, so the answer does not
    /// depend on how the JSON map orders keys.
    fn unknown_fields(&mut self, map: &Map<String, Value>, parent: &str, known: &[&str]) {
        let mut unknown: Vec<&String> = map
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .collect();
        unknown.sort();
        for key in unknown {
            self.fail(path(parent, &shown_key(key)), "unknown field");
        }
    }

    /// An object-valued field: `None` when absent (reported if `required`) or
    /// of the wrong type (reported).
    fn object<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        parent: &str,
        key: &str,
        required: bool,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let field = path(parent, key);
        match present(map, key) {
            None => {
                if required {
                    self.fail(field, "is required");
                }
                None
            }
            Some(Value::Object(inner)) => {
                self.unknown_fields(inner, &field, known);
                Some(inner)
            }
            Some(_) => {
                self.fail(field, "must be an object");
                None
            }
        }
    }

    /// A string field, trimmed. Blank counts as absent for optional fields
    /// and as an error for required ones.
    fn string<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        parent: &str,
        key: &str,
        required: bool,
    ) -> Option<&'v str> {
        let field = path(parent, key);
        match present(map, key) {
            None => {
                if required {
                    self.fail(field, "is required");
                }
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                if required {
                    self.fail(field, "must not be empty");
                }
                None
            }
            Some(Value::String(s)) => Some(s.trim()),
            Some(_) => {
                self.fail(field, "must be a string");
                None
            }
        }
    }

    /// An identifier: a required, short string without control characters.
    fn identifier(&mut self, map: &Map<String, Value>, parent: &str, key: &str) -> Option<String> {
        let id = self.string(map, parent, key, true)?;
        if id.chars().count() > MAX_ID_CHARS {
            self.fail(
                path(parent, key),
                format!("must be at most {MAX_ID_CHARS} characters"),
            );
            return None;
        }
        if id.chars().any(char::is_control) {
            self.fail(path(parent, key), "must not contain control characters");
            return None;
        }
        Some(id.to_string())
    }

    /// A number field, optionally bounded to `range` (inclusive).
    fn number(
        &mut self,
        map: &Map<String, Value>,
        parent: &str,
        key: &str,
        required: bool,
        range: (f64, f64),
    ) -> Option<f64> {
        let field = path(parent, key);
        let value = match present(map, key) {
            None => {
                if required {
                    self.fail(field, "is required");
                }
                return None;
            }
            Some(v) => v,
        };
        let Some(n) = value.as_f64() else {
            self.fail(field, "must be a number");
            return None;
        };
        let (lo, hi) = range;
        if !(lo..=hi).contains(&n) {
            let message = if hi == f64::MAX {
                format!("must be at least {lo}")
            } else {
                format!("must be between {lo} and {hi}")
            };
            self.fail(field, message);
            return None;
        }
        Some(n)
    }

    fn transcript(
        mut self,
        top: &Map<String, Value>,
        rules: &Rules,
    ) -> Result<Transcript, Rejection> {
        self.unknown_fields(top, "", TOP_FIELDS);

        let call_id = self.identifier(top, "", "call_id");

        let agent = self.object(top, "", "agent", true, AGENT_FIELDS);
        let (agent_id, agent_name) = match agent {
            Some(agent) => (
                self.identifier(agent, "agent", "id"),
                self.string(agent, "agent", "name", false)
                    .map(str::to_string),
            ),
            None => (None, None),
        };

        let caller = self.object(top, "", "caller", false, CALLER_FIELDS);
        let (caller_phone, caller_name) = match caller {
            Some(caller) => (
                self.phone(caller, &rules.default_region),
                self.string(caller, "caller", "name", false)
                    .map(str::to_string),
            ),
            None => (None, None),
        };

        let started_at = self.string(top, "", "started_at", false).and_then(|s| {
            let t = Timestamp::parse_rfc3339(s);
            if t.is_none() {
                self.fail(
                    "started_at",
                    "must be an RFC 3339 timestamp such as 2026-11-22T08:15:30+07:00",
                );
            }
            t
        });
        let duration_seconds = self.number(top, "", "duration_seconds", false, (0.0, f64::MAX));
        let direction = self
            .string(top, "", "direction", false)
            .and_then(|d| match d {
                "inbound" | "outbound" => Some(d.to_string()),
                _ => {
                    self.fail("direction", "must be \"inbound\" or \"outbound\"");
                    None
                }
            });
        let category = self.string(top, "", "category", false).map(str::to_string);
        let words = self.words(top);
        let recording_url = self.recording_url(top);
        let location = self.location(top);
        let language = self.string(top, "", "language", false).and_then(|l| {
            if is_language_tag(l) {
                Some(l.to_string())
            } else {
                self.fail(
                    "language",
                    "must be a language tag such as \"id\" or \"jv\"",
                );
                None
            }
        });

        match (call_id, agent_id, words) {
            (Some(call_id), Some(agent_id), Some(words)) if self.errors.is_empty() => {
                Ok(Transcript {
                    call_id,
                    agent_id,
                    agent_name,
                    caller_phone,
                    caller_name,
                    started_at,
                    duration_seconds,
                    direction,
                    category,
                    words,
                    recording_url,
                    location,
                    language,
                })
            }
            _ => Err(Rejection::Invalid(self.errors)),
        }
    }

    /// The caller's number in E.164. Blank means the number was withheld.
    fn phone(&mut self, caller: &Map<String, Value>, region: &str) -> Option<String> {
        let raw = self.string(caller, "caller", "phone", false)?;
        let e164 = phone::normalize(raw, region);
        if e164.is_none() {
            self.fail("caller.phone", "must be a phone number");
        }
        e164
    }

    /// Exactly one of `text` and `segments`. Both are still checked when both
    /// are given, so their own problems come in the same answer.
    fn words(&mut self, top: &Map<String, Value>) -> Option<Words> {
        let text = present(top, "text").and_then(|text| match text {
            Value::String(s) if s.trim().is_empty() => {
                self.fail("text", "must not be empty");
                None
            }
            Value::String(s) => Some(Words::Text(s.trim().to_string())),
            _ => {
                self.fail("text", "must be a string");
                None
            }
        });
        let segments = present(top, "segments").and_then(|segments| match segments {
            Value::Array(items) if items.is_empty() => {
                self.fail("segments", "must not be empty");
                None
            }
            Value::Array(items) => {
                let before = self.errors.len();
                let segments: Vec<Segment> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.segment(i, item))
                    .collect();
                (self.errors.len() == before).then_some(Words::Segments(segments))
            }
            _ => {
                self.fail("segments", "must be an array");
                None
            }
        });
        match (present(top, "text"), present(top, "segments")) {
            (Some(_), Some(_)) => {
                self.fail("text", "give either text or segments, not both");
                None
            }
            (None, None) => {
                self.fail("text", "either text or segments is required");
                None
            }
            _ => text.or(segments),
        }
    }

    fn segment(&mut self, index: usize, item: &Value) -> Option<Segment> {
        let field = format!("segments[{index}]");
        let Value::Object(map) = item else {
            self.fail(field, "must be an object");
            return None;
        };
        self.unknown_fields(map, &field, SEGMENT_FIELDS);
        let speaker = self.string(map, &field, "speaker", true);
        // A turn with no words carries nothing worth keeping, and usually
        // means the export went wrong.
        let text = match present(map, "text") {
            None => {
                self.fail(path(&field, "text"), "is required");
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.fail(path(&field, "text"), "must not be empty");
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => {
                self.fail(path(&field, "text"), "must be a string");
                None
            }
        };
        let offset_seconds = self.number(map, &field, "offset_seconds", false, (0.0, f64::MAX));
        Some(Segment {
            speaker: speaker?.to_string(),
            text: text?,
            offset_seconds,
        })
    }

    fn recording_url(&mut self, top: &Map<String, Value>) -> Option<String> {
        let raw = self.string(top, "", "recording_url", false)?;
        let ok = raw.len() <= MAX_URL_BYTES
            && url::Url::parse(raw)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if ok {
            Some(raw.to_string())
        } else {
            self.fail("recording_url", "must be an absolute http or https URL");
            None
        }
    }

    fn location(&mut self, top: &Map<String, Value>) -> Option<Location> {
        let map = self.object(top, "", "location", false, LOCATION_FIELDS)?;
        let latitude = self.number(map, "location", "latitude", true, (-90.0, 90.0));
        let longitude = self.number(map, "location", "longitude", true, (-180.0, 180.0));
        let name = self
            .string(map, "location", "name", false)
            .map(str::to_string);
        let address = self
            .string(map, "location", "address", false)
            .map(str::to_string);
        Some(Location {
            latitude: latitude?,
            longitude: longitude?,
            name,
            address,
        })
    }
}

/// An unknown key as it is named in an answer: keys are input, so a long one
/// is cut and control characters are replaced.
fn shown_key(key: &str) -> String {
    const MAX: usize = 64;
    let mut shown: String = key
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if key.chars().count() > MAX {
        shown.push('…');
    }
    shown
}

/// A BCP 47 tag in the shape call centers send: `id`, `jv`, `en-US`, `sr-Latn`.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}
