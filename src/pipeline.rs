//! From adapter output to durable acceptance: assign ids, detect language,
//! append once, count.

use aduan_adapter::{Complaint, Receipt};

use crate::sink::{RedisSink, SinkError};
use crate::telemetry;

/// Why complaints could not be durably accepted. Nothing was acknowledged;
/// the caller answers so that the provider retries.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("storage unavailable: {0}")]
    Unavailable(#[from] SinkError),
}

/// The one path every complaint takes, whatever its channel.
pub struct Pipeline {
    sink: RedisSink,
}

impl Pipeline {
    pub fn new(sink: RedisSink) -> Self {
        Pipeline { sink }
    }

    /// The sink behind the pipeline.
    pub fn sink(&self) -> &RedisSink {
        &self.sink
    }

    /// Assigns ids, detects language, appends each complaint exactly once.
    /// `Ok` means every complaint is durably accepted (or was already).
    pub async fn publish(
        &self,
        mut complaints: Vec<Complaint>,
    ) -> Result<Vec<Receipt>, PublishError> {
        for complaint in &mut complaints {
            complaint.id = ulid::Ulid::generate().to_string();
            if complaint.language.is_none() {
                complaint.language = detect_language(&complaint.text);
            }
        }
        let receipts = match self.sink.append(&complaints).await {
            Ok(r) => r,
            Err(e) => {
                metrics::counter!(telemetry::REDIS_ERRORS, "op" => "append").increment(1);
                tracing::warn!(error = %e, "redis append failed");
                return Err(e.into());
            }
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
}

/// The language of `text` when whatlang is confident, as ISO 639-3 (`ind`, `eng`).
pub fn detect_language(text: &str) -> Option<String> {
    if text.trim().chars().count() < 12 {
        return None;
    }
    whatlang::detect(text)
        .filter(|info| info.is_reliable())
        .map(|info| info.lang().code().to_string())
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
}
