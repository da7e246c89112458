//! What goes through a connection's bounded queue to its writer: events the
//! fan-out hands over, the reader's replies and catch-ups, pings and the
//! close. Shared by the reader (`conn`), the hub and the writer.

use std::sync::Arc;

use serde::Deserialize;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use super::broker::{Frame, Position};

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
