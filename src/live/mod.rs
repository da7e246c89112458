//! Live updates: the node that ties the local [`hub::Hub`] of WebSocket
//! subscribers to a [`broker::Broker`] (in process, Redis or Redis Cluster).
//!
//! - Changes write their events into the outbox in their own transaction;
//!   the relay ([`relay`]) publishes them through the broker, on one node as
//!   on many: the broker assigns the sequence number, keeps the event for
//!   replay and delivers it back to every instance with subscribers, this
//!   one included.
//! - An instance subscribes the broker to a channel only while it has a local
//!   subscriber to it (the first joins, the last leaves).
//! - One dispatcher task per instance takes what the broker delivers and fans
//!   each frame out to local connection queues without awaiting.
//! - A shelter change is published to its `area:` and `cell:` channels and,
//!   as a list of ids, to the internal `registry` channel that every
//!   instance listens to so its shelter index follows writes made elsewhere.
//!
//! The protocol is described in `docs/live-protocol.md`.

pub mod broker;
pub mod channel;
pub mod conn;
pub mod hub;
pub mod queue;
pub mod redis;
mod relay;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Mutex as AsyncMutex, Notify, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use self::broker::{Broker, BrokerEvent, Frame, HistoryLimits, MemoryBroker, Position, event_tail};
use self::channel::{CELL_RESOLUTION, Channel};
use self::hub::{Hub, Subscriber};
use self::queue::{Caught, Since};
use crate::aidindex::AidIndex;
use crate::config::LiveConfig;
use crate::domain::shelter::{LatLon, Shelter};
use crate::geoindex::ShelterIndex;
use crate::store::Store;
use crate::supply::SupplyIndex;

/// Per-instance settings of the live path.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Frames a connection's queue holds before the client counts as too slow.
    pub queue: usize,
    /// WebSocket connections this instance accepts at once.
    pub max_connections: usize,
    /// Server ping interval; a client silent for three is dropped.
    pub ping: Duration,
    pub history: HistoryLimits,
}

impl From<&LiveConfig> for Settings {
    fn from(c: &LiveConfig) -> Self {
        Settings {
            queue: c.queue.max(8),
            max_connections: c.max_connections,
            ping: Duration::from_secs(c.ping_secs.max(1)),
            history: HistoryLimits {
                size: c.history_size.max(1),
                ttl: Duration::from_secs(c.history_ttl_secs.max(1)),
            },
        }
    }
}

/// Failures a subscriber is told about (and retries after).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    #[error("store: {0}")]
    Store(#[from] anyhow::Error),
}

/// A cheap handle; clones share one node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    broker: Arc<dyn Broker>,
    hub: Hub,
    store: Store,
    index: ShelterIndex,
    aid: AidIndex,
    supply: SupplyIndex,
    settings: Settings,
    connections: AtomicUsize,
    next_conn: AtomicU64,
    /// Wakes the outbox relay when a change on this instance committed.
    relay_wake: Arc<Notify>,
    /// The relay, awaited on shutdown so it drains what it can first.
    relay: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Serialises "first local subscriber joins → broker subscribe" against
    /// "last leaves → broker unsubscribe" per channel (sharded by name), so a
    /// join racing a leave never ends with subscribers but no subscription.
    membership: Box<[AsyncMutex<()>]>,
    /// The last snapshot built per channel with local subscribers, and the
    /// position it was built at: after an incident thousands subscribe to
    /// the same area at once, and all of them at one position can share one
    /// database read and one copy of its bytes.
    snapshots: std::sync::Mutex<HashMap<String, (Position, Utf8Bytes)>>,
    /// One snapshot build per channel at a time (sharded by name).
    building: Box<[AsyncMutex<()>]>,
    recovering: AtomicBool,
    shutdown: CancellationToken,
}

