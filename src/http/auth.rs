//! Who is behind a request: `Authorization: Bearer <token>`, looked up by
//! the token's keyed hash. An office's endpoints take [`Official`]; aid's
//! take a [`Caller`], which may also be nobody or a requester's edit key.
//! A missing or unknown token is a 401; a suspended one, or another role's
//! on an office's endpoint, a 403.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::problem::ApiError;
use crate::auth::bearer;
use crate::store::{Account, Official, Role};
use crate::usecase::aid::{Caller, EDIT_KEY_PREFIX};

/// The bearer token, if the request carries one.
fn token(parts: &Parts) -> Result<Option<&str>, ApiError> {
    match parts.headers.get(AUTHORIZATION) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(bearer)
            .map(Some)
            .ok_or(ApiError::Unauthorized),
    }
}

/// The holder of `token`, unless unknown (401) or suspended (403).
async fn account(state: &AppState, token: &str) -> Result<Account, ApiError> {
    let account = state
        .store
        .account_by_token_hash(&state.secret.hash(token))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if account.suspended {
        return Err(ApiError::Forbidden(
            "this token is suspended (by its coordinator, or its coordinator is)".into(),
        ));
    }
    Ok(account)
}

impl FromRequestParts<AppState> for Official {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = token(parts)?.ok_or(ApiError::Unauthorized)?;
        account(state, token).await?.as_official().ok_or_else(|| {
            ApiError::Forbidden("only an emergency office's token may do this".into())
        })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(match token(parts)? {
            None => Caller::Anyone,
            Some(key) if key.starts_with(EDIT_KEY_PREFIX) => Caller::EditKey(key.to_owned()),
            Some(token) => Caller::Account(account(state, token).await?),
        })
    }
}

/// A token's holder, required: what aid's member-only endpoints take (a
/// missing token is a 401 before anything else is read).
impl FromRequestParts<AppState> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = token(parts)?.ok_or(ApiError::Unauthorized)?;
        if token.starts_with(EDIT_KEY_PREFIX) {
            return Err(ApiError::Forbidden(
                "an edit link opens its own request only; this needs a volunteer's, coordinator's or office's token"
                    .into(),
            ));
        }
        account(state, token).await
    }
}

/// An emergency office's or a volunteer centre's token: who posts supply
/// points. Anyone else is refused (403) before a body is read.
pub struct Steward(pub Account);

impl FromRequestParts<AppState> for Steward {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let account = Account::from_request_parts(parts, state).await?;
        if matches!(account.role, Role::Official | Role::Coordinator) {
            Ok(Steward(account))
        } else {
            Err(ApiError::Forbidden(
                "this needs the token of an emergency office or a volunteer centre".into(),
            ))
        }
    }
}
