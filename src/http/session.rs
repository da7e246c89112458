//! `/v1/sign-in`, `/v1/sign-out`: a device exchanges a one-time code from a
//! sign-in link (`anpi token create --link`) for a token of its own, and
//! forgets it again.

use axum::Json;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::ApiJson;
use super::problem::{ApiError, Problem};
use crate::auth::bearer;
use crate::store::Account;
use crate::usecase::sessions;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignIn {
    /// The code of the sign-in link (`…#code=anpi_code_…`).
    code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    /// This device's token: keep it on the device, send it as `Authorization: Bearer`.
    pub token: String,
    pub account: Account,
}

/// Exchange a one-time sign-in code for a token of this device's own.
#[utoipa::path(post, path = "/v1/sign-in", tag = "volunteers",
    request_body = SignIn,
    responses(
        (status = 200, body = SignedIn),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown, used or expired code", body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Json<SignedIn>, ApiError> {
    match sessions::sign_in(&state, &body.code).await {
        Ok((account, token)) => Ok(Json(SignedIn { token, account })),
        Err(crate::error::DomainError::Unauthorized) => Err(ApiError::BadCredentials(
            "this sign-in link was already used, has expired or is not one of ours; ask for a new one"
                .into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Forget this device's token (signing out).
#[utoipa::path(post, path = "/v1/sign-out", tag = "volunteers",
    security(("official" = [])),
    responses(
        (status = 204, description = "The token no longer works"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a device's token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    // A token that works at all first (401 otherwise); then whether it is a device's.
    _holder: Account,
) -> Result<StatusCode, ApiError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or(ApiError::Unauthorized)?;
    sessions::sign_out(&state, token).await?;
    Ok(StatusCode::NO_CONTENT)
}
