//! aduan's SMS adapters.
//!
//! - [`twilio`]: Twilio SMS, MMS and WhatsApp-via-Twilio (`X-Twilio-Signature`, TwiML answers).
//! - [`vonage`]: Vonage SMS API inbound (GET, form or JSON; `sig`; multi-part messages).
//! - [`infobip`]: Infobip inbound SMS (`results[]`, shared-secret auth).
//! - [`generic`]: any other SMS gateway, field names and auth set in config.
//! - [`common`], [`keyword`], [`number`]: what every SMS kind shares: the
//!   region for phone numbers, leading-keyword stripping, opt-out and opt-in
//!   keywords, sender identities.
//! - [`fetch`]: [`TwilioFetcher`], the media of Twilio messages for the
//!   gateway's media worker.
//! - [`send`]: the replies: [`TwilioSender`], [`VonageSender`],
//!   [`InfobipSender`] and [`GenericSender`], and the count of SMS parts.

pub mod common;
pub mod fetch;
pub mod generic;
pub mod infobip;
pub mod keyword;
pub mod number;
pub mod send;
#[cfg(test)]
mod testkit;
pub mod twilio;
pub mod vonage;

pub use fetch::{TwilioFetchConfig, TwilioFetcher};
pub use generic::{DlrMeaning, GenericAuth, GenericSms, GenericSmsConfig};
pub use infobip::{Infobip, InfobipAuth, InfobipConfig};
pub use send::{
    GenericSendConfig, GenericSender, InfobipSendConfig, InfobipSender, TwilioSendConfig,
    TwilioSender, VonageSendConfig, VonageSender,
};
pub use twilio::{Twilio, TwilioConfig};
pub use vonage::{SignatureMethod, Vonage, VonageConfig};
