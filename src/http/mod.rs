//! The HTTP surface: one router per resource merged here, request metrics,
//! health checks, the OpenAPI document and the embedded web UI.

mod announcements;
mod checkins;
mod extract;
mod health;
mod incidents;
mod live;
mod pfif;
pub mod server;
pub mod shelters;
mod ui;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "anpi",
        description = "安否 — disaster-response information hub: shelters, their live state, and the offices that run them."
    ),
    modifiers(&OfficialToken),
    tags((name = "shelters", description = "The shelter registry and live state"),
         (name = "incidents", description = "Incidents an office activates for its municipalities, check-ins, look-ups, PFIF"),
         (name = "announcements", description = "What an office tells everyone in its municipality"),
         (name = "live", description = "Live updates over WebSocket (docs/live-protocol.md)"),
         (name = "operations", description = "Health and metrics"))
)]
struct ApiDoc;

/// Officials authenticate with `Authorization: Bearer <token>` from `anpi token create`.
struct OfficialToken;

impl Modify for OfficialToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "official",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The whole application router, with its state.
pub fn router(state: AppState) -> Router {
    let upload_limit = state.limits.max_upload_bytes;
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(shelters::router())
        .merge(incidents::router())
        .merge(checkins::router())
        .merge(pfif::router())
        .merge(announcements::router())
        .merge(live::router())
        .merge(health::router())
        .split_for_parts();
    let openapi_json = describe_itself(openapi)
        .to_json()
        .expect("the OpenAPI document serialises");
    api.route(
        "/v1/openapi.json",
        get(move || async move { ([("content-type", "application/json")], openapi_json) }),
    )
    .route_layer(middleware::from_fn(track_requests))
    .fallback(ui::serve_asset)
    .layer(DefaultBodyLimit::max(upload_limit))
    .layer(CompressionLayer::new())
    .layer(TraceLayer::new_for_http())
    .with_state(state)
}

/// Adds the document's own route, which cannot be annotated like the others
/// (it serves what they produce).
fn describe_itself(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::response::ResponseBuilder;
    let operation = OperationBuilder::new()
        .summary(Some("This OpenAPI 3.1 document"))
        .tag("operations")
        .response(
            "200",
            ResponseBuilder::new().description("The document").build(),
        )
        .build();
    openapi
        .paths
        .add_path_operation("/v1/openapi.json", vec![HttpMethod::Get], operation);
    openapi
}

/// Counts and times every request by route template (never the raw path, so
/// ids do not explode the label set).
async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
