//! Instagram direct messages and comments (`object: instagram`).
//!
//! Direct messages use the Messenger Platform's `messaging` events (echoes
//! of the account's own messages arrive here too, flagged `is_echo`);
//! comments on the account's media arrive as `comments` changes.

use aduan_adapter::{Adapter, Channel, Context, Outcome, Rejection, Request};

use crate::comments;
use crate::hub::{Hub, MetaConfig};
use crate::messaging::{self, Flavor};

/// The `provider` of Instagram complaints, messages and comments alike.
pub const PROVIDER: &str = "instagram";

const FLAVOR: Flavor = Flavor {
    channel: Channel::Instagram,
    provider: PROVIDER,
    scheme: "instagram",
};

/// An Instagram professional account instance.
#[derive(Debug)]
pub struct Instagram {
    hub: Hub,
}

impl Instagram {
    /// Validates the settings and builds the adapter.
    pub fn new(cfg: MetaConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Instagram {
            hub: Hub::new(&cfg),
        })
    }
}

impl Adapter for Instagram {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        self.hub.verify(req)
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        if req.method == http::Method::GET {
            return self.hub.challenge(req);
        }
        messaging::read_notification(
            req,
            ctx,
            "instagram",
            FLAVOR,
            "comments",
            comments::instagram,
        )
    }
}
