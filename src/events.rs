//! Typed live events: every kind of change anpi tells subscribers about,
//! where each goes, and its one serialisation. Changes write these into the
//! outbox in their own transaction (`store::outbox`); the relay publishes
//! them (`live::relay`); tests and the replay read the same shapes.
//!
//! The wire format is in `docs/live-protocol.md`: an event frame carries
//! `kind` and `data`; `data` is what [`LiveEvent::data`] serialises.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::person::Status;
use crate::domain::shelter::Shelter;
use crate::live::channel::Channel;
use crate::stats::IncidentStats;
use crate::store::Announcement;

/// Ids per `registry.changed` event: a national import changes 100,000.
const REGISTRY_CHUNK: usize = 500;

/// One change, as subscribers see it.
#[derive(Clone, Debug)]
pub enum LiveEvent {
    /// A shelter's registry entry or live state changed (`shelter.updated`).
    ShelterUpdated(Box<Shelter>),
    /// Shelters changed: every instance reloads them into its index
    /// (`registry.changed`, internal).
    RegistryChanged { ids: Vec<String> },
    /// Someone checked in, or a PFIF note about them arrived (`checkin`).
    Checkin(CheckinEvent),
    /// An incident's counts (`incident.stats`).
    IncidentStats(Box<IncidentStats>),
    /// An office told its municipality something (`announcement`).
    Announcement(Announcement),
}

/// What a watcher of a person learns of one check-in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckinEvent {
    pub person_token: String,
    pub name: String,
    pub phone_last4: Option<String>,
    pub statuses: Vec<Status>,
    pub shelter_id: Option<String>,
    /// The person's own message (not shown for household members others reported).
    pub message: Option<String>,
    pub recorded_at: DateTime<Utc>,
    /// For an imported PFIF note: its status and author.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pfif_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub author_name: Option<String>,
}

impl LiveEvent {
    /// The `kind` of its frames.
    pub fn kind(&self) -> &'static str {
        match self {
            LiveEvent::ShelterUpdated(_) => "shelter.updated",
            LiveEvent::RegistryChanged { .. } => "registry.changed",
            LiveEvent::Checkin(_) => "checkin",
            LiveEvent::IncidentStats(_) => "incident.stats",
            LiveEvent::Announcement(_) => "announcement",
        }
    }

    /// Its `data`, as JSON text.
    pub fn data(&self) -> String {
        let json = match self {
            LiveEvent::ShelterUpdated(s) => serde_json::to_string(s),
            LiveEvent::RegistryChanged { ids } => {
                serde_json::to_string(&serde_json::json!({ "ids": ids }))
            }
            LiveEvent::Checkin(c) => serde_json::to_string(c),
            LiveEvent::IncidentStats(s) => serde_json::to_string(s),
            LiveEvent::Announcement(a) => serde_json::to_string(a),
        };
        json.expect("live events serialise")
    }
}

/// An event and the channel it goes to: one row of the outbox.
#[derive(Clone, Debug)]
pub struct Addressed {
    pub channel: Channel,
    pub event: LiveEvent,
}

impl Addressed {
    fn new(channel: Channel, event: LiveEvent) -> Self {
        Addressed { channel, event }
    }
}

/// Shelters changed: each to its area and its cell, and every instance's
/// index told through `registry`.
pub fn shelters_changed(shelters: &[Shelter]) -> Vec<Addressed> {
    let mut out = Vec::with_capacity(shelters.len() * 2 + 1);
    for s in shelters {
        let event = LiveEvent::ShelterUpdated(Box::new(s.clone()));
        if let Some(at) = s.site.location {
            out.push(Addressed::new(Channel::cell_at(at), event.clone()));
        }
        out.push(Addressed::new(
            Channel::Area(s.site.municipality.clone()),
            event,
        ));
    }
    let ids: Vec<String> = shelters.iter().map(|s| s.site.id.clone()).collect();
    for chunk in ids.chunks(REGISTRY_CHUNK) {
        out.push(Addressed::new(
            Channel::Registry,
            LiveEvent::RegistryChanged {
                ids: chunk.to_vec(),
            },
        ));
    }
    out
}

/// A check-in, to the person's own channel and to each family waiting on a
/// look-up that matches them (`watchers`).
pub fn checked_in(event: CheckinEvent, watchers: &[String]) -> Vec<Addressed> {
    std::iter::once(&event.person_token)
        .chain(watchers)
        .map(|token| {
            Addressed::new(
                Channel::Person(token.clone()),
                LiveEvent::Checkin(event.clone()),
            )
        })
        .collect()
}

/// An incident's counts, on `incident:<id>`.
pub fn stats(incident_id: &str, stats: IncidentStats) -> Addressed {
    Addressed::new(
        Channel::Incident(incident_id.to_owned()),
        LiveEvent::IncidentStats(Box::new(stats)),
    )
}

/// An announcement, on its municipality's `area:` channel.
pub fn announced(announcement: &Announcement) -> Addressed {
    Addressed::new(
        Channel::Area(announcement.municipality.clone()),
        LiveEvent::Announcement(announcement.clone()),
    )
}
