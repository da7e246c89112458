//! `GET /v1/live`: the WebSocket upgrade for live updates
//! (protocol: `docs/live-protocol.md`).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::problem::{ApiError, Problem};
use crate::live::conn::{self, ReadOnly};

/// Read buffer per socket: commands are small, and tungstenite's default
/// (128 KiB, allocated up front) would cost ~90 KB per idle connection.
const READ_BUFFER: usize = 4 * 1024;
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
pub async fn live(State(state): State<AppState>, mut request: Request) -> Response {
    let key = match upgrade_key(request.headers()) {
        Ok(key) => key,
        Err(message) => return ApiError::field("upgrade", message).into_response(),
    };
    let Some(admission) = state.live.admit() else {
        return ApiError::Unavailable(
            "this instance holds as many live connections as it may".into(),
            5,
        )
        .into_response();
    };
    // The upgrade is done here rather than by axum's `WebSocketUpgrade`
    // because the writer needs the raw socket: it writes each batch of
    // shared, already-encoded frames with one vectored write and keeps no
    // buffer of its own between batches (see `live::conn`).
    let upgrading = hyper::upgrade::on(&mut request);
    let node = state.live.clone();
    tokio::spawn(async move {
        let io = match upgrading.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        let (read, write) = tokio::io::split(io);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let reader =
            WebSocketStream::from_raw_socket(ReadOnly(read), Role::Server, Some(config)).await;
        conn::run(node, reader, write, admission).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The client's `Sec-WebSocket-Key`, when the request is a WebSocket
/// upgrade (RFC 6455 §4.2.1), else why not.
fn upgrade_key(headers: &HeaderMap) -> Result<String, &'static str> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return Err(
            "this is a WebSocket endpoint: send Connection: Upgrade and Upgrade: websocket",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|k| k.to_str().ok())
        .map(str::to_owned)
        .ok_or("Sec-WebSocket-Key is missing")
}
