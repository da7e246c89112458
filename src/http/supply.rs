//! `/v1/supply-points…`: where water, food and the rest are handed out,
//! nearest first; posted by offices and volunteer centres.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Steward;
use super::extract::{ApiJson, CsvBody};
use super::problem::{ApiError, FieldError, Problem};
use super::shelters::{if_match, parse_lat_lon, parse_limit};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::LatLon;
use crate::domain::supply::{SupplyChange, SupplyKind};
use crate::supply::{SupplyFilter, SupplyView};
use crate::usecase;
use crate::usecase::supply::SupplyImportOutcome;

const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_points, post_point))
        .routes(routes!(points_geojson))
        .routes(routes!(get_point, patch_point))
        .routes(routes!(import_points))
}

/// Query parameters, taken as text so each bad one gets its own message.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SupplyQuery {
    /// `LAT,LON`: nearest first from here. Without it, `municipality` is required.
    near: Option<String>,
    /// Only these kinds, comma-separated: water, food, goods, bath,
    /// charging, toilets, first_aid, laundry, other.
    kind: Option<String>,
    /// Only points listing this item (as written by the office, width and case ignored).
    item: Option<String>,
    /// `true`: only points handing out now (open, within their hours, Japan time).
    open_now: Option<String>,
    /// `true`: closed points too (left out by default).
    include_closed: Option<String>,
    /// Only this municipality (JIS X 0402 code).
    municipality: Option<String>,
    /// 1–500, default 20.
    limit: Option<String>,
}

struct Valid {
    near: Option<LatLon>,
    limit: usize,
    filter: SupplyFilter,
}

fn flag(raw: Option<&str>, field: &str, errors: &mut Vec<FieldError>) -> bool {
    match raw {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push(FieldError::new(field, "must be true or false"));
            false
        }
    }
}

