//! One WebSocket connection: the reader (commands, catch-ups, server pings)
//! and, beside it, the writer task (`super::writer`) that drains the
//! connection's bounded queue (`super::queue`) in batches. tungstenite
//! parses what the client sends; the writer owns the sending half.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::channel::{Channel, MAX_RADIUS_M};
use super::hub::Subscriber;
use super::queue::{Caught, Out, Since};
pub use super::writer::CLOSE_TOO_SLOW;
use super::writer::write_loop;
use super::{Admission, Node};
use crate::domain::shelter::LatLon;

/// Channels one connection may hold.
pub const MAX_CHANNELS: usize = 500;

/// A client command.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Command {
    Subscribe {
        #[serde(default)]
        channels: Vec<String>,
        near: Option<Near>,
        #[serde(default)]
        since: HashMap<String, Since>,
    },
    Unsubscribe {
        #[serde(default)]
        channels: Vec<String>,
    },
    Ping,
}

#[derive(Deserialize)]
struct Near {
    lat: f64,
    lon: f64,
    radius_m: f64,
}

/// The client's side of the protocol as tungstenite parses it.
pub trait Incoming:
    futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin + Send
{
}
impl<S> Incoming for S where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin + Send
{
}

/// Serves one upgraded socket until either side ends it: `stream` is what
/// the client sends, `socket` the sending half.
pub async fn run<W>(node: Node, mut stream: impl Incoming, socket: W, admission: Admission)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let conn = admission.conn;
    let (queue, rx) = mpsc::channel(node.settings().queue);
    let overflow = CancellationToken::new();
    let done = CancellationToken::new();
    let (recover_tx, mut recover_rx) = mpsc::unbounded_channel();
    let mut writer = tokio::spawn(write_loop(
        socket,
        rx,
        overflow.clone(),
        done.clone(),
        recover_tx.clone(),
        node.settings().queue,
    ));
    let mut session = Session {
        me: Subscriber {
            conn,
            queue,
            overflow,
        },
        node: node.clone(),
        channels: HashMap::new(),
        recover: recover_tx,
    };
    let ping_every = node.settings().ping;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    let mut writer_ended = false;
    let mut goodbye = None;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    session.command(text.as_str()).await;
                }
                Some(Ok(Message::Binary(_))) => {
                    last_heard = Instant::now();
                    session.error(&Value::Null, "binary frames are not understood; send JSON text").await;
                }
                Some(Ok(Message::Ping(payload))) => {
                    last_heard = Instant::now();
                    let _ = session.me.queue.try_send(Out::Pong(payload));
                }
                Some(Ok(Message::Close(frame))) => {
                    // Echo the client's code (RFC 6455 §5.5.1).
                    let code = frame.map_or(1000, |f| u16::from(f.code));
                    goodbye = Some((code, ""));
                    break;
                }
                Some(Err(e)) => {
                    tracing::debug!(conn, error = %e, "cannot read the client; closing");
                    goodbye = close_for(&e);
                    break;
                }
                None => break,
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            Some((channel, since)) = recover_rx.recv() => session.catch_up_again(channel, since).await,
            _ = ping.tick() => {
                if last_heard.elapsed() > ping_every * 3 {
                    tracing::debug!(conn, "no answer to pings; closing");
                    break;
                }
                let _ = session.me.queue.try_send(Out::Ping);
            }
            _ = &mut writer => {
                writer_ended = true;
                break;
            }
        }
    }
    session.leave().await;
    if !writer_ended {
        // Let the writer say goodbye (a close frame) when there is one to say.
        let saying = match goodbye {
            Some((code, reason)) => session.me.queue.try_send(Out::Close(code, reason)).is_ok(),
            None => session.me.overflow.is_cancelled(),
        };
        // A finished JoinHandle must not be polled again: stop and await the
        // writer only when it has not finished saying goodbye.
        let said = saying
            && tokio::time::timeout(Duration::from_secs(2), &mut writer)
                .await
                .is_ok();
        if !said {
            done.cancel();
            let _ = writer.await;
        }
    }
    drop(admission);
}

/// The close code and reason for a frame tungstenite could not read, or
/// `None` when the client is simply gone (end of stream, reset) and there is
/// no one to tell.
fn close_for(error: &tungstenite::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::{Error, ProtocolError};
    match error {
        Error::Capacity(_) => Some((CloseCode::Size.into(), "message too big")),
        Error::Utf8(_) => Some((CloseCode::Invalid.into(), "text is not valid UTF-8")),
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        Error::Protocol(_) => Some((CloseCode::Protocol.into(), "protocol error")),
        _ => None,
    }
}

/// The reading half of the socket, for tungstenite. It also answers pings
/// and closes by writing; on this connection the writer task does that (it
/// owns the sending half), so what tungstenite writes here is dropped.
pub struct ReadOnly<R>(pub R);

impl<R: AsyncRead + Unpin> AsyncRead for ReadOnly<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadOnly<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The reader's side of a connection.
struct Session {
    me: Subscriber,
    node: Node,
    channels: HashMap<Arc<str>, Channel>,
    recover: mpsc::UnboundedSender<(Arc<str>, Since)>,
}

