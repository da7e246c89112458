//! `/v1/aid/…` and `/v1/volunteers`: requests for help, offers, claims,
//! reports and moderation, and the volunteers a coordinator registers.
//! The rules are in `usecase::aid`; this parses, calls and renders.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::checkins::idempotency_key;
use super::extract::ApiJson;
use super::problem::{ApiError, FieldError, Problem};
use super::shelters::parse_lat_lon;
use crate::aid::{PublicOffer, PublicRequest};
use crate::aidindex::{MAX_REACH_M, RequestFilter};
use crate::domain::aid::{Category, ClaimStatus, RequestStatus};
use crate::domain::shelter::LatLon;
use crate::store::{Account, Claim, RecordKind};
use crate::usecase::aid::{
    self as aid, Caller, ClaimAnswer, ModerationQueue, NewOffer, NewRequest, OfferMatches,
    OfferPatch, Posted, PrivateRequest, Registered, RequestMatches, RequestPatch, RequestView,
};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 200;
const DEFAULT_RADIUS_M: f64 = 10_000.0;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(categories))
        .routes(routes!(list_requests, post_request))
        .routes(routes!(get_request, patch_request))
        .routes(routes!(request_matches))
        .routes(routes!(claim_request))
        .routes(routes!(report_request))
        .routes(routes!(my_claims))
        .routes(routes!(claim_delivered))
        .routes(routes!(claim_release))
        .routes(routes!(list_offers, post_offer))
        .routes(routes!(get_offer, patch_offer))
        .routes(routes!(offer_matches))
        .routes(routes!(report_offer))
        .routes(routes!(moderation_queue))
        .routes(routes!(moderate))
        .routes(routes!(list_volunteers, register_volunteer))
        .routes(routes!(suspend_volunteer))
        .routes(routes!(reinstate_volunteer))
        .routes(routes!(me))
}

/// One category with its labels.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryLabel {
    pub code: &'static str,
    pub ja: &'static str,
    pub en: &'static str,
}

/// The fixed list of aid categories, with Japanese and English labels.
#[utoipa::path(get, path = "/v1/aid/categories", tag = "aid",
    responses((status = 200, body = Vec<CategoryLabel>)))]
pub async fn categories() -> Json<Vec<CategoryLabel>> {
    Json(
        Category::ALL
            .into_iter()
            .map(|c| {
                let (ja, en) = c.labels();
                CategoryLabel {
                    code: c.as_str(),
                    ja,
                    en,
                }
            })
            .collect(),
    )
}

/// Where to look, taken as text so each bad parameter gets its own message.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearQuery {
    /// `LAT,LON` (WGS84 degrees): nearest first from here. Required.
    near: Option<String>,
    /// Metres, 1 to 100,000 (10,000 by default).
    radius_m: Option<String>,
    /// Only these categories, comma-separated.
    category: Option<String>,
    /// Requests only: these statuses, comma-separated (default: open and
    /// partially_claimed, what can still be claimed).
    status: Option<String>,
    /// 1 to 200, 20 by default.
    limit: Option<String>,
}

struct ValidNear {
    at: LatLon,
    radius_m: f64,
    categories: Vec<Category>,
    statuses: Vec<RequestStatus>,
    limit: usize,
}

