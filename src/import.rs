//! `aduan import-transcripts FILE.jsonl --instance NAME`: bulk import of a
//! call center's daily export, one transcript per line.
//!
//! Each line goes through the instance's own adapter (its region and limits)
//! and the same pipeline as the HTTP API, so a line already accepted — over
//! HTTP or by an earlier run of the same file — is a duplicate and adds nothing.

use std::io::BufRead;
use std::path::Path;

use aduan_adapter::{Context, Outcome, Request, Timestamp};

use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::sink::RedisSink;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub accepted: usize,
    pub duplicates: usize,
    /// (line number, reason) for every refused line.
    pub rejected: Vec<(usize, String)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "accepted: {}, duplicates: {}, rejected: {}",
            self.accepted,
            self.duplicates,
            self.rejected.len()
        )?;
        for (line, reason) in &self.rejected {
            writeln!(f, "  line {line}: {reason}")?;
        }
        Ok(())
    }
}

/// Why an import could not run at all (bad lines do not stop it).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no instance named `{0}` of kind `transcript`")]
    NoSuchInstance(String),
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("storage unavailable after line {line}: {reason}; re-run the same file to resume")]
    Storage { line: usize, reason: String },
    #[error("{0}")]
    Sink(#[from] crate::sink::SinkError),
}

/// Imports `file` through `instance`. `progress` shows a progress bar on stderr.
pub async fn import_transcripts(
    config: &Config,
    file: &Path,
    instance: &str,
    progress: bool,
) -> Result<Summary, ImportError> {
    let inst = config
        .instances
        .iter()
        .find(|i| i.name == instance && i.kind == "transcript")
        .ok_or_else(|| ImportError::NoSuchInstance(instance.to_string()))?;
    let Some(adapter) = inst.adapter.as_ref() else {
        return Err(ImportError::NoSuchInstance(instance.to_string()));
    };
    let pipeline =
        Pipeline::new(RedisSink::new(&config.redis)?).with_language(config.language.clone());
    let read_err = |e| ImportError::Read(file.display().to_string(), e);
    let total = std::fs::metadata(file).map_err(read_err)?.len();
    let reader = std::io::BufReader::new(std::fs::File::open(file).map_err(read_err)?);

    let bar = if progress {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let method = http::Method::POST;
    let uri = http::Uri::from_static("/v1/transcripts");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let mut summary = Summary::default();
    for (index, line) in reader.split(b'\n').enumerate() {
        let number = index + 1;
        let line = line.map_err(read_err)?;
        bar.inc(line.len() as u64 + 1);
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let req = Request {
            method: &method,
            uri: &uri,
            headers: &headers,
            body: trimmed,
        };
        let ctx = Context {
            instance: &inst.name,
            received_at: Timestamp(chrono::Utc::now()),
            keep_raw: inst.keep_raw,
        };
        let complaints = match adapter.parse(&req, &ctx) {
            Ok(Outcome::Accept { complaints, .. }) => complaints,
            Ok(_) => {
                summary
                    .rejected
                    .push((number, "not a transcript".to_string()));
                continue;
            }
            Err(rejection) => {
                summary.rejected.push((number, describe(&rejection)));
                continue;
            }
        };
        let receipts = pipeline
            .publish(complaints)
            .await
            .map_err(|e| ImportError::Storage {
                line: number,
                reason: e.to_string(),
            })?;
        for r in receipts {
            if r.duplicate {
                summary.duplicates += 1;
            } else {
                summary.accepted += 1;
            }
        }
        bar.set_message(format!(
            "{} accepted, {} duplicates, {} rejected",
            summary.accepted,
            summary.duplicates,
            summary.rejected.len()
        ));
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// A rejection as one line: the reason and, for field errors, every field.
fn describe(rejection: &aduan_adapter::Rejection) -> String {
    match rejection {
        aduan_adapter::Rejection::Invalid(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
