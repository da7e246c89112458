//! `/v1/municipalities/{code}/announcements`: an office tells everyone in its
//! municipality ("water at the city hall from 10:00"); residents read the
//! latest, and hear of new ones live on `area:<code>`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::ApiJson;
use super::problem::{ApiError, FieldError, Problem};
use crate::domain::municipality::MunicipalityCode;
use crate::store::{Announcement, Official, Severity};
use crate::usecase;
use crate::usecase::announcements::MAX_TEXT_CHARS;

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_announcements, post_announcement))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AnnouncementRequest {
    /// Up to 1,000 characters, shown as written (Japanese).
    text: String,
    /// The same in English, optional: English pages show it.
    text_en: Option<String>,
    /// info (default), warning or urgent.
    severity: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnnouncementList {
    pub announcements: Vec<Announcement>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// How many, newest first: 1 to 200, 20 by default.
    limit: Option<String>,
}

fn municipality(code: &str) -> Result<MunicipalityCode, ApiError> {
    MunicipalityCode::parse(code).map_err(|e| ApiError::field("code", e.to_string()))
}

/// An office posts an announcement for its municipality; it is kept and
/// published on `area:<code>` (kind `announcement`).
#[utoipa::path(
    post,
    path = "/v1/municipalities/{code}/announcements",
    tag = "announcements",
    params(("code" = String, Path, description = "Municipality code (JIS X 0402, six digits whose last is the check digit), e.g. 172022", pattern = "^[0-9]{6}$")),
    request_body = AnnouncementRequest,
    security(("official" = [])),
    responses(
        (status = 201, body = Announcement),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another municipality's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(municipality = %code, official = official.id))]
pub async fn post_announcement(
    State(state): State<AppState>,
    Path(code): Path<String>,
    official: Official,
    ApiJson(request): ApiJson<AnnouncementRequest>,
) -> Result<(StatusCode, Json<Announcement>), ApiError> {
    let municipality = municipality(&code)?;
    // Every wrong field named at once; the use case holds the same rules.
    let mut errors = Vec::new();
    let text = request.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        errors.push(FieldError::new(
            "text",
            format!("1 to {MAX_TEXT_CHARS} characters"),
        ));
    }
    if request
        .text_en
        .as_deref()
        .is_some_and(|t| t.trim().chars().count() > MAX_TEXT_CHARS)
    {
        errors.push(FieldError::new(
            "text_en",
            format!("at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    let severity = match request.severity.as_deref() {
        None => Some(Severity::Info),
        Some(s) => serde_json::from_value(serde_json::Value::String(s.to_owned())).ok(),
    };
    let Some(severity) = severity else {
        errors.push(FieldError::new(
            "severity",
            format!(
                "{:?} is not one of info, warning, urgent",
                request.severity.unwrap_or_default()
            ),
        ));
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let posted = usecase::announcements::post(
        &state,
        &official,
        &municipality,
        severity,
        &request.text,
        request.text_en.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(posted)))
}

/// A municipality's announcements, newest first.
#[utoipa::path(
    get,
    path = "/v1/municipalities/{code}/announcements",
    tag = "announcements",
    params(("code" = String, Path, description = "Municipality code (JIS X 0402, six digits whose last is the check digit), e.g. 172022", pattern = "^[0-9]{6}$"), ListQuery),
    responses(
        (status = 200, body = AnnouncementList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_announcements(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<AnnouncementList>, ApiError> {
    let municipality = municipality(&code)?;
    let limit = match query.limit.as_deref().map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::field(
                "limit",
                format!("a whole number from 1 to {MAX_LIMIT}"),
            ));
        }
    };
    let announcements = state.store.announcements(&municipality, limit).await?;
    Ok(Json(AnnouncementList { announcements }))
}
