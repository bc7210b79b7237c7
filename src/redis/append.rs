//! The atomic "seen before? else append" step, one script call per complaint.
//!
//! The duplicate check and the `XADD` run inside one Lua script, so two
//! replicas (or a provider retry racing its original) can never both append.
//! The dedup key stores the first complaint's id, which a duplicate gets back.

use aduan_adapter::{Complaint, Receipt};

use super::{Redis, RedisError, scripts};

impl Redis {
    /// Appends each complaint unless its (instance, external_id) was seen within
    /// the window. Complaints must already carry their id.
    pub async fn append(&self, complaints: &[Complaint]) -> Result<Vec<Receipt>, RedisError> {
        let mut conn = self.connection().await?;
        let mut receipts = Vec::with_capacity(complaints.len());
        for complaint in complaints {
            let json = serde_json::to_string(complaint)
                .map_err(|e| RedisError::Serialize(e.to_string()))?;
            let mut invocation = scripts::APPEND_ONCE.prepare_invoke();
            invocation
                .key(
                    self.keys()
                        .dedup(&complaint.instance, &complaint.external_id),
                )
                .key(self.keys().stream())
                .arg(&complaint.id)
                .arg(self.dedup_ttl_ms)
                .arg(complaint.channel.as_str())
                .arg(&complaint.instance)
                .arg(&complaint.schema)
                .arg(json);
            let reply: Vec<::redis::Value> =
                tokio::time::timeout(self.timeout(), invocation.invoke_async(&mut conn))
                    .await
                    .map_err(|_| RedisError::Timeout(self.timeout()))?
                    .map_err(|e| RedisError::Unavailable(e.to_string()))?;
            let (appended, id) = decode_reply(&reply)?;
            receipts.push(Receipt {
                id,
                external_id: complaint.external_id.clone(),
                duplicate: !appended,
            });
        }
        Ok(receipts)
    }
}

fn decode_reply(reply: &[::redis::Value]) -> Result<(bool, String), RedisError> {
    let flag = match reply.first() {
        Some(::redis::Value::Int(n)) => *n == 1,
        other => return Err(RedisError::Protocol(format!("flag {other:?}"))),
    };
    let id = match reply.get(1) {
        Some(::redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(::redis::Value::SimpleString(s)) => s.clone(),
        other => return Err(RedisError::Protocol(format!("id {other:?}"))),
    };
    Ok((flag, id))
}
