//! The HTTP client the media worker hands to every fetcher (inside
//! [`MediaHttp`](aduan_adapter::media::MediaHttp)): one that cannot be
//! turned against the gateway's own network.
//!
//! Attachment URLs come from provider payloads (Messenger, Instagram, X and
//! Twilio give URLs, WhatsApp's media lookup answers one), and whoever can
//! get a payload accepted chooses them. Fetched blindly, a URL such as
//! `http://169.254.169.254/latest/meta-data/…` would read the cloud
//! metadata service (and its credentials) into the evidence store, and
//! `http://10.0.0.7:6379/` would probe internal hosts from inside: server-side
//! request forgery. So this client:
//!
//! - resolves names itself and drops every address that is not
//!   [`is_public`]; a name left with none fails with `forbidden_address`,
//!   and so, at once and without a lookup, does `localhost` or a name under
//!   it, in any case and with trailing dots ([`is_local_name`]). The check is on the addresses the connection is actually made to, not
//!   on an earlier lookup, so DNS rebinding (a name that answers a public
//!   address to a first check and a private one to the connection) gains
//!   nothing;
//! - checks every redirect again: at most [`MAX_REDIRECTS`], only to
//!   `http` or `https`, and never to a literal address that is not public
//!   nor to a `localhost` name (literal addresses skip the resolver, so
//!   they are checked here, as
//!   [`MediaHttp::get`](aduan_adapter::media::MediaHttp::get) checks them
//!   in the first URL); a redirect to a name goes through the resolver;
//! - uses no proxy, not even one named in the environment: through a proxy
//!   the target's addresses would be resolved where this check cannot see;
//! - sends no `Referer` on redirects (a Telegram file URL holds the bot
//!   token) and, like every reqwest client, drops `Authorization` when a
//!   redirect leaves the host and port (Twilio's media URLs redirect to
//!   signed storage that must not see the account's credentials);
//! - never decompresses: the bytes stored are the bytes the provider sent,
//!   so their size is capped as they arrive (no decompression bomb) and the
//!   provider's SHA-256 is checked against what it actually sent.
//!
//! `allow_private` turns the address checks off, for tests and local
//! stand-ins only; schemes and the redirect limit are checked regardless.
//!
//! Refusals are [`FetchError`]s placed as the source of the transport
//! error; each fetcher finds one in the error's source chain and returns it
//! as it is, so the worker sees `forbidden_address`, `too_many_redirects`
//! or `bad_url` rather than a network error to retry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aduan_adapter::media::{FetchError, is_local_name, is_private_host, is_public};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;

/// The most redirects one fetch follows.
pub const MAX_REDIRECTS: usize = 5;

/// The longest wait for the next bytes of an answer once connected: a
/// provider that stops sending frees the worker instead of holding it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The `User-Agent` of every fetch (WhatsApp's media host answers a request
/// without one with an error page instead of the file).
pub const USER_AGENT: &str = concat!("aduan-media/", env!("CARGO_PKG_VERSION"));

/// The media worker's client: a resolver that keeps only public addresses
/// and a redirect policy that checks each hop, both unless `allow_private`;
/// `connect_timeout` bounds each connection (name lookup included).
pub fn client(allow_private: bool, connect_timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(redirect_policy(allow_private))
        .no_proxy()
        .referer(false)
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .no_zstd()
        .connect_timeout(connect_timeout)
        .read_timeout(READ_TIMEOUT)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| format!("cannot build the media HTTP client: {e}"))
}

/// A resolver over the system's (`getaddrinfo` through tokio) that keeps
/// only the addresses a fetch may connect to.
#[derive(Clone, Copy, Debug)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Refused before the lookup, which for `localhost.` would wait on DNS.
            if !allow_private && is_local_name(&host) {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(local_name_refused());
                return Err(refused);
            }
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = keep(found, allow_private)?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses of `found` that may be connected to. A lookup that found
/// addresses, none of them allowed, is `forbidden_address`; one that found
/// none at all is left to fail as the network error it is.
fn keep(
    found: impl IntoIterator<Item = SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, FetchError> {
    let found: Vec<SocketAddr> = found.into_iter().collect();
    if allow_private || found.is_empty() {
        return Ok(found);
    }
    let kept: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
    if kept.is_empty() {
        return Err(FetchError::permanent(
            "forbidden_address",
            "the host resolves only to addresses that are not on the public internet",
        ));
    }
    Ok(kept)
}

/// The refusal of a `localhost` name.
fn local_name_refused() -> FetchError {
    FetchError::permanent(
        "forbidden_address",
        "the host is a name of this machine, not on the public internet",
    )
}

fn redirect_policy(allow_private: bool) -> Policy {
    Policy::custom(move |attempt| {
        match check_redirect(attempt.url(), attempt.previous().len(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    })
}

/// Whether a redirect to `next` may be followed when `requested` URLs (the
/// first one and each redirect so far) have been requested.
fn check_redirect(next: &Url, requested: usize, allow_private: bool) -> Result<(), FetchError> {
    // The first URL requested is not a redirect.
    if requested > MAX_REDIRECTS {
        return Err(FetchError::permanent(
            "too_many_redirects",
            format!("more than {MAX_REDIRECTS} redirects"),
        ));
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Err(FetchError::permanent(
            "bad_url",
            "a redirect leads to a scheme other than http or https",
        ));
    }
    let Some(host) = next.host() else {
        return Err(FetchError::permanent(
            "bad_url",
            "a redirect leads to a URL without a host",
        ));
    };
    if !allow_private && is_private_host(&host) {
        return Err(FetchError::permanent(
            "forbidden_address",
            "a redirect leads to an address that is not on the public internet",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
