//! aduan: a multi-channel ingestion gateway for public complaint systems.
//!
//! Each provider's request is verified and normalized by an adapter (under
//! `channels/`, see the `aduan-adapter` crate for the contract); this crate
//! hosts them and appends each complaint exactly once to a Redis stream.
//!
//! - [`config`]: typed settings from TOML and the environment; `check-config`.
//! - [`instances`]: the one `match` from a configured kind to its adapter.
//! - [`server`]: the HTTP routes, pollers and graceful shutdown.
//! - [`pipeline`]: ids, language detection, the append, counting.
//! - [`fragments`]: parts of split messages held in Redis until whole.
//! - [`sink`]: the atomic dedup-and-append in Redis.
//! - [`spool`]: the local durable spool used while Redis is unavailable, and its forwarder.
//! - [`limits`]: backpressure, rate limits and input limits.
//! - [`listener`]: the HTTP accept loop with header and slow-client limits.
//! - [`blobs`]: the content-addressed store for attachment bytes (email).
//! - [`smtp`]: the SMTP listener for email instances.
//! - [`host`]: leases and cursors for polling channels.
//! - [`import`]: bulk import of call-center transcript files.
//! - [`telemetry`]: metrics, logging and the masking of personal data.

pub mod blobs;
pub mod config;
pub mod fragments;
pub mod host;
pub mod import;
pub mod instances;
pub mod limits;
pub mod listener;
pub mod pipeline;
pub mod server;
pub mod sink;
pub mod smtp;
pub mod spool;
pub mod telemetry;
