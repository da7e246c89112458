//! People and notes of an incident as PFIF exchanges them: read out in
//! pages for export, written in from an import (`crate::pfif` is the format).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::outbox::outbox;
use super::{Store, StoreError, on_backend};
use crate::domain::person::{Status, name_key};
use crate::error::FieldError;
use crate::pfif::{Document, NoteRecord, NoteStatus};

/// A person as stored, with every note (check-in) about them, oldest first.
#[derive(Debug)]
pub struct StoredRecord {
    pub id: String,
    /// Set when the person came from another repository.
    pub pfif_record_id: Option<String>,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub notes: Vec<StoredNote>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct StoredNote {
    pub id: String,
    pub person_id: String,
    pub note_record_id: Option<String>,
    /// anpi statuses, comma-separated (empty for imported notes).
    pub statuses: String,
    pub shelter_id: Option<String>,
    pub message: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub pfif_status: Option<String>,
    pub author_name: Option<String>,
}

impl StoredNote {
    pub fn statuses(&self) -> Vec<Status> {
        super::checkins::parse_statuses(&self.statuses)
    }
}

/// What an import added and what it already had.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ImportCounts {
    pub persons_added: u64,
    pub persons_known: u64,
    pub notes_added: u64,
    pub notes_known: u64,
}

/// A note an import added: who it is about and who waits for them (its
/// live events are written with it).
#[derive(Debug)]
struct ImportedNote {
    pub person_token: String,
    pub name: String,
    /// Tokens of the look-ups by this name waiting for news.
    pub watchers: Vec<String>,
    pub note: NoteRecord,
}

impl ImportedNote {
    /// The live events of a note an import added.
    fn events(&self) -> Vec<crate::events::Addressed> {
        let event = crate::events::CheckinEvent {
            person_token: self.person_token.clone(),
            name: self.name.clone(),
            phone_last4: None,
            statuses: Vec::new(),
            shelter_id: None,
            shelter_name: None,
            message: Some(self.note.text.clone()),
            recorded_at: super::truncate(self.note.source_date),
            pfif_status: self.note.status.map(|s| s.as_str().to_owned()),
            author_name: Some(self.note.author_name.clone()),
        };
        crate::events::checked_in(event, &self.watchers)
    }
}

