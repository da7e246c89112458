//! The official behind a request: `Authorization: Bearer <token>`, looked
//! up by the token's keyed hash. A missing or unknown token is a 401.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::problem::ApiError;
use crate::auth::bearer;
use crate::store::Official;

impl FromRequestParts<AppState> for Official {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or(ApiError::Unauthorized)?;
        state
            .store
            .official_by_token_hash(&state.secret.hash(token))
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}
