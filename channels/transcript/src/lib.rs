//! The call-center transcript channel.
//!
//! Call centers post one JSON document per call to `POST /v1/transcripts`,
//! authenticated with `Authorization: Bearer <token>`; each call center is one
//! instance with its own tokens. The document format is described in
//! `docs/channels/transcripts.md` and `transcript.schema.json`.
//!
//! - [`config`]: the instance's settings.
//! - [`body`]: the transcript document, validated field by field so that every
//!   problem is reported in one answer.
//! - [`adapter`]: the bearer-token check, normalization into a Complaint, and
//!   the `201` receipt.

pub mod adapter;
pub mod body;
pub mod config;

pub use adapter::{PROVIDER, Transcripts, parse_transcript};
pub use body::{Rules, Transcript, Words, render_segments};
pub use config::TranscriptConfig;

#[cfg(test)]
mod tests;