impl NearQuery {
    fn validate(&self) -> Result<ValidNear, ApiError> {
        let mut errors = Vec::new();
        let at = match self.near.as_deref() {
            None => {
                errors.push(FieldError::new("near", "required: LAT,LON"));
                None
            }
            Some(raw) => parse_lat_lon(raw)
                .map_err(|m| errors.push(FieldError::new("near", m)))
                .ok(),
        };
        let radius_m = match self.radius_m.as_deref().map(str::parse::<f64>) {
            None => DEFAULT_RADIUS_M,
            Some(Ok(r)) if r.is_finite() && (1.0..=MAX_REACH_M).contains(&r) => r,
            Some(_) => {
                errors.push(FieldError::new(
                    "radius_m",
                    format!("metres from 1 to {MAX_REACH_M:.0}"),
                ));
                DEFAULT_RADIUS_M
            }
        };
        let mut categories = Vec::new();
        for part in list(self.category.as_deref()) {
            match Category::parse(part) {
                Some(c) => categories.push(c),
                None => errors.push(FieldError::new(
                    "category",
                    format!("{part:?} is not a category (GET /v1/aid/categories)"),
                )),
            }
        }
        let mut statuses = Vec::new();
        for part in list(self.status.as_deref()) {
            match RequestStatus::parse(part) {
                Some(s) if s.is_active() => statuses.push(s),
                _ => errors.push(FieldError::new(
                    "status",
                    format!("{part:?}: one or more of open, partially_claimed, claimed"),
                )),
            }
        }
        let limit = limit(self.limit.as_deref(), &mut errors);
        match at {
            Some(at) if errors.is_empty() => Ok(ValidNear {
                at,
                radius_m,
                categories,
                statuses,
                limit,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

fn list(raw: Option<&str>) -> impl Iterator<Item = &str> {
    raw.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

fn limit(raw: Option<&str>, errors: &mut Vec<FieldError>) -> usize {
    super::shelters::parse_limit(raw, DEFAULT_LIMIT, MAX_LIMIT, errors)
}

/// A record with its distance from `near`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Near<T> {
    #[serde(flatten)]
    pub record: T,
    /// From `near` to the record's public place, metres.
    pub distance_m: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<Near<PublicRequest>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferList {
    pub offers: Vec<Near<PublicOffer>>,
}

/// Ask for help. No account needed: the answer holds an edit key with
/// which the requester updates, reconfirms, confirms receipt or withdraws.
/// An office may post its shelter's needs (`shelter_id`). Sent again with
/// the same `Idempotency-Key` and content, it answers the first request.
#[utoipa::path(post, path = "/v1/aid/requests", tag = "aid",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 128 visible ASCII characters, the same on every retry of one request")),
    request_body = NewRequest,
    responses(
        (status = 201, body = Posted),
        (status = 422, description = "The Idempotency-Key was used for a different request", body = Problem, content_type = "application/problem+json"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    ApiJson(new): ApiJson<NewRequest>,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    let key = idempotency_key(&headers)?;
    let posted = aid::post_request(&state, &caller, new, key.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(posted)))
}

/// Requests near a place, nearest first (public fields only).
#[utoipa::path(get, path = "/v1/aid/requests", tag = "aid", params(NearQuery),
    responses(
        (status = 200, body = RequestList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_requests(
    State(state): State<AppState>,
    Query(query): Query<NearQuery>,
) -> Result<Json<RequestList>, ApiError> {
    let q = query.validate()?;
    let filter = RequestFilter {
        categories: q.categories,
        statuses: q.statuses,
    };
    let requests = aid::requests_near(&state, q.at, q.radius_m, &filter, q.limit)
        .into_iter()
        .map(|(record, distance_m)| Near { record, distance_m })
        .collect();
    Ok(Json(RequestList { requests }))
}

/// One request: public fields for anyone; the exact place, contact and
/// claims for its requester (edit key), its claimants and the
/// municipality's office and coordinators.
#[utoipa::path(get, path = "/v1/aid/requests/{id}", tag = "aid",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = RequestView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(aid::request(&state, &caller, &id).await?))
}

/// Change a request (its requester with the edit key, or the
/// municipality's office or coordinators): items, urgency, note, contact;
/// `confirm: true` reconfirms it; `status` withdrawn or fulfilled.
#[utoipa::path(patch, path = "/v1/aid/requests/{id}", tag = "aid",
    params(("id" = String, Path)),
    request_body = RequestPatch,
    responses(
        (status = 200, body = PrivateRequest),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    ApiJson(patch): ApiJson<RequestPatch>,
) -> Result<Json<PrivateRequest>, ApiError> {
    Ok(Json(aid::patch_request(&state, &caller, &id, patch).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// 1 to 200, 20 by default.
    limit: Option<String>,
}

impl LimitQuery {
    fn validate(&self) -> Result<usize, ApiError> {
        let mut errors = Vec::new();
        let n = limit(self.limit.as_deref(), &mut errors);
        if errors.is_empty() {
            Ok(n)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// The offers that fit a request best (ranking in docs/aid.md).
#[utoipa::path(get, path = "/v1/aid/requests/{id}/matches", tag = "aid",
    params(("id" = String, Path), LimitQuery),
    responses(
        (status = 200, body = OfferMatches),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn request_matches(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LimitQuery>,
) -> Result<Json<OfferMatches>, ApiError> {
    let limit = query.validate()?;
    Ok(Json(aid::matches_for_request(&state, &id, limit).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ClaimBody {
    /// Units to take; all that is left when omitted.
    quantity: Option<i32>,
}

/// A volunteer (or coordinator) of the request's municipality claims all
/// or part of it and is shown the contact. More than is left is a 409; a
/// volunteer holding many undelivered claims with a poor delivery record
/// is refused with 429.
#[utoipa::path(post, path = "/v1/aid/requests/{id}/claims", tag = "aid",
    params(("id" = String, Path)),
    request_body = ClaimBody,
    security(("official" = [])),
    responses(
        (status = 201, body = ClaimAnswer),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn claim_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    account: Account,
    ApiJson(body): ApiJson<ClaimBody>,
) -> Result<(StatusCode, Json<ClaimAnswer>), ApiError> {
    let caller = Caller::Account(account);
    let answer = aid::claim(&state, &caller, &id, body.quantity).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReportBody {
    /// spam, abuse, duplicate, wrong_place or already_resolved.
    reason: String,
}

/// Who reports: an account, else a keyed hash of the network address.
fn reporter(state: &AppState, caller: &Caller, peer: SocketAddr) -> String {
    match caller {
        Caller::Account(a) => format!("account:{}", a.id),
        _ => state.secret.hash(&format!("reporter:{}", peer.ip())),
    }
}

/// Report a request; after enough distinct reporters it is hidden until a
/// coordinator or office decides.
#[utoipa::path(post, path = "/v1/aid/requests/{id}/reports", tag = "aid",
    params(("id" = String, Path)),
    request_body = ReportBody,
    responses(
        (status = 202, description = "Recorded"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn report_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    ApiJson(body): ApiJson<ReportBody>,
) -> Result<StatusCode, ApiError> {
    let who = reporter(&state, &caller, peer);
    aid::report(&state, RecordKind::Request, &id, &who, &body.reason).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The caller's claims, newest first, each with its request (the contact
/// only while the claim is live or delivered).
#[utoipa::path(get, path = "/v1/aid/claims", tag = "aid",
    security(("official" = [])),
    responses(
        (status = 200, body = Vec<ClaimAnswer>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn my_claims(
    State(state): State<AppState>,
    account: Account,
) -> Result<Json<Vec<ClaimAnswer>>, ApiError> {
    let caller = Caller::Account(account);
    Ok(Json(aid::my_claims(&state, &caller).await?))
}

/// The holder handed it over.
#[utoipa::path(post, path = "/v1/aid/claims/{id}/delivered", tag = "aid",
    params(("id" = String, Path)),
    security(("official" = [])),
    responses(
        (status = 200, body = Claim),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn claim_delivered(
    State(state): State<AppState>,
    Path(id): Path<String>,
    account: Account,
) -> Result<Json<Claim>, ApiError> {
    let caller = Caller::Account(account);
    Ok(Json(
        aid::close_claim(&state, &caller, &id, ClaimStatus::Delivered, None).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReleaseBody {
    /// Why (up to 200 characters): the requester and coordinators see it.
    reason: String,
}

/// The holder gives the claim back; its quantity is open again.
#[utoipa::path(post, path = "/v1/aid/claims/{id}/release", tag = "aid",
    params(("id" = String, Path)),
    request_body = ReleaseBody,
    security(("official" = [])),
    responses(
        (status = 200, body = Claim),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn claim_release(
    State(state): State<AppState>,
    Path(id): Path<String>,
    account: Account,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Json<Claim>, ApiError> {
    let caller = Caller::Account(account);
    Ok(Json(
        aid::close_claim(
            &state,
            &caller,
            &id,
            ClaimStatus::Released,
            Some(&body.reason),
        )
        .await?,
    ))
}

/// A volunteer or coordinator offers help or supplies.
#[utoipa::path(post, path = "/v1/aid/offers", tag = "aid",
    request_body = NewOffer,
    security(("official" = [])),
    responses(
        (status = 201, body = PublicOffer),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post_offer(
    State(state): State<AppState>,
    account: Account,
    ApiJson(new): ApiJson<NewOffer>,
) -> Result<(StatusCode, Json<PublicOffer>), ApiError> {
    let caller = Caller::Account(account);
    Ok((
        StatusCode::CREATED,
        Json(aid::post_offer(&state, &caller, new).await?),
    ))
}

/// Open offers near a place, nearest first.
#[utoipa::path(get, path = "/v1/aid/offers", tag = "aid", params(NearQuery),
    responses(
        (status = 200, body = OfferList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_offers(
    State(state): State<AppState>,
    Query(query): Query<NearQuery>,
) -> Result<Json<OfferList>, ApiError> {
    let q = query.validate()?;
    let offers = aid::offers_near(&state, q.at, q.radius_m, &q.categories, q.limit)
        .into_iter()
        .map(|(record, distance_m)| Near { record, distance_m })
        .collect();
    Ok(Json(OfferList { offers }))
}

#[utoipa::path(get, path = "/v1/aid/offers/{id}", tag = "aid",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = PublicOffer),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_offer(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PublicOffer>, ApiError> {
    Ok(Json(aid::offer(&state, &id).await?))
}

/// Its holder changes, reconfirms (`confirm: true`) or withdraws an offer.
#[utoipa::path(patch, path = "/v1/aid/offers/{id}", tag = "aid",
    params(("id" = String, Path)),
    request_body = OfferPatch,
    security(("official" = [])),
    responses(
        (status = 200, body = PublicOffer),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch_offer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    account: Account,
    ApiJson(patch): ApiJson<OfferPatch>,
) -> Result<Json<PublicOffer>, ApiError> {
    let caller = Caller::Account(account);
    Ok(Json(aid::patch_offer(&state, &caller, &id, patch).await?))
}

/// The open requests an offer fits best (ranking in docs/aid.md).
#[utoipa::path(get, path = "/v1/aid/offers/{id}/matches", tag = "aid",
    params(("id" = String, Path), LimitQuery),
    responses(
        (status = 200, body = RequestMatches),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn offer_matches(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LimitQuery>,
) -> Result<Json<RequestMatches>, ApiError> {
    let limit = query.validate()?;
    Ok(Json(aid::matches_for_offer(&state, &id, limit).await?))
}

/// Report an offer.
#[utoipa::path(post, path = "/v1/aid/offers/{id}/reports", tag = "aid",
    params(("id" = String, Path)),
    request_body = ReportBody,
    responses(
        (status = 202, description = "Recorded"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn report_offer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    ApiJson(body): ApiJson<ReportBody>,
) -> Result<StatusCode, ApiError> {
    let who = reporter(&state, &caller, peer);
    aid::report(&state, RecordKind::Offer, &id, &who, &body.reason).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Records hidden after reports in the caller's municipalities (offices
/// and coordinators).
#[utoipa::path(get, path = "/v1/aid/moderation", tag = "aid",
    security(("official" = [])),
    responses(
        (status = 200, body = ModerationQueue),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn moderation_queue(
    State(state): State<AppState>,
    account: Account,
) -> Result<Json<ModerationQueue>, ApiError> {
    let caller = Caller::Account(account);
    Ok(Json(aid::moderation_queue(&state, &caller).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DecisionBody {
    /// restore (shown again, reports cleared) or remove (withdrawn for good).
    decision: String,
}

/// Decide on a hidden record (audited).
#[utoipa::path(post, path = "/v1/aid/moderation/{kind}/{id}", tag = "aid",
    params(("kind" = String, Path, description = "requests or offers"), ("id" = String, Path)),
    request_body = DecisionBody,
    security(("official" = [])),
    responses(
        (status = 204, description = "Decided"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn moderate(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    account: Account,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<StatusCode, ApiError> {
    let caller = Caller::Account(account);
    let kind = match kind.as_str() {
        "requests" => RecordKind::Request,
        "offers" => RecordKind::Offer,
        other => {
            return Err(ApiError::field(
                "kind",
                format!("{other:?} is not one of requests, offers"),
            ));
        }
    };
    aid::decide(&state, &caller, kind, &id, &body.decision).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VolunteerBody {
    /// The volunteer's name, as coordinators and requesters see it.
    name: String,
}

/// The address this service is reached at, for links handed out.
fn public_base(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// A coordinator registers a volunteer: the token is shown once, with the
/// sign-in link as a QR code (SVG) for the registration desk.
#[utoipa::path(post, path = "/v1/volunteers", tag = "volunteers",
    request_body = VolunteerBody,
    security(("official" = [])),
    responses(
        (status = 201, body = Registered),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register_volunteer(
    State(state): State<AppState>,
    headers: HeaderMap,
    account: Account,
    ApiJson(body): ApiJson<VolunteerBody>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let caller = Caller::Account(account);
    let registered =
        aid::register_volunteer(&state, &caller, &body.name, &public_base(&headers)).await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

/// The volunteers this coordinator registered.
#[utoipa::path(get, path = "/v1/volunteers", tag = "volunteers",
    security(("official" = [])),
    responses(
        (status = 200, body = Vec<Account>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_volunteers(
    State(state): State<AppState>,
    account: Account,
) -> Result<Json<Vec<Account>>, ApiError> {
    let caller = Caller::Account(account);
    Ok(Json(aid::volunteers(&state, &caller).await?))
}

/// Suspend a volunteer: its token stops working at once.
#[utoipa::path(post, path = "/v1/volunteers/{id}/suspend", tag = "volunteers",
    params(("id" = i64, Path)),
    security(("official" = [])),
    responses(
        (status = 200, body = Account),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn suspend_volunteer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    account: Account,
) -> Result<Json<Account>, ApiError> {
    let caller = Caller::Account(account);
    Ok(Json(
        aid::suspend_volunteer(&state, &caller, volunteer_id(&id)?, true).await?,
    ))
}

/// Reinstate a suspended volunteer.
#[utoipa::path(post, path = "/v1/volunteers/{id}/reinstate", tag = "volunteers",
    params(("id" = i64, Path)),
    security(("official" = [])),
    responses(
        (status = 200, body = Account),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reinstate_volunteer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    account: Account,
) -> Result<Json<Account>, ApiError> {
    let caller = Caller::Account(account);
    Ok(Json(
        aid::suspend_volunteer(&state, &caller, volunteer_id(&id)?, false).await?,
    ))
}

fn volunteer_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::field("id", "a volunteer's number"))
}

/// Who a token belongs to, and its private live channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub account: Account,
    /// Subscribe to this channel to hear of your claims.
    pub inbox: String,
}

/// The token's holder.
#[utoipa::path(get, path = "/v1/me", tag = "volunteers",
    security(("official" = [])),
    responses(
        (status = 200, body = Me),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(State(state): State<AppState>, account: Account) -> Json<Me> {
    Json(Me {
        inbox: state.audience.account_inbox(account.id).to_string(),
        account,
    })
}
