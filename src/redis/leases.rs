//! Leases (one replica polls a given account) and cursors (how far it got).

use std::time::Duration;

use super::{Redis, RedisError, scripts};

impl Redis {
    /// Takes or renews the lease `name` for `owner`. True while `owner` holds it.
    pub async fn take_lease(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, RedisError> {
        let mut conn = self.connection().await?;
        let held: i64 = scripts::TAKE_LEASE
            .key(self.keys().lease(name))
            .arg(owner)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("host", e))?;
        Ok(held == 1)
    }

    /// Gives the lease `name` up if `owner` holds it.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        let _: i64 = scripts::RELEASE_LEASE
            .key(self.keys().lease(name))
            .arg(owner)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("host", e))?;
        Ok(())
    }

    /// The cursor `name`, if one was stored.
    pub async fn load_cursor(&self, name: &str) -> Result<Option<String>, RedisError> {
        let mut conn = self.connection().await?;
        ::redis::cmd("GET")
            .arg(self.keys().cursor(name))
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisError::command("host", e))
    }

    /// Stores the cursor `name`.
    pub async fn store_cursor(&self, name: &str, value: &str) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        ::redis::cmd("SET")
            .arg(self.keys().cursor(name))
            .arg(value)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| RedisError::command("host", e))
    }
}
