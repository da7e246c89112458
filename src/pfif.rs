//! PFIF 1.4, the People Finder Interchange Format that Google Person Finder
//! and Sahana speak: the records anpi exports and imports, as XML.
//!
//! Only what anpi keeps is written: a person's name and their notes (one per
//! check-in). Phone numbers are never stored, so they are never exported;
//! nor is where someone checked in from, beyond the shelter they named.

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

pub const NAMESPACE: &str = "http://zesty.ca/pfif/1.4";
/// Earlier versions whose person and note fields 1.4 kept: read, never written.
const READ_NAMESPACES: [&str; 3] = [
    NAMESPACE,
    "http://zesty.ca/pfif/1.3",
    "http://zesty.ca/pfif/1.2",
];
/// Longest text anpi keeps of an imported field.
const MAX_TEXT_CHARS: usize = 2000;
/// A name as long as a check-in's may be: names are looked up exactly, and
/// a longer one is not a name.
const MAX_NAME_CHARS: usize = 100;

/// A record about a person sought or found.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonRecord {
    /// `domain/local-id`; the domain names the record's home repository.
    pub person_record_id: String,
    pub entry_date: Option<DateTime<Utc>>,
    /// After this the record is to be deleted (anpi: the incident's purge).
    pub expiry_date: Option<DateTime<Utc>>,
    pub author_name: Option<String>,
    pub source_name: Option<String>,
    pub source_date: Option<DateTime<Utc>>,
    pub full_name: String,
    pub notes: Vec<NoteRecord>,
}

/// A note about a person: what someone reported, and when.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteRecord {
    pub note_record_id: String,
    pub person_record_id: String,
    pub entry_date: Option<DateTime<Utc>>,
    pub author_name: String,
    pub source_date: DateTime<Utc>,
    pub author_made_contact: Option<bool>,
    pub status: Option<NoteStatus>,
    pub last_known_location: Option<String>,
    pub text: String,
}

/// PFIF's note statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteStatus {
    InformationSought,
    IsNoteAuthor,
    BelievedAlive,
    BelievedMissing,
    BelievedDead,
}

impl NoteStatus {
    fn parse(text: &str) -> Option<NoteStatus> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NoteStatus::InformationSought => "information_sought",
            NoteStatus::IsNoteAuthor => "is_note_author",
            NoteStatus::BelievedAlive => "believed_alive",
            NoteStatus::BelievedMissing => "believed_missing",
            NoteStatus::BelievedDead => "believed_dead",
        }
    }
}

/// What a file held: people (with their notes) and notes about people
/// given elsewhere (a note feed about people imported before).
#[derive(Debug, Default)]
pub struct Document {
    pub persons: Vec<PersonRecord>,
    pub notes: Vec<NoteRecord>,
}

