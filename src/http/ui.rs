//! The web UI, compiled into the binary from `ui/` so the service needs no
//! files at run time. Assets carry an ETag: a phone on a bad link revalidates
//! with a few bytes instead of downloading again.

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use super::problem::{ApiError, not_found};

#[derive(RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// The background map the pages draw (tiles and their credit): the pages
/// work without it, as a list, when no tile can be reached.
#[utoipa::path(get, path = "/v1/map", tag = "operations",
    responses((status = 200, body = crate::config::MapConfig)))]
pub async fn map_config(
    axum::extract::State(state): axum::extract::State<super::AppState>,
) -> axum::Json<crate::config::MapConfig> {
    axum::Json(state.map.clone())
}

pub fn router() -> utoipa_axum::router::OpenApiRouter<super::AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(map_config))
}

pub async fn serve_asset(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("v1/") {
        return not_found().await.into_response();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    // Pages have short names too: /office is office.html.
    let asset = Assets::get(path).or_else(|| {
        (!path.contains('.'))
            .then(|| Assets::get(&format!("{path}.html")))
            .flatten()
    });
    let Some(asset) = asset else {
        // A person who followed a bad link gets a page in both languages
        // with the way back; a program gets problem+json.
        let wants_page = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
        if wants_page && let Some(page) = Assets::get("404.html") {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                page.data,
            )
                .into_response();
        }
        return ApiError::NotFound(format!("no such page: /{path}")).into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&asset.metadata.sha256_hash()[..16]));
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, asset.metadata.mimetype().to_owned()),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ],
        asset.data,
    )
        .into_response()
}
