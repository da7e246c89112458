//! [`read`]: a CAP 1.2 document in, checked field by field.

use chrono::{DateTime, FixedOffset};

use super::check::{Errors, is_number, parse_reference, parse_time, split_list, validate};
use super::{
    Alert, Area, CAP_NS, CapWord, Certainty, Info, MsgType, NamedValue, Reference, Scope, Severity,
    Status, Urgency,
};
use crate::error::FieldError;

type Node<'a, 'i> = roxmltree::Node<'a, 'i>;

/// Parses a CAP 1.2 document. Every problem found is reported, each naming its field.
pub fn read(xml: &str) -> Result<Alert, Vec<FieldError>> {
    // Default options keep `allow_dtd: false`: no entity expansion, no external entities.
    let doc = roxmltree::Document::parse(xml).map_err(|e| {
        let message = match e {
            roxmltree::Error::DtdDetected => "DTDs and entity declarations are refused".into(),
            other => format!("is not well-formed XML: {other}"),
        };
        vec![FieldError::new("document", message)]
    })?;
    let root = doc.root_element();
    let (ns, name) = (root.tag_name().namespace(), root.tag_name().name());
    if name != "alert" || ns != Some(CAP_NS) {
        let found = format!("<{name}> in namespace '{}'", ns.unwrap_or(""));
        let msg = format!("the root must be <alert> in namespace {CAP_NS}; found {found}");
        return Err(vec![FieldError::new("alert", msg)]);
    }
    let mut reader = Reader::default();
    let alert = reader.alert(root);
    let mut errors = reader.e.0;
    // Skip model checks on fields already reported (a missing event is also empty).
    for e in validate(&alert) {
        if !errors.iter().any(|x| x.field.starts_with(&e.field)) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(alert)
    } else {
        Err(errors)
    }
}

/// Child elements `name` in the CAP namespace; anything else (e.g. a
/// ds:Signature, or `resource`, which is not modelled) is ignored.
fn cap_children<'a, 'i>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    let is_cap = |c: &Node| c.tag_name().namespace() == Some(CAP_NS);
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name && is_cap(c))
}

fn text(node: Node) -> String {
    let texts = node.descendants().filter(|d| d.is_text());
    texts.filter_map(|d| d.text()).collect()
}

/// Builds the model while collecting errors. Missing values get placeholders
/// so that parsing goes on and reports everything; any error discards the result.
#[derive(Default)]
struct Reader {
    e: Errors,
}

impl Reader {
    fn opt(&mut self, node: Node, path: &str, name: &str) -> Option<String> {
        let mut found = cap_children(node, name);
        let first = found.next().map(text);
        if found.next().is_some() {
            self.e.add(path, name, "may appear only once");
        }
        first
    }

    fn req(&mut self, node: Node, path: &str, name: &str) -> String {
        let value = self.opt(node, path, name);
        value.unwrap_or_else(|| {
            self.e.add(path, name, "is required but missing");
            String::new()
        })
    }

    fn word<T: CapWord>(&mut self, raw: &str, path: &str, name: &str) -> Option<T> {
        let word = T::from_cap(raw.trim());
        if word.is_none() {
            let allowed: Vec<&str> = T::ALL.iter().map(|w| w.as_cap()).collect();
            let msg = format!("'{}' is not one of: {}", raw.trim(), allowed.join(", "));
            self.e.add(path, name, msg);
        }
        word
    }

    fn req_word<T: CapWord>(&mut self, node: Node, path: &str, name: &str, placeholder: T) -> T {
        let Some(raw) = self.opt(node, path, name) else {
            self.e.add(path, name, "is required but missing");
            return placeholder;
        };
        self.word(&raw, path, name).unwrap_or(placeholder)
    }

    fn words<T: CapWord>(&mut self, node: Node, path: &str, name: &str) -> Vec<T> {
        let found = cap_children(node, name).enumerate();
        found
            .filter_map(|(i, n)| self.word(&text(n), path, &format!("{name}[{i}]")))
            .collect()
    }

    fn time(&mut self, node: Node, path: &str, name: &str) -> Option<DateTime<FixedOffset>> {
        let raw = self.opt(node, path, name)?;
        parse_time(raw.trim())
            .map_err(|m| self.e.add(path, name, m))
            .ok()
    }

