//! Official alerts in CAP 1.2: `POST /v1/alerts` relays one to the office's
//! municipalities (it becomes their announcements), every announcement reads
//! back as CAP, and each municipality's announcements in force are an Atom
//! feed — always naming the place and who says so.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::XmlBody;
use super::problem::{ApiError, Problem};
use crate::cap::{self, FeedMeta};
use crate::domain::municipality::MunicipalityCode;
use crate::store::Official;
use crate::usecase;
use crate::usecase::alerts::Relayed;

const CAP_TYPE: &str = "application/cap+xml";
/// Entries in a feed: the announcements in force, newest first.
const FEED_ENTRIES: u32 = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(relay_alert))
        .routes(routes!(announcement_cap))
        .routes(routes!(alerts_atom))
}

/// An office relays a CAP 1.2 alert (its own, a prefecture's, the weather
/// service's) to the municipalities it names with a `JIS X0402` geocode —
/// all of which must be the office's. Each gets an announcement naming the
/// alert's place (`areaDesc`) and issuer (`senderName`), live on `area:`
/// and `notices:`. An Update or Cancel retires the alerts it references.
#[utoipa::path(post, path = "/v1/alerts", tag = "announcements",
    request_body(content = String, content_type = "application/cap+xml", description = "A CAP 1.2 alert"),
    security(("official" = [])),
    responses(
        (status = 201, body = Relayed),
        (status = 400, description = "Not CAP 1.2, or a field is wrong (named)", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Names another municipality", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn relay_alert(
    State(state): State<AppState>,
    official: Official,
    XmlBody(body): XmlBody,
) -> Result<(StatusCode, Json<Relayed>), ApiError> {
    let xml = std::str::from_utf8(&body)
        .map_err(|_| ApiError::field("body", "a CAP document in UTF-8"))?;
    let relayed = usecase::alerts::relay(&state, &official, xml).await?;
    Ok((StatusCode::CREATED, Json(relayed)))
}

/// An announcement as a CAP 1.2 alert: as received when it came as one.
#[utoipa::path(get, path = "/v1/announcements/{id}/cap", tag = "announcements",
    params(("id" = String, Path)),
    responses(
        (status = 200, content_type = "application/cap+xml", body = String),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn announcement_cap(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (a, xml) = state
        .store
        .announcement(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no announcement with id {id}")))?;
    let alert = usecase::alerts::as_cap(&a, xml.as_deref(), &state.pfif_domain);
    Ok(([(header::CONTENT_TYPE, CAP_TYPE)], cap::write(&alert)))
}

/// A municipality's announcements and alerts in force as an Atom 1.0 feed,
/// each entry linking to its CAP document.
#[utoipa::path(get, path = "/v1/municipalities/{code}/alerts.atom", tag = "announcements",
    params(("code" = String, Path, description = "Municipality code (JIS X 0402), e.g. 172022", pattern = "^[0-9]{6}$")),
    responses(
        (status = 200, content_type = "application/atom+xml", body = String),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn alerts_atom(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let municipality =
        MunicipalityCode::parse(&code).map_err(|e| ApiError::field("code", e.to_string()))?;
    let base = origin(&headers);
    let mut alerts = Vec::new();
    let mut urls = HashMap::new();
    for (a, xml) in state
        .store
        .announcements_with_documents(&municipality, FEED_ENTRIES)
        .await?
    {
        let alert = usecase::alerts::as_cap(&a, xml.as_deref(), &state.pfif_domain);
        urls.insert(
            alert.identifier.clone(),
            format!("{base}/v1/announcements/{}/cap", a.id),
        );
        alerts.push(alert);
    }
    let updated = alerts
        .iter()
        .map(|a| a.sent)
        .max()
        .unwrap_or_else(|| chrono::Utc::now().fixed_offset());
    let self_url = format!("{base}/v1/municipalities/{municipality}/alerts.atom");
    let id = format!("tag:{},2024:alerts:{municipality}", state.pfif_domain);
    let title = format!("anpi: {municipality}");
    let url_of = |a: &cap::Alert| urls.get(&a.identifier).cloned().unwrap_or_default();
    let feed = FeedMeta {
        id: &id,
        title: &title,
        author: "anpi",
        self_url: &self_url,
        updated,
        alert_url: &url_of,
    };
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml")],
        cap::atom(&feed, &alerts),
    ))
}

/// This service's address as the client reached it (behind a proxy, the
/// proxy's scheme).
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|s| *s == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}
