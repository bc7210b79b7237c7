//! Signed-in agents' sessions, kept in Redis so that every replica knows
//! them and signing out ends them everywhere.
//!
//! The `aduan_agent` cookie holds a random session id (32 bytes, hex), not
//! the call center's token. Redis holds, at `<prefix>:web:session:<SHA-256
//! of the id>` for `agent_session_hours`, the call center's instance name
//! and a digest of the token signed in with, salted with the session id: a
//! reader of Redis learns which call center a session is for and nothing
//! that opens it or gives the token away. A request finds the token again
//! among the instance's configured tokens by that digest, so a token taken
//! out of the configuration ends the sessions opened with it.

use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::Secret;
use aduan_adapter::verify::{constant_time_eq, sha256_hex};
use serde::{Deserialize, Serialize};

use crate::redis::{Redis, RedisError};

/// The call centers agents sign in to: each transcript instance and its tokens.
pub(super) struct Sessions {
    redis: Arc<Redis>,
    ttl: Duration,
    centers: Vec<(String, Vec<Secret>)>,
}

/// What Redis keeps of one session.
#[derive(Serialize, Deserialize)]
struct Stored {
    instance: String,
    /// [`token_digest`] of the token signed in with.
    token: String,
}

impl Sessions {
    /// Sessions of `hours` over `centers` (in the order the server indexed
    /// the transcript instances' tokens in).
    pub(super) fn new(redis: Arc<Redis>, hours: u64, centers: Vec<(String, Vec<Secret>)>) -> Self {
        Sessions {
            redis,
            ttl: Duration::from_secs(hours.saturating_mul(3600)),
            centers,
        }
    }

    /// How long a session lasts.
    pub(super) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session for `token` of the call center at `center` (its
    /// index); the cookie's value.
    pub(super) async fn open(&self, center: usize, token: &str) -> Result<String, RedisError> {
        let (instance, _) = self
            .centers
            .get(center)
            .ok_or_else(|| RedisError::Protocol("no such call center".into()))?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| RedisError::Protocol(e.to_string()))?;
        let id = hex::encode(bytes);
        let stored = Stored {
            instance: instance.clone(),
            token: token_digest(&id, token.as_bytes()),
        };
        let value =
            serde_json::to_string(&stored).map_err(|e| RedisError::Serialize(e.to_string()))?;
        let mut conn = self.redis.connection().await?;
        self.in_time(
            ::redis::cmd("SET")
                .arg(self.key(&id))
                .arg(value)
                .arg("EX")
                .arg(self.ttl.as_secs().max(1))
                .query_async::<()>(&mut conn),
        )
        .await?;
        Ok(id)
    }

    /// The call center's token the session `id` was opened with, while the
    /// session lasts and the token is still configured.
    pub(super) async fn find(&self, id: &str) -> Result<Option<String>, RedisError> {
        if !is_id(id) {
            return Ok(None);
        }
        let mut conn = self.redis.connection().await?;
        let value: Option<String> = self
            .in_time(::redis::cmd("GET").arg(self.key(id)).query_async(&mut conn))
            .await?;
        let Some(stored) = value.and_then(|v| serde_json::from_str::<Stored>(&v).ok()) else {
            return Ok(None);
        };
        let tokens = self
            .centers
            .iter()
            .find(|(name, _)| *name == stored.instance)
            .map(|(_, tokens)| tokens.as_slice())
            .unwrap_or_default();
        let token = tokens.iter().find(|t| {
            constant_time_eq(
                token_digest(id, t.expose_bytes()).as_bytes(),
                stored.token.as_bytes(),
            )
        });
        Ok(token.map(|t| t.expose().to_string()))
    }

    /// Ends the session `id`.
    pub(super) async fn close(&self, id: &str) -> Result<(), RedisError> {
        if !is_id(id) {
            return Ok(());
        }
        let mut conn = self.redis.connection().await?;
        self.in_time(
            ::redis::cmd("DEL")
                .arg(self.key(id))
                .query_async::<()>(&mut conn),
        )
        .await
    }

    fn key(&self, id: &str) -> String {
        self.redis.keys().web_session(&sha256_hex(id.as_bytes()))
    }

    async fn in_time<T>(
        &self,
        command: impl Future<Output = ::redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        match tokio::time::timeout(self.redis.timeout(), command).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RedisError::command("web", e)),
            Err(_) => Err(RedisError::Timeout(self.redis.timeout())),
        }
    }
}

/// A session id: 64 lowercase hex digits.
fn is_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The token's digest salted with the session id, which Redis never holds.
fn token_digest(id: &str, token: &[u8]) -> String {
    let mut message = b"aduan-agent-session/1\0".to_vec();
    message.extend_from_slice(id.as_bytes());
    message.push(0);
    message.extend_from_slice(token);
    sha256_hex(&message)
}
