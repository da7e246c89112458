//! [`write`]: CAP 1.2 XML out, in schema order; [`atom`]: an Atom 1.0 feed.

use std::io;

use chrono::{DateTime, FixedOffset, SecondsFormat};
use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::check::{format_time, join_list};
use super::{Alert, Area, CAP_NS, CapWord, Category, Info, NamedValue, Reference};

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

type Xml = Writer<Vec<u8>>;

/// Drops characters XML 1.0 cannot carry (most C0 controls, U+FFFE/FFFF),
/// so a stray control character can never make the output unparsable.
fn xml_safe(s: &str) -> String {
    // Rust chars are never surrogates, so one range covers U+0020..U+FFFD.
    let ok = |c: &char| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{FFFD}' | '\u{10000}'..);
    s.chars().filter(ok).collect()
}

fn leaf(w: &mut Xml, name: &str, text: &str) -> io::Result<()> {
    // Escape only <, > and & (and \r): quotes stay readable in Japanese text.
    let text = BytesText::from_escaped(partial_escape(xml_safe(text)));
    w.create_element(name).write_text_content(text)?;
    Ok(())
}

/// One element per item; nothing for `None` or an empty list.
fn leaves<'s>(w: &mut Xml, name: &str, items: impl IntoIterator<Item = &'s str>) -> io::Result<()> {
    items.into_iter().try_for_each(|t| leaf(w, name, t))
}

fn named(w: &mut Xml, name: &str, values: &[NamedValue]) -> io::Result<()> {
    for nv in values {
        w.create_element(name).write_inner_content(|w| {
            leaf(w, "valueName", &nv.value_name)?;
            leaf(w, "value", &nv.value)
        })?;
    }
    Ok(())
}

fn empty(w: &mut Xml, name: &str, attributes: &[(&str, &str)]) -> io::Result<()> {
    let safe: Vec<(&str, String)> = attributes.iter().map(|(k, v)| (*k, xml_safe(v))).collect();
    let attrs = safe.iter().map(|(k, v)| (*k, v.as_str()));
    w.create_element(name)
        .with_attributes(attrs)
        .write_empty()?;
    Ok(())
}

fn document(body: impl FnOnce(&mut Xml) -> io::Result<()>) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let decl = Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None));
    w.write_event(decl)
        .and_then(|()| body(&mut w))
        .expect("writing to a Vec cannot fail");
    String::from_utf8(w.into_inner()).expect("quick-xml writes the UTF-8 it is given")
}

/// Writes `alert` as a CAP 1.2 document, elements in schema order. Run
/// [`validate`](super::validate) first on alerts built in code; `write` does not check.
pub fn write(alert: &Alert) -> String {
    document(|w| {
        let root = w.create_element("alert").with_attribute(("xmlns", CAP_NS));
        root.write_inner_content(|w| write_alert(w, alert))?;
        Ok(())
    })
}

fn write_alert(w: &mut Xml, a: &Alert) -> io::Result<()> {
    let time = |r: &Reference| format_time(&r.sent);
    let refs: Vec<String> = a
        .references
        .iter()
        .map(|r| format!("{},{},{}", r.sender, r.identifier, time(r)))
        .collect();
    let some = |s: String| Some(s).filter(|s| !s.is_empty());
    leaf(w, "identifier", &a.identifier)?;
    leaf(w, "sender", &a.sender)?;
    leaf(w, "sent", &format_time(&a.sent))?;
    leaf(w, "status", a.status.as_cap())?;
    leaf(w, "msgType", a.msg_type.as_cap())?;
    leaves(w, "source", a.source.as_deref())?;
    leaf(w, "scope", a.scope.as_cap())?;
    leaves(w, "restriction", a.restriction.as_deref())?;
    leaves(w, "addresses", some(join_list(&a.addresses)).as_deref())?;
    leaves(w, "code", a.code.iter().map(String::as_str))?;
    leaves(w, "note", a.note.as_deref())?;
    leaves(w, "references", some(refs.join(" ")).as_deref())?;
    leaves(w, "incidents", some(join_list(&a.incidents)).as_deref())?;
    for info in &a.infos {
        w.create_element("info")
            .write_inner_content(|w| write_info(w, info))?;
    }
    Ok(())
}

