//! A fixed window of requests per client address per minute, in memory (per
//! replica): the public pages' and lookups' limit, where a client is known
//! only by its address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses remembered before the expired ones are dropped.
const MAX_CLIENTS: usize = 100_000;

/// The client's address: the last one in the configured proxy header
/// (`None` when that header is missing or unreadable), else the
/// connection's peer.
pub fn client_address(
    header: Option<&str>,
    headers: &http::HeaderMap,
    peer: Option<SocketAddr>,
) -> Option<IpAddr> {
    match header {
        Some(name) => headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok()),
        None => peer.map(|p| p.ip()),
    }
}

/// Requests per address per minute; `0` allows every request.
pub struct PerClient {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl PerClient {
    pub fn new(per_minute: u32) -> PerClient {
        PerClient {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether one more request from `ip` fits in its minute (counted when it does).
    pub fn allow(&self, ip: IpAddr) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let Ok(mut windows) = self.windows.lock() else {
            return false;
        };
        if windows.len() >= MAX_CLIENTS {
            windows.retain(|_, (start, _)| now.duration_since(*start) < minute);
        }
        if windows.len() >= MAX_CLIENTS {
            return false;
        }
        let entry = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= minute {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_minute() {
        let limit = PerClient::new(2);
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        assert!(limit.allow(a) && limit.allow(a));
        assert!(!limit.allow(a));
        assert!(limit.allow(b));
        let open = PerClient::new(0);
        assert!((0..1000).all(|_| open.allow(a)));
    }
}
