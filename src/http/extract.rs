//! Extractors whose failures are problem+json answers naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// JSON body; a type error names the JSON path of the field at fault.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = content_type(&req).is_some_and(|ct| ct == "application/json");
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." { "body".to_owned() } else { path };
                ApiError::Validation(vec![FieldError::new(field, e.into_inner().to_string())])
            })
    }
}

/// A CSV upload (`text/csv`, any charset parameter), as raw bytes: the
/// importer detects UTF-8 or Shift_JIS itself, as municipal files say neither.
pub struct CsvBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for CsvBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if content_type(&req).is_none_or(|ct| ct != "text/csv") {
            return Err(ApiError::UnsupportedMediaType(
                "send the file as text/csv (UTF-8 or Shift_JIS)".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await?;
        Ok(CsvBody(bytes))
    }
}

/// The media type without parameters, lower-cased.
fn content_type(req: &Request) -> Option<String> {
    let value = req.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}
