//! The connection: to one Redis node through a [`ConnectionManager`], or to
//! a Redis Cluster through the cluster client, which follows `MOVED` and
//! `ASK` and learns topology changes by itself. Every command and script
//! goes through a [`Conn`] alike.

use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::cluster::{ClusterClient, ClusterConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use ::redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::Mutex;

use super::RedisError;
use crate::settings::RedisConfig;

/// A connection to one node or to a cluster.
#[derive(Clone)]
pub enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// `WAIT replicas timeout` on the master that holds `key`: how many
    /// replicas have every write made so far on that connection.
    pub async fn wait(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> ::redis::RedisResult<i64> {
        let mut cmd = ::redis::cmd("WAIT");
        cmd.arg(replicas).arg(timeout.as_millis() as u64);
        match self {
            Conn::Node(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let value = c
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                ::redis::from_redis_value(value).map_err(::redis::RedisError::from)
            }
        }
    }
}

/// Where connections come from.
enum Client {
    Node(Box<::redis::Client>),
    /// The settings a cluster client is built from, and the client of
    /// ordinary commands.
    Cluster(Box<(ClusterSpec, ClusterClient)>),
}

/// What a cluster client is built from. A blocking read needs a client of
/// its own: the cluster connection bounds every request by the client's
/// overall response timeout, which a per-connection [`ClusterConfig`] does
/// not change, so an `XREADGROUP … BLOCK` longer than the command timeout
/// would time out on every idle cycle, and an entry Redis handed to the
/// abandoned read would wait in the pending list until takeover.
struct ClusterSpec {
    seeds: Vec<String>,
    root_cert: Option<Vec<u8>>,
    tcp: ::redis::io::tcp::TcpSettings,
    timeout: Duration,
}

impl ClusterSpec {
    /// A client whose every request (its retries included) may take `response`.
    fn client(&self, response: Duration) -> ::redis::RedisResult<ClusterClient> {
        let mut builder = ClusterClient::builder(self.seeds.clone());
        if self.root_cert.is_some() {
            builder = builder.certs(::redis::TlsCertificates {
                client_tls: None,
                root_cert: self.root_cert.clone(),
            });
        }
        builder
            .tcp_settings(self.tcp.clone())
            .connection_timeout(self.timeout)
            .response_timeout(response)
            .overall_response_timeout(Some(response))
            // A command to a failed master is retried while the cluster
            // promotes its replica; past the command timeout it fails
            // and the complaint goes to the spool.
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()
    }
}

/// The shared connection, opened on first use, and the settings every
/// command is made with.
pub(super) struct Link {
    client: Client,
    conn: Mutex<Option<Conn>>,
    pub(super) timeout: Duration,
    /// `wait_replicas` and `wait_timeout_ms`, when appends wait for replicas.
    pub(super) wait: Option<(u32, Duration)>,
}

impl Link {
    /// Parses the URLs; connects nothing yet.
    pub(super) fn new(cfg: &RedisConfig) -> Result<Link, RedisError> {
        let bad = |e: ::redis::RedisError| RedisError::Unavailable(e.to_string());
        // Every command is answered before the next one goes out, so Nagle's
        // algorithm would only hold the tail of a large script call back
        // until the previous segment is acknowledged.
        let tcp = ::redis::io::tcp::TcpSettings::default().set_nodelay(true);
        let timeout = Duration::from_millis(cfg.command_timeout_ms);
        let root_cert = match &cfg.tls_ca {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                RedisError::Unavailable(format!("redis.tls_ca {}: {e}", path.display()))
            })?),
            None => None,
        };
        let client = if cfg.is_cluster() {
            let mut seeds: Vec<String> = cfg.nodes.iter().map(|n| n.expose().to_string()).collect();
            if seeds.is_empty() || cfg.url.expose() != RedisConfig::default().url.expose() {
                seeds.push(cfg.url.expose().to_string());
            }
            let spec = ClusterSpec {
                seeds,
                root_cert,
                tcp,
                timeout,
            };
            let client = spec.client(timeout).map_err(bad)?;
            Client::Cluster(Box::new((spec, client)))
        } else {
            let info = ::redis::IntoConnectionInfo::into_connection_info(cfg.url.expose())
                .map_err(bad)?
                .set_tcp_settings(tcp);
            Client::Node(Box::new(match root_cert {
                Some(root) => ::redis::Client::build_with_tls(
                    info,
                    ::redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(root),
                    },
                )
                .map_err(bad)?,
                None => ::redis::Client::open(info).map_err(bad)?,
            }))
        };
        Ok(Link {
            client,
            conn: Mutex::new(None),
            timeout,
            wait: (cfg.wait_replicas > 0).then(|| {
                (
                    cfg.wait_replicas,
                    Duration::from_millis(cfg.wait_timeout_ms),
                )
            }),
        })
    }

    /// Whether this is a cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.client, Client::Cluster(_))
    }

    /// The shared connection; it reconnects by itself once established.
    pub(super) async fn connection(&self) -> Result<Conn, RedisError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.open(self.timeout).await?;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// A new connection whose replies may take `response` (a blocking
    /// read's own connection).
    pub(super) async fn open(&self, response: Duration) -> Result<Conn, RedisError> {
        let opened = match &self.client {
            Client::Node(client) => {
                // Reconnection after a failure is retried quickly and often:
                // readiness and the spool's forwarder should see Redis back
                // within a second.
                let config = ::redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(response))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                tokio::time::timeout(
                    self.timeout,
                    ConnectionManager::new_with_config(client.as_ref().clone(), config),
                )
                .await
                .map(|r| r.map(Conn::Node))
            }
            Client::Cluster(cluster) => {
                let (spec, client) = cluster.as_ref();
                let config = ClusterConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(response);
                let own;
                let client = if response == self.timeout {
                    client
                } else {
                    own = spec
                        .client(response)
                        .map_err(|e| RedisError::Unavailable(e.to_string()))?;
                    &own
                };
                tokio::time::timeout(
                    self.timeout,
                    client.get_async_connection_with_config(config),
                )
                .await
                .map(|r| r.map(Conn::Cluster))
            }
        };
        opened
            .map_err(|_| RedisError::Timeout(self.timeout))?
            .map_err(|e| RedisError::Unavailable(e.to_string()))
    }
}
