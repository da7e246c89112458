//! A connection's writer task: it owns the sending half of the socket and
//! writes each batch — a frame header beside each event's shared,
//! already-encoded bytes — with one vectored write, so a burst costs one
//! syscall per batch, nothing is copied per subscriber, and an idle
//! connection keeps no write buffer at all (tungstenite's grows to the
//! largest message ever sent, a snapshot, and stays there).
//!
//! The writer owns, per subscribed channel, the last sequence number it
//! wrote. An event that does not follow it (a gap: a lost Redis message, a
//! broker reconnect, a new epoch) is held back and the reader asks the
//! broker for what is missing: the missed events while they are held, else
//! `resync` and a fresh snapshot. Nothing is ever skipped silently.

use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::broker::{Frame, now_us};
use super::queue::{Caught, Out, Since};

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

pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
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
