//! `/v1/incidents…`: an office activates an incident for its municipalities
//! and closes it; anyone can see which are active (to check in to one).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::ApiJson;
use super::problem::{ApiError, FieldError, Problem};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::Hazard;
use crate::store::{Incident, NewIncident, Official};
use crate::usecase;

const MAX_NAME_CHARS: usize = 100;
const MAX_MUNICIPALITIES: usize = 100;
/// A start this far ahead of the server's clock is a typo, not a forecast.
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_incidents, open_incident))
        .routes(routes!(get_incident))
        .routes(routes!(close_incident))
}

/// What an office sends to activate an incident.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IncidentRequest {
    /// As residents will see it, e.g. "令和6年能登半島地震".
    name: String,
    /// flood, landslide, storm_surge, earthquake, tsunami, fire, inland_flood or volcano.
    hazard: String,
    /// Municipality codes it covers (JIS X 0402: six digits, the last a
    /// check digit); the token must act on every one.
    #[schema(min_items = 1, max_items = 100)]
    municipalities: Vec<String>,
    /// RFC 3339; by default now.
    started_at: Option<String>,
}

fn validate(request: IncidentRequest) -> Result<NewIncident, ApiError> {
    let mut errors = Vec::new();
    let name = request
        .name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            "name",
            format!("1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    let hazard =
        serde_json::from_value::<Hazard>(serde_json::Value::String(request.hazard.clone()));
    if hazard.is_err() {
        errors.push(FieldError::new(
            "hazard",
            format!(
                "{:?} is not one of flood, landslide, storm_surge, earthquake, tsunami, fire, inland_flood, volcano",
                request.hazard
            ),
        ));
    }
    let mut municipalities = Vec::new();
    if request.municipalities.is_empty() || request.municipalities.len() > MAX_MUNICIPALITIES {
        errors.push(FieldError::new(
            "municipalities",
            format!("1 to {MAX_MUNICIPALITIES} municipality codes"),
        ));
    }
    for (i, code) in request.municipalities.iter().enumerate() {
        match MunicipalityCode::parse(code) {
            Ok(m) if municipalities.contains(&m) => errors.push(FieldError::new(
                format!("municipalities[{i}]"),
                format!("{m} is listed twice"),
            )),
            Ok(m) => municipalities.push(m),
            Err(e) => errors.push(FieldError::new(
                format!("municipalities[{i}]"),
                e.to_string(),
            )),
        }
    }
    let now = Utc::now();
    let started_at = match request
        .started_at
        .as_deref()
        .map(DateTime::parse_from_rfc3339)
    {
        None => Some(crate::store::now()),
        Some(Ok(t)) if t.with_timezone(&Utc) <= now + CLOCK_SKEW => Some(t.with_timezone(&Utc)),
        Some(Ok(_)) => {
            errors.push(FieldError::new("started_at", "is in the future"));
            None
        }
        Some(Err(e)) => {
            errors.push(FieldError::new(
                "started_at",
                format!("not an RFC 3339 time such as 2024-01-01T16:10:00+09:00: {e}"),
            ));
            None
        }
    };
    match (errors.is_empty(), hazard, started_at) {
        (true, Ok(hazard), Some(started_at)) => Ok(NewIncident {
            name,
            hazard,
            municipalities,
            started_at,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// An office activates an incident for municipalities it acts on.
#[utoipa::path(
    post,
    path = "/v1/incidents",
    tag = "incidents",
    request_body = IncidentRequest,
    security(("official" = [])),
    responses(
        (status = 201, body = Incident),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A municipality outside the token's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(official = official.id))]
pub async fn open_incident(
    State(state): State<AppState>,
    official: Official,
    ApiJson(request): ApiJson<IncidentRequest>,
) -> Result<(StatusCode, Json<Incident>), ApiError> {
    let new = validate(request)?;
    let incident = usecase::incidents::open(&state, &official, new).await?;
    Ok((StatusCode::CREATED, Json(incident)))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// `true`: only open incidents; `false`: only closed ones.
    active: Option<String>,
    /// Only incidents covering this municipality (code).
    municipality: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentList {
    pub incidents: Vec<Incident>,
}

/// Incidents, newest first (at most 1,000).
#[utoipa::path(
    get,
    path = "/v1/incidents",
    tag = "incidents",
    params(IncidentQuery),
    responses(
        (status = 200, body = IncidentList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_incidents(
    State(state): State<AppState>,
    Query(query): Query<IncidentQuery>,
) -> Result<Json<IncidentList>, ApiError> {
    let mut errors = Vec::new();
    let active = match query.active.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            errors.push(FieldError::new(
                "active",
                format!("{other:?} is not true or false"),
            ));
            None
        }
    };
    let municipality = match query.municipality.as_deref().map(MunicipalityCode::parse) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            errors.push(FieldError::new("municipality", e.to_string()));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let incidents = state.store.incidents(active, municipality.as_ref()).await?;
    Ok(Json(IncidentList { incidents }))
}

#[utoipa::path(
    get,
    path = "/v1/incidents/{id}",
    tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, body = Incident),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_incident(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Incident>, ApiError> {
    Ok(Json(find(&state, &id).await?))
}

/// The incident, or a 404 that names it.
pub(super) async fn find(state: &AppState, id: &str) -> Result<Incident, ApiError> {
    Ok(usecase::incidents::find(state, id).await?)
}

/// Closes an incident. Its check-ins' personal data is deleted
/// `ANPI_PURGE_AFTER_DAYS` later (`purge_at`); counts survive.
#[utoipa::path(
    post,
    path = "/v1/incidents/{id}/close",
    tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    security(("official" = [])),
    responses(
        (status = 200, body = Incident),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "It covers a municipality outside the token's", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(incident = %id, official = official.id))]
pub async fn close_incident(
    State(state): State<AppState>,
    Path(id): Path<String>,
    official: Official,
) -> Result<Json<Incident>, ApiError> {
    Ok(Json(
        usecase::incidents::close(&state, &official, &id).await?,
    ))
}
