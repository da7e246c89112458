//! `/v1/incidents/{id}/pfif`: an incident's people and notes as PFIF 1.4,
//! out to Google Person Finder and its kin, and in from them, so people
//! registered there can be looked up here too. Offices only: it is personal
//! data of everyone in the incident.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::XmlBody;
use super::problem::{ApiError, FieldError, Problem};
use crate::domain::person::Status;
use crate::pfif::{self, NoteRecord, NoteStatus, PersonRecord};
use crate::store::{ImportCounts, Incident, Official, StoredNote, StoredRecord};
use crate::usecase;

const DEFAULT_PAGE: u32 = 1000;
const MAX_PAGE: u32 = 5000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_pfif, import_pfif))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// People to leave out from the start (the order is the order they were
    /// first recorded).
    skip: Option<String>,
    /// People per page: 1 to 5000, 1000 by default. A full page is answered
    /// with a `Link: <…>; rel="next"` header.
    max_results: Option<String>,
}

/// The incident, if this office acts on every municipality it covers and
/// its personal data is still held.
async fn incident_for(
    state: &AppState,
    official: &Official,
    id: &str,
) -> Result<Incident, ApiError> {
    Ok(usecase::incidents::for_office(state, official, id).await?)
}

/// Exports the incident's people, each with their check-ins as notes, as
/// PFIF 1.4. anpi keeps no phone numbers and exports no locations beyond a
/// named shelter.
#[utoipa::path(
    get,
    path = "/v1/incidents/{id}/pfif",
    tag = "incidents",
    params(("id" = String, Path, description = "Incident id"), PageQuery),
    security(("official" = [])),
    responses(
        (status = 200, description = "PFIF 1.4", content_type = "application/xml", body = String),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "It covers a municipality outside the token's", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The incident's personal data was deleted", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(incident = %id, official = official.id))]
pub async fn export_pfif(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
    official: Official,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let mut number = |field: &str, value: Option<&str>, default: u32, max: u32| match value {
        None => default,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if n <= max => n,
            _ => {
                errors.push(FieldError::new(
                    field,
                    format!("{text:?} is not a whole number from 0 to {max}"),
                ));
                default
            }
        },
    };
    let skip = number("skip", query.skip.as_deref(), 0, u32::MAX);
    let limit = number(
        "max_results",
        query.max_results.as_deref(),
        DEFAULT_PAGE,
        MAX_PAGE,
    )
    .max(1);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let incident = incident_for(&state, &official, &id).await?;
    let page = state.store.pfif_page(&id, skip, limit).await?;
    let full = page.len() as u32 == limit;
    let records: Vec<PersonRecord> = page
        .into_iter()
        .map(|p| person_record(&state, &incident, p))
        .collect();
    let mut response = (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        pfif::write(&records),
    )
        .into_response();
    if full {
        let next = format!(
            "</v1/incidents/{id}/pfif?skip={}&max_results={limit}>; rel=\"next\"",
            skip.saturating_add(limit)
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// Imports a PFIF 1.2–1.4 file (a Person Finder export, say): its people
/// can then be looked up by name, with its notes as their history. Records
/// already imported (same PFIF ids) are left alone, so a file can be sent
/// again; a file with any bad record stores nothing.
#[utoipa::path(
    post,
    path = "/v1/incidents/{id}/pfif",
    tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    request_body(content = String, content_type = "application/xml", description = "PFIF XML"),
    security(("official" = [])),
    responses(
        (status = 200, body = ImportCounts),
        (status = 400, description = "Which record and field, and why", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "It covers a municipality outside the token's", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The incident is closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(incident = %id, official = official.id))]
pub async fn import_pfif(
    State(state): State<AppState>,
    Path(id): Path<String>,
    official: Official,
    XmlBody(body): XmlBody,
) -> Result<Json<ImportCounts>, ApiError> {
    let counts = usecase::pfif::import(&state, &official, &id, &body).await?;
    Ok(Json(counts))
}

/// A stored person as a PFIF record: a person recorded here gets an id in
/// this repository's domain; one imported keeps the id it came with.
fn person_record(state: &AppState, incident: &Incident, p: StoredRecord) -> PersonRecord {
    let domain = &state.pfif_domain;
    let person_record_id = p
        .pfif_record_id
        .clone()
        .unwrap_or_else(|| format!("{domain}/person.{}", p.id));
    let native = p.pfif_record_id.is_none();
    let notes = p
        .notes
        .iter()
        .map(|n| note_record(state, &person_record_id, &p.name, n))
        .collect();
    PersonRecord {
        entry_date: Some(p.created_at),
        // PFIF's expiry is anpi's purge.
        expiry_date: incident.purge_at,
        author_name: None,
        source_name: native.then(|| domain.clone()),
        source_date: native.then_some(p.created_at),
        full_name: p.name,
        notes,
        person_record_id,
    }
}

fn note_record(state: &AppState, person_record_id: &str, name: &str, n: &StoredNote) -> NoteRecord {
    let note_record_id = n
        .note_record_id
        .clone()
        .unwrap_or_else(|| format!("{}/note.{}", state.pfif_domain, n.id));
    if n.note_record_id.is_some() {
        // Imported: as it came.
        return NoteRecord {
            note_record_id,
            person_record_id: person_record_id.to_owned(),
            entry_date: Some(n.recorded_at),
            author_name: n.author_name.clone().unwrap_or_default(),
            source_date: n.recorded_at,
            author_made_contact: None,
            status: n
                .pfif_status
                .as_deref()
                .and_then(|s| serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()),
            last_known_location: None,
            text: n.message.clone().unwrap_or_default(),
        };
    }
    // A check-in: by the person themself, or by whoever checked their
    // household in (every anpi status means alive).
    let shelter = n.shelter_id.as_deref().map(|id| match state.index.get(id) {
        Some(s) => format!("{} ({id})", s.site.name),
        None => id.to_owned(),
    });
    let statuses: Vec<&str> = n.statuses().into_iter().map(Status::as_str).collect();
    let mut text = format!("anpi check-in: {}.", statuses.join(", "));
    if let Some(shelter) = &shelter {
        text.push_str(&format!(" Shelter: {shelter}."));
    }
    if let Some(message) = &n.message {
        text.push_str(&format!(" Message: {message}"));
    }
    NoteRecord {
        note_record_id,
        person_record_id: person_record_id.to_owned(),
        entry_date: Some(n.recorded_at),
        author_name: n.author_name.clone().unwrap_or_else(|| name.to_owned()),
        source_date: n.recorded_at,
        author_made_contact: None,
        status: Some(match n.author_name {
            None => NoteStatus::IsNoteAuthor,
            Some(_) => NoteStatus::BelievedAlive,
        }),
        last_known_location: shelter,
        text,
    }
}
