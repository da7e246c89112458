//! Extractors whose failures are problem+json answers naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::AppState;
use super::problem::{ApiError, FieldError};

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
        refuse_nul(&bytes)?;
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

/// PostgreSQL cannot store U+0000 in text, and no person types it: a JSON
/// body with one anywhere is refused at the edge, naming where, so it never
/// reaches a batch with other people's writes in it. (A raw NUL is not valid
/// JSON at all; only the escape `\u0000` can carry one.)
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    if !bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Ok(());
    }
    // Rare: find the field, for the answer. An escaped backslash followed
    // by `u0000` is text, not a NUL, and passes.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(()); // the typed parse will name what is wrong
    };
    match nul_path(&value, String::new()) {
        Some(path) => Err(ApiError::field(
            if path.is_empty() { "body".into() } else { path },
            "must not contain the NUL character (U+0000)",
        )),
        None => Ok(()),
    }
}

/// The JSON path (`household[0].name`) of the first string holding a NUL.
fn nul_path(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0').then_some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                Some(path)
            } else {
                nul_path(v, path)
            }
        }),
        _ => None,
    }
}

/// A CSV upload (`text/csv`, any charset parameter), as raw bytes: the
/// importer detects UTF-8 or Shift_JIS itself, as municipal files say neither.
/// Up to `ANPI_MAX_UPLOAD_BYTES`; every other body is held to the small JSON
/// limit. Handlers take the official's token before this, so an anonymous
/// client never gets the large allowance.
pub struct CsvBody(pub Bytes);

impl FromRequest<AppState> for CsvBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if content_type(&req).is_none_or(|ct| ct != "text/csv") {
            return Err(ApiError::UnsupportedMediaType(
                "send the file as text/csv (UTF-8 or Shift_JIS)".into(),
            ));
        }
        Ok(CsvBody(upload(req, state).await?))
    }
}

/// An XML upload (PFIF), with the same allowance as [`CsvBody`].
pub struct XmlBody(pub Bytes);

impl FromRequest<AppState> for XmlBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Ok(XmlBody(upload(req, state).await?))
    }
}

/// The body, up to the upload limit.
async fn upload(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let limit = state.limits.max_upload_bytes;
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::TooLarge(format!("uploads are limited to {limit} bytes"))
            } else if super::problem::body_timed_out(&e) {
                ApiError::RequestTimeout(
                    "the file did not arrive in time; send it again, all at once".into(),
                )
            } else {
                ApiError::field("body", format!("the body could not be read: {e}"))
            }
        })
}

/// The media type without parameters, lower-cased.
fn content_type(req: &Request) -> Option<String> {
    let value = req.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}
