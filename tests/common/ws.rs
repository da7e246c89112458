//! A real WebSocket client (tokio-tungstenite) speaking the live protocol.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame before it fails (a guard against a
/// hang, not a performance assertion).
const PATIENCE: Duration = Duration::from_secs(15);

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Connects to `/v1/live` of the service at `base` (`http://host:port`).
    pub async fn connect(base: &str) -> Ws {
        Self::try_connect(base).await.expect("WebSocket connects")
    }

    pub async fn try_connect(base: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let url = format!("{}/v1/live", base.replacen("http://", "ws://", 1));
        let (stream, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Ws { stream })
    }

    pub async fn send(&mut self, command: Value) {
        self.send_text(&command.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("send a frame");
    }

    /// The next JSON frame (pings are answered by the library and skipped).
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a frame within the patience limit")
                .expect("the socket is open")
                .expect("a readable frame");
            match msg {
                Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
                Message::Close(frame) => panic!("closed by the server: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next JSON frame if one comes within `patience`; `Err` when the
    /// socket is closed or broken (for clients that reconnect).
    pub async fn next_within(&mut self, patience: Duration) -> Result<Option<Value>, String> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err("the socket ended".into()),
                Ok(Some(Err(e))) => return Err(e.to_string()),
                Ok(Some(Ok(msg))) => msg,
            };
            match msg {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .map_err(|e| format!("not JSON: {e}"));
                }
                Message::Close(frame) => return Err(format!("closed by the server: {frame:?}")),
                _ => continue,
            }
        }
    }

    /// The next frame, which must have this `op`.
    pub async fn expect(&mut self, op: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["op"], op, "expected {op}, got {frame}");
        frame
    }

    /// Subscribes and returns the `subscribed` reply.
    pub async fn subscribe(&mut self, command: Value) -> Value {
        let mut command = command;
        command["op"] = json!("subscribe");
        self.send(command).await;
        self.expect("subscribed").await
    }

    /// Reads until the server closes; the close code, if one was sent.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(PATIENCE, self.stream.next()).await {
                Err(_) => panic!("the server did not close the socket"),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code.into()),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}
