//! The Open311 GeoReport v2 channel: the civic-issue standard that
//! FixMyStreet, SeeClickFix and city 311 systems speak.
//!
//! Each instance is one endpoint, `/open311/v2/<instance>/`, with its own
//! API keys and its own list of services. Clients read `services.json` (or
//! `.xml`) and a service's definition, then post a service request to
//! `requests.json`; each request becomes one Complaint (`channel: web`,
//! `provider: open311`). `docs/channels/web.md` describes the endpoint.
//!
//! - [`config`]: the instance's settings, services and their attributes.
//! - [`catalog`]: the read-only answers (service list, service definitions)
//!   and the standard's error document, in JSON and XML.
//! - [`request`]: the parameters of a posted request, read from a form or
//!   JSON and checked field by field.
//! - [`adapter`]: resources, the `api_key` check, normalization into a
//!   Complaint and the `201` answer.
//! - [`form`]: the citizen form's fields (`/lapor/<instance>`, served by the
//!   gateway) read as a service request, with its photo.

pub mod adapter;
pub mod catalog;
pub mod config;
pub mod form;
pub mod request;

pub use adapter::{DETAILS_HEADING, IDEMPOTENCY_HEADER, Open311, PROVIDER};
pub use config::{AttributeConfig, Datatype, Open311Config, ServiceConfig, ValueConfig};
pub use form::{FORM_PROVIDER, FormFields, Photo, Submission};
