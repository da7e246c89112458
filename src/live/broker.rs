//! The broker: where an event gets its per-channel sequence number, where the
//! last events of each channel are kept for replay, and how events reach
//! every instance that has a subscriber. One trait, two implementations:
//! [`MemoryBroker`] (one process, the embedded default) and
//! [`super::redis::RedisBroker`] (any number of instances, Redis or Redis
//! Cluster).
//!
//! A broker hands what it receives to the node through an unbounded channel
//! of [`BrokerEvent`]s. It is unbounded because the node's dispatcher never
//! awaits anything slow (it only `try_send`s into connection queues), and a
//! bounded channel here would make Redis's reader stall.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::channel::Channel;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Publishing, subscribing and replaying, the same on one node and on many.
pub trait Broker: Send + Sync + 'static {
    /// Assigns the channel's next sequence number, keeps the event for
    /// replay and delivers it to every instance subscribed to the channel
    /// (this one included). `tail` is the end of the event's JSON object:
    /// `"kind":"…","data":…}`.
    fn publish<'a>(
        &'a self,
        channel: &'a Channel,
        tail: &'a str,
    ) -> BoxFuture<'a, Result<Position, BrokerError>>;

    /// Starts delivering the channel's events to this instance.
    fn subscribe<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Stops delivering the channel's events to this instance.
    fn unsubscribe<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// The channel's current position and, when `since` is given, the events
    /// after it that are still held (possibly not all of them: the caller
    /// checks that the first one follows `since`).
    fn history<'a>(
        &'a self,
        channel: &'a Channel,
        since: Option<u64>,
    ) -> BoxFuture<'a, Result<History, BrokerError>>;

    /// Answers when the broker is reachable.
    fn ping(&self) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// `memory`, `redis` or `redis-cluster`, for logs and metrics.
    fn name(&self) -> &'static str;
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("the broker is unavailable: {0}")]
    Unavailable(String),
}

/// What a broker hands to the node.
#[derive(Debug)]
pub enum BrokerEvent {
    /// An event published on a channel this instance subscribes to.
    Frame(Arc<Frame>),
    /// The connection to the broker was lost: events may have been missed.
    Disconnected,
}

/// Where a channel's stream stands: its last sequence number, and the epoch
/// that names this stream. A new epoch means the stream started over (its
/// broker lost its state), so sequence numbers from before mean nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    pub epoch: Arc<str>,
}

/// A channel's position and the held events after a given sequence number.
#[derive(Debug)]
pub struct History {
    pub position: Position,
    pub frames: Vec<Arc<Frame>>,
}

/// Bounds on the events kept for replay.
#[derive(Clone, Copy, Debug)]
pub struct HistoryLimits {
    /// Events kept per channel.
    pub size: usize,
    /// How long an event stays replayable.
    pub ttl: Duration,
}

/// One published event, encoded once: `bytes` is the exact text frame every
/// subscriber gets; the other fields are read from it once per instance.
#[derive(Debug)]
pub struct Frame {
    pub channel: Arc<str>,
    pub seq: u64,
    pub epoch: Arc<str>,
    /// When it was published, µs since the Unix epoch.
    pub ts_us: i64,
    pub bytes: Utf8Bytes,
}

#[derive(Deserialize)]
struct Head<'a> {
    channel: &'a str,
    seq: u64,
    epoch: &'a str,
    ts: i64,
}

impl Frame {
    /// Reads the head of an encoded event.
    pub fn parse(text: String) -> Result<Frame, serde_json::Error> {
        let head: Head = serde_json::from_str(&text)?;
        let (channel, seq, epoch, ts_us) = (
            Arc::from(head.channel),
            head.seq,
            Arc::from(head.epoch),
            head.ts,
        );
        Ok(Frame {
            channel,
            seq,
            epoch,
            ts_us,
            bytes: Utf8Bytes::from(text),
        })
    }

    /// Encodes an event. The Redis broker builds the same text in Lua.
    pub fn encode(channel: &str, seq: u64, epoch: &str, ts_us: i64, tail: &str) -> String {
        format!(
            r#"{{"op":"event","channel":"{channel}","seq":{seq},"epoch":"{epoch}","ts":{ts_us},{tail}"#
        )
    }
}

