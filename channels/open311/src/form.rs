//! The citizen form's submission (`/lapor/<instance>`), read as a service
//! request to the instance's own services.
//!
//! The gateway serves the page, checks its CSRF token and limits, reads the
//! multipart body and sniffs the photo; this module turns the fields into a
//! Complaint exactly as a posted Open311 request would be, with two
//! differences a person typing on a phone needs: the location and the
//! answers to required attributes may be left out, and one photo may come
//! with it (streamed into the blob store by the gateway, which stores it
//! before the complaint is appended; this module sees only its digest).

use aduan_adapter::{Attachment, AttachmentKind, Complaint, Context, FieldError, content_id};

use crate::adapter::Open311;
use crate::request::{Params, ServiceRequest};

/// The `provider` of complaints sent with the citizen form.
pub const FORM_PROVIDER: &str = "web_form";

/// The form's fields as the citizen typed them (the page shows them again,
/// unchanged, when something must be fixed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FormFields {
    pub name: String,
    /// A phone number or an email address.
    pub contact: String,
    /// A `service_code` of the instance.
    pub category: String,
    pub description: String,
    /// Filled by the page's "use my location" button, when JavaScript runs.
    pub latitude: String,
    pub longitude: String,
    pub address: String,
}

impl FormFields {
    /// The field called `name` (the form's own names), for filling in from a body.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut String> {
        Some(match name {
            "name" => &mut self.name,
            "contact" => &mut self.contact,
            "category" => &mut self.category,
            "description" => &mut self.description,
            "latitude" => &mut self.latitude,
            "longitude" => &mut self.longitude,
            "address" => &mut self.address,
            _ => return None,
        })
    }
}

/// The photo sent with the form, whose type the gateway read off its bytes
/// and whose bytes it stores as `sha256/<sha256>`.
#[derive(Debug, Clone)]
pub struct Photo {
    /// The SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// The sniffed media type (`image/jpeg`, …).
    pub content_type: String,
    /// The file's name as the browser gave it.
    pub filename: Option<String>,
}

/// A checked submission: the complaint, whose photo (when there is one)
/// names its `storage_key`, to be stored before the complaint is appended.
#[derive(Debug)]
pub struct Submission {
    pub complaint: Complaint,
}

/// Longest name or contact, in characters.
const MAX_SHORT_FIELD: usize = 200;

impl Open311 {
    /// Checks the form and builds its complaint. Errors name the form's own
    /// fields (`name`, `contact`, `category`, `description`, `location`),
    /// every one at once. `form_id` is the page's own random id: a second
    /// post of the same page with the same content (a double tap, a reload)
    /// is the same complaint, a duplicate.
    pub fn form_submission(
        &self,
        fields: &FormFields,
        photo: Option<Photo>,
        form_id: &str,
        ctx: &Context<'_>,
    ) -> Result<Submission, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = fields.name.trim();
        let contact = fields.contact.trim();
        if name.is_empty() {
            errors.push(error("name", "is required"));
        } else if name.chars().count() > MAX_SHORT_FIELD {
            errors.push(error("name", "is too long"));
        }
        if contact.is_empty() {
            errors.push(error("contact", "is required"));
        } else if contact.chars().count() > MAX_SHORT_FIELD {
            errors.push(error("contact", "is too long"));
        }
        let contact_field = if contact.contains('@') {
            "email"
        } else {
            "phone"
        };
        let (lat, long) = (fields.latitude.trim(), fields.longitude.trim());
        let mut pairs = vec![
            ("service_code", fields.category.trim()),
            ("description", fields.description.trim()),
            ("first_name", name),
            (contact_field, contact),
            ("address_string", fields.address.trim()),
        ];
        // A position is both coordinates or none: the button fills both.
        if !lat.is_empty() && !long.is_empty() {
            pairs.extend([("lat", lat), ("long", long)]);
        }
        let params = Params::from_web_form(&pairs);
        let checked = ServiceRequest::check(&params, self.services(), self.default_region());
        let sr = match checked {
            Ok(sr) if errors.is_empty() => sr,
            Ok(_) => return Err(errors),
            Err(found) => {
                errors.extend(found.into_iter().map(|e| FieldError {
                    field: form_field(&e.field).to_string(),
                    message: e.message,
                }));
                return Err(errors);
            }
        };
        let mut parts = vec![FORM_PROVIDER.to_string(), form_id.to_string()];
        parts.extend(sr.canonical_parts());
        if let Some(p) = &photo {
            parts.push(p.sha256.clone());
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let external_id = content_id(&parts);
        let mut complaint = self.complaint(&sr, external_id, None, ctx);
        complaint.provider = FORM_PROVIDER.to_string();
        if let Some(photo) = photo {
            complaint.attachments.push(Attachment {
                content_type: Some(photo.content_type),
                filename: photo.filename,
                size: Some(photo.size),
                storage_key: Some(format!("sha256/{}", photo.sha256)),
                sha256: Some(photo.sha256),
                ..Attachment::new(AttachmentKind::Image)
            });
        }
        // This door does not go through `Adapter::parse`, where every other
        // complaint is sanitized: a person types into these fields too.
        complaint.sanitize();
        Ok(Submission { complaint })
    }
}

/// The form field an Open311 field error is about.
fn form_field(open311: &str) -> &str {
    match open311 {
        "service_code" => "category",
        "first_name" | "last_name" => "name",
        "email" | "phone" => "contact",
        "lat" | "long" | "location" => "location",
        "address_string" => "address",
        other => other,
    }
}

fn error(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.to_string(),
    }
}
