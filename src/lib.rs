//! aduan: a multi-channel ingestion gateway for public complaint systems.
//!
//! Each provider's request is verified and normalized by an adapter (under
//! `channels/`, see the `aduan-adapter` crate for the contract); this crate
//! hosts them and appends each complaint exactly once to a Redis stream.
//! A complaint flows door → ingest → pipeline → Redis or spool
//! (`docs/architecture.md` draws it).
//!
//! Settings and building:
//! - [`settings`]: the configuration as data, loaded in layers; a leaf.
//! - [`instances`]: the one `match` from a configured kind to what serves it.
//! - [`server`]: builds everything at start, the router, readiness, shutdown.
//! - [`state`]: what every request handler shares, built once at start.
//!
//! Doors (each hands its adapter's outcome to [`ingest`] and nothing else):
//! - [`webhooks`]: the HTTP routes of push adapters and the transcript API.
//! - [`smtp`]: the SMTP listener for email instances.
//! - [`poll`]: the host of polling channels, with leases and cursors.
//! - [`import`]: bulk import of call-center transcript files.
//!
//! The pipeline and below:
//! - [`ingest`]: the one door into the pipeline: blobs, split messages, limits, publish, counting.
//! - [`pipeline`]: ids and languages, then Redis or the spool.
//! - [`redis`]: the connection, key names, scripts and every Redis operation.
//! - [`spool`]: the local durable spool used while Redis is unavailable, and its forwarder.
//! - [`limits`]: backpressure, rate limits and input limits.
//! - [`blobs`]: the content-addressed store for attachment bytes.
//! - [`assembly`]: a split message made whole from its parts.
//! - [`language`]: language detection of complaint texts.
//! - [`listener`]: the HTTP accept loop with header and slow-client limits.
//! - [`connections`]: connection caps, first-byte and idle timeouts (HTTP and SMTP).
//! - [`tracking`]: the short tracking numbers citizens are given.
//! - [`ack`]: the automatic acknowledgement queued with each new complaint.
//! - [`reply_route`]: where a complaint's replies go, stored with it at append.
//!
//! The way back:
//! - [`senders`]: the one `match` from a kind to its reply sender.
//! - [`fetchers`]: the one `match` from a kind to its media fetcher.
//! - [`worker`]: the stream worker both ride on: consumer group, blocking reads, takeover.
//! - [`media`]: the worker that fetches attachments into the blob store.
//! - [`outbound`]: the reply worker (claims, pacing, retries, records) and provider reports.
//! - [`status`]: the status loop: the core system's status entries applied, the citizen told, the public answered.
//!
//! - [`telemetry`]: metrics, logging and the masking of personal data.

pub mod ack;
pub mod assembly;
pub mod blobs;
pub mod connections;
pub mod fetchers;
pub mod import;
pub mod ingest;
pub mod instances;
pub mod language;
pub mod limits;
pub mod listener;
pub mod media;
pub mod media_job;
pub mod outbound;
pub mod pipeline;
pub mod poll;
pub mod redis;
pub mod reply_route;
pub mod senders;
pub mod server;
pub mod settings;
pub mod smtp;
pub mod spool;
pub mod state;
pub mod status;
pub mod telemetry;
pub mod tracking;
pub mod web;
pub mod webhooks;
pub mod worker;
