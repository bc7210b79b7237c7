//! Input hygiene: the one normalization every string of a Complaint gets
//! before it leaves an adapter.
//!
//! Providers pass on whatever a phone, a mail client or a call center's
//! software put in a field: NUL bytes and escape sequences from a broken SMTP
//! client, a name typed with a decomposed accent (`e` + U+0301) beside the
//! same name typed precomposed, or a name written to display as another.
//! The core complaint system compares, indexes and displays these strings,
//! and a terminal or a log viewer interprets escape sequences, so every
//! string takes one form:
//!
//! - **NFC** everywhere, so that the same word is the same bytes.
//! - **No bidirectional controls** anywhere: the embeddings and overrides
//!   U+202A to U+202E, the isolates U+2066 to U+2069 and the marks LRM
//!   (U+200E), RLM (U+200F) and ALM (U+061C). An override in a sender's name
//!   (`Budi` + U+202E + `nimdA`) shows an agent `Budi Admin`; the marks can
//!   move digits and punctuation around the same way. Arabic or Hebrew text
//!   reads correctly without them, since every screen applies the Unicode
//!   bidirectional algorithm by itself.
//! - **Free text** ([`free_text`]: `text`, attachment captions, transcript
//!   segments) keeps line feeds and tabs; a carriage return becomes a line
//!   feed (`\r\n` one line feed); every other control character is removed,
//!   and so is U+FEFF (a byte order mark that leaked in: nobody types one).
//!   The zero-width space U+200B and the word joiner U+2060 stay (Thai,
//!   Khmer, Lao and Burmese mark word breaks with them), and so do ZWNJ
//!   (U+200C) and ZWJ (U+200D), which emoji sequences and Persian or Indic
//!   spelling need.
//! - **Labels** ([`label`]: `sender.name`, `subject`, file names, place names,
//!   agents, speakers) keep no control character; a run of control characters
//!   holding a line break or a tab becomes one space between words (none
//!   beside a space already there, none at either end), so `Siti\nRahayu`
//!   stays two words. The zero-width characters U+200B, U+2060 and U+FEFF
//!   are removed: `Bu` + U+200B + `di` looks like `Budi` and is not.
//! - **Identifiers** ([`identifier`]: ids, URNs, addresses, handles, numbers,
//!   URLs, media types) keep no control character and no zero-width
//!   character at all.
//! - **Joiners in labels and identifiers**: a run of ZWNJ or ZWJ stays only
//!   between two characters outside ASCII that are not spaces (an emoji
//!   sequence, a Persian name, an address on a Persian domain), where it
//!   changes how they are drawn. Anywhere else (next to ASCII, a space or
//!   an end) it changes nothing a reader sees and is removed.
//!
//! A control character is one of Unicode general category Cc: C0 (U+0000 to
//! U+001F), DEL and C1 (U+0080 to U+009F). U+FFFD, which undecodable bytes
//! become, is not one and stays. Other format characters (soft hyphens,
//! variation selectors, tags of flag emoji) stay: they do not reorder text.
//! `raw` is the exact bytes received and is left as it is. Each rule is
//! idempotent, and an already clean string is returned without a copy.
//!
//! [`Complaint::sanitize`] applies the rules to every field; [`Adapter::parse`]
//! runs it on everything an adapter returns, so no adapter can leave it out.
//!
//! [`Adapter::parse`]: crate::Adapter::parse

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization as _;

use crate::{Attachment, Call, Complaint, Location, Outcome, Segment, Sender, Thread};

/// Whether `c` is a bidirectional formatting character: an embedding or
/// override (U+202A to U+202E), an isolate (U+2066 to U+2069), or one of the
/// marks LRM, RLM and ALM. None is kept in any field.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}'
    )
}

/// Whether `c` is one of the zero-width characters removed from labels and
/// identifiers: the zero-width space, the word joiner and U+FEFF (a byte
/// order mark, or the old zero-width no-break space).
pub fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}')
}

