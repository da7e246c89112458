//! What can go wrong in a use case, said in the domain's words: a field that
//! is wrong, a right that is missing, a thing that is not there or in another
//! state. The HTTP layer turns a [`DomainError`] into a problem+json answer
//! (`http::problem`); the CLI prints it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// One field that failed validation, and why.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// The query parameter, JSON path or CSV column at fault.
    pub field: String,
    pub message: String,
    /// For errors in an uploaded file: the line (1 = header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            line: None,
        }
    }
}

/// Why a use case did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Some fields are wrong; each is named (HTTP 400).
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldError>),
    /// The content is well-formed but cannot be used as a whole (HTTP 422).
    #[error("unusable input: {0:?}")]
    Unusable(Vec<FieldError>),
    /// This needs a token, and none was given (HTTP 401).
    #[error("a token is needed")]
    Unauthorized,
    /// The one acting may not do this here (HTTP 403).
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// No such thing (HTTP 404).
    #[error("not found: {0}")]
    NotFound(String),
    /// It conflicts with what is stored (HTTP 409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Someone else changed it since the caller read it (HTTP 409, with
    /// what is stored now, so both can be shown side by side).
    #[error("edit conflict: {message}")]
    EditConflict {
        message: String,
        current: serde_json::Value,
    },
    /// Refused for what this actor did before (HTTP 429, no retry time:
    /// it lifts when the actor's record changes).
    #[error("throttled: {0}")]
    Throttled(String),
    /// Not now: retry after the given seconds (HTTP 503).
    #[error("busy: {0}")]
    Busy(String, u64),
    /// The store failed; nothing was changed unless an answer said so.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DomainError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> Self {
        DomainError::Store(e.into())
    }
}

impl From<anyhow::Error> for DomainError {
    fn from(e: anyhow::Error) -> Self {
        DomainError::Store(e.into())
    }
}