fn write_info(w: &mut Xml, i: &Info) -> io::Result<()> {
    let time = |t: &Option<DateTime<FixedOffset>>| t.as_ref().map(format_time);
    leaf(w, "language", &i.language)?;
    leaves(w, "category", i.category.iter().map(|c| c.as_cap()))?;
    leaf(w, "event", &i.event)?;
    leaves(
        w,
        "responseType",
        i.response_type.iter().map(|r| r.as_cap()),
    )?;
    leaf(w, "urgency", i.urgency.as_cap())?;
    leaf(w, "severity", i.severity.as_cap())?;
    leaf(w, "certainty", i.certainty.as_cap())?;
    leaves(w, "audience", i.audience.as_deref())?;
    named(w, "eventCode", &i.event_code)?;
    leaves(w, "effective", time(&i.effective).as_deref())?;
    leaves(w, "onset", time(&i.onset).as_deref())?;
    leaves(w, "expires", time(&i.expires).as_deref())?;
    leaves(w, "senderName", i.sender_name.as_deref())?;
    leaves(w, "headline", i.headline.as_deref())?;
    leaves(w, "description", i.description.as_deref())?;
    leaves(w, "instruction", i.instruction.as_deref())?;
    leaves(w, "web", i.web.as_deref())?;
    leaves(w, "contact", i.contact.as_deref())?;
    named(w, "parameter", &i.parameters)?;
    for area in &i.areas {
        w.create_element("area")
            .write_inner_content(|w| write_area(w, area))?;
    }
    Ok(())
}

fn write_area(w: &mut Xml, a: &Area) -> io::Result<()> {
    // f64's Display never uses exponents, so the output is a valid xs:decimal.
    let feet = |v: Option<f64>| v.map(|v| v.to_string());
    leaf(w, "areaDesc", &a.area_desc)?;
    leaves(w, "polygon", a.polygons.iter().map(String::as_str))?;
    leaves(w, "circle", a.circles.iter().map(String::as_str))?;
    named(w, "geocode", &a.geocodes)?;
    leaves(w, "altitude", feet(a.altitude).as_deref())?;
    leaves(w, "ceiling", feet(a.ceiling).as_deref())
}

// ---------------------------------------------------------------- atom

/// Feed-level data for [`atom`]. `alert_url` gives the URL where an alert's
/// CAP XML is served; it is used as the entry id and its alternate link.
pub struct FeedMeta<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub author: &'a str,
    pub self_url: &'a str,
    pub updated: DateTime<FixedOffset>,
    pub alert_url: &'a dyn Fn(&Alert) -> String,
}

/// Writes an Atom 1.0 (RFC 4287) feed with one entry per alert.
pub fn atom(feed: &FeedMeta, alerts: &[Alert]) -> String {
    document(|w| {
        let root = w.create_element("feed").with_attribute(("xmlns", ATOM_NS));
        root.write_inner_content(|w| write_feed(w, feed, alerts))?;
        Ok(())
    })
}

fn atom_time(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn author(w: &mut Xml, name: &str) -> io::Result<()> {
    w.create_element("author")
        .write_inner_content(|w| leaf(w, "name", name))?;
    Ok(())
}

fn write_feed(w: &mut Xml, feed: &FeedMeta, alerts: &[Alert]) -> io::Result<()> {
    leaf(w, "id", feed.id)?;
    leaf(w, "title", feed.title)?;
    leaf(w, "updated", &atom_time(&feed.updated))?;
    author(w, feed.author)?;
    let self_link = [
        ("rel", "self"),
        ("type", "application/atom+xml"),
        ("href", feed.self_url),
    ];
    empty(w, "link", &self_link)?;
    for alert in alerts {
        let url = (feed.alert_url)(alert);
        let lang = alert
            .infos
            .first()
            .map(|i| ("xml:lang", xml_safe(&i.language)));
        let entry = w.create_element("entry");
        let entry = entry.with_attributes(lang.iter().map(|(k, v)| (*k, v.as_str())));
        entry.write_inner_content(|w| write_entry(w, alert, &url))?;
    }
    Ok(())
}

fn write_entry(w: &mut Xml, a: &Alert, url: &str) -> io::Result<()> {
    let info = a.infos.first();
    let issuer = info
        .and_then(|i| i.sender_name.as_deref())
        .unwrap_or(&a.sender);
    let summary = info.map(|i| {
        let text = i.description.as_ref().or(i.instruction.as_ref());
        text.or(i.headline.as_ref()).unwrap_or(&i.event)
    });
    leaf(w, "id", url)?;
    leaf(w, "title", &a.title())?;
    leaf(w, "updated", &atom_time(&a.sent))?;
    author(w, issuer)?;
    leaves(
        w,
        "summary",
        summary.or(a.note.as_ref()).map(String::as_str),
    )?;
    let link = [
        ("rel", "alternate"),
        ("type", "application/cap+xml"),
        ("href", url),
    ];
    empty(w, "link", &link)?;
    let mut seen: Vec<Category> = Vec::new();
    for c in a.infos.iter().flat_map(|i| &i.category) {
        if !seen.contains(c) {
            seen.push(*c);
            empty(w, "category", &[("term", c.as_cap())])?;
        }
    }
    Ok(())
}
