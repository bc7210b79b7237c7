//! Facebook Messenger and Page feed comments (`object: page`).
//!
//! A page's notification mixes private messages (`messaging`), events held
//! by another app (`standby`) and page field changes (`changes`), of which
//! only `feed` comments are complaints.

use aduan_adapter::{Adapter, Channel, Context, Outcome, Rejection, Request};

use crate::comments;
use crate::hub::{Hub, MetaConfig};
use crate::messaging::{self, Flavor};

/// The `provider` of Messenger complaints.
pub const PROVIDER: &str = "messenger";

const FLAVOR: Flavor = Flavor {
    channel: Channel::Facebook,
    provider: PROVIDER,
    scheme: "facebook",
};

/// A Facebook Page instance: Messenger conversations and feed comments.
#[derive(Debug)]
pub struct Messenger {
    hub: Hub,
}

impl Messenger {
    /// Validates the settings and builds the adapter.
    pub fn new(cfg: MetaConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Messenger {
            hub: Hub::new(&cfg),
        })
    }
}

impl Adapter for Messenger {
    fn verify(&self, req: &Request<'_>) -> Result<(), Rejection> {
        self.hub.verify(req)
    }

    fn decode(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        if req.method == http::Method::GET {
            return self.hub.challenge(req);
        }
        messaging::read_notification(req, ctx, "page", FLAVOR, "feed", comments::feed)
    }
}
