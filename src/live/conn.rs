//! One WebSocket connection: a reader (commands, catch-ups, server pings)
//! and a writer task that drains the connection's bounded queue in batches.
//!
//! tungstenite parses what the client sends; the writer owns the sending
//! half of the socket. It writes each batch — a frame header beside each
//! event's shared, already-encoded bytes — with one vectored write, so a
//! burst costs one syscall per batch, nothing is copied per subscriber, and
//! an idle connection keeps no write buffer at all (tungstenite's grows to
//! the largest message ever sent, a snapshot, and stays there).
//!
//! The writer owns, per subscribed channel, the last sequence number it
//! wrote. An event that does not follow it (a gap: a lost Redis message, a
//! broker reconnect, a new epoch) is held back and the reader asks the
//! broker for what is missing: the missed events while they are held, else
//! `resync` and a fresh snapshot. Nothing is ever skipped silently.

use std::collections::{HashMap, HashSet};
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Bytes, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::broker::{Frame, Position, now_us};
use super::channel::{Channel, MAX_RADIUS_M};
use super::hub::Subscriber;
use super::{Admission, Node};
use crate::domain::shelter::LatLon;

/// Close code for a client that could not keep up (4000–4999 are free for
/// applications). Its last sequence numbers let it resume with `since`.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Frames written per flush at most: enough to amortise the syscall, few
/// enough that one busy connection does not hog a worker thread.
const MAX_BATCH: usize = 64;
/// A batch smaller than this waits one turn of the scheduler for more: small
/// frames cost a syscall each, big ones amortise it themselves (and a writer
/// that yields falls behind a fast publisher sooner).
const COALESCE_BELOW: usize = 4096;
/// Frames a connection keeps room for between bursts.
const IDLE_BATCH: usize = 4;
/// A write that makes no progress for this long ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Channels one connection may hold.
pub const MAX_CHANNELS: usize = 500;

/// What goes into a connection's queue.
pub enum Out {
    /// A published event (shared bytes).
    Event(Arc<Frame>),
    /// A reply to a command.
    Reply(Utf8Bytes),
    /// A subscription starts: hold its events until it has caught up.
    Opening(Arc<str>),
    /// What the subscription needs before live events (boxed: it is rare and
    /// large, and the queue's slots are as big as its largest item).
    Caught(Arc<str>, Box<Caught>),
    /// The subscription ended.
    Closed(Arc<str>),
    /// The broker link was restored: make sure nothing was missed.
    Check(Arc<str>),
    Ping,
    /// The answer to a client's ping.
    Pong(Bytes),
    /// Say goodbye with this close code and reason, after what is queued,
    /// then stop.
    Close(u16, &'static str),
}

/// How a subscription catches up.
pub enum Caught {
    /// The events after `start`, all still held.
    Replay {
        start: u64,
        position: Position,
        frames: Vec<Arc<Frame>>,
    },
    /// A fresh snapshot; `resync` when the client had asked for missed
    /// events that are no longer held.
    Fresh {
        resync: bool,
        position: Position,
        snapshot: Utf8Bytes,
    },
}

/// "I have seen up to `seq`" (of the stream named `epoch`, when known).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Since {
    Seq(u64),
    At { seq: u64, epoch: Option<String> },
}

impl Since {
    pub fn seq(&self) -> u64 {
        match self {
            Since::Seq(seq) | Since::At { seq, .. } => *seq,
        }
    }
    pub fn epoch(&self) -> Option<&str> {
        match self {
            Since::Seq(_) => None,
            Since::At { epoch, .. } => epoch.as_deref(),
        }
    }
}

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

/// Per channel, what the writer has written.
struct Stream {
    epoch: Arc<str>,
    last: u64,
    /// Events held while the channel catches up.
    held: Option<Vec<Arc<Frame>>>,
}

/// A frame ready for the socket: its header, and its payload (for events,
/// the bytes every subscriber shares).
struct Outgoing {
    header: [u8; MAX_HEADER],
    header_len: u8,
    payload: Bytes,
}

/// A server frame's header: 2 bytes, plus 8 for the longest length; no mask.
const MAX_HEADER: usize = 10;

