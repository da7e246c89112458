//! `/v1/shelters…` and `/v1/municipalities/{code}/shelter-status`: the
//! registry, the nearest-shelter query, and officials' updates.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{ApiJson, CsvBody};
use super::problem::{ApiError, FieldError, Problem};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::{Hazard, LatLon, LiveUpdate, Shelter, ShelterStatus};
use crate::geoindex::ShelterFilter;
use crate::sample::NANAO_CREDIT;
use crate::store::Actor;
use crate::store::{AuditEvent, ImportOutcome, Official, SnapshotOutcome};
use crate::usecase;

/// The most shelters one query returns.
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 20;
/// Bounds on what an office may post, to keep one typo from breaking a board.
const MAX_OCCUPANCY: i64 = 1_000_000;
const MAX_NEEDS_NOTE_CHARS: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_shelters))
        .routes(routes!(shelters_geojson))
        .routes(routes!(get_shelter, update_shelter))
        .routes(routes!(shelter_history))
        .routes(routes!(import_shelters))
        .routes(routes!(put_shelter_status))
}

/// Features per chunk of a streamed GeoJSON answer.
const GEOJSON_CHUNK: usize = 64;

/// One shelter as an RFC 7946 Feature (its location is the geometry).
fn feature(s: &Shelter) -> serde_json::Value {
    let geometry = s
        .site
        .location
        .map(|l| json!({"type": "Point", "coordinates": [l.lon, l.lat]}));
    let mut properties = serde_json::to_value(s).unwrap_or_default();
    if let Some(p) = properties.as_object_mut() {
        p.remove("location");
    }
    json!({"type": "Feature", "id": s.site.id, "geometry": geometry, "properties": properties})
}

/// Query parameters, taken as text so each bad one gets its own message.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShelterQuery {
    /// `LAT,LON` (WGS84 degrees): order by distance from here, nearest first.
    near: Option<String>,
    /// How many to return (1–1000, default 20).
    limit: Option<String>,
    /// Only sites designated for this hazard: flood, landslide, storm_surge,
    /// earthquake, tsunami, fire, inland_flood, volcano.
    hazard: Option<String>,
    /// Only these statuses, comma-separated: closed, open, full, unsafe.
    status: Option<String>,
    /// `true`: only open shelters with room left (unknown capacity counts as room).
    has_room: Option<String>,
    /// Only this municipality (JIS X 0402 code).
    municipality: Option<String>,
}

struct ValidQuery {
    near: Option<LatLon>,
    limit: usize,
    filter: ShelterFilter,
}

impl ShelterQuery {
    fn validate(&self) -> Result<ValidQuery, ApiError> {
        let mut errors = Vec::new();
        let near = self
            .near
            .as_deref()
            .and_then(|raw| match parse_lat_lon(raw) {
                Ok(p) => Some(p),
                Err(message) => {
                    errors.push(FieldError::new("near", message));
                    None
                }
            });
        let limit = parse_limit(self.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
        let mut filter = ShelterFilter::default();
        if let Some(raw) = self.hazard.as_deref() {
            match Hazard::parse(raw) {
                Some(h) => filter.hazard = Some(h),
                None => errors.push(FieldError::new(
                    "hazard",
                    format!(
                        "unknown hazard {raw:?}; one of {}",
                        names(Hazard::ALL.map(Hazard::name))
                    ),
                )),
            }
        }
        if let Some(raw) = self.status.as_deref() {
            for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match ShelterStatus::parse(part) {
                    Some(s) => filter.statuses.push(s),
                    None => errors.push(FieldError::new(
                        "status",
                        format!(
                            "unknown status {part:?}; one or more of {}",
                            names(ShelterStatus::ALL.map(ShelterStatus::name))
                        ),
                    )),
                }
            }
        }
        match self.has_room.as_deref() {
            None | Some("false") => {}
            Some("true") => filter.has_room = true,
            Some(_) => errors.push(FieldError::new("has_room", "must be true or false")),
        }
        if let Some(raw) = self.municipality.as_deref() {
            match MunicipalityCode::parse(raw) {
                Ok(m) => filter.municipality = Some(m),
                Err(e) => errors.push(FieldError::new("municipality", e.to_string())),
            }
        }
        if errors.is_empty() {
            Ok(ValidQuery {
                near,
                limit,
                filter,
            })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

fn names<const N: usize>(all: [&str; N]) -> String {
    all.join(", ")
}

/// `limit=`: `default` when absent, else a whole number from 1 to `max`.
pub(super) fn parse_limit(
    raw: Option<&str>,
    default: usize,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> usize {
    match raw.map(str::parse::<usize>) {
        None => default,
        Some(Ok(n)) if (1..=max).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                format!("must be a whole number from 1 to {max}"),
            ));
            default
        }
    }
}

pub(super) fn parse_lat_lon(raw: &str) -> Result<LatLon, String> {
    let shape = || format!("must be LAT,LON in degrees (e.g. 37.0432,136.9674), got {raw:?}");
    let (lat, lon) = raw.split_once(',').ok_or_else(shape)?;
    let lat: f64 = lat.trim().parse().map_err(|_| shape())?;
    let lon: f64 = lon.trim().parse().map_err(|_| shape())?;
    LatLon::new(lat, lon).map_err(str::to_owned)
}

/// A shelter in a list, with its distance when the query gave `near`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShelterHit {
    #[serde(flatten)]
    pub shelter: Shelter,
    /// Great-circle distance from `near`, in metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShelterList {
    pub shelters: Vec<ShelterHit>,
}

