//! `GET /v1/live`: the WebSocket upgrade for live updates
//! (protocol: `docs/live-protocol.md`).

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, Problem};

/// Read buffer per socket: commands are small, and tungstenite's default
/// (128 KiB, allocated up front) would cost ~90 KB per idle connection.
const READ_BUFFER: usize = 4 * 1024;
/// Frames are gathered up to this size before a write (plus the flush at
/// the end of each batch).
const WRITE_BUFFER: usize = 16 * 1024;
/// Past this much unwritten data the socket counts as stuck.
const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// Largest command accepted.
const MAX_MESSAGE: usize = 64 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(live))
}

/// Opens a live connection (WebSocket, JSON text frames): subscribe to
/// `area:`, `cell:` (or a place and radius), get a snapshot or the missed
/// events, then every change in order.
#[utoipa::path(
    get,
    path = "/v1/live",
    tag = "live",
    responses(
        (status = 101, description = "Switching to the live protocol"),
        (status = 503, description = "This instance holds as many connections as it may; try another or retry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn live(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let Some(admission) = state.live.admit() else {
        return ApiError::Unavailable(
            "this instance holds as many live connections as it may".into(),
            5,
        )
        .into_response();
    };
    let node = state.live.clone();
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| crate::live::conn::run(node, socket, admission))
}