/// Whether `c` is ZWNJ (U+200C) or ZWJ (U+200D).
pub fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200c}' | '\u{200d}')
}

/// What free text never keeps besides control characters.
fn hidden_in_text(c: char) -> bool {
    is_bidi_control(c) || c == '\u{feff}'
}

/// What labels and identifiers never keep besides control characters.
fn hidden_in_label(c: char) -> bool {
    is_bidi_control(c) || is_zero_width(c)
}

/// Free text: NFC, line feeds and tabs kept, a carriage return (alone or
/// before a line feed) one line feed, every other control character, every
/// bidirectional control and U+FEFF removed.
pub fn free_text(s: &str) -> Cow<'_, str> {
    let allowed = |c: char| c == '\n' || c == '\t';
    let removed = |c: char| (c.is_control() && !allowed(c)) || hidden_in_text(c);
    if !s.chars().any(removed) {
        return nfc(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push('\n'),
            c if removed(c) => {}
            c => out.push(c),
        }
    }
    nfc(Cow::Owned(out))
}

/// A one-line label (a name, a subject): NFC, no control character; a run of
/// control characters that holds a line break or a tab becomes one space
/// between words (none next to a space already there, none at either end).
/// No bidirectional control or zero-width character, and joiners only
/// between two characters outside ASCII.
pub fn label(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || hidden_in_label(c)) {
        return loose_joiners_removed(nfc(Cow::Borrowed(s)));
    }
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for c in s.chars() {
        if c.is_control() {
            // Tab, line feed, vertical tab, form feed, carriage return, NEL.
            gap |= c.is_whitespace();
            continue;
        }
        if hidden_in_label(c) {
            // Invisible: it neither separates words nor ends a gap.
            continue;
        }
        // No space where one is already, before or after the gap.
        if gap && !out.ends_with(char::is_whitespace) && !out.is_empty() && !c.is_whitespace() {
            out.push(' ');
        }
        gap = false;
        out.push(c);
    }
    loose_joiners_removed(nfc(Cow::Owned(out)))
}

/// An identifier, URN, address or URL: NFC, every control character,
/// bidirectional control and zero-width character removed, joiners only
/// between two characters outside ASCII.
pub fn identifier(s: &str) -> Cow<'_, str> {
    let removed = |c: char| c.is_control() || hidden_in_label(c);
    if !s.chars().any(removed) {
        return loose_joiners_removed(nfc(Cow::Borrowed(s)));
    }
    let kept: String = s.chars().filter(|c| !removed(*c)).collect();
    loose_joiners_removed(nfc(Cow::Owned(kept)))
}

/// Whether a joiner next to `c` can change how `c` is drawn: a character
/// outside ASCII that is not a space (a letter of a joining script, an emoji).
fn joinable(c: char) -> bool {
    !c.is_ascii() && !c.is_whitespace()
}

