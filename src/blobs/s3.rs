//! The S3-compatible backend (AWS S3, MinIO, Ceph RGW, Garage, …) through
//! `object_store`. A key `sha256/<hex>` is the object `[<prefix>/]sha256/<hex>`
//! with its content type as the object's `Content-Type`. Objects are written
//! private: no ACL is ever sent, so the bucket's own policy applies.
//!
//! A file up to [`PART_SIZE`] is one PUT; a larger one a multipart upload
//! that is completed only after its last part and its digest are checked,
//! so no reader sees part of an object.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::Blob;
use bytes::Bytes;
use futures::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore,
    ObjectStoreExt as _, PutMultipartOptions, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use sha2::Digest as _;
use tokio::io::AsyncReadExt as _;

use super::{Backend, BlobBody, BlobError, BlobInfo, ByteRange, check_digest, digest_of};
use crate::settings::BlobsConfig;

/// Files up to this size are one PUT; larger ones are uploaded in parts of
/// this size (S3 wants at least 5 MiB per part but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts in flight at once in a multipart upload.
const PARTS_IN_FLIGHT: usize = 2;

/// Reads of a staged file.
const READ_CHUNK: usize = 1024 * 1024;

pub(super) struct S3Backend {
    store: Arc<dyn ObjectStore>,
    prefix: Option<String>,
    staging: PathBuf,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Backend")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// The client `cfg` describes; nothing is contacted yet.
    pub(super) fn new(cfg: &BlobsConfig) -> Result<Self, BlobError> {
        let bucket = cfg
            .bucket
            .as_deref()
            .ok_or_else(|| BlobError::Config("blobs.bucket: is required".into()))?;
        let builder = match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(id), Some(secret)) => AmazonS3Builder::new()
                .with_access_key_id(id.expose())
                .with_secret_access_key(secret.expose()),
            // The AWS environment, web identity or instance credentials.
            _ => AmazonS3Builder::from_env(),
        };
        let mut client = ClientOptions::new()
            // Long enough for a part or a slow reader's stream; a stalled
            // stream is resumed from where it stopped.
            .with_timeout(Duration::from_secs(120))
            .with_connect_timeout(Duration::from_secs(5));
        let mut builder = builder
            .with_bucket_name(bucket)
            .with_region(&cfg.region)
            .with_virtual_hosted_style_request(!cfg.path_style)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &cfg.endpoint {
            let plain = endpoint.starts_with("http://");
            builder = builder.with_endpoint(endpoint).with_allow_http(plain);
            client = client.with_allow_http(plain);
        }
        let store = builder
            .with_client_options(client)
            .build()
            .map_err(|e| BlobError::Config(format!("blobs: {e}")))?;
        let prefix = cfg
            .prefix
            .as_deref()
            .map(|p| p.trim_matches('/').to_string())
            .filter(|p| !p.is_empty());
        Ok(S3Backend {
            store: Arc::new(store),
            prefix,
            staging: cfg
                .staging_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("aduan-blobs-staging")),
        })
    }

    /// The object a valid key names.
    fn object(&self, key: &str) -> Result<ObjectPath, BlobError> {
        let hex = digest_of(key)?;
        Ok(match &self.prefix {
            Some(p) => ObjectPath::from(format!("{p}/sha256/{hex}")),
            None => ObjectPath::from(format!("sha256/{hex}")),
        })
    }

    fn attributes(content_type: Option<String>) -> Attributes {
        let mut attributes = Attributes::new();
        if let Some(ct) = content_type {
            attributes.insert(Attribute::ContentType, AttributeValue::from(ct));
        }
        attributes
    }

    /// Uploads `file` (of `len` bytes) as `object` in parts, completing the
    /// upload only when its bytes hash to `hex`.
    async fn upload_parts(
        &self,
        object: &ObjectPath,
        file: &mut tokio::fs::File,
        hex: &str,
        attributes: Attributes,
    ) -> Result<(), BlobError> {
        let upload = self
            .store
            .put_multipart_opts(
                object,
                PutMultipartOptions {
                    attributes,
                    ..PutMultipartOptions::default()
                },
            )
            .await
            .map_err(remote)?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut hasher = sha2::Sha256::new();
        let written: Result<(), BlobError> = async {
            loop {
                let mut buf = vec![0u8; READ_CHUNK];
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                hasher.update(&buf);
                parts
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(remote)?;
                parts.put(Bytes::from(buf));
            }
        }
        .await;
        let outcome = written.and_then(|()| {
            if hex::encode(hasher.finalize()) == hex {
                Ok(())
            } else {
                Err(BlobError::BadKey)
            }
        });
        match outcome {
            Ok(()) => parts.finish().await.map(|_| ()).map_err(remote),
            Err(e) => {
                // Uploaded parts are discarded; the object never appears.
                if let Err(abort) = parts.abort().await {
                    tracing::warn!(error = %abort, "blob store: abandoned upload not aborted");
                }
                Err(e)
            }
        }
    }
}

