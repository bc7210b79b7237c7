//! The status loop's contract: the `aduan.status.v1` entries the core system
//! appends to a complaint's partition's status stream (`aduan:status`), one
//! per thing that happened to the complaint (SPEC section 11,
//! `docs/status.md`).
//!
//! Parsing is a pure step: an entry is read, checked and either becomes a
//! [`StatusUpdate`] or a [`StatusRejection`] with a code, before anything is
//! looked up or written.

use serde::{Deserialize, Serialize};

use crate::complaint::Timestamp;

/// The value of a status entry's `schema` field.
pub const STATUS_SCHEMA: &str = "aduan.status.v1";

/// Longest `status_id` accepted (it is the idempotency key).
pub const MAX_STATUS_ID: usize = 128;
/// Longest `agency`, in characters.
pub const MAX_AGENCY: usize = 200;
/// Longest `public_note`, in characters.
pub const MAX_NOTE: usize = 2000;

/// Where a complaint is: the fixed list every core system maps onto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    Received,
    Verified,
    Forwarded,
    InProgress,
    WaitingForCitizen,
    Resolved,
    Rejected,
    Closed,
}

impl StatusKind {
    /// Every status, in the order a complaint usually goes through them.
    pub const ALL: [StatusKind; 8] = [
        StatusKind::Received,
        StatusKind::Verified,
        StatusKind::Forwarded,
        StatusKind::InProgress,
        StatusKind::WaitingForCitizen,
        StatusKind::Resolved,
        StatusKind::Rejected,
        StatusKind::Closed,
    ];

    /// The name in entries, settings and the JSON answers.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Received => "received",
            StatusKind::Verified => "verified",
            StatusKind::Forwarded => "forwarded",
            StatusKind::InProgress => "in_progress",
            StatusKind::WaitingForCitizen => "waiting_for_citizen",
            StatusKind::Resolved => "resolved",
            StatusKind::Rejected => "rejected",
            StatusKind::Closed => "closed",
        }
    }

    /// The status named `name`.
    pub fn from_name(name: &str) -> Option<StatusKind> {
        StatusKind::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Open311 GeoReport v2 knows two: `open` and `closed`.
    pub fn open311(self) -> &'static str {
        match self {
            StatusKind::Received
            | StatusKind::Verified
            | StatusKind::Forwarded
            | StatusKind::InProgress
            | StatusKind::WaitingForCitizen => "open",
            StatusKind::Resolved | StatusKind::Rejected | StatusKind::Closed => "closed",
        }
    }

    /// The label a citizen reads, in Indonesian (`ind`) or English (any other).
    pub fn label(self, language: &str) -> &'static str {
        let indonesian = language == "ind" || language == "id";
        match (self, indonesian) {
            (StatusKind::Received, true) => "Diterima",
            (StatusKind::Verified, true) => "Diverifikasi",
            (StatusKind::Forwarded, true) => "Diteruskan ke instansi",
            (StatusKind::InProgress, true) => "Sedang ditangani",
            (StatusKind::WaitingForCitizen, true) => "Menunggu tanggapan Anda",
            (StatusKind::Resolved, true) => "Selesai",
            (StatusKind::Rejected, true) => "Ditolak",
            (StatusKind::Closed, true) => "Ditutup",
            (StatusKind::Received, false) => "Received",
            (StatusKind::Verified, false) => "Verified",
            (StatusKind::Forwarded, false) => "Forwarded to the agency",
            (StatusKind::InProgress, false) => "In progress",
            (StatusKind::WaitingForCitizen, false) => "Waiting for your reply",
            (StatusKind::Resolved, false) => "Resolved",
            (StatusKind::Rejected, false) => "Rejected",
            (StatusKind::Closed, false) => "Closed",
        }
    }
}

/// One status entry (`aduan:status`, field `status`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    /// Optional on input; [`STATUS_SCHEMA`] when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The core system's id for this update: a second entry with the same
    /// id changes nothing.
    pub status_id: String,
    /// The complaint, by its id …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_id: Option<String>,
    /// … or by its tracking number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<String>,
    pub status: StatusKind,
    /// The agency now responsible (shown to the citizen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// A note the citizen and the public may read; never the officers' own notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_note: Option<String>,
    /// When it happened in the core system.
    pub at: Timestamp,
    /// Whether the citizen is told; absent: the instance's default for the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<bool>,
}

/// Why an entry is refused: `code` for machines, `message` for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRejection {
    pub code: &'static str,
    pub message: String,
}

