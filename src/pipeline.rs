//! From adapter output to durable acceptance: assign ids, detect language,
//! append once (or spool while Redis is unavailable), count.

use std::sync::Arc;

use aduan_adapter::{Complaint, Receipt};

use crate::sink::{RedisSink, SinkError};
use crate::spool::{Spool, SpoolError};
use crate::telemetry;

/// Why complaints could not be durably accepted. Nothing was acknowledged;
/// the caller answers so that the provider retries.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("storage unavailable: {0}")]
    Unavailable(#[from] SinkError),
    /// Redis failed and the spool is at its size cap: refused rather than
    /// accepted without a place to keep it.
    #[error("redis unavailable and spool full ({0})")]
    SpoolFull(&'static str),
    #[error("redis unavailable and spool failed: {0}")]
    Spool(SpoolError),
}

/// The one path every complaint takes, whatever its channel.
pub struct Pipeline {
    sink: Arc<RedisSink>,
    spool: Option<Arc<Spool>>,
    language: LanguageDetector,
}

impl Pipeline {
    /// A pipeline without a spool: when Redis fails, publishing fails.
    pub fn new(sink: RedisSink) -> Self {
        Pipeline {
            sink: Arc::new(sink),
            spool: None,
            language: LanguageDetector::default(),
        }
    }

    /// A pipeline that falls back to `spool` when Redis fails or is slow.
    pub fn with_spool(sink: RedisSink, spool: Arc<Spool>) -> Self {
        Pipeline {
            sink: Arc::new(sink),
            spool: Some(spool),
            language: LanguageDetector::default(),
        }
    }

    /// The sink behind the pipeline.
    /// Uses `language` instead of the default candidates.
    pub fn with_language(mut self, language: LanguageDetector) -> Self {
        self.language = language;
        self
    }

    pub fn sink(&self) -> &RedisSink {
        &self.sink
    }

    /// The sink, shared (the spool forwarder appends through it too).
    pub fn shared_sink(&self) -> Arc<RedisSink> {
        self.sink.clone()
    }

    /// The spool, when one is configured.
    pub fn spool(&self) -> Option<&Arc<Spool>> {
        self.spool.as_ref()
    }

    /// Assigns ids, detects language, appends each complaint exactly once.
    /// `Ok` means every complaint is durably accepted (or was already): in
    /// Redis, or fsynced in the spool when Redis failed or missed its deadline.
    ///
    /// While the spool holds records, new complaints are spooled without trying
    /// Redis, so that the forwarder writes the stream in acceptance order.
    /// A spooled complaint's receipt says `duplicate: false` even when it turns
    /// out to be a redelivery; the forwarder's dedup step still writes it once.
    pub async fn publish(
        &self,
        mut complaints: Vec<Complaint>,
    ) -> Result<Vec<Receipt>, PublishError> {
        for complaint in &mut complaints {
            complaint.id = ulid::Ulid::generate().to_string();
            if complaint.language.is_none() {
                complaint.language = self.language.detect(&complaint.text);
            }
        }
        let direct = match &self.spool {
            Some(spool) if !spool.is_empty() => None,
            _ => Some(self.sink.append(&complaints).await),
        };
        let receipts = match direct {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                metrics::counter!(telemetry::REDIS_ERRORS, "op" => "append").increment(1);
                tracing::warn!(error = %e, "redis append failed");
                match &self.spool {
                    None => return Err(e.into()),
                    Some(spool) => self.spool_all(spool, &complaints).await?,
                }
            }
            None => match &self.spool {
                Some(spool) => self.spool_all(spool, &complaints).await?,
                None => Vec::new(),
            },
        };
        for (complaint, receipt) in complaints.iter().zip(&receipts) {
            let labels = [
                ("channel", complaint.channel.as_str().to_string()),
                ("instance", complaint.instance.clone()),
            ];
            if receipt.duplicate {
                metrics::counter!(telemetry::DUPLICATES, &labels).increment(1);
                tracing::info!(id = %receipt.id, instance = %complaint.instance, "duplicate delivery");
            } else {
                metrics::counter!(telemetry::ACCEPTED, &labels).increment(1);
                tracing::info!(
                    id = %receipt.id,
                    channel = complaint.channel.as_str(),
                    instance = %complaint.instance,
                    sender = %telemetry::mask_sender(&complaint.sender.id),
                    "complaint accepted"
                );
            }
        }
        Ok(receipts)
    }

    /// Writes `complaints` to the spool; their receipts carry their own ids.
    async fn spool_all(
        &self,
        spool: &Spool,
        complaints: &[Complaint],
    ) -> Result<Vec<Receipt>, PublishError> {
        match spool.put(complaints).await {
            Ok(()) => {
                tracing::info!(count = complaints.len(), "complaints spooled");
                Ok(complaints
                    .iter()
                    .map(|c| Receipt {
                        id: c.id.clone(),
                        external_id: c.external_id.clone(),
                        duplicate: false,
                    })
                    .collect())
            }
            Err(SpoolError::Full(limit)) => {
                tracing::warn!(limit, "spool full; refusing");
                Err(PublishError::SpoolFull(limit))
            }
            Err(e) => {
                tracing::error!(error = %e, "spool write failed");
                Err(PublishError::Spool(e))
            }
        }
    }
}

/// `[language]`: detection of the complaint text's language.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanguageConfig {
    /// Languages detection chooses among, as ISO 639-3 codes (`ind`, `eng`, `jav`,
    /// `kor`, …; any language whatlang knows). Fewer candidates make detection both
    /// faster and more often confident. An empty list turns detection off.
    /// Default: Indonesian, English, Javanese, Korean, Tagalog, Vietnamese, Thai,
    /// Mandarin, Japanese, Arabic.
    pub candidates: Vec<String>,
    /// Only the first this many characters of the text are examined: enough for a
    /// confident answer on the texts citizens write, and it bounds the cost. Default 160.
    pub max_chars: usize,
}

impl Default for LanguageConfig {
    fn default() -> Self {
        LanguageConfig {
            candidates: [
                "ind", "eng", "jav", "kor", "tgl", "vie", "tha", "cmn", "jpn", "ara",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            max_chars: 160,
        }
    }
}

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

        let english_only = super::LanguageDetector::new(&super::LanguageConfig {
            candidates: vec!["eng".into()],
            max_chars: 160,
        })
        .expect("eng is known");
        assert_ne!(english_only.detect(indonesian).as_deref(), Some("ind"));
        let off = super::LanguageDetector::new(&super::LanguageConfig {
            candidates: Vec::new(),
            max_chars: 160,
        })
        .expect("empty list");
        assert_eq!(off.detect(indonesian), None);
        assert!(
            super::LanguageDetector::new(&super::LanguageConfig {
                candidates: vec!["xx".into()],
                max_chars: 160,
            })
            .is_err()
        );
    }
}