impl Node {
    /// Connects the broker named in the config (in process when none is)
    /// and starts the dispatcher and the publisher.
    pub async fn start(
        config: &LiveConfig,
        store: Store,
        index: ShelterIndex,
        aid: AidIndex,
        supply: SupplyIndex,
    ) -> anyhow::Result<Node> {
        let settings = Settings::from(config);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let broker: Arc<dyn Broker> = match (&config.redis_cluster, &config.redis_url) {
            (Some(nodes), _) => {
                let nodes: Vec<String> = nodes.split(',').map(|n| n.trim().to_owned()).collect();
                Arc::new(redis::RedisBroker::cluster(&nodes, settings.history, events_tx).await?)
            }
            (None, Some(url)) => {
                Arc::new(redis::RedisBroker::single(url, settings.history, events_tx).await?)
            }
            (None, None) => Arc::new(MemoryBroker::new(settings.history, events_tx)),
        };
        tracing::info!(broker = broker.name(), "live broker ready");
        let relay_wake = Arc::new(Notify::new());
        let node = Node {
            inner: Arc::new(Inner {
                broker,
                hub: Hub::default(),
                store,
                index,
                aid,
                supply,
                settings,
                connections: AtomicUsize::new(0),
                next_conn: AtomicU64::new(1),
                relay_wake: relay_wake.clone(),
                relay: std::sync::Mutex::new(None),
                membership: (0..64).map(|_| AsyncMutex::new(())).collect(),
                snapshots: std::sync::Mutex::new(HashMap::new()),
                building: (0..64).map(|_| AsyncMutex::new(())).collect(),
                recovering: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
            }),
        };
        node.inner.broker.subscribe(&Channel::Registry).await?;
        tokio::spawn(node.clone().dispatch(events_rx));
        if config.relay {
            let relay = tokio::spawn(relay::run(
                node.inner.store.clone(),
                node.inner.broker.clone(),
                relay_wake,
                node.inner.shutdown.clone(),
            ));
            *node.inner.relay.lock().expect("relay handle") = Some(relay);
        } else {
            tracing::warn!(
                "no outbox relay on this instance (ANPI_RELAY=false): another must publish"
            );
        }
        Ok(node)
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Stops the background tasks (when the server stops): the relay first
    /// publishes what is still in the outbox, while the broker takes it.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let relay = self.inner.relay.lock().expect("relay handle").take();
        if let Some(relay) = relay {
            let _ = relay.await;
        }
    }