impl StatusRejection {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        StatusRejection {
            code,
            message: message.into(),
        }
    }
}

impl StatusUpdate {
    /// Reads and checks one entry's JSON (`None`: the entry has no `status` field).
    pub fn parse(json: Option<&str>) -> Result<StatusUpdate, StatusRejection> {
        let Some(json) = json else {
            return Err(StatusRejection::new(
                "malformed",
                "the entry has no `status` field",
            ));
        };
        let update: StatusUpdate = serde_json::from_str(json).map_err(|e| {
            let code = if e.to_string().contains("unknown variant") {
                "unknown_status"
            } else {
                "malformed"
            };
            StatusRejection::new(code, format!("not an aduan.status.v1 entry: {e}"))
        })?;
        if let Some(schema) = &update.schema
            && schema != STATUS_SCHEMA
        {
            return Err(StatusRejection::new(
                "unknown_schema",
                format!("schema must be {STATUS_SCHEMA}"),
            ));
        }
        let id = update.status_id.trim();
        if id.is_empty() || id.len() > MAX_STATUS_ID || id.chars().any(char::is_control) {
            return Err(StatusRejection::new(
                "malformed",
                format!("status_id must be 1 to {MAX_STATUS_ID} bytes without control characters"),
            ));
        }
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if !given(&update.complaint_id) && !given(&update.tracking) {
            return Err(StatusRejection::new(
                "malformed",
                "an entry names its complaint by complaint_id or tracking",
            ));
        }
        for (key, value, max) in [
            ("agency", &update.agency, MAX_AGENCY),
            ("public_note", &update.public_note, MAX_NOTE),
        ] {
            if value.as_deref().is_some_and(|v| v.chars().count() > max) {
                return Err(StatusRejection::new(
                    "too_long",
                    format!("{key} is longer than {max} characters"),
                ));
            }
        }
        Ok(update)
    }

    /// The part anyone holding the number may read: no complaint id, no
    /// citizen, no text of the complaint.
    pub fn public(&self) -> PublicStatus {
        PublicStatus {
            status: self.status,
            agency: self.agency.clone(),
            note: self.public_note.clone(),
            at: self.at,
        }
    }
}

/// One status as the store keeps it and the public reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublicStatus {
    pub status: StatusKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_and_every_status_has_its_name() {
        let u = StatusUpdate::parse(Some(
            r#"{"status_id":"st-1","tracking":"ADU-7K3M-9QX2","status":"in_progress",
                "agency":"Dinas PUPR Kota Bogor","public_note":"Tim sudah ke lokasi.",
                "at":"2026-12-08T03:00:00Z"}"#,
        ))
        .expect("a good entry");
        assert_eq!(u.status, StatusKind::InProgress);
        assert_eq!(u.status.open311(), "open");
        for s in StatusKind::ALL {
            assert_eq!(StatusKind::from_name(s.as_str()), Some(s));
            assert_ne!(s.label("ind"), s.label("eng"));
        }
        assert_eq!(StatusKind::Resolved.open311(), "closed");
    }

    #[test]
    fn bad_entries_are_refused_with_a_code() {
        let codes: Vec<&str> = [
            None,
            Some("{"),
            Some(r#"{"status_id":"a","tracking":"ADU-1","status":"lost","at":"2026-12-08T03:00:00Z"}"#),
            Some(r#"{"status_id":"a","status":"closed","at":"2026-12-08T03:00:00Z"}"#),
            Some(r#"{"status_id":"","tracking":"x","status":"closed","at":"2026-12-08T03:00:00Z"}"#),
            Some(r#"{"status_id":"a","tracking":"x","status":"closed","at":"2026-12-08T03:00:00Z","secret":1}"#),
            Some(r#"{"schema":"aduan.status.v9","status_id":"a","tracking":"x","status":"closed","at":"2026-12-08T03:00:00Z"}"#),
        ]
        .into_iter()
        .map(|j| StatusUpdate::parse(j).map(|_| ()).unwrap_err().code)
        .collect();
        assert_eq!(
            codes,
            [
                "malformed",
                "malformed",
                "unknown_status",
                "malformed",
                "malformed",
                "malformed",
                "unknown_schema"
            ]
        );
        let long = "x".repeat(MAX_NOTE + 1);
        let json = serde_json::json!({"status_id":"a","tracking":"x","status":"closed",
            "at":"2026-12-08T03:00:00Z","public_note": long})
        .to_string();
        assert_eq!(
            StatusUpdate::parse(Some(&json)).unwrap_err().code,
            "too_long"
        );
    }
}