impl SupplyQuery {
    fn validate(&self) -> Result<Valid, ApiError> {
        let mut errors = Vec::new();
        let near = self.near.as_deref().and_then(|raw| {
            parse_lat_lon(raw)
                .map_err(|m| errors.push(FieldError::new("near", m)))
                .ok()
        });
        let limit = parse_limit(self.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
        let mut filter = SupplyFilter::default();
        for part in self.kind.iter().flat_map(|k| k.split(',')).map(str::trim) {
            match SupplyKind::parse(part).filter(|_| !part.is_empty()) {
                Some(k) => filter.kinds.push(k),
                None => errors.push(FieldError::new(
                    "kind",
                    format!(
                        "unknown kind {part:?}; one or more of {}",
                        SupplyKind::ALL.map(SupplyKind::as_str).join(", ")
                    ),
                )),
            }
        }
        filter.item = self.item.clone().filter(|i| !i.trim().is_empty());
        filter.open_now = flag(self.open_now.as_deref(), "open_now", &mut errors);
        filter.include_closed = flag(
            self.include_closed.as_deref(),
            "include_closed",
            &mut errors,
        );
        if let Some(raw) = self.municipality.as_deref() {
            match MunicipalityCode::parse(raw) {
                Ok(m) => filter.municipality = Some(m),
                Err(e) => errors.push(FieldError::new("municipality", e.to_string())),
            }
        }
        if errors.is_empty() && near.is_none() && filter.municipality.is_none() {
            errors.push(FieldError::new(
                "near",
                "give near=LAT,LON or municipality=CODE",
            ));
        }
        if errors.is_empty() {
            Ok(Valid {
                near,
                limit,
                filter,
            })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SupplyList {
    pub supply_points: Vec<SupplyView>,
}

fn matching(state: &AppState, q: &Valid) -> Vec<SupplyView> {
    let now = crate::store::now();
    match q.near {
        Some(at) => state.supply.nearest(at, q.limit, &q.filter, now),
        None => {
            let mut all = state.supply.list(&q.filter, now);
            all.truncate(q.limit);
            all
        }
    }
}

/// Supply points: nearest first with `near`, else a municipality's by name.
/// Closed ones are left out unless asked for.
#[utoipa::path(get, path = "/v1/supply-points", tag = "supply", params(SupplyQuery),
    responses(
        (status = 200, body = SupplyList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_points(
    State(state): State<AppState>,
    query: Result<Query<SupplyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SupplyList>, ApiError> {
    let q = query?.0.validate()?;
    let mut supply_points = matching(&state, &q);
    for p in &mut supply_points {
        p.distance_m = p.distance_m.map(f64::round);
    }
    Ok(Json(SupplyList { supply_points }))
}

/// The same as an RFC 7946 FeatureCollection (the point is the geometry).
#[utoipa::path(get, path = "/v1/supply-points.geojson", tag = "supply", params(SupplyQuery),
    responses(
        (status = 200, content_type = "application/geo+json", body = serde_json::Value),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn points_geojson(
    State(state): State<AppState>,
    query: Result<Query<SupplyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query?.0.validate()?;
    let features: Vec<_> = matching(&state, &q)
        .into_iter()
        .map(|p| {
            let geometry = json!({"type": "Point", "coordinates": [p.point.at.lon, p.point.at.lat]});
            let mut properties = serde_json::to_value(&p).unwrap_or_default();
            if let Some(o) = properties.as_object_mut() {
                o.remove("at");
            }
            json!({"type": "Feature", "id": p.point.id, "geometry": geometry, "properties": properties})
        })
        .collect();
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        json!({"type": "FeatureCollection", "features": features}).to_string(),
    ))
}

/// A point with its version as the ETag, for `If-Match` on the next change.
fn with_etag(view: SupplyView) -> impl IntoResponse {
    (
        [(header::ETAG, format!("\"{}\"", view.point.version))],
        Json(view),
    )
}

#[utoipa::path(get, path = "/v1/supply-points/{id}", tag = "supply",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = SupplyView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_point(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let point = state
        .supply
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no supply point with id {id}")))?;
    Ok(with_etag(SupplyView::of(&point, crate::store::now())))
}

/// An office or volunteer centre posts a supply point in its municipality.
#[utoipa::path(post, path = "/v1/supply-points", tag = "supply",
    request_body = SupplyChange,
    security(("official" = [])),
    responses(
        (status = 201, body = SupplyView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post_point(
    State(state): State<AppState>,
    Steward(account): Steward,
    ApiJson(change): ApiJson<SupplyChange>,
) -> Result<impl IntoResponse, ApiError> {
    let view = usecase::supply::post(&state, &account, change).await?;
    Ok((StatusCode::CREATED, with_etag(view)))
}

/// Changes a point (status, stock, queue, hours…), or confirms it as it is
/// (`{"confirm": true}`). With `If-Match`, only if unchanged since read.
#[utoipa::path(patch, path = "/v1/supply-points/{id}", tag = "supply",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag as read")),
    request_body = SupplyChange,
    security(("official" = [])),
    responses(
        (status = 200, body = SupplyView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch_point(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Steward(account): Steward,
    ApiJson(change): ApiJson<SupplyChange>,
) -> Result<impl IntoResponse, ApiError> {
    let expected = if_match(
        &headers,
        "the ETag of the supply point as you read it (GET /v1/supply-points/{id}), e.g. \"3\"",
    )?;
    let view = usecase::supply::change(&state, &account, &id, change, expected).await?;
    Ok(with_etag(view))
}

/// A municipality's list of supply points as CSV (UTF-8 or Shift_JIS; the
/// columns are in docs/supply.md). Usable rows are added, or replace the
/// point with the same id; each unusable row is reported and left out.
#[utoipa::path(post, path = "/v1/municipalities/{code}/supply-points", tag = "supply",
    params(("code" = String, Path, description = "Municipality code (JIS X 0402), e.g. 172022", pattern = "^[0-9]{6}$")),
    request_body(content = String, content_type = "text/csv", description = "The list"),
    security(("official" = [])),
    responses(
        (status = 200, body = SupplyImportOutcome),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_points(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Steward(account): Steward,
    CsvBody(file): CsvBody,
) -> Result<Json<SupplyImportOutcome>, ApiError> {
    let municipality =
        MunicipalityCode::parse(&code).map_err(|e| ApiError::field("code", e.to_string()))?;
    Ok(Json(
        usecase::supply::import(&state, &account, &municipality, &file).await?,
    ))
}
