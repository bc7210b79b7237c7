//! What the read-only resources answer: `services.{json,xml}` and
//! `services/{code}.{json,xml}`, rendered once from the settings when the
//! instance is built, and the standard's error document in either format.
//!
//! The XML follows the standard's examples: schemaless, no namespace, an
//! XML declaration naming UTF-8. The JSON is its mapping by the Spark
//! convention the standard uses: a list for `<services>`, an object for
//! `<service_definition>`.

use aduan_adapter::Reply;
use serde_json::{Value, json};

use crate::config::{AttributeConfig, ServiceConfig};

/// The answer format a resource is asked in, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.json`: `application/json; charset=utf-8`.
    Json,
    /// `.xml`: `text/xml; charset=utf-8`, the format every client can read.
    Xml,
}

impl Format {
    /// The format named by an extension, if it is one of the two.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }

    /// The content type of answers in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "text/xml; charset=utf-8",
        }
    }
}

/// A document in both formats, rendered once.
#[derive(Debug, Clone)]
pub struct Rendered {
    json: Vec<u8>,
    xml: Vec<u8>,
}

impl Rendered {
    /// A `200` with the document in `format`.
    pub fn reply(&self, format: Format) -> Reply {
        let body = match format {
            Format::Json => self.json.clone(),
            Format::Xml => self.xml.clone(),
        };
        reply(200, format, body)
    }
}

/// `GET services.{format}`: every service, in the configured order.
pub fn service_list(services: &[ServiceConfig]) -> Rendered {
    let json: Vec<Value> = services
        .iter()
        .map(|s| {
            json!({
                "service_code": s.service_code,
                "service_name": s.service_name,
                "description": s.description,
                "metadata": !s.attributes.is_empty(),
                // The id is the complaint's, known as soon as it is accepted.
                "type": "realtime",
                "keywords": s.keywords.join(", "),
                "group": s.group,
            })
        })
        .collect();
    let mut xml = Xml::new();
    xml.open("services");
    for s in services {
        xml.open("service");
        xml.leaf("service_code", &s.service_code);
        xml.leaf("service_name", &s.service_name);
        xml.leaf("description", &s.description);
        xml.leaf("metadata", bool_text(!s.attributes.is_empty()));
        xml.leaf("type", "realtime");
        xml.leaf("keywords", &s.keywords.join(", "));
        xml.leaf("group", &s.group);
        xml.close("service");
    }
    xml.close("services");
    Rendered {
        json: Value::from(json).to_string().into_bytes(),
        xml: xml.finish(),
    }
}

/// `GET services/{code}.{format}`: the service's attributes, numbered in order from 1.
pub fn service_definition(service: &ServiceConfig) -> Rendered {
    let attributes: Vec<Value> = service
        .attributes
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let values: Vec<Value> = a
                .values
                .iter()
                .map(|v| json!({"key": v.key, "name": v.name}))
                .collect();
            json!({
                "variable": true,
                "code": a.code,
                "datatype": a.datatype.as_str(),
                "required": a.required,
                "datatype_description": a.datatype_description,
                "order": i + 1,
                "description": a.description,
                "values": values,
            })
        })
        .collect();
    let json = json!({"service_code": service.service_code, "attributes": attributes});
    let mut xml = Xml::new();
    xml.open("service_definition");
    xml.leaf("service_code", &service.service_code);
    xml.open("attributes");
    for (i, a) in service.attributes.iter().enumerate() {
        attribute_xml(&mut xml, i + 1, a);
    }
    xml.close("attributes");
    xml.close("service_definition");
    Rendered {
        json: json.to_string().into_bytes(),
        xml: xml.finish(),
    }
}

fn attribute_xml(xml: &mut Xml, order: usize, a: &AttributeConfig) {
    xml.open("attribute");
    xml.leaf("variable", "true");
    xml.leaf("code", &a.code);
    xml.leaf("datatype", a.datatype.as_str());
    xml.leaf("required", bool_text(a.required));
    xml.leaf(
        "datatype_description",
        a.datatype_description.as_deref().unwrap_or(""),
    );
    xml.leaf("order", &order.to_string());
    xml.leaf("description", &a.description);
    xml.open("values");
    for v in &a.values {
        xml.open("value");
        xml.leaf("key", &v.key);
        xml.leaf("name", &v.name);
        xml.close("value");
    }
    xml.close("values");
    xml.close("attribute");
}

/// The standard's error document, `[{"code", "description"}]` or
/// `<errors><error>…`, one entry per description, each with `status` as its
/// code (the standard lets the code differ from the HTTP status; nothing
/// here needs it to).
pub fn errors(status: u16, format: Format, descriptions: &[String]) -> Reply {
    let body = match format {
        Format::Json => {
            let list: Vec<Value> = descriptions
                .iter()
                .map(|d| json!({"code": status, "description": d}))
                .collect();
            Value::from(list).to_string().into_bytes()
        }
        Format::Xml => {
            let mut xml = Xml::new();
            xml.open("errors");
            for d in descriptions {
                xml.open("error");
                xml.leaf("code", &status.to_string());
                xml.leaf("description", d);
                xml.close("error");
            }
            xml.close("errors");
            xml.finish()
        }
    };
    reply(status, format, body)
}

/// The answer to an accepted `requests.xml`:
/// `<service_requests><request><service_request_id>…<service_notice>…`.
pub fn receipts(status: u16, receipts: &[aduan_adapter::Receipt], notice: &str) -> Reply {
    let mut xml = Xml::new();
    xml.open("service_requests");
    for r in receipts {
        xml.open("request");
        xml.leaf("service_request_id", crate::adapter::service_request_id(r));
        xml.leaf("service_notice", notice);
        xml.close("request");
    }
    xml.close("service_requests");
    reply(status, Format::Xml, xml.finish())
}

fn reply(status: u16, format: Format, body: Vec<u8>) -> Reply {
    Reply {
        status,
        content_type: format.content_type().into(),
        body,
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// A small XML writer: elements and escaped text, nothing else is needed.
/// Each element starts a line, indented by its depth, so that an answer
/// reads as the standard's examples do.
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn new() -> Self {
        Xml {
            out: String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
            depth: 0,
        }
    }

    fn line(&mut self) {
        self.out.push('\n');
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.line();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        // An element without children closes on its own line's end.
        if !self.out.ends_with(&format!("<{name}>")) {
            self.line();
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.line();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push('\n');
        self.out.into_bytes()
    }
}

/// `text` as XML character data. Characters XML 1.0 cannot hold at all
/// (C0 controls but tab and line breaks) are left out rather than escaped,
/// since no escape makes them legal.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    #[test]
    fn text_is_escaped_and_illegal_characters_dropped() {
        let mut out = String::new();
        escape_into(&mut out, "Jalan <rusak> & \"berlubang\" 'parah'\u{1}\n");
        assert_eq!(
            out,
            "Jalan &lt;rusak&gt; &amp; &quot;berlubang&quot; &apos;parah&apos;\n"
        );
    }
}