/// `s` (NFC) without the runs of joiners that do not stand between two
/// [`joinable`] characters, composed again where a removal brought a letter
/// and its accent together.
fn loose_joiners_removed(s: Cow<'_, str>) -> Cow<'_, str> {
    if !s.chars().any(is_joiner) {
        return s;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_joiner(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A run is judged whole, so that a second pass sees what the first left.
        let start = i;
        while i < chars.len() && is_joiner(chars[i]) {
            i += 1;
        }
        let before = start.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i).copied();
        if before.is_some_and(joinable) && after.is_some_and(joinable) {
            out.extend(&chars[start..i]);
        }
    }
    if out.len() == s.len() {
        s
    } else {
        // Removing `e` + ZWJ + U+0301's joiner leaves `e` + U+0301: compose.
        nfc(Cow::Owned(out))
    }
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

    /// Every bidirectional control of the rules.
    const BIDI: [char; 12] = [
        '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}',
    ];

    #[test]
    fn bidirectional_controls_are_removed_from_every_field() {
        for rule in [free_text, label, identifier] {
            // "Budi" then an override: shown as "Budi Admin".
            assert_eq!(rule("Budi \u{202e}nimdA\u{202c}"), "Budi nimdA");
            for c in BIDI {
                assert_eq!(rule(&format!("{c}Siti{c}Rahayu{c}")), "SitiRahayu", "{c:?}");
            }
            // Arabic keeps its letters; only the mark goes.
            assert_eq!(
                rule("\u{61c}\u{633}\u{644}\u{627}\u{645}"),
                "\u{633}\u{644}\u{627}\u{645}"
            );
        }
        // Invisible, so no gap between words either.
        assert_eq!(label("Siti\u{2067}\nRahayu"), "Siti Rahayu");
        assert_eq!(label("\u{202e}"), "");
    }

    #[test]
    fn zero_width_characters_leave_labels_and_identifiers() {
        for rule in [label, identifier] {
            assert_eq!(rule("Bu\u{200b}di\u{2060} Santoso\u{feff}"), "Budi Santoso");
            assert_eq!(rule("\u{feff}wamid.HBgN\u{200b}"), "wamid.HBgN");
        }
        // Free text keeps the word breaks of Thai and the like, not a BOM.
        assert_eq!(
            free_text("\u{feff}\u{e16}\u{e19}\u{e19}\u{200b}\u{e1e}\u{e31}\u{e07}\u{2060}"),
            "\u{e16}\u{e19}\u{e19}\u{200b}\u{e1e}\u{e31}\u{e07}\u{2060}"
        );
    }

    #[test]
    fn joiners_stay_where_they_join_something() {
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        // Persian "mi-khaham", spelled with a ZWNJ.
        let persian = "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}";
        for rule in [free_text, label, identifier] {
            assert_eq!(rule(&format!("Budi {family}")), format!("Budi {family}"));
            assert_eq!(rule(persian), persian);
            assert!(matches!(rule(persian), Cow::Borrowed(_)));
        }
        for rule in [label, identifier] {
            // Between ASCII letters, beside a space or at an end: nothing to join.
            assert_eq!(
                rule("Bu\u{200d}di\u{200c}\u{200d} Santoso\u{200c}"),
                "Budi Santoso"
            );
            assert_eq!(
                rule("\u{200d}\u{1f468} \u{200d}\u{1f469}"),
                "\u{1f468} \u{1f469}"
            );
            assert_eq!(rule("budi\u{200c}@example.id"), "budi@example.id");
            // What the removal brings together is composed.
            assert_eq!(rule("Jose\u{200d}\u{301}"), "Jos\u{e9}");
        }
        // Free text is left as typed.
        assert_eq!(free_text("Bu\u{200d}di"), "Bu\u{200d}di");
    }

    #[test]
    fn clean_strings_are_not_copied() {
        for rule in [free_text, label, identifier] {
            assert!(matches!(rule("Jalan Raya Bogor, é"), Cow::Borrowed(_)));
        }
        assert!(matches!(free_text("a\nb\tc"), Cow::Borrowed(_)));
        assert!(matches!(free_text("a\u{200b}b"), Cow::Borrowed(_)));
    }

    #[test]
    fn rules_are_idempotent() {
        let samples = [
            "a\r\n\u{0}e\u{301}\u{85}",
            "\n\t\r",
            "x\u{1b}\u{308}y",
            "\u{344}",
            "e\u{200d}\u{301}\u{202e}\u{200c}",
            // The Kelvin sign composes to an ASCII K: its joiner goes.
            "\u{212a}\u{200d}\u{e9}",
            "\u{e9}\u{200d}\u{0}\u{200d}a\u{200d}\u{e9}",
            "\u{1f468}\u{200d}\u{feff}\u{200d}\u{1f469}\n\u{200b}",
            "a \u{200d} b\u{2066}",
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
