//! `aduan import-transcripts FILE.jsonl --instance NAME`: bulk import of a
//! call center's daily export, one transcript per line.
//!
//! Each line goes through the instance's own adapter (its region and limits)
//! and the same ingest service as the HTTP API, so a line already accepted —
//! over HTTP or by an earlier run of the same file — is a duplicate and adds
//! nothing. While Redis is unavailable the lines go to the spool, like any
//! complaint: the import drains it before it exits when Redis answers again,
//! and otherwise leaves it for the gateway (started on the same `[spool] dir`)
//! to forward. When a running gateway holds the spool, the import works
//! without one and stops at the first line Redis cannot take.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use aduan_adapter::{Context, Outcome, Timestamp};

use crate::ingest::{Door, IngestError};
use crate::instances::Intake;
use crate::settings::Config;
use crate::spool::{Spool, SpoolError};

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub accepted: usize,
    pub duplicates: usize,
    /// Accepted into the local spool while Redis was unavailable, and still
    /// waiting there when the import ended (the gateway forwards them).
    pub spooled: usize,
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
        if self.spooled > 0 {
            writeln!(
                f,
                "spooled: {} of the accepted wait in the local spool (Redis was unavailable); \
                 a gateway started on the same spool forwards them",
                self.spooled
            )?;
        }
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
    Setup(String),
}

/// Imports `file` through `instance`. `progress` shows a progress bar on stderr.
pub async fn import_transcripts(
    config: &Config,
    file: &Path,
    instance: &str,
    progress: bool,
) -> Result<Summary, ImportError> {
    let setup = |e: &dyn std::fmt::Display| ImportError::Setup(e.to_string());
    let def = config
        .instances
        .iter()
        .find(|i| i.name == instance)
        .ok_or_else(|| ImportError::NoSuchInstance(instance.to_string()))?;
    let inst = Arc::new(crate::instances::build(def).map_err(|e| setup(&e))?);
    let Intake::Transcript(adapter) = &inst.intake else {
        return Err(ImportError::NoSuchInstance(instance.to_string()));
    };
    let spool = match Spool::open(&config.spool) {
        Ok(s) => Some(s),
        Err(SpoolError::InUse { .. }) => {
            tracing::info!("the spool is held by a running gateway; importing without it");
            None
        }
        Err(e) => return Err(setup(&e)),
    };
    let ingest =
        crate::server::ingest(config, std::slice::from_ref(&inst), spool).map_err(|e| setup(&e))?;
    let read_err = |e| ImportError::Read(file.display().to_string(), e);
    let total = std::fs::metadata(file).map_err(read_err)?.len();
    let reader = std::io::BufReader::new(std::fs::File::open(file).map_err(read_err)?);
    let bar = progress_bar(progress, total);

    let mut summary = Summary::default();
    for (index, line) in reader.split(b'\n').enumerate() {
        let number = index + 1;
        let line = line.map_err(read_err)?;
        bar.inc(line.len() as u64 + 1);
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let ctx = Context {
            instance: &inst.name,
            received_at: Timestamp(chrono::Utc::now()),
            keep_raw: inst.keep_raw,
        };
        let outcome = match adapter.parse_line(trimmed, &ctx) {
            Ok(complaint) => Outcome::complaints(vec![complaint]),
            Err(rejection) => {
                summary.rejected.push((number, describe(&rejection)));
                continue;
            }
        };
        match ingest.accept(&inst, outcome, Door::Import).await {
            Ok(receipts) => {
                for r in receipts {
                    if r.duplicate {
                        summary.duplicates += 1;
                    } else {
                        summary.accepted += 1;
                    }
                }
            }
            Err(e @ IngestError::Limited(_)) => summary.rejected.push((number, e.to_string())),
            Err(e) => {
                return Err(ImportError::Storage {
                    line: number,
                    reason: e.to_string(),
                });
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
    summary.spooled = ingest.drain_spool().await;
    Ok(summary)
}

fn progress_bar(shown: bool, total: u64) -> indicatif::ProgressBar {
    if !shown {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
    {
        bar.set_style(style);
    }
    bar
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
