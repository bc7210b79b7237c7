//! Split messages made whole: one complaint from the parts that arrived.
//!
//! Pure: where parts are held (Redis, or the spool while Redis is away) is
//! the caller's business.

use std::collections::BTreeMap;

use aduan_adapter::{Complaint, Raw};

/// Written where a part never arrived.
pub const MISSING_PART: &str = "[…]";

/// One complaint from the parts held, in part order.
///
/// It takes the first held part's fields (its `external_id` among them).
/// The texts are joined as they are, since a split falls anywhere, even
/// inside a word. When parts are missing, each gap reads [`MISSING_PART`] in
/// the text and `subject` ends with `[incomplete: <held> of <total> parts]`.
/// `None` when no part is held.
pub fn assemble(parts: BTreeMap<u32, Complaint>, total: u32) -> Option<Complaint> {
    let first = parts.values().next()?;
    let mut out = first.clone();
    let held = parts.len() as u32;
    let complete = (1..=total).all(|n| parts.contains_key(&n));
    let mut text = String::new();
    let last = total.max(parts.keys().next_back().copied().unwrap_or(0));
    for n in 1..=last {
        match parts.get(&n) {
            Some(p) => text.push_str(&p.text),
            None => text.push_str(MISSING_PART),
        }
    }
    out.text = text;
    out.attachments = parts.values().flat_map(|p| p.attachments.clone()).collect();
    if !complete {
        let note = format!("[incomplete: {held} of {total} parts]");
        out.subject = Some(match out.subject.take() {
            Some(s) => format!("{s} {note}"),
            None => note,
        });
    }
    // Keep every part's exact bytes, one per line, when all were kept as text.
    let raws: Option<Vec<&Raw>> = parts.values().map(|p| p.raw.as_ref()).collect();
    out.raw = match raws {
        Some(raws) if raws.iter().all(|r| !r.content_type.ends_with(";base64")) => Some(Raw {
            content_type: first
                .raw
                .as_ref()
                .map(|r| r.content_type.clone())
                .unwrap_or_default(),
            body: raws
                .iter()
                .map(|r| r.body.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        }),
        _ => first.raw.clone(),
    };
    // Joining can put a combining mark next to the character it belongs to:
    // the whole text is normalized again, as every adapter's output is.
    out.sanitize();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_adapter::{Channel, Context, Timestamp};

    fn part(n: u32, text: &str, subject: Option<&str>) -> Complaint {
        let ctx = Context {
            instance: "vonage-jabar",
            received_at: Timestamp::from_unix_seconds(1_795_335_330).expect("in range"),
            keep_raw: true,
        };
        let mut c = Complaint::new(
            &ctx,
            Channel::Sms,
            "vonage",
            format!("msg-{n}"),
            "tel:+6281234567890",
        );
        c.text = text.to_string();
        c.subject = subject.map(str::to_string);
        c.raw = Some(Raw {
            content_type: "application/x-www-form-urlencoded".into(),
            body: format!("part={n}"),
        });
        c
    }

    #[test]
    fn complete_messages_join_without_separators() {
        let parts = BTreeMap::from([
            (2, part(2, "ya rusak ", None)),
            (1, part(1, "Jalan n", Some("LAPOR"))),
            (3, part(3, "parah", None)),
        ]);
        let whole = assemble(parts, 3).expect("parts held");
        assert_eq!(whole.text, "Jalan nya rusak parah");
        assert_eq!(whole.subject.as_deref(), Some("LAPOR"));
        assert_eq!(whole.external_id, "msg-1");
        assert_eq!(
            whole.raw.map(|r| r.body).as_deref(),
            Some("part=1\npart=2\npart=3")
        );
    }

    #[test]
    fn incomplete_messages_are_marked() {
        let parts = BTreeMap::from([(2, part(2, "tengah ", None)), (4, part(4, "akhir", None))]);
        let whole = assemble(parts, 4).expect("parts held");
        assert_eq!(whole.text, "[…]tengah […]akhir");
        assert_eq!(whole.subject.as_deref(), Some("[incomplete: 2 of 4 parts]"));
        assert_eq!(whole.external_id, "msg-2");

        let first_only = BTreeMap::from([(1, part(1, "awal ", Some("ADUAN")))]);
        let whole = assemble(first_only, 2).expect("parts held");
        assert_eq!(whole.text, "awal […]");
        assert_eq!(
            whole.subject.as_deref(),
            Some("ADUAN [incomplete: 1 of 2 parts]")
        );
        assert!(assemble(BTreeMap::new(), 2).is_none());
    }
}