impl Outgoing {
    fn new(opcode: OpCode, payload: Bytes) -> Outgoing {
        let mut header = [0u8; MAX_HEADER];
        let mut at = std::io::Cursor::new(&mut header[..]);
        FrameHeader {
            opcode,
            ..FrameHeader::default()
        }
        .format(payload.len() as u64, &mut at)
        .expect("an unmasked header fits in 10 bytes");
        Outgoing {
            header_len: at.position() as u8,
            header,
            payload,
        }
    }

    fn text(text: Utf8Bytes) -> Outgoing {
        Outgoing::new(OpCode::Data(Data::Text), text.into())
    }

    fn close(code: u16, reason: &str) -> Outgoing {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        Outgoing::new(OpCode::Control(Control::Close), payload.into())
    }
}

/// Writes the frames with as few (vectored) writes as the socket allows.
async fn write_frames<W: AsyncWrite + Unpin>(
    socket: &mut W,
    frames: &[Outgoing],
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = frames
        .iter()
        .flat_map(|f| {
            [
                IoSlice::new(&f.header[..f.header_len as usize]),
                IoSlice::new(&f.payload),
            ]
        })
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = socket.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    socket.flush().await
}

struct Writer {
    streams: HashMap<Arc<str>, Stream>,
    recover: mpsc::UnboundedSender<(Arc<str>, Since)>,
    /// Most events held per catching-up channel before the client counts as
    /// too slow.
    hold_limit: usize,
    overflowed: bool,
    /// The close frame to end with: its code and reason.
    closing: Option<(u16, &'static str)>,
    batch: Vec<Outgoing>,
    /// Publish times of the events in `batch`, for the latency histogram.
    stamps: Vec<i64>,
}

impl Writer {
    fn take(&mut self, item: Out) {
        match item {
            Out::Event(frame) => self.event(frame),
            Out::Reply(bytes) => self.batch.push(Outgoing::text(bytes)),
            Out::Ping => self
                .batch
                .push(Outgoing::new(OpCode::Control(Control::Ping), Bytes::new())),
            Out::Pong(payload) => self
                .batch
                .push(Outgoing::new(OpCode::Control(Control::Pong), payload)),
            Out::Close(code, reason) => self.closing = Some((code, reason)),
            Out::Opening(name) => {
                let stream = self.streams.entry(name).or_insert_with(|| Stream {
                    epoch: Arc::from(""),
                    last: 0,
                    held: None,
                });
                stream.held = Some(Vec::new());
            }
            Out::Caught(name, caught) => self.caught(name, *caught),
            Out::Closed(name) => {
                self.streams.remove(&name);
            }
            Out::Check(name) => {
                if let Some(stream) = self.streams.get_mut(&name)
                    && stream.held.is_none()
                {
                    stream.held = Some(Vec::new());
                    let since = Since::At {
                        seq: stream.last,
                        epoch: Some(stream.epoch.to_string()),
                    };
                    let _ = self.recover.send((name, since));
                }
            }
        }
    }

    fn event(&mut self, frame: Arc<Frame>) {
        let Some(stream) = self.streams.get_mut(&frame.channel) else {
            return;
        };
        if let Some(held) = &mut stream.held {
            if held.len() >= self.hold_limit {
                self.overflowed = true;
            } else {
                held.push(frame);
            }
            return;
        }
        let same_stream = frame.epoch == stream.epoch;
        if same_stream && frame.seq <= stream.last {
            return; // already written (replayed, then delivered live)
        }
        if !same_stream || frame.seq != stream.last + 1 {
            metrics::counter!("anpi_live_gaps_detected_total").increment(1);
            let since = Since::At {
                seq: stream.last,
                epoch: Some(stream.epoch.to_string()),
            };
            stream.held = Some(vec![frame.clone()]);
            let _ = self.recover.send((frame.channel.clone(), since));
            return;
        }
        stream.last = frame.seq;
        self.stamps.push(frame.ts_us);
        self.batch.push(Outgoing::text(frame.bytes.clone()));
    }