/// Find shelters: nearest first with `near`, else by id.
#[utoipa::path(
    get,
    path = "/v1/shelters",
    tag = "shelters",
    params(ShelterQuery),
    responses(
        (status = 200, description = "Matching shelters", body = ShelterList),
        (status = 400, description = "A parameter is wrong", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list_shelters(
    State(state): State<AppState>,
    query: Result<Query<ShelterQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ShelterList>, ApiError> {
    let q = query?.0.validate()?;
    let shelters = match q.near {
        Some(at) => state
            .index
            .nearest(at, q.limit, &q.filter)
            .into_iter()
            .map(|(s, d)| ShelterHit {
                shelter: (*s).clone(),
                distance_m: Some(d.round()),
            })
            .collect(),
        None => state
            .index
            .list(&q.filter)
            .into_iter()
            .take(q.limit)
            .map(|s| ShelterHit {
                shelter: (*s).clone(),
                distance_m: None,
            })
            .collect(),
    };
    Ok(Json(ShelterList { shelters }))
}

/// All shelters matching the filters as an RFC 7946 FeatureCollection, live
/// state in each feature's properties (sites without coordinates have a null geometry).
#[utoipa::path(
    get,
    path = "/v1/shelters.geojson",
    tag = "shelters",
    params(ShelterQuery),
    responses(
        (status = 200, description = "GeoJSON FeatureCollection", content_type = "application/geo+json", body = serde_json::Value),
        (status = 400, description = "A parameter is wrong", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn shelters_geojson(
    State(state): State<AppState>,
    query: Result<Query<ShelterQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query?.0.validate()?;
    // Streamed a few hundred features at a time: the shelters are shared
    // from the index (no copy), so a request holds one chunk of text at
    // once, not the whole collection (68 MB for 100,000 sites).
    let shelters = state.index.list(&q.filter);
    let head = format!(
        // A foreign member (RFC 7946 §6.1): the sample data's licence asks for credit.
        r#"{{"type":"FeatureCollection","attribution":{},"features":["#,
        json!(NANAO_CREDIT)
    );
    let chunks = (0..shelters.len().div_ceil(GEOJSON_CHUNK)).map(move |c| {
        let mut text = String::new();
        for (i, s) in shelters
            .iter()
            .enumerate()
            .skip(c * GEOJSON_CHUNK)
            .take(GEOJSON_CHUNK)
        {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&feature(s).to_string());
        }
        Ok::<_, std::convert::Infallible>(text)
    });
    let parts = std::iter::once(Ok(head))
        .chain(chunks)
        .chain(std::iter::once(Ok("]}".to_owned())));
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        axum::body::Body::from_stream(futures_util::stream::iter(parts)),
    ))
}

/// One shelter with its live state.
#[utoipa::path(
    get,
    path = "/v1/shelters/{id}",
    tag = "shelters",
    params(("id" = String, Path, description = "Shelter id, e.g. CC0000000518")),
    responses(
        (status = 200, body = Shelter),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_shelter(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let shelter = state
        .index
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no shelter with id {id}")))?;
    Ok(with_etag((*shelter).clone()))
}

/// A shelter with its version as the ETag, for `If-Match` on the next edit.
fn with_etag(shelter: Shelter) -> impl IntoResponse {
    let etag = format!("\"{}\"", usecase::shelters::version(&shelter));
    ([(header::ETAG, etag)], Json(shelter))
}

/// The version an `If-Match` header names: none (or `*`) edits whatever is
/// stored; anything else must be an ETag this service gave (`hint` says
/// where to read it).
pub(super) fn if_match(headers: &HeaderMap, hint: &str) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| ApiError::field("If-Match", hint))
}

/// An office changes a shelter's live state, or reconfirms it as it is
/// (`{"confirm": true}`). Occupancy at or above capacity makes an open
/// shelter `full` (and back) unless `status` is given too.
#[utoipa::path(
    patch,
    path = "/v1/shelters/{id}",
    tag = "shelters",
    params(
        ("id" = String, Path, description = "Shelter id"),
        ("If-Match" = Option<String>, Header, description = "The shelter's ETag as read: the edit is refused with 409 if someone changed it since"),
    ),
    request_body = LiveUpdate,
    security(("official" = [])),
    responses(
        (status = 200, body = Shelter),
        (status = 409, description = "Changed by someone else since it was read; the problem's `current` holds it as stored", body = Problem, content_type = "application/problem+json"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The shelter is outside the token's municipalities", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(shelter = %id, official = official.id))]
pub async fn update_shelter(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    official: Official,
    ApiJson(update): ApiJson<LiveUpdate>,
) -> Result<impl IntoResponse, ApiError> {
    let expected = if_match(
        &headers,
        "the ETag of the shelter as you read it (GET /v1/shelters/{id}), e.g. \"1704790800000000\"",
    )?;
    let update = validate_update(update)?;
    let actor = Actor::Official(official);
    Ok(with_etag(
        usecase::shelters::update(&state, &actor, &id, &update, expected).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShelterHistory {
    pub events: Vec<AuditEvent>,
}

/// The audit trail of a shelter (newest first, at most 500): who changed
/// what, when, with the state before and after. For its municipality's offices.
#[utoipa::path(
    get,
    path = "/v1/shelters/{id}/history",
    tag = "shelters",
    params(("id" = String, Path, description = "Shelter id")),
    security(("official" = [])),
    responses(
        (status = 200, body = ShelterHistory),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn shelter_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    official: Official,
) -> Result<Json<ShelterHistory>, ApiError> {
    let events = usecase::shelters::history(&state, &official, &id, 500).await?;
    Ok(Json(ShelterHistory { events }))
}

fn validate_update(mut update: LiveUpdate) -> Result<LiveUpdate, ApiError> {
    let mut errors = Vec::new();
    if update.status.is_none()
        && update.occupancy.is_none()
        && update.needs.is_none()
        && update.needs_note.is_none()
        && !update.confirm
    {
        errors.push(FieldError::new(
            "body",
            "give at least one of status, occupancy, needs, needs_note, or confirm: true",
        ));
    }
    if let Some(n) = update.occupancy
        && !(0..=MAX_OCCUPANCY).contains(&n)
    {
        errors.push(FieldError::new(
            "occupancy",
            format!("must be from 0 to {MAX_OCCUPANCY}"),
        ));
    }
    if let Some(needs) = &mut update.needs {
        // The same need ticked twice is one need.
        let mut seen = std::collections::HashSet::new();
        needs.retain(|n| seen.insert(*n));
    }
    if let Some(note) = &mut update.needs_note {
        *note = note.trim().to_owned();
        if note.chars().count() > MAX_NEEDS_NOTE_CHARS {
            errors.push(FieldError::new(
                "needs_note",
                format!("at most {MAX_NEEDS_NOTE_CHARS} characters"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(update)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// An office uploads its shelter list (national standard layout or GSI
/// layout; UTF-8 or Shift_JIS). Upsert by id; rows outside the token's
/// municipalities and unreadable rows are reported, the others applied.
#[utoipa::path(
    post,
    path = "/v1/shelters/import",
    tag = "shelters",
    request_body(content = String, content_type = "text/csv", description = "The CSV file"),
    security(("official" = [])),
    responses(
        (status = 200, body = ImportOutcome),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No row is in the token's municipalities", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown encoding or layout; nothing imported", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(official = official.id))]
pub async fn import_shelters(
    State(state): State<AppState>,
    official: Official,
    CsvBody(body): CsvBody,
) -> Result<Json<ImportOutcome>, ApiError> {
    let actor = Actor::Official(official);
    let outcome = usecase::shelters::import_registry(&state, &actor, &body).await?;
    Ok(Json(outcome))
}

/// An office uploads its open-shelter snapshot: listed shelters open with
/// their headcount (人数), every other one of the municipality closed. All or
/// nothing: a snapshot with an unreadable row changes nothing (422). With
/// `?preview=true` nothing is changed either: the answer's `changes` say
/// what applying it would do, for the office to check first.
#[utoipa::path(
    put,
    path = "/v1/municipalities/{code}/shelter-status",
    tag = "shelters",
    params(
        ("code" = String, Path, description = "Municipality code (JIS X 0402, six digits whose last is the check digit), e.g. 172022", pattern = "^[0-9]{6}$"),
        SnapshotQuery,
    ),
    request_body(content = String, content_type = "text/csv", description = "The snapshot CSV"),
    security(("official" = [])),
    responses(
        (status = 200, body = SnapshotOutcome),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unreadable file or rows; nothing changed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(municipality = %code, official = official.id))]
pub async fn put_shelter_status(
    State(state): State<AppState>,
    Path(code): Path<String>,
    query: Result<Query<SnapshotQuery>, axum::extract::rejection::QueryRejection>,
    official: Official,
    CsvBody(body): CsvBody,
) -> Result<Json<SnapshotOutcome>, ApiError> {
    let municipality =
        MunicipalityCode::parse(&code).map_err(|e| ApiError::field("code", e.to_string()))?;
    let query = query?.0;
    let flag = |name: &str, value: Option<&str>| match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::field(name, "must be true or false")),
    };
    let close_all = flag("close_all", query.close_all.as_deref())?;
    let preview = flag("preview", query.preview.as_deref())?;
    let actor = Actor::Official(official);
    let outcome =
        usecase::shelters::apply_snapshot(&state, &actor, &municipality, &body, close_all, preview)
            .await?;
    Ok(Json(outcome))
}

/// Options of a snapshot upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SnapshotQuery {
    /// `true` to confirm a snapshot that lists no open shelter (it closes
    /// every shelter of the municipality); refused without it.
    close_all: Option<String>,
    /// `true` to see what it would change without changing anything.
    preview: Option<String>,
}