fn remote(e: object_store::Error) -> BlobError {
    BlobError::Remote(e.to_string())
}

fn not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

#[async_trait::async_trait]
impl Backend for S3Backend {
    async fn put_all(&self, blobs: Vec<Blob>) -> Result<(), BlobError> {
        let blobs = tokio::task::spawn_blocking(move || {
            blobs
                .iter()
                .try_for_each(|b| check_digest(&b.key, &b.bytes))
                .map(|()| blobs)
        })
        .await
        .map_err(|e| BlobError::Io(std::io::Error::other(e)))??;
        for blob in blobs {
            if self.stat(&blob.key).await?.is_some() {
                continue;
            }
            let object = self.object(&blob.key)?;
            self.store
                .put_opts(&object, PutPayload::from(blob.bytes), PutOptions::default())
                .await
                .map_err(remote)?;
        }
        Ok(())
    }

    async fn put_file(
        &self,
        key: &str,
        staged: &Path,
        content_type: Option<String>,
    ) -> Result<(), BlobError> {
        let object = self.object(key)?;
        let hex = digest_of(key)?;
        if self.stat(key).await?.is_some() {
            tokio::fs::remove_file(staged).await?;
            return Ok(());
        }
        let mut file = tokio::fs::File::open(staged).await?;
        let len = file.metadata().await?.len();
        let attributes = Self::attributes(content_type);
        if len <= PART_SIZE as u64 {
            let mut bytes = Vec::with_capacity(len as usize);
            file.read_to_end(&mut bytes).await?;
            let bytes = tokio::task::spawn_blocking({
                let key = key.to_string();
                move || check_digest(&key, &bytes).map(|()| bytes)
            })
            .await
            .map_err(|e| BlobError::Io(std::io::Error::other(e)))??;
            let opts = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            self.store
                .put_opts(&object, PutPayload::from(bytes), opts)
                .await
                .map_err(remote)?;
        } else {
            self.upload_parts(&object, &mut file, hex, attributes)
                .await?;
        }
        drop(file);
        tokio::fs::remove_file(staged).await?;
        Ok(())
    }

    fn staging_dir(&self) -> PathBuf {
        self.staging.clone()
    }

    async fn stat(&self, key: &str) -> Result<Option<BlobInfo>, BlobError> {
        let object = self.object(key)?;
        let head = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match self.store.get_opts(&object, head).await {
            Ok(r) => Ok(Some(BlobInfo {
                size: r.meta.size,
                content_type: content_type(&r.attributes),
            })),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(remote(e)),
        }
    }

    async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, BlobError> {
        let object = self.object(key)?;
        let mut options = GetOptions::default();
        if let Some(range) = range {
            // Resolved here so that an unsatisfiable range is told apart
            // from a store failure, and the answer is exact.
            let Some(info) = self.stat(key).await? else {
                return Ok(None);
            };
            let bounds = range
                .resolve(info.size)
                .ok_or(BlobError::RangeNotSatisfiable { size: info.size })?;
            options.range = Some(GetRange::Bounded(bounds));
        }
        let result = match self.store.get_opts(&object, options).await {
            Ok(r) => r,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(remote(e)),
        };
        let (size, range) = (result.meta.size, result.range.clone());
        let content_type = content_type(&result.attributes);
        let stream = result
            .into_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed();
        Ok(Some(BlobBody {
            size,
            content_type,
            range,
            stream,
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        if self.stat(key).await?.is_none() {
            return Ok(false);
        }
        let object = self.object(key)?;
        match self.store.delete(&object).await {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(remote(e)),
        }
    }
}

/// The object's content type; S3's own `binary/octet-stream`, given to
/// objects stored without one, is none.
fn content_type(attributes: &Attributes) -> Option<String> {
    attributes
        .get(&Attribute::ContentType)
        .and_then(|v| super::normalize_content_type(v.as_ref()))
        .filter(|ct| ct != "binary/octet-stream")
}
