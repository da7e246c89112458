//! A careful live client of one shelter channel (`area:` or `cell:`), as the
//! protocol asks a client to be: it applies the snapshot, then each event
//! that follows the last one in the same epoch; on `resync` it takes the
//! fresh snapshot; when its socket drops it reconnects and resubscribes
//! with `since`. An event that skips a number fails the test at once.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::ws::Ws;

pub struct Follower {
    base: String,
    pub channel: String,
    ws: Ws,
    pub epoch: String,
    pub last: u64,
    /// The channel's shelters as the client knows them, by id.
    pub shelters: HashMap<String, Value>,
    /// `shelter.updated` events applied.
    pub events: usize,
    pub resyncs: usize,
    pub reconnects: usize,
}

impl Follower {
    /// Connects to the service at `base`, subscribes and applies the snapshot.
    pub async fn subscribe(base: &str, channel: &str) -> Follower {
        let mut ws = Ws::connect(base).await;
        let sub = ws.subscribe(json!({"channels": [channel]})).await;
        assert_eq!(sub["channels"][0]["channel"], channel, "{sub}");
        let snapshot = ws.expect("snapshot").await;
        let mut f = Follower {
            base: base.to_owned(),
            channel: channel.to_owned(),
            ws,
            epoch: String::new(),
            last: 0,
            shelters: HashMap::new(),
            events: 0,
            resyncs: 0,
            reconnects: 0,
        };
        f.take_snapshot(&snapshot);
        f
    }

    /// A shelter's field as the client shows it.
    pub fn field(&self, id: &str, field: &str) -> Option<&Value> {
        self.shelters.get(id).map(|s| &s[field])
    }

    fn take_snapshot(&mut self, snapshot: &Value) {
        assert_eq!(snapshot["channel"], self.channel.as_str(), "{snapshot}");
        self.epoch = snapshot["epoch"].as_str().expect("epoch").to_owned();
        self.last = snapshot["seq"].as_u64().expect("seq");
        self.shelters = snapshot["data"]["shelters"]
            .as_array()
            .expect("a shelter snapshot")
            .iter()
            .map(|s| (s["id"].as_str().expect("id").to_owned(), s.clone()))
            .collect();
    }

    /// Reads and applies one frame, waiting at most `patience` for it;
    /// whether one came. A dropped socket is re-made with `since`.
    pub async fn step(&mut self, patience: Duration) -> bool {
        let frame = match self.ws.next_within(patience).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return false,
            Err(why) => {
                eprintln!(
                    "{}: socket lost ({why}); reconnecting with since",
                    self.channel
                );
                self.reconnect().await;
                return true;
            }
        };
        match frame["op"].as_str() {
            Some("event") => {
                let (epoch, seq) = (
                    frame["epoch"].as_str().expect("epoch"),
                    frame["seq"].as_u64().expect("seq"),
                );
                assert!(
                    epoch == self.epoch && seq == self.last + 1,
                    "{}: silent gap: after {}#{} came {epoch}#{seq}",
                    self.channel,
                    self.epoch,
                    self.last
                );
                self.last = seq;
                if frame["kind"] == "shelter.updated" {
                    let id = frame["data"]["id"].as_str().expect("id").to_owned();
                    self.shelters.insert(id, frame["data"].clone());
                    self.events += 1;
                }
            }
            Some("resync") => {
                assert_eq!(frame["channel"], self.channel.as_str(), "{frame}");
                self.resyncs += 1;
                let snapshot = self.ws.expect("snapshot").await;
                self.take_snapshot(&snapshot);
            }
            _ => panic!("{}: unexpected frame {frame}", self.channel),
        }
        true
    }

    /// Reads until `done` holds, for at most `within`; fails loudly if it
    /// never does.
    pub async fn until(&mut self, within: Duration, done: impl Fn(&Follower) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !done(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "{}: the expected state never arrived (at {}#{}, {} events, {} resyncs, {} reconnects)",
                self.channel,
                self.epoch,
                self.last,
                self.events,
                self.resyncs,
                self.reconnects
            );
            self.step(left.min(Duration::from_secs(1))).await;
        }
    }

    /// A new socket, subscribed with `since` = what was applied last.
    async fn reconnect(&mut self) {
        self.reconnects += 1;
        let since = json!({ &self.channel: {"seq": self.last, "epoch": self.epoch} });
        for attempt in 0.. {
            assert!(attempt < 100, "{}: could not reconnect", self.channel);
            let Ok(mut ws) = Ws::try_connect(&self.base).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            ws.send(json!({"op": "subscribe", "channels": [&self.channel], "since": since}))
                .await;
            let reply = ws.next().await;
            if reply["op"] != "subscribed" {
                eprintln!("{}: subscribe refused: {reply}", self.channel);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            // Then either the missed events (read by `step`) or `resync`
            // and a snapshot (also read by `step`).
            self.ws = ws;
            return;
        }
    }
}