/// `"kind":"…","data":…}` for [`Broker::publish`].
pub fn event_tail(kind: &str, data: &str) -> String {
    format!(r#""kind":"{kind}","data":{data}}}"#)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A fresh epoch: 16 hex digits, random.
pub fn new_epoch() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source");
    hex::encode(bytes)
}

/// Everything in this process: the embedded default.
pub struct MemoryBroker {
    // A std Mutex: held for one counter increment, one deque push and one
    // non-blocking send, never across an await. Holding it while sending keeps
    // the node's view of each channel in sequence order.
    streams: Mutex<HashMap<Channel, Stream>>,
    subscribed: Mutex<HashSet<Channel>>,
    /// One epoch for the process: its history dies with it.
    epoch: Arc<str>,
    limits: HistoryLimits,
    events: UnboundedSender<BrokerEvent>,
}

#[derive(Default)]
struct Stream {
    seq: u64,
    held: VecDeque<Arc<Frame>>,
}

impl MemoryBroker {
    pub fn new(limits: HistoryLimits, events: UnboundedSender<BrokerEvent>) -> Self {
        Self {
            streams: Mutex::default(),
            subscribed: Mutex::default(),
            epoch: Arc::from(new_epoch()),
            limits,
            events,
        }
    }
}

impl Broker for MemoryBroker {
    fn publish<'a>(
        &'a self,
        channel: &'a Channel,
        tail: &'a str,
    ) -> BoxFuture<'a, Result<Position, BrokerError>> {
        Box::pin(async move {
            let subscribed = self
                .subscribed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(channel);
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            let stream = streams.entry(channel.clone()).or_default();
            stream.seq += 1;
            let name = channel.to_string();
            let ts_us = now_us();
            let text = Frame::encode(&name, stream.seq, &self.epoch, ts_us, tail);
            let frame = Arc::new(Frame {
                channel: Arc::from(name),
                seq: stream.seq,
                epoch: self.epoch.clone(),
                ts_us,
                bytes: Utf8Bytes::from(text),
            });
            stream.held.push_back(frame.clone());
            while stream.held.len() > self.limits.size {
                stream.held.pop_front();
            }
            if subscribed {
                let _ = self.events.send(BrokerEvent::Frame(frame));
            }
            Ok(Position {
                seq: stream.seq,
                epoch: self.epoch.clone(),
            })
        })
    }

    fn subscribe<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.subscribed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel.clone());
        Box::pin(async { Ok(()) })
    }

    fn unsubscribe<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.subscribed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(channel);
        Box::pin(async { Ok(()) })
    }

    fn history<'a>(
        &'a self,
        channel: &'a Channel,
        since: Option<u64>,
    ) -> BoxFuture<'a, Result<History, BrokerError>> {
        let oldest_kept = now_us() - self.limits.ttl.as_micros() as i64;
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let (seq, frames) = match streams.get(channel) {
            None => (0, Vec::new()),
            Some(stream) => (
                stream.seq,
                since
                    .map(|since| {
                        stream
                            .held
                            .iter()
                            .filter(|f| f.seq > since && f.ts_us >= oldest_kept)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
        };
        let history = History {
            position: Position {
                seq,
                epoch: self.epoch.clone(),
            },
            frames,
        };
        Box::pin(async move { Ok(history) })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async { Ok(()) })
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_numbers_keeps_and_delivers_in_order() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let limits = HistoryLimits {
            size: 3,
            ttl: Duration::from_secs(60),
        };
        let broker = MemoryBroker::new(limits, tx);
        let ch = Channel::parse("area:172022").unwrap();
        broker.subscribe(&ch).await.unwrap();
        for i in 1..=5 {
            let p = broker
                .publish(&ch, &event_tail("test", &i.to_string()))
                .await
                .unwrap();
            assert_eq!(p.seq, i);
        }
        for i in 1..=5 {
            let BrokerEvent::Frame(f) = rx.recv().await.unwrap() else {
                panic!()
            };
            assert_eq!(f.seq, i);
            let parsed = Frame::parse(f.bytes.as_str().to_owned()).unwrap();
            assert_eq!((parsed.seq, &*parsed.channel), (i, "area:172022"));
            let v: serde_json::Value = serde_json::from_str(f.bytes.as_str()).unwrap();
            assert_eq!(v["data"], i);
        }
        let h = broker.history(&ch, Some(1)).await.unwrap();
        assert_eq!(h.position.seq, 5);
        // Only the last three are held: 2 is gone, so a caller sees 3 first.
        assert_eq!(
            h.frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }
}
