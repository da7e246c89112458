//! Liveness, readiness and Prometheus metrics.

use axum::Json;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::problem::{ApiError, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Value)))]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers; a load balancer sends traffic only while this is 200.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, body = Value),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "database not reachable");
        ApiError::Unavailable("the database is not reachable".into(), 5)
    })?;
    Ok(Json(
        json!({"status": "ready", "database": state.store.backend_name()}),
    ))
}

/// Prometheus text format: request counts and latency histograms per route.
/// With `ANPI_METRICS_TOKEN` set, only for `Authorization: Bearer <it>`;
/// without, only for clients on this machine (loopback).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security((), ("metrics" = [])),
    responses(
        (status = 200, content_type = "text/plain", body = String),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    match &state.metrics_token {
        Some(expected) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(crate::auth::bearer)
                .ok_or(ApiError::Unauthorized)?;
            // Compared as keyed hashes: equal length, no early exit on the secret.
            if state.secret.hash(given) != state.secret.hash(expected) {
                return Err(ApiError::Unauthorized);
            }
        }
        None if !peer.ip().is_loopback() => {
            return Err(ApiError::Forbidden(
                "metrics are served to this machine only; set ANPI_METRICS_TOKEN to scrape from elsewhere"
                    .into(),
            ));
        }
        None => {}
    }
    Ok((
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}
