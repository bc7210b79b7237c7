//! What a spool record holds, as writers encode it ([`RecordRef`]) and as
//! the forwarder reads it back ([`Record`]).

use aduan_adapter::Complaint;
use serde::{Deserialize, Serialize};

use super::Event;

/// What a record holds: a complaint as accepted
/// (id, language and all; for a part of a split message, which part it is),
/// or an [`Event`] (opt-outs, opt-ins, delivery reports). A record with
/// neither does not decode, and is quarantined.
#[derive(Deserialize)]
#[serde(try_from = "RecordFields")]
pub(super) struct Record {
    pub(super) body: Body,
}

/// What a record is.
// Nearly every record is a complaint; boxing it would cost an allocation
// per record forwarded for the rare event's sake.
#[allow(clippy::large_enum_variant)]
pub(super) enum Body {
    Complaint {
        complaint: Complaint,
        part: Option<Part>,
    },
    Event(Event),
}

/// A record's fields as stored, besides `spooled_at_ms` (read on its own by
/// `spooled_at`). Records written before events were spooled have
/// `complaint` and maybe `part`.
#[derive(Deserialize)]
struct RecordFields {
    #[serde(default)]
    complaint: Option<Complaint>,
    #[serde(default)]
    part: Option<Part>,
    #[serde(default)]
    event: Option<Event>,
}

impl Record {
    /// True for a complaint that is not a part of a split message: such
    /// records in a row are forwarded as one append.
    pub(super) fn is_whole_complaint(&self) -> bool {
        matches!(self.body, Body::Complaint { part: None, .. })
    }
}

impl TryFrom<RecordFields> for Record {
    type Error = &'static str;

    fn try_from(f: RecordFields) -> Result<Self, Self::Error> {
        let body = match (f.complaint, f.event) {
            (Some(complaint), None) => Body::Complaint {
                complaint,
                part: f.part,
            },
            (None, Some(event)) if f.part.is_none() => Body::Event(event),
            _ => return Err("a record holds one complaint or one event"),
        };
        Ok(Record { body })
    }
}

/// Where a spooled part belongs (see [`aduan_adapter::Fragment`]) and its group's window.
#[derive(Serialize, Deserialize)]
pub(super) struct Part {
    pub(super) group: String,
    pub(super) part: u32,
    pub(super) total: u32,
    pub(super) window_ms: u64,
}

/// The borrowed form of [`Record`] that writers encode.
#[derive(Serialize)]
pub(super) struct RecordRef<'a> {
    pub(super) spooled_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) complaint: Option<&'a Complaint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) part: Option<Part>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) event: Option<&'a Event>,
}

/// The spool time of an encoded record, without decoding the complaint.
pub(super) fn spooled_at(bytes: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Head {
        spooled_at_ms: i64,
    }
    serde_json::from_slice::<Head>(bytes)
        .ok()
        .map(|h| h.spooled_at_ms)
}