impl Store {
    /// The incident's people in the order they were first recorded,
    /// `limit` of them after the first `skip`, each with their notes.
    pub async fn pfif_page(
        &self,
        incident_id: &str,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, sqlx::Error> {
        on_backend!(self, |pool| {
            let people: Vec<(String, Option<String>, String, DateTime<Utc>)> = sqlx::query_as(
                "select id, pfif_record_id, name, created_at from person where incident_id = $1 \
                 order by created_at, id limit $2 offset $3",
            )
            .bind(incident_id)
            .bind(i64::from(limit))
            .bind(i64::from(skip))
            .fetch_all(pool)
            .await?;
            let (Some(first), Some(last)) = (people.first(), people.last()) else {
                return Ok(Vec::new());
            };
            // The page's notes in one query: the people of the page are a
            // range of the (created_at, id) order.
            let notes: Vec<StoredNote> = sqlx::query_as(
                "select c.id, c.person_id, c.note_record_id, c.statuses, c.shelter_id, c.message, \
                        c.recorded_at, c.pfif_status, c.author_name \
                 from checkin c join person p on p.id = c.person_id \
                 where p.incident_id = $1 \
                   and (p.created_at > $2 or (p.created_at = $2 and p.id >= $3)) \
                   and (p.created_at < $4 or (p.created_at = $4 and p.id <= $5)) \
                 order by c.recorded_at, c.id",
            )
            .bind(incident_id)
            .bind(first.3)
            .bind(&first.0)
            .bind(last.3)
            .bind(&last.0)
            .fetch_all(pool)
            .await?;
            let mut by_person: HashMap<String, Vec<StoredNote>> = HashMap::new();
            for note in notes {
                by_person
                    .entry(note.person_id.clone())
                    .or_default()
                    .push(note);
            }
            Ok(people
                .into_iter()
                .map(|(id, pfif_record_id, name, created_at)| StoredRecord {
                    notes: by_person.remove(&id).unwrap_or_default(),
                    id,
                    pfif_record_id,
                    name,
                    created_at,
                })
                .collect())
        })
    }

    /// Stores a PFIF document's people and notes in one transaction. Records
    /// seen before (by their PFIF ids) are left as they are; a note about a
    /// person neither in the file nor stored refuses the whole file.
    pub async fn pfif_import(
        &self,
        incident_id: &str,
        document: &Document,
    ) -> Result<Result<ImportCounts, Vec<FieldError>>, StoreError> {
        let now = super::now();
        let mut counts = ImportCounts::default();
        let mut added_notes = Vec::new();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            // By PFIF id: (person id, token, name, watchers).
            let mut person_ids: HashMap<&str, (String, String, String, Vec<String>)> =
                HashMap::new();
            for person in &document.persons {
                let added = sqlx::query(
                    "insert into person (id, incident_id, phone_hash, phone_last4, name, name_key, token, created_at, pfif_record_id) \
                     values ($1, $2, null, null, $3, $4, $5, $6, $7) \
                     on conflict (incident_id, pfif_record_id) do nothing",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(incident_id)
                .bind(crate::domain::person::display_name(&person.full_name))
                .bind(name_key(&person.full_name))
                .bind(super::checkins::new_token())
                .bind(person.entry_date.map(super::truncate).unwrap_or(now))
                .bind(&person.person_record_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if added == 1 {
                    counts.persons_added += 1;
                } else {
                    counts.persons_known += 1;
                }
            }
            let notes: Vec<&NoteRecord> = document
                .persons
                .iter()
                .flat_map(|p| &p.notes)
                .chain(&document.notes)
                .collect();
            let mut unknown = Vec::new();
            for note in &notes {
                let pfif_id = note.person_record_id.as_str();
                if !person_ids.contains_key(pfif_id) {
                    let found: Option<(String, String, String, String)> = sqlx::query_as(
                        "select id, token, name, name_key from person where incident_id = $1 and pfif_record_id = $2",
                    )
                    .bind(incident_id)
                    .bind(pfif_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match found {
                        Some((id, token, name, name_key)) => {
                            let watchers: Vec<String> = sqlx::query_scalar(
                                "select token from watch where incident_id = $1 and kind = 'name' and key = $2",
                            )
                            .bind(incident_id)
                            .bind(&name_key)
                            .fetch_all(&mut *tx)
                            .await?;
                            person_ids.insert(pfif_id, (id, token, name, watchers));
                        }
                        None => {
                            unknown.push(FieldError::new(
                                "person_record_id",
                                format!(
                                    "note {} is about {pfif_id}, who is neither in the file nor imported before",
                                    note.note_record_id
                                ),
                            ));
                            continue;
                        }
                    }
                }
                let added = sqlx::query(
                    "insert into checkin (id, incident_id, person_id, statuses, shelter_id, message, lat, lon, recorded_at, \
                                          note_record_id, pfif_status, author_name) \
                     values ($1, $2, $3, '', null, $4, null, null, $5, $6, $7, $8) \
                     on conflict (incident_id, note_record_id) do nothing",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(incident_id)
                .bind(&person_ids[pfif_id].0)
                .bind(&note.text)
                .bind(super::truncate(note.source_date))
                .bind(&note.note_record_id)
                .bind(note.status.map(NoteStatus::as_str))
                .bind(&note.author_name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if added == 1 {
                    counts.notes_added += 1;
                    let (_, token, name, watchers) = &person_ids[pfif_id];
                    added_notes.push(ImportedNote {
                        person_token: token.clone(),
                        name: name.clone(),
                        watchers: watchers.clone(),
                        note: (*note).clone(),
                    });
                } else {
                    counts.notes_known += 1;
                }
            }
            if !unknown.is_empty() {
                // Dropped, the transaction stores nothing.
                return Ok(Err(unknown));
            }
            // Families waiting on a person (their channel, or a look-up by
            // name) hear of a new note like of a check-in.
            let events: Vec<_> = added_notes.iter().flat_map(ImportedNote::events).collect();
            outbox!(&mut *tx, &events)?;
            tx.commit().await?;
            Ok(Ok(counts))
        })
    }
}
