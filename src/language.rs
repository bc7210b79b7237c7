//! Detection of a complaint text's language among configured candidates.

use crate::settings::LanguageConfig;

/// Detects the language of complaint texts among configured candidates.
#[derive(Clone)]
pub struct LanguageDetector {
    detector: Option<whatlang::Detector>,
    max_chars: usize,
}

impl LanguageDetector {
    /// Builds the detector; unknown codes are refused with the list of them.
    pub fn new(cfg: &LanguageConfig) -> Result<Self, String> {
        let mut langs = Vec::new();
        let mut unknown = Vec::new();
        for code in &cfg.candidates {
            match whatlang::Lang::from_code(code) {
                Some(l) => langs.push(l),
                None => unknown.push(code.as_str()),
            }
        }
        if !unknown.is_empty() {
            return Err(format!("unknown language code(s): {}", unknown.join(", ")));
        }
        Ok(LanguageDetector {
            detector: (!langs.is_empty()).then(|| whatlang::Detector::with_allowlist(langs)),
            max_chars: cfg.max_chars.max(1),
        })
    }

    /// Stamps a complaint at acceptance: its id (a new ULID) and, unless the
    /// adapter set one, the language of its text.
    pub fn stamp(&self, complaint: &mut aduan_adapter::Complaint) {
        complaint.id = ulid::Ulid::generate().to_string();
        if complaint.language.is_none() {
            complaint.language = self.detect(&complaint.text);
        }
    }

    /// The language of `text` when detection is confident, as ISO 639-3 (`ind`, `eng`).
    pub fn detect(&self, text: &str) -> Option<String> {
        let detector = self.detector.as_ref()?;
        let text = match text.char_indices().nth(self.max_chars) {
            Some((cut, _)) => &text[..cut],
            None => text,
        };
        if text.trim().chars().count() < 12 {
            return None;
        }
        detector
            .detect(text)
            .filter(|info| info.is_reliable())
            .map(|info| info.lang().code().to_string())
    }
}

impl Default for LanguageDetector {
    fn default() -> Self {
        // The default candidates are all known to whatlang.
        LanguageDetector::new(&LanguageConfig::default()).unwrap_or(LanguageDetector {
            detector: None,
            max_chars: 160,
        })
    }
}

/// The language of `text` with the default candidates (see [`LanguageConfig`]).
pub fn detect_language(text: &str) -> Option<String> {
    static DEFAULT: std::sync::OnceLock<LanguageDetector> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(LanguageDetector::default).detect(text)
}

#[cfg(test)]
mod tests {
    use super::detect_language;

    #[test]
    fn detects_indonesian_and_refuses_short_text() {
        assert_eq!(
            detect_language(
                "Jalan di depan sekolah kami rusak parah dan berlubang sejak bulan lalu, mohon segera diperbaiki"
            )
            .as_deref(),
            Some("ind")
        );
        assert_eq!(detect_language("ok"), None);
    }

    #[test]
    fn only_the_leading_characters_are_examined_and_candidates_bound_the_answer() {
        let indonesian = "Saluran air di depan rumah kami tersumbat sampah sejak minggu lalu, mohon dibersihkan. ";
        let english =
            "The drain in front of our house has been blocked with rubbish since last week. ";
        let mixed = format!("{}{}", indonesian.repeat(2), english.repeat(20));
        assert_eq!(detect_language(&mixed).as_deref(), Some("ind"));

        let english_only = super::LanguageDetector::new(&crate::settings::LanguageConfig {
            candidates: vec!["eng".into()],
            max_chars: 160,
        })
        .expect("eng is known");
        assert_ne!(english_only.detect(indonesian).as_deref(), Some("ind"));
        let off = super::LanguageDetector::new(&crate::settings::LanguageConfig {
            candidates: Vec::new(),
            max_chars: 160,
        })
        .expect("empty list");
        assert_eq!(off.detect(indonesian), None);
        assert!(
            super::LanguageDetector::new(&crate::settings::LanguageConfig {
                candidates: vec!["xx".into()],
                max_chars: 160,
            })
            .is_err()
        );
    }
}
