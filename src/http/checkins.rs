//! `POST /v1/incidents/{id}/checkins`: "I'm safe", with no account, from a
//! phone on a bad network — so retries under one `Idempotency-Key` are
//! answered with the first answer and stored once.

use axum::Json;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::ApiJson;
use super::problem::{ApiError, FieldError, Problem};
use crate::domain::person::{self, Phone, Status};
use crate::domain::shelter::LatLon;
use crate::stats::{self, IncidentStats};
use crate::store::{CheckinRequest, LookUp, PersonReport, PersonView, Receipt};
use crate::usecase;

const MAX_NAME_CHARS: usize = 100;
const MAX_MESSAGE_CHARS: usize = 100;
const MAX_HOUSEHOLD: usize = 20;
const MAX_KEY_LEN: usize = 128;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check_in))
        .routes(routes!(look_up))
        .routes(routes!(incident_stats))
}

/// A check-in as sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckinBody {
    /// As typed: `090-1234-5678`, `０９０１２３４５６７８`, `+81 90 …`. Stored only as a
    /// keyed hash and its last 4 digits.
    phone: String,
    name: String,
    /// Several at once: safe, injured, need_help, at_home, at_shelter, evacuating, not_in_area.
    #[schema(min_items = 1)]
    statuses: Vec<String>,
    /// Required with `at_shelter`.
    shelter_id: Option<String>,
    /// Up to 100 characters.
    message: Option<String>,
    /// People checked in with this one, under the same phone.
    #[serde(default)]
    household: Vec<MemberBody>,
    lat: Option<f64>,
    lon: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberBody {
    name: String,
    #[schema(min_items = 1)]
    statuses: Vec<String>,
}

/// Check in for an active incident. Answered `201` only once stored (with
/// others, in one transaction); `503` with `Retry-After` when too many wait.
#[utoipa::path(
    post,
    path = "/v1/incidents/{id}/checkins",
    tag = "incidents",
    params(
        ("id" = String, Path, description = "Incident id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Any 1–128 visible characters, the same for every retry of one check-in"),
    ),
    request_body = CheckinBody,
    responses(
        (status = 201, body = Receipt),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The incident is closed, or the key was used for another check-in", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The database refused this check-in's content; nothing was recorded", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many check-ins from this address or under this phone; retry after the given seconds", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many check-ins waiting; retry after the given seconds", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn check_in(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CheckinBody>,
) -> Result<(StatusCode, Json<Receipt>), ApiError> {
    if let Some(wait) = state.checkin_limits.address(peer.ip()) {
        return Err(too_many("from this network address", wait));
    }
    let key = idempotency_key(&headers)?;
    // Hash the request as understood, so a retry that differs only in key
    // order or spacing is still the same request.
    let request_hash = serde_json::to_value(&body)
        .map(|v| hex::encode(Sha256::digest(v.to_string().as_bytes())))
        .map_err(anyhow::Error::from)?;
    let mut request = validate(&state, body)?;
    if let Some(wait) = state.checkin_limits.phone(&request.people[0].phone_hash) {
        return Err(too_many("under this phone number", wait));
    }
    // Whether the incident is open is checked in the batch's transaction:
    // no read per request, and no check-in slips in after a close.
    request.incident_id = id.clone();
    request.idempotency = key.map(|k| (k, request_hash));
    let receipt = usecase::checkins::check_in(&state, request).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

fn too_many(whence: &str, wait: std::time::Duration) -> ApiError {
    ApiError::TooMany(
        format!("too many check-ins {whence}; nothing was recorded, try again later"),
        wait.as_secs().max(1),
    )
}

pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k)
            if !k.is_empty()
                && k.len() <= MAX_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(k.to_owned()))
        }
        _ => Err(ApiError::field(
            "Idempotency-Key",
            format!("1 to {MAX_KEY_LEN} visible ASCII characters"),
        )),
    }
}

fn statuses(field: &str, given: &[String], errors: &mut Vec<FieldError>) -> Vec<Status> {
    let mut parsed = Vec::new();
    for (i, s) in given.iter().enumerate() {
        match serde_json::from_value::<Status>(serde_json::Value::String(s.clone())) {
            Ok(status) => parsed.push(status),
            Err(_) => errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!("{s:?} is not one of safe, injured, need_help, at_home, at_shelter, evacuating, not_in_area"),
            )),
        }
    }
    match person::check_statuses(&parsed) {
        Ok(checked) => checked,
        Err(e) => {
            if parsed.len() == given.len() {
                errors.push(FieldError::new(field, e.to_string()));
            }
            // Refused already; kept so other fields are judged by what was meant.
            parsed
        }
    }
}