    fn named(&mut self, node: Node, path: &str, name: &str) -> Vec<NamedValue> {
        let found = cap_children(node, name).enumerate();
        let mut read_one = |(i, n)| {
            let p = format!("{path}.{name}[{i}]"); // always under info or area
            NamedValue::new(self.req(n, &p, "valueName"), self.req(n, &p, "value"))
        };
        found.map(&mut read_one).collect()
    }

    fn number(&mut self, node: Node, path: &str, name: &str) -> Option<f64> {
        let raw = self.opt(node, path, name)?;
        match raw.trim() {
            v if is_number(v) => v.parse().ok(),
            v => {
                self.e
                    .add(path, name, format!("'{v}' is not a decimal number"));
                None
            }
        }
    }

    fn references(&mut self, node: Node) -> Vec<Reference> {
        let raw = self.opt(node, "", "references").unwrap_or_default();
        let mut parse_one = |(i, triple): (usize, &str)| {
            let msg = |m| format!("entry {} '{triple}': {m}", i + 1);
            parse_reference(triple)
                .map_err(|m| self.e.add("", "references", msg(m)))
                .ok()
        };
        raw.split_whitespace()
            .enumerate()
            .filter_map(&mut parse_one)
            .collect()
    }

    fn alert(&mut self, n: Node) -> Alert {
        let sent = self.time(n, "", "sent");
        if cap_children(n, "sent").next().is_none() {
            self.e.add("", "sent", "is required but missing");
        }
        let list = |raw: Option<String>| split_list(&raw.unwrap_or_default());
        Alert {
            identifier: self.req(n, "", "identifier"),
            sender: self.req(n, "", "sender"),
            sent: sent.unwrap_or_default(),
            status: self.req_word(n, "", "status", Status::Actual),
            msg_type: self.req_word(n, "", "msgType", MsgType::Alert),
            source: self.opt(n, "", "source"),
            scope: self.req_word(n, "", "scope", Scope::Public),
            restriction: self.opt(n, "", "restriction"),
            addresses: list(self.opt(n, "", "addresses")),
            code: cap_children(n, "code").map(text).collect(),
            note: self.opt(n, "", "note"),
            references: self.references(n),
            incidents: list(self.opt(n, "", "incidents")),
            infos: cap_children(n, "info")
                .enumerate()
                .map(|(i, info)| self.info(info, &format!("info[{i}]")))
                .collect(),
        }
    }

    fn info(&mut self, n: Node, p: &str) -> Info {
        let language = self.opt(n, p, "language").map(|l| l.trim().to_owned());
        Info {
            language: language.unwrap_or_else(|| "en-US".into()),
            category: self.words(n, p, "category"),
            event: self.req(n, p, "event"),
            response_type: self.words(n, p, "responseType"),
            urgency: self.req_word(n, p, "urgency", Urgency::Unknown),
            severity: self.req_word(n, p, "severity", Severity::Unknown),
            certainty: self.req_word(n, p, "certainty", Certainty::Unknown),
            audience: self.opt(n, p, "audience"),
            event_code: self.named(n, p, "eventCode"),
            effective: self.time(n, p, "effective"),
            onset: self.time(n, p, "onset"),
            expires: self.time(n, p, "expires"),
            sender_name: self.opt(n, p, "senderName"),
            headline: self.opt(n, p, "headline"),
            description: self.opt(n, p, "description"),
            instruction: self.opt(n, p, "instruction"),
            web: self.opt(n, p, "web").map(|w| w.trim().to_owned()),
            contact: self.opt(n, p, "contact"),
            parameters: self.named(n, p, "parameter"),
            areas: cap_children(n, "area")
                .enumerate()
                .map(|(i, area)| self.area(area, &format!("{p}.area[{i}]")))
                .collect(),
        }
    }

    fn area(&mut self, n: Node, p: &str) -> Area {
        Area {
            area_desc: self.req(n, p, "areaDesc"),
            polygons: cap_children(n, "polygon").map(text).collect(),
            circles: cap_children(n, "circle").map(text).collect(),
            geocodes: self.named(n, p, "geocode"),
            altitude: self.number(n, p, "altitude"),
            ceiling: self.number(n, p, "ceiling"),
        }
    }
}
