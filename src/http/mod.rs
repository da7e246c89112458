//! The HTTP surface: one router per resource merged here, request metrics,
//! health checks, the OpenAPI document and the embedded web UI.

mod aid;
mod alerts;
mod announcements;
mod assets;
mod auth;
mod checkins;
mod extract;
mod health;
mod incidents;
mod live;
mod pfif;
pub mod problem;
pub mod server;
mod session;
pub mod shelters;
mod state;
mod supply;
mod ui;

pub use state::{AppState, Limits};

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyDeadlineLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use self::problem::ApiError;

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
         (name = "aid", description = "Requests for help, offers, claims and moderation (docs/aid.md)"),
         (name = "supply", description = "Supply distribution points: water, food, goods, bath, charging… (docs/supply.md)"),
         (name = "volunteers", description = "Volunteers a coordinator registers and suspends"),
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
        // `ANPI_METRICS_TOKEN`, for Prometheus.
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "metrics",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The whole application router, with its state.
pub fn router(state: AppState) -> Router {
    // Uploads (CSV, PFIF) read their own, larger allowance after the token
    // is checked (`extract::CsvBody`); every other body gets this one.
    let limits = state.limits;
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(shelters::router())
        .merge(incidents::router())
        .merge(checkins::router())
        .merge(pfif::router())
        .merge(announcements::router())
        .merge(alerts::router())
        .merge(aid::router())
        .merge(supply::router())
        .merge(session::router())
        .merge(ui::router())
        .merge(live::router())
        .merge(health::router())
        .split_for_parts();
    let openapi_json = describe_itself(openapi)
        .to_json()
        .expect("the OpenAPI document serialises");
    let app = api
        .route(
            "/v1/openapi.json",
            get(move || async move { ([("content-type", "application/json")], openapi_json) }),
        )
        .route_layer(middleware::from_fn(track_requests))
        .fallback(ui::serve_asset)
        .layer(middleware::from_fn(refuse_unreadable_uri))
        .layer(DefaultBodyLimit::max(limits.max_json_bytes))
        // A deadline for the whole body (answered 408 where it is read, see
        // `error.rs`): tower-http's `RequestBodyTimeoutLayer` bounds only the
        // pause between two pieces, which a body trickled a byte at a time
        // never exceeds.
        .layer(RequestBodyDeadlineLayer::new(limits.body_timeout))
        .layer(middleware::from_fn_with_state(
            limits.request_timeout,
            answer_in_time,
        ))
        .layer(CompressionLayer::new());
    let app = SECURITY_HEADERS.iter().fold(app, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ))
    });
    app.layer(TraceLayer::new_for_http()).with_state(state)
}

/// Headers on every answer that keep a page from being framed, sniffed or
/// made to run anything but its own scripts, and keep addresses (which may
/// carry an edit link's id) out of other sites' logs. The pages load only
/// their own files; images may be data: (the volunteer QR code) or https
/// (map tiles); the live socket is on this origin.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

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
    answers_every_route_can_give(&mut openapi);
    openapi
}

/// Answers that come from layers rather than handlers, added to every
/// operation they can reach so the document does not under-promise: 400 for
/// a path or query that is not text (`refuse_unreadable_uri`), 413 for a body
/// over its limit and 415 for a body of another type.
fn answers_every_route_can_give(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::response::ResponseBuilder;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            responses.entry("400".into()).or_insert_with(|| {
                problem("The path or query is not UTF-8 text, or holds a NUL character")
            });
            if operation.request_body.is_some() {
                responses
                    .entry("413".into())
                    .or_insert_with(|| problem("The body is larger than this endpoint takes"));
                responses
                    .entry("415".into())
                    .or_insert_with(|| problem("The body is not of the type this endpoint reads"));
            }
        }
    }
}

/// A path or query that does not decode to UTF-8 text, or that holds a NUL
/// (U+0000, which PostgreSQL cannot store and no person types), is refused
/// here for every route alike, as problem+json naming which part is wrong.
async fn refuse_unreadable_uri(request: Request, next: Next) -> Response {
    let uri = request.uri();
    for (part, raw) in [("path", Some(uri.path())), ("query", uri.query())] {
        let Some(raw) = raw else { continue };
        let decoded = percent_encoding::percent_decode_str(raw);
        let message = match decoded.decode_utf8() {
            Err(_) => "is not UTF-8 text once percent-decoded",
            Ok(text) if text.contains('\0') => "must not contain the NUL character (%00)",
            Ok(_) => continue,
        };
        return ApiError::field(part, message).into_response();
    }
    next.run(request).await
}

/// Answers 503 with Retry-After when a request takes longer than `limit`.
/// The live upgrade is left out: its answer is immediate, and the
/// WebSocket it opens lives on in a task of its own.
async fn answer_in_time(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/v1/live" {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(
            format!("no answer within {} s; retry later", limit.as_secs()),
            5,
        )
        .into_response(),
    }
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::Service;

    use super::*;

    #[tokio::test]
    async fn a_late_answer_is_a_503_with_retry_after_but_not_for_the_live_upgrade() {
        let slow = |ms| move || async move { tokio::time::sleep(Duration::from_millis(ms)).await };
        let mut router = Router::new()
            .route("/slow", get(slow(30_000)))
            .route("/v1/live", get(slow(300)))
            .layer(middleware::from_fn_with_state(
                Duration::from_millis(50),
                answer_in_time,
            ));
        let get = |path| Request::get(path).body(Body::empty()).unwrap();

        let late = router.call(get("/slow")).await.unwrap();
        assert_eq!(late.status(), 503);
        assert_eq!(late.headers()["retry-after"], "5");
        assert_eq!(late.headers()["content-type"], "application/problem+json");

        let live = router.call(get("/v1/live")).await.unwrap();
        assert_eq!(live.status(), 200);
    }
}