    fn caught(&mut self, name: Arc<str>, caught: Caught) {
        let Some(stream) = self.streams.get_mut(&name) else {
            return;
        };
        match caught {
            Caught::Replay {
                start,
                position,
                frames,
            } => {
                metrics::counter!("anpi_live_recoveries_total").increment(1);
                stream.epoch = position.epoch;
                stream.last = start;
                for f in frames {
                    if f.seq > stream.last {
                        stream.last = f.seq;
                        self.batch.push(Outgoing::text(f.bytes.clone()));
                    }
                }
            }
            Caught::Fresh {
                resync,
                position,
                snapshot,
            } => {
                if resync {
                    metrics::counter!("anpi_live_resyncs_total").increment(1);
                    let text = json!({"op": "resync", "channel": &*name}).to_string();
                    self.batch.push(Outgoing::text(Utf8Bytes::from(text)));
                }
                self.batch.push(Outgoing::text(snapshot));
                stream.epoch = position.epoch;
                stream.last = position.seq;
            }
        }
        let held = stream.held.take().unwrap_or_default();
        for frame in held {
            self.event(frame);
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut socket: W,
    mut rx: mpsc::Receiver<Out>,
    overflow: CancellationToken,
    done: CancellationToken,
    recover: mpsc::UnboundedSender<(Arc<str>, Since)>,
    hold_limit: usize,
) {
    let deliveries = metrics::counter!("anpi_live_deliveries_total");
    let latency = metrics::histogram!("anpi_live_delivery_latency_seconds");
    let per_flush = metrics::histogram!("anpi_live_frames_per_flush");
    let depth = metrics::histogram!("anpi_live_queue_depth");
    let mut w = Writer {
        streams: HashMap::new(),
        recover,
        hold_limit,
        overflowed: false,
        closing: None,
        batch: Vec::new(),
        stamps: Vec::new(),
    };
    // Made once and polled only when the queue or the socket makes the
    // writer wait: a delivery that finds both ready touches neither token
    // (each poll of a token takes its lock). A tripped token is still seen
    // at the writer's next wait, after at most a queue's worth of frames,
    // all of them in order.
    let mut overflowed = std::pin::pin!(overflow.cancelled());
    let mut ended = std::pin::pin!(done.cancelled());
    loop {
        let first = tokio::select! {
            biased;
            item = rx.recv() => match item {
                Some(item) => item,
                None => return,
            },
            () = &mut overflowed => break,
            () = &mut ended => return,
        };
        depth.record(rx.len() as f64);
        w.take(first);
        if rx.is_empty() && w.batch.iter().map(|f| f.payload.len()).sum::<usize>() < COALESCE_BELOW
        {
            // Let the fan-out that woke us queue what else is on its way (a
            // burst, the next event of a busy channel): one write for all.
            tokio::task::yield_now().await;
        }
        while w.batch.len() < MAX_BATCH && w.closing.is_none() {
            match rx.try_recv() {
                Ok(item) => w.take(item),
                Err(_) => break,
            }
        }
        if w.overflowed {
            overflow.cancel();
            break;
        }
        if let Some((code, reason)) = w.closing {
            // After what the client was owed.
            w.batch.push(Outgoing::close(code, reason));
        }
        if w.batch.is_empty() {
            continue;
        }
        let frames = w.batch.len();
        let written = tokio::select! {
            biased;
            r = tokio::time::timeout(WRITE_TIMEOUT, write_frames(&mut socket, &w.batch)) => r,
            () = &mut overflowed => break,
            () = &mut ended => return,
        };
        if !matches!(written, Ok(Ok(()))) || w.closing.is_some() {
            return;
        }
        let now = now_us();
        deliveries.increment(w.stamps.len() as u64);
        per_flush.record(frames as f64);
        for ts in w.stamps.drain(..) {
            latency.record((now - ts).max(0) as f64 / 1e6);
        }
        // Idle connections keep room for a few frames, not for a burst.
        w.batch.clear();
        w.batch.shrink_to(IDLE_BATCH);
        w.stamps.shrink_to(IDLE_BATCH);
    }
    // Too slow: say so, with a code the client can act on, if the socket
    // still takes a frame at all.
    metrics::counter!("anpi_live_slow_clients_total").increment(1);
    let close = [Outgoing::close(
        CLOSE_TOO_SLOW,
        "too slow: reconnect and subscribe with since",
    )];
    let _ = tokio::time::timeout(Duration::from_secs(1), write_frames(&mut socket, &close)).await;
}