fn name(field: &str, given: &str, errors: &mut Vec<FieldError>) -> (String, String) {
    let shown = person::display_name(given);
    if shown.is_empty() || shown.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            field,
            format!("1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    (shown, person::name_key(given))
}

/// Every field checked; each problem named.
fn validate(state: &AppState, body: CheckinBody) -> Result<CheckinRequest, ApiError> {
    let mut errors = Vec::new();
    let phone = Phone::parse(&body.phone)
        .map_err(|e| errors.push(FieldError::new("phone", e.to_string())))
        .ok();
    let mut people = Vec::new();
    let (shown, key) = name("name", &body.name, &mut errors);
    let own = statuses("statuses", &body.statuses, &mut errors);
    people.push((shown, key, own));
    if body.household.len() > MAX_HOUSEHOLD {
        errors.push(FieldError::new(
            "household",
            format!("at most {MAX_HOUSEHOLD} people"),
        ));
    }
    for (i, member) in body.household.iter().enumerate() {
        let (shown, key) = name(&format!("household[{i}].name"), &member.name, &mut errors);
        if people.iter().any(|(_, k, _)| k == &key) {
            errors.push(FieldError::new(
                format!("household[{i}].name"),
                "this name is already in the check-in",
            ));
        }
        let s = statuses(
            &format!("household[{i}].statuses"),
            &member.statuses,
            &mut errors,
        );
        people.push((shown, key, s));
    }
    let anyone_at_shelter = people
        .iter()
        .any(|(_, _, s)| s.contains(&Status::AtShelter));
    let shelter_id = body
        .shelter_id
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    match (&shelter_id, anyone_at_shelter) {
        (None, true) => errors.push(FieldError::new(
            "shelter_id",
            "at_shelter needs the shelter's id (from /v1/shelters)",
        )),
        (Some(_), false) => errors.push(FieldError::new(
            "shelter_id",
            "a shelter is given only with at_shelter",
        )),
        (Some(id), true) if state.index.get(id).is_none() => errors.push(FieldError::new(
            "shelter_id",
            format!("no shelter with id {id}"),
        )),
        _ => {}
    }
    let message = body
        .message
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty());
    if message
        .as_ref()
        .is_some_and(|m| m.chars().count() > MAX_MESSAGE_CHARS)
    {
        errors.push(FieldError::new(
            "message",
            format!("at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    let location = match (body.lat, body.lon) {
        (None, None) => None,
        (Some(lat), Some(lon)) => LatLon::new(lat, lon)
            .map_err(|e| errors.push(FieldError::new("lat", e)))
            .ok(),
        _ => {
            errors.push(FieldError::new(
                "lat",
                "give lat and lon together, or neither",
            ));
            None
        }
    };
    let Some(phone) = phone.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let phone_hash = state.secret.hash(&format!("phone:{phone}"));
    Ok(CheckinRequest {
        incident_id: String::new(),
        idempotency: None,
        people: people
            .into_iter()
            .map(|(name, name_key, statuses)| PersonReport {
                phone_hash: phone_hash.clone(),
                phone_last4: phone.last4().to_owned(),
                name,
                name_key,
                statuses,
            })
            .collect(),
        shelter_name: shelter_id
            .as_deref()
            .and_then(|id| state.index.get(id))
            .map(|s| s.site.name.clone()),
        shelter_id,
        message,
        location,
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookUpQuery {
    /// The phone number, however written.
    phone: Option<String>,
    /// The full name, however spaced.
    name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookUpAnswer {
    /// Everyone the phone or name matches exactly (never a listing).
    pub people: Vec<PersonView>,
    /// Subscribe to `person:<watch_token>` to be told of every later check-in
    /// under this phone or name — also of someone not found yet.
    pub watch_token: String,
}

/// Looks people up by phone or by name, exactly as a family knows them.
#[utoipa::path(
    get,
    path = "/v1/incidents/{id}/people",
    tag = "incidents",
    params(("id" = String, Path, description = "Incident id"), LookUpQuery),
    responses(
        (status = 200, body = LookUpAnswer),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The incident's personal data was deleted", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn look_up(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LookUpQuery>,
) -> Result<Json<LookUpAnswer>, ApiError> {
    let look_up = match (query.phone.as_deref(), query.name.as_deref()) {
        (Some(phone), None) => {
            let phone = Phone::parse(phone).map_err(|e| ApiError::field("phone", e.to_string()))?;
            LookUp::Phone(state.secret.hash(&format!("phone:{phone}")))
        }
        (None, Some(name)) => {
            let key = person::name_key(name);
            if key.is_empty() {
                return Err(ApiError::field("name", "give the full name"));
            }
            LookUp::Name(key)
        }
        _ => {
            return Err(ApiError::field(
                "phone",
                "give phone or name (one of them): people are found only by exact look-up",
            ));
        }
    };
    let incident = super::incidents::find(&state, &id).await?;
    if let Some(at) = incident.purged_at {
        return Err(ApiError::Conflict(format!(
            "the personal data of incident {id} was deleted at {}; nobody can be looked up",
            at.to_rfc3339()
        )));
    }
    let mut people = state.store.look_up(&id, &look_up).await?;
    // Where they said they are, by name: a family reads "山王小学校", not an id.
    for checkin in people.iter_mut().flat_map(|p| p.checkins.iter_mut()) {
        checkin.shelter_name = checkin
            .shelter_id
            .as_deref()
            .and_then(|id| state.index.get(id))
            .map(|s| s.site.name.clone());
    }
    let watch_token = state.store.watch_token(&id, &look_up).await?;
    Ok(Json(LookUpAnswer {
        people,
        watch_token,
    }))
}

/// Counts by status, by shelter and by municipality, each person counted
/// once by their latest check-in. Live on `incident:<id>`.
#[utoipa::path(
    get,
    path = "/v1/incidents/{id}/stats",
    tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, body = IncidentStats),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn incident_stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IncidentStats>, ApiError> {
    super::incidents::find(&state, &id).await?;
    Ok(Json(stats::of(&state.store, &state.index, &id).await?))
}
