//! The HTTP API's one error type, answered as `application/problem+json`
//! (RFC 9457). A use case's [`DomainError`] becomes one here, and so do the
//! extractors' rejections. Database and unexpected errors are logged in full
//! and answered with a generic body: their text never reaches a client.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::DomainError;
pub use crate::error::FieldError;
use crate::store::StoreError;

/// The problem+json body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, e.g. `urn:anpi:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For an edit conflict: the record as it is stored now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: some fields are wrong; each is named.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// 401: no valid bearer token.
    #[error("unauthorized")]
    Unauthorized,
    /// 401: credentials that were given do not work (the reason).
    #[error("bad credentials: {0}")]
    BadCredentials(String),
    /// 403: the token is valid but may not act here.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404
    #[error("not found: {0}")]
    NotFound(String),
    /// 408: the request's body did not arrive within the body timeout.
    #[error("request timeout: {0}")]
    RequestTimeout(String),
    /// 409: the request conflicts with what is stored.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 409: changed by someone else since it was read (`If-Match`); the
    /// answer carries the stored record.
    #[error("edit conflict: {0}")]
    EditConflict(String, serde_json::Value),
    /// 413: the body is larger than this endpoint takes.
    #[error("payload too large: {0}")]
    TooLarge(String),
    /// 415: the body is not of a type this endpoint reads.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 422: the body's type is right but its content cannot be used as a
    /// whole (unknown encoding, unrecognised CSV header, a snapshot with
    /// unreadable rows); nothing of it was applied.
    #[error("unprocessable")]
    Unprocessable(Vec<FieldError>),
    /// 429: too many requests from this client or for this person; retry
    /// after the given seconds.
    #[error("too many requests: {0}")]
    TooMany(String, u64),
    /// 503: not now; the client may retry after the given seconds.
    #[error("unavailable: {0}")]
    Unavailable(String, u64),
    /// 500: logged in full, answered generically.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::BadCredentials(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict(_) | ApiError::EditConflict(..) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(..) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation",
            ApiError::Unauthorized | ApiError::BadCredentials(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::RequestTimeout(_) => "request-timeout",
            ApiError::Conflict(_) => "conflict",
            ApiError::EditConflict(..) => "edit-conflict",
            ApiError::TooLarge(_) => "too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooMany(..) => "too-many-requests",
            ApiError::Unavailable(..) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let (detail, errors) = match self {
            ApiError::Validation(errors) | ApiError::Unprocessable(errors) => {
                let detail = errors
                    .iter()
                    .take(5)
                    .map(|e| match e.line {
                        Some(line) => format!("line {line}, {}: {}", e.field, e.message),
                        None => format!("{}: {}", e.field, e.message),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                (detail, errors.clone())
            }
            ApiError::Unauthorized => (
                "a valid bearer token is required (Authorization: Bearer …)".into(),
                vec![],
            ),
            ApiError::Forbidden(m)
            | ApiError::BadCredentials(m)
            | ApiError::EditConflict(m, _)
            | ApiError::NotFound(m)
            | ApiError::RequestTimeout(m)
            | ApiError::Conflict(m)
            | ApiError::TooLarge(m)
            | ApiError::TooMany(m, _)
            | ApiError::Unavailable(m, _)
            | ApiError::UnsupportedMediaType(m) => (m.clone(), vec![]),
            ApiError::Internal(_) => (
                "the server could not complete the request; nothing was changed if no answer said so"
                    .into(),
                vec![],
            ),
        };
        Problem {
            kind: format!("urn:anpi:problem:{}", self.slug()),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
            current: match self {
                ApiError::EditConflict(_, current) => Some(current.clone()),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let mut response = (self.status(), Json(self.to_problem())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // 0: no time to name (a throttle that lifts when the client's own
        // record changes, not with time).
        if let ApiError::Unavailable(_, seconds) | ApiError::TooMany(_, seconds) = self
            && seconds > 0
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if matches!(self, ApiError::Unauthorized | ApiError::BadCredentials(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    /// A database that cannot be reached now is a 503 the client may retry;
    /// anything else is logged and answered generically.
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::Unavailable(
                "the database cannot be reached right now; nothing was changed, try again shortly"
                    .into(),
                5,
            )
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(errors) => ApiError::Validation(errors),
            DomainError::Unusable(errors) => ApiError::Unprocessable(errors),
            DomainError::Unauthorized => ApiError::Unauthorized,
            DomainError::Forbidden(m) => ApiError::Forbidden(m),
            DomainError::Throttled(m) => ApiError::TooMany(m, 0),
            DomainError::NotFound(m) => ApiError::NotFound(m),
            DomainError::Conflict(m) => ApiError::Conflict(m),
            DomainError::EditConflict { message, current } => {
                ApiError::EditConflict(message, current)
            }
            DomainError::Busy(m, seconds) => ApiError::Unavailable(m, seconds),
            DomainError::Store(e) => e.into(),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(r.body_text())
        } else if body_timed_out(&r) {
            ApiError::RequestTimeout(
                "the body did not arrive in time; send it again, all at once".into(),
            )
        } else {
            ApiError::field("body", r.body_text())
        }
    }
}

/// Whether reading the body failed at its deadline (set in `http::router`).
pub(crate) fn body_timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source())
        .any(|e| e.is::<tower_http::timeout::TimeoutError>())
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::field("query", r.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("send the body as application/json".into())
            }
            other => ApiError::field("body", other.body_text()),
        }
    }
}

/// The answer for paths that match no route.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /v1/openapi.json".into())
}
