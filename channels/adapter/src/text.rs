//! Input hygiene: the one normalization every string of a Complaint gets
//! before it leaves an adapter.
//!
//! Providers pass on whatever a phone, a mail client or a call center's
//! software put in a field: NUL bytes and escape sequences from a broken SMTP
//! client, a name typed with a decomposed accent (`e` + U+0301) beside the
//! same name typed precomposed. The core complaint system compares, indexes
//! and displays these strings, and a terminal or a log viewer interprets
//! escape sequences, so every string takes one form:
//!
//! - **NFC** everywhere, so that the same word is the same bytes.
//! - **Free text** ([`free_text`]: `text`, attachment captions, transcript
//!   segments) keeps line feeds and tabs; a carriage return becomes a line
//!   feed (`\r\n` one line feed); every other control character is removed.
//! - **Labels** ([`label`]: `sender.name`, `subject`, file names, place names,
//!   agents, speakers) keep no control character; a run of control characters
//!   holding a line break or a tab becomes one space between words (none
//!   beside a space already there, none at either end), so `Siti\nRahayu`
//!   stays two words.
//! - **Identifiers** ([`identifier`]: ids, URNs, addresses, handles, numbers,
//!   URLs, media types) keep no control character at all.
//!
//! A control character is one of Unicode general category Cc: C0 (U+0000 to
//! U+001F), DEL and C1 (U+0080 to U+009F). U+FFFD, which undecodable bytes
//! become, is not one and stays. `raw` is the exact bytes received and is left
//! as it is. Each rule is idempotent, and an already clean string is returned
//! without a copy.
//!
//! [`Complaint::sanitize`] applies the rules to every field; [`Adapter::parse`]
//! runs it on everything an adapter returns, so no adapter can leave it out.
//!
//! [`Adapter::parse`]: crate::Adapter::parse

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization as _;

use crate::{Attachment, Call, Complaint, Location, Outcome, Segment, Sender, Thread};

/// Free text: NFC, line feeds and tabs kept, a carriage return (alone or
/// before a line feed) one line feed, every other control character removed.
pub fn free_text(s: &str) -> Cow<'_, str> {
    let allowed = |c: char| c == '\n' || c == '\t';
    if !s.chars().any(|c| c.is_control() && !allowed(c)) {
        return nfc(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push('\n'),
            c if c.is_control() && !allowed(c) => {}
            c => out.push(c),
        }
    }
    nfc(Cow::Owned(out))
}

