//! The web UI, compiled into the binary from `ui/` so the service needs no
//! files at run time (see `assets` for which files are versioned and kept
//! long, and which are revalidated by ETag).

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::assets;
use super::problem::{ApiError, not_found};

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
    let asset = assets::get(path).or_else(|| {
        (!path.contains('.'))
            .then(|| assets::get(&format!("{path}.html")))
            .flatten()
    });
    let Some(asset) = asset else {
        // A person who followed a bad link gets a page in both languages
        // with the way back; a program gets problem+json.
        let wants_page = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
        if wants_page && let Some(page) = assets::get("404.html") {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                page.body.as_slice(),
            )
                .into_response();
        }
        return ApiError::NotFound(format!("no such page: /{path}")).into_response();
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == asset.etag.as_bytes())
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, asset.etag.as_str())],
        )
            .into_response();
    }
    // Asked for by its current version, a file never changes: kept a year.
    // Anything else (a page, an old version) is asked about again each time.
    let asked = uri
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("v=")));
    let cache = match (&asset.version, asked) {
        (Some(version), Some(asked)) if version == asked => "public, max-age=31536000, immutable",
        _ => "no-cache",
    };
    (
        [
            (header::CONTENT_TYPE, asset.mime.as_str()),
            (header::ETAG, asset.etag.as_str()),
            (header::CACHE_CONTROL, cache),
        ],
        asset.body.as_slice(),
    )
        .into_response()
}
