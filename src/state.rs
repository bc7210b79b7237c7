//! What every request handler shares: the ingest door, the instances by
//! route and token, and the routes' own state, built once at start. A leaf
//! below the server and the doors, so neither imports the other for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::blobs::BlobStore;
use crate::blobs::route::BlobRoute;
use crate::ingest::Ingest;
use crate::instances::{Instance, Intake, TranscriptTokens};
use crate::settings::Config;
use crate::telemetry;

/// Everything a request handler needs.
pub struct AppState {
    /// The one door into the pipeline.
    pub ingest: Arc<Ingest>,
    /// Instances with an HTTP route, by name.
    pub(crate) routes: HashMap<String, Arc<Instance>>,
    /// The transcript instances, and which one a bearer token picks.
    pub(crate) transcripts: Vec<Arc<Instance>>,
    pub(crate) tokens: TranscriptTokens,
    pub(crate) body_limit: usize,
    pub(crate) request_timeout: Duration,
    /// `GET /v1/blobs/{storage_key}`: the blob store and its readers.
    pub(crate) blobs: Arc<BlobRoute>,
    /// `[web]`: the citizen and agent forms.
    pub(crate) web: crate::settings::WebConfig,
    /// `GET /v1/status/{tracking}`.
    pub(crate) status: Arc<crate::status::lookup::Lookup>,
    pub(crate) metrics: PrometheusHandle,
}

impl AppState {
    /// Indexes the instances' routes and tokens.
    pub fn new(
        config: &Config,
        ingest: Arc<Ingest>,
        instances: &[Arc<Instance>],
    ) -> anyhow::Result<Self> {
        let transcripts: Vec<Arc<Instance>> = instances
            .iter()
            .filter(|i| matches!(i.intake, Intake::Transcript(_)))
            .cloned()
            .collect();
        let owned: Vec<&Instance> = transcripts.iter().map(|i| i.as_ref()).collect();
        let tokens = TranscriptTokens::index(&owned).map_err(|e| anyhow::anyhow!("{e}"))?;
        let routes = instances
            .iter()
            .filter(|i| i.route.is_some() && !matches!(i.intake, Intake::Transcript(_)))
            .map(|i| (i.name.clone(), i.clone()))
            .collect();
        let blobs = BlobRoute::new(BlobStore::new(&config.blobs)?, &config.blobs);
        let status = crate::status::lookup::Lookup::new(
            &config.status,
            config.web.client_address_header.clone(),
            ingest.pipeline().redis().clone(),
        );
        Ok(AppState {
            ingest,
            routes,
            transcripts,
            tokens,
            body_limit: config.server.body_limit_bytes,
            request_timeout: Duration::from_secs(config.server.request_timeout_seconds),
            blobs: Arc::new(blobs),
            web: config.web.clone(),
            status: Arc::new(status),
            metrics: telemetry::metrics_handle(),
        })
    }
}