    /// A place for one more connection, or `None` at the cap.
    pub fn admit(&self) -> Option<Admission> {
        let inner = &self.inner;
        let before = inner.connections.fetch_add(1, Ordering::AcqRel);
        if before >= inner.settings.max_connections {
            inner.connections.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("anpi_live_refused_total").increment(1);
            return None;
        }
        metrics::gauge!("anpi_live_connections").increment(1.0);
        Some(Admission {
            node: self.clone(),
            conn: inner.next_conn.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Waits (at most `patience`) until the events written before this call
    /// were published: at start-up, what a crash or the sample data left in
    /// the outbox goes out before anyone is served. Whether they all did.
    pub async fn published_so_far(&self, patience: Duration) -> bool {
        if self.inner.relay.lock().expect("relay handle").is_none() {
            return false; // no relay here
        }
        let store = &self.inner.store;
        let Ok(head) = store.outbox_head().await else {
            return false;
        };
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            self.inner.relay_wake.notify_one();
            match store.outbox_waiting_up_to(head).await {
                Ok(0) => return true,
                Ok(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => return false,
            }
        }
    }

    /// A change committed on this instance: its shelters go into the local
    /// index now (a reader's next query sees its own write), and the relay
    /// wakes to publish the events the change wrote into the outbox. Other
    /// instances update their index from the `registry` event.
    pub fn changed(&self, shelters: impl IntoIterator<Item = Shelter>) {
        for shelter in shelters {
            self.inner.index.upsert(shelter);
        }
        self.inner.relay_wake.notify_one();
    }

    /// Publishes straight through the broker and waits until it numbered the
    /// event — for tests and tools that make traffic. A change to stored
    /// data never uses this: its events go through the outbox.
    pub async fn publish_direct(
        &self,
        channel: &Channel,
        kind: &str,
        data: &impl Serialize,
    ) -> anyhow::Result<Position> {
        let tail = event_tail(kind, &serde_json::to_string(data)?);
        Ok(self.inner.broker.publish(channel, &tail).await?)
    }

    /// Takes what the broker delivers and fans it out.
    async fn dispatch(self, mut events: mpsc::UnboundedReceiver<BrokerEvent>) {
        loop {
            let event = tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                e = events.recv() => match e { Some(e) => e, None => return },
            };
            match event {
                BrokerEvent::Frame(frame) => {
                    if &*frame.channel == "registry" {
                        self.registry_changed(&frame);
                    } else {
                        self.inner.hub.broadcast(&frame);
                    }
                }
                BrokerEvent::Disconnected => self.recover_from_broker_loss(),
            }
        }
    }

    /// Records changed (on this instance or another): the in-memory
    /// indexes reload them from the database.
    fn registry_changed(&self, frame: &Frame) {
        #[derive(Deserialize)]
        struct Envelope {
            kind: String,
            data: serde_json::Value,
        }
        #[derive(Deserialize)]
        struct Ids {
            #[serde(default)]
            ids: Vec<String>,
            #[serde(default)]
            requests: Vec<String>,
            #[serde(default)]
            offers: Vec<String>,
        }
        enum Changed {
            Shelters {
                ids: Vec<String>,
            },
            Aid {
                requests: Vec<String>,
                offers: Vec<String>,
            },
            Supply {
                ids: Vec<String>,
            },
        }
        let Ok(envelope) = serde_json::from_str::<Envelope>(frame.bytes.as_str()) else {
            return;
        };
        let Ok(ids) = serde_json::from_value::<Ids>(envelope.data) else {
            return;
        };
        let changed = match envelope.kind.as_str() {
            "aid.changed" => Changed::Aid {
                requests: ids.requests,
                offers: ids.offers,
            },
            "supply.changed" => Changed::Supply { ids: ids.ids },
            _ => Changed::Shelters { ids: ids.ids },
        };
        let node = self.clone();
        tokio::spawn(async move {
            let inner = &node.inner;
            match changed {
                Changed::Shelters { ids } => {
                    for id in ids {
                        match inner.store.shelter(&id).await {
                            Ok(Some(s)) => inner.index.upsert(s),
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "could not refresh a shelter"),
                        }
                    }
                }
                Changed::Supply { ids } => {
                    for id in ids {
                        match inner.store.supply_point(&id).await {
                            Ok(Some(p)) => inner.supply.upsert(p),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "could not refresh a supply point")
                            }
                        }
                    }
                }
                Changed::Aid { requests, offers } => {
                    for id in requests {
                        match inner.store.aid_request(&id).await {
                            Ok(Some(r)) => inner.aid.upsert_request(r),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "could not refresh an aid request")
                            }
                        }
                    }
                    for id in offers {
                        match inner.store.aid_offer(&id).await {
                            Ok(Some(o)) => inner.aid.upsert_offer(o),
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "could not refresh an aid offer"),
                        }
                    }
                }
            }
        });
    }

    /// The broker link dropped: wait until it answers again, reload the index
    /// (writes made elsewhere meanwhile were not heard of) and make every
    /// local subscriber check what it missed — twice, because resubscription
    /// happens in the background and an event may slip in between.
    fn recover_from_broker_loss(&self) {
        metrics::counter!("anpi_live_broker_disconnects_total").increment(1);
        if self.inner.recovering.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!("lost the live broker; recovering");
        let node = self.clone();
        tokio::spawn(async move {
            let inner = &node.inner;
            while inner.broker.ping().await.is_err() {
                tokio::select! {
                    () = inner.shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            inner.recovering.store(false, Ordering::Release);
            match inner.store.all_shelters().await {
                Ok(all) => inner.index.replace_all(all),
                Err(e) => tracing::error!(error = %e, "could not reload the shelter index"),
            }
            match (
                inner.store.active_aid_requests().await,
                inner.store.open_aid_offers().await,
            ) {
                (Ok(requests), Ok(offers)) => inner.aid.replace_all(requests, offers),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "could not reload the aid index")
                }
            }
            match inner.store.all_supply_points().await {
                Ok(all) => inner.supply.replace_all(all),
                Err(e) => tracing::error!(error = %e, "could not reload the supply index"),
            }
            inner.hub.check_all();
            tracing::info!("live broker back; subscribers are catching up");
            tokio::time::sleep(Duration::from_secs(2)).await;
            inner.hub.check_all();
        });
    }

    fn membership_lock(&self, name: &str) -> &AsyncMutex<()> {
        shard(&self.inner.membership, name)
    }

    /// Adds a local subscriber; the first one subscribes the broker.
    async fn join(
        &self,
        channel: &Channel,
        name: &Arc<str>,
        me: &Subscriber,
    ) -> Result<(), LiveError> {
        let _guard = self.membership_lock(name).lock().await;
        if self.inner.hub.add(name, me.clone())
            && let Err(e) = self.inner.broker.subscribe(channel).await
        {
            self.inner.hub.remove(name, me.conn);
            return Err(e.into());
        }
        metrics::gauge!("anpi_live_subscriptions").increment(1.0);
        Ok(())
    }

    /// Removes a local subscriber; the last one unsubscribes the broker.
    async fn leave(&self, channel: &Channel, name: &str, conn: u64) {
        let _guard = self.membership_lock(name).lock().await;
        metrics::gauge!("anpi_live_subscriptions").decrement(1.0);
        if self.inner.hub.remove(name, conn) {
            self.inner.snapshots.lock().expect("snapshots").remove(name);
            if let Err(e) = self.inner.broker.unsubscribe(channel).await {
                tracing::warn!(error = %e, channel = name, "broker unsubscribe failed");
            }
        }
    }

    fn leave_hub_only(&self, name: &str, conn: u64) {
        self.inner.hub.remove(name, conn);
    }

    /// What a subscriber needs before live events: the events after `since`
    /// when all are still held, else a fresh snapshot (a resync when `since`
    /// was given). The position is read before the snapshot, so the snapshot
    /// is at least as new as every event up to it.
    async fn catch_up(
        &self,
        channel: &Channel,
        since: Option<&Since>,
    ) -> Result<Caught, LiveError> {
        let history = self
            .inner
            .broker
            .history(channel, since.map(Since::seq))
            .await?;
        let position = history.position;
        if let Some(since) = since {
            let same_stream = since.epoch().is_none_or(|e| e == &*position.epoch);
            let complete = since.seq() == position.seq
                || history
                    .frames
                    .first()
                    .is_some_and(|f| f.seq == since.seq() + 1);
            if same_stream && since.seq() <= position.seq && complete {
                return Ok(Caught::Replay {
                    start: since.seq(),
                    position,
                    frames: history.frames,
                });
            }
        }
        let snapshot = self.snapshot_at(channel, &position).await?;
        Ok(Caught::Fresh {
            resync: since.is_some(),
            position,
            snapshot,
        })
    }

    /// A snapshot at least as new as `position`: the cached one when it was
    /// built at exactly this position (it reflects everything up to it),
    /// else a new one.
    async fn snapshot_at(
        &self,
        channel: &Channel,
        position: &Position,
    ) -> Result<Utf8Bytes, LiveError> {
        let name = channel.to_string();
        let cached = || {
            let snapshots = self.inner.snapshots.lock().expect("snapshots");
            snapshots
                .get(&name)
                .filter(|(at, _)| at == position)
                .map(|(_, bytes)| bytes.clone())
        };
        if let Some(bytes) = cached() {
            return Ok(bytes);
        }
        let _building = shard(&self.inner.building, &name).lock().await;
        if let Some(bytes) = cached() {
            return Ok(bytes); // built while this one waited
        }
        let bytes = self.snapshot(channel, position).await?;
        self.inner
            .snapshots
            .lock()
            .expect("snapshots")
            .insert(name, (position.clone(), bytes.clone()));
        Ok(bytes)
    }

    /// The shelters inside one cell, fresh from the database, by id.
    async fn shelters_in(
        &self,
        channel: &Channel,
        cell: h3o::CellIndex,
    ) -> Result<Vec<Shelter>, LiveError> {
        let centre = h3o::LatLng::from(cell);
        let at = LatLon::new(centre.lat(), centre.lng()).map_err(anyhow::Error::msg)?;
        let reach = CELL_RESOLUTION.edge_length_m() * 2.0;
        let mut found = Vec::new();
        for s in self.inner.index.within(at, reach) {
            if s.site.location.map(Channel::cell_at).as_ref() == Some(channel)
                && let Some(fresh) = self.inner.store.shelter(&s.site.id).await?
            {
                found.push(fresh);
            }
        }
        found.sort_by(|a, b| a.site.id.cmp(&b.site.id));
        Ok(found)
    }

    /// The current state of what a channel covers, read from the database.
    async fn snapshot(
        &self,
        channel: &Channel,
        position: &Position,
    ) -> Result<Utf8Bytes, LiveError> {
        let (kind, data) = match channel {
            Channel::Area(code) => (
                "shelter.snapshot",
                json!({ "shelters": self.inner.store.shelters_of(code).await? }),
            ),
            Channel::Cell(cell) => (
                "shelter.snapshot",
                json!({ "shelters": self.shelters_in(channel, *cell).await? }),
            ),
            Channel::Notices(code) => (
                "announcement.snapshot",
                json!({ "announcements": self.inner.store.announcements(code, NOTICES_SNAPSHOT).await? }),
            ),
            Channel::Incident(id) => (
                "incident.stats",
                json!(crate::stats::of(&self.inner.store, &self.inner.index, id).await?),
            ),
            // A person's history comes from a look-up; the channel carries what follows.
            Channel::Person(_) | Channel::Registry => ("person.snapshot", json!({})),
            // An inbox carries what follows; the owner reads its records by HTTP.
            Channel::Inbox(_) => ("inbox.snapshot", json!({})),
        };
        // Header first, as in event frames, so a client can route a frame
        // without parsing its data.
        let text = format!(
            r#"{{"op":"snapshot","channel":{},"seq":{},"epoch":{},"kind":"{kind}","data":{data}}}"#,
            json!(channel.to_string()),
            position.seq,
            json!(&*position.epoch),
        );
        Ok(Utf8Bytes::from(text))
    }
}

/// Announcements in a `notices:` snapshot, newest first.
const NOTICES_SNAPSHOT: u32 = 10;

/// One admitted connection; dropping it frees the place.
pub struct Admission {
    node: Node,
    pub conn: u64,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.node.inner.connections.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("anpi_live_connections").decrement(1.0);
    }
}

/// The lock of `locks` that `name` hashes to.
fn shard<'a>(locks: &'a [AsyncMutex<()>], name: &str) -> &'a AsyncMutex<()> {
    let hash = name
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    &locks[hash % locks.len()]
}