impl Session {
    async fn command(&mut self, text: &str) {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return self.error(&Value::Null, &format!("not JSON: {e}")).await,
        };
        let id = value.get("id").cloned().unwrap_or(Value::Null);
        let command: Command = match serde_json::from_value(value) {
            Ok(c) => c,
            Err(e) => return self.error(&id, &format!("bad command: {e}")).await,
        };
        match command {
            Command::Subscribe {
                channels,
                near,
                since,
            } => self.subscribe(&id, channels, near, since).await,
            Command::Unsubscribe { channels } => self.unsubscribe(&id, channels).await,
            Command::Ping => self.reply(with_id(json!({"op": "pong"}), &id)).await,
        }
    }

    async fn subscribe(
        &mut self,
        id: &Value,
        names: Vec<String>,
        near: Option<Near>,
        since: HashMap<String, Since>,
    ) {
        let mut wanted = Vec::new();
        for name in &names {
            match Channel::parse(name) {
                Ok(c) => wanted.push(c),
                Err(m) => return self.error(id, &format!("channels: {m}")).await,
            }
        }
        if let Some(near) = near {
            let at = match LatLon::new(near.lat, near.lon) {
                Ok(at) => at,
                Err(m) => return self.error(id, &format!("near: {m}")).await,
            };
            if !(near.radius_m > 0.0 && near.radius_m <= MAX_RADIUS_M) {
                let m = format!("near.radius_m: must be more than 0 and at most {MAX_RADIUS_M}");
                return self.error(id, &m).await;
            }
            wanted.extend(Channel::cells_covering(at, near.radius_m));
        }
        if wanted.is_empty() {
            return self
                .error(id, "subscribe needs \"channels\" or \"near\"")
                .await;
        }
        let mut seen = HashSet::new();
        wanted.retain(|c| seen.insert(c.clone()));
        let new = wanted
            .iter()
            .filter(|c| !self.channels.contains_key(c.to_string().as_str()))
            .count();
        if self.channels.len() + new > MAX_CHANNELS {
            let m = format!("at most {MAX_CHANNELS} channels per connection");
            return self.error(id, &m).await;
        }

        let mut caught = Vec::with_capacity(wanted.len());
        for channel in wanted {
            let name: Arc<str> = Arc::from(channel.to_string());
            if self
                .me
                .queue
                .send(Out::Opening(name.clone()))
                .await
                .is_err()
            {
                return;
            }
            let joined = self.node.join(&channel, &name, &self.me).await;
            let result = match joined {
                Ok(()) => {
                    self.channels.insert(name.clone(), channel.clone());
                    self.node.catch_up(&channel, since.get(&*name)).await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(c) => caught.push((name, c)),
                Err(e) => {
                    tracing::warn!(error = %e, "subscribe failed");
                    for (name, _) in caught {
                        self.drop_channel(&name).await;
                    }
                    self.drop_channel(&name).await;
                    let m =
                        "live updates are unavailable right now; subscribe again in a few seconds";
                    return self.error(id, m).await;
                }
            }
        }
        let listed: Vec<Value> = caught
            .iter()
            .map(|(name, c)| {
                let (position, recovered) = match c {
                    Caught::Replay { position, .. } => (position, true),
                    Caught::Fresh { position, .. } => (position, false),
                };
                json!({"channel": &**name, "seq": position.seq, "epoch": &*position.epoch, "recovered": recovered})
            })
            .collect();
        self.reply(with_id(json!({"op": "subscribed", "channels": listed}), id))
            .await;
        for (name, c) in caught {
            let _ = self.me.queue.send(Out::Caught(name, Box::new(c))).await;
        }
    }

    async fn unsubscribe(&mut self, id: &Value, names: Vec<String>) {
        let mut gone = Vec::new();
        for name in names {
            if self.channels.contains_key(name.as_str()) {
                self.drop_channel(name.as_str()).await;
                gone.push(name);
            }
        }
        self.reply(with_id(json!({"op": "unsubscribed", "channels": gone}), id))
            .await;
    }

    /// The writer found a gap (or was asked to check) on a channel.
    async fn catch_up_again(&mut self, name: Arc<str>, since: Since) {
        let Some(channel) = self.channels.get(&name).cloned() else {
            return;
        };
        match self.node.catch_up(&channel, Some(&since)).await {
            Ok(c) => {
                let _ = self.me.queue.send(Out::Caught(name, Box::new(c))).await;
            }
            Err(e) => {
                // The broker or the database is away; try again shortly. The
                // writer holds this channel's events meanwhile.
                tracing::debug!(error = %e, channel = %name, "catch-up failed; retrying");
                let recover = self.recover.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = recover.send((name, since));
                });
            }
        }
    }

    async fn drop_channel(&mut self, name: &str) {
        let channel = self.channels.remove(name);
        let name: Arc<str> = Arc::from(name);
        let _ = self.me.queue.try_send(Out::Closed(name.clone()));
        if let Some(channel) = channel {
            self.node.leave(&channel, &name, self.me.conn).await;
        } else {
            self.node.leave_hub_only(&name, self.me.conn);
        }
    }

    async fn leave(&mut self) {
        let all: Vec<(Arc<str>, Channel)> = self.channels.drain().collect();
        for (name, channel) in all {
            self.node.leave(&channel, &name, self.me.conn).await;
        }
    }

    async fn reply(&self, value: Value) {
        let _ = self
            .me
            .queue
            .send(Out::Reply(Utf8Bytes::from(value.to_string())))
            .await;
    }

    async fn error(&self, id: &Value, message: &str) {
        self.reply(with_id(json!({"op": "error", "message": message}), id))
            .await;
    }
}

fn with_id(mut reply: Value, id: &Value) -> Value {
    if !id.is_null() {
        reply["id"] = id.clone();
    }
    reply
}
