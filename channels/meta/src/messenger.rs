//! Facebook Messenger and Page feed comments (`object: page`).
//!
//! A page's notification mixes private messages (`messaging`), events held
//! by another app (`standby`) and page field changes (`changes`), of which
//! only `feed` comments are complaints.

use aduan_adapter::{Adapter, Channel, Context, Outcome, Rejection, Request};

use crate::comments;
use crate::hub::{self, Batch, Hub, MetaConfig};
use crate::messaging::{self, Entry, Flavor};

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

    fn parse(&self, req: &Request<'_>, ctx: &Context<'_>) -> Result<Outcome, Rejection> {
        if req.method == http::Method::GET {
            return self.hub.challenge(req);
        }
        let entries: Vec<Entry> = hub::decode_envelope(req.body, "page")?;
        let mut batch = Batch::default();
        for (e, entry) in entries.iter().enumerate() {
            let at = format!("entry[{e}]");
            messaging::read(&entry.messaging, &at, FLAVOR, req, ctx, &mut batch)?;
            for _ in &entry.standby {
                batch.ignore("standby");
            }
            for (c, change) in entry.changes.iter().enumerate() {
                if change.field == "feed" {
                    let at = format!("{at}.changes[{c}].value");
                    comments::feed(entry, &change.value, &at, req, ctx, &mut batch)?;
                } else {
                    batch.ignore("field");
                }
            }
        }
        Ok(batch.into_outcome())
    }
}