/// A one-line label (a name, a subject): NFC, no control character; a run of
/// control characters that holds a line break or a tab becomes one space
/// between words (none next to a space already there, none at either end).
pub fn label(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return nfc(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for c in s.chars() {
        if c.is_control() {
            // Tab, line feed, vertical tab, form feed, carriage return, NEL.
            gap |= c.is_whitespace();
            continue;
        }
        // No space where one is already, before or after the gap.
        if gap && !out.ends_with(char::is_whitespace) && !out.is_empty() && !c.is_whitespace() {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    nfc(Cow::Owned(out))
}

/// An identifier, URN, address or URL: NFC, every control character removed.
pub fn identifier(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return nfc(Cow::Borrowed(s));
    }
    nfc(Cow::Owned(s.chars().filter(|c| !c.is_control()).collect()))
}

/// A SHA-256 digest as 64 lowercase hex digits, from hex in either case or
/// from base64 (standard or URL-safe alphabet, padded or not) of the 32
/// bytes, as WhatsApp gives it. Anything else is not a SHA-256 digest: `None`.
pub fn digest_hex(given: &str) -> Option<String> {
    use base64::Engine as _;
    let given = given.trim();
    if given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(given.to_ascii_lowercase());
    }
    let unpadded = given.trim_end_matches('=');
    let engine = if unpadded.contains(['-', '_']) {
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        &base64::engine::general_purpose::STANDARD_NO_PAD
    };
    match engine.decode(unpadded) {
        Ok(bytes) if bytes.len() == 32 => Some(hex::encode(bytes)),
        _ => None,
    }
}

fn nfc(s: Cow<'_, str>) -> Cow<'_, str> {
    if unicode_normalization::is_nfc(&s) {
        s
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

/// Replaces `s` by `rule(s)` when that differs.
fn apply(s: &mut String, rule: fn(&str) -> Cow<'_, str>) {
    if let Cow::Owned(clean) = rule(s) {
        *s = clean;
    }
}

/// As [`apply`]; a value that held nothing but control characters is absent.
fn apply_opt(s: &mut Option<String>, rule: fn(&str) -> Cow<'_, str>) {
    if let Some(v) = s {
        let was_empty = v.is_empty();
        apply(v, rule);
        if v.is_empty() && !was_empty {
            *s = None;
        }
    }
}

impl Complaint {
    /// Brings every string field to the form this module describes; `raw`
    /// stays the exact bytes received. Also makes `attachments[].sha256`
    /// lowercase hex (or `null` when it is not a SHA-256 digest).
    pub fn sanitize(&mut self) {
        let Complaint {
            schema,
            id,
            tracking,
            received_at: _,
            sent_at: _,
            channel: _,
            provider,
            instance,
            external_id,
            sender,
            recipient,
            subject,
            text,
            language,
            attachments,
            location,
            thread,
            call,
            raw: _,
        } = self;
        for s in [schema, id, provider, instance, external_id] {
            apply(s, identifier);
        }
        sanitize_sender(sender);
        apply_opt(recipient, identifier);
        apply_opt(tracking, identifier);
        apply_opt(subject, label);
        apply(text, free_text);
        apply_opt(language, identifier);
        attachments.iter_mut().for_each(sanitize_attachment);
        if let Some(location) = location {
            sanitize_location(location);
        }
        sanitize_thread(thread);
        if let Some(call) = call {
            sanitize_call(call);
        }
    }
}

fn sanitize_sender(sender: &mut Sender) {
    let Sender {
        id,
        name,
        phone,
        email,
        handle,
        language,
    } = sender;
    apply(id, identifier);
    apply_opt(name, label);
    for s in [phone, email, handle, language] {
        apply_opt(s, identifier);
    }
}

fn sanitize_attachment(a: &mut Attachment) {
    let Attachment {
        kind: _,
        content_type,
        filename,
        size: _,
        sha256,
        url,
        provider_ref,
        storage_key,
        caption,
    } = a;
    for s in [content_type, url, provider_ref, storage_key] {
        apply_opt(s, identifier);
    }
    apply_opt(filename, label);
    apply_opt(caption, free_text);
    *sha256 = sha256.as_deref().and_then(digest_hex);
}

fn sanitize_location(l: &mut Location) {
    let Location {
        latitude: _,
        longitude: _,
        name,
        address,
    } = l;
    apply_opt(name, label);
    apply_opt(address, label);
}

fn sanitize_thread(t: &mut Thread) {
    let Thread {
        conversation,
        in_reply_to,
        references,
    } = t;
    apply(conversation, identifier);
    apply_opt(in_reply_to, identifier);
    references.iter_mut().for_each(|r| apply(r, identifier));
}

fn sanitize_call(call: &mut Call) {
    let Call {
        call_id,
        agent_id,
        agent_name,
        started_at: _,
        duration_seconds: _,
        direction,
        recording_url,
        segments,
    } = call;
    apply(call_id, identifier);
    for s in [agent_id, direction, recording_url] {
        apply_opt(s, identifier);
    }
    apply_opt(agent_name, label);
    for Segment {
        speaker,
        text,
        offset_seconds: _,
    } in segments
    {
        apply(speaker, label);
        apply(text, free_text);
    }
}

impl Outcome {
    /// [`Complaint::sanitize`] on every complaint this outcome holds,
    /// split-message parts included.
    pub fn sanitize(&mut self) {
        match self {
            Outcome::Accept { complaints, .. } | Outcome::AcceptWithBlobs { complaints, .. } => {
                complaints.iter_mut().for_each(Complaint::sanitize);
            }
            Outcome::Fragments(parts) => {
                parts.iter_mut().for_each(|p| p.complaint.sanitize());
            }
            Outcome::Reply(_) => {}
        }
    }

    /// This outcome, sanitized.
    pub fn sanitized(mut self) -> Self {
        self.sanitize();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_keeps_line_feeds_and_tabs_only() {
        assert_eq!(free_text("Jalan\trusak\nparah"), "Jalan\trusak\nparah");
        assert_eq!(free_text("satu\r\ndua\rtiga"), "satu\ndua\ntiga");
        assert_eq!(
            free_text("a\u{0}b\u{7}c\u{1b}[31md\u{7f}e\u{85}f\u{9f}g"),
            "abc[31mdefg"
        );
        assert_eq!(free_text("rusak \u{fffd} parah"), "rusak \u{fffd} parah");
    }

    #[test]
    fn labels_keep_words_apart_and_no_control_character() {
        assert_eq!(label("Siti\nRahayu"), "Siti Rahayu");
        assert_eq!(label("Siti\r\n\tRahayu\n"), "Siti Rahayu");
        assert_eq!(label("\u{0}Bu\u{0}di\u{1b}"), "Budi");
        assert_eq!(label("Saluran\u{85}air"), "Saluran air");
        assert_eq!(label("tersumbat\u{b} di"), "tersumbat di");
        assert_eq!(label("tersumbat \r\n di"), "tersumbat  di");
    }

    #[test]
    fn identifiers_keep_no_control_character() {
        assert_eq!(
            identifier("mailto:\u{fffd}\u{fffd}\u{0}bin@example.id"),
            "mailto:\u{fffd}\u{fffd}bin@example.id"
        );
        assert_eq!(identifier("wamid.\nAB\tC\r"), "wamid.ABC");
    }

    #[test]
    fn every_rule_composes_to_nfc() {
        for rule in [free_text, label, identifier] {
            assert_eq!(rule("Jose\u{301}"), "Jos\u{e9}");
            // A control character between a letter and its accent goes first.
            assert_eq!(rule("e\u{0}\u{301}"), "\u{e9}");
            // Hangul jamo compose; the Ohm sign is canonically Omega.
            assert_eq!(rule("\u{1100}\u{1161} \u{2126}"), "\u{ac00} \u{3a9}");
        }
    }

    #[test]
    fn clean_strings_are_not_copied() {
        for rule in [free_text, label, identifier] {
            assert!(matches!(rule("Jalan Raya Bogor, é"), Cow::Borrowed(_)));
        }
        assert!(matches!(free_text("a\nb\tc"), Cow::Borrowed(_)));
    }

    #[test]
    fn rules_are_idempotent() {
        let samples = [
            "a\r\n\u{0}e\u{301}\u{85}",
            "\n\t\r",
            "x\u{1b}\u{308}y",
            "\u{344}",
        ];
        for rule in [free_text, label, identifier] {
            for s in samples {
                let once = rule(s).into_owned();
                assert_eq!(rule(&once), once.as_str(), "{s:?}");
            }
        }
    }

    #[test]
    fn digests_become_lowercase_hex() {
        let hex = "b29814cf5792e684cd75d6a7fce7a67a11887e312f87ca2ac2496d81f365ff72";
        assert_eq!(digest_hex(hex).as_deref(), Some(hex));
        assert_eq!(digest_hex(&hex.to_uppercase()).as_deref(), Some(hex));
        let b64 = "spgUz1eS5oTNddan/OemehGIfjEvh8oqwkltgfNl/3I=";
        assert_eq!(digest_hex(b64).as_deref(), Some(hex));
        assert_eq!(digest_hex(b64.trim_end_matches('=')).as_deref(), Some(hex));
        let url_safe = b64.replace('/', "_");
        assert_eq!(digest_hex(&url_safe).as_deref(), Some(hex));
        for not_a_digest in ["", "IMAGE_HASH", "c236", &hex[..62], "aGFp"] {
            assert_eq!(digest_hex(not_a_digest), None, "{not_a_digest}");
        }
    }
}