/// PFIF's date form: UTC, whole seconds, `Z`.
fn date(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The document, PFIF 1.4 XML, each person with their notes inside.
pub fn write(persons: &[PersonRecord]) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let leaf = |w: &mut Writer<Vec<u8>>, name: &str, value: Option<&str>| {
        if let Some(value) = value {
            w.create_element(format!("pfif:{name}"))
                .write_text_content(BytesText::new(value))
                .expect("writing to memory");
        }
    };
    w.write_event(quick_xml::events::Event::Decl(BytesDecl::new(
        "1.0",
        Some("UTF-8"),
        None,
    )))
    .expect("writing to memory");
    w.create_element("pfif:pfif")
        .with_attribute(("xmlns:pfif", NAMESPACE))
        .write_inner_content(|w| {
            for p in persons {
                w.create_element("pfif:person").write_inner_content(|w| {
                    leaf(w, "person_record_id", Some(&p.person_record_id));
                    leaf(w, "entry_date", p.entry_date.map(date).as_deref());
                    leaf(w, "expiry_date", p.expiry_date.map(date).as_deref());
                    leaf(w, "author_name", p.author_name.as_deref());
                    leaf(w, "source_name", p.source_name.as_deref());
                    leaf(w, "source_date", p.source_date.map(date).as_deref());
                    leaf(w, "full_name", Some(&p.full_name));
                    for n in &p.notes {
                        w.create_element("pfif:note").write_inner_content(|w| {
                            leaf(w, "note_record_id", Some(&n.note_record_id));
                            leaf(w, "person_record_id", Some(&n.person_record_id));
                            leaf(w, "entry_date", n.entry_date.map(date).as_deref());
                            leaf(w, "author_name", Some(&n.author_name));
                            leaf(w, "source_date", Some(&date(n.source_date)));
                            let contact = n.author_made_contact.map(|b| b.to_string());
                            leaf(w, "author_made_contact", contact.as_deref());
                            leaf(w, "status", n.status.map(NoteStatus::as_str));
                            leaf(w, "last_known_location", n.last_known_location.as_deref());
                            leaf(w, "text", Some(&n.text));
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
        .expect("writing to memory");
    let mut xml = String::from_utf8(w.into_inner()).expect("written from strings");
    xml.push('\n');
    xml
}

/// Reads a PFIF 1.2–1.4 document. Every problem is reported at once, each
/// with the record it is in (`person[2].full_name`); fields of other
/// namespaces (extensions) are skipped.
pub fn read(xml: &str) -> Result<Document, Vec<FieldError>> {
    let tree = roxmltree::Document::parse(xml)
        .map_err(|e| vec![FieldError::new("body", format!("not well-formed XML: {e}"))])?;
    let root = tree.root_element();
    let is_pfif = |n: &roxmltree::Node, name: &str| {
        n.is_element()
            && n.tag_name().name() == name
            && n.tag_name()
                .namespace()
                .is_some_and(|ns| READ_NAMESPACES.contains(&ns))
    };
    if !is_pfif(&root, "pfif") {
        return Err(vec![FieldError::new(
            "body",
            format!("the root element is not <pfif> in the namespace {NAMESPACE}"),
        )]);
    }
    let mut errors = Vec::new();
    let mut document = Document::default();
    let (mut p_index, mut n_index) = (0, 0);
    for child in root.children().filter(|c| c.is_element()) {
        if is_pfif(&child, "person") {
            let at = format!("person[{p_index}]");
            p_index += 1;
            let fields = Fields::of(&child, &at, &mut errors);
            let person_record_id = fields.required("person_record_id", &mut errors);
            let mut notes = Vec::new();
            for (i, note) in child.children().filter(|c| is_pfif(c, "note")).enumerate() {
                let at = format!("{at}.note[{i}]");
                let fields = Fields::of(&note, &at, &mut errors);
                // A note inside a person is about that person.
                if let Some(n) = note_of(&fields, person_record_id.as_deref(), &mut errors) {
                    notes.push(n);
                }
            }
            let full_name = fields
                .required("full_name", &mut errors)
                .filter(|_| fields.within("full_name", MAX_NAME_CHARS, &mut errors));
            if let (Some(person_record_id), Some(full_name)) = (person_record_id, full_name) {
                document.persons.push(PersonRecord {
                    person_record_id,
                    entry_date: fields.date("entry_date", &mut errors),
                    expiry_date: fields.date("expiry_date", &mut errors),
                    author_name: fields.text("author_name"),
                    source_name: fields.text("source_name"),
                    source_date: fields.date("source_date", &mut errors),
                    full_name,
                    notes,
                });
            }
        } else if is_pfif(&child, "note") {
            let at = format!("note[{n_index}]");
            n_index += 1;
            let fields = Fields::of(&child, &at, &mut errors);
            if let Some(n) = note_of(&fields, None, &mut errors) {
                document.notes.push(n);
            }
        }
    }
    if errors.is_empty() {
        Ok(document)
    } else {
        Err(errors)
    }
}

fn note_of(
    fields: &Fields,
    person: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<NoteRecord> {
    let note_record_id = fields.required("note_record_id", errors);
    let person_record_id = match (fields.text("person_record_id"), person) {
        (Some(given), Some(outer)) if given != outer => {
            errors.push(fields.error(
                "person_record_id",
                format!("{given} inside the person {outer}"),
            ));
            None
        }
        (Some(id), _) => Some(id),
        (None, Some(outer)) => Some(outer.to_owned()),
        (None, None) => fields.required("person_record_id", errors),
    };
    let author_name = fields.required("author_name", errors);
    let source_date = fields.date("source_date", errors);
    if source_date.is_none() && fields.text("source_date").is_none() {
        errors.push(fields.error("source_date", "required"));
    }
    let status = fields.text("status").and_then(|s| match NoteStatus::parse(&s) {
        Some(status) => Some(status),
        None => {
            errors.push(fields.error(
                "status",
                format!("{s:?} is not one of information_sought, is_note_author, believed_alive, believed_missing, believed_dead"),
            ));
            None
        }
    });
    let author_made_contact = fields
        .text("author_made_contact")
        .and_then(|s| match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                errors.push(
                    fields.error("author_made_contact", format!("{s:?} is not true or false")),
                );
                None
            }
        });
    let text = fields.required("text", errors);
    Some(NoteRecord {
        note_record_id: note_record_id?,
        person_record_id: person_record_id?,
        entry_date: fields.date("entry_date", errors),
        author_name: author_name?,
        source_date: source_date?,
        author_made_contact,
        status,
        last_known_location: fields.text("last_known_location"),
        text: text?,
    })
}

/// The PFIF fields of one record, by name, trimmed.
struct Fields {
    at: String,
    values: Vec<(String, String)>,
}

impl Fields {
    fn of(node: &roxmltree::Node, at: &str, errors: &mut Vec<FieldError>) -> Fields {
        let mut values: Vec<(String, String)> = Vec::new();
        for field in node
            .children()
            .filter(|c| c.is_element() && c.tag_name().namespace() == node.tag_name().namespace())
        {
            let name = field.tag_name().name();
            if name == "note" {
                continue;
            }
            if values.iter().any(|(n, _)| n == name) {
                errors.push(FieldError::new(format!("{at}.{name}"), "given twice"));
                continue;
            }
            let text: String = field.text().unwrap_or_default().trim().to_owned();
            values.push((name.to_owned(), text));
        }
        Fields {
            at: at.to_owned(),
            values,
        }
    }

    fn error(&self, name: &str, reason: impl Into<String>) -> FieldError {
        FieldError::new(format!("{}.{name}", self.at), reason)
    }

    /// The field's text, if given and not empty, cut to `MAX_TEXT_CHARS`.
    fn text(&self, name: &str) -> Option<String> {
        let (_, v) = self.values.iter().find(|(n, _)| n == name)?;
        (!v.is_empty()).then(|| v.chars().take(MAX_TEXT_CHARS).collect())
    }

    /// Whether the field as given (before any cut) is at most `max` characters.
    fn within(&self, name: &str, max: usize, errors: &mut Vec<FieldError>) -> bool {
        let Some((_, v)) = self.values.iter().find(|(n, _)| n == name) else {
            return true;
        };
        let ok = v.chars().nth(max).is_none();
        if !ok {
            errors.push(self.error(name, format!("at most {max} characters")));
        }
        ok
    }

    fn required(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<String> {
        let value = self.text(name);
        if value.is_none() {
            errors.push(self.error(name, "required"));
        }
        value
    }

    fn date(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
        let text = self.text(name)?;
        match DateTime::parse_from_rfc3339(&text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(self.error(
                    name,
                    format!("{text:?} is not a UTC date such as 2024-01-01T07:10:00Z"),
                ));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PersonRecord {
        let at = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        PersonRecord {
            person_record_id: "anpi.example/person.1".into(),
            entry_date: Some(at),
            expiry_date: None,
            author_name: Some("山田 太郎".into()),
            source_name: Some("anpi".into()),
            source_date: Some(at),
            full_name: "山田 太郎 <&>".into(),
            notes: vec![NoteRecord {
                note_record_id: "anpi.example/note.1".into(),
                person_record_id: "anpi.example/person.1".into(),
                entry_date: Some(at),
                author_name: "山田 太郎".into(),
                source_date: at,
                author_made_contact: Some(true),
                status: Some(NoteStatus::IsNoteAuthor),
                last_known_location: Some("山王小学校".into()),
                text: "無事です & 元気".into(),
            }],
        }
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let xml = write(&[sample()]);
        let read = read(&xml).unwrap();
        assert_eq!(read.persons, vec![sample()]);
        assert!(read.notes.is_empty());
    }

    #[test]
    fn problems_name_the_record_and_field() {
        let xml = r#"<pfif:pfif xmlns:pfif="http://zesty.ca/pfif/1.4">
            <pfif:person><pfif:person_record_id>x/1</pfif:person_record_id></pfif:person>
            <pfif:note><pfif:note_record_id>x/n</pfif:note_record_id>
              <pfif:author_name>a</pfif:author_name><pfif:source_date>yesterday</pfif:source_date>
              <pfif:status>fine</pfif:status><pfif:text>t</pfif:text></pfif:note>
        </pfif:pfif>"#;
        let errors = read(xml).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "person[0].full_name",
                "note[0].person_record_id",
                "note[0].source_date",
                "note[0].status"
            ]
        );
    }

    #[test]
    fn other_documents_are_refused() {
        assert_eq!(read("<pfif/>").unwrap_err()[0].field, "body");
        assert_eq!(read("<pfif:pfif").unwrap_err()[0].field, "body");
    }
}
