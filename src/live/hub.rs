//! The hub: which local connections listen to which channel, and the
//! fan-out of one encoded frame to all of them.
//!
//! Fan-out never awaits: each connection has a bounded queue and the hub
//! `try_send`s into it. A full queue means the client is not keeping up; the
//! hub trips that connection's overflow token (its writer then closes it with
//! a clear close code) and goes on with the others, so one slow phone never
//! slows the rest.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::broker::Frame;
use super::queue::Out;

/// Shards of the channel map, so that subscribing to one channel does not
/// wait for a fan-out on another.
const SHARDS: usize = 32;

/// A connection as the hub sees it.
#[derive(Clone)]
pub struct Subscriber {
    pub conn: u64,
    pub queue: mpsc::Sender<Out>,
    /// Tripped when the queue is full.
    pub overflow: CancellationToken,
}

/// Channel name → its local subscribers.
type Shard = Mutex<HashMap<Arc<str>, Vec<Subscriber>>>;

pub struct Hub {
    hasher: RandomState,
    // std Mutexes: a fan-out holds one for a loop of non-blocking sends and
    // nothing awaits while holding it.
    shards: Box<[Shard]>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Hub {
    fn shard(&self, channel: &str) -> &Shard {
        &self.shards[self.hasher.hash_one(channel) as usize % SHARDS]
    }

    /// Adds a subscriber; true when it is the channel's first on this
    /// instance (the broker must then be subscribed).
    pub fn add(&self, channel: &Arc<str>, subscriber: Subscriber) -> bool {
        let mut shard = self
            .shard(channel)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let list = shard.entry(channel.clone()).or_default();
        if list.iter().any(|s| s.conn == subscriber.conn) {
            return false;
        }
        list.push(subscriber);
        list.len() == 1
    }

    /// Removes a subscriber; true when it was the channel's last here.
    pub fn remove(&self, channel: &str, conn: u64) -> bool {
        let mut shard = self
            .shard(channel)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(list) = shard.get_mut(channel) else {
            return false;
        };
        let before = list.len();
        list.retain(|s| s.conn != conn);
        if list.is_empty() {
            shard.remove(channel);
            return before > 0;
        }
        false
    }

    /// Queues the frame for every local subscriber of its channel; returns
    /// how many got it.
    pub fn broadcast(&self, frame: &Arc<Frame>) -> usize {
        let shard = self
            .shard(&frame.channel)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(list) = shard.get(&frame.channel) else {
            return 0;
        };
        let mut queued = 0;
        for s in list {
            match s.queue.try_send(Out::Event(frame.clone())) {
                Ok(()) => queued += 1,
                Err(mpsc::error::TrySendError::Full(_)) => s.overflow.cancel(),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        queued
    }

    /// Asks every local subscriber to check it has missed nothing (after the
    /// broker link was lost and restored).
    pub fn check_all(&self) {
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (channel, list) in shard.iter() {
                for s in list {
                    if let Err(mpsc::error::TrySendError::Full(_)) =
                        s.queue.try_send(Out::Check(channel.clone()))
                    {
                        s.overflow.cancel();
                    }
                }
            }
        }
    }

    /// Channels with at least one local subscriber.
    pub fn channels(&self) -> Vec<Arc<str>> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
